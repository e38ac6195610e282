//! `hoso status`: the server's status, its projection and its warnings.

use crate::out::outln;

use anyhow::Result;
use hoso_api::pb;

use super::{ConnectArgs, connect, count, local, status_error};

pub(crate) async fn status(args: ConnectArgs) -> Result<()> {
    let connection = connect(&args).await?;
    let mut client = pb::admin_service_client::AdminServiceClient::new(connection.clone());
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    outln!("server version    {}", status.server_version);
    outln!("store             {}", status.store_backend);
    outln!("events in the log {}", status.head_position);
    outln!("started at        {} (UTC+7)", local(status.started_at.as_ref()));
    outln!(
        "accepting writes  {}",
        if status.accepting_writes {
            "yes"
        } else {
            "NO: the store refuses writes (the WARNING below says why and what to do)"
        }
    );
    outln!(
        "holiday notices   {} (other years: provisional calendars)",
        status
            .calendar_years
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    outln!(
        "catalogue         version {}{}",
        status.catalogue_version,
        match (status.catalogue_version, status.procedures_outside_catalogue_allowed) {
            (0, false) => " (none loaded: desks cannot receive dossiers; load one with `hoso catalogue load`)",
            (0, true) => " (none loaded; procedures outside the catalogue are accepted)",
            (_, true) => "; procedures outside it are accepted",
            _ => "",
        }
    );
    for warning in &status.warnings {
        outln!("WARNING           {warning}");
    }
    outln!("you are           {} ({})", status.caller, status.caller_role);
    let mut reports = pb::reports_service_client::ReportsServiceClient::new(connection);
    let projection = reports
        .get_projection_status(pb::GetProjectionStatusRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    outln!(
        "projection        {} of {} events applied (lag {}), {}{}",
        projection.applied_position,
        projection.head_position,
        projection.lag_events,
        count(projection.dossiers, "dossier", "dossiers"),
        if projection.rebuilding { ", rebuilding" } else { "" }
    );
    if !projection.stopped.is_empty() {
        println!("PROJECTION STOPPED {}", projection.stopped);
        println!(
            "                  reports answer DATA_LOSS: repair the log, then `hoso rebuild` (docs/operations.md)"
        );
    }
    Ok(())
}
