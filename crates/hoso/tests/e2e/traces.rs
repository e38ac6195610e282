//! OpenTelemetry traces: a desk command's span tree reaches an OTLP collector under the caller's
//! trace, with the command's ids and without the applicant.

use std::collections::HashMap;
use std::time::Duration;

use hoso_api::pb;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::harness::*;

/// An OTLP/gRPC collector that hands every span it receives, with its `service.name`, to the test.
struct Collector(mpsc::UnboundedSender<(Option<String>, Span)>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| value(&resource.attributes, "service.name"));
            for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                let _ = self.0.send((service.clone(), span));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// An attribute's value as text (strings, integers and booleans are all the server sends).
fn value(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// Every attribute value of a span and of its events, as text.
fn all_values(span: &Span) -> Vec<String> {
    let keys = |attributes: &[KeyValue]| {
        attributes
            .iter()
            .filter_map(|kv| value(attributes, &kv.key))
            .collect::<Vec<_>>()
    };
    let mut values = keys(&span.attributes);
    for event in &span.events {
        values.push(event.name.clone());
        values.extend(keys(&event.attributes));
    }
    values
}

#[tokio::test]
async fn a_desk_command_exports_its_span_tree_under_the_callers_trace() {
    let (exported, mut spans) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(exported)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let mut server = Server::start_with_config(&format!(
        "[tracing]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"hoso-e2e\"\n"
    ));

    let (trace_id, parent_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let command_id = Uuid::new_v4();
    let mut receive = receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0);
    receive.command = header_with(command_id, 0, None);
    receive.command.as_mut().unwrap().correlation_id = "desk-session-42".to_owned();
    let applicant = receive.applicant_ref.clone();
    let mut request = tonic::Request::new(receive);
    request
        .metadata_mut()
        .insert("traceparent", format!("00-{trace_id}-{parent_id}-01").parse().unwrap());
    server.desk(Role::Desk).await.receive_dossier(request).await.unwrap();
    // The server sends the spans it batched when it stops.
    assert!(server.terminate().await, "the server exits cleanly on SIGTERM");

    let rpc_name = "hoso.v1.DeskService/ReceiveDossier";
    let wanted = [rpc_name, "load_stream", "decide", "append", "fsync_wait"];
    let trace = hex::decode(trace_id).unwrap();
    let mut tree: HashMap<String, Span> = HashMap::new();
    let mut others = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !wanted.iter().all(|name| tree.contains_key(*name)) {
            let (service, span) = spans.recv().await.expect("the collector stopped");
            assert_eq!(service.as_deref(), Some("hoso-e2e"), "service.name of {}", span.name);
            if span.trace_id != trace {
                others.push(span);
            } else if let Some(twice) = tree.insert(span.name.clone(), span) {
                panic!("one command made two {} spans", twice.name);
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the collector got {:?} of the caller's trace within 10 s, not all of {wanted:?}",
            tree.keys().collect::<Vec<_>>()
        )
    });
    while let Ok((_, span)) = spans.try_recv() {
        others.push(span);
    }

    let rpc = &tree[rpc_name];
    assert_eq!(
        rpc.parent_span_id,
        hex::decode(parent_id).unwrap(),
        "the rpc span's parent is the caller's span"
    );
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    for (key, expected) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "hoso.v1.DeskService"),
        ("rpc.method", "ReceiveDossier"),
        ("rpc.grpc.status_code", "0"),
        ("command_id", &command_id.to_string()),
        ("correlation_id", "desk-session-42"),
    ] {
        assert_eq!(
            value(&rpc.attributes, key).as_deref(),
            Some(expected),
            "{key} on the rpc span"
        );
    }
    let logged = rpc
        .events
        .iter()
        .find(|event| event.name == "command recorded")
        .expect("the command's log line is an event of its rpc span");
    assert_eq!(value(&logged.attributes, "command_id"), Some(command_id.to_string()));
    assert_eq!(
        value(&logged.attributes, "correlation_id").as_deref(),
        Some("desk-session-42")
    );
    for child in ["load_stream", "decide", "append"] {
        assert_eq!(
            tree[child].parent_span_id, rpc.span_id,
            "{child} is a child of the rpc span"
        );
    }
    assert_eq!(
        tree["fsync_wait"].parent_span_id, tree["append"].span_id,
        "fsync_wait is a child of append"
    );

    for span in tree.values().chain(&others) {
        for value in all_values(span) {
            assert!(
                !value.contains(&applicant),
                "span {} carries the applicant: {value}",
                span.name
            );
        }
    }
}
