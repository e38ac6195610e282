//! `hoso-server`: the gRPC server of hoso, as a library the `hoso` binary runs.
//!
//! **What it is.** Configuration ([`config`]), bearer-token authentication and the role matrix
//! ([`auth`]), single sign-on with the province's identity provider ([`sso`]), the credentials in
//! force, reloaded without a restart, and the gate in front of every service ([`credentials`]), the command core that runs desk commands through the domain and appends their
//! events idempotently ([`app`]), the tonic services of `hoso.v1` ([`grpc`]), the one mapping of
//! errors to gRPC statuses ([`error`]), the change feed for other systems ([`feed`]), the live
//! projection ([`projection`]) and its snapshot file ([`snapshot`]), the data directory's layout
//! ([`DataDir`]), browser desks' grpc-web and CORS ([`web`]), the log subscriber and the
//! OpenTelemetry traces behind `[tracing]` ([`traces`]), and [`run`], which wires them with
//! the standard health and reflection services, TLS, and graceful shutdown.
//!
//! **What it is not.** No rules (those are `hoso-domain`'s), no storage format (`hoso-store`'s),
//! no protobuf definitions (`hoso-api`'s), no command-line parsing (the `hoso` binary's).

pub mod app;
pub mod auth;
pub mod config;
mod connections;
pub mod credentials;
mod data_dir;
pub mod error;
pub mod feed;
pub mod grpc;
pub mod import;
mod internal;
pub mod metadata;
pub mod metrics;
#[cfg(feature = "postgres")]
mod postgres;
pub mod projection;
pub mod ratelimit;
pub mod reference;
pub mod reports;
pub mod seal;
pub mod snapshot;
pub mod sso;
pub mod traces;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{TimeDelta, Utc};
use hoso_api::pb;
use hoso_store::{EventStore, SledOptions, SledStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::server::HealthReporter;

use crate::app::App;
use crate::auth::{Role, Tokens, new_token, token_entry};
use crate::config::{Config, StoreLocation};
use crate::credentials::{Authenticated, Credentials};
use crate::grpc::{AdminApi, AuditApi, DeskApi, QueryApi};
use crate::projection::Projection;

pub use crate::data_dir::DataDir;

/// The development identities: role, subject and unit.
const DEV_IDENTITIES: [(Role, &str, &str); 5] = [
    (Role::DeskOfficer, "dev.desk-officer", "G09.20"),
    (Role::AgencyOfficer, "dev.agency-officer", "000.00.04.G18"),
    (Role::Auditor, "dev.auditor", "000.00.00.H00"),
    (Role::Operator, "dev.operator", "000.00.00.H00"),
    (Role::Integration, "dev.integration", "000.00.00.H00"),
];

/// The `hoso.v1` services, each reported by the health service.
const SERVICES: [&str; 7] = [
    "hoso.v1.DeskService",
    "hoso.v1.DossierQueryService",
    "hoso.v1.AuditService",
    "hoso.v1.AdminService",
    "hoso.v1.ReportsService",
    "hoso.v1.ReferenceService",
    "hoso.v1.FeedService",
];

/// Loads the configured tokens, or, when none are configured, the development tokens of the
/// data directory (created on first use: [`DataDir::dev_token_hashes`] with their hashes, and
/// [`DataDir::dev_tokens`], readable by the owner only, with one `role token` line each).
pub fn load_tokens(config: &Config) -> Result<Tokens> {
    if let Some(path) = &config.tokens_file {
        let tokens = Tokens::load(path)?;
        if tokens.is_empty() {
            tracing::warn!(file = %path.display(), "the tokens file has no token: every call will be refused");
        }
        return Ok(tokens);
    }
    let data_dir = DataDir::new(&config.data_dir);
    let hashes = data_dir.dev_token_hashes();
    let plain = data_dir.dev_tokens();
    if !hashes.exists() {
        std::fs::create_dir_all(data_dir.path())
            .with_context(|| format!("cannot create the data directory {}", data_dir.path().display()))?;
        let mut toml = String::from("# Development tokens, created because no tokens_file is configured.\n");
        let mut lines = String::from("# role token (development only; configure tokens_file in production)\n");
        for (role, subject, agency) in DEV_IDENTITIES {
            let token = new_token();
            toml.push_str(&token_entry(&token, subject, role, agency));
            lines.push_str(&format!("{role} {token}\n"));
        }
        write_private(&plain, &lines)?;
        std::fs::write(&hashes, toml).with_context(|| format!("cannot write {}", hashes.display()))?;
    }
    tracing::warn!(
        tokens = %plain.display(),
        "no tokens_file is configured: using development tokens (one per role); configure tokens_file in production"
    );
    Tokens::load(&hashes)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the server on the store `config.store` names (the embedded sled store by default, or
/// PostgreSQL in a build with the `postgres` feature) until `shutdown` completes, then stops
/// taking requests, finishes those in flight, and closes the store. Prints
/// `hoso: serving on ADDR` on standard output once it accepts connections.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    match config.store_location()? {
        StoreLocation::Embedded => run_embedded(config, shutdown).await,
        StoreLocation::Postgres(url) => run_postgres(&url, config, shutdown).await,
    }
}

async fn run_embedded(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let dir = DataDir::new(&config.data_dir).store();
    let options = SledOptions {
        cache_capacity_bytes: u64::from(config.index_cache_mib) << 20,
        ..SledOptions::default()
    };
    let store = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || SledStore::open(&dir, options)
    })
    .await
    .context("the store could not be opened")?
    .with_context(|| format!("cannot open the store in {}", dir.display()))?;
    tracing::info!(head = store.head(), data_dir = %config.data_dir.display(), "store opened");
    let result = run_on(store.clone(), "sled", &config, shutdown).await;
    let closing = store.clone();
    tokio::task::spawn_blocking(move || closing.close()).await.ok();
    tracing::info!("store closed");
    result
}

#[cfg(feature = "postgres")]
async fn run_postgres(url: &str, config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let store = postgres::open(url).await?;
    let result = run_on(store.clone(), "postgres", &config, shutdown).await;
    store.close();
    tracing::info!("store closed");
    result
}

#[cfg(not(feature = "postgres"))]
async fn run_postgres(url: &str, _config: Config, _shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    anyhow::bail!(
        "store (--store, HOSO_STORE or `store` in the configuration) is a PostgreSQL URL ({}), but this hoso \
         was built without PostgreSQL support: build it with `cargo build --release -p hoso --features postgres`, \
         or leave store unset for the embedded store",
        config::redact_store_url(url)
    )
}

/// Loads the reference data from the opened `store` and serves until `shutdown` completes;
/// the caller closes the store.
async fn run_on<S: EventStore>(
    store: S,
    backend: &'static str,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let calendar = config.calendar()?;
    let green_lane = config.green_lane()?;
    let credentials = Credentials::load(config).await?;
    let reference = reference::ReferenceData::open(&store, calendar).await.map_err(|err| {
        anyhow::anyhow!(
            "cannot read the reference data from the log: {}",
            error::to_status(err).message()
        )
    })?;
    {
        let current = reference.current();
        tracing::info!(
            catalogue_version = current.catalogue.version(),
            notices = ?current.calendar.years().collect::<Vec<_>>(),
            "reference data loaded"
        );
    }
    if !config.green_lane.is_empty() {
        tracing::warn!(
            procedures = config.green_lane.len(),
            "[[green_lane]] in the configuration is deprecated: give each procedure's green-lane time in the catalogue file; these entries still apply where the catalogue gives none"
        );
    }
    let app = Arc::new(App {
        store,
        reference,
        green_lane,
        allow_procedures_outside_catalogue: config.allow_procedures_outside_catalogue,
        max_clock_skew: TimeDelta::seconds(i64::from(config.max_clock_skew_seconds)),
        started_at: Utc::now(),
        backend,
        decided: Default::default(),
    });
    serve(app, credentials, config, shutdown).await
}

/// Serves `app` until `shutdown` completes.
pub async fn serve<S: EventStore>(
    app: Arc<App<S>>,
    credentials: Arc<Credentials>,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // A signing key that cannot be read stops the start, before anything is served.
    let sealer = seal::Sealer::from_key_file(config.disclosure.signing_key_file.as_deref())?;
    let projection = Projection::new();
    let feed = feed::FeedApi::new(Arc::clone(&app));
    let snapshot = snapshot_file(config);
    let metrics = metrics::Metrics::new(&app.store, app.backend, &projection, snapshot.is_some());
    let mut background = Background::default();
    background.spawn(follow_log(Arc::clone(&projection), app.store.clone(), snapshot.clone()));
    background.spawn(warn_daily(Arc::clone(&app)));
    if let Some(path) = &snapshot {
        background.spawn(save_snapshots(
            Arc::clone(&projection),
            path.clone(),
            app.store.store_id(),
            seconds(config.projection_snapshot_seconds),
        ));
    }
    #[cfg(unix)]
    background.spawn(reload_on_hangup(Arc::clone(&credentials)));
    if let Some(every) = credentials.refresh_every() {
        background.spawn(refresh_signing_keys(Arc::clone(&credentials), every));
    }
    if let Some(addr) = config.metrics_listen {
        let served = metrics::router(
            Arc::clone(&metrics),
            Arc::clone(&app),
            Arc::clone(&projection),
            feed.stats(),
        );
        background.spawn(serve_metrics(addr, served).await?);
    }
    let (health, health_service) = health().await;
    let router = server(config, &metrics)?.add_service(health_service);
    let router = add_reflection(router)?;
    let feed_closer = feed.closer();
    let router = add_api(router, &app, &projection, &credentials, sealer, feed, config);
    // Open feeds never end by themselves: end them at the shutdown rather than after its grace.
    let shutdown = async move {
        shutdown.await;
        feed_closer.close();
    };
    let incoming = listen(config, &metrics).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async {
        let _ = stopped.await;
    }));
    let grace = seconds(config.shutdown_grace_seconds);
    until_shutdown(server, shutdown, &health, stop, grace).await?;
    if let Some(path) = &snapshot {
        save_snapshot(&projection, path, app.store.store_id(), "shutdown").await;
    }
    Ok(())
}

fn seconds(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}

/// The projection's snapshot file, unless snapshots are turned off.
fn snapshot_file(config: &Config) -> Option<PathBuf> {
    (config.projection_snapshot_seconds > 0).then(|| DataDir::new(&config.data_dir).snapshot())
}

/// Follows the log into the projection, starting from the snapshot when there is a usable one.
async fn follow_log<S: EventStore>(projection: Arc<Projection>, store: S, snapshot: Option<PathBuf>) {
    let start = match snapshot {
        Some(path) => projection.load_snapshot(path, &store).await,
        None => hoso_projections::Dossiers::new(),
    };
    projection.follow(store, start).await;
}

/// Saves the projection's snapshot every `every`, the first one `every` after the start.
async fn save_snapshots(projection: Arc<Projection>, path: PathBuf, store_id: uuid::Uuid, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        save_snapshot(&projection, &path, store_id, "periodic").await;
    }
}

/// Binds the metrics listener (printing `hoso: metrics on ADDR`) and returns the task serving it.
async fn serve_metrics(addr: SocketAddr, router: axum::Router) -> Result<impl Future<Output = ()> + Send + 'static> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "metrics on /metrics");
    println!("hoso: metrics on {bound}");
    Ok(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, "the metrics server stopped");
        }
    })
}

/// The health service, every service serving, and the reporter that turns them off at shutdown.
async fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (health, service) = tonic_health::server::health_reporter();
    for name in std::iter::once("").chain(SERVICES) {
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    (health, service)
}

/// The gRPC server with its limits, browser desks' grpc-web and CORS when configured, the layers
/// that count every call, log every INTERNAL answer and open each call's span, and TLS when configured.
fn server(config: &Config, metrics: &Arc<metrics::Metrics>) -> Result<Server<ServerLayers>> {
    let limits = config.limits;
    let mut builder = Server::builder()
        .timeout(seconds(limits.request_timeout_seconds))
        .concurrency_limit_per_connection(limits.max_concurrent_requests_per_connection)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_keepalive_interval(Some(seconds(limits.http2_keepalive_interval_seconds)))
        .http2_keepalive_timeout(Some(seconds(limits.http2_keepalive_timeout_seconds)))
        // Browsers speak grpc-web over HTTP/1.1 when there is no TLS to negotiate HTTP/2.
        .accept_http1(config.web.enabled())
        .layer(web::layer(&config.web)?)
        // Inside grpc-web too, to read the status where tonic puts it.
        .layer(metrics::CountCallsLayer(Arc::clone(metrics)))
        // Innermost, so that it reads the gRPC status before grpc-web moves it into the body.
        .layer(internal::LogInternalLayer)
        // Innermost too, for the same reason: it reads the status of the trailers.
        .layer(traces::RpcSpanLayer);
    if let Some(tls) = tls(config)? {
        builder = builder.tls_config(tls).context("the TLS settings are not usable")?;
    }
    Ok(builder)
}

/// The layers of every request: grpc-web and CORS (when browser desks are on), the count of
/// calls, the log of INTERNAL answers, then the call's span.
type ServerLayers = tower_layer::Stack<
    traces::RpcSpanLayer,
    tower_layer::Stack<
        internal::LogInternalLayer,
        tower_layer::Stack<metrics::CountCallsLayer, tower_layer::Stack<web::Layer, tower_layer::Identity>>,
    >,
>;

/// The `[tls]` section's certificate, key and client CA, read from their files.
fn tls(config: &Config) -> Result<Option<ServerTlsConfig>> {
    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    let cert = std::fs::read(&tls.cert_file).with_context(|| format!("tls.cert_file {}", tls.cert_file.display()))?;
    let key = std::fs::read(&tls.key_file).with_context(|| format!("tls.key_file {}", tls.key_file.display()))?;
    let mut tls_config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca) = &tls.client_ca_file {
        let ca = std::fs::read(ca).with_context(|| format!("tls.client_ca_file {}", ca.display()))?;
        tls_config = tls_config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(Some(tls_config))
}

/// Server reflection, v1 and v1alpha (grpcurl and Postman still ask for either), over the same
/// descriptors: ours and the health service's.
fn add_reflection<L>(router: Router<L>) -> Result<Router<L>> {
    let descriptors = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(hoso_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = descriptors()
        .build_v1()
        .context("cannot build the reflection service")?;
    let v1alpha = descriptors()
        .build_v1alpha()
        .context("cannot build the reflection service")?;
    Ok(router.add_service(v1).add_service(v1alpha))
}

/// The `hoso.v1` services, each behind the interceptor that authenticates its caller.
fn add_api<L, S: EventStore>(
    router: Router<L>,
    app: &Arc<App<S>>,
    projection: &Arc<Projection>,
    credentials: &Arc<Credentials>,
    sealer: seal::Sealer,
    feed: feed::FeedApi<S>,
    config: &Config,
) -> Router<L> {
    let reports = reports::ReportsApi::new(
        Arc::clone(app),
        Arc::clone(projection),
        config.province_name.clone(),
        config.agency_names.clone(),
    )
    .with_letter(&config.disclosure)
    .with_sealer(sealer);
    router
        .add_service(Authenticated::new(
            pb::desk_service_server::DeskServiceServer::new(DeskApi::new(Arc::clone(app))),
            credentials,
        ))
        .add_service(Authenticated::new(
            pb::dossier_query_service_server::DossierQueryServiceServer::new(QueryApi::new(Arc::clone(app))),
            credentials,
        ))
        .add_service(Authenticated::new(
            pb::audit_service_server::AuditServiceServer::new(AuditApi::new(Arc::clone(app))),
            credentials,
        ))
        .add_service(Authenticated::new(
            pb::admin_service_server::AdminServiceServer::new(
                AdminApi::new(Arc::clone(app)).with_credentials(Arc::clone(credentials)),
            ),
            credentials,
        ))
        .add_service(Authenticated::new(
            pb::reference_service_server::ReferenceServiceServer::new(grpc::ReferenceApi::new(Arc::clone(app))),
            credentials,
        ))
        .add_service(Authenticated::new(
            pb::reports_service_server::ReportsServiceServer::new(reports),
            credentials,
        ))
        .add_service(Authenticated::new(
            pb::feed_service_server::FeedServiceServer::new(feed),
            credentials,
        ))
}

/// Reloads the credentials on SIGHUP; a failed reload keeps those in force and logs why.
#[cfg(unix)]
async fn reload_on_hangup(credentials: Arc<Credentials>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGHUP; reload the credentials with AdminService/ReloadCredentials");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match credentials.reload().await {
            Ok(reloaded) => tracing::info!(
                tokens = reloaded.tokens,
                tokens_source = %reloaded.tokens_source,
                signing_keys = reloaded.signing_keys,
                signing_keys_source = %reloaded.signing_keys_source,
                "credentials reloaded (SIGHUP)"
            ),
            Err(err) => tracing::error!(
                error = format!("{err:#}"),
                "credentials not reloaded (SIGHUP): those in force stay"
            ),
        }
    }
}

/// Fetches the identity provider's signing keys every `every`; a failure keeps those in force.
async fn refresh_signing_keys(credentials: Arc<Credentials>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match credentials.refresh_keys().await {
            Ok(keys) => tracing::debug!(keys, "signing keys fetched again"),
            Err(err) => tracing::warn!(
                error = format!("{err:#}"),
                "the signing keys cannot be fetched again; those in force stay"
            ),
        }
    }
}

/// Binds the gRPC listener (printing `hoso: serving on ADDR`), with the connection limits.
async fn listen(
    config: &Config,
    metrics: &metrics::Metrics,
) -> Result<impl tokio_stream::Stream<Item = std::io::Result<connections::Limited>> + use<>> {
    let limits = config.limits;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, tls = config.tls.is_some(), "serving");
    println!("hoso: serving on {addr}");
    // TCP_NODELAY on every connection: with Nagle's algorithm, the small frames of a streamed
    // answer (a replay) wait for the client's delayed ACK, 40 ms each. The builder's own
    // tcp_nodelay setting does not apply to an incoming stream we bind ourselves.
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(seconds(limits.tcp_keepalive_seconds)));
    Ok(connections::limit(
        incoming,
        limits.max_connections,
        seconds(limits.idle_connection_seconds),
        metrics.connection_gauges(),
    ))
}

/// Waits for `shutdown` (or the server's failure), then reports NOT_SERVING, stops taking
/// connections and gives the requests in flight `grace` to finish.
async fn until_shutdown(
    mut server: JoinHandle<Result<(), tonic::transport::Error>>,
    shutdown: impl Future<Output = ()>,
    health: &HealthReporter,
    stop: tokio::sync::oneshot::Sender<()>,
    grace: Duration,
) -> Result<()> {
    tokio::select! {
        result = &mut server => {
            return result.context("the server task failed")?.context("the server failed");
        }
        () = shutdown => {}
    }
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let _ = stop.send(());
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => result.context("the server task failed")?.context("the server failed")?,
        Err(_) => {
            // A client that keeps its connection open must not hold the shutdown forever. Requests
            // cut here were not acknowledged; their retries are answered idempotently.
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "connections still open after the grace period: closing them"
            );
            server.abort();
        }
    }
    Ok(())
}

/// Saves the projection's snapshot if it moved, logging the outcome: a failure costs only a
/// longer catch-up at the next start.
async fn save_snapshot(projection: &Arc<Projection>, path: &Path, store_id: uuid::Uuid, why: &'static str) {
    match projection.save_snapshot(path.to_owned(), store_id).await {
        Ok(Some(saved)) => tracing::info!(
            why,
            events = saved.events,
            dossiers = saved.dossiers,
            bytes = saved.bytes,
            encode_seconds = saved.encode_seconds,
            seconds = saved.seconds,
            "projection snapshot saved"
        ),
        Ok(None) => tracing::debug!(why, "the projection has not moved since its snapshot"),
        Err(err) => tracing::warn!(
            why,
            error = format!("{err:#}"),
            "the projection snapshot cannot be saved"
        ),
    }
}

/// Logs the reference data's warnings (a missing holiday notice) at start and then once a local
/// day while they last.
async fn warn_daily<S: EventStore>(app: Arc<App<S>>) {
    let mut warned_on = None;
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        ticks.tick().await;
        let now = Utc::now();
        let today = hoso_domain::calendar::to_local(now).date();
        if warned_on == Some(today) {
            continue;
        }
        for warning in app.reference.current().warnings(now) {
            tracing::warn!(warning, "reference data");
        }
        warned_on = Some(today);
    }
}

/// Background tasks that end with the server: aborted when dropped.
#[derive(Default)]
struct Background(Vec<JoinHandle<()>>);

impl Background {
    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.push(tokio::spawn(task));
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
