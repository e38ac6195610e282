//! Several `hoso serve` over one PostgreSQL database (the `postgres` feature): desks on either
//! server, retries across servers, conflicts between them, and each server's projection
//! following the other's writes. The database is a throwaway server started from the system's
//! binaries by `deploy/pg-throwaway.sh`; where it cannot start, the tests fail (CI installs
//! PostgreSQL), they never skip.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hoso_api::pb;
use uuid::Uuid;

use crate::harness::*;

/// A throwaway PostgreSQL server, stopped and removed when dropped.
pub(crate) struct Postgres {
    pub(crate) url: String,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    pub(crate) fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        // Inside a directory of our own: the script opens the parent directory to PostgreSQL's user.
        let data = dir.path().join("pg");
        let out = Command::new(throwaway_script())
            .arg("start")
            .arg(&data)
            .arg(free_port().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("run deploy/pg-throwaway.sh");
        assert!(
            out.status.success(),
            "deploy/pg-throwaway.sh could not start PostgreSQL: install the postgresql package (CI does) and run again"
        );
        let url = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .expect("the script prints the URL")
            .to_owned();
        Postgres { url, data, _dir: dir }
    }

    /// A server on a fresh data directory, on this database.
    pub(crate) fn hoso(&self) -> Server {
        Server::start_with_config(&format!("store = {:?}\n", self.url))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(throwaway_script()).arg("stop").arg(&self.data).status();
    }
}

fn throwaway_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/pg-throwaway.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Asks `probe` again until it answers, failing after a deadline far beyond the follower's
/// poll interval (the wait is a bound, not a measurement).
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut probe: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn version_on(server: &Server, code: &str) -> Option<u64> {
    let mut query = server.query(Role::Desk).await;
    query
        .get_dossier(pb::GetDossierRequest { dossier: by_code(code) })
        .await
        .ok()
        .and_then(|r| r.into_inner().dossier)
        .map(|d| d.version)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_servers_over_one_postgresql_serve_desks_as_one_record() {
    let pg = Postgres::start();
    let a = pg.hoso();
    let b = pg.hoso();
    for server in [&a, &b] {
        let status = server
            .admin(Role::Operator)
            .await
            .get_status(pb::GetStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.store_backend, "postgres");
    }

    // Received on A: B answers for it, and B's projection (its list and figures) has it.
    let code = received(&a).await;
    assert_eq!(
        eventually("B's GetDossier of A's receipt", || version_on(&b, &code)).await,
        0
    );
    eventually("A's receipt in B's projection", || async {
        let mut reports = reports(&b, Role::Auditor).await;
        all_rows(&mut reports)
            .await
            .iter()
            .any(|r| r.receipt_code == code)
            .then_some(())
    })
    .await;

    // A desk command on B, seen by A.
    let mut desk_b = b.desk(Role::Desk).await;
    desk_b.digitize_dossier(digitize(&code, 5)).await.unwrap();
    eventually("B's digitization seen by A", || async {
        (version_on(&a, &code).await == Some(1)).then_some(())
    })
    .await;

    // A command sent to A, then retried on B with the same command id (as after a timeout):
    // the original outcome, nothing written twice.
    let command_id = Uuid::new_v4();
    let mut desk_a = a.desk(Role::Desk).await;
    let first = desk_a
        .digitize_dossier(digitize_with(&code, command_id, 10, None))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert!(!first.replayed);
    let head = a.head().await;
    let retry = desk_b
        .digitize_dossier(digitize_with(&code, command_id, 10, None))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert!(retry.replayed, "the retry on B is answered as a replay");
    assert_eq!(
        (retry.version, retry.position, retry.dossier_id.clone()),
        (first.version, first.position, first.dossier_id.clone())
    );
    assert_eq!(a.head().await, head, "the retry wrote nothing");
    assert_eq!(
        eventually("B's head reaching A's", || async {
            let h = b.head().await;
            (h == head).then_some(h)
        })
        .await,
        head
    );

    // Desks on different servers racing on one dossier: one wins, the other is told the
    // actual version, exactly as between two desks of one server.
    for round in 0..5u64 {
        let expected = first.version + round;
        let minutes = 20 + round as i64;
        race_one_round(&mut desk_a, &mut desk_b, &code, expected, minutes).await;
    }

    // Both projections end on the same figures.
    let last = first.version + 5;
    for server in [&a, &b] {
        eventually("the last write seen by both servers", || async {
            (version_on(server, &code).await == Some(last)).then_some(())
        })
        .await;
    }
    let mut a_reports = reports(&a, Role::Auditor).await;
    let figures_a = a_reports
        .get_index_figures(june_figures(None))
        .await
        .unwrap()
        .into_inner();
    let figures_b = eventually("B's figures equal to A's", || async {
        let mut reports = reports(&b, Role::Auditor).await;
        let got = reports
            .get_index_figures(june_figures(None))
            .await
            .unwrap()
            .into_inner();
        (got.province == figures_a.province).then_some(got)
    })
    .await;
    assert!(figures_b.province.is_some());
}

/// Runs `hoso serve --store STORE` on a fresh data directory and returns its standard error once
/// it has exited, which it must.
fn serve_fails(store: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(crate::server_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--store", store, "--data-dir"])
        .arg(dir.path())
        .env_remove("HOSO_CONFIG")
        .env_remove("HOSO_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the server started: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "the password was printed: {stderr}");
    assert!(stderr.contains("--store, HOSO_STORE or `store`"), "{stderr}");
    stderr
}

#[test]
fn a_store_that_cannot_be_used_is_a_startup_error_naming_the_setting() {
    let unreachable = format!("postgres://hoso:s3cret@127.0.0.1:{}/hoso", free_port());
    let err = serve_fails(&unreachable);
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    let err = serve_fails("postgres://hoso:s3cret@127.0.0.1:notaport/hoso");
    assert!(err.contains("invalid PostgreSQL connection string"), "{err}");
    let err = serve_fails("mysql://hoso:s3cret@127.0.0.1/hoso");
    assert!(err.contains("a PostgreSQL URL such as"), "{err}");
}
