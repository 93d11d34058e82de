//! HTTP/2 both ways (curl as the independent client): cleartext h2c with prior knowledge by
//! default, HTTPS with HTTP/2 by ALPN when a certificate is configured; and a clear refusal to
//! start with an unusable certificate.

mod common;

use std::process::Command;

use common::Server;

#[test]
fn cleartext_http2_with_prior_knowledge() {
    let server = Server::start();
    let out = Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}", &server.url("/healthz")])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n2 200"), "{text} {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn https_serves_http2_and_http1_with_a_configured_certificate() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
    let dir = std::env::temp_dir().join(format!("townhall-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let server = Server::start_with(&[
        ("TOWNHALL_SERVER_TLS_CERT", cert_path.to_str().unwrap()),
        ("TOWNHALL_SERVER_TLS_KEY", key_path.to_str().unwrap()),
    ]);
    let url = format!("https://localhost:{}/healthz", server.http.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.http.port());
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                cert_path.to_str().unwrap(),
                "--resolve",
                &resolve,
                flag,
                "-w",
                "\n%{http_version} %{http_code}",
                &url,
            ])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.ends_with(&format!("\n{version} 200")), "{flag}: {text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("\"status\":\"ok\""));
    }

    // A key that does not match the certificate: the server refuses to start, saying why.
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&key_path, other.serialize_pem()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_townhall"))
        .args(["serve", "--listen", "127.0.0.1:0", "--udp-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("TOWNHALL_SERVER_TLS_CERT", &cert_path)
        .env("TOWNHALL_SERVER_TLS_KEY", &key_path)
        .env("TOWNHALL_ADMIN_TOKEN", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not match"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(dir).unwrap();
}
