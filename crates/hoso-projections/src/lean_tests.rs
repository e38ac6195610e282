//! The lean model loses nothing the figures read: on a generated province workload, recorded in
//! business-time order with some dossiers recorded late (back-dated), its figures at cut-offs in
//! the middle of histories are those of the dossiers' whole events, folded the reference way.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use hoso_domain::{BusinessCalendar, Context, DossierEvent, DossierState};
use hoso_store::{EventStore, ExpectedVersion, MemoryStore, NewEvent};

use crate::figures::{report, report_of_events};
use crate::{Dossiers, Period};

/// `n` dossiers of `hoso gen --seed 7` from March 2025, each decided by the domain.
fn generated(n: usize) -> Vec<(String, Vec<DossierEvent>)> {
    let province = hoso_gen::Province::new(7);
    let calendar = BusinessCalendar::vietnam();
    let params = hoso_gen::Params {
        seed: 7,
        start: NaiveDate::from_ymd_opt(2025, 3, 3).unwrap(),
        months: 1,
        scale: hoso_gen::Scale::Province,
        rates: hoso_gen::Rates::default(),
    };
    let now = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let context = Context::new(now, &calendar, &province.green_lane);
    hoso_gen::Workload::new(&province, params, calendar.clone())
        .take(n)
        .map(|dossier| {
            let mut state = DossierState::new();
            let mut events = Vec::new();
            for (command, _) in &dossier.commands {
                let Ok(decided) = hoso_domain::decide(&state, command, &context) else {
                    continue;
                };
                for event in decided {
                    state = hoso_domain::evolve(state, &event);
                    events.push(event);
                }
            }
            (format!("dossier-{}", dossier.receipt_code), events)
        })
        .collect()
}

#[tokio::test]
async fn lean_figures_equal_the_whole_events_figures_at_cut_offs_inside_histories() {
    let dossiers = generated(300);
    // One event at a time in business-time order, but one dossier in five recorded three days
    // late from its second event on: back-dated events, recorded after later-occurring ones.
    let mut order: Vec<(DateTime<Utc>, usize, usize)> = Vec::new();
    for (d, (_, events)) in dossiers.iter().enumerate() {
        for (i, event) in events.iter().enumerate() {
            let late = if d % 5 == 0 && i > 0 {
                TimeDelta::days(3)
            } else {
                TimeDelta::zero()
            };
            order.push((event.occurred_at() + late, d, i));
        }
    }
    order.sort();
    let store = MemoryStore::new();
    for &(_, d, i) in &order {
        let (stream, events) = &dossiers[d];
        let event = &events[i];
        let new = NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            data: hoso_store::Json::of(&event.data()).unwrap(),
            metadata: serde_json::json!({}).into(),
            occurred_at: event.occurred_at(),
        };
        store.append(stream, ExpectedVersion::Any, vec![new]).await.unwrap();
    }
    let mut lean = Dossiers::new();
    lean.catch_up(&store, |_, _| {}).await.unwrap();
    let loaded = Dossiers::decode_snapshot(&lean.encode_snapshot(uuid::Uuid::nil()), uuid::Uuid::nil()).unwrap();
    let records = store.read_all(0, usize::MAX).await.unwrap();
    let periods = [
        Period::month("2025-03").unwrap(),
        Period::month("2025-04").unwrap(),
        Period::new(
            NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(),
            NaiveDate::from_ymd_opt(2025, 3, 24).unwrap(),
        )
        .unwrap(),
    ];
    let (mut cut_inside, mut judged) = (0, 0);
    for k in 1..=8 {
        let cutoff = records[records.len() * k / 8 - 1].recorded_at;
        // The reference: every stream's whole events recorded by the cut-off, decoded anew.
        let mut whole: BTreeMap<&str, Vec<DossierEvent>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.recorded_at <= cutoff) {
            let event = DossierEvent::from_stored_json(&r.event_type, r.schema_version, &r.data).unwrap();
            whole.entry(&r.stream_id).or_default().push(event);
        }
        cut_inside += whole
            .iter()
            .filter(|(stream, events)| lean.get(stream).unwrap().facts.len() > events.len())
            .count();
        for period in periods {
            let expected = report_of_events(
                whole
                    .iter()
                    .map(|(stream, events)| (stream.trim_start_matches("dossier-").to_owned(), events.clone())),
                period,
                cutoff,
            );
            judged += expected.judged.len();
            assert_eq!(report(&lean, period, cutoff), expected, "{period} as of {cutoff}");
            assert_eq!(report(&loaded, period, cutoff), expected, "from the snapshot");
        }
    }
    assert!(cut_inside > 100, "only {cut_inside} histories cut in the middle");
    assert!(judged > 1000, "only {judged} dossiers judged");
}

#[test]
fn a_fact_stays_small() {
    // Two times and a kind: what 10 million events at under 1 GiB is built on (issue #23).
    assert!(std::mem::size_of::<crate::model::Fact>() <= 44);
}
