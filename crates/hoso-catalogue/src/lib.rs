//! `hoso-catalogue`: the file formats of the province's procedure catalogue (danh mục thủ tục hành
//! chính), read into the domain's [`ProcedureEntry`] values and written back.
//!
//! **What it is.** [`read_csv`] and [`read_xlsx`] read a catalogue file in the shape of the national
//! procedure database's export (Cơ sở dữ liệu quốc gia về thủ tục hành chính): one row per
//! procedure, Vietnamese column headers, unknown columns ignored. They return the [`Rows`] (the
//! entries published and the codes abolished), which [`Rows::into_decision`] turns into a
//! [`Decision`] once the caller gives its number and effective date (those come from the command
//! line, not the file). [`write_csv`] writes entries in the same format. A file with mistakes gives
//! one [`FileError`] listing up to 20 of them, each naming the row as a spreadsheet shows it and the
//! column, in words a provincial administrator can act on. `docs/catalogue.md` describes the format.
//!
//! **What it is not.** No server, no files, no I/O: callers read the bytes and hand them over, and
//! do what they like with the rows (the `hoso catalogue load` command sends them to a server, which
//! keeps decisions and decides which entry is in force: see `hoso_domain::catalogue`).

mod columns;
mod csv_file;
mod error;
mod rows;
mod xlsx_file;

use chrono::NaiveDate;
use hoso_domain::{Decision, ProcedureCode, ProcedureEntry};

pub use crate::csv_file::{read_csv, write_csv};
pub use crate::error::{FileError, Problem};
pub use crate::xlsx_file::read_xlsx;

/// What a catalogue file lists: the procedures it publishes (or amends) and the codes it abolishes,
/// in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// The procedures published, with their values.
    pub entries: Vec<ProcedureEntry>,
    /// The procedures abolished (Trạng thái "Bãi bỏ").
    pub abolished: Vec<ProcedureCode>,
}

impl Rows {
    /// The decision that publishes these rows: its number (e.g. `1234/QĐ-UBND`) and the local date
    /// it is in force from.
    pub fn into_decision(self, number: impl Into<String>, effective_from: NaiveDate) -> Decision {
        Decision {
            number: number.into(),
            effective_from,
            entries: self.entries,
            abolished: self.abolished,
        }
    }
}

#[cfg(test)]
mod tests;
