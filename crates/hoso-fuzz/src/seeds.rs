//! The seed corpus, written by `hoso-fuzz seeds`: realistic inputs (generated dossier
//! histories, their requests in protobuf, snapshots folded from them) that mutations start
//! from. Written once and kept in the repository; rerun only when a format changes.

use std::path::Path;

use anyhow::{Context as _, Result};
use hoso_api::import_line::parse_import_line;
use hoso_api::pb;
use hoso_gen::{Params, Province, Rates, Scale, Workload};
use hoso_projections::Dossiers;
use hoso_store::{EventStore, ExpectedVersion, Json, MemoryStore, NewEvent};
use prost::Message as _;

use crate::targets::Target;

/// How many generated histories seed the import, convert and snapshot targets.
const HISTORIES: usize = 8;

/// Generated import lines: of the first dossiers of a generated month, those with the most
/// varied number of commands.
fn import_lines() -> Result<Vec<String>> {
    let province = Province::new(1);
    let params = Params {
        seed: 1,
        start: chrono::NaiveDate::from_ymd_opt(2025, 9, 1).context("a valid date")?,
        months: 1,
        scale: Scale::Province,
        rates: Rates::default(),
    };
    let mut by_length = std::collections::BTreeMap::new();
    for dossier in Workload::new(&province, params, hoso_domain::BusinessCalendar::vietnam()).take(3000) {
        by_length
            .entry(dossier.commands.len())
            .or_insert_with(|| hoso_gen::import_line(&dossier, "fuzz-seed"));
    }
    by_length
        .into_values()
        .rev()
        .take(HISTORIES)
        .map(|line| line.map_err(|err| anyhow::anyhow!("a generated dossier has no import line: {err}")))
        .collect()
}

/// Writes every target's seed corpus under `root/corpus/<target>/`, replacing what is there.
pub fn write(root: &Path) -> Result<()> {
    let lines = import_lines()?;
    let mut files: Vec<(Target, String, Vec<u8>)> = Vec::new();
    let mut snapshot_model = Dossiers::new();
    let store = MemoryStore::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .context("cannot start a tokio runtime")?;
    for (i, line) in lines.iter().enumerate() {
        files.push((
            Target::ImportLine,
            format!("history-{i}.json"),
            line.clone().into_bytes(),
        ));
        let request =
            parse_import_line(line).map_err(|err| anyhow::anyhow!("a generated line does not parse: {err}"))?;
        let receipt_code = match request.commands.first().and_then(|c| c.command.as_ref()) {
            Some(pb::import_command::Command::ReceiveDossier(r)) => r.receipt_code.clone(),
            _ => anyhow::bail!("a generated history does not start with its receipt"),
        };
        for (index, command) in request.commands.iter().enumerate() {
            if let Some(c) = command.command.clone() {
                let filled = pb::ImportCommand {
                    command: Some(crate::targets::as_imported(c, index, &receipt_code)),
                    source_actor: String::new(),
                };
                files.push((
                    Target::Convert,
                    format!("history-{i}-command-{index}.pb"),
                    filled.encode_to_vec(),
                ));
            }
        }
        let events = crate::targets::decide_history(request)
            .map_err(|err| anyhow::anyhow!("{err}"))?
            .map_err(|err| anyhow::anyhow!("a generated history is refused: {err}"))?;
        let new: Vec<NewEvent> = events
            .iter()
            .enumerate()
            .map(|(k, event)| NewEvent {
                event_id: uuid::Uuid::from_u128(((i as u128) << 32) + k as u128 + 1),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data: Json::from(event.to_json()),
                metadata: Json::from(serde_json::json!({})),
                occurred_at: event.occurred_at(),
            })
            .collect();
        runtime
            .block_on(store.append(&format!("dossier-{receipt_code}"), ExpectedVersion::NoStream, new))
            .context("cannot append a generated history")?;
    }
    for record in runtime
        .block_on(store.read_all(0, usize::MAX))
        .context("cannot read the histories")?
    {
        snapshot_model
            .apply(&record)
            .map_err(|err| anyhow::anyhow!("a generated event does not fold: {err}"))?;
    }
    let full = snapshot_model.encode_snapshot(crate::targets::SNAPSHOT_STORE_ID);
    files.push((Target::Snapshot, "full.snap".to_owned(), full.clone()));
    files.push((Target::Snapshot, "payload.bin".to_owned(), full[24..].to_vec()));
    files.push((
        Target::Snapshot,
        "empty.snap".to_owned(),
        Dossiers::new().encode_snapshot(crate::targets::SNAPSHOT_STORE_ID),
    ));
    // Damage lists: file, kind, offset (4 bytes), value, length; see `store_open`.
    let damages: [(&str, &[u8]); 6] = [
        ("none", b""),
        ("flip-first-file", &[0, 0, 100, 0, 0, 0, 0x10, 0]),
        ("cut-a-file", &[3, 1, 200, 0, 0, 0, 0, 0]),
        ("append-zeros", &[5, 2, 0, 0, 0, 0, 0, 40]),
        ("remove-a-file", &[1, 5, 0, 0, 0, 0, 0, 0]),
        ("zero-a-range", &[7, 3, 64, 0, 0, 0, 0, 255]),
    ];
    for (name, bytes) in damages {
        files.push((Target::StoreOpen, format!("{name}.bin"), bytes.to_vec()));
    }
    let dates: [(&str, &[u8]); 4] = [
        (
            "working-days",
            &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0],
        ),
        (
            "working-hours",
            &[1, 2, 3, 4, 5, 6, 7, 0, 1, 1, 1, 8, 0, 0, 0, 40, 0, 0, 0],
        ),
        (
            "calendar-days",
            &[9, 9, 9, 9, 9, 9, 0, 0, 1, 2, 1, 30, 0, 0, 0, 0, 1, 0, 0],
        ),
        (
            "far-future",
            &[255, 255, 255, 255, 255, 255, 255, 127, 0, 0, 0, 255, 255, 255, 255],
        ),
    ];
    for (name, bytes) in dates {
        files.push((Target::DueDate, format!("{name}.bin"), bytes.to_vec()));
    }
    for target in Target::ALL {
        let dir = root.join("corpus").join(target.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for (target, name, bytes) in files {
        let path = root.join("corpus").join(target.name()).join(name);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
