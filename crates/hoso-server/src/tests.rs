use std::path::Path;

use crate::auth::{Action, Caller, Role, Tokens, authorize, hash_token, new_token, role_matrix_markdown, token_entry};
use crate::config::Config;

fn repo_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

#[test]
fn the_shipped_example_configuration_parses_with_the_real_parser() {
    let config = Config::parse(&repo_file("deploy/hoso.example.toml"), "deploy/hoso.example.toml").unwrap();
    assert_eq!(config.data_dir, Path::new("/var/lib/hoso"));
    assert_eq!(config.shutdown_grace_seconds, 20);
    assert_eq!(config.projection_snapshot_seconds, 300);
    assert_eq!(config.index_cache_mib, 64);
    assert_eq!(config.green_lane.len(), 1);
    config.green_lane().unwrap();
    config.calendar().unwrap();
}

#[test]
fn an_index_cache_too_small_to_hold_an_index_is_refused_naming_the_key() {
    let err = Config::parse("index_cache_mib = 4", "hoso.toml").unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("index_cache_mib is 4") && text.contains("at least 8"),
        "{text}"
    );
    assert_eq!(
        Config::parse("index_cache_mib = 8", "hoso.toml")
            .unwrap()
            .index_cache_mib,
        8
    );
}

#[test]
fn the_example_configurations_commented_sso_section_parses_once_uncommented() {
    let example = repo_file("deploy/hoso.example.toml");
    let start = example.find("# [sso]").expect("the example documents [sso]");
    let uncommented: String = example[start..]
        .lines()
        .map(|line| format!("{}\n", line.strip_prefix("# ").unwrap_or(line)))
        .collect();
    let config = Config::parse(&uncommented, "the example's [sso]").unwrap();
    let sso = config.sso.expect("[sso] parsed");
    assert_eq!(sso.audience, "hoso");
    assert!(sso.jwks_url.is_some() && sso.jwks_file.is_none());
    assert_eq!((sso.jwks_refresh_seconds, sso.leeway_seconds), (300, 30));
    assert_eq!(sso.roles["mot-cua"], "desk_officer");
    crate::sso::KeySource::from_config(&sso).unwrap();
}

#[test]
fn an_sso_section_with_a_mistake_is_refused_naming_the_key() {
    let base = "[sso]\nissuer = \"https://sso.example/\"\naudience = \"hoso\"\n";
    for (extra, words) in [
        ("", "give jwks_file or jwks_url"),
        ("jwks_file = \"a\"\njwks_url = \"https://b\"\n", "not both"),
        (
            "jwks_file = \"a\"\nleeway_seconds = 3600\n",
            "sso.leeway_seconds is 3600",
        ),
        (
            "jwks_file = \"a\"\njwks_refresh_seconds = 1\n",
            "sso.jwks_refresh_seconds is 1",
        ),
        (
            "jwks_file = \"a\"\n[sso.roles]\n\"mot-cua\" = \"mayor\"\n",
            "sso.roles.\"mot-cua\" = \"mayor\" is not a hoso role",
        ),
    ] {
        let err = format!(
            "{:#}",
            Config::parse(&format!("{base}{extra}"), "hoso.toml").unwrap_err()
        );
        assert!(
            err.contains("hoso.toml: [sso]") && err.contains(words),
            "{words:?} not in {err}"
        );
    }
    let err = format!(
        "{:#}",
        Config::parse("[sso]\nissuer = \" \"\naudience = \"hoso\"\njwks_file = \"a\"\n", "t").unwrap_err()
    );
    assert!(err.contains("sso.issuer is empty"), "{err}");
}

#[test]
fn the_shipped_example_tokens_parse_with_one_token_per_role() {
    let tokens = Tokens::parse(&repo_file("deploy/tokens.example.toml"), "deploy/tokens.example.toml").unwrap();
    assert_eq!(tokens.len(), Role::ALL.len());
}

#[test]
fn office_hours_come_from_the_configuration_and_bad_ones_are_named() {
    let config = Config::parse("office_hours = [[\"07:30\", \"11:30\"], [\"13:30\", \"16:30\"]]\n", "t").unwrap();
    let calendar = config.calendar().unwrap();
    assert_eq!(
        calendar.office_hours().close(),
        chrono::NaiveTime::from_hms_opt(16, 30, 0).unwrap()
    );
    assert_eq!(
        calendar.years().collect::<Vec<_>>(),
        [2025, 2026],
        "the holiday tables stay"
    );
    let config = Config::parse("office_hours = [[\"8h\", \"12:00\"]]\n", "t").unwrap();
    assert!(format!("{:#}", config.calendar().unwrap_err()).contains("office_hours[0]"));
    let config = Config::parse("office_hours = [[\"12:00\", \"08:00\"]]\n", "t").unwrap();
    assert!(format!("{:#}", config.calendar().unwrap_err()).contains("office_hours"));
}

#[test]
fn an_unknown_configuration_key_is_an_error_naming_it() {
    let err = Config::parse("listen = \"127.0.0.1:1\"\ndata_directory = \"x\"\n", "test.toml").unwrap_err();
    assert!(format!("{err:#}").contains("data_directory"), "{err:#}");
}

#[test]
fn environment_overrides_apply_and_bad_values_are_named() {
    let env = |key: &str| match key {
        "HOSO_LISTEN" => Some("0.0.0.0:6000".to_owned()),
        "HOSO_DATA_DIR" => Some("/srv/hoso".to_owned()),
        _ => None,
    };
    let config = Config::load(None, env).unwrap();
    assert_eq!(config.listen.port(), 6000);
    assert_eq!(config.data_dir, Path::new("/srv/hoso"));
    let err = Config::load(None, |key| (key == "HOSO_LISTEN").then(|| "localhost".to_owned())).unwrap_err();
    assert!(format!("{err:#}").contains("HOSO_LISTEN"), "{err:#}");
}

#[test]
fn traces_are_off_by_default_and_turned_on_by_the_file_or_the_standard_variable() {
    assert!(!Config::load(None, |_| None).unwrap().tracing.enabled());
    let otel = |key: &str| (key == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://10.0.0.9:4317".to_owned());
    let from_env = Config::load(None, otel).unwrap().tracing;
    assert_eq!(from_env.otlp_endpoint.as_deref(), Some("http://10.0.0.9:4317"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hoso.toml");
    std::fs::write(
        &file,
        "[tracing]\notlp_endpoint = \"http://127.0.0.1:4317\"\nsample_ratio = 0.25\n",
    )
    .unwrap();
    let from_file = Config::load(Some(&file), otel).unwrap().tracing;
    assert_eq!(
        from_file.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4317"),
        "the file wins"
    );
    assert_eq!(
        (from_file.service_name.as_str(), from_file.sample_ratio),
        ("hoso", 0.25)
    );
}

#[test]
fn a_tracing_section_with_a_mistake_is_refused_naming_the_key() {
    for (text, key) in [
        (
            "[tracing]\notlp_endpoint = \"collector:4317\"\n",
            "tracing.otlp_endpoint",
        ),
        (
            "[tracing]\notlp_endpoint = \"https://collector:4317\"\n",
            "tracing.otlp_endpoint",
        ),
        ("[tracing]\nsample_ratio = 1.5\n", "tracing.sample_ratio"),
        ("[tracing]\nservice_name = \" \"\n", "tracing.service_name"),
        ("[tracing]\nendpoint = \"http://collector:4317\"\n", "endpoint"),
    ] {
        let err = Config::parse(text, "t.toml").unwrap_err();
        assert!(format!("{err:#}").contains(key), "{text}: {err:#}");
    }
    let err = Config::load(None, |key| {
        (key == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "collector".to_owned())
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err:#}");
}

#[test]
fn a_token_is_known_by_its_hash_only() {
    let token = new_token();
    let entry = token_entry(&token, "desk.one", Role::DeskOfficer, "G09.20");
    assert!(!entry.contains(&token), "the entry holds the hash, not the token");
    assert!(entry.contains(&hash_token(&token)));
    let tokens = Tokens::parse(&entry, "entry").unwrap();
    let caller = tokens.caller(&token).unwrap();
    assert_eq!((caller.subject.as_str(), caller.role), ("desk.one", Role::DeskOfficer));
    assert!(tokens.caller(&new_token()).is_none());
}

#[test]
fn a_token_entry_for_a_vietnamese_name_reads_back_as_given() {
    let subjects = [
        "cán bộ một cửa Thái Nguyên",
        "Phòng Tư pháp \"Đồng Hỷ\" \\ tổ 1",
        "Sở Tài nguyên và Môi trường\tca chiều",
    ];
    let mut file = String::new();
    let mut issued = Vec::new();
    for subject in subjects {
        let token = new_token();
        file.push_str(&token_entry(&token, subject, Role::AgencyOfficer, "000.00.04.G18"));
        issued.push((token, subject));
    }
    let tokens = Tokens::parse(&file, "entries").unwrap();
    for (token, subject) in issued {
        let caller = tokens.caller(&token).unwrap();
        assert_eq!(
            (caller.subject.as_str(), caller.agency.as_str()),
            (subject, "000.00.04.G18")
        );
    }
}

#[test]
fn a_tokens_file_with_a_bad_hash_or_no_agency_is_refused_with_the_entry_named() {
    let err = Tokens::parse(
        "[[tokens]]\nsha256 = \"abc\"\nsubject = \"x\"\nrole = \"auditor\"\n",
        "t",
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("tokens[0].sha256"), "{err:#}");
    let entry = token_entry("t", "x", Role::AgencyOfficer, "");
    let err = Tokens::parse(&entry, "t").unwrap_err();
    assert!(format!("{err:#}").contains("tokens[0].agency"), "{err:#}");
}

#[test]
fn the_role_matrix_gives_each_role_its_duties() {
    use hoso_domain::CommandKind::*;
    let all = hoso_domain::CommandKind::ALL;
    let allowed = |role: Role| -> Vec<hoso_domain::CommandKind> {
        all.iter()
            .copied()
            .filter(|m| Action::Record(*m).roles().contains(&role))
            .collect()
    };
    assert_eq!(
        allowed(Role::DeskOfficer),
        [
            ReceiveDossier,
            DigitizeDossier,
            RequestSupplement,
            ReceiveSupplement,
            PayOnline,
            ReturnResult,
            RateSatisfaction,
            Withdraw,
            RefuseAtIntake,
            RecordNationalPortalSync
        ]
    );
    assert_eq!(
        allowed(Role::AgencyOfficer),
        [
            DigitizeDossier,
            ProcessDossier,
            RequestSupplement,
            ReceiveSupplement,
            IssueEResult,
            SendApology
        ]
    );
    assert!(allowed(Role::Auditor).is_empty());
    assert_eq!(allowed(Role::Operator), [RecordNationalPortalSync]);
    assert_eq!(allowed(Role::Integration), [RecordNationalPortalSync]);
}

#[test]
fn an_agency_officer_acts_only_on_dossiers_of_their_own_agency() {
    let officer = Caller {
        subject: "g18.officer".to_owned(),
        role: Role::AgencyOfficer,
        agency: "000.00.04.G18".to_owned(),
    };
    let supplement = |agency| Action::RecordOn(hoso_domain::CommandKind::ReceiveSupplement, agency);
    assert!(authorize(&officer, supplement("000.00.04.G18")).is_ok());
    let Err(crate::error::ServiceError::PermissionDenied(err)) = authorize(&officer, supplement("000.00.05.G18"))
    else {
        panic!("an officer of another agency is let through");
    };
    assert!(err.contains("000.00.05.G18"), "{err}");
    // A desk receives and helps any dossier of the province (boundary-free intake).
    let desk = Caller {
        subject: "desk".to_owned(),
        role: Role::DeskOfficer,
        agency: "G09.20".to_owned(),
    };
    assert!(authorize(&desk, supplement("000.00.05.G18")).is_ok());
}

#[test]
fn the_operations_guide_prints_the_role_matrix_as_it_is() {
    let guide = include_str!("../../../docs/operations.md");
    let table = role_matrix_markdown();
    assert!(
        guide.contains(&table),
        "docs/operations.md must hold the role matrix exactly as the code has it; replace its table with:\n{table}"
    );
}

#[test]
fn only_operators_import_load_reference_data_and_rebuild() {
    for role in Role::ALL {
        let caller = Caller {
            subject: "someone".to_owned(),
            role,
            agency: "G09.20".to_owned(),
        };
        for action in [Action::Import, Action::LoadReference, Action::Rebuild] {
            assert_eq!(
                authorize(&caller, action).is_ok(),
                role == Role::Operator,
                "{role} {action:?}"
            );
        }
        assert!(
            authorize(&caller, Action::ReadReports).is_ok(),
            "{role} reads the reports"
        );
        assert_eq!(
            authorize(&caller, Action::Audit).is_ok(),
            matches!(role, Role::Auditor | Role::Operator),
            "{role} audits"
        );
    }
}

mod bad_input {
    //! Whatever a client sends, the answer is a status it can act on: never a panic, never
    //! INTERNAL.

    use std::sync::Arc;

    use hoso_api::convert::IntoDeskCommand;
    use hoso_api::pb;
    use hoso_store::MemoryStore;
    use proptest::prelude::*;

    use crate::app::App;
    use crate::auth::{Caller, Role};
    use crate::error::to_status;

    fn app() -> App<MemoryStore> {
        App::for_tests(MemoryStore::new())
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("G09.20-20260609-0092637".to_owned()),
            Just("000.00.04.G18".to_owned()),
            Just("1.001234".to_owned()),
            Just("ab".repeat(32)),
            Just("5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b".to_owned()),
            "\\PC{0,40}",
            Just("x".repeat(300)),
        ]
    }

    fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
        prop_oneof![
            Just(None),
            (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
            (1_700_000_000i64..1_800_000_000).prop_map(|seconds| Some(prost_types::Timestamp { seconds, nanos: 0 })),
        ]
    }

    fn header() -> impl Strategy<Value = Option<pb::CommandHeader>> {
        (text(), any::<Option<u64>>(), text(), timestamp()).prop_map(|(id, expected, correlation, at)| {
            let command_id = if id.len() % 2 == 0 {
                uuid::Uuid::new_v4().to_string()
            } else {
                id
            };
            Some(pb::CommandHeader {
                command_id,
                expected_version: expected,
                correlation_id: correlation,
                occurred_at: at,
            })
        })
    }

    fn dossier() -> impl Strategy<Value = Option<pb::DossierRef>> {
        prop_oneof![
            Just(None),
            text().prop_map(|code| Some(pb::DossierRef {
                r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(code))
            })),
            text().prop_map(|id| Some(pb::DossierRef {
                r#ref: Some(pb::dossier_ref::Ref::DossierId(id))
            })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn random_requests_are_answered_with_an_actionable_status(
            receipt in (header(), text(), text(), text(), any::<u32>(), any::<i32>(), any::<i64>(), text(), any::<i32>(), text()),
            payment in (header(), dossier(), any::<i64>(), any::<i32>(), text()),
            apology in (header(), dossier(), text(), timestamp(), text()),
            sync in (header(), dossier(), any::<i32>()),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let app = Arc::new(app());
            let desk = Caller { subject: "desk".to_owned(), role: Role::DeskOfficer, agency: "G09.20".to_owned() };
            let agency = Caller { subject: "agency".to_owned(), role: Role::AgencyOfficer, agency: "000.00.04.G18".to_owned() };
            let (h, code, proc_code, name, amount, unit, fee, handling, channel, applicant) = receipt;
            let requests: Vec<(Caller, Result<hoso_api::convert::DeskCommand, _>)> = vec![
                (desk.clone(), pb::ReceiveDossierRequest {
                    command: h,
                    receipt_code: code,
                    procedure: Some(pb::Procedure {
                        code: proc_code,
                        name,
                        statutory_time: Some(pb::StatutoryTime { amount, unit }),
                        full_online_eligible: Some(true),
                        paper_result: Some(false),
                        fee_vnd: Some(fee),
                    }),
                    receiving_desk: "G09.20".to_owned(),
                    handling_agency: handling,
                    channel,
                    applicant_ref: applicant,
                }.into_desk_command()),
                (desk.clone(), pb::RecordOnlinePaymentRequest {
                    command: payment.0, dossier: payment.1, amount_vnd: payment.2, gateway: payment.3, transaction_ref: payment.4,
                }.into_desk_command()),
                (agency, pb::SendApologyRequest {
                    command: apology.0, dossier: apology.1, reason: apology.2, new_appointment_at: apology.3, letter_number: apology.4,
                }.into_desk_command()),
                (desk, pb::MarkSyncedRequest { command: sync.0, dossier: sync.1, status: sync.2 }.into_desk_command()),
            ];
            for (caller, request) in requests {
                let result = match request {
                    Ok(command) => runtime.block_on(app.execute(&caller, command)),
                    Err(invalid) => Err(crate::error::ServiceError::Invalid(invalid)),
                };
                if let Err(err) = result {
                    let status = to_status(err);
                    prop_assert_ne!(status.code(), tonic::Code::Internal, "{}", status.message());
                    prop_assert!(!status.message().is_empty());
                }
            }
        }
    }
}

#[tokio::test]
async fn after_a_disk_error_commands_are_unavailable_and_the_status_says_so() {
    use hoso_api::convert::IntoDeskCommand;
    use hoso_api::pb;
    use hoso_store::{EventStore, SledOptions, SledStore};

    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
    let app = std::sync::Arc::new(crate::app::App {
        store: store.clone(),
        reference: crate::reference::ReferenceData::fixed(
            hoso_domain::BusinessCalendar::vietnam(),
            hoso_domain::Catalogue::new(),
        ),
        green_lane: hoso_domain::GreenLane::new(),
        allow_procedures_outside_catalogue: true,
        max_clock_skew: chrono::TimeDelta::minutes(5),
        started_at: chrono::Utc::now(),
        backend: "sled",
        decided: Default::default(),
    });
    let desk = Caller {
        subject: "desk".to_owned(),
        role: Role::DeskOfficer,
        agency: "G09.20".to_owned(),
    };
    let receive = |seq: u32| pb::ReceiveDossierRequest {
        command: Some(pb::CommandHeader {
            command_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: Some(hoso_api::convert::utc_to_timestamp(
                chrono::DateTime::parse_from_rfc3339("2026-06-09T09:00:00+07:00")
                    .unwrap()
                    .into(),
            )),
            ..Default::default()
        }),
        receipt_code: format!("G09.20-20260609-{seq:07}"),
        procedure: Some(pb::Procedure {
            code: "1.001234".to_owned(),
            name: "Cấp phép".to_owned(),
            statutory_time: Some(pb::StatutoryTime {
                amount: 3,
                unit: pb::TimeUnit::WorkingDays.into(),
            }),
            ..Default::default()
        }),
        receiving_desk: "G09.20".to_owned(),
        handling_agency: "000.00.04.G18".to_owned(),
        channel: pb::Channel::Online.into(),
        applicant_ref: uuid::Uuid::new_v4().to_string(),
    };
    app.execute(&desk, receive(1).into_desk_command().unwrap())
        .await
        .unwrap();
    assert_eq!(app.store.write_refusal(), None);

    store.fail_next_flush();
    for seq in [2, 3] {
        let err = app
            .execute(&desk, receive(seq).into_desk_command().unwrap())
            .await
            .unwrap_err();
        let status = crate::error::to_status(err);
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("retry later"), "{}", status.message());
    }
    // The operator's status says writes are refused, why, and what to do.
    use pb::admin_service_server::AdminService;
    let mut request = tonic::Request::new(pb::GetStatusRequest {});
    request.extensions_mut().insert(Caller {
        subject: "operator".to_owned(),
        role: Role::Operator,
        agency: String::new(),
    });
    let status = crate::grpc::AdminApi::new(std::sync::Arc::clone(&app))
        .get_status(request)
        .await
        .unwrap()
        .into_inner();
    assert!(!status.accepting_writes);
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("refuses writes") && w.contains("fsync") && w.contains("restart the server")),
        "{:?}",
        status.warnings
    );
}

mod snapshots {
    //! The projection saved with its checkpoint, loaded, and caught up: the same model as a
    //! replay of the whole log; a snapshot that is damaged or ahead of the log is set aside.

    use std::time::Duration;

    use hoso_projections::Dossiers;
    use hoso_projections::fixtures::{A, approve, march};
    use hoso_store::EventStore;

    use crate::DataDir;
    use crate::projection::Projection;
    use crate::snapshot::load;

    async fn rebuilt<S: EventStore>(store: &S) -> Dossiers {
        let mut model = Dossiers::new();
        model.catch_up(store, |_, _| {}).await.unwrap();
        model
    }

    /// Follows `store` from `start` until the model has applied the whole log; returns it.
    async fn followed<S: EventStore>(store: &S, start: Dossiers) -> (std::sync::Arc<Projection>, Dossiers) {
        let projection = Projection::new();
        let follower = tokio::spawn(std::sync::Arc::clone(&projection).follow(store.clone(), start));
        let model = projection
            .read_at(store.head(), Duration::from_secs(30))
            .await
            .unwrap_or_else(|applied| panic!("the projection applied {applied} events only"))
            .clone();
        follower.abort();
        (projection, model)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_saved_snapshot_loads_and_catches_up_to_the_replayed_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = DataDir::new(dir.path()).snapshot();
        let (desk, _) = march().await;
        let (projection, live) = followed(&desk.store, Dossiers::new()).await;
        let saved = projection
            .save_snapshot(path.clone(), desk.store.store_id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(saved.events, desk.store.head());
        assert_eq!(saved.bytes as u64, std::fs::metadata(&path).unwrap().len());
        assert!(
            !path.with_extension("snapshot.tmp").exists(),
            "no temporary file is left"
        );
        // Unmoved: not written again.
        assert_eq!(
            projection
                .save_snapshot(path.clone(), desk.store.store_id())
                .await
                .unwrap(),
            None
        );

        // More events after the snapshot.
        desk.receive(9, "2026-03-05 09:00", A, hoso_domain::Channel::Online, 0)
            .await;
        desk.record(9, "2026-03-05", approve("2026-03-06 09:00")).await;
        desk.record(2, "2026-03-02", approve("2026-03-12 09:00")).await;

        let loaded = load(&path, desk.store.store_id(), desk.store.head());
        assert_eq!(loaded, live);
        let (_, resumed) = followed(&desk.store, loaded).await;
        let replayed = rebuilt(&desk.store).await;
        assert_eq!(resumed, replayed);
        assert_eq!(
            resumed.histories().len(),
            live.histories().len() + 1,
            "nothing counted twice"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_damaged_snapshot_or_one_ahead_of_the_log_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = DataDir::new(dir.path()).snapshot();
        let discarded = path.with_extension("snapshot.discarded");
        let (desk, _) = march().await;
        let model = rebuilt(&desk.store).await;
        let bytes = model.encode_snapshot(desk.store.store_id());

        crate::snapshot::write_atomically(&path, &bytes).unwrap();
        assert_eq!(
            load(&path, desk.store.store_id(), model.checkpoint() - 1),
            Dossiers::new(),
            "ahead of the log"
        );
        assert!(!path.exists() && discarded.exists());

        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        crate::snapshot::write_atomically(&path, &damaged).unwrap();
        assert_eq!(
            load(&path, desk.store.store_id(), desk.store.head()),
            Dossiers::new(),
            "damaged"
        );
        assert!(!path.exists());

        crate::snapshot::write_atomically(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(
            load(&path, desk.store.store_id(), desk.store.head()),
            Dossiers::new(),
            "truncated"
        );

        // One of the model before the lean one (format version 3), as an upgrade finds it.
        let mut before_lean = bytes.clone();
        before_lean[8..12].copy_from_slice(&3u32.to_le_bytes());
        crate::snapshot::write_atomically(&path, &before_lean).unwrap();
        assert_eq!(
            load(&path, desk.store.store_id(), desk.store.head()),
            Dossiers::new(),
            "format version 3"
        );
        assert!(!path.exists() && discarded.exists());

        assert_eq!(
            load(&path, desk.store.store_id(), desk.store.head()),
            Dossiers::new(),
            "missing"
        );

        // A projection that loaded nothing replays the log, and its next save replaces the bad file.
        let projection = Projection::new();
        let start = projection.load_snapshot(path.clone(), &desk.store).await;
        let follower = tokio::spawn(std::sync::Arc::clone(&projection).follow(desk.store.clone(), start));
        drop(
            projection
                .read_at(desk.store.head(), Duration::from_secs(30))
                .await
                .unwrap(),
        );
        assert!(
            projection
                .save_snapshot(path.clone(), desk.store.store_id())
                .await
                .unwrap()
                .is_some()
        );
        follower.abort();
        assert_eq!(load(&path, desk.store.store_id(), desk.store.head()), model);
    }

    /// A snapshot copied from another store is discarded with a warning and the log replayed,
    /// whether its store id differs or only the event at its checkpoint does (the same store id
    /// over a log that changed: a directory restored from another backup).
    #[tokio::test(flavor = "multi_thread")]
    async fn a_snapshot_of_another_log_is_discarded_and_the_log_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let path = DataDir::new(dir.path()).snapshot();
        let discarded = path.with_extension("snapshot.discarded");
        let (desk, _) = march().await;
        let (other, _) = march().await;
        let theirs = rebuilt(&other.store).await;
        let ours = rebuilt(&desk.store).await;
        assert_eq!(theirs.checkpoint(), ours.checkpoint(), "the same history, another log");

        crate::snapshot::write_atomically(&path, &theirs.encode_snapshot(other.store.store_id())).unwrap();
        let projection = Projection::new();
        assert_eq!(
            projection.load_snapshot(path.clone(), &desk.store).await,
            Dossiers::new(),
            "another store id"
        );
        assert!(!path.exists() && discarded.exists());

        // Another log under this store's id: the event at the checkpoint does not match.
        crate::snapshot::write_atomically(&path, &theirs.encode_snapshot(desk.store.store_id())).unwrap();
        assert_eq!(
            projection.load_snapshot(path.clone(), &desk.store).await,
            Dossiers::new(),
            "another log"
        );
        assert!(!path.exists());

        // Its own snapshot loads.
        crate::snapshot::write_atomically(&path, &ours.encode_snapshot(desk.store.store_id())).unwrap();
        assert_eq!(projection.load_snapshot(path.clone(), &desk.store).await, ours);
    }
}

mod fingerprints {
    //! A command's request fingerprint: what it covers, and events recorded before it existed.

    use chrono::{TimeZone, Utc};
    use hoso_api::convert::{DeskCommand, IntoDeskCommand, utc_to_timestamp};
    use hoso_api::pb;
    use hoso_store::{EventStore, ExpectedVersion, Json, MemoryStore, NewEvent};

    use crate::app::{App, request_fingerprint};
    use crate::auth::{Caller, Role};

    fn app(store: MemoryStore) -> App<MemoryStore> {
        App::for_tests(store)
    }

    pub(super) fn receive(fee_vnd: i64) -> DeskCommand {
        pb::ReceiveDossierRequest {
            command: Some(pb::CommandHeader {
                command_id: "0b6c7a52-52b5-4c6b-8f3e-3f2a1b0c9d8e".to_owned(),
                expected_version: None,
                correlation_id: String::new(),
                occurred_at: Some(utc_to_timestamp(Utc.with_ymd_and_hms(2025, 9, 9, 2, 0, 0).unwrap())),
            }),
            receipt_code: "G09.20-20250909-0092637".to_owned(),
            procedure: Some(pb::Procedure {
                code: "1.001234".to_owned(),
                name: "Cấp giấy phép xây dựng".to_owned(),
                statutory_time: Some(pb::StatutoryTime {
                    amount: 3,
                    unit: pb::TimeUnit::WorkingDays.into(),
                }),
                full_online_eligible: Some(true),
                paper_result: Some(true),
                fee_vnd: Some(fee_vnd),
            }),
            receiving_desk: "G09.20".to_owned(),
            handling_agency: "000.00.04.G18".to_owned(),
            channel: pb::Channel::Online.into(),
            applicant_ref: "5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b".to_owned(),
        }
        .into_desk_command()
        .unwrap()
    }

    pub(super) fn desk() -> Caller {
        Caller {
            subject: "desk.g09-20.officer1".to_owned(),
            role: Role::DeskOfficer,
            agency: "G09.20".to_owned(),
        }
    }

    /// The fingerprint of a fixed request never changes silently: if a command's fields change,
    /// bump `FINGERPRINT_SCHEME` and pin the new value, or true retries across the upgrade would
    /// be refused as other requests.
    #[test]
    fn request_fingerprints_are_pinned() {
        assert_eq!(
            request_fingerprint(&receive(50_000).command),
            "hoso-command-debug-v1:fe014ac14420ab47248ec14b4a4f405b995dfad29af0dedd2e787c28dfb7b3e6"
        );
        assert_ne!(
            request_fingerprint(&receive(50_000).command),
            request_fingerprint(&receive(1).command)
        );
        let mut officer = receive(50_000).command;
        officer.set_officer("someone.else");
        assert_eq!(
            request_fingerprint(&officer),
            request_fingerprint(&receive(50_000).command)
        );
    }

    /// A command recorded by a server that kept no fingerprint, or one of an older encoding, is
    /// answered as a retry, as then.
    #[tokio::test]
    async fn a_command_recorded_before_fingerprints_is_still_answered_as_a_retry() {
        let current = app(MemoryStore::new());
        let first = current.execute(&desk(), receive(50_000)).await.unwrap();
        assert!(!first.replayed);
        let refused = current.execute(&desk(), receive(1)).await.unwrap_err();
        assert!(
            matches!(refused, crate::error::ServiceError::CommandIdReused(_)),
            "{refused:?}"
        );

        for recorded in [None, Some("hoso-command-debug-v0:00")] {
            let legacy = MemoryStore::new();
            for record in current.store.read_all(0, 100).await.unwrap() {
                let mut metadata = record.metadata_json().unwrap();
                let object = metadata.as_object_mut().unwrap();
                assert!(object.remove("request_sha256").is_some());
                if let Some(recorded) = recorded {
                    object.insert("request_sha256".to_owned(), recorded.into());
                }
                legacy
                    .append(
                        &record.stream_id,
                        ExpectedVersion::Any,
                        vec![NewEvent {
                            event_id: record.event_id,
                            event_type: record.event_type.clone(),
                            schema_version: record.schema_version,
                            data: Json::parse(String::from_utf8(record.data.clone()).unwrap()).unwrap(),
                            metadata: Json::from(metadata),
                            occurred_at: record.occurred_at,
                        }],
                    )
                    .await
                    .unwrap();
            }
            let legacy = app(legacy);
            for fee in [50_000, 1] {
                let retry = legacy.execute(&desk(), receive(fee)).await.unwrap();
                assert!(retry.replayed);
                assert_eq!(
                    (retry.dossier_id, retry.version, retry.position),
                    (first.dossier_id, 0, 0)
                );
            }
            assert_eq!(legacy.store.head(), 1);
        }
    }
}

#[test]
fn connection_limits_have_safe_defaults_and_bad_ones_are_named() {
    let limits = crate::config::Config::parse("", "t").unwrap().limits;
    assert!(limits.max_connections > 0 && limits.request_timeout_seconds > 0);
    for (text, key) in [
        ("[limits]\nidle_connection_seconds = 5\n", "idle_connection_seconds"),
        ("[limits]\nmax_connections = 0\n", "limits.max_connections"),
        ("[limits]\nmax_conections = 10\n", "max_conections"),
    ] {
        let err = crate::config::Config::parse(text, "t").unwrap_err();
        assert!(format!("{err:#}").contains(key), "{err:#}");
    }
}

/// One damaged record below the head stops the projection for good: reports must answer
/// DATA_LOSS naming the position, segment file and byte offset (never "retry shortly"), the
/// projection status must say it stopped, and a rebuild must answer DATA_LOSS, not INTERNAL.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_record_stops_reports_with_data_loss_not_retry() {
    use std::sync::Arc;

    use hoso_api::pb;
    use hoso_api::pb::reports_service_server::ReportsService;
    use hoso_store::conformance::event;
    use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore};

    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
    for i in 0..5 {
        store
            .append(&format!("other-{i}"), ExpectedVersion::Any, vec![event("x")])
            .await
            .unwrap();
    }
    store.close();
    drop(store);
    // Flip a byte in the middle of the record at position 2 (indexed: open does not scan it).
    let segment = dir.path().join("log").join("0000000001.segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let mut at = 0;
    for _ in 0..2 {
        at += 8 + u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    bytes[at + 40] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();

    let app = Arc::new(crate::app::App {
        store: store.clone(),
        reference: crate::reference::ReferenceData::fixed(
            hoso_domain::BusinessCalendar::vietnam(),
            hoso_domain::Catalogue::new(),
        ),
        green_lane: hoso_domain::GreenLane::new(),
        allow_procedures_outside_catalogue: true,
        max_clock_skew: chrono::TimeDelta::minutes(5),
        started_at: chrono::Utc::now(),
        backend: "sled",
        decided: Default::default(),
    });
    let projection = crate::projection::Projection::new();
    let follower = tokio::spawn(Arc::clone(&projection).follow(store.clone(), hoso_projections::Dossiers::new()));
    tokio::time::timeout(std::time::Duration::from_secs(30), follower)
        .await
        .expect("the projection gives up at once")
        .unwrap();
    let stopped = projection.stopped().expect("the projection says it stopped");
    assert_eq!(stopped.position, 2);
    assert!(stopped.data_loss);

    let reports = crate::reports::ReportsApi::new(
        Arc::clone(&app),
        Arc::clone(&projection),
        "Tỉnh".to_owned(),
        Default::default(),
    );
    let operator = Caller {
        subject: "op".to_owned(),
        role: Role::Operator,
        agency: String::new(),
    };
    fn as_caller<T>(body: T, caller: &Caller) -> tonic::Request<T> {
        let mut request = tonic::Request::new(body);
        request.extensions_mut().insert(caller.clone());
        request
    }
    let started = std::time::Instant::now();
    let status = reports
        .list_dossiers(as_caller(pb::ListDossiersRequest::default(), &operator))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "no waiting for what will not come"
    );
    assert_eq!(status.code(), tonic::Code::DataLoss, "{status:?}");
    for expected in [
        "position 2",
        "0000000001.segment",
        &format!("byte {at}"),
        "docs/operations.md",
    ] {
        assert!(status.message().contains(expected), "{expected}: {}", status.message());
    }
    assert!(!status.message().contains("retry"), "{}", status.message());

    let projection_status = reports
        .get_projection_status(as_caller(pb::GetProjectionStatusRequest {}, &operator))
        .await
        .unwrap()
        .into_inner();
    assert!(
        projection_status.stopped.contains("position 2"),
        "{}",
        projection_status.stopped
    );

    let mut rebuild = reports
        .rebuild_projections(as_caller(pb::RebuildProjectionsRequest {}, &operator))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(item) = tokio_stream::StreamExt::next(&mut rebuild).await {
        last = Some(item);
    }
    let status = last.expect("the rebuild answers").unwrap_err();
    assert_eq!(status.code(), tonic::Code::DataLoss, "{status:?}");
    assert!(status.message().contains("position 2"), "{}", status.message());
}

mod decided_states {
    //! The states the latest commands left their dossiers in: used only while the stream is
    //! still at their version.

    use chrono::{TimeZone, Utc};
    use hoso_api::convert::{DeskCommand, IntoDeskCommand, utc_to_timestamp};
    use hoso_api::pb;
    use hoso_store::MemoryStore;

    use super::fingerprints::{desk, receive};
    use crate::app::App;
    use crate::error::to_status;

    fn withdraw(command_id: &str) -> DeskCommand {
        pb::WithdrawDossierRequest {
            command: Some(pb::CommandHeader {
                command_id: command_id.to_owned(),
                expected_version: None,
                correlation_id: String::new(),
                occurred_at: Some(utc_to_timestamp(Utc.with_ymd_and_hms(2025, 9, 10, 2, 0, 0).unwrap())),
            }),
            dossier: Some(pb::DossierRef {
                r#ref: Some(pb::dossier_ref::Ref::ReceiptCode("G09.20-20250909-0092637".to_owned())),
            }),
            reason: "the applicant asked".to_owned(),
        }
        .into_desk_command()
        .unwrap()
    }

    /// Two servers over one store: the first keeps the state its receipt left, the second
    /// withdraws the dossier, and the first must decide on the withdrawn dossier, not on the
    /// state it kept.
    #[tokio::test]
    async fn a_kept_state_is_not_used_once_another_server_wrote_to_the_dossier() {
        let store = MemoryStore::new();
        let (one, other) = (App::for_tests(store.clone()), App::for_tests(store));
        one.execute(&desk(), receive(50_000)).await.unwrap();
        let withdrawn = other
            .execute(&desk(), withdraw("3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"))
            .await
            .unwrap();
        assert_eq!(withdrawn.version, 1);

        let refused = one
            .execute(&desk(), withdraw("6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d"))
            .await
            .unwrap_err();
        let status = to_status(refused);
        assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    }

    /// On the server that wrote last, the next command decides on the state it kept, and the
    /// answers are those of a server that read the stream.
    #[tokio::test]
    async fn a_kept_state_gives_the_answers_a_read_stream_gives() {
        let store = MemoryStore::new();
        let (kept, fresh) = (App::for_tests(store.clone()), App::for_tests(store));
        kept.execute(&desk(), receive(50_000)).await.unwrap();
        let by_kept = kept
            .execute(&desk(), withdraw("3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"))
            .await
            .unwrap();
        // The same command again on a server that kept nothing: a retry, answered from the log.
        let by_fresh = fresh
            .execute(&desk(), withdraw("3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"))
            .await
            .unwrap();
        assert!(by_fresh.replayed);
        assert_eq!(
            (
                by_kept.dossier_id,
                by_kept.version,
                by_kept.position,
                by_kept.status,
                by_kept.due_at
            ),
            (
                by_fresh.dossier_id,
                by_fresh.version,
                by_fresh.position,
                by_fresh.status,
                by_fresh.due_at
            )
        );
    }
}
