//! Prometheus metrics on plain HTTP (`GET /metrics`): the log's head, whether the store accepts
//! writes, what recovery cut off the log and kept in quarantine, how far the live projection
//! lags behind the log (and whether it stopped), the catalogue's version, whether a
//! holiday notice is missing, and the change feed's open streams and queued messages.

use std::fmt::Write;
use std::sync::Arc;

use hoso_store::EventStore;

use crate::app::App;
use crate::feed::FeedStats;
use crate::projection::Projection;

/// The metrics in the Prometheus text format.
pub async fn render<S: EventStore>(app: &App<S>, projection: &Projection, feed: &FeedStats) -> String {
    let head = app.store.head();
    let applied = projection.applied();
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge(
        "hoso_store_head_position",
        "Events in the log (the position after the last durable event).",
        head,
    );
    gauge(
        "hoso_store_accepting_writes",
        "1 while the store accepts writes, 0 after a disk error until the server is restarted.",
        u64::from(app.store.write_refusal().is_none()),
    );
    let quarantined = app.store.quarantined();
    gauge(
        "hoso_store_quarantined_cuts",
        "Cuts of the log's end that recovery kept in quarantine files and that are still there (docs/operations.md).",
        quarantined.len() as u64,
    );
    gauge(
        "hoso_store_quarantined_bytes",
        "Bytes cut off the log's end by recovery and kept in quarantine files.",
        quarantined.iter().map(|q| q.bytes).sum(),
    );
    gauge(
        "hoso_store_quarantined_possibly_acknowledged",
        "Quarantine files holding a whole damaged entry, which may have been an acknowledged append (ERROR: docs/operations.md).",
        quarantined.iter().filter(|q| q.may_have_been_acknowledged).count() as u64,
    );
    gauge(
        "hoso_projection_stopped",
        "1 when the projection stopped on an event it cannot read (reports answer DATA_LOSS; docs/operations.md).",
        u64::from(projection.stopped().is_some()),
    );
    gauge(
        "hoso_projection_applied_position",
        "Events applied by the live projection.",
        applied,
    );
    gauge(
        "hoso_projection_lag_events",
        "Events in the log not yet applied by the live projection.",
        head.saturating_sub(applied),
    );
    gauge(
        "hoso_projection_dossiers",
        "Dossiers in the live projection.",
        projection.dossiers().await as u64,
    );
    gauge(
        "hoso_projection_rebuilding",
        "1 while a rebuild runs.",
        u64::from(projection.is_rebuilding()),
    );
    let reference = app.reference.current();
    gauge(
        "hoso_catalogue_version",
        "Catalogue decisions loaded (0: no catalogue; desks cannot receive).",
        u64::from(reference.catalogue.version()),
    );
    gauge(
        "hoso_feed_streams",
        "Change-feed streams open now.",
        feed.streams() as u64,
    );
    gauge(
        "hoso_feed_queued_messages",
        "Change-feed messages made and not yet taken by the transport, over every stream (at most 65 a stream).",
        feed.queued() as u64,
    );
    let _ = writeln!(
        out,
        "# HELP hoso_feed_events_read_total Events the change feed's streams read from the log.\n# TYPE hoso_feed_events_read_total counter\nhoso_feed_events_read_total {}",
        feed.events_read()
    );
    let name = "hoso_calendar_notice_missing";
    let _ = writeln!(
        out,
        "# HELP {name} 1 while no holiday notice is loaded for the year (this year; next year from 1 October): its due dates use a provisional calendar.\n# TYPE {name} gauge"
    );
    for (year, missing) in reference.notices_watched(chrono::Utc::now()) {
        let _ = writeln!(out, "{name}{{year=\"{year}\"}} {}", u64::from(missing));
    }
    out
}

/// The `/metrics` router.
pub fn router<S: EventStore>(app: Arc<App<S>>, projection: Arc<Projection>, feed: Arc<FeedStats>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let app = Arc::clone(&app);
            let projection = Arc::clone(&projection);
            let feed = Arc::clone(&feed);
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(&app, &projection, &feed).await,
                )
            }
        }),
    )
}
