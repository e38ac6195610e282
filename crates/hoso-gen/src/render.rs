//! A generated dossier as a line of the `hoso import` format: a `hoso.v1.ImportDossierRequest`
//! built with the API's own conversion (`hoso_api::convert::command_to_pb`) and written in the
//! protobuf JSON mapping `hoso import` reads (`hoso_api::json`), as `docs/import.md` describes.

use hoso_api::convert::{command_to_pb, utc_to_timestamp};
use hoso_api::json::{JsonError, to_json};
use hoso_api::pb;

use crate::Dossier;

/// A time cut to its second: the import lines have always carried whole seconds, and a
/// generated file (so the demo month's figures) must mean what it meant.
fn whole_seconds(mut at: prost_types::Timestamp) -> prost_types::Timestamp {
    at.nanos = 0;
    at
}

/// The dossier as one line of the import format (no trailing newline); `source` names the
/// system it comes from. An error is a fault of the build (its API description), never of the
/// dossier.
pub fn import_line(dossier: &Dossier, source: &str) -> Result<String, JsonError> {
    let request = pb::ImportDossierRequest {
        source: source.to_owned(),
        commands: dossier
            .commands
            .iter()
            .map(|(command, actor)| {
                let header = pb::CommandHeader {
                    occurred_at: Some(whole_seconds(utc_to_timestamp(command.occurred_at()))),
                    ..pb::CommandHeader::default()
                };
                let mut request = command_to_pb(command, header, None);
                if let pb::import_command::Command::SendApology(apology) = &mut request {
                    apology.new_appointment_at = apology.new_appointment_at.take().map(whole_seconds);
                }
                pb::ImportCommand {
                    source_actor: actor.clone(),
                    command: Some(request),
                }
            })
            .collect(),
    };
    to_json(&request, "hoso.v1.ImportDossierRequest")
}
