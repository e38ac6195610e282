//! Single sign-on and credentials reloaded without a restart: a server with a tokens file and
//! the keys of a pretend identity provider; the files are edited while it serves, and SIGHUP or
//! `AdminService/ReloadCredentials` puts the edits in force.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hoso_api::pb;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tonic::Code;

use crate::harness::*;

const ISSUER: &str = "https://sso.thainguyen.gov.vn/realms/hcc";

/// A signing key of the pretend identity provider (hoso-server's test fixtures).
struct Key {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hoso-server/tests/fixtures/sso")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn rsa(kid: &'static str) -> Key {
    Key {
        kid,
        alg: Algorithm::RS256,
        key: EncodingKey::from_rsa_pem(&fixture("rsa.pem")).unwrap(),
    }
}

fn ec(kid: &'static str) -> Key {
    Key {
        kid,
        alg: Algorithm::ES256,
        key: EncodingKey::from_ec_pem(&fixture("ec.pem")).unwrap(),
    }
}

fn other_ec(kid: &'static str) -> Key {
    Key {
        kid,
        alg: Algorithm::ES256,
        key: EncodingKey::from_ec_pem(&fixture("ec-other.pem")).unwrap(),
    }
}

fn jwks(keys: &[&Key]) -> String {
    let keys = keys
        .iter()
        .map(|k| {
            let mut jwk = Jwk::from_encoding_key(&k.key, k.alg).unwrap();
            jwk.common.key_id = Some(k.kid.to_owned());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk
        })
        .collect();
    serde_json::to_string(&JwkSet { keys }).unwrap()
}

/// A token of the identity provider for an officer, expiring `expires_in` seconds from now.
fn jwt(key: &Key, subject: &str, role: &str, agency: &str, expires_in: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = json!({
        "iss": ISSUER, "aud": "hoso", "sub": subject, "role": role, "agency": agency,
        "iat": now, "exp": now + expires_in,
    });
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &key.key).unwrap()
}

/// The tokens file and the JWKS a server is started with, in a directory of their own.
struct Credentials {
    dir: tempfile::TempDir,
}

impl Credentials {
    fn new(tokens: &[(&str, &str, &str)], keys: &str) -> Credentials {
        let credentials = Credentials {
            dir: tempfile::tempdir().unwrap(),
        };
        credentials.tokens(tokens);
        credentials.keys(keys);
        credentials
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the tokens file: (token, role, agency) each, as `hoso token new` would.
    fn tokens(&self, tokens: &[(&str, &str, &str)]) {
        let text: String = tokens
            .iter()
            .map(|(token, role, agency)| {
                hoso_server::auth::token_entry(
                    token,
                    &format!("{role}.{agency}"),
                    hoso_server::auth::Role::parse(role).unwrap(),
                    agency,
                )
            })
            .collect();
        std::fs::write(self.path("tokens.toml"), text).unwrap();
    }

    fn keys(&self, jwks: &str) {
        std::fs::write(self.path("jwks.json"), jwks).unwrap();
    }

    fn config(&self) -> String {
        format!(
            "tokens_file = {:?}\n[sso]\nissuer = {ISSUER:?}\naudience = \"hoso\"\njwks_file = {:?}\n",
            self.path("tokens.toml"),
            self.path("jwks.json")
        )
    }
}

async fn status(server: &Server, token: &str) -> Result<pb::GetStatusResponse, tonic::Status> {
    let channel = server.raw_channel().await;
    let mut admin = Admin::new(tonic::service::interceptor::InterceptedService::new(
        channel,
        Server::bearer_token(token),
    ));
    admin.get_status(pb::GetStatusRequest {}).await.map(|r| r.into_inner())
}

async fn reload(server: &Server, token: &str) -> Result<pb::ReloadCredentialsResponse, tonic::Status> {
    let channel = server.raw_channel().await;
    let mut admin = Admin::new(tonic::service::interceptor::InterceptedService::new(
        channel,
        Server::bearer_token(token),
    ));
    admin
        .reload_credentials(pb::ReloadCredentialsRequest {})
        .await
        .map(|r| r.into_inner())
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(answer) => panic!("expected a refusal, got {answer:?}"),
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn signed_in_officers_are_accepted_and_bad_tokens_refused_with_the_rule_named() {
    let files = Credentials::new(&[("hoso_ops", "operator", "H00")], &jwks(&[&rsa("rsa-1"), &ec("ec-1")]));
    let server = Server::start_with_config(&files.config());

    // A good token, RS256 or ES256: the caller is the officer its claims name.
    for key in [rsa("rsa-1"), ec("ec-1")] {
        let answer = status(&server, &jwt(&key, "tran.thi.b@sso", "auditor", "H00", 600))
            .await
            .unwrap();
        assert_eq!(
            (answer.caller.as_str(), answer.caller_role.as_str()),
            ("tran.thi.b@sso", "auditor")
        );
    }
    // A desk officer's token records the dossier with the officer as actor.
    let desk = jwt(&ec("ec-1"), "le.van.c@sso", "desk_officer", "G09.20", 600);
    let code_ = receipt_code();
    server
        .desk_as(Server::bearer_token(&desk))
        .await
        .receive_dossier(receive_request(&code_, pb::Channel::Online, OWN_AGENCY, 0))
        .await
        .unwrap();

    let refused = |result: Result<pb::GetStatusResponse, tonic::Status>, expected: Code, words: &str| {
        let status = result.unwrap_err();
        assert_eq!(status.code(), expected, "{status:?}");
        assert!(
            status.message().contains(words),
            "{words:?} not in {:?}",
            status.message()
        );
    };
    let expired = jwt(&ec("ec-1"), "a", "auditor", "H00", -600);
    refused(status(&server, &expired).await, Code::Unauthenticated, "expired");
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".to_owned());
    let other_audience = jsonwebtoken::encode(
        &header,
        &json!({"iss": ISSUER, "aud": "another-app", "sub": "a", "role": "auditor", "exp": now + 600}),
        &ec("ec-1").key,
    )
    .unwrap();
    refused(
        status(&server, &other_audience).await,
        Code::Unauthenticated,
        "audience",
    );
    let wrong_key = jwt(&other_ec("ec-1"), "a", "auditor", "H00", 600);
    refused(
        status(&server, &wrong_key).await,
        Code::Unauthenticated,
        "signature does not verify",
    );
    let unknown_role = jwt(&ec("ec-1"), "a", "chu_tich", "H00", 600);
    refused(
        status(&server, &unknown_role).await,
        Code::PermissionDenied,
        "names no hoso role",
    );
    // A good token whose role may not do this: the role matrix answers, as for a static token.
    refused(
        status(&server, &desk).await,
        Code::PermissionDenied,
        "auditors and operators",
    );
    for token in [&expired, &wrong_key] {
        let message = status(&server, token).await.unwrap_err().message().to_owned();
        assert!(!message.contains(token.as_str()) && !message.contains(token.split('.').nth(2).unwrap()));
    }
    // The static token works as before.
    assert_eq!(status(&server, "hoso_ops").await.unwrap().caller_role, "operator");
}

#[tokio::test]
async fn edited_tokens_and_keys_are_put_in_force_by_sighup_and_by_the_admin_rpc() {
    let files = Credentials::new(
        &[
            ("hoso_ops", "operator", "H00"),
            ("hoso_desk_1", "desk_officer", "G09.20"),
        ],
        &jwks(&[&ec("ec-1")]),
    );
    let server = Server::start_with_config(&files.config());
    let signed_in = jwt(&ec("ec-1"), "op.sso", "operator", "H00", 600);
    assert!(status(&server, &signed_in).await.is_ok());

    // The provider adds a key: a token naming it fetches the keys at once, without a reload.
    files.keys(&jwks(&[&ec("ec-1"), &other_ec("ec-2")]));
    let new_key = jwt(&other_ec("ec-2"), "op.sso", "operator", "H00", 600);
    assert_eq!(status(&server, &new_key).await.unwrap().caller, "op.sso");

    // A desk officer leaves: their token is removed from the file, another one added; SIGHUP.
    let desk_1 = || async { server.desk_as(Server::bearer_token("hoso_desk_1")).await };
    desk_1()
        .await
        .receive_dossier(receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0))
        .await
        .unwrap();
    files.tokens(&[
        ("hoso_ops", "operator", "H00"),
        ("hoso_desk_2", "desk_officer", "G09.20"),
    ]);
    server.hangup();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let result = desk_1()
            .await
            .receive_dossier(receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0))
            .await;
        match result {
            Err(status) if status.code() == Code::Unauthenticated => {
                assert_eq!(status.message(), "unknown or revoked bearer token");
                break;
            }
            Ok(_) => assert!(Instant::now() < deadline, "the revoked token still works after SIGHUP"),
            Err(status) => panic!("{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
        .desk_as(Server::bearer_token("hoso_desk_2"))
        .await
        .receive_dossier(receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0))
        .await
        .unwrap();

    // The provider rotates its keys; an operator reloads through the API: in force on the answer.
    files.keys(&jwks(&[&rsa("rsa-2")]));
    let reloaded = reload(&server, "hoso_ops").await.unwrap();
    assert_eq!((reloaded.tokens, reloaded.signing_keys), (2, 1));
    assert!(reloaded.tokens_source.ends_with("tokens.toml") && reloaded.signing_keys_source.ends_with("jwks.json"));
    assert_eq!(code(status(&server, &signed_in).await), Code::Unauthenticated);
    assert_eq!(code(status(&server, &new_key).await), Code::Unauthenticated);
    let rotated = jwt(&rsa("rsa-2"), "op.sso", "operator", "H00", 600);
    assert_eq!(status(&server, &rotated).await.unwrap().caller, "op.sso");

    // Only operators reload, a signed-in one included.
    assert_eq!(code(reload(&server, "hoso_desk_2").await), Code::PermissionDenied);
    assert!(reload(&server, &rotated).await.is_ok());

    // A broken tokens file: refused, naming the file and the line; the credentials in force stay.
    std::fs::write(
        files.path("tokens.toml"),
        "[[tokens]]\nsha256 = \"00\"\nsubject = \"x\"\nrole = \"operator\"\n",
    )
    .unwrap();
    let status_ = reload(&server, "hoso_ops").await.unwrap_err();
    assert_eq!(status_.code(), Code::FailedPrecondition, "{status_:?}");
    assert!(
        status_.message().contains("tokens.toml") && status_.message().contains("tokens[0].sha256"),
        "{status_:?}"
    );
    server.hangup();
    assert_eq!(status(&server, "hoso_ops").await.unwrap().caller_role, "operator");
    assert!(status(&server, &rotated).await.is_ok());
}

/// Answers every HTTP request on a loopback port with `body` (a JSON document), for as long as
/// the test runs.
fn serve_json(body: String) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    format!("http://{addr}/realms/hcc/protocol/openid-connect/certs")
}

#[tokio::test]
async fn signing_keys_are_fetched_from_the_jwks_url() {
    let url = serve_json(jwks(&[&ec("ec-1")]));
    let server = Server::start_with_config(&format!(
        "[sso]\nissuer = {ISSUER:?}\naudience = \"hoso\"\njwks_url = {url:?}\n"
    ));
    let token = jwt(&ec("ec-1"), "op.sso", "operator", "H00", 600);
    assert_eq!(status(&server, &token).await.unwrap().caller, "op.sso");
    let reloaded = reload(&server, &token).await.unwrap();
    assert_eq!((reloaded.signing_keys, reloaded.signing_keys_source), (1, url));
}
