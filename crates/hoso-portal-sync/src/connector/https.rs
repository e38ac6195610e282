//! The connector's sender against a fake portal served over TLS (rustls), with a CA and a
//! certificate for 127.0.0.1 made by the system's `openssl` for the test: the configured
//! credentials arrive over HTTPS, and a portal whose certificate is not trusted gets nothing, is
//! named in words the operator can act on, and is waited out rather than set aside.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::Channel;

use super::*;
use crate::portal::IDEMPOTENCY_KEY;
use crate::record::Source;

/// What the fake portal heard. No `Debug`: a failing assertion must not print the credentials.
enum Heard {
    Request {
        authorization: String,
        idempotency_key: String,
        record: Box<SyncRecord>,
    },
    HandshakeFailed,
}

/// Accepts TLS connections, telling each failed handshake.
struct TlsListener {
    tcp: TcpListener,
    tls: TlsAcceptor,
    heard: mpsc::UnboundedSender<Heard>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.tls.accept(tcp).await {
                Ok(tls) => return (tls, addr),
                Err(_) => {
                    let _ = self.heard.send(Heard::HandshakeFailed);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn portal(
    State(heard): State<mpsc::UnboundedSender<Heard>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let _ = heard.send(Heard::Request {
        authorization: header("authorization"),
        idempotency_key: header(IDEMPOTENCY_KEY),
        record: Box::new(serde_json::from_slice(&body).expect("the portal received a record that is not one")),
    });
    (StatusCode::CREATED, r#"{"reference":"DVC-2026-000001"}"#)
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("this test makes its certificates with the openssl command, which the machine image ships");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`) and the portal's certificate for 127.0.0.1 signed by it (`portal.crt`, `portal.key`).
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=fake portal CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "portal.key",
                "-out",
                "portal.csr",
                "-subj",
                "/CN=fake portal",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("portal.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "portal.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "portal.crt",
            "-days",
            "2",
            "-extfile",
            "portal.ext",
        ],
    );
}

/// Serves the fake portal over TLS with `portal.crt`; its port, and what it hears.
async fn serve_portal(dir: &Path) -> (u16, mpsc::UnboundedReceiver<Heard>) {
    let certs = CertificateDer::pem_file_iter(dir.join("portal.crt"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("portal.key")).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let (heard, hearing) = mpsc::unbounded_channel();
    let listener = TlsListener {
        tcp: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        tls: TlsAcceptor::from(Arc::new(tls)),
        heard: heard.clone(),
    };
    let port = listener.tcp.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/api/dossier-sync", axum::routing::post(portal))
        .with_state(heard);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, hearing)
}

/// The next thing the portal heard; bounded so that a connector that never calls fails the test.
async fn next(hearing: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(30), hearing.recv())
        .await
        .expect("the fake portal heard nothing in 30 s")
        .unwrap()
}

/// The connector's state, with a hoso server it never reaches (sending alone does not use it).
fn shared(dir: &Path, port: u16, ca_file: bool, credentials: &str) -> Arc<Shared> {
    let ca_file = if ca_file {
        format!("ca_file = {:?}\n", dir.join("ca.crt"))
    } else {
        String::new()
    };
    let text = format!(
        "endpoint = \"https://127.0.0.1:{port}/api/dossier-sync\"\n{ca_file}state_dir = {:?}\nmax_attempts = 1\nbackoff_min_ms = 1\nbackoff_max_ms = 20\n[credentials]\n{credentials}\n",
        dir.join("state")
    );
    let config: Config = toml::from_str(&text).unwrap();
    config.check().unwrap();
    let channel = Channel::from_static("http://127.0.0.1:9").connect_lazy();
    let bearer = Bearer("Bearer unused".parse().unwrap());
    Arc::new(Shared {
        portal: Portal::new(&config).unwrap(),
        dir: StateDir::open(&config.state_dir).unwrap(),
        desk: Desk::new(InterceptedService::new(channel.clone(), bearer.clone())),
        query: Query::new(InterceptedService::new(channel, bearer)),
        config,
    })
}

fn record() -> SyncRecord {
    SyncRecord {
        idempotency_key: "0b7e4c9a-5f1d-4e0a-9a51-7c3fd2a96f1c".to_owned(),
        receipt_code: "G09.20-20260609-0000001".to_owned(),
        procedure_code: "1.001234".to_owned(),
        status: 2,
        received_at: chrono::DateTime::UNIX_EPOCH,
        due_at: None,
        finished_at: None,
        returned_at: None,
        handling_agency: "000.00.04.G18".to_owned(),
        channel: 2,
        progress: vec![],
        source: Source {
            position: 7,
            version: 0,
            event_type: "DossierReceived".to_owned(),
        },
    }
}

#[tokio::test]
async fn records_reach_the_portal_over_https_with_the_configured_credentials() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    certificates(dir);
    let (port, mut hearing) = serve_portal(dir).await;
    std::fs::write(dir.join("token"), "portal-bearer-secret\n").unwrap();
    std::fs::write(dir.join("password"), "portal-basic-secret\n").unwrap();
    let bearer = format!("bearer_token = {{ file = {:?} }}", dir.join("token"));
    let basic = format!(
        "basic_user = \"thainguyen\"\nbasic_password = {{ file = {:?} }}",
        dir.join("password")
    );
    let expected_basic = format!("Basic {}", BASE64.encode("thainguyen:portal-basic-secret"));
    for (kind, credentials, expected) in [
        ("bearer", bearer, "Bearer portal-bearer-secret".to_owned()),
        ("basic", basic, expected_basic),
    ] {
        let shared = shared(dir, port, true, &credentials);
        let record = record();
        let accepted = send_with_retries(&shared, &record).await.unwrap();
        assert_eq!(
            accepted,
            Accepted {
                http_status: 201,
                reference: "DVC-2026-000001".to_owned()
            }
        );
        let Heard::Request {
            authorization,
            idempotency_key,
            record: received,
        } = next(&mut hearing).await
        else {
            panic!("{kind}: the portal's TLS handshake failed although ca_file names its CA");
        };
        assert!(
            authorization == expected,
            "{kind}: the portal did not receive the configured credentials"
        );
        assert_eq!(idempotency_key, record.idempotency_key, "{kind}");
        assert!(*received == record, "{kind}: the portal received another record");
    }
}

#[tokio::test]
async fn a_portal_certificate_not_trusted_is_named_and_waited_out_not_set_aside() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    certificates(dir);
    let (port, mut hearing) = serve_portal(dir).await;
    std::fs::write(dir.join("token"), "portal-bearer-secret\n").unwrap();
    // No ca_file: the system's roots, which do not hold the fake portal's CA.
    let shared = shared(
        dir,
        port,
        false,
        &format!("bearer_token = {{ file = {:?} }}", dir.join("token")),
    );
    let record = record();

    let failure = shared.portal.send(&record).await.unwrap_err();
    let SendFailure::Unreachable(reason) = &failure else {
        panic!("a certificate not trusted counts as a failure of the record: {failure:?}");
    };
    assert!(
        reason.contains("certificate is not trusted") && reason.contains("ca_file") && reason.contains("UnknownIssuer"),
        "{reason}"
    );
    assert!(
        !reason.contains("portal-bearer-secret"),
        "the reason shows the bearer token"
    );
    assert!(
        matches!(next(&mut hearing).await, Heard::HandshakeFailed),
        "the record was sent"
    );

    // With max_attempts = 1, a second handshake at all means the record was not given up (set
    // aside) after its first failure; it is retried until the portal is reachable.
    let sending = tokio::spawn(async move { send_with_retries(&shared, &record).await });
    for _ in 0..3 {
        assert!(
            matches!(next(&mut hearing).await, Heard::HandshakeFailed),
            "the record was sent"
        );
    }
    assert!(!sending.is_finished(), "the sender gave up on a portal it cannot reach");
    sending.abort();
}
