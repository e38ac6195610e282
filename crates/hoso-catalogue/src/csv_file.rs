//! The CSV form: UTF-8 (with or without a byte-order mark), comma or semicolon separated (found
//! from the header line), one row per procedure.

use hoso_domain::ProcedureEntry;

use crate::Rows;
use crate::columns::{self, Column};
use crate::error::{Collector, FileError};
use crate::rows::{TableRow, is_header_text, read_table};

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Reads a catalogue CSV file: UTF-8 text, a header row with the catalogue's columns (others are
/// ignored), one row per procedure.
pub fn read_csv(bytes: &[u8]) -> Result<Rows, FileError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let before = bytes.get(..error.valid_up_to()).unwrap_or_default();
            let row = before.iter().filter(|b| **b == b'\n').count() + 1;
            let mut problems = Collector::default();
            problems.push(
                row,
                None,
                "the file is not UTF-8 text (the first character that is not is on this row); save it from the spreadsheet as \"CSV UTF-8\", or convert it to UTF-8",
            );
            problems.into_result()?;
            return Ok(Rows::default());
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(separator(text))
        .from_reader(text.as_bytes());
    let mut table: Vec<TableRow> = Vec::new();
    // Line breaks inside quoted cells so far: a spreadsheet shows such a cell in one row.
    let mut inner_breaks = 0u64;
    for record in reader.records() {
        let record = record.map_err(|error| {
            let row = error
                .position()
                .map(|p| format!("row {}: ", p.line().saturating_sub(inner_breaks)))
                .unwrap_or_default();
            FileError::Unreadable(format!(
                "{row}the CSV file cannot be split into cells ({error}); save it again from the spreadsheet as CSV"
            ))
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(1);
        let row = usize::try_from(line.saturating_sub(inner_breaks)).unwrap_or(usize::MAX);
        inner_breaks += record.iter().map(|c| c.matches('\n').count() as u64).sum::<u64>();
        table.push((row, record.iter().map(str::to_owned).collect()));
    }
    read_table(table)
}

/// The separator of the header line (the first line naming "Mã thủ tục", else the first line
/// with text): `;` when it has more semicolons than commas outside quotes, else `,`.
fn separator(text: &str) -> u8 {
    let lines = || text.lines().filter(|l| !l.trim().is_empty()).take(10);
    let header = lines()
        .find(|line| {
            line.split([',', ';'])
                .any(|cell| is_header_text(cell.trim().trim_matches('"')))
        })
        .or_else(|| lines().next())
        .unwrap_or_default();
    let (mut quoted, mut commas, mut semicolons) = (false, 0, 0);
    for c in header.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => commas += 1,
            ';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

/// The entries as a catalogue CSV file (comma separated, UTF-8 without a byte-order mark, the
/// header first); [`read_csv`] reads it back to the same entries.
pub fn write_csv(entries: &[ProcedureEntry]) -> String {
    let mut out = String::new();
    line(&mut out, Column::ALL.iter().map(|c| c.header().to_owned()));
    for entry in entries {
        let (green_amount, green_unit) = match entry.green_lane_time {
            Some(time) => (time.amount.to_string(), columns::unit_text(time.unit).to_owned()),
            None => (String::new(), String::new()),
        };
        let cells = Column::ALL.map(|column| match column {
            Column::Code => entry.code.to_string(),
            Column::Name => entry.name.clone(),
            Column::Time => entry.statutory_time.amount.to_string(),
            Column::Unit => columns::unit_text(entry.statutory_time.unit).to_owned(),
            Column::Fee => entry.fee_vnd.to_string(),
            Column::FullOnline => columns::yes_no_text(entry.full_online_eligible).to_owned(),
            Column::PaperResult => columns::yes_no_text(entry.paper_result).to_owned(),
            Column::Agencies => entry
                .handling_agencies
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            Column::GreenTime => green_amount.clone(),
            Column::GreenUnit => green_unit.clone(),
            Column::Status => columns::PUBLISHED_TEXT.to_owned(),
        });
        line(&mut out, cells.into_iter());
    }
    out
}

/// One CSV line: cells quoted when they hold a separator, a quote, a line break or outer spaces.
fn line(out: &mut String, cells: impl Iterator<Item = String>) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let quote = cell.contains([',', ';', '"', '\n', '\r']) || cell.trim() != cell;
        if quote {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&cell);
        }
    }
    out.push('\n');
}
