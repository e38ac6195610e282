//! The province's procedure catalogue (danh mục thủ tục hành chính): for each procedure code, the
//! values a receipt takes (name, statutory time, fee, full-online eligibility, paper result,
//! handling agencies, green-lane time), as published by the province's decisions.
//!
//! A [`Decision`] is one publishing decision (its number and effective date) with the entries it
//! publishes or amends and the codes it abolishes; decisions add up, code by code. The entry in
//! force for a code at an instant is the one of the decision with the latest effective date on
//! or before the instant's local date (ties: the decision loaded later); a code abolished by that
//! decision has no entry. Every receipt records which decision it took its values from
//! ([`CatalogueRef`]), so a later decision changes nothing already received.
//!
//! Bytes and files are not this module's business: the server keeps decisions in the log, and
//! the catalogue file formats (CSV, XLSX) are read elsewhere into these types.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::to_local;
use crate::codes::{AgencyCode, ProcedureCode};
use crate::command::ProcedureInput;
use crate::decide::MAX_STATUTORY_AMOUNT;
use crate::procedure::StatutoryTime;

/// One procedure as a decision publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureEntry {
    /// Procedure code, `d.dddddd`.
    pub code: ProcedureCode,
    /// Published name.
    pub name: String,
    /// Published statutory processing time.
    pub statutory_time: StatutoryTime,
    /// Fee in VND, 0 when free.
    pub fee_vnd: i64,
    /// Eligible for full-online service (dịch vụ công trực tuyến toàn trình).
    pub full_online_eligible: bool,
    /// The result is a paper document.
    pub paper_result: bool,
    /// The agencies that may handle it; empty: any agency.
    pub handling_agencies: Vec<AgencyCode>,
    /// The shortened time when the procedure is in the green lane (luồng xanh).
    pub green_lane_time: Option<StatutoryTime>,
}

impl ProcedureEntry {
    /// Checks the values a receipt would take from the entry: a name, a statutory time and a
    /// green-lane time between 1 and [`MAX_STATUTORY_AMOUNT`], a fee that is not negative.
    pub fn check(&self) -> Result<(), String> {
        let code = self.code.as_str();
        if self.name.trim().is_empty() {
            return Err(format!("{code}: the name is empty"));
        }
        for (what, time) in [
            ("statutory time", Some(self.statutory_time)),
            ("green-lane time", self.green_lane_time),
        ] {
            if let Some(time) = time
                && !(1..=MAX_STATUTORY_AMOUNT).contains(&time.amount)
            {
                return Err(format!(
                    "{code}: the {what} {} is not a processing time; give between 1 and {MAX_STATUTORY_AMOUNT}",
                    time.amount
                ));
            }
        }
        if self.fee_vnd < 0 {
            return Err(format!("{code}: the fee {} VND is negative", self.fee_vnd));
        }
        Ok(())
    }
}

/// One publishing decision of the catalogue, as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The decision's number, e.g. `1234/QĐ-UBND`.
    pub number: String,
    /// The local date (UTC+7) from which it is in force.
    pub effective_from: NaiveDate,
    /// The procedures it publishes or amends.
    pub entries: Vec<ProcedureEntry>,
    /// The procedures it abolishes.
    pub abolished: Vec<ProcedureCode>,
}

/// Which catalogue entry a receipt took its procedure's values from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueRef {
    /// The catalogue's version when the decision was loaded: 1 for the first decision loaded, and
    /// one more for each after it.
    pub version: u32,
    /// The decision's number.
    pub decision: String,
    /// The date the decision is in force from.
    pub effective_from: NaiveDate,
}

/// A decision as held by the catalogue, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its version (load order, from 1).
    pub version: u32,
    /// The decision.
    pub decision: Decision,
}

impl Published {
    /// How a receipt records this decision.
    pub fn reference(&self) -> CatalogueRef {
        CatalogueRef {
            version: self.version,
            decision: self.decision.number.clone(),
            effective_from: self.decision.effective_from,
        }
    }
}

/// One code's entry (or abolition) in one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    effective_from: NaiveDate,
    version: u32,
    /// `None`: abolished by this decision.
    entry: Option<usize>,
}

/// Every loaded decision, and per code the entries in force over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    decisions: Vec<Arc<Published>>,
    /// Per code, its versions ordered by (effective date, version).
    codes: BTreeMap<ProcedureCode, Vec<Version>>,
}

impl Default for Catalogue {
    fn default() -> Catalogue {
        Catalogue::new()
    }
}

/// The entry in force for a code, and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InForce<'a> {
    /// The entry.
    pub entry: &'a ProcedureEntry,
    /// Its decision.
    pub published: &'a Published,
}

impl Catalogue {
    /// An empty catalogue.
    pub const fn new() -> Catalogue {
        Catalogue {
            decisions: Vec::new(),
            codes: BTreeMap::new(),
        }
    }

    /// Adds a decision as the next version; it must list each code at most once, abolish only
    /// codes it does not also publish, and carry valid entries.
    pub fn publish(&mut self, decision: Decision) -> Result<CatalogueRef, String> {
        if decision.number.trim().is_empty() {
            return Err("the decision's number is empty".to_owned());
        }
        if decision.entries.is_empty() && decision.abolished.is_empty() {
            return Err(format!("decision {} publishes no procedure", decision.number));
        }
        let mut seen = BTreeMap::new();
        for (i, entry) in decision.entries.iter().enumerate() {
            entry.check()?;
            if seen.insert(entry.code.clone(), i).is_some() {
                return Err(format!(
                    "{} is listed twice in decision {}",
                    entry.code.as_str(),
                    decision.number
                ));
            }
        }
        for code in &decision.abolished {
            if seen.contains_key(code) {
                return Err(format!(
                    "{} is both published and abolished by decision {}",
                    code.as_str(),
                    decision.number
                ));
            }
        }
        let version = u32::try_from(self.decisions.len() + 1).map_err(|_| "too many decisions".to_owned())?;
        let published = Arc::new(Published { version, decision });
        let effective_from = published.decision.effective_from;
        let changes = published
            .decision
            .entries
            .iter()
            .enumerate()
            .map(|(i, entry)| (entry.code.clone(), Some(i)))
            .chain(published.decision.abolished.iter().map(|code| (code.clone(), None)));
        for (code, entry) in changes {
            let versions = self.codes.entry(code).or_default();
            versions.push(Version {
                effective_from,
                version,
                entry,
            });
            versions.sort_by_key(|v| (v.effective_from, v.version));
        }
        let reference = published.reference();
        self.decisions.push(published);
        Ok(reference)
    }

    /// The decisions loaded, oldest first.
    pub fn decisions(&self) -> impl Iterator<Item = &Published> {
        self.decisions.iter().map(|d| d.as_ref())
    }

    /// The catalogue's version: the number of decisions loaded.
    pub fn version(&self) -> u32 {
        u32::try_from(self.decisions.len()).unwrap_or(u32::MAX)
    }

    /// Whether no decision is loaded.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// The entry in force for `code` at `at`, if any.
    pub fn in_force(&self, code: &ProcedureCode, at: DateTime<Utc>) -> Option<InForce<'_>> {
        let day = to_local(at).date();
        let version = self.codes.get(code)?.iter().rev().find(|v| v.effective_from <= day)?;
        let published = self.decisions.get(version.version as usize - 1)?;
        let entry = published.decision.entries.get(version.entry?)?;
        Some(InForce {
            entry,
            published: published.as_ref(),
        })
    }

    /// Every entry in force at `at`, by code.
    pub fn all_in_force(&self, at: DateTime<Utc>) -> impl Iterator<Item = InForce<'_>> {
        self.codes.keys().filter_map(move |code| self.in_force(code, at))
    }
}

impl ProcedureEntry {
    /// Whether `agency` may handle the procedure: one the entry lists, or any when it lists none.
    pub fn handled_by(&self, agency: &str) -> bool {
        self.handling_agencies.is_empty() || self.handling_agencies.iter().any(|a| a.as_str() == agency)
    }

    /// The fields whose declared value differs from this entry's, with both values in words, in
    /// the order of the request's fields.
    pub fn differences(&self, declared: &ProcedureInput) -> Vec<Difference> {
        let mut out = Vec::new();
        let mut differ = |field: &'static str, declared: String, catalogue: String| {
            out.push(Difference {
                field,
                declared,
                catalogue,
            });
        };
        if let Some(name) = &declared.name
            && name.trim() != self.name.trim()
        {
            differ("procedure.name", cut(name), cut(&self.name));
        }
        if let Some(time) = declared.statutory_time
            && time != self.statutory_time
        {
            differ(
                "procedure.statutory_time",
                time.to_string(),
                self.statutory_time.to_string(),
            );
        }
        if let Some(eligible) = declared.full_online_eligible
            && eligible != self.full_online_eligible
        {
            differ(
                "procedure.full_online_eligible",
                eligible.to_string(),
                self.full_online_eligible.to_string(),
            );
        }
        if let Some(paper) = declared.paper_result
            && paper != self.paper_result
        {
            differ(
                "procedure.paper_result",
                paper.to_string(),
                self.paper_result.to_string(),
            );
        }
        if let Some(fee) = declared.fee_vnd
            && fee != self.fee_vnd
        {
            differ(
                "procedure.fee_vnd",
                format!("{fee} VND"),
                format!("{} VND", self.fee_vnd),
            );
        }
        out
    }
}

/// A declared value that differs from the catalogue's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The request field.
    pub field: &'static str,
    /// The value sent, in words (cut when long).
    pub declared: String,
    /// The catalogue's value, in words (cut when long).
    pub catalogue: String,
}

/// A text cut to 60 characters for a message.
fn cut(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Where a receipt's procedure values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcedureSource {
    /// From the catalogue entry in force at receipt (the receipt names it).
    Catalogue,
    /// As the caller declared them: an imported history, or a receipt recorded before the server
    /// held a catalogue.
    #[default]
    Declared,
    /// The code is not in the catalogue; the configuration allows such procedures, and the
    /// caller's values were taken.
    OutsideCatalogue,
}

/// How `decide` takes a receipt's procedure values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcedurePolicy {
    /// From the catalogue; a declared value that differs is refused, and so is a code the
    /// catalogue lacks unless `allow_outside` (then the declared values are taken, flagged).
    Catalogue {
        /// Whether codes the catalogue lacks are accepted.
        allow_outside: bool,
    },
    /// As declared (every value required): imported histories keep their own values.
    Declared,
}

#[cfg(test)]
mod tests;
