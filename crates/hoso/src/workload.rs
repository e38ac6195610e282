//! `hoso gen`: writes a generated province workload as `hoso import` NDJSON.

use crate::out::outln;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use hoso_gen::{Params, Province, Rates, Scale, Workload, import_line};

/// `hoso gen`.
#[derive(clap::Args)]
pub(crate) struct GenArgs {
    /// Fixes every byte of the output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Months of arrivals.
    #[arg(long, default_value_t = 1)]
    months: u32,
    /// The first month, `YYYY-MM` (the calendar must hold every year the dossiers live in:
    /// 2025 and 2026 are shipped).
    #[arg(long, default_value = "2025-09")]
    start: String,
    /// province (about 750,000 dossiers a year) or country (30 times that).
    #[arg(long, default_value = "province")]
    scale: String,
    /// Share of dossiers submitted online, percent.
    #[arg(long, default_value_t = Rates::default().online)]
    online: f64,
    /// Share of dossiers finished on time, percent.
    #[arg(long, default_value_t = Rates::default().on_time)]
    on_time: f64,
    /// The NDJSON file to write.
    #[arg(long, default_value = "workload.ndjson")]
    out: PathBuf,
    /// Also write a server configuration with this province's name (and its green lane, unless
    /// --catalogue-out is given), for a demo.
    #[arg(long)]
    config_out: Option<PathBuf>,
    /// Also write this province's procedure catalogue as a CSV file for `hoso catalogue load`
    /// (docs/catalogue.md); the green lane then comes from the catalogue, not --config-out.
    #[arg(long)]
    catalogue_out: Option<PathBuf>,
}

pub(crate) fn run(args: GenArgs) -> Result<()> {
    let start = NaiveDate::parse_from_str(&format!("{}-01", args.start), "%Y-%m-%d")
        .with_context(|| format!("--start {:?} is not a month like 2025-09", args.start))?;
    let scale = match args.scale.as_str() {
        "province" => Scale::Province,
        "country" => Scale::Country,
        other => bail!("--scale {other:?} is not a scale; use province or country"),
    };
    for (name, value) in [("--online", args.online), ("--on-time", args.on_time)] {
        if !(0.0..=100.0).contains(&value) {
            bail!("{name} {value} is not a percentage between 0 and 100");
        }
    }
    let rates = Rates {
        online: args.online,
        on_time: args.on_time,
        ..Rates::default()
    };
    let province = Province::new(args.seed);
    let params = Params {
        seed: args.seed,
        start,
        months: args.months,
        scale,
        rates,
    };
    let workload = Workload::new(&province, params, hoso_domain::BusinessCalendar::vietnam());
    let bar = indicatif::ProgressBar::new(workload.expected_dossiers()).with_style(
        indicatif::ProgressStyle::with_template("generating [{bar:40}] {pos}/~{len} dossiers ({per_sec})")
            .context("the progress bar template is wrong")?
            .progress_chars("#>-"),
    );
    let file = std::fs::File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let (mut dossiers, mut commands) = (0u64, 0u64);
    for dossier in workload {
        let line = import_line(&dossier, "hoso-gen").context("cannot write a generated dossier as an import line")?;
        writeln!(out, "{line}").with_context(|| format!("cannot write {}", args.out.display()))?;
        dossiers += 1;
        commands += dossier.commands.len() as u64;
        if dossiers % 1024 == 0 {
            bar.set_position(dossiers);
        }
    }
    out.flush()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    bar.finish_and_clear();
    if let Some(path) = &args.catalogue_out {
        std::fs::write(path, hoso_catalogue::write_csv(&province.catalogue_entries()))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.config_out {
        let mut config = String::from(if args.catalogue_out.is_some() {
            "# A demo server configuration for a workload of `hoso gen`: a province name (the green lane is in the catalogue file).\nprovince_name = \"Thái Nguyên\"\n"
        } else {
            "# A demo server configuration for a workload of `hoso gen`: its green lane and a province name.\nprovince_name = \"Thái Nguyên\"\n"
        });
        // With a catalogue file the green lane is in the catalogue: the configuration leaves it out.
        let green_lane = if args.catalogue_out.is_some() {
            &[][..]
        } else {
            &province.green_lane_list[..]
        };
        for (code, time) in green_lane {
            let unit = match time.unit {
                hoso_domain::TimeUnit::WorkingDays => "working_days",
                hoso_domain::TimeUnit::WorkingHours => "working_hours",
                hoso_domain::TimeUnit::CalendarDays => "calendar_days",
            };
            config.push_str(&format!(
                "\n[[green_lane]]\nprocedure = \"{code}\"\namount = {}\nunit = \"{unit}\"\n",
                time.amount
            ));
        }
        // The disclosure names each agency by the name the province gave it.
        config.push_str("\n# Display names of the handling agencies in the disclosure, by code.\n[agency_names]\n");
        for agency in &province.agencies {
            config.push_str(&format!(
                "{} = {}\n",
                toml_string(&agency.code),
                toml_string(&agency.name)
            ));
        }
        std::fs::write(path, config).with_context(|| format!("cannot write {}", path.display()))?;
    }
    outln!(
        "wrote {} dossiers ({commands} commands) to {}; import them with `hoso import {}`",
        dossiers,
        args.out.display(),
        args.out.display()
    );
    if let Some(path) = &args.catalogue_out {
        outln!(
            "wrote the catalogue of {} procedures to {}; load it with `hoso catalogue load {} --decision <number> --effective <YYYY-MM-DD>`",
            province.procedures.len(),
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
