//! What the server records beside each event: who asked, in which role and unit, and as which
//! command.
//!
//! Serialized by serde in field order, and the fields are in alphabetical order, the order in
//! which the JSON maps built by hand before this struct wrote them, so the keys kept keep their
//! bytes. Every field has a default and unknown keys are ignored, so every record written so far
//! reads: those of desk commands before this struct also hold `desk`, always equal to `agency`.

use serde::{Deserialize, Serialize};

use crate::auth::Caller;

/// An event's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventMetadata {
    /// The caller's subject (from the token, never from the request).
    pub actor: String,
    /// The caller's unit: the desk's unit code for a desk officer, the agency's code otherwise.
    pub agency: String,
    /// The command that caused the event (its own command id, for a command).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The client's command id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
    /// The client's correlation id, as sent (possibly empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The system an imported history comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// The fingerprint of the desk request (`crate::app::request_fingerprint`).
    #[serde(rename = "request_sha256", skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    /// The caller's role.
    pub role: String,
    /// The officer the other system names for an imported command (possibly empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_actor: Option<String>,
}

impl EventMetadata {
    /// The metadata of anything `caller` does; the caller of this fills in what it adds.
    pub fn of(caller: &Caller) -> EventMetadata {
        EventMetadata {
            actor: caller.subject.clone(),
            agency: caller.agency.clone(),
            role: caller.role.as_str().to_owned(),
            ..EventMetadata::default()
        }
    }

    /// Reads a stored record's metadata; `None` when it is not a JSON object of these fields.
    pub fn read(bytes: &[u8]) -> Option<EventMetadata> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn caller() -> Caller {
        Caller {
            subject: "g18.officer".to_owned(),
            role: Role::AgencyOfficer,
            agency: "000.00.04.G18".to_owned(),
        }
    }

    #[test]
    fn a_commands_metadata_has_the_bytes_the_hand_built_map_wrote_but_the_repeated_desk() {
        let caller = caller();
        let metadata = EventMetadata {
            causation_id: Some("c1".to_owned()),
            command_id: Some("c1".to_owned()),
            correlation_id: Some(String::new()),
            request_fingerprint: Some("scheme:abc".to_owned()),
            ..EventMetadata::of(&caller)
        };
        let before = serde_json::json!({
            "actor": caller.subject,
            "role": caller.role.as_str(),
            "agency": caller.agency,
            "command_id": "c1",
            "correlation_id": "",
            "causation_id": "c1",
            "request_sha256": "scheme:abc",
        });
        assert_eq!(
            serde_json::to_string(&metadata).unwrap(),
            serde_json::to_string(&before).unwrap()
        );
    }

    #[test]
    fn metadata_written_before_the_struct_reads_and_odd_metadata_does_not_fail() {
        let old = br#"{"actor":"a","agency":"G09.20","causation_id":"c","command_id":"c","correlation_id":"","desk":"G09.20","request_sha256":"s:1","role":"desk_officer"}"#;
        let read = EventMetadata::read(old).unwrap();
        assert_eq!((read.actor.as_str(), read.agency.as_str()), ("a", "G09.20"));
        assert_eq!(read.request_fingerprint.as_deref(), Some("s:1"));
        assert_eq!(EventMetadata::read(b"{}"), Some(EventMetadata::default()));
        assert_eq!(EventMetadata::read(b"[1]"), None);
    }
}
