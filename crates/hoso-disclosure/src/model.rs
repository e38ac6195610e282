//! The disclosure as data: every printed value, taken from the reports and formatted once, from
//! which each format is written (and which is the JSON document itself).

use chrono::{DateTime, Datelike, FixedOffset, Months, SecondsFormat, TimeDelta, Utc};
use hoso_projections::Period;
use hoso_projections::figures::{Figures, Indicator, OnTime, Ratio, Report, hundredths_text};
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
    pub(crate) note: &'static str,
    pub(crate) period: PeriodView,
    pub(crate) previous_period: PeriodView,
    pub(crate) appendix_1: Appendix1,
    pub(crate) appendix_2: Appendix2,
    pub(crate) appendix_3: Appendix3,
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
    pub(crate) current: Measure,
    pub(crate) previous: Measure,
    pub(crate) change: Change,
}

#[derive(Serialize)]
pub(crate) struct Change {
    pub(crate) percentage_points: Option<String>,
    pub(crate) points: Option<String>,
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
    pub(crate) overdue_receipt_codes: Vec<String>,
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
                Row {
                    code: indicator.code,
                    name: indicator_name(&indicator, labels),
                    max_points: indicator.max_points_hundredths.map(hundredths_text),
                    change: Change {
                        percentage_points: difference(current.rate_hundredths, previous.rate_hundredths),
                        points: difference(current.points_hundredths, previous.points_hundredths),
                    },
                    current,
                    previous,
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
        Disclosure {
            labels,
            schema: "hoso-disclosure/1",
            language: labels.code,
            title: labels.title,
            province: options.province_name.clone(),
            note: labels.note,
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

/// `a - b` in hundredths, signed: `+10.00`, `-1.20`, `0.00`; `None` unless both are known.
fn difference(a: Option<u64>, b: Option<u64>) -> Option<String> {
    let (a, b) = (a?, b?);
    Some(match a.cmp(&b) {
        std::cmp::Ordering::Greater => format!("+{}", hundredths_text(a - b)),
        std::cmp::Ordering::Less => format!("-{}", hundredths_text(b - a)),
        std::cmp::Ordering::Equal => hundredths_text(0),
    })
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
            overdue_receipt_codes: on_time.overdue.clone(),
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
        let offset = FixedOffset::east_opt(UTC_PLUS_7).expect("UTC+7 is a valid offset");
        let local = cutoff.with_timezone(&offset);
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
