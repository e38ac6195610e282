//! The portal's dossier-sync record: what one change of a dossier looks like to the national
//! portal, built from the dossier's events folded by the domain's own [`hoso_domain::evolve`]
//! (docs/portal-sync.md maps it field by field).

use std::collections::HashMap;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hoso_api::pb;
use hoso_domain::{DossierEvent, DossierState, STREAM_PREFIX};
use serde::{Deserialize, Serialize};

/// The event types the connector follows: every dossier event but its own
/// `SyncedToNationalPortal`, which comes back through the feed and is never synced again.
pub const FOLLOWED_EVENT_TYPES: [&str; 12] = [
    "DossierReceived",
    "DossierDigitized",
    "DossierProcessed",
    "EResultIssued",
    "PaidOnline",
    "ApologySent",
    "SupplementRequested",
    "SupplementReceived",
    "ResultReturned",
    "SatisfactionRated",
    "Withdrawn",
    "RefusedAtIntake",
];

/// One change of one dossier, as sent to the portal (JSON, times in UTC RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The event's id: the same on every resend, so the portal applies the record once.
    pub idempotency_key: String,
    /// The dossier's receipt code (mã hồ sơ).
    pub receipt_code: String,
    /// The procedure's code in the national catalogue (mã TTHC).
    pub procedure_code: String,
    /// The portal status after this change, 1 to 10.
    pub status: u8,
    /// When the dossier was received.
    pub received_at: DateTime<Utc>,
    /// The due date in force after this change.
    pub due_at: Option<DateTime<Utc>>,
    /// When handling ended (approved, stopped, withdrawn or refused), if it has.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the result was handed over, if it was.
    pub returned_at: Option<DateTime<Utc>>,
    /// The handling agency's unit code.
    pub handling_agency: String,
    /// How it was submitted: 1 in person, 2 online, 3 by post.
    pub channel: u8,
    /// Every change so far, oldest first, this one last.
    pub progress: Vec<ProgressEntry>,
    /// Where the change is in hoso's log (for the portal's support staff and ours).
    pub source: Source,
}

/// One step of a dossier's handling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressEntry {
    /// The event type, e.g. `DossierProcessed`.
    pub step: String,
    /// When it happened (business time).
    pub at: DateTime<Utc>,
    /// The portal status after it.
    pub status: u8,
}

/// A record's event in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Its position in the log.
    pub position: u64,
    /// Its version in the dossier's stream.
    pub version: u64,
    /// Its type.
    pub event_type: String,
}

/// The dossiers seen so far, folded: what a record needs besides its own event.
#[derive(Default)]
pub struct Dossiers {
    by_stream: HashMap<String, Folded>,
}

#[derive(Default)]
struct Folded {
    state: DossierState,
    progress: Vec<ProgressEntry>,
}

impl Dossiers {
    /// How many dossiers are folded.
    pub fn len(&self) -> usize {
        self.by_stream.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_stream.is_empty()
    }

    /// Folds one event of the feed into its dossier and returns its record; `None` for events
    /// outside dossiers and for the connector's own `SyncedToNationalPortal`.
    pub fn apply(&mut self, event: &pb::RecordedEvent) -> Result<Option<SyncRecord>> {
        if !event.stream_id.starts_with(STREAM_PREFIX) || !FOLLOWED_EVENT_TYPES.contains(&event.event_type.as_str()) {
            return Ok(None);
        }
        let decoded =
            DossierEvent::from_stored_json(&event.event_type, event.schema_version, event.data_json.as_bytes())
                .with_context(|| format!("cannot read event {} at position {}", event.event_type, event.position))?;
        let folded = self.by_stream.entry(event.stream_id.clone()).or_default();
        folded.state = hoso_domain::evolve(std::mem::take(&mut folded.state), &decoded);
        let state = &folded.state;
        let (Some(received), Some(status)) = (state.received.as_ref(), state.status) else {
            anyhow::bail!(
                "event {} at position {} comes before its dossier's receipt in the feed",
                event.event_type,
                event.position
            );
        };
        folded.progress.push(ProgressEntry {
            step: event.event_type.clone(),
            at: decoded.occurred_at(),
            status: status.code(),
        });
        let finished_at = state
            .approved_at
            .or(state.stopped_at)
            .or(state.withdrawn_at)
            .or(state.refused_at);
        Ok(Some(SyncRecord {
            idempotency_key: event.event_id.clone(),
            receipt_code: received.receipt_code.to_string(),
            procedure_code: received.procedure.code.to_string(),
            status: status.code(),
            received_at: received.occurred_at,
            due_at: state.due_at,
            finished_at,
            returned_at: state.returned_at,
            handling_agency: received.handling_agency.to_string(),
            channel: received.channel.code(),
            progress: folded.progress.clone(),
            source: Source {
                position: event.position,
                version: event.version,
                event_type: event.event_type.clone(),
            },
        }))
    }
}
