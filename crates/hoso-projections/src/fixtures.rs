//! Test fixtures shared by the crates that test on figures (feature `fixtures`): a desk that
//! records dossiers through the domain's own `decide` into an in-memory store, and the March 2026
//! province whose figures are computed by hand in this crate's tests.

use chrono::{DateTime, NaiveDateTime, Utc};
use hoso_domain::command::*;
use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use hoso_domain::{
    ApplicantRef, BusinessCalendar, Channel, Command, Context, DossierState, GreenLane, PortalStatus, StatutoryTime,
};
use hoso_store::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamRead};

use crate::figures::{Report, report};
use crate::{Dossiers, Period};

/// A handling agency of the fixtures.
pub const A: &str = "000.00.04.G18";
/// Another handling agency.
pub const B: &str = "000.00.05.G18";

/// A Vietnam local time written `YYYY-MM-DD HH:MM`.
pub fn vn(s: &str) -> DateTime<Utc> {
    hoso_domain::calendar::from_local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

/// A desk that decides commands with the domain and appends them to an in-memory store.
pub struct Desk {
    /// The store.
    pub store: MemoryStore,
    /// The calendar.
    pub calendar: BusinessCalendar,
    /// The green lane.
    pub green_lane: GreenLane,
}

impl Desk {
    /// An empty store, the shipped calendar, no green lane.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Desk {
        Desk {
            store: MemoryStore::new(),
            calendar: BusinessCalendar::vietnam(),
            green_lane: GreenLane::new(),
        }
    }

    /// Decides `command` on dossier `seq` received on `received_on` and appends its events.
    pub async fn record(&self, seq: u32, received_on: &str, command: Command) {
        let stream = format!("dossier-G09.20-{}-{seq:07}", received_on.replace('-', ""));
        let records = self.store.read_stream(&stream, StreamRead::forward()).await.unwrap();
        let events: Vec<_> = records
            .iter()
            .map(|r| {
                hoso_domain::DossierEvent::from_stored(&r.event_type, r.schema_version, r.data_json().unwrap()).unwrap()
            })
            .collect();
        let state = DossierState::fold(&events);
        let now = vn("2026-11-01 12:00");
        let decided = hoso_domain::decide(&state, &command, &Context::new(now, &self.calendar, &self.green_lane))
            .unwrap_or_else(|err| panic!("{stream}: {err}"));
        let new: Vec<NewEvent> = decided
            .iter()
            .map(|e| NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: e.event_type().to_owned(),
                schema_version: e.schema_version(),
                data: hoso_store::Json::of(&e.data()).unwrap(),
                metadata: serde_json::json!({}).into(),
                occurred_at: e.occurred_at(),
            })
            .collect();
        let expected = records
            .last()
            .map_or(ExpectedVersion::NoStream, |r| ExpectedVersion::Exact(r.version));
        self.store.append(&stream, expected, new).await.unwrap();
    }

    /// Receives dossier `seq` at `at` (a 3-working-day procedure).
    pub async fn receive(&self, seq: u32, at: &str, agency: &str, channel: Channel, fee_vnd: i64) {
        let command = ReceiveDossier {
            occurred_at: vn(at),
            receipt_code: format!("G09.20-{}-{seq:07}", at[..10].replace('-', "")),
            procedure: ProcedureInput::declared(
                "1.001234",
                "Cấp giấy phép",
                StatutoryTime::working_days(3),
                true,
                true,
                fee_vnd,
            ),
            receiving_desk: "G09.20".into(),
            handling_agency: agency.into(),
            channel,
            applicant: ApplicantRef(uuid::Uuid::from_u128(u128::from(seq))),
        };
        self.record(seq, &at[..10], command.into()).await;
    }

    /// The figures of `period` as of `cutoff`, from a fresh model.
    pub async fn report(&self, period: Period, cutoff: DateTime<Utc>) -> Report {
        let mut dossiers = Dossiers::new();
        dossiers.catch_up(&self.store, |_, _| {}).await.unwrap();
        report(&dossiers, period, cutoff)
    }

    /// When the last event was recorded.
    pub async fn last_recorded_at(&self) -> DateTime<Utc> {
        let head = self.store.head();
        self.store.read_all(head - 1, 1).await.unwrap()[0].recorded_at
    }
}

/// An approval at `at`.
pub fn approve(at: &str) -> Command {
    ProcessDossier {
        occurred_at: vn(at),
        step: ProcessingStep::Approved,
        officer: "cb".into(),
        to_unit: None,
        reason: None,
    }
    .into()
}

/// A supplement request at `at`.
pub fn request(at: &str) -> Command {
    RequestSupplement {
        occurred_at: vn(at),
        missing_components: vec!["Bản vẽ".into()],
        officer: "cb".into(),
    }
    .into()
}

/// A supplement received at `at`.
pub fn supplied(at: &str) -> Command {
    ReceiveSupplement { occurred_at: vn(at) }.into()
}

/// The March 2026 province, as in the module docs of each dossier below.
pub async fn march() -> (Desk, DateTime<Utc>) {
    let desk = Desk::new();
    let m = "2026-03-02";
    // D1 (A): received Thu 26 Feb, due Tue 3 Mar 17:00, approved Mon 2 Mar: received before the
    // period, finished inside it, on time; returned and rated unsatisfied.
    desk.receive(1, "2026-02-26 09:00", A, Channel::InPerson, 0).await;
    desk.record(1, "2026-02-26", approve("2026-03-02 10:00")).await;
    desk.record(
        1,
        "2026-02-26",
        ReturnResult {
            occurred_at: vn("2026-03-02 15:00"),
            method: ReturnMethod::AtDesk,
        }
        .into(),
    )
    .await;
    desk.record(
        1,
        "2026-02-26",
        RateSatisfaction {
            occurred_at: vn("2026-03-02 15:05"),
            rating: Satisfaction::Unsatisfied,
        }
        .into(),
    )
    .await;
    // D2 (A, online): received Mon 2 Mar, due Thu 5 Mar; an apology on Wed 4 Mar; still open at
    // the period's end: overdue. Synced, not digitized.
    desk.receive(2, "2026-03-02 09:00", A, Channel::Online, 0).await;
    desk.record(
        2,
        m,
        SendApology {
            occurred_at: vn("2026-03-04 09:00"),
            reason: "chờ xác minh".into(),
            new_appointment_at: vn("2026-03-10 17:00"),
            letter_number: "1/XL".into(),
        }
        .into(),
    )
    .await;
    desk.record(
        2,
        m,
        RecordNationalPortalSync {
            occurred_at: vn("2026-03-04 10:00"),
            status: PortalStatus::Received,
        }
        .into(),
    )
    .await;
    // D3 (A, online, fee paid online): a paused supplement (Tue 3 to Mon 9 Mar: 4 working days)
    // moves the due date from Thu 5 to Wed 11 Mar; approved Tue 10 Mar: on time. Digitized with
    // a reused component, e-result, synced.
    desk.receive(3, "2026-03-02 09:00", A, Channel::Online, 50_000).await;
    desk.record(
        3,
        m,
        DigitizeDossier {
            occurred_at: vn("2026-03-02 09:30"),
            files: vec![FileInput {
                component: "Đơn".into(),
                content_hash: "ab".repeat(32),
            }],
            reused: vec![ReuseInput {
                component: "CCCD".into(),
                source: "CSDLQG".into(),
            }],
            result_digitized: false,
        }
        .into(),
    )
    .await;
    desk.record(
        3,
        m,
        PayOnline {
            occurred_at: vn("2026-03-02 10:00"),
            amount_vnd: 50_000,
            gateway: PaymentGateway::NationalPortal,
            transaction_ref: "TX3".into(),
        }
        .into(),
    )
    .await;
    desk.record(3, m, request("2026-03-03 09:00")).await;
    desk.record(3, m, supplied("2026-03-09 09:00")).await;
    desk.record(3, m, approve("2026-03-10 10:00")).await;
    desk.record(
        3,
        m,
        IssueEResult {
            occurred_at: vn("2026-03-10 11:00"),
            result_id: "KQ3".into(),
            content_hash: "cd".repeat(32),
            signer: "ky".into(),
        }
        .into(),
    )
    .await;
    desk.record(
        3,
        m,
        RecordNationalPortalSync {
            occurred_at: vn("2026-03-10 12:00"),
            status: PortalStatus::Processed,
        }
        .into(),
    )
    .await;
    // D4 (B, fee not paid): a second supplement request makes it overdue although approved on
    // Wed 4 Mar, before its due date.
    desk.receive(4, "2026-03-02 09:00", B, Channel::InPerson, 20_000).await;
    desk.record(4, m, request("2026-03-02 10:00")).await;
    desk.record(4, m, supplied("2026-03-02 14:00")).await;
    desk.record(4, m, request("2026-03-02 15:00")).await;
    desk.record(4, m, supplied("2026-03-02 16:00")).await;
    desk.record(4, m, approve("2026-03-04 10:00")).await;
    // D5 (B): withdrawn on Tue 3 Mar: finished, on time.
    desk.receive(5, "2026-03-02 09:00", B, Channel::InPerson, 0).await;
    desk.record(
        5,
        m,
        Withdraw {
            occurred_at: vn("2026-03-03 09:00"),
            reason: "rút".into(),
        }
        .into(),
    )
    .await;
    // D6 (B): received Mon 2 Mar; its approval on Wed 4 Mar is keyed in after the cut-off.
    desk.receive(6, "2026-03-02 09:00", B, Channel::InPerson, 0).await;
    // D7 (A): refused at intake: in no figure.
    desk.receive(7, "2026-03-02 09:00", A, Channel::Online, 0).await;
    desk.record(
        7,
        m,
        RefuseAtIntake {
            occurred_at: vn("2026-03-02 09:10"),
            reason: "sai thẩm quyền".into(),
            officer: "cb".into(),
        }
        .into(),
    )
    .await;
    // D8 (A): received and approved in February: not in March's figures.
    desk.receive(8, "2026-02-02 09:00", A, Channel::Online, 0).await;
    desk.record(8, "2026-02-02", approve("2026-02-03 09:00")).await;
    let cutoff = desk.last_recorded_at().await;
    desk.record(6, m, approve("2026-03-04 10:00")).await;
    (desk, cutoff)
}
