//! Hand-computed fixtures for every figure, and the edge cases of the on-time rule.
//!
//! Dossiers are built through the domain's own `decide` (so every history is one the service
//! could have recorded) and appended to the in-memory store, which assigns `recorded_at`.

use chrono::{DateTime, Utc};
use hoso_domain::command::*;
use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use hoso_domain::{
    ApplicantRef, BusinessCalendar, Channel, Command, Context, DossierState, GreenLane, PortalStatus, StatutoryTime,
};
use hoso_store::{EventStore, ExpectedVersion, NewEvent};

use crate::figures::{Report, report};
use crate::fixtures::*;
use crate::{Dossiers, Period};

/// A stream's whole events, read from the store (the lean model keeps only what figures read).
async fn stream_events(store: &hoso_store::MemoryStore, stream: &str) -> Vec<hoso_domain::DossierEvent> {
    let records = store
        .read_stream(stream, hoso_store::StreamRead::forward())
        .await
        .unwrap();
    records
        .iter()
        .map(|r| hoso_domain::DossierEvent::from_stored_json(&r.event_type, r.schema_version, &r.data).unwrap())
        .collect()
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
    // Every indicator's numerator and denominator give its printed rate; 13's rate is the product
    // of its two factors (1/2 digitized of synced, 2/5 synced of received), so its own ratio is
    // 1/5, never the first factor alone.
    for indicator in p.indicators() {
        if let Some(ratio) = indicator.ratio {
            assert_eq!(
                ratio.percent_hundredths(),
                indicator.rate_hundredths,
                "{}",
                indicator.code
            );
        }
    }
    let digitization = p.indicators().into_iter().find(|i| i.code == "13").unwrap();
    let ratio = digitization.ratio.unwrap();
    assert_eq!((ratio.numerator, ratio.denominator), (1, 5));
    let factors: Vec<(u64, u64)> = digitization
        .factors
        .iter()
        .map(|f| (f.ratio.numerator, f.ratio.denominator))
        .collect();
    assert_eq!(factors, [(1, 2), (2, 5)]);
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

mod properties {
    //! For random histories: the live projection (fed event by event while the log grows), a
    //! rebuild from the whole log, and a straightforward reference computation over the raw
    //! events give the same figures; and the live model's snapshot reads back as the same model.

    use std::collections::BTreeMap;

    use chrono::TimeDelta;
    use hoso_domain::{DossierEvent, Judgement};
    use proptest::prelude::*;

    use super::*;
    use crate::figures::Ratio;

    #[derive(Debug, Clone)]
    enum Step {
        Receive { agency: bool, online: bool, fee: bool },
        Digitize { reuse: bool },
        Request,
        Supply,
        Approve,
        Stop,
        Return,
        Rate { unsatisfied: bool },
        Withdraw,
        Refuse,
        Pay,
        EResult,
        Sync,
        Apology,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(agency, online, fee)| Step::Receive { agency, online, fee }),
            1 => any::<bool>().prop_map(|reuse| Step::Digitize { reuse }),
            1 => Just(Step::Request),
            1 => Just(Step::Supply),
            2 => Just(Step::Approve),
            1 => Just(Step::Stop),
            1 => Just(Step::Return),
            1 => any::<bool>().prop_map(|unsatisfied| Step::Rate { unsatisfied }),
            1 => Just(Step::Withdraw),
            1 => Just(Step::Refuse),
            1 => Just(Step::Pay),
            1 => Just(Step::EResult),
            1 => Just(Step::Sync),
            1 => Just(Step::Apology),
        ]
    }

    fn command(step: &Step, seq: u32, at: DateTime<Utc>, state: &DossierState) -> Command {
        match *step {
            Step::Receive { agency, online, fee } => ReceiveDossier {
                occurred_at: at,
                receipt_code: format!(
                    "G09.20-{}-{seq:07}",
                    hoso_domain::calendar::to_local(at).format("%Y%m%d")
                ),
                procedure: ProcedureInput::declared(
                    "1.001234",
                    "Cấp giấy phép",
                    StatutoryTime::working_days(3),
                    seq.is_multiple_of(2),
                    !seq.is_multiple_of(3),
                    if fee { 10_000 } else { 0 },
                ),
                receiving_desk: "G09.20".into(),
                handling_agency: if agency { A.into() } else { B.into() },
                channel: if online { Channel::Online } else { Channel::InPerson },
                applicant: ApplicantRef(uuid::Uuid::from_u128(u128::from(seq))),
            }
            .into(),
            Step::Digitize { reuse } => DigitizeDossier {
                occurred_at: at,
                files: vec![FileInput {
                    component: "Đơn".into(),
                    content_hash: "ab".repeat(32),
                }],
                reused: if reuse {
                    vec![ReuseInput {
                        component: "CCCD".into(),
                        source: "CSDL".into(),
                    }]
                } else {
                    vec![]
                },
                result_digitized: false,
            }
            .into(),
            Step::Request => request_at(at),
            Step::Supply => ReceiveSupplement { occurred_at: at }.into(),
            Step::Approve => ProcessDossier {
                occurred_at: at,
                step: ProcessingStep::Approved,
                officer: "cb".into(),
                to_unit: None,
                reason: None,
            }
            .into(),
            Step::Stop => ProcessDossier {
                occurred_at: at,
                step: ProcessingStep::Stopped,
                officer: "cb".into(),
                to_unit: None,
                reason: Some("thiếu".into()),
            }
            .into(),
            Step::Return => ReturnResult {
                occurred_at: at,
                method: ReturnMethod::Online,
            }
            .into(),
            Step::Rate { unsatisfied } => RateSatisfaction {
                occurred_at: at,
                rating: if unsatisfied {
                    Satisfaction::Unsatisfied
                } else {
                    Satisfaction::Satisfied
                },
            }
            .into(),
            Step::Withdraw => Withdraw {
                occurred_at: at,
                reason: "rút".into(),
            }
            .into(),
            Step::Refuse => RefuseAtIntake {
                occurred_at: at,
                reason: "sai".into(),
                officer: "cb".into(),
            }
            .into(),
            Step::Pay => PayOnline {
                occurred_at: at,
                amount_vnd: 10_000,
                gateway: PaymentGateway::Provincial,
                transaction_ref: "TX".into(),
            }
            .into(),
            Step::EResult => IssueEResult {
                occurred_at: at,
                result_id: "KQ".into(),
                content_hash: "cd".repeat(32),
                signer: "ky".into(),
            }
            .into(),
            Step::Sync => RecordNationalPortalSync {
                occurred_at: at,
                status: state.status.unwrap_or(PortalStatus::Received),
            }
            .into(),
            Step::Apology => SendApology {
                occurred_at: at,
                reason: "trễ".into(),
                new_appointment_at: state.due_at.unwrap_or(at) + TimeDelta::days(2),
                letter_number: "1/XL".into(),
            }
            .into(),
        }
    }

    fn request_at(at: DateTime<Utc>) -> Command {
        RequestSupplement {
            occurred_at: at,
            missing_components: vec!["Bản vẽ".into()],
            officer: "cb".into(),
        }
        .into()
    }

    /// What the reference computes, and what is compared.
    #[derive(Debug, PartialEq, Eq)]
    struct Summary {
        on_time: Ratio,
        overdue: Vec<String>,
        per_agency: BTreeMap<String, Ratio>,
        received: u64,
        finished: u64,
        approved: u64,
        online_payment: Ratio,
        e_result: Ratio,
        sync: Ratio,
        reuse: Ratio,
        satisfaction: Ratio,
    }

    fn summary(report: &Report) -> Summary {
        let p = &report.province;
        let mut overdue = p.on_time.overdue.clone();
        overdue.sort();
        Summary {
            on_time: p.on_time.ratio,
            overdue,
            per_agency: report
                .agencies
                .iter()
                .filter(|(_, f)| f.on_time.ratio.denominator > 0)
                .map(|(a, f)| (a.clone(), f.on_time.ratio))
                .collect(),
            received: p.received,
            finished: p.finished,
            approved: p.approved,
            online_payment: p.online_payment,
            e_result: p.e_result,
            sync: p.sync,
            reuse: p.reuse,
            satisfaction: p.satisfaction,
        }
    }

    fn tally(ratio: &mut Ratio, counted: bool) {
        ratio.denominator += 1;
        ratio.numerator += u64::from(counted);
    }

    /// The definitions of `domain.md`, applied to the raw log the plain way.
    fn reference(records: &[hoso_store::RecordedEvent], period: Period, cutoff: DateTime<Utc>) -> Summary {
        let (start, end) = (period.start_instant(), period.end_instant());
        let mut streams: BTreeMap<&str, Vec<DossierEvent>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.recorded_at <= cutoff) {
            let event = DossierEvent::from_stored(&r.event_type, r.schema_version, r.data_json().unwrap()).unwrap();
            streams.entry(&r.stream_id).or_default().push(event);
        }
        let mut s = Summary {
            on_time: Ratio::default(),
            overdue: vec![],
            per_agency: BTreeMap::new(),
            received: 0,
            finished: 0,
            approved: 0,
            online_payment: Ratio::default(),
            e_result: Ratio::default(),
            sync: Ratio::default(),
            reuse: Ratio::default(),
            satisfaction: Ratio::default(),
        };
        let inside = |t: DateTime<Utc>| start <= t && t < end;
        for (stream, events) in streams {
            let full = DossierState::fold(&events);
            let Some(receipt) = full.received.clone() else { continue };
            if events.iter().any(|e| matches!(e, DossierEvent::RefusedAtIntake(_))) {
                continue;
            }
            let finish = events.iter().find_map(|e| match e {
                DossierEvent::DossierProcessed(p)
                    if matches!(p.step, ProcessingStep::Approved | ProcessingStep::Stopped) =>
                {
                    Some(p.occurred_at)
                }
                DossierEvent::ResultReturned(r) => Some(r.occurred_at),
                DossierEvent::Withdrawn(w) => Some(w.occurred_at),
                _ => None,
            });
            let state_at = |t: DateTime<Utc>| DossierState::fold(events.iter().filter(|e| e.occurred_at() <= t));
            if receipt.occurred_at < end && finish.is_none_or(|f| f >= start) {
                let judging = finish.filter(|f| *f < end).unwrap_or(end);
                let on_time = state_at(judging).judge_on_time(judging) == Some(Judgement::OnTime);
                tally(&mut s.on_time, on_time);
                tally(
                    s.per_agency
                        .entry(receipt.handling_agency.as_str().to_owned())
                        .or_default(),
                    on_time,
                );
                if !on_time {
                    s.overdue.push(stream.trim_start_matches("dossier-").to_owned());
                }
            }
            if inside(receipt.occurred_at) {
                s.received += 1;
                if receipt.procedure.fee_vnd > 0 {
                    tally(
                        &mut s.online_payment,
                        events.iter().any(|e| matches!(e, DossierEvent::PaidOnline(_))),
                    );
                }
                tally(
                    &mut s.sync,
                    events
                        .iter()
                        .any(|e| matches!(e, DossierEvent::SyncedToNationalPortal(_))),
                );
                tally(
                    &mut s.reuse,
                    events
                        .iter()
                        .any(|e| matches!(e, DossierEvent::DossierDigitized(d) if !d.reused.is_empty())),
                );
            }
            let approved = events.iter().find_map(|e| match e {
                DossierEvent::DossierProcessed(p) if p.step == ProcessingStep::Approved => Some(p.occurred_at),
                _ => None,
            });
            if approved.is_some_and(inside) {
                s.approved += 1;
                if receipt.procedure.paper_result {
                    tally(
                        &mut s.e_result,
                        events.iter().any(|e| matches!(e, DossierEvent::EResultIssued(_))),
                    );
                }
            }
            if let Some(f) = finish.filter(|f| inside(*f)) {
                s.finished += 1;
                let late = state_at(f).judge_on_time(f) != Some(Judgement::OnTime);
                let unsatisfied = events
                    .iter()
                    .any(|e| matches!(e, DossierEvent::SatisfactionRated(r) if r.rating == Satisfaction::Unsatisfied));
                tally(&mut s.satisfaction, !late && !unsatisfied);
            }
        }
        s.overdue.sort();
        s
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn live_rebuild_and_reference_agree(
            steps in proptest::collection::vec((0u32..6, step(), 0i64..(3 * 24 * 60)), 1..60),
            start_offset in 0i64..(30 * 24 * 60),
            period_choice in 0usize..3,
            cut_choice in any::<proptest::sample::Index>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let desk = Desk::new();
                let mut live = Dossiers::new();
                let mut clocks = [vn("2026-02-20 08:00") + TimeDelta::minutes(start_offset); 6];
                for (dossier, step, advance) in &steps {
                    let seq = dossier + 1;
                    clocks[*dossier as usize] += TimeDelta::minutes(*advance);
                    let at = clocks[*dossier as usize];
                    let stream = format!("dossier-G09.20-{}-{seq:07}", hoso_domain::calendar::to_local(clocks[*dossier as usize]).format("%Y%m%d"));
                    // A dossier keeps the receipt code of its first receipt.
                    let existing = live.histories().iter().find(|h| h.receipt_code().ends_with(&format!("-{seq:07}"))).map(|h| h.stream_id.to_string());
                    let stream = existing.unwrap_or(stream);
                    // The desk decides on the dossier's whole events, read from the store.
                    let state = DossierState::fold(&stream_events(&desk.store, &stream).await);
                    let command = command(step, seq, at, &state);
                    let context = Context::new(vn("2026-11-01 12:00"), &desk.calendar, &desk.green_lane);
                    let Ok(events) = hoso_domain::decide(&state, &command, &context) else { continue };
                    let new: Vec<NewEvent> = events.iter().map(|e| NewEvent {
                        event_id: uuid::Uuid::new_v4(),
                        event_type: e.event_type().to_owned(),
                        schema_version: e.schema_version(),
                        data: hoso_store::Json::of(&e.data()).unwrap(),
                        metadata: serde_json::json!({}).into(),
                        occurred_at: e.occurred_at(),
                    }).collect();
                    let version = live.get(&stream).map(|h| h.facts.len() as u64);
                    let expected = version.map_or(ExpectedVersion::NoStream, |v| ExpectedVersion::Exact(v - 1));
                    desk.store.append(&stream, expected, new).await.unwrap();
                    live.catch_up(&desk.store, |_, _| {}).await.unwrap();
                }
                let mut rebuilt = Dossiers::new();
                rebuilt.catch_up(&desk.store, |_, _| {}).await.unwrap();
                let records = desk.store.read_all(0, usize::MAX).await.unwrap();
                let cutoff = if records.is_empty() { Utc::now() } else { records[cut_choice.index(records.len())].recorded_at };
                let period = [Period::month("2026-02").unwrap(), Period::month("2026-03").unwrap(), Period::new(chrono::NaiveDate::from_ymd_opt(2026, 2, 25).unwrap(), chrono::NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()).unwrap()][period_choice];
                let from_live = report(&live, period, cutoff);
                let from_rebuild = report(&rebuilt, period, cutoff);
                prop_assert_eq!(&from_live, &from_rebuild);
                // A snapshot of the live model reads back as the model, and as the rebuild.
                let loaded = Dossiers::decode_snapshot(&live.encode_snapshot(uuid::Uuid::nil()), uuid::Uuid::nil()).unwrap();
                prop_assert_eq!(&loaded, &live);
                prop_assert_eq!(&loaded, &rebuilt);
                for (h, l) in loaded.histories().iter().zip(live.histories()) {
                    prop_assert_eq!(loaded.state(h), live.state(l));
                }
                prop_assert_eq!(summary(&from_live), reference(&records, period, cutoff));
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn the_list_filters_and_orders_and_the_board_shows_open_green_lane_dossiers() {
    use crate::list::{Filter, Order, green_lane_board, list};
    use hoso_domain::DeadlineState;
    let mut desk = Desk::new();
    desk.green_lane = GreenLane::new().with(
        hoso_domain::ProcedureCode::parse("procedure", "1.001234").unwrap(),
        StatutoryTime::working_days(1),
    );
    desk.receive(1, "2026-03-02 09:00", A, Channel::Online, 0).await;
    desk.receive(2, "2026-03-03 09:00", B, Channel::InPerson, 0).await;
    desk.receive(3, "2026-03-04 09:00", A, Channel::InPerson, 0).await;
    desk.record(3, "2026-03-04", approve("2026-03-04 10:00")).await;
    let mut dossiers = Dossiers::new();
    dossiers.catch_up(&desk.store, |_, _| {}).await.unwrap();
    let calendar = BusinessCalendar::vietnam();
    // Wed 4 Mar 12:00: D1 (due Tue 3 Mar 17:00) is overdue; D2 is due Wed 4 Mar 17:00: due soon.
    let now = vn("2026-03-04 12:00");
    let codes = |rows: Vec<crate::list::Row>| rows.into_iter().map(|r| r.receipt_code).collect::<Vec<_>>();
    let all = list(&dossiers, &Filter::default(), Order::NewestFirst, now, &calendar).unwrap();
    assert_eq!(
        codes(all),
        [
            "G09.20-20260304-0000003",
            "G09.20-20260303-0000002",
            "G09.20-20260302-0000001"
        ]
    );
    let overdue = Filter {
        deadline: Some(DeadlineState::Overdue),
        ..Filter::default()
    };
    assert_eq!(
        codes(list(&dossiers, &overdue, Order::DueFirst, now, &calendar).unwrap()),
        ["G09.20-20260302-0000001"]
    );
    let of_a = Filter {
        handling_agency: Some(A.to_owned()),
        channel: Some(Channel::InPerson),
        ..Filter::default()
    };
    assert_eq!(
        codes(list(&dossiers, &of_a, Order::DueFirst, now, &calendar).unwrap()),
        ["G09.20-20260304-0000003"]
    );
    let board = green_lane_board(&dossiers, now, &calendar).unwrap();
    assert_eq!(
        board
            .iter()
            .map(|r| (r.receipt_code.as_str(), r.deadline))
            .collect::<Vec<_>>(),
        [
            ("G09.20-20260302-0000001", DeadlineState::Overdue),
            ("G09.20-20260303-0000002", DeadlineState::DueSoon),
        ]
    );
    assert_eq!(
        board[1].remaining_working_time,
        Some(chrono::TimeDelta::hours(4)),
        "13:00-17:00 left"
    );
}
