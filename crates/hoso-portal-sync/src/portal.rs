//! Sending one record to the portal over HTTPS: a POST of its JSON with the idempotency key and
//! the credentials, answered within the configured time or counted as a failure.

use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::Config;
use crate::record::SyncRecord;

/// The header that carries a record's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The most of the portal's answer read: its reference or its complaint, not a document.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The portal's acceptance of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The HTTP status it answered.
    pub http_status: u16,
    /// Its reference for the record (`reference` in its JSON answer), empty if it gave none.
    pub reference: String,
}

/// Why a send failed, in words for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The request never left: the portal could not be connected to, or its certificate was not
    /// trusted. Nothing is wrong with the record, so it is retried until the portal is reachable
    /// and never counted toward `max_attempts`.
    Unreachable(String),
    /// The portal refused the record, or did not answer in time, or its answer was cut off:
    /// counted toward `max_attempts`.
    Failed(String),
}

/// The HTTPS client of the portal.
#[derive(Clone)]
pub struct Portal {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: http::Uri,
    authorization: HeaderValue,
    timeout: Duration,
}

impl Portal {
    /// A client for the configured endpoint, with its credentials read now.
    pub fn new(config: &Config) -> Result<Portal> {
        let endpoint: http::Uri = config.endpoint.parse().context("endpoint is not a URL")?;
        let provider = rustls::crypto::ring::default_provider();
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match &config.ca_file {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .with_context(|| format!("cannot read ca_file {}", path.display()))?
                {
                    let cert =
                        cert.with_context(|| format!("ca_file {} holds a damaged certificate", path.display()))?;
                    roots
                        .add(cert)
                        .with_context(|| format!("ca_file {} holds a certificate rustls refuses", path.display()))?;
                }
                let tls = rustls::ClientConfig::builder_with_provider(provider.into())
                    .with_safe_default_protocol_versions()
                    .context("the TLS library has no protocol version in common with its own defaults")?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                builder.with_tls_config(tls)
            }
            None => builder
                .with_provider_and_native_roots(provider)
                .context("cannot read the system's trusted root certificates for the portal")?,
        };
        // http:// passes only when the configuration allowed it (Config::check).
        let connector = builder.https_or_http().enable_http1().build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        let c = &config.credentials;
        let authorization = match (&c.bearer_token, &c.basic_user, &c.basic_password) {
            (Some(token), _, _) => format!("Bearer {}", token.read("the portal's bearer token")?),
            (None, Some(user), Some(password)) => {
                let password = password.read("the portal's basic-auth password")?;
                format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
            }
            _ => anyhow::bail!("[credentials] needs either bearer_token, or basic_user with basic_password"),
        };
        let mut authorization = HeaderValue::from_str(&authorization)
            .context("the portal's credentials hold characters that cannot be sent in a header")?;
        authorization.set_sensitive(true);
        Ok(Portal {
            client,
            endpoint,
            authorization,
            timeout: config.request_timeout(),
        })
    }

    /// Sends one record; `Err` holds why it failed.
    pub async fn send(&self, record: &SyncRecord) -> Result<Accepted, SendFailure> {
        let body = serde_json::to_vec(record)
            .map_err(|err| SendFailure::Failed(format!("cannot encode the record: {err}")))?;
        let request = http::Request::post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, self.authorization.clone())
            .header(IDEMPOTENCY_KEY, &record.idempotency_key)
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| SendFailure::Failed(format!("cannot build the request: {err}")))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|err| {
                let reason = format!("cannot reach the portal at {}: {}", self.endpoint, chain(&err));
                // A connect error means the request never left: not the record's failure.
                if err.is_connect() {
                    SendFailure::Unreachable(match certificate_refused(&err) {
                        Some(hint) => format!("{reason} ({hint})"),
                        None => reason,
                    })
                } else {
                    SendFailure::Failed(reason)
                }
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|err| SendFailure::Failed(format!("the portal's answer (HTTP {status}) was cut off: {err}")))?
                .to_bytes();
            Ok::<_, SendFailure>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange).await.map_err(|_| {
            SendFailure::Failed(format!(
                "the portal did not answer within {} ms",
                self.timeout.as_millis()
            ))
        })??;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            return Err(SendFailure::Failed(format!(
                "the portal answered HTTP {status}: {}",
                text.trim()
            )));
        }
        let reference = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|answer| answer.get("reference").and_then(|r| r.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Ok(Accepted {
            http_status: status.as_u16(),
            reference,
        })
    }
}

/// What to do when the TLS handshake refused the portal's certificate, if that is why `err` is.
fn certificate_refused(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(rustls::Error::InvalidCertificate(refused)) = err.downcast_ref::<rustls::Error>() {
            return Some(match refused {
                rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. } => {
                    "the portal's certificate is not for the host named in endpoint: check endpoint"
                }
                rustls::CertificateError::UnknownIssuer => {
                    "the portal's certificate is not trusted: set ca_file to the CA certificate (PEM) that signed it, or add that CA to the system's trusted roots"
                }
                _ => {
                    "the portal's certificate is refused as said: an expired, revoked or malformed certificate is the portal's to replace"
                }
            });
        }
        // An io::Error's `source` skips the error it wraps (hyper-rustls wraps rustls's twice):
        // step into it instead.
        cause = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// An error with its causes, for the log.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
