//! A table of cells (from a CSV file or a worksheet) into [`Rows`]: find the header, map the
//! columns, read each row, and report every problem with its row and column.

use std::collections::BTreeMap;

use hoso_domain::{ProcedureCode, ProcedureEntry, StatutoryTime, TimeUnit};

use crate::Rows;
use crate::columns::{self, Column, Status};
use crate::error::{Collector, FileError};

/// How many rows from the top may hold a title before the header.
const HEADER_SEARCH: usize = 10;

/// One row of the table: its number as a spreadsheet shows it (from 1) and its cells' text.
pub(crate) type TableRow = (usize, Vec<String>);

/// Where each known column is in the file.
struct Positions([Option<usize>; Column::ALL.len()]);

impl Positions {
    fn get(&self, column: Column) -> Option<usize> {
        self.0.get(column as usize).copied().flatten()
    }
}

/// Whether a cell is the header of the procedure code's column, which marks the header row.
pub(crate) fn is_header_text(text: &str) -> bool {
    Column::from_header(text) == Some(Column::Code)
}

/// Reads the table's rows (blank rows are skipped; rows above the header are titles).
pub(crate) fn read_table(table: Vec<TableRow>) -> Result<Rows, FileError> {
    let rows: Vec<TableRow> = table
        .into_iter()
        .filter(|(_, cells)| cells.iter().any(|c| !c.trim().is_empty()))
        .collect();
    let mut problems = Collector::default();
    // The header row: the first of the top rows with a cell "Mã thủ tục", else the first.
    let header_at = rows
        .iter()
        .take(HEADER_SEARCH)
        .position(|(_, cells)| cells.iter().any(|c| is_header_text(c)))
        .unwrap_or(0);
    let Some((header_row, header)) = rows.get(header_at) else {
        problems.push(
            1,
            None,
            format!(
                "the file is empty; it needs a header row with the columns {} and one row per procedure",
                quoted(Column::ALL.iter().filter(|c| c.required()).copied())
            ),
        );
        problems.into_result()?;
        return Ok(Rows::default());
    };
    let positions = positions(*header_row, header, &mut problems);
    problems.into_result()?;
    let mut problems = Collector::default();
    let mut out = Rows::default();
    let mut seen: BTreeMap<ProcedureCode, usize> = BTreeMap::new();
    let data = rows.get(header_at + 1..).unwrap_or_default();
    if data.is_empty() {
        problems.push(
            *header_row,
            None,
            "the file has a header but no procedure; add one row per procedure under it",
        );
    }
    for (row, cells) in data {
        let Some(parsed) = read_row(*row, cells, &positions, &mut problems) else {
            continue;
        };
        let code = match &parsed {
            Parsed::Entry(entry) => entry.code.clone(),
            Parsed::Abolished(code) => code.clone(),
        };
        if let Some(first) = seen.get(&code) {
            problems.push(
                *row,
                Some(Column::Code.header()),
                format!("{code} is listed twice, in rows {first} and {row}; keep one row per procedure"),
            );
            continue;
        }
        seen.insert(code, *row);
        match parsed {
            Parsed::Entry(entry) => out.entries.push(entry),
            Parsed::Abolished(code) => out.abolished.push(code),
        }
    }
    problems.into_result()?;
    Ok(out)
}

fn quoted(columns: impl Iterator<Item = Column>) -> String {
    columns
        .map(|c| format!("\"{}\"", c.header()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The known columns' positions; a column found twice, a required one missing or half the
/// green-lane pair is a problem of the header row.
fn positions(row: usize, header: &[String], problems: &mut Collector) -> Positions {
    let mut positions = Positions([None; Column::ALL.len()]);
    for (i, text) in header.iter().enumerate() {
        let Some(column) = Column::from_header(text) else {
            continue;
        };
        if let Some(slot) = positions.0.get_mut(column as usize) {
            match slot {
                Some(first) => problems.push(
                    row,
                    Some(column.header()),
                    format!(
                        "the column appears twice (columns {} and {}); keep one",
                        letters(*first),
                        letters(i)
                    ),
                ),
                None => *slot = Some(i),
            }
        }
    }
    let missing: Vec<Column> = Column::ALL
        .into_iter()
        .filter(|c| c.required() && positions.get(*c).is_none())
        .collect();
    if !missing.is_empty() {
        let found = header.iter().filter(|h| !h.trim().is_empty()).count();
        problems.push(
            row,
            None,
            format!(
                "the header row lacks the column{} {}; add {} (other columns may stay and are ignored; {found} header{} found in this row)",
                if missing.len() == 1 { "" } else { "s" },
                quoted(missing.iter().copied()),
                if missing.len() == 1 { "it" } else { "them" },
                if found == 1 { "" } else { "s" },
            ),
        );
    }
    for (have, lack) in [
        (Column::GreenTime, Column::GreenUnit),
        (Column::GreenUnit, Column::GreenTime),
    ] {
        if positions.get(have).is_some() && positions.get(lack).is_none() {
            problems.push(
                row,
                None,
                format!(
                    "the header row has the column \"{}\" but not \"{}\"; the green lane needs both columns, or neither",
                    have.header(),
                    lack.header()
                ),
            );
        }
    }
    positions
}

/// A column's letters as a spreadsheet shows them: 0 is A, 26 is AA.
fn letters(mut index: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

enum Parsed {
    Entry(ProcedureEntry),
    Abolished(ProcedureCode),
}

/// One row; its problems go to `problems`.
fn read_row(row: usize, cells: &[String], positions: &Positions, problems: &mut Collector) -> Option<Parsed> {
    let cell = |column: Column| -> &str {
        positions
            .get(column)
            .and_then(|i| cells.get(i))
            .map(|c| c.trim())
            .unwrap_or_default()
    };
    let before = problems.len();
    let mut check = |column: Column, result: Result<(), String>| {
        if let Err(message) = result {
            problems.push(row, Some(column.header()), message);
        }
    };
    let status = match columns::status(cell(Column::Status)) {
        Ok(status) => status,
        Err(message) => {
            check(Column::Status, Err(message));
            Status::Published
        }
    };
    let code = columns::procedure_code(cell(Column::Code));
    if status == Status::Abolished {
        return match code {
            Ok(code) => Some(Parsed::Abolished(code)),
            Err(message) => {
                check(Column::Code, Err(message));
                None
            }
        };
    }
    let name = columns::name(cell(Column::Name));
    let unit = columns::unit(cell(Column::Unit));
    let amount = columns::amount(cell(Column::Time), unit.as_ref().ok().copied());
    let fee = columns::fee(cell(Column::Fee));
    let full_online = columns::yes_no(cell(Column::FullOnline));
    let paper = columns::yes_no(cell(Column::PaperResult));
    let agencies = columns::agencies(cell(Column::Agencies));
    let green = green_lane(cell(Column::GreenTime), cell(Column::GreenUnit));
    let code = code.map_err(|m| check(Column::Code, Err(m))).ok();
    let name = name.map_err(|m| check(Column::Name, Err(m))).ok();
    let amount = amount.map_err(|m| check(Column::Time, Err(m))).ok();
    let unit = unit.map_err(|m| check(Column::Unit, Err(m))).ok();
    let fee = fee.map_err(|m| check(Column::Fee, Err(m))).ok();
    let full_online = full_online.map_err(|m| check(Column::FullOnline, Err(m))).ok();
    let paper = paper.map_err(|m| check(Column::PaperResult, Err(m))).ok();
    let agencies = match agencies {
        Ok(agencies) => Some(agencies),
        Err(messages) => {
            for message in messages {
                check(Column::Agencies, Err(message));
            }
            None
        }
    };
    let green = green.map_err(|(column, m)| check(column, Err(m))).ok();
    let (
        Some(code),
        Some(name),
        Some(amount),
        Some(unit),
        Some(fee),
        Some(full_online),
        Some(paper),
        Some(agencies),
        Some(green),
    ) = (code, name, amount, unit, fee, full_online, paper, agencies, green)
    else {
        return None;
    };
    let entry = ProcedureEntry {
        code,
        name,
        statutory_time: StatutoryTime { amount, unit },
        fee_vnd: fee,
        full_online_eligible: full_online,
        paper_result: paper,
        handling_agencies: agencies,
        green_lane_time: green,
    };
    if let Err(message) = entry.check() {
        problems.push(row, None, message);
        return None;
    }
    (problems.len() == before).then_some(Parsed::Entry(entry))
}

/// The green-lane time from its two cells: both empty, or both given.
fn green_lane(amount: &str, unit: &str) -> Result<Option<StatutoryTime>, (Column, String)> {
    let both = format!(
        "fill both \"{}\" and \"{}\", or neither",
        Column::GreenTime.header(),
        Column::GreenUnit.header()
    );
    match (amount.is_empty(), unit.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Err((
            Column::GreenUnit,
            format!("the green-lane time {amount} has no unit; {both}"),
        )),
        (true, false) => Err((
            Column::GreenTime,
            format!("the green-lane unit {unit:?} has no time; {both}"),
        )),
        (false, false) => {
            let unit: TimeUnit = columns::unit(unit).map_err(|m| (Column::GreenUnit, m))?;
            let amount = columns::amount(amount, Some(unit)).map_err(|m| (Column::GreenTime, m))?;
            Ok(Some(StatutoryTime { amount, unit }))
        }
    }
}
