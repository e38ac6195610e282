//! Reaching a running server: the connection flags every client command shares, TLS, and the
//! bearer token sent with every request.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Request, Status};

/// How to reach the server.
#[derive(clap::Args, Clone)]
pub struct ConnectArgs {
    /// The server's address (https:// for TLS); also HOSO_SERVER.
    #[arg(long, env = "HOSO_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Bearer token; also HOSO_TOKEN (preferred: a flag shows in the process list).
    #[arg(long, env = "HOSO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// CA certificate (PEM) to trust the server's certificate by, for https://.
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require mutual TLS.
    #[arg(long, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "client_cert")]
    client_key: Option<PathBuf>,
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A connection that sends a bearer token with every request.
pub type Authorized = InterceptedService<Channel, Bearer>;

impl ConnectArgs {
    /// The bearer token given by --token or HOSO_TOKEN.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The server's address as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The same settings for another server (one more server over the same record).
    pub fn for_server(&self, server: &str) -> ConnectArgs {
        ConnectArgs {
            server: server.to_owned(),
            ..self.clone()
        }
    }
}

/// A new connection to the server (each call opens its own HTTP/2 connection).
pub async fn channel(args: &ConnectArgs) -> Result<Channel> {
    let mut endpoint = Channel::from_shared(args.server.clone())
        .with_context(|| format!("--server {:?} is not a URL like http://127.0.0.1:50051", args.server))?;
    if args.server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &args.ca_cert {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read --ca-cert {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
            let cert = std::fs::read(cert).with_context(|| format!("cannot read --client-cert {}", cert.display()))?;
            let key = std::fs::read(key).with_context(|| format!("cannot read --client-key {}", key.display()))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls).context("the TLS settings are not usable")?;
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {}; is `hoso serve` running?", args.server))
}

/// The interceptor that sends `token`.
pub fn bearer(token: &str) -> Result<Bearer> {
    let value = format!("Bearer {}", token.trim())
        .parse()
        .context("the token holds characters that cannot be sent in a header")?;
    Ok(Bearer(value))
}

/// The hint given when no token is at hand.
pub const NO_TOKEN: &str = "no bearer token: set HOSO_TOKEN (or --token); `hoso token new` makes one, and a server without a tokens_file writes development tokens to <data dir>/dev-tokens.txt";

/// A new connection to the server that sends the token of --token or HOSO_TOKEN.
pub async fn connect(args: &ConnectArgs) -> Result<Authorized> {
    let channel = channel(args).await?;
    let token = args.token.as_deref().context(NO_TOKEN)?;
    Ok(InterceptedService::new(channel, bearer(token)?))
}

/// The server's refusal in words, with its gRPC code.
pub fn status_error(status: Status) -> anyhow::Error {
    anyhow::anyhow!("the server answered {:?}: {}", status.code(), status.message())
}

/// The single-threaded runtime a client command runs on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
