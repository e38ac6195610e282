//! HTML: one self-contained page (inline CSS with an A4 print stylesheet, no external resource)
//! with the tables and two inline SVG bar charts.

use std::fmt::Write as _;

use crate::model::{Disclosure, Measure, Status};

const STYLE: &str = r#"
:root { --ink: #1a1a1a; --rule: #9e9e9e; --head: #e8eef5; --ok: #2e7d32; --late: #c62828; --muted: #6b6b6b; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1120px; padding: 24px; color: var(--ink);
  font-family: "Times New Roman", "Liberation Serif", "DejaVu Serif", serif; font-size: 15px; line-height: 1.35; }
header { border-bottom: 2px solid var(--ink); margin-bottom: 16px; padding-bottom: 8px; }
header .province { text-transform: uppercase; font-weight: bold; margin: 0; }
h1 { font-size: 21px; margin: 8px 0 10px; text-align: center; }
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
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0 0 8px; flex: 0 1 auto; max-width: 100%; }
figcaption { font-weight: bold; margin-bottom: 4px; }
svg { max-width: 100%; height: auto; font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
svg .bar-ok { fill: var(--ok); }
svg .bar-late { fill: var(--late); }
svg .axis { stroke: var(--ink); stroke-width: 1; }
svg .grid { stroke: #d0d0d0; stroke-width: 1; }
svg text { font-size: 12px; fill: var(--ink); }
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
const ROW: u64 = 30;
const TOP: u64 = 10;

/// A chart of horizontal bars, with `ticks` (position from 0 to `BAR_AREA`, label) under the axis.
fn chart(out: &mut String, id: &str, title: &str, empty: &str, class: &str, bars: &[Bar], ticks: &[(u64, String)]) {
    let width = LABEL_AREA + BAR_AREA + 110;
    let height = TOP + ROW * (bars.len().max(1) as u64) + 24;
    let _ = write!(
        out,
        r#"<figure><figcaption id="{id}-caption">{title}</figcaption><svg xmlns="http://www.w3.org/2000/svg" id="{id}" role="img" aria-label="{title}" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><title>{title}</title>"#,
        title = esc(title),
    );
    let axis_bottom = TOP + ROW * (bars.len().max(1) as u64);
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
    if bars.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}">{}</text>"#,
            LABEL_AREA + 8,
            TOP + ROW / 2 + 4,
            esc(empty)
        );
    }
    for (idx, bar) in bars.iter().enumerate() {
        let y = TOP + ROW * idx as u64 + 6;
        let middle = y + 13;
        let _ = write!(
            out,
            r#"<g class="bar"><text x="{}" y="{middle}" text-anchor="end">{label}</text><rect class="{class}" x="{LABEL_AREA}" y="{y}" width="{}" height="18"><title>{label}: {value}</title></rect><text class="value" x="{}" y="{middle}">{value}</text></g>"#,
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

pub(crate) fn render(d: &Disclosure) -> String {
    let l = d.labels;
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
<p class="province">{province_label} {province}</p>
<h1>{title}</h1>
<dl class="meta">
<dt>{period_label}</dt><dd>{period}</dd>
<dt>{cutoff_label}</dt><dd>{cutoff}</dd>
<dt>{previous_label}</dt><dd>{previous}</dd>
<dt>{previous_cutoff_label}</dt><dd>{previous_cutoff}</dd>
</dl>
<p class="note">{note_label}: {note}</p>
</header>
"#,
        lang = l.code,
        title = esc(d.title),
        province = esc(&d.province),
        province_label = esc(l.province),
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
    }
    out.push_str("</tbody>\n</table>\n</section>\n");

    // The charts.
    out.push_str(r#"<section class="charts" id="charts">"#);
    let on_time: Vec<Bar> = d
        .appendix_3
        .agencies
        .iter()
        .map(|a| {
            let m = &d
                .appendix_2
                .units
                .iter()
                .find(|u| u.code == a.code)
                .expect("one unit per agency")
                .on_time_rate;
            Bar {
                label: short(&a.name),
                length: m.rate_hundredths.map_or(0, |h| h * BAR_AREA / 10_000),
                value: m.text.clone(),
            }
        })
        .collect();
    let percents: Vec<(u64, String)> = (0..=4)
        .map(|step| (BAR_AREA * step / 4, format!("{}%", 25 * step)))
        .collect();
    chart(
        &mut out,
        "chart-on-time",
        l.chart_on_time,
        l.chart_empty,
        "bar-ok",
        &on_time,
        &percents,
    );
    let most = d.appendix_2.units.iter().map(|u| u.overdue).max().unwrap_or(0);
    let overdue: Vec<Bar> = d
        .appendix_2
        .units
        .iter()
        .map(|u| Bar {
            label: short(&u.name),
            length: (u.overdue * BAR_AREA).checked_div(most).unwrap_or(0),
            value: u.overdue.to_string(),
        })
        .collect();
    let counts = if most == 0 {
        vec![(0, "0".to_owned())]
    } else {
        vec![(0, "0".to_owned()), (BAR_AREA, most.to_string())]
    };
    chart(
        &mut out,
        "chart-overdue",
        l.chart_overdue,
        l.chart_empty,
        "bar-late",
        &overdue,
        &counts,
    );
    out.push_str("</section>\n");

    // Appendix II.
    let _ = write!(
        out,
        r#"<section class="appendix" id="appendix-2">
<h2>{}</h2>
<table id="appendix-2-table">
<thead><tr>"#,
        esc(d.appendix_2.title)
    );
    for column in [
        l.unit_code,
        l.unit,
        l.in_scope,
        l.on_time,
        l.overdue,
        l.on_time_rate,
        l.overdue_codes,
    ] {
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
        let codes = if unit.overdue_receipt_codes.is_empty() {
            l.none.to_owned()
        } else {
            unit.overdue_receipt_codes.join(", ")
        };
        text(&mut out, "codes", &codes);
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
    out.push_str("</section>\n</body>\n</html>\n");
    out
}
