//! Prometheus metrics on plain HTTP (`GET /metrics`): the log's head, whether the store accepts
//! writes, and how far the live projection lags behind the log.

use std::fmt::Write;
use std::sync::Arc;

use hoso_store::EventStore;

use crate::app::App;
use crate::projection::Projection;

/// The metrics in the Prometheus text format.
pub async fn render<S: EventStore>(app: &App<S>, projection: &Projection) -> String {
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
    out
}

/// The `/metrics` router.
pub fn router<S: EventStore>(app: Arc<App<S>>, projection: Arc<Projection>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let app = Arc::clone(&app);
            let projection = Arc::clone(&projection);
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(&app, &projection).await,
                )
            }
        }),
    )
}
