//! HTML: one self-contained page (inline CSS with an A4 print stylesheet, no external resource)
//! with the tables and two inline SVG bar charts.

use std::fmt::Write as _;

use crate::model::{Disclosure, Measure, Status, Unit};

const STYLE: &str = r#"
:root { --ink: #1a1a1a; --rule: #9e9e9e; --head: #e8eef5; --ok: #2e7d32; --late: #c62828; --muted: #6b6b6b; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1120px; padding: 24px; color: var(--ink);
  font-family: "Times New Roman", "Liberation Serif", "DejaVu Serif", serif; font-size: 15px; line-height: 1.35; }
header { margin-bottom: 16px; padding-bottom: 8px; }
table.letterhead, table.letterhead td, table.signature, table.signature td { border: none; font-size: inherit; }
table.letterhead td { width: 50%; text-align: center; vertical-align: top; padding: 0 4px; }
table.letterhead p { margin: 0; }
.superior { text-transform: uppercase; }
.body, .nation { font-weight: bold; }
.motto { font-weight: bold; text-decoration: underline; }
.number { margin-top: 6px !important; }
.place-date { font-style: italic; margin-top: 6px !important; }
table.signature td { width: 50%; text-align: center; vertical-align: top; }
.signer-title { font-weight: bold; margin: 0; white-space: pre-line; }
.signer-name { font-weight: bold; margin: 56px 0 0; }
.nobr { white-space: nowrap; }
p.empty { font-weight: bold; border: 1px solid var(--late); padding: 6px 8px; margin: 10px 0 0; }
h1 { font-size: 21px; margin: 14px 0 10px; text-align: center; }
h2 { font-size: 17px; margin: 22px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
p.note { font-style: italic; margin: 8px 0 0; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--rule); padding: 3px 5px; vertical-align: top; }
th { background: var(--head); font-weight: bold; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code { white-space: nowrap; }
td.absent, td.nodata { color: var(--muted); font-style: italic; text-align: center; white-space: normal; }
td.codes { font-family: "DejaVu Sans Mono", monospace; font-size: 11px; }
tr.total td { font-weight: bold; background: #f5f5f5; }
tr.factor td { font-style: italic; background: #fafafa; }
p.chart-note, p.annex-note { font-size: 13px; color: var(--muted); margin: 2px 0 8px; flex-basis: 100%; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0 0 8px; flex: 0 1 auto; max-width: 100%; }
figcaption { font-weight: bold; margin-bottom: 4px; }
svg { max-width: 100%; height: auto; font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
svg .bar-ok { fill: var(--ok); }
svg .bar-late { fill: var(--late); }
svg .axis { stroke: var(--ink); stroke-width: 1; }
svg .grid { stroke: #d0d0d0; stroke-width: 1; }
svg text { font-size: 11px; fill: var(--ink); }
svg text.tick { font-size: 11px; fill: var(--muted); }
svg text.value { font-weight: bold; }
article.agency { margin-bottom: 12px; }
@page { size: A4 portrait; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  h1 { font-size: 14pt; }
  h2 { font-size: 12pt; break-after: avoid; }
  h3 { break-after: avoid; }
  table { font-size: 8.5pt; }
  table.letterhead, table.signature { font-size: 10.5pt; }
  #appendix-2-table { font-size: 8pt; }
  #appendix-2-table td, #appendix-2-table th, #appendix-4-table td { padding: 0 3px; line-height: 1.1; }
  #appendix-3, #appendix-4 { break-before: page; }
  thead { display: table-header-group; }
  tr, figure, article.agency { break-inside: avoid; }
  section.appendix { break-before: auto; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// Text escaped for HTML and SVG content and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(out: &mut String, n: Option<u64>) {
    match n {
        Some(n) => {
            let _ = write!(out, r#"<td class="num">{n}</td>"#);
        }
        None => out.push_str(r#"<td class="absent"></td>"#),
    }
}

fn text(out: &mut String, class: &str, value: &str) {
    let _ = write!(out, r#"<td class="{class}">{}</td>"#, esc(value));
}

/// Numerator, denominator, rate and points: four cells.
fn measure(out: &mut String, m: &Measure) {
    match m.status {
        Status::Measured => {
            num(out, m.numerator);
            num(out, m.denominator);
            text(out, "num", m.rate_cell());
            text(out, "num", m.points_cell());
        }
        Status::NoDossiers => {
            num(out, m.numerator);
            num(out, m.denominator);
            let _ = write!(out, r#"<td class="nodata" colspan="2">{}</td>"#, esc(&m.text));
        }
        Status::Absent => {
            let _ = write!(out, r#"<td class="absent" colspan="4">{}</td>"#, esc(&m.text));
        }
    }
}

fn optional(out: &mut String, value: Option<&str>) {
    text(out, "num", value.unwrap_or(""));
}

/// One horizontal bar.
struct Bar {
    label: String,
    /// Its length in pixels, from 0 to `BAR_AREA`.
    length: u64,
    value: String,
}

const LABEL_AREA: u64 = 250;
const BAR_AREA: u64 = 360;
const ROW: u64 = 17;
const TOP: u64 = 10;
/// Units a chart shows, worst first; Appendix II lists them all.
const CHART_UNITS: usize = 15;

/// A chart of horizontal bars, with `ticks` (position from 0 to `BAR_AREA`, label) under the axis.
/// Without bars it is only the sentence `empty`, with no grid for it to overlap.
fn chart(out: &mut String, id: &str, title: &str, empty: &str, class: &str, bars: &[Bar], ticks: &[(u64, String)]) {
    let width = LABEL_AREA + BAR_AREA + 110;
    let height = if bars.is_empty() {
        TOP + ROW + 10
    } else {
        TOP + ROW * bars.len() as u64 + 24
    };
    let _ = write!(
        out,
        r#"<figure><figcaption id="{id}-caption">{title}</figcaption><svg xmlns="http://www.w3.org/2000/svg" id="{id}" role="img" aria-label="{title}" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><title>{title}</title>"#,
        title = esc(title),
    );
    if bars.is_empty() {
        let _ = write!(
            out,
            r#"<text class="empty" x="8" y="{}">{}</text></svg></figure>"#,
            TOP + ROW / 2 + 4,
            esc(empty)
        );
        return;
    }
    let axis_bottom = TOP + ROW * bars.len() as u64;
    for (position, label) in ticks {
        let x = LABEL_AREA + position;
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x}" y1="{TOP}" x2="{x}" y2="{axis_bottom}"/><text class="tick" x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            axis_bottom + 16,
            esc(label)
        );
    }
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LABEL_AREA}" y1="{TOP}" x2="{LABEL_AREA}" y2="{axis_bottom}"/>"#
    );
    for (idx, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * idx as u64 + 3;
        let middle = y + 10;
        let _ = write!(
            out,
            r#"<g class="bar"><text x="{}" y="{middle}" text-anchor="end">{label}</text><rect class="{class}" x="{LABEL_AREA}" y="{y}" width="{}" height="12"><title>{label}: {value}</title></rect><text class="value" x="{}" y="{middle}">{value}</text></g>"#,
            LABEL_AREA - 8,
            bar.length,
            LABEL_AREA + bar.length + 6,
            label = esc(&bar.label),
            value = esc(&bar.value),
        );
    }
    let _ = write!(out, r#"</svg></figure>"#);
}

/// A label for a chart row: the name, cut to fit.
fn short(name: &str) -> String {
    const MAX: usize = 34;
    if name.chars().count() <= MAX {
        name.to_owned()
    } else {
        let mut cut: String = name.chars().take(MAX - 1).collect();
        cut.push('…');
        cut
    }
}

/// The title, with "766/QĐ-TTg" kept on one line.
fn title_html(title: &str) -> String {
    const DECISION: &str = "766/QĐ-TTg";
    match title.find(DECISION) {
        Some(at) => format!(
            r#"{}<span class="nobr">{DECISION}</span>{}"#,
            esc(&title[..at]),
            esc(&title[at + DECISION.len()..])
        ),
        None => esc(title),
    }
}

pub(crate) fn render(d: &Disclosure) -> String {
    let l = d.labels;
    let letter = &d.letter;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – {province} – {period}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<table class="letterhead" id="letterhead"><tr>
<td><p class="superior">{superior}</p><p class="body">{body}</p><p class="number">{number}</p></td>
<td><p class="nation">{nation}</p><p class="motto">{motto}</p><p class="place-date">{place_date}</p></td>
</tr></table>
<h1>{title_html}</h1>
<dl class="meta">
<dt>{period_label}</dt><dd>{period}</dd>
<dt>{cutoff_label}</dt><dd>{cutoff}</dd>
<dt>{previous_label}</dt><dd>{previous}</dd>
<dt>{previous_cutoff_label}</dt><dd>{previous_cutoff}</dd>
</dl>
<p class="note">{note_label}: {note}</p>
"#,
        lang = l.code,
        title = esc(d.title),
        title_html = title_html(d.title),
        province = esc(&d.province),
        superior = esc(&letter.province_heading),
        body = esc(&letter.issuing_body),
        number = esc(&letter.number),
        nation = esc(letter.national_heading),
        motto = esc(letter.motto),
        place_date = esc(&letter.place_date),
        period_label = esc(l.period),
        period = esc(&d.period.label),
        cutoff_label = esc(l.cutoff),
        cutoff = esc(&d.period.cutoff_text),
        previous_label = esc(l.previous_period),
        previous = esc(&d.previous_period.label),
        previous_cutoff_label = esc(l.previous_cutoff),
        previous_cutoff = esc(&d.previous_period.cutoff_text),
        note_label = esc(l.note_label),
        note = esc(d.note),
    );
    if let Some(empty) = d.empty_note {
        let _ = writeln!(out, r#"<p class="empty" id="empty-period">{}</p>"#, esc(empty));
    }
    let _ = write!(
        out,
        r#"<table class="signature" id="signature"><tr><td></td><td><p class="signer-title">{}</p><p class="signer-name">{}</p></td></tr></table>
</header>
"#,
        esc(&letter.signer_title),
        esc(&letter.signer_name),
    );

    // Appendix I.
    let _ = write!(
        out,
        r#"<section class="appendix" id="appendix-1">
<h2>{}</h2>
<table id="appendix-1-table">
<thead>
<tr><th rowspan="2">{}</th><th rowspan="2">{}</th><th rowspan="2">{}</th><th colspan="4">{} ({})</th><th colspan="4">{} ({})</th><th rowspan="2">{}</th><th rowspan="2">{}</th></tr>
<tr>"#,
        esc(d.appendix_1.title),
        esc(l.indicator_code),
        esc(l.indicator),
        esc(l.max_points),
        esc(l.this_period),
        esc(&d.period.label),
        esc(l.last_period),
        esc(&d.previous_period.label),
        esc(l.change_pp),
        esc(l.change_points),
    );
    for _ in 0..2 {
        for column in [l.numerator, l.denominator, l.rate, l.points] {
            let _ = write!(out, "<th>{}</th>", esc(column));
        }
    }
    out.push_str("</tr>\n</thead>\n<tbody>\n");
    for row in &d.appendix_1.indicators {
        out.push_str("<tr>");
        text(&mut out, "code", row.code);
        text(&mut out, "name", row.name);
        optional(&mut out, row.max_points.as_deref());
        measure(&mut out, &row.current);
        measure(&mut out, &row.previous);
        optional(&mut out, row.change.percentage_points.as_deref());
        optional(&mut out, row.change.points.as_deref());
        out.push_str("</tr>\n");
        for (idx, factor) in row.factors.iter().enumerate() {
            out.push_str(r#"<tr class="factor">"#);
            text(&mut out, "code", &format!("{} ({} {})", row.code, l.factor, idx + 1));
            text(&mut out, "name", &format!("× {}", factor.name));
            out.push_str("<td></td>");
            measure(&mut out, &factor.current);
            measure(&mut out, &factor.previous);
            out.push_str("<td></td><td></td></tr>\n");
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");

    // The charts: the worst units first, the rest in Appendix II.
    out.push_str(r#"<section class="charts" id="charts">"#);
    // Units with no dossier in scope have no rate and are left out of the chart.
    let mut by_rate: Vec<&Unit> = d
        .appendix_2
        .units
        .iter()
        .filter(|u| u.on_time_rate.rate_hundredths.is_some())
        .collect();
    by_rate.sort_by(|a, b| {
        (a.on_time_rate.rate_hundredths, b.overdue, &a.code).cmp(&(b.on_time_rate.rate_hundredths, a.overdue, &b.code))
    });
    let on_time: Vec<Bar> = by_rate
        .iter()
        .take(CHART_UNITS)
        .map(|u| Bar {
            label: short(&u.name),
            length: u.on_time_rate.rate_hundredths.map_or(0, |h| h * BAR_AREA / 10_000),
            value: u.on_time_rate.text.clone(),
        })
        .collect();
    let percents: Vec<(u64, String)> = (0..=4)
        .map(|step| (BAR_AREA * step / 4, format!("{}%", 25 * step)))
        .collect();
    let caption = |title: &str, n: usize, of: usize, which: &str| {
        if n < of {
            format!("{title} ({n} {which})")
        } else {
            title.to_owned()
        }
    };
    chart(
        &mut out,
        "chart-on-time",
        &caption(l.chart_on_time, on_time.len(), by_rate.len(), l.chart_worst),
        l.chart_empty,
        "bar-ok",
        &on_time,
        &percents,
    );
    let mut by_overdue: Vec<&Unit> = d.appendix_2.units.iter().filter(|u| u.overdue > 0).collect();
    by_overdue.sort_by(|a, b| (b.overdue, &a.code).cmp(&(a.overdue, &b.code)));
    let most = by_overdue.first().map_or(0, |u| u.overdue);
    let overdue: Vec<Bar> = by_overdue
        .iter()
        .take(CHART_UNITS)
        .map(|u| Bar {
            label: short(&u.name),
            length: (u.overdue * BAR_AREA).checked_div(most).unwrap_or(0),
            value: u.overdue.to_string(),
        })
        .collect();
    let counts = vec![(0, "0".to_owned()), (BAR_AREA, most.to_string())];
    chart(
        &mut out,
        "chart-overdue",
        &caption(l.chart_overdue, overdue.len(), by_overdue.len(), l.chart_most),
        l.chart_empty,
        "bar-late",
        &overdue,
        &counts,
    );
    if by_rate.len() > CHART_UNITS || by_overdue.len() > CHART_UNITS {
        let _ = write!(out, r#"<p class="chart-note">{}</p>"#, esc(l.chart_more));
    }
    out.push_str("</section>\n");

    // Appendix II: counts per unit; the dossiers behind them are in Appendix IV.
    let _ = write!(
        out,
        r#"<section class="appendix" id="appendix-2">
<h2>{}</h2>
<table id="appendix-2-table">
<thead><tr>"#,
        esc(d.appendix_2.title)
    );
    for column in l.appendix_2_columns() {
        let _ = write!(out, "<th>{}</th>", esc(column));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (unit, total) in d
        .appendix_2
        .units
        .iter()
        .map(|u| (u, false))
        .chain([(&d.appendix_2.total, true)])
    {
        out.push_str(if total { r#"<tr class="total">"# } else { "<tr>" });
        text(&mut out, "code", &unit.code);
        text(&mut out, "name", &unit.name);
        num(&mut out, Some(unit.in_scope));
        num(&mut out, Some(unit.on_time));
        num(&mut out, Some(unit.overdue));
        let class = if unit.on_time_rate.status == Status::Measured {
            "num"
        } else {
            "nodata"
        };
        text(&mut out, class, unit.on_time_rate.rate_cell());
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");

    // Appendix III.
    let _ = write!(
        out,
        r#"<section class="appendix" id="appendix-3">
<h2>{}</h2>
"#,
        esc(d.appendix_3.title)
    );
    for agency in &d.appendix_3.agencies {
        let heading = if agency.name == agency.code {
            esc(&agency.code)
        } else {
            format!("{} ({})", esc(&agency.name), esc(&agency.code))
        };
        let _ = write!(
            out,
            r#"<article class="agency" id="agency-{id}">
<h3>{heading}</h3>
<table class="agency-indicators">
<thead><tr>"#,
            id = esc(&agency.code),
        );
        for column in [
            l.indicator_code,
            l.indicator,
            l.max_points,
            l.numerator,
            l.denominator,
            l.rate,
            l.points,
        ] {
            let _ = write!(out, "<th>{}</th>", esc(column));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for indicator in &agency.indicators {
            out.push_str("<tr>");
            text(&mut out, "code", indicator.code);
            text(&mut out, "name", indicator.name);
            optional(&mut out, indicator.max_points.as_deref());
            measure(&mut out, &indicator.figure);
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        let _ = write!(
            out,
            r#"<table class="agency-figures">
<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>
<tbody>
"#,
            esc(l.figure),
            esc(l.value),
            esc(l.numerator),
            esc(l.denominator),
        );
        for (label, n) in [
            (l.received, agency.received),
            (l.finished, agency.finished),
            (l.approved, agency.approved),
            (l.apologies_sent, agency.apologies.sent),
            (l.overdue_without_letter, agency.apologies.overdue_without_letter),
        ] {
            out.push_str("<tr>");
            text(&mut out, "name", label);
            num(&mut out, Some(n));
            out.push_str("<td></td><td></td></tr>\n");
        }
        for (label, m) in [
            (l.green_lane_on_time, &agency.green_lane_on_time),
            (l.promises_kept, &agency.apologies.promises_kept),
        ] {
            out.push_str("<tr>");
            text(&mut out, "name", label);
            let class = if m.status == Status::Measured { "num" } else { "nodata" };
            text(&mut out, class, &m.text);
            num(&mut out, m.numerator);
            num(&mut out, m.denominator);
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</article>\n");
    }
    out.push_str("</section>\n");

    // Appendix IV: one row per overdue dossier.
    let a4 = &d.appendix_4;
    let _ = write!(
        out,
        r#"<section class="appendix" id="appendix-4">
<h2>{}</h2>
<p class="annex-note">{}</p>
<table id="appendix-4-table">
<thead><tr>"#,
        esc(a4.title),
        esc(a4.note)
    );
    for column in [
        l.receipt_code,
        l.procedure,
        l.handling_agency,
        l.received_at,
        l.due_at,
        l.state,
        l.days_late,
    ] {
        let _ = write!(out, "<th>{}</th>", esc(column));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if a4.dossiers.is_empty() {
        let _ = writeln!(out, r#"<tr><td class="nodata" colspan="7">{}</td></tr>"#, esc(l.none));
    }
    for dossier in &a4.dossiers {
        out.push_str("<tr>");
        text(&mut out, "code", &dossier.receipt_code);
        text(&mut out, "code", &dossier.procedure);
        text(&mut out, "name", &dossier.handling_agency_name);
        text(&mut out, "num", &dossier.received_text);
        text(&mut out, "num", &dossier.due_text);
        text(&mut out, "name", &dossier.state_text);
        num(&mut out, Some(dossier.days_late));
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n</body>\n</html>\n");
    out
}
