//! Commands: what a desk asks to record, in imperative form, one per event.
//!
//! Commands carry raw input (codes as strings, amounts as signed integers) so that the domain, not
//! the wire layer, decides what is valid and says so in an officer's words. They are not persisted
//! and have no serde.

use chrono::{DateTime, Utc};

use crate::codes::ApplicantRef;
use crate::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use crate::portal::{Channel, PortalStatus};
use crate::procedure::StatutoryTime;

/// The procedure named at receipt: its code, and the values the caller declares with it.
///
/// At a desk the values come from the server's catalogue, so the code is enough and a declared
/// value must equal the catalogue's; an imported history, or a procedure outside the catalogue,
/// declares them all ([`crate::ProcedurePolicy`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcedureInput {
    /// Procedure code, `d.dddddd`.
    pub code: String,
    /// Published name.
    pub name: Option<String>,
    /// Published statutory time.
    pub statutory_time: Option<StatutoryTime>,
    /// Eligible for full-online service.
    pub full_online_eligible: Option<bool>,
    /// The result is a paper document.
    pub paper_result: Option<bool>,
    /// Fee in VND, 0 when free.
    pub fee_vnd: Option<i64>,
}

impl ProcedureInput {
    /// A procedure with every value declared.
    pub fn declared(
        code: impl Into<String>,
        name: impl Into<String>,
        statutory_time: StatutoryTime,
        full_online_eligible: bool,
        paper_result: bool,
        fee_vnd: i64,
    ) -> ProcedureInput {
        ProcedureInput {
            code: code.into(),
            name: Some(name.into()),
            statutory_time: Some(statutory_time),
            full_online_eligible: Some(full_online_eligible),
            paper_result: Some(paper_result),
            fee_vnd: Some(fee_vnd),
        }
    }

    /// Only the code: every value from the catalogue.
    pub fn code(code: impl Into<String>) -> ProcedureInput {
        ProcedureInput {
            code: code.into(),
            ..ProcedureInput::default()
        }
    }
}

/// Receive a dossier: starts the clock. The due date and green-lane flag are computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveDossier {
    /// Business time of receipt.
    pub occurred_at: DateTime<Utc>,
    /// Code printed on the receipt.
    pub receipt_code: String,
    /// The procedure.
    pub procedure: ProcedureInput,
    /// The receiving one-stop desk's code.
    pub receiving_desk: String,
    /// The handling agency's code; may be empty when the catalogue lists exactly one.
    pub handling_agency: String,
    /// Submission channel.
    pub channel: Channel,
    /// Pseudonymous applicant reference.
    pub applicant: ApplicantRef,
}

/// A component file given for digitization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInput {
    /// Component name.
    pub component: String,
    /// SHA-256, 64 lower-case hex digits.
    pub content_hash: String,
}

/// A component reused from digitized data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseInput {
    /// Component name.
    pub component: String,
    /// Source of the data.
    pub source: String,
}

/// Record that components (and possibly the result) were digitized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitizeDossier {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Files attached.
    pub files: Vec<FileInput>,
    /// Components reused.
    pub reused: Vec<ReuseInput>,
    /// Whether the result was digitized.
    pub result_digitized: bool,
}

/// Record a processing step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDossier {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// The step.
    pub step: ProcessingStep,
    /// Officer account identifier.
    pub officer: String,
    /// Target unit code (required for a transfer).
    pub to_unit: Option<String>,
    /// Reason (required for a stop).
    pub reason: Option<String>,
}

/// Issue an electronic result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEResult {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Result document identifier.
    pub result_id: String,
    /// SHA-256 of the signed document.
    pub content_hash: String,
    /// Signer account or certificate identifier.
    pub signer: String,
}

/// Record an online payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayOnline {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Amount in VND.
    pub amount_vnd: i64,
    /// Payment platform.
    pub gateway: PaymentGateway,
    /// Gateway transaction reference.
    pub transaction_ref: String,
}

/// Send an apology letter with a new appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendApology {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Why the dossier is late.
    pub reason: String,
    /// New appointment.
    pub new_appointment_at: DateTime<Utc>,
    /// Letter number.
    pub letter_number: String,
}

/// Ask the applicant for missing papers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSupplement {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Components asked for.
    pub missing_components: Vec<String>,
    /// Officer account identifier.
    pub officer: String,
}

/// Record the applicant's supplement; the due date moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveSupplement {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
}

/// Hand the result over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnResult {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// How.
    pub method: ReturnMethod,
}

/// Record the applicant's rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateSatisfaction {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// The rating.
    pub rating: Satisfaction,
}

/// Record the applicant's withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdraw {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Reason given.
    pub reason: String,
}

/// Refuse the dossier at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefuseAtIntake {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Officer account identifier.
    pub officer: String,
}

/// Record a sync to the national portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordNationalPortalSync {
    /// Business time of the sync.
    pub occurred_at: DateTime<Utc>,
    /// The status the portal acknowledged.
    pub status: PortalStatus,
}

/// Declares every command once: the [`Command`] enum, its [`CommandKind`], and the event each
/// records, so that a new command is one line here and the compiler finds every other place.
macro_rules! commands {
    ($($ty:ident => $event:ident;)*) => {
        /// Every command.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Command {
            $(
                #[doc = concat!("See [`", stringify!($ty), "`].")]
                $ty($ty),
            )*
        }

        /// What a command is, without its values: the key of the role matrix and of every table
        /// kept per command.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CommandKind {
            $(
                #[doc = concat!("[`", stringify!($ty), "`].")]
                $ty,
            )*
        }

        impl CommandKind {
            /// Every kind, in the order of the desk service.
            pub const ALL: &'static [CommandKind] = &[$(CommandKind::$ty,)*];

            /// The command's name, as in the code (`ReceiveDossier`).
            pub fn name(self) -> &'static str {
                match self { $(CommandKind::$ty => stringify!($ty),)* }
            }

            /// The persisted types of the events the command records, in the order it records
            /// them (one each today).
            pub fn event_types(self) -> &'static [&'static str] {
                match self { $(CommandKind::$ty => &[crate::event::$event::EVENT_TYPE],)* }
            }
        }

        $(
            impl From<$ty> for Command {
                fn from(command: $ty) -> Command {
                    Command::$ty(command)
                }
            }
        )*

        impl Command {
            /// What the command is.
            pub fn kind(&self) -> CommandKind {
                match self { $(Command::$ty(_) => CommandKind::$ty,)* }
            }

            /// The business time the command says the fact occurred at.
            pub fn occurred_at(&self) -> DateTime<Utc> {
                match self { $(Command::$ty(c) => c.occurred_at,)* }
            }
        }
    };
}

commands! {
    ReceiveDossier => DossierReceived;
    DigitizeDossier => DossierDigitized;
    ProcessDossier => DossierProcessed;
    RequestSupplement => SupplementRequested;
    ReceiveSupplement => SupplementReceived;
    IssueEResult => EResultIssued;
    PayOnline => PaidOnline;
    SendApology => ApologySent;
    ReturnResult => ResultReturned;
    RateSatisfaction => SatisfactionRated;
    Withdraw => Withdrawn;
    RefuseAtIntake => RefusedAtIntake;
    RecordNationalPortalSync => SyncedToNationalPortal;
}

impl CommandKind {
    /// The type of the first event the command records, by which a stored command is recognised.
    pub fn first_event_type(self) -> &'static str {
        self.event_types()[0]
    }
}

impl Command {
    /// Sets the officer of the commands that record one (a processing step, a supplement
    /// request, a refusal at intake): the caller's account, never what a request body says.
    pub fn set_officer(&mut self, officer: &str) {
        match self {
            Command::ProcessDossier(c) => c.officer = officer.to_owned(),
            Command::RequestSupplement(c) => c.officer = officer.to_owned(),
            Command::RefuseAtIntake(c) => c.officer = officer.to_owned(),
            _ => {}
        }
    }
}
