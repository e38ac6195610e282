//! What the writer measures for the server's `/metrics`: one observation per fsync, never per
//! event, so that measuring costs the append path nothing it would notice.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The writer's histograms. Clones share their counts: the server registers a clone. The
/// PostgreSQL store fills them too, per group transaction (its "fsync" is the commit).
#[derive(Debug, Clone)]
pub struct WriteMetrics {
    /// Events made durable by each fsync of the log (group commit: one fsync answers many appends).
    pub batch_events: Histogram,
    /// How long each fsync of the log took, in seconds.
    pub fsync_seconds: Histogram,
}

impl Default for WriteMetrics {
    fn default() -> Self {
        WriteMetrics {
            // 1 to 16,384 events: a group holds at most 512 appends of a few events each.
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            // 100 µs (a battery-backed cache) to about 2.4 s (a disk in trouble).
            fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.5, 12)),
        }
    }
}
