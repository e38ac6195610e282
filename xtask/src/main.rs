//! Project automation, run as `cargo xtask <task>`.
//!
//! - `test`: every test of the workspace, with every feature the test binaries need. This is
//!   the README's test command; it needs nothing installed by hand.
//! - `ci`: what `.ci/run` runs: formatting and lint checks, then `test`.

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() {
    if let Err(err) = run() {
        eprintln!("xtask: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "test" => test(),
        "ci" => {
            cargo(&["fmt", "--all", "--", "--check"])?;
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ])?;
            test()
        }
        _ => bail!("unknown task {task:?}; the tasks are: test, ci"),
    }
}

/// Runs the whole test suite, with cargo-nextest when it is installed and `cargo test`
/// otherwise.
fn test() -> Result<()> {
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if has_nextest {
        cargo(&["nextest", "run", "--workspace", "--all-features", "--no-fail-fast"])
    } else {
        cargo(&["test", "--workspace", "--all-features", "--no-fail-fast"])
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .status()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
