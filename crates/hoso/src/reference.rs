//! `hoso calendar` and `hoso catalogue`: the province's reference data, loaded into a running
//! server (operator token) and read back (any token).

use crate::out::outln;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use hoso_api::convert::{catalogue_entry_to_pb, utc_to_timestamp};
use hoso_api::pb;
use uuid::Uuid;

use crate::client::{ConnectArgs, connect, local, status_error};

/// The namespace of catalogue load ids: a load's id derives from the file and the decision, so
/// running the same command again loads nothing twice.
const LOAD_NAMESPACE: Uuid = Uuid::from_u128(0x9c3e_51d2_7a48_4b0f_b6e1_03d8_f5a2_7c19);

/// `hoso calendar`.
#[derive(clap::Subcommand)]
pub(crate) enum CalendarCommand {
    /// Bring a year's holiday notice into force while the server serves (operator token): the
    /// documented JSON table (docs/design.md, "Working days"); a reissue needs a higher version.
    Load {
        /// The table's JSON file.
        file: PathBuf,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Show a year's calendar: the weekdays off, the swapped Saturdays, where it comes from and
    /// whether it is provisional (any token).
    Show {
        /// The year, e.g. 2027.
        year: i32,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// `hoso catalogue`.
#[derive(clap::Subcommand)]
pub(crate) enum CatalogueCommand {
    /// Publish a decision of the procedure catalogue from a CSV or XLSX file while the server
    /// serves (operator token; docs/catalogue.md). Running it again loads nothing twice.
    Load {
        /// The file: `.csv` or `.xlsx`, in the shape of the national procedure database's export.
        file: PathBuf,
        /// The publishing decision's number, e.g. 1234/QĐ-UBND.
        #[arg(long)]
        decision: String,
        /// The local date the decision is in force from, YYYY-MM-DD.
        #[arg(long)]
        effective: NaiveDate,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// List the procedures in force (any token).
    List {
        /// Only procedures this agency may handle.
        #[arg(long)]
        agency: Option<String>,
        /// The instant whose entries are in force (RFC 3339); now by default.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Show one procedure as the catalogue publishes it (any token).
    Show {
        /// The procedure code, e.g. 1.001234.
        code: String,
        /// The instant whose entry is in force (RFC 3339); now by default.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// List the procedures received outside the catalogue, with their dossiers' count, so that
    /// the province sees what its list lacks (auditor or operator token).
    Missing {
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// Runs `hoso calendar …`.
pub(crate) async fn calendar(command: CalendarCommand) -> Result<()> {
    match command {
        CalendarCommand::Load { file, connect: args } => {
            let table_json =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut client = pb::admin_service_client::AdminServiceClient::new(connect(&args).await?);
            let answer = client
                .load_calendar(pb::LoadCalendarRequest { table_json })
                .await
                .map_err(status_error)
                .with_context(|| format!("{} was not loaded", file.display()))?
                .into_inner();
            let replaced = match answer.replaced_version {
                0 => "the provisional calendar".to_owned(),
                v if v == answer.version => "nothing: it was already in force".to_owned(),
                v => format!("version {v}"),
            };
            outln!(
                "the {} holiday notice, version {}, is in force (log position {}); it replaced {replaced}",
                answer.year,
                answer.version,
                answer.position
            );
            outln!("due dates already computed do not change; receipts from now on use it");
            Ok(())
        }
        CalendarCommand::Show { year, connect: args } => {
            let mut client = pb::reference_service_client::ReferenceServiceClient::new(connect(&args).await?);
            let calendar = client
                .get_calendar(pb::GetCalendarRequest { year })
                .await
                .map_err(status_error)?
                .into_inner()
                .calendar
                .context("the server answered no calendar")?;
            outln!(
                "{} calendar {}, version {}",
                if calendar.provisional { "PROVISIONAL" } else { "notice" },
                calendar.year,
                calendar.version
            );
            outln!("source            {}", calendar.source);
            if !calendar.loaded_by.is_empty() {
                outln!(
                    "loaded by         {} at {} (UTC+7)",
                    calendar.loaded_by,
                    local(calendar.loaded_at.as_ref())
                );
            }
            outln!("weekdays off      {}", dates(&calendar.days_off));
            outln!("Saturdays worked  {}", dates(&calendar.working_saturdays));
            if !calendar.notes.is_empty() {
                outln!("notes             {}", calendar.notes);
            }
            if calendar.provisional {
                outln!(
                    "no notice is loaded for {}: this calendar follows the Labour Code; load the notice with `hoso calendar load FILE` once it is published",
                    calendar.year
                );
            }
            Ok(())
        }
    }
}

fn dates(dates: &[String]) -> String {
    if dates.is_empty() {
        return "none".to_owned();
    }
    dates
        .iter()
        .map(|d| {
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map(|date| date.format("%a %d/%m").to_string())
                .unwrap_or_else(|_| d.clone())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `hoso catalogue …`.
pub(crate) async fn catalogue(command: CatalogueCommand) -> Result<()> {
    match command {
        CatalogueCommand::Load {
            file,
            decision,
            effective,
            connect: args,
        } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let extension = file
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .unwrap_or_default();
            let rows = match extension.as_str() {
                "csv" => hoso_catalogue::read_csv(&bytes),
                "xlsx" => hoso_catalogue::read_xlsx(&bytes),
                other => bail!(
                    "{} is a {other:?} file; give a .csv or .xlsx file (docs/catalogue.md)",
                    file.display()
                ),
            }
            .with_context(|| format!("{} is not a usable catalogue file", file.display()))?;
            let effective_from = effective.format("%Y-%m-%d").to_string();
            let mut seed = format!("{decision}\n{effective_from}\n").into_bytes();
            seed.extend_from_slice(&bytes);
            let load_id = Uuid::new_v5(&LOAD_NAMESPACE, &seed);
            let request = pb::LoadCatalogueRequest {
                decision,
                effective_from,
                entries: rows.entries.iter().map(catalogue_entry_to_pb).collect(),
                abolished: rows.abolished.iter().map(|c| c.as_str().to_owned()).collect(),
                load_id: load_id.to_string(),
            };
            let mut client = pb::admin_service_client::AdminServiceClient::new(connect(&args).await?);
            let answer = client
                .load_catalogue(request)
                .await
                .map_err(status_error)
                .with_context(|| format!("{} was not loaded", file.display()))?
                .into_inner();
            let reference = answer.catalogue.unwrap_or_default();
            if answer.replayed {
                outln!(
                    "decision {} of {} was loaded before from this file (catalogue version {}): nothing was written",
                    reference.decision,
                    reference.effective_from,
                    reference.version
                );
            } else {
                outln!(
                    "decision {} is in force from {}: {} procedures published, {} abolished; the catalogue is at version {} (log position {})",
                    reference.decision,
                    reference.effective_from,
                    answer.entries,
                    answer.abolished,
                    reference.version,
                    answer.position
                );
            }
            Ok(())
        }
        CatalogueCommand::List {
            agency,
            at,
            connect: args,
        } => {
            let mut client = pb::reference_service_client::ReferenceServiceClient::new(connect(&args).await?);
            let mut page_token = String::new();
            let mut shown = 0usize;
            outln!(
                "{:<9} {:<22} {:>10} {:>6}  {:<24} name",
                "code",
                "time",
                "fee (VND)",
                "online",
                "decision"
            );
            loop {
                let answer = client
                    .list_procedures(pb::ListProceduresRequest {
                        agency: agency.clone().unwrap_or_default(),
                        at: at.map(utc_to_timestamp),
                        page_token: page_token.clone(),
                        ..pb::ListProceduresRequest::default()
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                if answer.catalogue_version == 0 {
                    outln!(
                        "no catalogue is loaded; load one with `hoso catalogue load FILE --decision N --effective DATE`"
                    );
                    return Ok(());
                }
                for procedure in &answer.procedures {
                    print_row(procedure)?;
                }
                shown += answer.procedures.len();
                if answer.next_page_token.is_empty() {
                    break;
                }
                page_token = answer.next_page_token;
            }
            outln!(
                "{shown} {} in force",
                if shown == 1 { "procedure" } else { "procedures" }
            );
            Ok(())
        }
        CatalogueCommand::Show {
            code,
            at,
            connect: args,
        } => {
            let mut client = pb::reference_service_client::ReferenceServiceClient::new(connect(&args).await?);
            let answer = client
                .list_procedures(pb::ListProceduresRequest {
                    code: code.clone(),
                    at: at.map(utc_to_timestamp),
                    ..pb::ListProceduresRequest::default()
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let Some(procedure) = answer.procedures.first() else {
                bail!(
                    "{code} is not in the catalogue in force (version {}); `hoso catalogue list` lists what is",
                    answer.catalogue_version
                );
            };
            let entry = procedure.entry.clone().unwrap_or_default();
            let reference = procedure.catalogue.clone().unwrap_or_default();
            outln!("code              {}", entry.code);
            outln!("name              {}", entry.name);
            outln!("statutory time    {}", time(entry.statutory_time.as_ref()));
            if let Some(green) = &entry.green_lane_time {
                outln!("green lane        {}", time(Some(green)));
            }
            outln!("fee               {} VND", entry.fee_vnd);
            outln!("full online       {}", yes_no(entry.full_online_eligible));
            outln!("paper result      {}", yes_no(entry.paper_result));
            outln!(
                "handling agencies {}",
                if entry.handling_agencies.is_empty() {
                    "any".to_owned()
                } else {
                    entry.handling_agencies.join(", ")
                }
            );
            outln!(
                "decision          {} in force from {} (catalogue version {})",
                reference.decision,
                reference.effective_from,
                reference.version
            );
            Ok(())
        }
        CatalogueCommand::Missing { connect: args } => {
            let mut client = pb::reports_service_client::ReportsServiceClient::new(connect(&args).await?);
            let mut counts: std::collections::BTreeMap<String, (u64, String)> = std::collections::BTreeMap::new();
            let mut page_token = String::new();
            loop {
                let answer = client
                    .list_dossiers(pb::ListDossiersRequest {
                        procedure_source: pb::ProcedureSource::OutsideCatalogue.into(),
                        order: pb::DossierOrder::NewestFirst.into(),
                        page_size: 1000,
                        page_token: page_token.clone(),
                        ..pb::ListDossiersRequest::default()
                    })
                    .await
                    .map_err(status_error)?
                    .into_inner();
                for row in &answer.dossiers {
                    let count = counts.entry(row.procedure.clone()).or_insert((0, String::new()));
                    count.0 += 1;
                    if count.1.is_empty() {
                        count.1 = row.receipt_code.clone();
                    }
                }
                if answer.next_page_token.is_empty() {
                    break;
                }
                page_token = answer.next_page_token;
            }
            if counts.is_empty() {
                outln!("no dossier was received outside the catalogue");
                return Ok(());
            }
            outln!("{:<9} {:>8}  latest receipt", "code", "dossiers");
            for (code, (n, latest)) in &counts {
                outln!("{code:<9} {n:>8}  {latest}");
            }
            outln!(
                "{} procedures received outside the catalogue: publish them, or correct the desks that send them",
                counts.len()
            );
            Ok(())
        }
    }
}

fn print_row(procedure: &pb::ProcedureInForce) -> Result<()> {
    let entry = procedure.entry.clone().unwrap_or_default();
    let reference = procedure.catalogue.clone().unwrap_or_default();
    let mut time = time(entry.statutory_time.as_ref());
    if let Some(green) = &entry.green_lane_time {
        time = format!(
            "{time} (green {})",
            self::time(Some(green)).replace(" working ", " w. ")
        );
    }
    outln!(
        "{:<9} {:<22} {:>10} {:>6}  {:<24} {}",
        entry.code,
        time,
        entry.fee_vnd,
        yes_no(entry.full_online_eligible),
        reference.decision,
        entry.name
    );
    Ok(())
}

fn time(time: Option<&pb::StatutoryTime>) -> String {
    let Some(time) = time else { return "-".to_owned() };
    let unit = match pb::TimeUnit::try_from(time.unit) {
        Ok(pb::TimeUnit::WorkingDays) => "working days",
        Ok(pb::TimeUnit::WorkingHours) => "working hours",
        Ok(pb::TimeUnit::CalendarDays) => "calendar days",
        _ => "?",
    };
    format!("{} {unit}", time.amount)
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}
