//! The national-portal connector (`hoso portal-sync`): a process of its own that follows the
//! change feed as a named consumer, turns each dossier change into the national portal's
//! dossier-sync record ([`record`]), sends it over HTTPS with an idempotency key, retrying with
//! backoff and one record in flight per dossier ([`portal`], [`connector`]), records the portal's
//! answer back in the log as `SyncedToNationalPortal`, and sets aside what the portal keeps
//! refusing until an operator resends it ([`aside`]). docs/portal-sync.md is its manual.

pub mod aside;
pub mod config;
pub mod connector;
pub mod portal;
pub mod record;

use std::fmt::Write;

use anyhow::{Result, bail};

pub use crate::config::Config;
pub use crate::connector::run;

/// `hoso portal-sync status`: the dossiers set aside and the resend requests not yet taken up,
/// as a table (times in UTC+7).
pub fn status(config: &Config) -> Result<String> {
    let dir = aside::StateDir::open(&config.state_dir)?;
    let all = dir.list()?;
    let mut out = String::new();
    if all.is_empty() {
        writeln!(out, "no records set aside")?;
    } else {
        writeln!(
            out,
            "{:<26} {:>7} {:>8}  {:<19}  {:<24} reason",
            "receipt code", "records", "attempts", "set aside at", "first change"
        )?;
        for aside in &all {
            let first = aside.records.first().map(|r| &r.source);
            writeln!(
                out,
                "{:<26} {:>7} {:>8}  {:<19}  {:<24} {}",
                aside.receipt_code,
                aside.records.len(),
                aside.attempts,
                aside
                    .set_aside_at
                    .with_timezone(&hoso_domain::calendar::vietnam_offset())
                    .format("%Y-%m-%d %H:%M:%S"),
                first
                    .map(|s| format!("{} @{}", s.event_type, s.position))
                    .unwrap_or_default(),
                aside.reason,
            )?;
        }
    }
    for request in dir.resend_requests()? {
        writeln!(out, "resend requested, not yet taken up by the connector: {request}")?;
    }
    Ok(out)
}

/// `hoso portal-sync resend`: asks the connector to send a dossier's records set aside again
/// (`all`: every dossier's), now if it runs, else when it next starts.
pub fn resend(config: &Config, receipt_code: &str) -> Result<()> {
    let dir = aside::StateDir::open(&config.state_dir)?;
    if receipt_code != aside::RESEND_ALL && dir.get(receipt_code)?.is_none() {
        bail!("dossier {receipt_code} has no records set aside; `hoso portal-sync status` lists those that have");
    }
    dir.request_resend(receipt_code)
}
