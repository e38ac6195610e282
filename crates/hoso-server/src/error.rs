//! The server's errors and the one function that maps them to gRPC statuses.
//!
//! Classified by how a client handles them: a bad request (INVALID_ARGUMENT, with every field in
//! a `google.rpc.BadRequest`), a broken rule (FAILED_PRECONDITION, with the rule's name as the
//! `google.rpc.ErrorInfo` reason), a version conflict (ABORTED, with the actual version), an
//! unknown dossier (NOT_FOUND), a refused caller (UNAUTHENTICATED, PERMISSION_DENIED), a store that
//! refuses writes, a store's database out of reach or a projection catching up (UNAVAILABLE), a dossier that kept changing
//! (ABORTED), a stopped projection (DATA_LOSS); anything else is INTERNAL, logged and never
//! echoed. Every handler's error goes through [`to_status`].

use hoso_api::convert::InvalidRequest;
use hoso_domain::{DecodeError, DomainError};
use hoso_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `google.rpc.ErrorInfo` domain of our errors.
pub const ERROR_DOMAIN: &str = "hoso.v1";

/// Why a request failed.
#[derive(Debug)]
pub enum ServiceError {
    /// Fields are missing or malformed.
    Invalid(InvalidRequest),
    /// The domain refused the command.
    Rule(DomainError),
    /// No such dossier.
    NotFound(String),
    /// The dossier moved on since the version the client expected.
    Conflict {
        /// What the client expected.
        expected: u64,
        /// The dossier's version now (`None`: not received yet).
        actual: Option<u64>,
    },
    /// The command id was already used by a different command.
    CommandIdReused(String),
    /// Missing or unknown token.
    Unauthenticated(String),
    /// The caller may not do this.
    PermissionDenied(String),
    /// The store failed or refused.
    Store(StoreError),
    /// A stored event cannot be read.
    Decode(DecodeError),
    /// A command of an imported history broke a rule.
    ImportRule {
        /// Its index in the history.
        index: usize,
        /// The rule.
        error: DomainError,
    },
    /// An imported dossier's receipt code is taken by another history.
    ImportConflict(String),
    /// The server could not render a document it computed (its own fault, never the caller's).
    Render {
        /// What it was rendering, for the log.
        what: &'static str,
        /// Why it failed, for the log only.
        cause: String,
    },
    /// The dossier kept changing under the command, attempt after attempt: the caller sends it
    /// again (ABORTED).
    Contention(String),
    /// The server cannot answer yet (the projection is catching up): the caller retries shortly
    /// (UNAVAILABLE).
    Unavailable(String),
    /// The live projection stopped at an event it cannot apply: retrying cannot help
    /// (DATA_LOSS or FAILED_PRECONDITION, see [`crate::projection::Stopped`]).
    ProjectionStopped(crate::projection::Stopped),
    /// A request the server's state does not allow, said in words only (no rule name).
    Refused(String),
    /// The server broke its own contract (its fault, never the caller's): logged, not echoed.
    Internal(String),
    /// A request the server's state does not allow (other than a dossier rule), with the
    /// rule's stable name.
    Precondition {
        /// The rule's stable name, the `google.rpc.ErrorInfo` reason.
        reason: &'static str,
        /// What is wrong and what to do, for the caller.
        message: String,
    },
}

impl ServiceError {
    /// A request with one malformed field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> ServiceError {
        ServiceError::Invalid(InvalidRequest {
            violations: vec![hoso_api::convert::FieldViolation {
                field: field.into(),
                description: description.into(),
            }],
        })
    }

    /// Names the command of an imported history an error is about: fields get the command's
    /// path (`commands[3].record_online_payment.amount_vnd`), rules its index.
    pub fn in_command(self, index: usize, variant: &str) -> ServiceError {
        let path = |field: &str| format!("commands[{index}].{variant}.{field}");
        match self {
            ServiceError::Invalid(mut invalid) => {
                for v in &mut invalid.violations {
                    v.field = path(&v.field);
                }
                ServiceError::Invalid(invalid)
            }
            ServiceError::Rule(error) => match domain_field(&error) {
                Some(field) => ServiceError::Invalid(InvalidRequest {
                    violations: vec![hoso_api::convert::FieldViolation {
                        field: path(field),
                        description: error.to_string(),
                    }],
                }),
                None => ServiceError::ImportRule { index, error },
            },
            other => other,
        }
    }
}

impl From<InvalidRequest> for ServiceError {
    fn from(err: InvalidRequest) -> Self {
        ServiceError::Invalid(err)
    }
}

impl From<DomainError> for ServiceError {
    fn from(err: DomainError) -> Self {
        ServiceError::Rule(err)
    }
}

impl From<StoreError> for ServiceError {
    fn from(err: StoreError) -> Self {
        ServiceError::Store(err)
    }
}

impl From<DecodeError> for ServiceError {
    fn from(err: DecodeError) -> Self {
        ServiceError::Decode(err)
    }
}

/// The most fields an INVALID_ARGUMENT names; the message says how many more there were.
const MAX_VIOLATIONS: usize = 20;

/// The longest status message, in bytes: status messages and details travel in HTTP/2 headers,
/// which clients refuse beyond their limit (16 KiB by default), turning our answer into
/// RESOURCE_EXHAUSTED or a protocol error.
const MAX_MESSAGE_BYTES: usize = 2_048;

/// A message cut to [`MAX_MESSAGE_BYTES`] on a character boundary, with an ellipsis.
fn bounded(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

fn bad_request(violations: &[(String, String)]) -> Status {
    let mut details = ErrorDetails::new();
    for (field, description) in violations.iter().take(MAX_VIOLATIONS) {
        details.add_bad_request_violation(field.clone(), bounded(description.clone()));
    }
    let mut message = violations
        .iter()
        .take(MAX_VIOLATIONS)
        .map(|(f, d)| format!("{f}: {d}"))
        .collect::<Vec<_>>()
        .join("; ");
    if violations.len() > MAX_VIOLATIONS {
        message.push_str(&format!(
            "; and {} more fields: correct these first",
            violations.len() - MAX_VIOLATIONS
        ));
    }
    Status::with_error_details(Code::InvalidArgument, bounded(message), details)
}

fn with_reason(code: Code, message: String, reason: &str, metadata: Vec<(&str, String)>) -> Status {
    let details = ErrorDetails::with_error_info(
        reason,
        ERROR_DOMAIN,
        metadata
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<std::collections::HashMap<_, _>>(),
    );
    Status::with_error_details(code, bounded(message), details)
}

/// The field a domain error is about, for errors that concern the shape of one field rather than
/// the dossier's state.
fn domain_field(err: &DomainError) -> Option<&'static str> {
    match err {
        DomainError::InvalidField { field, .. } => Some(field),
        DomainError::OccurredInFuture { .. } => Some("command.occurred_at"),
        DomainError::ReceiptDateMismatch { .. } => Some("receipt_code"),
        _ => None,
    }
}

/// Maps an error to the status the client receives. The only place that does.
pub fn to_status(err: ServiceError) -> Status {
    match err {
        ServiceError::Invalid(err) => bad_request(
            &err.violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect::<Vec<_>>(),
        ),
        ServiceError::Rule(err) => match domain_field(&err) {
            Some(field) => {
                let message = err.to_string();
                let description = message
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(&message)
                    .to_owned();
                bad_request(&[(field.to_owned(), description)])
            }
            None => with_reason(
                Code::FailedPrecondition,
                err.to_string(),
                err.rule(),
                vec![("rule", err.rule().to_owned())],
            ),
        },
        ServiceError::NotFound(what) => Status::not_found(bounded(what)),
        ServiceError::Conflict { expected, actual } => {
            let actual_text = actual.map_or("none (not received)".to_owned(), |v| v.to_string());
            with_reason(
                Code::Aborted,
                format!(
                    "the dossier is at version {actual_text}, not the expected version {expected}: \
                     reload it and decide again"
                ),
                "version-conflict",
                vec![
                    ("expected_version", expected.to_string()),
                    ("actual_version", actual.map_or(String::new(), |v| v.to_string())),
                ],
            )
        }
        ServiceError::CommandIdReused(message) => bad_request(&[("command.command_id".to_owned(), message)]),
        ServiceError::Unauthenticated(message) => Status::unauthenticated(bounded(message)),
        ServiceError::PermissionDenied(message) => Status::permission_denied(bounded(message)),
        ServiceError::Store(err) => match err {
            StoreError::WritesRefused { .. } | StoreError::Closed => {
                // Every command says the same while the disk is full: once per period is enough.
                if let Some(suppressed) = crate::ratelimit::WRITES_REFUSED.allow() {
                    tracing::error!(error = %err, suppressed, "the store refuses writes");
                }
                Status::unavailable(
                    "the store refuses writes after a disk failure (the operator has been told; the server's status says what is done about it); retry later",
                )
            }
            StoreError::Unavailable(_) => {
                // Every request says the same during a failover: once per period is enough.
                if let Some(suppressed) = crate::ratelimit::STORE_UNAVAILABLE.allow() {
                    tracing::warn!(error = %err, suppressed, "the store's database is unavailable");
                }
                Status::unavailable(
                    "the event store's database cannot be reached (a restart or a failover; the operator has been told); send the request again, a command with the same command id: it is recorded at most once",
                )
            }
            StoreError::EventTooLarge { .. }
            | StoreError::TooManyEvents { .. }
            | StoreError::InvalidStreamId { .. } => Status::invalid_argument(bounded(err.to_string())),
            other => {
                tracing::error!(error = %other, "store failure");
                Status::internal("internal error; the operator has been told (see the server log)")
            }
        },
        ServiceError::ImportRule { index, error } => with_reason(
            Code::FailedPrecondition,
            format!("commands[{index}]: {error}"),
            error.rule(),
            vec![("rule", error.rule().to_owned()), ("command_index", index.to_string())],
        ),
        ServiceError::ImportConflict(message) => Status::already_exists(bounded(message)),
        ServiceError::Precondition { reason, message } => with_reason(
            Code::FailedPrecondition,
            message,
            reason,
            vec![("rule", reason.to_owned())],
        ),
        ServiceError::Render { what, cause } => {
            tracing::error!(what, cause = %cause, "cannot render a document");
            Status::internal(format!(
                "internal error: the {what} cannot be rendered; the operator has been told (see the server log)"
            ))
        }
        ServiceError::Contention(message) => Status::aborted(bounded(message)),
        ServiceError::Unavailable(message) => Status::unavailable(bounded(message)),
        ServiceError::ProjectionStopped(stopped) => {
            let message = bounded(stopped.message());
            if stopped.data_loss {
                Status::data_loss(message)
            } else {
                Status::failed_precondition(message)
            }
        }
        ServiceError::Refused(message) => Status::failed_precondition(bounded(message)),
        ServiceError::Internal(cause) => {
            tracing::error!(cause = %cause, "internal error");
            Status::internal("internal error; the operator has been told (see the server log)")
        }
        ServiceError::Decode(err) => {
            tracing::error!(error = %err, "a stored event cannot be decoded");
            Status::internal("internal error: a stored event cannot be read; the operator has been told")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_the_server_cannot_render_is_internal_and_its_cause_is_not_echoed() {
        let status = to_status(ServiceError::Render {
            what: "disclosure",
            cause: "cannot write the xlsx workbook: String exceeds Excel's limit".to_owned(),
        });
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("disclosure"), "{}", status.message());
        assert!(
            !status.message().contains("Excel"),
            "the cause is echoed: {}",
            status.message()
        );
    }
}
