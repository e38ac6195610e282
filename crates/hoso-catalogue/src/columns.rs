//! The columns of a catalogue file: their headers, and how each cell's text becomes a value (and a
//! value its text, for writing).

use hoso_domain::error::DomainError;
use hoso_domain::{AgencyCode, ProcedureCode, TimeUnit};

/// A column the reader knows; any other column is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Code,
    Name,
    Time,
    Unit,
    Fee,
    FullOnline,
    PaperResult,
    Agencies,
    GreenTime,
    GreenUnit,
    Status,
}

impl Column {
    /// Every column, in the order [`crate::write_csv`] writes them.
    pub(crate) const ALL: [Column; 11] = [
        Column::Code,
        Column::Name,
        Column::Time,
        Column::Unit,
        Column::Fee,
        Column::FullOnline,
        Column::PaperResult,
        Column::Agencies,
        Column::GreenTime,
        Column::GreenUnit,
        Column::Status,
    ];

    /// The header as the national export writes it.
    pub(crate) fn header(self) -> &'static str {
        match self {
            Column::Code => "Mã thủ tục",
            Column::Name => "Tên thủ tục",
            Column::Time => "Thời hạn giải quyết",
            Column::Unit => "Đơn vị thời hạn",
            Column::Fee => "Phí, lệ phí (đồng)",
            Column::FullOnline => "Toàn trình",
            Column::PaperResult => "Kết quả bản giấy",
            Column::Agencies => "Cơ quan thực hiện",
            Column::GreenTime => "Luồng xanh (thời hạn)",
            Column::GreenUnit => "Luồng xanh (đơn vị)",
            Column::Status => "Trạng thái",
        }
    }

    /// Whether a file must have the column (its cells may still be empty where allowed).
    pub(crate) fn required(self) -> bool {
        !matches!(self, Column::GreenTime | Column::GreenUnit | Column::Status)
    }

    /// The column a header names, matched case-insensitively with spaces trimmed and runs of
    /// spaces taken as one.
    pub(crate) fn from_header(header: &str) -> Option<Column> {
        let header = normalize(header);
        Column::ALL.into_iter().find(|c| normalize(c.header()) == header)
    }
}

/// Lower case, trimmed, inner runs of white space as one space.
pub(crate) fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// The message of a domain error on a field, without the field's name (the column says it).
fn problem_of(error: DomainError) -> String {
    match error {
        DomainError::InvalidField { problem, .. } => problem,
        other => other.to_string(),
    }
}

pub(crate) fn procedure_code(text: &str) -> Result<ProcedureCode, String> {
    if text.is_empty() {
        return Err("the procedure code is empty; every row needs one, like 1.001234".to_owned());
    }
    ProcedureCode::parse("Mã thủ tục", text).map_err(problem_of)
}

pub(crate) fn name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the procedure's name is empty; give its published name".to_owned());
    }
    Ok(text.to_owned())
}

pub(crate) fn unit(text: &str) -> Result<TimeUnit, String> {
    match normalize(text).as_str() {
        "ngày làm việc" | "working_days" => Ok(TimeUnit::WorkingDays),
        "giờ làm việc" | "working_hours" => Ok(TimeUnit::WorkingHours),
        "ngày" | "ngày dương lịch" | "calendar_days" => Ok(TimeUnit::CalendarDays),
        "" => Err("the unit is empty; give \"ngày làm việc\", \"giờ làm việc\" or \"ngày\"".to_owned()),
        _ => Err(format!(
            "{text:?} is not a unit of time; give \"ngày làm việc\" (working days), \"giờ làm việc\" (working hours) or \"ngày\" (calendar days)"
        )),
    }
}

pub(crate) fn unit_text(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::WorkingDays => "ngày làm việc",
        TimeUnit::WorkingHours => "giờ làm việc",
        TimeUnit::CalendarDays => "ngày",
    }
}

/// A whole number of units; `unit`, when known, words the message.
pub(crate) fn amount(text: &str, unit: Option<TimeUnit>) -> Result<u32, String> {
    let (what, example) = match unit {
        Some(TimeUnit::WorkingHours) => ("hours", 8),
        _ => ("days", 20),
    };
    if text.is_empty() {
        return Err(format!(
            "the number of {what} is empty; give a whole number like {example}"
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{text:?} is not a number of {what}; give a whole number like {example}"
        ));
    }
    let amount = text
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=hoso_domain::decide::MAX_STATUTORY_AMOUNT).contains(n));
    amount.ok_or_else(|| {
        format!(
            "{text} is not a processing time; give between 1 and {}",
            hoso_domain::decide::MAX_STATUTORY_AMOUNT
        )
    })
}

/// Whole đồng: digits, optionally grouped by threes with `.` or `,`; empty is 0.
pub(crate) fn fee(text: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "{text:?} is not an amount in đồng; give a whole number like 50000 or 50.000 (leave it empty when there is no fee)"
        )
    };
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Ok(0);
    }
    if !compact.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b',') {
        return Err(bad());
    }
    let groups: Vec<&str> = compact.split(['.', ',']).collect();
    if groups.len() > 1 {
        let separators: Vec<char> = compact.chars().filter(|c| *c == '.' || *c == ',').collect();
        let one_separator = separators.windows(2).all(|w| w[0] == w[1]);
        let grouped =
            groups.first().is_some_and(|g| (1..=3).contains(&g.len())) && groups.iter().skip(1).all(|g| g.len() == 3);
        if !one_separator || !grouped {
            return Err(bad());
        }
    }
    let digits: String = groups.concat();
    digits
        .parse::<i64>()
        .map_err(|_| format!("{text} đồng is too large an amount; give the fee in whole đồng"))
}

/// Yes or no: Có/Không, x/empty, true/false, 1/0.
pub(crate) fn yes_no(text: &str) -> Result<bool, String> {
    match normalize(text).as_str() {
        "có" | "x" | "true" | "1" => Ok(true),
        "không" | "" | "false" | "0" => Ok(false),
        _ => Err(format!(
            "{text:?} is not yes or no; give \"Có\" or \"Không\" (an empty cell is \"Không\")"
        )),
    }
}

pub(crate) fn yes_no_text(value: bool) -> &'static str {
    if value { "Có" } else { "Không" }
}

/// Agency codes separated by `;` (or line breaks); empty: any agency. Each bad code is one
/// message.
pub(crate) fn agencies(text: &str) -> Result<Vec<AgencyCode>, Vec<String>> {
    let mut codes: Vec<AgencyCode> = Vec::new();
    let mut problems = Vec::new();
    for part in text.split([';', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
        match AgencyCode::parse("Cơ quan thực hiện", part) {
            Ok(code) if !codes.contains(&code) => codes.push(code),
            Ok(_) => {}
            Err(error) => problems.push(format!("{}; separate several codes with \";\"", problem_of(error))),
        }
    }
    if problems.is_empty() { Ok(codes) } else { Err(problems) }
}

/// Whether a row publishes its procedure or abolishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Published,
    Abolished,
}

pub(crate) fn status(text: &str) -> Result<Status, String> {
    match normalize(text).as_str() {
        "" | "đang áp dụng" | "published" => Ok(Status::Published),
        "bãi bỏ" | "abolished" => Ok(Status::Abolished),
        _ => Err(format!(
            "{text:?} is not a status; give \"Đang áp dụng\" (or leave it empty) for a procedure in force, or \"Bãi bỏ\" for one abolished"
        )),
    }
}

pub(crate) const PUBLISHED_TEXT: &str = "Đang áp dụng";
