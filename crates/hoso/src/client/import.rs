//! `hoso import`: dossier histories from NDJSON, with a rejects file and the catalogue
//! differences.

use crate::out::outln;
use std::path::PathBuf;

use anyhow::{Context, Result};
use hoso_api::pb;

use super::{ConnectArgs, connect, status_error};

/// `hoso import`.
#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// The NDJSON file: one `hoso.v1.ImportDossierRequest` in JSON a line.
    file: PathBuf,
    /// Where to write the lines that were refused, with their line number and reason (NDJSON).
    #[arg(long, default_value = "import-rejects.ndjson")]
    rejects: PathBuf,
    /// Dossiers sent at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Where to list the imported dossiers whose procedure values differ from the catalogue in
    /// force at their receipt (NDJSON; written only when some do).
    #[arg(long, default_value = "import-catalogue-differences.ndjson")]
    differences: PathBuf,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Imports every line; returns how many were rejected.
pub(crate) async fn import(args: ImportArgs) -> Result<u64> {
    use std::io::{BufRead, Write};
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut lines = std::io::BufReader::new(file);
    // The rejects file is this run's: an old one goes, and a new one appears only if a line is
    // rejected.
    match std::fs::remove_file(&args.rejects) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("cannot replace {}", args.rejects.display()));
        }
        _ => {}
    }
    let mut rejects = Rejects {
        path: args.rejects.clone(),
        file: None,
    };
    let client = pb::admin_service_client::AdminServiceClient::new(connect(&args.connect).await?);
    let bar = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("importing [{bar:40}] {bytes}/{total_bytes} ({msg})")
            .context("the progress bar template is wrong")?
            .progress_chars("#>-"),
    );
    let (mut imported, mut events, mut present, mut rejected) = (0u64, 0u64, 0u64, 0u64);
    let mut differing: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut line_number = 0u64;
    let mut read = 0u64;
    let mut text = String::new();
    let reject = |rejects: &mut Rejects, line: u64, receipt: &str, reason: &str| -> Result<()> {
        let entry = serde_json::json!({ "line": line, "receipt_code": receipt, "reason": reason });
        writeln!(rejects.file()?, "{entry}").context("cannot write the rejects file")
    };
    loop {
        text.clear();
        let n = lines.read_line(&mut text).context("cannot read the import file")?;
        if n > 0 {
            line_number += 1;
            read += n as u64;
            if text.trim().is_empty() {
                continue;
            }
            match hoso_api::import_line::parse_import_line(&text) {
                Err(reason) => {
                    rejected += 1;
                    reject(
                        &mut rejects,
                        line_number,
                        "",
                        &format!("not an ImportDossierRequest in JSON: {reason}"),
                    )?;
                }
                Ok(request) => {
                    let receipt = match request.commands.first().and_then(|c| c.command.as_ref()) {
                        Some(pb::import_command::Command::ReceiveDossier(r)) => r.receipt_code.clone(),
                        _ => String::new(),
                    };
                    let mut client = client.clone();
                    in_flight.spawn(async move { (line_number, receipt, client.import_dossier(request).await) });
                }
            }
        }
        // Keep `parallel` dossiers in flight; at the end, wait for all.
        while in_flight.len() >= args.parallel.max(1) || (n == 0 && !in_flight.is_empty()) {
            let (line, receipt, answer) = in_flight
                .join_next()
                .await
                .expect("a task is in flight")
                .context("an import task failed")?;
            match answer {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    if !answer.catalogue_differences.is_empty() {
                        differing.push((answer.receipt_code.clone(), answer.catalogue_differences));
                    }
                    if answer.already_imported {
                        present += 1;
                    } else {
                        imported += 1;
                        events += answer.events;
                    }
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    bar.abandon();
                    rejects.flush()?;
                    return Err(status_error(status)).context(format!("the import stopped at line {line}; run it again to continue (imported dossiers are not imported twice)"));
                }
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    ) =>
                {
                    bar.abandon();
                    rejects.flush()?;
                    return Err(status_error(status)).context(format!(
                        "the import stopped at line {line}: the server refused the token; importing needs an operator's token of this server (HOSO_TOKEN) and the right server (HOSO_SERVER = {})",
                        args.connect.server()
                    ));
                }
                Err(status) => {
                    rejected += 1;
                    reject(&mut rejects, line, &receipt, status.message())?;
                }
            }
        }
        bar.set_position(read);
        bar.set_message(format!(
            "{imported} imported, {present} already there, {rejected} rejected"
        ));
        if n == 0 {
            break;
        }
    }
    rejects.flush()?;
    bar.finish();
    outln!(
        "imported {imported} dossiers ({events} events); {present} were already there; {rejected} lines rejected{}",
        if rejected > 0 {
            format!(" (reasons in {})", args.rejects.display())
        } else {
            String::new()
        }
    );
    report_differences(&mut differing, &args.differences)?;
    Ok(rejected)
}

/// The rejects file, created at the first rejected line.
struct Rejects {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Rejects {
    fn file(&mut self) -> Result<&mut std::io::BufWriter<std::fs::File>> {
        if self.file.is_none() {
            let file =
                std::fs::File::create(&self.path).with_context(|| format!("cannot create {}", self.path.display()))?;
            self.file = Some(std::io::BufWriter::new(file));
        }
        self.file.as_mut().context("the rejects file was just created")
    }

    fn flush(&mut self) -> Result<()> {
        use std::io::Write;
        match &mut self.file {
            Some(file) => file.flush().context("cannot write the rejects file"),
            None => Ok(()),
        }
    }
}

/// Prints the imported dossiers whose procedure values differ from the catalogue (a few, and
/// the count) and lists them all in `path`.
fn report_differences(differing: &mut [(String, Vec<String>)], path: &std::path::Path) -> Result<()> {
    use std::io::Write;
    if differing.is_empty() {
        return Ok(());
    }
    differing.sort();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for (receipt, differences) in differing.iter() {
        let entry = serde_json::json!({ "receipt_code": receipt, "differences": differences });
        writeln!(file, "{entry}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    file.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    outln!(
        "{} {} procedure values that differ from the catalogue in force at receipt (each history keeps its own); all in {}:",
        differing.len(),
        if differing.len() == 1 {
            "dossier has"
        } else {
            "dossiers have"
        },
        path.display()
    );
    const SHOWN: usize = 10;
    for (receipt, differences) in differing.iter().take(SHOWN) {
        outln!("  {receipt}: {}", differences.join("; "));
    }
    if differing.len() > SHOWN {
        outln!("  … and {} more", differing.len() - SHOWN);
    }
    Ok(())
}
