//! Who is calling, and what they may do.
//!
//! Callers send `authorization: Bearer <token>`. The tokens file stores only the SHA-256 of each
//! token, with the officer (or service account) it stands for: a subject, a role and a unit code.
//! The actor recorded in every event's metadata comes from here, never from the request body.
//!
//! What each role may do:
//! - desk officer (`desk_officer`): receive any dossier of the province (boundary-free intake),
//!   digitize, request and receive supplements, record online payments, return results, record
//!   ratings, withdrawals, refusals at intake and portal syncs; read dossiers;
//! - agency officer (`agency_officer`): on dossiers of their own handling agency only, processing
//!   steps, e-results, apology letters, digitization and supplements; read dossiers;
//! - auditor (`auditor`): read dossiers, replay histories, verify chains, read the status;
//! - operator (`operator`): what an auditor may, plus portal sync records.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use hoso_domain::{Command, CommandKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::DeskOfficer, Role::AgencyOfficer, Role::Auditor, Role::Operator];

    /// The name used in files and metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DeskOfficer => "desk_officer",
            Role::AgencyOfficer => "agency_officer",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
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

/// Whether only officers of the dossier's handling agency (of the roles that may) may record it.
fn agency_bound(kind: CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::ProcessDossier | CommandKind::IssueEResult | CommandKind::SendApology
    )
}

/// Whether `role` may ever record commands of `kind` (on some dossier). Checked before the request itself, so
/// a caller who may never record a fact is told so whatever the request holds.
pub fn role_may(role: Role, kind: CommandKind) -> Result<(), String> {
    use CommandKind::*;
    let allowed = match kind {
        ProcessDossier | IssueEResult | SendApology => role == Role::AgencyOfficer,
        DigitizeDossier | RequestSupplement | ReceiveSupplement => {
            matches!(role, Role::DeskOfficer | Role::AgencyOfficer)
        }
        RecordNationalPortalSync => matches!(role, Role::DeskOfficer | Role::Operator),
        ReceiveDossier | PayOnline | ReturnResult | RateSatisfaction | Withdraw | RefuseAtIntake => {
            role == Role::DeskOfficer
        }
    };
    if allowed {
        Ok(())
    } else if agency_bound(kind) {
        Err(format!(
            "only officers of the dossier's handling agency may record processing steps, e-results and apology letters; you are a {role}"
        ))
    } else {
        Err(format!("a {role} may not record this"))
    }
}

/// Whether `caller` may run `command` on a dossier handled by `handling_agency` (`None` before
/// receipt). `Err` says why not, in words for the officer.
pub fn may_command(caller: &Caller, command: &Command, handling_agency: Option<&str>) -> Result<(), String> {
    let kind = command.kind();
    role_may(caller.role, kind)?;
    // An agency officer acts only on the dossiers of their own agency; desks on any dossier of the
    // province (boundary-free intake).
    let agency_checked = agency_bound(kind) || caller.role == Role::AgencyOfficer;
    match handling_agency {
        Some(agency) if agency_checked && agency != caller.agency => Err(format!(
            "this dossier is handled by {agency}; you are an officer of {}, so you may not record this on it",
            caller.agency
        )),
        _ => Ok(()),
    }
}

/// What a caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A dossier's current state.
    ReadDossier,
    /// Replays and chain verification.
    Audit,
    /// The server's status.
    Status,
    /// The reference data: the catalogue and the calendar (every role).
    Reference,
    /// Loading reference data (operators).
    LoadReference,
}

/// Whether `caller` may have `access`.
pub fn may_read(caller: &Caller, access: Access) -> Result<(), String> {
    let allowed = match access {
        Access::ReadDossier | Access::Reference => true,
        Access::Audit | Access::Status => matches!(caller.role, Role::Auditor | Role::Operator),
        Access::LoadReference => caller.role == Role::Operator,
    };
    if allowed {
        Ok(())
    } else if access == Access::LoadReference {
        Err(format!(
            "a {} may not load reference data; it is for operators",
            caller.role
        ))
    } else {
        Err(format!(
            "a {} may not use this; it is for auditors and operators",
            caller.role
        ))
    }
}
