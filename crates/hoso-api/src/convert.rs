//! Conversions between `hoso.v1` messages and domain types.
//!
//! Requests become a [`DeskCommand`]: the command header (command id, expected version,
//! correlation id, business time), the dossier it names and the domain [`Command`]. Every field
//! that is missing or not in the expected shape is collected as a [`FieldViolation`] named by its
//! path in the request (`command.occurred_at`, `procedure.statutory_time.unit`), so a client can
//! highlight all of them at once. Shapes the domain owns (codes, amounts, dates against the
//! dossier) are left to the domain, which names its own fields.
//!
//! Values that may hold personal data (the applicant reference) are never echoed in a message.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use hoso_domain::codes::echo;
use hoso_domain::command::{
    DigitizeDossier, FileInput, IssueEResult, PayOnline, ProcedureInput, ProcessDossier, RateSatisfaction,
    ReceiveDossier, ReceiveSupplement, RecordNationalPortalSync, RefuseAtIntake, RequestSupplement, ReturnResult,
    ReuseInput, SendApology, Withdraw,
};
use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use hoso_domain::{
    AgencyCode, ApplicantRef, CalendarRef, CatalogueRef, Channel, Command, CommandKind, DeadlineState, DeadlineView,
    Decision, DossierState, PortalStatus, ProcedureCode, ProcedureEntry, ProcedureSource, StatutoryTime, TimeUnit,
};
use uuid::Uuid;

use crate::pb;

/// A request field that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `command.occurred_at`.
    pub field: String,
    /// What is wrong and what is expected.
    pub description: String,
}

/// Every violation found in one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvalidRequest {
    /// The violations, in field order.
    pub violations: Vec<FieldViolation>,
}

impl InvalidRequest {
    fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// `Ok(value)` when nothing was found wrong.
    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, InvalidRequest> {
        if self.violations.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl std::fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidRequest {}

/// How a request names a dossier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DossierKey {
    /// By the id returned at receipt.
    Id(Uuid),
    /// By the code printed on the receipt.
    ReceiptCode(String),
}

/// What every desk command carries besides its own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The client's id of this command; event ids derive from it.
    pub command_id: Uuid,
    /// The dossier version the client last saw, if it asks for a check.
    pub expected_version: Option<u64>,
    /// Ties related commands together; the command id when not given.
    pub correlation_id: String,
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
}

/// A desk request, checked and turned into domain terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskCommand {
    /// The header.
    pub header: Header,
    /// The dossier named; `None` for a receipt, which names it by its new receipt code.
    pub dossier: Option<DossierKey>,
    /// The domain command.
    pub command: Command,
}

/// A desk request that can be turned into a [`DeskCommand`].
pub trait IntoDeskCommand {
    /// Checks the request's shape and converts it.
    fn into_desk_command(self) -> Result<DeskCommand, InvalidRequest>;
}

/// Converts a timestamp, checking its range.
pub fn timestamp_to_utc(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

/// Converts an instant to a timestamp.
pub fn utc_to_timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn required_time(errors: &mut InvalidRequest, field: &str, ts: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    match ts {
        None => {
            errors.add(field, "required: when it happened, as a timestamp");
            DateTime::UNIX_EPOCH
        }
        Some(ts) => timestamp_to_utc(ts).unwrap_or_else(|| {
            errors.add(field, "not a valid timestamp (nanos must be 0 to 999,999,999)");
            DateTime::UNIX_EPOCH
        }),
    }
}

fn parse_uuid(errors: &mut InvalidRequest, field: &str, value: &str, what: &str) -> Uuid {
    match Uuid::parse_str(value) {
        Ok(id) if !id.is_nil() => id,
        _ if value.is_empty() => {
            errors.add(field, format!("required: {what}"));
            Uuid::nil()
        }
        _ => {
            errors.add(field, format!("{} is not {what}", echo(value)));
            Uuid::nil()
        }
    }
}

fn header(errors: &mut InvalidRequest, header: Option<pb::CommandHeader>) -> Header {
    let Some(header) = header else {
        errors.add("command", "required: the command header (command_id and occurred_at)");
        return Header {
            command_id: Uuid::nil(),
            expected_version: None,
            correlation_id: String::new(),
            occurred_at: DateTime::UNIX_EPOCH,
        };
    };
    let command_id = parse_uuid(
        errors,
        "command.command_id",
        &header.command_id,
        "a UUID chosen by the client for this command (reuse it only to retry)",
    );
    let occurred_at = required_time(errors, "command.occurred_at", header.occurred_at.as_ref());
    let correlation_id = if header.correlation_id.is_empty() {
        command_id.to_string()
    } else if header.correlation_id.len() > 128 {
        errors.add("command.correlation_id", "longer than 128 bytes");
        String::new()
    } else {
        header.correlation_id
    };
    Header {
        command_id,
        expected_version: header.expected_version,
        correlation_id,
        occurred_at,
    }
}

/// Converts a dossier reference.
pub fn dossier_key(field: &str, dossier: Option<pb::DossierRef>) -> Result<DossierKey, InvalidRequest> {
    let mut errors = InvalidRequest::default();
    let key = dossier_key_into(&mut errors, field, dossier);
    errors.finish(|| key)
}

fn dossier_key_into(errors: &mut InvalidRequest, field: &str, dossier: Option<pb::DossierRef>) -> DossierKey {
    match dossier.and_then(|d| d.r#ref) {
        Some(pb::dossier_ref::Ref::DossierId(id)) => DossierKey::Id(parse_uuid(
            errors,
            &format!("{field}.dossier_id"),
            &id,
            "a dossier id (the UUID returned at receipt)",
        )),
        Some(pb::dossier_ref::Ref::ReceiptCode(code)) if !code.is_empty() => DossierKey::ReceiptCode(code),
        _ => {
            errors.add(field, "required: the dossier's id or its receipt code");
            DossierKey::ReceiptCode(String::new())
        }
    }
}

fn statutory_time(errors: &mut InvalidRequest, field: &str, time: Option<pb::StatutoryTime>) -> StatutoryTime {
    let Some(time) = time else {
        errors.add(field, "required: the statutory processing time (amount and unit)");
        return StatutoryTime::working_days(0);
    };
    let unit = match pb::TimeUnit::try_from(time.unit) {
        Ok(pb::TimeUnit::WorkingDays) => TimeUnit::WorkingDays,
        Ok(pb::TimeUnit::WorkingHours) => TimeUnit::WorkingHours,
        Ok(pb::TimeUnit::CalendarDays) => TimeUnit::CalendarDays,
        _ => {
            errors.add(
                format!("{field}.unit"),
                "required: working days (1), working hours (2) or calendar days (3)",
            );
            TimeUnit::WorkingDays
        }
    };
    StatutoryTime {
        amount: time.amount,
        unit,
    }
}

/// Converts a time unit to its message value.
pub fn time_unit_to_pb(unit: TimeUnit) -> pb::TimeUnit {
    match unit {
        TimeUnit::WorkingDays => pb::TimeUnit::WorkingDays,
        TimeUnit::WorkingHours => pb::TimeUnit::WorkingHours,
        TimeUnit::CalendarDays => pb::TimeUnit::CalendarDays,
    }
}

fn statutory_time_to_pb(time: StatutoryTime) -> pb::StatutoryTime {
    pb::StatutoryTime {
        amount: time.amount,
        unit: time_unit_to_pb(time.unit).into(),
    }
}

fn non_empty(errors: &mut InvalidRequest, field: &str, value: &str, what: &str) {
    if value.trim().is_empty() {
        errors.add(field, format!("required: {what}"));
    }
}

fn optional(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
}

/// Implements [`IntoDeskCommand`] for a request that names an existing dossier: the header and
/// the dossier reference are checked here, the rest by `$body(request, occurred_at, errors)`.
macro_rules! desk_command {
    ($request:ty, $body:expr) => {
        impl IntoDeskCommand for $request {
            fn into_desk_command(mut self) -> Result<DeskCommand, InvalidRequest> {
                let mut errors = InvalidRequest::default();
                let header = header(&mut errors, self.command.take());
                let dossier = Some(dossier_key_into(&mut errors, "dossier", self.dossier.take()));
                let body: fn($request, DateTime<Utc>, &mut InvalidRequest) -> Command = $body;
                let command = body(self, header.occurred_at, &mut errors);
                errors.finish(|| DeskCommand {
                    header,
                    dossier,
                    command,
                })
            }
        }
    };
}

/// How the API names a desk command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireName {
    /// The `hoso.v1.DeskService` method that records it (`RecordOnlinePayment`).
    pub method: &'static str,
    /// Its field in an import line's `ImportCommand` (`record_online_payment`).
    pub field: &'static str,
}

/// Declares, per command kind, the import line's variant, the desk method and the field name, so
/// that the wire's names for a command are one line (and a new command is a compile error here
/// until it has one).
macro_rules! wire_commands {
    ($($kind:ident => $variant:ident, $method:literal, $field:literal;)*) => {
        /// How the API names commands of `kind`.
        pub fn wire_name(kind: CommandKind) -> WireName {
            match kind {
                $(CommandKind::$kind => WireName { method: $method, field: $field },)*
            }
        }

        impl pb::import_command::Command {
            /// The kind of command this request records.
            pub fn kind(&self) -> CommandKind {
                match self {
                    $(pb::import_command::Command::$variant(_) => CommandKind::$kind,)*
                }
            }

            /// The request's command header.
            pub fn header_mut(&mut self) -> &mut Option<pb::CommandHeader> {
                match self {
                    $(pb::import_command::Command::$variant(r) => &mut r.command,)*
                }
            }
        }

        /// Any of the desk requests (as an import line or [`command_to_pb`] carries it).
        impl IntoDeskCommand for pb::import_command::Command {
            fn into_desk_command(self) -> Result<DeskCommand, InvalidRequest> {
                match self {
                    $(pb::import_command::Command::$variant(r) => r.into_desk_command(),)*
                }
            }
        }
    };
}

wire_commands! {
    ReceiveDossier => ReceiveDossier, "ReceiveDossier", "receive_dossier";
    DigitizeDossier => DigitizeDossier, "DigitizeDossier", "digitize_dossier";
    ProcessDossier => ProcessDossier, "ProcessDossier", "process_dossier";
    RequestSupplement => RequestSupplement, "RequestSupplement", "request_supplement";
    ReceiveSupplement => ReceiveSupplement, "ReceiveSupplement", "receive_supplement";
    IssueEResult => IssueEResult, "IssueEResult", "issue_e_result";
    PayOnline => RecordOnlinePayment, "RecordOnlinePayment", "record_online_payment";
    SendApology => SendApology, "SendApology", "send_apology";
    ReturnResult => ReturnResult, "ReturnResult", "return_result";
    RateSatisfaction => RecordRating, "RecordRating", "record_rating";
    Withdraw => WithdrawDossier, "WithdrawDossier", "withdraw_dossier";
    RefuseAtIntake => RefuseAtIntake, "RefuseAtIntake", "refuse_at_intake";
    RecordNationalPortalSync => MarkSynced, "MarkSynced", "mark_synced";
}

impl pb::import_command::Command {
    /// Names the dossier a request is about (a receipt names its own, by its receipt code).
    pub fn set_dossier(&mut self, dossier: pb::DossierRef) {
        use pb::import_command::Command as Request;
        let slot = match self {
            Request::ReceiveDossier(_) => return,
            Request::DigitizeDossier(r) => &mut r.dossier,
            Request::ProcessDossier(r) => &mut r.dossier,
            Request::RequestSupplement(r) => &mut r.dossier,
            Request::ReceiveSupplement(r) => &mut r.dossier,
            Request::IssueEResult(r) => &mut r.dossier,
            Request::RecordOnlinePayment(r) => &mut r.dossier,
            Request::SendApology(r) => &mut r.dossier,
            Request::ReturnResult(r) => &mut r.dossier,
            Request::RecordRating(r) => &mut r.dossier,
            Request::WithdrawDossier(r) => &mut r.dossier,
            Request::RefuseAtIntake(r) => &mut r.dossier,
            Request::MarkSynced(r) => &mut r.dossier,
        };
        *slot = Some(dossier);
    }
}

impl IntoDeskCommand for pb::ReceiveDossierRequest {
    fn into_desk_command(self) -> Result<DeskCommand, InvalidRequest> {
        let mut errors = InvalidRequest::default();
        let header = header(&mut errors, self.command);
        non_empty(
            &mut errors,
            "receipt_code",
            &self.receipt_code,
            "the code printed on the receipt",
        );
        let procedure = match self.procedure {
            None => {
                errors.add("procedure", "required: the procedure, by its code at least");
                None
            }
            Some(p) => {
                non_empty(
                    &mut errors,
                    "procedure.code",
                    &p.code,
                    "the procedure code, like 1.001234",
                );
                let statutory_time = p
                    .statutory_time
                    .map(|time| statutory_time(&mut errors, "procedure.statutory_time", Some(time)));
                Some(ProcedureInput {
                    code: p.code,
                    name: (!p.name.is_empty()).then_some(p.name),
                    statutory_time,
                    full_online_eligible: p.full_online_eligible,
                    paper_result: p.paper_result,
                    fee_vnd: p.fee_vnd,
                })
            }
        };
        non_empty(
            &mut errors,
            "receiving_desk",
            &self.receiving_desk,
            "the receiving desk's unit code",
        );
        let channel = match pb::Channel::try_from(self.channel) {
            Ok(pb::Channel::InPerson) => Channel::InPerson,
            Ok(pb::Channel::Online) => Channel::Online,
            Ok(pb::Channel::Postal) => Channel::Postal,
            _ => {
                errors.add("channel", "required: in person (1), online (2) or postal (3)");
                Channel::InPerson
            }
        };
        // Never echo this value: a desk might type a name or an identity number by mistake.
        let applicant = match Uuid::parse_str(&self.applicant_ref) {
            Ok(id) if !id.is_nil() => ApplicantRef(id),
            _ => {
                errors.add(
                    "applicant_ref",
                    "must be the applicant's pseudonymous reference (a UUID), never a name or an identity number",
                );
                ApplicantRef(Uuid::nil())
            }
        };
        let occurred_at = header.occurred_at;
        errors.finish(|| DeskCommand {
            header,
            dossier: None,
            command: Command::ReceiveDossier(ReceiveDossier {
                occurred_at,
                receipt_code: self.receipt_code,
                procedure: procedure.expect("a missing procedure is a violation"),
                receiving_desk: self.receiving_desk,
                handling_agency: self.handling_agency,
                channel,
                applicant,
            }),
        })
    }
}

desk_command!(pb::DigitizeDossierRequest, |r, occurred_at, errors| {
    for (i, file) in r.files.iter().enumerate() {
        non_empty(
            errors,
            &format!("files[{i}].component"),
            &file.component,
            "the component's name",
        );
    }
    for (i, reused) in r.reused.iter().enumerate() {
        non_empty(
            errors,
            &format!("reused[{i}].component"),
            &reused.component,
            "the component's name",
        );
        non_empty(
            errors,
            &format!("reused[{i}].source"),
            &reused.source,
            "where the data was reused from",
        );
    }
    Command::DigitizeDossier(DigitizeDossier {
        occurred_at,
        files: r
            .files
            .into_iter()
            .map(|f| FileInput {
                component: f.component,
                content_hash: f.content_hash,
            })
            .collect(),
        reused: r
            .reused
            .into_iter()
            .map(|u| ReuseInput {
                component: u.component,
                source: u.source,
            })
            .collect(),
        result_digitized: r.result_digitized,
    })
});

desk_command!(pb::ProcessDossierRequest, |r, occurred_at, errors| {
    let step = match pb::ProcessingStep::try_from(r.step) {
        Ok(pb::ProcessingStep::Transferred) => ProcessingStep::Transferred,
        Ok(pb::ProcessingStep::Appraised) => ProcessingStep::Appraised,
        Ok(pb::ProcessingStep::Approved) => ProcessingStep::Approved,
        Ok(pb::ProcessingStep::Stopped) => ProcessingStep::Stopped,
        _ => {
            errors.add(
                "step",
                "required: transferred (1), appraised (2), approved (3) or stopped (4)",
            );
            ProcessingStep::Appraised
        }
    };
    Command::ProcessDossier(ProcessDossier {
        occurred_at,
        step,
        // The officer is the caller: the server fills it from the token.
        officer: String::new(),
        to_unit: optional(r.to_unit),
        reason: optional(r.reason),
    })
});

desk_command!(pb::RequestSupplementRequest, |r, occurred_at, errors| {
    let _ = errors;
    Command::RequestSupplement(RequestSupplement {
        occurred_at,
        missing_components: r.missing_components,
        officer: String::new(),
    })
});

desk_command!(pb::ReceiveSupplementRequest, |r, occurred_at, errors| {
    let _ = (r, errors);
    Command::ReceiveSupplement(ReceiveSupplement { occurred_at })
});

desk_command!(pb::IssueEResultRequest, |r, occurred_at, errors| {
    non_empty(errors, "result_id", &r.result_id, "the result document's identifier");
    non_empty(errors, "signer", &r.signer, "the signer's account or certificate");
    Command::IssueEResult(IssueEResult {
        occurred_at,
        result_id: r.result_id,
        content_hash: r.content_hash,
        signer: r.signer,
    })
});

desk_command!(pb::RecordOnlinePaymentRequest, |r, occurred_at, errors| {
    let gateway = match pb::PaymentGateway::try_from(r.gateway) {
        Ok(pb::PaymentGateway::NationalPortal) => PaymentGateway::NationalPortal,
        Ok(pb::PaymentGateway::Provincial) => PaymentGateway::Provincial,
        _ => {
            errors.add(
                "gateway",
                "required: the national portal (1) or the provincial gateway (2)",
            );
            PaymentGateway::NationalPortal
        }
    };
    non_empty(
        errors,
        "transaction_ref",
        &r.transaction_ref,
        "the gateway's transaction reference",
    );
    Command::PayOnline(PayOnline {
        occurred_at,
        amount_vnd: r.amount_vnd,
        gateway,
        transaction_ref: r.transaction_ref,
    })
});

desk_command!(pb::SendApologyRequest, |r, occurred_at, errors| {
    let new_appointment_at = required_time(errors, "new_appointment_at", r.new_appointment_at.as_ref());
    non_empty(errors, "reason", &r.reason, "why the dossier will be late");
    non_empty(errors, "letter_number", &r.letter_number, "the apology letter's number");
    Command::SendApology(SendApology {
        occurred_at,
        reason: r.reason,
        new_appointment_at,
        letter_number: r.letter_number,
    })
});

desk_command!(pb::ReturnResultRequest, |r, occurred_at, errors| {
    let method = match pb::ReturnMethod::try_from(r.method) {
        Ok(pb::ReturnMethod::AtDesk) => ReturnMethod::AtDesk,
        Ok(pb::ReturnMethod::ByPost) => ReturnMethod::ByPost,
        Ok(pb::ReturnMethod::Online) => ReturnMethod::Online,
        _ => {
            errors.add("method", "required: at the desk (1), by post (2) or online (3)");
            ReturnMethod::AtDesk
        }
    };
    Command::ReturnResult(ReturnResult { occurred_at, method })
});

desk_command!(pb::RecordRatingRequest, |r, occurred_at, errors| {
    let rating = match pb::Satisfaction::try_from(r.rating) {
        Ok(pb::Satisfaction::Satisfied) => Satisfaction::Satisfied,
        Ok(pb::Satisfaction::Unsatisfied) => Satisfaction::Unsatisfied,
        _ => {
            errors.add("rating", "required: satisfied (1) or unsatisfied (2)");
            Satisfaction::Satisfied
        }
    };
    Command::RateSatisfaction(RateSatisfaction { occurred_at, rating })
});

desk_command!(pb::WithdrawDossierRequest, |r, occurred_at, errors| {
    non_empty(errors, "reason", &r.reason, "the reason the applicant gave");
    Command::Withdraw(Withdraw {
        occurred_at,
        reason: r.reason,
    })
});

desk_command!(pb::RefuseAtIntakeRequest, |r, occurred_at, errors| {
    non_empty(errors, "reason", &r.reason, "why the dossier is refused");
    Command::RefuseAtIntake(RefuseAtIntake {
        occurred_at,
        reason: r.reason,
        officer: String::new(),
    })
});

desk_command!(pb::MarkSyncedRequest, |r, occurred_at, errors| {
    let status = u8::try_from(r.status)
        .ok()
        .and_then(PortalStatus::from_code)
        .unwrap_or_else(|| {
            errors.add(
                "status",
                format!("{} is not a national portal status code (1-10)", r.status),
            );
            PortalStatus::Received
        });
    Command::RecordNationalPortalSync(RecordNationalPortalSync { occurred_at, status })
});

/// A domain command as the desk request that records it (the inverse of [`IntoDeskCommand`]),
/// with `header` and, for every command but a receipt, the dossier named by `dossier`. Officers
/// named in the command are dropped: the server takes the officer from the caller's token.
pub fn command_to_pb(
    command: &Command,
    header: pb::CommandHeader,
    dossier: Option<pb::DossierRef>,
) -> pb::import_command::Command {
    use pb::import_command::Command as Request;
    let command_header = Some(header);
    match command {
        Command::ReceiveDossier(c) => Request::ReceiveDossier(pb::ReceiveDossierRequest {
            command: command_header,
            receipt_code: c.receipt_code.clone(),
            procedure: Some(pb::Procedure {
                code: c.procedure.code.clone(),
                name: c.procedure.name.clone().unwrap_or_default(),
                statutory_time: c.procedure.statutory_time.map(statutory_time_to_pb),
                full_online_eligible: c.procedure.full_online_eligible,
                paper_result: c.procedure.paper_result,
                fee_vnd: c.procedure.fee_vnd,
            }),
            receiving_desk: c.receiving_desk.clone(),
            handling_agency: c.handling_agency.clone(),
            channel: match c.channel {
                Channel::InPerson => pb::Channel::InPerson,
                Channel::Online => pb::Channel::Online,
                Channel::Postal => pb::Channel::Postal,
            }
            .into(),
            applicant_ref: c.applicant.0.to_string(),
        }),
        Command::DigitizeDossier(c) => Request::DigitizeDossier(pb::DigitizeDossierRequest {
            command: command_header,
            dossier,
            files: c
                .files
                .iter()
                .map(|f| pb::ComponentFile {
                    component: f.component.clone(),
                    content_hash: f.content_hash.clone(),
                })
                .collect(),
            reused: c
                .reused
                .iter()
                .map(|r| pb::ReusedComponent {
                    component: r.component.clone(),
                    source: r.source.clone(),
                })
                .collect(),
            result_digitized: c.result_digitized,
        }),
        Command::ProcessDossier(c) => Request::ProcessDossier(pb::ProcessDossierRequest {
            command: command_header,
            dossier,
            step: match c.step {
                ProcessingStep::Transferred => pb::ProcessingStep::Transferred,
                ProcessingStep::Appraised => pb::ProcessingStep::Appraised,
                ProcessingStep::Approved => pb::ProcessingStep::Approved,
                ProcessingStep::Stopped => pb::ProcessingStep::Stopped,
            }
            .into(),
            to_unit: c.to_unit.clone().unwrap_or_default(),
            reason: c.reason.clone().unwrap_or_default(),
        }),
        Command::RequestSupplement(c) => Request::RequestSupplement(pb::RequestSupplementRequest {
            command: command_header,
            dossier,
            missing_components: c.missing_components.clone(),
        }),
        Command::ReceiveSupplement(_) => Request::ReceiveSupplement(pb::ReceiveSupplementRequest {
            command: command_header,
            dossier,
        }),
        Command::IssueEResult(c) => Request::IssueEResult(pb::IssueEResultRequest {
            command: command_header,
            dossier,
            result_id: c.result_id.clone(),
            content_hash: c.content_hash.clone(),
            signer: c.signer.clone(),
        }),
        Command::PayOnline(c) => Request::RecordOnlinePayment(pb::RecordOnlinePaymentRequest {
            command: command_header,
            dossier,
            amount_vnd: c.amount_vnd,
            gateway: match c.gateway {
                PaymentGateway::NationalPortal => pb::PaymentGateway::NationalPortal,
                PaymentGateway::Provincial => pb::PaymentGateway::Provincial,
            }
            .into(),
            transaction_ref: c.transaction_ref.clone(),
        }),
        Command::SendApology(c) => Request::SendApology(pb::SendApologyRequest {
            command: command_header,
            dossier,
            reason: c.reason.clone(),
            new_appointment_at: Some(utc_to_timestamp(c.new_appointment_at)),
            letter_number: c.letter_number.clone(),
        }),
        Command::ReturnResult(c) => Request::ReturnResult(pb::ReturnResultRequest {
            command: command_header,
            dossier,
            method: match c.method {
                ReturnMethod::AtDesk => pb::ReturnMethod::AtDesk,
                ReturnMethod::ByPost => pb::ReturnMethod::ByPost,
                ReturnMethod::Online => pb::ReturnMethod::Online,
            }
            .into(),
        }),
        Command::RateSatisfaction(c) => Request::RecordRating(pb::RecordRatingRequest {
            command: command_header,
            dossier,
            rating: match c.rating {
                Satisfaction::Satisfied => pb::Satisfaction::Satisfied,
                Satisfaction::Unsatisfied => pb::Satisfaction::Unsatisfied,
            }
            .into(),
        }),
        Command::Withdraw(c) => Request::WithdrawDossier(pb::WithdrawDossierRequest {
            command: command_header,
            dossier,
            reason: c.reason.clone(),
        }),
        Command::RefuseAtIntake(c) => Request::RefuseAtIntake(pb::RefuseAtIntakeRequest {
            command: command_header,
            dossier,
            reason: c.reason.clone(),
        }),
        Command::RecordNationalPortalSync(c) => Request::MarkSynced(pb::MarkSyncedRequest {
            command: command_header,
            dossier,
            status: i32::from(c.status.code()),
        }),
    }
}

/// The deadline state as a message value.
pub fn deadline_state_to_pb(state: DeadlineState) -> pb::DeadlineState {
    match state {
        DeadlineState::OnTime => pb::DeadlineState::OnTime,
        DeadlineState::DueSoon => pb::DeadlineState::DueSoon,
        DeadlineState::Overdue => pb::DeadlineState::Overdue,
        DeadlineState::FinishedOnTime => pb::DeadlineState::FinishedOnTime,
        DeadlineState::FinishedLate => pb::DeadlineState::FinishedLate,
    }
}

/// Converts a time span to a duration.
pub fn duration_to_pb(delta: TimeDelta) -> prost_types::Duration {
    prost_types::Duration {
        seconds: delta.num_seconds(),
        nanos: delta.subsec_nanos(),
    }
}

/// The deadline view as a message.
pub fn deadline_to_pb(view: &DeadlineView, at: DateTime<Utc>) -> pb::DeadlineView {
    pb::DeadlineView {
        state: deadline_state_to_pb(view.state).into(),
        due_at: Some(utc_to_timestamp(view.due_at)),
        remaining_working_time: view.remaining_working_time.map(duration_to_pb),
        at: Some(utc_to_timestamp(at)),
    }
}

/// A dossier's state as a message. `deadline` is the view at some instant, when wanted.
pub fn dossier_to_pb(
    dossier_id: Uuid,
    version: u64,
    state: &DossierState,
    deadline: Option<pb::DeadlineView>,
) -> pb::Dossier {
    let ts = |at: Option<DateTime<Utc>>| at.map(utc_to_timestamp);
    let mut out = pb::Dossier {
        dossier_id: dossier_id.to_string(),
        version,
        status: state.status.map_or(0, |s| i32::from(s.code())),
        status_name: state.status.map(|s| s.name().to_owned()).unwrap_or_default(),
        due_at: ts(state.due_at),
        deadline,
        missing_components: state.missing_components.clone(),
        supplement_requests: state.n_supplement_requests,
        approved_at: ts(state.approved_at),
        stopped_at: ts(state.stopped_at),
        returned_at: ts(state.returned_at),
        withdrawn_at: ts(state.withdrawn_at),
        refused_at: ts(state.refused_at),
        e_result_issued_at: ts(state.e_result_issued_at),
        paid_online_vnd: state.paid_online_vnd,
        digitizations: state.n_digitizations,
        reused_component: state.reused_component,
        result_digitized: state.result_digitized,
        apologies: state.n_apologies,
        promised_at: ts(state.promised_at),
        satisfaction: match state.rating {
            Some(Satisfaction::Satisfied) => pb::Satisfaction::Satisfied.into(),
            Some(Satisfaction::Unsatisfied) => pb::Satisfaction::Unsatisfied.into(),
            None => pb::Satisfaction::Unspecified.into(),
        },
        syncs: state.n_syncs,
        last_occurred_at: ts(state.last_occurred_at),
        ..pb::Dossier::default()
    };
    if let Some(received) = &state.received {
        out.receipt_code = received.receipt_code.as_str().to_owned();
        out.procedure = Some(pb::Procedure {
            code: received.procedure.code.as_str().to_owned(),
            name: received.procedure.name.clone(),
            statutory_time: Some(statutory_time_to_pb(received.procedure.statutory_time)),
            full_online_eligible: Some(received.procedure.full_online_eligible),
            paper_result: Some(received.procedure.paper_result),
            fee_vnd: Some(received.procedure.fee_vnd),
        });
        out.procedure_source = procedure_source_to_pb(received.procedure_source).into();
        out.catalogue = received.catalogue.as_ref().map(catalogue_ref_to_pb);
        out.receiving_desk = received.receiving_desk.as_str().to_owned();
        out.handling_agency = received.handling_agency.as_str().to_owned();
        out.channel = match received.channel {
            Channel::InPerson => pb::Channel::InPerson,
            Channel::Online => pb::Channel::Online,
            Channel::Postal => pb::Channel::Postal,
        }
        .into();
        out.green_lane = received.green_lane;
        out.effective_time = Some(statutory_time_to_pb(received.effective_time));
        out.applicant_ref = received.applicant.0.to_string();
        out.received_at = Some(utc_to_timestamp(received.occurred_at));
    }
    out.due_at_calendars = due_at_calendars(state).iter().map(calendar_ref_to_pb).collect();
    out
}

/// The holiday tables the due date in force was computed with: the latest supplement's, or the
/// receipt's.
pub fn due_at_calendars(state: &DossierState) -> &[CalendarRef] {
    state
        .due_at_calendars
        .as_deref()
        .or_else(|| state.received.as_ref().map(|r| r.calendars.as_slice()))
        .unwrap_or(&[])
}

/// A calendar reference as a message.
pub fn calendar_ref_to_pb(calendar: &CalendarRef) -> pb::CalendarRef {
    pb::CalendarRef {
        year: calendar.year,
        version: calendar.version,
        provisional: calendar.provisional,
    }
}

/// A catalogue reference as a message.
pub fn catalogue_ref_to_pb(catalogue: &CatalogueRef) -> pb::CatalogueRef {
    pb::CatalogueRef {
        version: catalogue.version,
        decision: catalogue.decision.clone(),
        effective_from: catalogue.effective_from.format("%Y-%m-%d").to_string(),
    }
}

/// A procedure source as a message value.
pub fn procedure_source_to_pb(source: ProcedureSource) -> pb::ProcedureSource {
    match source {
        ProcedureSource::Catalogue => pb::ProcedureSource::Catalogue,
        ProcedureSource::Declared => pb::ProcedureSource::Declared,
        ProcedureSource::OutsideCatalogue => pb::ProcedureSource::OutsideCatalogue,
    }
}

/// A catalogue entry as a message.
pub fn catalogue_entry_to_pb(entry: &ProcedureEntry) -> pb::CatalogueEntry {
    pb::CatalogueEntry {
        code: entry.code.as_str().to_owned(),
        name: entry.name.clone(),
        statutory_time: Some(statutory_time_to_pb(entry.statutory_time)),
        fee_vnd: entry.fee_vnd,
        full_online_eligible: entry.full_online_eligible,
        paper_result: entry.paper_result,
        handling_agencies: entry.handling_agencies.iter().map(|a| a.as_str().to_owned()).collect(),
        green_lane_time: entry.green_lane_time.map(statutory_time_to_pb),
    }
}

/// A catalogue decision from a load request, naming every malformed field
/// (`entries[3].code`, `effective_from`).
pub fn decision_from_pb(request: pb::LoadCatalogueRequest) -> Result<Decision, InvalidRequest> {
    let mut errors = InvalidRequest::default();
    non_empty(
        &mut errors,
        "decision",
        &request.decision,
        "the decision's number, like 1234/QĐ-UBND",
    );
    let effective_from = match NaiveDate::parse_from_str(&request.effective_from, "%Y-%m-%d") {
        Ok(date) => date,
        Err(_) => {
            errors.add(
                "effective_from",
                format!(
                    "{} is not a date; give the local date the decision is in force from, like 2026-01-01",
                    echo(&request.effective_from)
                ),
            );
            NaiveDate::MIN
        }
    };
    let mut entries = Vec::with_capacity(request.entries.len());
    for (i, entry) in request.entries.into_iter().enumerate() {
        let field = |name: &str| format!("entries[{i}].{name}");
        let code = ProcedureCode::parse("code", &entry.code).map_err(|e| errors.add(field("code"), domain_problem(&e)));
        let time = statutory_time(&mut errors, &field("statutory_time"), entry.statutory_time);
        let green_lane_time = entry
            .green_lane_time
            .map(|green| statutory_time(&mut errors, &field("green_lane_time"), Some(green)));
        let mut handling_agencies = Vec::with_capacity(entry.handling_agencies.len());
        for (j, agency) in entry.handling_agencies.iter().enumerate() {
            match AgencyCode::parse("agency", agency) {
                Ok(agency) => handling_agencies.push(agency),
                Err(e) => errors.add(field(&format!("handling_agencies[{j}]")), domain_problem(&e)),
            }
        }
        if let Ok(code) = code {
            entries.push(ProcedureEntry {
                code,
                name: entry.name.trim().to_owned(),
                statutory_time: time,
                fee_vnd: entry.fee_vnd,
                full_online_eligible: entry.full_online_eligible,
                paper_result: entry.paper_result,
                handling_agencies,
                green_lane_time,
            });
        }
    }
    let mut abolished = Vec::with_capacity(request.abolished.len());
    for (i, code) in request.abolished.iter().enumerate() {
        match ProcedureCode::parse("code", code) {
            Ok(code) => abolished.push(code),
            Err(e) => errors.add(format!("abolished[{i}]"), domain_problem(&e)),
        }
    }
    errors.finish(|| Decision {
        number: request.decision.trim().to_owned(),
        effective_from,
        entries,
        abolished,
    })
}

/// A domain error's words without the field name it starts with.
fn domain_problem(err: &hoso_domain::DomainError) -> String {
    match err {
        hoso_domain::DomainError::InvalidField { problem, .. } => problem.clone(),
        other => other.to_string(),
    }
}
