//! The change feed through the binary: `hoso tail`, a consumer's checkpoint kept in the log
//! across a restart, and open feeds ended by the shutdown.

use std::process::Command;

use hoso_api::pb;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;

use crate::harness::*;

fn tail(server: &Server, role: Role, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoso"))
        .arg("tail")
        .args(args)
        .env("HOSO_SERVER", format!("http://{}", server.addr))
        .env("HOSO_TOKEN", server.token(role))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The event lines of `hoso tail`'s table (its first line is the heading).
fn events(out: &str) -> Vec<&str> {
    out.lines().skip(1).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hoso_tail_resumes_a_consumer_from_its_checkpoint_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path());
    let before = [received(&server).await, received(&server).await];
    let consumer = ["--consumer", "desk-mirror", "--no-follow"];
    let (ok, out, err) = tail(&server, Role::Integration, &consumer);
    assert!(ok, "{err}");
    let lines = events(&out);
    assert_eq!(lines.len(), 2, "{out}");
    for (line, code) in lines.iter().zip(&before) {
        for expected in ["DossierReceived", code.as_str(), OWN_AGENCY, "dev.desk-officer"] {
            assert!(line.contains(expected), "{expected}: {line}");
        }
    }

    assert!(server.terminate().await);
    let server = Server::start_in(dir.path());
    let after = received(&server).await;
    let (ok, out, err) = tail(&server, Role::Integration, &consumer);
    assert!(ok, "{err}");
    let lines = events(&out);
    assert_eq!(lines.len(), 1, "only what came after the checkpoint: {out}");
    assert!(lines[0].contains(&after), "{out}");

    let (ok, out, err) = tail(
        &server,
        Role::Auditor,
        &[
            "--no-follow",
            "--json",
            "--type",
            "DossierReceived",
            "--agency",
            OWN_AGENCY,
        ],
    );
    assert!(ok, "{err}");
    let received: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(received.len(), 3, "the checkpoints are not in the feed: {out}");
    for event in &received {
        assert_eq!(event["handling_agency"], OWN_AGENCY, "{event}");
        assert_eq!(event["data"]["handling_agency"], OWN_AGENCY, "{event}");
    }
    let (ok, out, _) = tail(&server, Role::Auditor, &["--no-follow", "--agency", OTHER_AGENCY]);
    assert!(ok);
    assert!(events(&out).is_empty(), "{out}");

    let (ok, _, err) = tail(&server, Role::Desk, &["--no-follow"]);
    assert!(!ok);
    assert!(err.contains("PermissionDenied") && err.contains("change feed"), "{err}");
    let (ok, _, err) = tail(&server, Role::Auditor, &consumer);
    assert!(!ok, "an auditor reads the feed but keeps no checkpoint");
    assert!(err.contains("PermissionDenied") && err.contains("checkpoint"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shutdown_ends_open_feeds_with_unavailable() {
    let mut server = Server::start();
    let code = received(&server).await;
    let mut feed = pb::feed_service_client::FeedServiceClient::new(InterceptedService::new(
        server.raw_channel().await,
        server.bearer(Some(Role::Integration)),
    ));
    let mut stream = feed
        .subscribe(pb::SubscribeRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    // Caught up, and live: the stream would never end by itself.
    assert!(first.caught_up, "{first:?}");
    assert!(first.event.unwrap().stream_id.ends_with(&code));
    assert!(server.terminate().await);
    let status = match stream.message().await {
        Ok(Some(message)) => panic!("nothing was recorded, yet the feed sent {message:?}"),
        Ok(None) => panic!("the feed ended without saying why"),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains("shutting down"), "{status:?}");
}
