//! TLS and mutual TLS (rustls), with certificates made by the system's `openssl` for the test.

use std::path::Path;
use std::process::Command;

use hoso_api::pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::harness::*;

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("this test makes its certificates with the openssl command, which the machine image ships");
    assert!(
        status.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A CA, a server certificate for localhost and a client certificate, both signed by the CA.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=hoso test CA",
        ],
    );
    for (name, extension) in [
        (
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        ),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), extension).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

async fn status(server: &Server, channel: Channel) -> Result<pb::GetStatusResponse, tonic::Status> {
    let bearer = server.bearer(Some(Role::Operator));
    let mut admin = pb::admin_service_client::AdminServiceClient::with_interceptor(channel, move |request| {
        let mut bearer = bearer.clone();
        tonic::service::Interceptor::call(&mut bearer, request)
    });
    admin.get_status(pb::GetStatusRequest {}).await.map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_mutual_tls_only_clients_with_a_certificate_from_the_ca_get_in() {
    let certs = tempfile::tempdir().unwrap();
    certificates(certs.path());
    let path = |name: &str| certs.path().join(name).display().to_string();
    let server = Server::start_with_config(&format!(
        "[tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n",
        path("server.crt"),
        path("server.key"),
        path("ca.crt")
    ));
    let port = server.addr.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let ca = Certificate::from_pem(std::fs::read(path("ca.crt")).unwrap());
    let identity = Identity::from_pem(
        std::fs::read(path("client.crt")).unwrap(),
        std::fs::read(path("client.key")).unwrap(),
    );

    let tls = ClientTlsConfig::new().ca_certificate(ca.clone()).identity(identity);
    let channel = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let answer = status(&server, channel).await.unwrap();
    assert_eq!(answer.caller_role, "operator");

    // Without a client certificate the handshake, or the first call, fails.
    let tls = ClientTlsConfig::new().ca_certificate(ca);
    let refused = match Channel::from_shared(url)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => status(&server, channel).await.is_err(),
    };
    assert!(refused, "a client without a certificate got in");

    // Plaintext is not spoken.
    let plain = match Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => status(&server, channel).await.is_err(),
    };
    assert!(plain, "a plaintext client got in");
}
