//! The figures of a period, as of a recorded-at cut-off.
//!
//! Definitions (`docs/domain.md`, "Figures of a period"):
//! - only events recorded at or before the cut-off count; an event's period is that of its
//!   `occurred_at`; dossiers refused at intake are left out of every figure;
//! - on time: in scope are the dossiers received before the period's end that had not finished
//!   before its start; each is judged at its finish, or at the period's end if not finished by
//!   then, as it stood at that instant (`DossierState::judge_on_time`);
//! - "received", "finished" and "approved" dossiers are chosen by the instant of their receipt,
//!   finish or approval; once chosen, their other events count whenever they occurred.
//!
//! Every figure is a [`Ratio`] of exact integers; rates and points are rounded half away from zero
//! to two decimals only when printed, from the integers, so that printing is exact and
//! reproducible. A figure with a zero denominator is "no dossiers", never 0% nor 100%.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hoso_domain::{Channel, DossierEvent, DossierState, Judgement};

use crate::model::{Dossiers, fold, fold_until};
use crate::period::Period;

/// A count over a count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Ratio {
    /// Dossiers that meet the indicator.
    pub numerator: u64,
    /// Dossiers it is measured over.
    pub denominator: u64,
}

impl Ratio {
    fn merge(&mut self, other: Ratio) {
        self.numerator += other.numerator;
        self.denominator += other.denominator;
    }

    fn count(&mut self, counted: bool) {
        self.denominator += 1;
        self.numerator += u64::from(counted);
    }

    /// The rate in hundredths of a percent, rounded half away from zero; `None` with no dossiers.
    pub fn percent_hundredths(&self) -> Option<u64> {
        scaled(u128::from(self.numerator), u128::from(self.denominator), 10_000)
    }

    /// The rate as printed: `94.77%`, or `no dossiers`.
    pub fn percent_text(&self) -> String {
        self.percent_hundredths()
            .map_or_else(|| "no dossiers".to_owned(), |h| format!("{}%", hundredths_text(h)))
    }
}

/// `round(scale × numerator / denominator)`, half away from zero, in integers.
fn scaled(numerator: u128, denominator: u128, scale: u128) -> Option<u64> {
    if denominator == 0 {
        return None;
    }
    let value = (2 * scale * numerator + denominator) / (2 * denominator);
    u64::try_from(value).ok()
}

/// Hundredths as a decimal with two places: 9477 → `94.77`.
pub fn hundredths_text(hundredths: u64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// One dossier's on-time judgement in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// Its receipt code.
    pub receipt_code: String,
    /// Its handling agency.
    pub handling_agency: String,
    /// Its procedure's code.
    pub procedure: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Whether it is a green-lane dossier.
    pub green_lane: bool,
    /// Its due date at the judging instant.
    pub due_at: DateTime<Utc>,
    /// The judging instant: its finish, or the period's end.
    pub judged_at: DateTime<Utc>,
    /// Whether it had finished by the judging instant.
    pub finished: bool,
    /// The judgement.
    pub on_time: bool,
    /// Supplement requests by the judging instant (more than one: overdue).
    pub supplement_requests: u32,
    /// Apology letters sent by the judging instant.
    pub apologies: u32,
}

/// On-time figures of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnTime {
    /// On time / in scope.
    pub ratio: Ratio,
    /// The overdue dossiers behind `denominator - numerator`, by receipt code.
    pub overdue: Vec<String>,
}

impl OnTime {
    fn merge(&mut self, other: OnTime) {
        self.ratio.merge(other.ratio);
        self.overdue.extend(other.overdue);
    }

    fn add(&mut self, judged: &Judged) {
        self.ratio.count(judged.on_time);
        if !judged.on_time {
            self.overdue.push(judged.receipt_code.clone());
        }
    }

    /// In scope minus on time.
    pub fn overdue_count(&self) -> u64 {
        self.ratio.denominator - self.ratio.numerator
    }
}

/// The apology-letter figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Apologies {
    /// Letters sent in the period.
    pub sent: u64,
    /// Dossiers judged overdue in the period with no letter sent by their judging instant: a
    /// breach the province must explain.
    pub overdue_without_letter: u64,
    /// Of the dossiers finished in the period that had a letter, those that finished by the new
    /// appointment.
    pub promises_kept: Ratio,
}

/// Every figure of one group (an agency, or the province).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Index 766 group "Tiến độ, kết quả giải quyết": on time / in scope.
    pub on_time: OnTime,
    /// The same, over green-lane dossiers only.
    pub green_lane_on_time: OnTime,
    /// Dossiers received in the period.
    pub received: u64,
    /// Dossiers finished in the period.
    pub finished: u64,
    /// Dossiers approved in the period.
    pub approved: u64,
    /// 7.3: received online / received.
    pub online_submission: Ratio,
    /// 7: received online / received, of procedures eligible for full-online service.
    pub full_online: Ratio,
    /// 8.4: received with a fee and paid online / received with a fee.
    pub online_payment: Ratio,
    /// 12: approved with an e-result / approved, of procedures with a paper result.
    pub e_result: Ratio,
    /// 13, first factor: received, digitized and synced / received and synced.
    pub digitized_of_synced: Ratio,
    /// 4 (and 13, second factor): received and synced / received.
    pub sync: Ratio,
    /// 14: received with a reused component / received.
    pub reuse: Ratio,
    /// 10: finished, not rated unsatisfied and not finished late / finished.
    pub satisfaction: Ratio,
    /// Apology letters.
    pub apologies: Apologies,
}

/// One indicator of index 766 as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indicator {
    /// Its number in Decision 766's table, as the seed letter cites it.
    pub code: &'static str,
    /// Its name in Vietnamese.
    pub name_vi: &'static str,
    /// Its name in English.
    pub name_en: &'static str,
    /// The most points it can score, in hundredths; `None` when the formula is not known.
    pub max_points_hundredths: Option<u64>,
    /// The measured figure: `None` when it needs data beyond dossiers (reported as absent). For
    /// digitization (13), digitized / received, which is the product of its two factors since the
    /// first factor's denominator is the second's numerator (the dossiers synced).
    pub ratio: Option<Ratio>,
    /// The factors of a rate that is a product (only 13: digitized of synced, synced of
    /// received), each with its own numerator and denominator; empty otherwise.
    pub factors: Vec<Factor>,
    /// The rate in hundredths of a percent, when measured and not "no dossiers" (the digitization
    /// rate is the product of its two factors).
    pub rate_hundredths: Option<u64>,
    /// Points scored, in hundredths, when measured and the formula is known.
    pub points_hundredths: Option<u64>,
}

/// One factor of an indicator whose rate is a product of ratios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    /// What it measures, in Vietnamese.
    pub name_vi: &'static str,
    /// What it measures, in English.
    pub name_en: &'static str,
    /// Its numerator and denominator.
    pub ratio: Ratio,
}

impl Apologies {
    fn merge(&mut self, other: Apologies) {
        let Apologies {
            sent,
            overdue_without_letter,
            promises_kept,
        } = other;
        self.sent += sent;
        self.overdue_without_letter += overdue_without_letter;
        self.promises_kept.merge(promises_kept);
    }
}

impl Figures {
    /// Adds another part's figures (every field: the destructuring makes a new field a compile
    /// error here until it is added up too).
    fn merge(&mut self, other: Figures) {
        let Figures {
            on_time,
            green_lane_on_time,
            received,
            finished,
            approved,
            online_submission,
            full_online,
            online_payment,
            e_result,
            digitized_of_synced,
            sync,
            reuse,
            satisfaction,
            apologies,
        } = other;
        self.on_time.merge(on_time);
        self.green_lane_on_time.merge(green_lane_on_time);
        self.received += received;
        self.finished += finished;
        self.approved += approved;
        self.online_submission.merge(online_submission);
        self.full_online.merge(full_online);
        self.online_payment.merge(online_payment);
        self.e_result.merge(e_result);
        self.digitized_of_synced.merge(digitized_of_synced);
        self.sync.merge(sync);
        self.reuse.merge(reuse);
        self.satisfaction.merge(satisfaction);
        self.apologies.merge(apologies);
    }

    /// The index 766 indicators, in the table's order; those that need data beyond dossiers are
    /// listed as absent.
    pub fn indicators(&self) -> Vec<Indicator> {
        let linear =
            |ratio: Ratio, max: u128| scaled(u128::from(ratio.numerator), u128::from(ratio.denominator), 100 * max);
        let capped = |ratio: Ratio, max: u64, numerator_scale: u128, denominator_scale: u128| {
            scaled(
                u128::from(ratio.numerator) * numerator_scale,
                u128::from(ratio.denominator) * denominator_scale,
                1,
            )
            .map(|p| p.min(max))
        };
        let measured = |code, name_vi, name_en, max: Option<u64>, ratio: Ratio, points: Option<u64>| Indicator {
            code,
            name_vi,
            name_en,
            max_points_hundredths: max,
            ratio: Some(ratio),
            rate_hundredths: ratio.percent_hundredths(),
            points_hundredths: points,
            factors: Vec::new(),
        };
        let absent = |code, name_vi, name_en| Indicator {
            code,
            name_vi,
            name_en,
            max_points_hundredths: None,
            ratio: None,
            rate_hundredths: None,
            points_hundredths: None,
            factors: Vec::new(),
        };
        let d1 = self.digitized_of_synced;
        let d2 = self.sync;
        let digitization_rate = scaled(
            u128::from(d1.numerator) * u128::from(d2.numerator),
            u128::from(d1.denominator) * u128::from(d2.denominator),
            10_000,
        );
        let digitization_points = scaled(
            u128::from(d1.numerator) * u128::from(d2.numerator),
            u128::from(d1.denominator) * u128::from(d2.denominator),
            400,
        );
        vec![
            absent("1", "Công khai, minh bạch", "Publication and transparency"),
            measured(
                "2",
                "Tiến độ, kết quả giải quyết (đúng hạn)",
                "Processing on time",
                Some(2000),
                self.on_time.ratio,
                linear(self.on_time.ratio, 20),
            ),
            measured(
                "4",
                "Đồng bộ lên Cổng DVCQG",
                "Synced to the national portal",
                Some(600),
                self.sync,
                linear(self.sync, 6),
            ),
            absent("5", "Tiếp nhận, xử lý phản ánh, kiến nghị", "Petitions and feedback"),
            measured(
                "7",
                "Dịch vụ công trực tuyến toàn trình",
                "Full-online service",
                None,
                self.full_online,
                None,
            ),
            measured(
                "7.3",
                "Nộp hồ sơ trực tuyến",
                "Online submission",
                None,
                self.online_submission,
                None,
            ),
            measured(
                "8.4",
                "Thanh toán trực tuyến",
                "Online payment",
                Some(600),
                self.online_payment,
                linear(self.online_payment, 6),
            ),
            measured(
                "10",
                "Mức độ hài lòng",
                "Satisfaction",
                Some(600),
                self.satisfaction,
                // min(6, 6 × rate / 0.9) = min(6, rate × 60 / 9)
                capped(self.satisfaction, 600, 6000, 9),
            ),
            measured(
                "12",
                "Kết quả điện tử",
                "E-results",
                Some(600),
                self.e_result,
                linear(self.e_result, 6),
            ),
            Indicator {
                rate_hundredths: digitization_rate,
                points_hundredths: digitization_points,
                factors: vec![
                    Factor {
                        name_vi: "Hồ sơ được số hóa / hồ sơ đồng bộ",
                        name_en: "Digitized of synced",
                        ratio: d1,
                    },
                    Factor {
                        name_vi: "Hồ sơ đồng bộ / hồ sơ tiếp nhận",
                        name_en: "Synced of received",
                        ratio: d2,
                    },
                ],
                ..measured(
                    "13",
                    "Số hóa hồ sơ, kết quả",
                    "Digitization",
                    Some(400),
                    Ratio {
                        numerator: d1.numerator,
                        denominator: d2.denominator,
                    },
                    None,
                )
            },
            measured(
                "14",
                "Tái sử dụng dữ liệu số hóa",
                "Reuse of digitized data",
                Some(200),
                self.reuse,
                // min(2, 2 × rate / 0.8) = min(2, rate × 2.5)
                capped(self.reuse, 200, 250, 1),
            ),
        ]
    }
}

/// The figures of a period as of a cut-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The period.
    pub period: Period,
    /// Only events recorded at or before this instant count.
    pub cutoff: DateTime<Utc>,
    /// The whole province.
    pub province: Figures,
    /// Per handling agency, by code.
    pub agencies: BTreeMap<String, Figures>,
    /// On-time figures per procedure, by code.
    pub procedures: BTreeMap<String, OnTime>,
    /// Every dossier judged for the on-time figure, by receipt code.
    pub judged: Vec<Judged>,
}

/// What one dossier adds to the figures of its groups.
fn add(figures: &mut Figures, dossier: &Contribution) {
    if let Some(judged) = &dossier.judged {
        figures.on_time.add(judged);
        if judged.green_lane {
            figures.green_lane_on_time.add(judged);
        }
        if !judged.on_time && judged.apologies == 0 {
            figures.apologies.overdue_without_letter += 1;
        }
    }
    figures.apologies.sent += dossier.apologies_sent;
    let state = &dossier.state;
    let received = state.received.as_ref().expect("only received dossiers contribute");
    if dossier.in_received {
        figures.received += 1;
        let online = received.channel == Channel::Online;
        figures.online_submission.count(online);
        if received.procedure.full_online_eligible {
            figures.full_online.count(online);
        }
        if received.procedure.fee_vnd > 0 {
            figures.online_payment.count(state.paid_online_vnd > 0);
        }
        let synced = state.n_syncs > 0;
        figures.sync.count(synced);
        if synced {
            let digitized = state.n_digitizations > 0
                && !(state.approved_at.is_some()
                    && received.procedure.paper_result
                    && state.e_result_issued_at.is_none());
            figures.digitized_of_synced.count(digitized);
        }
        figures.reuse.count(state.reused_component);
    }
    if dossier.in_approved {
        figures.approved += 1;
        if received.procedure.paper_result {
            figures.e_result.count(state.e_result_issued_at.is_some());
        }
    }
    if let Some(finished_late) = dossier.finished_late {
        figures.finished += 1;
        let unsatisfied = state.rating == Some(hoso_domain::event::Satisfaction::Unsatisfied);
        figures.satisfaction.count(!unsatisfied && !finished_late);
        if state.n_apologies > 0 {
            figures
                .apologies
                .promises_kept
                .count(state.apology_kept() == Some(true));
        }
    }
}

struct Contribution {
    state: DossierState,
    judged: Option<Judged>,
    in_received: bool,
    in_approved: bool,
    /// `Some(finished late)` when the dossier finished in the period.
    finished_late: Option<bool>,
    apologies_sent: u64,
}

/// What one dossier adds to the period's figures, from its events recorded by the cut-off;
/// `None` when nothing. The caller has passed over the dossiers whose [`crate::model::Span`]
/// rules them out.
fn contribution(receipt_code: &str, facts: &[DossierEvent], period: &Period) -> Option<Contribution> {
    let (start, end) = (period.start_instant(), period.end_instant());
    let state = fold(facts);
    let received = state.received.clone()?;
    if state.refused_at.is_some() {
        return None;
    }
    let finish = state.finished_at();
    let in_scope = received.occurred_at < end && finish.is_none_or(|f| f >= start);
    // The state at the finish when the dossier finished in the period (the on-time judgement and
    // the satisfaction figure both look at it), else at the period's end.
    let judged_at = match finish {
        Some(f) if f < end => f,
        _ => end,
    };
    let then = (in_scope || finish.is_some_and(|f| period.contains(f))).then(|| {
        // Nothing occurred after the judging instant (the common case): the state already folded.
        if facts.last().is_none_or(|e| e.occurred_at() <= judged_at) {
            state.clone()
        } else {
            fold_until(facts, judged_at)
        }
    });
    let judged = match (&then, in_scope) {
        (Some(then), true) => Some(Judged {
            receipt_code: receipt_code.to_owned(),
            handling_agency: received.handling_agency.as_str().to_owned(),
            procedure: received.procedure.code.as_str().to_owned(),
            received_at: received.occurred_at,
            green_lane: received.green_lane,
            due_at: then.due_at.unwrap_or(received.due_at),
            judged_at,
            finished: then.finished_at().is_some(),
            on_time: then.judge_on_time(judged_at) == Some(Judgement::OnTime),
            supplement_requests: then.n_supplement_requests,
            apologies: then.n_apologies,
        }),
        _ => None,
    };
    // A finish in the period is before its end, so `then` is the state at the finish.
    let finished_late = finish
        .filter(|f| period.contains(*f))
        .zip(then.as_ref())
        .map(|(f, then)| then.judge_on_time(f) != Some(Judgement::OnTime));
    let apologies_sent = facts
        .iter()
        .filter(|e| matches!(e, DossierEvent::ApologySent(_)) && period.contains(e.occurred_at()))
        .count() as u64;
    Some(Contribution {
        in_received: period.contains(received.occurred_at),
        in_approved: state.approved_at.is_some_and(|a| period.contains(a)),
        finished_late,
        apologies_sent,
        judged,
        state,
    })
}

/// Computes every figure of `period` from the events recorded at or before `cutoff`.
///
/// The dossiers are independent, so they are split over the cores, each part adding up its own
/// report; the parts are then added together and every list sorted by receipt code, which makes
/// the report independent of the order the dossiers arrived in.
pub fn report(dossiers: &Dossiers, period: Period, cutoff: DateTime<Utc>) -> Report {
    let (histories, spans) = (dossiers.histories(), dossiers.spans());
    let (start, end, cut) = (
        period.start_instant().timestamp_micros(),
        period.end_instant().timestamp_micros(),
        cutoff.timestamp_micros(),
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let chunk = histories.len().div_ceil(threads).max(1);
    let parts: Vec<Report> = std::thread::scope(|scope| {
        let workers: Vec<_> = histories
            .chunks(chunk)
            .zip(spans.chunks(chunk))
            .map(|(histories, spans)| {
                scope.spawn(move || {
                    let mut part = Report::empty(period, cutoff);
                    for (history, _) in histories
                        .iter()
                        .zip(spans)
                        .filter(|(_, span)| span.may_count(start, end, cut))
                    {
                        // The lean facts recorded by the cut-off, as events, for the folds.
                        let facts = dossiers.events(history, history.recorded_by(cutoff));
                        if let Some(contribution) = contribution(history.receipt_code(), &facts, &period) {
                            part.add(contribution);
                        }
                    }
                    part
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a figures thread panicked"))
            .collect()
    });
    let mut report = Report::empty(period, cutoff);
    for part in parts {
        report.merge(part);
    }
    report.sort();
    report
}

/// The figures of `period` from whole dossiers' events as recorded by `cutoff` (each with its
/// receipt code), on one thread: the reference the lean model's [`report`] is checked against.
/// It passes over the dossiers a [`crate::model::Span`] rules out (received after the period, or
/// closed before it) by looking at the events themselves.
#[cfg(test)]
pub(crate) fn report_of_events(
    dossiers: impl IntoIterator<Item = (String, Vec<DossierEvent>)>,
    period: Period,
    cutoff: DateTime<Utc>,
) -> Report {
    use hoso_domain::event::ProcessingStep;
    let closes = |e: &&DossierEvent| match e {
        DossierEvent::DossierProcessed(p) => matches!(p.step, ProcessingStep::Approved | ProcessingStep::Stopped),
        DossierEvent::ResultReturned(_) | DossierEvent::Withdrawn(_) | DossierEvent::RefusedAtIntake(_) => true,
        _ => false,
    };
    let mut report = Report::empty(period, cutoff);
    for (receipt_code, events) in dossiers {
        let received_before_end = events.first().is_some_and(|e| e.occurred_at() < period.end_instant());
        let closed_before_start = events
            .iter()
            .find(closes)
            .is_some_and(|e| e.occurred_at() < period.start_instant());
        if !received_before_end || closed_before_start {
            continue;
        }
        if let Some(contribution) = contribution(&receipt_code, &events, &period) {
            report.add(contribution);
        }
    }
    report.sort();
    report
}

impl Report {
    fn empty(period: Period, cutoff: DateTime<Utc>) -> Report {
        Report {
            period,
            cutoff,
            province: Figures::default(),
            agencies: BTreeMap::new(),
            procedures: BTreeMap::new(),
            judged: Vec::new(),
        }
    }

    fn add(&mut self, mut c: Contribution) {
        let received = c.state.received.as_ref().expect("contributions are received dossiers");
        add(&mut self.province, &c);
        add(group(&mut self.agencies, received.handling_agency.as_str()), &c);
        if let Some(judged) = c.judged.take() {
            group(&mut self.procedures, &judged.procedure).add(&judged);
            self.judged.push(judged);
        }
    }

    fn merge(&mut self, part: Report) {
        self.province.merge(part.province);
        for (code, figures) in part.agencies {
            group(&mut self.agencies, &code).merge(figures);
        }
        for (code, on_time) in part.procedures {
            group(&mut self.procedures, &code).merge(on_time);
        }
        self.judged.extend(part.judged);
    }

    /// Puts every list in receipt-code order.
    fn sort(&mut self) {
        self.judged.sort_unstable_by(|a, b| a.receipt_code.cmp(&b.receipt_code));
        for figures in std::iter::once(&mut self.province).chain(self.agencies.values_mut()) {
            figures.on_time.overdue.sort_unstable();
            figures.green_lane_on_time.overdue.sort_unstable();
        }
        for on_time in self.procedures.values_mut() {
            on_time.overdue.sort_unstable();
        }
    }
}

/// The entry of `code` in `groups`, made on first use (without allocating the key every time).
fn group<'a, T: Default>(groups: &'a mut BTreeMap<String, T>, code: &str) -> &'a mut T {
    if !groups.contains_key(code) {
        groups.insert(code.to_owned(), T::default());
    }
    groups.get_mut(code).expect("inserted above")
}
