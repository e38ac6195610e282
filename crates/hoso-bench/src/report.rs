//! Prints the figures of one run as Markdown, ready for `BENCHMARKS.md`.

use crate::{AppendFigures, ScanFigures, StoreArgs};

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {:.0} GiB RAM", mem_kb as f64 / 1024.0 / 1024.0)
}

pub(crate) fn print(
    rows: &[(AppendFigures, AppendFigures)],
    ours: (ScanFigures, ScanFigures, f64),
    theirs: (ScanFigures, ScanFigures, f64),
    args: &StoreArgs,
    pg_settings: &str,
) {
    println!("Machine: {}", machine());
    println!("PostgreSQL: {pg_settings}");
    println!(
        "Each append configuration ran {} s; ~300-byte JSON events; fsync on both sides.\n",
        args.seconds
    );
    println!(
        "| appenders | events/append | hoso appends/s | hoso events/s | hoso p50 ms | hoso p99 ms | PostgreSQL appends/s | PostgreSQL p50 ms | PostgreSQL p99 ms | ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (o, t) in rows {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1}x |",
            o.appenders,
            o.batch,
            o.appends_per_sec(),
            o.appends_per_sec() * o.batch as f64,
            o.percentile_ms(0.50),
            o.percentile_ms(0.99),
            t.appends_per_sec(),
            t.percentile_ms(0.50),
            t.percentile_ms(0.99),
            o.appends_per_sec() / t.appends_per_sec(),
        );
    }
    let (os, od, ob) = ours;
    let (ts, td, tb) = theirs;
    println!(
        "\n| full `$all` scan ({} events) | hoso events/s | PostgreSQL events/s | ratio |",
        os.events
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| without JSON decoding | {:.0} ({:.2} s) | {:.0} ({:.2} s) | {:.1}x |",
        os.events_per_sec(),
        os.elapsed.as_secs_f64(),
        ts.events_per_sec(),
        ts.elapsed.as_secs_f64(),
        os.events_per_sec() / ts.events_per_sec()
    );
    println!(
        "| with JSON decoding of the data | {:.0} ({:.2} s) | {:.0} ({:.2} s) | {:.1}x |",
        od.events_per_sec(),
        od.elapsed.as_secs_f64(),
        td.events_per_sec(),
        td.elapsed.as_secs_f64(),
        od.events_per_sec() / td.events_per_sec()
    );
    println!("\n| disk bytes per event | hoso (store directory: segments + sled) | PostgreSQL (table + indexes) |");
    println!("|---|---:|---:|");
    println!("| after filling the scan log | {ob:.0} | {tb:.0} |");
}
