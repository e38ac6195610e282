//! XLSX: one sheet per appendix and one per agency, written with `rust_xlsxwriter`.
//!
//! Determinism: the document's creation time is the report's cut-off (the writer would otherwise
//! stamp the current time into `docProps/core.xml`); the writer stamps its zip entries with a
//! fixed date. Counts, rates, points and changes are numbers with number formats (`#,##0`, `0.00`,
//! `+0.00;-0.00;0.00`), so that the province can sum and chart them; a rate is its exact
//! hundredths divided by 100, which Excel shows as the text formats print it. No cell holds more
//! than a line: the overdue dossiers have their own sheet, one row each.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError,
};

use crate::DisclosureError;
use crate::model::{Disclosure, Measure, Status};

fn xlsx(err: XlsxError) -> DisclosureError {
    DisclosureError::Xlsx(err.to_string())
}

/// The cell formats of the workbook.
struct Formats {
    title: Format,
    bold: Format,
    note: Format,
    header: Format,
    text: Format,
    text_plain: Format,
    number: Format,
    rate: Format,
    change: Format,
    missing: Format,
}

impl Formats {
    fn new() -> Formats {
        let cell = Format::new().set_border(FormatBorder::Thin).set_align(FormatAlign::Top);
        Formats {
            title: Format::new().set_bold().set_font_size(13),
            bold: Format::new().set_bold(),
            note: Format::new().set_italic(),
            header: cell
                .clone()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_background_color("#E8EEF5"),
            text: cell.clone().set_text_wrap(),
            text_plain: Format::new(),
            number: cell.clone().set_align(FormatAlign::Right).set_num_format("#,##0"),
            rate: cell.clone().set_align(FormatAlign::Right).set_num_format("0.00"),
            change: cell
                .clone()
                .set_align(FormatAlign::Right)
                .set_num_format("+0.00;-0.00;0.00"),
            missing: cell
                .set_italic()
                .set_align(FormatAlign::Center)
                .set_font_color("#6B6B6B"),
        }
    }
}

/// A sheet being written row by row.
struct Sheet<'a> {
    ws: Worksheet,
    row: u32,
    f: &'a Formats,
}

impl<'a> Sheet<'a> {
    fn new(name: &str, f: &'a Formats) -> Result<Sheet<'a>, DisclosureError> {
        let mut ws = Worksheet::new();
        ws.set_name(name).map_err(xlsx)?;
        // A4, landscape, one page wide.
        ws.set_paper_size(9).set_landscape().set_print_fit_to_pages(1, 0);
        Ok(Sheet { ws, row: 0, f })
    }

    fn widths(&mut self, widths: &[u16]) -> Result<(), DisclosureError> {
        for (col, width) in widths.iter().enumerate() {
            self.ws.set_column_width(col as u16, *width).map_err(xlsx)?;
        }
        Ok(())
    }

    fn line(&mut self, text: &str, format: &Format) -> Result<(), DisclosureError> {
        self.ws
            .write_string_with_format(self.row, 0, text, format)
            .map_err(xlsx)?;
        self.row += 1;
        Ok(())
    }

    fn pair(&mut self, label: &str, value: &str) -> Result<(), DisclosureError> {
        self.ws
            .write_string_with_format(self.row, 0, label, &self.f.bold)
            .map_err(xlsx)?;
        self.ws.write_string(self.row, 1, value).map_err(xlsx)?;
        self.row += 1;
        Ok(())
    }

    fn skip(&mut self) {
        self.row += 1;
    }

    fn header(&mut self, columns: &[&str]) -> Result<(), DisclosureError> {
        for (col, text) in columns.iter().enumerate() {
            self.ws
                .write_string_with_format(self.row, col as u16, *text, &self.f.header)
                .map_err(xlsx)?;
        }
        self.row += 1;
        Ok(())
    }

    fn text(&mut self, col: u16, text: &str) -> Result<(), DisclosureError> {
        self.ws
            .write_string_with_format(self.row, col, text, &self.f.text)
            .map_err(xlsx)?;
        Ok(())
    }

    fn count(&mut self, col: u16, n: Option<u64>) -> Result<(), DisclosureError> {
        match n {
            // Counts are far below 2^53: exact as an Excel number.
            Some(n) => self
                .ws
                .write_number_with_format(self.row, col, n as f64, &self.f.number)
                .map_err(xlsx)?,
            None => self.ws.write_blank(self.row, col, &self.f.missing).map_err(xlsx)?,
        };
        Ok(())
    }

    /// A rate or points in hundredths, as a number shown with two decimals; blank when none.
    fn hundredths(&mut self, col: u16, value: Option<u64>) -> Result<(), DisclosureError> {
        match value {
            // At most 10,000 hundredths: exact to two decimals as an Excel number.
            Some(h) => self
                .ws
                .write_number_with_format(self.row, col, h as f64 / 100.0, &self.f.rate)
                .map_err(xlsx)?,
            None => self.ws.write_blank(self.row, col, &self.f.rate).map_err(xlsx)?,
        };
        Ok(())
    }

    /// A signed change in hundredths, as a number shown with its sign; blank when none.
    fn change(&mut self, col: u16, value: Option<i64>) -> Result<(), DisclosureError> {
        match value {
            Some(h) => self
                .ws
                .write_number_with_format(self.row, col, h as f64 / 100.0, &self.f.change)
                .map_err(xlsx)?,
            None => self.ws.write_blank(self.row, col, &self.f.change).map_err(xlsx)?,
        };
        Ok(())
    }

    /// A rate: its number, or the reason there is none in words.
    fn rate(&mut self, col: u16, m: &Measure) -> Result<(), DisclosureError> {
        if m.status == Status::Measured {
            self.hundredths(col, m.rate_hundredths)
        } else {
            self.ws
                .write_string_with_format(self.row, col, &m.text, &self.f.missing)
                .map_err(xlsx)?;
            Ok(())
        }
    }

    /// Numerator, denominator, rate and points from `col`.
    fn measure(&mut self, col: u16, m: &Measure) -> Result<(), DisclosureError> {
        self.count(col, m.numerator)?;
        self.count(col + 1, m.denominator)?;
        if m.status == Status::Measured {
            self.hundredths(col + 2, m.rate_hundredths)?;
            self.hundredths(col + 3, m.points_hundredths)?;
        } else {
            self.ws
                .write_string_with_format(self.row, col + 2, &m.text, &self.f.missing)
                .map_err(xlsx)?;
            self.ws.write_blank(self.row, col + 3, &self.f.missing).map_err(xlsx)?;
        }
        Ok(())
    }

    fn end_row(&mut self) {
        self.row += 1;
    }
}

/// A valid, unique sheet name from `wanted` (at most 31 UTF-16 units, none of `[]:*?/\`).
fn sheet_name(wanted: &str, taken: &mut BTreeSet<String>) -> String {
    let clean: String = wanted
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    let clean = clean.trim_matches('\'');
    let fit = |text: &str, room: usize| -> String {
        let mut out = String::new();
        for c in text.chars() {
            if out.encode_utf16().count() + c.len_utf16() > room {
                break;
            }
            out.push(c);
        }
        out
    };
    let base = if clean.is_empty() {
        "_".to_owned()
    } else {
        fit(clean, 31)
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name.to_lowercase()) {
        let suffix = format!(" ({n})");
        name = format!("{}{suffix}", fit(&base, 31 - suffix.len()));
        n += 1;
    }
    taken.insert(name.to_lowercase());
    name
}

fn creation_time(cutoff: DateTime<Utc>) -> Result<ExcelDateTime, DisclosureError> {
    let out_of_range = || DisclosureError::CutoffOutOfRange(cutoff.to_rfc3339());
    let year = u16::try_from(cutoff.year()).map_err(|_| out_of_range())?;
    ExcelDateTime::from_ymd(year, cutoff.month() as u8, cutoff.day() as u8)
        .and_then(|d| d.and_hms(cutoff.hour() as u16, cutoff.minute() as u8, cutoff.second() as u8))
        .map_err(|_| out_of_range())
}

pub(crate) fn render(
    d: &Disclosure,
    cutoff: DateTime<Utc>,
    seal: Option<(&crate::Seal, crate::Language)>,
) -> Result<Vec<u8>, DisclosureError> {
    let l = d.labels;
    let f = Formats::new();
    let mut workbook = Workbook::new();
    let properties = DocProperties::new()
        .set_title(format!("{} – {} – {}", d.title, d.province, d.period.label))
        .set_company(&d.province)
        .set_creation_datetime(&creation_time(cutoff)?);
    workbook.set_properties(&properties);
    let mut taken = BTreeSet::new();

    // Appendix I, with the letter's heading.
    let letter = &d.letter;
    let mut s = Sheet::new(&sheet_name(l.appendix_1_short, &mut taken), &f)?;
    s.widths(&[14, 40, 10, 10, 10, 10, 10, 10, 10, 10, 10, 14, 12])?;
    s.line(&letter.province_heading, &f.bold)?;
    s.line(&letter.issuing_body, &f.bold)?;
    s.line(&letter.number, &f.text_plain)?;
    s.line(letter.national_heading, &f.bold)?;
    s.line(letter.motto, &f.bold)?;
    s.line(&letter.place_date, &f.note)?;
    s.skip();
    s.line(d.title, &f.title)?;
    s.pair(l.province, &d.province)?;
    s.pair(l.period, &d.period.label)?;
    s.pair(l.cutoff, &d.period.cutoff_text)?;
    s.pair(l.previous_period, &d.previous_period.label)?;
    s.pair(l.previous_cutoff, &d.previous_period.cutoff_text)?;
    s.line(&format!("{}: {}", l.note_label, d.note), &f.note)?;
    if let Some(empty) = d.empty_note {
        s.line(empty, &f.bold)?;
    }
    s.pair(&letter.signer_title, &letter.signer_name)?;
    s.skip();
    s.line(d.appendix_1.title, &f.title)?;
    let this = |c: &str| format!("{c} – {}", l.this_period);
    let last = |c: &str| format!("{c} – {}", l.last_period);
    let mut columns = vec![
        l.indicator_code.to_owned(),
        l.indicator.to_owned(),
        l.max_points.to_owned(),
    ];
    for column in [l.numerator, l.denominator, l.rate, l.points] {
        columns.push(this(column));
    }
    for column in [l.numerator, l.denominator, l.rate, l.points] {
        columns.push(last(column));
    }
    columns.push(l.change_pp.to_owned());
    columns.push(l.change_points.to_owned());
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    s.header(&columns)?;
    for row in &d.appendix_1.indicators {
        s.text(0, row.code)?;
        s.text(1, row.name)?;
        s.hundredths(2, row.max_points_hundredths)?;
        s.measure(3, &row.current)?;
        s.measure(7, &row.previous)?;
        s.change(11, row.change.percentage_points_hundredths)?;
        s.change(12, row.change.points_hundredths)?;
        s.end_row();
        for (idx, factor) in row.factors.iter().enumerate() {
            s.text(0, &format!("{} ({} {})", row.code, l.factor, idx + 1))?;
            s.text(1, &format!("× {}", factor.name))?;
            s.measure(3, &factor.current)?;
            s.measure(7, &factor.previous)?;
            s.end_row();
        }
    }
    workbook.push_worksheet(s.ws);

    // Appendix II: counts per unit.
    let mut s = Sheet::new(&sheet_name(l.appendix_2_short, &mut taken), &f)?;
    s.widths(&[16, 36, 14, 10, 10, 14])?;
    s.line(d.appendix_2.title, &f.title)?;
    s.pair(l.period, &d.period.label)?;
    s.pair(l.cutoff, &d.period.cutoff_text)?;
    s.skip();
    s.header(&l.appendix_2_columns())?;
    for unit in d.appendix_2.units.iter().chain([&d.appendix_2.total]) {
        s.text(0, &unit.code)?;
        s.text(1, &unit.name)?;
        s.count(2, Some(unit.in_scope))?;
        s.count(3, Some(unit.on_time))?;
        s.count(4, Some(unit.overdue))?;
        s.rate(5, &unit.on_time_rate)?;
        s.end_row();
    }
    workbook.push_worksheet(s.ws);

    // Appendix IV: one row per overdue dossier, before the agencies' sheets so it is found.
    let a4 = &d.appendix_4;
    let mut s = Sheet::new(&sheet_name(l.appendix_4_short, &mut taken), &f)?;
    s.widths(&[28, 12, 16, 30, 17, 17, 30, 10])?;
    s.line(a4.title, &f.title)?;
    s.pair(l.period, &d.period.label)?;
    s.pair(l.cutoff, &d.period.cutoff_text)?;
    s.line(a4.note, &f.note)?;
    s.skip();
    s.header(&[
        l.receipt_code,
        l.procedure,
        l.unit_code,
        l.handling_agency,
        l.received_at,
        l.due_at,
        l.state,
        l.days_late,
    ])?;
    for dossier in &a4.dossiers {
        s.text(0, &dossier.receipt_code)?;
        s.text(1, &dossier.procedure)?;
        s.text(2, &dossier.handling_agency)?;
        s.text(3, &dossier.handling_agency_name)?;
        s.text(4, &dossier.received_text)?;
        s.text(5, &dossier.due_text)?;
        s.text(6, &dossier.state_text)?;
        s.count(7, Some(dossier.days_late))?;
        s.end_row();
    }
    workbook.push_worksheet(s.ws);

    // One sheet per agency.
    for agency in &d.appendix_3.agencies {
        let mut s = Sheet::new(&sheet_name(&agency.code, &mut taken), &f)?;
        s.widths(&[34, 40, 10, 10, 10, 12, 10])?;
        s.line(d.appendix_3.title, &f.title)?;
        s.pair(l.unit_code, &agency.code)?;
        s.pair(l.unit, &agency.name)?;
        s.pair(l.period, &d.period.label)?;
        s.pair(l.cutoff, &d.period.cutoff_text)?;
        s.skip();
        s.header(&[
            l.indicator_code,
            l.indicator,
            l.max_points,
            l.numerator,
            l.denominator,
            l.rate,
            l.points,
        ])?;
        for indicator in &agency.indicators {
            s.text(0, indicator.code)?;
            s.text(1, indicator.name)?;
            s.hundredths(2, indicator.max_points_hundredths)?;
            s.measure(3, &indicator.figure)?;
            s.end_row();
        }
        s.skip();
        s.header(&[l.figure, l.value, l.numerator, l.denominator])?;
        for (label, n) in [
            (l.received, agency.received),
            (l.finished, agency.finished),
            (l.approved, agency.approved),
            (l.apologies_sent, agency.apologies.sent),
            (l.overdue_without_letter, agency.apologies.overdue_without_letter),
        ] {
            s.text(0, label)?;
            s.count(1, Some(n))?;
            s.end_row();
        }
        for (label, m) in [
            (l.green_lane_on_time, &agency.green_lane_on_time),
            (l.promises_kept, &agency.apologies.promises_kept),
        ] {
            s.text(0, label)?;
            s.rate(1, m)?;
            s.count(2, m.numerator)?;
            s.count(3, m.denominator)?;
            s.end_row();
        }
        workbook.push_worksheet(s.ws);
    }
    if let Some((seal, language)) = seal {
        workbook.push_worksheet(crate::signature::seal_sheet(seal, language)?);
    }

    workbook.save_to_buffer().map_err(xlsx)
}
