//! Copying a log into another store, verbatim: the way a province moves its record from the
//! embedded store to PostgreSQL and back (`hoso copy`). Positions, versions, event ids,
//! `recorded_at` and hashes are kept byte for byte; a copy that stopped is taken up where the
//! target ends, once the target is found to hold exactly the source's first events; the target
//! is verified at the end. The method is in `docs/design.md`, "Copying between stores".

use crate::head::{EMPTY_HEAD_HASH, head_hash, next_head_hash};
use crate::{EventStore, ImportStore, Position, RecordedEvent, StoreError, VerifyScope};

/// Events read and imported at once: one transaction (PostgreSQL) or one fsync (embedded) each.
const BATCH: usize = 1_000;
/// Events compared at once when checking what the target already holds.
const CHECK_BATCH: usize = 4_096;

/// Where a copy is, for its progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyStep {
    /// Comparing the `done` of `total` events the target already holds with the source's.
    Checking {
        /// Events compared so far.
        done: Position,
        /// Events the target held when the copy started.
        total: Position,
    },
    /// The target holds `done` of the `total` events to copy.
    Copying {
        /// Events the target holds.
        done: Position,
        /// The source's head when the copy started: what the copy ends at.
        total: Position,
    },
    /// Verifying the target: its chains, and its head hash against the source's.
    Verifying,
}

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// Events the target held before (found equal to the source's first ones): where this run
    /// took the copy up.
    pub resumed_from: Position,
    /// The target holds exactly the source's events at positions `0..position`, the source's
    /// head when the copy started.
    pub position: Position,
    /// The head hash at `position` ([`crate::head_hash`]), the same in both stores.
    pub head_hash: [u8; 32],
    /// Records the target's verification checked.
    pub records_checked: u64,
}

/// The first field in which two events at the same position differ.
fn first_difference(a: &RecordedEvent, b: &RecordedEvent) -> &'static str {
    let fields = [
        (a.stream_id != b.stream_id, "stream id"),
        (a.version != b.version, "version"),
        (a.event_id != b.event_id, "event id"),
        (a.event_type != b.event_type, "event type"),
        (a.schema_version != b.schema_version, "schema version"),
        (a.data != b.data, "data"),
        (a.metadata != b.metadata, "metadata"),
        (a.occurred_at != b.occurred_at, "occurred_at"),
        (a.recorded_at != b.recorded_at, "recorded_at"),
        (a.hash != b.hash, "hash"),
    ];
    fields
        .into_iter()
        .find_map(|(differs, name)| differs.then_some(name))
        .unwrap_or("nothing")
}

fn ended_early(position: Position, what: &str, head: Position) -> StoreError {
    StoreError::Corrupted {
        position,
        reason: format!("the {what} log ends at position {position}, before its head {head}"),
    }
}

/// Copies every event of `source` up to its head into `target`, verbatim, and verifies the
/// target; `progress` is told where the copy is.
///
/// `target` must be empty, or hold exactly the source's first events (what an earlier copy
/// that stopped left): then only the events after them are copied. A target that holds anything
/// else is refused ([`StoreError::Refused`], naming the first position that differs) and left
/// as it is. Nothing else may write to the target meanwhile; the source may take appends (only
/// those before its head at the start are copied).
pub async fn copy<S: EventStore, T: ImportStore>(
    source: &S,
    target: &T,
    progress: &mut dyn FnMut(CopyStep),
) -> Result<CopyReport, StoreError> {
    let end = source.head();
    let start = target.head();
    if start > end {
        return Err(StoreError::Refused(format!(
            "the target holds {start} events, more than the source's {end}: it is not an unfinished copy of this source; copy into an empty store"
        )));
    }
    let mut hash = EMPTY_HEAD_HASH;
    let mut at = 0;
    progress(CopyStep::Checking { done: 0, total: start });
    while at < start {
        let n = usize::try_from(start - at).unwrap_or(CHECK_BATCH).min(CHECK_BATCH);
        let (ours, theirs) = tokio::join!(source.read_all(at, n), target.read_all(at, n));
        let (ours, theirs) = (ours?, theirs?);
        if ours.is_empty() {
            return Err(ended_early(at, "source", end));
        }
        if theirs.is_empty() {
            return Err(ended_early(at, "target", start));
        }
        for (a, b) in ours.iter().zip(&theirs) {
            if a != b {
                return Err(StoreError::Refused(format!(
                    "the target is not empty and is not an unfinished copy of this source: its event at position {} differs from the source's in its {} (the target holds {start} events); copy into an empty store",
                    a.position,
                    first_difference(a, b)
                )));
            }
            hash = next_head_hash(&hash, a);
            at += 1;
        }
        progress(CopyStep::Checking { done: at, total: start });
    }
    progress(CopyStep::Copying { done: at, total: end });
    let mut next = if at < end {
        source.read_all(at, BATCH).await?
    } else {
        Vec::new()
    };
    while at < end {
        let mut batch = std::mem::take(&mut next);
        batch.truncate(usize::try_from(end - at).unwrap_or(usize::MAX));
        if batch.is_empty() {
            return Err(ended_early(at, "source", end));
        }
        for event in &batch {
            hash = next_head_hash(&hash, event);
        }
        let following = at + batch.len() as u64;
        // The next batch is read while this one is written.
        let (imported, read) = tokio::join!(target.import(batch), async {
            if following < end {
                source.read_all(following, BATCH).await
            } else {
                Ok(Vec::new())
            }
        });
        let head = imported?;
        if head != following {
            return Err(StoreError::Refused(format!(
                "the target's head is {head} after importing up to position {following}: something else writes to it; stop it and run the copy again"
            )));
        }
        next = read?;
        at = following;
        progress(CopyStep::Copying { done: at, total: end });
    }
    progress(CopyStep::Verifying);
    let report = target.verify(VerifyScope::All).await?;
    if let Some(problem) = report.first_problem {
        return Err(StoreError::Corrupted {
            position: problem.position,
            reason: format!("the copy does not verify: {problem}"),
        });
    }
    let head = target.head();
    if head != end {
        return Err(StoreError::Refused(format!(
            "the target holds {head} events after the copy of {end}: something else writes to it; stop it, and copy into an empty store"
        )));
    }
    let copied = head_hash(target, 0, EMPTY_HEAD_HASH, end).await?;
    if copied != hash {
        return Err(StoreError::Corrupted {
            position: end,
            reason: "the target's head hash differs from the source's at the same position".to_owned(),
        });
    }
    Ok(CopyReport {
        resumed_from: start,
        position: end,
        head_hash: hash,
        records_checked: report.records_checked,
    })
}
