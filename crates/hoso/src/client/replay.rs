//! `hoso replay`: a dossier's history as a table or as JSON lines.

use crate::out::outln;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hoso_api::pb;

use super::{ConnectArgs, connect, dossier_ref, local, local_rfc3339, status_error};

/// `hoso replay`.
#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// The dossier: its receipt code (e.g. G09.20-20260609-0092637) or its id (a UUID).
    dossier: String,
    /// Show the dossier as it stood at this recorded-at instant (RFC 3339, e.g. 2026-06-10T17:00:00+07:00).
    #[arg(long)]
    as_of: Option<DateTime<Utc>>,
    /// Print each event as one JSON line (envelope, data and metadata) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub(crate) async fn replay(args: ReplayArgs) -> Result<()> {
    let mut client = pb::audit_service_client::AuditServiceClient::new(connect(&args.connect).await?);
    let request = pb::ReplayDossierRequest {
        dossier: Some(dossier_ref(&args.dossier)),
        as_of: args.as_of.map(hoso_api::convert::utc_to_timestamp),
    };
    let mut stream = client.replay_dossier(request).await.map_err(status_error)?.into_inner();
    let mut first = true;
    while let Some(item) = stream.message().await.map_err(status_error)? {
        let event = item.event.context("the server sent a replay item without its event")?;
        let after = item.dossier_after.unwrap_or_default();
        if args.json {
            let line = serde_json::json!({
                "stream_id": event.stream_id,
                "version": event.version,
                "position": event.position,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "schema_version": event.schema_version,
                "occurred_at": local_rfc3339(event.occurred_at.as_ref()),
                "recorded_at": local_rfc3339(event.recorded_at.as_ref()),
                "hash": event.hash,
                "data": serde_json::from_str::<serde_json::Value>(&event.data_json).unwrap_or_default(),
                "metadata": serde_json::from_str::<serde_json::Value>(&event.metadata_json).unwrap_or_default(),
                "status_after": pb::DossierStatus::try_from(after.status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("DOSSIER_STATUS_UNSPECIFIED"),
            });
            outln!("{line}");
            continue;
        }
        if first {
            outln!("dossier {} ({}), times in UTC+7", after.receipt_code, after.dossier_id);
            outln!(
                "{:>3} {:>9}  {:<19}  {:<19}  {:<22} {:<20} {:<14} {:<24} hash",
                "v",
                "position",
                "occurred at",
                "recorded at",
                "event",
                "actor",
                "desk",
                "status after"
            );
            first = false;
        }
        outln!(
            "{:>3} {:>9}  {:<19}  {:<19}  {:<22} {:<20} {:<14} {:<24} {}",
            event.version,
            event.position,
            local(event.occurred_at.as_ref()),
            local(event.recorded_at.as_ref()),
            event.event_type,
            event.actor,
            event.desk,
            after.status_name,
            &event.hash[..event.hash.len().min(16)],
        );
    }
    if first && !args.json {
        outln!(
            "no event of this dossier was recorded by {} (UTC+7): --as-of is about when events were recorded in the log, not when they occurred",
            args.as_of.map_or("now".to_owned(), |at| local(Some(
                &hoso_api::convert::utc_to_timestamp(at)
            )))
        );
    }
    Ok(())
}
