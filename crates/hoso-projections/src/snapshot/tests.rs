//! The snapshot round-trips every event field for field and whole models, and refuses damaged
//! bytes with an error naming the damage. (Generated histories round-trip in the property test
//! of the crate's tests.)

use chrono::{DateTime, TimeZone, Utc};
use hoso_domain::event::{
    DossierProcessed, PaidOnline, PaymentGateway, ProcessingStep, ResultReturned, ReturnMethod, Satisfaction,
    SatisfactionRated, SyncedToNationalPortal,
};
use hoso_domain::{AgencyCode, DossierEvent, PortalStatus};

use super::*;
use hoso_store::EventStore;

use crate::fixtures::march;

fn round_trip(event: &DossierEvent) -> DossierEvent {
    let mut w = Writer(Vec::new());
    w.event(event);
    let mut r = Reader { bytes: &w.0, at: 0 };
    let back = r.event().unwrap_or_else(|err| panic!("{event:?}: {err}"));
    assert_eq!(r.remaining(), 0, "{event:?} left bytes unread");
    back
}

/// Every golden event of `hoso-domain/testdata` (one per type, at its current version).
fn golden_events() -> Vec<DossierEvent> {
    hoso_domain::event::EVENT_TYPES
        .iter()
        .map(|&(name, version)| {
            let path = format!(
                "{}/../hoso-domain/testdata/{name}.v{version}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let json = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
            DossierEvent::from_stored_json(name, version, &json).unwrap()
        })
        .collect()
}

#[test]
fn every_golden_event_round_trips_field_for_field() {
    let events = golden_events();
    assert_eq!(events.len(), 13, "one golden file per event type");
    for event in &events {
        assert_eq!(&round_trip(event), event);
    }
}

#[test]
fn every_enum_value_and_option_round_trips() {
    let at = Utc.with_ymd_and_hms(2026, 6, 9, 2, 15, 0).unwrap();
    let mut events = Vec::new();
    for step in [
        ProcessingStep::Transferred,
        ProcessingStep::Appraised,
        ProcessingStep::Approved,
        ProcessingStep::Stopped,
    ] {
        for (to_unit, reason) in [
            (None, None),
            (
                Some(AgencyCode::parse("to_unit", "000.00.20.H28").unwrap()),
                Some("thiếu".to_owned()),
            ),
        ] {
            events.push(DossierEvent::DossierProcessed(DossierProcessed {
                occurred_at: at,
                step,
                officer: "cb.le".into(),
                to_unit,
                reason,
            }));
        }
    }
    for method in [ReturnMethod::AtDesk, ReturnMethod::ByPost, ReturnMethod::Online] {
        events.push(
            ResultReturned {
                occurred_at: at,
                method,
            }
            .into(),
        );
    }
    for rating in [Satisfaction::Satisfied, Satisfaction::Unsatisfied] {
        events.push(
            SatisfactionRated {
                occurred_at: at,
                rating,
            }
            .into(),
        );
    }
    for gateway in [PaymentGateway::NationalPortal, PaymentGateway::Provincial] {
        events.push(
            PaidOnline {
                occurred_at: at,
                amount_vnd: -1,
                gateway,
                transaction_ref: String::new(),
            }
            .into(),
        );
    }
    for status in PortalStatus::ALL {
        events.push(
            SyncedToNationalPortal {
                occurred_at: at,
                status,
            }
            .into(),
        );
    }
    let DossierEvent::DossierReceived(received) = golden_events().remove(0) else {
        panic!("the first event type is DossierReceived");
    };
    for channel in [Channel::InPerson, Channel::Online, Channel::Postal] {
        for unit in [TimeUnit::WorkingDays, TimeUnit::WorkingHours, TimeUnit::CalendarDays] {
            let mut e = (*received).clone();
            e.channel = channel;
            e.green_lane = !e.green_lane;
            e.effective_time = StatutoryTime { amount: u32::MAX, unit };
            e.procedure.statutory_time = StatutoryTime { amount: 0, unit };
            events.push(e.into());
        }
    }
    for source in [
        hoso_domain::ProcedureSource::Catalogue,
        hoso_domain::ProcedureSource::Declared,
        hoso_domain::ProcedureSource::OutsideCatalogue,
    ] {
        let mut e = (*received).clone();
        e.procedure_source = source;
        e.catalogue = None;
        e.calendars.push(hoso_domain::CalendarRef {
            year: -44,
            version: 0,
            provisional: true,
        });
        events.push(e.into());
    }
    for event in &events {
        assert_eq!(&round_trip(event), event);
    }
}

#[test]
fn times_keep_nanoseconds_leap_seconds_and_dates_before_1970() {
    let times = [
        DateTime::from_timestamp(1_781_000_000, 123_456_789).unwrap(),
        DateTime::from_timestamp(1_781_000_000, 999_999_999).unwrap(),
        // 2016-12-31 23:59:60.000000001, a leap second.
        DateTime::from_timestamp(1_483_228_799, 1_000_000_001).unwrap(),
        DateTime::from_timestamp(-1, 1).unwrap(),
        DateTime::from_timestamp(-86_400 * 365, 500_000_000).unwrap(),
        DateTime::<Utc>::UNIX_EPOCH,
    ];
    for at in times {
        let mut w = Writer(Vec::new());
        w.time(at);
        assert_eq!(w.0.len(), 10);
        let mut r = Reader { bytes: &w.0, at: 0 };
        assert_eq!(r.time().unwrap(), at, "{at:?}");
    }
}

async fn march_model() -> Dossiers {
    let (desk, _) = march().await;
    let mut model = Dossiers::new();
    model.catch_up(&desk.store, |_, _| {}).await.unwrap();
    model
}

/// The store the snapshots of these tests name.
const ID: uuid::Uuid = uuid::Uuid::from_u128(0x5105_0000_0000_4000_8000_0000_0000_0001);

#[tokio::test]
async fn a_model_round_trips_with_its_checkpoint_states_and_spans() {
    let model = march_model().await;
    assert!(model.checkpoint() > 20 && model.histories().len() == 8);
    let bytes = model.encode_snapshot(ID);
    let back = Dossiers::decode_snapshot(&bytes, ID).unwrap();
    assert_eq!(back, model);
    assert_eq!(back.checkpoint(), model.checkpoint());
    assert_eq!(back.spans(), model.spans());
    for (a, b) in back.histories().iter().zip(model.histories()) {
        assert_eq!(back.state(a), model.state(b), "{}", a.stream_id);
        let again = back.get(&a.stream_id).unwrap();
        assert_eq!(back.events(again, &again.facts), model.events(b, &b.facts));
    }
    // The encoding is a function of the model.
    assert_eq!(back.encode_snapshot(ID), bytes);

    let empty = Dossiers::decode_snapshot(&Dossiers::new().encode_snapshot(ID), ID).unwrap();
    assert_eq!(empty, Dossiers::new());
}

#[tokio::test]
async fn chunks_are_decoded_on_every_core_in_order() {
    let model = march_model().await;
    for chunk in [1, 3, 7, 8] {
        let bytes = model.encode_snapshot_in_chunks_of(ID, chunk);
        assert_eq!(
            Dossiers::decode_snapshot(&bytes, ID).unwrap(),
            model,
            "chunks of {chunk}"
        );
        for i in HEADER_LEN..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                Dossiers::decode_snapshot(&bad, ID).is_err(),
                "chunks of {chunk}, byte {i}"
            );
        }
    }
}

#[tokio::test]
async fn a_snapshot_can_be_caught_up_like_the_live_model() {
    let (desk, _) = march().await;
    let mut model = Dossiers::new();
    model.catch_up(&desk.store, |_, _| {}).await.unwrap();
    // A snapshot of an older model, caught up from its checkpoint, is the model from scratch.
    let mut older = Dossiers::new();
    for record in desk.store.read_all(0, 10).await.unwrap() {
        older.apply(&record).unwrap();
    }
    let mut loaded = Dossiers::decode_snapshot(&older.encode_snapshot(ID), ID).unwrap();
    loaded.catch_up(&desk.store, |_, _| {}).await.unwrap();
    assert_eq!(loaded, model);
}

/// Found by the `snapshot` fuzz target: a payload length near `u64::MAX` overflowed while
/// the error was being built.
#[test]
fn a_huge_payload_length_is_a_truncation_not_a_panic() {
    let mut bytes = Dossiers::new().encode_snapshot(ID);
    bytes[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(
        Dossiers::decode_snapshot(&bytes, ID).unwrap_err(),
        SnapshotError::Truncated {
            needed: u64::MAX,
            found: bytes.len() as u64
        }
    );
}

#[tokio::test]
async fn damaged_bytes_are_refused_naming_the_damage() {
    let bytes = march_model().await.encode_snapshot(ID);

    // Any byte flipped anywhere: refused, never a different model.
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        let err = Dossiers::decode_snapshot(&bad, ID).unwrap_err();
        let expected = match i {
            0..8 => matches!(err, SnapshotError::BadMagic),
            8..12 => matches!(err, SnapshotError::UnsupportedVersion { .. }),
            12..20 => matches!(
                err,
                SnapshotError::Truncated { .. } | SnapshotError::TrailingBytes { .. }
            ),
            _ => matches!(err, SnapshotError::Checksum { .. }),
        };
        assert!(expected, "byte {i}: {err}");
    }

    // Truncated anywhere.
    for n in [0, 1, 7, 8, 23, 24, 25, bytes.len() / 2, bytes.len() - 1] {
        let err = Dossiers::decode_snapshot(&bytes[..n], ID).unwrap_err();
        assert!(matches!(err, SnapshotError::Truncated { .. }), "{n} bytes: {err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    // Another version: a newer one, or one of the full model before the lean one (3).
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert_eq!(
        Dossiers::decode_snapshot(&newer, ID).unwrap_err().to_string(),
        "snapshot format version 5 is not supported (this build reads version 4)"
    );
    let mut full_model = bytes.clone();
    full_model[8..12].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(
        Dossiers::decode_snapshot(&full_model, ID).unwrap_err(),
        SnapshotError::UnsupportedVersion { found: 3, supported: 4 }
    );

    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Dossiers::decode_snapshot(&longer, ID).unwrap_err(),
        SnapshotError::TrailingBytes { extra: 1 }
    );
    assert_eq!(
        Dossiers::decode_snapshot(b"{\"not\": \"a snapshot\"}", ID).unwrap_err(),
        SnapshotError::BadMagic
    );
}

#[tokio::test]
async fn a_payload_with_a_good_checksum_is_still_checked() {
    let model = march_model().await;
    let bytes = model.encode_snapshot(ID);
    // Re-seal a payload that announces one history more than it holds.
    let mut bad = bytes.clone();
    let announced = model.histories().len() as u64 + 1;
    bad[HEADER_LEN + 56..HEADER_LEN + 64].copy_from_slice(&announced.to_le_bytes());
    let crc = crc32fast::hash(&bad[HEADER_LEN..]);
    bad[20..24].copy_from_slice(&crc.to_le_bytes());
    let err = Dossiers::decode_snapshot(&bad, ID).unwrap_err();
    assert!(matches!(err, SnapshotError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("9 histories announced, 8 found"), "{err}");
}

/// A snapshot names the log it was folded from: another store's is refused before its payload
/// is read, and a loaded one carries the hash of the event at its checkpoint for the caller to
/// check against its log.
#[tokio::test]
async fn a_snapshot_names_its_store_and_the_event_at_its_checkpoint() {
    let (desk, _) = march().await;
    let mut model = Dossiers::new();
    model.catch_up(&desk.store, |_, _| {}).await.unwrap();
    let bytes = model.encode_snapshot(ID);
    let other = uuid::Uuid::from_u128(7);
    assert_eq!(
        Dossiers::decode_snapshot(&bytes, other).unwrap_err(),
        SnapshotError::OtherStore {
            snapshot: ID,
            store: other
        }
    );
    let last = desk.store.read_all(model.checkpoint() - 1, 1).await.unwrap();
    let loaded = Dossiers::decode_snapshot(&bytes, ID).unwrap();
    assert_eq!(loaded.checkpoint_hash(), last[0].hash);
    assert_eq!(model.checkpoint_hash(), last[0].hash);
    assert_eq!(Dossiers::new().checkpoint_hash(), [0; 32]);
}
