//! A build without the `postgres` feature refuses a PostgreSQL store, saying how to get one.

use std::process::Stdio;

#[test]
fn a_postgresql_store_is_refused_with_how_to_build_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::server_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--store", "postgres://hoso:s3cret@127.0.0.1:5432/hoso"])
        .env_remove("HOSO_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--features postgres"), "{stderr}");
    assert!(stderr.contains("postgres://hoso:***@127.0.0.1:5432/hoso"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(!dir.path().join("store").exists(), "no embedded store was made instead");
}
