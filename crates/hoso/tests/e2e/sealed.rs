//! A signed disclosure checked offline by `hoso verify-disclosure` against a copy of the log: it
//! verifies as published (HTML, XLSX, CSV), and a changed figure (in the HTML, the CSV and a cell
//! of the workbook), a changed signature, another key and a log whose
//! history differs each fail, naming what differs.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{Role, Server, received};

fn hoso(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoso")).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `hoso verify-disclosure FILE --data-dir DIR --public-key KEY`: whether it verified, and what it said.
fn verify(file: &Path, data: &Path, key: &Path) -> (bool, String) {
    let output = hoso(&[
        "verify-disclosure",
        path(file),
        "--data-dir",
        path(data),
        "--public-key",
        path(key),
    ]);
    (output.status.success(), text(&output))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_disclosure_verifies_offline_and_each_kind_of_change_is_named() {
    let keys = tempfile::tempdir().unwrap();
    let (key, other) = (keys.path().join("province.key"), keys.path().join("other.key"));
    for k in [&key, &other] {
        let made = hoso(&["disclosure-key", "new", path(k)]);
        let said = text(&made);
        assert!(made.status.success(), "{said}");
        let secret = std::fs::read_to_string(k).unwrap();
        assert!(secret.starts_with("-----BEGIN PRIVATE KEY-----"), "{secret}");
        assert!(
            !said.contains(secret.lines().nth(1).unwrap()),
            "the secret is printed: {said}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(k).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
    let again = hoso(&["disclosure-key", "new", path(&key)]);
    assert!(
        !again.status.success() && text(&again).contains("exists"),
        "{}",
        text(&again)
    );
    let (public, other_public) = (keys.path().join("province.key.pub"), keys.path().join("other.key.pub"));

    let config = format!(
        "province_name = \"Thái Nguyên\"\n[disclosure]\nsigning_key_file = {:?}\n",
        path(&key)
    );
    let mut server = Server::start_with_config(&config);
    for _ in 0..3 {
        received(&server).await;
    }
    let out = tempfile::tempdir().unwrap();
    let file = |name: &str| out.path().join(name);
    for (format, name) in [("html", "june.html"), ("xlsx", "june.xlsx"), ("csv", "june.csv")] {
        let made = Command::new(env!("CARGO_BIN_EXE_hoso"))
            .args([
                "disclose",
                "--month",
                "2026-06",
                "--format",
                format,
                "--out",
                path(&file(name)),
            ])
            .env("HOSO_SERVER", format!("http://{}", server.addr))
            .env("HOSO_TOKEN", server.token(Role::Auditor))
            .output()
            .unwrap();
        assert!(made.status.success(), "{}", text(&made));
    }
    let html = std::fs::read_to_string(file("june.html")).unwrap();
    assert!(
        html.contains("Kiểm chứng số liệu") && html.contains(r#"<script type="application/json" id="hoso-seal">"#),
        "the page has no visible how-to-verify block or no seal"
    );
    assert!(server.terminate().await);
    let data = server.dir().to_owned();

    // As published: all three formats verify.
    for name in ["june.html", "june.xlsx", "june.csv"] {
        let (ok, said) = verify(&file(name), &data, &public);
        assert!(ok, "{name}: {said}");
        assert!(
            said.contains("signature: valid, by the province's key"),
            "{name}: {said}"
        );
        assert!(said.contains("log: the first "), "{name}: {said}");
        assert!(
            said.contains("figures: every figure of the document is the one this log gives"),
            "{name}: {said}"
        );
    }

    // A changed figure: the signature and the log still check, the document does not.
    let cell = r#"<td class="num">3</td>"#;
    assert!(html.contains(cell), "the page shows no count of 3");
    std::fs::write(file("figure.html"), html.replacen(cell, r#"<td class="num">4</td>"#, 1)).unwrap();
    let (ok, said) = verify(&file("figure.html"), &data, &public);
    assert!(!ok, "{said}");
    assert!(said.contains("signature: valid"), "{said}");
    assert!(
        said.contains(
            "figures: DIFFER: the figures the statement signed are those this log gives, but the document shows others"
        ),
        "{said}"
    );
    assert!(
        said.contains(r#"the file has «"#) && said.contains(r#"<td class="num">4</td>"#),
        "{said}"
    );
    assert!(said.contains("does not verify: figures"), "{said}");
    let csv = std::fs::read_to_string(file("june.csv")).unwrap();
    let line = csv
        .lines()
        .find(|l| l.contains(",3,") && !l.starts_with("hoso-seal"))
        .expect("the csv shows no count of 3")
        .to_owned();
    std::fs::write(
        file("figure.csv"),
        csv.replacen(&line, &line.replacen(",3,", ",30,", 1), 1),
    )
    .unwrap();
    let (ok, said) = verify(&file("figure.csv"), &data, &public);
    assert!(
        !ok && said.contains("figures: DIFFER") && said.contains(",30,"),
        "{said}"
    );

    // A changed number in the workbook: the sheet and cell are named.
    let workbook = std::fs::read(file("june.xlsx")).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(workbook)).unwrap();
    let mut changed = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut edited = false;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        if !edited && name.starts_with("xl/worksheets/sheet") {
            let mut xml = String::from_utf8(bytes.clone()).unwrap();
            // A number cell holding 3 (a cell with t="s" holds a shared string's index instead).
            let number = xml.match_indices("<v>3</v>").map(|(at, _)| at).find(|&at| {
                let cell = &xml[xml[..at].rfind("<c ").unwrap()..at];
                !cell.contains(" t=")
            });
            if let Some(at) = number {
                xml.replace_range(at..at + "<v>3</v>".len(), "<v>30</v>");
                bytes = xml.into_bytes();
                edited = true;
            }
        }
        changed
            .start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut changed, &bytes).unwrap();
    }
    assert!(edited, "the workbook shows no count of 3");
    std::fs::write(file("figure.xlsx"), changed.finish().unwrap().into_inner()).unwrap();
    let (ok, said) = verify(&file("figure.xlsx"), &data, &public);
    assert!(!ok, "{said}");
    assert!(
        said.contains("signature: valid") && said.contains("figures: DIFFER"),
        "{said}"
    );
    assert!(said.contains(", cell ") && said.contains("the file has «30»"), "{said}");

    // A changed signature.
    let signature = html
        .split(r#""signature":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let flipped = format!(
        "{}{}",
        if signature.starts_with('0') { "1" } else { "0" },
        &signature[1..]
    );
    std::fs::write(file("signature.html"), html.replace(&signature, &flipped)).unwrap();
    let (ok, said) = verify(&file("signature.html"), &data, &public);
    assert!(!ok, "{said}");
    assert!(
        said.contains("signature: INVALID: the signature does not match the statement"),
        "{said}"
    );
    assert!(said.contains("figures: every figure"), "{said}");

    // Another key: a valid signature, but not by the key the province published.
    let (ok, said) = verify(&file("june.html"), &data, &other_public);
    assert!(!ok, "{said}");
    assert!(
        said.contains("signature: NOT THE PROVINCE'S: the document is signed by key"),
        "{said}"
    );

    // A log whose history differs at that position: another server's, with other dossiers.
    let mut elsewhere = Server::start_with_config(&config);
    for _ in 0..4 {
        received(&elsewhere).await;
    }
    assert!(elsewhere.terminate().await);
    let (ok, said) = verify(&file("june.html"), elsewhere.dir(), &public);
    assert!(!ok, "{said}");
    assert!(said.contains("log: DIFFERS: the first "), "{said}");
    assert!(said.contains("is not the one the disclosure counted"), "{said}");

    // The running server's own directory is refused, not read under it.
    let server = Server::start_in(&data);
    let (ok, said) = verify(&file("june.html"), server.dir(), &public);
    assert!(!ok && said.contains("give a copy of its data directory"), "{said}");
}

#[test]
fn a_signing_key_file_that_is_not_a_key_stops_the_server_at_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("province.key");
    std::fs::write(&key, "not a key\n").unwrap();
    let config = dir.path().join("hoso.toml");
    std::fs::write(
        &config,
        format!(
            "province_name = \"Thái Nguyên\"\n[disclosure]\nsigning_key_file = {:?}\n",
            path(&key)
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hoso"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            path(&config),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("HOSO_CONFIG")
        .env("HOSO_LOG", "warn")
        .output()
        .unwrap();
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(!said.contains("serving on"), "{said}");
    assert!(
        said.contains(path(&key)) && said.contains("signing_key_file") && said.contains("hoso disclosure-key new"),
        "{said}"
    );
}
