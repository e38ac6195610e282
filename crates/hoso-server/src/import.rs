//! Importing a dossier's history from another system: every command checked by the domain's
//! rules in order, all of the dossier's events written in one atomic append, idempotently.
//! [`history_from_pb`] reads a request into a [`History`] of domain commands; [`App::import`]
//! takes only that.

use chrono::Utc;
use hoso_api::convert::{IntoDeskCommand, InvalidRequest, wire_name};
use hoso_api::pb;
use hoso_api::pb::import_command::Command as Imported;
use hoso_domain::command::ReceiveDossier;
use hoso_domain::{Catalogue, Command, Context, DossierState, ProcedureCode, ProcedurePolicy, decide};
use hoso_store::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamRead};
use uuid::Uuid;

use crate::app::{App, new_event, stream_for_receipt};
use crate::auth::{Action, Caller, authorize};
use crate::error::ServiceError;
use crate::metadata::EventMetadata;

/// The namespace of import ids: an imported dossier's command ids derive from its receipt code.
const IMPORT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_1a9e_5b7d_4c1e_9a51_2f4f_0d3a_7b10);

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The dossier's receipt code.
    pub receipt_code: String,
    /// Its id.
    pub dossier_id: Uuid,
    /// Events written.
    pub events: u64,
    /// Whether it had been imported before.
    pub already_imported: bool,
    /// How its procedure values differ from the catalogue entry in force at its receipt, one
    /// line each; empty when they agree or no catalogue is loaded.
    pub catalogue_differences: Vec<String>,
}

/// How an imported receipt's procedure differs from the catalogue in force at its receipt.
fn differences(catalogue: &Catalogue, receive: &ReceiveDossier) -> Vec<String> {
    if catalogue.is_empty() {
        return Vec::new();
    }
    let Ok(code) = ProcedureCode::parse("procedure.code", &receive.procedure.code) else {
        return Vec::new();
    };
    let Some(in_force) = catalogue.in_force(&code, receive.occurred_at) else {
        return vec![format!(
            "procedure {} is not in the catalogue (version {})",
            code.as_str(),
            catalogue.version()
        )];
    };
    let decision = &in_force.published.decision.number;
    let mut out: Vec<String> = in_force
        .entry
        .differences(&receive.procedure)
        .into_iter()
        .map(|d| {
            format!(
                "{}: {} in the history, {} in decision {decision}",
                d.field, d.declared, d.catalogue
            )
        })
        .collect();
    if !in_force.entry.handled_by(&receive.handling_agency) {
        out.push(format!(
            "handling_agency: {} does not handle {} in decision {decision}",
            receive.handling_agency,
            code.as_str()
        ));
    }
    out
}

/// The variant's field name and its conversion, with the header's command id set and the dossier
/// named by `receipt_code`.
fn convert(
    mut command: Imported,
    command_id: Uuid,
    receipt_code: &str,
) -> (&'static str, Result<hoso_api::convert::DeskCommand, InvalidRequest>) {
    let header = command.header_mut();
    let mut h = header.take().unwrap_or_default();
    h.command_id = command_id.to_string();
    *header = Some(h);
    command.set_dossier(pb::DossierRef {
        r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(receipt_code.to_owned())),
    });
    (wire_name(command.kind()).field, command.into_desk_command())
}

/// The id of an imported dossier's import: its command ids derive from it.
fn import_id(receipt_code: &str) -> Uuid {
    Uuid::new_v5(&IMPORT_NAMESPACE, receipt_code.as_bytes())
}

/// The command id of the `index`-th command of an import.
fn command_id(import_id: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&import_id, format!("command-{index}").as_bytes())
}

/// One command of an imported history, in the domain's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCommand {
    /// The command.
    pub command: Command,
    /// The officer the other system names for it (empty: none named).
    pub source_actor: String,
}

/// A dossier's history from another system: its receipt code (the first command's), the system's
/// name, and its commands, read one at a time as the import decides them, so that the first
/// problem in the history's order is the one reported.
pub struct History<C> {
    /// The receipt code of the first command.
    pub receipt_code: String,
    /// The system the history comes from, kept in the event metadata.
    pub source: String,
    /// The commands, oldest first, each as read or why it cannot be.
    pub commands: C,
}

/// Reads an `ImportDossierRequest`: the receipt code from its first command, and its commands
/// converted to the domain's one by one, with every problem named by its path in the request.
pub fn history_from_pb(
    request: pb::ImportDossierRequest,
) -> Result<History<impl Iterator<Item = Result<ImportedCommand, ServiceError>>>, ServiceError> {
    let receipt_code = match request.commands.first().and_then(|c| c.command.as_ref()) {
        Some(Imported::ReceiveDossier(r)) => r.receipt_code.clone(),
        _ => {
            return Err(ServiceError::invalid(
                "commands[0]",
                "a history starts with its receive_dossier command",
            ));
        }
    };
    let import_id = import_id(&receipt_code);
    let dossier_code = receipt_code.clone();
    let commands = request.commands.into_iter().enumerate().map(move |(index, imported)| {
        let Some(command) = imported.command else {
            return Err(ServiceError::invalid(
                format!("commands[{index}]"),
                "empty: give one desk command",
            ));
        };
        if index > 0 && matches!(command, Imported::ReceiveDossier(_)) {
            return Err(ServiceError::invalid(
                format!("commands[{index}]"),
                "a history is received once, by its first command",
            ));
        }
        let (variant, converted) = convert(command, command_id(import_id, index), &dossier_code);
        let desk = converted.map_err(|e| ServiceError::Invalid(e).in_command(index, variant))?;
        Ok(ImportedCommand {
            command: desk.command,
            source_actor: imported.source_actor,
        })
    });
    Ok(History {
        receipt_code,
        source: request.source,
        commands,
    })
}

impl<S: EventStore> App<S> {
    /// Imports one dossier's history (operators only).
    pub async fn import(
        &self,
        caller: &Caller,
        history: History<impl Iterator<Item = Result<ImportedCommand, ServiceError>>>,
    ) -> Result<ImportOutcome, ServiceError> {
        authorize(caller, Action::Import)?;
        let History {
            receipt_code,
            source,
            commands,
        } = history;
        let stream_id = stream_for_receipt("commands[0].receive_dossier.receipt_code", &receipt_code)?;
        let import_id = import_id(&receipt_code);
        let reference = self.reference.current();
        let context = Context {
            max_clock_skew: self.max_clock_skew,
            catalogue: &reference.catalogue,
            procedures: ProcedurePolicy::Declared,
            ..Context::new(Utc::now(), &reference.calendar, &self.green_lane)
        };
        let mut catalogue_differences = Vec::new();
        let mut state = DossierState::new();
        let mut events: Vec<NewEvent> = Vec::new();
        for (index, imported) in commands.enumerate() {
            let ImportedCommand {
                mut command,
                source_actor,
            } = imported?;
            let command_id = command_id(import_id, index);
            let actor = if source_actor.is_empty() {
                caller.subject.clone()
            } else {
                source_actor.clone()
            };
            command.set_officer(&actor);
            if let Command::ReceiveDossier(receive) = &command {
                catalogue_differences = differences(&reference.catalogue, receive);
            }
            let variant = wire_name(command.kind()).field;
            let decided =
                decide(&state, &command, &context).map_err(|e| ServiceError::Rule(e).in_command(index, variant))?;
            let metadata = EventMetadata {
                causation_id: Some(command_id.to_string()),
                command_id: Some(command_id.to_string()),
                correlation_id: Some(import_id.to_string()),
                imported_from: Some(source.clone()),
                source_actor: Some(source_actor),
                ..EventMetadata::of(caller)
            };
            for (i, event) in decided.into_iter().enumerate() {
                state = hoso_domain::evolve(state, &event);
                events.push(new_event(command_id, i, &event, &metadata)?);
            }
        }
        let dossier_id = events[0].event_id;
        // Imported before? Then the stored events must be the start of this history: a history
        // exported again with more events adds the new ones; anything else is a conflict.
        let stored = self.store.read_stream(&stream_id, StreamRead::forward()).await?;
        let same_start = stored.len() <= events.len()
            && stored
                .iter()
                .zip(&events)
                .all(|(old, new)| old.event_id == new.event_id && new.data.is_stored_as(&old.data));
        if !same_start {
            return Err(ServiceError::ImportConflict(format!(
                "a dossier with receipt code {receipt_code} already exists with another history; nothing was written"
            )));
        }
        let expected = stored
            .last()
            .map_or(ExpectedVersion::NoStream, |last| ExpectedVersion::Exact(last.version));
        let new: Vec<NewEvent> = events.split_off(stored.len());
        let n_new = new.len() as u64;
        if n_new > 0 {
            match self.store.append(&stream_id, expected, new).await {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) => {
                    return Err(ServiceError::ImportConflict(format!(
                        "dossier {receipt_code} changed while it was imported; import it again"
                    )));
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(ImportOutcome {
            receipt_code,
            dossier_id,
            events: n_new,
            already_imported: n_new == 0,
            catalogue_differences,
        })
    }
}
