//! An import line (`docs/import.md`) to its commands, each converted and decided in order as
//! `hoso import` and the server's import do: never a panic; a refused line, field or rule is
//! named in a message of bounded length.

use hoso_api::convert::IntoDeskCommand;
use hoso_api::import_line::parse_import_line;
use hoso_api::pb;
use hoso_api::pb::import_command::Command as Imported;
use hoso_domain::{BusinessCalendar, DomainError, DossierState, GreenLane, decide, evolve};

/// Pieces of the import format, for the mutator to splice in.
pub(super) const DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e400",
    b"18446744073709551616",
    b"\"9999-12-31T23:59:59Z\"",
    b"\"0000-01-01T00:00:00Z\"",
    b"\"1970-01-01T00:00:00.999999999+07:00\"",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\"commands\"",
    b"\"receiveDossier\"",
    b"\"processDossier\"",
    b"\"requestSupplement\"",
    b"\"receiveSupplement\"",
    b"\"returnResult\"",
    b"\"statutoryTime\"",
    b"\"amount\"",
    b"\"occurredAt\"",
    b"\"TIME_UNIT_WORKING_HOURS\"",
    b"\"TIME_UNIT_CALENDAR_DAYS\"",
    b"\"G09.20-20260609-0092637\"",
];

/// The longest message a refusal may have (see `convert::MAX_DESCRIPTION`).
const MAX_MESSAGE: usize = 2048;

/// Checks a rule's refusal: a message of bounded length; its kind is the outcome.
pub(crate) fn check_rule(err: &DomainError) -> Result<String, String> {
    let text = err.to_string();
    if text.is_empty() || text.len() > MAX_MESSAGE {
        return Err(format!("a rule's refusal is {} bytes long: {err:?}", text.len()));
    }
    let debug = format!("{err:?}");
    Ok(debug.split(['(', ' ', '{']).next().unwrap_or_default().to_owned())
}

/// The command with the header's command id and the dossier filled in, as the server's import
/// does for every command of a history (`hoso_server::import`).
pub(crate) fn as_imported(command: Imported, index: usize, receipt_code: &str) -> Imported {
    let command_id = uuid::Uuid::from_u128(0x1000 + index as u128).to_string();
    let header = |h: Option<pb::CommandHeader>| {
        let mut h = h.unwrap_or_default();
        h.command_id.clone_from(&command_id);
        Some(h)
    };
    let dossier = Some(pb::DossierRef {
        r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(receipt_code.to_owned())),
    });
    macro_rules! fill {
        ($variant:ident, $r:expr) => {{
            let mut r = $r;
            r.command = header(r.command.take());
            r.dossier = dossier;
            Imported::$variant(r)
        }};
    }
    match command {
        Imported::ReceiveDossier(mut r) => {
            r.command = header(r.command.take());
            Imported::ReceiveDossier(r)
        }
        Imported::DigitizeDossier(r) => fill!(DigitizeDossier, r),
        Imported::ProcessDossier(r) => fill!(ProcessDossier, r),
        Imported::RequestSupplement(r) => fill!(RequestSupplement, r),
        Imported::ReceiveSupplement(r) => fill!(ReceiveSupplement, r),
        Imported::IssueEResult(r) => fill!(IssueEResult, r),
        Imported::RecordOnlinePayment(r) => fill!(RecordOnlinePayment, r),
        Imported::SendApology(r) => fill!(SendApology, r),
        Imported::ReturnResult(r) => fill!(ReturnResult, r),
        Imported::RecordRating(r) => fill!(RecordRating, r),
        Imported::WithdrawDossier(r) => fill!(WithdrawDossier, r),
        Imported::RefuseAtIntake(r) => fill!(RefuseAtIntake, r),
        Imported::MarkSynced(r) => fill!(MarkSynced, r),
    }
}

/// The events of a history's commands, decided in order from a new dossier; `Err` names the
/// first command refused and why (as an outcome, not a finding), `Ok` the events.
pub(crate) fn decide_history(
    request: pb::ImportDossierRequest,
) -> Result<Result<Vec<hoso_domain::DossierEvent>, String>, String> {
    let receipt_code = match request.commands.first().and_then(|c| c.command.as_ref()) {
        Some(Imported::ReceiveDossier(r)) => r.receipt_code.clone(),
        _ => return Ok(Err("no receipt first".to_owned())),
    };
    let calendar = BusinessCalendar::vietnam();
    let green_lane = GreenLane::new();
    let context = hoso_domain::Context::new(super::fixed_now(), &calendar, &green_lane);
    let mut state = DossierState::new();
    let mut events = Vec::new();
    for (index, imported) in request.commands.into_iter().enumerate() {
        let Some(command) = imported.command else {
            return Ok(Err(format!("command {index} empty")));
        };
        let mut desk = match as_imported(command, index, &receipt_code).into_desk_command() {
            Ok(desk) => desk,
            Err(err) => {
                let field = super::convert::check_refusal(&err)?;
                return Ok(Err(format!("command {} refused:{field}", index.min(3))));
            }
        };
        desk.command.set_officer("fuzz.officer");
        match decide(&state, &desk.command, &context) {
            Ok(decided) => {
                for event in decided {
                    state = evolve(state, &event);
                    events.push(event);
                }
            }
            Err(err) => {
                let kind = check_rule(&err)?;
                return Ok(Err(format!("command {} rule:{kind}", index.min(3))));
            }
        }
    }
    Ok(Ok(events))
}

pub(super) fn run(data: &[u8]) -> Result<String, String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok("not utf-8".to_owned());
    };
    let request = match parse_import_line(text) {
        Ok(request) => request,
        Err(reason) if reason.is_empty() => return Err("a line was refused with an empty reason".to_owned()),
        Err(_) => return Ok("unparsed".to_owned()),
    };
    Ok(match decide_history(request)? {
        Ok(events) => format!("imported:{}", events.len().min(8)),
        Err(outcome) => outcome,
    })
}
