//! The dossier read model: every dossier's history, folded from `$all` in order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hoso_domain::{DossierEvent, DossierState};
use hoso_store::{EventStore, Position, RecordedEvent, StoreError};

/// The prefix of the streams this model reads; other streams are passed over.
pub const STREAM_PREFIX: &str = "dossier-";

/// Why the model cannot take an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// Events must arrive in `$all` order with no gap and no repeat.
    #[error("the projection expected position {expected} next but was given {given}; it must be rebuilt")]
    OutOfOrder {
        /// The next position the model needs.
        expected: Position,
        /// The position it was given.
        given: Position,
    },
    /// A stored event could not be read as a domain event.
    #[error("the event at position {position} cannot be read: {reason}")]
    Undecodable {
        /// Its position.
        position: Position,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One event of a dossier, as the figures need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Position in `$all`.
    pub position: Position,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The event.
    pub event: DossierEvent,
}

/// One dossier's events, in stream order. Both `recorded_at` and `occurred_at` are
/// non-decreasing along a stream (the store assigns the first in commit order; the domain refuses
/// an `occurred_at` before the previous event's), so "what was recorded by a cut-off" and "what
/// had happened by an instant" are both prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The stream, `dossier-<receipt code>`.
    pub stream_id: String,
    /// Its events.
    pub facts: Vec<Fact>,
}

impl History {
    /// The events recorded at or before `cutoff`.
    pub fn recorded_by(&self, cutoff: DateTime<Utc>) -> &[Fact] {
        let n = self.facts.partition_point(|f| f.recorded_at <= cutoff);
        &self.facts[..n]
    }

    /// The receipt code (the stream id without its prefix).
    pub fn receipt_code(&self) -> &str {
        self.stream_id.strip_prefix(STREAM_PREFIX).unwrap_or(&self.stream_id)
    }
}

/// The state folded from `facts`.
pub fn fold(facts: &[Fact]) -> DossierState {
    facts
        .iter()
        .fold(DossierState::new(), |state, f| hoso_domain::evolve(state, &f.event))
}

/// The state folded from the `facts` that had occurred at or before `instant`.
pub fn fold_until(facts: &[Fact], instant: DateTime<Utc>) -> DossierState {
    let n = facts.partition_point(|f| f.event.occurred_at() <= instant);
    fold(&facts[..n])
}

/// Every dossier's history, folded from `$all` in order.
#[derive(Debug, Clone, Default)]
pub struct Dossiers {
    by_stream: HashMap<String, usize>,
    histories: Vec<History>,
    next_position: Position,
}

impl Dossiers {
    /// An empty model, at position 0.
    pub fn new() -> Dossiers {
        Dossiers::default()
    }

    /// The next position the model needs: every event before it has been applied.
    pub fn checkpoint(&self) -> Position {
        self.next_position
    }

    /// Applies the next event of `$all`.
    pub fn apply(&mut self, record: &RecordedEvent) -> Result<(), ProjectionError> {
        if record.position != self.next_position {
            return Err(ProjectionError::OutOfOrder {
                expected: self.next_position,
                given: record.position,
            });
        }
        if record.stream_id.starts_with(STREAM_PREFIX) {
            let undecodable = |reason: String| ProjectionError::Undecodable {
                position: record.position,
                reason,
            };
            let event = DossierEvent::from_stored_json(&record.event_type, record.schema_version, &record.data)
                .map_err(|err| undecodable(err.to_string()))?;
            let fact = Fact {
                position: record.position,
                recorded_at: record.recorded_at,
                event,
            };
            match self.by_stream.get(&record.stream_id) {
                Some(&i) => self.histories[i].facts.push(fact),
                None => {
                    self.by_stream.insert(record.stream_id.clone(), self.histories.len());
                    self.histories.push(History {
                        stream_id: record.stream_id.clone(),
                        facts: vec![fact],
                    });
                }
            }
        }
        self.next_position += 1;
        Ok(())
    }

    /// Applies every event from the checkpoint to the store's head, in batches, reporting
    /// `(applied so far, head)` after each batch. Returns the new checkpoint.
    pub async fn catch_up<S: EventStore>(
        &mut self,
        store: &S,
        mut progress: impl FnMut(Position, Position),
    ) -> Result<Position, ProjectionError> {
        const BATCH: usize = 4096;
        loop {
            let head = store.head();
            if self.next_position >= head {
                return Ok(self.next_position);
            }
            let batch = store.read_all(self.next_position, BATCH).await?;
            if batch.is_empty() {
                return Ok(self.next_position);
            }
            for record in &batch {
                self.apply(record)?;
            }
            progress(self.next_position, head);
        }
    }

    /// Every dossier, in the order first seen.
    pub fn histories(&self) -> &[History] {
        &self.histories
    }

    /// One dossier by its stream.
    pub fn get(&self, stream_id: &str) -> Option<&History> {
        self.by_stream.get(stream_id).map(|&i| &self.histories[i])
    }
}
