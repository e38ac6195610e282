//! What only the durable store has: its files survive a reopen, they carry a format version,
//! recovery cuts a torn tail and refuses damage before it, the index is rebuilt from the
//! segments, and tampering with them is found by `verify`.

use std::path::{Path, PathBuf};

use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StoreError, StreamRead, VerifyScope};

fn open(path: &Path) -> SledStore {
    SledStore::open(path, SledOptions::default()).unwrap()
}

/// The path of one segment file: the records themselves, raw.
fn segment(dir: &Path, sequence: u32) -> PathBuf {
    dir.join("log").join(format!("{sequence:010}.segment"))
}

/// The offsets of the entries of a segment, from their length headers.
fn entry_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            // Zeros: the end of the log (the store keeps some zero-filled ahead of it).
            break;
        }
        offsets.push(at);
        at += 8 + len;
    }
    offsets.push(at);
    offsets
}

#[tokio::test]
async fn reopen_keeps_everything_and_recorded_at_keeps_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..10 {
        store
            .append(
                &format!("s{}", i % 3),
                ExpectedVersion::Any,
                vec![event("a"), event("b")],
            )
            .await
            .unwrap();
    }
    let before = store.read_all(0, 100).await.unwrap();
    store.close();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.head(), 20);
    assert_eq!(store.read_all(0, 100).await.unwrap(), before);
    assert_eq!(store.stream_version("s0").await.unwrap(), Some(7));
    // The chain continues across the reopen.
    store
        .append("s0", ExpectedVersion::Exact(7), vec![event("after")])
        .await
        .unwrap();
    let last = store
        .read_stream("s0", StreamRead::backward().max_count(1))
        .await
        .unwrap();
    assert_eq!(last[0].position, 20);
    assert!(last[0].recorded_at > before.last().unwrap().recorded_at);
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!((report.records_checked, report.first_problem), (21, None));
}

/// The writer skips the lookup of a stream its filter has never seen, so a reopen must put
/// every stored stream in the filter (it reads them from the index while it reads the id
/// tables): an append that expects no stream is refused for each.
#[tokio::test]
async fn every_stream_stored_before_a_reopen_is_known_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..200 {
        store
            .append(&format!("s{i}"), ExpectedVersion::NoStream, vec![event("a")])
            .await
            .unwrap();
    }
    store.close();
    drop(store);

    let store = open(dir.path());
    for i in 0..200 {
        let err = store
            .append(&format!("s{i}"), ExpectedVersion::NoStream, vec![event("b")])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { actual: Some(0), .. }),
            "s{i}: {err:?}"
        );
    }
}

#[tokio::test]
async fn appends_after_close_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.close();
    let err = store
        .append("s", ExpectedVersion::Any, vec![event("late")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err:?}");
}

#[test]
fn unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"mformat", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(dir.path(), SledOptions::default())
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            StoreError::UnsupportedFormat {
                found: 99,
                supported: 3
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the store on disk has format version 99; this build reads format version 3 only"
    );
}

#[test]
fn a_foreign_sled_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"something", b"else").unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(dir.path(), SledOptions::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not written by hoso"), "{err}");
}

/// Flips one byte of one stored record in its segment file behind the store's back: `verify`
/// names that record, whole-store and per stream.
#[tokio::test]
async fn tampering_with_one_byte_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    hoso_store::conformance::tampering_with_a_record_is_found(store, |store, _target| async {
        store.close();
        drop(store);
        let path = segment(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        // A byte inside the JSON data of record 17: "e17" becomes "e18".
        let at = bytes.windows(5).position(|w| w == b"\"e17\"").expect("tag in the data");
        bytes[at + 3] = b'8';
        std::fs::write(&path, bytes).unwrap();
        open(dir.path())
    })
    .await;
}

/// An entry whose length field is damaged does not decode: `verify` names it, and reading it
/// is refused rather than answered with damaged data.
#[tokio::test]
async fn a_truncated_record_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .append("s", ExpectedVersion::Any, vec![event("a"), event("b"), event("c")])
        .await
        .unwrap();
    store.close();
    drop(store);
    {
        let path = segment(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = entry_offsets(&bytes)[1];
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        bytes[at..at + 4].copy_from_slice(&(len - 10).to_be_bytes());
        std::fs::write(&path, bytes).unwrap();
    }
    let store = open(dir.path());
    let problem = store
        .verify(VerifyScope::All)
        .await
        .unwrap()
        .first_problem
        .expect("found");
    assert_eq!(problem.position, 1);
    let err = store.read_all(0, 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { position: 1, .. }), "{err:?}");
}

/// Formats 1 (records in sled) and 2 (an index entry per event in sled) have no migration.
#[test]
fn earlier_formats_are_refused() {
    for format in [1u32, 2] {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(b"mformat", &format.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let err = SledStore::open(dir.path(), SledOptions::default())
            .err()
            .expect("refused");
        assert!(
            matches!(err, StoreError::UnsupportedFormat { found, supported: 3 } if found == format),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("the store on disk has format version {format}; this build reads format version 3 only")
        );
    }
}

/// No zeros kept ahead of the writer: the segment ends where the log does.
fn no_zero_fill() -> SledOptions {
    SledOptions {
        zero_fill_ahead_bytes: 0,
        ..SledOptions::default()
    }
}

async fn three_appends(dir: &Path) -> Vec<hoso_store::RecordedEvent> {
    let store = SledStore::open(dir, no_zero_fill()).unwrap();
    for tag in ["a", "b", "c"] {
        store.append("s", ExpectedVersion::Any, vec![event(tag)]).await.unwrap();
    }
    let all = store.read_all(0, 10).await.unwrap();
    store.close();
    all
}

/// A write cut short by a crash leaves part of an entry (or zeros) at the end of the last
/// segment: that append was never acknowledged, so recovery cuts it off and goes on.
#[tokio::test]
async fn recovery_cuts_a_torn_tail() {
    for tail in [
        b"\x00\x00\x01".to_vec(),
        vec![0u8; 4096],
        // A header promising more bytes than follow.
        [&500u32.to_be_bytes()[..], &[7u8; 4], &[b'x'; 100]].concat(),
        // A whole entry whose CRC does not match (its last page never reached the disk).
        [&40u32.to_be_bytes()[..], &[7u8; 4], &[0u8; 40]].concat(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let before = three_appends(dir.path()).await;
        let path = segment(dir.path(), 1);
        let intact_len = std::fs::metadata(&path).unwrap().len();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&tail);
        std::fs::write(&path, bytes).unwrap();

        let store = SledStore::open(dir.path(), no_zero_fill()).unwrap();
        assert_eq!(store.head(), 3, "tail {tail:?}");
        assert_eq!(store.read_all(0, 10).await.unwrap(), before);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            intact_len,
            "the torn tail is cut off"
        );
        let result = store
            .append("s", ExpectedVersion::Exact(2), vec![event("d")])
            .await
            .unwrap();
        assert_eq!(result.positions, Some((3, 3)));
        let report = store.verify(VerifyScope::All).await.unwrap();
        assert_eq!((report.records_checked, report.first_problem), (4, None));
        // Nothing but zeros is cut silently: the rest is kept, as a torn write.
        let quarantined = store.quarantined();
        if tail.iter().all(|&b| b == 0) {
            assert_eq!(quarantined, vec![], "zeros are not kept");
        } else {
            assert_eq!(quarantined.len(), 1, "tail {tail:?}");
            let q = &quarantined[0];
            assert!(!q.may_have_been_acknowledged, "{q}");
            assert_eq!(
                (q.position, q.offset, q.segment.as_str()),
                (3, intact_len, "0000000001.segment")
            );
            let kept = std::fs::read(dir.path().join("quarantine").join(&q.file)).unwrap();
            let end = tail.iter().rposition(|&b| b != 0).unwrap() + 1;
            assert_eq!(kept, tail[..end], "the bytes cut, up to the last that is not zero");
            assert_eq!(q.bytes, end as u64);
        }
    }
}

/// A whole last entry whose CRC does not match may be an acknowledged append that the disk
/// damaged afterwards: it is cut (the log must end in an intact entry), but kept in quarantine and
/// reported as possibly acknowledged, also after a restart, until an operator removes the file.
#[tokio::test]
async fn a_damaged_whole_last_entry_is_kept_and_reported_as_possibly_acknowledged() {
    for followed_by_garbage in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let before = three_appends(dir.path()).await;
        let path = segment(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let offsets = entry_offsets(&bytes);
        let (last, end) = (offsets[2], offsets[3]);
        // Damage one byte in the middle of the last (acknowledged) entry.
        bytes[last + 30] ^= 0x40;
        let damaged = bytes[last..end].to_vec();
        if followed_by_garbage {
            bytes.extend_from_slice(&[0xEE; 10]);
        }
        std::fs::write(&path, &bytes).unwrap();
        // As after a crash before the indexer reached it: recovery scans it.
        remove_index(dir.path());

        let store = SledStore::open(dir.path(), no_zero_fill()).unwrap();
        assert_eq!(store.head(), 2);
        assert_eq!(store.read_all(0, 10).await.unwrap(), before[..2]);
        let quarantined = store.quarantined();
        assert_eq!(quarantined.len(), 1);
        let q = &quarantined[0];
        assert!(q.may_have_been_acknowledged, "{q}");
        assert_eq!((q.position, q.offset), (2, last as u64));
        let kept = std::fs::read(dir.path().join("quarantine").join(&q.file)).unwrap();
        assert_eq!(kept[..damaged.len()], damaged[..]);
        assert!(q.to_string().contains("may have been acknowledged"), "{q}");
        // Appends go on after the cut, and the report survives a restart.
        store
            .append("s", ExpectedVersion::Exact(1), vec![event("again")])
            .await
            .unwrap();
        store.close();
        drop(store);
        let store = SledStore::open(dir.path(), no_zero_fill()).unwrap();
        assert_eq!(store.quarantined(), quarantined);
        assert_eq!(store.head(), 3);
        // Once the operator removes the file, it is no longer reported.
        std::fs::remove_file(dir.path().join("quarantine").join(&q.file)).unwrap();
        assert_eq!(store.quarantined(), vec![]);
    }
}

/// With zeros kept ahead of the writer, a torn append lies in those zeros: it is cut off all
/// the same, and appends go on after the last intact entry, also after another reopen.
#[tokio::test]
async fn recovery_cuts_a_torn_tail_written_into_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for tag in ["a", "b", "c"] {
        store.append("s", ExpectedVersion::Any, vec![event(tag)]).await.unwrap();
    }
    let before = store.read_all(0, 10).await.unwrap();
    store.close();
    drop(store);
    let path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let end = *entry_offsets(&bytes).last().unwrap();
    // The zero-fill thread may not have run before the close; then the zeros are put here.
    if bytes.len() < end + (1 << 16) {
        bytes.resize(end + (1 << 16), 0);
    }
    // A torn copy of the first entry: its header and half of its record.
    let first_len = entry_offsets(&bytes)[1];
    let torn = bytes[..first_len / 2].to_vec();
    bytes[end..end + torn.len()].copy_from_slice(&torn);
    std::fs::write(&path, bytes).unwrap();

    let store = open(dir.path());
    assert_eq!(store.head(), 3);
    assert_eq!(store.read_all(0, 10).await.unwrap(), before);
    store
        .append("s", ExpectedVersion::Exact(2), vec![event("d")])
        .await
        .unwrap();
    store.close();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.head(), 4);
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!((report.records_checked, report.first_problem), (4, None));
}

/// Removes sled's files, keeping only the segments.
fn remove_index(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "log" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(entry.path()).unwrap();
        } else {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}

/// The segments are the log; sled holds only what can be rebuilt from them.
#[tokio::test]
async fn the_index_is_rebuilt_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions {
        segment_bytes: 4096,
        ..SledOptions::default()
    };
    let store = SledStore::open(dir.path(), options).unwrap();
    let mut ids = Vec::new();
    for i in 0..60 {
        let e = event(&format!("e{i}"));
        ids.push(e.event_id);
        store
            .append(&format!("s{}", i % 7), ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
    }
    let before = store.read_all(0, 100).await.unwrap();
    store.close();
    drop(store);
    assert!(segment(dir.path(), 3).exists(), "several segments were written");

    remove_index(dir.path());
    let store = SledStore::open(dir.path(), options).unwrap();
    assert_eq!(store.head(), 60);
    assert_eq!(store.read_all(0, 100).await.unwrap(), before);
    assert_eq!(store.read_all(37, 5).await.unwrap(), before[37..42]);
    for (i, id) in ids.iter().enumerate() {
        let found = store.event_by_id(*id).await.unwrap().expect("indexed");
        assert_eq!(found.position, i as u64);
    }
    let s3 = store.read_stream("s3", StreamRead::backward()).await.unwrap();
    // s3 got events 3, 10, ..., 59.
    assert_eq!(s3.len(), 9);
    assert_eq!(s3[0].version, 8);
    assert_eq!(s3[0].position, 59);
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!((report.records_checked, report.first_problem), (60, None));
}

/// Damage anywhere but at the end of the last segment is not a torn write: the store refuses
/// to open and says where.
#[tokio::test]
async fn damage_before_the_end_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    three_appends(dir.path()).await;
    // Without its index the whole log is scanned on open.
    remove_index(dir.path());
    let path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = entry_offsets(&bytes)[1];
    bytes[at + 30] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    let err = SledStore::open(dir.path(), SledOptions::default())
        .err()
        .expect("refused");
    match &err {
        StoreError::Corrupted { position, reason } => {
            assert_eq!(*position, 1);
            assert!(reason.contains(&format!("at byte {at} of ")), "{reason}");
            assert!(reason.contains("0000000001.segment"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// A damaged entry in a segment that is not the last one is corruption too.
#[tokio::test]
async fn a_torn_entry_in_an_earlier_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions {
        segment_bytes: 1024,
        ..SledOptions::default()
    };
    let store = SledStore::open(dir.path(), options).unwrap();
    for i in 0..12 {
        store
            .append("s", ExpectedVersion::Any, vec![event(&format!("e{i}"))])
            .await
            .unwrap();
    }
    store.close();
    drop(store);
    remove_index(dir.path());
    let path = segment(dir.path(), 1);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let err = SledStore::open(dir.path(), options).err().expect("refused");
    assert!(
        matches!(&err, StoreError::Corrupted { reason, .. } if reason.contains("0000000001.segment")),
        "{err:?}"
    );
}

/// The id table files of a store, sorted.
fn id_tables(dir: &Path) -> Vec<PathBuf> {
    id_files(dir, "ids")
}

/// The files of `<store>/ids` with this extension, sorted by name.
fn id_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("ids"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    files.sort();
    files
}

type Appended = (String, Vec<hoso_store::NewEvent>, hoso_store::AppendResult);

/// Appends `e{i}-0..3` for each `i` of `numbers` to stream `s{i % streams}`, noting each append.
async fn append_three_each(
    store: &SledStore,
    numbers: std::ops::Range<usize>,
    streams: usize,
    appends: &mut Vec<Appended>,
) {
    for i in numbers {
        let stream = format!("s{}", i % streams);
        let events: Vec<_> = (0..3).map(|k| event(&format!("e{i}-{k}"))).collect();
        let result = store
            .append(&stream, ExpectedVersion::Any, events.clone())
            .await
            .unwrap();
        appends.push((stream, events, result));
    }
}

/// Every event is found by its id, every append is recognised as a retry, an id reused with
/// other content is refused, and the store verifies.
async fn check_ids(store: &SledStore, appends: &[Appended]) {
    let head = store.head();
    for (stream, events, result) in appends {
        let (first, _) = result.positions.unwrap();
        for (i, e) in events.iter().enumerate() {
            let found = store.event_by_id(e.event_id).await.unwrap().expect("found by id");
            assert_eq!((found.position, &found.stream_id), (first + i as u64, stream));
        }
        let retry = store
            .append(stream, ExpectedVersion::Any, events.clone())
            .await
            .unwrap();
        assert_eq!(
            retry,
            hoso_store::AppendResult {
                already_stored: true,
                ..*result
            }
        );
        let mut changed = events.clone();
        changed[0].schema_version += 1;
        let err = store.append(stream, ExpectedVersion::Any, changed).await.unwrap_err();
        assert!(matches!(err, StoreError::EventIdReused { .. }), "{err:?}");
    }
    assert_eq!(store.head(), head, "retries write nothing");
    assert_eq!(store.event_by_id(uuid::Uuid::new_v4()).await.unwrap(), None);
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!((report.records_checked, report.first_problem), (head, None));
}

/// Event ids move from memory into id tables as the log grows; lookups and retries find them
/// there, across a reopen, and a damaged table is dropped and written again from the segments.
#[tokio::test]
async fn event_ids_are_found_in_id_tables() {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions {
        id_table_events: 16,
        ..SledOptions::default()
    };
    let store = SledStore::open(dir.path(), options).unwrap();
    let mut appends = Vec::new();
    // 40 appends of 3 events: 120 positions, 7 full tables of 16 and 8 ids in memory.
    append_three_each(&store, 0..40, 4, &mut appends).await;
    check_ids(&store, &appends).await;
    store.close();
    drop(store);
    assert_eq!(id_tables(dir.path()).len(), 7, "tables are written once full");

    let store = SledStore::open(dir.path(), options).unwrap();
    check_ids(&store, &appends).await;
    store.close();
    drop(store);

    let damaged = &id_tables(dir.path())[2];
    let mut bytes = std::fs::read(damaged).unwrap();
    bytes[7] ^= 0x40;
    std::fs::write(damaged, bytes).unwrap();
    let store = SledStore::open(dir.path(), options).unwrap();
    assert_eq!(
        id_tables(dir.path()).len(),
        2,
        "the damaged table and those after it are dropped"
    );
    check_ids(&store, &appends).await;
    store.close();
    drop(store);
    assert_eq!(id_tables(dir.path()).len(), 7, "and written again");
}

/// The ids no table holds yet are kept beside the tables (`.unfiled`), one file per table range
/// to come, removed once its table is written; if that file is damaged or lost, a reopen reads
/// the ids from the records instead.
#[tokio::test]
async fn ids_past_the_last_table_survive_a_damaged_or_lost_unfiled_file() {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions {
        id_table_events: 16,
        ..SledOptions::default()
    };
    let unfiled = |dir: &Path| -> Vec<String> {
        id_files(dir, "unfiled")
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect()
    };
    let store = SledStore::open(dir.path(), options).unwrap();
    let mut appends = Vec::new();
    // 12 appends of 3 events: 36 positions, 2 tables of 16 and 4 ids past them.
    append_three_each(&store, 0..12, 3, &mut appends).await;
    store.close();
    drop(store);
    assert_eq!(id_tables(dir.path()).len(), 2);
    assert_eq!(
        unfiled(dir.path()),
        ["00000000000000000032.unfiled"],
        "only the range after the last table"
    );

    let path = dir.path().join("ids").join("00000000000000000032.unfiled");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let store = SledStore::open(dir.path(), options).unwrap();
    check_ids(&store, &appends).await;
    store.close();
    drop(store);

    std::fs::remove_file(&path).unwrap();
    let store = SledStore::open(dir.path(), options).unwrap();
    check_ids(&store, &appends).await;
    // Appending on fills the range: its table is written and its file removed.
    append_three_each(&store, 12..17, 3, &mut appends).await;
    store.close();
    drop(store);
    assert_eq!(id_tables(dir.path()).len(), 3);
    assert_eq!(unfiled(dir.path()), ["00000000000000000048.unfiled"]);
    let store = SledStore::open(dir.path(), options).unwrap();
    check_ids(&store, &appends).await;
}

/// A store of 60 events over several segments and id tables, closed; with the events read back.
async fn closed_store_of_sixty(dir: &Path) -> (SledOptions, Vec<hoso_store::RecordedEvent>) {
    let options = SledOptions {
        segment_bytes: 4096,
        id_table_events: 16,
        ..SledOptions::default()
    };
    let store = SledStore::open(dir, options).unwrap();
    for i in 0..60 {
        store
            .append(
                &format!("s{}", i % 7),
                ExpectedVersion::Any,
                vec![event(&format!("e{i}"))],
            )
            .await
            .unwrap();
    }
    let before = store.read_all(0, 100).await.unwrap();
    store.close();
    drop(store);
    (options, before)
}

/// Everything of `before` is there and found through every index, and appends go on.
async fn check_rebuilt(store: &SledStore, before: &[hoso_store::RecordedEvent]) {
    assert_eq!(store.head(), before.len() as u64);
    assert_eq!(store.read_all(0, 100).await.unwrap(), before);
    for record in before {
        let found = store.event_by_id(record.event_id).await.unwrap().expect("indexed");
        assert_eq!(&found, record);
    }
    let s3 = store.read_stream("s3", StreamRead::forward()).await.unwrap();
    assert_eq!(
        s3,
        before
            .iter()
            .filter(|r| r.stream_id == "s3")
            .cloned()
            .collect::<Vec<_>>()
    );
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!(report.first_problem, None);
    assert_eq!(report.records_checked, before.len() as u64);
    store
        .append("s3", ExpectedVersion::Exact(s3.len() as u64 - 1), vec![event("after")])
        .await
        .unwrap();
}

/// A start refused on a full disk leaves sled a 0-byte `snap.*.generating`, which sled reads as
/// corruption on every later open: the store opens all the same, with everything in it.
#[tokio::test]
async fn an_unfinished_index_snapshot_does_not_brick_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (options, before) = closed_store_of_sixty(dir.path()).await;
    std::fs::write(dir.path().join("snap.FFFFFFFFFFFFFFFF.generating"), b"").unwrap();
    let store = SledStore::open(dir.path(), options).unwrap();
    check_rebuilt(&store, &before).await;
    assert!(!dir.path().join("snap.FFFFFFFFFFFFFFFF.generating").exists());
}

/// Whatever damage sled reports in its own files, the indexes are rebuilt from the segments
/// (sled's files and the id tables are derived data) instead of refusing the open.
#[tokio::test]
async fn a_damaged_index_is_rebuilt_from_the_segments_at_open() {
    for damage in ["empty snapshot", "garbage snapshot", "damaged id table"] {
        let dir = tempfile::tempdir().unwrap();
        let (options, before) = closed_store_of_sixty(dir.path()).await;
        match damage {
            "empty snapshot" => std::fs::write(dir.path().join("snap.FFFFFFFFFFFFFFFF"), b"").unwrap(),
            "garbage snapshot" => std::fs::write(dir.path().join("snap.FFFFFFFFFFFFFFFF"), [0xA5u8; 300]).unwrap(),
            _ => {
                let tables = id_tables(dir.path());
                assert!(tables.len() >= 3, "{tables:?}");
                let mut bytes = std::fs::read(&tables[1]).unwrap();
                bytes[5] ^= 0xFF;
                std::fs::write(&tables[1], bytes).unwrap();
            }
        }
        let store = SledStore::open(dir.path(), options).unwrap_or_else(|err| panic!("{damage}: {err}"));
        check_rebuilt(&store, &before).await;
        store.close();
        drop(store);
        // And the rebuilt indexes serve the next open.
        let store = SledStore::open(dir.path(), options).unwrap();
        assert_eq!(store.head(), before.len() as u64 + 1);
        let report = store.verify(VerifyScope::All).await.unwrap();
        assert_eq!(report.first_problem, None, "{damage}");
    }
}
