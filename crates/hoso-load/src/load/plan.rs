//! What `hoso-load` sends: the dossiers of a `hoso-gen` workload, each as the desk requests of
//! its whole life, with the run's receipt codes, command ids and handling agencies.
//!
//! A run is named by its run id and seed. Receipt codes get the run id as a last segment of their
//! unit (`000.00.00.G18.R7K2QX-20250106-0000042`), so runs against the same data directory never
//! collide, and load-test dossiers are told apart from real ones at a glance. Command ids are
//! UUID v5 of the run id, seed, start month, dossier index and command index: a run sent again
//! with the same run id and seed sends the same commands, which the server answers as retries.

use chrono::{Datelike, Months, NaiveDate};
use hoso_api::convert::{command_to_pb, utc_to_timestamp};
use hoso_api::pb;
use hoso_api::pb::import_command::Command as Request;
use hoso_domain::{BusinessCalendar, Command};
use hoso_gen::{Params, Province, Rates, Scale, Workload};
use uuid::Uuid;

/// The namespace of the load tool's command ids.
const LOAD_NAMESPACE: Uuid = Uuid::from_u128(0x3b0f_6a41_8c2e_4d97_b5a0_71e9_c4d2_58f3);

/// How long after its receipt a generated dossier may still record something (supplements, a
/// late finish, the return, the rating): the workload ends this many months before now, so that
/// no command is in the future.
const LIFE_MONTHS: u32 = 3;

/// Whose token sends a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// The desk officer.
    Desk,
    /// The officer of the handling agency with this index in [`Plan::agencies`].
    Agency(usize),
}

/// One command of a dossier's life, ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Its command id.
    pub(crate) command_id: Uuid,
    /// Who sends it.
    pub(crate) sender: Sender,
    /// The request.
    pub(crate) request: Request,
}

/// One dossier's life.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Its receipt code in this run.
    pub(crate) receipt_code: String,
    /// Its commands, oldest first.
    pub(crate) steps: Vec<Step>,
}

/// The dossiers of a run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Names the run (1 to 7 upper-case letters or digits).
    pub(crate) run_id: String,
    /// Fixes the workload.
    pub(crate) seed: u64,
    /// The first month of arrivals.
    pub(crate) start: NaiveDate,
    /// Months of arrivals.
    pub(crate) months: u32,
    /// The handling agencies there are agency officers' tokens for.
    pub(crate) agencies: Vec<String>,
    /// Whether a dossier of an agency we hold no token for is handed to one we do (a server
    /// without a catalogue) or left out (a catalogue names each procedure's agency, and a server
    /// holding one refuses another).
    pub(crate) reassign: bool,
    /// At most this many dossiers.
    pub(crate) limit: Option<u64>,
}

/// Checks a run id: it becomes a segment of receipt codes' unit.
pub(crate) fn check_run_id(run_id: &str) -> Result<(), String> {
    if (1..=7).contains(&run_id.len()) && run_id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "--run-id {run_id:?} must be 1 to 7 upper-case letters or digits (it ends the unit of the run's receipt codes)"
        ))
    }
}

/// A fresh run id: six random upper-case letters or digits.
pub(crate) fn fresh_run_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bits = Uuid::new_v4().as_u128();
    (0..6)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u128) as usize] as char;
            bits /= ALPHABET.len() as u128;
            c
        })
        .collect()
}

/// The months of arrivals from `start` that end early enough for every dossier's life to be in
/// the past on `today` and inside the calendar's years.
pub(crate) fn months_until(start: NaiveDate, today: NaiveDate, calendar: &BusinessCalendar) -> Result<u32, String> {
    let this_month = today.with_day(1).expect("the first of a month exists");
    let mut end = this_month - Months::new(LIFE_MONTHS);
    if let Some(last_year) = calendar.years().max() {
        let calendar_end = NaiveDate::from_ymd_opt(last_year + 1, 1, 1).expect("a date") - Months::new(LIFE_MONTHS);
        end = end.min(calendar_end);
    }
    let months = (end.year() - start.year()) * 12 + end.month() as i32 - start.month() as i32;
    if months < 1 {
        return Err(format!(
            "--start {} leaves no month of arrivals: dossiers must have lived their whole life ({LIFE_MONTHS} months) before today and within the calendar's years; give an earlier month",
            start.format("%Y-%m")
        ));
    }
    if start.year() < calendar.years().min().unwrap_or(start.year()) {
        return Err(format!(
            "--start {} is before the calendar's first year; give a month in a year the calendar holds",
            start.format("%Y-%m")
        ));
    }
    Ok(months as u32)
}

/// The receipt code of a generated dossier in run `run_id`: the run id ends the unit.
pub(crate) fn run_receipt_code(generated: &str, run_id: &str) -> String {
    match generated.split_once('-') {
        Some((unit, rest)) => format!("{unit}.{run_id}-{rest}"),
        None => format!("{generated}.{run_id}"),
    }
}

impl Plan {
    /// The command id of the `command`-th command of the `dossier`-th dossier.
    pub(crate) fn command_id(&self, dossier: u64, command: usize) -> Uuid {
        let name = format!(
            "{}/{}/{}/{dossier}/{command}",
            self.run_id,
            self.seed,
            self.start.format("%Y-%m")
        );
        Uuid::new_v5(&LOAD_NAMESPACE, name.as_bytes())
    }

    /// Generates the dossiers in order and hands each to `emit`, until the workload or the limit
    /// is exhausted or `emit` returns false. Runs the generator (CPU-bound): call it off the
    /// async runtime.
    pub(crate) fn produce(&self, mut emit: impl FnMut(Planned) -> bool) {
        let mut province = Province::new(self.seed);
        // Decide the lives without a green lane, so that every command is accepted by a server
        // that has none (one with the province's catalogue has it: dossiers are only due sooner).
        province.green_lane = hoso_domain::GreenLane::new();
        province.green_lane_list.clear();
        let params = Params {
            seed: self.seed,
            start: self.start,
            months: self.months,
            scale: Scale::Province,
            rates: Rates::default(),
        };
        let workload = Workload::new(&province, params, BusinessCalendar::vietnam());
        let mut index = 0u64;
        for dossier in workload {
            if self.limit.is_some_and(|limit| index >= limit) {
                return;
            }
            let Some(planned) = self.plan(index, dossier) else {
                continue;
            };
            index += 1;
            if !emit(planned) {
                return;
            }
        }
    }

    /// One dossier of exactly `events` events (a receipt, then digitizations), for replay
    /// measurements: received on Monday 6 January 2025 at the province desk, handled by the first
    /// agency, with a sequence number no generated dossier reaches.
    pub(crate) fn replay_dossier(&self, events: usize) -> Planned {
        use hoso_domain::command::{DigitizeDossier, FileInput, ReceiveDossier};
        let at = hoso_domain::calendar::from_local(
            NaiveDate::from_ymd_opt(2025, 1, 6)
                .expect("a date")
                .and_hms_opt(9, 0, 0)
                .expect("a time"),
        );
        let mut commands: Vec<Command> = vec![
            ReceiveDossier {
                occurred_at: at,
                receipt_code: run_receipt_code(&format!("{}-20250106-9999999", hoso_gen::PROVINCE_DESK), &self.run_id),
                procedure: self.replay_procedure(),
                receiving_desk: hoso_gen::PROVINCE_DESK.to_owned(),
                handling_agency: self.agencies.first().cloned().unwrap_or_default(),
                channel: hoso_domain::Channel::Online,
                applicant: hoso_domain::ApplicantRef(Uuid::new_v5(&LOAD_NAMESPACE, self.run_id.as_bytes())),
            }
            .into(),
        ];
        for i in 1..events.max(1) {
            commands.push(
                DigitizeDossier {
                    occurred_at: at + chrono::TimeDelta::minutes(i as i64),
                    files: vec![FileInput {
                        component: format!("Thành phần {i}"),
                        content_hash: format!("{i:064x}"),
                    }],
                    reused: vec![],
                    result_digitized: false,
                }
                .into(),
            );
        }
        let commands = commands.into_iter().map(|c| (c, String::new())).collect();
        let generated = hoso_gen::Dossier {
            receipt_code: format!("{}-20250106-9999999", hoso_gen::PROVINCE_DESK),
            commands,
        };
        self.steps(u64::MAX, generated)
    }

    /// A procedure of the province's catalogue handled by the first agency we hold a token for,
    /// with all its values, so that a server holding that catalogue accepts the receipt.
    fn replay_procedure(&self) -> hoso_domain::command::ProcedureInput {
        let first = self.agencies.first();
        let entries = Province::new(self.seed).catalogue_entries();
        let entry = entries
            .iter()
            .find(|e| first.is_some_and(|agency| e.handled_by(agency)))
            .or(entries.first());
        match entry {
            Some(e) => hoso_domain::command::ProcedureInput::declared(
                e.code.as_str(),
                e.name.clone(),
                e.statutory_time,
                e.full_online_eligible,
                e.paper_result,
                e.fee_vnd,
            ),
            None => hoso_domain::command::ProcedureInput::declared(
                "1.001234",
                "Cấp giấy phép xây dựng",
                hoso_domain::StatutoryTime::working_days(15),
                true,
                true,
                50_000,
            ),
        }
    }

    /// The dossier's steps in this run; `None` for a dossier of an agency we hold no token for,
    /// when such dossiers are left out.
    fn plan(&self, index: u64, dossier: hoso_gen::Dossier) -> Option<Planned> {
        if !self.reassign
            && let Some((Command::ReceiveDossier(receive), _)) = dossier.commands.first()
            && !self.agencies.contains(&receive.handling_agency)
        {
            return None;
        }
        Some(self.steps(index, dossier))
    }

    /// The dossier's steps in this run, handed to an agency we hold a token for when its own is
    /// not one.
    fn steps(&self, index: u64, dossier: hoso_gen::Dossier) -> Planned {
        let receipt_code = run_receipt_code(&dossier.receipt_code, &self.run_id);
        let mut agency = index as usize % self.agencies.len().max(1);
        let reference = Some(pb::DossierRef {
            r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(receipt_code.clone())),
        });
        let steps = dossier
            .commands
            .into_iter()
            .enumerate()
            .map(|(k, (mut command, _actor))| {
                if let Command::ReceiveDossier(receive) = &mut command {
                    receive.receipt_code.clone_from(&receipt_code);
                    // Dossiers of an agency whose officer we can act as stay with it; the others
                    // are handed to one that we can.
                    match self.agencies.iter().position(|a| *a == receive.handling_agency) {
                        Some(own) => agency = own,
                        None => {
                            if let Some(code) = self.agencies.get(agency) {
                                receive.handling_agency.clone_from(code);
                            }
                        }
                    }
                }
                let sender = match command {
                    Command::ProcessDossier(_)
                    | Command::IssueEResult(_)
                    | Command::SendApology(_)
                    | Command::RequestSupplement(_) => Sender::Agency(agency),
                    _ => Sender::Desk,
                };
                let command_id = self.command_id(index, k);
                let header = pb::CommandHeader {
                    command_id: command_id.to_string(),
                    expected_version: None,
                    correlation_id: String::new(),
                    occurred_at: Some(utc_to_timestamp(command.occurred_at())),
                };
                Step {
                    command_id,
                    sender,
                    request: command_to_pb(&command, header, reference.clone()),
                }
            })
            .collect();
        Planned { receipt_code, steps }
    }
}

#[cfg(test)]
mod tests;
