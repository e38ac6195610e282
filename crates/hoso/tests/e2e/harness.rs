//! Starts and stops the server binary, and speaks to it as desks, agencies, auditors and
//! operators would.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use hoso_api::convert::utc_to_timestamp;
use hoso_api::pb;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use uuid::Uuid;

pub(crate) type Desk = pb::desk_service_client::DeskServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Query =
    pb::dossier_query_service_client::DossierQueryServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Audit = pb::audit_service_client::AuditServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Admin = pb::admin_service_client::AdminServiceClient<InterceptedService<Channel, Bearer>>;
pub(crate) type Reference = pb::reference_service_client::ReferenceServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to every request (no header for `None`).
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The roles of the development tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Desk,
    Agency,
    Auditor,
    Operator,
    Integration,
}

impl Role {
    pub(crate) const ALL: [Role; 5] = [
        Role::Desk,
        Role::Agency,
        Role::Auditor,
        Role::Operator,
        Role::Integration,
    ];

    fn file_name(self) -> &'static str {
        match self {
            Role::Desk => "desk_officer",
            Role::Agency => "agency_officer",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Integration => "integration",
        }
    }
}

/// The handling agency of the development agency officer.
pub(crate) const OWN_AGENCY: &str = "000.00.04.G18";
/// An agency the development agency officer does not belong to.
pub(crate) const OTHER_AGENCY: &str = "000.00.05.G18";

/// A running server.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) addr: String,
    pub(crate) metrics_addr: Option<String>,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    tokens: HashMap<Role, String>,
}

impl Server {
    /// A server on a fresh data directory.
    pub(crate) fn start() -> Server {
        let temp = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(temp.path());
        server._temp = Some(temp);
        server
    }

    /// A server on `dir` (reused across restarts).
    pub(crate) fn start_in(dir: &Path) -> Server {
        Server::spawn(dir, None, true)
    }

    /// A server on a fresh data directory with this configuration file's text.
    pub(crate) fn start_with_config(config: &str) -> Server {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("hoso.toml");
        std::fs::write(&path, config).unwrap();
        let outside = !config.contains("allow_procedures_outside_catalogue");
        let mut server = Server::spawn(temp.path(), Some(&path), outside);
        server._temp = Some(temp);
        server
    }

    /// Starts the binary; `allow_outside` lets desks receive the lifecycle tests' procedure, which
    /// the server's (empty) catalogue lacks; the catalogue's own tests configure it themselves.
    pub(crate) fn spawn(dir: &Path, config: Option<&Path>, allow_outside: bool) -> Server {
        let mut command = Command::new(crate::server_binary());
        command.arg("serve");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        if allow_outside {
            command.env("HOSO_ALLOW_PROCEDURES_OUTSIDE_CATALOGUE", "true");
        } else {
            command.env_remove("HOSO_ALLOW_PROCEDURES_OUTSIDE_CATALOGUE");
        }
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .env_remove("HOSO_CONFIG")
            .env("HOSO_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut metrics_addr = None;
        let addr = loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the server exited before serving"
            );
            if let Some(addr) = line.trim().strip_prefix("hoso: metrics on ") {
                metrics_addr = Some(addr.to_owned());
            } else if let Some(addr) = line.trim().strip_prefix("hoso: serving on ") {
                break addr.to_owned();
            } else {
                panic!("unexpected line from the server: {line:?}");
            }
        };
        // A server given a tokens file makes no development tokens.
        let tokens = std::fs::read_to_string(hoso_server::DataDir::new(dir).dev_tokens())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(role, token)| {
                Role::ALL
                    .into_iter()
                    .find(|r| r.file_name() == role)
                    .map(|r| (r, token.to_owned()))
            })
            .collect();
        Server {
            child: Some(child),
            addr,
            metrics_addr,
            dir: dir.to_owned(),
            _temp: None,
            tokens,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub(crate) fn token(&self, role: Role) -> &str {
        &self.tokens[&role]
    }

    pub(crate) fn bearer(&self, role: Option<Role>) -> Bearer {
        Bearer(role.map(|r| format!("Bearer {}", self.tokens[&r]).parse().unwrap()))
    }

    pub(crate) fn bearer_token(token: &str) -> Bearer {
        Bearer(Some(format!("Bearer {token}").parse().unwrap()))
    }

    pub(crate) async fn desk_as(&self, bearer: Bearer) -> Desk {
        Desk::new(InterceptedService::new(self.channel().await, bearer))
    }

    pub(crate) async fn desk(&self, role: Role) -> Desk {
        self.desk_as(self.bearer(Some(role))).await
    }

    pub(crate) async fn query(&self, role: Role) -> Query {
        Query::new(InterceptedService::new(self.channel().await, self.bearer(Some(role))))
    }

    pub(crate) async fn audit(&self, role: Role) -> Audit {
        Audit::new(InterceptedService::new(self.channel().await, self.bearer(Some(role))))
    }

    pub(crate) async fn admin(&self, role: Role) -> Admin {
        Admin::new(InterceptedService::new(self.channel().await, self.bearer(Some(role))))
    }

    pub(crate) async fn reference(&self, role: Role) -> Reference {
        Reference::new(InterceptedService::new(self.channel().await, self.bearer(Some(role))))
    }

    pub(crate) async fn raw_channel(&self) -> Channel {
        self.channel().await
    }

    /// The number of events in the log.
    pub(crate) async fn head(&self) -> u64 {
        let mut admin = self.admin(Role::Operator).await;
        admin
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .head_position
    }

    /// SIGTERM, then waits (off the runtime's threads, so that clients keep answering the
    /// server's goodbye); true when the server exited successfully.
    pub(crate) async fn terminate(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::task::spawn_blocking(move || child.wait().unwrap().success())
            .await
            .unwrap()
    }

    /// Sends SIGHUP: the server reloads its credentials.
    pub(crate) fn hangup(&self) {
        let child = self.child.as_ref().unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL, then waits.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A local (UTC+7) instant in June 2026, `minutes` after 08:30 on the 9th (a Tuesday).
pub(crate) fn june(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 9, 1, 30, 0).unwrap() + chrono::TimeDelta::minutes(minutes)
}

static SEQUENCE: AtomicU32 = AtomicU32::new(1);

/// A fresh receipt code dated 9 June 2026.
pub(crate) fn receipt_code() -> String {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed) + std::process::id() % 1000 * 10_000;
    format!("G09.20-20260609-{n:07}")
}

pub(crate) fn header(minutes: i64) -> Option<pb::CommandHeader> {
    header_with(Uuid::new_v4(), minutes, None)
}

pub(crate) fn header_with(command_id: Uuid, minutes: i64, expected_version: Option<u64>) -> Option<pb::CommandHeader> {
    Some(pb::CommandHeader {
        command_id: command_id.to_string(),
        expected_version,
        correlation_id: String::new(),
        occurred_at: Some(utc_to_timestamp(june(minutes))),
    })
}

pub(crate) fn by_code(code: &str) -> Option<pb::DossierRef> {
    Some(pb::DossierRef {
        r#ref: Some(pb::dossier_ref::Ref::ReceiptCode(code.to_owned())),
    })
}

pub(crate) fn receive_request(
    code: &str,
    channel: pb::Channel,
    agency: &str,
    fee_vnd: i64,
) -> pb::ReceiveDossierRequest {
    pb::ReceiveDossierRequest {
        command: header(0),
        receipt_code: code.to_owned(),
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
        receiving_desk: String::new(),
        handling_agency: agency.to_owned(),
        channel: channel.into(),
        applicant_ref: Uuid::new_v4().to_string(),
    }
}

/// Receives a fresh dossier handled by the development agency officer's agency, with a fee.
pub(crate) async fn received(server: &Server) -> String {
    let code = receipt_code();
    let mut desk = server.desk(Role::Desk).await;
    desk.receive_dossier(receive_request(&code, pb::Channel::Online, OWN_AGENCY, 50_000))
        .await
        .unwrap();
    code
}

/// A digitization of `code` with its own command id and expected version.
pub(crate) fn digitize_with(
    code: &str,
    command_id: Uuid,
    minutes: i64,
    expected: Option<u64>,
) -> pb::DigitizeDossierRequest {
    pb::DigitizeDossierRequest {
        command: header_with(command_id, minutes, expected),
        ..digitize(code, minutes)
    }
}

/// Two desks digitize `code` at once, both expecting `expected`: exactly one wins, with the next
/// version, and the other is ABORTED with `version-conflict` and the actual version.
pub(crate) async fn race_one_round(a: &mut Desk, b: &mut Desk, code: &str, expected: u64, minutes: i64) {
    let (ra, rb) = tokio::join!(
        a.digitize_dossier(digitize_with(code, Uuid::new_v4(), minutes, Some(expected))),
        b.digitize_dossier(digitize_with(code, Uuid::new_v4(), minutes, Some(expected))),
    );
    let (won, lost) = match (ra, rb) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won.into_inner().outcome.unwrap(), lost),
        (a, b) => panic!("exactly one must win: {a:?} {b:?}"),
    };
    assert_eq!(won.version, expected + 1);
    assert_eq!(lost.code(), tonic::Code::Aborted, "{lost:?}");
    use tonic_types::StatusExt;
    let info = lost.get_details_error_info().unwrap();
    assert_eq!(info.reason, "version-conflict");
    assert_eq!(info.metadata["actual_version"], (expected + 1).to_string());
}

pub(crate) fn digitize(code: &str, minutes: i64) -> pb::DigitizeDossierRequest {
    pb::DigitizeDossierRequest {
        command: header(minutes),
        dossier: by_code(code),
        files: vec![pb::ComponentFile {
            component: "Đơn đề nghị".to_owned(),
            content_hash: "ab".repeat(32),
        }],
        reused: vec![],
        result_digitized: false,
    }
}

pub(crate) fn process(code: &str, minutes: i64, step: pb::ProcessingStep) -> pb::ProcessDossierRequest {
    pb::ProcessDossierRequest {
        command: header(minutes),
        dossier: by_code(code),
        step: step.into(),
        to_unit: String::new(),
        reason: if step == pb::ProcessingStep::Stopped {
            "thiếu điều kiện".to_owned()
        } else {
            String::new()
        },
    }
}

pub(crate) fn e_result(code: &str, minutes: i64) -> pb::IssueEResultRequest {
    pb::IssueEResultRequest {
        command: header(minutes),
        dossier: by_code(code),
        result_id: format!("KQ-{code}"),
        content_hash: "cd".repeat(32),
        signer: "signer.g18".to_owned(),
    }
}

pub(crate) fn pay(code: &str, minutes: i64, amount_vnd: i64) -> pb::RecordOnlinePaymentRequest {
    pb::RecordOnlinePaymentRequest {
        command: header(minutes),
        dossier: by_code(code),
        amount_vnd,
        gateway: pb::PaymentGateway::NationalPortal.into(),
        transaction_ref: format!("TX-{minutes}"),
    }
}

pub(crate) fn return_result(code: &str, minutes: i64) -> pb::ReturnResultRequest {
    pb::ReturnResultRequest {
        command: header(minutes),
        dossier: by_code(code),
        method: pb::ReturnMethod::Online.into(),
    }
}

pub(crate) fn rate(code: &str, minutes: i64) -> pb::RecordRatingRequest {
    pb::RecordRatingRequest {
        command: header(minutes),
        dossier: by_code(code),
        rating: pb::Satisfaction::Satisfied.into(),
    }
}

pub(crate) fn request_supplement(code: &str, minutes: i64) -> pb::RequestSupplementRequest {
    pb::RequestSupplementRequest {
        command: header(minutes),
        dossier: by_code(code),
        missing_components: vec!["Bản vẽ thiết kế".to_owned()],
    }
}

pub(crate) fn receive_supplement(code: &str, minutes: i64) -> pb::ReceiveSupplementRequest {
    pb::ReceiveSupplementRequest {
        command: header(minutes),
        dossier: by_code(code),
    }
}

pub(crate) fn apology(code: &str, minutes: i64, new_appointment: DateTime<Utc>) -> pb::SendApologyRequest {
    pb::SendApologyRequest {
        command: header(minutes),
        dossier: by_code(code),
        reason: "chờ ý kiến cơ quan liên quan".to_owned(),
        new_appointment_at: Some(utc_to_timestamp(new_appointment)),
        letter_number: "15/XL".to_owned(),
    }
}

pub(crate) fn withdraw(code: &str, minutes: i64) -> pb::WithdrawDossierRequest {
    pb::WithdrawDossierRequest {
        command: header(minutes),
        dossier: by_code(code),
        reason: "công dân rút hồ sơ".to_owned(),
    }
}

pub(crate) fn refuse(code: &str, minutes: i64) -> pb::RefuseAtIntakeRequest {
    pb::RefuseAtIntakeRequest {
        command: header(minutes),
        dossier: by_code(code),
        reason: "không thuộc thẩm quyền".to_owned(),
    }
}

pub(crate) fn sync(code: &str, minutes: i64, status: i32) -> pb::MarkSyncedRequest {
    pb::MarkSyncedRequest {
        command: header(minutes),
        dossier: by_code(code),
        status,
    }
}

/// The `google.rpc.ErrorInfo` reason of a status, if it has one.
pub(crate) fn reason(status: &Status) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|info| info.reason)
}

/// The fields named by a status's `google.rpc.BadRequest`.
pub(crate) fn bad_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|br| br.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Asserts a status's code, and its rule (ErrorInfo reason) or first bad field.
#[track_caller]
pub(crate) fn assert_refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, rule_or_field: &str) {
    let status = result.expect_err("the command should have been refused");
    assert_eq!(status.code(), code, "{status:?}");
    let named = reason(&status)
        .into_iter()
        .chain(bad_fields(&status))
        .collect::<Vec<_>>();
    assert!(
        named.iter().any(|n| n == rule_or_field),
        "expected {rule_or_field:?} among {named:?}; message: {}",
        status.message()
    );
}

/// A reports client of `role`.
pub(crate) type Reports =
    pb::reports_service_client::ReportsServiceClient<InterceptedService<tonic::transport::Channel, Bearer>>;

/// A reports client holding `role`'s token.
pub(crate) async fn reports(server: &Server, role: Role) -> Reports {
    Reports::new(InterceptedService::new(
        server.raw_channel().await,
        server.bearer(Some(role)),
    ))
}

/// The index figures of June 2026 as of `cutoff` (now when `None`).
pub(crate) fn june_figures(cutoff: Option<prost_types::Timestamp>) -> pb::GetIndexFiguresRequest {
    pb::GetIndexFiguresRequest {
        scope: Some(pb::ReportScope {
            month: "2026-06".to_owned(),
            cutoff,
            ..Default::default()
        }),
    }
}

/// Every dossier of the list, page by page, without what depends on the moment of the query
/// rather than on the projection (the office time left and the deadline state).
pub(crate) async fn all_rows(reports: &mut Reports) -> Vec<pb::DossierRow> {
    let mut rows = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = reports
            .list_dossiers(pb::ListDossiersRequest {
                page_size: 1000,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        rows.extend(page.dossiers.into_iter().map(|mut row| {
            row.remaining_working_time = None;
            row.deadline = 0;
            row
        }));
        if page.next_page_token.is_empty() {
            return rows;
        }
        page_token = page.next_page_token;
    }
}
