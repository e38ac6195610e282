//! `hoso disclose`: a month's disclosure as a document.

use crate::out::outln;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use hoso_api::convert::timestamp_to_utc;
use hoso_api::pb;

use super::{ConnectArgs, connect, status_error};

/// `hoso disclose`.
#[derive(clap::Args)]
pub(crate) struct DiscloseArgs {
    /// The month, `YYYY-MM`.
    #[arg(long)]
    month: String,
    /// Only events recorded at or before this instant count (RFC 3339); default: now. The
    /// document names the cut-off: give it again to get the same bytes.
    #[arg(long)]
    cutoff: Option<DateTime<Utc>>,
    /// html, csv, json or xlsx.
    #[arg(long, default_value = "html")]
    format: String,
    /// vi (Vietnamese labels) or en.
    #[arg(long, default_value = "vi")]
    language: String,
    /// Where to write it; default: the name the server suggests, in the current directory
    /// (`cong-khai-2025-09.html`, `disclosure-2025-09-en.html`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the file if it exists (without it, an existing file is left as it is).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Writes `bytes` to `path`, refusing to replace an existing file unless `force`.
fn write_new(path: &std::path::Path, bytes: &[u8], force: bool) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // Created only if absent, in one step, so that no other writer's file is replaced.
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} exists; give --force to replace it, or --out to write elsewhere",
            path.display()
        ),
        other => other.with_context(|| format!("cannot create {}", path.display()))?,
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub(crate) async fn disclose(args: DiscloseArgs) -> Result<()> {
    let format = match args.format.as_str() {
        "html" => pb::DisclosureFormat::Html,
        "csv" => pb::DisclosureFormat::Csv,
        "json" => pb::DisclosureFormat::Json,
        "xlsx" => pb::DisclosureFormat::Xlsx,
        other => bail!("--format {other:?} is not a format; use html, csv, json or xlsx"),
    };
    let mut client = pb::reports_service_client::ReportsServiceClient::new(connect(&args.connect).await?);
    let request = pb::GetDisclosureRequest {
        scope: Some(pb::ReportScope {
            month: args.month.clone(),
            cutoff: args.cutoff.map(hoso_api::convert::utc_to_timestamp),
            ..Default::default()
        }),
        format: format.into(),
        language: args.language.clone(),
    };
    let answer = client.get_disclosure(request).await.map_err(status_error)?.into_inner();
    let out = args.out.unwrap_or_else(|| PathBuf::from(&answer.file_name));
    write_new(&out, &answer.document, args.force)?;
    if answer.empty {
        outln!(
            "warning: no dossier of {} was recorded by the cut-off; the document says so (check --month and --cutoff)",
            args.month
        );
    }
    let cutoff = answer
        .cutoff
        .as_ref()
        .and_then(timestamp_to_utc)
        .map(|c| c.to_rfc3339())
        .unwrap_or_default();
    outln!(
        "wrote {} ({} bytes), figures as of {cutoff}; `--cutoff {cutoff}` gives the same document again",
        out.display(),
        answer.document.len()
    );
    Ok(())
}
