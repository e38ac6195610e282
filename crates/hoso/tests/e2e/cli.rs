//! The command-line clients, as the README's walkthrough uses them.

use std::process::Command;

use crate::harness::*;

fn hoso(server: &Server, role: Role, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoso"))
        .args(args)
        .env("HOSO_SERVER", format!("http://{}", server.addr))
        .env("HOSO_TOKEN", server.token(role))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_walkthrough_commands_receive_replay_verify_and_report_refusals() {
    let server = Server::start();
    let code = receipt_code();
    let receive = format!(
        r#"{{"command": {{"commandId": "{}", "occurredAt": "2026-06-09T08:30:00+07:00"}},
            "receiptCode": "{code}",
            "procedure": {{"code": "1.001234", "name": "Cấp giấy phép xây dựng",
                           "statutoryTime": {{"amount": 3, "unit": "TIME_UNIT_WORKING_DAYS"}}, "feeVnd": 50000}},
            "handlingAgency": "000.00.04.G18", "channel": "CHANNEL_ONLINE",
            "applicantRef": "5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b"}}"#,
        uuid::Uuid::new_v4()
    );
    let (ok, out, err) = hoso(&server, Role::Desk, &["call", "DeskService/ReceiveDossier", &receive]);
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["outcome"]["dueAt"], "2026-06-12T10:00:00Z");

    let approve = format!(
        r#"{{"command": {{"commandId": "{}", "occurredAt": "2026-06-10T09:00:00+07:00"}},
            "dossier": {{"receiptCode": "{code}"}}, "step": "PROCESSING_STEP_APPROVED"}}"#,
        uuid::Uuid::new_v4()
    );
    let (ok, _, err) = hoso(&server, Role::Agency, &["call", "DeskService/ProcessDossier", &approve]);
    assert!(ok, "{err}");

    // A refusal names the rule and exits non-zero.
    let (ok, out, err) = hoso(&server, Role::Desk, &["call", "DeskService/ReceiveDossier", &receive]);
    assert!(
        ok && out.contains(r#""replayed": true"#),
        "a retry of the same command is answered again: {out} {err}"
    );
    let (ok, _, err) = hoso(&server, Role::Desk, &["call", "DeskService/ProcessDossier", &approve]);
    assert!(!ok && err.contains("PermissionDenied"), "{err}");

    let (ok, out, err) = hoso(&server, Role::Auditor, &["replay", &code]);
    assert!(ok, "{err}");
    assert!(
        out.contains("DossierReceived") && out.contains("DossierProcessed"),
        "{out}"
    );
    assert!(out.contains("dev.agency-officer"), "{out}");

    let (ok, out, err) = hoso(&server, Role::Auditor, &["verify"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ok: 2 records"), "{out}");

    let (ok, out, err) = hoso(&server, Role::Operator, &["status"]);
    assert!(ok, "{err}");
    assert!(out.contains("events in the log 2"), "{out}");

    assert!(
        out.contains("projection        2 of 2 events applied (lag 0), 1 dossiers"),
        "{out}"
    );

    let (ok, out, err) = hoso(&server, Role::Auditor, &["figures", "--month", "2026-06"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Processing on time") && out.contains("100.00%       1/1"),
        "{out}"
    );
    assert!(
        out.contains("Publication and transparency") && out.contains("absent"),
        "{out}"
    );

    let (ok, out, err) = hoso(&server, Role::Operator, &["rebuild"]);
    assert!(ok, "{err}");
    assert!(out.contains("rebuilt from 2 events"), "{out}");

    let (ok, _, err) = hoso(&server, Role::Desk, &["status"]);
    assert!(!ok && err.contains("PermissionDenied"), "{err}");
}
