//! A throwaway PostgreSQL server for the tests, started from the system's binaries by
//! `deploy/pg-throwaway.sh`, and a fresh database per test.
//!
//! nextest runs every test in a process of its own, so the server is shared by the test
//! processes of one target directory: the first starts it (under an exclusive lock on
//! `control.lock`), each holds a shared lock on `users.lock` for as long as it lives (the kernel
//! drops it when the process ends, however it ends), and a watchdog started with the server
//! stops it and removes its directory once no process has held that lock for ten seconds.
//! Where the server binaries are missing they are installed with apt-get when running as root;
//! otherwise the tests fail, saying so: they never skip.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use hoso_store_pg::{PgOptions, PgStore};
use rustix::fs::{FlockOperation, flock};

/// The running server's URL (of its `postgres` database), and the lock that keeps it running.
struct Server {
    url: String,
    _users: File,
}

static SERVER: OnceLock<Server> = OnceLock::new();

fn throwaway_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/pg-throwaway.sh")
}

/// Short (a Unix socket's path must fit 107 bytes) and one per target directory.
fn root() -> PathBuf {
    let key = env!("CARGO_TARGET_TMPDIR")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    std::env::temp_dir().join(format!("hoso-store-pg-{key:016x}"))
}

fn lock(path: &Path, operation: FlockOperation) -> File {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|err| panic!("cannot open {}: {err}", path.display()));
    flock(&file, operation).unwrap_or_else(|err| panic!("cannot lock {}: {err}", path.display()));
    file
}

fn has_server_binaries() -> bool {
    let bindir = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    let mut candidates: Vec<PathBuf> = bindir.into_iter().map(PathBuf::from).collect();
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        candidates.extend(dirs.flatten().map(|d| d.path().join("bin")));
    }
    candidates
        .iter()
        .any(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn ensure_server_binaries() {
    if has_server_binaries() {
        return;
    }
    assert!(
        rustix::process::getuid().is_root(),
        "the PostgreSQL store's tests need PostgreSQL's server binaries (initdb, pg_ctl) and \
         cannot install them without root: install the `postgresql` package and run them again"
    );
    eprintln!("no PostgreSQL server binaries: installing the postgresql package with apt-get ...");
    let status = Command::new("sh")
        .args([
            "-c",
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql",
        ])
        .status()
        .expect("run apt-get");
    assert!(status.success(), "apt-get install postgresql failed ({status})");
    assert!(
        has_server_binaries(),
        "postgresql is installed but initdb or pg_ctl is not found"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

fn server_answers(url_file: &Path) -> Option<String> {
    let url = std::fs::read_to_string(url_file).ok()?;
    let port = url.trim().rsplit(':').next()?.split('/').next()?.to_owned();
    std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().ok()?)).ok()?;
    Some(url.trim().to_owned())
}

fn start_or_join() -> Server {
    let root = root();
    std::fs::create_dir_all(&root).expect("create the test server's directory");
    let control = lock(&root.join("control.lock"), FlockOperation::LockExclusive);
    let url_file = root.join("url");
    let url = match server_answers(&url_file) {
        Some(url) => url,
        None => {
            ensure_server_binaries();
            let data = root.join("pg");
            if data.exists() {
                // A server of an earlier run that was killed with its watchdog: start afresh.
                let _ = Command::new(throwaway_script()).arg("stop").arg(&data).status();
                let _ = std::fs::remove_dir_all(&data);
            }
            let out = Command::new(throwaway_script())
                .arg("start")
                .arg(&data)
                .arg(free_port().to_string())
                .stderr(Stdio::inherit())
                .output()
                .expect("run deploy/pg-throwaway.sh");
            assert!(out.status.success(), "deploy/pg-throwaway.sh start failed");
            let url = String::from_utf8(out.stdout)
                .expect("UTF-8")
                .lines()
                .next()
                .expect("the script prints the URL")
                .to_owned();
            std::fs::write(&url_file, &url).expect("write the URL");
            spawn_watchdog(&root);
            url
        }
    };
    let users = lock(&root.join("users.lock"), FlockOperation::LockShared);
    drop(control);
    Server { url, _users: users }
}

/// Stops the server once no test process has used it for ten seconds.
fn spawn_watchdog(root: &Path) {
    const WATCHDOG: &str = r#"
        root=$1; script=$2; idle=0
        while sleep 1; do
          if flock -n "$root/users.lock" true; then idle=$((idle + 1)); else idle=0; fi
          if [ "$idle" -ge 10 ]; then
            if flock "$root/control.lock" sh -c \
                 'flock -n "$1/users.lock" true && rm -f "$1/url" && "$2" stop "$1/pg"' _ "$root" "$script"; then
              exit 0
            fi
            idle=0
          fi
        done"#;
    // `setsid -f` forks the watchdog into a session of its own and returns at once.
    let status = Command::new("setsid")
        .args(["-f", "sh", "-c", WATCHDOG, "watchdog"])
        .arg(root)
        .arg(throwaway_script())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("start the test server's watchdog");
    assert!(status.success(), "cannot start the test server's watchdog ({status})");
}

/// The URL of the shared server's `postgres` database, starting the server if need be.
pub(crate) fn admin_url() -> &'static str {
    &SERVER.get_or_init(start_or_join).url
}

/// A fresh, empty database on the shared server, and its URL.
pub(crate) async fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let admin = admin_url();
    let name = format!("t_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let client = connect(admin).await;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let base = admin
        .strip_suffix("/postgres")
        .expect("the admin URL names the postgres database");
    format!("{base}/{name}")
}

/// A plain client, for what the tests do behind the store's back.
pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(connection);
    client
}

/// A store on a fresh database, and that database's URL.
pub(crate) async fn fresh_store() -> (PgStore, String) {
    let url = fresh_database().await;
    let store = PgStore::connect(&url, PgOptions::default())
        .await
        .expect("open the store");
    (store, url)
}
