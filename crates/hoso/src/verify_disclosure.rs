//! `hoso verify-disclosure FILE --data-dir DIR`: checks a published disclosure offline, against a
//! copy of the log: its signature, the log's head hash at the position it names, and its figures
//! recomputed from this log at that position (docs/disclosure.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hoso_disclosure::{Format, Seal};
use hoso_projections::{Dossiers, figures};
use hoso_store::{EMPTY_HEAD_HASH, EventStore, GENESIS_HASH, SledOptions, SledStore, next_head_hash, record_hash};

use crate::out::outln;

/// How many lines or cells that differ are shown.
const SHOWN: usize = 5;

/// `hoso verify-disclosure`.
#[derive(clap::Args)]
pub(crate) struct VerifyDisclosureArgs {
    /// The disclosure as published (html, csv, json or xlsx).
    file: PathBuf,
    /// A copy of the server's data directory (or of its `store` directory). Never the running
    /// server's own: the store is opened, and the server holds its lock.
    #[arg(long)]
    data_dir: PathBuf,
    /// The province's published public key (PEM, or 64 hex digits). Without it, the signature is
    /// checked against the key the document names, which proves nothing about who signed it.
    #[arg(long)]
    public_key: Option<PathBuf>,
}

/// The outcome of one check: its answer, and whether it passed.
struct Check {
    passed: bool,
    answer: String,
}

impl Check {
    fn pass(answer: String) -> Check {
        Check { passed: true, answer }
    }

    fn fail(answer: String) -> Check {
        Check { passed: false, answer }
    }
}

pub(crate) fn run(args: VerifyDisclosureArgs) -> Result<()> {
    let document = std::fs::read(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let (format, seal) =
        Seal::read(&document).with_context(|| format!("{} cannot be verified", args.file.display()))?;
    let statement = &seal.statement;
    let (period, cutoff) = (statement.period()?, statement.cutoff()?);
    outln!(
        "{}: the {} disclosure of {}, {period}, as of {}, counting the first {} events of the log",
        args.file.display(),
        format_name(format),
        statement.province,
        statement.cutoff,
        statement.log_position
    );
    let signature = check_signature(&seal, args.public_key.as_deref())?;
    outln!("signature: {}", signature.answer);

    let store_dir = if args.data_dir.join("store").is_dir() {
        args.data_dir.join("store")
    } else {
        args.data_dir.clone()
    };
    if !store_dir.is_dir() {
        bail!(
            "{} is not a directory: give a copy of the server's data directory",
            args.data_dir.display()
        );
    }
    let store = SledStore::open(&store_dir, SledOptions::default()).with_context(|| {
        format!(
            "cannot open the store in {} (a running server's own store is locked: give a copy of its data directory)",
            store_dir.display()
        )
    })?;
    let runtime = crate::client::runtime()?;
    let result = runtime.block_on(replay(&store, statement.log_position));
    store.close();
    let (log, model) = result?;
    let log = match log {
        Ok(head) if head == statement.head_hash()? => Check::pass(format!(
            "the first {} events of this log hash to {}, as the disclosure names",
            statement.log_position, statement.head_hash
        )),
        Ok(head) => Check::fail(format!(
            "DIFFERS: the first {} events of this log hash to {}, but the disclosure names {}: this log's history up to that position is not the one the disclosure counted",
            statement.log_position,
            hex::encode(head),
            statement.head_hash
        )),
        Err(problem) => Check::fail(format!("DIFFERS: {problem}")),
    };
    outln!("log: {}", log.answer);

    let current = figures::report(&model, period, cutoff);
    let previous = figures::report(&model, period.previous(), cutoff);
    let options = statement.options()?;
    let figures_hash = hoso_disclosure::signature::figures_sha256(&current, &previous, &options)?;
    let again = hoso_disclosure::render_again(&current, &previous, &seal)?;
    let figures = match (figures_hash == statement.figures_sha256, again == document) {
        (true, true) => Check::pass(format!(
            "every figure of the document is the one this log gives at position {} (the document renders again byte for byte)",
            statement.log_position
        )),
        (signed, _) => {
            let mut answer = String::from("DIFFER: ");
            if signed {
                answer.push_str(
                    "the figures the statement signed are those this log gives, but the document shows others",
                );
            } else {
                answer.push_str(&format!(
                    "this log gives figures whose hash is {figures_hash}, not the {} the statement signed",
                    statement.figures_sha256
                ));
            }
            let differences = differences(format, &document, &again);
            if !differences.is_empty() {
                answer.push_str("; the document against what this log gives:");
                for difference in differences {
                    answer.push_str("\n  ");
                    answer.push_str(&difference);
                }
            }
            Check::fail(answer)
        }
    };
    outln!("figures: {}", figures.answer);

    let failed: Vec<&str> = [("signature", &signature), ("log", &log), ("figures", &figures)]
        .into_iter()
        .filter(|(_, check)| !check.passed)
        .map(|(name, _)| name)
        .collect();
    if !failed.is_empty() {
        bail!("the disclosure does not verify: {} (see above)", failed.join(", "));
    }
    outln!("verified: signature, log and figures");
    Ok(())
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Csv => "csv",
        Format::Html => "html",
        Format::Xlsx => "xlsx",
    }
}

fn check_signature(seal: &Seal, public_key: Option<&Path>) -> Result<Check> {
    let province = match public_key {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                hoso_disclosure::signature::public_key_from_text(&text)
                    .with_context(|| format!("--public-key {}", path.display()))?,
            )
        }
        None => None,
    };
    Ok(match (seal.check_signature(), province) {
        (Err(hoso_disclosure::SealError::Unsigned), _) => {
            Check::fail("NOT SIGNED: the server that made it had no [disclosure] signing_key_file".to_owned())
        }
        (Err(err), _) => Check::fail(format!("INVALID: {err}")),
        (Ok(key), Some(province)) if key != province => Check::fail(format!(
            "NOT THE PROVINCE'S: the document is signed by key {}, not by the province's key {} (--public-key)",
            hex::encode(key.as_bytes()),
            hex::encode(province.as_bytes())
        )),
        (Ok(key), Some(_)) => Check::pass(format!(
            "valid, by the province's key {} (--public-key)",
            hex::encode(key.as_bytes())
        )),
        (Ok(key), None) => Check::pass(format!(
            "valid, by the key the document names, {}; give --public-key with the province's published key to know it is the province's",
            hex::encode(key.as_bytes())
        )),
    })
}

/// Reads the first `position` events of `$all`: checks each record against its stream's chain,
/// hashes the log's head and folds the model. The head hash, or what is wrong with the log.
async fn replay<S: EventStore>(store: &S, position: u64) -> Result<(Result<[u8; 32], String>, Dossiers)> {
    const BATCH: usize = 4096;
    let mut model = Dossiers::new();
    let mut chains: HashMap<String, [u8; 32]> = HashMap::new();
    let mut head = EMPTY_HEAD_HASH;
    let mut damage = None;
    let mut next = 0;
    while next < position {
        let want = usize::try_from(position - next).unwrap_or(usize::MAX).min(BATCH);
        let batch = store.read_all(next, want).await.context("cannot read the log")?;
        if batch.is_empty() {
            let problem = format!("this log has {next} events; the disclosure counted {position}");
            return Ok((Err(damage.unwrap_or(problem)), model));
        }
        for event in batch.iter().take(want) {
            let previous = chains.get(&event.stream_id).copied().unwrap_or(GENESIS_HASH);
            if damage.is_none() && record_hash(&previous, event) != event.hash {
                damage = Some(format!(
                    "the event at position {} (stream {}, version {}) does not match its chain hash: this copy of the log is damaged or altered there",
                    event.position, event.stream_id, event.version
                ));
            }
            chains.insert(event.stream_id.clone(), event.hash);
            head = next_head_hash(&head, event);
            model
                .apply(event)
                .with_context(|| format!("the event at position {} cannot be counted", event.position))?;
            next += 1;
        }
    }
    Ok((damage.map_or(Ok(head), Err), model))
}

/// Where the file and the document rendered again from this log differ: lines of a text
/// format, cells of a workbook.
fn differences(format: Format, file: &[u8], again: &[u8]) -> Vec<String> {
    match format {
        Format::Xlsx => xlsx_differences(file, again).unwrap_or_else(|err| {
            vec![format!(
                "the workbook's bytes differ (its cells cannot be compared: {err})"
            )]
        }),
        _ => text_differences(&String::from_utf8_lossy(file), &String::from_utf8_lossy(again)),
    }
}

fn excerpt(line: &str, at: usize) -> String {
    let mut start = at.saturating_sub(40).min(line.len());
    while !line.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + 40).min(line.len());
    while !line.is_char_boundary(end) {
        end += 1;
    }
    format!("…{}…", &line[start..end])
}

fn text_differences(file: &str, again: &str) -> Vec<String> {
    let (file_lines, log_lines): (Vec<&str>, Vec<&str>) = (file.lines().collect(), again.lines().collect());
    let mut out = Vec::new();
    let mut count = 0;
    for (i, (a, b)) in file_lines.iter().zip(&log_lines).enumerate() {
        if a != b {
            count += 1;
            if out.len() < SHOWN {
                let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                out.push(format!(
                    "line {}: the file has «{}», this log gives «{}»",
                    i + 1,
                    excerpt(a, at),
                    excerpt(b, at)
                ));
            }
        }
    }
    if count > SHOWN {
        out.push(format!("… and {} more lines", count - SHOWN));
    }
    if file_lines.len() != log_lines.len() {
        out.push(format!(
            "the file has {} lines, this log gives {}",
            file_lines.len(),
            log_lines.len()
        ));
    }
    out
}

fn xlsx_differences(file: &[u8], again: &[u8]) -> Result<Vec<String>, calamine::XlsxError> {
    use calamine::{Reader, Xlsx};
    let mut file = Xlsx::new(std::io::Cursor::new(file))?;
    let mut again = Xlsx::new(std::io::Cursor::new(again))?;
    let mut out = Vec::new();
    let mut count = 0;
    let names = again.sheet_names();
    for name in file.sheet_names().iter().filter(|n| !names.contains(n)) {
        out.push(format!("sheet {name:?} is not in what this log gives"));
    }
    for name in names {
        let Ok(theirs) = file.worksheet_range(&name) else {
            out.push(format!("sheet {name:?} is missing from the file"));
            continue;
        };
        let ours = again.worksheet_range(&name)?;
        let (height, width) = {
            let (a, b) = (theirs.end().unwrap_or_default(), ours.end().unwrap_or_default());
            (a.0.max(b.0) + 1, a.1.max(b.1) + 1)
        };
        for row in 0..height {
            for column in 0..width {
                let (a, b) = (theirs.get_value((row, column)), ours.get_value((row, column)));
                if a != b {
                    count += 1;
                    if out.len() < SHOWN {
                        let show = |c: Option<&calamine::Data>| c.map(ToString::to_string).unwrap_or_default();
                        out.push(format!(
                            "sheet {name:?}, cell {}{}: the file has «{}», this log gives «{}»",
                            column_name(column),
                            row + 1,
                            show(a),
                            show(b)
                        ));
                    }
                }
            }
        }
    }
    if count > SHOWN {
        out.push(format!("… and {} more cells", count - SHOWN));
    }
    Ok(out)
}

/// A column's letters: 0 is A, 26 is AA.
fn column_name(mut column: u32) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (column % 26) as u8);
        if column < 26 {
            break;
        }
        column = column / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

#[cfg(test)]
mod tests;
