//! The dossier read model: every dossier's history, folded from `$all` in order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hoso_domain::event::ProcessingStep;
use hoso_domain::{DossierEvent, DossierState, STREAM_PREFIX};
use hoso_store::{EventStore, Position, RecordedEvent, StoreError};

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
#[derive(Debug, Clone)]
pub struct History {
    /// The stream, `dossier-<receipt code>`.
    pub stream_id: String,
    /// Its events.
    pub facts: Vec<Fact>,
    /// The state folded from every fact, kept as facts arrive.
    state: DossierState,
}

impl PartialEq for History {
    fn eq(&self, other: &History) -> bool {
        // Everything else is derived from the facts.
        self.stream_id == other.stream_id && self.facts == other.facts
    }
}

impl Eq for History {}

impl History {
    fn new(stream_id: String) -> History {
        History {
            stream_id,
            facts: Vec::with_capacity(8),
            state: DossierState::new(),
        }
    }

    fn push(&mut self, fact: Fact) {
        self.state = hoso_domain::evolve(std::mem::take(&mut self.state), &fact.event);
        self.facts.push(fact);
    }

    /// A history from its facts (a snapshot's), its state folded through the same `evolve` as
    /// [`History::push`] and its span through the same [`Span::push`], without copying the facts.
    pub(crate) fn restore(stream_id: String, facts: Vec<Fact>) -> Option<(History, Span)> {
        let mut span = Span::new(facts.first()?);
        let mut state = DossierState::new();
        for fact in &facts {
            span.push(fact);
            state = hoso_domain::evolve(state, &fact.event);
        }
        Some((
            History {
                stream_id,
                facts,
                state,
            },
            span,
        ))
    }

    /// The events recorded at or before `cutoff`.
    pub fn recorded_by(&self, cutoff: DateTime<Utc>) -> &[Fact] {
        let n = self.facts.partition_point(|f| f.recorded_at <= cutoff);
        &self.facts[..n]
    }

    /// The receipt code (the stream id without its prefix).
    pub fn receipt_code(&self) -> &str {
        self.stream_id.strip_prefix(STREAM_PREFIX).unwrap_or(&self.stream_id)
    }

    /// The state folded from every fact (the dossier as it stands now).
    pub fn state(&self) -> &DossierState {
        &self.state
    }
}

/// When a dossier's first event and its first closing event (approval, stop, return, withdrawal
/// or refusal at intake) occurred and were recorded, in microseconds since the Unix epoch
/// (`i64::MAX` for no closing event yet): what a period's figures need to pass over a dossier
/// without touching its history. Nothing but a rating or a sync can follow a closing event, so
/// a period that starts after it gets nothing from the dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// When the first event occurred.
    pub first_occurred: i64,
    /// When the first event was recorded.
    pub first_recorded: i64,
    /// When the first closing event occurred.
    pub closing_occurred: i64,
    /// When the first closing event was recorded.
    pub closing_recorded: i64,
}

impl Span {
    fn new(fact: &Fact) -> Span {
        Span {
            first_occurred: fact.event.occurred_at().timestamp_micros(),
            first_recorded: fact.recorded_at.timestamp_micros(),
            closing_occurred: i64::MAX,
            closing_recorded: i64::MAX,
        }
    }

    fn push(&mut self, fact: &Fact) {
        if self.closing_occurred == i64::MAX && closes(&fact.event) {
            self.closing_occurred = fact.event.occurred_at().timestamp_micros();
            self.closing_recorded = fact.recorded_at.timestamp_micros();
        }
    }

    /// Whether anything of the dossier, as recorded by `cutoff` (microseconds), can count in a
    /// period from `start` to `end`: something was recorded, it was received before the end, and
    /// it had not closed before the start.
    pub fn may_count(&self, start: i64, end: i64, cutoff: i64) -> bool {
        self.first_recorded <= cutoff
            && self.first_occurred < end
            && !(self.closing_occurred < start && self.closing_recorded <= cutoff)
    }
}

/// Whether an event ends a dossier's processing.
fn closes(event: &DossierEvent) -> bool {
    match event {
        DossierEvent::DossierProcessed(p) => matches!(p.step, ProcessingStep::Approved | ProcessingStep::Stopped),
        DossierEvent::ResultReturned(_) | DossierEvent::Withdrawn(_) | DossierEvent::RefusedAtIntake(_) => true,
        _ => false,
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

/// A record of `$all` made ready for [`Dossiers`]: the event decoded when it belongs to a dossier.
struct Decoded {
    position: Position,
    hash: [u8; 32],
    recorded_at: DateTime<Utc>,
    stream_id: String,
    event: Option<DossierEvent>,
}

fn decode(record: RecordedEvent) -> Result<Decoded, ProjectionError> {
    let event =
        if record.stream_id.starts_with(STREAM_PREFIX) {
            let event = DossierEvent::from_stored_json(&record.event_type, record.schema_version, &record.data)
                .map_err(|err| ProjectionError::Undecodable {
                    position: record.position,
                    reason: err.to_string(),
                })?;
            Some(event)
        } else {
            None
        };
    Ok(Decoded {
        position: record.position,
        hash: record.hash,
        recorded_at: record.recorded_at,
        stream_id: record.stream_id,
        event,
    })
}

fn decode_batch(batch: Vec<RecordedEvent>) -> Result<Vec<Decoded>, ProjectionError> {
    batch.into_iter().map(decode).collect()
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every dossier's history, folded from `$all` in order.
///
/// Two models are equal when they have the same checkpoint and the same histories in the same
/// order (states and spans are derived from the facts; they are compared too, as a check).
#[derive(Debug, Clone, Default)]
pub struct Dossiers {
    by_stream: HashMap<String, usize, foldhash::fast::RandomState>,
    histories: Vec<History>,
    /// One per history, in the same order, kept apart so that a scan over them stays small.
    spans: Vec<Span>,
    next_position: Position,
    /// The chain hash of the event before `next_position` (zeros at 0): with the store's id, it
    /// names the log the model was folded from, so a snapshot is never loaded over another log.
    checkpoint_hash: [u8; 32],
}

impl PartialEq for Dossiers {
    fn eq(&self, other: &Dossiers) -> bool {
        self.next_position == other.next_position && self.histories == other.histories && self.spans == other.spans
    }
}

impl Eq for Dossiers {}

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
        self.check_order(record.position)?;
        self.apply_decoded(decode(record.clone())?)
    }

    fn check_order(&self, position: Position) -> Result<(), ProjectionError> {
        if position != self.next_position {
            return Err(ProjectionError::OutOfOrder {
                expected: self.next_position,
                given: position,
            });
        }
        Ok(())
    }

    fn apply_decoded(&mut self, decoded: Decoded) -> Result<(), ProjectionError> {
        self.check_order(decoded.position)?;
        if let Some(event) = decoded.event {
            let fact = Fact {
                position: decoded.position,
                recorded_at: decoded.recorded_at,
                event,
            };
            let i = match self.by_stream.get(&decoded.stream_id) {
                Some(&i) => {
                    self.spans[i].push(&fact);
                    i
                }
                None => {
                    let i = self.histories.len();
                    self.by_stream.insert(decoded.stream_id.clone(), i);
                    self.histories.push(History::new(decoded.stream_id));
                    let mut span = Span::new(&fact);
                    span.push(&fact);
                    self.spans.push(span);
                    i
                }
            };
            self.histories[i].push(fact);
        }
        self.next_position += 1;
        self.checkpoint_hash = decoded.hash;
        Ok(())
    }

    /// Applies every event from the checkpoint to the store's head, in batches, reporting
    /// `(applied so far, head)` after each batch. Returns the new checkpoint.
    ///
    /// A reader task runs ahead of the caller: it reads batches from the store and decodes each on
    /// a blocking thread (several at once), while the caller applies the decoded batches one by
    /// one, in `$all` order.
    pub async fn catch_up<S: EventStore>(
        &mut self,
        store: &S,
        mut progress: impl FnMut(Position, Position),
    ) -> Result<Position, ProjectionError> {
        type Decoding = tokio::task::JoinHandle<Result<Vec<Decoded>, ProjectionError>>;
        const BATCH: usize = 16384;
        const AHEAD: usize = 3;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(Decoding, Position), StoreError>>(AHEAD);
        let (reader_store, mut next_read) = (store.clone(), self.next_position);
        let reader = tokio::spawn(async move {
            loop {
                let head = reader_store.head();
                if next_read >= head {
                    return;
                }
                let batch = match reader_store.read_all(next_read, BATCH).await {
                    Ok(batch) if batch.is_empty() => return,
                    Ok(batch) => batch,
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                };
                next_read += batch.len() as Position;
                let decoding = tokio::task::spawn_blocking(move || decode_batch(batch));
                if tx.send(Ok((decoding, head))).await.is_err() {
                    return;
                }
            }
        });
        // Stops the reader if this future is dropped or returns early.
        let _reader = AbortOnDrop(reader);
        while let Some(next) = rx.recv().await {
            let (decoding, head) = next?;
            let decoded = decoding.await.map_err(|err| ProjectionError::Undecodable {
                position: self.next_position,
                reason: format!("the decoding thread failed: {err}"),
            })??;
            for record in decoded {
                self.apply_decoded(record)?;
            }
            progress(self.next_position, head.max(self.next_position));
        }
        Ok(self.next_position)
    }

    /// Adds a whole history read from a snapshot (see [`History::restore`]), after those
    /// already there (snapshots keep the order first seen). Refused (`false`) when the stream
    /// is already there.
    pub(crate) fn restore_history(&mut self, history: History, span: Span) -> bool {
        if self.by_stream.contains_key(&history.stream_id) {
            return false;
        }
        self.by_stream.insert(history.stream_id.clone(), self.histories.len());
        self.histories.push(history);
        self.spans.push(span);
        true
    }

    /// Sets the checkpoint of a model read from a snapshot, and the hash of the event before it.
    pub(crate) fn restore_checkpoint(&mut self, checkpoint: Position, hash: [u8; 32]) {
        self.next_position = checkpoint;
        self.checkpoint_hash = hash;
    }

    /// The chain hash of the last event applied (the one before [`Dossiers::checkpoint`]);
    /// zeros when none was.
    pub fn checkpoint_hash(&self) -> [u8; 32] {
        self.checkpoint_hash
    }

    /// Every dossier, in the order first seen.
    pub fn histories(&self) -> &[History] {
        &self.histories
    }

    /// Every dossier's [`Span`], in the order of [`Dossiers::histories`].
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// One dossier by its stream.
    pub fn get(&self, stream_id: &str) -> Option<&History> {
        self.by_stream.get(stream_id).map(|&i| &self.histories[i])
    }
}
