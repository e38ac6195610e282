//! The disclosure as data: every printed value, taken from the reports and formatted once, from
//! which each format is written (and which is the JSON document itself).

use chrono::{DateTime, Datelike, FixedOffset, Months, SecondsFormat, TimeDelta, Utc};
use hoso_projections::Period;
use hoso_projections::figures::{Figures, Indicator, Judged, OnTime, Ratio, Report, hundredths_text};
use serde::Serialize;

use crate::Options;
use crate::labels::Labels;

/// Vietnam's offset from UTC, in seconds (no daylight saving).
const UTC_PLUS_7: i32 = 7 * 3600;

#[derive(Serialize)]
pub(crate) struct Disclosure {
    #[serde(skip)]
    pub(crate) labels: &'static Labels,
    pub(crate) schema: &'static str,
    pub(crate) language: &'static str,
    pub(crate) title: &'static str,
    pub(crate) province: String,
    pub(crate) letter: LetterView,
    pub(crate) note: &'static str,
    /// Whether the period counts no dossier, and the sentence that says so.
    pub(crate) empty: bool,
    pub(crate) empty_note: Option<&'static str>,
    pub(crate) period: PeriodView,
    pub(crate) previous_period: PeriodView,
    pub(crate) appendix_1: Appendix1,
    pub(crate) appendix_2: Appendix2,
    pub(crate) appendix_3: Appendix3,
    pub(crate) appendix_4: Appendix4,
}

#[derive(Serialize)]
pub(crate) struct LetterView {
    pub(crate) national_heading: &'static str,
    pub(crate) motto: &'static str,
    /// The line above the issuing body: the province ("TỈNH THÁI NGUYÊN", "THÁI NGUYÊN PROVINCE").
    pub(crate) province_heading: String,
    pub(crate) issuing_body: String,
    /// "Số: 09/BC-VPUB", or a blank to fill in by hand.
    pub(crate) number: String,
    /// "Thái Nguyên, ngày 05 tháng 10 năm 2025": the cut-off's date in UTC+7.
    pub(crate) place_date: String,
    pub(crate) signer_title: String,
    pub(crate) signer_name: String,
}

#[derive(Serialize)]
pub(crate) struct Appendix4 {
    pub(crate) title: &'static str,
    /// How the days late are counted.
    pub(crate) note: &'static str,
    pub(crate) dossiers: Vec<Overdue>,
}

/// One overdue dossier, as its agency needs it to act.
#[derive(Serialize)]
pub(crate) struct Overdue {
    pub(crate) receipt_code: String,
    pub(crate) procedure: String,
    pub(crate) handling_agency: String,
    pub(crate) handling_agency_name: String,
    pub(crate) received_at: String,
    pub(crate) due_at: String,
    /// The finish, RFC 3339 in +07:00; null while open at the period's end.
    pub(crate) finished_at: Option<String>,
    /// "dd/mm/yyyy hh:mm" (UTC+7), for the tables.
    pub(crate) received_text: String,
    pub(crate) due_text: String,
    /// "đã giải quyết dd/mm/yyyy hh:mm", or "chưa giải quyết" (at the period's end).
    pub(crate) state_text: String,
    /// Whole calendar days (started) from the due date to the finish or the period's end; 0 when
    /// overdue for another reason (a second supplement request).
    pub(crate) days_late: u64,
}

#[derive(Serialize)]
pub(crate) struct PeriodView {
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) label: String,
    pub(crate) cutoff: String,
    pub(crate) cutoff_text: String,
}

#[derive(Serialize)]
pub(crate) struct Appendix1 {
    pub(crate) title: &'static str,
    pub(crate) indicators: Vec<Row>,
}

#[derive(Serialize)]
pub(crate) struct Row {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    pub(crate) max_points: Option<String>,
    #[serde(skip)]
    pub(crate) max_points_hundredths: Option<u64>,
    pub(crate) current: Measure,
    pub(crate) previous: Measure,
    pub(crate) change: Change,
    /// The factors of a rate that is their product (13), each with its own numerator and
    /// denominator.
    pub(crate) factors: Vec<FactorRow>,
}

#[derive(Serialize)]
pub(crate) struct FactorRow {
    pub(crate) name: &'static str,
    pub(crate) current: Measure,
    pub(crate) previous: Measure,
}

#[derive(Serialize)]
pub(crate) struct Change {
    pub(crate) percentage_points: Option<String>,
    pub(crate) points: Option<String>,
    /// The same, in signed hundredths, for the workbook's numbers.
    #[serde(skip)]
    pub(crate) percentage_points_hundredths: Option<i64>,
    #[serde(skip)]
    pub(crate) points_hundredths: Option<i64>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Measured,
    NoDossiers,
    Absent,
}

#[derive(Serialize)]
pub(crate) struct Measure {
    pub(crate) status: Status,
    pub(crate) numerator: Option<u64>,
    pub(crate) denominator: Option<u64>,
    pub(crate) rate: Option<String>,
    pub(crate) points: Option<String>,
    pub(crate) text: String,
    /// The rate in hundredths of a percent, for the charts and the change.
    #[serde(skip)]
    pub(crate) rate_hundredths: Option<u64>,
    #[serde(skip)]
    pub(crate) points_hundredths: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct Appendix2 {
    pub(crate) title: &'static str,
    pub(crate) units: Vec<Unit>,
    pub(crate) total: Unit,
}

#[derive(Serialize)]
pub(crate) struct Unit {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) in_scope: u64,
    pub(crate) on_time: u64,
    pub(crate) overdue: u64,
    pub(crate) on_time_rate: Measure,
}

#[derive(Serialize)]
pub(crate) struct Appendix3 {
    pub(crate) title: &'static str,
    pub(crate) agencies: Vec<Agency>,
}

#[derive(Serialize)]
pub(crate) struct Agency {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) received: u64,
    pub(crate) finished: u64,
    pub(crate) approved: u64,
    pub(crate) indicators: Vec<AgencyIndicator>,
    pub(crate) green_lane_on_time: Measure,
    pub(crate) apologies: Apologies,
}

#[derive(Serialize)]
pub(crate) struct AgencyIndicator {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    pub(crate) max_points: Option<String>,
    #[serde(skip)]
    pub(crate) max_points_hundredths: Option<u64>,
    pub(crate) figure: Measure,
}

#[derive(Serialize)]
pub(crate) struct Apologies {
    pub(crate) sent: u64,
    pub(crate) overdue_without_letter: u64,
    pub(crate) promises_kept: Measure,
}

impl Disclosure {
    pub(crate) fn new(current: &Report, previous: &Report, options: &Options) -> Disclosure {
        let labels = Labels::of(options.language);
        let name = |code: &str| {
            options
                .agency_names
                .get(code)
                .cloned()
                .unwrap_or_else(|| code.to_owned())
        };
        let previous_indicators = previous.province.indicators();
        let indicators = current
            .province
            .indicators()
            .into_iter()
            .map(|indicator| {
                let before = previous_indicators.iter().find(|i| i.code == indicator.code);
                let current = Measure::of_indicator(&indicator, labels);
                let previous = before.map_or_else(|| Measure::absent(labels), |i| Measure::of_indicator(i, labels));
                let factors = indicator
                    .factors
                    .iter()
                    .enumerate()
                    .map(|(idx, factor)| FactorRow {
                        name: if labels.code == "vi" {
                            factor.name_vi
                        } else {
                            factor.name_en
                        },
                        current: Measure::of_ratio(factor.ratio, labels),
                        previous: before
                            .and_then(|b| b.factors.get(idx))
                            .map_or_else(|| Measure::absent(labels), |f| Measure::of_ratio(f.ratio, labels)),
                    })
                    .collect();
                let (pp_text, pp) = difference(current.rate_hundredths, previous.rate_hundredths);
                let (points_text, points) = difference(current.points_hundredths, previous.points_hundredths);
                Row {
                    code: indicator.code,
                    name: indicator_name(&indicator, labels),
                    max_points: indicator.max_points_hundredths.map(hundredths_text),
                    max_points_hundredths: indicator.max_points_hundredths,
                    change: Change {
                        percentage_points: pp_text,
                        points: points_text,
                        percentage_points_hundredths: pp,
                        points_hundredths: points,
                    },
                    current,
                    previous,
                    factors,
                }
            })
            .collect();
        let units = current
            .agencies
            .iter()
            .map(|(code, figures)| Unit::new(code.clone(), name(code), &figures.on_time, labels))
            .collect();
        let total = Unit::new(
            String::new(),
            labels.total.to_owned(),
            &current.province.on_time,
            labels,
        );
        let agencies = current
            .agencies
            .iter()
            .map(|(code, figures)| Agency::new(code.clone(), name(code), figures, labels))
            .collect();
        let mut overdue: Vec<Overdue> = current
            .judged
            .iter()
            .filter(|j| !j.on_time)
            .map(|j| Overdue::new(j, name(&j.handling_agency), labels))
            .collect();
        // By agency, so that each agency finds its own dossiers together; by receipt code within.
        overdue.sort_by(|a, b| (&a.handling_agency, &a.receipt_code).cmp(&(&b.handling_agency, &b.receipt_code)));
        let empty = crate::is_empty(current);
        Disclosure {
            labels,
            schema: "hoso-disclosure/2",
            language: labels.code,
            title: labels.title,
            province: options.province_name.clone(),
            letter: LetterView::new(options, current, labels),
            note: labels.note,
            empty,
            empty_note: empty.then_some(labels.empty_period),
            period: PeriodView::new(&current.period, current.cutoff, labels),
            previous_period: PeriodView::new(&previous.period, previous.cutoff, labels),
            appendix_1: Appendix1 {
                title: labels.appendix_1,
                indicators,
            },
            appendix_2: Appendix2 {
                title: labels.appendix_2,
                units,
                total,
            },
            appendix_3: Appendix3 {
                title: labels.appendix_3,
                agencies,
            },
            appendix_4: Appendix4 {
                title: labels.appendix_4,
                note: labels.days_late_note,
                dossiers: overdue,
            },
        }
    }
}

/// An instant in UTC+7, as RFC 3339 and as "dd/mm/yyyy hh:mm".
fn local(instant: DateTime<Utc>) -> (String, String) {
    let local = instant.with_timezone(&utc_plus_7());
    (
        local.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        local.format("%d/%m/%Y %H:%M").to_string(),
    )
}

fn utc_plus_7() -> FixedOffset {
    FixedOffset::east_opt(UTC_PLUS_7).expect("7 hours is within chrono's bounds of ±24 hours")
}

impl Overdue {
    fn new(judged: &Judged, agency_name: String, labels: &Labels) -> Overdue {
        let (received_at, received_text) = local(judged.received_at);
        let (due_at, due_text) = local(judged.due_at);
        let (finished_at, state_text) = if judged.finished {
            let (at, text) = local(judged.judged_at);
            (Some(at), format!("{} {text}", labels.finished_on))
        } else {
            (None, labels.still_open.to_owned())
        };
        let late_seconds = (judged.judged_at - judged.due_at).num_seconds();
        let days_late = if late_seconds > 0 {
            (late_seconds as u64).div_ceil(86_400)
        } else {
            0
        };
        Overdue {
            receipt_code: judged.receipt_code.clone(),
            procedure: judged.procedure.clone(),
            handling_agency: judged.handling_agency.clone(),
            handling_agency_name: agency_name,
            received_at,
            due_at,
            finished_at,
            received_text,
            due_text,
            state_text,
            days_late,
        }
    }
}

impl LetterView {
    fn new(options: &Options, current: &Report, labels: &Labels) -> LetterView {
        let letter = &options.letter;
        let or = |value: &str, default: String| {
            if value.trim().is_empty() {
                default
            } else {
                value.trim().to_owned()
            }
        };
        let province = options.province_name.trim();
        let start = current.period.start;
        let number = if letter.number_format.trim().is_empty() {
            labels.number_blank.to_owned()
        } else {
            letter
                .number_format
                .trim()
                .replace("{yyyy}", &format!("{:04}", start.year()))
                .replace("{mm}", &format!("{:02}", start.month()))
        };
        let date = current.cutoff.with_timezone(&utc_plus_7()).date_naive();
        let place = or(&letter.place, province.to_owned());
        let place_date = if labels.code == "vi" {
            format!(
                "{place}, ngày {:02} tháng {:02} năm {}",
                date.day(),
                date.month(),
                date.year()
            )
        } else {
            format!(
                "{place}, {} {} {}",
                date.day(),
                labels.months[date.month0() as usize],
                date.year()
            )
        };
        LetterView {
            national_heading: labels.national_heading,
            motto: labels.motto,
            province_heading: labels.province_heading.replace("{}", province).to_uppercase(),
            issuing_body: or(&letter.issuing_body, labels.issuing_body_default.to_owned()),
            number: format!("{} {number}", labels.number),
            place_date,
            signer_title: or(&letter.signer_title, labels.signer_default.to_owned()),
            signer_name: letter.signer_name.trim().to_owned(),
        }
    }
}

fn indicator_name(indicator: &Indicator, labels: &Labels) -> &'static str {
    if labels.code == "vi" {
        indicator.name_vi
    } else {
        indicator.name_en
    }
}

/// `a - b` in hundredths, signed: `+10.00`, `-1.20`, `0.00`, and as a number; `None` unless
/// both are known.
fn difference(a: Option<u64>, b: Option<u64>) -> (Option<String>, Option<i64>) {
    let (Some(a), Some(b)) = (a, b) else {
        return (None, None);
    };
    // Rates and points are at most 10,000 hundredths: far inside i64.
    let signed = a as i64 - b as i64;
    let text = match a.cmp(&b) {
        std::cmp::Ordering::Greater => format!("+{}", hundredths_text(a - b)),
        std::cmp::Ordering::Less => format!("-{}", hundredths_text(b - a)),
        std::cmp::Ordering::Equal => hundredths_text(0),
    };
    (Some(text), Some(signed))
}

impl Measure {
    fn absent(labels: &Labels) -> Measure {
        Measure {
            status: Status::Absent,
            numerator: None,
            denominator: None,
            rate: None,
            points: None,
            text: labels.absent.to_owned(),
            rate_hundredths: None,
            points_hundredths: None,
        }
    }

    fn of_indicator(indicator: &Indicator, labels: &Labels) -> Measure {
        let Some(ratio) = indicator.ratio else {
            return Measure::absent(labels);
        };
        Measure::new(ratio, indicator.rate_hundredths, indicator.points_hundredths, labels)
    }

    fn of_ratio(ratio: Ratio, labels: &Labels) -> Measure {
        Measure::new(ratio, ratio.percent_hundredths(), None, labels)
    }

    fn new(ratio: Ratio, rate: Option<u64>, points: Option<u64>, labels: &Labels) -> Measure {
        let (status, points) = match rate {
            Some(_) => (Status::Measured, points),
            None => (Status::NoDossiers, None),
        };
        Measure {
            status,
            numerator: Some(ratio.numerator),
            denominator: Some(ratio.denominator),
            rate: rate.map(hundredths_text),
            points: points.map(hundredths_text),
            text: rate.map_or_else(|| labels.no_dossiers.to_owned(), |r| format!("{}%", hundredths_text(r))),
            rate_hundredths: rate,
            points_hundredths: points,
        }
    }

    /// The rate cell: `50.00`, or the reason there is none.
    pub(crate) fn rate_cell(&self) -> &str {
        self.rate.as_deref().unwrap_or(&self.text)
    }

    /// The points cell: `10.00`, or empty.
    pub(crate) fn points_cell(&self) -> &str {
        self.points.as_deref().unwrap_or("")
    }
}

impl Unit {
    fn new(code: String, name: String, on_time: &OnTime, labels: &Labels) -> Unit {
        Unit {
            code,
            name,
            in_scope: on_time.ratio.denominator,
            on_time: on_time.ratio.numerator,
            overdue: on_time.overdue_count(),
            on_time_rate: Measure::of_ratio(on_time.ratio, labels),
        }
    }
}

impl Agency {
    fn new(code: String, name: String, figures: &Figures, labels: &Labels) -> Agency {
        let indicators = figures
            .indicators()
            .into_iter()
            .map(|indicator| AgencyIndicator {
                code: indicator.code,
                name: indicator_name(&indicator, labels),
                max_points: indicator.max_points_hundredths.map(hundredths_text),
                max_points_hundredths: indicator.max_points_hundredths,
                figure: Measure::of_indicator(&indicator, labels),
            })
            .collect();
        Agency {
            code,
            name,
            received: figures.received,
            finished: figures.finished,
            approved: figures.approved,
            indicators,
            green_lane_on_time: Measure::of_ratio(figures.green_lane_on_time.ratio, labels),
            apologies: Apologies {
                sent: figures.apologies.sent,
                overdue_without_letter: figures.apologies.overdue_without_letter,
                promises_kept: Measure::of_ratio(figures.apologies.promises_kept, labels),
            },
        }
    }
}

impl PeriodView {
    fn new(period: &Period, cutoff: DateTime<Utc>, labels: &Labels) -> PeriodView {
        let local = cutoff.with_timezone(&utc_plus_7());
        let last_day = period.end - TimeDelta::days(1);
        let whole_month = period.start.day() == 1 && period.start + Months::new(1) == period.end;
        let label = if whole_month {
            let month = labels.months[period.start.month0() as usize];
            if labels.month.is_empty() {
                format!("{month} {}", period.start.year())
            } else {
                format!("{} {month}/{}", labels.month, period.start.year())
            }
        } else {
            format!(
                "{} {} {}",
                period.start.format("%d/%m/%Y"),
                labels.to,
                last_day.format("%d/%m/%Y")
            )
        };
        PeriodView {
            start: period.start.to_string(),
            end: period.end.to_string(),
            label,
            cutoff: local.to_rfc3339_opts(SecondsFormat::AutoSi, false),
            cutoff_text: format!("{} (UTC+7)", local.format("%d/%m/%Y %H:%M:%S")),
        }
    }
}
