//! Tests for [`evolve`]: the portal status and the facts folded from events.

use crate::event::ProcessingStep;
use crate::tests::*;

use super::*;

#[test]
fn the_portal_status_follows_the_lifecycle() {
    let commands = vec![
        receive(),
        step("2026-06-08 10:00", ProcessingStep::Transferred),
        request_supplement("2026-06-09 10:00"),
        receive_supplement("2026-06-10 10:00"),
        step("2026-06-10 11:00", ProcessingStep::Appraised),
        approve("2026-06-11 09:00"),
        e_result("2026-06-11 10:00"),
        return_result("2026-06-11 11:00"),
        rate("2026-06-11 11:05"),
        sync("2026-06-11 11:10"),
    ];
    let codes: Vec<u8> = (1..=commands.len())
        .map(|n| fold_commands(commands[..n].iter().cloned()).status.unwrap().code())
        .collect();
    assert_eq!(codes, [2, 4, 5, 4, 4, 9, 9, 10, 10, 10]);
    let state = fold_commands(commands);
    assert_eq!(state.n_supplement_requests, 1);
    assert_eq!(state.supplement_requested_at, None);
    // Due Thu 11/6 17:00, moved one working day (Tue 9/6) by the pause.
    assert_eq!(state.due_at, Some(vn("2026-06-12 17:00")));
    assert_eq!(state.finished_at(), Some(vn("2026-06-11 09:00")));
    assert_eq!(
        (state.rating, state.n_syncs, state.synced_status),
        (
            Some(crate::event::Satisfaction::Satisfied),
            1,
            Some(PortalStatus::ResultReturned)
        )
    );
    assert!(state.is_closed());
}

#[test]
fn ends_other_than_return_have_their_own_status() {
    let stopped = fold_commands([receive(), step("2026-06-09 10:00", ProcessingStep::Stopped)]);
    assert_eq!(stopped.status, Some(PortalStatus::Stopped));
    assert!(!stopped.is_closed(), "a stopped dossier still returns its answer");
    assert_eq!(stopped.finished_at(), Some(vn("2026-06-09 10:00")));
    let withdrawn = fold_commands([
        receive(),
        request_supplement("2026-06-09 10:00"),
        withdraw("2026-06-10 10:00"),
    ]);
    assert_eq!(withdrawn.status, Some(PortalStatus::Withdrawn));
    assert!(withdrawn.is_closed() && !withdrawn.is_waiting_for_supplement());
    let refused = fold_commands([receive(), refuse("2026-06-08 09:30")]);
    assert_eq!(refused.status, Some(PortalStatus::RefusedAtIntake));
    assert_eq!(refused.finished_at(), None);
}

#[test]
fn payments_digitization_and_apologies_are_folded() {
    let state = fold_commands([
        receive(),
        pay("2026-06-08 09:10", 20_000),
        pay("2026-06-08 09:20", 30_000),
        digitize("2026-06-08 10:00", false),
        apology("2026-06-10 10:00", "2026-06-16 17:00"),
        apology("2026-06-15 10:00", "2026-06-18 17:00"),
        approve("2026-06-17 10:00"),
        digitize("2026-06-17 11:00", true),
    ]);
    assert_eq!(state.paid_online_vnd, 50_000);
    assert_eq!(
        (state.n_digitizations, state.reused_component, state.result_digitized),
        (2, true, true)
    );
    assert_eq!(
        (state.n_apologies, state.promised_at),
        (2, Some(vn("2026-06-18 17:00")))
    );
    // The apology does not move the due date.
    assert_eq!(state.due_at, Some(vn("2026-06-11 17:00")));
}

#[test]
fn portal_codes_round_trip() {
    for code in 1..=10 {
        assert_eq!(PortalStatus::from_code(code).map(PortalStatus::code), Some(code));
    }
    assert_eq!((PortalStatus::from_code(0), PortalStatus::from_code(11)), (None, None));
    for code in 1..=3 {
        assert_eq!(Channel::from_code(code).map(Channel::code), Some(code));
    }
    assert_eq!((Channel::from_code(0), Channel::from_code(4)), (None, None));
    assert_eq!(PortalStatus::Stopped.to_string(), "8 processing stopped");
    let closed: Vec<u8> = PortalStatus::ALL
        .iter()
        .filter(|s| s.is_closed())
        .map(|s| s.code())
        .collect();
    assert_eq!(closed, [3, 7, 10]);
}
