//! The national portal's codes a dossier carries: its status and its submission channel. A leaf
//! module, so that errors and events can name them without depending on the dossier's fold.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The national portal's dossier status codes, used by every one-stop system that syncs to it.
///
/// Persisted as its code (1 to 10). The event log has no event for "registered online" (1: the
/// registration happens on the portal before the desk receives it) nor for "awaiting fee payment"
/// (6: fees are mostly paid at intake, in cash or online, and the log cannot tell when one becomes
/// due), so [`crate::evolve`] never yields those two; they exist to read the portal's own data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum PortalStatus {
    /// 1: registered online.
    RegisteredOnline,
    /// 2: received.
    Received,
    /// 3: refused at intake.
    RefusedAtIntake,
    /// 4: in progress.
    InProgress,
    /// 5: supplement requested.
    SupplementRequested,
    /// 6: awaiting fee payment.
    AwaitingFeePayment,
    /// 7: withdrawn by the applicant.
    Withdrawn,
    /// 8: processing stopped.
    Stopped,
    /// 9: processed, result ready.
    Processed,
    /// 10: result returned.
    ResultReturned,
}

impl PortalStatus {
    /// All statuses, by code.
    pub const ALL: [PortalStatus; 10] = [
        PortalStatus::RegisteredOnline,
        PortalStatus::Received,
        PortalStatus::RefusedAtIntake,
        PortalStatus::InProgress,
        PortalStatus::SupplementRequested,
        PortalStatus::AwaitingFeePayment,
        PortalStatus::Withdrawn,
        PortalStatus::Stopped,
        PortalStatus::Processed,
        PortalStatus::ResultReturned,
    ];

    /// The portal's code, 1 to 10.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The status with a code.
    pub fn from_code(code: u8) -> Option<PortalStatus> {
        PortalStatus::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// Whether the dossier is closed: nothing may follow but a rating (after return) or a sync.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            PortalStatus::ResultReturned | PortalStatus::Withdrawn | PortalStatus::RefusedAtIntake
        )
    }
}

impl PortalStatus {
    /// The status in words, without its code.
    pub fn name(self) -> &'static str {
        match self {
            PortalStatus::RegisteredOnline => "registered online",
            PortalStatus::Received => "received",
            PortalStatus::RefusedAtIntake => "refused at intake",
            PortalStatus::InProgress => "in progress",
            PortalStatus::SupplementRequested => "supplement requested",
            PortalStatus::AwaitingFeePayment => "awaiting fee payment",
            PortalStatus::Withdrawn => "withdrawn",
            PortalStatus::Stopped => "processing stopped",
            PortalStatus::Processed => "processed",
            PortalStatus::ResultReturned => "result returned",
        }
    }
}

impl fmt::Display for PortalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

impl TryFrom<u8> for PortalStatus {
    type Error = String;
    fn try_from(code: u8) -> Result<PortalStatus, String> {
        PortalStatus::from_code(code).ok_or_else(|| format!("{code} is not a portal status (1-10)"))
    }
}

impl From<PortalStatus> for u8 {
    fn from(status: PortalStatus) -> u8 {
        status.code()
    }
}

/// How a dossier was submitted, with the portal's codes. Persisted as its code (1 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Channel {
    /// 1: in person at the desk.
    InPerson,
    /// 2: online.
    Online,
    /// 3: through the public postal service.
    Postal,
}

impl Channel {
    /// The portal's code, 1 to 3.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The channel with a code.
    pub fn from_code(code: u8) -> Option<Channel> {
        match code {
            1 => Some(Channel::InPerson),
            2 => Some(Channel::Online),
            3 => Some(Channel::Postal),
            _ => None,
        }
    }
}

impl TryFrom<u8> for Channel {
    type Error = String;
    fn try_from(code: u8) -> Result<Channel, String> {
        Channel::from_code(code).ok_or_else(|| format!("{code} is not a channel (1-3)"))
    }
}

impl From<Channel> for u8 {
    fn from(channel: Channel) -> u8 {
        channel.code()
    }
}
