//! The dossier read model: every dossier's history, folded from `$all` in order, kept lean.
//!
//! Per event only what the figures, lists, boards and deadline views read ([`Fact`]); per dossier
//! its stream id; the receipts' shared parts and holiday-table lists
//! interned once. The dossier's state is folded from its facts when asked, through the domain's
//! own `evolve` ([`Dossiers::events`]); nothing else of an event is kept: an RPC that needs the
//! events as recorded reads the dossier's stream from the store.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hoso_domain::event::{
    ApologySent, DossierDigitized, DossierProcessed, DossierReceived, EResultIssued, PaidOnline, PaymentGateway,
    ProcessingStep, RefusedAtIntake, ResultReturned, ReturnMethod, ReusedComponent, Satisfaction, SatisfactionRated,
    SupplementReceived, SupplementRequested, SyncedToNationalPortal, Withdrawn,
};
use hoso_domain::{
    ApplicantRef, CalendarRef, ContentHash, DossierEvent, DossierState, PortalStatus, ReceiptCode, STREAM_PREFIX,
};
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

/// One event of a dossier, kept lean: when it occurred and was recorded, and only what the
/// figures, lists, boards and deadline views read of it ([`Kind`]). Everything else (free text,
/// officers, document lists, the applicant) stays in the store, which serves it by stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fact {
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Its business time.
    pub occurred_at: DateTime<Utc>,
    /// What happened, leanly.
    pub kind: Kind,
}

/// What a [`Fact`] keeps of its event: the fields [`hoso_domain::evolve`] reads, with the
/// receipt and the holiday tables interned in the model ([`Dossiers`]) and named by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `DossierReceived`: its due date, and its receipt's shared part (procedure, desks, agency,
    /// channel, green lane, catalogue, holiday tables) by index.
    Received {
        /// The computed due date.
        due_at: DateTime<Utc>,
        /// The receipt's shared part.
        receipt: u32,
    },
    /// `DossierDigitized`: whether a component was reused and whether the result was digitized.
    Digitized {
        /// Any component reused.
        reused: bool,
        /// The result digitized.
        result_digitized: bool,
    },
    /// `DossierProcessed`: the step.
    Processed(ProcessingStep),
    /// `EResultIssued`.
    EResultIssued,
    /// `PaidOnline`: the amount (VND, little-endian bytes, so that a fact stays 4-byte aligned)
    /// and the gateway.
    PaidOnline {
        /// The amount in VND as `i64::to_le_bytes`.
        amount_vnd: [u8; 8],
        /// The gateway.
        gateway: PaymentGateway,
    },
    /// `ApologySent`: the new appointment.
    ApologySent {
        /// The new appointment.
        new_appointment_at: DateTime<Utc>,
    },
    /// `SupplementRequested` (the list of components asked for is not kept).
    SupplementRequested,
    /// `SupplementReceived`: the moved due date and its holiday tables by index.
    SupplementReceived {
        /// The moved due date.
        due_at: DateTime<Utc>,
        /// Its holiday tables.
        calendars: u32,
    },
    /// `ResultReturned`: how.
    ResultReturned(ReturnMethod),
    /// `SatisfactionRated`: the rating.
    SatisfactionRated(Satisfaction),
    /// `Withdrawn`.
    Withdrawn,
    /// `RefusedAtIntake`.
    RefusedAtIntake,
    /// `SyncedToNationalPortal`: the status acknowledged.
    Synced(PortalStatus),
}

/// A receipt's part shared by many dossiers, interned: the receipt as first seen with its
/// applicant blanked; its receipt code, receipt time and due date are the dossier's own and are
/// read from the dossier's stream id and its fact. Hashed and compared on the shared part only.
#[derive(Debug, Clone)]
struct Template {
    receipt: Arc<DossierReceived>,
    /// The receipt code is part of the template: only for a receipt whose code is not its
    /// stream id's (a stream no desk writes, but the model takes any log).
    own_code: bool,
}

impl Template {
    fn shared(&self) -> impl PartialEq + std::hash::Hash + '_ {
        let r = &*self.receipt;
        (
            (&r.procedure.code, &r.procedure.name, r.procedure.statutory_time),
            (
                r.procedure.full_online_eligible,
                r.procedure.paper_result,
                r.procedure.fee_vnd,
            ),
            (
                &r.receiving_desk,
                &r.handling_agency,
                r.channel,
                r.green_lane,
                r.effective_time,
            ),
            (r.procedure_source, &r.catalogue, &r.calendars),
            self.own_code.then_some(&r.receipt_code),
        )
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Template) -> bool {
        self.shared() == other.shared()
    }
}

impl Eq for Template {}

impl std::hash::Hash for Template {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.shared().hash(state);
    }
}

/// The interned parts of the model: receipt templates and holiday-table lists, each by index.
#[derive(Debug, Clone, Default)]
struct Tables {
    receipts: Vec<Template>,
    receipt_index: HashMap<Template, u32, foldhash::fast::RandomState>,
    calendars: Vec<Vec<CalendarRef>>,
    calendar_index: HashMap<Vec<CalendarRef>, u32, foldhash::fast::RandomState>,
}

impl Tables {
    fn receipt(&mut self, receipt: &Arc<DossierReceived>, own_code: bool) -> u32 {
        let probe = Template {
            receipt: Arc::clone(receipt),
            own_code,
        };
        if let Some(&i) = self.receipt_index.get(&probe) {
            return i;
        }
        // The applicant is citizen data: never kept.
        let mut kept = DossierReceived::clone(receipt);
        kept.applicant = ApplicantRef(uuid::Uuid::nil());
        let template = Template {
            receipt: Arc::new(kept),
            own_code,
        };
        let i = u32::try_from(self.receipts.len()).expect("fewer than 4 billion receipt templates");
        self.receipt_index.insert(template.clone(), i);
        self.receipts.push(template);
        i
    }

    fn calendars(&mut self, calendars: &[CalendarRef]) -> u32 {
        if let Some(&i) = self.calendar_index.get(calendars) {
            return i;
        }
        let i = u32::try_from(self.calendars.len()).expect("fewer than 4 billion calendar lists");
        self.calendar_index.insert(calendars.to_vec(), i);
        self.calendars.push(calendars.to_vec());
        i
    }
}

/// The content hash a materialized `EResultIssued` carries: the document's is not kept.
fn no_content_hash() -> ContentHash {
    static ZEROS: std::sync::LazyLock<ContentHash> = std::sync::LazyLock::new(|| {
        ContentHash::parse("content_hash", &"0".repeat(64)).expect("64 hexadecimal digits")
    });
    ZEROS.clone()
}

/// One dossier's facts, in stream order. Both `recorded_at` and `occurred_at` are
/// non-decreasing along a stream (the store assigns the first in commit order; the domain refuses
/// an `occurred_at` before the previous event's), so "what was recorded by a cut-off" and "what
/// had happened by an instant" are both prefixes.
///
/// Not comparable on its own: its receipt and holiday tables are indexes into its model's tables
/// (compare models, or [`Dossiers::events`]).
#[derive(Debug, Clone)]
pub struct History {
    /// The stream, `dossier-<receipt code>` (shared with the model's index).
    pub stream_id: Arc<str>,
    /// Its facts.
    pub facts: Vec<Fact>,
}

impl History {
    fn new(stream_id: Arc<str>) -> History {
        History {
            stream_id,
            facts: Vec::new(),
        }
    }

    /// The facts recorded at or before `cutoff`.
    pub fn recorded_by(&self, cutoff: DateTime<Utc>) -> &[Fact] {
        let n = self.facts.partition_point(|f| f.recorded_at <= cutoff);
        &self.facts[..n]
    }

    /// The receipt code (the stream id without its prefix).
    pub fn receipt_code(&self) -> &str {
        self.stream_id.strip_prefix(STREAM_PREFIX).unwrap_or(&self.stream_id)
    }

    /// The dossier's version: its number of events less one.
    pub fn version(&self) -> u64 {
        self.facts.len() as u64 - 1
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
            first_occurred: fact.occurred_at.timestamp_micros(),
            first_recorded: fact.recorded_at.timestamp_micros(),
            closing_occurred: i64::MAX,
            closing_recorded: i64::MAX,
        }
    }

    fn push(&mut self, fact: &Fact) {
        if self.closing_occurred == i64::MAX && closes(&fact.kind) {
            self.closing_occurred = fact.occurred_at.timestamp_micros();
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
fn closes(kind: &Kind) -> bool {
    match kind {
        Kind::Processed(step) => matches!(step, ProcessingStep::Approved | ProcessingStep::Stopped),
        Kind::ResultReturned(_) | Kind::Withdrawn | Kind::RefusedAtIntake => true,
        _ => false,
    }
}

/// The state folded from `events`.
pub fn fold(events: &[DossierEvent]) -> DossierState {
    DossierState::fold(events)
}

/// The state folded from the `events` that had occurred at or before `instant`.
pub fn fold_until(events: &[DossierEvent], instant: DateTime<Utc>) -> DossierState {
    let n = events.partition_point(|e| e.occurred_at() <= instant);
    fold(&events[..n])
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

/// Every dossier's lean history, folded from `$all` in order.
///
/// Two models are equal when they have the same checkpoint and the same histories in the same
/// order, each with the same events as [`Dossiers::events`] gives them (so the order the shared
/// parts were interned in does not matter), and the same spans (derived, compared as a check).
#[derive(Debug, Clone, Default)]
pub struct Dossiers {
    by_stream: HashMap<Arc<str>, u32, foldhash::fast::RandomState>,
    histories: Vec<History>,
    /// One per history, in the same order, kept apart so that a scan over them stays small.
    spans: Vec<Span>,
    tables: Tables,
    next_position: Position,
    /// The chain hash of the event before `next_position` (zeros at 0): with the store's id, it
    /// names the log the model was folded from, so a snapshot is never loaded over another log.
    checkpoint_hash: [u8; 32],
}

impl PartialEq for Dossiers {
    fn eq(&self, other: &Dossiers) -> bool {
        self.next_position == other.next_position
            && self.spans == other.spans
            && self.histories.len() == other.histories.len()
            && self.histories.iter().zip(&other.histories).all(|(a, b)| {
                a.stream_id == b.stream_id
                    && a.facts.len() == b.facts.len()
                    && self.events(a, &a.facts) == other.events(b, &b.facts)
                    && a.facts
                        .iter()
                        .zip(&b.facts)
                        .all(|(x, y)| x.recorded_at == y.recorded_at)
            })
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
            let i = self.history_index(&decoded.stream_id);
            self.push(i, decoded.recorded_at, &event);
        }
        self.next_position += 1;
        self.checkpoint_hash = decoded.hash;
        Ok(())
    }

    /// The index of the stream's history, made (empty) on first sight.
    fn history_index(&mut self, stream_id: &str) -> usize {
        if let Some(&i) = self.by_stream.get(stream_id) {
            return i as usize;
        }
        let i = self.histories.len();
        let stream_id: Arc<str> = Arc::from(stream_id);
        self.by_stream.insert(
            Arc::clone(&stream_id),
            u32::try_from(i).expect("fewer than 4 billion dossiers"),
        );
        self.histories.push(History::new(stream_id));
        i
    }

    /// Adds one event, leaned, to history `i`, and to its span.
    fn push(&mut self, i: usize, recorded_at: DateTime<Utc>, event: &DossierEvent) {
        let history = &mut self.histories[i];
        let kind = match event {
            DossierEvent::DossierReceived(e) => {
                let own_code = history.receipt_code() != e.receipt_code.as_str();
                Kind::Received {
                    due_at: e.due_at,
                    receipt: self.tables.receipt(e, own_code),
                }
            }
            DossierEvent::DossierDigitized(e) => Kind::Digitized {
                reused: !e.reused.is_empty(),
                result_digitized: e.result_digitized,
            },
            DossierEvent::DossierProcessed(e) => Kind::Processed(e.step),
            DossierEvent::EResultIssued(_) => Kind::EResultIssued,
            DossierEvent::PaidOnline(e) => Kind::PaidOnline {
                amount_vnd: e.amount_vnd.to_le_bytes(),
                gateway: e.gateway,
            },
            DossierEvent::ApologySent(e) => Kind::ApologySent {
                new_appointment_at: e.new_appointment_at,
            },
            DossierEvent::SupplementRequested(_) => Kind::SupplementRequested,
            DossierEvent::SupplementReceived(e) => Kind::SupplementReceived {
                due_at: e.due_at,
                calendars: self.tables.calendars(&e.calendars),
            },
            DossierEvent::ResultReturned(e) => Kind::ResultReturned(e.method),
            DossierEvent::SatisfactionRated(e) => Kind::SatisfactionRated(e.rating),
            DossierEvent::Withdrawn(_) => Kind::Withdrawn,
            DossierEvent::RefusedAtIntake(_) => Kind::RefusedAtIntake,
            DossierEvent::SyncedToNationalPortal(e) => Kind::Synced(e.status),
        };
        let fact = Fact {
            recorded_at,
            occurred_at: event.occurred_at(),
            kind,
        };
        if history.facts.is_empty() {
            debug_assert_eq!(i, self.spans.len());
            self.spans.push(Span::new(&fact));
        }
        self.spans[i].push(&fact);
        history.facts.push(fact);
    }

    /// The events of `facts` (some of `history`'s), as [`hoso_domain::evolve`] needs them: what
    /// the model does not keep is blank (free text, officers, document and component lists,
    /// result ids; zeros for the applicant and content hashes). They fold to the dossier's state
    /// but for those blanks; read the stream from the store for the events as recorded.
    pub fn events(&self, history: &History, facts: &[Fact]) -> Vec<DossierEvent> {
        let mut events = Vec::with_capacity(facts.len());
        for fact in facts {
            let occurred_at = fact.occurred_at;
            events.push(match fact.kind {
                Kind::Received { due_at, receipt } => {
                    let Template { receipt: r, own_code } = &self.tables.receipts[receipt as usize];
                    let receipt_code = if *own_code {
                        r.receipt_code.clone()
                    } else {
                        // Equal to the event's code, which was parsed when it was decoded.
                        ReceiptCode::parse("receipt_code", history.receipt_code())
                            .expect("the stream's receipt code was checked when its receipt was applied")
                    };
                    DossierEvent::DossierReceived(Arc::new(DossierReceived {
                        occurred_at,
                        receipt_code,
                        procedure: r.procedure.clone(),
                        receiving_desk: r.receiving_desk.clone(),
                        handling_agency: r.handling_agency.clone(),
                        channel: r.channel,
                        green_lane: r.green_lane,
                        effective_time: r.effective_time,
                        applicant: ApplicantRef(uuid::Uuid::nil()),
                        due_at,
                        procedure_source: r.procedure_source,
                        catalogue: r.catalogue.clone(),
                        calendars: r.calendars.clone(),
                    }))
                }
                Kind::Digitized {
                    reused,
                    result_digitized,
                } => DossierEvent::DossierDigitized(DossierDigitized {
                    occurred_at,
                    files: Vec::new(),
                    // Only whether any was reused is kept.
                    reused: if reused {
                        vec![ReusedComponent {
                            component: String::new(),
                            source: String::new(),
                        }]
                    } else {
                        Vec::new()
                    },
                    result_digitized,
                }),
                Kind::Processed(step) => DossierEvent::DossierProcessed(DossierProcessed {
                    occurred_at,
                    step,
                    officer: String::new(),
                    to_unit: None,
                    reason: None,
                }),
                Kind::EResultIssued => DossierEvent::EResultIssued(EResultIssued {
                    occurred_at,
                    result_id: String::new(),
                    content_hash: no_content_hash(),
                    signer: String::new(),
                }),
                Kind::PaidOnline { amount_vnd, gateway } => DossierEvent::PaidOnline(PaidOnline {
                    occurred_at,
                    amount_vnd: i64::from_le_bytes(amount_vnd),
                    gateway,
                    transaction_ref: String::new(),
                }),
                Kind::ApologySent { new_appointment_at } => DossierEvent::ApologySent(ApologySent {
                    occurred_at,
                    reason: String::new(),
                    new_appointment_at,
                    letter_number: String::new(),
                }),
                Kind::SupplementRequested => DossierEvent::SupplementRequested(SupplementRequested {
                    occurred_at,
                    missing_components: Vec::new(),
                    officer: String::new(),
                }),
                Kind::SupplementReceived { due_at, calendars } => {
                    DossierEvent::SupplementReceived(SupplementReceived {
                        occurred_at,
                        due_at,
                        calendars: self.tables.calendars[calendars as usize].clone(),
                    })
                }
                Kind::ResultReturned(method) => DossierEvent::ResultReturned(ResultReturned { occurred_at, method }),
                Kind::SatisfactionRated(rating) => {
                    DossierEvent::SatisfactionRated(SatisfactionRated { occurred_at, rating })
                }
                Kind::Withdrawn => DossierEvent::Withdrawn(Withdrawn {
                    occurred_at,
                    reason: String::new(),
                }),
                Kind::RefusedAtIntake => DossierEvent::RefusedAtIntake(RefusedAtIntake {
                    occurred_at,
                    reason: String::new(),
                    officer: String::new(),
                }),
                Kind::Synced(status) => {
                    DossierEvent::SyncedToNationalPortal(SyncedToNationalPortal { occurred_at, status })
                }
            });
        }
        events
    }

    /// The dossier as it stands now: the state folded from every fact (with the blanks of
    /// [`Dossiers::events`]).
    pub fn state(&self, history: &History) -> DossierState {
        fold(&self.events(history, &history.facts))
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
        let from = self.next_position;
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
        if self.next_position - from > 1024 {
            self.shrink();
        }
        Ok(self.next_position)
    }

    /// Gives back the room the lists grew into beyond their contents (up to half of each after
    /// a long catch-up): each history's facts, the histories, their spans and the index.
    fn shrink(&mut self) {
        for history in &mut self.histories {
            history.facts.shrink_to_fit();
        }
        self.histories.shrink_to_fit();
        self.spans.shrink_to_fit();
        self.by_stream.shrink_to_fit();
    }

    /// Adds a whole history read from a snapshot, after those already there (snapshots keep
    /// the order first seen), its facts leaned and its span folded as live events are. Refused
    /// (`false`) when the stream is already there or the history is empty.
    pub(crate) fn restore_history(
        &mut self,
        stream_id: &str,
        events: impl ExactSizeIterator<Item = (DateTime<Utc>, DossierEvent)>,
    ) -> bool {
        if self.by_stream.contains_key(stream_id) || events.len() == 0 {
            return false;
        }
        let i = self.history_index(stream_id);
        self.histories[i].facts.reserve_exact(events.len());
        for (recorded_at, event) in events {
            self.push(i, recorded_at, &event);
        }
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
        self.by_stream.get(stream_id).map(|&i| &self.histories[i as usize])
    }
}
