//! Every input of the corpus and of the regressions, through its target: each once was a seed
//! or a finding, and none may panic or break a property again.

use hoso_fuzz::engine::{corpus_of, run_one};
use hoso_fuzz::targets::{Context, Target};

fn replay(target: Target) {
    let inputs = corpus_of(target).expect("the corpus is readable");
    assert!(!inputs.is_empty(), "{} has no seed corpus", target.name());
    let mut ctx = Context::new().expect("a fuzz context");
    let failures: Vec<String> = inputs
        .iter()
        .filter_map(|(path, input)| {
            run_one(target, &mut ctx, input)
                .err()
                .map(|finding| format!("{}: {finding}", path.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}:\n{}", target.name(), failures.join("\n"));
}

#[test]
fn store_open_corpus_and_regressions() {
    replay(Target::StoreOpen);
}

#[test]
fn snapshot_corpus_and_regressions() {
    replay(Target::Snapshot);
}

#[test]
fn convert_corpus_and_regressions() {
    replay(Target::Convert);
}

#[test]
fn import_line_corpus_and_regressions() {
    replay(Target::ImportLine);
}

#[test]
fn due_date_corpus_and_regressions() {
    replay(Target::DueDate);
}
