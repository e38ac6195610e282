//! The load tool: drives a running server over gRPC with whole dossier lives from `hoso-gen`, as
//! the desks and agencies of a province would, and measures it.
//!
//! Two ways to send. Closed loop (`--clients N`): N clients, each taking the next dossier and
//! sending its commands one after the other, the next when the last is acknowledged. Open loop
//! (`--rate R`): commands are due on a fixed schedule, R a second, whatever the server answers;
//! each goes to a dossier whose previous command was acknowledged (or starts a new one), and its
//! latency counts from when it was due, not from when it could be sent, so a stall shows in the
//! figures instead of slowing the schedule down (no coordinated omission).
//!
//! A command that gets no answer (UNAVAILABLE, a cut connection, a timeout) is sent again with the
//! same command id until it is answered or the run ends, as a desk would, to the next server
//! when several serve one record (`--other-server`); one refused for another
//! reason leaves its dossier unfinished. `--ack-log` appends a line per acknowledged command,
//! written before the next command of its dossier is sent, for the crash harness to check.

mod plan;
mod stats;

use hoso::out::{out, outln};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use hoso_api::pb;
use hoso_api::pb::import_command::Command as Request;
use hoso_server::DataDir;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;

use hoso::connect::{self as client, Authorized, ConnectArgs};
use plan::{Plan, Planned, Sender};
use stats::{Stats, Summary};

/// How long one attempt may wait for its answer before it is sent again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// `hoso-load`.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Closed loop: this many clients, each sending a dossier's commands one after the other
    /// (the default, with 16 clients).
    #[arg(long, conflicts_with = "rate")]
    clients: Option<usize>,
    /// Open loop: this many commands a second, due on a fixed schedule whatever the answers;
    /// latency counts from when each command was due.
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: at most this many commands in flight; past it, commands wait (their latency
    /// still counts from when they were due).
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// How long to send: 60s, 2m, 500ms (default 10s; with --dossiers, until they are all done).
    #[arg(long)]
    duration: Option<String>,
    /// Send at most this many dossiers' lives.
    #[arg(long)]
    dossiers: Option<u64>,
    /// Fixes the workload: which dossiers, in which order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Names the run (1 to 7 upper-case letters or digits; default: a fresh one). Receipt codes
    /// and command ids derive from it and the seed: the same --run-id and --seed send the same
    /// commands again, which the server answers as retries without writing anything twice.
    #[arg(long)]
    run_id: Option<String>,
    /// The first month of the generated arrivals, `YYYY-MM`; the workload runs until a few months
    /// before today.
    #[arg(long, default_value = "2025-01")]
    start: String,
    /// Append a line per acknowledged command to this file, as soon as it is acknowledged:
    /// `<command id> <receipt code> <first version> <events> <first position> <replayed 0|1>`.
    #[arg(long)]
    ack_log: Option<PathBuf>,
    /// Print the summary as one JSON object instead of words.
    #[arg(long)]
    json: bool,
    /// HTTP/2 connections to spread the calls over (to each server).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Another server over the same record (several `hoso serve` over one PostgreSQL; repeat for
    /// more): commands are spread over --server and these, and a command that gets no answer is
    /// sent again, with the same command id, to the next server.
    #[arg(long = "other-server", value_name = "URL")]
    other_servers: Vec<String>,
    /// How often to sample the projection's lag (ReportsService.GetProjectionStatus), in
    /// milliseconds; 0 never samples.
    #[arg(long, default_value_t = 10)]
    lag_sample_ms: u64,
    /// The officers' tokens: lines `<role> <token> [<agency code>]` (a development server's
    /// `<data dir>/dev-tokens.txt` as it is). The desk officer receives dossiers and records desk
    /// work; each agency officer records processing steps, e-results, apology letters and
    /// supplement requests on the dossiers of their agency. Also HOSO_LOAD_TOKENS.
    #[arg(long, env = "HOSO_LOAD_TOKENS")]
    tokens: Option<PathBuf>,
    /// An agency officer's token, with --agency (also HOSO_AGENCY_TOKEN).
    #[arg(long, env = "HOSO_AGENCY_TOKEN", hide_env_values = true)]
    agency_token: Option<String>,
    /// The handling agency of --agency-token's officer, e.g. 000.00.04.G18.
    #[arg(long)]
    agency: Option<String>,
    /// Measure replays instead of writes: write one dossier of this many events, then replay it
    /// (AuditService.ReplayDossier) from --clients clients, one replay after the other, for
    /// --duration, and report the replay latency. Needs an auditor's or operator's token.
    #[arg(long, conflicts_with = "rate")]
    replay: Option<usize>,
    /// An auditor's or operator's token, for --replay, when --tokens has none (also
    /// HOSO_AUDITOR_TOKEN).
    #[arg(long, env = "HOSO_AUDITOR_TOKEN", hide_env_values = true)]
    auditor_token: Option<String>,
    /// --token or HOSO_TOKEN is the desk officer's token, when --tokens has none.
    #[command(flatten)]
    connect: ConnectArgs,
}

/// The officers the load acts as.
struct Credentials {
    desk: String,
    /// An auditor's or operator's token, for replays.
    auditor: Option<String>,
    /// (agency code, token).
    agencies: Vec<(String, String)>,
}

fn credentials(args: &LoadArgs) -> Result<Credentials> {
    let mut desk: Option<String> = None;
    let mut auditor: Option<String> = args.auditor_token.clone();
    let mut agencies: Vec<(String, String)> = Vec::new();
    if let Some(path) = &args.tokens {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read --tokens {}", path.display()))?;
        // A development server keeps the officers' units beside the plain tokens.
        let units = DataDir::of_dev_tokens(path)
            .map(|dir| dir.dev_token_hashes())
            .filter(|p| p.exists())
            .map(|p| hoso_server::auth::Tokens::load(&p))
            .transpose()?;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["desk_officer", token] | ["desk_officer", token, _] => {
                    desk.get_or_insert_with(|| (*token).to_owned());
                }
                ["agency_officer", token, agency] => agencies.push(((*agency).to_owned(), (*token).to_owned())),
                ["agency_officer", token] => {
                    let agency = units
                        .as_ref()
                        .and_then(|units| units.caller(token))
                        .map(|caller| caller.agency.clone())
                        .with_context(|| {
                            format!(
                                "{} line {n}: give the agency officer's agency code as a third field (`agency_officer <token> 000.00.04.G18`)",
                                path.display()
                            )
                        })?;
                    agencies.push((agency, (*token).to_owned()));
                }
                ["auditor" | "operator", token] | ["auditor" | "operator", token, _] => {
                    auditor.get_or_insert_with(|| (*token).to_owned());
                }
                // The load drives desks and reads reports; it follows no feed.
                ["integration", _] | ["integration", _, _] => {}
                _ => bail!(
                    "{} line {n}: expected `<role> <token> [<agency code>]` with role desk_officer or agency_officer",
                    path.display()
                ),
            }
        }
    }
    if desk.is_none() {
        desk = args.connect.token().map(str::to_owned);
    }
    if let Some(token) = &args.agency_token {
        let agency = args
            .agency
            .clone()
            .context("--agency-token needs --agency: the code of the handling agency the officer belongs to")?;
        agencies.insert(0, (agency, token.clone()));
    }
    let desk = desk.context(
        "no desk officer's token: give --tokens <data dir>/dev-tokens.txt, or set HOSO_TOKEN to a desk officer's token",
    )?;
    if agencies.is_empty() {
        bail!(
            "no agency officer's token: the load records processing steps, which only the handling agency's officers may; give --tokens <data dir>/dev-tokens.txt, or --agency-token with --agency"
        );
    }
    let mut seen = std::collections::HashSet::new();
    agencies.retain(|(agency, _)| seen.insert(agency.clone()));
    for (agency, _) in &agencies {
        hoso_domain::AgencyCode::parse("agency", agency)
            .map_err(|err| anyhow::anyhow!("the agency officer's agency: {err}"))?;
    }
    Ok(Credentials {
        desk,
        auditor,
        agencies,
    })
}

/// Parses `60s`, `2m`, `500ms`, `1h` or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .with_context(|| format!("--duration {text:?} is not a duration like 60s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => bail!("--duration {text:?} has an unknown unit; use ms, s, m or h"),
    };
    Ok(Duration::from_secs_f64(seconds))
}

type DeskClient = pb::desk_service_client::DeskServiceClient<Authorized>;

/// One connection's clients: the desk officer's and each agency officer's.
#[derive(Clone)]
struct Clients {
    desk: DeskClient,
    agencies: Vec<DeskClient>,
}

/// A connection to each server, and the server commands go to now.
#[derive(Clone)]
struct Conn {
    servers: Vec<Clients>,
    current: usize,
}

impl Conn {
    /// After a command got no answer, the next one goes to the next server (to the same one
    /// when there is only one).
    fn next_server(&mut self) {
        self.current = (self.current + 1) % self.servers.len();
    }
}

async fn send(conn: &mut Conn, step: &plan::Step) -> Result<pb::CommandOutcome, Status> {
    let clients = &mut conn.servers[conn.current];
    let client = match step.sender {
        Sender::Desk => &mut clients.desk,
        Sender::Agency(i) => &mut clients.agencies[i],
    };
    let outcome = match step.request.clone() {
        Request::ReceiveDossier(r) => client.receive_dossier(r).await?.into_inner().outcome,
        Request::DigitizeDossier(r) => client.digitize_dossier(r).await?.into_inner().outcome,
        Request::ProcessDossier(r) => client.process_dossier(r).await?.into_inner().outcome,
        Request::RequestSupplement(r) => client.request_supplement(r).await?.into_inner().outcome,
        Request::ReceiveSupplement(r) => client.receive_supplement(r).await?.into_inner().outcome,
        Request::IssueEResult(r) => client.issue_e_result(r).await?.into_inner().outcome,
        Request::RecordOnlinePayment(r) => client.record_online_payment(r).await?.into_inner().outcome,
        Request::SendApology(r) => client.send_apology(r).await?.into_inner().outcome,
        Request::ReturnResult(r) => client.return_result(r).await?.into_inner().outcome,
        Request::RecordRating(r) => client.record_rating(r).await?.into_inner().outcome,
        Request::WithdrawDossier(r) => client.withdraw_dossier(r).await?.into_inner().outcome,
        Request::RefuseAtIntake(r) => client.refuse_at_intake(r).await?.into_inner().outcome,
        Request::MarkSynced(r) => client.mark_synced(r).await?.into_inner().outcome,
    };
    outcome.ok_or_else(|| Status::internal("the server answered without the command's outcome"))
}

/// A dossier being sent: its plan, the next command, and its version so far.
struct Active {
    dossier: Planned,
    next: usize,
    version: Option<u64>,
}

impl Active {
    fn new(dossier: Planned) -> Active {
        Active {
            dossier,
            next: 0,
            version: None,
        }
    }

    fn done(&self) -> bool {
        self.next >= self.dossier.steps.len()
    }
}

/// How a command's sending ended.
enum StepEnd {
    Acknowledged,
    Refused,
    Stopped,
}

/// What every task shares.
struct Shared {
    stats: Mutex<Stats>,
    ack_log: Option<Mutex<std::fs::File>>,
    /// Acknowledged commands not yet seen applied by the projection: position → when acknowledged.
    pending_lag: Option<Mutex<BTreeMap<u64, Instant>>>,
    stop: watch::Sender<bool>,
    fatal: Mutex<Option<String>>,
    in_flight: AtomicU64,
    agency_names: Vec<String>,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn fail(&self, message: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        fatal.get_or_insert(message);
        self.stop.send_replace(true);
    }

    /// Sends the next command of `active` until it is answered, refused or the run stops.
    async fn step(&self, conn: &mut Conn, active: &mut Active, due: Instant) -> StepEnd {
        let step = &active.dossier.steps[active.next];
        let mut stop = self.stop.subscribe();
        let mut backoff = Duration::from_millis(20);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let end = loop {
            let answer = tokio::time::timeout(ATTEMPT_TIMEOUT, send(conn, step))
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("no answer in time")));
            let status = match answer {
                Ok(outcome) => {
                    self.acknowledged(active, &outcome, due);
                    break StepEnd::Acknowledged;
                }
                Err(status) => status,
            };
            self.stats().error(status.code());
            match status.code() {
                tonic::Code::Unavailable
                | tonic::Code::Cancelled
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unknown => {
                    if *stop.borrow_and_update() {
                        break StepEnd::Stopped;
                    }
                    conn.next_server();
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => break StepEnd::Stopped,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                    let whose = match step.sender {
                        Sender::Desk => "the desk officer's token".to_owned(),
                        Sender::Agency(i) => format!("the token of the agency officer of {}", self.agency_names[i]),
                    };
                    self.fail(format!(
                        "the server refused {whose} ({}): {}; see `hoso-load --help` for the tokens the load needs",
                        stats::code_name(status.code()),
                        status.message()
                    ));
                    break StepEnd::Refused;
                }
                _ => {
                    self.stats().refused += 1;
                    break StepEnd::Refused;
                }
            }
        };
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        end
    }

    fn acknowledged(&self, active: &mut Active, outcome: &pb::CommandOutcome, due: Instant) {
        let now = Instant::now();
        let step = &active.dossier.steps[active.next];
        let first_version = active.version.map_or(0, |v| v + 1);
        let events = (outcome.version + 1).saturating_sub(first_version);
        let first_position = (outcome.position + 1).saturating_sub(events);
        if let Some(log) = &self.ack_log {
            let line = format!(
                "{} {} {first_version} {events} {first_position} {}\n",
                step.command_id,
                active.dossier.receipt_code,
                u8::from(outcome.replayed)
            );
            let mut file = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(err) = file.write_all(line.as_bytes()) {
                drop(file);
                self.fail(format!("cannot write the acknowledgement log: {err}"));
            }
        }
        if let Some(pending) = &self.pending_lag
            && !outcome.replayed
        {
            pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(outcome.position, now);
        }
        active.version = Some(outcome.version);
        active.next += 1;
        let mut stats = self.stats();
        stats.acknowledged(now - due, events, outcome.replayed);
        if active.done() {
            stats.dossiers_finished += 1;
        }
    }
}

/// The dossiers, generated on a thread of their own.
type Dossiers = mpsc::Receiver<Planned>;

/// A closed-loop client: one dossier after another, one command after another.
async fn closed_client(shared: Arc<Shared>, mut conn: Conn, dossiers: Arc<tokio::sync::Mutex<Dossiers>>) {
    let mut stop = shared.stop.subscribe();
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        let next = tokio::select! {
            next = async { dossiers.lock().await.recv().await } => next,
            _ = stop.changed() => return,
        };
        let Some(dossier) = next else { return };
        shared.stats().dossiers_started += 1;
        let mut active = Active::new(dossier);
        while !active.done() {
            if shared.stopping() {
                return;
            }
            match shared.step(&mut conn, &mut active, Instant::now()).await {
                StepEnd::Acknowledged => {}
                StepEnd::Refused => break,
                StepEnd::Stopped => return,
            }
        }
    }
}

/// The open loop: a command due every 1/rate seconds.
async fn open_loop(shared: Arc<Shared>, conns: Vec<Conn>, mut dossiers: Dossiers, rate: f64, max_in_flight: usize) {
    let ready: Arc<Mutex<VecDeque<Active>>> = Arc::new(Mutex::new(VecDeque::new()));
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut stop = shared.stop.subscribe();
    let mut generated_all = false;
    let start = Instant::now();
    for slot in 0u64.. {
        let due = start + Duration::from_secs_f64(slot as f64 / rate);
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            _ = stop.changed() => break,
        }
        if shared.stopping() {
            break;
        }
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.changed() => break,
        };
        while tasks.try_join_next().is_some() {}
        let waiting = ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
        let active = match waiting {
            Some(active) => Some(active),
            None if generated_all => None,
            None => match dossiers.recv().await {
                Some(dossier) => {
                    shared.stats().dossiers_started += 1;
                    Some(Active::new(dossier))
                }
                None => {
                    generated_all = true;
                    None
                }
            },
        };
        let Some(mut active) = active else {
            if tasks.is_empty()
                && ready
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_empty()
            {
                break;
            }
            continue;
        };
        let mut conn = conns[slot as usize % conns.len()].clone();
        let shared = Arc::clone(&shared);
        let ready = Arc::clone(&ready);
        tasks.spawn(async move {
            if let StepEnd::Acknowledged = shared.step(&mut conn, &mut active, due).await
                && !active.done()
            {
                ready
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_back(active);
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Samples the projection's lag until dropped.
async fn sample_lag(
    shared: Arc<Shared>,
    mut reports: pb::reports_service_client::ReportsServiceClient<Authorized>,
    every: Duration,
) {
    let Some(pending) = &shared.pending_lag else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Ok(status) = reports.get_projection_status(pb::GetProjectionStatusRequest {}).await else {
            continue;
        };
        let now = Instant::now();
        let status = status.into_inner();
        let applied = {
            let mut pending = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let behind = pending.split_off(&status.applied_position);
            std::mem::replace(&mut *pending, behind)
        };
        let mut stats = shared.stats();
        stats.lag_events(status.lag_events);
        for acknowledged in applied.into_values() {
            stats.lag(now.saturating_duration_since(acknowledged));
        }
    }
}

/// Prints a progress line to standard error every second, until dropped.
async fn progress(shared: Arc<Shared>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let (mut last_commands, mut last_events, mut last_at) = (0u64, 0u64, start);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let mut stats = shared.stats();
        let seconds = (now - last_at).as_secs_f64().max(1e-9);
        let latency = match stats.take_interval() {
            Some((p50, p99)) => format!("p50 {:.2} ms p99 {:.2} ms", stats::ms(p50), stats::ms(p99)),
            None => "no answers".to_owned(),
        };
        let lag = stats
            .lag_p99()
            .map(|p99| format!(", projection lag p99 {:.1} ms", stats::ms(p99)))
            .unwrap_or_default();
        let errors: u64 = stats.errors.values().sum();
        eprintln!(
            "[{:>5.0}s] {} commands ({:.0}/s), {:.0} events/s, {latency}, {} in flight, {errors} errors{lag}",
            (now - start).as_secs_f64(),
            stats.commands,
            (stats.commands - last_commands) as f64 / seconds,
            (stats.events - last_events) as f64 / seconds,
            shared.in_flight.load(Ordering::Relaxed),
        );
        (last_commands, last_events, last_at) = (stats.commands, stats.events, now);
    }
}

/// Runs `hoso-load`; true when some commands were refused for good.
pub(crate) fn run(args: LoadArgs) -> Result<bool> {
    let credentials = credentials(&args)?;
    let start = NaiveDate::parse_from_str(&format!("{}-01", args.start), "%Y-%m-%d")
        .with_context(|| format!("--start {:?} is not a month like 2025-01", args.start))?;
    let run_id = match &args.run_id {
        Some(id) => {
            plan::check_run_id(id).map_err(anyhow::Error::msg)?;
            id.clone()
        }
        None => plan::fresh_run_id(),
    };
    let today = chrono::Utc::now().date_naive();
    let months =
        plan::months_until(start, today, &hoso_domain::BusinessCalendar::vietnam()).map_err(anyhow::Error::msg)?;
    let duration = match (&args.duration, args.dossiers) {
        (Some(text), _) => Some(parse_duration(text)?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate {rate} must be a positive number of commands a second");
    }
    let clients = args.clients.unwrap_or(16);
    if clients == 0 {
        bail!("--clients must be at least 1");
    }
    let plan = Plan {
        run_id: run_id.clone(),
        seed: args.seed,
        start,
        months,
        agencies: credentials.agencies.iter().map(|(a, _)| a.clone()).collect(),
        reassign: true,
        limit: args.dossiers,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(drive(args, credentials, plan, duration, clients))
}

async fn drive(
    args: LoadArgs,
    credentials: Credentials,
    mut plan: Plan,
    duration: Option<Duration>,
    clients: usize,
) -> Result<bool> {
    let desk = client::bearer(&credentials.desk)?;
    let agency_bearers = credentials
        .agencies
        .iter()
        .map(|(_, token)| client::bearer(token))
        .collect::<Result<Vec<_>>>()?;
    let servers: Vec<ConnectArgs> = std::iter::once(args.connect.clone())
        .chain(args.other_servers.iter().map(|server| args.connect.for_server(server)))
        .collect();
    let mut conns = Vec::new();
    for i in 0..args.connections.max(1) {
        let mut clients = Vec::new();
        for server in &servers {
            let channel = client::channel(server).await?;
            clients.push(Clients {
                desk: DeskClient::new(InterceptedService::new(channel.clone(), desk.clone())),
                agencies: agency_bearers
                    .iter()
                    .map(|b| DeskClient::new(InterceptedService::new(channel.clone(), b.clone())))
                    .collect(),
            });
        }
        // The connections start on the servers in turn, so that the clients are spread over them.
        conns.push(Conn {
            servers: clients,
            current: i % servers.len(),
        });
    }
    let catalogue = pb::reference_service_client::ReferenceServiceClient::new(InterceptedService::new(
        client::channel(&args.connect).await?,
        desk.clone(),
    ))
    .list_procedures(pb::ListProceduresRequest {
        page_size: 1,
        ..pb::ListProceduresRequest::default()
    })
    .await
    .map_err(client::status_error)
    .context("cannot read the server's procedure catalogue")?
    .into_inner();
    if catalogue.catalogue_version == 0 {
        eprintln!(
            "hoso-load: the server holds no procedure catalogue, so it refuses every receipt unless it accepts procedures outside it; load the generated province's: `hoso gen --catalogue-out province.csv` then `hoso catalogue load province.csv --decision 1/QĐ-UBND --effective 2025-01-01`"
        );
    } else {
        // The catalogue names each procedure's agency: a dossier cannot be handed to another.
        plan.reassign = false;
        if plan.agencies.len() < hoso_gen::Province::new(plan.seed).agencies.len() {
            eprintln!(
                "hoso-load: only the dossiers of the {} with an officer's token are sent (the catalogue names each procedure's agency); --tokens with one agency officer per agency (crates/hoso-bench/scripts/province-tokens.sh) sends them all",
                hoso::out::count(plan.agencies.len() as u64, "agency", "agencies")
            );
        }
    }
    let mut reports = pb::reports_service_client::ReportsServiceClient::new(InterceptedService::new(
        client::channel(&args.connect).await?,
        desk,
    ));
    let imported = reports
        .list_dossiers(pb::ListDossiersRequest {
            procedure_source: pb::ProcedureSource::Declared.into(),
            page_size: 1,
            ..pb::ListDossiersRequest::default()
        })
        .await
        .map_or(0, |answer| answer.into_inner().total);
    if imported > 0 {
        eprintln!(
            "hoso-load: WARNING: this server holds {imported} imported dossiers, a published record: the load's dossiers (received from {}) will count in those months' figures; give a load server its own --data-dir",
            plan.start.format("%Y-%m")
        );
    }
    let ack_log = match &args.ack_log {
        None => None,
        Some(path) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open --ack-log {}", path.display()))?,
        )),
    };
    let shared = Arc::new(Shared {
        stats: Mutex::new(Stats::new()),
        ack_log,
        pending_lag: (args.lag_sample_ms > 0).then(|| Mutex::new(BTreeMap::new())),
        stop: watch::channel(false).0,
        fatal: Mutex::new(None),
        in_flight: AtomicU64::new(0),
        agency_names: plan.agencies.clone(),
    });

    if let Some(events) = args.replay {
        return replay(&args, &credentials, &plan, conns, duration, clients, events).await;
    }
    let mode = match args.rate {
        Some(rate) => format!("open loop at {rate} commands/s"),
        None => format!("closed loop with {clients} clients"),
    };
    eprintln!(
        "hoso-load: {mode} against {}, run {} (seed {}), dossiers handled by {} agenc{}; `--run-id {} --seed {}` sends the same commands again",
        servers
            .iter()
            .map(ConnectArgs::server)
            .collect::<Vec<_>>()
            .join(" and "),
        plan.run_id,
        plan.seed,
        plan.agencies.len(),
        if plan.agencies.len() == 1 { "y" } else { "ies" },
        plan.run_id,
        plan.seed
    );

    // The generator runs on a thread of its own, a little ahead of the senders.
    let (tx, rx) = mpsc::channel::<Planned>(1024);
    let generator_plan = plan.clone();
    let generator = std::thread::spawn(move || generator_plan.produce(|dossier| tx.blocking_send(dossier).is_ok()));

    let started = Instant::now();
    let work = {
        let shared = Arc::clone(&shared);
        async move {
            match args.rate {
                Some(rate) => open_loop(shared, conns, rx, rate, args.max_in_flight).await,
                None => {
                    let rx = Arc::new(tokio::sync::Mutex::new(rx));
                    let mut tasks = tokio::task::JoinSet::new();
                    for i in 0..clients {
                        tasks.spawn(closed_client(
                            Arc::clone(&shared),
                            conns[i % conns.len()].clone(),
                            Arc::clone(&rx),
                        ));
                    }
                    while tasks.join_next().await.is_some() {}
                }
            }
        }
    };
    let controller = {
        let shared = Arc::clone(&shared);
        async move {
            let deadline = async {
                match duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = deadline => {}
                _ = tokio::signal::ctrl_c() => eprintln!("hoso-load: stopping (Ctrl-C); waiting for the commands in flight"),
            }
            shared.stop.send_replace(true);
        }
    };
    let until_done = async {
        tokio::pin!(work);
        tokio::select! {
            () = &mut work => {}
            () = controller => work.await,
        }
    };
    tokio::select! {
        () = until_done => {}
        () = async {
            tokio::join!(
                progress(Arc::clone(&shared), started),
                sample_lag(Arc::clone(&shared), reports, Duration::from_millis(args.lag_sample_ms.max(1))),
            );
        } => {}
    }
    let elapsed = started.elapsed();
    shared.stop.send_replace(true);
    // The generator sees the channel closed at its next dossier.
    generator
        .join()
        .map_err(|_| anyhow::anyhow!("the workload generator failed"))?;
    if let Some(message) = shared
        .fatal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
    {
        bail!(message);
    }
    let mut summary: Summary = shared.stats().summary(elapsed);
    summary.lag_sample_ms = args.lag_sample_ms;
    if args.json {
        let mut json = summary.to_json();
        json["run_id"] = plan.run_id.clone().into();
        json["seed"] = plan.seed.into();
        json["mode"] = mode.into();
        outln!("{json}");
    } else {
        outln!("hoso-load: {mode}, run {} (seed {})", plan.run_id, plan.seed);
        out!("{}", summary.to_text());
    }
    Ok(summary.refused > 0)
}

/// `--replay`: writes one dossier of `events` events, then replays it from `clients` clients.
async fn replay(
    args: &LoadArgs,
    credentials: &Credentials,
    plan: &Plan,
    mut conns: Vec<Conn>,
    duration: Option<Duration>,
    clients: usize,
    events: usize,
) -> Result<bool> {
    let auditor = credentials.auditor.as_deref().context(
        "--replay needs an auditor's or operator's token: an `auditor` line in --tokens, or --auditor-token",
    )?;
    let dossier = plan.replay_dossier(events);
    for step in &dossier.steps {
        send(&mut conns[0], step)
            .await
            .map_err(client::status_error)
            .with_context(|| format!("cannot write the dossier to replay ({})", dossier.receipt_code))?;
    }
    let stats = Arc::new(Mutex::new(Stats::new()));
    let stop = Instant::now() + duration.unwrap_or(Duration::from_secs(10));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut audit = pb::audit_service_client::AuditServiceClient::new(InterceptedService::new(
            client::channel(&args.connect).await?,
            client::bearer(auditor)?,
        ));
        let (stats, code) = (Arc::clone(&stats), dossier.receipt_code.clone());
        tasks.spawn(async move {
            while Instant::now() < stop {
                let started = Instant::now();
                let request = pb::ReplayDossierRequest {
                    dossier: Some(pb::DossierRef {
                        r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(code.clone())),
                    }),
                    as_of: None,
                };
                let mut n = 0;
                let answer = async {
                    let mut stream = audit.replay_dossier(request).await?.into_inner();
                    while stream.message().await?.is_some() {
                        n += 1;
                    }
                    Ok::<(), Status>(())
                }
                .await;
                let mut stats = stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match answer {
                    Ok(()) if n == events => stats.acknowledged(started.elapsed(), 0, false),
                    Ok(()) => {
                        return Err(anyhow::anyhow!(
                            "the replay of {code} gave {n} events; it was written with {events}"
                        ));
                    }
                    Err(status) => {
                        stats.error(status.code());
                        if matches!(
                            status.code(),
                            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                        ) {
                            return Err(client::status_error(status).context("the auditor's token was refused"));
                        }
                    }
                }
            }
            Ok(())
        });
    }
    let started = Instant::now();
    while let Some(result) = tasks.join_next().await {
        result.context("a replay client failed")??;
    }
    let summary = stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .summary(started.elapsed());
    let mode = format!(
        "replays of one {events}-event dossier with {clients} client{}",
        if clients == 1 { "" } else { "s" }
    );
    if args.json {
        let full = summary.to_json();
        let json = serde_json::json!({
            "mode": mode,
            "receipt_code": dossier.receipt_code,
            "replays": summary.commands,
            "seconds": full["seconds"],
            "replays_per_second": full["commands_per_second"],
            "latency": full["latency"],
            "errors": full["errors"],
        });
        outln!("{json}");
    } else {
        outln!("hoso-load: {mode} ({})", dossier.receipt_code);
        outln!(
            "replays    {} in {:.1} s ({:.0}/s)",
            summary.commands,
            summary.seconds,
            summary.commands_per_second
        );
        if let Some(q) = &summary.latency {
            outln!(
                "latency    p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
                stats::ms(q.p50),
                stats::ms(q.p99),
                stats::ms(q.p999),
                stats::ms(q.max)
            );
        }
        let errors: Vec<String> = summary.errors.iter().map(|(c, n)| format!("{c} {n}")).collect();
        outln!(
            "errors     {}",
            if errors.is_empty() {
                "none".to_owned()
            } else {
                errors.join(", ")
            }
        );
    }
    Ok(false)
}

#[cfg(test)]
mod tests;
