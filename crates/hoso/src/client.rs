//! The client subcommands: connect to a running server with a bearer token and print what it
//! answers in words an auditor or operator can read.

use crate::out::outln;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use hoso_api::convert::timestamp_to_utc;
use hoso_api::pb;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Request, Status};

/// How to reach the server.
#[derive(clap::Args, Clone)]
pub(crate) struct ConnectArgs {
    /// The server's address (https:// for TLS); also HOSO_SERVER.
    #[arg(long, env = "HOSO_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token; also HOSO_TOKEN (preferred: a flag shows in the process list).
    #[arg(long, env = "HOSO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) to trust the server's certificate by, for https://.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require mutual TLS.
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
}

/// `hoso replay`.
#[derive(clap::Args)]
pub(crate) struct ReplayArgs {
    /// The dossier: its receipt code (e.g. G09.20-20260609-0092637) or its id (a UUID).
    dossier: String,
    /// Show the dossier as it stood at this recorded-at instant (RFC 3339, e.g. 2026-06-10T17:00:00+07:00).
    #[arg(long)]
    as_of: Option<DateTime<Utc>>,
    /// Print each event as one JSON line (envelope, data and metadata) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// `hoso verify`.
#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// One dossier (receipt code or id); without it, the whole log.
    dossier: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub(crate) struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub(crate) type Authorized = InterceptedService<Channel, Bearer>;

impl ConnectArgs {
    /// The bearer token given by --token or HOSO_TOKEN.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The server's address as given.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }
}

/// A new connection to the server (each call opens its own HTTP/2 connection).
pub(crate) async fn channel(args: &ConnectArgs) -> Result<Channel> {
    let mut endpoint = Channel::from_shared(args.server.clone())
        .with_context(|| format!("--server {:?} is not a URL like http://127.0.0.1:50051", args.server))?;
    if args.server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read --ca-cert {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
            let cert = std::fs::read(cert).with_context(|| format!("cannot read --client-cert {}", cert.display()))?;
            let key = std::fs::read(key).with_context(|| format!("cannot read --client-key {}", key.display()))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls).context("the TLS settings are not usable")?;
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {}; is `hoso serve` running?", args.server))
}

/// The interceptor that sends `token`.
pub(crate) fn bearer(token: &str) -> Result<Bearer> {
    let value = format!("Bearer {}", token.trim())
        .parse()
        .context("the token holds characters that cannot be sent in a header")?;
    Ok(Bearer(value))
}

/// The hint given when no token is at hand.
pub(crate) const NO_TOKEN: &str = "no bearer token: set HOSO_TOKEN (or --token); `hoso token new` makes one, and a server without a tokens_file writes development tokens to <data dir>/dev-tokens.txt";

pub(crate) async fn connect(args: &ConnectArgs) -> Result<Authorized> {
    let channel = channel(args).await?;
    let token = args.token.as_deref().context(NO_TOKEN)?;
    Ok(InterceptedService::new(channel, bearer(token)?))
}

fn dossier_ref(text: &str) -> pb::DossierRef {
    let r#ref = if uuid_like(text) {
        pb::dossier_ref::Ref::DossierId(text.to_owned())
    } else {
        pb::dossier_ref::Ref::ReceiptCode(text.to_owned())
    };
    pb::DossierRef { r#ref: Some(r#ref) }
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

pub(crate) fn status_error(status: Status) -> anyhow::Error {
    anyhow::anyhow!("the server answered {:?}: {}", status.code(), status.message())
}

/// A timestamp in RFC 3339 at UTC+7, the form every JSON output of the client uses.
fn local_rfc3339(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(timestamp_to_utc)
        .map(|at| {
            at.with_timezone(&hoso_domain::calendar::vietnam_offset())
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
        })
        .unwrap_or_default()
}

/// `n` and a noun, in the singular for one.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(crate) fn local(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(timestamp_to_utc)
        .map(|at| {
            at.with_timezone(&hoso_domain::calendar::vietnam_offset())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| "-".to_owned())
}

pub(crate) async fn replay(args: ReplayArgs) -> Result<()> {
    let mut client = pb::audit_service_client::AuditServiceClient::new(connect(&args.connect).await?);
    let request = pb::ReplayDossierRequest {
        dossier: Some(dossier_ref(&args.dossier)),
        as_of: args.as_of.map(hoso_api::convert::utc_to_timestamp),
    };
    let mut stream = client.replay_dossier(request).await.map_err(status_error)?.into_inner();
    let mut first = true;
    while let Some(item) = stream.message().await.map_err(status_error)? {
        let event = item.event.context("the server sent a replay item without its event")?;
        let after = item.dossier_after.unwrap_or_default();
        if args.json {
            let line = serde_json::json!({
                "stream_id": event.stream_id,
                "version": event.version,
                "position": event.position,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "schema_version": event.schema_version,
                "occurred_at": local_rfc3339(event.occurred_at.as_ref()),
                "recorded_at": local_rfc3339(event.recorded_at.as_ref()),
                "hash": event.hash,
                "data": serde_json::from_str::<serde_json::Value>(&event.data_json).unwrap_or_default(),
                "metadata": serde_json::from_str::<serde_json::Value>(&event.metadata_json).unwrap_or_default(),
                "status_after": pb::DossierStatus::try_from(after.status)
                    .map(|s| s.as_str_name())
                    .unwrap_or("DOSSIER_STATUS_UNSPECIFIED"),
            });
            outln!("{line}");
            continue;
        }
        if first {
            outln!("dossier {} ({}), times in UTC+7", after.receipt_code, after.dossier_id);
            outln!(
                "{:>3} {:>9}  {:<19}  {:<19}  {:<22} {:<20} {:<14} {:<24} hash",
                "v",
                "position",
                "occurred at",
                "recorded at",
                "event",
                "actor",
                "desk",
                "status after"
            );
            first = false;
        }
        outln!(
            "{:>3} {:>9}  {:<19}  {:<19}  {:<22} {:<20} {:<14} {:<24} {}",
            event.version,
            event.position,
            local(event.occurred_at.as_ref()),
            local(event.recorded_at.as_ref()),
            event.event_type,
            event.actor,
            event.desk,
            after.status_name,
            &event.hash[..event.hash.len().min(16)],
        );
    }
    if first && !args.json {
        outln!(
            "no event of this dossier was recorded by {} (UTC+7): --as-of is about when events were recorded in the log, not when they occurred",
            args.as_of.map_or("now".to_owned(), |at| local(Some(
                &hoso_api::convert::utc_to_timestamp(at)
            )))
        );
    }
    Ok(())
}

pub(crate) async fn verify(args: VerifyArgs) -> Result<()> {
    let mut client = pb::audit_service_client::AuditServiceClient::new(connect(&args.connect).await?);
    let request = pb::VerifyChainRequest {
        dossier: args.dossier.as_deref().map(dossier_ref),
    };
    let report = client.verify_chain(request).await.map_err(status_error)?.into_inner();
    for line in &report.quarantined {
        println!("WARNING: recovery cut {line} (docs/operations.md)");
    }
    if report.ok {
        outln!(
            "ok: {} in {} verified; every hash chain matches",
            count(report.records_checked, "record", "records"),
            count(report.streams_checked, "stream", "streams")
        );
        return Ok(());
    }
    let problem = report.first_problem.unwrap_or_default();
    bail!(
        "the log does not verify: record at position {} (stream {}, version {}): {} ({} records checked before it)",
        problem.position,
        if problem.stream_id.is_empty() {
            "unknown"
        } else {
            &problem.stream_id
        },
        problem.version.map_or("unknown".to_owned(), |v| v.to_string()),
        problem.reason,
        report.records_checked
    )
}

pub(crate) async fn status(args: ConnectArgs) -> Result<()> {
    let connection = connect(&args).await?;
    let mut client = pb::admin_service_client::AdminServiceClient::new(connection.clone());
    let status = client
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    outln!("server version    {}", status.server_version);
    outln!("store             {}", status.store_backend);
    outln!("events in the log {}", status.head_position);
    outln!("started at        {} (UTC+7)", local(status.started_at.as_ref()));
    outln!(
        "accepting writes  {}",
        if status.accepting_writes {
            "yes"
        } else {
            "NO: the store refuses writes; restart the server"
        }
    );
    outln!(
        "holiday notices   {} (other years: provisional calendars)",
        status
            .calendar_years
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    outln!(
        "catalogue         version {}{}",
        status.catalogue_version,
        match (status.catalogue_version, status.procedures_outside_catalogue_allowed) {
            (0, false) => " (none loaded: desks cannot receive dossiers; load one with `hoso catalogue load`)",
            (0, true) => " (none loaded; procedures outside the catalogue are accepted)",
            (_, true) => "; procedures outside it are accepted",
            _ => "",
        }
    );
    for warning in &status.warnings {
        outln!("WARNING           {warning}");
    }
    outln!("you are           {} ({})", status.caller, status.caller_role);
    let mut reports = pb::reports_service_client::ReportsServiceClient::new(connection);
    let projection = reports
        .get_projection_status(pb::GetProjectionStatusRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    outln!(
        "projection        {} of {} events applied (lag {}), {}{}",
        projection.applied_position,
        projection.head_position,
        projection.lag_events,
        count(projection.dossiers, "dossier", "dossiers"),
        if projection.rebuilding { ", rebuilding" } else { "" }
    );
    if !projection.stopped.is_empty() {
        println!("PROJECTION STOPPED {}", projection.stopped);
        println!(
            "                  reports answer DATA_LOSS: repair the log, then `hoso rebuild` (docs/operations.md)"
        );
    }
    Ok(())
}

/// `hoso call`.
#[derive(clap::Args)]
pub(crate) struct CallArgs {
    /// The method as `Service/Method`, e.g. `DeskService/ReceiveDossier` (package hoso.v1 is
    /// implied; `hoso call list` lists them all).
    method: String,
    /// The request as JSON (the protobuf JSON mapping: field names in lowerCamelCase or as in the
    /// .proto, timestamps as RFC 3339 strings, enums by name); `-` reads it from standard input.
    #[arg(default_value = "{}")]
    json: String,
    #[command(flatten)]
    connect: ConnectArgs,
}

impl CallArgs {
    /// `hoso call list`.
    pub(crate) fn is_list(&self) -> bool {
        self.method == "list"
    }
}

fn descriptors() -> Result<prost_reflect::DescriptorPool> {
    prost_reflect::DescriptorPool::decode(hoso_api::FILE_DESCRIPTOR_SET)
        .context("the built-in API description is damaged")
}

/// Every method of the API, one `Service/Method` a line.
pub(crate) fn list_methods() -> Result<()> {
    for service in descriptors()?.services() {
        for method in service.methods() {
            let streaming = if method.is_server_streaming() {
                "  (server streaming)"
            } else {
                ""
            };
            outln!("{}/{}{streaming}", service.name(), method.name());
        }
    }
    Ok(())
}

/// Calls one method with a JSON request and prints the JSON answer (one object per message).
pub(crate) async fn call(args: CallArgs) -> Result<()> {
    use prost_reflect::{DynamicMessage, SerializeOptions};
    let pool = descriptors()?;
    let (service, method) = args
        .method
        .split_once('/')
        .with_context(|| format!("{:?} is not Service/Method; `hoso call list` lists them", args.method))?;
    let service_name = if service.contains('.') {
        service.to_owned()
    } else {
        format!("hoso.v1.{service}")
    };
    let service = pool
        .get_service_by_name(&service_name)
        .with_context(|| format!("there is no service {service_name}; `hoso call list` lists them"))?;
    let method = service
        .methods()
        .find(|m| m.name() == method)
        .with_context(|| format!("{} has no method {method}; `hoso call list` lists them", service.name()))?;
    let json = if args.json == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the request from standard input")?
    } else {
        args.json
    };
    let mut deserializer = serde_json::Deserializer::from_str(&json);
    let request = DynamicMessage::deserialize(method.input(), &mut deserializer)
        .and_then(|m| deserializer.end().map(|()| m))
        .with_context(|| format!("the request is not a valid {} in JSON", method.input().full_name()))?;

    let mut grpc = tonic::client::Grpc::new(connect(&args.connect).await?);
    grpc.ready()
        .await
        .context("the connection to the server is not ready")?;
    let path: tonic::codegen::http::uri::PathAndQuery = format!("/{}/{}", service.full_name(), method.name())
        .parse()
        .context("the method's path is not valid")?;
    let codec = DynamicCodec(method.output());
    let options = SerializeOptions::new().skip_default_fields(false);
    let print = |message: &DynamicMessage| -> Result<()> {
        let mut out = serde_json::Serializer::pretty(std::io::stdout());
        message.serialize_with_options(&mut out, &options)?;
        outln!();
        Ok(())
    };
    if method.is_server_streaming() {
        let mut stream = grpc
            .server_streaming(Request::new(request), path, codec)
            .await
            .map_err(status_error)?
            .into_inner();
        while let Some(message) = stream.message().await.map_err(status_error)? {
            print(&message)?;
        }
    } else {
        let response = grpc
            .unary(Request::new(request), path, codec)
            .await
            .map_err(status_error)?;
        print(response.get_ref())?;
    }
    Ok(())
}

/// Encodes and decodes messages known only at run time, by their descriptor.
struct DynamicCodec(prost_reflect::MessageDescriptor);

impl tonic::codec::Codec for DynamicCodec {
    type Encode = prost_reflect::DynamicMessage;
    type Decode = prost_reflect::DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> DynamicEncoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder(self.0.clone())
    }
}

struct DynamicEncoder;

impl tonic::codec::Encoder for DynamicEncoder {
    type Item = prost_reflect::DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), Status> {
        prost::Message::encode(&item, dst).map_err(|err| Status::internal(format!("cannot encode the request: {err}")))
    }
}

struct DynamicDecoder(prost_reflect::MessageDescriptor);

impl tonic::codec::Decoder for DynamicDecoder {
    type Item = prost_reflect::DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        prost_reflect::DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|err| Status::internal(format!("cannot decode the answer: {err}")))
    }
}

/// `hoso figures`.
#[derive(clap::Args)]
pub(crate) struct FiguresArgs {
    /// The month, `YYYY-MM`.
    #[arg(long)]
    month: String,
    /// Only events recorded at or before this instant count (RFC 3339); default: now. The
    /// figures printed name the cut-off used: give it again to get the same figures.
    #[arg(long)]
    cutoff: Option<DateTime<Utc>>,
    /// Print the answer as JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub(crate) async fn rebuild(args: ConnectArgs) -> Result<()> {
    let mut client = pb::reports_service_client::ReportsServiceClient::new(connect(&args).await?);
    let mut stream = client
        .rebuild_projections(pb::RebuildProjectionsRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("rebuilding [{bar:40}] {pos}/{len} events ({msg})")
            .context("the progress bar template is wrong")?
            .progress_chars("#>-"),
    );
    while let Some(progress) = stream.message().await.map_err(status_error)? {
        bar.set_length(progress.events_total);
        bar.set_position(progress.events_done);
        bar.set_message(format!(
            "{:.0} events/s, {:.0} s left",
            progress.events_per_second, progress.seconds_left
        ));
        if progress.swapped {
            bar.finish_with_message(format!("{:.0} events/s; swapped in", progress.events_per_second));
            outln!(
                "rebuilt from {} events; the new projection is live",
                progress.events_total
            );
            return Ok(());
        }
    }
    bail!("the server ended the rebuild without swapping the new projection in; see its log")
}

pub(crate) async fn figures(args: FiguresArgs) -> Result<()> {
    let mut client = pb::reports_service_client::ReportsServiceClient::new(connect(&args.connect).await?);
    let request = pb::GetIndexFiguresRequest {
        scope: Some(pb::ReportScope {
            month: args.month.clone(),
            cutoff: args.cutoff.map(hoso_api::convert::utc_to_timestamp),
            ..Default::default()
        }),
    };
    let figures = client
        .get_index_figures(request)
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        let mut out = serde_json::Serializer::pretty(std::io::stdout());
        let message = prost_reflect::DynamicMessage::decode(
            descriptors()?
                .get_message_by_name("hoso.v1.GetIndexFiguresResponse")
                .context("the built-in API description lacks GetIndexFiguresResponse")?,
            prost::Message::encode_to_vec(&figures).as_slice(),
        )?;
        message.serialize_with_options(
            &mut out,
            &prost_reflect::SerializeOptions::new().skip_default_fields(false),
        )?;
        outln!();
        return Ok(());
    }
    let cutoff = local_rfc3339(figures.cutoff.as_ref());
    outln!(
        "index 766 figures, {} to {} (excluded), as of {cutoff}",
        figures.start_date,
        figures.end_date
    );
    let in_scope = figures
        .province
        .as_ref()
        .and_then(|p| p.on_time.as_ref())
        .and_then(|o| o.on_time.as_ref())
        .map_or(0, |r| r.denominator);
    if in_scope == 0 {
        outln!(
            "no dossier of this period had been recorded by the cut-off: the cut-off is about when events were recorded in the log, not when they occurred"
        );
    }
    let rate = |r: Option<&pb::Ratio>| match r {
        Some(r) if r.denominator > 0 => format!("{:>7}% {:>7}/{:<7}", r.rate_percent, r.numerator, r.denominator),
        Some(_) => format!("{:>25}", "no dossiers"),
        None => format!("{:>25}", "absent"),
    };
    let province = figures.province.unwrap_or_default();
    outln!();
    outln!(
        "{:<6} {:<40} {:>25} {:>12}",
        "code",
        "indicator",
        "rate  numerator/denominator",
        "points"
    );
    for indicator in &province.indicators {
        // The indicator's own rate (for 13 the product of its factors), beside the numerator and
        // denominator that make it; never a factor's rate.
        let ratio = if indicator.measured {
            indicator.ratio.as_ref().map(|r| pb::Ratio {
                rate_percent: indicator.rate_percent.clone(),
                ..r.clone()
            })
        } else {
            None
        };
        let points = if indicator.points.is_empty() {
            "-".to_owned()
        } else {
            format!("{}/{}", indicator.points, indicator.max_points)
        };
        outln!(
            "{:<6} {:<40} {} {:>12}",
            indicator.code,
            indicator.name_en,
            rate(ratio.as_ref()),
            points
        );
        for factor in &indicator.factors {
            outln!(
                "{:<6} {:<40} {}",
                "",
                format!("  × {}", factor.name_en),
                rate(factor.ratio.as_ref())
            );
        }
    }
    outln!();
    outln!(
        "{:<16} {:>25} {:>8}",
        "handling agency",
        "on time (on time/in scope)",
        "overdue"
    );
    for agency in &figures.agencies {
        let on_time = agency.on_time.clone().unwrap_or_default();
        outln!(
            "{:<16} {} {:>8}",
            agency.group,
            rate(on_time.on_time.as_ref()),
            on_time.overdue
        );
    }
    Ok(())
}

/// `hoso import`.
#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// The NDJSON file: one `hoso.v1.ImportDossierRequest` in JSON a line.
    file: PathBuf,
    /// Where to write the lines that were refused, with their line number and reason (NDJSON).
    #[arg(long, default_value = "import-rejects.ndjson")]
    rejects: PathBuf,
    /// Dossiers sent at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Where to list the imported dossiers whose procedure values differ from the catalogue in
    /// force at their receipt (NDJSON; written only when some do).
    #[arg(long, default_value = "import-catalogue-differences.ndjson")]
    differences: PathBuf,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Imports every line; returns how many were rejected.
pub(crate) async fn import(args: ImportArgs) -> Result<u64> {
    use std::io::{BufRead, Write};
    let file = std::fs::File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut lines = std::io::BufReader::new(file);
    // The rejects file is this run's: an old one goes, and a new one appears only if a line is
    // rejected.
    match std::fs::remove_file(&args.rejects) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("cannot replace {}", args.rejects.display()));
        }
        _ => {}
    }
    let mut rejects = Rejects {
        path: args.rejects.clone(),
        file: None,
    };
    let client = pb::admin_service_client::AdminServiceClient::new(connect(&args.connect).await?);
    let bar = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("importing [{bar:40}] {bytes}/{total_bytes} ({msg})")
            .context("the progress bar template is wrong")?
            .progress_chars("#>-"),
    );
    let (mut imported, mut events, mut present, mut rejected) = (0u64, 0u64, 0u64, 0u64);
    let mut differing: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut line_number = 0u64;
    let mut read = 0u64;
    let mut text = String::new();
    let reject = |rejects: &mut Rejects, line: u64, receipt: &str, reason: &str| -> Result<()> {
        let entry = serde_json::json!({ "line": line, "receipt_code": receipt, "reason": reason });
        writeln!(rejects.file()?, "{entry}").context("cannot write the rejects file")
    };
    loop {
        text.clear();
        let n = lines.read_line(&mut text).context("cannot read the import file")?;
        if n > 0 {
            line_number += 1;
            read += n as u64;
            if text.trim().is_empty() {
                continue;
            }
            match hoso_api::import_line::parse_import_line(&text) {
                Err(reason) => {
                    rejected += 1;
                    reject(
                        &mut rejects,
                        line_number,
                        "",
                        &format!("not an ImportDossierRequest in JSON: {reason}"),
                    )?;
                }
                Ok(request) => {
                    let receipt = match request.commands.first().and_then(|c| c.command.as_ref()) {
                        Some(pb::import_command::Command::ReceiveDossier(r)) => r.receipt_code.clone(),
                        _ => String::new(),
                    };
                    let mut client = client.clone();
                    in_flight.spawn(async move { (line_number, receipt, client.import_dossier(request).await) });
                }
            }
        }
        // Keep `parallel` dossiers in flight; at the end, wait for all.
        while in_flight.len() >= args.parallel.max(1) || (n == 0 && !in_flight.is_empty()) {
            let (line, receipt, answer) = in_flight
                .join_next()
                .await
                .expect("a task is in flight")
                .context("an import task failed")?;
            match answer {
                Ok(answer) => {
                    let answer = answer.into_inner();
                    if !answer.catalogue_differences.is_empty() {
                        differing.push((answer.receipt_code.clone(), answer.catalogue_differences));
                    }
                    if answer.already_imported {
                        present += 1;
                    } else {
                        imported += 1;
                        events += answer.events;
                    }
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    bar.abandon();
                    rejects.flush()?;
                    return Err(status_error(status)).context(format!("the import stopped at line {line}; run it again to continue (imported dossiers are not imported twice)"));
                }
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    ) =>
                {
                    bar.abandon();
                    rejects.flush()?;
                    return Err(status_error(status)).context(format!(
                        "the import stopped at line {line}: the server refused the token; importing needs an operator's token of this server (HOSO_TOKEN) and the right server (HOSO_SERVER = {})",
                        args.connect.server()
                    ));
                }
                Err(status) => {
                    rejected += 1;
                    reject(&mut rejects, line, &receipt, status.message())?;
                }
            }
        }
        bar.set_position(read);
        bar.set_message(format!(
            "{imported} imported, {present} already there, {rejected} rejected"
        ));
        if n == 0 {
            break;
        }
    }
    rejects.flush()?;
    bar.finish();
    outln!(
        "imported {imported} dossiers ({events} events); {present} were already there; {rejected} lines rejected{}",
        if rejected > 0 {
            format!(" (reasons in {})", args.rejects.display())
        } else {
            String::new()
        }
    );
    report_differences(&mut differing, &args.differences)?;
    Ok(rejected)
}

/// The rejects file, created at the first rejected line.
struct Rejects {
    path: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl Rejects {
    fn file(&mut self) -> Result<&mut std::io::BufWriter<std::fs::File>> {
        if self.file.is_none() {
            let file =
                std::fs::File::create(&self.path).with_context(|| format!("cannot create {}", self.path.display()))?;
            self.file = Some(std::io::BufWriter::new(file));
        }
        self.file.as_mut().context("the rejects file was just created")
    }

    fn flush(&mut self) -> Result<()> {
        use std::io::Write;
        match &mut self.file {
            Some(file) => file.flush().context("cannot write the rejects file"),
            None => Ok(()),
        }
    }
}

/// Prints the imported dossiers whose procedure values differ from the catalogue (a few, and
/// the count) and lists them all in `path`.
fn report_differences(differing: &mut [(String, Vec<String>)], path: &std::path::Path) -> Result<()> {
    use std::io::Write;
    if differing.is_empty() {
        return Ok(());
    }
    differing.sort();
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for (receipt, differences) in differing.iter() {
        let entry = serde_json::json!({ "receipt_code": receipt, "differences": differences });
        writeln!(file, "{entry}").with_context(|| format!("cannot write {}", path.display()))?;
    }
    file.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    outln!(
        "{} {} procedure values that differ from the catalogue in force at receipt (each history keeps its own); all in {}:",
        differing.len(),
        if differing.len() == 1 {
            "dossier has"
        } else {
            "dossiers have"
        },
        path.display()
    );
    const SHOWN: usize = 10;
    for (receipt, differences) in differing.iter().take(SHOWN) {
        outln!("  {receipt}: {}", differences.join("; "));
    }
    if differing.len() > SHOWN {
        outln!("  … and {} more", differing.len() - SHOWN);
    }
    Ok(())
}

/// `hoso disclose`.
#[derive(clap::Args)]
pub(crate) struct DiscloseArgs {
    /// The month, `YYYY-MM`.
    #[arg(long)]
    month: String,
    /// Only events recorded at or before this instant count (RFC 3339); default: now. The
    /// document names the cut-off: give it again to get the same bytes.
    #[arg(long)]
    cutoff: Option<DateTime<Utc>>,
    /// html, csv, json or xlsx.
    #[arg(long, default_value = "html")]
    format: String,
    /// vi (Vietnamese labels) or en.
    #[arg(long, default_value = "vi")]
    language: String,
    /// Where to write it; default: the name the server suggests, in the current directory
    /// (`cong-khai-2025-09.html`, `disclosure-2025-09-en.html`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace the file if it exists (without it, an existing file is left as it is).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

/// Writes `bytes` to `path`, refusing to replace an existing file unless `force`.
fn write_new(path: &std::path::Path, bytes: &[u8], force: bool) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // Created only if absent, in one step, so that no other writer's file is replaced.
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} exists; give --force to replace it, or --out to write elsewhere",
            path.display()
        ),
        other => other.with_context(|| format!("cannot create {}", path.display()))?,
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

pub(crate) async fn disclose(args: DiscloseArgs) -> Result<()> {
    let format = match args.format.as_str() {
        "html" => pb::DisclosureFormat::Html,
        "csv" => pb::DisclosureFormat::Csv,
        "json" => pb::DisclosureFormat::Json,
        "xlsx" => pb::DisclosureFormat::Xlsx,
        other => bail!("--format {other:?} is not a format; use html, csv, json or xlsx"),
    };
    let mut client = pb::reports_service_client::ReportsServiceClient::new(connect(&args.connect).await?);
    let request = pb::GetDisclosureRequest {
        scope: Some(pb::ReportScope {
            month: args.month.clone(),
            cutoff: args.cutoff.map(hoso_api::convert::utc_to_timestamp),
            ..Default::default()
        }),
        format: format.into(),
        language: args.language.clone(),
    };
    let answer = client.get_disclosure(request).await.map_err(status_error)?.into_inner();
    let out = args.out.unwrap_or_else(|| PathBuf::from(&answer.file_name));
    write_new(&out, &answer.document, args.force)?;
    if answer.empty {
        outln!(
            "warning: no dossier of {} was recorded by the cut-off; the document says so (check --month and --cutoff)",
            args.month
        );
    }
    let cutoff = answer
        .cutoff
        .as_ref()
        .and_then(timestamp_to_utc)
        .map(|c| c.to_rfc3339())
        .unwrap_or_default();
    outln!(
        "wrote {} ({} bytes), figures as of {cutoff}; `--cutoff {cutoff}` gives the same document again",
        out.display(),
        answer.document.len()
    );
    Ok(())
}
