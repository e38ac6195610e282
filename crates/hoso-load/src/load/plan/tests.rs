//! The plan's dossiers are lives the domain accepts, named apart from every other run's.

use chrono::{NaiveDate, TimeZone, Utc};
use hoso_api::convert::IntoDeskCommand;
use hoso_domain::{BusinessCalendar, Command, Context, DossierState, GreenLane, ReceiptCode};

use super::*;

fn plan(run_id: &str, agencies: &[&str], limit: u64) -> Plan {
    Plan {
        reassign: true,
        run_id: run_id.to_owned(),
        seed: 7,
        start: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        months: 1,
        agencies: agencies.iter().map(|a| (*a).to_owned()).collect(),
        limit: Some(limit),
    }
}

fn dossiers(plan: &Plan) -> Vec<Planned> {
    let mut out = Vec::new();
    plan.produce(|d| {
        out.push(d);
        true
    });
    out
}

fn to_command(request: Request) -> hoso_api::convert::DeskCommand {
    request.into_desk_command().expect("a planned request is well-formed")
}

#[test]
fn every_planned_command_is_accepted_by_the_domain_from_the_agency_that_may_send_it() {
    let agencies = ["000.00.04.G18", "000.00.07.G18"];
    let planned = dossiers(&plan("T1", &agencies, 300));
    assert_eq!(planned.len(), 300);
    let calendar = BusinessCalendar::vietnam();
    let green_lane = GreenLane::new();
    let now = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    let context = Context::new(now, &calendar, &green_lane);
    let mut agency_steps = 0;
    for (i, dossier) in planned.into_iter().enumerate() {
        let mut state = DossierState::new();
        let mut handled_by = None;
        for step in dossier.steps {
            let desk = to_command(step.request);
            assert_eq!(desk.header.command_id, step.command_id);
            let mut command = desk.command;
            if let Command::ReceiveDossier(receive) = &command {
                assert_eq!(receive.receipt_code, dossier.receipt_code);
                handled_by = agencies.iter().position(|a| *a == receive.handling_agency);
                assert!(handled_by.is_some(), "{} is not one of ours", receive.handling_agency);
            }
            if let Sender::Agency(slot) = step.sender {
                assert_eq!(
                    Some(slot),
                    handled_by,
                    "an agency step goes to the dossier's own agency"
                );
                agency_steps += 1;
            }
            command.set_officer("cb.test");
            let events = hoso_domain::decide(&state, &command, &context)
                .unwrap_or_else(|err| panic!("dossier {i} of the plan: {command:?} refused: {err}"));
            for event in &events {
                state = hoso_domain::evolve(std::mem::take(&mut state), event);
            }
        }
    }
    assert!(agency_steps > 300, "the agencies process the dossiers");
}

#[test]
fn runs_never_share_a_receipt_code_or_a_command_id_and_a_run_sent_again_is_the_same() {
    let first = dossiers(&plan("R1", &["000.00.04.G18"], 50));
    let again = dossiers(&plan("R1", &["000.00.04.G18"], 50));
    let other = dossiers(&plan("R2", &["000.00.04.G18"], 50));
    let codes = |ds: &[Planned]| ds.iter().map(|d| d.receipt_code.clone()).collect::<Vec<_>>();
    let ids = |ds: &[Planned]| {
        ds.iter()
            .flat_map(|d| d.steps.iter().map(|s| s.command_id))
            .collect::<std::collections::HashSet<_>>()
    };
    assert_eq!(codes(&first), codes(&again));
    assert_eq!(ids(&first), ids(&again));
    assert!(codes(&first).iter().all(|c| !codes(&other).contains(c)));
    assert!(ids(&first).is_disjoint(&ids(&other)));
    let n_steps: usize = first.iter().map(|d| d.steps.len()).sum();
    assert_eq!(ids(&first).len(), n_steps, "command ids are unique within a run");
    for code in codes(&first) {
        let parsed = ReceiptCode::parse("receipt_code", &code).unwrap();
        assert!(parsed.unit().ends_with(".R1"), "{code}");
    }
}

#[test]
fn run_ids_are_short_upper_case_segments() {
    assert!(check_run_id("R7K2QX").is_ok());
    assert!(check_run_id(&fresh_run_id()).is_ok());
    for bad in ["", "r7", "ABCDEFGH", "A.B", "A-B"] {
        assert!(check_run_id(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        run_receipt_code("000.00.00.G18-20250106-0000042", "R1"),
        "000.00.00.G18.R1-20250106-0000042"
    );
}

#[test]
fn the_workload_ends_early_enough_for_every_life_to_be_past_and_in_the_calendar() {
    let calendar = BusinessCalendar::vietnam();
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    // Lives need three months: arrivals until August for a day in November.
    assert_eq!(months_until(start, date(2026, 11, 24), &calendar), Ok(19));
    assert_eq!(months_until(start, date(2025, 5, 2), &calendar), Ok(1));
    // The calendar's last year ends the arrivals three months before its end.
    let last_year = calendar.years().max().unwrap();
    assert_eq!(
        months_until(start, date(last_year + 3, 1, 1), &calendar),
        Ok((last_year - 2025) as u32 * 12 + 9)
    );
    assert!(months_until(start, date(2025, 4, 30), &calendar).is_err());
    assert!(months_until(date(2020, 1, 1), date(2026, 1, 1), &calendar).is_err());
}

#[test]
fn the_replay_dossier_has_exactly_the_events_asked_for_and_the_domain_accepts_them() {
    let plan = plan("T2", &["000.00.04.G18"], 0);
    let dossier = plan.replay_dossier(20);
    assert_eq!(dossier.steps.len(), 20);
    assert!(
        dossier.receipt_code.ends_with("-20250106-9999999"),
        "{}",
        dossier.receipt_code
    );
    let calendar = BusinessCalendar::vietnam();
    let green_lane = GreenLane::new();
    let context = Context::new(
        Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
        &calendar,
        &green_lane,
    );
    let mut state = DossierState::new();
    let mut events = 0;
    for step in dossier.steps {
        let mut command = to_command(step.request).command;
        command.set_officer("mc.test");
        for event in hoso_domain::decide(&state, &command, &context).unwrap() {
            state = hoso_domain::evolve(std::mem::take(&mut state), &event);
            events += 1;
        }
    }
    assert_eq!(events, 20);
    assert!(dossiers(&plan).is_empty(), "a limit of 0 sends no generated dossier");
}

#[test]
fn with_a_catalogue_only_the_dossiers_of_our_agencies_are_sent_and_each_receipt_matches_it() {
    let agencies = ["000.00.04.G18"];
    let plan = Plan {
        reassign: false,
        ..plan("T3", &agencies, 40)
    };
    let planned = dossiers(&plan);
    assert_eq!(
        planned.len(),
        40,
        "the generator runs on until the limit of our own dossiers"
    );
    let mut catalogue = hoso_domain::Catalogue::new();
    catalogue
        .publish(hoso_domain::Decision {
            number: "1/QĐ-UBND".to_owned(),
            effective_from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            entries: hoso_gen::Province::new(plan.seed).catalogue_entries(),
            abolished: vec![],
        })
        .unwrap();
    let calendar = BusinessCalendar::vietnam();
    let green_lane = GreenLane::new();
    let now = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    let context = Context {
        catalogue: &catalogue,
        procedures: hoso_domain::ProcedurePolicy::Catalogue { allow_outside: false },
        ..Context::new(now, &calendar, &green_lane)
    };
    for dossier in planned {
        let receipt = to_command(dossier.steps.into_iter().next().unwrap().request).command;
        let Command::ReceiveDossier(receive) = &receipt else {
            panic!("{receipt:?}")
        };
        assert_eq!(receive.handling_agency, "000.00.04.G18");
        hoso_domain::decide(&DossierState::new(), &receipt, &context)
            .unwrap_or_else(|err| panic!("{}: {err}", dossier.receipt_code));
    }
    // A replay dossier is of a procedure of our agency too.
    let replay = plan.replay_dossier(3);
    let receipt = to_command(replay.steps.into_iter().next().unwrap().request).command;
    hoso_domain::decide(&DossierState::new(), &receipt, &context).unwrap();
}
