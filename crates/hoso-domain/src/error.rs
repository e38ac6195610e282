//! The crate's errors, one enum per kind of operation because callers react differently:
//! [`DomainError`] (a command broke a rule: the officer fixes the input), [`DecodeError`] (stored
//! history cannot be read: an operator investigates) and [`CalendarError`] (calendar data or
//! office-hour configuration is wrong or missing: an administrator loads or fixes it).

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

pub use crate::calendar::CalendarError;
use crate::calendar::to_local;
use crate::portal::PortalStatus;

/// A command was rejected because it breaks a rule of the dossier lifecycle; nothing is written.
///
/// Every message names the rule and, where there is one, the offending field, in words an officer
/// at the desk can act on. [`DomainError::rule`] gives a stable machine name for the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A command other than receiving was sent for a dossier that has not been received.
    #[error("the dossier has not been received yet; receive it first")]
    NotReceived,
    /// A second receipt was attempted for the same dossier.
    #[error("the dossier has already been received")]
    AlreadyReceived,
    /// The dossier is closed (result returned, withdrawn or refused at intake); only a satisfaction
    /// rating after return or a national-portal sync record may follow.
    #[error(
        "the dossier is closed ({status}); only a satisfaction rating after return or a national portal sync may be recorded"
    )]
    Closed {
        /// The closing status.
        status: PortalStatus,
    },
    /// A field is missing, empty, out of range or not in the expected shape.
    #[error("{field}: {problem}")]
    InvalidField {
        /// The command field, as named in the command type.
        field: &'static str,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// `occurred_at` is later than the current time plus the allowed clock skew.
    #[error("occurred_at {} is in the future (now {})", Local(*occurred_at), Local(*now))]
    OccurredInFuture {
        /// The business time given by the desk.
        occurred_at: DateTime<Utc>,
        /// The current time of the decision.
        now: DateTime<Utc>,
    },
    /// `occurred_at` is earlier than the dossier's previous event.
    #[error(
        "occurred_at {} is before the dossier's previous event at {}",
        Local(*occurred_at),
        Local(*previous)
    )]
    OccurredBeforePreviousEvent {
        /// The business time given by the desk.
        occurred_at: DateTime<Utc>,
        /// Business time of the dossier's latest event.
        previous: DateTime<Utc>,
    },
    /// The date inside the receipt code differs from the local date of receipt.
    #[error("receipt_code: its date {receipt_date} differs from the date of receipt {received_on}")]
    ReceiptDateMismatch {
        /// Date encoded in the receipt code.
        receipt_date: NaiveDate,
        /// Local (UTC+7) date of `occurred_at`.
        received_on: NaiveDate,
    },
    /// Processing has ended (approved or stopped); no further step, supplement request or apology
    /// is possible.
    #[error("processing has already finished (approved or stopped)")]
    ProcessingFinished,
    /// The result can be returned only once processing has finished (approved or stopped).
    #[error("the result can be returned only after processing has finished (approved or stopped)")]
    ProcessingNotFinished,
    /// A refusal at intake is possible only before any processing step.
    #[error("the dossier can no longer be refused at intake: processing has started")]
    ProcessingStarted,
    /// Processing is paused while the applicant is asked for missing papers.
    #[error("processing is paused: a supplement request is waiting for the applicant")]
    WaitingForSupplement,
    /// A supplement request is already open; record the applicant's supplement first.
    #[error("a supplement request is already open; record the supplement received first")]
    SupplementAlreadyOpen,
    /// A supplement was recorded but none was requested.
    #[error("no supplement request is open for this dossier")]
    NoOpenSupplement,
    /// An e-result, or a digitized result, needs an approved dossier.
    #[error("the dossier has not been approved; an e-result or a digitized result needs approval")]
    NotApproved,
    /// The dossier already has an e-result.
    #[error("an e-result has already been issued for this dossier")]
    EResultAlreadyIssued,
    /// An online payment was recorded for a procedure whose snapshot has no fee.
    #[error("the procedure has no fee; there is nothing to pay online")]
    NoFeeDue,
    /// An online payment would take the total paid above the procedure's fee.
    #[error(
        "amount_vnd: paying {amount_vnd} VND would bring the total paid online to more than the fee of {fee_vnd} VND (already paid {paid_vnd} VND)"
    )]
    Overpayment {
        /// The procedure's fee.
        fee_vnd: i64,
        /// Already paid online.
        paid_vnd: i64,
        /// The rejected amount.
        amount_vnd: i64,
    },
    /// An apology letter's new appointment must be later than the current due date and than any
    /// earlier appointment.
    #[error(
        "new_appointment_at: {} must be after {}",
        Local(*new_appointment_at),
        Local(*must_be_after)
    )]
    AppointmentTooEarly {
        /// The rejected appointment.
        new_appointment_at: DateTime<Utc>,
        /// The current due date, or the previous appointment if later.
        must_be_after: DateTime<Utc>,
    },
    /// A satisfaction rating needs the result to have been returned.
    #[error("satisfaction can be rated only after the result has been returned")]
    NotReturned,
    /// The dossier is already rated; the first rating stands.
    #[error("the dossier has already been rated")]
    AlreadyRated,
    /// The due date computation needs a year that has no loaded holiday notice and is outside the
    /// years a provisional calendar is computed for (1900 to 2199): most likely a mistyped date.
    #[error(
        "no working-day calendar for {year}: provisional calendars cover only 1900 to 2199; check the date, or have an administrator load that year's holiday notice"
    )]
    CalendarUnavailable {
        /// The year without a calendar.
        year: i32,
    },
    /// The procedure code is not in the catalogue in force at the receipt, and the configuration
    /// does not accept procedures outside it.
    #[error(
        "procedure.code: {code} is not in the procedure catalogue (version {version}) in force on {on}; check the code, or ask an administrator to load the decision that publishes it"
    )]
    UnknownProcedure {
        /// The code sent.
        code: String,
        /// The catalogue's version (0: no decision loaded).
        version: u32,
        /// The local date of receipt.
        on: NaiveDate,
    },
    /// A procedure value sent with the receipt differs from the catalogue's.
    #[error(
        "{field}: {declared} differs from the catalogue's {catalogue} (decision {decision}, catalogue version {version}); send only the procedure code, or correct the value"
    )]
    ProcedureMismatch {
        /// The request field.
        field: &'static str,
        /// The value sent, in words.
        declared: String,
        /// The catalogue's value, in words.
        catalogue: String,
        /// The decision in force.
        decision: String,
        /// Its catalogue version.
        version: u32,
    },
    /// The handling agency is not one the catalogue lists for the procedure, or none was given
    /// and the catalogue lists several.
    #[error("handling_agency: {problem} (decision {decision}, catalogue version {version})")]
    AgencyNotListed {
        /// What is wrong, naming the agency and the procedure.
        problem: String,
        /// The decision in force.
        decision: String,
        /// Its catalogue version.
        version: u32,
    },
}

impl DomainError {
    /// A stable, machine-readable name of the broken rule (kebab case), for logs and clients.
    pub fn rule(&self) -> &'static str {
        match self {
            DomainError::NotReceived => "dossier-not-received",
            DomainError::AlreadyReceived => "dossier-already-received",
            DomainError::Closed { .. } => "nothing-after-close",
            DomainError::InvalidField { .. } => "invalid-field",
            DomainError::OccurredInFuture { .. } => "occurred-at-not-in-future",
            DomainError::OccurredBeforePreviousEvent { .. } => "occurred-at-not-before-previous",
            DomainError::ReceiptDateMismatch { .. } => "receipt-code-date-is-receipt-date",
            DomainError::ProcessingFinished => "processing-finished",
            DomainError::ProcessingNotFinished => "return-needs-finished-processing",
            DomainError::ProcessingStarted => "refusal-only-at-intake",
            DomainError::WaitingForSupplement => "paused-for-supplement",
            DomainError::SupplementAlreadyOpen => "one-open-supplement-request",
            DomainError::NoOpenSupplement => "supplement-needs-request",
            DomainError::NotApproved => "e-result-needs-approval",
            DomainError::EResultAlreadyIssued => "one-e-result",
            DomainError::NoFeeDue => "payment-needs-fee",
            DomainError::Overpayment { .. } => "payment-within-fee",
            DomainError::AppointmentTooEarly { .. } => "apology-date-after-due-date",
            DomainError::NotReturned => "rating-after-return",
            DomainError::AlreadyRated => "one-rating",
            DomainError::CalendarUnavailable { .. } => "calendar-loaded",
            DomainError::UnknownProcedure { .. } => "procedure-in-catalogue",
            DomainError::ProcedureMismatch { .. } => "procedure-values-from-catalogue",
            DomainError::AgencyNotListed { .. } => "handling-agency-in-catalogue",
        }
    }

    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> DomainError {
        DomainError::InvalidField {
            field,
            problem: problem.into(),
        }
    }
}

impl From<CalendarError> for DomainError {
    fn from(err: CalendarError) -> DomainError {
        match err {
            CalendarError::YearNotLoaded { year } => DomainError::CalendarUnavailable { year },
            // Only lookups happen during a decision; table and office-hour errors are raised when
            // the calendar is built. Should one surface anyway, the year is unknown to the officer.
            other => DomainError::InvalidField {
                field: "calendar",
                problem: other.to_string(),
            },
        }
    }
}

/// Stored history could not be decoded into a [`crate::DossierEvent`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The stored event type name is not one this crate knows.
    #[error("unknown event type {event_type:?}")]
    UnknownEventType {
        /// The stored name.
        event_type: String,
    },
    /// The stored schema version is newer than this crate, or zero.
    #[error("{event_type} schema version {version} is not supported (current is {current})")]
    UnsupportedVersion {
        /// The stored name.
        event_type: String,
        /// The stored version.
        version: u32,
        /// The newest version this crate reads.
        current: u32,
    },
    /// An upcaster could not convert the stored data to the next version.
    #[error("{event_type} version {from_version} cannot be upcast: {problem}")]
    Upcast {
        /// The stored name.
        event_type: String,
        /// The version the failing upcaster reads.
        from_version: u32,
        /// What is wrong with the stored data.
        problem: String,
    },
    /// The (upcast) data does not match the current schema.
    #[error("{event_type} data does not match schema version {version}: {source}")]
    Malformed {
        /// The stored name.
        event_type: String,
        /// The current version the data was checked against.
        version: u32,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// Displays an instant in Vietnam local time, as officers read it.
struct Local(DateTime<Utc>);

impl fmt::Display for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (UTC+7)", to_local(self.0).format("%Y-%m-%d %H:%M"))
    }
}
