//! `hoso rebuild`: rebuilds the projections from the whole log, with a progress bar.

use crate::out::outln;

use anyhow::{Context, Result, bail};
use hoso_api::pb;

use super::{ConnectArgs, connect, status_error};

pub(crate) async fn rebuild(args: ConnectArgs) -> Result<()> {
    let mut client = pb::reports_service_client::ReportsServiceClient::new(connect(&args).await?);
    let mut stream = client
        .rebuild_projections(pb::RebuildProjectionsRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("rebuilding [{bar:40}] {pos}/{len} events ({msg})")
            .context("the progress bar template is wrong")?
            .progress_chars("#>-"),
    );
    while let Some(progress) = stream.message().await.map_err(status_error)? {
        bar.set_length(progress.events_total);
        bar.set_position(progress.events_done);
        bar.set_message(format!(
            "{:.0} events/s, {:.0} s left",
            progress.events_per_second, progress.seconds_left
        ));
        if progress.swapped {
            bar.finish_with_message(format!("{:.0} events/s; swapped in", progress.events_per_second));
            outln!(
                "rebuilt from {} events; the new projection is live",
                progress.events_total
            );
            return Ok(());
        }
    }
    bail!("the server ended the rebuild without swapping the new projection in; see its log")
}
