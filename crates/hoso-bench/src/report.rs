//! Prints the figures of one run as Markdown, ready for `BENCHMARKS.md`.

use crate::{AppendFigures, AppendRow, ScanSide, StoreArgs};

/// A field of `/proc/meminfo`, in KiB.
fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The machine's memory now: free, and available (free plus what the page cache can give
/// back). The figures run lower while memory churns (BENCHMARKS.md, "What bounds the store's
/// figures").
pub(crate) fn memory_now() -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let gib = |key| meminfo_kib(&meminfo, key).map_or(f64::NAN, |kib| kib as f64 / 1024.0 / 1024.0);
    format!(
        "{:.1} GiB free, {:.1} GiB available",
        gib("MemFree"),
        gib("MemAvailable")
    )
}

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
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| meminfo_kib(&s, "MemTotal"))
        .unwrap_or(0);
    format!("{cpu}, {cores} cores, {:.0} GiB RAM", mem_kib as f64 / 1024.0 / 1024.0)
}

pub(crate) fn print(
    rows: &[AppendRow],
    ours: Option<ScanSide>,
    theirs: Option<ScanSide>,
    args: &StoreArgs,
    pg_settings: &str,
    memory_at_start: &str,
) {
    println!("Machine: {} (at the start: {memory_at_start})", machine());
    if !pg_settings.is_empty() {
        println!("PostgreSQL: {pg_settings}");
    }
    println!(
        "Each append configuration ran {} s unmeasured, then {} s measured; ~300-byte JSON events; fsync on every side.\n",
        args.warmup, args.seconds
    );
    let side = |f: &AppendFigures| {
        format!(
            "{:.0} | {:.2} | {:.2}",
            f.appends_per_sec(),
            f.percentile_ms(0.50),
            f.percentile_ms(0.99)
        )
    };
    let pairs = |of: fn(&AppendRow) -> Option<&AppendFigures>| {
        rows.iter()
            .filter_map(|row| Some((of(row)?, row.plain.as_ref()?)))
            .collect::<Vec<_>>()
    };
    let embedded = pairs(|row| row.embedded.as_ref());
    if !embedded.is_empty() {
        println!(
            "| appenders | events/append | hoso appends/s | hoso p50 ms | hoso p99 ms | hoso events/s | PostgreSQL appends/s | PostgreSQL p50 ms | PostgreSQL p99 ms | ratio |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (o, t) in &embedded {
            println!(
                "| {} | {} | {} | {:.0} | {} | {:.1}x |",
                o.appenders,
                o.batch,
                side(o),
                o.appends_per_sec() * o.batch as f64,
                side(t),
                o.appends_per_sec() / t.appends_per_sec(),
            );
        }
    }
    let pgstore = pairs(|row| row.pgstore.as_ref());
    if !pgstore.is_empty() {
        println!(
            "\nhoso's PostgreSQL store against the plain table, on the same server (the cost of ordering, ids and chains):\n"
        );
        println!(
            "| appenders | events/append | PgStore appends/s | PgStore p50 ms | PgStore p99 ms | plain table appends/s | plain p50 ms | plain p99 ms | PgStore / plain |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (o, t) in &pgstore {
            println!(
                "| {} | {} | {} | {} | {:.0}% |",
                o.appenders,
                o.batch,
                side(o),
                side(t),
                100.0 * o.appends_per_sec() / t.appends_per_sec(),
            );
        }
    }
    let alone: Vec<(&str, &AppendFigures)> = rows
        .iter()
        .filter(|row| row.plain.is_none())
        .flat_map(|row| [("embedded", row.embedded.as_ref()), ("PgStore", row.pgstore.as_ref())])
        .filter_map(|(name, figures)| Some((name, figures?)))
        .collect();
    if !alone.is_empty() {
        println!("\nWithout the plain table (no comparison):\n");
        println!("| store | appenders | events/append | appends/s | p50 ms | p99 ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (name, f) in alone {
            println!("| {name} | {} | {} | {} |", f.appenders, f.batch, side(f));
        }
    }
    let (Some((os, od, ob)), Some((ts, td, tb))) = (ours, theirs) else {
        return;
    };
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

#[cfg(test)]
mod tests {
    use super::meminfo_kib;

    #[test]
    fn reads_meminfo_fields_by_name() {
        let meminfo = "MemTotal:       24683520 kB\nMemFree:         1241236 kB\nMemAvailable:   24102400 kB\n";
        assert_eq!(meminfo_kib(meminfo, "MemTotal"), Some(24_683_520));
        assert_eq!(meminfo_kib(meminfo, "MemFree"), Some(1_241_236));
        assert_eq!(meminfo_kib(meminfo, "MemAvailable"), Some(24_102_400));
        // A name that is only the start of another is not that other.
        assert_eq!(meminfo_kib(meminfo, "Mem"), None);
        assert_eq!(meminfo_kib(meminfo, "SwapTotal"), None);
    }
}
