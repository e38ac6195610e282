//! Test support shared by the modules' tests: Vietnam local times, command fixtures, and the
//! crate-wide property tests of decide and evolve.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use proptest::strategy::Strategy;
use uuid::Uuid;

use crate::calendar::{from_local, to_local};
use crate::codes::ApplicantRef;
use crate::command::*;
use crate::dossier::{Channel, PortalStatus};
use crate::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use crate::procedure::StatutoryTime;

/// A local instant in the first `days` days from 2025-01-01, at minute resolution.
pub(crate) fn instant_from_2025(days: i64) -> impl Strategy<Value = DateTime<Utc>> {
    let start = NaiveDate::from_ymd_opt(2025, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    (0i64..(days * 24 * 60)).prop_map(move |minutes| from_local(start + TimeDelta::minutes(minutes)))
}

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
        procedure: ProcedureInput::declared(
            "1.001234",
            "Đăng ký khai sinh",
            StatutoryTime::working_days(3),
            true,
            true,
            50_000,
        ),
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
    ProcessDossier {
        occurred_at: vn(at),
        step,
        officer: "cb.nguyen".into(),
        to_unit,
        reason,
    }
    .into()
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
    ReturnResult {
        occurred_at: vn(at),
        method: ReturnMethod::AtDesk,
    }
    .into()
}

pub(crate) fn rate(at: &str) -> Command {
    RateSatisfaction {
        occurred_at: vn(at),
        rating: Satisfaction::Satisfied,
    }
    .into()
}

pub(crate) fn sync(at: &str) -> Command {
    RecordNationalPortalSync {
        occurred_at: vn(at),
        status: PortalStatus::ResultReturned,
    }
    .into()
}

pub(crate) fn withdraw(at: &str) -> Command {
    Withdraw {
        occurred_at: vn(at),
        reason: "không có nhu cầu".into(),
    }
    .into()
}

pub(crate) fn refuse(at: &str) -> Command {
    RefuseAtIntake {
        occurred_at: vn(at),
        reason: "sai thủ tục".into(),
        officer: "cb.tran".into(),
    }
    .into()
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
        files: vec![FileInput {
            component: "Tờ khai".into(),
            content_hash: HASH.into(),
        }],
        reused: vec![ReuseInput {
            component: "CCCD".into(),
            source: "CSDL quốc gia về dân cư".into(),
        }],
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
        let events =
            crate::decide(&state, &command, &ctx).unwrap_or_else(|err| panic!("{command:?} was rejected: {err}"));
        state = events.iter().fold(state, crate::evolve);
    }
    state
}

/// Property tests over random command sequences: accepted commands fold to the state their events
/// fold to (also after a trip through the codec), and no accepted sequence breaks a rule, as
/// checked by an oracle written independently of `decide`.
mod properties {
    use chrono::{TimeDelta, Timelike};
    use proptest::prelude::*;

    use super::*;
    use crate::calendar::BusinessCalendar;
    use crate::event::{DossierEvent, ProcessingStep};
    use crate::procedure::{GreenLane, TimeUnit};
    use crate::{Context, DossierState, decide, evolve};

    /// One random command: its kind, minutes after the previous one (may be negative), a byte of
    /// variation.
    type Step = (u8, i64, u8);

    fn command(kind: u8, at: DateTime<Utc>, variant: u8, due: DateTime<Utc>) -> Command {
        let at_s = to_local(at).format("%Y-%m-%d %H:%M").to_string();
        let at_s = at_s.as_str();
        let steps = [
            ProcessingStep::Transferred,
            ProcessingStep::Appraised,
            ProcessingStep::Approved,
            ProcessingStep::Stopped,
        ];
        match kind {
            0 => receive_at(at_s).into(),
            1 => digitize(at_s, variant.is_multiple_of(3)),
            2 | 3 => step(at_s, steps[usize::from(variant % 4)]),
            4 => e_result(at_s),
            5 => pay(at_s, i64::from(variant) * 1_000 - 10_000),
            6 => {
                let appointment = due + TimeDelta::hours(i64::from(variant) - 24);
                let appointment = to_local(appointment).format("%Y-%m-%d %H:%M").to_string();
                apology(at_s, &appointment)
            }
            7 => request_supplement(at_s),
            8 => receive_supplement(at_s),
            9 => return_result(at_s),
            10 => rate(at_s),
            11 => withdraw(at_s),
            12 => refuse(at_s),
            _ => sync(at_s),
        }
    }

    fn statutory_time() -> impl Strategy<Value = StatutoryTime> {
        (1u32..=10, 0u8..3).prop_map(|(amount, unit)| StatutoryTime {
            amount,
            unit: [TimeUnit::WorkingDays, TimeUnit::WorkingHours, TimeUnit::CalendarDays][usize::from(unit)],
        })
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        // Kinds 2-3 (processing) are twice as likely: they move the lifecycle forward.
        proptest::collection::vec((0u8..14, -120i64..4000, any::<u8>()), 0..24)
    }

    /// Checks the rules over an accepted event sequence, independently of `decide`.
    fn check_rules(
        events: &[DossierEvent],
        calendar: &BusinessCalendar,
        now: DateTime<Utc>,
    ) -> Result<(), TestCaseError> {
        let DossierEvent::DossierReceived(received) = &events[0] else {
            return Err(TestCaseError::fail("the first event is not a receipt"));
        };
        let mut due = received.due_at;
        let mut previous_at = received.occurred_at;
        let (mut approved, mut finished, mut e_result, mut processed, mut rated) = (false, false, false, false, false);
        let mut closed_by: Option<&str> = None;
        let mut waiting = false;
        let mut paid = 0;
        let mut promised = due;
        for event in events {
            let at = event.occurred_at();
            prop_assert!(at >= previous_at && at <= now + TimeDelta::minutes(5), "{event:?}");
            previous_at = at;
            if let Some(closer) = closed_by {
                let allowed = matches!(event, DossierEvent::SyncedToNationalPortal(_))
                    || (matches!(event, DossierEvent::SatisfactionRated(_)) && closer == "ResultReturned");
                prop_assert!(allowed, "{event:?} after {closer}");
            }
            match event {
                DossierEvent::DossierReceived(_) => prop_assert!(std::ptr::eq(event, &events[0]), "second receipt"),
                DossierEvent::DossierProcessed(e) => {
                    prop_assert!(!finished && !waiting, "{e:?}");
                    processed = true;
                    approved |= e.step == ProcessingStep::Approved;
                    finished |= matches!(e.step, ProcessingStep::Approved | ProcessingStep::Stopped);
                }
                DossierEvent::DossierDigitized(e) => prop_assert!(!e.result_digitized || approved),
                DossierEvent::EResultIssued(_) => {
                    prop_assert!(approved && !e_result);
                    e_result = true;
                }
                DossierEvent::PaidOnline(e) => {
                    paid += e.amount_vnd;
                    prop_assert!(e.amount_vnd > 0 && paid <= received.procedure.fee_vnd);
                }
                DossierEvent::ApologySent(e) => {
                    prop_assert!(!finished && e.new_appointment_at > promised.max(due));
                    promised = e.new_appointment_at;
                }
                DossierEvent::SupplementRequested(_) => {
                    prop_assert!(!finished && !waiting);
                    waiting = true;
                }
                DossierEvent::SupplementReceived(e) => {
                    prop_assert!(waiting && e.due_at >= due, "due moved earlier: {e:?}");
                    waiting = false;
                    due = e.due_at;
                }
                DossierEvent::ResultReturned(_) => prop_assert!(finished),
                DossierEvent::SatisfactionRated(_) => {
                    prop_assert!(closed_by == Some("ResultReturned") && !rated);
                    rated = true;
                }
                DossierEvent::RefusedAtIntake(_) => prop_assert!(!processed),
                DossierEvent::Withdrawn(_) | DossierEvent::SyncedToNationalPortal(_) => {}
            }
            if matches!(
                event,
                DossierEvent::ResultReturned(_) | DossierEvent::Withdrawn(_) | DossierEvent::RefusedAtIntake(_)
            ) {
                closed_by.get_or_insert(event.event_type());
            }
            // Due dates are always in working time; day-based ones at the close.
            let local = to_local(due);
            prop_assert!(
                calendar.is_working_day(local.date()).unwrap(),
                "due on a day off: {local}"
            );
            if received.effective_time.unit != TimeUnit::WorkingHours {
                prop_assert_eq!((local.hour(), local.minute()), (17, 0));
            }
        }
        Ok(())
    }

    struct Run {
        commands: Vec<Command>,
        events: Vec<DossierEvent>,
        state: DossierState,
        n_rejected: usize,
    }

    /// Receives a dossier, then decides each random step at [`NOW`], folding what is accepted.
    fn simulate(received_at: DateTime<Utc>, time: StatutoryTime, fee: i64, steps: Vec<Step>) -> Run {
        let calendar = BusinessCalendar::vietnam();
        let green_lane = GreenLane::new();
        let ctx = Context::new(vn(NOW), &calendar, &green_lane);
        let mut first = receive_at(&to_local(received_at).format("%Y-%m-%d %H:%M").to_string());
        first.procedure.statutory_time = Some(time);
        first.procedure.fee_vnd = Some(fee);
        let mut commands = vec![Command::from(first)];
        let mut at = received_at;
        let mut state = DossierState::new();
        let mut events: Vec<DossierEvent> = Vec::new();
        let mut n_rejected = 0;
        for (i, (kind, gap, variant)) in std::iter::once((0, 0, 0)).chain(steps).enumerate() {
            at += TimeDelta::minutes(gap);
            if i > 0 {
                commands.push(command(kind, at, variant, state.due_at.unwrap_or(at)));
            }
            match decide(&state, commands.last().unwrap(), &ctx) {
                Ok(new_events) => {
                    assert_eq!(new_events.len(), 1);
                    state = new_events.iter().fold(state, evolve);
                    events.extend(new_events);
                }
                Err(_) => n_rejected += 1,
            }
        }
        Run {
            commands,
            events,
            state,
            n_rejected,
        }
    }

    fn run_inputs() -> impl Strategy<Value = (DateTime<Utc>, StatutoryTime, i64, Vec<Step>)> {
        (
            instant_from_2025(640),
            statutory_time(),
            prop_oneof![Just(0i64), Just(50_000i64)],
            steps(),
        )
    }

    /// Guards the property test against vacuity: its generator reaches every event type and
    /// many rejections.
    #[test]
    fn the_generator_reaches_every_event_type() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
        let mut runner = TestRunner::new_with_rng(Config::default(), rng);
        let mut seen = std::collections::BTreeSet::new();
        let mut n_rejected = 0;
        for _ in 0..300 {
            let (received_at, time, fee, steps) = run_inputs().new_tree(&mut runner).unwrap().current();
            let run = simulate(received_at, time, fee, steps);
            seen.extend(run.events.iter().map(DossierEvent::event_type));
            n_rejected += run.n_rejected;
        }
        let all: std::collections::BTreeSet<&str> = crate::event::EVENT_TYPES.iter().map(|(name, _)| *name).collect();
        assert_eq!(seen, all);
        assert!(n_rejected > 300, "{n_rejected}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn accepted_commands_fold_to_their_events_and_keep_the_rules(
            (received_at, time, fee, steps) in run_inputs(),
        ) {
            let calendar = BusinessCalendar::vietnam();
            let now = vn(NOW);
            let Run { commands, events, state, n_rejected } = simulate(received_at, time, fee, steps);
            prop_assert!(!events.is_empty(), "the receipt is always accepted");
            prop_assert_eq!(&state, &DossierState::fold(&events));
            let decoded: Vec<DossierEvent> = events
                .iter()
                .map(|e| DossierEvent::from_stored(e.event_type(), e.schema_version(), e.to_json()).unwrap())
                .collect();
            prop_assert_eq!(&state, &DossierState::fold(&decoded));
            check_rules(&events, &calendar, now)?;
            prop_assert_eq!(events.len() + n_rejected, commands.len());
        }
    }
}

/// Tidy: every source file opens with a module doc comment (docs/style.md rule 29).
#[test]
fn every_source_file_starts_with_a_module_doc() {
    fn visit(dir: &std::path::Path, n_files: &mut usize) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, n_files);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                *n_files += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(text.starts_with("//!"), "{} does not start with //!", path.display());
            }
        }
    }
    let mut n_files = 0;
    visit(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut n_files,
    );
    assert!(n_files >= 20, "{n_files}");
}
