//! The XLSX form: the sheet named "Danh mục" if there is one, else the first sheet.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

use crate::Rows;
use crate::columns::{Column, normalize};
use crate::error::FileError;
use crate::rows::{TableRow, read_table};

/// The sheet read when the workbook has it.
const SHEET: &str = "Danh mục";

/// Reads a catalogue XLSX workbook: the sheet "Danh mục" if present, else the first sheet, in the
/// same layout as the CSV form.
pub fn read_xlsx(bytes: &[u8]) -> Result<Rows, FileError> {
    let unreadable = |error: calamine::XlsxError| {
        FileError::Unreadable(format!(
            "the file cannot be read as an XLSX workbook ({error}); save it from the spreadsheet as \"Excel Workbook (.xlsx)\" or as \"CSV UTF-8\""
        ))
    };
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(unreadable)?;
    let names = workbook.sheet_names();
    let name = names
        .iter()
        .find(|n| normalize(n) == normalize(SHEET))
        .or_else(|| names.first())
        .cloned()
        .ok_or_else(|| FileError::Unreadable("the workbook has no sheet".to_owned()))?;
    let range = workbook.worksheet_range(&name).map_err(unreadable)?;
    let (first_row, first_column) = range.start().unwrap_or((0, 0));
    let first_column = first_column as usize;
    // The procedure code's column, found in the header, so that a code typed as a number
    // (1.00123, Excel having dropped the trailing zero) reads back with its six decimals.
    let mut code_column = None;
    let mut table: Vec<TableRow> = Vec::new();
    for (i, cells) in range.rows().enumerate() {
        let row = first_row as usize + i + 1;
        let mut texts = vec![String::new(); first_column];
        for (j, cell) in cells.iter().enumerate() {
            let column = first_column + j;
            let text = match cell {
                Data::Float(f) if code_column == Some(column) && (0.0..10.0).contains(f) => format!("{f:.6}"),
                other => text_of(other),
            };
            if code_column.is_none() && Column::from_header(&text) == Some(Column::Code) {
                code_column = Some(column);
            }
            texts.push(text);
        }
        table.push((row, texts));
    }
    read_table(table)
}

/// A cell's text: whole numbers without a decimal point, the rest as the cell shows it.
fn text_of(cell: &Data) -> String {
    match cell {
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::Bool(true) => "true".to_owned(),
        Data::Bool(false) => "false".to_owned(),
        other => other.to_string(),
    }
}
