//! The protobuf JSON mapping of `hoso.v1` messages, by their descriptors (`prost-reflect` over
//! [`crate::FILE_DESCRIPTOR_SET`]): the mapping `hoso call` and `hoso import` read, so that what
//! is written here is what they accept.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

/// Why a message has no JSON form here: the built-in descriptors lack or mismatch it, which is a
/// fault of this build, never of the message's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(String);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// The descriptors of every `hoso.v1` message, decoded once.
pub fn descriptors() -> Result<&'static DescriptorPool, JsonError> {
    static POOL: OnceLock<Result<DescriptorPool, JsonError>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .map_err(|err| JsonError(format!("the built-in API description is damaged: {err}")))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// `message` (of the protobuf type named `full_name`, like `hoso.v1.ImportDossierRequest`) in the
/// protobuf JSON mapping with the .proto files' field names, default values left out.
pub fn to_json<M: prost::Message>(message: &M, full_name: &str) -> Result<String, JsonError> {
    let descriptor = descriptors()?
        .get_message_by_name(full_name)
        .ok_or_else(|| JsonError(format!("the built-in API description has no message {full_name}")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|err| JsonError(format!("a {full_name} does not match its description: {err}")))?;
    let mut out = serde_json::Serializer::new(Vec::new());
    dynamic
        .serialize_with_options(&mut out, &SerializeOptions::new().use_proto_field_name(true))
        .map_err(|err| JsonError(format!("a {full_name} cannot be written as JSON: {err}")))?;
    String::from_utf8(out.into_inner()).map_err(|err| JsonError(format!("JSON that is not UTF-8: {err}")))
}
