//! The load tool's arguments: durations and the officers' tokens.

use std::time::Duration;

use clap::Parser;
use hoso_server::auth::{Role, token_entry};

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

fn args(extra: &[&str]) -> LoadArgs {
    let mut argv = vec!["hoso-load"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().load
}

#[test]
fn durations_are_read_with_their_unit() {
    assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
    let err = parse_duration("soon").unwrap_err().to_string();
    assert!(err.contains("--duration"), "{err}");
    assert!(parse_duration("10 parsecs").is_err());
}

#[test]
fn a_development_tokens_file_gives_the_desk_and_the_agency_with_its_unit() {
    let dir = tempfile::tempdir().unwrap();
    // As a development server writes them: plain tokens, and their hashes with the units.
    let data_dir = DataDir::new(dir.path());
    std::fs::write(
        data_dir.dev_tokens(),
        "# role token\ndesk_officer hoso_desk\nagency_officer hoso_agency\nauditor hoso_auditor\nintegration hoso_feed\n",
    )
    .unwrap();
    std::fs::write(
        data_dir.dev_token_hashes(),
        token_entry("hoso_desk", "dev.desk", Role::DeskOfficer, "G09.20")
            + &token_entry("hoso_agency", "dev.agency", Role::AgencyOfficer, "000.00.04.G18"),
    )
    .unwrap();
    let tokens = data_dir.dev_tokens();
    let found = credentials(&args(&["--tokens", tokens.to_str().unwrap()])).unwrap();
    assert_eq!(found.desk, "hoso_desk");
    assert_eq!(found.agencies, [("000.00.04.G18".to_owned(), "hoso_agency".to_owned())]);
    assert_eq!(found.auditor.as_deref(), Some("hoso_auditor"), "for --replay");
}

#[test]
fn an_agency_officer_without_a_known_unit_is_refused_by_line_without_echoing_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("officers.txt");
    std::fs::write(&tokens, "desk_officer hoso_desk\nagency_officer hoso_secret\n").unwrap();
    let err = credentials(&args(&["--tokens", tokens.to_str().unwrap()]))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("line 2") && err.contains("third field"), "{err}");
    assert!(!err.contains("hoso_secret"), "{err}");

    std::fs::write(
        &tokens,
        "desk_officer hoso_desk\nagency_officer hoso_a 000.00.04.G18\nagency_officer hoso_b 000.00.09.G18\n",
    )
    .unwrap();
    let found = credentials(&args(&["--tokens", tokens.to_str().unwrap()])).unwrap();
    let agencies: Vec<&str> = found.agencies.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(agencies, ["000.00.04.G18", "000.00.09.G18"]);
}

#[test]
fn without_an_agency_officer_the_load_says_which_token_is_missing() {
    let err = credentials(&args(&["--token", "hoso_desk"])).err().unwrap().to_string();
    assert!(err.contains("agency officer"), "{err}");
    let found = credentials(&args(&[
        "--token",
        "hoso_desk",
        "--agency-token",
        "hoso_agency",
        "--agency",
        "000.00.04.G18",
    ]))
    .unwrap();
    assert_eq!(found.desk, "hoso_desk");
    let err = credentials(&args(&[
        "--token",
        "d",
        "--agency-token",
        "a",
        "--agency",
        "not a code",
    ]))
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("agency"), "{err}");
}
