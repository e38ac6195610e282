//! The server's configuration: a TOML file, then environment overrides, then command-line flags.
//!
//! Keys (all optional; `deploy/hoso.example.toml` documents each):
//! `listen` (default `127.0.0.1:50051`), `metrics_listen` (Prometheus `/metrics`, off by default),
//! `data_dir` (default `data`), `tokens_file` (without it,
//! development tokens are created in the data directory), `log_format` (`text` or `json`),
//! `calendar_files` (extra holiday tables), `office_hours` (default 08:00-12:00 and 13:00-17:00),
//! `max_clock_skew_seconds` (default 300), `shutdown_grace_seconds` (default 20),
//! `projection_snapshot_seconds` (default 300; 0 turns projection snapshots off),
//! `index_cache_mib` (default 64: the embedded store's index cache), `[tls]`
//! (`cert_file`, `key_file`, optional `client_ca_file` for mTLS) and `[[green_lane]]`
//! (`procedure`, `amount`, `unit`; deprecated: the catalogue holds the green lane),
//! `allow_procedures_outside_catalogue` (default false), `province_name`, `[agency_names]` and
//! `[disclosure]` (`issuing_body`, `number_format`, `place`, `signer_title`, `signer_name`: the
//! disclosure's letter), `[limits]` (connections and requests: `max_connections`,
//! `max_concurrent_streams`, `max_concurrent_requests_per_connection`, `request_timeout_seconds`,
//! `http2_keepalive_interval_seconds`, `http2_keepalive_timeout_seconds`, `tcp_keepalive_seconds`,
//! `idle_connection_seconds`), `[web]` (`allowed_origins`: grpc-web and CORS for browser desks, off
//! when empty).
//! `store` (unset or `"embedded"`: the embedded store in `data_dir`; a `postgres://` URL: the
//! PostgreSQL store, in a build with the `postgres` feature).
//! `[sso]` (single sign-on: `issuer`, `audience`, `jwks_file` or `jwks_url`,
//! `jwks_refresh_seconds`, `subject_claim`, `role_claim`, `agency_claim`, `leeway_seconds`,
//! `[sso.roles]`; see [`SsoConfig`]).
//! `[tracing]` (OpenTelemetry traces: `otlp_endpoint`, `service_name`, `sample_ratio`; off
//! without an endpoint; see [`TracingConfig`]).
//! Environment overrides: `HOSO_LISTEN`, `HOSO_DATA_DIR`, `HOSO_STORE`,
//! `HOSO_TOKENS_FILE`, `HOSO_LOG_FORMAT`, `HOSO_PROVINCE_NAME`,
//! `HOSO_ALLOW_PROCEDURES_OUTSIDE_CATALOGUE`, and the standard `OTEL_EXPORTER_OTLP_ENDPOINT` when
//! `[tracing] otlp_endpoint` is unset. Relative paths are relative to the working directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hoso_domain::{BusinessCalendar, GreenLane, OfficeHours, ProcedureCode, StatutoryTime, TimeUnit};
use serde::Deserialize;
use tonic::codegen::http;

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

/// The monthly disclosure as a letter (`[disclosure]`); each key may be left out, and the
/// document then prints a default (see `deploy/hoso.example.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisclosureConfig {
    /// The issuing body, printed under the province's People's Committee.
    #[serde(default)]
    pub issuing_body: String,
    /// The letter's number; `{yyyy}` and `{mm}` become the month's year and month.
    #[serde(default)]
    pub number_format: String,
    /// Where the letter is signed; default the province's name.
    #[serde(default)]
    pub place: String,
    /// The signer's title.
    #[serde(default)]
    pub signer_title: String,
    /// The signer's name.
    #[serde(default)]
    pub signer_name: String,
    /// The province's Ed25519 signing key (PKCS#8 PEM, made by `hoso disclosure-key new`): every
    /// disclosure is signed with it; without one, disclosures name the log's position and head
    /// hash but are unsigned.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
}

/// TLS settings; without them the server speaks plaintext HTTP/2 (and HTTP/1.1 for browser desks,
/// when `[web]` lists origins).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert_file: PathBuf,
    /// The server's private key, PEM.
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
}

/// Limits on connections and requests, so that idle, stalled or flooding clients cannot hold the
/// server's memory or keep desks waiting (`[limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open connections at most; one more is closed at once (clients retry).
    pub max_connections: usize,
    /// HTTP/2 streams (requests) at once per connection, as the server announces it.
    pub max_concurrent_streams: u32,
    /// Requests served at once per connection; more wait their turn.
    pub max_concurrent_requests_per_connection: usize,
    /// Longest time a request may take to answer, in seconds; a shorter `grpc-timeout` from the
    /// client applies instead.
    pub request_timeout_seconds: u32,
    /// How often an HTTP/2 ping checks that a client is alive, in seconds.
    pub http2_keepalive_interval_seconds: u32,
    /// How long a ping may go unanswered before the connection is closed, in seconds.
    pub http2_keepalive_timeout_seconds: u32,
    /// TCP keepalive probes of idle connections start after this many seconds.
    pub tcp_keepalive_seconds: u32,
    /// A connection that sends no byte for this long (no request, no ping answer, or never an
    /// HTTP/2 preface) is closed, in seconds; longer than the keepalive interval and timeout.
    pub idle_connection_seconds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1_024,
            max_concurrent_streams: 128,
            max_concurrent_requests_per_connection: 64,
            request_timeout_seconds: 60,
            http2_keepalive_interval_seconds: 30,
            http2_keepalive_timeout_seconds: 10,
            tcp_keepalive_seconds: 60,
            idle_connection_seconds: 120,
        }
    }
}

impl Limits {
    fn check(&self) -> Result<()> {
        for (key, value) in [
            ("max_connections", self.max_connections),
            ("max_concurrent_streams", self.max_concurrent_streams as usize),
            (
                "max_concurrent_requests_per_connection",
                self.max_concurrent_requests_per_connection,
            ),
            ("request_timeout_seconds", self.request_timeout_seconds as usize),
            (
                "http2_keepalive_interval_seconds",
                self.http2_keepalive_interval_seconds as usize,
            ),
            (
                "http2_keepalive_timeout_seconds",
                self.http2_keepalive_timeout_seconds as usize,
            ),
            ("tcp_keepalive_seconds", self.tcp_keepalive_seconds as usize),
        ] {
            if value == 0 {
                bail!("limits.{key} is 0; give a positive number (the defaults are in deploy/hoso.example.toml)");
            }
        }
        if self.idle_connection_seconds <= self.http2_keepalive_interval_seconds + self.http2_keepalive_timeout_seconds
        {
            bail!(
                "limits.idle_connection_seconds ({}) must be longer than http2_keepalive_interval_seconds plus \
                 http2_keepalive_timeout_seconds ({}), or live clients that only answer pings would be cut",
                self.idle_connection_seconds,
                self.http2_keepalive_interval_seconds + self.http2_keepalive_timeout_seconds
            );
        }
        Ok(())
    }
}

/// OpenTelemetry traces (`[tracing]`): off while no collector is named.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// The OTLP/gRPC collector the spans are sent to, without TLS (`http://127.0.0.1:4317`);
    /// traces are off without it.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` the spans carry (default `hoso`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// The share of new traces kept, from 0 to 1 (default 1); a caller's `traceparent` decides
    /// for its own trace.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
}

// The ratio is a plain number from a file: a NaN is refused by `check`, so equality is total.
impl Eq for TracingConfig {}

fn default_service_name() -> String {
    "hoso".to_owned()
}

fn default_sample_ratio() -> f64 {
    1.0
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: None,
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
        }
    }
}

impl TracingConfig {
    /// Whether spans are sent to a collector.
    pub fn enabled(&self) -> bool {
        self.otlp_endpoint.is_some()
    }

    /// Refuses a collector address or a ratio the exporter could not use, naming the key.
    pub fn check(&self) -> Result<()> {
        if let Some(endpoint) = &self.otlp_endpoint
            && !endpoint.starts_with("http://")
        {
            bail!(
                "tracing.otlp_endpoint = {endpoint:?} is not an http:// URL; give the collector's OTLP/gRPC \
                 address, e.g. http://127.0.0.1:4317 (spans go without TLS: run the collector beside the server)"
            );
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            bail!(
                "tracing.sample_ratio = {} is not between 0 and 1; give the share of traces to keep (1 keeps all)",
                self.sample_ratio
            );
        }
        if self.service_name.trim().is_empty() {
            bail!("tracing.service_name is empty; give the name the traces are shown under (default hoso)");
        }
        Ok(())
    }
}

/// Browser desks (`[web]`): grpc-web and CORS for web applications served from these origins;
/// off while the list is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// The origins (`scheme://host[:port]`, as a browser sends them) of the web desk applications
    /// allowed to call the API from a browser.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl WebConfig {
    /// Whether browsers may call the API (grpc-web over HTTP/1.1, and CORS).
    pub fn enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }

    /// The allowed origins as the header values a browser's `Origin` is compared with; an entry
    /// that no browser would ever send is an error naming it.
    pub fn origins(&self) -> Result<Vec<http::HeaderValue>> {
        self.allowed_origins
            .iter()
            .enumerate()
            .map(|(i, origin)| {
                check_origin(origin).with_context(|| format!("web.allowed_origins[{i}] = {origin:?}"))?;
                http::HeaderValue::from_str(origin).with_context(|| format!("web.allowed_origins[{i}] = {origin:?}"))
            })
            .collect()
    }
}

/// Checks that `origin` is written as browsers send the `Origin` header, since it is compared
/// byte for byte: a trailing slash or a default port would never match and look like CORS failing.
fn check_origin(origin: &str) -> Result<()> {
    const HINT: &str = "give the web desk's origin as the browser sends it: scheme://host[:port], e.g. \
                        https://motcua.example.gov.vn";
    if origin == "*" {
        bail!("any origin (`*`) is not allowed: list each web desk application's origin");
    }
    let uri: http::Uri = origin.parse().map_err(|_| anyhow::anyhow!("not an origin; {HINT}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("not an origin; {HINT}");
    };
    if scheme != "http" && scheme != "https" {
        bail!("the scheme must be http or https; {HINT}");
    }
    if authority.as_str().contains('@') {
        bail!("an origin has no user name or password; {HINT}");
    }
    if format!("{scheme}://{authority}") != origin {
        bail!("an origin has no path, query or trailing slash; {HINT}");
    }
    if origin != origin.to_ascii_lowercase() {
        bail!("browsers send origins in lower case; write it in lower case");
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    if authority.port_u16() == Some(default_port) {
        bail!("browsers leave out the default port {default_port}; write the origin without it");
    }
    Ok(())
}

/// One green-lane procedure and its shortened statutory time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreenLaneEntry {
    /// Procedure code, `d.dddddd`.
    pub procedure: String,
    /// The shortened time's amount.
    pub amount: u32,
    /// Its unit: `working_days`, `working_hours` or `calendar_days`.
    pub unit: TimeUnit,
}

/// Single sign-on (`[sso]`): JWT bearer tokens from the province's OpenID Connect identity
/// provider, accepted besides the tokens file's static tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// The identity provider's issuer (`iss`), exactly as its tokens carry it.
    pub issuer: String,
    /// The audience (`aud`) the tokens must be issued for: hoso's client id at the provider.
    pub audience: String,
    /// The provider's signing keys as a JWKS file (one of `jwks_file`, `jwks_url`).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// The provider's JWKS URL (`https://`, or `http://` on a loopback address only).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often the keys are fetched again, in seconds.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_seconds: u32,
    /// The claim naming the officer (never a citizen); a dotted path reaches into objects.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim carrying the role: a string or an array of strings.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The claim carrying the officer's unit code.
    #[serde(default = "default_agency_claim")]
    pub agency_claim: String,
    /// How far the provider's clock may be from ours when checking `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u32,
    /// The provider's role names and the hoso role each stands for; empty: the claim carries
    /// hoso's role names themselves.
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, String>,
}

fn default_jwks_refresh() -> u32 {
    300
}

fn default_subject_claim() -> String {
    "sub".to_owned()
}

fn default_role_claim() -> String {
    "role".to_owned()
}

fn default_agency_claim() -> String {
    "agency".to_owned()
}

fn default_leeway() -> u32 {
    30
}

impl SsoConfig {
    fn check(&self) -> Result<()> {
        if self.issuer.trim().is_empty() {
            bail!("sso.issuer is empty; give the identity provider's issuer URL, as its tokens' `iss` carries it");
        }
        if self.audience.trim().is_empty() {
            bail!("sso.audience is empty; give hoso's client id at the identity provider");
        }
        match (&self.jwks_file, &self.jwks_url) {
            (Some(_), Some(_)) => bail!("sso: give jwks_file or jwks_url, not both"),
            (None, None) => bail!("sso: give jwks_file or jwks_url, where the identity provider's signing keys are"),
            _ => {}
        }
        if self.jwks_refresh_seconds < 10 {
            bail!(
                "sso.jwks_refresh_seconds is {}; give 10 or more (the default is 300)",
                self.jwks_refresh_seconds
            );
        }
        if self.leeway_seconds > 300 {
            bail!(
                "sso.leeway_seconds is {}; give at most 300 (the default is 30): a larger leeway keeps expired tokens working",
                self.leeway_seconds
            );
        }
        for (name, role) in &self.roles {
            if crate::auth::Role::parse(role).is_none() {
                bail!(
                    "sso.roles.{name:?} = {role:?} is not a hoso role; use one of {}",
                    crate::auth::Role::ALL.map(|r| r.as_str()).join(", ")
                );
            }
        }
        Ok(())
    }
}

/// Where the event log is kept (`store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store, in the data directory.
    Embedded,
    /// A PostgreSQL database, by its connection URL (which may hold a password: show it only
    /// through [`redact_store_url`]).
    Postgres(String),
}

/// `url` with any password replaced by `***`, for logs, errors and `hoso status`: the password
/// of a URL's user (`postgres://user:secret@host`) and any `password=` parameter.
pub fn redact_store_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    let mut redacted = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.to_ascii_lowercase().find("password=") {
        let value = i + "password=".len();
        redacted.push_str(&rest[..value]);
        redacted.push_str("***");
        let tail = &rest[value..];
        let end = if let Some(quoted) = tail.strip_prefix('\'') {
            quoted.find('\'').map_or(tail.len(), |j| j + 2)
        } else {
            tail.find(['&', ' ']).unwrap_or(tail.len())
        };
        rest = &tail[end..];
    }
    redacted.push_str(rest);
    redacted
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where to serve Prometheus metrics (`/metrics`, plain HTTP); none when unset.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Directory of the embedded store, of the projection's snapshot and of development tokens.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where the event log is kept: unset or `"embedded"` for the embedded store in `data_dir`,
    /// or a PostgreSQL connection URL (`postgres://user@host:port/db`, several hosts allowed).
    #[serde(default)]
    pub store: Option<String>,
    /// Bearer-token hashes and the officers they stand for.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Log format.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Extra holiday tables, one JSON file per year.
    #[serde(default)]
    pub calendar_files: Vec<PathBuf>,
    /// Office hours on working days, as `["HH:MM", "HH:MM"]` intervals in local time (UTC+7);
    /// empty: 08:00-12:00 and 13:00-17:00. The end of the last one is the close of the day.
    #[serde(default)]
    pub office_hours: Vec<[String; 2]>,
    /// How far in the future a desk's `occurred_at` may be, in seconds.
    #[serde(default = "default_skew")]
    pub max_clock_skew_seconds: u32,
    /// How long a shutdown waits for requests in flight and open connections, in seconds,
    /// before it closes them.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u32,
    /// How often the projection's snapshot is saved (when the projection moved), in seconds; it
    /// is saved at shutdown too and loaded at start. 0: no snapshots, the projection replays
    /// the whole log at every start.
    #[serde(default = "default_snapshot_seconds")]
    pub projection_snapshot_seconds: u32,
    /// The embedded store's cache of its index pages (sled's page cache), in MiB. The read
    /// model and the rest of the store's memory come on top of it.
    #[serde(default = "default_index_cache_mib")]
    pub index_cache_mib: u32,
    /// TLS, optional.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Green-lane procedures.
    #[serde(default)]
    pub green_lane: Vec<GreenLaneEntry>,
    /// The province's name, as the disclosure's heading shows it (e.g. "Thái Nguyên").
    #[serde(default)]
    pub province_name: String,
    /// Display names of handling agencies in the disclosure, by code.
    #[serde(default)]
    pub agency_names: std::collections::BTreeMap<String, String>,
    /// The disclosure's letter: issuing body, number, place and signer.
    #[serde(default)]
    pub disclosure: DisclosureConfig,
    /// Whether desks may receive dossiers of procedures the catalogue lacks (the receipt then
    /// takes the values the desk sends, is flagged, and is listed by `hoso catalogue missing`).
    #[serde(default)]
    pub allow_procedures_outside_catalogue: bool,
    /// Limits on connections and requests.
    #[serde(default)]
    pub limits: Limits,
    /// Browser desks: grpc-web and CORS.
    #[serde(default)]
    pub web: WebConfig,
    /// Single sign-on; off when unset.
    #[serde(default)]
    pub sso: Option<SsoConfig>,
    /// OpenTelemetry traces; off without a collector.
    #[serde(default)]
    pub tracing: TracingConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_skew() -> u32 {
    300
}

fn default_grace() -> u32 {
    20
}

fn default_snapshot_seconds() -> u32 {
    300
}

/// Smaller than sled's default of 512 MiB, which held several hundred MiB more at 10 million
/// events for no more commands per second (BENCHMARKS.md, "Service").
fn default_index_cache_mib() -> u32 {
    64
}

/// Below this sled's cache would hold too few pages to keep an index's upper levels.
const MIN_INDEX_CACHE_MIB: u32 = 8;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            metrics_listen: None,
            data_dir: default_data_dir(),
            store: None,
            tokens_file: None,
            log_format: LogFormat::Text,
            calendar_files: Vec::new(),
            office_hours: Vec::new(),
            max_clock_skew_seconds: default_skew(),
            shutdown_grace_seconds: default_grace(),
            projection_snapshot_seconds: default_snapshot_seconds(),
            index_cache_mib: default_index_cache_mib(),
            tls: None,
            green_lane: Vec::new(),
            province_name: String::new(),
            agency_names: std::collections::BTreeMap::new(),
            disclosure: DisclosureConfig::default(),
            allow_procedures_outside_catalogue: false,
            limits: Limits::default(),
            web: WebConfig::default(),
            sso: None,
            tracing: TracingConfig::default(),
        }
    }
}

impl Config {
    /// Parses a configuration file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let config: Config =
            toml::from_str(text).with_context(|| format!("{origin} is not a valid hoso configuration"))?;
        config.limits.check().with_context(|| format!("{origin}: [limits]"))?;
        config.web.origins().with_context(|| format!("{origin}: [web]"))?;
        if let Some(sso) = &config.sso {
            sso.check().with_context(|| format!("{origin}: [sso]"))?;
        }
        config.tracing.check().with_context(|| format!("{origin}: [tracing]"))?;
        if config.index_cache_mib < MIN_INDEX_CACHE_MIB {
            bail!(
                "{origin}: index_cache_mib is {}; give at least {MIN_INDEX_CACHE_MIB} (MiB of the embedded store's index cache; the default is {})",
                config.index_cache_mib,
                default_index_cache_mib()
            );
        }
        Ok(config)
    }

    /// Reads the file at `path` (if any), then applies the environment overrides read by `env`.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
                Config::parse(&text, &path.display().to_string())?
            }
            None => Config::default(),
        };
        if let Some(listen) = env("HOSO_LISTEN") {
            config.listen = listen
                .parse()
                .with_context(|| format!("HOSO_LISTEN={listen:?} is not an address like 127.0.0.1:50051"))?;
        }
        if let Some(dir) = env("HOSO_DATA_DIR") {
            config.data_dir = PathBuf::from(dir);
        }
        if let Some(store) = env("HOSO_STORE") {
            config.store = Some(store);
        }
        if let Some(file) = env("HOSO_TOKENS_FILE") {
            config.tokens_file = Some(PathBuf::from(file));
        }
        if let Some(name) = env("HOSO_PROVINCE_NAME") {
            config.province_name = name;
        }
        if let Some(allow) = env("HOSO_ALLOW_PROCEDURES_OUTSIDE_CATALOGUE") {
            config.allow_procedures_outside_catalogue = match allow.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => bail!("HOSO_ALLOW_PROCEDURES_OUTSIDE_CATALOGUE={other:?} is not true or false"),
            };
        }
        if let Some(format) = env("HOSO_LOG_FORMAT") {
            config.log_format = match format.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => bail!("HOSO_LOG_FORMAT={other:?} is not a log format; use text or json"),
            };
        }
        // The standard variable of OpenTelemetry's SDKs turns traces on too; the file wins.
        if config.tracing.otlp_endpoint.is_none()
            && let Some(endpoint) = env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|e| !e.is_empty())
        {
            config.tracing.otlp_endpoint = Some(endpoint);
            config
                .tracing
                .check()
                .context("OTEL_EXPORTER_OTLP_ENDPOINT (traces; docs/operations.md)")?;
        }
        Ok(config)
    }

    /// Where the event log is kept, from `store`; an unknown kind of store is an error naming
    /// the setting.
    pub fn store_location(&self) -> Result<StoreLocation> {
        match self.store.as_deref().map(str::trim) {
            None | Some("") | Some("embedded") => Ok(StoreLocation::Embedded),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(StoreLocation::Postgres(url.to_owned()))
            }
            Some(other) => bail!(
                "store (--store, HOSO_STORE or `store` in the configuration) is {:?}: give `embedded` for the \
                 embedded store in data_dir, or a PostgreSQL URL such as postgres://hoso@db.example:5432/hoso",
                redact_store_url(other)
            ),
        }
    }

    /// The working-day calendar: the shipped 2025 and 2026 tables plus `calendar_files`, with
    /// the configured office hours.
    pub fn calendar(&self) -> Result<BusinessCalendar> {
        let mut calendar = BusinessCalendar::vietnam();
        if !self.office_hours.is_empty() {
            let mut intervals = Vec::with_capacity(self.office_hours.len());
            for (i, [open, close]) in self.office_hours.iter().enumerate() {
                let time = |text: &str| {
                    chrono::NaiveTime::parse_from_str(text, "%H:%M")
                        .with_context(|| format!("office_hours[{i}]: {text:?} is not a time like 08:00"))
                };
                intervals.push((time(open)?, time(close)?));
            }
            let hours = OfficeHours::new(intervals).context("office_hours")?;
            let mut custom = BusinessCalendar::new(hours);
            for year in calendar.years().collect::<Vec<_>>() {
                let table = calendar.table(year).expect("a listed year has a table").clone();
                custom = custom.with_year(table).context("office_hours")?;
            }
            calendar = custom;
        }
        for file in &self.calendar_files {
            let json = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the holiday table {}", file.display()))?;
            calendar = calendar
                .with_year_json(&json)
                .with_context(|| format!("calendar_files: {} is not a usable holiday table", file.display()))?;
        }
        Ok(calendar)
    }

    /// The green lane from `[[green_lane]]`.
    pub fn green_lane(&self) -> Result<GreenLane> {
        let mut lane = GreenLane::new();
        for (i, entry) in self.green_lane.iter().enumerate() {
            let code = ProcedureCode::parse("procedure", &entry.procedure)
                .with_context(|| format!("green_lane[{i}].procedure"))?;
            if entry.amount == 0 {
                bail!("green_lane[{i}].amount: the shortened time must be at least 1");
            }
            lane = lane.with(
                code,
                StatutoryTime {
                    amount: entry.amount,
                    unit: entry.unit,
                },
            );
        }
        Ok(lane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_read_from_the_file_and_from_hoso_store() {
        let config = Config::parse("store = \"postgres://hoso@db:5432/hoso\"\n", "t").unwrap();
        assert_eq!(
            config.store_location().unwrap(),
            StoreLocation::Postgres("postgres://hoso@db:5432/hoso".to_owned())
        );
        let env = |key: &str| (key == "HOSO_STORE").then(|| "postgresql://h/db".to_owned());
        let config = Config::load(None, env).unwrap();
        assert_eq!(
            config.store_location().unwrap(),
            StoreLocation::Postgres("postgresql://h/db".to_owned())
        );
        assert_eq!(Config::default().store_location().unwrap(), StoreLocation::Embedded);
        let config = Config::parse("store = \"embedded\"\n", "t").unwrap();
        assert_eq!(config.store_location().unwrap(), StoreLocation::Embedded);
    }

    #[test]
    fn an_unknown_store_is_an_error_naming_the_setting_without_its_password() {
        let config = Config::parse("store = \"mysql://root:hunter2@db/hoso\"\n", "t").unwrap();
        let err = format!("{:#}", config.store_location().unwrap_err());
        assert!(err.contains("HOSO_STORE") && err.contains("`store`"), "{err}");
        assert!(err.contains("mysql://root:***@db/hoso"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn browser_desks_are_off_unless_origins_are_listed() {
        assert!(!Config::default().web.enabled());
        assert!(
            !Config::parse("[web]\nallowed_origins = []\n", "t")
                .unwrap()
                .web
                .enabled()
        );
        let config = Config::parse(
            "[web]\nallowed_origins = [\"https://motcua.example.gov.vn\", \"http://127.0.0.1:8080\"]\n",
            "t",
        )
        .unwrap();
        assert!(config.web.enabled());
        assert_eq!(
            config.web.origins().unwrap(),
            ["https://motcua.example.gov.vn", "http://127.0.0.1:8080"]
        );
    }

    #[test]
    fn an_origin_no_browser_sends_is_refused_naming_the_key_and_the_entry() {
        for (origin, why) in [
            ("*", "any origin"),
            ("https://motcua.example.gov.vn/", "trailing slash"),
            ("https://motcua.example.gov.vn/desk", "no path"),
            ("motcua.example.gov.vn", "not an origin"),
            ("ftp://motcua.example.gov.vn", "http or https"),
            ("https://user@motcua.example.gov.vn", "no user name"),
            ("https://MotCua.example.gov.vn", "lower case"),
            ("https://motcua.example.gov.vn:443", "default port 443"),
            ("http://127.0.0.1:80", "default port 80"),
        ] {
            let text = format!("[web]\nallowed_origins = [\"https://ok.example\", {origin:?}]\n");
            let err = format!("{:#}", Config::parse(&text, "hoso.toml").unwrap_err());
            assert!(
                err.contains("hoso.toml: [web]") && err.contains(&format!("web.allowed_origins[1] = {origin:?}")),
                "{err}"
            );
            assert!(err.contains(why), "{origin}: {err}");
        }
    }

    #[test]
    fn passwords_are_redacted_from_store_urls() {
        assert_eq!(
            redact_store_url("postgres://hoso:s3cret@db:5432/hoso"),
            "postgres://hoso:***@db:5432/hoso"
        );
        assert_eq!(
            redact_store_url("postgres://hoso@db/hoso?password=s3cret&sslmode=disable"),
            "postgres://hoso@db/hoso?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_store_url("host=db user=hoso password='a b' dbname=hoso"),
            "host=db user=hoso password=*** dbname=hoso"
        );
        assert_eq!(
            redact_store_url("postgres://hoso@a:5432,b:5432/hoso"),
            "postgres://hoso@a:5432,b:5432/hoso"
        );
    }
}
