use chrono::NaiveDate;
use hoso_domain::{BusinessCalendar, Channel, Command};

use crate::{Params, Province, Rates, Scale, Workload, import_line};

fn params(seed: u64, months: u32) -> Params {
    Params {
        seed,
        start: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
        months,
        scale: Scale::Province,
        rates: Rates::default(),
    }
}

fn first_days(seed: u64, n: usize) -> Vec<crate::Dossier> {
    let province = Province::new(seed);
    Workload::new(&province, params(seed, 1), BusinessCalendar::vietnam())
        .take(n)
        .collect()
}

#[test]
fn the_seed_fixes_every_byte() {
    let a: Vec<String> = first_days(7, 300)
        .iter()
        .map(|d| import_line(d, "gen").unwrap())
        .collect();
    let b: Vec<String> = first_days(7, 300)
        .iter()
        .map(|d| import_line(d, "gen").unwrap())
        .collect();
    assert_eq!(a, b);
    let c: Vec<String> = first_days(8, 300)
        .iter()
        .map(|d| import_line(d, "gen").unwrap())
        .collect();
    assert_ne!(a, c);
}

#[test]
fn the_province_has_its_agencies_and_catalogue() {
    let province = Province::new(1);
    assert_eq!(province.agencies.iter().filter(|a| !a.commune).count(), 20);
    assert_eq!(province.agencies.iter().filter(|a| a.commune).count(), 90);
    // Every agency has a name of its own, for the disclosure's tables and charts.
    let names: std::collections::BTreeSet<&str> = province.agencies.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), 110);
    assert_eq!(province.agencies[3].name, "Sở Xây dựng");
    assert_eq!(province.procedures.len(), 2000);
    assert!(!province.green_lane_list.is_empty());
}

#[test]
fn a_month_has_the_province_s_volume_and_mix() {
    let province = Province::new(3);
    let workload = Workload::new(&province, params(3, 1), BusinessCalendar::vietnam());
    let expected = workload.expected_dossiers();
    let dossiers: Vec<_> = workload.collect();
    let n = dossiers.len() as f64;
    // September 2025 has 20 working days after the 1-2 September holidays.
    assert!(
        (n - expected as f64).abs() / (expected as f64) < 0.3,
        "{n} dossiers, about {expected} expected"
    );
    let online = dossiers
        .iter()
        .filter(|d| matches!(&d.commands[0].0, Command::ReceiveDossier(r) if r.channel == Channel::Online))
        .count() as f64;
    assert!((0.84..0.92).contains(&(online / n)), "online share {}", online / n);
    // Every dossier starts with its receipt, and nothing arrives in person on a day off.
    let calendar = BusinessCalendar::vietnam();
    for dossier in &dossiers {
        let Command::ReceiveDossier(receipt) = &dossier.commands[0].0 else {
            panic!("{dossier:?}")
        };
        let day = hoso_domain::calendar::to_local(receipt.occurred_at).date();
        if receipt.channel == Channel::InPerson {
            assert!(
                calendar.is_working_day(day).unwrap(),
                "{} received in person on {day}",
                dossier.receipt_code
            );
        }
    }
    let returned = dossiers
        .iter()
        .filter(|d| d.commands.iter().any(|(c, _)| matches!(c, Command::ReturnResult(_))))
        .count();
    assert!(
        returned as f64 / n > 0.9,
        "most dossiers reach their return: {returned} of {n}"
    );
}

#[test]
fn a_line_is_the_import_format() {
    let dossier = &first_days(5, 1)[0];
    let line: serde_json::Value = serde_json::from_str(&import_line(dossier, "motcua").unwrap()).unwrap();
    assert_eq!(line["source"], "motcua");
    let commands = line["commands"].as_array().unwrap();
    assert_eq!(commands.len(), dossier.commands.len());
    assert_eq!(
        commands[0]["receive_dossier"]["receipt_code"],
        dossier.receipt_code.as_str()
    );
    assert!(
        commands[0]["receive_dossier"]["command"]["occurred_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[test]
fn the_catalogue_lists_every_procedure_with_valid_values() {
    let province = Province::new(1);
    let entries = province.catalogue_entries();
    assert_eq!(entries.len(), province.procedures.len());
    for entry in &entries {
        entry.check().unwrap();
        assert_eq!(entry.handling_agencies.len(), 1, "{entry:?}");
    }
    let green = entries.iter().filter(|e| e.green_lane_time.is_some()).count();
    assert_eq!(green, province.green_lane_list.len());
    // The catalogue file of `hoso gen --catalogue-out` reads back to the same entries.
    let rows = hoso_catalogue::read_csv(hoso_catalogue::write_csv(&entries).as_bytes()).unwrap();
    assert_eq!(rows.entries, entries);
}

#[test]
fn a_dossier_received_from_the_catalogue_gets_the_values_of_its_import_line() {
    use hoso_domain::command::ProcedureInput;
    use hoso_domain::{Catalogue, Decision, DossierEvent, DossierState, GreenLane, ProcedurePolicy};

    let province = Province::new(4);
    let entries = province.catalogue_entries();
    let mut catalogue = Catalogue::new();
    catalogue
        .publish(Decision {
            number: "1/QĐ-UBND".to_owned(),
            effective_from: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            entries,
            abolished: vec![],
        })
        .unwrap();
    let calendar = BusinessCalendar::vietnam();
    let no_lane = GreenLane::new();
    let (mut dossiers, mut green) = (0, 0);
    for dossier in first_days(4, 3000) {
        let Command::ReceiveDossier(receipt) = &dossier.commands[0].0 else {
            panic!("{dossier:?}")
        };
        let now = receipt.occurred_at + chrono::TimeDelta::days(1);
        let received = |command: &Command, ctx: &hoso_domain::Context<'_>| {
            let events = hoso_domain::decide(&DossierState::new(), command, ctx)
                .unwrap_or_else(|err| panic!("{}: {err}", dossier.receipt_code));
            let DossierEvent::DossierReceived(received) = &events[0] else {
                panic!("{events:?}")
            };
            received.clone()
        };
        // As the import line declares it, with the workload's green lane.
        let declared = received(
            &dossier.commands[0].0,
            &hoso_domain::Context::new(now, &calendar, &province.green_lane),
        );
        // As a desk receives it from the catalogue: the code alone, no configured green lane.
        let by_code = Command::ReceiveDossier(hoso_domain::command::ReceiveDossier {
            procedure: ProcedureInput::code(receipt.procedure.code.clone()),
            handling_agency: String::new(),
            ..receipt.clone()
        });
        let from_catalogue = received(
            &by_code,
            &hoso_domain::Context {
                catalogue: &catalogue,
                procedures: ProcedurePolicy::Catalogue { allow_outside: false },
                ..hoso_domain::Context::new(now, &calendar, &no_lane)
            },
        );
        assert_eq!(from_catalogue.procedure, declared.procedure, "{}", dossier.receipt_code);
        assert_eq!(from_catalogue.handling_agency, declared.handling_agency);
        assert_eq!(
            (
                from_catalogue.green_lane,
                from_catalogue.effective_time,
                from_catalogue.due_at
            ),
            (declared.green_lane, declared.effective_time, declared.due_at)
        );
        dossiers += 1;
        green += usize::from(declared.green_lane);
    }
    assert_eq!(dossiers, 3000);
    assert!(green > 0, "no green-lane dossier among {dossiers}");
}
