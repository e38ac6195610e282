//! Hand-computed fixtures for every figure, and the edge cases of the on-time rule.
//!
//! Dossiers are built through the domain's own `decide` (so every history is one the service
//! could have recorded) and appended to the in-memory store, which assigns `recorded_at`.

use chrono::{DateTime, NaiveDateTime, Utc};
use hoso_domain::command::*;
use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use hoso_domain::{
    ApplicantRef, BusinessCalendar, Channel, Command, Context, DossierState, GreenLane, PortalStatus, StatutoryTime,
};
use hoso_store::{EventStore, ExpectedVersion, MemoryStore, NewEvent, StreamRead};

use crate::figures::{Report, report};
use crate::{Dossiers, Period};

const A: &str = "000.00.04.G18";
const B: &str = "000.00.05.G18";

fn vn(s: &str) -> DateTime<Utc> {
    hoso_domain::calendar::from_local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

struct Desk {
    store: MemoryStore,
    calendar: BusinessCalendar,
    green_lane: GreenLane,
}

impl Desk {
    fn new() -> Desk {
        Desk {
            store: MemoryStore::new(),
            calendar: BusinessCalendar::vietnam(),
            green_lane: GreenLane::new(),
        }
    }

    /// Decides `command` on dossier `seq` and appends its events.
    async fn record(&self, seq: u32, received_on: &str, command: Command) {
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
                data: e.to_json(),
                metadata: serde_json::json!({}),
                occurred_at: e.occurred_at(),
            })
            .collect();
        let expected = records
            .last()
            .map_or(ExpectedVersion::NoStream, |r| ExpectedVersion::Exact(r.version));
        self.store.append(&stream, expected, new).await.unwrap();
    }

    async fn receive(&self, seq: u32, at: &str, agency: &str, channel: Channel, fee_vnd: i64) {
        let command = ReceiveDossier {
            occurred_at: vn(at),
            receipt_code: format!("G09.20-{}-{seq:07}", at[..10].replace('-', "")),
            procedure: ProcedureInput {
                code: "1.001234".into(),
                name: "Cấp giấy phép".into(),
                statutory_time: StatutoryTime::working_days(3),
                full_online_eligible: true,
                paper_result: true,
                fee_vnd,
            },
            receiving_desk: "G09.20".into(),
            handling_agency: agency.into(),
            channel,
            applicant: ApplicantRef(uuid::Uuid::from_u128(u128::from(seq))),
        };
        self.record(seq, &at[..10], command.into()).await;
    }

    async fn report(&self, period: Period, cutoff: DateTime<Utc>) -> Report {
        let mut dossiers = Dossiers::new();
        dossiers.catch_up(&self.store, |_, _| {}).await.unwrap();
        report(&dossiers, period, cutoff)
    }

    async fn last_recorded_at(&self) -> DateTime<Utc> {
        let head = self.store.head();
        self.store.read_all(head - 1, 1).await.unwrap()[0].recorded_at
    }
}

fn approve(at: &str) -> Command {
    ProcessDossier {
        occurred_at: vn(at),
        step: ProcessingStep::Approved,
        officer: "cb".into(),
        to_unit: None,
        reason: None,
    }
    .into()
}

fn request(at: &str) -> Command {
    RequestSupplement {
        occurred_at: vn(at),
        missing_components: vec!["Bản vẽ".into()],
        officer: "cb".into(),
    }
    .into()
}

fn supplied(at: &str) -> Command {
    ReceiveSupplement { occurred_at: vn(at) }.into()
}

/// The March 2026 province, as in the module docs of each dossier below.
async fn march() -> (Desk, DateTime<Utc>) {
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

#[tokio::test]
async fn march_figures_match_the_hand_computed_ones() {
    let (desk, cutoff) = march().await;
    let period = Period::month("2026-03").unwrap();
    let r = desk.report(period, cutoff).await;
    let p = &r.province;
    // On time: D1, D3, D5 of D1-D6.
    assert_eq!((p.on_time.ratio.numerator, p.on_time.ratio.denominator), (3, 6));
    assert_eq!(
        p.on_time.overdue,
        [
            "G09.20-20260302-0000002",
            "G09.20-20260302-0000004",
            "G09.20-20260302-0000006"
        ]
    );
    assert_eq!(p.on_time.ratio.percent_text(), "50.00%");
    assert_eq!((p.received, p.finished, p.approved), (5, 4, 3));
    assert_eq!((p.online_submission.numerator, p.online_submission.denominator), (2, 5));
    assert_eq!((p.full_online.numerator, p.full_online.denominator), (2, 5));
    assert_eq!((p.online_payment.numerator, p.online_payment.denominator), (1, 2));
    assert_eq!((p.e_result.numerator, p.e_result.denominator), (1, 3));
    assert_eq!((p.sync.numerator, p.sync.denominator), (2, 5));
    assert_eq!(
        (p.digitized_of_synced.numerator, p.digitized_of_synced.denominator),
        (1, 2)
    );
    assert_eq!((p.reuse.numerator, p.reuse.denominator), (1, 5));
    // Finished: D1 (unsatisfied), D3, D4 (late), D5.
    assert_eq!((p.satisfaction.numerator, p.satisfaction.denominator), (2, 4));
    assert_eq!(p.apologies.sent, 1);
    assert_eq!(p.apologies.overdue_without_letter, 2, "D4 and D6");
    assert_eq!(p.apologies.promises_kept.denominator, 0);
    assert_eq!(p.apologies.promises_kept.percent_text(), "no dossiers");

    let a = &r.agencies[A];
    assert_eq!((a.on_time.ratio.numerator, a.on_time.ratio.denominator), (2, 3));
    let b = &r.agencies[B];
    assert_eq!((b.on_time.ratio.numerator, b.on_time.ratio.denominator), (1, 3));
    assert_eq!(r.procedures["1.001234"].ratio.denominator, 6);

    let points: Vec<(&str, Option<String>, Option<String>)> = p
        .indicators()
        .iter()
        .map(|i| {
            (
                i.code,
                i.rate_hundredths.map(crate::figures::hundredths_text),
                i.points_hundredths.map(crate::figures::hundredths_text),
            )
        })
        .collect();
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        points,
        [
            ("1", None, None),
            ("2", s("50.00"), s("10.00")),
            ("4", s("40.00"), s("2.40")),
            ("5", None, None),
            ("7", s("40.00"), None),
            ("7.3", s("40.00"), None),
            ("8.4", s("50.00"), s("3.00")),
            ("10", s("50.00"), s("3.33")),
            ("12", s("33.33"), s("2.00")),
            ("13", s("20.00"), s("0.80")),
            ("14", s("20.00"), s("0.50")),
        ]
    );
}

#[tokio::test]
async fn a_back_dated_event_recorded_after_the_cut_off_changes_nothing_until_the_cut_off_moves() {
    let (desk, cutoff) = march().await;
    let period = Period::month("2026-03").unwrap();
    let before = desk.report(period, cutoff).await;
    let again = desk.report(period, cutoff).await;
    assert_eq!(before, again, "the same log and cut-off give the same report");
    let later = desk.report(period, desk.last_recorded_at().await).await;
    assert_eq!(
        (
            later.province.on_time.ratio.numerator,
            later.province.on_time.ratio.denominator
        ),
        (4, 6)
    );
    assert_eq!(later.province.approved, 4);
    assert_ne!(before, later);
}

#[tokio::test]
async fn a_period_across_tet_counts_only_working_days() {
    let desk = Desk::new();
    // Received Fri 13 Feb 2026; Tết is 16-20 Feb: 3 working days end Wed 25 Feb 17:00.
    desk.receive(1, "2026-02-13 09:00", A, Channel::Online, 0).await;
    desk.record(1, "2026-02-13", approve("2026-02-25 16:00")).await;
    desk.receive(2, "2026-02-13 09:00", A, Channel::Online, 0).await;
    desk.record(2, "2026-02-13", approve("2026-02-26 09:00")).await;
    let cutoff = desk.last_recorded_at().await;
    let r = desk.report(Period::month("2026-02").unwrap(), cutoff).await;
    assert_eq!(r.province.on_time.overdue, ["G09.20-20260213-0000002"]);
    assert_eq!(r.judged[0].due_at, vn("2026-02-25 17:00"));
}

#[test]
fn months_and_their_previous_month() {
    let p = Period::month("2026-03").unwrap();
    assert_eq!(p.start_instant(), vn("2026-03-01 00:00"));
    assert_eq!(p.end_instant(), vn("2026-04-01 00:00"));
    assert_eq!(p.previous(), Period::month("2026-02").unwrap());
    assert_eq!(
        Period::month("2026-01").unwrap().previous(),
        Period::month("2025-12").unwrap()
    );
    assert!(Period::month("2026-13").is_err());
}

#[test]
fn rounding_is_half_away_from_zero_from_the_integers() {
    let ratio = |numerator, denominator| crate::figures::Ratio { numerator, denominator };
    assert_eq!(ratio(1, 8).percent_text(), "12.50%");
    assert_eq!(ratio(2, 3).percent_text(), "66.67%");
    assert_eq!(ratio(1, 3).percent_text(), "33.33%");
    assert_eq!(ratio(1, 80_000).percent_text(), "0.00%");
    assert_eq!(ratio(1, 20_000).percent_text(), "0.01%", "0.005% rounds away from zero");
    assert_eq!(ratio(0, 0).percent_text(), "no dossiers");
}
