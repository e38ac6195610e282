//! Idle and stalled connections are shed, and desks keep being answered while they arrive.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::harness::*;

const IDLE: u64 = 1_200;
const PREFACE_ONLY: u64 = 400;

/// Opens a flood of connections that send nothing or only the HTTP/2 preface, and returns them.
async fn flood(addr: &str) -> Vec<TcpStream> {
    let mut sockets = Vec::new();
    for i in 0..IDLE + PREFACE_ONLY {
        let Ok(mut socket) = TcpStream::connect(addr).await else {
            continue;
        };
        if i >= IDLE {
            let _ = socket.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
        }
        sockets.push(socket);
    }
    sockets
}

/// Whether the server closed the socket within `within`.
async fn closed_by_server(mut socket: TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_idle_and_preface_only_connections_is_shed_while_desks_are_answered() {
    let server = Server::start_with_config(
        "[limits]\nmax_connections = 400\nidle_connection_seconds = 3\n\
         http2_keepalive_interval_seconds = 1\nhttp2_keepalive_timeout_seconds = 1\n",
    );
    let code = received(&server).await;
    let mut health = HealthClient::new(server.raw_channel().await);
    let mut query = server.query(Role::Desk).await;

    let started = Instant::now();
    let sockets = flood(&server.addr).await;
    let flooded_in = started.elapsed();
    let (mut health_latencies, mut desk_latencies) = (Vec::new(), Vec::new());
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let at = Instant::now();
        health
            .check(HealthCheckRequest { service: String::new() })
            .await
            .expect("health answers during the flood");
        health_latencies.push(at.elapsed());
        let at = Instant::now();
        query
            .get_dossier(hoso_api::pb::GetDossierRequest {
                dossier: by_code(&code),
            })
            .await
            .expect("the desk is answered during the flood");
        desk_latencies.push(at.elapsed());
    }
    let opened = sockets.len();
    let closes: Vec<_> = sockets
        .into_iter()
        .map(|s| tokio::spawn(closed_by_server(s, Duration::from_secs(15))))
        .collect();
    let mut closed = 0;
    for close in closes {
        closed += usize::from(close.await.unwrap());
    }
    assert_eq!(
        closed, opened,
        "every idle or stalled connection is closed by the server"
    );
    // A new client gets in once they are gone.
    let mut fresh = HealthClient::new(server.raw_channel().await);
    fresh
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap();
    eprintln!(
        "flood of {opened} connections opened in {flooded_in:?}; {} health checks p99 {:?}, {} GetDossier p99 {:?}",
        health_latencies.len(),
        p99(&mut health_latencies),
        desk_latencies.len(),
        p99(&mut desk_latencies)
    );
}
