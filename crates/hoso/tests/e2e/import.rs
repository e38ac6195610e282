//! `hoso import`: rules checked, one dossier all or nothing, rejects named, idempotent.

use std::process::Command;

use hoso_api::pb;

use crate::harness::*;

fn line(code: &str, second: &str) -> String {
    format!(
        r#"{{"source": "motcua-v1", "commands": [
  {{"sourceActor": "nguyenvana", "receiveDossier": {{"command": {{"occurredAt": "2026-06-09T08:30:00+07:00"}},
    "receiptCode": "{code}",
    "procedure": {{"code": "1.001234", "name": "Cấp giấy phép", "statutoryTime": {{"amount": 3, "unit": "TIME_UNIT_WORKING_DAYS"}}}},
    "receivingDesk": "G09.20", "handlingAgency": "000.00.04.G18", "channel": "CHANNEL_ONLINE",
    "applicantRef": "5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b"}}}},
  {second}
]}}"#
    )
    .replace('\n', " ")
}

fn run_import(server: &Server, file: &std::path::Path, rejects: &std::path::Path) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoso"))
        .arg("import")
        .arg(file)
        .arg("--rejects")
        .arg(rejects)
        .env("HOSO_SERVER", format!("http://{}", server.addr))
        .env("HOSO_TOKEN", server.token(Role::Operator))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_checks_every_rule_writes_each_dossier_whole_and_is_idempotent() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let good = receipt_code();
    let broken = receipt_code();
    let approve = r#"{"sourceActor": "tranthib", "processDossier": {"command": {"occurredAt": "2026-06-10T10:00:00+07:00"}, "step": "PROCESSING_STEP_APPROVED"}}"#;
    let early_return = r#"{"returnResult": {"command": {"occurredAt": "2026-06-10T10:00:00+07:00"}, "method": "RETURN_METHOD_AT_DESK"}}"#;
    let file = dir.path().join("histories.ndjson");
    std::fs::write(
        &file,
        [
            line(&good, approve),
            line(&broken, early_return),
            "{not json".to_owned(),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let rejects = dir.path().join("rejects.ndjson");

    let (code, out, err) = run_import(&server, &file, &rejects);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("imported 1 dossiers (2 events)") && out.contains("2 lines rejected"),
        "{out}"
    );
    let rejected: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejected.len(), 2);
    let broken_line = rejected.iter().find(|r| r["line"] == 2).unwrap();
    assert_eq!(broken_line["receipt_code"], broken.as_str());
    assert!(
        broken_line["reason"].as_str().unwrap().starts_with("commands[1]:"),
        "{broken_line}"
    );
    assert!(rejected.iter().any(|r| r["line"] == 3));
    assert_eq!(server.head().await, 2, "the broken dossier wrote nothing");

    let mut query = server.query(Role::Auditor).await;
    let dossier = query
        .get_dossier(pb::GetDossierRequest {
            dossier: by_code(&good),
        })
        .await
        .unwrap()
        .into_inner()
        .dossier
        .unwrap();
    assert_eq!(dossier.status, pb::DossierStatus::Processed as i32);
    let status = query
        .get_dossier(pb::GetDossierRequest {
            dossier: by_code(&broken),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);

    let mut audit = server.audit(Role::Auditor).await;
    let mut replay = audit
        .replay_dossier(pb::ReplayDossierRequest {
            dossier: by_code(&good),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    let approval = {
        replay.message().await.unwrap();
        replay.message().await.unwrap().unwrap().event.unwrap()
    };
    let data: serde_json::Value = serde_json::from_str(&approval.data_json).unwrap();
    let metadata: serde_json::Value = serde_json::from_str(&approval.metadata_json).unwrap();
    assert_eq!(data["officer"], "tranthib", "the officer of the old system");
    assert_eq!(
        (metadata["imported_from"].as_str(), metadata["actor"].as_str()),
        (Some("motcua-v1"), Some("dev.operator"))
    );

    // Again: nothing new.
    let (code, out, _) = run_import(&server, &file, &rejects);
    assert_eq!(code, Some(2));
    assert!(
        out.contains("imported 0 dossiers (0 events); 1 were already there"),
        "{out}"
    );
    assert_eq!(server.head().await, 2);

    // Exported again after the result was returned: only the new event is added.
    let returned = r#"{"returnResult": {"command": {"occurredAt": "2026-06-10T15:00:00+07:00"}, "method": "RETURN_METHOD_AT_DESK"}}"#;
    std::fs::write(&file, line(&good, &format!("{approve}, {returned}")) + "\n").unwrap();
    let (code, out, err) = run_import(&server, &file, &rejects);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("imported 1 dossiers (1 events)"), "{out}");
    assert_eq!(server.head().await, 3);

    // A different history under a receipt code already taken is refused.
    let withdrawn = r#"{"withdrawDossier": {"command": {"occurredAt": "2026-06-09T10:00:00+07:00"}, "reason": "rút"}}"#;
    std::fs::write(&file, line(&good, withdrawn) + "\n").unwrap();
    let (code, _, _) = run_import(&server, &file, &rejects);
    assert_eq!(code, Some(2));
    assert!(std::fs::read_to_string(&rejects).unwrap().contains("another history"));
    assert_eq!(server.head().await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_keeps_its_own_procedure_values_and_lists_those_that_differ_from_the_catalogue() {
    let server = Server::start_with_config("allow_procedures_outside_catalogue = false\n");
    server
        .admin(Role::Operator)
        .await
        .load_catalogue(pb::LoadCatalogueRequest {
            decision: "100/QĐ-UBND".to_owned(),
            effective_from: "2026-01-01".to_owned(),
            entries: vec![pb::CatalogueEntry {
                code: "1.001234".to_owned(),
                name: "Cấp giấy phép xây dựng".to_owned(),
                statutory_time: Some(pb::StatutoryTime {
                    amount: 20,
                    unit: pb::TimeUnit::WorkingDays.into(),
                }),
                handling_agencies: vec![OWN_AGENCY.to_owned()],
                ..Default::default()
            }],
            abolished: vec![],
            load_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (differs, unknown) = (receipt_code(), receipt_code());
    let approve = r#"{"processDossier": {"command": {"occurredAt": "2026-06-10T10:00:00+07:00"}, "step": "PROCESSING_STEP_APPROVED"}}"#;
    let file = dir.path().join("histories.ndjson");
    std::fs::write(
        &file,
        [
            line(&differs, approve),
            line(&unknown, approve).replace("1.001234", "1.009999"),
        ]
        .join("\n")
            + "\n",
    )
    .unwrap();
    let differences = dir.path().join("differences.ndjson");
    let output = Command::new(env!("CARGO_BIN_EXE_hoso"))
        .arg("import")
        .arg(&file)
        .arg("--rejects")
        .arg(dir.path().join("rejects.ndjson"))
        .arg("--differences")
        .arg(&differences)
        .env("HOSO_SERVER", format!("http://{}", server.addr))
        .env("HOSO_TOKEN", server.token(Role::Operator))
        .output()
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("imported 2 dossiers (4 events)"), "{out}");
    assert!(
        out.contains("2 dossiers have procedure values that differ from the catalogue in force at receipt"),
        "{out}"
    );
    let listed = std::fs::read_to_string(&differences).unwrap();
    let lines: Vec<serde_json::Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |code: &str| {
        lines
            .iter()
            .find(|l| l["receipt_code"] == code)
            .unwrap_or_else(|| panic!("{code} in {listed}"))["differences"]
            .to_string()
    };
    assert!(of(&differs).contains("procedure.name"), "{listed}");
    assert!(
        of(&differs).contains(
            "procedure.statutory_time: 3 working days in the history, 20 working days in decision 100/QĐ-UBND"
        ),
        "{listed}"
    );
    assert!(
        of(&unknown).contains("procedure 1.009999 is not in the catalogue"),
        "{listed}"
    );

    // History is history: the dossier keeps the 3 working days it was received with.
    let dossier = server
        .query(Role::Auditor)
        .await
        .get_dossier(pb::GetDossierRequest {
            dossier: by_code(&differs),
        })
        .await
        .unwrap()
        .into_inner()
        .dossier
        .unwrap();
    assert_eq!(dossier.procedure_source, i32::from(pb::ProcedureSource::Declared));
    assert_eq!(dossier.procedure.unwrap().statutory_time.unwrap().amount, 3);
}
