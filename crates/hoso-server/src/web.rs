//! Browser desks: grpc-web and CORS, so that a web desk application calls the API from a browser
//! without a proxy (`[web] allowed_origins`; off by default).
//!
//! The CORS layer answers preflight requests for the allowed origins and marks their answers
//! readable; grpc-web requests are then translated to gRPC, so the bearer token, the role matrix
//! and every limit apply to them exactly as to gRPC clients.

use std::time::Duration;

use anyhow::Result;
use tonic::codegen::http::{HeaderName, Method};
use tonic_web::GrpcWebLayer;
use tower::util::Either;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::WebConfig;

/// grpc-web behind CORS when browser desks are on; nothing otherwise.
pub type Layer = Either<tower_layer::Stack<GrpcWebLayer, CorsLayer>, tower_layer::Identity>;

/// The request headers a web desk sends: the bearer token, the grpc-web client's own headers and
/// the deadline.
pub const ALLOWED_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
];

/// The answer headers a web desk must read: the gRPC status, its message and its details (when
/// a refusal names fields, they travel there).
pub const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// How long a browser may keep a preflight answer: a day (browsers cap it lower).
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The layer for `web`: an error names a bad origin.
pub fn layer(web: &WebConfig) -> Result<Layer> {
    if !web.enabled() {
        return Ok(Either::Right(tower_layer::Identity::new()));
    }
    let origins = web.origins()?;
    tracing::info!(origins = ?web.allowed_origins, "browser desks: grpc-web and CORS for these origins");
    // No credentials mode: the bearer token is a header the page sets, never a cookie.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(PREFLIGHT_MAX_AGE);
    Ok(Either::Left(tower_layer::Stack::new(GrpcWebLayer::new(), cors)))
}
