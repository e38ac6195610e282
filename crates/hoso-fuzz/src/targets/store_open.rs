//! Opening a store directory whose files were damaged: bytes flipped, ranges zeroed, files cut,
//! extended or removed, in the segments, the id tables, sled's files and the store id.
//!
//! A template store is written once (small segments and id tables, so that there are several
//! of each), then every input is a list of damages applied to a fresh copy. The open must not
//! panic, on any thread. It may refuse, with a message; if it opens, every event it reads back,
//! through `$all`, a stream or an event id, is one that was written, with its content, at its
//! place; an event written but no longer there is allowed only if a WARN or ERROR line was
//! logged during the open (the cut is named), and `verify` must run to an answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};
use hoso_store::{
    EventStore, ExpectedVersion, Json, NewEvent, RecordedEvent, SledOptions, SledStore, StreamRead, VerifyScope,
};

use super::{Bytes, Context};

/// WARN and ERROR lines logged by the code under test since the process started.
static WARNINGS: AtomicU64 = AtomicU64::new(0);

/// Counts every WARN and ERROR event (the store's way of naming what it cut or rebuilt).
struct CountWarnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            WARNINGS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Installs the counter as the global subscriber (once; a test harness may have set one).
pub(super) fn install_warning_counter() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(CountWarnings);
    // Already set (by an earlier context of this process): the counter is in place.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The options of the template and of every reopen: small segments and id tables, no
/// zero-filled space ahead, so that a few dozen events make several files of each kind.
fn options() -> SledOptions {
    SledOptions {
        cache_capacity_bytes: 1 << 20,
        segment_bytes: 4096,
        zero_fill_ahead_bytes: 0,
        id_table_events: 8,
        ..SledOptions::default()
    }
}

/// A store written once, and the events read back from it intact.
pub struct StoreTemplate {
    dir: tempfile::TempDir,
    /// Its files, relative to the directory, sorted.
    files: Vec<PathBuf>,
    /// The events as read back after a clean reopen, by position.
    events: Vec<RecordedEvent>,
    /// Each stream's events' positions, in version order.
    streams: BTreeMap<String, Vec<usize>>,
}

const STREAMS: [&str; 3] = [
    "dossier-G09.20-20260609-0000001",
    "dossier-G09.20-20260609-0000002",
    "reference-calendar",
];

impl StoreTemplate {
    /// Writes the template: 40 events in 3 streams, in appends of one to three events.
    pub fn build(runtime: &tokio::runtime::Runtime) -> Result<StoreTemplate> {
        let dir = scratch_dir().context("cannot make a temporary directory")?;
        let store = SledStore::open(dir.path(), options()).context("cannot create the template store")?;
        let mut n = 0u128;
        let occurred = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        while n < 40 {
            let stream = STREAMS[(n % 3) as usize];
            let batch: Vec<NewEvent> = (0..=(n % 3))
                .map(|k| {
                    let i = n + k;
                    NewEvent {
                        event_id: uuid::Uuid::from_u128(0xf022_0000 + i),
                        event_type: "FuzzEvent".to_owned(),
                        schema_version: 1,
                        data: Json::from(
                            serde_json::json!({ "i": i as u64, "text": "hồ sơ ".repeat(1 + (i % 7) as usize) }),
                        ),
                        metadata: Json::from(serde_json::json!({ "actor": "fuzz" })),
                        occurred_at: occurred + chrono::TimeDelta::seconds(i as i64),
                    }
                })
                .collect();
            n += batch.len() as u128;
            runtime
                .block_on(store.append(stream, ExpectedVersion::Any, batch))
                .context("cannot append to the template store")?;
        }
        store.close();
        drop(store);
        let store = SledStore::open(dir.path(), options()).context("cannot reopen the template store")?;
        let events = runtime
            .block_on(store.read_all(0, usize::MAX))
            .context("cannot read the template store")?;
        store.close();
        drop(store);
        let mut streams: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (position, event) in events.iter().enumerate() {
            streams.entry(event.stream_id.clone()).or_default().push(position);
        }
        let mut files = Vec::new();
        list_files(dir.path(), Path::new(""), &mut files)?;
        files.sort();
        Ok(StoreTemplate {
            dir,
            files,
            events,
            streams,
        })
    }
}

/// A temporary directory, in memory where Linux offers it: the store fsyncs on every open, and
/// on a disk that is most of an input's time.
fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::Builder::new().prefix("hoso-fuzz").tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
}

fn list_files(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(relative);
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = relative.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            list_files(root, &path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Applies one damage (8 bytes of input: file, kind, offset, value, length) to the copy.
fn damage(dir: &Path, files: &[PathBuf], b: &mut Bytes<'_>) -> std::io::Result<String> {
    let file = &files[usize::from(b.u8()) % files.len()];
    let kind = b.u8() % 6;
    let offset = b.u32() as usize;
    let (value, len) = (b.u8(), usize::from(b.u8()));
    let path = dir.join(file);
    let Ok(mut bytes) = std::fs::read(&path) else {
        // Removed by an earlier damage.
        return Ok(String::new());
    };
    let at = offset % (bytes.len() + 1);
    let one = at % bytes.len().max(1);
    match kind {
        0 if !bytes.is_empty() => bytes[one] ^= value | 1,
        1 => bytes.truncate(at),
        2 => bytes.extend(std::iter::repeat_n(value, len + 1)),
        3 => {
            let end = (at + len + 1).min(bytes.len());
            bytes[at..end].fill(value);
        }
        4 if !bytes.is_empty() => bytes[one] = value,
        5 => {
            std::fs::remove_file(&path)?;
            return Ok(format!("{}:removed", family(file)));
        }
        _ => {}
    }
    std::fs::write(&path, bytes)?;
    Ok(format!("{}:{kind}", family(file)))
}

/// The kind of file, for outcomes: `log`, `ids`, `db`, `conf`, `store-id`...
fn family(file: &Path) -> String {
    let name = file.to_string_lossy();
    match name.split('/').next() {
        Some(first) if first != name => first.to_owned(),
        _ => name.split('.').next().unwrap_or_default().to_owned(),
    }
}

pub(super) fn run(ctx: &mut Context, data: &[u8]) -> Result<String, String> {
    if ctx.template.is_none() {
        ctx.template = Some(StoreTemplate::build(&ctx.runtime).map_err(|err| format!("the harness failed: {err:#}"))?);
    }
    let (Some(template), runtime) = (&ctx.template, &ctx.runtime) else {
        return Err("the harness failed: no template".to_owned());
    };
    let copy = scratch_dir().map_err(|err| format!("the harness failed: {err}"))?;
    let dir = copy.path().join("store");
    copy_dir(template.dir.path(), &dir).map_err(|err| format!("the harness failed to copy the template: {err}"))?;
    let mut b = Bytes(data);
    let mut damages = std::collections::BTreeSet::new();
    while !b.0.is_empty() {
        let done = damage(&dir, &template.files, &mut b).map_err(|err| format!("the harness failed: {err}"))?;
        damages.insert(done);
    }
    if std::env::var_os("HOSO_FUZZ_VERBOSE").is_some() {
        eprintln!("store_open: files {:?}; damages {damages:?}", template.files);
    }
    let warnings_before = WARNINGS.load(Ordering::SeqCst);
    let store = match SledStore::open(&dir, options()) {
        Err(err) => {
            let text = err.to_string();
            if text.trim().is_empty() {
                return Err("an open was refused with an empty message".to_owned());
            }
            return Ok(format!("refused:{}", kind_of(&text)));
        }
        Ok(store) => store,
    };
    let warned = WARNINGS.load(Ordering::SeqCst) > warnings_before;
    let checked = runtime.block_on(check(&store, template, warned));
    store.close();
    drop(store);
    let damages: Vec<String> = damages.into_iter().collect();
    checked.map(|outcome| format!("{}->{outcome}:warned={warned}", damages.join(",")))
}

/// What an error says, without its numbers and paths: an outcome's kind.
fn kind_of(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphabetic() || *c == ' ')
        .take(48)
        .collect()
}

/// Reads the opened store back every way and compares with what was written.
async fn check(store: &SledStore, template: &StoreTemplate, warned: bool) -> Result<String, String> {
    let written = &template.events;
    let same = |read: &RecordedEvent| -> Result<(), String> {
        let position = usize::try_from(read.position).unwrap_or(usize::MAX);
        match written.get(position) {
            Some(original) if original == read => Ok(()),
            Some(original) => Err(format!(
                "the event read at position {position} differs from the one written there: {read:?} instead of {original:?}"
            )),
            None => Err(format!(
                "an event was read at position {position}, past the {} written",
                written.len()
            )),
        }
    };
    let all = match store.read_all(0, usize::MAX).await {
        Ok(all) => all,
        Err(err) => return Ok(format!("read refused:{}", kind_of(&err.to_string()))),
    };
    for (i, event) in all.iter().enumerate() {
        same(event)?;
        if event.position != i as u64 {
            return Err(format!("$all skips from position {i} to {}", event.position));
        }
    }
    let kept = all.len();
    if kept < written.len() && !warned {
        return Err(format!(
            "the store opened with {kept} of the {} events written, and no WARN or ERROR line named the cut",
            written.len()
        ));
    }
    if store.head() != kept as u64 {
        return Err(format!("the head is {} but $all holds {kept} events", store.head()));
    }
    for (position, original) in written.iter().enumerate() {
        match store.event_by_id(original.event_id).await {
            Ok(Some(found)) if position < kept => same(&found)?,
            Ok(Some(found)) => {
                return Err(format!(
                    "event id {} was found at position {} past the head {kept}",
                    original.event_id, found.position
                ));
            }
            Ok(None) if position < kept => {
                return Err(format!(
                    "event id {} is not found though $all holds it at position {position}",
                    original.event_id
                ));
            }
            Ok(None) | Err(_) => {}
        }
    }
    for (stream, positions) in &template.streams {
        let Ok(read) = store.read_stream(stream, StreamRead::forward()).await else {
            continue;
        };
        let expected = positions.iter().filter(|&&p| p < kept).count();
        if read.len() != expected {
            return Err(format!(
                "stream {stream} reads {} events where $all holds {expected} of it",
                read.len()
            ));
        }
        for event in &read {
            same(event)?;
        }
    }
    let verified = match store.verify(VerifyScope::All).await {
        Ok(report) if report.first_problem.is_some() => "problem",
        Ok(_) => "clean",
        Err(_) => "refused",
    };
    let cut = if kept == written.len() { "whole" } else { "cut" };
    Ok(format!("opened:{cut}:verify={verified}"))
}
