//! The connector's configuration file (TOML): where the portal is and how to prove who we are to
//! it, where the hoso server is, and how hard to try. Secrets are named by a file or an
//! environment variable, never written in the file itself, and never printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The configuration, as read from the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The portal's dossier-sync endpoint: an https:// URL (http:// only with
    /// `allow_insecure_http`).
    pub endpoint: String,
    /// Lets `endpoint` be plain http://: for tests and development only.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// A CA certificate (PEM) to trust the portal's certificate by, instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How the connector proves itself to the portal.
    pub credentials: Credentials,
    /// The hoso server, and the connector's own token there (an integration account).
    #[serde(default)]
    pub hoso: HosoServer,
    /// The feed consumer's name: its checkpoint is kept in the log as `feed-consumer-<name>`.
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// Where records set aside are kept (one file per dossier) and resend requests are left.
    pub state_dir: PathBuf,
    /// Failed sends of one record before it is set aside.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The first wait between two sends of a record, in milliseconds; doubled on each failure.
    #[serde(default = "default_backoff_min_ms")]
    pub backoff_min_ms: u64,
    /// The longest wait between two sends of a record, in milliseconds.
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// How long to wait for the portal's answer to one record, in milliseconds.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Dossiers sent at once (each dossier has at most one record in flight).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

/// The portal's credentials: a bearer token, or a user name and password (HTTP basic).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The bearer token.
    pub bearer_token: Option<Secret>,
    /// The basic-auth user name (not secret).
    pub basic_user: Option<String>,
    /// The basic-auth password.
    pub basic_password: Option<Secret>,
}

/// Where a secret is read from: a file (its first line) or an environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    /// A file holding the secret.
    pub file: Option<PathBuf>,
    /// An environment variable holding it.
    pub env: Option<String>,
}

/// The hoso server the connector follows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HosoServer {
    /// Its address (https:// for TLS).
    #[serde(default = "default_server")]
    pub server: String,
    /// A CA certificate (PEM) to trust the server's certificate by, for https://.
    pub ca_cert: Option<PathBuf>,
    /// The connector's bearer token there (an integration account's).
    #[serde(default = "default_hoso_token")]
    pub token: Secret,
}

impl Default for HosoServer {
    fn default() -> Self {
        HosoServer {
            server: default_server(),
            ca_cert: None,
            token: default_hoso_token(),
        }
    }
}

fn default_server() -> String {
    "http://127.0.0.1:50051".to_owned()
}
fn default_hoso_token() -> Secret {
    Secret {
        file: None,
        env: Some("HOSO_TOKEN".to_owned()),
    }
}
fn default_consumer() -> String {
    "national-portal".to_owned()
}
fn default_max_attempts() -> u32 {
    5
}
fn default_backoff_min_ms() -> u64 {
    500
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_max_in_flight() -> usize {
    8
}

impl Config {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the portal-sync configuration {}", path.display()))?;
        let config: Config = toml::from_str(&text)
            .with_context(|| format!("the portal-sync configuration {} is not valid", path.display()))?;
        config.check()?;
        Ok(config)
    }

    /// Checks what the types alone do not.
    pub fn check(&self) -> Result<()> {
        let uri: http::Uri = self
            .endpoint
            .parse()
            .with_context(|| format!("endpoint {:?} is not a URL", self.endpoint))?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_insecure_http => {}
            Some("http") => bail!(
                "endpoint {:?} is plain http://: the portal is reached over https:// (set allow_insecure_http = true only for tests and development)",
                self.endpoint
            ),
            _ => bail!("endpoint {:?} must start with https://", self.endpoint),
        }
        let c = &self.credentials;
        match (&c.bearer_token, &c.basic_user, &c.basic_password) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            _ => bail!(
                "[credentials] needs either bearer_token, or basic_user with basic_password (each secret as {{ file = \"...\" }} or {{ env = \"...\" }})"
            ),
        }
        if !(1..=100).contains(&self.max_attempts) {
            bail!("max_attempts must be between 1 and 100; it is {}", self.max_attempts);
        }
        if self.backoff_min_ms == 0 || self.backoff_min_ms > self.backoff_max_ms {
            bail!("backoff_min_ms must be above 0 and at most backoff_max_ms");
        }
        if self.request_timeout_ms == 0 {
            bail!("request_timeout_ms must be above 0");
        }
        if !(1..=256).contains(&self.max_in_flight) {
            bail!("max_in_flight must be between 1 and 256; it is {}", self.max_in_flight);
        }
        let name_ok = !self.consumer.is_empty()
            && self.consumer.len() <= 64
            && self
                .consumer
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'));
        if !name_ok {
            bail!(
                "consumer {:?} is not a feed consumer name (lower-case letters, digits, '.', '_', '-'; at most 64)",
                self.consumer
            );
        }
        Ok(())
    }

    /// The wait for the portal's answer to one record.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The wait before send number `attempt + 1` of a record (`attempt` failed, from 1):
    /// doubling from `backoff_min_ms` up to `backoff_max_ms`, with up to a quarter of random
    /// jitter so that many dossiers failing together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .backoff_min_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(self.backoff_max_ms);
        Duration::from_millis(base - fastrand::u64(0..=base / 4))
    }
}

impl Secret {
    /// Reads the secret; `what` names it in errors (never its value).
    pub fn read(&self, what: &str) -> Result<String> {
        let value = match (&self.file, &self.env) {
            (Some(file), None) => std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {what} from {}", file.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            (None, Some(var)) => {
                std::env::var(var).with_context(|| format!("{what}: environment variable {var} is not set"))?
            }
            _ => bail!("{what} needs exactly one of file = \"...\" or env = \"...\""),
        };
        if value.is_empty() {
            bail!("{what} is empty");
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<Config> {
        let text = format!(
            "endpoint = \"https://portal.example/api/dossier-sync\"\nstate_dir = \"/tmp/x\"\n{extra}\n[credentials]\nbearer_token = {{ env = \"PORTAL_TOKEN\" }}\n"
        );
        let config: Config = toml::from_str(&text)?;
        config.check()?;
        Ok(config)
    }

    #[test]
    fn plain_http_is_refused_unless_allowed_explicitly() {
        let text = "endpoint = \"http://portal.example/x\"\nstate_dir = \"/tmp/x\"\n[credentials]\nbearer_token = { env = \"T\" }\n";
        let plain: Config = toml::from_str(text).unwrap();
        let err = plain.check().unwrap_err().to_string();
        assert!(err.contains("allow_insecure_http"), "{err}");
        let allowed = Config {
            allow_insecure_http: true,
            ..plain
        };
        allowed.check().unwrap();
    }

    #[test]
    fn the_defaults_and_the_backoff_bounds() {
        let config = config("").unwrap();
        assert_eq!(config.consumer, "national-portal");
        assert_eq!(config.hoso.token.env.as_deref(), Some("HOSO_TOKEN"));
        assert_eq!(config.max_attempts, 5);
        for attempt in 1..40 {
            let wait = config.backoff(attempt).as_millis() as u64;
            let base = (500u64 << (attempt - 1).min(30)).min(60_000);
            assert!(wait <= base && wait >= base - base / 4, "attempt {attempt}: {wait}");
        }
    }

    #[test]
    fn half_given_credentials_and_unknown_keys_are_refused_by_name() {
        let text = "endpoint = \"https://p/x\"\nstate_dir = \"/tmp/x\"\n[credentials]\nbasic_user = \"hoso\"\n";
        let err = toml::from_str::<Config>(text).unwrap().check().unwrap_err().to_string();
        assert!(err.contains("basic_password"), "{err}");
        let err = config("max_attempt = 3").unwrap_err();
        assert!(format!("{err:#}").contains("max_attempt"), "{err:#}");
    }
}
