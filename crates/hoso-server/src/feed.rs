//! The change feed, `hoso.v1.FeedService`: the log's events in log order for the province's
//! other systems, and each named consumer's checkpoint, kept in the log itself.
//!
//! **Subscribe.** One task per stream follows the store's catch-up-then-live subscription
//! ([`EventStore::subscribe_all`]), filters, and puts each answer into a channel of [`QUEUE`]
//! messages that the transport drains as the client reads. A slow client fills HTTP/2's window,
//! the transport stops draining, the channel fills and the task waits: it reads no further from
//! the store. What a stream holds is thus bounded by one store page, the channel and HTTP/2's
//! buffers, whatever the client's speed ([`FeedStats`] counts the channel's part).
//!
//! **Checkpoints.** `Acknowledge` appends a `FeedConsumerCheckpointed` event to
//! `feed-consumer-<name>` when, and only when, it moves the checkpoint forward; how often is
//! the client's choice (`hoso tail` acknowledges at most once every 10 seconds). The feed never
//! sends these events, so acknowledging never feeds itself. A consumer belongs to the account that
//! first acknowledged it; only that account, or an operator, moves it.
//!
//! **Handling agency.** A dossier's handling agency is fixed by its receipt (`DossierReceived`,
//! version 0 of its stream), so each stream looks it up there, once per dossier, and keeps it
//! in a bounded map; the projection is not used, since it may be behind the feed.

use std::collections::HashMap;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hoso_api::pb;
use hoso_domain::{DossierEvent, STREAM_PREFIX};
use hoso_store::{EventStore, ExpectedVersion, Json, NewEvent, RecordedEvent, StoreError, StreamRead};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::app::{App, decode};
use crate::auth::{Action, Caller, Role, authorize};
use crate::error::{ServiceError, to_status};
use crate::grpc::{caller, recorded_event_to_pb};
use crate::metadata::EventMetadata;

/// The streams of the consumers' checkpoints are `feed-consumer-<name>`.
pub const CONSUMER_STREAM_PREFIX: &str = "feed-consumer-";
/// The event type of a checkpoint.
pub const CHECKPOINTED: &str = "FeedConsumerCheckpointed";
/// How many messages a stream queues for its client before it stops reading the store.
pub const QUEUE: usize = 64;
/// After this many events left out by the filters, a progress message says where the feed is,
/// so that a consumer of rare events can move its checkpoint.
const PROGRESS_EVERY: u64 = 512;
/// The most dossiers whose handling agency one stream remembers (then it forgets them all).
const AGENCIES_REMEMBERED: usize = 16_384;
/// How often an acknowledgement is tried again when another one wrote in between.
const MAX_ATTEMPTS: usize = 5;
/// The longest consumer name.
const MAX_CONSUMER_NAME: usize = 64;

/// What the feed's streams hold, for the metrics and the tests.
#[derive(Debug, Default)]
pub struct FeedStats {
    streams: AtomicUsize,
    queued: AtomicUsize,
    max_queued: AtomicUsize,
    events_read: AtomicU64,
}

impl FeedStats {
    /// Streams open now.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::SeqCst)
    }

    /// Messages made and not yet taken by the transport, over every stream.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// The most messages ever queued at once.
    pub fn max_queued(&self) -> usize {
        self.max_queued.load(Ordering::SeqCst)
    }

    /// Events read from the store by every stream so far (those the filters left out too).
    pub fn events_read(&self) -> u64 {
        self.events_read.load(Ordering::SeqCst)
    }
}

/// A checkpoint's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    consumer: String,
    next_position: u64,
}

/// A consumer's checkpoint as the log holds it.
struct Recorded {
    version: u64,
    next_position: u64,
    owner: String,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    /// The checkpoint after it.
    pub next_position: u64,
    /// Whether it moved the checkpoint (and wrote it).
    pub recorded: bool,
}

/// The feed service.
pub struct FeedApi<S> {
    app: Arc<App<S>>,
    stats: Arc<FeedStats>,
    closing: watch::Sender<bool>,
}

impl<S> FeedApi<S> {
    /// The service over `app`.
    pub fn new(app: Arc<App<S>>) -> Self {
        FeedApi {
            app,
            stats: Arc::default(),
            closing: watch::Sender::new(false),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<FeedStats> {
        Arc::clone(&self.stats)
    }

    /// A handle that ends every stream, now and later, with UNAVAILABLE: for the shutdown, so
    /// that open feeds do not hold it for its whole grace period.
    pub fn closer(&self) -> FeedCloser {
        FeedCloser(self.closing.clone())
    }
}

/// Ends the feed's streams; see [`FeedApi::closer`].
#[derive(Clone)]
pub struct FeedCloser(watch::Sender<bool>);

impl FeedCloser {
    /// Ends every stream.
    pub fn close(&self) {
        self.0.send_replace(true);
    }
}

/// Checks a consumer's name; `field` names it in the error.
fn consumer_stream(field: &str, name: &str) -> Result<String, ServiceError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_CONSUMER_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        return Err(ServiceError::invalid(
            field,
            format!(
                "{name:?} is not a consumer name: use 1 to {MAX_CONSUMER_NAME} lower-case letters, digits, `.`, `_` or `-` (e.g. `portal-sync`)"
            ),
        ));
    }
    Ok(format!("{CONSUMER_STREAM_PREFIX}{name}"))
}

/// The consumer's last checkpoint, if it has one.
async fn recorded_checkpoint<S: EventStore>(store: &S, stream: &str) -> Result<Option<Recorded>, ServiceError> {
    let last = store
        .read_stream(stream, StreamRead::backward().max_count(1))
        .await?
        .into_iter()
        .next();
    let Some(record) = last else {
        return Ok(None);
    };
    let checkpoint: Checkpoint = serde_json::from_slice(&record.data).map_err(|err| {
        ServiceError::Internal(format!(
            "the checkpoint at position {} of {stream} cannot be read: {err}",
            record.position
        ))
    })?;
    Ok(Some(Recorded {
        version: record.version,
        next_position: checkpoint.next_position,
        owner: EventMetadata::read(&record.metadata).unwrap_or_default().actor,
    }))
}

impl<S: EventStore> FeedApi<S> {
    /// Moves `consumer`'s checkpoint to `next_position` if that is further on than it stands.
    pub async fn acknowledge(
        &self,
        caller: &Caller,
        consumer: &str,
        next_position: u64,
    ) -> Result<Acknowledged, ServiceError> {
        authorize(caller, Action::AcknowledgeFeed)?;
        let stream = consumer_stream("consumer", consumer)?;
        let head = self.app.store.head();
        if next_position > head {
            return Err(ServiceError::invalid(
                "next_position",
                format!(
                    "is {next_position}, past the end of the log ({head}): acknowledge a next_position the feed sent"
                ),
            ));
        }
        for _ in 0..MAX_ATTEMPTS {
            let recorded = recorded_checkpoint(&self.app.store, &stream).await?;
            if let Some(recorded) = &recorded {
                if recorded.owner != caller.subject && caller.role != Role::Operator {
                    return Err(ServiceError::PermissionDenied(format!(
                        "the feed consumer {consumer} belongs to the account {}; choose another name for your consumer",
                        recorded.owner
                    )));
                }
                if recorded.next_position >= next_position {
                    return Ok(Acknowledged {
                        next_position: recorded.next_position,
                        recorded: false,
                    });
                }
            }
            let expected = recorded
                .as_ref()
                .map_or(ExpectedVersion::NoStream, |r| ExpectedVersion::Exact(r.version));
            let json = |value: Result<Json, serde_json::Error>| {
                value.map_err(|err| ServiceError::Internal(format!("cannot write a checkpoint as JSON: {err}")))
            };
            let event = NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: CHECKPOINTED.to_owned(),
                schema_version: 1,
                data: json(Json::of(&Checkpoint {
                    consumer: consumer.to_owned(),
                    next_position,
                }))?,
                metadata: json(Json::of(&EventMetadata::of(caller)))?,
                occurred_at: chrono::Utc::now(),
            };
            match self.app.store.append(&stream, expected, vec![event]).await {
                Ok(_) => {
                    return Ok(Acknowledged {
                        next_position,
                        recorded: true,
                    });
                }
                // Another acknowledgement of this consumer wrote first: compare with it.
                Err(StoreError::Conflict { .. }) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ServiceError::Contention(format!(
            "the checkpoint of {consumer} kept moving under this acknowledgement; send it again"
        )))
    }

    /// The checked request: where to start and what to send.
    async fn plan(&self, request: pb::SubscribeRequest) -> Result<(u64, Filter), ServiceError> {
        let filter = Filter::from_request(&request)?;
        let mut start = request.from_position;
        let mut field = "from_position";
        if !request.consumer.is_empty() {
            let stream = consumer_stream("consumer", &request.consumer)?;
            if let Some(recorded) = recorded_checkpoint(&self.app.store, &stream).await? {
                start = recorded.next_position;
                field = "consumer";
            }
        }
        let head = self.app.store.head();
        if start > head {
            return Err(ServiceError::invalid(
                field,
                format!("starts at position {start}, past the end of the log ({head})"),
            ));
        }
        Ok((start, filter))
    }
}

/// Which events a stream sends.
#[derive(Debug, Default)]
struct Filter {
    event_types: HashSet<String>,
    agencies: HashSet<String>,
}

impl Filter {
    fn from_request(request: &pb::SubscribeRequest) -> Result<Filter, ServiceError> {
        let known: Vec<&str> = hoso_domain::event::EVENT_TYPES
            .iter()
            .map(|(name, _)| *name)
            .chain([
                crate::reference::CATALOGUE_DECISION_PUBLISHED,
                crate::reference::HOLIDAY_NOTICE_LOADED,
            ])
            .collect();
        let mut event_types = HashSet::new();
        for (i, name) in request.event_types.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                return Err(ServiceError::invalid(
                    format!("event_types[{i}]"),
                    format!(
                        "{name:?} is not an event type of the log; the types are {}",
                        known.join(", ")
                    ),
                ));
            }
            event_types.insert(name.clone());
        }
        let mut agencies = HashSet::new();
        for (i, code) in request.handling_agencies.iter().enumerate() {
            let field = format!("handling_agencies[{i}]");
            let code = hoso_domain::AgencyCode::parse("handling_agencies", code)
                .map_err(|err| ServiceError::invalid(field, err.to_string()))?;
            agencies.insert(code.to_string());
        }
        Ok(Filter { event_types, agencies })
    }

    fn wants_type(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.contains(event_type)
    }

    fn wants_agency(&self, agency: Option<&str>) -> bool {
        self.agencies.is_empty() || agency.is_some_and(|a| self.agencies.contains(a))
    }
}

/// The handling agencies of the dossiers a stream has met.
#[derive(Default)]
struct Agencies(HashMap<String, Option<String>>);

impl Agencies {
    /// The handling agency of `event`'s dossier (`None` outside dossiers, or for a dossier stream
    /// that does not begin with a receipt).
    async fn of<S: EventStore>(&mut self, store: &S, event: &RecordedEvent) -> Result<Option<String>, ServiceError> {
        if !event.stream_id.starts_with(STREAM_PREFIX) {
            return Ok(None);
        }
        if let Some(agency) = self.0.get(&event.stream_id) {
            return Ok(agency.clone());
        }
        let first = if event.version == 0 {
            None
        } else {
            store
                .read_stream(&event.stream_id, StreamRead::forward().max_count(1))
                .await?
                .into_iter()
                .next()
        };
        let receipt = if event.version == 0 {
            Some(event)
        } else {
            first.as_ref()
        };
        let agency = match receipt.map(decode).transpose()? {
            Some(DossierEvent::DossierReceived(received)) => Some(received.handling_agency.to_string()),
            _ => None,
        };
        if self.0.len() >= AGENCIES_REMEMBERED {
            self.0.clear();
        }
        self.0.insert(event.stream_id.clone(), agency.clone());
        Ok(agency)
    }
}

/// Why a stream's task stopped sending.
enum Stop {
    /// The client went away.
    Gone,
    /// The server is shutting down.
    Closing,
}

/// One stream's count of queued messages, shared by its two ends; the last end to go takes
/// what is left of it off the totals (messages sent as the client left are never taken).
struct Queued {
    stats: Arc<FeedStats>,
    here: AtomicUsize,
}

impl Queued {
    fn new(stats: Arc<FeedStats>) -> Queued {
        stats.streams.fetch_add(1, Ordering::SeqCst);
        Queued {
            stats,
            here: AtomicUsize::new(0),
        }
    }

    fn add(&self) {
        self.here.fetch_add(1, Ordering::SeqCst);
        let queued = self.stats.queued.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.max_queued.fetch_max(queued, Ordering::SeqCst);
    }

    fn take(&self) {
        self.here.fetch_sub(1, Ordering::SeqCst);
        self.stats.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.stats.queued.fetch_sub(*self.here.get_mut(), Ordering::SeqCst);
        self.stats.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One stream's sending end.
struct Sender {
    tx: mpsc::Sender<pb::SubscribeResponse>,
    queued: Arc<Queued>,
    stats: Arc<FeedStats>,
    closing: watch::Receiver<bool>,
}

impl Sender {
    /// Queues `message`, waiting while the queue is full. Counted once it has its place, and
    /// uncounted as the transport takes it, so the count is the queue's, give or take the one
    /// message being taken.
    async fn send(&mut self, message: pb::SubscribeResponse) -> Result<(), Stop> {
        let permit = tokio::select! {
            permit = self.tx.reserve() => permit.map_err(|_| Stop::Gone)?,
            _ = self.closing.wait_for(|closing| *closing) => return Err(Stop::Closing),
        };
        self.queued.add();
        permit.send(message);
        Ok(())
    }
}

/// Follows the log from `start` into `sender` until the client goes, the server shuts down or
/// the store fails; leaves the reason in `ended` for the client.
async fn follow<S: EventStore>(
    store: S,
    start: u64,
    filter: Filter,
    mut sender: Sender,
    ended: Arc<Mutex<Option<Status>>>,
) {
    let stop = |status: Status| {
        *ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status);
    };
    let closing_status = || {
        Status::unavailable(
            "the server is shutting down: subscribe again (with your consumer, to resume from its checkpoint)",
        )
    };
    let mut subscription = store.subscribe_all(start);
    let mut agencies = Agencies::default();
    // Events left out since the last message, and whether the client has been told it is live.
    let mut skipped = 0u64;
    let mut told_caught_up = false;
    loop {
        let caught_up = subscription.is_caught_up();
        if (caught_up && (skipped > 0 || !told_caught_up)) || skipped >= PROGRESS_EVERY {
            let progress = pb::SubscribeResponse {
                event: None,
                handling_agency: String::new(),
                next_position: subscription.position(),
                caught_up,
            };
            match sender.send(progress).await {
                Ok(()) => {}
                Err(Stop::Gone) => return,
                Err(Stop::Closing) => return stop(closing_status()),
            }
            told_caught_up |= caught_up;
            skipped = 0;
        }
        let next = tokio::select! {
            next = subscription.next() => next,
            () = sender.tx.closed() => return,
            _ = sender.closing.wait_for(|closing| *closing) => return stop(closing_status()),
        };
        let event = match next {
            Ok(event) => event,
            Err(err) => return stop(to_status(err.into())),
        };
        sender.stats.events_read.fetch_add(1, Ordering::SeqCst);
        if event.stream_id.starts_with(CONSUMER_STREAM_PREFIX) || !filter.wants_type(&event.event_type) {
            skipped += 1;
            continue;
        }
        let agency = match agencies.of(&store, &event).await {
            Ok(agency) => agency,
            Err(err) => return stop(to_status(err)),
        };
        if !filter.wants_agency(agency.as_deref()) {
            skipped += 1;
            continue;
        }
        let caught_up = subscription.is_caught_up();
        let message = pb::SubscribeResponse {
            event: Some(recorded_event_to_pb(&event)),
            handling_agency: agency.unwrap_or_default(),
            next_position: event.position + 1,
            caught_up,
        };
        match sender.send(message).await {
            Ok(()) => {}
            Err(Stop::Gone) => return,
            Err(Stop::Closing) => return stop(closing_status()),
        }
        told_caught_up |= caught_up;
        skipped = 0;
    }
}

/// A stream's receiving end, as the transport reads it: the queued messages, then why the feed
/// ended (it never ends otherwise).
pub struct FeedStream {
    rx: mpsc::Receiver<pb::SubscribeResponse>,
    queued: Arc<Queued>,
    ended: Arc<Mutex<Option<Status>>>,
    done: bool,
}

impl Stream for FeedStream {
    type Item = Result<pb::SubscribeResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(message)) => {
                self.queued.take();
                Poll::Ready(Some(Ok(message)))
            }
            Poll::Ready(None) => {
                self.done = true;
                let status = self
                    .ended
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                    .unwrap_or_else(|| Status::internal("the feed stopped without saying why"));
                Poll::Ready(Some(Err(status)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[tonic::async_trait]
impl<S: EventStore> pb::feed_service_server::FeedService for FeedApi<S> {
    type SubscribeStream = FeedStream;

    async fn subscribe(&self, request: Request<pb::SubscribeRequest>) -> Result<Response<FeedStream>, Status> {
        let caller = caller(&request)?;
        authorize(&caller, Action::FollowFeed).map_err(to_status)?;
        if !request.get_ref().consumer.is_empty() {
            authorize(&caller, Action::AcknowledgeFeed).map_err(to_status)?;
        }
        let (start, filter) = self.plan(request.into_inner()).await.map_err(to_status)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let ended = Arc::new(Mutex::new(None));
        let queued = Arc::new(Queued::new(Arc::clone(&self.stats)));
        let sender = Sender {
            tx,
            queued: Arc::clone(&queued),
            stats: Arc::clone(&self.stats),
            closing: self.closing.subscribe(),
        };
        tokio::spawn(follow(
            self.app.store.clone(),
            start,
            filter,
            sender,
            Arc::clone(&ended),
        ));
        Ok(Response::new(FeedStream {
            rx,
            queued,
            ended,
            done: false,
        }))
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::AcknowledgeResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let acknowledged = FeedApi::acknowledge(self, &caller, &request.consumer, request.next_position)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AcknowledgeResponse {
            next_position: acknowledged.next_position,
            recorded: acknowledged.recorded,
        }))
    }
}

#[cfg(test)]
mod tests;
