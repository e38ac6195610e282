//! Test support shared by the modules' tests: Vietnam local times, command fixtures, and the
//! crate-wide property tests of decide and evolve.

use chrono::{DateTime, NaiveDateTime, Utc};
use uuid::Uuid;

use crate::calendar::{from_local, to_local};
use crate::codes::ApplicantRef;
use crate::command::*;
use crate::dossier::{Channel, PortalStatus};
use crate::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use crate::procedure::StatutoryTime;

/// The decision time of every check.
pub(crate) const NOW: &str = "2026-12-31 20:00";

/// A Vietnam local time written `YYYY-MM-DD HH:MM`.
pub(crate) fn vn(s: &str) -> DateTime<Utc> {
    from_local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

/// Renders an instant as Vietnam local time with its weekday.
pub(crate) fn show(instant: DateTime<Utc>) -> String {
    to_local(instant).format("%Y-%m-%d %a %H:%M").to_string()
}

pub(crate) fn receive_at(at: &str) -> ReceiveDossier {
    ReceiveDossier {
        occurred_at: vn(at),
        receipt_code: format!("G09.20-{}-0092637", &at[..10].replace('-', "")),
        procedure: ProcedureInput {
            code: "1.001234".into(),
            name: "Đăng ký khai sinh".into(),
            statutory_time: StatutoryTime::working_days(3),
            full_online_eligible: true,
            paper_result: true,
            fee_vnd: 50_000,
        },
        receiving_desk: "000.00.04.G18".into(),
        handling_agency: "000.00.20.H28".into(),
        channel: Channel::Online,
        applicant: ApplicantRef(Uuid::from_u128(0x5eed)),
    }
}

pub(crate) fn receive() -> Command {
    receive_at("2026-06-08 09:00").into()
}

pub(crate) fn step(at: &str, step: ProcessingStep) -> Command {
    let to_unit = (step == ProcessingStep::Transferred).then(|| "000.00.20.H28".to_owned());
    let reason = (step == ProcessingStep::Stopped).then(|| "không đủ điều kiện".to_owned());
    ProcessDossier { occurred_at: vn(at), step, officer: "cb.nguyen".into(), to_unit, reason }.into()
}

pub(crate) fn approve(at: &str) -> Command {
    step(at, ProcessingStep::Approved)
}

pub(crate) fn request_supplement(at: &str) -> Command {
    RequestSupplement {
        occurred_at: vn(at),
        missing_components: vec!["Giấy chứng sinh".into()],
        officer: "cb.nguyen".into(),
    }
    .into()
}

pub(crate) fn receive_supplement(at: &str) -> Command {
    ReceiveSupplement { occurred_at: vn(at) }.into()
}

pub(crate) fn return_result(at: &str) -> Command {
    ReturnResult { occurred_at: vn(at), method: ReturnMethod::AtDesk }.into()
}

pub(crate) fn rate(at: &str) -> Command {
    RateSatisfaction { occurred_at: vn(at), rating: Satisfaction::Satisfied }.into()
}

pub(crate) fn sync(at: &str) -> Command {
    RecordNationalPortalSync { occurred_at: vn(at), status: PortalStatus::ResultReturned }.into()
}

pub(crate) fn withdraw(at: &str) -> Command {
    Withdraw { occurred_at: vn(at), reason: "không có nhu cầu".into() }.into()
}

pub(crate) fn refuse(at: &str) -> Command {
    RefuseAtIntake { occurred_at: vn(at), reason: "sai thủ tục".into(), officer: "cb.tran".into() }.into()
}

pub(crate) fn pay(at: &str, amount_vnd: i64) -> Command {
    PayOnline {
        occurred_at: vn(at),
        amount_vnd,
        gateway: PaymentGateway::NationalPortal,
        transaction_ref: "PAY-778899".into(),
    }
    .into()
}

pub(crate) fn apology(at: &str, new_appointment: &str) -> Command {
    SendApology {
        occurred_at: vn(at),
        reason: "chờ xác minh".into(),
        new_appointment_at: vn(new_appointment),
        letter_number: "12/PXL".into(),
    }
    .into()
}

pub(crate) const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub(crate) fn e_result(at: &str) -> Command {
    IssueEResult {
        occurred_at: vn(at),
        result_id: "KQ-2026-000123".into(),
        content_hash: HASH.into(),
        signer: "ubnd.phuong.a".into(),
    }
    .into()
}

pub(crate) fn digitize(at: &str, result_digitized: bool) -> Command {
    DigitizeDossier {
        occurred_at: vn(at),
        files: vec![FileInput { component: "Tờ khai".into(), content_hash: HASH.into() }],
        reused: vec![ReuseInput { component: "CCCD".into(), source: "CSDL quốc gia về dân cư".into() }],
        result_digitized,
    }
    .into()
}


/// The state after deciding and folding `commands` in order at [`NOW`], with an empty green lane;
/// every command must be accepted.
pub(crate) fn fold_commands(commands: impl IntoIterator<Item = Command>) -> crate::DossierState {
    let calendar = crate::BusinessCalendar::vietnam();
    let green_lane = crate::GreenLane::new();
    let ctx = crate::Context::new(vn(NOW), &calendar, &green_lane);
    let mut state = crate::DossierState::new();
    for command in commands {
        let events = crate::decide(&state, &command, &ctx)
            .unwrap_or_else(|err| panic!("{command:?} was rejected: {err}"));
        state = events.iter().fold(state, crate::evolve);
    }
    state
}
