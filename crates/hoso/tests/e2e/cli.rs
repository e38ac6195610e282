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

/// The sample catalogue the README's walkthrough loads.
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/catalogue-sample.csv");

#[tokio::test(flavor = "multi_thread")]
async fn the_walkthrough_commands_receive_replay_verify_and_report_refusals() {
    let server = Server::start_with_config("allow_procedures_outside_catalogue = false\n");
    let load = [
        "catalogue",
        "load",
        SAMPLE,
        "--decision",
        "1234/QĐ-UBND",
        "--effective",
        "2026-01-01",
    ];
    let (ok, _, err) = hoso(&server, Role::Desk, &load);
    assert!(!ok && err.contains("PermissionDenied"), "{err}");
    let (ok, out, err) = hoso(&server, Role::Operator, &load);
    assert!(ok, "{err}");
    assert!(
        out.contains("decision 1234/QĐ-UBND is in force from 2026-01-01: 4 procedures published, 1 abolished"),
        "{out}"
    );
    let (ok, out, err) = hoso(&server, Role::Operator, &load);
    assert!(ok && out.contains("nothing was written"), "{out} {err}");
    let (ok, out, err) = hoso(&server, Role::Desk, &["catalogue", "show", "1.001234"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("statutory time    20 working days") && out.contains("000.00.04.G18"),
        "{out}"
    );
    let (ok, out, err) = hoso(&server, Role::Desk, &["catalogue", "list"]);
    assert!(ok && out.contains("4 procedures in force"), "{out} {err}");
    let (ok, out, err) = hoso(&server, Role::Desk, &["calendar", "show", "2026"]);
    assert!(
        ok && out.contains("notice calendar 2026, version 1") && out.contains("Mon 27/04"),
        "{out} {err}"
    );

    let code = receipt_code();
    let receive = format!(
        r#"{{"command": {{"commandId": "{}", "occurredAt": "2026-06-09T08:30:00+07:00"}},
            "receiptCode": "{code}", "procedure": {{"code": "1.001234"}},
            "handlingAgency": "000.00.04.G18", "channel": "CHANNEL_ONLINE",
            "applicantRef": "5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b"}}"#,
        uuid::Uuid::new_v4()
    );
    let (ok, out, err) = hoso(&server, Role::Desk, &["call", "DeskService/ReceiveDossier", &receive]);
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["outcome"]["dueAt"], "2026-07-07T10:00:00Z");

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
    assert!(out.starts_with("ok: 3 records in 2 streams verified"), "{out}");
    let (ok, out, err) = hoso(&server, Role::Auditor, &["verify", &code]);
    assert!(
        ok && out.starts_with("ok: 2 records in 1 stream verified"),
        "{out} {err}"
    );

    // --json: every time in RFC 3339 at UTC+7, the status by its name.
    let (ok, out, err) = hoso(&server, Role::Auditor, &["replay", &code, "--json"]);
    assert!(ok, "{err}");
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["occurred_at"], "2026-06-09T08:30:00+07:00");
    assert_eq!(first["status_after"], "DOSSIER_STATUS_RECEIVED");
    // An as-of before anything was recorded says what as-of means.
    let (ok, out, err) = hoso(
        &server,
        Role::Auditor,
        &["replay", &code, "--as-of", "2026-06-10T09:00:00+07:00"],
    );
    assert!(
        ok && out.contains("--as-of is about when events were recorded"),
        "{out} {err}"
    );

    let (ok, out, err) = hoso(&server, Role::Operator, &["status"]);
    assert!(ok, "{err}");
    assert!(out.contains("events in the log 3"), "{out}");
    assert!(out.contains("catalogue         version 1"), "{out}");

    assert!(
        out.contains("projection        3 of 3 events applied (lag 0), 1 dossier\n"),
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
    assert!(out.contains("rebuilt from 3 events"), "{out}");

    let (ok, _, err) = hoso(&server, Role::Desk, &["status"]);
    assert!(!ok && err.contains("PermissionDenied"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_commands_load_a_notice_and_list_what_the_catalogue_lacks() {
    // This server accepts procedures outside its (empty) catalogue: they are listed.
    let server = Server::start();
    let (ok, out, err) = hoso(&server, Role::Auditor, &["catalogue", "missing"]);
    assert!(
        ok && out.contains("no dossier was received outside the catalogue"),
        "{out} {err}"
    );
    received(&server).await;
    received(&server).await;
    let (ok, out, err) = hoso(&server, Role::Auditor, &["catalogue", "missing"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("1.001234") && out.contains("       2  G09.20-20260609-"),
        "{out}"
    );

    let (ok, out, err) = hoso(&server, Role::Desk, &["calendar", "show", "2028"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("PROVISIONAL calendar 2028, version 0"), "{out}");
    // Tết 2028 is Wednesday 26 January: the 25th to the 29th are off.
    assert!(
        out.contains("Tue 25/01, Wed 26/01, Thu 27/01, Fri 28/01, Mon 31/01"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let notice = dir.path().join("tb-2028.json");
    std::fs::write(
        &notice,
        r#"{"year": 2028, "version": 1, "source": "TB 2028 (test)", "days_off": ["2028-01-03"], "working_saturdays": []}"#,
    )
    .unwrap();
    let notice = notice.to_str().unwrap();
    let (ok, _, err) = hoso(&server, Role::Auditor, &["calendar", "load", notice]);
    assert!(!ok && err.contains("PermissionDenied"), "{err}");
    let (ok, out, err) = hoso(&server, Role::Operator, &["calendar", "load", notice]);
    assert!(ok, "{err}");
    assert!(
        out.contains("the 2028 holiday notice, version 1, is in force") && out.contains("the provisional calendar"),
        "{out}"
    );
    let (ok, out, err) = hoso(&server, Role::Desk, &["calendar", "show", "2028"]);
    assert!(
        ok && out.starts_with("notice calendar 2028, version 1") && out.contains("dev.operator"),
        "{out} {err}"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"year": 2028}"#).unwrap();
    let (ok, _, err) = hoso(&server, Role::Operator, &["calendar", "load", bad.to_str().unwrap()]);
    assert!(
        !ok && err.contains("InvalidArgument") && err.contains("table_json"),
        "{err}"
    );
}

/// Runs `hoso` with its standard output a pipe whose reader has already gone, as in
/// `hoso replay X | head` once `head` has its lines; returns its exit status and stderr.
fn into_closed_pipe(server: &Server, role: Role, args: &[&str]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_hoso"))
        .args(args)
        .env("HOSO_SERVER", format!("http://{}", server.addr))
        .env("HOSO_TOKEN", server.token(role))
        .env("RUST_BACKTRACE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .output()
        .unwrap();
    (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_subcommand_exits_quietly_when_its_reader_closes_the_pipe() {
    let server = Server::start();
    let code = received(&server).await;
    let get = format!("{{\"dossier\": {{\"receiptCode\": \"{code}\"}}}}");
    let runs: Vec<(Role, Vec<&str>)> = vec![
        (Role::Auditor, vec!["replay", &code]),
        (Role::Auditor, vec!["replay", &code, "--json"]),
        (Role::Auditor, vec!["verify"]),
        (Role::Operator, vec!["status"]),
        (Role::Auditor, vec!["figures", "--month", "2026-06"]),
        (Role::Auditor, vec!["figures", "--month", "2026-06", "--json"]),
        (Role::Operator, vec!["rebuild"]),
        (Role::Auditor, vec!["call", "list"]),
        (Role::Auditor, vec!["call", "DossierQueryService/GetDossier", &get]),
        (Role::Auditor, vec!["calendar", "show", "2026"]),
        (Role::Auditor, vec!["catalogue", "list"]),
        (Role::Auditor, vec!["catalogue", "missing"]),
        (Role::Integration, vec!["tail"]),
        (Role::Integration, vec!["tail", "--json", "--no-follow"]),
        (
            Role::Auditor,
            vec!["token", "new", "--role", "auditor", "--subject", "kiểm toán viên"],
        ),
    ];
    for (role, args) in runs {
        let (status, stderr) = into_closed_pipe(&server, role, &args);
        assert!(
            status.success() && !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "hoso {}: {status}\n{stderr}",
            args.join(" ")
        );
    }
}
