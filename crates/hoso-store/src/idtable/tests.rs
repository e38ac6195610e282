//! A table finds every id it holds at its position and no other; a damaged or out-of-sequence
//! table is dropped on open with every later one.

use uuid::Uuid;

use super::{IdTable, open_all, table_path};

fn ids(first: u64, n: u64) -> Vec<(Uuid, u64)> {
    (first..first + n).map(|p| (Uuid::new_v4(), p)).collect()
}

#[test]
fn every_id_is_found_at_its_position_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    // More than one block, and a last block that is not full.
    let entries = ids(0, 1000);
    let table = IdTable::write(dir.path(), 0, &mut entries.clone(), (1, 4242), &mut Vec::new()).unwrap();
    assert_eq!(
        (table.first, table.count, table.end(), table.resume),
        (0, 1000, 1000, (1, 4242))
    );
    for &(id, position) in &entries {
        assert_eq!(table.lookup(id).unwrap(), Some(position));
    }
    assert!((0..1000).all(|_| table.lookup(Uuid::new_v4()).unwrap().is_none()));
    assert_eq!(table.lookup(Uuid::nil()).unwrap(), None, "below the first fence");
    assert_eq!(table.lookup(Uuid::max()).unwrap(), None, "past the last entry");

    let reopened = open_all(dir.path(), &mut crate::filter::KeyFilter::new()).unwrap();
    assert_eq!(reopened.len(), 1);
    for &(id, position) in &entries {
        assert_eq!(reopened[0].lookup(id).unwrap(), Some(position));
    }
}

#[test]
fn a_damaged_table_is_dropped_with_the_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    IdTable::write(dir.path(), 0, &mut ids(0, 10), (1, 100), &mut Vec::new()).unwrap();
    IdTable::write(dir.path(), 10, &mut ids(10, 10), (1, 200), &mut Vec::new()).unwrap();
    IdTable::write(dir.path(), 20, &mut ids(20, 10), (1, 300), &mut Vec::new()).unwrap();
    std::fs::write(dir.path().join("00000000000000000030.tmp"), b"interrupted").unwrap();
    let path = table_path(dir.path(), 10);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&path, bytes).unwrap();

    let tables = open_all(dir.path(), &mut crate::filter::KeyFilter::new()).unwrap();
    assert_eq!(tables.iter().map(|t| t.first).collect::<Vec<_>>(), [0]);
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["00000000000000000000.ids"]);
}

#[test]
fn a_gap_in_the_tables_drops_what_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    IdTable::write(dir.path(), 0, &mut ids(0, 10), (1, 100), &mut Vec::new()).unwrap();
    IdTable::write(dir.path(), 20, &mut ids(20, 10), (1, 300), &mut Vec::new()).unwrap();
    let tables = open_all(dir.path(), &mut crate::filter::KeyFilter::new()).unwrap();
    assert_eq!(tables.iter().map(|t| t.first).collect::<Vec<_>>(), [0]);
    assert!(!table_path(dir.path(), 20).exists());
}
