-- Schema version 1 of hoso's event log in PostgreSQL (crate hoso-store-pg; docs/design.md,
-- "PostgreSQL store"). Applied once, inside the transaction that records the version.

-- The log's head: one row, locked by every append for the whole of its transaction, so that
-- appends take positions and commit in one order (the proof is in docs/design.md).
CREATE TABLE hoso_log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- The position the next appended event takes: the number of events in $all.
    next_position bigint NOT NULL CHECK (next_position >= 0),
    -- recorded_at of the last append, microseconds since the Unix epoch (0: none yet).
    last_recorded_at bigint NOT NULL
);
INSERT INTO hoso_log_head (singleton, next_position, last_recorded_at) VALUES (true, 0, 0);

-- Every event, one row each; the columns are the fields the chain hash covers, times as
-- microseconds since the Unix epoch exactly as hashed, data and metadata as the JSON text given.
CREATE TABLE hoso_events (
    position bigint PRIMARY KEY CHECK (position >= 0),
    stream_id text NOT NULL,
    version bigint NOT NULL CHECK (version >= 0),
    event_id uuid NOT NULL UNIQUE,
    event_type text NOT NULL,
    schema_version bigint NOT NULL CHECK (schema_version BETWEEN 0 AND 4294967295),
    data text NOT NULL,
    metadata text NOT NULL,
    occurred_at bigint NOT NULL,
    recorded_at bigint NOT NULL,
    hash bytea NOT NULL CHECK (octet_length(hash) = 32),
    UNIQUE (stream_id, version)
);
