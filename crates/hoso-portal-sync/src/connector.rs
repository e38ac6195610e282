//! The connector's loop: read the feed, fold each dossier, send its records to the portal with at
//! most one in flight per dossier, record the portal's answers back in the log, set aside what
//! the portal keeps refusing, and move the consumer's checkpoint only past what is done.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use hoso_api::convert::{timestamp_to_utc, utc_to_timestamp};
use hoso_api::pb;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use uuid::Uuid;

use crate::aside::{RESEND_ALL, SetAside, StateDir};
use crate::config::Config;
use crate::portal::{Accepted, Portal, SendFailure};
use crate::record::{Dossiers, FOLLOWED_EVENT_TYPES, SyncRecord};

/// How often the consumer's checkpoint is recorded while records are done: each one is an event
/// kept in the log for good, and what a crash loses is only resent (same idempotency keys).
const ACKNOWLEDGE_EVERY: Duration = Duration::from_secs(5);

/// How often the resend requests left by `hoso portal-sync resend` are looked for.
const RESEND_POLL: Duration = Duration::from_secs(1);

/// Records read ahead per dossier slot before the feed is left waiting.
const READ_AHEAD_PER_SLOT: usize = 64;

/// The namespace of the `MarkSynced` command ids: the command that records a record's answer is
/// named by the record's idempotency key, so recording it again after a crash is a retry.
pub const SYNC_COMMAND_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b7e_52a4_4c55_9d0e_8a51_7c3f_d2a9);

/// The `MarkSynced` command id that records the portal's answer to the record with `key`.
pub fn sync_command_id(key: &str) -> Uuid {
    Uuid::new_v5(&SYNC_COMMAND_NAMESPACE, key.as_bytes())
}

/// Adds the connector's bearer token to every request to the hoso server.
#[derive(Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Hoso = InterceptedService<Channel, Bearer>;
type Feed = pb::feed_service_client::FeedServiceClient<Hoso>;
type Desk = pb::desk_service_client::DeskServiceClient<Hoso>;
type Query = pb::dossier_query_service_client::DossierQueryServiceClient<Hoso>;

/// What every task shares.
struct Shared {
    config: Config,
    portal: Portal,
    dir: StateDir,
    desk: Desk,
    query: Query,
}

/// How a task ended, for one dossier.
enum Ended {
    /// The record reached the portal and its answer is in the log.
    Sent(SyncRecord),
    /// The record failed `attempts` times; the last failure is `reason`.
    Refused(SyncRecord, String, u32),
    /// A resend emptied the dossier's file: the dossier flows again.
    Cleared,
    /// A resend failed again: the file keeps what is left.
    StillAside,
}

/// Runs the connector until `shutdown` completes or the feed breaks (an error: the supervisor
/// restarts it, and what was not acknowledged is sent again).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let portal = Portal::new(&config)?;
    let dir = StateDir::open(&config.state_dir)?;
    let channel = connect(&config).await?;
    let token = config.hoso.token.read("the connector's hoso token")?;
    let bearer = Bearer(
        format!("Bearer {token}")
            .parse()
            .context("the connector's hoso token holds characters that cannot be sent in a header")?,
    );
    let mut feed = Feed::new(InterceptedService::new(channel.clone(), bearer.clone()));
    let desk = Desk::new(InterceptedService::new(channel.clone(), bearer.clone()));
    let query = Query::new(InterceptedService::new(channel, bearer));
    let consumer = config.consumer.clone();
    // Acknowledging position 0 never writes: it reads the consumer's checkpoint.
    let checkpoint = feed
        .acknowledge(pb::AcknowledgeRequest {
            consumer: consumer.clone(),
            next_position: 0,
        })
        .await
        .map_err(|status| refusal("reading the consumer's checkpoint", &status))?
        .into_inner()
        .next_position;
    // The dossiers' states are folded from the start of the log; records are sent from the
    // checkpoint on.
    let mut stream = feed
        .subscribe(pb::SubscribeRequest {
            from_position: 0,
            consumer: String::new(),
            event_types: FOLLOWED_EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
            handling_agencies: vec![],
        })
        .await
        .map_err(|status| refusal("subscribing to the change feed", &status))?
        .into_inner();
    tracing::info!(
        consumer,
        checkpoint,
        "portal sync: folding the dossiers up to the checkpoint, then sending"
    );

    let blocked: HashSet<String> = dir.list()?.into_iter().map(|a| a.receipt_code).collect();
    let shared = Arc::new(Shared {
        config,
        portal,
        dir,
        desk,
        query,
    });
    let mut state = Loop {
        shared: shared.clone(),
        dossiers: Dossiers::default(),
        tasks: JoinSet::new(),
        in_flight: HashSet::new(),
        queued: HashMap::new(),
        blocked,
        pending: BTreeSet::new(),
        handled: checkpoint,
        recorded: checkpoint,
    };
    let mut acknowledge = tokio::time::interval(ACKNOWLEDGE_EVERY);
    acknowledge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut resend = tokio::time::interval(RESEND_POLL);
    resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let max_in_flight = shared.config.max_in_flight;
    let read_ahead = max_in_flight * READ_AHEAD_PER_SLOT;
    let started = Instant::now();
    let mut told_checkpoint = checkpoint == 0;
    let mut told_caught_up = false;
    tokio::pin!(shutdown);
    loop {
        let room = state.in_flight.len() < max_in_flight && state.pending.len() < read_ahead;
        tokio::select! {
            () = &mut shutdown => {
                state.acknowledge(&mut feed, &consumer).await?;
                tracing::info!(consumer, checkpoint = state.recorded, "portal sync: stopped");
                return Ok(());
            }
            message = stream.message(), if room => {
                let message = message
                    .map_err(|status| refusal("following the change feed", &status))?
                    .context("the server ended the change feed without saying why")?;
                if let Some(event) = &message.event {
                    let record = state.dossiers.apply(event)?;
                    if event.position >= checkpoint && let Some(record) = record {
                        state.dispatch(record)?;
                    }
                    if !told_checkpoint && message.next_position >= checkpoint {
                        tracing::info!(
                            dossiers = state.dossiers.len(),
                            seconds = started.elapsed().as_secs(),
                            "portal sync: dossiers folded up to the checkpoint; sending"
                        );
                        told_checkpoint = true;
                    }
                }
                if message.next_position >= checkpoint {
                    state.handled = message.next_position;
                }
                if message.caught_up && !told_caught_up {
                    tracing::info!(position = message.next_position, "portal sync: caught up with the log");
                    told_caught_up = true;
                }
            }
            Some(joined) = state.tasks.join_next() => {
                let (receipt_code, ended) = joined.context("a send task failed")??;
                state.finish(&receipt_code, ended)?;
            }
            _ = acknowledge.tick() => state.acknowledge(&mut feed, &consumer).await?,
            _ = resend.tick() => state.take_resend_requests()?,
        }
    }
}

/// The loop's state.
struct Loop {
    shared: Arc<Shared>,
    dossiers: Dossiers,
    tasks: JoinSet<Result<(String, Ended)>>,
    /// Dossiers with a task running (a send or a resend).
    in_flight: HashSet<String>,
    /// Records waiting behind their dossier's task, in feed order.
    queued: HashMap<String, VecDeque<SyncRecord>>,
    /// Dossiers with records set aside: their later records queue behind them, on disk.
    blocked: HashSet<String>,
    /// Positions of the records not yet done (sent and recorded back, or set aside durably).
    pending: BTreeSet<u64>,
    /// Where the feed resumes once everything read is done.
    handled: u64,
    /// The checkpoint last recorded.
    recorded: u64,
}

impl Loop {
    /// Takes a record from the feed: sends it, queues it behind its dossier's task, or queues it
    /// behind the dossier's records set aside.
    fn dispatch(&mut self, record: SyncRecord) -> Result<()> {
        let code = record.receipt_code.clone();
        if self.in_flight.contains(&code) {
            self.pending.insert(record.source.position);
            self.queued.entry(code).or_default().push_back(record);
        } else if self.blocked.contains(&code) {
            self.shared.dir.queue_behind(record)?;
        } else {
            self.pending.insert(record.source.position);
            self.start_send(record);
        }
        Ok(())
    }

    fn start_send(&mut self, record: SyncRecord) {
        self.in_flight.insert(record.receipt_code.clone());
        let shared = self.shared.clone();
        self.tasks.spawn(async move {
            let code = record.receipt_code.clone();
            let ended = send(&shared, record).await?;
            Ok((code, ended))
        });
    }

    /// A task ended: the next record of its dossier goes, or the dossier's records are set aside.
    fn finish(&mut self, code: &str, ended: Ended) -> Result<()> {
        self.in_flight.remove(code);
        match ended {
            Ended::Sent(record) => {
                self.pending.remove(&record.source.position);
            }
            Ended::Refused(record, reason, attempts) => {
                tracing::warn!(receipt_code = code, reason, attempts, "portal sync: record set aside");
                let mut records = vec![record];
                records.extend(self.queued.remove(code).unwrap_or_default());
                let aside = SetAside {
                    receipt_code: code.to_owned(),
                    reason,
                    attempts,
                    set_aside_at: Utc::now(),
                    records,
                };
                self.shared.dir.put(&aside)?;
                self.blocked.insert(code.to_owned());
                for record in &aside.records {
                    self.pending.remove(&record.source.position);
                }
            }
            Ended::Cleared => {
                tracing::info!(receipt_code = code, "portal sync: records set aside are sent");
                self.blocked.remove(code);
            }
            Ended::StillAside => {
                for record in self.queued.remove(code).unwrap_or_default() {
                    let position = record.source.position;
                    self.shared.dir.queue_behind(record)?;
                    self.pending.remove(&position);
                }
            }
        }
        if !self.blocked.contains(code)
            && let Some(queue) = self.queued.get_mut(code)
            && let Some(next) = queue.pop_front()
        {
            if queue.is_empty() {
                self.queued.remove(code);
            }
            self.start_send(next);
        }
        Ok(())
    }

    /// Records the checkpoint: the first record not done, or everything read.
    async fn acknowledge(&mut self, feed: &mut Feed, consumer: &str) -> Result<()> {
        let next_position = self.pending.first().copied().unwrap_or(self.handled);
        if next_position <= self.recorded {
            return Ok(());
        }
        let answer = feed
            .acknowledge(pb::AcknowledgeRequest {
                consumer: consumer.to_owned(),
                next_position,
            })
            .await
            .map_err(|status| refusal("recording the consumer's checkpoint", &status))?
            .into_inner();
        self.recorded = answer.next_position.max(next_position);
        Ok(())
    }

    /// Starts a resend for each dossier an operator asked for.
    fn take_resend_requests(&mut self) -> Result<()> {
        for request in self.shared.dir.resend_requests()? {
            let codes: Vec<String> = if request == RESEND_ALL {
                self.blocked.iter().cloned().collect()
            } else {
                vec![request.clone()]
            };
            for code in codes {
                if !self.blocked.contains(&code) {
                    tracing::warn!(
                        receipt_code = code,
                        "portal sync: resend asked for a dossier with nothing set aside"
                    );
                } else if !self.in_flight.contains(&code) {
                    tracing::info!(receipt_code = code, "portal sync: resending the records set aside");
                    self.in_flight.insert(code.clone());
                    let shared = self.shared.clone();
                    self.tasks.spawn(async move {
                        let ended = resend(&shared, &code).await?;
                        Ok((code, ended))
                    });
                }
            }
            self.shared.dir.resend_taken(&request)?;
        }
        Ok(())
    }
}

/// Sends one record and records the portal's answer.
async fn send(shared: &Shared, record: SyncRecord) -> Result<Ended> {
    let accepted = match send_with_retries(shared, &record).await {
        Ok(accepted) => accepted,
        Err((reason, attempts)) => return Ok(Ended::Refused(record, reason, attempts)),
    };
    match record_answer(shared, &record, &accepted).await? {
        Ok(()) => Ok(Ended::Sent(record)),
        Err(reason) => Ok(Ended::Refused(record, reason, 1)),
    }
}

/// Sends a dossier's records set aside, in order, until one fails again.
async fn resend(shared: &Shared, code: &str) -> Result<Ended> {
    let Some(mut aside) = shared.dir.get(code)? else {
        return Ok(Ended::Cleared);
    };
    while let Some(record) = aside.records.first().cloned() {
        let failure = match send_with_retries(shared, &record).await {
            Ok(accepted) => record_answer(shared, &record, &accepted).await?.err().map(|r| (r, 1)),
            Err(failure) => Some(failure),
        };
        if let Some((reason, attempts)) = failure {
            tracing::warn!(
                receipt_code = code,
                reason,
                attempts,
                "portal sync: resent record set aside again"
            );
            aside.reason = reason;
            aside.attempts = attempts;
            aside.set_aside_at = Utc::now();
            shared.dir.put(&aside)?;
            return Ok(Ended::StillAside);
        }
        aside.records.remove(0);
        shared.dir.put(&aside)?;
    }
    Ok(Ended::Cleared)
}

/// Sends a record up to `max_attempts` times with backoff; the last failure and the number of
/// attempts when none succeeded. While the portal cannot be reached the record waits, however
/// long: an outage or a certificate not trusted is no fault of the record, and setting every
/// dossier aside for it would leave the operator a `resend all` for nothing.
async fn send_with_retries(shared: &Shared, record: &SyncRecord) -> Result<Accepted, (String, u32)> {
    let max = shared.config.max_attempts;
    let mut attempt = 1;
    let mut unreachable = 0;
    loop {
        match shared.portal.send(record).await {
            Ok(accepted) => return Ok(accepted),
            Err(SendFailure::Unreachable(reason)) => {
                tracing::warn!(
                    receipt_code = record.receipt_code,
                    position = record.source.position,
                    reason,
                    "portal sync: cannot reach the portal; retrying (not counted toward max_attempts)"
                );
                unreachable = (unreachable + 1).min(30);
                tokio::time::sleep(shared.config.backoff(unreachable)).await;
            }
            Err(SendFailure::Failed(reason)) if attempt >= max => return Err((reason, attempt)),
            Err(SendFailure::Failed(reason)) => {
                tracing::info!(
                    receipt_code = record.receipt_code,
                    position = record.source.position,
                    attempt,
                    reason,
                    "portal sync: send failed; retrying"
                );
                tokio::time::sleep(shared.config.backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
}

/// Records the portal's answer in the log (`MarkSynced`, which writes `SyncedToNationalPortal`):
/// the inner `Err` is the server's refusal of this record, the outer one a refusal of every
/// record (the connector's token).
///
/// The sync's business time is the dossier's latest (as the server has it, or the change's own if
/// later), not the clock's: a desk may still key in a paper fact that happened before now, which
/// a sync stamped now would refuse (no fact may come before the dossier's previous event).
async fn record_answer(shared: &Shared, record: &SyncRecord, accepted: &Accepted) -> Result<Result<(), String>> {
    let dossier = Some(pb::DossierRef {
        r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(record.receipt_code.clone())),
    });
    let change_at = record.progress.last().map(|p| p.at).unwrap_or(record.received_at);
    let mut attempt = 1;
    // A desk may record a later fact between our read and our write: read again, a few times.
    let mut overtaken = 0;
    loop {
        let write = async {
            let latest = shared
                .query
                .clone()
                .get_dossier(pb::GetDossierRequest {
                    dossier: dossier.clone(),
                })
                .await?
                .into_inner()
                .dossier
                .and_then(|d| d.last_occurred_at)
                .as_ref()
                .and_then(timestamp_to_utc);
            let occurred_at = latest.map_or(change_at, |latest| latest.max(change_at));
            let request = pb::MarkSyncedRequest {
                command: Some(pb::CommandHeader {
                    command_id: sync_command_id(&record.idempotency_key).to_string(),
                    expected_version: None,
                    correlation_id: portal_answer(accepted),
                    occurred_at: Some(utc_to_timestamp(occurred_at)),
                }),
                dossier: dossier.clone(),
                status: i32::from(record.status),
            };
            shared.desk.clone().mark_synced(request).await
        };
        let status = match write.await {
            Ok(_) => return Ok(Ok(())),
            Err(status) => status,
        };
        match status.code() {
            // A retry after a crash, sent with another business time: the first one is recorded.
            Code::InvalidArgument if status.message().contains("already used") => return Ok(Ok(())),
            Code::FailedPrecondition if overtaken < 3 => overtaken += 1,
            Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::ResourceExhausted | Code::Unknown => {
                tracing::warn!(
                    receipt_code = record.receipt_code,
                    code = ?status.code(),
                    message = status.message(),
                    "portal sync: cannot record the portal's answer yet; retrying"
                );
                tokio::time::sleep(shared.config.backoff(attempt)).await;
                attempt = (attempt + 1).min(30);
            }
            Code::Unauthenticated | Code::PermissionDenied => {
                return Err(refusal("recording the portal's answer (MarkSynced)", &status));
            }
            code => {
                return Ok(Err(format!(
                    "the portal accepted the record (HTTP {}, reference {:?}) but the server refused to record it: {code:?}: {}",
                    accepted.http_status,
                    accepted.reference,
                    status.message()
                )));
            }
        }
    }
}

/// The portal's answer as the sync command's correlation id (kept in the event's metadata):
/// `portal:<HTTP status>:<the portal's reference>`, at most 128 bytes.
pub fn portal_answer(accepted: &Accepted) -> String {
    let mut answer = format!("portal:{}:", accepted.http_status);
    for ch in accepted.reference.chars() {
        if answer.len() + ch.len_utf8() > 128 {
            break;
        }
        answer.push(ch);
    }
    answer
}

/// The server's refusal, in words, with its code; a refusal of the token says what to check.
fn refusal(doing: &str, status: &tonic::Status) -> anyhow::Error {
    let hint = match status.code() {
        Code::Unauthenticated => " (check [hoso] token: an integration account's token)",
        Code::PermissionDenied => " (the connector's token must be an integration account's)",
        _ => "",
    };
    anyhow::anyhow!(
        "the hoso server refused {doing}: {:?}: {}{hint}",
        status.code(),
        status.message()
    )
}

/// Connects to the hoso server.
async fn connect(config: &Config) -> Result<Channel> {
    let server = &config.hoso.server;
    let mut endpoint =
        Channel::from_shared(server.clone()).with_context(|| format!("[hoso] server {server:?} is not a URL"))?;
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &config.hoso.ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read [hoso] ca_cert {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .context("the [hoso] TLS settings are not usable")?;
    } else if !server.starts_with("http://") {
        bail!("[hoso] server {server:?} must start with http:// or https://");
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the hoso server at {server}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portal_answer_fits_a_correlation_id() {
        let accepted = Accepted {
            http_status: 201,
            reference: "DVC-2026-000123".to_owned(),
        };
        assert_eq!(portal_answer(&accepted), "portal:201:DVC-2026-000123");
        let long = Accepted {
            http_status: 200,
            reference: "ệ".repeat(100),
        };
        let answer = portal_answer(&long);
        assert!(answer.len() <= 128 && answer.starts_with("portal:200:ệ"), "{answer}");
    }

    #[test]
    fn a_records_sync_command_is_named_by_its_key_alone() {
        assert_eq!(sync_command_id("k1"), sync_command_id("k1"));
        assert_ne!(sync_command_id("k1"), sync_command_id("k2"));
    }
}

#[cfg(test)]
mod https;
