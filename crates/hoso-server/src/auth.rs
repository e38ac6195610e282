//! Who is calling, and what they may do.
//!
//! Callers send `authorization: Bearer <token>`. The tokens file stores only the SHA-256 of each
//! token, with the officer (or service account) it stands for: a subject, a role and a unit code;
//! with single sign-on, the token may instead be a JWT of the province's identity provider
//! ([`crate::sso`]), whose claims give the same three.
//! The actor recorded in every event's metadata comes from here, never from the request body.
//!
//! What each role may do is one table, [`Action::roles`], checked by one gate, [`authorize`], in
//! every service; `docs/operations.md` prints it ([`role_matrix_markdown`], kept equal by a test).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use hoso_domain::CommandKind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ServiceError;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works at a one-stop desk.
    DeskOfficer,
    /// Works at a handling agency.
    AgencyOfficer,
    /// Reads and verifies histories.
    Auditor,
    /// Runs the service.
    Operator,
    /// A service account of another system of the province (the national portal's connector, a
    /// data warehouse) that follows the change feed.
    Integration,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::DeskOfficer,
        Role::AgencyOfficer,
        Role::Auditor,
        Role::Operator,
        Role::Integration,
    ];

    /// The name used in files and metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DeskOfficer => "desk_officer",
            Role::AgencyOfficer => "agency_officer",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Integration => "integration",
        }
    }

    /// Parses a role name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The officer's or service account's id (never a citizen's).
    pub subject: String,
    /// What they may do.
    pub role: Role,
    /// Their unit: the desk's unit code for a desk officer, the agency's code for an agency
    /// officer.
    pub agency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    sha256: String,
    subject: String,
    role: Role,
    #[serde(default)]
    agency: String,
}

/// The known tokens, by hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], Caller>,
}

impl Tokens {
    /// Parses a tokens file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Tokens> {
        let file: TokensFile = toml::from_str(text).with_context(|| format!("{origin} is not a valid tokens file"))?;
        let mut by_hash = HashMap::new();
        for (i, entry) in file.tokens.into_iter().enumerate() {
            let Some(hash) = parse_hex32(&entry.sha256) else {
                bail!(
                    "{origin}: tokens[{i}].sha256 must be 64 lowercase hexadecimal digits (the SHA-256 of the token)"
                );
            };
            if entry.subject.trim().is_empty() {
                bail!("{origin}: tokens[{i}].subject is empty; name the officer or service account");
            }
            if matches!(entry.role, Role::DeskOfficer | Role::AgencyOfficer) && entry.agency.trim().is_empty() {
                bail!("{origin}: tokens[{i}].agency is required for a {}", entry.role);
            }
            let caller = Caller {
                subject: entry.subject,
                role: entry.role,
                agency: entry.agency,
            };
            if by_hash.insert(hash, caller).is_some() {
                bail!("{origin}: tokens[{i}] repeats the hash of an earlier token");
            }
        }
        Ok(Tokens { by_hash })
    }

    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<Tokens> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read the tokens file {}", path.display()))?;
        Tokens::parse(&text, &path.display().to_string())
    }

    /// The caller a token stands for.
    pub fn caller(&self, token: &str) -> Option<&Caller> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash.get(&hash)
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The SHA-256 of a token, as stored in a tokens file.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh random token (244 random bits from the system's generator).
pub fn new_token() -> String {
    format!(
        "hoso_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A tokens-file entry for `token`, written by the TOML serializer so that any subject (a
/// Vietnamese name, quotes, backslashes) reads back as it was given.
pub fn token_entry(token: &str, subject: &str, role: Role, agency: &str) -> String {
    #[derive(Serialize)]
    struct Entry<'a> {
        sha256: String,
        subject: &'a str,
        role: &'static str,
        agency: &'a str,
    }
    #[derive(Serialize)]
    struct File<'a> {
        tokens: [Entry<'a>; 1],
    }
    let file = File {
        tokens: [Entry {
            sha256: hash_token(token),
            subject,
            role: role.as_str(),
            agency,
        }],
    };
    // An array of one table of strings always has a TOML form.
    toml::to_string(&file).expect("a tokens entry of strings always serializes to TOML")
}

/// What a caller asks to do: the rows of the role matrix ([`Action::roles`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Record a desk command, where the dossier's handling agency is not known: in front of the
    /// request, or on a dossier not yet received.
    Record(CommandKind),
    /// Record a desk command on a dossier handled by this agency.
    RecordOn(CommandKind, &'a str),
    /// Read a dossier's current state.
    ReadDossier,
    /// Read the reports: figures, the dossier list, the green-lane board, the disclosure and the
    /// projection's status.
    ReadReports,
    /// Read the reference data: the catalogue and the calendar.
    ReadReference,
    /// Replay histories and verify chains.
    Audit,
    /// Read the server's status.
    Status,
    /// Load reference data (a catalogue decision, a holiday notice).
    LoadReference,
    /// Import a dossier's history from another system.
    Import,
    /// Rebuild the projections.
    Rebuild,
    /// Follow the change feed.
    FollowFeed,
    /// Keep a named feed consumer: subscribe as it, record its checkpoint in the log.
    AcknowledgeFeed,
    /// Reload the tokens file and the identity provider's keys.
    ReloadCredentials,
}

impl Action<'_> {
    /// Every row of the matrix, in the order the docs print them: each desk command, then
    /// everything else.
    pub fn rows() -> impl Iterator<Item = Action<'static>> {
        CommandKind::ALL.iter().map(|kind| Action::Record(*kind)).chain([
            Action::ReadDossier,
            Action::ReadReports,
            Action::ReadReference,
            Action::Audit,
            Action::Status,
            Action::LoadReference,
            Action::Import,
            Action::Rebuild,
            Action::FollowFeed,
            Action::AcknowledgeFeed,
            Action::ReloadCredentials,
        ])
    }

    /// The role matrix: which roles may take this action. The only table of it; the docs print it
    /// ([`role_matrix_markdown`]).
    pub fn roles(self) -> &'static [Role] {
        use CommandKind::*;
        use Role::{AgencyOfficer, Auditor, DeskOfficer, Integration, Operator};
        match self {
            Action::Record(kind) | Action::RecordOn(kind, _) => match kind {
                ProcessDossier | IssueEResult | SendApology => &[AgencyOfficer],
                DigitizeDossier | RequestSupplement | ReceiveSupplement => &[DeskOfficer, AgencyOfficer],
                // The national-portal connector records the portal's answers as an integration account.
                RecordNationalPortalSync => &[DeskOfficer, Operator, Integration],
                ReceiveDossier | PayOnline | ReturnResult | RateSatisfaction | Withdraw | RefuseAtIntake => {
                    &[DeskOfficer]
                }
            },
            Action::ReadDossier | Action::ReadReports | Action::ReadReference => &Role::ALL,
            Action::Audit | Action::Status => &[Auditor, Operator],
            Action::LoadReference | Action::Import | Action::Rebuild => &[Operator],
            Action::FollowFeed => &[Auditor, Operator, Integration],
            Action::AcknowledgeFeed => &[Operator, Integration],
            Action::ReloadCredentials => &[Operator],
        }
    }

    /// Recording `kind` on a dossier handled by `handling_agency` (`None` before receipt).
    pub fn record(kind: CommandKind, handling_agency: Option<&str>) -> Action<'_> {
        match handling_agency {
            Some(agency) => Action::RecordOn(kind, agency),
            None => Action::Record(kind),
        }
    }

    /// Whether the action is bound to the dossier's handling agency for `role`: an agency officer
    /// acts only on the dossiers of their own agency, and processing steps, e-results and apology
    /// letters are the handling agency's alone; desks act on any dossier of the province
    /// (boundary-free intake).
    fn agency_bound(self, role: Role) -> bool {
        match self {
            Action::Record(kind) | Action::RecordOn(kind, _) => {
                role == Role::AgencyOfficer
                    || matches!(
                        kind,
                        CommandKind::ProcessDossier | CommandKind::IssueEResult | CommandKind::SendApology
                    )
            }
            _ => false,
        }
    }

    /// Why `role` may not take this action, in words for the officer.
    fn refusal(self, role: Role) -> String {
        match self {
            Action::Record(_) | Action::RecordOn(..) if self.roles() == [Role::AgencyOfficer] => format!(
                "only officers of the dossier's handling agency may record processing steps, e-results and apology letters; you are a {role}"
            ),
            Action::Record(_) | Action::RecordOn(..) => format!("a {role} may not record this"),
            Action::LoadReference => format!("a {role} may not load reference data; it is for operators"),
            Action::Import => "only operators may import histories".to_owned(),
            Action::Rebuild => "only operators may rebuild the projections".to_owned(),
            Action::FollowFeed => {
                format!(
                    "a {role} may not follow the change feed; it is for integration accounts, auditors and operators"
                )
            }
            Action::AcknowledgeFeed => format!(
                "a {role} may not keep a named feed consumer and its checkpoint; it is for integration accounts and operators (subscribe without `consumer` to read the feed)"
            ),
            Action::ReloadCredentials => "only operators may reload the credentials".to_owned(),
            Action::ReadDossier | Action::ReadReports | Action::ReadReference | Action::Audit | Action::Status => {
                format!("a {role} may not use this; it is for auditors and operators")
            }
        }
    }

    /// The action's name in the docs' table.
    fn label(self) -> String {
        match self {
            Action::Record(kind) | Action::RecordOn(kind, _) => {
                format!("`DeskService/{}`", hoso_api::convert::wire_name(kind).method)
            }
            Action::ReadDossier => "read a dossier (`DossierQueryService`)".to_owned(),
            Action::ReadReports => "reports (`ReportsService`, except `RebuildProjections`)".to_owned(),
            Action::ReadReference => "reference data (`ReferenceService`)".to_owned(),
            Action::Audit => "replay and verify (`AuditService`)".to_owned(),
            Action::Status => "status (`AdminService/GetStatus`)".to_owned(),
            Action::LoadReference => "load reference data (`AdminService/LoadCatalogue`, `LoadCalendar`)".to_owned(),
            Action::Import => "import histories (`AdminService/ImportDossier`)".to_owned(),
            Action::Rebuild => "rebuild the projections (`ReportsService/RebuildProjections`)".to_owned(),
            Action::FollowFeed => "follow the change feed (`FeedService/Subscribe`)".to_owned(),
            Action::AcknowledgeFeed => {
                "keep a named feed consumer (`FeedService/Acknowledge`, `Subscribe` with `consumer`)".to_owned()
            }
            Action::ReloadCredentials => "reload the credentials (`AdminService/ReloadCredentials`)".to_owned(),
        }
    }
}

/// Whether `caller` may take `action`: the one gate of every service. `Err` says why not, in
/// words for the officer.
pub fn authorize(caller: &Caller, action: Action<'_>) -> Result<(), ServiceError> {
    if !action.roles().contains(&caller.role) {
        return Err(ServiceError::PermissionDenied(action.refusal(caller.role)));
    }
    match action {
        Action::RecordOn(_, agency) if action.agency_bound(caller.role) && agency != caller.agency => {
            Err(ServiceError::PermissionDenied(format!(
                "this dossier is handled by {agency}; you are an officer of {}, so you may not record this on it",
                caller.agency
            )))
        }
        _ => Ok(()),
    }
}

/// The role matrix as a Markdown table, as `docs/operations.md` prints it (a test keeps the two
/// equal): "yes", "own agency" (only on the dossiers of the caller's own agency) or "no".
pub fn role_matrix_markdown() -> String {
    let mut out = String::from("| Action |");
    for role in Role::ALL {
        out.push_str(&format!(" `{role}` |"));
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    for action in Action::rows() {
        out.push_str(&format!("| {} |", action.label()));
        for role in Role::ALL {
            let cell = if !action.roles().contains(&role) {
                "no"
            } else if action.agency_bound(role) {
                "own agency"
            } else {
                "yes"
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
