//! The change feed: gapless catch-up then live under concurrent appends, resuming from a
//! consumer's checkpoint, the filters, who may use it, and a slow consumer's bounded queue.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use hoso_api::convert::{DeskCommand, IntoDeskCommand, utc_to_timestamp};
use hoso_api::pb;
use hoso_api::pb::feed_service_server::FeedService;
use hoso_store::{EventStore, ExpectedVersion, Json, MemoryStore, NewEvent};
use prost::Message;
use tokio_stream::StreamExt;
use tonic::Code;

use super::{CONSUMER_STREAM_PREFIX, FeedApi, QUEUE};
use crate::app::App;
use crate::auth::{Caller, Role};

const AGENCY_A: &str = "000.00.04.G18";
const AGENCY_B: &str = "000.00.05.G18";

/// A whole test must end within this, or it hangs on a feed that will not come: a guard, not a
/// measure.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn app(store: MemoryStore) -> Arc<App<MemoryStore>> {
    Arc::new(App::for_tests(store))
}

fn caller(role: Role, subject: &str) -> Caller {
    Caller {
        subject: subject.to_owned(),
        role,
        agency: "G09.20".to_owned(),
    }
}

fn integration() -> Caller {
    caller(Role::Integration, "warehouse.service")
}

fn as_caller<T>(body: T, caller: &Caller) -> tonic::Request<T> {
    let mut request = tonic::Request::new(body);
    request.extensions_mut().insert(caller.clone());
    request
}

fn header(minute: u32) -> Option<pb::CommandHeader> {
    Some(pb::CommandHeader {
        command_id: uuid::Uuid::new_v4().to_string(),
        expected_version: None,
        correlation_id: String::new(),
        occurred_at: Some(utc_to_timestamp(
            Utc.with_ymd_and_hms(2025, 9, 9, 2, 0, 0).unwrap() + TimeDelta::minutes(minute.into()),
        )),
    })
}

fn receipt_code(n: u32) -> String {
    format!("G09.20-20250909-{n:07}")
}

fn receive(n: u32, agency: &str) -> DeskCommand {
    pb::ReceiveDossierRequest {
        command: header(0),
        receipt_code: receipt_code(n),
        procedure: Some(pb::Procedure {
            code: "1.001234".to_owned(),
            name: "Cấp giấy phép xây dựng".to_owned(),
            statutory_time: Some(pb::StatutoryTime {
                amount: 3,
                unit: pb::TimeUnit::WorkingDays.into(),
            }),
            full_online_eligible: Some(true),
            paper_result: Some(true),
            fee_vnd: Some(0),
        }),
        receiving_desk: "G09.20".to_owned(),
        handling_agency: agency.to_owned(),
        channel: pb::Channel::Online.into(),
        applicant_ref: "5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b".to_owned(),
    }
    .into_desk_command()
    .unwrap()
}

fn refuse(n: u32) -> DeskCommand {
    pb::RefuseAtIntakeRequest {
        command: header(5),
        dossier: Some(pb::DossierRef {
            r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(receipt_code(n))),
        }),
        reason: "thiếu giấy tờ".to_owned(),
    }
    .into_desk_command()
    .unwrap()
}

/// Appends `count` events to streams the feed knows nothing of, `per_append` at a time, each
/// with `padding` bytes of data.
async fn append_plain(store: &MemoryStore, count: usize, per_append: usize, padding: usize) {
    let mut left = count;
    while left > 0 {
        let n = left.min(per_append);
        let events = (0..n)
            .map(|_| NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: "Tested".to_owned(),
                schema_version: 1,
                data: Json::of(&serde_json::json!({ "padding": "x".repeat(padding) })).unwrap(),
                metadata: Json::of(&serde_json::json!({})).unwrap(),
                occurred_at: Utc::now(),
            })
            .collect();
        store
            .append(&format!("test-{}", left % 7), ExpectedVersion::Any, events)
            .await
            .unwrap();
        left -= n;
    }
}

/// Reads the feed until `done` says so, returning every message.
async fn read_until(
    stream: &mut (impl tokio_stream::Stream<Item = Result<pb::SubscribeResponse, tonic::Status>> + Unpin),
    mut done: impl FnMut(&[pb::SubscribeResponse]) -> bool,
) -> Vec<pb::SubscribeResponse> {
    let mut messages = Vec::new();
    tokio::time::timeout(HANG_GUARD, async {
        while !done(&messages) {
            let message = stream.next().await.expect("the feed ended").expect("the feed failed");
            messages.push(message);
        }
    })
    .await
    .expect("the feed stopped sending what it should");
    messages
}

fn positions(messages: &[pb::SubscribeResponse]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| m.event.as_ref().map(|e| e.position))
        .collect()
}

/// Until the feed has said it is caught up with the log at `head`.
fn caught_up_at(head: u64) -> impl FnMut(&[pb::SubscribeResponse]) -> bool {
    move |messages| messages.last().is_some_and(|m| m.caught_up && m.next_position == head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_then_live_has_no_gap_and_no_duplicate_while_desks_append() {
    let store = MemoryStore::new();
    append_plain(&store, 1_500, 50, 10).await;
    let api = FeedApi::new(app(store.clone()));
    let mut feed = api
        .subscribe(as_caller(pb::SubscribeRequest::default(), &integration()))
        .await
        .unwrap()
        .into_inner();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { append_plain(&store, 750, 3, 10).await })
        })
        .collect();
    let messages = read_until(&mut feed, |m| positions(m).len() >= 3_000).await;
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(positions(&messages), (0..3_000).collect::<Vec<u64>>());
    assert!(!messages[0].caught_up, "the first page is catch-up");
    for message in &messages {
        if let Some(event) = &message.event {
            assert_eq!(message.next_position, event.position + 1);
        }
    }
    // Live now: the next event appended is the next one sent, and nothing else comes between.
    append_plain(&store, 1, 1, 10).await;
    let more = read_until(&mut feed, |m| !positions(m).is_empty()).await;
    assert_eq!(positions(&more), [3_000]);
    assert!(more.iter().all(|m| m.event.is_some() || m.caught_up));
}

#[tokio::test]
async fn a_consumer_resumes_from_its_acknowledged_position_after_a_reconnect() {
    let store = MemoryStore::new();
    append_plain(&store, 100, 10, 10).await;
    let api = FeedApi::new(app(store.clone()));
    let subscribe = || {
        as_caller(
            pb::SubscribeRequest {
                consumer: "warehouse".to_owned(),
                ..Default::default()
            },
            &integration(),
        )
    };
    let mut feed = api.subscribe(subscribe()).await.unwrap().into_inner();
    let first = read_until(&mut feed, |m| positions(m).len() >= 40).await;
    assert_eq!(positions(&first), (0..40).collect::<Vec<u64>>());
    // Handled up to position 29, then the connection is lost with 30..39 delivered, unhandled.
    let handled = first.iter().find(|m| m.event.as_ref().unwrap().position == 29).unwrap();
    let acknowledged = api
        .acknowledge(&integration(), "warehouse", handled.next_position)
        .await
        .unwrap();
    assert_eq!((acknowledged.next_position, acknowledged.recorded), (30, true));
    let stats = api.stats();
    assert_eq!(stats.streams(), 1);
    drop(feed);
    // The stream's task sees its client gone and ends, taking its queue off the count.
    tokio::time::timeout(HANG_GUARD, async {
        while stats.streams() > 0 || stats.queued() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a stream whose client left is still counted");

    let mut feed = api.subscribe(subscribe()).await.unwrap().into_inner();
    let again = read_until(&mut feed, caught_up_at(101)).await;
    assert_eq!(
        positions(&again),
        (30..100).collect::<Vec<u64>>(),
        "at least once: redelivered from the checkpoint, nothing lost, and the checkpoint itself (position 100) is not sent"
    );

    // The checkpoint only moves forward, and writes only when it moves.
    for (ack, expected) in [(30, 30), (10, 30)] {
        let acknowledged = api.acknowledge(&integration(), "warehouse", ack).await.unwrap();
        assert_eq!((acknowledged.next_position, acknowledged.recorded), (expected, false));
    }
    let checkpoints = store
        .read_stream(
            &format!("{CONSUMER_STREAM_PREFIX}warehouse"),
            hoso_store::StreamRead::forward(),
        )
        .await
        .unwrap();
    assert_eq!(
        checkpoints.len(),
        1,
        "one checkpoint written for three acknowledgements"
    );
    assert_eq!(store.head(), 101);

    // Another account may not move it; an operator may.
    let other = caller(Role::Integration, "someone.else");
    let Err(crate::error::ServiceError::PermissionDenied(refusal)) = api.acknowledge(&other, "warehouse", 50).await
    else {
        panic!("another account moved the consumer's checkpoint");
    };
    assert!(refusal.contains("warehouse.service"), "{refusal}");
    let operator = caller(Role::Operator, "ops.hoso");
    assert!(api.acknowledge(&operator, "warehouse", 50).await.unwrap().recorded);

    // What cannot be acknowledged is named.
    for (consumer, position, field) in [("warehouse", 1_000, "next_position"), ("Ware House", 1, "consumer")] {
        let status = FeedService::acknowledge(
            &api,
            as_caller(
                pb::AcknowledgeRequest {
                    consumer: consumer.to_owned(),
                    next_position: position,
                },
                &integration(),
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
}

#[tokio::test]
async fn the_feed_filters_by_event_type_and_handling_agency() {
    let app = app(MemoryStore::new());
    let desk = caller(Role::DeskOfficer, "desk.g09-20.officer1");
    for (n, agency) in [
        (1, AGENCY_A),
        (2, AGENCY_B),
        (3, AGENCY_A),
        (4, AGENCY_B),
        (5, AGENCY_A),
    ] {
        app.execute(&desk, receive(n, agency)).await.unwrap();
    }
    for n in [3, 4] {
        app.execute(&desk, refuse(n)).await.unwrap();
    }
    let head = app.store.head();
    assert_eq!(head, 7);
    let api = FeedApi::new(Arc::clone(&app));
    let follow = |event_types: &[&str], agencies: &[&str]| {
        let request = pb::SubscribeRequest {
            event_types: event_types.iter().map(|s| (*s).to_owned()).collect(),
            handling_agencies: agencies.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let api = &api;
        async move {
            let mut feed = api.subscribe(as_caller(request, &integration())).await?.into_inner();
            let messages = read_until(&mut feed, caught_up_at(head)).await;
            Ok::<_, tonic::Status>(
                messages
                    .into_iter()
                    .filter_map(|m| {
                        let event = m.event?;
                        Some((event.stream_id, event.event_type, m.handling_agency))
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let dossier = |n: u32, event_type: &str, agency: &str| {
        (
            format!("dossier-{}", receipt_code(n)),
            event_type.to_owned(),
            agency.to_owned(),
        )
    };
    assert_eq!(
        follow(&[], &[AGENCY_A]).await.unwrap(),
        [
            dossier(1, "DossierReceived", AGENCY_A),
            dossier(3, "DossierReceived", AGENCY_A),
            dossier(5, "DossierReceived", AGENCY_A),
            dossier(3, "RefusedAtIntake", AGENCY_A),
        ]
    );
    assert_eq!(
        follow(&["RefusedAtIntake"], &[]).await.unwrap(),
        [
            dossier(3, "RefusedAtIntake", AGENCY_A),
            dossier(4, "RefusedAtIntake", AGENCY_B)
        ]
    );
    assert_eq!(
        follow(&["RefusedAtIntake"], &[AGENCY_B]).await.unwrap(),
        [dossier(4, "RefusedAtIntake", AGENCY_B)]
    );
    assert_eq!(follow(&[], &[]).await.unwrap().len(), 7);

    for (types, agencies, field) in [
        (&["DossierRecieved"][..], &[][..], "event_types[0]"),
        (&[], &[AGENCY_A, "Sở Tư pháp"][..], "handling_agencies[1]"),
    ] {
        let status = follow(types, agencies).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let details = tonic_types::StatusExt::get_details_bad_request(&status).expect("a bad request");
        assert_eq!(details.field_violations[0].field, field, "{status:?}");
    }
}

#[tokio::test]
async fn only_integration_accounts_auditors_and_operators_follow_the_feed() {
    let api = FeedApi::new(app(MemoryStore::new()));
    for role in Role::ALL {
        let who = caller(role, "someone");
        let subscribed = api.subscribe(as_caller(pb::SubscribeRequest::default(), &who)).await;
        let may_follow = matches!(role, Role::Integration | Role::Auditor | Role::Operator);
        match subscribed {
            Ok(_) => assert!(may_follow, "{role} follows the feed"),
            Err(status) => {
                assert!(!may_follow, "{role}: {status:?}");
                assert_eq!(status.code(), Code::PermissionDenied, "{role}: {status:?}");
            }
        }
        let acknowledged = FeedService::acknowledge(
            &api,
            as_caller(
                pb::AcknowledgeRequest {
                    consumer: format!("consumer-{role}"),
                    next_position: 0,
                },
                &who,
            ),
        )
        .await;
        let may_acknowledge = matches!(role, Role::Integration | Role::Operator);
        match acknowledged {
            Ok(_) => assert!(may_acknowledge, "{role} records a checkpoint"),
            Err(status) => {
                assert!(!may_acknowledge, "{role}: {status:?}");
                assert_eq!(status.code(), Code::PermissionDenied, "{role}: {status:?}");
            }
        }
    }
}

/// A client that stops reading: the server's stream stops reading the store once HTTP/2's
/// window, its send buffer and the stream's queue are full, and its queue never passes its
/// bound; when the client reads again, every event arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_holds_the_server_to_a_bounded_queue() {
    const EVENTS: usize = 20_000;
    let store = MemoryStore::new();
    append_plain(&store, EVENTS, 500, 400).await;
    let api = FeedApi::new(app(store.clone()));
    let stats = api.stats();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let integration = integration();
    let service =
        pb::feed_service_server::FeedServiceServer::with_interceptor(api, move |mut request: tonic::Request<()>| {
            request.extensions_mut().insert(integration.clone());
            Ok(request)
        });
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    // HTTP/2's own defaults for the client's windows (hyper's are megabytes), so that what the
    // client's connection buffers is bounded as a desk's would be.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let mut client = pb::feed_service_client::FeedServiceClient::new(channel);
    let mut feed = client
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut received = Vec::new();
    for _ in 0..10 {
        received.push(feed.message().await.unwrap().unwrap());
    }
    // The client reads nothing more: wait until the stream's queue is full, its task blocked.
    tokio::time::timeout(HANG_GUARD, async {
        while stats.queued() < QUEUE {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the queue never filled: the server is not sending");
    // What the server may hold or have in flight for this client: the queue, one store page,
    // and what HTTP/2 and tonic buffer (the client's 64 KiB window, hyper's 400 KiB send
    // buffer, tonic's encoding buffer), counted generously as 1 MiB of messages. Looked at
    // again and again while the client stays stalled: a server without back-pressure would
    // read the whole log meanwhile.
    let message_bytes = received[1].encoded_len() as u64;
    let bound = QUEUE as u64 + 1 + 512 + (1 << 20) / message_bytes;
    let mut read_ahead = 0;
    for _ in 0..25 {
        read_ahead = stats.events_read() - received.len() as u64;
        assert!(
            read_ahead <= bound,
            "the server read {read_ahead} events ahead of a client that stopped reading; at most {bound}"
        );
        assert!(stats.queued() <= QUEUE + 1, "{}", stats.queued());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(read_ahead < EVENTS as u64 / 4, "{read_ahead}");
    println!(
        "a stalled client: the server read {read_ahead} events ahead ({message_bytes} bytes each, bound {bound}), queue {} of {QUEUE}",
        stats.queued()
    );

    let rest = read_until(&mut feed, caught_up_at(EVENTS as u64)).await;
    received.extend(rest);
    assert_eq!(positions(&received), (0..EVENTS as u64).collect::<Vec<u64>>());
    assert!(stats.max_queued() <= QUEUE + 1, "{}", stats.max_queued());
    server.abort();
}

/// A consumer of rare events still hears where the feed is, so that its checkpoint follows the
/// log rather than its last matching event.
#[tokio::test]
async fn a_consumer_of_rare_events_hears_where_the_feed_is() {
    let store = MemoryStore::new();
    append_plain(&store, 1_200, 100, 10).await;
    let api = FeedApi::new(app(store.clone()));
    let request = pb::SubscribeRequest {
        handling_agencies: vec![AGENCY_A.to_owned()],
        ..Default::default()
    };
    let mut feed = api
        .subscribe(as_caller(request, &integration()))
        .await
        .unwrap()
        .into_inner();
    let messages = read_until(&mut feed, caught_up_at(1_200)).await;
    assert!(positions(&messages).is_empty());
    let progress: Vec<(u64, bool)> = messages.iter().map(|m| (m.next_position, m.caught_up)).collect();
    assert_eq!(progress, [(512, false), (1_024, false), (1_200, true)]);
}

/// Two acknowledgements of one consumer racing each other: the checkpoint ends at the further
/// one, whichever wrote first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_acknowledgements_keep_the_further_position() {
    let store = MemoryStore::new();
    append_plain(&store, 1_000, 100, 10).await;
    let api = Arc::new(FeedApi::new(app(store.clone())));
    for round in 0..20u64 {
        let consumer = format!("race-{round}");
        let (near, far) = (100 + round, 900 - round);
        let acknowledge = |position| {
            let api = Arc::clone(&api);
            let consumer = consumer.clone();
            tokio::spawn(async move { api.acknowledge(&integration(), &consumer, position).await })
        };
        let (a, b) = (acknowledge(near), acknowledge(far));
        let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
        assert_eq!(b.next_position, far, "{b:?}");
        assert!(a.next_position == near || a.next_position == far, "{a:?}");
        let checkpoints = store
            .read_stream(
                &format!("{CONSUMER_STREAM_PREFIX}{consumer}"),
                hoso_store::StreamRead::backward(),
            )
            .await
            .unwrap();
        let last: serde_json::Value = serde_json::from_slice(&checkpoints[0].data).unwrap();
        assert_eq!(last["next_position"], far, "round {round}");
        assert_eq!(
            checkpoints.len(),
            1 + usize::from(a.recorded),
            "the nearer one writes only if it came first"
        );
    }
}
