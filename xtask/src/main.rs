//! Project automation, run as `cargo xtask <task>`.
//!
//! - `test`: every test of the workspace, with every feature the test binaries need (and the
//!   `hoso` package's tests that need its `postgres` feature off), then the
//!   Python tests (`tests/deploy`, and `tests/python`: a client generated from `proto/` against
//!   the real server binary, and `buf lint`) in a virtual environment at `target/pyenv`. This is
//!   the README's test command; it needs nothing installed by hand but Rust and `python3`.
//! - `ci`: what `.ci/run` runs: formatting and lint checks, then `test`, then `fuzz --seconds 14`.
//! - `fuzz [--seconds N] [--target NAME]...`: the fuzz targets of `crates/hoso-fuzz`, N seconds
//!   each (120 by default); fails at the first finding (`docs/fuzzing.md`).

use std::path::Path;
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
            test()?;
            fuzz(&["--seconds".to_owned(), CI_FUZZ_SECONDS.to_owned()])
        }
        "fuzz" => fuzz(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => bail!("unknown task {task:?}; the tasks are: test, ci, fuzz"),
    }
}

/// Seconds of fuzzing for each of the five targets in CI: about 70 s in all.
const CI_FUZZ_SECONDS: &str = "14";

/// Builds the fuzz binary with the test suite's features (so that the build `test` made is
/// reused) and runs every target, or those named, for the seconds given.
fn fuzz(args: &[String]) -> Result<()> {
    let mut run = vec!["run".to_owned()];
    let mut args = args.iter();
    let mut seconds = "120".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" | "--target" | "--seed" => {
                let value = args.next().with_context(|| format!("{arg} needs a value"))?;
                if arg == "--seconds" {
                    value.clone_into(&mut seconds);
                } else {
                    run.extend([arg.clone(), value.clone()]);
                }
            }
            other => bail!("unknown fuzz option {other:?}; the options are --seconds N, --target NAME, --seed S"),
        }
    }
    run.extend(["--seconds".to_owned(), seconds]);
    cargo(&["build", "--workspace", "--all-features", "--bin", "hoso-fuzz"])?;
    let fuzzer = target_dir()?.join("debug").join("hoso-fuzz");
    step(
        &format!("the fuzz targets ({})", run[1..].join(" ")),
        Command::new(&fuzzer).args(&run),
    )
}

/// The cargo target directory: `CARGO_TARGET_DIR` or the workspace's `target`.
fn target_dir() -> Result<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the xtask crate has no parent directory")?;
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::absolute(dir).context("cannot resolve CARGO_TARGET_DIR")?,
        None => root.join("target"),
    })
}

/// Runs the whole test suite: the Rust tests, with cargo-nextest when it is installed and
/// `cargo test` otherwise, then the Python tests.
fn test() -> Result<()> {
    // The disclosure's HTML is checked in headless Chromium, the PostgreSQL store against a
    // throwaway server: install both where we may.
    let chromium = ensure_test_packages();
    let has_nextest = Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    // Once chromium is installed, its test must run: a missing browser then fails it.
    let require = chromium.then_some(("HOSO_REQUIRE_CHROMIUM", "1"));
    if has_nextest {
        cargo_env(
            &["nextest", "run", "--workspace", "--all-features", "--no-fail-fast"],
            require,
        )?;
        // The default build's refusal of a PostgreSQL store exists only without the feature.
        cargo(&["nextest", "run", "-p", "hoso", "-E", "test(/without_postgres/)"])?;
    } else {
        cargo_env(&["test", "--workspace", "--all-features", "--no-fail-fast"], require)?;
        cargo(&["test", "-p", "hoso", "--test", "e2e", "without_postgres"])?;
    }
    python_tests()
}

/// Whether `/usr/bin/chromium` is there, installing Debian's packages the tests need (chromium
/// for the disclosure's and the example web desk's browser tests, postgresql's server binaries
/// for the PostgreSQL store's tests) when running as root with apt, as CI does, with one `apt-get update` for both.
/// Elsewhere it says how to install them: the browser test is then skipped, and the PostgreSQL
/// tests fail saying what is missing (they never skip).
fn ensure_test_packages() -> bool {
    let chromium = Path::new("/usr/bin/chromium");
    let mut missing = Vec::new();
    if !chromium.exists() {
        missing.push("chromium");
    }
    if !has_postgresql_server() {
        missing.push("postgresql");
    }
    if missing.is_empty() {
        return true;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root || !Path::new("/usr/bin/apt-get").exists() {
        eprintln!(
            "xtask: the Debian packages {} are missing: without chromium the disclosure's browser test is skipped, without postgresql the PostgreSQL store's tests fail; install them to run every test",
            missing.join(" ")
        );
        return chromium.exists();
    }
    let installed = step("apt-get update", Command::new("apt-get").args(["update", "-qq"])).and_then(|()| {
        step(
            &format!("apt-get install {}", missing.join(" ")),
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    });
    if let Err(err) = installed {
        eprintln!("xtask: {err:#}; the browser test and the PostgreSQL tests will fail");
        // Require the browser anyway: CI must not pass silently without the browser test.
        return true;
    }
    chromium.exists()
}

/// Whether PostgreSQL's server binaries (`initdb`, `pg_ctl`) are where `deploy/pg-throwaway.sh`
/// looks for them: `pg_config --bindir` or `/usr/lib/postgresql/*/bin`.
fn has_postgresql_server() -> bool {
    let bindir = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let mut candidates: Vec<std::path::PathBuf> = bindir.into_iter().map(Into::into).collect();
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        candidates.extend(dirs.flatten().map(|d| d.path().join("bin")));
    }
    candidates
        .iter()
        .any(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// Builds the server binary, sets up `target/pyenv` (pip runs only when
/// `tests/python/requirements.txt` differs from the copy stamped in the venv), then runs
/// pytest on `tests/deploy` and `tests/python` against the binary.
fn python_tests() -> Result<()> {
    cargo(&["build", "-p", "hoso"])?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the xtask crate has no parent directory")?;
    let target = target_dir()?;
    let venv = target.join("pyenv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        step(
            "create the Python venv",
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
        )?;
    }
    let requirements = root.join("tests/python/requirements.txt");
    let wanted =
        std::fs::read_to_string(&requirements).with_context(|| format!("cannot read {}", requirements.display()))?;
    let stamp = venv.join(".requirements");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        step(
            "pip install the Python test requirements",
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "-r"])
                .arg(&requirements),
        )?;
        std::fs::write(&stamp, &wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    }
    let hoso_bin = target.join("debug").join("hoso");
    step(
        "the Python tests (pytest tests/deploy tests/python)",
        Command::new(&python)
            .args(["-m", "pytest", "-q", "tests/deploy", "tests/python"])
            .env("HOSO_BIN", &hoso_bin)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(root),
    )
}

/// Runs a command other than cargo, a step named `name` in messages.
fn step(name: &str, command: &mut Command) -> Result<()> {
    eprintln!("xtask: {name}");
    let status = command
        .status()
        .with_context(|| format!("{name}: cannot start {command:?}"))?;
    if !status.success() {
        bail!("{name} failed ({status})");
    }
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    cargo_env(args, None)
}

fn cargo_env(args: &[&str], env: Option<(&str, &str)>) -> Result<()> {
    eprintln!("xtask: cargo {}", args.join(" "));
    let mut command = Command::new(env!("CARGO"));
    if let Some((key, value)) = env {
        command.env(key, value);
    }
    let status = command
        .args(args)
        .status()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
