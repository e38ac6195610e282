use chrono::NaiveDate;
use hoso_domain::{AgencyCode, ProcedureCode, ProcedureEntry, StatutoryTime, TimeUnit};
use proptest::prelude::*;

use crate::{FileError, Problem, Rows, read_csv, read_xlsx, write_csv};

const HEADER: &str = "Mã thủ tục,Tên thủ tục,Thời hạn giải quyết,Đơn vị thời hạn,\"Phí, lệ phí (đồng)\",Toàn trình,Kết quả bản giấy,Cơ quan thực hiện,Luồng xanh (thời hạn),Luồng xanh (đơn vị),Trạng thái";

/// The rows of the good file, each as its cells.
const GOOD: [[&str; 11]; 6] = [
    [
        "1.001234",
        "Cấp giấy phép xây dựng",
        "20",
        "ngày làm việc",
        "50.000",
        "Không",
        "Có",
        "000.00.04.G18",
        "",
        "",
        "Đang áp dụng",
    ],
    [
        "1.000894",
        "Cấp Giấy chứng nhận đăng ký đầu tư",
        "15",
        "Ngày làm việc",
        "0",
        "x",
        "",
        "000.00.06.G18; 000.00.07.G18",
        "7",
        "working_days",
        "",
    ],
    [
        "2.000630",
        "Cấp bản sao Trích lục hộ tịch",
        "8",
        "giờ làm việc",
        "8,000",
        "true",
        "1",
        "",
        "",
        "",
        "",
    ],
    [
        "1.001417",
        "Cấp Phiếu lý lịch tư pháp",
        "10",
        "ngày",
        "",
        "CÓ",
        "false",
        "",
        "",
        "",
        "",
    ],
    ["1.002345", "", "", "", "", "", "", "", "", "", "Bãi bỏ"],
    [
        "2.000815",
        "Đăng ký khai sinh",
        "1",
        "calendar_days",
        "0",
        "1",
        "0",
        "",
        "",
        "",
        "đang áp dụng",
    ],
];

fn code(text: &str) -> ProcedureCode {
    ProcedureCode::parse("code", text).unwrap()
}

fn agency(text: &str) -> AgencyCode {
    AgencyCode::parse("agency", text).unwrap()
}

fn good_rows() -> Rows {
    Rows {
        entries: vec![
            ProcedureEntry {
                code: code("1.001234"),
                name: "Cấp giấy phép xây dựng".into(),
                statutory_time: StatutoryTime::working_days(20),
                fee_vnd: 50_000,
                full_online_eligible: false,
                paper_result: true,
                handling_agencies: vec![agency("000.00.04.G18")],
                green_lane_time: None,
            },
            ProcedureEntry {
                code: code("1.000894"),
                name: "Cấp Giấy chứng nhận đăng ký đầu tư".into(),
                statutory_time: StatutoryTime::working_days(15),
                fee_vnd: 0,
                full_online_eligible: true,
                paper_result: false,
                handling_agencies: vec![agency("000.00.06.G18"), agency("000.00.07.G18")],
                green_lane_time: Some(StatutoryTime::working_days(7)),
            },
            ProcedureEntry {
                code: code("2.000630"),
                name: "Cấp bản sao Trích lục hộ tịch".into(),
                statutory_time: StatutoryTime::working_hours(8),
                fee_vnd: 8_000,
                full_online_eligible: true,
                paper_result: true,
                handling_agencies: vec![],
                green_lane_time: None,
            },
            ProcedureEntry {
                code: code("1.001417"),
                name: "Cấp Phiếu lý lịch tư pháp".into(),
                statutory_time: StatutoryTime::calendar_days(10),
                fee_vnd: 0,
                full_online_eligible: true,
                paper_result: false,
                handling_agencies: vec![],
                green_lane_time: None,
            },
            ProcedureEntry {
                code: code("2.000815"),
                name: "Đăng ký khai sinh".into(),
                statutory_time: StatutoryTime::calendar_days(1),
                fee_vnd: 0,
                full_online_eligible: true,
                paper_result: false,
                handling_agencies: vec![],
                green_lane_time: None,
            },
        ],
        abolished: vec![code("1.002345")],
    }
}

/// A CSV line of cells, quoted where needed, with `separator`.
fn csv_line(cells: &[&str], separator: char) -> String {
    cells
        .iter()
        .map(|c| {
            if c.contains([',', ';', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                (*c).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

/// A comma-separated file: the header then the rows.
fn file(rows: &[[&str; 11]]) -> String {
    let mut out = format!("{HEADER}\n");
    for row in rows {
        out.push_str(&csv_line(row, ','));
        out.push('\n');
    }
    out
}

/// The problems of a file that must fail, as their display.
fn problems(bytes: &[u8]) -> Vec<String> {
    match read_csv(bytes) {
        Ok(rows) => panic!("read: {rows:?}"),
        Err(error) => error.problems().iter().map(Problem::to_string).collect(),
    }
}

/// The good file with one cell of one row replaced.
fn with_cell(row: usize, column: usize, text: &str) -> String {
    let mut rows = GOOD;
    rows[row][column] = text;
    file(&rows)
}

#[test]
fn a_good_file_reads_into_its_entries_and_abolitions() {
    assert_eq!(read_csv(file(&GOOD).as_bytes()).unwrap(), good_rows());
}

#[test]
fn a_semicolon_file_with_a_byte_order_mark_reads_the_same() {
    let mut text = String::from("\u{feff}");
    text.push_str(
        &HEADER
            .replace(",\"Phí, lệ phí (đồng)\",", ";Phí, lệ phí (đồng);")
            .replace(',', ";"),
    );
    // The fee header keeps its comma: it is inside a cell of a semicolon file.
    text = text.replace("Phí; lệ phí", "Phí, lệ phí");
    text.push_str("\r\n");
    for row in &GOOD {
        text.push_str(&csv_line(row, ';'));
        text.push_str("\r\n");
    }
    assert!(text.starts_with('\u{feff}'));
    assert_eq!(read_csv(text.as_bytes()).unwrap(), good_rows());
}

#[test]
fn unknown_columns_title_rows_and_blank_rows_are_ignored_and_headers_match_loosely() {
    let mut text = String::from("DANH MỤC THỦ TỤC HÀNH CHÍNH,,\n\n");
    text.push_str("STT,  MÃ THỦ   TỤC ,tên thủ tục,Lĩnh vực,thời hạn giải quyết,ĐƠN VỊ THỜI HẠN,\"phí, lệ phí (đồng)\",toàn trình,kết quả bản giấy,cơ quan thực hiện\n");
    text.push_str("1,1.001234,Cấp giấy phép xây dựng,Xây dựng,20,ngày làm việc,\"50,000\",Không,Có,000.00.04.G18\n");
    text.push_str(",,,,,,,,,\n");
    let rows = read_csv(text.as_bytes()).unwrap();
    assert_eq!(rows.entries, good_rows().entries[..1]);
    assert!(rows.abolished.is_empty());
}

#[test]
fn an_abolished_row_needs_only_its_code() {
    let text = format!("{HEADER}\n1.002345,,,,,,,,,,Bãi bỏ\n2.000815,,,,,,,,,,abolished\n");
    let rows = read_csv(text.as_bytes()).unwrap();
    assert!(rows.entries.is_empty());
    assert_eq!(rows.abolished, vec![code("1.002345"), code("2.000815")]);
    // Its code must still be one.
    assert_eq!(
        problems(format!("{HEADER}\n1.2345,,,,,,,,,,Bãi bỏ\n").as_bytes()),
        ["row 2, column \"Mã thủ tục\": \"1.2345\" is not a procedure code like 1.001234 (a digit, a dot, six digits)"]
    );
}

#[test]
fn the_decision_takes_its_number_and_date_from_the_caller() {
    let date = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let decision = good_rows().into_decision("1234/QĐ-UBND", date);
    assert_eq!(decision.number, "1234/QĐ-UBND");
    assert_eq!(decision.effective_from, date);
    assert_eq!(decision.entries, good_rows().entries);
    assert_eq!(decision.abolished, good_rows().abolished);
    let mut catalogue = hoso_domain::Catalogue::new();
    catalogue.publish(decision).unwrap();
}

#[test]
fn the_example_message_of_a_bad_number_of_days() {
    // Row 14 as a spreadsheet shows it: the header is row 1.
    let mut rows = vec![GOOD[0]; 13];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = [
            "1.000001", "1.000002", "1.000003", "1.000004", "1.000005", "1.000006", "1.000007", "1.000008", "1.000009",
            "1.000010", "1.000011", "1.000012", "1.000013",
        ][i];
    }
    rows[12][2] = "mười";
    let error = read_csv(file(&rows).as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "row 14, column \"Thời hạn giải quyết\": \"mười\" is not a number of days; give a whole number like 20"
    );
}

#[test]
fn every_kind_of_cell_problem_names_its_row_and_column() {
    let cases: &[(usize, usize, &str, &str)] = &[
        (
            0,
            0,
            "",
            "row 2, column \"Mã thủ tục\": the procedure code is empty; every row needs one, like 1.001234",
        ),
        (
            0,
            0,
            "1001234",
            "row 2, column \"Mã thủ tục\": \"1001234\" is not a procedure code like 1.001234 (a digit, a dot, six digits)",
        ),
        (
            1,
            1,
            "  ",
            "row 3, column \"Tên thủ tục\": the procedure's name is empty; give its published name",
        ),
        (
            2,
            2,
            "tám",
            "row 4, column \"Thời hạn giải quyết\": \"tám\" is not a number of hours; give a whole number like 8",
        ),
        (
            0,
            2,
            "",
            "row 2, column \"Thời hạn giải quyết\": the number of days is empty; give a whole number like 20",
        ),
        (
            0,
            2,
            "0",
            "row 2, column \"Thời hạn giải quyết\": 0 is not a processing time; give between 1 and 3650",
        ),
        (
            0,
            2,
            "20.5",
            "row 2, column \"Thời hạn giải quyết\": \"20.5\" is not a number of days; give a whole number like 20",
        ),
        (
            0,
            3,
            "tuần",
            "row 2, column \"Đơn vị thời hạn\": \"tuần\" is not a unit of time; give \"ngày làm việc\" (working days), \"giờ làm việc\" (working hours) or \"ngày\" (calendar days)",
        ),
        (
            0,
            3,
            "",
            "row 2, column \"Đơn vị thời hạn\": the unit is empty; give \"ngày làm việc\", \"giờ làm việc\" or \"ngày\"",
        ),
        (
            0,
            4,
            "50k",
            "row 2, column \"Phí, lệ phí (đồng)\": \"50k\" is not an amount in đồng; give a whole number like 50000 or 50.000 (leave it empty when there is no fee)",
        ),
        (
            0,
            4,
            "5.00",
            "row 2, column \"Phí, lệ phí (đồng)\": \"5.00\" is not an amount in đồng; give a whole number like 50000 or 50.000 (leave it empty when there is no fee)",
        ),
        (
            0,
            4,
            "-5000",
            "row 2, column \"Phí, lệ phí (đồng)\": \"-5000\" is not an amount in đồng; give a whole number like 50000 or 50.000 (leave it empty when there is no fee)",
        ),
        (
            0,
            4,
            "99999999999999999999",
            "row 2, column \"Phí, lệ phí (đồng)\": 99999999999999999999 đồng is too large an amount; give the fee in whole đồng",
        ),
        (
            0,
            5,
            "có thể",
            "row 2, column \"Toàn trình\": \"có thể\" is not yes or no; give \"Có\" or \"Không\" (an empty cell is \"Không\")",
        ),
        (
            0,
            6,
            "yes",
            "row 2, column \"Kết quả bản giấy\": \"yes\" is not yes or no; give \"Có\" or \"Không\" (an empty cell is \"Không\")",
        ),
        (
            0,
            7,
            "Sở Xây dựng",
            "row 2, column \"Cơ quan thực hiện\": \"Sở Xây dựng\" is not an agency code like 000.00.04.G18 (2 to 6 dot-separated groups of upper-case letters or digits); separate several codes with \";\"",
        ),
        (
            0,
            8,
            "10",
            "row 2, column \"Luồng xanh (đơn vị)\": the green-lane time 10 has no unit; fill both \"Luồng xanh (thời hạn)\" and \"Luồng xanh (đơn vị)\", or neither",
        ),
        (
            1,
            8,
            "",
            "row 3, column \"Luồng xanh (thời hạn)\": the green-lane unit \"working_days\" has no time; fill both \"Luồng xanh (thời hạn)\" and \"Luồng xanh (đơn vị)\", or neither",
        ),
        (
            1,
            8,
            "bảy",
            "row 3, column \"Luồng xanh (thời hạn)\": \"bảy\" is not a number of days; give a whole number like 20",
        ),
        (
            1,
            9,
            "tuần",
            "row 3, column \"Luồng xanh (đơn vị)\": \"tuần\" is not a unit of time; give \"ngày làm việc\" (working days), \"giờ làm việc\" (working hours) or \"ngày\" (calendar days)",
        ),
        (
            0,
            10,
            "Tạm dừng",
            "row 2, column \"Trạng thái\": \"Tạm dừng\" is not a status; give \"Đang áp dụng\" (or leave it empty) for a procedure in force, or \"Bãi bỏ\" for one abolished",
        ),
    ];
    for (row, column, text, expected) in cases {
        assert_eq!(
            problems(with_cell(*row, *column, text).as_bytes()),
            [*expected],
            "{text:?}"
        );
    }
}

#[test]
fn a_code_listed_twice_names_both_rows() {
    let mut rows = GOOD;
    rows[3][0] = "1.001234";
    assert_eq!(
        problems(file(&rows).as_bytes()),
        ["row 5, column \"Mã thủ tục\": 1.001234 is listed twice, in rows 2 and 5; keep one row per procedure"]
    );
    // Abolished in one row and published in another is listed twice too.
    rows[3][0] = "1.002345";
    assert_eq!(
        problems(file(&rows).as_bytes()),
        ["row 6, column \"Mã thủ tục\": 1.002345 is listed twice, in rows 5 and 6; keep one row per procedure"]
    );
}

#[test]
fn a_row_with_several_problems_reports_each_and_other_rows_too() {
    let mut rows = GOOD;
    rows[0][2] = "x";
    rows[0][4] = "free";
    rows[3][5] = "?";
    assert_eq!(
        problems(file(&rows).as_bytes()),
        [
            "row 2, column \"Thời hạn giải quyết\": \"x\" is not a number of days; give a whole number like 20",
            "row 2, column \"Phí, lệ phí (đồng)\": \"free\" is not an amount in đồng; give a whole number like 50000 or 50.000 (leave it empty when there is no fee)",
            "row 5, column \"Toàn trình\": \"?\" is not yes or no; give \"Có\" or \"Không\" (an empty cell is \"Không\")",
        ]
    );
    let error = read_csv(file(&rows).as_bytes()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("3 problems in the catalogue file:\n  row 2, column"),
        "{error}"
    );
}

#[test]
fn at_most_twenty_problems_are_listed_and_the_rest_counted() {
    let mut text = format!("{HEADER}\n");
    for i in 0..25 {
        text.push_str(&format!("1.{:06},Thủ tục,mười,ngày,0,Có,Có,,,,\n", i + 1));
    }
    let error = read_csv(text.as_bytes()).unwrap_err();
    let FileError::Problems { problems, omitted } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(problems.len(), 20);
    assert_eq!(*omitted, 5);
    assert_eq!(problems[19].row, 21);
    let message = error.to_string();
    assert!(message.starts_with("25 problems in the catalogue file:"), "{message}");
    assert!(
        message.ends_with("... and 5 more; fix these and read the file again to see the rest"),
        "{message}"
    );
}

#[test]
fn missing_and_doubled_columns_are_named_in_the_header_row() {
    let text = "Mã thủ tục,Tên thủ tục,Thời hạn giải quyết,Toàn trình,Cơ quan thực hiện\n1.001234,X,20,Có,\n";
    assert_eq!(
        problems(text.as_bytes()),
        [
            "row 1: the header row lacks the columns \"Đơn vị thời hạn\", \"Phí, lệ phí (đồng)\", \"Kết quả bản giấy\"; add them (other columns may stay and are ignored; 5 headers found in this row)"
        ]
    );
    let doubled = format!("{HEADER},Toàn trình\n");
    assert_eq!(
        problems(doubled.as_bytes()),
        ["row 1, column \"Toàn trình\": the column appears twice (columns F and L); keep one"]
    );
    let half = HEADER.replace(",Luồng xanh (đơn vị)", "");
    assert_eq!(
        problems(format!("{half}\n").as_bytes()),
        [
            "row 1: the header row has the column \"Luồng xanh (thời hạn)\" but not \"Luồng xanh (đơn vị)\"; the green lane needs both columns, or neither"
        ]
    );
    // A file without the code column at all: the first row is taken as the header.
    assert_eq!(
        problems("Tên,Thời hạn\nX,20\n".as_bytes()),
        [
            "row 1: the header row lacks the columns \"Mã thủ tục\", \"Tên thủ tục\", \"Thời hạn giải quyết\", \"Đơn vị thời hạn\", \"Phí, lệ phí (đồng)\", \"Toàn trình\", \"Kết quả bản giấy\", \"Cơ quan thực hiện\"; add them (other columns may stay and are ignored; 2 headers found in this row)"
        ]
    );
}

#[test]
fn an_empty_file_a_header_alone_and_text_that_is_not_utf8_are_problems() {
    assert_eq!(
        problems(b"\n\n"),
        [
            "row 1: the file is empty; it needs a header row with the columns \"Mã thủ tục\", \"Tên thủ tục\", \"Thời hạn giải quyết\", \"Đơn vị thời hạn\", \"Phí, lệ phí (đồng)\", \"Toàn trình\", \"Kết quả bản giấy\", \"Cơ quan thực hiện\" and one row per procedure"
        ]
    );
    assert_eq!(
        problems(format!("{HEADER}\n").as_bytes()),
        ["row 1: the file has a header but no procedure; add one row per procedure under it"]
    );
    // "Cấp" in Windows-1258 on the third row.
    let mut bytes = file(&GOOD[..1]).into_bytes();
    bytes.extend_from_slice(b"1.000001,C\xe2p,20,ng\xe0y,0,,,,,,\n");
    assert_eq!(
        problems(&bytes),
        [
            "row 3: the file is not UTF-8 text (the first character that is not is on this row); save it from the spreadsheet as \"CSV UTF-8\", or convert it to UTF-8"
        ]
    );
}

#[test]
fn rows_are_counted_as_a_spreadsheet_shows_them() {
    // A name on two lines is one row; a blank line is a row of its own.
    let mut rows = GOOD;
    rows[0][1] = "Cấp giấy phép\nxây dựng";
    rows[2][4] = "tám nghìn";
    let text = file(&rows).replacen("\n1.000894", "\n\n1.000894", 1);
    assert_eq!(
        problems(text.as_bytes()),
        [
            "row 5, column \"Phí, lệ phí (đồng)\": \"tám nghìn\" is not an amount in đồng; give a whole number like 50000 or 50.000 (leave it empty when there is no fee)"
        ]
    );
}

/// The good rows as a workbook: a title row above the header, an unknown column, numbers typed as
/// numbers, in a sheet "Danh mục" after another sheet.
fn workbook(rows: &[[&str; 11]]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let notes = workbook.add_worksheet();
    notes.set_name("Ghi chú").unwrap();
    notes.write_string(0, 0, "Not the catalogue").unwrap();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Danh mục").unwrap();
    sheet.write_string(0, 1, "DANH MỤC THỦ TỤC HÀNH CHÍNH").unwrap();
    let header: Vec<&str> = HEADER.split(",\"Phí, lệ phí (đồng)\",").collect();
    let mut headers: Vec<String> = header[0].split(',').map(str::to_owned).collect();
    headers.push("Phí, lệ phí (đồng)".to_owned());
    headers.extend(header[1].split(',').map(str::to_owned));
    sheet.write_string(2, 1, "STT").unwrap();
    for (j, text) in headers.iter().enumerate() {
        sheet.write_string(2, j as u16 + 2, text).unwrap();
    }
    for (i, row) in rows.iter().enumerate() {
        let r = i as u32 + 3;
        sheet.write_number(r, 1, i as f64 + 1.0).unwrap();
        for (j, text) in row.iter().enumerate() {
            let c = j as u16 + 2;
            match text.parse::<f64>() {
                // The code typed as a number, Excel dropping its trailing zero (2.000630 → 2.00063).
                Ok(number) if !text.is_empty() && j != 4 => sheet.write_number(r, c, number).unwrap(),
                _ => sheet.write_string(r, c, *text).unwrap(),
            };
        }
    }
    workbook.save_to_buffer().unwrap()
}

#[test]
fn a_workbook_with_the_same_rows_reads_the_same() {
    assert_eq!(read_xlsx(&workbook(&GOOD)).unwrap(), good_rows());
}

#[test]
fn a_workbook_s_problems_name_its_rows() {
    let mut rows = GOOD;
    rows[1][3] = "tuần";
    let error = read_xlsx(&workbook(&rows)).unwrap_err();
    // The header is on row 3 under a title and a blank row; the second procedure is on row 5.
    assert_eq!(
        error.to_string(),
        "row 5, column \"Đơn vị thời hạn\": \"tuần\" is not a unit of time; give \"ngày làm việc\" (working days), \"giờ làm việc\" (working hours) or \"ngày\" (calendar days)"
    );
    let error = read_xlsx("Mã thủ tục,Tên thủ tục\n".as_bytes()).unwrap_err();
    assert!(matches!(error, FileError::Unreadable(_)), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("the file cannot be read as an XLSX workbook"),
        "{error}"
    );
}

#[test]
fn the_sample_file_reads() {
    let rows = read_csv(include_bytes!("../../../docs/catalogue-sample.csv")).unwrap();
    assert_eq!(rows.entries.len(), 4);
    assert_eq!(rows.abolished, vec![code("1.002345")]);
    let permit = &rows.entries[0];
    assert_eq!(permit.code, code("1.001234"));
    assert_eq!(permit.name, "Cấp giấy phép xây dựng");
    assert_eq!(permit.statutory_time, StatutoryTime::working_days(20));
    assert_eq!(permit.fee_vnd, 50_000);
    assert_eq!(rows.entries[1].green_lane_time, Some(StatutoryTime::working_days(7)));
    assert_eq!(rows.entries[2].statutory_time.unit, TimeUnit::WorkingHours);
    assert_eq!(rows.entries[3].statutory_time.unit, TimeUnit::CalendarDays);
    assert_eq!(rows.entries[3].handling_agencies.len(), 2);
}

#[test]
fn written_entries_read_back_the_same() {
    let entries = good_rows().entries;
    let text = write_csv(&entries);
    assert!(text.starts_with("Mã thủ tục,Tên thủ tục,Thời hạn giải quyết,Đơn vị thời hạn,\"Phí, lệ phí (đồng)\","));
    assert_eq!(
        read_csv(text.as_bytes()).unwrap(),
        Rows {
            entries,
            abolished: vec![]
        }
    );
}

fn entry() -> impl Strategy<Value = ProcedureEntry> {
    let time = (1..=3650u32, 0..3usize).prop_map(|(amount, unit)| StatutoryTime {
        amount,
        unit: [TimeUnit::WorkingDays, TimeUnit::WorkingHours, TimeUnit::CalendarDays][unit],
    });
    (
        (0..10u32, 0..1_000_000u32),
        // Names with separators, quotes, line breaks and Vietnamese letters; no outer spaces.
        "[A-Za-zĐđàảãáạăằẳẵắặâầẩẫấậ0-9][A-Za-zĐđàảãáạ0-9 ,;\"\n()-]{0,30}[A-Za-zđạ0-9)]",
        time.clone(),
        0..i64::MAX,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec("[A-Z0-9]{1,8}\\.[A-Z0-9]{1,8}(\\.[A-Z0-9]{1,8}){0,2}", 0..3),
        prop::option::of(time),
    )
        .prop_map(
            |((a, b), name, statutory_time, fee_vnd, full_online_eligible, paper_result, agencies, green_lane_time)| {
                let mut handling_agencies: Vec<AgencyCode> = Vec::new();
                for a in agencies {
                    let a = agency(&a);
                    if !handling_agencies.contains(&a) {
                        handling_agencies.push(a);
                    }
                }
                ProcedureEntry {
                    code: code(&format!("{a}.{b:06}")),
                    name,
                    statutory_time,
                    fee_vnd,
                    full_online_eligible,
                    paper_result,
                    handling_agencies,
                    green_lane_time,
                }
            },
        )
}

proptest! {
    #[test]
    fn any_entries_round_trip_through_write_and_read(entries in prop::collection::vec(entry(), 1..8)) {
        let mut seen = std::collections::BTreeSet::new();
        let entries: Vec<ProcedureEntry> = entries.into_iter().filter(|e| seen.insert(e.code.clone())).collect();
        let text = write_csv(&entries);
        prop_assert_eq!(read_csv(text.as_bytes()).unwrap(), Rows { entries, abolished: vec![] });
    }
}
