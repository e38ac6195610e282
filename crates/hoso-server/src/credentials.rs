//! The credentials in force: the tokens file's static tokens and, with single sign-on, the
//! identity provider's signing keys; reloaded without a restart, and the gate in front of every
//! `hoso.v1` service that turns a bearer token into its [`Caller`].
//!
//! A reload (SIGHUP, or `AdminService/ReloadCredentials`) reads the tokens file and the JWKS
//! first and puts both in force together, so a request sees either the old pair or the new one;
//! when either cannot be read, the old pair stays in force and the error names the file and
//! the line or key. The keys alone are fetched again every `jwks_refresh_seconds`, and at once
//! (at most every [`UNKNOWN_KEY_REFRESH`]) when a token names a key the provider had not
//! published, so a key rotation at the provider needs no reload. A JWT once verified is
//! remembered with the keys it was verified with until its expiry, so each request of an officer
//! costs a hash lookup rather than a signature check; a reload forgets them all.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Result;
use sha2::{Digest, Sha256};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower_service::Service;

use crate::auth::{Caller, Tokens};
use crate::config::Config;
use crate::error::{ServiceError, to_status};
use crate::sso::{HttpClient, KeySource, Refusal, SigningKeys, Verifier, looks_like_jwt};

/// The shortest time between two refreshes of the keys for tokens naming an unknown key, so that
/// made-up key ids cannot make the server hammer the identity provider.
pub const UNKNOWN_KEY_REFRESH: Duration = Duration::from_secs(10);

/// The tokens and keys in force together.
struct InForce {
    tokens: Arc<Tokens>,
    keys: Option<Arc<SigningKeys>>,
    /// JWTs already verified with these keys, by their SHA-256, with their caller and the Unix
    /// second until which they are good: desk software sends one token for minutes, and a
    /// signature check costs far more than a lookup. Dropped with these keys at every reload.
    verified: Mutex<HashMap<[u8; 32], (Caller, u64)>>,
}

/// The most verified JWTs remembered; past it the memory starts afresh.
const MAX_VERIFIED: usize = 10_000;

impl InForce {
    fn new(tokens: Arc<Tokens>, keys: Option<Arc<SigningKeys>>) -> InForce {
        InForce {
            tokens,
            keys,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The caller of a JWT verified before and still good at `now`.
    fn verified(&self, hash: &[u8; 32], now: u64) -> Option<Caller> {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified
            .get(hash)
            .filter(|(_, until)| now <= *until)
            .map(|(caller, _)| caller.clone())
    }

    fn remember(&self, hash: [u8; 32], caller: Caller, until: u64) {
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(hash, (caller, until));
    }
}

/// Single sign-on's verifier and where its keys come from.
struct Sso {
    verifier: Verifier,
    source: KeySource,
    client: HttpClient,
    refresh_every: Duration,
    /// When the keys were last fetched for an unknown key; held while fetching, so that
    /// concurrent requests wait for one fetch.
    last_unknown_key_refresh: tokio::sync::Mutex<Option<Instant>>,
}

/// What a reload put in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Static tokens known.
    pub tokens: usize,
    /// The file they were read from.
    pub tokens_source: String,
    /// The identity provider's signing keys known (0 without single sign-on).
    pub signing_keys: usize,
    /// Where they were read (empty without single sign-on).
    pub signing_keys_source: String,
}

/// The credentials in force and where they are reloaded from.
pub struct Credentials {
    in_force: RwLock<Arc<InForce>>,
    config: Option<Config>,
    sso: Option<Sso>,
}

impl Credentials {
    /// Reads the configured tokens (or the development tokens) and, with `[sso]`, the identity
    /// provider's keys.
    pub async fn load(config: &Config) -> Result<Arc<Credentials>> {
        let sso = match &config.sso {
            Some(sso) => Some(Sso {
                verifier: Verifier::new(sso),
                source: KeySource::from_config(sso)?,
                client: HttpClient::new()?,
                refresh_every: Duration::from_secs(u64::from(sso.jwks_refresh_seconds)),
                last_unknown_key_refresh: tokio::sync::Mutex::new(None),
            }),
            None => None,
        };
        let credentials = Credentials {
            in_force: RwLock::new(Arc::new(InForce::new(Arc::new(Tokens::default()), None))),
            config: Some(config.clone()),
            sso,
        };
        if let Err(err) = credentials.reload().await {
            let Some(Sso {
                source: source @ KeySource::Url(_),
                refresh_every,
                ..
            }) = &credentials.sso
            else {
                return Err(err);
            };
            // The provider being down must not keep the record closed: start with the static
            // tokens (whose errors still stop the start) and keep fetching the keys.
            let tokens = crate::load_tokens(config)?;
            tracing::error!(
                error = format!("{err:#}"),
                source = %source.describe(),
                "the identity provider's keys cannot be fetched: signed-in officers are refused until they are; \
                 they are fetched again every {} s and at once for a signed-in officer (at most every {} s); static tokens work",
                refresh_every.as_secs(),
                UNKNOWN_KEY_REFRESH.as_secs()
            );
            *credentials.in_force.write().unwrap_or_else(PoisonError::into_inner) =
                Arc::new(InForce::new(Arc::new(tokens), Some(Arc::new(SigningKeys::none()))));
        }
        Ok(Arc::new(credentials))
    }

    /// Static tokens only, never reloaded (for tests and tools that serve in-process).
    pub fn fixed(tokens: Tokens) -> Arc<Credentials> {
        Arc::new(Credentials {
            in_force: RwLock::new(Arc::new(InForce::new(Arc::new(tokens), None))),
            config: None,
            sso: None,
        })
    }

    fn in_force(&self) -> Arc<InForce> {
        Arc::clone(&self.in_force.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the tokens file and the identity provider's keys again and puts both in force
    /// together; on an error, the credentials in force stay and the error says why.
    pub async fn reload(&self) -> Result<Reloaded> {
        let Some(config) = &self.config else {
            anyhow::bail!("this server's credentials are fixed: it was not started from a configuration");
        };
        let tokens_source = tokens_source(config);
        let tokens = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || crate::load_tokens(&config))
                .await
                .map_err(|err| anyhow::anyhow!("reading the tokens failed: {err}"))??
        };
        let keys = match &self.sso {
            Some(sso) => Some(Arc::new(sso.source.load(&sso.client).await?)),
            None => None,
        };
        let reloaded = Reloaded {
            tokens: tokens.len(),
            tokens_source: tokens_source.display().to_string(),
            signing_keys: keys.as_ref().map_or(0, |k| k.len()),
            signing_keys_source: self.sso.as_ref().map(|s| s.source.describe()).unwrap_or_default(),
        };
        *self.in_force.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(InForce::new(Arc::new(tokens), keys));
        Ok(reloaded)
    }

    /// Fetches the identity provider's keys again and puts them in force with the tokens in
    /// force; on an error the keys in force stay. Returns how many keys there are now.
    pub async fn refresh_keys(&self) -> Result<usize> {
        let Some(sso) = &self.sso else {
            return Ok(0);
        };
        let keys = Arc::new(sso.source.load(&sso.client).await?);
        let count = keys.len();
        let mut in_force = self.in_force.write().unwrap_or_else(PoisonError::into_inner);
        *in_force = Arc::new(InForce::new(Arc::clone(&in_force.tokens), Some(keys)));
        Ok(count)
    }

    /// How often the keys are fetched again; `None` without single sign-on.
    pub fn refresh_every(&self) -> Option<Duration> {
        self.sso.as_ref().map(|sso| sso.refresh_every)
    }

    /// The caller a bearer token stands for: a static token of the tokens file, or, with single
    /// sign-on, a JWT of the identity provider.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, ServiceError> {
        let in_force = self.in_force();
        let (Some(sso), Some(keys)) = (&self.sso, &in_force.keys) else {
            return static_caller(&in_force, token);
        };
        if !looks_like_jwt(token) {
            return static_caller(&in_force, token);
        }
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(caller) = in_force.verified(&hash, now) {
            return Ok(caller);
        }
        let (in_force, verified) = match sso.verifier.verify_until(keys, token) {
            Err(Refusal::UnknownKey(_)) => {
                self.refresh_for_unknown_key(sso).await;
                let in_force = self.in_force();
                let keys = in_force.keys.clone().unwrap_or_else(|| Arc::clone(keys));
                let verified = sso.verifier.verify_until(&keys, token);
                (in_force, verified)
            }
            verified => (in_force, verified),
        };
        let (caller, until) = verified.map_err(refusal_to_error)?;
        in_force.remember(hash, caller.clone(), until);
        Ok(caller)
    }

    /// Fetches the keys again for a token naming an unknown key, unless that was done less than
    /// [`UNKNOWN_KEY_REFRESH`] ago.
    async fn refresh_for_unknown_key(&self, sso: &Sso) {
        let mut last = sso.last_unknown_key_refresh.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KEY_REFRESH) {
            return;
        }
        *last = Some(Instant::now());
        match self.refresh_keys().await {
            Ok(keys) => {
                tracing::info!(keys, source = %sso.source.describe(), "signing keys fetched again for a token naming an unknown key")
            }
            Err(err) => tracing::warn!(
                error = format!("{err:#}"),
                "the signing keys cannot be fetched again; those in force stay"
            ),
        }
    }
}

/// The file the tokens are read from: the tokens file, or the development tokens' hashes.
fn tokens_source(config: &Config) -> PathBuf {
    config
        .tokens_file
        .clone()
        .unwrap_or_else(|| crate::DataDir::new(&config.data_dir).dev_token_hashes())
}

fn static_caller(in_force: &InForce, token: &str) -> Result<Caller, ServiceError> {
    in_force
        .tokens
        .caller(token)
        .cloned()
        .ok_or_else(|| ServiceError::Unauthenticated("unknown or revoked bearer token".to_owned()))
}

fn refusal_to_error(refusal: Refusal) -> ServiceError {
    match refusal {
        Refusal::Unauthenticated(why) | Refusal::UnknownKey(why) => ServiceError::Unauthenticated(why),
        Refusal::PermissionDenied(why) => ServiceError::PermissionDenied(why),
    }
}

/// A `hoso.v1` service behind the gate: each request's bearer token is turned into its
/// [`Caller`], put in the request's extensions for the handlers, or the request is refused with
/// UNAUTHENTICATED (or PERMISSION_DENIED for a signed-in officer without a hoso role) before it
/// reaches the service.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    credentials: Arc<Credentials>,
}

impl<S> Authenticated<S> {
    /// `inner` behind the gate of `credentials`.
    pub fn new(inner: S, credentials: &Arc<Credentials>) -> Self {
        Authenticated {
            inner,
            credentials: Arc::clone(credentials),
        }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The service that was polled ready serves this request; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let credentials = Arc::clone(&self.credentials);
        let token = bearer_token(request.headers());
        Box::pin(async move {
            let caller = match token {
                Ok(token) => credentials.authenticate(&token).await.map_err(|error| {
                    let reason = match &error {
                        ServiceError::Unauthenticated(why) | ServiceError::PermissionDenied(why) => why.clone(),
                        _ => "refused".to_owned(),
                    };
                    (reason, error)
                }),
                Err((reason, message)) => Err((reason.to_owned(), ServiceError::Unauthenticated(message.to_owned()))),
            };
            match caller {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err((reason, error)) => {
                    // Logged with the peer and the reason, never the token; at most once per period.
                    if let Some(suppressed) = crate::ratelimit::AUTH_FAILURES.allow() {
                        let peer = peer(request.extensions()).map_or_else(|| "unknown".to_owned(), |a| a.to_string());
                        tracing::warn!(%peer, reason, suppressed, "authentication failed");
                    }
                    Ok(to_status(error).into_http())
                }
            }
        })
    }
}

/// A request's bearer token, or the reason for the log and the message to answer.
fn bearer_token(headers: &http::HeaderMap) -> Result<String, (&'static str, &'static str)> {
    let Some(header) = headers.get("authorization") else {
        return Err((
            "no authorization header",
            "missing bearer token; send `authorization: Bearer <token>`",
        ));
    };
    match header.to_str().ok().and_then(|value| value.strip_prefix("Bearer ")) {
        Some(token) => Ok(token.trim().to_owned()),
        None => Err((
            "not a bearer token",
            "the authorization header must be `Bearer <token>`",
        )),
    }
}

fn peer(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
}

#[cfg(test)]
mod tests {
    use crate::auth::{Role, token_entry};
    use crate::config::SsoConfig;
    use crate::sso::tests::{AUDIENCE, ISSUER, claims, ec_key, jwks, other_ec_key, sign};

    use super::*;

    struct Files {
        dir: tempfile::TempDir,
        config: Config,
    }

    impl Files {
        fn new(tokens: &str, keys: &str) -> Files {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("tokens.toml"), tokens).unwrap();
            std::fs::write(dir.path().join("jwks.json"), keys).unwrap();
            let config = Config {
                data_dir: dir.path().join("data"),
                tokens_file: Some(dir.path().join("tokens.toml")),
                sso: Some(SsoConfig {
                    issuer: ISSUER.to_owned(),
                    audience: AUDIENCE.to_owned(),
                    jwks_file: Some(dir.path().join("jwks.json")),
                    jwks_url: None,
                    jwks_refresh_seconds: 300,
                    subject_claim: "sub".to_owned(),
                    role_claim: "role".to_owned(),
                    agency_claim: "agency".to_owned(),
                    leeway_seconds: 30,
                    roles: Default::default(),
                }),
                ..Config::default()
            };
            Files { dir, config }
        }

        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.dir.path().join(name), text).unwrap();
        }
    }

    fn entry(token: &str, role: Role) -> String {
        token_entry(token, &format!("{role}.1"), role, "G09.20")
    }

    fn refused(result: Result<Caller, ServiceError>) -> String {
        match result {
            Err(ServiceError::Unauthenticated(why)) => why,
            other => panic!("expected UNAUTHENTICATED, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_reload_puts_the_new_tokens_and_keys_in_force_together() {
        let files = Files::new(&entry("hoso_old", Role::DeskOfficer), &jwks(&[&ec_key("ec-1")]));
        let credentials = Credentials::load(&files.config).await.unwrap();
        let jwt = sign(&ec_key("ec-1"), &claims("op.1", "operator", ""));
        assert_eq!(
            credentials.authenticate("hoso_old").await.unwrap().role,
            Role::DeskOfficer
        );
        assert_eq!(credentials.authenticate(&jwt).await.unwrap().subject, "op.1");

        files.write("tokens.toml", &entry("hoso_new", Role::Auditor));
        files.write("jwks.json", &jwks(&[&other_ec_key("ec-2")]));
        assert!(
            credentials.authenticate("hoso_old").await.is_ok(),
            "nothing changes before the reload"
        );
        let reloaded = credentials.reload().await.unwrap();
        assert_eq!((reloaded.tokens, reloaded.signing_keys), (1, 1));
        assert!(reloaded.signing_keys_source.ends_with("jwks.json"), "{reloaded:?}");
        assert_eq!(
            refused(credentials.authenticate("hoso_old").await),
            "unknown or revoked bearer token"
        );
        assert_eq!(credentials.authenticate("hoso_new").await.unwrap().role, Role::Auditor);
        let why = refused(credentials.authenticate(&jwt).await);
        assert!(why.contains("does not publish"), "{why}");
        let rotated = sign(&other_ec_key("ec-2"), &claims("op.1", "operator", ""));
        assert!(credentials.authenticate(&rotated).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_reload_keeps_the_credentials_in_force_and_names_the_file_and_line() {
        let files = Files::new(&entry("hoso_a", Role::DeskOfficer), &jwks(&[&ec_key("ec-1")]));
        let credentials = Credentials::load(&files.config).await.unwrap();
        files.write(
            "tokens.toml",
            &format!("{}\n[[tokens]]\nsha256 = 12\n", entry("hoso_b", Role::Auditor)),
        );
        let err = format!("{:#}", credentials.reload().await.unwrap_err());
        assert!(err.contains("tokens.toml") && err.contains("line 8"), "{err}");
        assert!(credentials.authenticate("hoso_a").await.is_ok());
        assert!(credentials.authenticate("hoso_b").await.is_err());

        // Good tokens but broken keys: neither is put in force.
        files.write("tokens.toml", &entry("hoso_b", Role::Auditor));
        files.write("jwks.json", "{\"keys\": [");
        let err = format!("{:#}", credentials.reload().await.unwrap_err());
        assert!(
            err.contains("jwks.json is not a JWKS document") && err.contains("line 1"),
            "{err}"
        );
        assert!(credentials.authenticate("hoso_a").await.is_ok());
        assert!(credentials.authenticate("hoso_b").await.is_err());
        let jwt = sign(&ec_key("ec-1"), &claims("op.1", "operator", ""));
        assert!(credentials.authenticate(&jwt).await.is_ok());
    }

    #[tokio::test]
    async fn a_token_naming_a_new_key_fetches_the_keys_once_then_is_refused_if_still_unknown() {
        let files = Files::new("", &jwks(&[&ec_key("ec-1")]));
        let credentials = Credentials::load(&files.config).await.unwrap();
        // The provider rotated its key; hoso has not reloaded.
        files.write("jwks.json", &jwks(&[&ec_key("ec-1"), &other_ec_key("ec-2")]));
        let rotated = sign(&other_ec_key("ec-2"), &claims("op.1", "operator", ""));
        assert_eq!(credentials.authenticate(&rotated).await.unwrap().subject, "op.1");
        // Another rotation right after: no second fetch within the limit, so still unknown.
        files.write("jwks.json", &jwks(&[&ec_key("ec-3")]));
        let newer = sign(&ec_key("ec-3"), &claims("op.1", "operator", ""));
        let why = refused(credentials.authenticate(&newer).await);
        assert!(why.contains("\"ec-3\""), "{why}");
        assert!(
            credentials.authenticate(&rotated).await.is_ok(),
            "the keys in force stayed"
        );
    }

    #[test]
    fn a_remembered_token_is_good_until_its_expiry_only() {
        let in_force = InForce::new(Arc::new(Tokens::default()), None);
        let caller = Caller {
            subject: "op.1".to_owned(),
            role: Role::Operator,
            agency: String::new(),
        };
        in_force.remember([7; 32], caller.clone(), 1_000);
        assert_eq!(in_force.verified(&[7; 32], 1_000), Some(caller));
        assert_eq!(
            in_force.verified(&[7; 32], 1_001),
            None,
            "past its expiry a token is checked again"
        );
        assert_eq!(in_force.verified(&[8; 32], 10), None);
    }

    #[tokio::test]
    async fn a_remembered_token_is_forgotten_when_its_key_is_withdrawn() {
        let files = Files::new("", &jwks(&[&ec_key("ec-1")]));
        let credentials = Credentials::load(&files.config).await.unwrap();
        let jwt = sign(&ec_key("ec-1"), &claims("op.1", "operator", ""));
        for _ in 0..3 {
            assert_eq!(credentials.authenticate(&jwt).await.unwrap().subject, "op.1");
        }
        assert_eq!(credentials.in_force().verified.lock().unwrap().len(), 1);
        files.write("jwks.json", &jwks(&[&other_ec_key("ec-2")]));
        credentials.reload().await.unwrap();
        let why = refused(credentials.authenticate(&jwt).await);
        assert!(why.contains("does not publish"), "{why}");
    }

    #[tokio::test]
    async fn an_unreachable_jwks_url_at_start_refuses_signed_in_officers_but_not_static_tokens() {
        let mut files = Files::new(&entry("hoso_a", Role::Auditor), "");
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let sso = files.config.sso.as_mut().unwrap();
        sso.jwks_file = None;
        sso.jwks_url = Some(format!("http://{closed}/jwks"));
        let credentials = Credentials::load(&files.config).await.unwrap();
        assert!(credentials.authenticate("hoso_a").await.is_ok());
        let jwt = sign(&ec_key("ec-1"), &claims("op.1", "operator", ""));
        let why = refused(credentials.authenticate(&jwt).await);
        assert!(why.contains("could not be fetched yet"), "{why}");
        let err = format!("{:#}", credentials.reload().await.unwrap_err());
        assert!(
            err.contains(&format!("cannot fetch the JWKS URL http://{closed}/jwks")),
            "{err}"
        );
        // A broken tokens file still stops the start.
        files.write("tokens.toml", "[[tokens]]\nsha256 = 1\n");
        let err = format!("{:#}", Credentials::load(&files.config).await.err().unwrap());
        assert!(err.contains("tokens.toml"), "{err}");
    }

    #[tokio::test]
    async fn static_tokens_work_unchanged_beside_single_sign_on() {
        let files = Files::new(&entry("hoso_a", Role::AgencyOfficer), &jwks(&[&ec_key("ec-1")]));
        let credentials = Credentials::load(&files.config).await.unwrap();
        let caller = credentials.authenticate("hoso_a").await.unwrap();
        assert_eq!((caller.role, caller.agency.as_str()), (Role::AgencyOfficer, "G09.20"));
        assert_eq!(
            refused(credentials.authenticate("hoso_b").await),
            "unknown or revoked bearer token"
        );
        let mut without_sso = files.config.clone();
        without_sso.sso = None;
        let credentials = Credentials::load(&without_sso).await.unwrap();
        let jwt = sign(&ec_key("ec-1"), &claims("op.1", "operator", ""));
        assert_eq!(
            refused(credentials.authenticate(&jwt).await),
            "unknown or revoked bearer token"
        );
    }
}
