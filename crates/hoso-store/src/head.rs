//! The log's head hash: one SHA-256 that names everything `$all` holds up to a position, so that
//! a document computed from the log (a signed disclosure) can name the exact history it counted.
//!
//! Definition (format 1): `h(0)` is 32 zero bytes, and `h(p + 1) = SHA-256(h(p) || c(p))`, where
//! `c(p)` is the per-stream chain hash of the event at position `p` ([`RecordedEvent::hash`],
//! which covers that record's bytes and, through its predecessor, its whole stream). The head hash
//! at `n` is `h(n)`: it covers the `n` events at positions `0..n`, every stream's chain as it stood
//! then, and their interleaving. Any store computes it from [`EventStore::read_all`] alone.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{EventStore, Position, RecordedEvent, StoreError};

/// The head hash of an empty log, `h(0)`.
pub const EMPTY_HEAD_HASH: [u8; 32] = [0; 32];

/// How many events a [`head_hash`] reads at once.
const BATCH: usize = 4096;

/// `h(p + 1)` from `h(p)` and the event at `p`.
pub fn next_head_hash(head: &[u8; 32], event: &RecordedEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(head);
    hasher.update(event.hash);
    hasher.finalize().into()
}

/// The head hash at `to`, continuing from `from_hash`, the head hash at `from` (give `0` and
/// [`EMPTY_HEAD_HASH`] to hash from the start). Fails with [`StoreError::Corrupted`] naming the
/// position when the log ends before `to`.
pub async fn head_hash<S: EventStore>(
    store: &S,
    from: Position,
    from_hash: [u8; 32],
    to: Position,
) -> Result<[u8; 32], StoreError> {
    let mut head = from_hash;
    let mut next = from;
    while next < to {
        let want = usize::try_from(to - next).unwrap_or(usize::MAX).min(BATCH);
        let batch = store.read_all(next, want).await?;
        if batch.is_empty() {
            return Err(StoreError::Corrupted {
                position: next,
                reason: format!("the log ends at position {next}, before position {to}"),
            });
        }
        for event in batch.iter().take(want) {
            head = next_head_hash(&head, event);
            next += 1;
        }
    }
    Ok(head)
}

/// The number of events recorded at or before `cutoff` among the first `upper`: the log's head as
/// it stood at `cutoff`, bounded by `upper`. `recorded_at` never decreases along `$all`, so those
/// events are exactly the positions before the answer; found by bisection.
pub async fn position_at<S: EventStore>(
    store: &S,
    cutoff: DateTime<Utc>,
    upper: Position,
) -> Result<Position, StoreError> {
    let (mut lo, mut hi) = (0, upper);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let event = store.read_all(mid, 1).await?;
        let Some(event) = event.first() else {
            return Err(StoreError::Corrupted {
                position: mid,
                reason: format!("the log ends at position {mid}, before position {upper}"),
            });
        };
        if event.recorded_at <= cutoff {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
