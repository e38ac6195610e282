//! Tests for the catalogue: which entry is in force when, what a decision may hold, and how a
//! declared value is compared.

use chrono::NaiveDate;

use super::*;
use crate::calendar::from_local;

fn code(c: &str) -> ProcedureCode {
    ProcedureCode::parse("code", c).unwrap()
}

fn entry(c: &str, days: u32, fee: i64) -> ProcedureEntry {
    ProcedureEntry {
        code: code(c),
        name: format!("Thủ tục {c}"),
        statutory_time: StatutoryTime::working_days(days),
        fee_vnd: fee,
        full_online_eligible: true,
        paper_result: false,
        handling_agencies: vec![],
        green_lane_time: None,
    }
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    from_local(chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

fn decision(number: &str, from: &str, entries: Vec<ProcedureEntry>, abolished: Vec<&str>) -> Decision {
    Decision {
        number: number.to_owned(),
        effective_from: date(from),
        entries,
        abolished: abolished.into_iter().map(code).collect(),
    }
}

#[test]
fn the_entry_in_force_is_the_latest_effective_decisions() {
    let mut catalogue = Catalogue::new();
    catalogue
        .publish(decision(
            "1/QĐ-UBND",
            "2026-01-01",
            vec![entry("1.000001", 20, 0), entry("1.000002", 5, 100)],
            vec![],
        ))
        .unwrap();
    // Loaded later but in force later: applies from its date only.
    catalogue
        .publish(decision(
            "2/QĐ-UBND",
            "2027-01-01",
            vec![entry("1.000001", 15, 0)],
            vec!["1.000002"],
        ))
        .unwrap();
    // Loaded last, in force from an earlier date than the second.
    catalogue
        .publish(decision(
            "3/QĐ-UBND",
            "2026-06-01",
            vec![entry("1.000001", 18, 0)],
            vec![],
        ))
        .unwrap();
    let time = |c: &str, when: &str| {
        catalogue
            .in_force(&code(c), at(when))
            .map(|f| (f.entry.statutory_time.amount, f.published.version))
    };
    assert_eq!(time("1.000001", "2025-12-31 23:59"), None);
    assert_eq!(time("1.000001", "2026-01-01 00:00"), Some((20, 1)));
    assert_eq!(time("1.000001", "2026-06-01 08:00"), Some((18, 3)));
    assert_eq!(time("1.000001", "2027-01-01 08:00"), Some((15, 2)));
    assert_eq!(time("1.000002", "2026-12-31 17:00"), Some((5, 1)));
    assert_eq!(time("1.000002", "2027-01-01 08:00"), None, "abolished from 2027");
    assert_eq!(catalogue.version(), 3);
    assert_eq!(catalogue.all_in_force(at("2027-02-01 08:00")).count(), 1);
}

#[test]
fn a_decision_is_checked_before_it_is_published() {
    let mut catalogue = Catalogue::new();
    let twice = decision(
        "1/QĐ",
        "2026-01-01",
        vec![entry("1.000001", 1, 0), entry("1.000001", 2, 0)],
        vec![],
    );
    assert_eq!(
        catalogue.publish(twice).unwrap_err(),
        "1.000001 is listed twice in decision 1/QĐ"
    );
    let both = decision("1/QĐ", "2026-01-01", vec![entry("1.000001", 1, 0)], vec!["1.000001"]);
    assert!(
        catalogue
            .publish(both)
            .unwrap_err()
            .contains("both published and abolished")
    );
    let zero = decision("1/QĐ", "2026-01-01", vec![entry("1.000001", 0, 0)], vec![]);
    assert!(catalogue.publish(zero).unwrap_err().contains("statutory time 0"));
    let negative = decision("1/QĐ", "2026-01-01", vec![entry("1.000001", 1, -5)], vec![]);
    assert!(catalogue.publish(negative).unwrap_err().contains("negative"));
    let empty = decision("1/QĐ", "2026-01-01", vec![], vec![]);
    assert!(catalogue.publish(empty).unwrap_err().contains("publishes no procedure"));
    assert!(catalogue.is_empty(), "a refused decision leaves nothing behind");
}

#[test]
fn differences_name_each_field_that_differs() {
    let e = entry("1.000001", 20, 50_000);
    let same = ProcedureInput {
        code: "1.000001".into(),
        name: Some(" Thủ tục 1.000001 ".into()),
        statutory_time: Some(StatutoryTime::working_days(20)),
        fee_vnd: Some(50_000),
        ..ProcedureInput::default()
    };
    assert!(e.differences(&same).is_empty());
    let other = ProcedureInput {
        code: "1.000001".into(),
        statutory_time: Some(StatutoryTime::working_days(3)),
        paper_result: Some(true),
        fee_vnd: Some(1),
        ..ProcedureInput::default()
    };
    let found: Vec<_> = e
        .differences(&other)
        .into_iter()
        .map(|d| (d.field, d.declared, d.catalogue))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "procedure.statutory_time",
                "3 working days".to_owned(),
                "20 working days".to_owned()
            ),
            ("procedure.paper_result", "true".to_owned(), "false".to_owned()),
            ("procedure.fee_vnd", "1 VND".to_owned(), "50000 VND".to_owned()),
        ]
    );
}
