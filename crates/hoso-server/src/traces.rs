//! The server's log lines and, behind `[tracing]`, its OpenTelemetry traces.
//!
//! **What it is.** [`init`], the subscriber the `hoso` binary installs: log lines on standard
//! error filtered by `HOSO_LOG`, and, when a collector is configured, a layer that turns the
//! server's spans into OpenTelemetry spans, sampled and sent in batches over OTLP/gRPC; and
//! [`RpcSpanLayer`], the tower layer that opens the `rpc` span of every call, as a child of the
//! span the caller names in a W3C `traceparent` (and `tracestate`) metadata entry.
//!
//! The spans (docs/operations.md, "Traces"), all at DEBUG level so that with traces off and the
//! default `HOSO_LOG=info` each costs one level check:
//! - `rpc`, named after the method (`hoso.v1.DeskService/ReceiveDossier`), with `rpc.system`,
//!   `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, and for a desk command its
//!   `command_id` and `correlation_id`;
//! - under it, for a desk command: `load_stream` (reading and folding the dossier's events),
//!   `decide` (the domain's rules), `append` (the store's append), and under that, on the
//!   embedded store, `fsync_wait` (waiting for the writer to write and fsync the group).
//!
//! No span carries a request's fields: a citizen's name or identity number never leaves the
//! server in a trace (Decree 13/2023).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tonic::codegen::http;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, TracingConfig};

/// The crates whose spans and DEBUG lines go to the collector: the server's and the store's.
const TRACED_TARGETS: [&str; 2] = ["hoso_server", "hoso_store"];

/// The running exporter; [`Traces::shutdown`] sends what is still batched.
#[must_use = "dropping it loses the spans still batched: call shutdown at exit"]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// Whether spans are sent to a collector.
    pub fn enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still batched and stops the exporter; a collector that does not answer is
    /// logged, not fatal.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "the last spans could not be sent to the trace collector");
        }
    }
}

/// Installs the process's subscriber: log lines in `format` on standard error, filtered by
/// `HOSO_LOG` (default `info`), and the OpenTelemetry layer when `tracing` names a collector.
/// With a collector it must run inside the tokio runtime that will carry the exports.
pub fn init(format: LogFormat, tracing: &TracingConfig) -> Result<Traces> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOSO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let lines = match format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().boxed(),
    };
    let provider = tracing
        .otlp_endpoint
        .as_deref()
        .map(|e| provider(e, tracing))
        .transpose()?;
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("hoso"))
            .with_filter(Targets::new().with_targets(TRACED_TARGETS.map(|t| (t, LevelFilter::DEBUG))))
    });
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .try_init()
        .context("cannot install the log subscriber")?;
    if let Some(endpoint) = &tracing.otlp_endpoint {
        tracing::info!(
            endpoint,
            service_name = tracing.service_name,
            sample_ratio = tracing.sample_ratio,
            "traces on: spans are sent to the OpenTelemetry collector"
        );
    }
    Ok(Traces { provider })
}

/// The tracer provider exporting to `endpoint` in batches (every 5 s, or `OTEL_BSP_SCHEDULE_DELAY`
/// milliseconds), keeping `sample_ratio` of the traces no caller decided for.
fn provider(endpoint: &str, tracing: &TracingConfig) -> Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("tracing.otlp_endpoint = {endpoint:?} cannot be used"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            tracing.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(tracing.service_name.clone())
                .build(),
        )
        .build())
}

/// Wraps services in [`RpcSpans`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcSpanLayer;

impl<S> Layer<S> for RpcSpanLayer {
    type Service = RpcSpans<S>;

    fn layer(&self, inner: S) -> RpcSpans<S> {
        RpcSpans(inner)
    }
}

/// Runs each call in its `rpc` span, which ends when the response's last frame is sent.
#[derive(Debug, Clone)]
pub struct RpcSpans<S>(S);

impl<S, B, ResBody> Service<http::Request<B>> for RpcSpans<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = rpc_span(&request);
        let response = span.in_scope(|| self.0.call(request));
        let answered = span.clone();
        Box::pin(tracing::Instrument::instrument(
            async move {
                let response = response.await?;
                if answered.is_disabled() {
                    // A tonic body stays as it is: no allocation while traces are off.
                    return Ok(response.map(tonic::body::Body::new));
                }
                // Statuses answered before a body starts (every unary error) are in the headers.
                if let Some(code) = grpc_status(response.headers()) {
                    record_status(&answered, code);
                }
                Ok(response.map(|body| tonic::body::Body::new(StatusOnSpan { body, span: answered })))
            },
            span,
        ))
    }
}

/// The `rpc` span of a request, the child of the caller's span when it sends `traceparent`.
fn rpc_span<B>(request: &http::Request<B>) -> Span {
    let path = request.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let span = tracing::debug_span!(
        "rpc",
        otel.name = path,
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        command_id = Empty,
        correlation_id = Empty,
    );
    if !span.is_disabled() {
        let parent = TraceContextPropagator::new().extract(&Metadata(request.headers()));
        // Fails only without the OpenTelemetry layer (traces off, HOSO_LOG=debug): nothing to link.
        let _ = span.set_parent(parent);
    }
    span
}

/// The gRPC metadata (HTTP/2 headers) as OpenTelemetry's propagators read it.
struct Metadata<'a>(&'a http::HeaderMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<i64> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// Puts the call's gRPC status on its span; the codes OpenTelemetry counts as a server's fault
/// (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS) mark it failed.
fn record_status(span: &Span, code: i64) {
    span.record("rpc.grpc.status_code", code);
    if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
        span.record("otel.status_code", "error");
    }
}

/// A response body that puts the gRPC status of its trailers on the call's span, and keeps the
/// span open until the body is done.
struct StatusOnSpan<B> {
    body: B,
    span: Span,
}

impl<B: http_body::Body + Unpin> http_body::Body for StatusOnSpan<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &frame
            && let Some(code) = frame.trailers_ref().and_then(grpc_status)
        {
            record_status(&this.span, code);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
