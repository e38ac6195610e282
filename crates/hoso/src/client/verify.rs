//! `hoso verify`: the hash chain of one dossier or of the whole log.

use crate::out::outln;

use anyhow::{Result, bail};
use hoso_api::pb;

use super::{ConnectArgs, connect, count, dossier_ref, status_error};

/// `hoso verify`.
#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// One dossier (receipt code or id); without it, the whole log.
    dossier: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub(crate) async fn verify(args: VerifyArgs) -> Result<()> {
    let mut client = pb::audit_service_client::AuditServiceClient::new(connect(&args.connect).await?);
    let request = pb::VerifyChainRequest {
        dossier: args.dossier.as_deref().map(dossier_ref),
    };
    let report = client.verify_chain(request).await.map_err(status_error)?.into_inner();
    for line in &report.quarantined {
        println!("WARNING: recovery cut {line} (docs/operations.md)");
    }
    if report.ok {
        outln!(
            "ok: {} in {} verified; every hash chain matches",
            count(report.records_checked, "record", "records"),
            count(report.streams_checked, "stream", "streams")
        );
        return Ok(());
    }
    let problem = report.first_problem.unwrap_or_default();
    bail!(
        "the log does not verify: record at position {} (stream {}, version {}): {} ({} records checked before it)",
        problem.position,
        if problem.stream_id.is_empty() {
            "unknown"
        } else {
            &problem.stream_id
        },
        problem.version.map_or("unknown".to_owned(), |v| v.to_string()),
        problem.reason,
        report.records_checked
    )
}
