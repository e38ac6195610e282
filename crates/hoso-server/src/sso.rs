//! Single sign-on: JWT bearer tokens from the province's OpenID Connect identity provider.
//!
//! A token is accepted when its signature verifies with one of the provider's public keys (its
//! JWKS, from a file or a URL), it is issued by the configured issuer for the configured
//! audience, and it has not expired (with `leeway_seconds` of clock leeway, 30 by default). The
//! officer's subject, role and unit come from configurable claims. Only public-key algorithms
//! are accepted (RS256/384/512, PS256/384/512, ES256/384, EdDSA): a shared-secret (HS*) or
//! unsigned token is refused whatever its claims say.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::Value;

use crate::auth::{Caller, Role};
use crate::config::SsoConfig;

/// The signature algorithms accepted: the provider's public-key ones.
const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The largest JWKS document read, from a file or a URL.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// How long fetching the JWKS from its URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a bearer token has a JWT's shape (three dot-separated parts); the tokens file's
/// static tokens never contain a dot.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// One of the provider's public signing keys.
struct SigningKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

/// The identity provider's public signing keys, from its JWKS.
pub struct SigningKeys {
    keys: Vec<SigningKey>,
}

impl SigningKeys {
    /// Parses a JWKS document; `origin` names it in errors. Encryption keys (`"use": "enc"`) are
    /// left out; a key that cannot be used for signatures is an error naming it.
    pub fn parse(json: &str, origin: &str) -> Result<SigningKeys> {
        let set: JwkSet = serde_json::from_str(json)
            .with_context(|| format!("{origin} is not a JWKS document (a JSON object with a `keys` array of JWKs)"))?;
        let mut keys = Vec::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                continue;
            }
            let name = match &jwk.common.key_id {
                Some(kid) => format!("{origin}: keys[{i}] (kid {kid:?})"),
                None => format!("{origin}: keys[{i}]"),
            };
            let alg = match jwk.common.key_algorithm {
                Some(alg) => {
                    let alg = Algorithm::try_from(alg)
                        .map_err(|_| anyhow!("{name}: its alg {alg:?} is not a signature algorithm"))?;
                    if !ACCEPTED.contains(&alg) {
                        bail!(
                            "{name}: its alg {alg:?} is not accepted; hoso accepts {}",
                            accepted_names()
                        );
                    }
                    Some(alg)
                }
                None => None,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|err| anyhow!("{name} is not a usable public key: {err}"))?;
            let probe = match (key.family(), &jwk.algorithm) {
                (AlgorithmFamily::Hmac, _) => {
                    bail!("{name} is a shared secret (kty oct); publish only the provider's public keys")
                }
                (AlgorithmFamily::Ec, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P384 => {
                    Algorithm::ES384
                }
                (family, _) => alg.unwrap_or(family.algorithms()[0]),
            };
            // The key is parsed when a signature is checked: check one now, so that a damaged
            // key is named at load rather than refusing every token signed with it.
            jsonwebtoken::crypto::verify("AAAA", b"probe", &key, probe)
                .map_err(|err| anyhow!("{name} is not a usable public key: {err}"))?;
            keys.push(SigningKey {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() {
            bail!("{origin} has no signing key");
        }
        Ok(SigningKeys { keys })
    }

    /// No key: the provider's keys could not be fetched yet, so every JWT is refused.
    pub fn none() -> SigningKeys {
        SigningKeys { keys: Vec::new() }
    }

    /// How many signing keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is none: never once parsed, only before the keys could be fetched.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token names by its `kid`; a token without one may use the only key.
    fn find(&self, kid: Option<&str>) -> Option<&SigningKey> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

fn accepted_names() -> String {
    ACCEPTED.map(|a| format!("{a:?}")).join(", ")
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token is not good: malformed, badly signed, expired, for another audience or issuer
    /// (UNAUTHENTICATED). The message says which rule failed and never quotes the token.
    Unauthenticated(String),
    /// The token names a key the provider's keys lack: after a refresh of the keys it may verify.
    UnknownKey(String),
    /// The token is good but names no usable hoso role or unit (PERMISSION_DENIED).
    PermissionDenied(String),
}

/// Checks tokens against the configured issuer, audience and claims.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    audience: String,
    subject_claim: String,
    role_claim: String,
    agency_claim: String,
    leeway_seconds: u64,
    roles: BTreeMap<String, Role>,
}

impl Verifier {
    /// The verifier of a checked `[sso]` section.
    pub fn new(config: &SsoConfig) -> Verifier {
        Verifier {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            subject_claim: config.subject_claim.clone(),
            role_claim: config.role_claim.clone(),
            agency_claim: config.agency_claim.clone(),
            leeway_seconds: u64::from(config.leeway_seconds),
            roles: config
                .roles
                .iter()
                .filter_map(|(name, role)| Role::parse(role).map(|role| (name.clone(), role)))
                .collect(),
        }
    }

    /// The caller a token stands for, or why it is refused.
    pub fn verify(&self, keys: &SigningKeys, token: &str) -> Result<Caller, Refusal> {
        self.verify_until(keys, token).map(|(caller, _)| caller)
    }

    /// The caller a token stands for and the Unix second until which the token is good (its
    /// `exp` plus the leeway), or why it is refused.
    pub fn verify_until(&self, keys: &SigningKeys, token: &str) -> Result<(Caller, u64), Refusal> {
        let malformed = || {
            Refusal::Unauthenticated(
                "the bearer token is not a well-formed JWT (three base64url parts: header.claims.signature)".to_owned(),
            )
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| malformed())?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(Refusal::Unauthenticated(format!(
                "the token is signed with {:?}; hoso accepts only the identity provider's public-key signatures ({})",
                header.alg,
                accepted_names()
            )));
        }
        if keys.is_empty() {
            return Err(Refusal::UnknownKey(
                "the identity provider's signing keys could not be fetched yet, so no signed-in officer can be checked; an operator sees why in the server's log".to_owned(),
            ));
        }
        let kid = header.kid.as_deref();
        let Some(key) = keys.find(kid) else {
            return Err(Refusal::UnknownKey(match kid {
                Some(kid) => format!(
                    "the token is signed with a key (kid {:?}) that the identity provider does not publish in its JWKS",
                    shorten(kid)
                ),
                None => "the token names no key (kid) and the identity provider publishes several".to_owned(),
            }));
        };
        if key.alg.is_some_and(|alg| alg != header.alg) {
            return Err(Refusal::Unauthenticated(format!(
                "the token is signed with {:?}, but its key is published for {:?}",
                header.alg,
                key.alg.expect("checked just above")
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key.key, &validation)
            .map_err(|err| Refusal::Unauthenticated(self.explain(err.kind(), kid)))?
            .claims;
        // `exp` is required and was checked to be a number by the decoder.
        let exp = claims.get("exp").and_then(Value::as_f64).unwrap_or_default() as u64;
        Ok((self.caller(&claims)?, exp.saturating_add(self.leeway_seconds)))
    }

    fn explain(&self, kind: &ErrorKind, kid: Option<&str>) -> String {
        match kind {
            ErrorKind::ExpiredSignature => format!(
                "the token has expired (its `exp` is past, with {} s of leeway); sign in again at the identity provider",
                self.leeway_seconds
            ),
            ErrorKind::ImmatureSignature => "the token is not valid yet (its `nbf` is in the future); check the clocks of the identity provider and of this server".to_owned(),
            ErrorKind::InvalidAudience => format!(
                "the token is not issued for hoso: its audience (`aud`) does not include {:?}",
                self.audience
            ),
            ErrorKind::InvalidIssuer => format!(
                "the token is not issued by the configured identity provider: its issuer (`iss`) is not {:?}",
                self.issuer
            ),
            ErrorKind::InvalidSignature => format!(
                "the token's signature does not verify with the identity provider's key{}: it was not signed by that provider, or was altered",
                kid.map(|kid| format!(" {:?}", shorten(kid))).unwrap_or_default()
            ),
            ErrorKind::MissingRequiredClaim(claim) => format!("the token lacks the `{claim}` claim"),
            ErrorKind::InvalidClaimFormat(claim) => format!("the token's `{claim}` claim is malformed"),
            ErrorKind::InvalidAlgorithm => "the token's algorithm does not match its key".to_owned(),
            _ => "the bearer token is not a well-formed JWT (three base64url parts: header.claims.signature)".to_owned(),
        }
    }

    /// The officer the verified claims name.
    fn caller(&self, claims: &serde_json::Map<String, Value>) -> Result<Caller, Refusal> {
        let subject = claim(claims, &self.subject_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                Refusal::Unauthenticated(format!(
                    "the token has no `{}` claim naming the officer (sso.subject_claim)",
                    self.subject_claim
                ))
            })?;
        let named: Vec<&str> = match claim(claims, &self.role_claim) {
            Some(Value::String(name)) => vec![name.as_str()],
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let mut roles: Vec<Role> = named.iter().filter_map(|name| self.role(name)).collect();
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        let role = match roles.as_slice() {
            [role] => *role,
            [] => {
                return Err(Refusal::PermissionDenied(format!(
                    "the token's `{}` claim (sso.role_claim) names no hoso role{}; the identity provider must give this officer one of {}",
                    self.role_claim,
                    if named.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (it says {})",
                            named.iter().map(|n| shorten(n)).collect::<Vec<_>>().join(", ")
                        )
                    },
                    self.role_names()
                )));
            }
            several => {
                return Err(Refusal::PermissionDenied(format!(
                    "the token's `{}` claim names several hoso roles ({}); an officer signs in under one",
                    self.role_claim,
                    several.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        };
        let agency = claim(claims, &self.agency_claim)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned();
        if matches!(role, Role::DeskOfficer | Role::AgencyOfficer) && agency.is_empty() {
            return Err(Refusal::PermissionDenied(format!(
                "the token's `{}` claim (sso.agency_claim) is missing: a {role} acts for a unit, so the identity provider must give the unit's code",
                self.agency_claim
            )));
        }
        Ok(Caller {
            subject: subject.to_owned(),
            role,
            agency,
        })
    }

    fn role(&self, name: &str) -> Option<Role> {
        if self.roles.is_empty() {
            Role::parse(name)
        } else {
            self.roles.get(name).copied()
        }
    }

    fn role_names(&self) -> String {
        if self.roles.is_empty() {
            Role::ALL.map(|r| r.as_str()).join(", ")
        } else {
            self.roles.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
        }
    }
}

/// The value at a dotted path (`realm_access.roles`); a claim whose own name has a dot is found
/// first.
fn claim<'a>(claims: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A value from a token, cut short for a message.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(64).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Where the provider's keys are read.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS file.
    File(PathBuf),
    /// A JWKS URL.
    Url(http::Uri),
}

impl KeySource {
    /// The source `[sso]` names; a URL must be `https://`, or `http://` on a loopback address.
    pub fn from_config(config: &SsoConfig) -> Result<KeySource> {
        if let Some(file) = &config.jwks_file {
            return Ok(KeySource::File(file.clone()));
        }
        let url = config.jwks_url.as_deref().unwrap_or_default();
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("sso.jwks_url {url:?} is not a URL"))?;
        let loopback = matches!(uri.host(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => bail!(
                "sso.jwks_url {url:?} must be an https:// URL (plain http:// only on this machine's loopback address): keys fetched in the clear could be replaced on the way"
            ),
        }
        Ok(KeySource::Url(uri))
    }

    /// Names the source in messages.
    pub fn describe(&self) -> String {
        match self {
            KeySource::File(path) => path.display().to_string(),
            KeySource::Url(uri) => uri.to_string(),
        }
    }

    /// Reads the keys.
    pub async fn load(&self, client: &HttpClient) -> Result<SigningKeys> {
        let text = match self {
            KeySource::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .with_context(|| format!("cannot read the JWKS file {}", path.display()))?;
                if bytes.len() > MAX_JWKS_BYTES {
                    bail!("the JWKS file {} is larger than 1 MiB", path.display());
                }
                String::from_utf8(bytes).with_context(|| format!("the JWKS file {} is not UTF-8", path.display()))?
            }
            KeySource::Url(uri) => tokio::time::timeout(FETCH_TIMEOUT, client.get(uri))
                .await
                .map_err(|_| anyhow!("the JWKS URL {uri} did not answer within {} s", FETCH_TIMEOUT.as_secs()))??,
        };
        SigningKeys::parse(&text, &self.describe())
    }
}

/// The HTTPS client that fetches the JWKS: rustls with ring and the system's trusted roots.
#[derive(Clone)]
pub struct HttpClient(
    hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Empty<bytes::Bytes>,
    >,
);

impl HttpClient {
    /// A client trusting the system's root certificates.
    pub fn new() -> Result<HttpClient> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .context("cannot read the system's trusted root certificates for the JWKS URL")?
            .https_or_http()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(HttpClient(client))
    }

    async fn get(&self, uri: &http::Uri) -> Result<String> {
        use http_body_util::BodyExt;
        let response = self
            .0
            .get(uri.clone())
            .await
            .with_context(|| format!("cannot fetch the JWKS URL {uri}"))?;
        if !response.status().is_success() {
            bail!("the JWKS URL {uri} answered HTTP {}", response.status());
        }
        let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|err| anyhow!("cannot read the JWKS from {uri} (at most 1 MiB): {err}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).with_context(|| format!("the JWKS from {uri} is not UTF-8"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    use super::*;

    pub(crate) const ISSUER: &str = "https://sso.thainguyen.gov.vn/realms/hcc";
    pub(crate) const AUDIENCE: &str = "hoso";

    /// A key of the tests' pretend identity provider: its private half signs, its public half is
    /// published under `kid`.
    pub(crate) struct TestKey {
        pub(crate) kid: &'static str,
        pub(crate) alg: Algorithm,
        pub(crate) key: EncodingKey,
    }

    pub(crate) fn rsa_key(kid: &'static str) -> TestKey {
        TestKey {
            kid,
            alg: Algorithm::RS256,
            key: EncodingKey::from_rsa_pem(include_bytes!("../tests/fixtures/sso/rsa.pem")).unwrap(),
        }
    }

    pub(crate) fn ec_key(kid: &'static str) -> TestKey {
        TestKey {
            kid,
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_pem(include_bytes!("../tests/fixtures/sso/ec.pem")).unwrap(),
        }
    }

    pub(crate) fn other_ec_key(kid: &'static str) -> TestKey {
        TestKey {
            kid,
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_pem(include_bytes!("../tests/fixtures/sso/ec-other.pem")).unwrap(),
        }
    }

    /// The JWKS publishing these keys' public halves.
    pub(crate) fn jwks(keys: &[&TestKey]) -> String {
        let set = JwkSet {
            keys: keys
                .iter()
                .map(|k| {
                    let mut jwk = Jwk::from_encoding_key(&k.key, k.alg).unwrap();
                    jwk.common.key_id = Some(k.kid.to_owned());
                    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
                    jwk
                })
                .collect(),
        };
        serde_json::to_string(&set).unwrap()
    }

    /// Claims of a good token for `role`, expiring in an hour.
    pub(crate) fn claims(subject: &str, role: &str, agency: &str) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "role": role, "agency": agency,
            "iat": now, "exp": now + 3600,
        })
    }

    pub(crate) fn sign(key: &TestKey, claims: &serde_json::Value) -> String {
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.to_owned());
        jsonwebtoken::encode(&header, claims, &key.key).unwrap()
    }

    fn config() -> SsoConfig {
        SsoConfig {
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            jwks_file: Some("jwks.json".into()),
            jwks_url: None,
            jwks_refresh_seconds: 300,
            subject_claim: "sub".to_owned(),
            role_claim: "role".to_owned(),
            agency_claim: "agency".to_owned(),
            leeway_seconds: 30,
            roles: BTreeMap::new(),
        }
    }

    fn published() -> SigningKeys {
        SigningKeys::parse(&jwks(&[&rsa_key("rsa-1"), &ec_key("ec-1")]), "jwks.json").unwrap()
    }

    fn verify(token: &str) -> Result<Caller, Refusal> {
        Verifier::new(&config()).verify(&published(), token)
    }

    fn unauthenticated(result: Result<Caller, Refusal>) -> String {
        match result {
            Err(Refusal::Unauthenticated(why)) => why,
            other => panic!("expected UNAUTHENTICATED, got {other:?}"),
        }
    }

    fn permission_denied(result: Result<Caller, Refusal>) -> String {
        match result {
            Err(Refusal::PermissionDenied(why)) => why,
            other => panic!("expected PERMISSION_DENIED, got {other:?}"),
        }
    }

    #[test]
    fn a_good_token_signed_with_rs256_or_es256_names_its_officer() {
        for key in [rsa_key("rsa-1"), ec_key("ec-1")] {
            let caller = verify(&sign(&key, &claims("nv.an@g18", "agency_officer", "000.00.04.G18"))).unwrap();
            assert_eq!(
                caller,
                Caller {
                    subject: "nv.an@g18".to_owned(),
                    role: Role::AgencyOfficer,
                    agency: "000.00.04.G18".to_owned(),
                },
                "{:?}",
                key.alg
            );
        }
    }

    #[test]
    fn an_expired_token_is_refused_beyond_the_leeway_and_accepted_within_it() {
        let now = jsonwebtoken::get_current_timestamp();
        let mut expired = claims("a", "auditor", "");
        expired["exp"] = json!(now - 120);
        let why = unauthenticated(verify(&sign(&ec_key("ec-1"), &expired)));
        assert!(why.contains("expired") && why.contains("30 s of leeway"), "{why}");
        let mut just = claims("a", "auditor", "");
        just["exp"] = json!(now - 5);
        assert!(
            verify(&sign(&ec_key("ec-1"), &just)).is_ok(),
            "5 s past exp is within the 30 s leeway"
        );
        let mut early = claims("a", "auditor", "");
        early["nbf"] = json!(now + 600);
        let why = unauthenticated(verify(&sign(&ec_key("ec-1"), &early)));
        assert!(why.contains("not valid yet"), "{why}");
    }

    #[test]
    fn a_token_for_another_audience_or_from_another_issuer_is_refused() {
        let mut other = claims("a", "auditor", "");
        other["aud"] = json!("another-app");
        let why = unauthenticated(verify(&sign(&ec_key("ec-1"), &other)));
        assert!(why.contains("audience") && why.contains("\"hoso\""), "{why}");
        let mut other = claims("a", "auditor", "");
        other["iss"] = json!("https://evil.example/");
        let why = unauthenticated(verify(&sign(&ec_key("ec-1"), &other)));
        assert!(why.contains("issuer"), "{why}");
        let mut missing = claims("a", "auditor", "");
        missing.as_object_mut().unwrap().remove("aud");
        let why = unauthenticated(verify(&sign(&ec_key("ec-1"), &missing)));
        assert!(why.contains("`aud`"), "{why}");
    }

    #[test]
    fn a_token_signed_with_a_wrong_key_is_refused_without_quoting_the_token() {
        // Another key under the published key's id: the signature cannot verify.
        let token = sign(&other_ec_key("ec-1"), &claims("a", "operator", ""));
        let why = unauthenticated(verify(&token));
        assert!(
            why.contains("signature does not verify") && why.contains("ec-1"),
            "{why}"
        );
        assert!(
            !why.contains(&token) && !why.contains(token.split('.').nth(2).unwrap()),
            "{why}"
        );
        // An altered claim breaks the signature too.
        let good = sign(&ec_key("ec-1"), &claims("a", "auditor", ""));
        let parts: Vec<&str> = good.split('.').collect();
        let forged = base64_url(&serde_json::to_vec(&claims("a", "operator", "")).unwrap());
        let why = unauthenticated(verify(&format!("{}.{forged}.{}", parts[0], parts[2])));
        assert!(why.contains("signature does not verify"), "{why}");
    }

    fn base64_url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }

    #[test]
    fn a_token_naming_an_unpublished_key_asks_for_a_refresh() {
        let token = sign(&other_ec_key("ec-2"), &claims("a", "auditor", ""));
        assert!(matches!(verify(&token), Err(Refusal::UnknownKey(why)) if why.contains("\"ec-2\"")));
    }

    #[test]
    fn an_unknown_role_or_several_roles_or_a_missing_unit_is_permission_denied() {
        let why = permission_denied(verify(&sign(&ec_key("ec-1"), &claims("a", "mayor", "G09"))));
        assert!(
            why.contains("names no hoso role") && why.contains("mayor") && why.contains("desk_officer"),
            "{why}"
        );
        let mut none = claims("a", "auditor", "");
        none.as_object_mut().unwrap().remove("role");
        let why = permission_denied(verify(&sign(&ec_key("ec-1"), &none)));
        assert!(why.contains("`role` claim"), "{why}");
        let mut several = claims("a", "auditor", "G09");
        several["role"] = json!(["auditor", "operator"]);
        let why = permission_denied(verify(&sign(&ec_key("ec-1"), &several)));
        assert!(why.contains("several hoso roles"), "{why}");
        let why = permission_denied(verify(&sign(&ec_key("ec-1"), &claims("a", "desk_officer", ""))));
        assert!(why.contains("`agency` claim") && why.contains("desk_officer"), "{why}");
    }

    #[test]
    fn roles_and_units_come_from_the_configured_claims_and_role_names() {
        let mut config = config();
        config.subject_claim = "preferred_username".to_owned();
        config.role_claim = "realm_access.roles".to_owned();
        config.agency_claim = "ma_don_vi".to_owned();
        config.roles = BTreeMap::from([("mot-cua".to_owned(), "desk_officer".to_owned())]);
        let now = jsonwebtoken::get_current_timestamp();
        let token = sign(
            &ec_key("ec-1"),
            &json!({
                "iss": ISSUER, "aud": [AUDIENCE, "account"], "exp": now + 60, "sub": "f3a1",
                "preferred_username": "tn.binh", "ma_don_vi": "G09.20",
                "realm_access": {"roles": ["offline_access", "mot-cua"]},
            }),
        );
        let caller = Verifier::new(&config).verify(&published(), &token).unwrap();
        assert_eq!(caller.subject, "tn.binh");
        assert_eq!(caller.role, Role::DeskOfficer);
        assert_eq!(caller.agency, "G09.20");
        // With a mapping, hoso's own names are not roles unless mapped.
        let token = sign(
            &ec_key("ec-1"),
            &json!({"iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "preferred_username": "x",
                    "realm_access": {"roles": ["operator"]}}),
        );
        let why = permission_denied(Verifier::new(&config).verify(&published(), &token));
        assert!(why.contains("mot-cua"), "{why}");
    }

    #[test]
    fn shared_secret_and_unsigned_tokens_are_refused() {
        let secret = EncodingKey::from_secret(b"a secret someone shared").unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("ec-1".to_owned());
        let token = jsonwebtoken::encode(&header, &claims("a", "operator", ""), &secret).unwrap();
        let why = unauthenticated(verify(&token));
        assert!(why.contains("HS256") && why.contains("public-key"), "{why}");
        let unsigned = format!(
            "{}.{}.",
            base64_url(br#"{"alg":"none","kid":"ec-1"}"#),
            base64_url(&serde_json::to_vec(&claims("a", "operator", "")).unwrap())
        );
        let why = unauthenticated(verify(&unsigned));
        assert!(why.contains("well-formed JWT"), "{why}");
        assert!(!looks_like_jwt(&crate::auth::new_token()));
    }

    #[test]
    fn a_jwks_is_checked_key_by_key() {
        let err = format!("{:#}", SigningKeys::parse("{\"keys\": 3}", "idp.json").err().unwrap());
        assert!(err.contains("idp.json is not a JWKS document"), "{err}");
        let hmac = r#"{"keys": [{"kty": "oct", "kid": "s", "k": "c2VjcmV0"}]}"#;
        let err = format!("{:#}", SigningKeys::parse(hmac, "idp.json").err().unwrap());
        assert!(
            err.contains("keys[0] (kid \"s\")") && err.contains("shared secret"),
            "{err}"
        );
        let broken = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "e", "x": "AA", "y": "AA"}]}"#;
        let err = format!("{:#}", SigningKeys::parse(broken, "idp.json").err().unwrap());
        assert!(err.contains("keys[0] (kid \"e\") is not a usable public key"), "{err}");
        let mut set: serde_json::Value = serde_json::from_str(&jwks(&[&ec_key("ec-1"), &rsa_key("enc-1")])).unwrap();
        set["keys"][1]["use"] = json!("enc");
        let keys = SigningKeys::parse(&set.to_string(), "idp.json").unwrap();
        assert_eq!(keys.len(), 1, "the encryption key is left out");
        let err = format!("{:#}", SigningKeys::parse(r#"{"keys": []}"#, "idp.json").err().unwrap());
        assert!(err.contains("idp.json has no signing key"), "{err}");
    }

    #[test]
    fn a_jwks_url_must_be_https_unless_on_the_loopback() {
        let mut config = config();
        config.jwks_file = None;
        for (url, ok) in [
            (
                "https://sso.example.gov.vn/realms/hcc/protocol/openid-connect/certs",
                true,
            ),
            ("http://127.0.0.1:8080/jwks", true),
            ("http://localhost/jwks", true),
            ("http://sso.example.gov.vn/jwks", false),
            ("ftp://sso.example.gov.vn/jwks", false),
        ] {
            config.jwks_url = Some(url.to_owned());
            assert_eq!(KeySource::from_config(&config).is_ok(), ok, "{url}");
        }
    }
}
