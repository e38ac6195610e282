//! Protobuf bytes of a desk request (any of the thirteen, as `hoso.v1.ImportCommand` carries
//! them) to a domain command: never a panic; refusals name a field each, with a short
//! description; a converted command converts back to protobuf and again to the same command,
//! and a receipt is decided without a panic.

use hoso_api::convert::{DeskCommand, DossierKey, IntoDeskCommand, InvalidRequest, command_to_pb, utc_to_timestamp};
use hoso_api::pb;
use hoso_domain::{BusinessCalendar, Command, DossierState, GreenLane, decide};
use prost::Message as _;

/// Field names and values a desk request holds, for the mutator to splice in.
pub(super) const DICTIONARY: &[&[u8]] = &[
    b"G09.20-20260609-0092637",
    b"000.00.04.G18",
    b"1.001234",
    b"5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80",
];

/// The longest description a violation may have: errors travel in gRPC metadata, which a
/// client refuses past a few kilobytes.
pub(crate) const MAX_DESCRIPTION: usize = 1024;

/// Checks a refusal's shape: at least one violation, each naming its field, briefly.
pub(crate) fn check_refusal(err: &InvalidRequest) -> Result<String, String> {
    let Some(first) = err.violations.first() else {
        return Err("a request was refused with no violation".to_owned());
    };
    for v in &err.violations {
        if v.field.is_empty() || v.description.is_empty() {
            return Err(format!("a violation without a field or a description: {v:?}"));
        }
        if v.description.len() > MAX_DESCRIPTION {
            return Err(format!(
                "the violation of {} has a {}-byte description",
                v.field,
                v.description.len()
            ));
        }
    }
    Ok(first.field.clone())
}

/// The request that records `desk`, converted again.
fn round_trip(desk: &DeskCommand) -> Result<DeskCommand, InvalidRequest> {
    let header = pb::CommandHeader {
        command_id: desk.header.command_id.to_string(),
        expected_version: desk.header.expected_version,
        correlation_id: desk.header.correlation_id.clone(),
        occurred_at: Some(utc_to_timestamp(desk.header.occurred_at)),
    };
    let dossier = desk.dossier.as_ref().map(|key| pb::DossierRef {
        r#ref: Some(match key {
            DossierKey::Id(id) => pb::dossier_ref::Ref::DossierId(id.to_string()),
            DossierKey::ReceiptCode(code) => pb::dossier_ref::Ref::ReceiptCode(code.clone()),
        }),
    });
    command_to_pb(&desk.command, header, dossier).into_desk_command()
}

pub(super) fn run(data: &[u8]) -> Result<String, String> {
    let Ok(request) = pb::ImportCommand::decode(data) else {
        return Ok("undecodable".to_owned());
    };
    let Some(command) = request.command else {
        return Ok("empty".to_owned());
    };
    let desk = match command.into_desk_command() {
        Err(err) => return check_refusal(&err).map(|field| format!("refused:{field}")),
        Ok(desk) => desk,
    };
    let again = round_trip(&desk).map_err(|err| format!("a converted command does not convert back: {err}"))?;
    if again != desk {
        return Err(format!("a command changed on its way back: {desk:?} became {again:?}"));
    }
    if let Command::ReceiveDossier(_) = desk.command {
        let calendar = BusinessCalendar::vietnam();
        let green_lane = GreenLane::new();
        let context = hoso_domain::Context::new(super::fixed_now(), &calendar, &green_lane);
        return match decide(&DossierState::new(), &desk.command, &context) {
            Ok(_) => Ok("received".to_owned()),
            Err(err) => super::import_line::check_rule(&err).map(|kind| format!("receipt refused:{kind}")),
        };
    }
    Ok("converted".to_owned())
}
