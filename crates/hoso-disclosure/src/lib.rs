//! `hoso-disclosure`: renders the province's monthly disclosure of its index 766 figures
//! (Decision 766/QĐ-TTg), in the shape of the seed letter 578/VPUB-HCC, as JSON, CSV, HTML or
//! XLSX.
//!
//! **What it is.** A pure function, [`render`], from two computed
//! [`Report`]s (this period and the previous one) and [`Options`] to bytes:
//! - a letter's heading: the national heading and motto, the province and issuing body, the
//!   letter's number, place and date (the cut-off's day in UTC+7), the title (its "766/QĐ-TTg"
//!   never broken across lines), the period, the cut-off and a note that the figures count only
//!   the events recorded by the cut-off, a sentence when the period counts no dossier at all, and
//!   the signature block ([`Letter`]);
//! - Appendix I: the province's index 766 indicators this period against the previous one, each
//!   with its numerator, denominator, rate and points, and the change in percentage points and
//!   in points;
//!   Indicator 13's rate is the product of two factors: its row shows digitized / received (the
//!   numerator and denominator that make the product), then a row per factor with its own;
//! - Appendix II: counts per handling unit (in scope, on time, overdue, on-time rate), units
//!   ordered by code, as the letter has it;
//! - Appendix III: each agency's indicators this period, its green-lane on-time rate and its
//!   apology-letter figures;
//! - Appendix IV: the overdue dossiers, one row each (receipt code, procedure, handling unit,
//!   received, due, finished or still open, days late), by unit then receipt code. Days late are
//!   calendar days begun from the due date to the finish, or to the period's end when open; 0 for
//!   a dossier overdue for another reason (a second supplement request).
//!
//! Labels are Vietnamese by default ([`Language::Vi`]), English on request. An indicator that
//! needs data beyond dossiers is shown as absent ("không có dữ liệu"), never as zero; a figure
//! with a zero denominator is shown as "không có hồ sơ" ("no dossiers"), never as 0% or 100%.
//!
//! **What it is not.** It computes no figure: every count comes from `hoso-projections`
//! ([`Report`], [`Figures::indicators`](hoso_projections::figures::Figures::indicators)) and every
//! rate and score is printed from those integers with
//! [`hundredths_text`](hoso_projections::figures::hundredths_text). No I/O, no clock, no floats:
//! the same reports and options always give the same bytes, in every format (the XLSX creation
//! time is the current report's cut-off).
//!
//! # Formats
//!
//! - [`Format::Json`]: the structure below, UTF-8, pretty-printed, with a final newline.
//! - [`Format::Csv`]: UTF-8 with a byte-order mark (so that Excel reads Vietnamese), CRLF line
//!   ends and RFC 4180 quoting; five tables separated by one blank line: the header (field,
//!   value), Appendix I, Appendix II (one row per unit, then the province's total), Appendix III's
//!   indicators (one row per agency and indicator), Appendix III's other figures (one row per
//!   agency) and Appendix IV (one row per overdue dossier). Each table starts with its header row. Rates and points are printed as `50.00`;
//!   a figure without a rate has the text "không có hồ sơ" or "không có dữ liệu" in its rate cell
//!   and, when absent, empty numerator and denominator cells.
//! - [`Format::Html`]: one self-contained page (inline CSS with an A4 print stylesheet, no
//!   external resources) with the tables and two inline SVG bar charts, named by the agencies'
//!   names: the 15 units with the lowest on-time rate, worst first, and the 15 with the most
//!   overdue dossiers, most first (Appendix II has them all). Appendices III and IV start on a
//!   new printed page.
//! - [`Format::Xlsx`]: one sheet per appendix ("Phụ lục I", "Phụ lục II", "Phụ lục IV") and one
//!   per agency, named by its code; counts, rates, points and changes are numbers with number
//!   formats, and no cell holds a list.
//!
//! # The seal
//!
//! [`render_sealed`] adds to any format a statement of what the disclosure counted (the log's
//! position and head hash at the cut-off, a hash of the figures, the options it was rendered
//! with), signed with the province's Ed25519 key, and a "how to verify" block; [`render_again`]
//! renders the same document from figures recomputed elsewhere, to compare byte for byte. The
//! statement, its canonical form and where each format carries it: [`signature`].
//!
//! # The JSON structure (`"schema": "hoso-disclosure/2"`)
//!
//! Keys are stable English identifiers whatever the language; names and texts follow the
//! language. Counts are JSON integers; rates (in percent) and points are strings with two
//! decimals (`"94.77"`), rounded half away from zero from the integers; never floats.
//!
//! ```text
//! {
//!   "schema": "hoso-disclosure/2",
//!   "language": "vi" | "en",
//!   "title": string, "province": string, "note": string,
//!   "letter": { "national_heading", "motto", "province_heading", "issuing_body", "number",
//!               "place_date", "signer_title", "signer_name": string },
//!   "empty": bool, "empty_note": string | null,
//!   "period":          Period,
//!   "previous_period": Period,
//!   "appendix_1": { "title": string, "indicators": [Row] },
//!   "appendix_2": { "title": string, "units": [Unit], "total": Unit (code "", the province) },
//!   "appendix_3": { "title": string, "agencies": [Agency] },
//!   "appendix_4": { "title": string, "note": string, "dossiers": [Overdue] }
//! }
//! Period  = { "start": "2026-03-01", "end": "2026-04-01" (excluded), "label": string,
//!             "cutoff": RFC 3339 in +07:00, "cutoff_text": "dd/mm/yyyy hh:mm:ss (UTC+7)" }
//! Measure = { "status": "measured" | "no_dossiers" | "absent",
//!             "numerator": int | null, "denominator": int | null,   (null only when absent)
//!             "rate": "50.00" | null, "points": "10.00" | null,     (null unless measured)
//!             "text": "50.00%" | "không có hồ sơ" | "không có dữ liệu" }
//! Row     = { "code": "2", "name": string, "max_points": "20.00" | null,
//!             "current": Measure, "previous": Measure,
//!             "change": { "percentage_points": "+10.00" | null, "points": "-1.20" | null },
//!             "factors": [{ "name": string, "current": Measure, "previous": Measure }] }
//! Unit    = { "code": string, "name": string, "in_scope": int, "on_time": int, "overdue": int,
//!             "on_time_rate": Measure }
//! Overdue = { "receipt_code", "procedure", "handling_agency", "handling_agency_name": string,
//!             "received_at", "due_at": RFC 3339 in +07:00, "finished_at": RFC 3339 | null,
//!             "received_text", "due_text", "state_text": string, "days_late": int }
//! Agency  = { "code": string, "name": string, "received": int, "finished": int,
//!             "approved": int, "indicators": [{ "code", "name", "max_points", "figure": Measure }],
//!             "green_lane_on_time": Measure,
//!             "apologies": { "sent": int, "overdue_without_letter": int,
//!                            "promises_kept": Measure } }
//! ```
//!
//! A change is null when either period has no rate (or no points) to compare. Indicator 13's
//! numerator and denominator are digitized / received, whose rate is the product of its factors
//! (digitized of synced, synced of received), as `Figures::indicators` computes it.

use std::collections::BTreeMap;

use hoso_projections::figures::Report;

mod csv;
mod html;
mod labels;
mod model;
pub mod signature;
mod xlsx;

pub use signature::{LogHead, Seal, SealError, SigningKey, VerifyingKey, render_again, render_sealed};

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A documented, stable JSON structure (see the crate docs).
    Json,
    /// CSV tables, UTF-8 with a byte-order mark.
    Csv,
    /// One self-contained HTML page with inline SVG charts.
    Html,
    /// An Excel workbook.
    Xlsx,
}

/// The language of the labels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Language {
    /// Vietnamese, the default.
    #[default]
    Vi,
    /// English.
    En,
}

/// How to render a disclosure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The output format.
    pub format: Format,
    /// The language of the labels.
    pub language: Language,
    /// The province's name, as printed in the header ("Thái Nguyên").
    pub province_name: String,
    /// Display names of the handling agencies, by code; an agency not listed is shown by its
    /// code.
    pub agency_names: BTreeMap<String, String>,
    /// The letter's issuing body, number, place and signer.
    pub letter: Letter,
}

/// What makes the disclosure a letter: who issues it, its number, where, and who signs it. Every
/// field may be empty: the document then prints a default (the province's People's Committee,
/// a blank number to fill in by hand, the province's name, the head of the issuing body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Letter {
    /// The issuing body, under the province's name ("VĂN PHÒNG UBND TỈNH").
    pub issuing_body: String,
    /// The letter's number; `{yyyy}` and `{mm}` become the period's year and month
    /// (`"{mm}/BC-VPUB"` gives `09/BC-VPUB` for September).
    pub number_format: String,
    /// Where it is signed; default the province's name.
    pub place: String,
    /// The signer's title ("KT. CHÁNH VĂN PHÒNG / PHÓ CHÁNH VĂN PHÒNG").
    pub signer_title: String,
    /// The signer's name (an official's, printed under the signature).
    pub signer_name: String,
}

impl Options {
    /// Vietnamese labels and no agency names.
    pub fn new(format: Format, province_name: impl Into<String>) -> Options {
        Options {
            format,
            language: Language::Vi,
            province_name: province_name.into(),
            agency_names: BTreeMap::new(),
            letter: Letter::default(),
        }
    }
}

/// A disclosure that cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureError {
    /// The previous report's period does not end where the current one starts.
    #[error("the previous period ({previous}) does not end where the current period ({current}) starts")]
    PeriodsNotConsecutive {
        /// The current report's period, as printed.
        current: String,
        /// The previous report's period, as printed.
        previous: String,
    },
    /// The cut-off cannot be written as an Excel date (before 1900 or after 9999).
    #[error("the cut-off {0} cannot be an excel creation time")]
    CutoffOutOfRange(String),
    /// The XLSX writer failed.
    #[error("cannot write the xlsx workbook: {0}")]
    Xlsx(String),
    /// The JSON serializer failed.
    #[error("cannot write the json document: {0}")]
    Json(String),
}

/// Whether `report` counts no dossier at all (none received, in scope for on time, approved or
/// finished in its period by its cut-off): its disclosure then says so.
pub fn is_empty(report: &Report) -> bool {
    let p = &report.province;
    p.received == 0 && p.on_time.ratio.denominator == 0 && p.approved == 0 && p.finished == 0
}

/// Renders the disclosure of `current`, compared with `previous` (the period just before it).
///
/// The same reports and options always give the same bytes.
pub fn render(current: &Report, previous: &Report, options: &Options) -> Result<Vec<u8>, DisclosureError> {
    render_with(current, previous, options, None)
}

/// [`render`], with the seal embedded when there is one (see [`signature`]).
fn render_with(
    current: &Report,
    previous: &Report,
    options: &Options,
    seal: Option<&Seal>,
) -> Result<Vec<u8>, DisclosureError> {
    if previous.period.end != current.period.start {
        return Err(DisclosureError::PeriodsNotConsecutive {
            current: current.period.to_string(),
            previous: previous.period.to_string(),
        });
    }
    let disclosure = model::Disclosure::new(current, previous, options);
    let language = options.language;
    match options.format {
        Format::Json => {
            let mut bytes =
                serde_json::to_vec_pretty(&disclosure).map_err(|err| DisclosureError::Json(err.to_string()))?;
            bytes.push(b'\n');
            Ok(match seal {
                Some(seal) => signature::seal_json(bytes, seal),
                None => bytes,
            })
        }
        Format::Csv => {
            let bytes = csv::render(&disclosure);
            Ok(match seal {
                Some(seal) => signature::seal_csv(bytes, seal, language),
                None => bytes,
            })
        }
        Format::Html => {
            let page = html::render(&disclosure);
            Ok(match seal {
                Some(seal) => signature::seal_html(page, seal, language),
                None => page,
            }
            .into_bytes())
        }
        Format::Xlsx => xlsx::render(&disclosure, current.cutoff, seal.map(|s| (s, language))),
    }
}

#[cfg(test)]
mod tests;
