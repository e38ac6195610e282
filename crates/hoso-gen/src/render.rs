//! A generated dossier as a line of the `hoso import` format: a `hoso.v1.ImportDossierRequest`
//! in the protobuf JSON mapping (field names as in the .proto files, enums by name, times in
//! RFC 3339), as `docs/import.md` describes.

use chrono::{DateTime, SecondsFormat, Utc};
use hoso_domain::Command;
use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use serde_json::{Value, json};

use crate::{Dossier, time_unit_name};

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn header(at: DateTime<Utc>) -> Value {
    json!({ "occurred_at": time(at) })
}

fn command(command: &Command) -> (&'static str, Value) {
    match command {
        Command::ReceiveDossier(c) => (
            "receive_dossier",
            json!({
                "command": header(c.occurred_at),
                "receipt_code": c.receipt_code,
                "procedure": {
                    "code": c.procedure.code,
                    "name": c.procedure.name,
                    "statutory_time": c.procedure.statutory_time.map(|time| json!({
                        "amount": time.amount,
                        "unit": time_unit_name(time.unit),
                    })),
                    "full_online_eligible": c.procedure.full_online_eligible,
                    "paper_result": c.procedure.paper_result,
                    "fee_vnd": c.procedure.fee_vnd.map(|fee| fee.to_string()),
                },
                "receiving_desk": c.receiving_desk,
                "handling_agency": c.handling_agency,
                "channel": match c.channel {
                    hoso_domain::Channel::InPerson => "CHANNEL_IN_PERSON",
                    hoso_domain::Channel::Online => "CHANNEL_ONLINE",
                    hoso_domain::Channel::Postal => "CHANNEL_POSTAL",
                },
                "applicant_ref": c.applicant.0.to_string(),
            }),
        ),
        Command::DigitizeDossier(c) => (
            "digitize_dossier",
            json!({
                "command": header(c.occurred_at),
                "files": c.files.iter().map(|f| json!({"component": f.component, "content_hash": f.content_hash})).collect::<Vec<_>>(),
                "reused": c.reused.iter().map(|r| json!({"component": r.component, "source": r.source})).collect::<Vec<_>>(),
                "result_digitized": c.result_digitized,
            }),
        ),
        Command::ProcessDossier(c) => (
            "process_dossier",
            json!({
                "command": header(c.occurred_at),
                "step": match c.step {
                    ProcessingStep::Transferred => "PROCESSING_STEP_TRANSFERRED",
                    ProcessingStep::Appraised => "PROCESSING_STEP_APPRAISED",
                    ProcessingStep::Approved => "PROCESSING_STEP_APPROVED",
                    ProcessingStep::Stopped => "PROCESSING_STEP_STOPPED",
                },
                "to_unit": c.to_unit.clone().unwrap_or_default(),
                "reason": c.reason.clone().unwrap_or_default(),
            }),
        ),
        Command::RequestSupplement(c) => (
            "request_supplement",
            json!({ "command": header(c.occurred_at), "missing_components": c.missing_components }),
        ),
        Command::ReceiveSupplement(c) => ("receive_supplement", json!({ "command": header(c.occurred_at) })),
        Command::IssueEResult(c) => (
            "issue_e_result",
            json!({
                "command": header(c.occurred_at),
                "result_id": c.result_id,
                "content_hash": c.content_hash,
                "signer": c.signer,
            }),
        ),
        Command::PayOnline(c) => (
            "record_online_payment",
            json!({
                "command": header(c.occurred_at),
                "amount_vnd": c.amount_vnd.to_string(),
                "gateway": match c.gateway {
                    PaymentGateway::NationalPortal => "PAYMENT_GATEWAY_NATIONAL_PORTAL",
                    PaymentGateway::Provincial => "PAYMENT_GATEWAY_PROVINCIAL",
                },
                "transaction_ref": c.transaction_ref,
            }),
        ),
        Command::SendApology(c) => (
            "send_apology",
            json!({
                "command": header(c.occurred_at),
                "reason": c.reason,
                "new_appointment_at": time(c.new_appointment_at),
                "letter_number": c.letter_number,
            }),
        ),
        Command::ReturnResult(c) => (
            "return_result",
            json!({
                "command": header(c.occurred_at),
                "method": match c.method {
                    ReturnMethod::AtDesk => "RETURN_METHOD_AT_DESK",
                    ReturnMethod::ByPost => "RETURN_METHOD_BY_POST",
                    ReturnMethod::Online => "RETURN_METHOD_ONLINE",
                },
            }),
        ),
        Command::RateSatisfaction(c) => (
            "record_rating",
            json!({
                "command": header(c.occurred_at),
                "rating": match c.rating {
                    Satisfaction::Satisfied => "SATISFACTION_SATISFIED",
                    Satisfaction::Unsatisfied => "SATISFACTION_UNSATISFIED",
                },
            }),
        ),
        Command::Withdraw(c) => (
            "withdraw_dossier",
            json!({ "command": header(c.occurred_at), "reason": c.reason }),
        ),
        Command::RefuseAtIntake(c) => (
            "refuse_at_intake",
            json!({ "command": header(c.occurred_at), "reason": c.reason }),
        ),
        Command::RecordNationalPortalSync(c) => (
            "mark_synced",
            json!({ "command": header(c.occurred_at), "status": format!("DOSSIER_STATUS_{}", status_name(c.status)) }),
        ),
    }
}

fn status_name(status: hoso_domain::PortalStatus) -> &'static str {
    use hoso_domain::PortalStatus::*;
    match status {
        RegisteredOnline => "REGISTERED_ONLINE",
        Received => "RECEIVED",
        RefusedAtIntake => "REFUSED_AT_INTAKE",
        InProgress => "IN_PROGRESS",
        SupplementRequested => "SUPPLEMENT_REQUESTED",
        AwaitingFeePayment => "AWAITING_FEE_PAYMENT",
        Withdrawn => "WITHDRAWN",
        Stopped => "STOPPED",
        Processed => "PROCESSED",
        ResultReturned => "RESULT_RETURNED",
    }
}

/// The dossier as one line of the import format (no trailing newline); `source` names the
/// system it comes from.
pub fn import_line(dossier: &Dossier, source: &str) -> String {
    let commands: Vec<Value> = dossier
        .commands
        .iter()
        .map(|(c, actor)| {
            let (name, body) = command(c);
            let mut entry = serde_json::Map::new();
            entry.insert("source_actor".to_owned(), Value::String(actor.clone()));
            entry.insert(name.to_owned(), body);
            Value::Object(entry)
        })
        .collect();
    json!({ "source": source, "commands": commands }).to_string()
}
