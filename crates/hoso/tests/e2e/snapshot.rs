//! The projection's snapshot: saved at a graceful shutdown, loaded at start and caught up from
//! its checkpoint, with the figures of a full rebuild and nothing counted twice; a damaged one
//! is discarded and the log replayed.

use std::path::{Path, PathBuf};

use hoso_api::pb;

use crate::harness::*;

fn snapshot_file(dir: &Path) -> PathBuf {
    hoso_server::DataDir::new(dir).snapshot()
}

/// The figures and list now, then again after a full rebuild at the same cut-off: they must be
/// equal. Returns the number of dossiers in the projection.
async fn assert_same_as_a_rebuild(server: &Server) -> u64 {
    let mut reports = reports(server, Role::Auditor).await;
    // Figures wait until the projection has applied the whole log.
    let figures = reports
        .get_index_figures(june_figures(None))
        .await
        .unwrap()
        .into_inner();
    let rows = all_rows(&mut reports).await;
    let status = reports
        .get_projection_status(pb::GetProjectionStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.applied_position, status.head_position);

    let mut operator = self::reports(server, Role::Operator).await;
    let mut progress = operator
        .rebuild_projections(pb::RebuildProjectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    while let Some(message) = progress.message().await.unwrap() {
        assert!(!message.swapped || message.events_done == status.head_position);
    }
    let rebuilt = reports
        .get_index_figures(june_figures(figures.cutoff))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rebuilt, figures,
        "the figures after loading the snapshot are a rebuild's"
    );
    assert_eq!(all_rows(&mut reports).await, rows, "so is the list");
    let after = reports
        .get_projection_status(pb::GetProjectionStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.dossiers, status.dossiers);
    assert_eq!(rows.len() as u64, status.dossiers);
    status.dossiers
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loads_the_snapshot_catches_up_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_file(dir.path());
    let mut server = Server::start_in(dir.path());
    let mut agency = server.desk(Role::Agency).await;
    let on_time = received(&server).await;
    agency
        .process_dossier(process(&on_time, 60, pb::ProcessingStep::Approved))
        .await
        .unwrap();
    let late = received(&server).await;
    assert_eq!(assert_same_as_a_rebuild(&server).await, 2);
    assert!(server.terminate().await);
    let first = std::fs::read(&path).expect("a graceful shutdown saves the snapshot");
    assert!(first.starts_with(b"HOSOSNAP"));

    // Loaded; more events; killed, so the snapshot stays behind the log.
    let mut server = Server::start_in(dir.path());
    assert_eq!(assert_same_as_a_rebuild(&server).await, 2);
    let mut agency = server.desk(Role::Agency).await;
    agency
        .process_dossier(process(&late, 60 * 24 * 7, pb::ProcessingStep::Approved))
        .await
        .unwrap();
    received(&server).await;
    server.kill();
    assert_eq!(std::fs::read(&path).unwrap(), first, "a killed server saves nothing");

    // Loaded and caught up from its checkpoint: three dossiers, not five.
    let mut server = Server::start_in(dir.path());
    assert_eq!(assert_same_as_a_rebuild(&server).await, 3);
    let mut reports = reports(&server, Role::Auditor).await;
    let figures = reports
        .get_index_figures(june_figures(None))
        .await
        .unwrap()
        .into_inner();
    let on_time_figures = figures.province.unwrap().on_time.unwrap();
    let ratio = on_time_figures.on_time.unwrap();
    assert_eq!((ratio.numerator, ratio.denominator), (1, 3));
    assert!(server.terminate().await);
    assert_ne!(
        std::fs::read(&path).unwrap(),
        first,
        "the shutdown saved the newer model"
    );
    assert!(!snapshot_file(dir.path()).with_extension("snapshot.tmp").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_snapshot_is_discarded_and_the_log_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = snapshot_file(dir.path());
    let mut server = Server::start_in(dir.path());
    received(&server).await;
    received(&server).await;
    assert!(server.terminate().await);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();

    let mut server = Server::start_in(dir.path());
    assert_eq!(assert_same_as_a_rebuild(&server).await, 2);
    assert!(
        snapshot_file(dir.path()).with_extension("snapshot.discarded").exists(),
        "set aside for a look"
    );
    received(&server).await;
    assert!(server.terminate().await);
    // The next start loads the good snapshot written at shutdown.
    let server = Server::start_in(dir.path());
    assert_eq!(assert_same_as_a_rebuild(&server).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_snapshots_off_nothing_is_written() {
    let mut server = Server::start_with_config("projection_snapshot_seconds = 0\n");
    received(&server).await;
    let dir = server.dir().to_owned();
    assert!(server.terminate().await);
    assert!(!snapshot_file(&dir).exists());
}
