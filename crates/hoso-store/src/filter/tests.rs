//! The filter never forgets an id, and rarely claims one it never saw.

use uuid::Uuid;

use super::KeyFilter;

#[test]
fn every_inserted_id_is_found_and_few_others_are() {
    let mut filter = KeyFilter::new();
    // Random ids and time-ordered ones (v7-like: a counter in the high bytes).
    let mut inserted: Vec<Uuid> = (0..150_000).map(|_| Uuid::new_v4()).collect();
    inserted.extend((0..150_000u128).map(|i| Uuid::from_u128(i << 64)));
    for &id in &inserted {
        filter.insert(&id);
    }
    assert!(inserted.iter().all(|&id| filter.may_contain(&id)), "no false negative");
    let false_positives = (0..100_000).filter(|_| filter.may_contain(&Uuid::new_v4())).count();
    // About 1% per filter in the series: a few percent at most.
    assert!(false_positives < 5_000, "{false_positives} false positives in 100,000");
}

#[test]
fn stream_ids_that_differ_in_one_character_are_told_apart() {
    let mut filter = KeyFilter::new();
    for i in 0..100_000 {
        filter.insert(format!("dossier-G09.20-20260609-{i:07}").as_str());
    }
    assert!((0..100_000).all(|i| filter.may_contain(format!("dossier-G09.20-20260609-{i:07}").as_str())));
    let false_positives = (100_000..200_000)
        .filter(|i| filter.may_contain(format!("dossier-G09.20-20260609-{i:07}").as_str()))
        .count();
    assert!(false_positives < 5_000, "{false_positives} false positives in 100,000");
}

#[test]
fn a_filter_that_outgrows_its_first_part_still_finds_every_id() {
    // Sized for 1,000 ids and given 100,000: a series of seven parts.
    let mut filter = KeyFilter::with_capacity(1_000);
    let inserted: Vec<Uuid> = (0..100_000).map(|_| Uuid::new_v4()).collect();
    for &id in &inserted {
        filter.insert(&id);
    }
    assert!(filter.filters.len() > 5, "{} parts", filter.filters.len());
    assert!(inserted.iter().all(|&id| filter.may_contain(&id)), "no false negative");
    let false_positives = (0..100_000).filter(|_| filter.may_contain(&Uuid::new_v4())).count();
    assert!(false_positives < 10_000, "{false_positives} false positives in 100,000");
}
