//! `hoso portal-sync`: the national-portal connector (crates/hoso-portal-sync), its status and
//! its resend requests.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::out::out;

/// `hoso portal-sync`.
#[derive(clap::Args)]
pub(crate) struct PortalSyncArgs {
    /// The connector's configuration file (TOML; docs/portal-sync.md); also HOSO_PORTAL_SYNC_CONFIG.
    #[arg(long, env = "HOSO_PORTAL_SYNC_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List the records set aside after the portal refused them max_attempts times, with the
    /// reason, and the resend requests not yet taken up.
    Status,
    /// Send a dossier's records set aside again, in order (the running connector takes the
    /// request within a second; a stopped one when it starts).
    Resend {
        /// The dossier's receipt code, or `all`.
        receipt_code: String,
    },
}

pub(crate) fn run(args: PortalSyncArgs) -> Result<()> {
    let path = args.config.context(
        "--config (or HOSO_PORTAL_SYNC_CONFIG) is required: the connector's TOML file (docs/portal-sync.md)",
    )?;
    let config = hoso_portal_sync::Config::load(&path)?;
    match args.action {
        None => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            // The server's log lines (no traces: the connector's calls carry their own ids).
            let logging = {
                let _runtime = runtime.enter();
                hoso_server::traces::init(
                    hoso_server::config::LogFormat::Text,
                    &hoso_server::config::TracingConfig::default(),
                )?
            };
            let synced = runtime.block_on(hoso_portal_sync::run(config, crate::shutdown_signal()));
            logging.shutdown();
            synced
        }
        Some(Action::Status) => {
            out!("{}", hoso_portal_sync::status(&config)?);
            Ok(())
        }
        Some(Action::Resend { receipt_code }) => {
            hoso_portal_sync::resend(&config, &receipt_code)?;
            eprintln!(
                "hoso: resend of {receipt_code} requested; the running connector sends it within a second (`hoso portal-sync status` shows what is left)"
            );
            Ok(())
        }
    }
}
