//! Tests for the deadline view and the on-time judgement. The dossier is received Monday
//! 8/6/2026 09:00 with 3 working days: due Thursday 11/6/2026 17:00.

use chrono::TimeDelta;

use crate::calendar::BusinessCalendar;
use crate::deadline::{DeadlineState, Judgement};
use crate::event::ProcessingStep;
use crate::tests::*;

fn hours(h: i64) -> Option<TimeDelta> {
    Some(TimeDelta::hours(h))
}

#[test]
fn the_view_of_an_open_dossier() {
    let calendar = BusinessCalendar::vietnam();
    let state = fold_commands([receive()]);
    #[rustfmt::skip]
    let cases = [
        ("2026-06-08 10:00", DeadlineState::OnTime,  hours(30)),
        ("2026-06-09 17:00", DeadlineState::OnTime,  hours(16)), // Next working day closes before the due date.
        ("2026-06-10 10:00", DeadlineState::DueSoon, hours(14)), // Due by the close of the next working day.
        ("2026-06-11 16:00", DeadlineState::DueSoon, hours(1)),
        ("2026-06-11 17:00", DeadlineState::DueSoon, hours(0)),
        ("2026-06-12 09:00", DeadlineState::Overdue, hours(-1)),
        ("2026-06-15 12:30", DeadlineState::Overdue, hours(-12)),
    ];
    for (at, expected, remaining) in cases {
        let view = state.deadline_at(vn(at), &calendar).unwrap().unwrap();
        assert_eq!(
            (view.state, view.remaining_working_time),
            (expected, remaining),
            "at {at}"
        );
        assert_eq!(view.due_at, vn("2026-06-11 17:00"));
    }
}

#[test]
fn the_view_while_waiting_for_the_applicant_is_paused() {
    let calendar = BusinessCalendar::vietnam();
    let waiting = fold_commands([receive(), request_supplement("2026-06-10 10:00")]);
    let view = waiting.deadline_at(vn("2026-06-22 10:00"), &calendar).unwrap().unwrap();
    assert_eq!(
        (view.state, view.remaining_working_time),
        (DeadlineState::OnTime, hours(14))
    );
    let asked_late = fold_commands([receive(), request_supplement("2026-06-12 10:00")]);
    let view = asked_late
        .deadline_at(vn("2026-06-22 10:00"), &calendar)
        .unwrap()
        .unwrap();
    assert_eq!(
        (view.state, view.remaining_working_time),
        (DeadlineState::Overdue, hours(-2))
    );
}

#[test]
fn a_second_supplement_request_makes_the_dossier_overdue() {
    let calendar = BusinessCalendar::vietnam();
    let twice = [
        receive(),
        request_supplement("2026-06-08 10:00"),
        receive_supplement("2026-06-08 11:00"),
        request_supplement("2026-06-08 14:00"),
        receive_supplement("2026-06-08 15:00"),
    ];
    let state = fold_commands(twice.clone());
    let view = state.deadline_at(vn("2026-06-08 16:00"), &calendar).unwrap().unwrap();
    assert_eq!(view.state, DeadlineState::Overdue);
    assert_eq!(state.judge_on_time(vn("2026-06-08 16:00")), Some(Judgement::Overdue));
    let finished = fold_commands(twice.into_iter().chain([approve("2026-06-09 09:00")]));
    let view = finished
        .deadline_at(vn("2026-06-09 10:00"), &calendar)
        .unwrap()
        .unwrap();
    assert_eq!(
        (view.state, view.remaining_working_time),
        (DeadlineState::FinishedLate, None)
    );
}

#[test]
fn finished_dossiers_are_on_time_or_late() {
    let calendar = BusinessCalendar::vietnam();
    let cases = [
        (approve("2026-06-11 16:59"), DeadlineState::FinishedOnTime),
        (approve("2026-06-11 17:00"), DeadlineState::FinishedOnTime),
        (approve("2026-06-12 08:01"), DeadlineState::FinishedLate),
        (
            step("2026-06-10 08:00", ProcessingStep::Stopped),
            DeadlineState::FinishedOnTime,
        ),
        (withdraw("2026-06-15 08:00"), DeadlineState::FinishedLate),
    ];
    for (finish, expected) in cases {
        let state = fold_commands([receive(), finish.clone()]);
        let view = state.deadline_at(vn("2026-06-20 10:00"), &calendar).unwrap().unwrap();
        assert_eq!(
            (view.state, view.remaining_working_time),
            (expected, None),
            "{finish:?}"
        );
    }
}

#[test]
fn no_view_without_a_receipt_or_after_a_refusal() {
    let calendar = BusinessCalendar::vietnam();
    let nothing = fold_commands([]);
    assert_eq!(nothing.deadline_at(vn("2026-06-08 10:00"), &calendar), Ok(None));
    assert_eq!(nothing.judge_on_time(vn("2026-06-08 10:00")), None);
    let refused = fold_commands([receive(), refuse("2026-06-08 09:30")]);
    assert_eq!(refused.deadline_at(vn("2026-06-08 10:00"), &calendar), Ok(None));
    assert_eq!(refused.judge_on_time(vn("2026-06-30 00:00")), None);
}

#[test]
fn the_view_needs_the_calendar_of_the_instant() {
    let calendar = BusinessCalendar::vietnam();
    let state = fold_commands([receive()]);
    // 2027 has no notice: its provisional table is used.
    let due = vn("2026-06-11 17:00");
    let late_by = calendar.office_time_between(due, vn("2027-01-05 10:00")).unwrap();
    let view = state.deadline_at(vn("2027-01-05 10:00"), &calendar).unwrap().unwrap();
    assert_eq!(
        (view.state, view.remaining_working_time),
        (DeadlineState::Overdue, Some(-late_by))
    );
    // A year outside the provisional range needs a notice.
    assert_eq!(
        state.deadline_at(vn("2200-01-05 10:00"), &calendar),
        Err(crate::CalendarError::YearNotLoaded { year: 2200 })
    );
}

#[test]
fn the_on_time_judgement() {
    use Judgement::{OnTime, Overdue};
    let received = || receive();
    #[rustfmt::skip]
    let cases: Vec<(Vec<crate::command::Command>, &str, Option<Judgement>)> = vec![
        // Finished: finish <= due.
        (vec![received(), approve("2026-06-11 17:00")], "2026-07-01 00:00", Some(OnTime)),
        (vec![received(), approve("2026-06-12 09:00")], "2026-07-01 00:00", Some(Overdue)),
        (vec![received(), approve("2026-06-10 09:00"), return_result("2026-06-15 09:00")], "2026-07-01 00:00", Some(OnTime)),
        // Unfinished: judged at the instant.
        (vec![received()], "2026-06-11 17:00", Some(OnTime)),
        (vec![received()], "2026-07-01 00:00", Some(Overdue)),
        // A finish after the judging instant is not yet a finish.
        (vec![received(), approve("2026-06-12 09:00")], "2026-06-10 00:00", Some(OnTime)),
        // Waiting for the applicant: on time if asked on or before the due date.
        (vec![received(), request_supplement("2026-06-11 16:00")], "2026-07-01 00:00", Some(OnTime)),
        (vec![received(), request_supplement("2026-06-12 08:30")], "2026-07-01 00:00", Some(Overdue)),
        // Supplement time does not count: due moved from Thu 11/6 to Mon 15/6.
        (vec![received(), request_supplement("2026-06-09 10:00"), receive_supplement("2026-06-11 09:00"), approve("2026-06-15 16:00")], "2026-07-01 00:00", Some(OnTime)),
        // An apology letter does not move the due date.
        (vec![received(), apology("2026-06-10 10:00", "2026-06-16 17:00"), approve("2026-06-12 09:00")], "2026-07-01 00:00", Some(Overdue)),
        // Withdrawn counts as finished.
        (vec![received(), withdraw("2026-06-09 09:00")], "2026-07-01 00:00", Some(OnTime)),
        (vec![received(), withdraw("2026-06-12 09:00")], "2026-07-01 00:00", Some(Overdue)),
        // Withdrawn while waiting for the applicant: judged as waiting at the withdrawal.
        (vec![received(), request_supplement("2026-06-11 16:00"), withdraw("2026-06-20 10:00")], "2026-07-01 00:00", Some(OnTime)),
        (vec![received(), request_supplement("2026-06-12 08:30"), withdraw("2026-06-20 10:00")], "2026-07-01 00:00", Some(Overdue)),
        // Withdrawn after the supplement came back: an ordinary finish.
        (vec![received(), request_supplement("2026-06-09 10:00"), receive_supplement("2026-06-11 09:00"), withdraw("2026-06-20 10:00")], "2026-07-01 00:00", Some(Overdue)),
    ];
    for (commands, at, expected) in cases {
        let state = fold_commands(commands.clone());
        assert_eq!(state.judge_on_time(vn(at)), expected, "{commands:?} judged at {at}");
    }
}

#[test]
fn apology_promises_are_tracked_on_their_own() {
    let kept = fold_commands([
        receive(),
        apology("2026-06-10 10:00", "2026-06-16 17:00"),
        approve("2026-06-16 09:00"),
    ]);
    assert_eq!(kept.apology_kept(), Some(true));
    let broken = fold_commands([
        receive(),
        apology("2026-06-10 10:00", "2026-06-16 17:00"),
        approve("2026-06-17 09:00"),
    ]);
    assert_eq!(broken.apology_kept(), Some(false));
    assert_eq!(
        fold_commands([receive(), apology("2026-06-10 10:00", "2026-06-16 17:00")]).apology_kept(),
        None
    );
    assert_eq!(
        fold_commands([receive(), approve("2026-06-17 09:00")]).apology_kept(),
        None
    );
}

/// Given the commands accepted, when the dossier is judged at an instant, then this judgement and
/// deadline view.
fn check_judged(given: impl IntoIterator<Item = crate::command::Command>, when: &str, expect: expect_test::Expect) {
    let state = fold_commands(given);
    let judgement = state.judge_on_time(vn(when));
    let view = state
        .deadline_at(vn(when), &BusinessCalendar::vietnam())
        .unwrap()
        .map(|view| view.state);
    expect.assert_eq(&format!("{judgement:?} {view:?}\n"));
}

#[test]
fn a_dossier_withdrawn_while_waiting_for_the_applicant_is_judged_as_still_waiting() {
    // Due Thursday 11/6 17:00; asked for papers on the due date, withdrawn long after it.
    check_judged(
        [
            receive(),
            request_supplement("2026-06-11 16:00"),
            withdraw("2026-06-25 10:00"),
        ],
        "2026-07-01 00:00",
        expect_test::expect![[r#"
            Some(OnTime) Some(FinishedOnTime)
        "#]],
    );
    // Asked after the due date had passed: overdue at the request already.
    check_judged(
        [
            receive(),
            request_supplement("2026-06-12 08:30"),
            withdraw("2026-06-25 10:00"),
        ],
        "2026-07-01 00:00",
        expect_test::expect![[r#"
            Some(Overdue) Some(FinishedLate)
        "#]],
    );
}
