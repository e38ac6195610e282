//! The client subcommands, one file each: connect to a running server with a bearer token and
//! print what it answers in words an auditor or operator can read. Here: what several share.

use anyhow::{Context, Result};
use hoso_api::convert::timestamp_to_utc;
use hoso_api::pb;

pub(crate) use hoso::connect::{ConnectArgs, connect, runtime, status_error};
pub(crate) use hoso::out::count;

mod call;
mod disclose;
mod figures;
mod import;
mod rebuild;
mod replay;
mod status;
mod tail;
mod verify;

pub(crate) use call::{CallArgs, call, list_methods};
pub(crate) use disclose::{DiscloseArgs, disclose};
pub(crate) use figures::{FiguresArgs, figures};
pub(crate) use import::{ImportArgs, import};
pub(crate) use rebuild::rebuild;
pub(crate) use replay::{ReplayArgs, replay};
pub(crate) use status::status;
pub(crate) use tail::{TailArgs, tail};
pub(crate) use verify::{VerifyArgs, verify};

/// The API's descriptors, built in: `call`, `import` and `figures --json` map messages to and from
/// JSON by them.
fn descriptors() -> Result<prost_reflect::DescriptorPool> {
    prost_reflect::DescriptorPool::decode(hoso_api::FILE_DESCRIPTOR_SET)
        .context("the built-in API description is damaged")
}

fn dossier_ref(text: &str) -> pb::DossierRef {
    let r#ref = if uuid_like(text) {
        pb::dossier_ref::Ref::DossierId(text.to_owned())
    } else {
        pb::dossier_ref::Ref::ReceiptCode(text.to_owned())
    };
    pb::DossierRef { r#ref: Some(r#ref) }
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// A timestamp in RFC 3339 at UTC+7, the form every JSON output of the client uses.
fn local_rfc3339(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(timestamp_to_utc)
        .map(|at| {
            at.with_timezone(&hoso_domain::calendar::vietnam_offset())
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
        })
        .unwrap_or_default()
}

pub(crate) fn local(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(timestamp_to_utc)
        .map(|at| {
            at.with_timezone(&hoso_domain::calendar::vietnam_offset())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "-".to_owned())
}
