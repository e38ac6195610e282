//! Prometheus metrics on plain HTTP (`GET /metrics`, `metrics_listen`), in a registry of the
//! server's own (prometheus-client; CHOICES.md): every gRPC call by method and status code, with
//! its latency; the store's group commits (events per fsync, fsync time), durable head, indexer
//! backlog and write refusals; what recovery kept in quarantine; the live projection's lag in
//! events and, event by event, in seconds; the snapshot's age; open connections; the catalogue,
//! the holiday notices and the change feed; and the build. docs/operations.md lists those to
//! alert on.
//!
//! Counters and histograms are updated where things happen (the gRPC layer below, the store's
//! syncer, the projection, the connection limit); the gauges that describe a state are sampled
//! at each scrape.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Instant;

use hoso_store::EventStore;
use http_body::Frame;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use tonic::codegen::http;
use tower_layer::Layer;
use tower_service::Service;

use crate::app::App;
use crate::feed::FeedStats;
use crate::projection::Projection;

/// The buckets of gRPC latencies: 0.5 ms to 2.5 s (a desk command is a few milliseconds; a
/// report over a province's year, seconds).
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The label of a call's method when the server does not know it: made-up paths must not grow
/// the set of series without bound.
const UNKNOWN_METHOD: &str = "unknown";

/// A gRPC call's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    /// `/package.Service/Method`.
    method: String,
    /// The status code's name, as in the gRPC specification (`OK`, `INVALID_ARGUMENT`, ...).
    code: &'static str,
}

/// A year's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Year {
    year: i32,
}

/// The build's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
    /// `sled` (the embedded store) or `postgres`.
    backend: &'static str,
}

/// Every metric of the server, in its registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<Call, Counter>,
    durations: Family<Call, Histogram, fn() -> Histogram>,
    connections: Gauge,
    connections_refused: Counter,
    head: Gauge,
    accepting_writes: Gauge,
    index_backlog: Gauge,
    quarantined_cuts: Gauge,
    quarantined_bytes: Gauge,
    quarantined_possibly_acknowledged: Gauge,
    projection_stopped: Gauge,
    projection_applied: Gauge,
    projection_lag_events: Gauge,
    projection_dossiers: Gauge,
    projection_rebuilding: Gauge,
    snapshot_age: Option<Gauge<f64, AtomicU64>>,
    catalogue_version: Gauge,
    notice_missing: Family<Year, Gauge>,
    feed_streams: Gauge,
    feed_queued: Gauge,
    feed_events_read: Counter,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// The server's metrics: `store` lends the writer's histograms (if it measures them),
    /// `projection` its lag histogram; the snapshot's age is reported when `snapshots` are on.
    pub fn new<S: EventStore>(
        store: &S,
        backend: &'static str,
        projection: &Projection,
        snapshots: bool,
    ) -> Arc<Metrics> {
        let mut registry = Registry::default();
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let requests = Family::<Call, Counter>::default();
        registry.register(
            "hoso_grpc_requests",
            "gRPC calls answered, by method and status code (a streaming call counts when it ends).",
            requests.clone(),
        );
        let durations =
            Family::<Call, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "hoso_grpc_request_duration",
            "How long gRPC calls took, from the request to the status (a streaming call: to its end).",
            Unit::Seconds,
            durations.clone(),
        );
        let connections = gauge(
            &mut registry,
            "hoso_connections",
            "Client connections open now (limits.max_connections).",
        );
        let connections_refused = Counter::default();
        registry.register(
            "hoso_connections_refused",
            "Connections closed at once because limits.max_connections were open.",
            connections_refused.clone(),
        );
        let head = gauge(
            &mut registry,
            "hoso_store_head_position",
            "Events in the log (the position after the last durable event).",
        );
        let accepting_writes = gauge(
            &mut registry,
            "hoso_store_accepting_writes",
            "1 while the store accepts writes, 0 after a disk error until the server is restarted.",
        );
        let index_backlog = gauge(
            &mut registry,
            "hoso_store_index_backlog_events",
            "Durable events the embedded store's background indexer has not indexed yet (appends stall at 65,536).",
        );
        if let Some(write) = store.write_metrics() {
            registry.register(
                "hoso_store_append_batch_events",
                "Events made durable by each fsync of the log (group commit; on PostgreSQL, by each group's transaction).",
                write.batch_events,
            );
            registry.register_with_unit(
                "hoso_store_fsync_duration",
                "How long each fsync of the log took (on PostgreSQL: each group's transaction).",
                Unit::Seconds,
                write.fsync_seconds,
            );
        }
        let quarantined_cuts = gauge(
            &mut registry,
            "hoso_store_quarantined_cuts",
            "Cuts of the log's end that recovery kept in quarantine files and that are still there (docs/operations.md).",
        );
        let quarantined_bytes = gauge(
            &mut registry,
            "hoso_store_quarantined_bytes",
            "Bytes cut off the log's end by recovery and kept in quarantine files.",
        );
        let quarantined_possibly_acknowledged = gauge(
            &mut registry,
            "hoso_store_quarantined_possibly_acknowledged",
            "Quarantine files holding a whole damaged entry, which may have been an acknowledged append (ERROR: docs/operations.md).",
        );
        let projection_stopped = gauge(
            &mut registry,
            "hoso_projection_stopped",
            "1 when the projection stopped on an event it cannot read (reports answer DATA_LOSS; docs/operations.md).",
        );
        let projection_applied = gauge(
            &mut registry,
            "hoso_projection_applied_position",
            "Events applied by the live projection.",
        );
        let projection_lag_events = gauge(
            &mut registry,
            "hoso_projection_lag_events",
            "Events in the log not yet applied by the live projection.",
        );
        registry.register_with_unit(
            "hoso_projection_lag",
            "For each event the live projection applied as it followed the log: the time from its recording to its application.",
            Unit::Seconds,
            projection.lag_histogram(),
        );
        let projection_dossiers = gauge(
            &mut registry,
            "hoso_projection_dossiers",
            "Dossiers in the live projection.",
        );
        let projection_rebuilding = gauge(&mut registry, "hoso_projection_rebuilding", "1 while a rebuild runs.");
        let snapshot_age = snapshots.then(|| {
            let age = Gauge::<f64, AtomicU64>::default();
            registry.register_with_unit(
                "hoso_projection_snapshot_age",
                "Time since the snapshot file was last known current (written, or found up to date by a periodic save; from the start until the first).",
                Unit::Seconds,
                age.clone(),
            );
            age
        });
        let catalogue_version = gauge(
            &mut registry,
            "hoso_catalogue_version",
            "Catalogue decisions loaded (0: no catalogue; desks cannot receive).",
        );
        let notice_missing = Family::<Year, Gauge>::default();
        registry.register(
            "hoso_calendar_notice_missing",
            "1 while no holiday notice is loaded for the year (this year; next year from 1 October): its due dates use a provisional calendar.",
            notice_missing.clone(),
        );
        let feed_streams = gauge(&mut registry, "hoso_feed_streams", "Change-feed streams open now.");
        let feed_queued = gauge(
            &mut registry,
            "hoso_feed_queued_messages",
            "Change-feed messages made and not yet taken by the transport, over every stream (at most 65 a stream).",
        );
        let feed_events_read = Counter::default();
        registry.register(
            "hoso_feed_events_read",
            "Events the change feed's streams read from the log.",
            feed_events_read.clone(),
        );
        registry.register(
            "hoso_build",
            "The server's version and store backend (always 1).",
            Info::new(Build {
                version: env!("CARGO_PKG_VERSION"),
                backend,
            }),
        );
        Arc::new(Metrics {
            registry,
            requests,
            durations,
            connections,
            connections_refused,
            head,
            accepting_writes,
            index_backlog,
            quarantined_cuts,
            quarantined_bytes,
            quarantined_possibly_acknowledged,
            projection_stopped,
            projection_applied,
            projection_lag_events,
            projection_dossiers,
            projection_rebuilding,
            snapshot_age,
            catalogue_version,
            notice_missing,
            feed_streams,
            feed_queued,
            feed_events_read,
        })
    }

    /// The gauge of open connections and the counter of refused ones, for the connection limit.
    pub(crate) fn connection_gauges(&self) -> (Gauge, Counter) {
        (self.connections.clone(), self.connections_refused.clone())
    }

    /// Counts a gRPC call that ended with status `code` after `elapsed` seconds.
    fn record_call(&self, method: &str, code: i32, elapsed: f64) {
        // Made-up paths are answered UNIMPLEMENTED: they share one series.
        let method = if code == tonic::Code::Unimplemented as i32 {
            UNKNOWN_METHOD
        } else {
            method
        };
        let call = Call {
            method: method.to_owned(),
            code: code_name(code),
        };
        self.requests.get_or_create(&call).inc();
        self.durations.get_or_create(&call).observe(elapsed);
    }

    /// Samples the state gauges and encodes every metric in the text format.
    pub async fn render<S: EventStore>(&self, app: &App<S>, projection: &Projection, feed: &FeedStats) -> String {
        let as_gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let head = app.store.head();
        let applied = projection.applied();
        self.head.set(as_gauge(head));
        self.accepting_writes
            .set(i64::from(app.store.write_refusal().is_none()));
        self.index_backlog.set(as_gauge(app.store.index_backlog().unwrap_or(0)));
        let quarantined = app.store.quarantined();
        self.quarantined_cuts.set(as_gauge(quarantined.len() as u64));
        self.quarantined_bytes
            .set(as_gauge(quarantined.iter().map(|q| q.bytes).sum()));
        self.quarantined_possibly_acknowledged.set(as_gauge(
            quarantined.iter().filter(|q| q.may_have_been_acknowledged).count() as u64,
        ));
        self.projection_stopped.set(i64::from(projection.stopped().is_some()));
        self.projection_applied.set(as_gauge(applied));
        self.projection_lag_events.set(as_gauge(head.saturating_sub(applied)));
        self.projection_dossiers
            .set(as_gauge(projection.dossiers().await as u64));
        self.projection_rebuilding.set(i64::from(projection.is_rebuilding()));
        if let Some(age) = &self.snapshot_age {
            age.set(projection.snapshot_current_for().as_secs_f64());
        }
        let reference = app.reference.current();
        self.catalogue_version.set(i64::from(reference.catalogue.version()));
        // Only the years watched now: last year's series ends on 1 January.
        self.notice_missing.clear();
        for (year, missing) in reference.notices_watched(chrono::Utc::now()) {
            self.notice_missing
                .get_or_create(&Year { year })
                .set(i64::from(missing));
        }
        self.feed_streams.set(as_gauge(feed.streams() as u64));
        self.feed_queued.set(as_gauge(feed.queued() as u64));
        let read = feed.events_read();
        let counted = self.feed_events_read.get();
        self.feed_events_read.inc_by(read.saturating_sub(counted));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The name of gRPC status `code`, as the gRPC specification spells it.
fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The content type of the exposition (prometheus-client writes OpenMetrics text).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `/metrics` router.
pub fn router<S: EventStore>(
    metrics: Arc<Metrics>,
    app: Arc<App<S>>,
    projection: Arc<Projection>,
    feed: Arc<FeedStats>,
) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            let app = Arc::clone(&app);
            let projection = Arc::clone(&projection);
            let feed = Arc::clone(&feed);
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    metrics.render(&app, &projection, &feed).await,
                )
            }
        }),
    )
}

/// Wraps the gRPC services in [`CountCalls`].
#[derive(Clone)]
pub(crate) struct CountCallsLayer(pub(crate) Arc<Metrics>);

impl<S> Layer<S> for CountCallsLayer {
    type Service = CountCalls<S>;

    fn layer(&self, inner: S) -> CountCalls<S> {
        CountCalls {
            inner,
            metrics: Arc::clone(&self.0),
        }
    }
}

/// Counts every gRPC call by method and status code, with its duration.
///
/// tonic answers an error before any message (every unary error) in "trailers-only" form: the
/// `grpc-status` is in the response headers, and the call is counted then. Otherwise the status
/// comes in the trailers after the messages, and the response body is wrapped to read it there;
/// a body dropped before its trailers (the client went away) counts as CANCELLED.
#[derive(Clone)]
pub(crate) struct CountCalls<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<http::Request<B>> for CountCalls<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = Pending {
            metrics: Arc::clone(&self.metrics),
            method: request.uri().path().to_owned(),
            started: Instant::now(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if let Some(code) = grpc_status(response.headers()) {
                call.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(CountedBody {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// The `grpc-status` of headers or trailers, if they carry one.
fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// A call whose status is not known yet.
struct Pending {
    metrics: Arc<Metrics>,
    method: String,
    started: Instant,
}

impl Pending {
    fn finish(self, code: i32) {
        self.metrics
            .record_call(&self.method, code, self.started.elapsed().as_secs_f64());
    }
}

/// A response body that counts its call when its trailers pass (or when it is dropped).
struct CountedBody {
    inner: tonic::body::Body,
    call: Option<Pending>,
}

impl http_body::Body for CountedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status)
                    && let Some(call) = self.call.take()
                {
                    call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = self.call.take() {
                    call.finish(tonic::Code::Internal as i32);
                }
            }
            Poll::Ready(None) | Poll::Pending => {}
        }
        polled
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(tonic::Code::Cancelled as i32);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::convert::Infallible;

    use bytes::Bytes;
    use hoso_store::MemoryStore;
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn metrics() -> Arc<Metrics> {
        Metrics::new(&MemoryStore::new(), "sled", &Projection::new(), true)
    }

    /// A service that answers as tonic does: an error in trailers-only headers, or a message
    /// followed by trailers with the status.
    #[derive(Clone)]
    struct Answers(Option<&'static str>);

    impl Service<http::Request<()>> for Answers {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let response = match self.0 {
                Some(code) => {
                    let mut response = http::Response::new(tonic::body::Body::empty());
                    response.headers_mut().insert("grpc-status", code.parse().unwrap());
                    response
                }
                None => {
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", "0".parse().unwrap());
                    let frames: Vec<Result<Frame<Bytes>, tonic::Status>> = vec![
                        Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
                        Ok(Frame::trailers(trailers)),
                    ];
                    http::Response::new(tonic::body::Body::new(StreamBody::new(tokio_stream::iter(frames))))
                }
            };
            std::future::ready(Ok(response))
        }
    }

    async fn call(metrics: &Arc<Metrics>, path: &str, answer: Option<&'static str>, read_body: bool) {
        let request = http::Request::builder().uri(path).body(()).unwrap();
        let response = CountCallsLayer(Arc::clone(metrics))
            .layer(Answers(answer))
            .call(request)
            .await
            .unwrap();
        if read_body {
            response.into_body().collect().await.unwrap();
        }
    }

    /// Every sample line of an exposition, checked: `name{labels} value` with a number for a
    /// value, under a `# TYPE` line of its family, and `# EOF` last.
    fn samples(exposition: &str) -> Vec<(String, f64)> {
        let mut families = BTreeSet::new();
        let mut samples = Vec::new();
        assert_eq!(exposition.lines().last(), Some("# EOF"), "{exposition}");
        for line in exposition.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                families.insert(declared.split(' ').next().unwrap().to_owned());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
            let name = series.split('{').next().unwrap();
            assert!(
                families.iter().any(|family| name.starts_with(family.as_str())),
                "{name} has no # TYPE line before it"
            );
            samples.push((line.to_owned(), value));
        }
        samples
    }

    fn value(exposition: &str, series: &str) -> Option<f64> {
        samples(exposition)
            .into_iter()
            .find(|(line, _)| line.rsplit_once(' ').is_some_and(|(s, _)| s == series))
            .map(|(_, value)| value)
    }

    #[tokio::test]
    async fn a_call_is_counted_by_its_status_from_trailers_or_trailers_only_headers() {
        let metrics = metrics();
        let app = crate::app::App::for_tests(MemoryStore::new());
        let receive = "/hoso.v1.DeskService/ReceiveDossier";
        call(&metrics, receive, None, true).await;
        call(&metrics, receive, None, true).await;
        call(&metrics, receive, Some("3"), false).await;
        // A client that goes away before the trailers: CANCELLED, once.
        call(&metrics, receive, None, false).await;
        // A made-up path does not make a series of its own.
        call(&metrics, "/x.Y/Made-up-1", Some("12"), false).await;
        let text = metrics.render(&app, &Projection::new(), &FeedStats::default()).await;
        let series = |name: &str, method: &str, code: &str| format!("{name}{{method=\"{method}\",code=\"{code}\"}}");
        for (code, calls) in [("OK", 2.0), ("INVALID_ARGUMENT", 1.0), ("CANCELLED", 1.0)] {
            assert_eq!(
                value(&text, &series("hoso_grpc_requests_total", receive, code)),
                Some(calls),
                "{code}\n{text}"
            );
            assert_eq!(
                value(
                    &text,
                    &series("hoso_grpc_request_duration_seconds_count", receive, code)
                ),
                Some(calls),
                "{code}\n{text}"
            );
        }
        assert_eq!(
            value(
                &text,
                &series("hoso_grpc_requests_total", UNKNOWN_METHOD, "UNIMPLEMENTED")
            ),
            Some(1.0),
            "{text}"
        );
        assert!(!text.contains("Made-up"), "{text}");
    }

    #[tokio::test]
    async fn the_exposition_parses_and_holds_every_metric_the_runbook_alerts_on() {
        let store = MemoryStore::new();
        let event = hoso_store::NewEvent {
            event_id: uuid::Uuid::new_v4(),
            event_type: "DossierReceived".to_owned(),
            schema_version: 1,
            data: hoso_store::Json::of(&1).unwrap(),
            metadata: hoso_store::Json::of(&1).unwrap(),
            occurred_at: chrono::Utc::now(),
        };
        store
            .append("dossier-x", hoso_store::ExpectedVersion::NoStream, vec![event])
            .await
            .unwrap();
        let app = crate::app::App::for_tests(store.clone());
        let metrics = Metrics::new(&store, "sled", &Projection::new(), true);
        call(&metrics, "/hoso.v1.DeskService/ReceiveDossier", None, true).await;
        let text = metrics.render(&app, &Projection::new(), &FeedStats::default()).await;
        let exported: BTreeSet<String> = samples(&text)
            .iter()
            .map(|(line, _)| line.split(['{', ' ']).next().unwrap().to_owned())
            .collect();
        // The families by the name they are queried by, with their types.
        let families: BTreeSet<(String, String)> = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .map(|declared| {
                let (family, kind) = declared.split_once(' ').unwrap();
                let suffix = match kind {
                    "counter" => "_total",
                    "info" => "_info",
                    _ => "",
                };
                (format!("{family}{suffix}"), kind.to_owned())
            })
            .collect();
        let runbook =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/operations.md")).unwrap();
        let section = |title: &str| {
            let start = runbook
                .find(title)
                .unwrap_or_else(|| panic!("the runbook has no {title}"));
            let rest = &runbook[start + title.len()..];
            rest[..rest.find("\n#").unwrap_or(rest.len())].to_owned()
        };
        let listed: BTreeSet<(String, String)> = section("### Every metric")
            .lines()
            .filter(|line| line.starts_with("| `"))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`').to_owned(), cells[2].to_owned())
            })
            .collect();
        assert_eq!(
            listed, families,
            "docs/operations.md's table of every metric is not what /metrics exports"
        );
        let alerts = section("## Alerts: the metrics to watch");
        let alerted: BTreeSet<&str> = alerts
            .lines()
            .filter(|line| line.starts_with("| ") && !line.starts_with("| Alert"))
            .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .filter(|word| word.starts_with("hoso_"))
            .collect();
        assert!(alerted.len() >= 12, "{alerted:?}");
        for name in alerted {
            assert!(
                exported.contains(name),
                "the runbook alerts on {name}, which is not exported:\n{text}"
            );
        }
        assert_eq!(
            value(&text, "hoso_store_append_batch_events_count"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(value(&text, "hoso_store_head_position"), Some(1.0), "{text}");
    }
}
