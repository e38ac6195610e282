//! The rows of `hoso_events` an append or an import inserts, as one array per column, and the
//! one statement that inserts them: the writer and the import write the same rows the same way.

use hoso_store::RecordedEvent;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::conn::{COLUMNS, bigint};

/// Inserts the rows of [`EventRows::params`] in one statement (one `unnest` of eleven arrays,
/// so a group of any size is one message to the server).
pub(crate) fn insert_statement() -> String {
    format!(
        "INSERT INTO hoso_events ({COLUMNS}) SELECT * FROM unnest($1::bigint[], $2::text[], \
         $3::bigint[], $4::uuid[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::bigint[], \
         $10::bigint[], $11::bytea[])"
    )
}

/// The columns of the rows to insert, in [`COLUMNS`] order; the text borrows from the caller.
#[derive(Default)]
pub(crate) struct EventRows<'a> {
    position: Vec<i64>,
    stream_id: Vec<&'a str>,
    version: Vec<i64>,
    event_id: Vec<Uuid>,
    event_type: Vec<&'a str>,
    schema_version: Vec<i64>,
    data: Vec<&'a str>,
    metadata: Vec<&'a str>,
    occurred_at: Vec<i64>,
    recorded_at: Vec<i64>,
    hash: Vec<Vec<u8>>,
}

/// The text columns of a row, borrowed for as long as the rows live (the record itself may not be).
pub(crate) struct RowText<'a> {
    pub(crate) stream_id: &'a str,
    pub(crate) event_type: &'a str,
    /// The data as JSON text.
    pub(crate) data: &'a str,
    /// The metadata as JSON text.
    pub(crate) metadata: &'a str,
}

impl<'a> EventRows<'a> {
    pub(crate) fn with_capacity(n: usize) -> EventRows<'a> {
        EventRows {
            position: Vec::with_capacity(n),
            stream_id: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            event_id: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            schema_version: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            occurred_at: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }

    /// Adds the row of `record`, whose text columns are `text`.
    pub(crate) fn push(&mut self, record: &RecordedEvent, text: RowText<'a>) {
        self.position.push(bigint(record.position));
        self.stream_id.push(text.stream_id);
        self.version.push(bigint(record.version));
        self.event_id.push(record.event_id);
        self.event_type.push(text.event_type);
        self.schema_version.push(i64::from(record.schema_version));
        self.data.push(text.data);
        self.metadata.push(text.metadata);
        self.occurred_at.push(record.occurred_at.timestamp_micros());
        self.recorded_at.push(record.recorded_at.timestamp_micros());
        self.hash.push(record.hash.to_vec());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    /// The parameters of [`insert_statement`].
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.position,
            &self.stream_id,
            &self.version,
            &self.event_id,
            &self.event_type,
            &self.schema_version,
            &self.data,
            &self.metadata,
            &self.occurred_at,
            &self.recorded_at,
            &self.hash,
        ]
    }
}
