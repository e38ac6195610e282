//! `hoso`: the one binary of the service.
//!
//! `hoso serve` runs the gRPC server on the embedded store (or PostgreSQL, `--store`); `hoso replay`, `hoso verify`,
//! `hoso status` and `hoso tail` (the change feed) are the auditors' and operators' clients of a running server; `hoso calendar`
//! and `hoso catalogue` load and show the reference data; `hoso call` calls
//! any method with a JSON request (as grpcurl would, without the proto files); `hoso token`
//! creates bearer tokens and their hashes for the tokens file; `hoso gen` makes a province's
//! workload to import (the load tool that drives a server with one is the separate `hoso-load`);
//! `hoso disclosure-key` makes the province's signing key and `hoso verify-disclosure` checks a
//! signed disclosure offline on a copy of the log; `hoso backup` and `hoso restore` copy the
//! embedded store while the server serves and make a data directory from such a copy; `hoso copy`
//! copies a log between the embedded store and PostgreSQL; `hoso portal-sync` is the national-portal
//! connector (crates/hoso-portal-sync), a process of its own beside the server.
//! Arguments are parsed and checked here, then handed to `hoso-server` or to the generated gRPC
//! clients of `hoso-api`.

mod backup;
mod client;
mod copy;
mod disclosure_key;
mod portal_sync;
mod reference;
mod verify_disclosure;
mod workload;

use crate::out::{out, outln};
use hoso::out;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use hoso_server::auth::{Role, hash_token, new_token, token_entry};
use hoso_server::config::Config;

/// mimalloc instead of glibc's malloc: the read model is millions of small allocations made on
/// one thread and freed on another, where glibc's arenas cost twice the time (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// hoso: the life of every administrative-procedure dossier, as a verifiable event log.
#[derive(Parser)]
#[command(name = "hoso", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gRPC server on the embedded store, or on PostgreSQL with --store (listens on
    /// 127.0.0.1:50051 by default).
    Serve(ServeArgs),
    /// Print a dossier's history as a table (auditor or operator token).
    Replay(client::ReplayArgs),
    /// Print the change feed, one line per event, and follow it as the log records them; with
    /// --consumer, resume where that consumer stopped (integration, auditor or operator token).
    Tail(client::TailArgs),
    /// Verify the hash chain of one dossier or of the whole log (auditor or operator token).
    Verify(client::VerifyArgs),
    /// Print the server's status (auditor or operator token).
    Status(client::ConnectArgs),
    /// Rebuild the projections from the whole log, with a progress bar (operator token).
    Rebuild(client::ConnectArgs),
    /// Print a period's index 766 figures as tables (any token).
    Figures(client::FiguresArgs),
    /// Generate a realistic, deterministic province workload in the import format.
    Gen(workload::GenArgs),
    /// Publish a month's disclosure as a document (html, csv, json or xlsx; any token).
    Disclose(client::DiscloseArgs),
    /// Import dossier histories from NDJSON (one dossier a line; see docs/import.md), with a
    /// progress bar and a rejects file (operator token).
    Import(client::ImportArgs),
    /// Call any method of the API with a JSON request, like grpcurl (`hoso call list` lists them).
    Call(client::CallArgs),
    /// The working-day calendar: load a year's holiday notice into the running server, or show a
    /// year (docs/calendar.md).
    #[command(subcommand)]
    Calendar(reference::CalendarCommand),
    /// The procedure catalogue: load a decision from a CSV or XLSX file into the running server,
    /// list or show the procedures in force, list those received outside it (docs/catalogue.md).
    #[command(subcommand)]
    Catalogue(reference::CatalogueCommand),
    /// Create bearer tokens for the tokens file.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The province's key for signing disclosures: make a key pair (docs/disclosure.md).
    #[command(subcommand)]
    DisclosureKey(disclosure_key::DisclosureKeyCommand),
    /// Check a published disclosure offline against a copy of the log: its signature, the log's
    /// head hash at the position it names, and every figure recomputed there (docs/disclosure.md).
    VerifyDisclosure(verify_disclosure::VerifyDisclosureArgs),
    /// Back up the embedded store of a data directory, while the server serves: a verified copy
    /// up to a durable position, incremental into an earlier backup (docs/operations.md).
    Backup(backup::BackupArgs),
    /// Make a new data directory from a backup: its store opens, verifies and holds exactly the
    /// backup's events.
    Restore(backup::RestoreArgs),
    /// Copy a log between the embedded store and PostgreSQL (either way), verbatim, resumable
    /// and verified: how a province moves to PostgreSQL and back (docs/operations.md).
    Copy(copy::CopyArgs),
    /// The national-portal connector: follow the change feed and send each dossier change to the
    /// national portal; `status` lists the records set aside, `resend` sends them again
    /// (docs/portal-sync.md).
    PortalSync(portal_sync::PortalSyncArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML); also HOSO_CONFIG. Without one, the defaults apply.
    #[arg(long, env = "HOSO_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on; overrides the file and HOSO_LISTEN.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory; overrides the file and HOSO_DATA_DIR.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Where the event log is kept: `embedded` (in the data directory, the default) or a
    /// PostgreSQL URL, postgres://USER@HOST:PORT/DB (needs a build with `--features postgres`);
    /// overrides the file and HOSO_STORE.
    #[arg(long)]
    store: Option<String>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a fresh token, and the tokens-file entry (with its hash) to add for it.
    New {
        /// desk_officer, agency_officer, auditor, operator or integration.
        #[arg(long)]
        role: String,
        /// The officer's or service account's id (never a citizen's).
        #[arg(long)]
        subject: String,
        /// The officer's unit code (the handling agency for an agency officer).
        #[arg(long, default_value = "")]
        agency: String,
    },
    /// Read a token from standard input and print its SHA-256, as the tokens file stores it.
    Hash,
}

fn main() {
    let cli = Cli::parse();
    if let Err(err) = run(cli) {
        // The reader of our output went away (`hoso replay X | head`): it has what it wanted.
        if out::is_broken_pipe(&err) {
            std::process::exit(0);
        }
        eprintln!("hoso: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Replay(args) => client::runtime()?.block_on(client::replay(args)),
        Command::Tail(args) => client::runtime()?.block_on(client::tail(args)),
        Command::Verify(args) => client::runtime()?.block_on(client::verify(args)),
        Command::Status(args) => client::runtime()?.block_on(client::status(args)),
        Command::Rebuild(args) => client::runtime()?.block_on(client::rebuild(args)),
        Command::Figures(args) => client::runtime()?.block_on(client::figures(args)),
        Command::Gen(args) => workload::run(args),
        Command::Disclose(args) => client::runtime()?.block_on(client::disclose(args)),
        Command::Import(args) => {
            let rejected = client::runtime()?.block_on(client::import(args))?;
            if rejected > 0 {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Call(args) if args.is_list() => client::list_methods(),
        Command::Call(args) => client::runtime()?.block_on(client::call(args)),
        Command::Calendar(command) => client::runtime()?.block_on(reference::calendar(command)),
        Command::Catalogue(command) => client::runtime()?.block_on(reference::catalogue(command)),
        Command::Token(TokenCommand::New { role, subject, agency }) => {
            let role = Role::parse(&role).with_context(|| {
                format!(
                    "--role {role:?} is not a role; use desk_officer, agency_officer, auditor, operator or integration"
                )
            })?;
            if matches!(role, Role::DeskOfficer | Role::AgencyOfficer) && agency.is_empty() {
                anyhow::bail!("--agency is required for a {role}: the unit code of the officer's desk or agency");
            }
            let token = new_token();
            outln!("token (give it to the caller; it is not stored anywhere): {token}");
            outln!();
            outln!("# add to the tokens file:");
            out!("{}", token_entry(&token, &subject, role, &agency));
            Ok(())
        }
        Command::DisclosureKey(command) => disclosure_key::run(command),
        Command::VerifyDisclosure(args) => verify_disclosure::run(args),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Copy(args) => copy::copy(args),
        Command::PortalSync(args) => portal_sync::run(args),
        Command::Token(TokenCommand::Hash) => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .context("cannot read the token from standard input")?;
            outln!("{}", hash_token(token.trim()));
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let mut config = Config::load(args.config.as_deref(), |key| std::env::var(key).ok())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(store) = args.store {
        config.store = Some(store);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Inside the runtime: the trace exporter's gRPC channel runs on it.
    let traces = {
        let _runtime = runtime.enter();
        hoso_server::traces::init(config.log_format, &config.tracing)?
    };
    let served = runtime.block_on(hoso_server::run(config, shutdown_signal()));
    traces.shutdown();
    served
}

/// Completes on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
