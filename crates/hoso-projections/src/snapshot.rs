//! The snapshot of [`Dossiers`]: the whole read model and its checkpoint as one run of bytes,
//! so that a restart loads it and catches up from its checkpoint instead of replaying `$all`.
//!
//! Bytes only: the server decides where they go and writes them atomically.
//!
//! # Format (version 4)
//!
//! All integers little-endian.
//!
//! | field | bytes |
//! |---|---|
//! | magic `HOSOSNAP` | 8 |
//! | format version (`4`) | 4 (u32) |
//! | payload length | 8 (u64) |
//! | CRC-32 (IEEE) of the payload | 4 (u32) |
//! | payload | payload length |
//!
//! The payload: the log it was folded from, the id of the store (16 bytes, the UUID of
//! `hoso_store::EventStore::store_id`) and the chain hash of the event at position
//! checkpoint − 1 (32 bytes, zeros for checkpoint 0); then the checkpoint (u64, the next
//! position of `$all` the model needs), the number
//! of histories (u64), the number of chunks (u32), then each chunk: its length in bytes (u64)
//! and its bytes. A chunk is its number of histories (u32, at most [`CHUNK`]) and those
//! histories, in the order first seen: each its stream id (a string), its number of facts (u32),
//! and each fact: its `recorded_at` (a time) and its event (a tag byte, then the event's fields
//! in declaration order), as the lean model gives it ([`Dossiers::events`]): what the model does
//! not keep is blank (empty strings and lists, zero applicant and content hashes), so the
//! snapshot holds no more than memory does. Chunks are decoded on every core, a wave at a time,
//! and leaned into the model in order; they are encoded on every core.
//!
//! - A string is its UTF-8 length (u32) then its bytes; a list is its length (u32) then its
//!   items; an `Option` is a byte `0` (none) or `1` followed by the value; a bool is a byte `0`
//!   or `1`.
//! - A time is i64 microseconds since the Unix epoch, then a u16 of nanoseconds within the
//!   microsecond (almost always 0, but a desk's protobuf timestamp may carry nanoseconds and the
//!   stored JSON keeps them), with bit 15 set for a leap second (chrono's nanoseconds ≥ 10⁹).
//! - Codes (receipt, agency, procedure, content hash) are strings, checked again on reading; the
//!   applicant reference is its 16 UUID bytes; a statutory time is its amount (u32) and unit byte.
//! - A receipt ends with its procedure source (a byte: 0 catalogue, 1 declared, 2 outside the
//!   catalogue), its catalogue reference (an `Option` of version u32, decision string, effective
//!   date as a `YYYY-MM-DD` string) and its calendars; a supplement received ends with its
//!   calendars. Calendars are a list of (year i32 as u32 bits, version u32, provisional bool).
//! - Event tags, in the order of [`DossierEvent`]'s variants: 1 `DossierReceived` … 13
//!   `SyncedToNationalPortal`. Enum bytes: channel and portal status by their portal code;
//!   time unit, processing step, gateway, return method and satisfaction by their declaration
//!   order from 0.
//!
//! Nothing derived is stored: each history's facts and span are leaned and folded again from its
//! events, through the same code as live events, and the shared parts interned again. Any change of the layout (a new event, a new field) is
//! a new format version; a snapshot of another version is refused, and the server rebuilds from
//! the log, which is always the truth. So is a snapshot of another store (its store id differs),
//! and the server also checks the hash against the log's event at the checkpoint, which tells a
//! log that diverged after the snapshot was taken (a store restored from another backup).
//!
//! Version 4 is the lean model's (issue #23): no positions, blanks for what is not kept; version
//! 3 added the store id and the checkpoint hash; version 2 had neither.

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hoso_domain::event::{
    ApologySent, ComponentFile, DossierDigitized, DossierProcessed, DossierReceived, EResultIssued, PaidOnline,
    PaymentGateway, ProcedureSnapshot, ProcessingStep, RefusedAtIntake, ResultReturned, ReturnMethod, ReusedComponent,
    Satisfaction, SatisfactionRated, SupplementReceived, SupplementRequested, SyncedToNationalPortal, Withdrawn,
};
use hoso_domain::{
    AgencyCode, ApplicantRef, CalendarRef, CatalogueRef, Channel, ContentHash, DossierEvent, PortalStatus,
    ProcedureCode, ProcedureSource, ReceiptCode, StatutoryTime, TimeUnit,
};

use crate::model::{Dossiers, History};

/// The first bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"HOSOSNAP";
/// The format version this code writes and reads.
pub const VERSION: u32 = 4;
/// Magic, version, payload length and CRC.
const HEADER_LEN: usize = 8 + 4 + 8 + 4;
/// The most histories in one chunk of the payload.
pub const CHUNK: usize = 8192;

/// Why bytes are not a snapshot this code can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a projection snapshot (bad magic)")]
    BadMagic,
    /// Another format version, older or newer.
    #[error("snapshot format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// Fewer bytes than the header or the payload needs.
    #[error("the snapshot is truncated: {needed} bytes needed, {found} present")]
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes present.
        found: u64,
    },
    /// More bytes than the header announces.
    #[error("the snapshot has {extra} bytes after its payload")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// The payload's CRC-32 is not the one in the header.
    #[error("the snapshot's checksum does not match (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the payload as read.
        computed: u32,
    },
    /// The snapshot was folded from another store's log.
    #[error("the snapshot belongs to another store (store id {snapshot}; this store's id is {store})")]
    OtherStore {
        /// The store id in the snapshot.
        snapshot: uuid::Uuid,
        /// The id of the store it was offered to.
        store: uuid::Uuid,
    },
    /// The checksum matched but the payload does not hold together (written by a faulty
    /// encoder, not by a damaged disk).
    #[error("the snapshot's payload is malformed at byte {offset}: {reason}")]
    Malformed {
        /// Offset in the payload.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Dossiers {
    /// The model and its checkpoint as a snapshot of the log of the store `store_id` (see the
    /// [module docs](crate::snapshot)).
    pub fn encode_snapshot(&self, store_id: uuid::Uuid) -> Vec<u8> {
        self.encode_snapshot_in_chunks_of(store_id, CHUNK)
    }

    /// [`Dossiers::encode_snapshot`] with `chunk` histories a chunk (tests use small ones).
    pub(crate) fn encode_snapshot_in_chunks_of(&self, store_id: uuid::Uuid, chunk: usize) -> Vec<u8> {
        let groups: Vec<&[History]> = self.histories().chunks(chunk).collect();
        let chunks = par_map(&groups, |histories| encode_chunk(self, histories));
        let payload_len = 16 + 32 + 8 + 8 + 4 + chunks.iter().map(|c| 8 + c.len()).sum::<usize>();
        let mut w = Writer(Vec::with_capacity(HEADER_LEN + payload_len));
        w.0.resize(HEADER_LEN, 0);
        w.0.extend_from_slice(store_id.as_bytes());
        w.0.extend_from_slice(&self.checkpoint_hash());
        w.u64(self.checkpoint());
        w.u64(self.histories().len() as u64);
        w.len(chunks.len());
        for chunk in chunks {
            w.u64(chunk.len() as u64);
            w.0.extend_from_slice(&chunk);
        }
        let mut out = w.0;
        let payload_len = (out.len() - HEADER_LEN) as u64;
        let crc = crc32fast::hash(&out[HEADER_LEN..]);
        out[..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&payload_len.to_le_bytes());
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a snapshot written by [`Dossiers::encode_snapshot`] for the store `store_id`: the
    /// header is checked (magic, version, length, CRC) and then the store id before anything
    /// else is read, and every history is folded again from its facts. The caller checks
    /// [`Dossiers::checkpoint_hash`] against its log.
    pub fn decode_snapshot(bytes: &[u8], store_id: uuid::Uuid) -> Result<Dossiers, SnapshotError> {
        let truncated = |needed: usize| SnapshotError::Truncated {
            needed: needed as u64,
            found: bytes.len() as u64,
        };
        if bytes.len() < 8 || !bytes.starts_with(&MAGIC) {
            // A short file that starts like a snapshot is truncated; anything else is not one.
            return Err(if MAGIC.starts_with(bytes) {
                truncated(HEADER_LEN)
            } else {
                SnapshotError::BadMagic
            });
        }
        if bytes.len() < HEADER_LEN {
            return Err(truncated(HEADER_LEN));
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let version = word(8);
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        let payload_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let present = (bytes.len() - HEADER_LEN) as u64;
        if present < payload_len {
            return Err(SnapshotError::Truncated {
                // A damaged length may be near u64::MAX (found by the `snapshot` fuzz target).
                needed: payload_len.saturating_add(HEADER_LEN as u64),
                found: bytes.len() as u64,
            });
        }
        if present > payload_len {
            return Err(SnapshotError::TrailingBytes {
                extra: present - payload_len,
            });
        }
        let payload = &bytes[HEADER_LEN..];
        let (stored, computed) = (word(20), crc32fast::hash(payload));
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        if let Some(id) = payload.get(..16) {
            let snapshot = uuid::Uuid::from_slice(id).unwrap_or_default();
            if snapshot != store_id {
                return Err(SnapshotError::OtherStore {
                    snapshot,
                    store: store_id,
                });
            }
        }
        decode_payload(payload)
    }
}

/// Maps `items` to their results on every core, in contiguous groups, keeping their order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|group| scope.spawn(move || group.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

fn encode_chunk(model: &Dossiers, histories: &[History]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(histories.len() * 640));
    w.len(histories.len());
    for history in histories {
        w.str(&history.stream_id);
        w.len(history.facts.len());
        for (fact, event) in history.facts.iter().zip(model.events(history, &history.facts)) {
            w.time(fact.recorded_at);
            w.event(&event);
        }
    }
    w.0
}

/// One history as read from a snapshot: its stream id and its events with their `recorded_at`.
type RawHistory = (String, Vec<(DateTime<Utc>, DossierEvent)>);

fn decode_payload(payload: &[u8]) -> Result<Dossiers, SnapshotError> {
    let mut r = Reader { bytes: payload, at: 0 };
    r.take(16)?;
    let hash = r.array::<32>()?;
    let checkpoint = r.u64()?;
    let n_histories = r.u64()?;
    let n_chunks = r.len()?;
    // Where each chunk lies in the payload.
    let mut chunks = Vec::with_capacity(n_chunks.min(r.remaining() / 8));
    for _ in 0..n_chunks {
        let len = r.u64()?;
        let start = r.at;
        let len = usize::try_from(len).ok().filter(|&len| len <= r.remaining());
        let Some(len) = len else {
            return Err(r.malformed_at(start - 8, "a chunk runs past the payload".to_owned()));
        };
        r.take(len)?;
        chunks.push(start..start + len);
    }
    if r.remaining() > 0 {
        return Err(r.malformed(format!("{} bytes after the last chunk", r.remaining())));
    }
    let mut model = Dossiers::new();
    // Chunks are decoded on every core a wave at a time (so that the decoded events of only a
    // wave are held at once), then leaned into the model in order, interning as live events do.
    let wave = std::thread::available_parallelism().map_or(1, |n| n.get()) * 2;
    for ranges in chunks.chunks(wave) {
        let decoded = par_map(ranges, |range| decode_chunk(payload, range.clone()));
        for (chunk, range) in decoded.into_iter().zip(ranges) {
            for (stream_id, events) in chunk? {
                if !model.restore_history(&stream_id, events.into_iter()) {
                    return Err(r.malformed_at(
                        range.start,
                        format!("the stream {stream_id} appears twice or has no event"),
                    ));
                }
            }
        }
    }
    if model.histories().len() as u64 != n_histories {
        return Err(r.malformed_at(
            8,
            format!("{n_histories} histories announced, {} found", model.histories().len()),
        ));
    }
    model.restore_checkpoint(checkpoint, hash);
    Ok(model)
}

/// The histories of the chunk at `range` of the payload, decoded.
fn decode_chunk(payload: &[u8], range: Range<usize>) -> Result<Vec<RawHistory>, SnapshotError> {
    // Offsets in errors are the payload's.
    let mut r = Reader {
        bytes: &payload[..range.end],
        at: range.start,
    };
    let n_histories = r.len()?;
    if n_histories > CHUNK {
        return Err(r.malformed_at(range.start, format!("{n_histories} histories in one chunk")));
    }
    let mut res = Vec::with_capacity(n_histories);
    for _ in 0..n_histories {
        let stream_id = r.string()?;
        let n_facts = r.len()?;
        // Every fact takes at least 21 bytes: a bogus count cannot reserve much.
        let mut events = Vec::with_capacity(n_facts.min(r.remaining() / 21));
        for _ in 0..n_facts {
            let recorded_at = r.time()?;
            events.push((recorded_at, r.event()?));
        }
        res.push((stream_id, events));
    }
    if r.remaining() > 0 {
        return Err(r.malformed(format!("{} bytes after the chunk's last history", r.remaining())));
    }
    Ok(res)
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn calendars(&mut self, calendars: &[CalendarRef]) {
        self.len(calendars.len());
        for calendar in calendars {
            self.u32(calendar.year.cast_unsigned());
            self.u32(calendar.version);
            self.bool(calendar.provisional);
        }
    }

    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("no list or string in a dossier event reaches 4 GiB"));
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    fn time(&mut self, t: DateTime<Utc>) {
        let nanos = t.timestamp_subsec_nanos();
        let (leap, nanos) = (nanos >= 1_000_000_000, nanos % 1_000_000_000);
        self.i64(t.timestamp() * 1_000_000 + i64::from(nanos / 1000));
        let extra = (nanos % 1000) as u16 | if leap { 0x8000 } else { 0 };
        self.0.extend_from_slice(&extra.to_le_bytes());
    }

    fn statutory(&mut self, t: StatutoryTime) {
        self.u32(t.amount);
        self.u8(match t.unit {
            TimeUnit::WorkingDays => 0,
            TimeUnit::WorkingHours => 1,
            TimeUnit::CalendarDays => 2,
        });
    }

    fn event(&mut self, event: &DossierEvent) {
        match event {
            DossierEvent::DossierReceived(e) => {
                self.u8(1);
                self.time(e.occurred_at);
                self.str(e.receipt_code.as_str());
                let p = &e.procedure;
                self.str(p.code.as_str());
                self.str(&p.name);
                self.statutory(p.statutory_time);
                self.bool(p.full_online_eligible);
                self.bool(p.paper_result);
                self.i64(p.fee_vnd);
                self.str(e.receiving_desk.as_str());
                self.str(e.handling_agency.as_str());
                self.u8(e.channel.code());
                self.bool(e.green_lane);
                self.statutory(e.effective_time);
                self.0.extend_from_slice(e.applicant.0.as_bytes());
                self.time(e.due_at);
                self.u8(match e.procedure_source {
                    ProcedureSource::Catalogue => 0,
                    ProcedureSource::Declared => 1,
                    ProcedureSource::OutsideCatalogue => 2,
                });
                match &e.catalogue {
                    None => self.u8(0),
                    Some(catalogue) => {
                        self.u8(1);
                        self.u32(catalogue.version);
                        self.str(&catalogue.decision);
                        self.str(&catalogue.effective_from.format("%Y-%m-%d").to_string());
                    }
                }
                self.calendars(&e.calendars);
            }
            DossierEvent::DossierDigitized(e) => {
                self.u8(2);
                self.time(e.occurred_at);
                self.len(e.files.len());
                for f in &e.files {
                    self.str(&f.component);
                    self.str(f.content_hash.as_str());
                }
                self.len(e.reused.len());
                for c in &e.reused {
                    self.str(&c.component);
                    self.str(&c.source);
                }
                self.bool(e.result_digitized);
            }
            DossierEvent::DossierProcessed(e) => {
                self.u8(3);
                self.time(e.occurred_at);
                self.u8(match e.step {
                    ProcessingStep::Transferred => 0,
                    ProcessingStep::Appraised => 1,
                    ProcessingStep::Approved => 2,
                    ProcessingStep::Stopped => 3,
                });
                self.str(&e.officer);
                self.opt_str(e.to_unit.as_ref().map(AgencyCode::as_str));
                self.opt_str(e.reason.as_deref());
            }
            DossierEvent::EResultIssued(e) => {
                self.u8(4);
                self.time(e.occurred_at);
                self.str(&e.result_id);
                self.str(e.content_hash.as_str());
                self.str(&e.signer);
            }
            DossierEvent::PaidOnline(e) => {
                self.u8(5);
                self.time(e.occurred_at);
                self.i64(e.amount_vnd);
                self.u8(match e.gateway {
                    PaymentGateway::NationalPortal => 0,
                    PaymentGateway::Provincial => 1,
                });
                self.str(&e.transaction_ref);
            }
            DossierEvent::ApologySent(e) => {
                self.u8(6);
                self.time(e.occurred_at);
                self.str(&e.reason);
                self.time(e.new_appointment_at);
                self.str(&e.letter_number);
            }
            DossierEvent::SupplementRequested(e) => {
                self.u8(7);
                self.time(e.occurred_at);
                self.len(e.missing_components.len());
                for c in &e.missing_components {
                    self.str(c);
                }
                self.str(&e.officer);
            }
            DossierEvent::SupplementReceived(e) => {
                self.u8(8);
                self.time(e.occurred_at);
                self.time(e.due_at);
                self.calendars(&e.calendars);
            }
            DossierEvent::ResultReturned(e) => {
                self.u8(9);
                self.time(e.occurred_at);
                self.u8(match e.method {
                    ReturnMethod::AtDesk => 0,
                    ReturnMethod::ByPost => 1,
                    ReturnMethod::Online => 2,
                });
            }
            DossierEvent::SatisfactionRated(e) => {
                self.u8(10);
                self.time(e.occurred_at);
                self.u8(match e.rating {
                    Satisfaction::Satisfied => 0,
                    Satisfaction::Unsatisfied => 1,
                });
            }
            DossierEvent::Withdrawn(e) => {
                self.u8(11);
                self.time(e.occurred_at);
                self.str(&e.reason);
            }
            DossierEvent::RefusedAtIntake(e) => {
                self.u8(12);
                self.time(e.occurred_at);
                self.str(&e.reason);
                self.str(&e.officer);
            }
            DossierEvent::SyncedToNationalPortal(e) => {
                self.u8(13);
                self.time(e.occurred_at);
                self.u8(e.status.code());
            }
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn malformed_at(&self, offset: usize, reason: String) -> SnapshotError {
        SnapshotError::Malformed { offset, reason }
    }

    fn malformed(&self, reason: impl Into<String>) -> SnapshotError {
        self.malformed_at(self.at, reason.into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if self.remaining() < n {
            return Err(self.malformed(format!("{n} bytes needed, {} left", self.remaining())));
        }
        let bytes = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    fn bool(&mut self) -> Result<bool, SnapshotError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.malformed(format!("{other} is not a bool"))),
        }
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, SnapshotError> {
        Ok(self.u32()? as usize)
    }

    fn str(&mut self) -> Result<&'a str, SnapshotError> {
        let n = self.len()?;
        let at = self.at;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map_err(|err| self.malformed_at(at, format!("a string is not UTF-8: {err}")))
    }

    fn string(&mut self) -> Result<String, SnapshotError> {
        self.str().map(str::to_owned)
    }

    fn opt_string(&mut self) -> Result<Option<String>, SnapshotError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.string().map(Some),
            other => Err(self.malformed(format!("{other} is not an option tag"))),
        }
    }

    fn calendars(&mut self) -> Result<Vec<CalendarRef>, SnapshotError> {
        let n = self.len()?;
        let mut res = Vec::with_capacity(n.min(self.remaining() / 9));
        for _ in 0..n {
            res.push(CalendarRef {
                year: self.u32()?.cast_signed(),
                version: self.u32()?,
                provisional: self.bool()?,
            });
        }
        Ok(res)
    }

    fn strings(&mut self) -> Result<Vec<String>, SnapshotError> {
        let n = self.len()?;
        let mut res = Vec::with_capacity(n.min(self.remaining() / 4));
        for _ in 0..n {
            res.push(self.string()?);
        }
        Ok(res)
    }

    /// A code checked by the domain's own parser.
    fn code<T>(
        &mut self,
        field: &'static str,
        parse: fn(&'static str, &str) -> Result<T, hoso_domain::DomainError>,
    ) -> Result<T, SnapshotError> {
        let at = self.at;
        let s = self.str()?;
        parse(field, s).map_err(|err| self.malformed_at(at, err.to_string()))
    }

    fn time(&mut self) -> Result<DateTime<Utc>, SnapshotError> {
        let at = self.at;
        let micros = self.i64()?;
        let extra = u16::from_le_bytes(self.array()?);
        let (leap, sub_micro) = (extra & 0x8000 != 0, u32::from(extra & 0x7fff));
        let nanos = micros.rem_euclid(1_000_000) as u32 * 1000 + sub_micro + if leap { 1_000_000_000 } else { 0 };
        (sub_micro < 1000)
            .then(|| DateTime::from_timestamp(micros.div_euclid(1_000_000), nanos))
            .flatten()
            .ok_or_else(|| self.malformed_at(at, format!("{micros} µs + {extra:#x} is not a time")))
    }

    fn statutory(&mut self) -> Result<StatutoryTime, SnapshotError> {
        let amount = self.u32()?;
        let unit = match self.u8()? {
            0 => TimeUnit::WorkingDays,
            1 => TimeUnit::WorkingHours,
            2 => TimeUnit::CalendarDays,
            other => return Err(self.malformed(format!("{other} is not a time unit"))),
        };
        Ok(StatutoryTime { amount, unit })
    }

    fn agency(&mut self, field: &'static str) -> Result<AgencyCode, SnapshotError> {
        self.code(field, AgencyCode::parse)
    }

    fn event(&mut self) -> Result<DossierEvent, SnapshotError> {
        let tag_at = self.at;
        let tag = self.u8()?;
        let occurred_at = self.time()?;
        let event = match tag {
            1 => DossierEvent::DossierReceived(Arc::new(DossierReceived {
                occurred_at,
                receipt_code: self.code("receipt_code", ReceiptCode::parse)?,
                procedure: ProcedureSnapshot {
                    code: self.code("procedure.code", ProcedureCode::parse)?,
                    name: self.string()?,
                    statutory_time: self.statutory()?,
                    full_online_eligible: self.bool()?,
                    paper_result: self.bool()?,
                    fee_vnd: self.i64()?,
                },
                receiving_desk: self.agency("receiving_desk")?,
                handling_agency: self.agency("handling_agency")?,
                channel: {
                    let code = self.u8()?;
                    Channel::from_code(code).ok_or_else(|| self.malformed(format!("{code} is not a channel")))?
                },
                green_lane: self.bool()?,
                effective_time: self.statutory()?,
                applicant: ApplicantRef(uuid::Uuid::from_bytes(self.array()?)),
                due_at: self.time()?,
                procedure_source: match self.u8()? {
                    0 => ProcedureSource::Catalogue,
                    1 => ProcedureSource::Declared,
                    2 => ProcedureSource::OutsideCatalogue,
                    other => return Err(self.malformed(format!("{other} is not a procedure source"))),
                },
                catalogue: match self.u8()? {
                    0 => None,
                    1 => Some(CatalogueRef {
                        version: self.u32()?,
                        decision: self.string()?,
                        effective_from: {
                            let at = self.at;
                            let text = self.str()?;
                            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                                .map_err(|err| self.malformed_at(at, format!("{text:?} is not a date: {err}")))?
                        },
                    }),
                    other => return Err(self.malformed(format!("{other} is not an option tag"))),
                },
                calendars: self.calendars()?,
            })),
            2 => {
                let n = self.len()?;
                let mut files = Vec::with_capacity(n.min(self.remaining() / 8));
                for _ in 0..n {
                    files.push(ComponentFile {
                        component: self.string()?,
                        content_hash: self.code("content_hash", ContentHash::parse)?,
                    });
                }
                let n = self.len()?;
                let mut reused = Vec::with_capacity(n.min(self.remaining() / 8));
                for _ in 0..n {
                    reused.push(ReusedComponent {
                        component: self.string()?,
                        source: self.string()?,
                    });
                }
                DossierEvent::DossierDigitized(DossierDigitized {
                    occurred_at,
                    files,
                    reused,
                    result_digitized: self.bool()?,
                })
            }
            3 => DossierEvent::DossierProcessed(DossierProcessed {
                occurred_at,
                step: match self.u8()? {
                    0 => ProcessingStep::Transferred,
                    1 => ProcessingStep::Appraised,
                    2 => ProcessingStep::Approved,
                    3 => ProcessingStep::Stopped,
                    other => return Err(self.malformed(format!("{other} is not a processing step"))),
                },
                officer: self.string()?,
                to_unit: match self.u8()? {
                    0 => None,
                    1 => Some(self.agency("to_unit")?),
                    other => return Err(self.malformed(format!("{other} is not an option tag"))),
                },
                reason: self.opt_string()?,
            }),
            4 => DossierEvent::EResultIssued(EResultIssued {
                occurred_at,
                result_id: self.string()?,
                content_hash: self.code("content_hash", ContentHash::parse)?,
                signer: self.string()?,
            }),
            5 => DossierEvent::PaidOnline(PaidOnline {
                occurred_at,
                amount_vnd: self.i64()?,
                gateway: match self.u8()? {
                    0 => PaymentGateway::NationalPortal,
                    1 => PaymentGateway::Provincial,
                    other => return Err(self.malformed(format!("{other} is not a payment gateway"))),
                },
                transaction_ref: self.string()?,
            }),
            6 => DossierEvent::ApologySent(ApologySent {
                occurred_at,
                reason: self.string()?,
                new_appointment_at: self.time()?,
                letter_number: self.string()?,
            }),
            7 => DossierEvent::SupplementRequested(SupplementRequested {
                occurred_at,
                missing_components: self.strings()?,
                officer: self.string()?,
            }),
            8 => DossierEvent::SupplementReceived(SupplementReceived {
                occurred_at,
                due_at: self.time()?,
                calendars: self.calendars()?,
            }),
            9 => DossierEvent::ResultReturned(ResultReturned {
                occurred_at,
                method: match self.u8()? {
                    0 => ReturnMethod::AtDesk,
                    1 => ReturnMethod::ByPost,
                    2 => ReturnMethod::Online,
                    other => return Err(self.malformed(format!("{other} is not a return method"))),
                },
            }),
            10 => DossierEvent::SatisfactionRated(SatisfactionRated {
                occurred_at,
                rating: match self.u8()? {
                    0 => Satisfaction::Satisfied,
                    1 => Satisfaction::Unsatisfied,
                    other => return Err(self.malformed(format!("{other} is not a satisfaction"))),
                },
            }),
            11 => DossierEvent::Withdrawn(Withdrawn {
                occurred_at,
                reason: self.string()?,
            }),
            12 => DossierEvent::RefusedAtIntake(RefusedAtIntake {
                occurred_at,
                reason: self.string()?,
                officer: self.string()?,
            }),
            13 => DossierEvent::SyncedToNationalPortal(SyncedToNationalPortal {
                occurred_at,
                status: {
                    let code = self.u8()?;
                    PortalStatus::from_code(code)
                        .ok_or_else(|| self.malformed(format!("{code} is not a portal status")))?
                },
            }),
            other => return Err(self.malformed_at(tag_at, format!("{other} is not an event tag"))),
        };
        Ok(event)
    }
}

#[cfg(test)]
mod tests;
