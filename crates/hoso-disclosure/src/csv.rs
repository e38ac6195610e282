//! CSV: UTF-8 with a byte-order mark, CRLF line ends, RFC 4180 quoting, one table per appendix
//! separated by a blank line.

use crate::model::{Disclosure, Measure};

/// A field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

struct Writer {
    out: String,
}

impl Writer {
    fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let line: Vec<String> = cells.iter().map(|c| field(c.as_ref())).collect();
        self.out.push_str(&line.join(","));
        self.out.push_str("\r\n");
    }

    fn blank(&mut self) {
        self.out.push_str("\r\n");
    }
}

fn count(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

fn measure_cells(m: &Measure) -> [String; 4] {
    [
        count(m.numerator),
        count(m.denominator),
        m.rate_cell().to_owned(),
        m.points_cell().to_owned(),
    ]
}

pub(crate) fn render(d: &Disclosure) -> Vec<u8> {
    let l = d.labels;
    let mut w = Writer { out: String::new() };

    let letter = &d.letter;
    w.row(&[l.field, l.value]);
    w.row(&[letter.national_heading, letter.motto]);
    w.row(&[letter.province_heading.as_str(), letter.issuing_body.as_str()]);
    w.row(&[l.number, letter.number.as_str()]);
    w.row(&[letter.place_date.as_str(), ""]);
    w.row(&[l.report, d.title]);
    w.row(&[l.province, &d.province]);
    w.row(&[l.period, &d.period.label]);
    w.row(&[l.cutoff, &d.period.cutoff_text]);
    w.row(&[l.previous_period, &d.previous_period.label]);
    w.row(&[l.previous_cutoff, &d.previous_period.cutoff_text]);
    w.row(&[l.note_label, d.note]);
    if let Some(empty) = d.empty_note {
        w.row(&[l.note_label, empty]);
    }
    w.row(&[letter.signer_title.as_str(), letter.signer_name.as_str()]);
    w.blank();

    let mut header = vec![
        l.indicator_code.to_owned(),
        l.indicator.to_owned(),
        l.max_points.to_owned(),
    ];
    for period in [l.this_period, l.last_period] {
        for column in [l.numerator, l.denominator, l.rate, l.points] {
            header.push(format!("{column} – {period}"));
        }
    }
    header.push(l.change_pp.to_owned());
    header.push(l.change_points.to_owned());
    w.row(&header);
    for row in &d.appendix_1.indicators {
        let mut cells = vec![
            row.code.to_owned(),
            row.name.to_owned(),
            row.max_points.clone().unwrap_or_default(),
        ];
        cells.extend(measure_cells(&row.current));
        cells.extend(measure_cells(&row.previous));
        cells.push(row.change.percentage_points.clone().unwrap_or_default());
        cells.push(row.change.points.clone().unwrap_or_default());
        w.row(&cells);
        for (idx, factor) in row.factors.iter().enumerate() {
            let mut cells = vec![
                format!("{} ({} {})", row.code, l.factor, idx + 1),
                format!("× {}", factor.name),
                String::new(),
            ];
            cells.extend(measure_cells(&factor.current));
            cells.extend(measure_cells(&factor.previous));
            cells.extend([String::new(), String::new()]);
            w.row(&cells);
        }
    }
    w.blank();

    w.row(&l.appendix_2_columns());
    for unit in d.appendix_2.units.iter().chain([&d.appendix_2.total]) {
        w.row(&[
            unit.code.clone(),
            unit.name.clone(),
            unit.in_scope.to_string(),
            unit.on_time.to_string(),
            unit.overdue.to_string(),
            unit.on_time_rate.rate_cell().to_owned(),
        ]);
    }
    w.blank();

    w.row(&[
        l.unit_code,
        l.unit,
        l.indicator_code,
        l.indicator,
        l.max_points,
        l.numerator,
        l.denominator,
        l.rate,
        l.points,
    ]);
    for agency in &d.appendix_3.agencies {
        for indicator in &agency.indicators {
            let mut cells = vec![
                agency.code.clone(),
                agency.name.clone(),
                indicator.code.to_owned(),
                indicator.name.to_owned(),
                indicator.max_points.clone().unwrap_or_default(),
            ];
            cells.extend(measure_cells(&indicator.figure));
            w.row(&cells);
        }
    }
    w.blank();

    let mut header = vec![
        l.unit_code.to_owned(),
        l.unit.to_owned(),
        l.received.to_owned(),
        l.finished.to_owned(),
        l.approved.to_owned(),
    ];
    for column in [l.numerator, l.denominator, l.rate] {
        header.push(format!("{} – {column}", l.green_lane_on_time));
    }
    header.push(l.apologies_sent.to_owned());
    header.push(l.overdue_without_letter.to_owned());
    for column in [l.numerator, l.denominator, l.rate] {
        header.push(format!("{} – {column}", l.promises_kept));
    }
    w.row(&header);
    for agency in &d.appendix_3.agencies {
        let g = &agency.green_lane_on_time;
        let p = &agency.apologies.promises_kept;
        w.row(&[
            agency.code.clone(),
            agency.name.clone(),
            agency.received.to_string(),
            agency.finished.to_string(),
            agency.approved.to_string(),
            count(g.numerator),
            count(g.denominator),
            g.rate_cell().to_owned(),
            agency.apologies.sent.to_string(),
            agency.apologies.overdue_without_letter.to_string(),
            count(p.numerator),
            count(p.denominator),
            p.rate_cell().to_owned(),
        ]);
    }

    w.blank();

    w.row(&[
        l.receipt_code,
        l.procedure,
        l.unit_code,
        l.handling_agency,
        l.received_at,
        l.due_at,
        l.state,
        l.days_late,
    ]);
    for dossier in &d.appendix_4.dossiers {
        w.row(&[
            dossier.receipt_code.clone(),
            dossier.procedure.clone(),
            dossier.handling_agency.clone(),
            dossier.handling_agency_name.clone(),
            dossier.received_text.clone(),
            dossier.due_text.clone(),
            dossier.state_text.clone(),
            dossier.days_late.to_string(),
        ]);
    }

    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend_from_slice(w.out.as_bytes());
    bytes
}
