//! The mutation loop: seeded, time-bounded, with every panic (on any thread) and every broken
//! property reported as a finding and its input kept.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::targets::{Context, Target};

/// The first panic seen since the last [`take_panic`], on any thread (sled and the store run
/// threads of their own, whose panics `catch_unwind` cannot see).
static PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Installs the panic hook that records panics instead of printing them (once per process).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
            let text = format!("panic on thread {thread}: {info}");
            if let Ok(mut slot) = PANIC.lock()
                && slot.is_none()
            {
                *slot = Some(text);
            }
        }));
    });
}

fn take_panic() -> Option<String> {
    PANIC.lock().ok().and_then(|mut slot| slot.take())
}

/// Why an input is a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The code under test panicked.
    Panic(String),
    /// It returned, but broke a property the target checks.
    Property(String),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Panic(text) => write!(f, "panic: {text}"),
            Finding::Property(text) => write!(f, "property broken: {text}"),
        }
    }
}

/// Runs one input through a target: its outcome's signature, or the finding.
pub fn run_one(target: Target, ctx: &mut Context, data: &[u8]) -> Result<String, Finding> {
    install_panic_hook();
    take_panic();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| target.run(ctx, data)));
    // A panic on another thread (sled's, the store's) counts even when the call returned.
    if let Some(text) = take_panic() {
        return Err(Finding::Panic(text));
    }
    match result {
        Ok(Ok(signature)) => Ok(signature),
        Ok(Err(property)) => Err(Finding::Property(property)),
        Err(_) => Err(Finding::Panic("the target panicked".to_owned())),
    }
}

/// The files of a directory, sorted by name (none if it does not exist).
pub fn inputs_in(dir: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.with_context(|| format!("cannot list {}", dir.display()))?.path();
        if path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok((path, bytes))
        })
        .collect()
}

/// The seed corpus and the kept regressions of a target.
pub fn corpus_of(target: Target) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let root = crate::crate_dir();
    let mut inputs = inputs_in(&root.join("corpus").join(target.name()))?;
    inputs.extend(inputs_in(&root.join("regressions").join(target.name()))?);
    Ok(inputs)
}

/// How long and from which seed to fuzz.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Stop after this long.
    pub duration: Duration,
    /// The random seed: the same seed, corpus and build give the same inputs.
    pub seed: u64,
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    /// Inputs run, the corpus included.
    pub runs: u64,
    /// Distinct outcomes seen.
    pub outcomes: usize,
    /// The first finding and the file its input was written to.
    pub finding: Option<(Finding, PathBuf)>,
}

/// Fuzzes `target` from its corpus for `options.duration`; stops at the first finding, whose
/// input is written to `regressions/<target>/`.
pub fn fuzz(target: Target, options: Options) -> Result<Report> {
    start_watchdog();
    let mut ctx = Context::new()?;
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut outcomes = std::collections::HashSet::new();
    let mut runs = 0u64;
    let started = Instant::now();
    for (path, input) in corpus_of(target)? {
        runs += 1;
        match run_one(target, &mut ctx, &input) {
            Ok(signature) => {
                outcomes.insert(signature);
            }
            Err(finding) => {
                return Ok(Report {
                    runs,
                    outcomes: outcomes.len(),
                    finding: Some((finding, path)),
                });
            }
        }
        pool.push(input);
    }
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut rng = fastrand::Rng::with_seed(options.seed);
    while started.elapsed() < options.duration {
        let mut input = pool[rng.usize(..pool.len())].clone();
        for _ in 0..rng.usize(1..=8) {
            mutate(&mut rng, &mut input, &pool, target.dictionary());
        }
        input.truncate(target.max_len());
        runs += 1;
        let began = Instant::now();
        if let Ok(mut slot) = CURRENT.lock() {
            *slot = Some((target, began, input.clone()));
        }
        let outcome = run_one(target, &mut ctx, &input);
        if let Ok(mut slot) = CURRENT.lock() {
            *slot = None;
        }
        if began.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "{}: an input took {:.1} s: {:02x?} -> {outcome:?}",
                target.name(),
                began.elapsed().as_secs_f64(),
                input
            );
        }
        match outcome {
            Ok(signature) => {
                // An outcome not seen before makes its input a parent of later mutations.
                if outcomes.insert(signature) && pool.len() < 10_000 {
                    pool.push(input);
                }
            }
            Err(finding) => {
                let path = keep(target, &input)?;
                return Ok(Report {
                    runs,
                    outcomes: outcomes.len(),
                    finding: Some((finding, path)),
                });
            }
        }
    }
    Ok(Report {
        runs,
        outcomes: outcomes.len(),
        finding: None,
    })
}

/// The input being run and since when, for the watchdog.
static CURRENT: Mutex<Option<(Target, Instant, Vec<u8>)>> = Mutex::new(None);

/// An input running longer than this is a hang: kept as a finding, and the process exits.
const HANG: Duration = Duration::from_secs(60);

/// Starts (once) the thread that ends the run when one input hangs, which no `catch_unwind`
/// can stop.
fn start_watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let hung = CURRENT.lock().ok().and_then(|slot| {
                    slot.as_ref()
                        .filter(|(_, began, _)| began.elapsed() > HANG)
                        .map(|(target, _, input)| (*target, input.clone()))
                });
                if let Some((target, input)) = hung {
                    let kept = keep(target, &input)
                        .map_or_else(|err| format!("not kept: {err:#}"), |p| p.display().to_string());
                    println!(
                        "{}: FOUND a hang: one input ran for more than {} s; the input is in {kept}",
                        target.name(),
                        HANG.as_secs()
                    );
                    std::process::exit(1);
                }
            }
        });
    });
}

/// Writes a finding's input to `regressions/<target>/`, named by a hash of its bytes.
fn keep(target: Target, input: &[u8]) -> Result<PathBuf> {
    let dir = crate::crate_dir().join("regressions").join(target.name());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // FNV-1a: a stable name, so the same input found twice is one file.
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let path = dir.join(format!("{hash:016x}.bin"));
    std::fs::write(&path, input).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Integers at the edges of their types, where parsers and arithmetic break.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// One random change to `data`: a bit flip, a byte, an insertion, a deletion, a copy, an
/// integer at an edge, a dictionary token, or a splice with another pool entry.
pub fn mutate(rng: &mut fastrand::Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dictionary: &[&[u8]]) {
    let len = data.len();
    let at = |rng: &mut fastrand::Rng| rng.usize(..=len);
    match rng.u8(..10) {
        0 if len > 0 => {
            let i = rng.usize(..len);
            data[i] ^= 1 << rng.u8(..8);
        }
        1 if len > 0 => {
            let i = rng.usize(..len);
            data[i] = rng.u8(..);
        }
        2 => {
            let i = at(rng);
            let n = rng.usize(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            data.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let start = rng.usize(..len);
            let end = (start + rng.usize(1..=len.min(64))).min(len);
            data.drain(start..end);
        }
        4 if len > 0 => {
            let start = rng.usize(..len);
            let end = (start + rng.usize(1..=len.min(64))).min(len);
            let copy = data[start..end].to_vec();
            let i = at(rng);
            data.splice(i..i, copy);
        }
        5 => {
            let value = INTERESTING[rng.usize(..INTERESTING.len())];
            let width = [1, 2, 4, 8][rng.usize(..4)];
            let bytes = &value.to_le_bytes()[..width];
            let i = rng.usize(..=len.saturating_sub(width));
            let end = (i + width).min(len);
            data.splice(i..end, bytes.iter().copied());
        }
        6 | 7 if !dictionary.is_empty() => {
            let token = dictionary[rng.usize(..dictionary.len())];
            let i = at(rng);
            if rng.bool() || len == 0 {
                data.splice(i..i, token.iter().copied());
            } else {
                let end = (i + token.len()).min(len);
                data.splice(i..end, token.iter().copied());
            }
        }
        8 => {
            let other = &pool[rng.usize(..pool.len())];
            let cut = at(rng);
            let from = rng.usize(..=other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        _ if len > 1 => {
            // Truncation: the commonest damage of a file.
            data.truncate(rng.usize(..len));
        }
        _ => data.push(rng.u8(..)),
    }
}
