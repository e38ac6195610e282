//! `hoso-disclosure`: renders the province's monthly disclosure of its index 766 figures
//! (Decision 766/QĐ-TTg), in the shape of the seed letter 578/VPUB-HCC, as JSON, CSV, HTML or
//! XLSX.
//!
//! **What it is.** A pure function, [`render`], from two computed
//! [`Report`]s (this period and the previous one) and [`Options`] to bytes:
//! - a header: the province, the period, the cut-off shown in UTC+7 and a note that the figures
//!   count only the events recorded by the cut-off;
//! - Appendix I: the province's index 766 indicators this period against the previous one, each
//!   with its numerator, denominator, rate and points, and the change in percentage points and
//!   in points;
//! - Appendix II: the overdue dossiers per handling unit (in scope, on time, overdue, on-time
//!   rate, and the receipt codes of the overdue dossiers), units ordered by code;
//! - Appendix III: each agency's indicators this period, its green-lane on-time rate and its
//!   apology-letter figures.
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
//!   indicators (one row per agency and indicator) and Appendix III's other figures (one row per
//!   agency). Each table starts with its header row. Rates and points are printed as `50.00`;
//!   a figure without a rate has the text "không có hồ sơ" or "không có dữ liệu" in its rate cell
//!   and, when absent, empty numerator and denominator cells.
//! - [`Format::Html`]: one self-contained page (inline CSS with an A4 print stylesheet, no
//!   external resources) with the tables and two inline SVG bar charts: the on-time rate per
//!   agency and the overdue count per unit.
//! - [`Format::Xlsx`]: one sheet per appendix ("Phụ lục I", "Phụ lục II") and one per agency,
//!   named by its code.
//!
//! # The JSON structure (`"schema": "hoso-disclosure/1"`)
//!
//! Keys are stable English identifiers whatever the language; names and texts follow the
//! language. Counts are JSON integers; rates (in percent) and points are strings with two
//! decimals (`"94.77"`), rounded half away from zero from the integers; never floats.
//!
//! ```text
//! {
//!   "schema": "hoso-disclosure/1",
//!   "language": "vi" | "en",
//!   "title": string, "province": string, "note": string,
//!   "period":          Period,
//!   "previous_period": Period,
//!   "appendix_1": { "title": string, "indicators": [Row] },
//!   "appendix_2": { "title": string, "units": [Unit], "total": Unit (code "", the province) },
//!   "appendix_3": { "title": string, "agencies": [Agency] }
//! }
//! Period  = { "start": "2026-03-01", "end": "2026-04-01" (excluded), "label": string,
//!             "cutoff": RFC 3339 in +07:00, "cutoff_text": "dd/mm/yyyy hh:mm:ss (UTC+7)" }
//! Measure = { "status": "measured" | "no_dossiers" | "absent",
//!             "numerator": int | null, "denominator": int | null,   (null only when absent)
//!             "rate": "50.00" | null, "points": "10.00" | null,     (null unless measured)
//!             "text": "50.00%" | "không có hồ sơ" | "không có dữ liệu" }
//! Row     = { "code": "2", "name": string, "max_points": "20.00" | null,
//!             "current": Measure, "previous": Measure,
//!             "change": { "percentage_points": "+10.00" | null, "points": "-1.20" | null } }
//! Unit    = { "code": string, "name": string, "in_scope": int, "on_time": int, "overdue": int,
//!             "on_time_rate": Measure, "overdue_receipt_codes": [string] }
//! Agency  = { "code": string, "name": string, "received": int, "finished": int,
//!             "approved": int, "indicators": [{ "code", "name", "max_points", "figure": Measure }],
//!             "green_lane_on_time": Measure,
//!             "apologies": { "sent": int, "overdue_without_letter": int,
//!                            "promises_kept": Measure } }
//! ```
//!
//! A change is null when either period has no rate (or no points) to compare. Indicator 13's
//! numerator and denominator are its first factor (digitized of synced); its rate is the product
//! of both factors, as `Figures::indicators` computes it.

use std::collections::BTreeMap;

use hoso_projections::figures::Report;

mod csv;
mod html;
mod labels;
mod model;
mod xlsx;

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
}

impl Options {
    /// Vietnamese labels and no agency names.
    pub fn new(format: Format, province_name: impl Into<String>) -> Options {
        Options {
            format,
            language: Language::Vi,
            province_name: province_name.into(),
            agency_names: BTreeMap::new(),
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

/// Renders the disclosure of `current`, compared with `previous` (the period just before it).
///
/// The same reports and options always give the same bytes.
pub fn render(current: &Report, previous: &Report, options: &Options) -> Result<Vec<u8>, DisclosureError> {
    if previous.period.end != current.period.start {
        return Err(DisclosureError::PeriodsNotConsecutive {
            current: current.period.to_string(),
            previous: previous.period.to_string(),
        });
    }
    let disclosure = model::Disclosure::new(current, previous, options);
    match options.format {
        Format::Json => {
            let mut bytes =
                serde_json::to_vec_pretty(&disclosure).map_err(|err| DisclosureError::Json(err.to_string()))?;
            bytes.push(b'\n');
            Ok(bytes)
        }
        Format::Csv => Ok(csv::render(&disclosure)),
        Format::Html => Ok(html::render(&disclosure).into_bytes()),
        Format::Xlsx => xlsx::render(&disclosure, current.cutoff),
    }
}

#[cfg(test)]
mod tests;
