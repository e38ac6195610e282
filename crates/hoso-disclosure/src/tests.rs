//! Tests on a March 2026 province built as in `hoso-projections`' tests: dossiers decided through
//! `hoso_domain::decide`, appended to the in-memory store, folded by `Dossiers::catch_up` and
//! reported by `figures::report`; the previous period is February from the same log.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::Command as Process;

use hoso_projections::Period;
use hoso_projections::figures::Report;
use hoso_projections::fixtures::{A, B, march, vn};
use serde_json::Value;

use crate::{DisclosureError, Format, Language, Options, render};

/// March 2026 and February 2026, as of the same cut-off.
async fn reports() -> (Report, Report) {
    let (desk, cutoff) = march().await;
    let current = desk.report(Period::month("2026-03").unwrap(), cutoff).await;
    let previous = desk.report(Period::month("2026-02").unwrap(), cutoff).await;
    (current, previous)
}

/// A's display name holds a comma and a quote, to exercise CSV quoting and HTML escaping; B has
/// none and is shown by its code.
fn options(format: Format) -> Options {
    Options {
        agency_names: BTreeMap::from([(A.to_owned(), "Sở Tư pháp, \"Phòng\" Hộ tịch".to_owned())]),
        ..Options::new(format, "Thái Nguyên")
    }
}

const FORMATS: [Format; 4] = [Format::Json, Format::Csv, Format::Html, Format::Xlsx];

#[tokio::test]
async fn every_format_gives_the_same_bytes_twice_and_other_bytes_when_a_figure_changes() {
    let (current, previous) = reports().await;
    let mut changed = current.clone();
    changed.agencies.get_mut(B).unwrap().on_time.ratio.numerator += 1;
    for format in FORMATS {
        for language in [Language::Vi, Language::En] {
            let options = Options {
                language,
                ..options(format)
            };
            let first = render(&current, &previous, &options).unwrap();
            let second = render(&current.clone(), &previous.clone(), &options.clone()).unwrap();
            assert!(!first.is_empty());
            assert!(first == second, "{format:?} {language:?}: two renders differ");
            let other = render(&changed, &previous, &options).unwrap();
            assert!(
                first != other,
                "{format:?} {language:?}: a changed figure changed nothing"
            );
        }
        let vi = render(&current, &previous, &options(format)).unwrap();
        let en = render(
            &current,
            &previous,
            &Options {
                language: Language::En,
                ..options(format)
            },
        )
        .unwrap();
        assert!(vi != en, "{format:?}: the language changes nothing");
        // To look at the output: HOSO_DISCLOSURE_OUT=<dir> keeps each format there.
        if let Some(out) = std::env::var_os("HOSO_DISCLOSURE_OUT") {
            let name = format!("report.{}", format!("{format:?}").to_lowercase());
            std::fs::write(Path::new(&out).join(name), &vi).unwrap();
        }
    }
}

#[tokio::test]
async fn json_holds_the_hand_known_figures() {
    let (current, previous) = reports().await;
    let bytes = render(&current, &previous, &options(Format::Json)).unwrap();
    let json: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["schema"], "hoso-disclosure/2");
    assert_eq!(json["language"], "vi");
    assert_eq!(json["province"], "Thái Nguyên");
    assert_eq!(json["period"]["start"], "2026-03-01");
    assert_eq!(json["period"]["end"], "2026-04-01");
    assert_eq!(json["period"]["label"], "Tháng 3/2026");
    assert_eq!(json["previous_period"]["label"], "Tháng 2/2026");
    assert!(json["period"]["cutoff"].as_str().unwrap().ends_with("+07:00"));
    assert!(json["period"]["cutoff_text"].as_str().unwrap().ends_with("(UTC+7)"));

    let indicator = |code: &str| {
        json["appendix_1"]["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == code)
            .unwrap_or_else(|| panic!("indicator {code}"))
            .clone()
    };
    // On time in March: D1, D3, D5 of D1-D6; in February: D8 and D1 (open, not yet due).
    let on_time = indicator("2");
    assert_eq!(on_time["name"], "Tiến độ, kết quả giải quyết (đúng hạn)");
    assert_eq!(on_time["max_points"], "20.00");
    assert_eq!(on_time["current"]["status"], "measured");
    assert_eq!(on_time["current"]["numerator"], 3);
    assert_eq!(on_time["current"]["denominator"], 6);
    assert_eq!(on_time["current"]["rate"], "50.00");
    assert_eq!(on_time["current"]["points"], "10.00");
    assert_eq!(on_time["current"]["text"], "50.00%");
    assert_eq!(on_time["previous"]["numerator"], 2);
    assert_eq!(on_time["previous"]["denominator"], 2);
    assert_eq!(on_time["previous"]["rate"], "100.00");
    assert_eq!(on_time["change"]["percentage_points"], "-50.00");
    assert_eq!(on_time["change"]["points"], "-10.00");
    // Satisfaction points are capped: 3.33 of 6.
    assert_eq!(indicator("10")["current"]["points"], "3.33");
    // Publication needs data beyond dossiers: absent, never zero.
    let publication = indicator("1");
    for side in ["current", "previous"] {
        assert_eq!(publication[side]["status"], "absent");
        assert_eq!(publication[side]["numerator"], Value::Null);
        assert_eq!(publication[side]["denominator"], Value::Null);
        assert_eq!(publication[side]["rate"], Value::Null);
        assert_eq!(publication[side]["text"], "không có dữ liệu");
    }
    assert_eq!(publication["change"]["percentage_points"], Value::Null);
    // No February dossier had a fee: "no dossiers", and no change to print.
    let payment = indicator("8.4");
    assert_eq!(payment["current"]["rate"], "50.00");
    assert_eq!(payment["previous"]["status"], "no_dossiers");
    assert_eq!(payment["previous"]["denominator"], 0);
    assert_eq!(payment["previous"]["rate"], Value::Null);
    assert_eq!(payment["previous"]["points"], Value::Null);
    assert_eq!(payment["previous"]["text"], "không có hồ sơ");
    assert_eq!(payment["change"]["percentage_points"], Value::Null);

    let units = json["appendix_2"]["units"].as_array().unwrap();
    assert_eq!(units.len(), 2);
    assert_eq!(units[0]["code"], A);
    assert_eq!(units[0]["name"], "Sở Tư pháp, \"Phòng\" Hộ tịch");
    assert_eq!(
        (&units[0]["in_scope"], &units[0]["on_time"], &units[0]["overdue"]),
        (&Value::from(3), &Value::from(2), &Value::from(1))
    );
    assert_eq!(units[0]["on_time_rate"]["rate"], "66.67");
    assert_eq!(units[1]["code"], B);
    assert_eq!(units[1]["name"], B, "no display name: the code");
    // The overdue dossiers are listed in their own annex, by agency, one entry each.
    let overdue = json["appendix_4"]["dossiers"].as_array().unwrap();
    let codes: Vec<(&str, &str)> = overdue
        .iter()
        .map(|o| {
            (
                o["handling_agency"].as_str().unwrap(),
                o["receipt_code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (A, "G09.20-20260302-0000002"),
            (B, "G09.20-20260302-0000004"),
            (B, "G09.20-20260302-0000006")
        ]
    );
    assert_eq!(overdue[0]["handling_agency_name"], "Sở Tư pháp, \"Phòng\" Hộ tịch");
    for o in overdue {
        assert_eq!(o["procedure"], "1.001234");
        assert!(o["received_at"].as_str().unwrap().starts_with("2026-03-02T"));
    }
    // D2: due Thu 5 Mar 17:00, still open at the period's end (1 Apr 00:00): 26 days and 7 hours,
    // 27 days begun.
    assert_eq!(overdue[0]["due_at"], "2026-03-05T17:00:00+07:00");
    assert_eq!(overdue[0]["finished_at"], Value::Null);
    assert_eq!(overdue[0]["state_text"], "chưa giải quyết (đến cuối kỳ)");
    assert_eq!(overdue[0]["days_late"], 27);
    // D4: approved before its due date, overdue for its second supplement request: 0 days late.
    assert!(overdue[1]["finished_at"].as_str().unwrap().starts_with("2026-03-04T"));
    assert_eq!(overdue[1]["days_late"], 0);
    assert_eq!(json["appendix_2"]["total"]["overdue"], 3);
    assert_eq!(json["appendix_2"]["total"]["name"], "Toàn tỉnh");

    let agencies = json["appendix_3"]["agencies"].as_array().unwrap();
    assert_eq!(agencies.len(), 2);
    assert_eq!(agencies[0]["apologies"]["sent"], 1);
    assert_eq!(agencies[0]["apologies"]["overdue_without_letter"], 0);
    assert_eq!(agencies[1]["apologies"]["overdue_without_letter"], 2, "D4 and D6");
    assert_eq!(agencies[1]["green_lane_on_time"]["status"], "no_dossiers");
    assert_eq!(agencies[1]["green_lane_on_time"]["text"], "không có hồ sơ");
    assert_eq!(agencies[1]["indicators"][1]["figure"]["numerator"], 1);
    assert_eq!(agencies[1]["indicators"][1]["figure"]["denominator"], 3);

    // No float anywhere: every number is an integer.
    fn no_floats(value: &Value) {
        match value {
            Value::Number(n) => assert!(n.is_u64(), "{n} is not an unsigned integer"),
            Value::Array(a) => a.iter().for_each(no_floats),
            Value::Object(o) => o.values().for_each(no_floats),
            _ => {}
        }
    }
    no_floats(&json);

    let en = render(
        &current,
        &previous,
        &Options {
            language: Language::En,
            ..options(Format::Json)
        },
    )
    .unwrap();
    let en: Value = serde_json::from_slice(&en).unwrap();
    assert_eq!(en["language"], "en");
    assert_eq!(en["period"]["label"], "March 2026");
    assert_eq!(en["appendix_1"]["indicators"][0]["current"]["text"], "not available");
    assert_eq!(en["appendix_1"]["indicators"][6]["previous"]["text"], "no dossiers");
}

#[tokio::test]
async fn csv_parses_into_the_appendix_tables() {
    let (current, previous) = reports().await;
    let bytes = render(&current, &previous, &options(Format::Csv)).unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    let text = text.strip_prefix('\u{feff}').expect("a UTF-8 byte-order mark");
    assert!(!text.contains("\r\n\r\n\r\n"));
    let tables: Vec<Vec<csv::StringRecord>> = text
        .trim_end()
        .split("\r\n\r\n")
        .map(|table| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(table.as_bytes())
                .records()
                .map(Result::unwrap)
                .collect()
        })
        .collect();
    assert_eq!(
        tables.len(),
        6,
        "header, appendix I, appendix II, two per-agency tables and appendix IV"
    );
    let cells = |record: &csv::StringRecord| record.iter().map(str::to_owned).collect::<Vec<_>>();

    assert_eq!(
        cells(&tables[0][1]),
        ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    );
    assert!(tables[0].iter().any(|r| cells(r) == ["Tỉnh", "Thái Nguyên"]));

    let appendix_1 = &tables[1];
    assert_eq!(&appendix_1[0][0], "Mã chỉ số");
    assert_eq!(appendix_1.len(), 1 + 11 + 2, "11 indicators and 13's two factors");
    let digitization: Vec<Vec<String>> = appendix_1
        .iter()
        .filter(|r| r[0].starts_with("13"))
        .map(|r| cells(r)[3..6].to_vec())
        .collect();
    assert_eq!(
        digitization,
        [["1", "5", "20.00"], ["1", "2", "50.00"], ["2", "5", "40.00"]],
        "13's rate from its own numerator and denominator, then each factor's"
    );
    let on_time = appendix_1.iter().find(|r| &r[0] == "2").unwrap();
    assert_eq!(
        cells(on_time)[2..],
        [
            "20.00", "3", "6", "50.00", "10.00", "2", "2", "100.00", "20.00", "-50.00", "-10.00"
        ]
    );
    let publication = appendix_1.iter().find(|r| &r[0] == "1").unwrap();
    assert_eq!(&publication[3], "", "absent: no numerator, never 0");
    assert_eq!(&publication[5], "không có dữ liệu");

    let appendix_2 = &tables[2];
    assert_eq!(
        cells(&appendix_2[0]),
        [
            "Mã đơn vị",
            "Đơn vị",
            "Tổng số hồ sơ phải giải quyết",
            "Đúng hạn",
            "Quá hạn",
            "Tỷ lệ đúng hạn (%)",
        ]
    );
    assert_eq!(
        appendix_2.len(),
        1 + current.agencies.len() + 1,
        "header, one row per agency, total"
    );
    assert_eq!(
        cells(&appendix_2[1]),
        [A, "Sở Tư pháp, \"Phòng\" Hộ tịch", "3", "2", "1", "66.67",]
    );
    assert_eq!(&appendix_2[2][0], B);
    let appendix_4 = &tables[5];
    assert_eq!(appendix_4.len(), 1 + 3, "header and the three overdue dossiers");
    assert_eq!(
        cells(&appendix_4[1]),
        [
            "G09.20-20260302-0000002",
            "1.001234",
            A,
            "Sở Tư pháp, \"Phòng\" Hộ tịch",
            "02/03/2026 09:00",
            "05/03/2026 17:00",
            "chưa giải quyết (đến cuối kỳ)",
            "27"
        ]
    );
    assert_eq!(cells(&appendix_2[3])[1..6], ["Toàn tỉnh", "6", "3", "3", "50.00"]);

    assert_eq!(tables[3].len(), 1 + 11 * current.agencies.len());
    let others = &tables[4];
    assert_eq!(others.len(), 1 + current.agencies.len());
    assert_eq!(&others[2][7], "không có hồ sơ", "B has no green-lane dossier");
    // Every row of a table has as many fields as its header.
    for table in &tables {
        assert!(table.iter().all(|r| r.len() == table[0].len()));
    }
}

/// Runs headless Chromium with `args`; `None` when it is not installed and not required.
fn chromium(args: &[String]) -> Option<std::process::Output> {
    let binary = Path::new("/usr/bin/chromium");
    if !binary.exists() {
        assert!(
            std::env::var_os("HOSO_REQUIRE_CHROMIUM").is_none(),
            "HOSO_REQUIRE_CHROMIUM is set but /usr/bin/chromium is missing: install the Debian package chromium"
        );
        eprintln!(
            "note: /usr/bin/chromium is missing, the HTML is not checked in a browser (apt-get install chromium)"
        );
        return None;
    }
    let profile = tempfile::tempdir().unwrap();
    let output = Process::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output)
}

/// The part of `dom` from the element with `id` to the end of its chart.
fn chart<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let end = start + dom[start..].find("</svg>").unwrap();
    &dom[start..end]
}

/// The value labels of a chart's bars, in order.
fn bar_values(svg: &str) -> Vec<&str> {
    svg.split("<text class=\"value\"")
        .skip(1)
        .map(|s| {
            let start = s.find('>').unwrap() + 1;
            &s[start..start + s[start..].find('<').unwrap()]
        })
        .collect()
}

#[tokio::test]
async fn html_renders_in_headless_chromium_with_charts_and_tables() {
    let (current, previous) = reports().await;
    let html = render(&current, &previous, &options(Format::Html)).unwrap();
    let html = String::from_utf8(html).unwrap();
    // Self-contained: nothing is fetched.
    for external in ["<link", "<script", "src=", "@import", "url("] {
        assert!(!html.contains(external), "the page loads {external}");
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());

    let Some(output) = chromium(&["--dump-dom".to_owned(), url.clone()]) else {
        return;
    };
    let dom = String::from_utf8(output.stdout).unwrap();
    assert_eq!(dom.matches("<svg").count(), 2, "two charts");
    let n_agencies = current.agencies.len();
    for id in ["chart-on-time", "chart-overdue"] {
        let svg = chart(&dom, id);
        assert_eq!(svg.matches("<rect").count(), n_agencies, "{id}: one bar per agency");
        assert!(svg.contains("aria-label="), "{id}: no aria-label");
        assert!(svg.contains("<title>"), "{id}: no title");
    }
    // Worst first: B's 33.33% before A's 66.67%, B's two overdue dossiers before A's one.
    assert_eq!(bar_values(chart(&dom, "chart-on-time")), ["33.33%", "66.67%"]);
    assert_eq!(bar_values(chart(&dom, "chart-overdue")), ["2", "1"]);
    for text in [
        "id=\"appendix-1-table\"",
        "id=\"appendix-2-table\"",
        "Phụ lục I. Bộ chỉ số 766 của tỉnh",
        "Phụ lục II. Hồ sơ quá hạn theo đơn vị giải quyết",
        "Phụ lục III. Chỉ số của từng đơn vị",
        "Tỷ lệ giải quyết đúng hạn theo đơn vị",
        "Thời điểm chốt số liệu",
        "không có dữ liệu",
        "không có hồ sơ",
        "G09.20-20260302-0000006",
        "Sở Tư pháp, \"Phòng\" Hộ tịch",
    ] {
        assert!(dom.contains(text), "the page lacks {text:?}");
    }
    assert_eq!(dom.matches("<article class=\"agency\"").count(), n_agencies);

    let shot = dir.path().join("shot.png");
    chromium(&[
        format!("--screenshot={}", shot.display()),
        "--window-size=1240,1754".to_owned(),
        url,
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.len() > 10_000, "a near-empty screenshot: {} bytes", png.len());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    // To look at the page: HOSO_DISCLOSURE_OUT=<dir> keeps the page and its screenshot there.
    if let Some(out) = std::env::var_os("HOSO_DISCLOSURE_OUT") {
        std::fs::copy(&page, Path::new(&out).join("report.html")).unwrap();
        std::fs::copy(&shot, Path::new(&out).join("shot.png")).unwrap();
    }
}

#[tokio::test]
async fn xlsx_is_a_zip_with_one_sheet_per_appendix_and_agency_created_at_the_cut_off() {
    let (mut current, previous) = reports().await;
    // A cut-off far from now, so that a "now" stamped anywhere would show.
    current.cutoff = vn("2026-04-01 08:00");
    let bytes = render(&current, &previous, &options(Format::Xlsx)).unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"), "the zip signature");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
        text
    };
    let workbook = read("xl/workbook.xml");
    let names: Vec<&str> = workbook
        .split("<sheet name=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert_eq!(names, ["Phụ lục I", "Phụ lục II", "Phụ lục IV", A, B]);
    let core = read("docProps/core.xml");
    assert!(
        core.contains(">2026-04-01T01:00:00Z</dcterms:created>"),
        "the creation time is the cut-off: {core}"
    );
    let strings = read("xl/sharedStrings.xml");
    for text in ["không có dữ liệu", "không có hồ sơ", "G09.20-20260302-0000002"] {
        assert!(strings.contains(text), "the workbook lacks {text:?}");
    }

    let en = render(
        &current,
        &previous,
        &Options {
            language: Language::En,
            ..options(Format::Xlsx)
        },
    )
    .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(en)).unwrap();
    let mut workbook = String::new();
    archive
        .by_name("xl/workbook.xml")
        .unwrap()
        .read_to_string(&mut workbook)
        .unwrap();
    assert!(workbook.contains("<sheet name=\"Appendix I\"") && workbook.contains("<sheet name=\"Appendix II\""));
}

#[tokio::test]
async fn a_previous_report_that_is_not_the_period_before_is_refused() {
    let (current, _) = reports().await;
    let err = render(&current, &current, &options(Format::Json)).unwrap_err();
    assert!(matches!(err, DisclosureError::PeriodsNotConsecutive { .. }));
    assert_eq!(
        err.to_string(),
        "the previous period (2026-03-01 to 2026-04-01 (excluded)) does not end where the current period \
         (2026-03-01 to 2026-04-01 (excluded)) starts"
    );
}

/// Every cell text of every sheet of a workbook: the shared strings and inline strings.
fn xlsx_part(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

#[tokio::test]
async fn a_month_with_thousands_of_overdue_dossiers_makes_a_workbook_with_no_cell_over_excels_limit() {
    let (mut current, previous) = reports().await;
    // 3,000 more overdue dossiers of A: their receipt codes alone are over 80,000 characters,
    // which one cell could not hold.
    let model = current.judged.iter().find(|j| !j.on_time).unwrap().clone();
    for n in 0..3000 {
        let judged = hoso_projections::figures::Judged {
            receipt_code: format!("G09.20-20260303-{n:07}"),
            handling_agency: A.to_owned(),
            ..model.clone()
        };
        for figures in [&mut current.province, current.agencies.get_mut(A).unwrap()] {
            figures.on_time.ratio.denominator += 1;
            figures.on_time.overdue.push(judged.receipt_code.clone());
        }
        current.judged.push(judged);
    }
    let bytes = render(&current, &previous, &options(Format::Xlsx)).expect("the workbook is written");
    let strings = xlsx_part(&bytes, "xl/sharedStrings.xml");
    let longest = strings
        .split("<t")
        .skip(1)
        .map(|t| {
            t[t.find('>').unwrap() + 1..]
                .split("</t>")
                .next()
                .unwrap()
                .chars()
                .count()
        })
        .max()
        .unwrap();
    assert!(longest <= 32_767, "a cell of {longest} characters");
    assert!(
        longest < 1_000,
        "no cell holds a list: the longest has {longest} characters"
    );
    // Appendix IV (the third sheet) has a row per overdue dossier: 3 + 3,000.
    let annex = xlsx_part(&bytes, "xl/worksheets/sheet3.xml");
    assert!(strings.contains("G09.20-20260303-0002999"));
    let rows = annex.matches("<row ").count();
    assert_eq!(
        rows,
        5 + 3003,
        "title, period, cut-off, note, header and one row per dossier"
    );
}

#[tokio::test]
async fn the_workbook_holds_rates_points_and_counts_as_numbers_with_number_formats() {
    let (current, previous) = reports().await;
    let bytes = render(&current, &previous, &options(Format::Xlsx)).unwrap();
    // Appendix II: A's row holds 3, 2, 1 and 66.67 as numbers (no `t="s"`), not as text.
    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet2.xml");
    let row = sheet
        .split("<row ")
        .find(|r| r.contains("<v>66.67</v>"))
        .expect("the on-time rate 66.67 as a number");
    for value in ["3", "2", "1", "66.67"] {
        let cell = row
            .split("<c ")
            .find(|c| c.contains(&format!("<v>{value}</v>")))
            .unwrap_or_else(|| panic!("no number {value}"));
        assert!(!cell.contains("t=\"s\""), "{value} is text: {cell}");
    }
    // Appendix I: indicator 2's rate 50, points 10, max 20 and change -50 are numbers.
    let sheet = xlsx_part(&bytes, "xl/worksheets/sheet1.xml");
    for value in ["<v>50</v>", "<v>10</v>", "<v>20</v>", "<v>-50</v>", "<v>-10</v>"] {
        assert!(sheet.contains(value), "Appendix I lacks the number {value}");
    }
    let styles = xlsx_part(&bytes, "xl/styles.xml");
    for format in ["formatCode=\"0.00\"", "formatCode=\"+0.00;-0.00;0.00\""] {
        assert!(styles.contains(format), "no number format {format}");
    }
}

#[tokio::test]
async fn indicator_13_shows_its_rate_with_the_numerator_and_denominator_that_make_it_and_both_factors() {
    let (current, previous) = reports().await;
    let json: Value = serde_json::from_slice(&render(&current, &previous, &options(Format::Json)).unwrap()).unwrap();
    let row = json["appendix_1"]["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "13")
        .unwrap()
        .clone();
    // 1 digitized of 2 synced, 2 synced of 5 received: 50% × 40% = 20% = 1/5.
    assert_eq!(
        (
            &row["current"]["numerator"],
            &row["current"]["denominator"],
            &row["current"]["rate"]
        ),
        (&Value::from(1), &Value::from(5), &Value::from("20.00"))
    );
    let factors: Vec<(u64, u64, &str)> = row["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["current"]["numerator"].as_u64().unwrap(),
                f["current"]["denominator"].as_u64().unwrap(),
                f["current"]["rate"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(factors, [(1, 2, "50.00"), (2, 5, "40.00")]);
    // The HTML prints the same: the row's 1, 5 and 20.00, then each factor.
    let html = String::from_utf8(render(&current, &previous, &options(Format::Html)).unwrap()).unwrap();
    let row = html
        .split("<tr>")
        .find(|r| r.starts_with(r#"<td class="code">13</td>"#))
        .unwrap();
    assert!(
        row.contains(r#"<td class="num">1</td><td class="num">5</td><td class="num">20.00</td>"#),
        "{row}"
    );
    assert_eq!(html.matches(r#"<tr class="factor">"#).count(), 2);
}

fn lettered(format: Format, language: Language) -> Options {
    Options {
        language,
        letter: crate::Letter {
            issuing_body: "VĂN PHÒNG UBND TỈNH".to_owned(),
            number_format: "{mm}/BC-VPUB-{yyyy}".to_owned(),
            place: String::new(),
            signer_title: "CHÁNH VĂN PHÒNG".to_owned(),
            signer_name: "Trần Văn Ký".to_owned(),
        },
        ..options(format)
    }
}

#[tokio::test]
async fn the_html_is_a_letter_with_its_heading_number_place_date_and_signature() {
    let (current, previous) = reports().await;
    let vi = String::from_utf8(render(&current, &previous, &lettered(Format::Html, Language::Vi)).unwrap()).unwrap();
    for text in [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "ỦY BAN NHÂN DÂN TỈNH THÁI NGUYÊN",
        "VĂN PHÒNG UBND TỈNH",
        "Số: 03/BC-VPUB-2026",
        "CHÁNH VĂN PHÒNG",
        "Trần Văn Ký",
        // The title's decision number never breaks across lines.
        r#"<span class="nobr">766/QĐ-TTg</span>"#,
    ] {
        assert!(vi.contains(text), "the letter lacks {text:?}");
    }
    // Dated the cut-off's day in UTC+7, at the province (no place configured).
    let date = current
        .cutoff
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap());
    let place_date = format!("Thái Nguyên, ngày {}", date.format("%d tháng %m năm %Y"));
    assert!(vi.contains(&place_date), "no {place_date:?}");
    let en = String::from_utf8(render(&current, &previous, &lettered(Format::Html, Language::En)).unwrap()).unwrap();
    for text in [
        "SOCIALIST REPUBLIC OF VIETNAM",
        "THÁI NGUYÊN PROVINCE",
        "No. 03/BC-VPUB-2026",
    ] {
        assert!(en.contains(text), "the English letter lacks {text:?}");
    }
    assert!(!en.contains("PROVINCE THÁI NGUYÊN"));
    // Without a number configured, a blank to fill in by hand.
    let plain = String::from_utf8(render(&current, &previous, &options(Format::Html)).unwrap()).unwrap();
    assert!(plain.contains("Số: ……/BC"));
}

#[tokio::test]
async fn an_empty_month_says_so_and_its_charts_have_no_grid_under_the_sentence() {
    let (desk, cutoff) = march().await;
    let current = desk.report(Period::month("2025-06").unwrap(), cutoff).await;
    let previous = desk.report(Period::month("2025-05").unwrap(), cutoff).await;
    assert!(crate::is_empty(&current));
    let (march, _) = reports().await;
    assert!(!crate::is_empty(&march));
    let html = String::from_utf8(render(&current, &previous, &options(Format::Html)).unwrap()).unwrap();
    assert!(html.contains(r#"<p class="empty" id="empty-period">Không có hồ sơ nào trong kỳ báo cáo"#));
    for id in ["chart-on-time", "chart-overdue"] {
        let svg = chart(&html, id);
        assert!(svg.contains("Không có đơn vị nào trong kỳ"), "{id}");
        assert!(!svg.contains("<line"), "{id}: a grid under the empty chart's sentence");
    }
    let json: Value = serde_json::from_slice(&render(&current, &previous, &options(Format::Json)).unwrap()).unwrap();
    assert_eq!(json["empty"], true);
    let march_html = String::from_utf8(render(&march, &previous_of(&march), &options(Format::Html)).unwrap()).unwrap();
    assert!(!march_html.contains("empty-period"));
}

/// An empty report of the month before `report`'s, for rendering one month alone.
fn previous_of(report: &Report) -> Report {
    let mut previous = report.clone();
    previous.period = report.period.previous();
    previous.province = Default::default();
    previous.agencies.clear();
    previous.procedures.clear();
    previous.judged.clear();
    previous
}

#[path = "signature_tests.rs"]
mod signature_tests;
