//! Prints the figures of one run as Markdown, ready for `BENCHMARKS.md`.

use crate::{AppendFigures, ScanFigures, StoreArgs};

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
    rows: &[(AppendFigures, AppendFigures)],
    ours: (ScanFigures, ScanFigures, f64),
    theirs: (ScanFigures, ScanFigures, f64),
    args: &StoreArgs,
    pg_settings: &str,
    memory_at_start: &str,
) {
    println!("Machine: {} (at the start: {memory_at_start})", machine());
    println!("PostgreSQL: {pg_settings}");
    println!(
        "Each append configuration ran {} s unmeasured, then {} s measured; ~300-byte JSON events; fsync on both sides.\n",
        args.warmup, args.seconds
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
