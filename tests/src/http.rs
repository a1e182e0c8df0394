//! A minimal HTTP/1.1 client for the services' own ports: enough for pages, JPEGs, /metrics and
//! the start of an endless MJPEG stream. Every read is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a failed test

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const T: Duration = Duration::from_secs(30);

/// A response: status, headers (names lower-cased) and the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A connection: plain, or TLS.
trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Conn for S {}

/// How to ask: extra headers, and the CA of a TLS server (whose certificate names `localhost`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Ask<'a> {
    pub headers: &'a [(&'a str, &'a str)],
    pub tls_ca: Option<&'a std::path::Path>,
}

async fn connect(addr: std::net::SocketAddr, ask: Ask<'_>) -> Box<dyn Conn> {
    let tcp = tokio::time::timeout(T, tokio::net::TcpStream::connect(addr)).await.unwrap().unwrap();
    let Some(ca) = ask.tls_ca else { return Box::new(tcp) };
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp);
    Box::new(tokio::time::timeout(T, tls).await.unwrap().unwrap())
}

async fn request(
    addr: std::net::SocketAddr,
    path: &str,
    ask: Ask<'_>,
) -> (u16, Vec<(String, String)>, BufReader<Box<dyn Conn>>) {
    let mut s = connect(addr, ask).await;
    let extra: String = ask.headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    tokio::time::timeout(T, r.read_line(&mut line)).await.unwrap().unwrap();
    let status = line.split_whitespace().nth(1).expect("a status line").parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        tokio::time::timeout(T, r.read_line(&mut line)).await.unwrap().unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':').expect("a header line");
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    (status, headers, r)
}

/// GETs `path` and reads the whole body (chunked or not).
pub async fn get(addr: std::net::SocketAddr, path: &str) -> Reply {
    get_with(addr, path, Ask::default()).await
}

/// [`get`], with headers or over TLS.
pub async fn get_with(addr: std::net::SocketAddr, path: &str, ask: Ask<'_>) -> Reply {
    let (status, headers, mut r) = request(addr, path, ask).await;
    let mut raw = Vec::new();
    let length = headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse::<usize>().unwrap());
    match length {
        // Some servers (Chromium's DevTools) keep the connection open whatever the request says.
        Some(n) => {
            raw.resize(n, 0);
            tokio::time::timeout(T, r.read_exact(&mut raw)).await.unwrap().unwrap();
        }
        None => {
            tokio::time::timeout(T, r.read_to_end(&mut raw)).await.unwrap().unwrap();
        }
    }
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(&raw) } else { raw };
    Reply { status, headers, body }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..nl]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[nl + 2..nl + 2 + size]);
        raw = &raw[nl + 2 + size + 2..];
    }
}

/// The first `n` JPEGs of a multipart MJPEG stream (with the response's status and headers), then
/// hangs up. Fewer when the stream ends first.
pub async fn mjpeg_frames(addr: std::net::SocketAddr, path: &str, n: usize) -> (Reply, Vec<Vec<u8>>) {
    mjpeg_frames_until(addr, path, n, |_| false).await
}

/// As [`mjpeg_frames`], but stops at the first frame for which `done` holds (the last one
/// returned), or after `n` frames.
pub async fn mjpeg_frames_until(
    addr: std::net::SocketAddr,
    path: &str,
    n: usize,
    mut done: impl FnMut(&[u8]) -> bool,
) -> (Reply, Vec<Vec<u8>>) {
    let (status, headers, mut r) = request(addr, path, Ask::default()).await;
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let reply = Reply { status, headers, body: Vec::new() };
    let (mut raw, mut data, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    let mut buf = [0u8; 64 * 1024];
    while frames.len() < n {
        let got = tokio::time::timeout(T, r.read(&mut buf)).await.expect("an MJPEG part in time").unwrap();
        if got == 0 {
            break;
        }
        if chunked {
            raw.extend_from_slice(&buf[..got]);
            take_chunks(&mut raw, &mut data);
        } else {
            data.extend_from_slice(&buf[..got]);
        }
        while let Some(frame) = take_part(&mut data) {
            let stop = done(&frame);
            frames.push(frame);
            if stop {
                return (reply, frames);
            }
        }
    }
    frames.truncate(n);
    (reply, frames)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Moves the complete chunks of `raw` into `out`.
fn take_chunks(raw: &mut Vec<u8>, out: &mut Vec<u8>) {
    while let Some(nl) = find(raw, b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..nl]).unwrap().trim(), 16).unwrap();
        if raw.len() < nl + 2 + size + 2 {
            return;
        }
        out.extend_from_slice(&raw[nl + 2..nl + 2 + size]);
        raw.drain(..nl + 2 + size + 2);
    }
}

/// Cuts the first complete part (`--boundary`, headers with Content-Length, body) off `data`.
fn take_part(data: &mut Vec<u8>) -> Option<Vec<u8>> {
    let head_end = find(data, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    assert!(head.trim_start().starts_with("--"), "a part starts with its boundary: {head:?}");
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).expect("Content-Length").trim().parse().unwrap();
    let body_start = head_end + 4;
    if data.len() < body_start + len {
        return None;
    }
    let body = data[body_start..body_start + len].to_vec();
    data.drain(..body_start + len);
    Some(body)
}

/// One HTTP/1.1 request read off `sock` by a test's stand-in server: its head (request line and
/// headers) and as much body as Content-Length says; `None` when the peer closed first.
pub async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            return Some((head, buf[end + 4..end + 4 + len].to_vec()));
        }
    }
}

/// A header of a request's head (any case of its name), "" when absent.
pub fn request_header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default()
}
