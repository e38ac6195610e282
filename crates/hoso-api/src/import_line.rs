//! The import format's lines: one `hoso.v1.ImportDossierRequest` in protobuf's JSON mapping a
//! line (`docs/import.md`), read here so that `hoso import` and the fuzz target share one parser.

use std::sync::OnceLock;

use prost_reflect::{DynamicMessage, MessageDescriptor};

use crate::pb;

/// The descriptor of `ImportDossierRequest`, from the pool [`crate::json`] decodes once.
fn descriptor() -> Result<&'static MessageDescriptor, String> {
    static DESCRIPTOR: OnceLock<Result<MessageDescriptor, String>> = OnceLock::new();
    DESCRIPTOR
        .get_or_init(|| {
            crate::json::descriptors()
                .map_err(|err| err.to_string())?
                .get_message_by_name("hoso.v1.ImportDossierRequest")
                .ok_or_else(|| "the built-in API description lacks ImportDossierRequest".to_owned())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Reads one line of an import file (surrounding whitespace ignored) as the request it holds;
/// the error says what serde or prost could not read, and where.
pub fn parse_import_line(line: &str) -> Result<pb::ImportDossierRequest, String> {
    let descriptor = descriptor()?.clone();
    let mut deserializer = serde_json::Deserializer::from_str(line.trim());
    let message = DynamicMessage::deserialize(descriptor, &mut deserializer)
        .and_then(|m| deserializer.end().map(|()| m))
        .map_err(|err| err.to_string())?;
    <pb::ImportDossierRequest as prost::Message>::decode(prost::Message::encode_to_vec(&message).as_slice())
        .map_err(|err| err.to_string())
}
