//! Certificates made for a test with `openssl`: a CA, a server certificate for 127.0.0.1 and
//! localhost, and a client certificate, all signed by the CA and valid for two days.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Runs openssl with `args` (words split on spaces, none of them holding one).
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("openssl (apt install openssl)");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A new P-256 key, unencrypted.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

/// A key and a certificate signed by the CA in `dir`, named `name`.
fn signed(dir: &Path, name: &str, subject: &str, extensions: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
    openssl(dir, &format!("req {NEW_KEY} -keyout {name}.key -out {name}.csr -subj {subject}"));
    let sign = "-CA ca.pem -CAkey ca.key -CAcreateserial -days 2";
    openssl(dir, &format!("x509 -req -in {name}.csr {sign} -out {name}.pem -extfile {name}.ext"));
}

impl Certs {
    pub fn make() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(d, &format!("req -x509 {NEW_KEY} -keyout ca.key -out ca.pem -days 2 -subj /CN=pump-test-ca"));
        signed(
            d,
            "server",
            "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        );
        signed(d, "client", "/CN=pump-client", "extendedKeyUsage=clientAuth\n");
        Certs {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            dir,
        }
    }
}
