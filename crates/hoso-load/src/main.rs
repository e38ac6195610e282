//! `hoso-load`: drives a running `hoso` server over gRPC with generated dossier lives, as the
//! desks and agencies of a province would, and reports throughput, latency percentiles and
//! errors. A tool for tests and benchmarks (the crash-under-load test, BENCHMARKS.md), kept out
//! of the `hoso` binary that is shipped.

mod load;

use clap::Parser;

/// mimalloc, as in `hoso`: the load's many small allocations freed on other threads cost twice
/// the time under glibc's malloc (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Drive a running server with generated dossier lives (closed loop with --clients, open loop
/// with --rate) and report throughput, latency percentiles and errors (desk and agency officers'
/// tokens: --tokens <data dir>/dev-tokens.txt).
#[derive(Parser)]
#[command(name = "hoso-load", version)]
struct Cli {
    #[command(flatten)]
    load: load::LoadArgs,
}

fn main() {
    let cli = Cli::parse();
    match load::run(cli.load) {
        // Some commands were refused for good: the run is not a clean one.
        Ok(true) => std::process::exit(2),
        Ok(false) => {}
        Err(err) => {
            // The reader of our output went away (`hoso-load … | head`): it has what it wanted.
            if hoso::out::is_broken_pipe(&err) {
                std::process::exit(0);
            }
            eprintln!("hoso-load: {err:#}");
            std::process::exit(1);
        }
    }
}
