//! Every INTERNAL the server answers is logged at ERROR, wherever it was made (our handlers,
//! tonic, a generated service), so that an operator hears of each fault a client saw.
//!
//! Statuses answered before a response body starts (every unary error, and a streaming call
//! refused before its first message) travel in the response headers, where this layer reads them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tower_layer::Layer;
use tower_service::Service;

/// Wraps services in [`LogInternal`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogInternalLayer;

impl<S> Layer<S> for LogInternalLayer {
    type Service = LogInternal<S>;

    fn layer(&self, inner: S) -> LogInternal<S> {
        LogInternal(inner)
    }
}

/// Logs responses whose `grpc-status` header is 13 (INTERNAL), with the method and message.
#[derive(Debug, Clone)]
pub(crate) struct LogInternal<S>(S);

impl<S, B, ResBody> Service<http::Request<B>> for LogInternal<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await?;
            let headers = response.headers();
            if headers.get("grpc-status").is_some_and(|code| code.as_bytes() == b"13") {
                let message = headers
                    .get("grpc-message")
                    .and_then(|m| m.to_str().ok())
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect::<String>();
                tracing::error!(%method, %message, "answered INTERNAL");
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A service that answers every request with this grpc-status.
    #[derive(Clone)]
    struct Answers(&'static str);

    impl Service<http::Request<()>> for Answers {
        type Response = http::Response<()>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            let mut response = http::Response::new(());
            response.headers_mut().insert("grpc-status", self.0.parse().unwrap());
            response.headers_mut().insert("grpc-message", "boom".parse().unwrap());
            std::future::ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn an_internal_answer_is_logged_at_error_and_others_are_not() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        for code in ["3", "13"] {
            let request = http::Request::builder()
                .uri("/hoso.v1.DeskService/ReceiveDossier")
                .body(())
                .unwrap();
            LogInternalLayer.layer(Answers(code)).call(request).await.unwrap();
        }
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.contains("ERROR") && log.contains("answered INTERNAL") && log.contains("ReceiveDossier"),
            "{log}"
        );
    }
}
