//! `hoso-gen`: a province in a box. A realistic, deterministic workload of dossiers for a
//! province like Thái Nguyên: its handling agencies (about 20 departments and 90 communes), a
//! procedure catalogue (about 2,000 procedures with statutory times in working days, working
//! hours or calendar days, fees, full-online eligibility, paper or electronic results, a green-lane
//! subset), arrivals with weekday and hour seasonality that respect the holiday tables, a channel
//! mix and outcomes near the province's published figures.
//!
//! **What it is.** [`Province::new`] builds the agencies and the catalogue from a seed;
//! [`Workload`] yields dossiers day by day, each as the desk commands of its whole life, every one
//! accepted by the domain's own `decide` (so the history is one the service could have recorded).
//! [`import_line`] renders a dossier as a line of the `hoso import` format. The seed fixes every
//! byte: the same parameters give the same dossiers.
//!
//! **What it is not.** No I/O and no clock: it writes nothing and sends nothing (the `hoso gen`
//! command writes files; `hoso import` and the load tool send). The rates are parameters
//! ([`Rates`]) whose defaults are near the province's figures, not data about real people:
//! applicants are random pseudonymous references.

mod render;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use hoso_domain::calendar::from_local;
use hoso_domain::command::*;
use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use hoso_domain::{
    AgencyCode, ApplicantRef, BusinessCalendar, Channel, Command, Context, DossierState, GreenLane, PortalStatus,
    ProcedureCode, ProcedureEntry, StatutoryTime,
};

pub use crate::render::import_line;

/// A deterministic generator (xorshift64*): the same seed, the same sequence.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value; zero is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with the given probability in percent (fractions allowed: 0.5 is one in 200).
    pub fn chance(&mut self, percent: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 100.0 < percent
    }
}

/// Outcome rates, in percent; the defaults are near Thái Nguyên's published figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Dossiers submitted online (the province: about 87%).
    pub online: f64,
    /// Dossiers finished by their due date (about 95%).
    pub on_time: f64,
    /// Dossiers asked for a supplement.
    pub supplement: f64,
    /// Of those, asked a second time (which makes them overdue).
    pub second_supplement: f64,
    /// Dossiers withdrawn by the applicant.
    pub withdrawn: f64,
    /// Dossiers refused at intake.
    pub refused: f64,
    /// Dossiers whose processing is stopped without a result.
    pub stopped: f64,
    /// Late dossiers that get an apology letter.
    pub apology_when_late: f64,
    /// Fee-bearing dossiers paid online (about 85%).
    pub paid_online: f64,
    /// Approved paper-result dossiers that also get an e-result (about 84%).
    pub e_result: f64,
    /// Dossiers digitized (about 80%).
    pub digitized: f64,
    /// Digitized dossiers with a component reused from digitized data (about 87%).
    pub reuse: f64,
    /// Dossiers synced to the national portal.
    pub synced: f64,
    /// Returned dossiers that get a rating.
    pub rated: f64,
    /// Ratings that are "unsatisfied".
    pub unsatisfied: f64,
}

impl Default for Rates {
    fn default() -> Rates {
        Rates {
            online: 87.0,
            on_time: 95.0,
            supplement: 8.0,
            second_supplement: 5.0,
            withdrawn: 2.0,
            refused: 1.0,
            stopped: 1.0,
            apology_when_late: 70.0,
            paid_online: 85.0,
            e_result: 84.0,
            digitized: 80.0,
            reuse: 87.0,
            synced: 98.0,
            rated: 55.0,
            unsatisfied: 4.0,
        }
    }
}

/// How many dossiers arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// One province: about 750,000 dossiers a year.
    #[default]
    Province,
    /// The whole country: about 30 times a province.
    Country,
}

impl Scale {
    /// Dossiers a year.
    pub fn dossiers_per_year(self) -> u64 {
        match self {
            Scale::Province => 750_000,
            Scale::Country => 22_500_000,
        }
    }
}

/// A handling agency: a department (sở) or a commune/ward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Whether it is a commune or ward (its own desk receives its dossiers).
    pub commune: bool,
}

/// A procedure of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Procedure {
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its statutory time.
    pub statutory_time: StatutoryTime,
    /// Its fee, VND.
    pub fee_vnd: i64,
    /// Whether it may be done fully online.
    pub full_online_eligible: bool,
    /// Whether its result is a paper document.
    pub paper_result: bool,
    /// The handling agency (index into [`Province::agencies`]).
    pub agency: usize,
    /// How often it is applied for, relative to the others.
    pub weight: u32,
}

/// The agencies, the catalogue and the green lane of a generated province.
#[derive(Debug, Clone)]
pub struct Province {
    /// Handling agencies: 20 departments then 90 communes.
    pub agencies: Vec<Agency>,
    /// The procedure catalogue.
    pub procedures: Vec<Procedure>,
    /// Green-lane procedures with their shortened times.
    pub green_lane: GreenLane,
    /// The green lane as a list, for configuration files.
    pub green_lane_list: Vec<(String, StatutoryTime)>,
    cumulative_weights: Vec<u64>,
}

/// The generated departments' names, in code order (a province's usual departments; the communes
/// are numbered).
const DEPARTMENTS: [&str; 20] = [
    "Văn phòng UBND tỉnh",
    "Sở Nội vụ",
    "Sở Tư pháp",
    "Sở Xây dựng",
    "Sở Tài chính",
    "Sở Công Thương",
    "Sở Nông nghiệp và Môi trường",
    "Sở Giáo dục và Đào tạo",
    "Sở Y tế",
    "Sở Khoa học và Công nghệ",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Dân tộc và Tôn giáo",
    "Sở Ngoại vụ",
    "Thanh tra tỉnh",
    "Ban Quản lý các khu công nghiệp",
    "Công an tỉnh",
    "Bảo hiểm xã hội tỉnh",
    "Cục Thuế tỉnh",
    "Kho bạc Nhà nước khu vực",
    "Chi cục Hải quan",
];

/// The province centre's desk, which receives every department's dossiers.
pub const PROVINCE_DESK: &str = "000.00.00.G18";

impl Province {
    /// The province of `seed`.
    pub fn new(seed: u64) -> Province {
        let mut rng = Rng::new(seed.wrapping_add(1));
        let mut agencies = Vec::new();
        for (i, name) in (1..=20).zip(DEPARTMENTS) {
            agencies.push(Agency {
                code: format!("000.00.{i:02}.G18"),
                name: name.to_owned(),
                commune: false,
            });
        }
        for i in 1..=90 {
            agencies.push(Agency {
                code: format!("000.{:02}.{:02}.H18", i / 10 + 1, i % 10 + 1),
                name: format!("UBND xã số {i:02}"),
                commune: true,
            });
        }
        let mut procedures = Vec::with_capacity(2000);
        let mut green = Vec::new();
        for i in 0..2000u32 {
            let commune_level = i % 4 == 0;
            let agency = if commune_level {
                20 + rng.below(90) as usize
            } else {
                rng.below(20) as usize
            };
            let unit = rng.below(100);
            let statutory_time = if unit < 65 {
                StatutoryTime::working_days(1 + rng.below(20) as u32)
            } else if unit < 75 {
                StatutoryTime::working_hours(4 + rng.below(36) as u32)
            } else {
                StatutoryTime::calendar_days(5 + rng.below(40) as u32)
            };
            let code = format!("{}.{:06}", if commune_level { 2 } else { 1 }, 1000 + i);
            if rng.chance(5.0) && statutory_time.amount >= 2 {
                green.push((
                    code.clone(),
                    StatutoryTime {
                        amount: statutory_time.amount / 2,
                        unit: statutory_time.unit,
                    },
                ));
            }
            procedures.push(Procedure {
                name: format!("Thủ tục {code}"),
                code,
                statutory_time,
                fee_vnd: if rng.chance(40.0) {
                    10_000 * (1 + rng.below(50) as i64)
                } else {
                    0
                },
                full_online_eligible: rng.chance(60.0),
                paper_result: rng.chance(70.0),
                agency,
                // A few procedures get most dossiers (civil status, land, business registration).
                weight: if i % 50 == 0 {
                    400
                } else if i % 7 == 0 {
                    20
                } else {
                    1 + rng.below(5) as u32
                },
            });
        }
        let mut green_lane = GreenLane::new();
        for (code, time) in &green {
            green_lane = green_lane.with(
                ProcedureCode::parse("procedure", code).expect("generated codes are valid"),
                *time,
            );
        }
        let mut total = 0;
        let cumulative_weights = procedures
            .iter()
            .map(|p| {
                total += u64::from(p.weight);
                total
            })
            .collect();
        Province {
            agencies,
            procedures,
            green_lane,
            green_lane_list: green,
            cumulative_weights,
        }
    }

    /// The catalogue as the province would publish it: every procedure with the values its
    /// dossiers are received with, its one handling agency (the generator ties each procedure to
    /// one agency, which handles all its dossiers) and its green-lane time. A dossier received
    /// from this catalogue gets exactly the values of the workload's import lines.
    pub fn catalogue_entries(&self) -> Vec<ProcedureEntry> {
        // Generated codes are valid by construction (a test checks that none is dropped).
        self.procedures
            .iter()
            .filter_map(|procedure| {
                let code = ProcedureCode::parse("procedure", &procedure.code).ok()?;
                let agency = self.agencies.get(procedure.agency)?;
                let agency = AgencyCode::parse("agency", &agency.code).ok()?;
                Some(ProcedureEntry {
                    green_lane_time: self.green_lane.shortened_time(&code),
                    code,
                    name: procedure.name.clone(),
                    statutory_time: procedure.statutory_time,
                    fee_vnd: procedure.fee_vnd,
                    full_online_eligible: procedure.full_online_eligible,
                    paper_result: procedure.paper_result,
                    handling_agencies: vec![agency],
                })
            })
            .collect()
    }

    fn pick_procedure(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative_weights.last().expect("a catalogue");
        let x = rng.below(total);
        self.cumulative_weights.partition_point(|&w| w <= x)
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Params {
    /// Fixes every byte.
    pub seed: u64,
    /// First day of arrivals.
    pub start: NaiveDate,
    /// Months of arrivals.
    pub months: u32,
    /// Volume.
    pub scale: Scale,
    /// Outcome rates.
    pub rates: Rates,
}

/// One generated dossier: its receipt code and the commands of its life, each with the officer
/// account that did it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dossier {
    /// The receipt code.
    pub receipt_code: String,
    /// The commands, oldest first; every one accepted by the domain.
    pub commands: Vec<(Command, String)>,
}

/// The dossiers of a workload, day by day, in receipt order within a day.
pub struct Workload<'a> {
    province: &'a Province,
    params: Params,
    calendar: BusinessCalendar,
    rng: Rng,
    day: NaiveDate,
    end: NaiveDate,
    today: std::vec::IntoIter<Dossier>,
    sequence: std::collections::HashMap<String, u32>,
}

impl<'a> Workload<'a> {
    /// The workload of `params` in `province`, on `calendar` (which must hold the years the
    /// dossiers live in).
    pub fn new(province: &'a Province, params: Params, calendar: BusinessCalendar) -> Workload<'a> {
        let end = params.start + chrono::Months::new(params.months);
        Workload {
            rng: Rng::new(params.seed),
            day: params.start,
            end,
            province,
            params,
            calendar,
            today: Vec::new().into_iter(),
            sequence: std::collections::HashMap::new(),
        }
    }

    /// About how many dossiers the whole workload holds (for progress bars).
    pub fn expected_dossiers(&self) -> u64 {
        let days = (self.end - self.params.start).num_days().max(0) as u64;
        self.params.scale.dossiers_per_year() * days / 365
    }

    fn arrivals(&mut self, day: NaiveDate) -> u64 {
        let per_working_day = self.params.scale.dossiers_per_year() as f64 / 250.0;
        let working = self.calendar.is_working_day(day).unwrap_or(false);
        let weight = if !working {
            0.08
        } else {
            match day.weekday() {
                Weekday::Mon => 1.2,
                Weekday::Tue => 1.1,
                Weekday::Fri => 0.85,
                _ => 1.0,
            }
        };
        let mean = per_working_day * weight;
        // ±10% day to day.
        (mean * (0.9 + self.rng.below(200) as f64 / 1000.0)) as u64
    }

    fn generate_day(&mut self, day: NaiveDate) -> Vec<Dossier> {
        let working = self.calendar.is_working_day(day).unwrap_or(false);
        let n = self.arrivals(day);
        // Arrival instants first, in order, so that receipt sequences follow receipt times.
        let mut arrivals: Vec<(u64, bool)> = (0..n)
            .map(|_| {
                // Outside working days only online dossiers arrive.
                let online = !working || self.rng.chance(self.params.rates.online);
                let minute = if online && self.rng.chance(25.0) {
                    self.rng.below(24 * 60)
                } else {
                    // Office hours, busiest in the morning.
                    let slot = self.rng.below(100);
                    if slot < 60 {
                        8 * 60 + self.rng.below(210)
                    } else {
                        13 * 60 + self.rng.below(210)
                    }
                };
                (minute, online)
            })
            .collect();
        arrivals.sort();
        let mut out = Vec::with_capacity(arrivals.len());
        for (minute, online) in arrivals {
            let at = from_local(day.and_time(NaiveTime::MIN) + TimeDelta::minutes(minute as i64));
            if let Some(dossier) = self.dossier(at, online) {
                out.push(dossier);
            }
        }
        out
    }

    fn dossier(&mut self, received_at: DateTime<Utc>, online: bool) -> Option<Dossier> {
        let province = self.province;
        let procedure = &province.procedures[province.pick_procedure(&mut self.rng)];
        let agency = &province.agencies[procedure.agency];
        let desk = if agency.commune {
            agency.code.clone()
        } else {
            PROVINCE_DESK.to_owned()
        };
        let local_day = hoso_domain::calendar::to_local(received_at).date();
        let key = format!("{desk}-{}", local_day.format("%Y%m%d"));
        let sequence = self.sequence.entry(key.clone()).or_insert(0);
        *sequence += 1;
        let receipt_code = format!("{key}-{:07}", *sequence);
        let rates = self.params.rates;
        let officer = format!("cb.{}", agency.code.replace('.', "").to_lowercase());
        let desk_officer = format!("mc.{}", desk.replace('.', "").to_lowercase());
        let mut life = Life::new(&self.calendar, &province.green_lane);
        let rng = &mut self.rng;
        life.run(
            ReceiveDossier {
                occurred_at: received_at,
                receipt_code: receipt_code.clone(),
                procedure: ProcedureInput::declared(
                    procedure.code.clone(),
                    procedure.name.clone(),
                    procedure.statutory_time,
                    procedure.full_online_eligible,
                    procedure.paper_result,
                    procedure.fee_vnd,
                ),
                receiving_desk: desk.clone(),
                handling_agency: agency.code.clone(),
                channel: if online { Channel::Online } else { Channel::InPerson },
                applicant: ApplicantRef(uuid::Uuid::from_u64_pair(rng.next_u64(), rng.next_u64())),
            }
            .into(),
            &desk_officer,
        );
        if life.commands.is_empty() {
            return None;
        }
        let due = life.state.due_at.expect("received");
        let minutes = |rng: &mut Rng, max: u64| TimeDelta::minutes(1 + rng.below(max) as i64);
        if rng.chance(rates.refused) {
            let at = life.at + minutes(rng, 60);
            life.run(
                RefuseAtIntake {
                    occurred_at: at,
                    reason: "hồ sơ không thuộc thẩm quyền".into(),
                    officer: String::new(),
                }
                .into(),
                &desk_officer,
            );
            return Some(life.finish(receipt_code));
        }
        if rng.chance(rates.digitized) {
            let at = life.at + minutes(rng, 30);
            let reused = if rng.chance(rates.reuse) {
                vec![ReuseInput {
                    component: "Căn cước".into(),
                    source: "CSDLQG về dân cư".into(),
                }]
            } else {
                vec![]
            };
            let files = vec![FileInput {
                component: "Đơn đề nghị".into(),
                content_hash: format!("{:064x}", u128::from(rng.next_u64())),
            }];
            life.run(
                DigitizeDossier {
                    occurred_at: at,
                    files,
                    reused,
                    result_digitized: false,
                }
                .into(),
                &desk_officer,
            );
        }
        if procedure.fee_vnd > 0 && rng.chance(rates.paid_online) {
            let at = life.at + minutes(rng, 90);
            life.run(
                PayOnline {
                    occurred_at: at,
                    amount_vnd: procedure.fee_vnd,
                    gateway: if rng.chance(70.0) {
                        PaymentGateway::NationalPortal
                    } else {
                        PaymentGateway::Provincial
                    },
                    transaction_ref: format!("TT{}", rng.next_u64() % 10_000_000_000),
                }
                .into(),
                &desk_officer,
            );
        }
        if rng.chance(rates.supplement) {
            let times = if rng.chance(rates.second_supplement) { 2 } else { 1 };
            for _ in 0..times {
                let at = life.at + minutes(rng, 6 * 60);
                life.run(
                    RequestSupplement {
                        occurred_at: at,
                        missing_components: vec!["Bản sao giấy tờ".into()],
                        officer: String::new(),
                    }
                    .into(),
                    &officer,
                );
                let at = life.at + TimeDelta::hours(2 + rng.below(5 * 24) as i64);
                life.run(ReceiveSupplement { occurred_at: at }.into(), &desk_officer);
            }
        }
        if rng.chance(rates.withdrawn) {
            let at = life.at + minutes(rng, 3 * 24 * 60);
            life.run(
                Withdraw {
                    occurred_at: at,
                    reason: "công dân rút hồ sơ".into(),
                }
                .into(),
                &desk_officer,
            );
            return Some(life.finish(receipt_code));
        }
        let due = life.state.due_at.unwrap_or(due);
        let span = (due - life.at).max(TimeDelta::minutes(30));
        let appraised = life.at + span / 3;
        life.run(
            ProcessDossier {
                occurred_at: appraised,
                step: ProcessingStep::Appraised,
                officer: String::new(),
                to_unit: None,
                reason: None,
            }
            .into(),
            &officer,
        );
        let on_time = rng.chance(rates.on_time);
        let finish = if on_time {
            life.at + (due - life.at).max(TimeDelta::minutes(10)) * (40 + rng.below(55) as i32) / 100
        } else {
            due + TimeDelta::hours(2 + rng.below(10 * 24) as i64)
        };
        if !on_time && rng.chance(rates.apology_when_late) {
            let at = (due - TimeDelta::days(1)).max(life.at + TimeDelta::minutes(5));
            life.run(
                SendApology {
                    occurred_at: at,
                    reason: "cần xác minh thêm".into(),
                    new_appointment_at: finish + TimeDelta::days(1),
                    letter_number: format!("{}/PXL", rng.below(9999) + 1),
                }
                .into(),
                &officer,
            );
        }
        let stopped = rng.chance(rates.stopped);
        let step = if stopped {
            ProcessingStep::Stopped
        } else {
            ProcessingStep::Approved
        };
        let reason = stopped.then(|| "không đủ điều kiện".to_owned());
        life.run(
            ProcessDossier {
                occurred_at: finish.max(life.at),
                step,
                officer: String::new(),
                to_unit: None,
                reason,
            }
            .into(),
            &officer,
        );
        let e_result = !stopped && procedure.paper_result && rng.chance(rates.e_result);
        if e_result {
            let at = life.at + minutes(rng, 120);
            life.run(
                IssueEResult {
                    occurred_at: at,
                    result_id: format!("KQ-{receipt_code}"),
                    content_hash: format!("{:064x}", u128::from(rng.next_u64())),
                    signer: officer.clone(),
                }
                .into(),
                &officer,
            );
        }
        let at = life.at + minutes(rng, 2 * 24 * 60);
        let method = if e_result || !procedure.paper_result {
            ReturnMethod::Online
        } else {
            ReturnMethod::AtDesk
        };
        life.run(
            ReturnResult {
                occurred_at: at,
                method,
            }
            .into(),
            &desk_officer,
        );
        if rng.chance(rates.rated) {
            let at = life.at + minutes(rng, 24 * 60);
            let rating = if rng.chance(rates.unsatisfied) {
                Satisfaction::Unsatisfied
            } else {
                Satisfaction::Satisfied
            };
            life.run(
                RateSatisfaction {
                    occurred_at: at,
                    rating,
                }
                .into(),
                &desk_officer,
            );
        }
        if rng.chance(rates.synced) {
            let at = life.at + minutes(rng, 60);
            life.run(
                RecordNationalPortalSync {
                    occurred_at: at,
                    status: PortalStatus::ResultReturned,
                }
                .into(),
                "dongbo.dvcqg",
            );
        }
        Some(life.finish(receipt_code))
    }
}

/// A dossier's life as it is generated: commands the domain accepted, and its state.
struct Life<'a> {
    calendar: &'a BusinessCalendar,
    green_lane: &'a GreenLane,
    state: DossierState,
    commands: Vec<(Command, String)>,
    at: DateTime<Utc>,
}

impl<'a> Life<'a> {
    fn new(calendar: &'a BusinessCalendar, green_lane: &'a GreenLane) -> Life<'a> {
        Life {
            calendar,
            green_lane,
            state: DossierState::new(),
            commands: Vec::new(),
            at: DateTime::UNIX_EPOCH,
        }
    }

    /// Decides `command` (its officer being `actor`); keeps it if the domain accepts it.
    fn run(&mut self, mut command: Command, actor: &str) {
        command.set_officer(actor);
        // Generated histories are in the past of any real run: decide as of the far future.
        let now = from_local(
            NaiveDate::from_ymd_opt(2100, 1, 1)
                .expect("a date")
                .and_time(NaiveTime::MIN),
        );
        let context = Context::new(now, self.calendar, self.green_lane);
        if let Ok(events) = hoso_domain::decide(&self.state, &command, &context) {
            for event in &events {
                self.state = hoso_domain::evolve(std::mem::take(&mut self.state), event);
            }
            self.at = command.occurred_at();
            self.commands.push((command, actor.to_owned()));
        }
    }

    fn finish(self, receipt_code: String) -> Dossier {
        Dossier {
            receipt_code,
            commands: self.commands,
        }
    }
}

impl Iterator for Workload<'_> {
    type Item = Dossier;

    fn next(&mut self) -> Option<Dossier> {
        loop {
            if let Some(dossier) = self.today.next() {
                return Some(dossier);
            }
            if self.day >= self.end {
                return None;
            }
            let day = self.day;
            self.day = day.succ_opt()?;
            self.today = self.generate_day(day).into_iter();
        }
    }
}

#[cfg(test)]
mod tests;
