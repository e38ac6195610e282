//! The decision function: given a dossier's state, a command and the context of the decision
//! (the current time and the configured clock), the events to record or the rule the command
//! breaks. Pure: the same input always gives the same output, and nothing is written on rejection.
//!
//! Checks run in a fixed order, and the first failure is reported: receipt (nothing before it,
//! nothing twice), closure (nothing after it but a rating after return or a sync), the time of the
//! fact (`occurred_at` neither in the future beyond the allowed skew nor before the dossier's
//! previous event), the command's own rules, then its fields.

use chrono::{DateTime, TimeDelta, Utc};

use crate::calendar::{BusinessCalendar, to_local};
use crate::catalogue::{Catalogue, InForce, ProcedureEntry, ProcedurePolicy, ProcedureSource, Published};
use crate::codes::{AgencyCode, ContentHash, ProcedureCode, ReceiptCode};
use crate::command::{
    Command, DigitizeDossier, IssueEResult, PayOnline, ProcedureInput, ProcessDossier, ReceiveDossier,
    RequestSupplement, SendApology,
};
use crate::dossier::DossierState;
use crate::error::DomainError;
use crate::event::{
    ApologySent, ComponentFile, DossierDigitized, DossierEvent, DossierProcessed, DossierReceived, EResultIssued,
    PaidOnline, ProcedureSnapshot, ProcessingStep, RefusedAtIntake, ResultReturned, ReusedComponent, SatisfactionRated,
    SupplementReceived, SupplementRequested, SyncedToNationalPortal, Withdrawn,
};
use crate::procedure::GreenLane;

/// The longest statutory time accepted, in any unit (ten years of days): beyond it the input is a
/// typing mistake.
pub const MAX_STATUTORY_AMOUNT: u32 = 3650;

/// The clock skew tolerated by default between a desk's clock and the server's.
pub const DEFAULT_MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// What a decision needs besides the state and the command.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The current time.
    pub now: DateTime<Utc>,
    /// The working-day calendar and office hours.
    pub calendar: &'a BusinessCalendar,
    /// Green-lane procedures configured outside the catalogue, and their shortened times; a
    /// catalogue entry's own green-lane time comes first.
    pub green_lane: &'a GreenLane,
    /// The province's procedure catalogue.
    pub catalogue: &'a Catalogue,
    /// Where a receipt's procedure values come from.
    pub procedures: ProcedurePolicy,
    /// How far in the future `occurred_at` may be.
    pub max_clock_skew: TimeDelta,
}

/// The catalogue of a context made without one.
static NO_CATALOGUE: Catalogue = Catalogue::new();

impl<'a> Context<'a> {
    /// A context with the default clock skew, no catalogue, and receipts taking the values they
    /// declare (as an imported history does).
    pub fn new(now: DateTime<Utc>, calendar: &'a BusinessCalendar, green_lane: &'a GreenLane) -> Context<'a> {
        Context {
            now,
            calendar,
            green_lane,
            catalogue: &NO_CATALOGUE,
            procedures: ProcedurePolicy::Declared,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
        }
    }
}

/// Decides what a command means for a dossier: the events to append, or the broken rule.
pub fn decide(state: &DossierState, command: &Command, ctx: &Context<'_>) -> Result<Vec<DossierEvent>, DomainError> {
    let received = match (&state.received, command) {
        (Some(_), Command::ReceiveDossier(_)) => return Err(DomainError::AlreadyReceived),
        (None, Command::ReceiveDossier(command)) => {
            check_time(state, command.occurred_at, ctx)?;
            return Ok(vec![receive(command, ctx)?.into()]);
        }
        (None, _) => return Err(DomainError::NotReceived),
        (Some(received), _) => received,
    };
    if let Some(status) = state.status.filter(|status| status.is_closed()) {
        let allowed = match command {
            Command::RateSatisfaction(_) => state.returned_at.is_some(),
            Command::RecordNationalPortalSync(_) => true,
            _ => false,
        };
        if !allowed {
            return Err(DomainError::Closed { status });
        }
    }
    let occurred_at = command.occurred_at();
    check_time(state, occurred_at, ctx)?;

    let event: DossierEvent = match command {
        Command::ReceiveDossier(_) => unreachable!("handled above"),
        Command::DigitizeDossier(command) => digitize(state, command)?.into(),
        Command::ProcessDossier(command) => process(state, command)?.into(),
        Command::IssueEResult(command) => issue_e_result(state, command)?.into(),
        Command::PayOnline(command) => pay_online(state, received.procedure.fee_vnd, command)?.into(),
        Command::SendApology(command) => send_apology(state, state.due_at.unwrap_or(received.due_at), command)?.into(),
        Command::RequestSupplement(command) => request_supplement(state, command)?.into(),
        Command::ReceiveSupplement(_) => {
            let requested_at = state.supplement_requested_at.ok_or(DomainError::NoOpenSupplement)?;
            let due_at = state.due_at.unwrap_or(received.due_at);
            let new_due_at =
                received
                    .effective_time
                    .unit
                    .extend_for_pause(due_at, requested_at, occurred_at, ctx.calendar)?;
            let first_day = to_local(requested_at.min(due_at)).date();
            let calendars = ctx.calendar.refs_between(first_day, to_local(new_due_at).date())?;
            SupplementReceived {
                occurred_at,
                due_at: new_due_at,
                calendars,
            }
            .into()
        }
        Command::ReturnResult(command) => {
            if !state.is_processing_finished() {
                return Err(DomainError::ProcessingNotFinished);
            }
            ResultReturned {
                occurred_at,
                method: command.method,
            }
            .into()
        }
        Command::RateSatisfaction(command) => {
            if state.returned_at.is_none() {
                return Err(DomainError::NotReturned);
            }
            if state.rating.is_some() {
                return Err(DomainError::AlreadyRated);
            }
            SatisfactionRated {
                occurred_at,
                rating: command.rating,
            }
            .into()
        }
        Command::Withdraw(command) => Withdrawn {
            occurred_at,
            reason: text("reason", &command.reason, LONG)?,
        }
        .into(),
        Command::RefuseAtIntake(command) => {
            if state.n_processing_steps > 0 {
                return Err(DomainError::ProcessingStarted);
            }
            RefusedAtIntake {
                occurred_at,
                reason: text("reason", &command.reason, LONG)?,
                officer: text("officer", &command.officer, SHORT)?,
            }
            .into()
        }
        Command::RecordNationalPortalSync(command) => SyncedToNationalPortal {
            occurred_at,
            status: command.status,
        }
        .into(),
    };
    Ok(vec![event])
}

fn check_time(state: &DossierState, occurred_at: DateTime<Utc>, ctx: &Context<'_>) -> Result<(), DomainError> {
    if occurred_at > ctx.now + ctx.max_clock_skew {
        return Err(DomainError::OccurredInFuture {
            occurred_at,
            now: ctx.now,
        });
    }
    if let Some(previous) = state.last_occurred_at.filter(|previous| occurred_at < *previous) {
        return Err(DomainError::OccurredBeforePreviousEvent { occurred_at, previous });
    }
    Ok(())
}

fn receive(command: &ReceiveDossier, ctx: &Context<'_>) -> Result<DossierReceived, DomainError> {
    let receipt_code = ReceiptCode::parse("receipt_code", &command.receipt_code)?;
    let input = &command.procedure;
    let code = ProcedureCode::parse("procedure.code", &input.code)?;
    let receiving_desk = AgencyCode::parse("receiving_desk", &command.receiving_desk)?;
    let received_on = to_local(command.occurred_at).date();
    if receipt_code.date() != received_on {
        return Err(DomainError::ReceiptDateMismatch {
            receipt_date: receipt_code.date(),
            received_on,
        });
    }
    // The entry in force gives the green lane whatever the policy: it is the province's
    // decision at the receipt, not a value of the dossier's history.
    let entry_in_force = ctx.catalogue.in_force(&code, command.occurred_at);
    let in_force = match ctx.procedures {
        ProcedurePolicy::Declared => None,
        ProcedurePolicy::Catalogue { allow_outside } => match entry_in_force {
            Some(in_force) => Some(in_force),
            None if allow_outside => None,
            None => {
                return Err(DomainError::UnknownProcedure {
                    code: code.as_str().to_owned(),
                    version: ctx.catalogue.version(),
                    on: received_on,
                });
            }
        },
    };
    let (procedure, handling_agency, procedure_source, catalogue) = match in_force {
        Some(InForce { entry, published }) => {
            let mismatch = |field, declared, catalogue| DomainError::ProcedureMismatch {
                field,
                declared,
                catalogue,
                decision: published.decision.number.clone(),
                version: published.version,
            };
            if let Some(first) = entry.differences(input).into_iter().next() {
                return Err(mismatch(first.field, first.declared, first.catalogue));
            }
            let agency = catalogue_agency(&command.handling_agency, entry, published)?;
            let procedure = ProcedureSnapshot {
                code,
                name: entry.name.clone(),
                statutory_time: entry.statutory_time,
                full_online_eligible: entry.full_online_eligible,
                paper_result: entry.paper_result,
                fee_vnd: entry.fee_vnd,
            };
            (
                procedure,
                agency,
                ProcedureSource::Catalogue,
                Some(published.reference()),
            )
        }
        None => {
            let source = match ctx.procedures {
                ProcedurePolicy::Declared => ProcedureSource::Declared,
                ProcedurePolicy::Catalogue { .. } => ProcedureSource::OutsideCatalogue,
            };
            let agency = AgencyCode::parse("handling_agency", &command.handling_agency)?;
            (declared_snapshot(code, input)?, agency, source, None)
        }
    };
    let green = entry_in_force
        .and_then(|in_force| in_force.entry.green_lane_time)
        .or_else(|| ctx.green_lane.shortened_time(&procedure.code));
    let effective_time = green.unwrap_or(procedure.statutory_time);
    let due_at = effective_time.due_at(command.occurred_at, ctx.calendar)?;
    let calendars = ctx.calendar.refs_between(received_on, to_local(due_at).date())?;
    Ok(DossierReceived {
        occurred_at: command.occurred_at,
        receipt_code,
        procedure,
        receiving_desk,
        handling_agency,
        channel: command.channel,
        green_lane: green.is_some(),
        effective_time,
        applicant: command.applicant,
        due_at,
        procedure_source,
        catalogue,
        calendars,
    })
}

/// The procedure as declared with the receipt: every value is required.
fn declared_snapshot(code: ProcedureCode, input: &ProcedureInput) -> Result<ProcedureSnapshot, DomainError> {
    let required = |field: &'static str| {
        DomainError::invalid(
            field,
            "is required for a procedure taken as declared (an imported history, or a code outside the catalogue)",
        )
    };
    let name = input.name.as_deref().ok_or_else(|| required("procedure.name"))?;
    let statutory_time = input
        .statutory_time
        .ok_or_else(|| required("procedure.statutory_time"))?;
    let fee_vnd = input.fee_vnd.unwrap_or(0);
    if !(1..=MAX_STATUTORY_AMOUNT).contains(&statutory_time.amount) {
        return Err(DomainError::invalid(
            "procedure.statutory_time",
            format!(
                "{} is not a processing time; give between 1 and {MAX_STATUTORY_AMOUNT}",
                statutory_time.amount
            ),
        ));
    }
    if fee_vnd < 0 {
        return Err(DomainError::invalid(
            "procedure.fee_vnd",
            format!("{fee_vnd} VND is negative; give the fee in whole VND, 0 when free"),
        ));
    }
    Ok(ProcedureSnapshot {
        code,
        name: text("procedure.name", name, LONG)?,
        statutory_time,
        full_online_eligible: input.full_online_eligible.unwrap_or(false),
        paper_result: input.paper_result.unwrap_or(false),
        fee_vnd,
    })
}

/// The handling agency of a receipt whose procedure is in the catalogue: the one sent, which the
/// entry must list when it lists any, or the entry's only agency when none was sent.
fn catalogue_agency(sent: &str, entry: &ProcedureEntry, published: &Published) -> Result<AgencyCode, DomainError> {
    let refused = |problem: String| DomainError::AgencyNotListed {
        problem,
        decision: published.decision.number.clone(),
        version: published.version,
    };
    let code = entry.code.as_str();
    if sent.trim().is_empty() {
        return match entry.handling_agencies.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(DomainError::invalid(
                "handling_agency",
                "is required: the catalogue does not name one agency for this procedure",
            )),
            several => Err(refused(format!(
                "is required: the catalogue lists {} agencies for {code}; name one of them",
                several.len()
            ))),
        };
    }
    let agency = AgencyCode::parse("handling_agency", sent)?;
    if entry.handled_by(agency.as_str()) {
        Ok(agency)
    } else {
        let listed: Vec<&str> = entry.handling_agencies.iter().take(5).map(AgencyCode::as_str).collect();
        let more = if entry.handling_agencies.len() > 5 { ", …" } else { "" };
        Err(refused(format!(
            "{} does not handle {code} in the catalogue; it lists {}{more}",
            agency.as_str(),
            listed.join(", ")
        )))
    }
}

fn digitize(state: &DossierState, command: &DigitizeDossier) -> Result<DossierDigitized, DomainError> {
    if command.files.is_empty() && command.reused.is_empty() && !command.result_digitized {
        return Err(DomainError::invalid(
            "files",
            "nothing to record; give at least one file, one reused component or the digitized result",
        ));
    }
    if command.result_digitized && state.approved_at.is_none() {
        return Err(DomainError::NotApproved);
    }
    let files = command
        .files
        .iter()
        .map(|file| {
            Ok(ComponentFile {
                component: text("files.component", &file.component, MEDIUM)?,
                content_hash: ContentHash::parse("files.content_hash", &file.content_hash)?,
            })
        })
        .collect::<Result<_, DomainError>>()?;
    let reused = command
        .reused
        .iter()
        .map(|reuse| {
            Ok(ReusedComponent {
                component: text("reused.component", &reuse.component, MEDIUM)?,
                source: text("reused.source", &reuse.source, MEDIUM)?,
            })
        })
        .collect::<Result<_, DomainError>>()?;
    Ok(DossierDigitized {
        occurred_at: command.occurred_at,
        files,
        reused,
        result_digitized: command.result_digitized,
    })
}

fn process(state: &DossierState, command: &ProcessDossier) -> Result<DossierProcessed, DomainError> {
    if state.is_processing_finished() {
        return Err(DomainError::ProcessingFinished);
    }
    if state.is_waiting_for_supplement() {
        return Err(DomainError::WaitingForSupplement);
    }
    let officer = text("officer", &command.officer, SHORT)?;
    let to_unit = match &command.to_unit {
        Some(unit) => Some(AgencyCode::parse("to_unit", unit)?),
        None if command.step == ProcessingStep::Transferred => {
            return Err(DomainError::invalid(
                "to_unit",
                "a transfer needs the unit the dossier goes to",
            ));
        }
        None => None,
    };
    let reason = match &command.reason {
        Some(reason) => Some(text("reason", reason, LONG)?),
        None if command.step == ProcessingStep::Stopped => {
            return Err(DomainError::invalid("reason", "stopping processing needs a reason"));
        }
        None => None,
    };
    Ok(DossierProcessed {
        occurred_at: command.occurred_at,
        step: command.step,
        officer,
        to_unit,
        reason,
    })
}

fn issue_e_result(state: &DossierState, command: &IssueEResult) -> Result<EResultIssued, DomainError> {
    if state.approved_at.is_none() {
        return Err(DomainError::NotApproved);
    }
    if state.e_result_issued_at.is_some() {
        return Err(DomainError::EResultAlreadyIssued);
    }
    Ok(EResultIssued {
        occurred_at: command.occurred_at,
        result_id: text("result_id", &command.result_id, SHORT)?,
        content_hash: ContentHash::parse("content_hash", &command.content_hash)?,
        signer: text("signer", &command.signer, SHORT)?,
    })
}

fn pay_online(state: &DossierState, fee_vnd: i64, command: &PayOnline) -> Result<PaidOnline, DomainError> {
    if fee_vnd == 0 {
        return Err(DomainError::NoFeeDue);
    }
    let amount_vnd = command.amount_vnd;
    if amount_vnd <= 0 {
        return Err(DomainError::invalid(
            "amount_vnd",
            format!("{amount_vnd} VND is not a payment; give a positive whole number of VND"),
        ));
    }
    let paid_vnd = state.paid_online_vnd;
    if paid_vnd.saturating_add(amount_vnd) > fee_vnd {
        return Err(DomainError::Overpayment {
            fee_vnd,
            paid_vnd,
            amount_vnd,
        });
    }
    Ok(PaidOnline {
        occurred_at: command.occurred_at,
        amount_vnd,
        gateway: command.gateway,
        transaction_ref: text("transaction_ref", &command.transaction_ref, SHORT)?,
    })
}

fn send_apology(
    state: &DossierState,
    due_at: DateTime<Utc>,
    command: &SendApology,
) -> Result<ApologySent, DomainError> {
    if state.is_processing_finished() {
        return Err(DomainError::ProcessingFinished);
    }
    let must_be_after = state.promised_at.map_or(due_at, |promised| promised.max(due_at));
    if command.new_appointment_at <= must_be_after {
        return Err(DomainError::AppointmentTooEarly {
            new_appointment_at: command.new_appointment_at,
            must_be_after,
        });
    }
    Ok(ApologySent {
        occurred_at: command.occurred_at,
        reason: text("reason", &command.reason, LONG)?,
        new_appointment_at: command.new_appointment_at,
        letter_number: text("letter_number", &command.letter_number, SHORT)?,
    })
}

fn request_supplement(state: &DossierState, command: &RequestSupplement) -> Result<SupplementRequested, DomainError> {
    if state.is_processing_finished() {
        return Err(DomainError::ProcessingFinished);
    }
    if state.is_waiting_for_supplement() {
        return Err(DomainError::SupplementAlreadyOpen);
    }
    if command.missing_components.is_empty() {
        return Err(DomainError::invalid(
            "missing_components",
            "list every missing component, all at once",
        ));
    }
    let missing_components = command
        .missing_components
        .iter()
        .map(|component| text("missing_components", component, MEDIUM))
        .collect::<Result<_, _>>()?;
    Ok(SupplementRequested {
        occurred_at: command.occurred_at,
        missing_components,
        officer: text("officer", &command.officer, SHORT)?,
    })
}

/// Length limits of free text, in characters.
const SHORT: usize = 100;
const MEDIUM: usize = 300;
const LONG: usize = 1000;

/// Trimmed, non-empty text of at most `max` characters.
fn text(field: &'static str, value: &str, max: usize) -> Result<String, DomainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(DomainError::invalid(field, "is required"));
    }
    let n_chars = value.chars().count();
    if n_chars > max {
        return Err(DomainError::invalid(
            field,
            format!("is {n_chars} characters long; at most {max}"),
        ));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests;
