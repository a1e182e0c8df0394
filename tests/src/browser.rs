//! Debian's headless Chromium, driven over the DevTools protocol: open a page, wait (in real
//! time, bounded) until a script says it is ready, read values off it, take a screenshot.
//! Started the way this machine needs it: no sandbox (root), no GPU, no background networking
//! (the network is closed), a fresh profile.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a failed test

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(30);

fn binary() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if std::path::Path::new(p).is_file() {
            return p.into();
        }
    }
    panic!("chromium not found: apt install chromium (or run `just setup`)");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One headless Chromium showing one page; killed on drop.
pub struct Browser {
    child: Child,
    ws: Socket,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("pid", &self.child.id()).finish()
    }
}

impl Browser {
    /// Starts Chromium on `url` with a `width`×`height` window.
    pub async fn open(url: &str, width: u32, height: u32) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(binary())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Chromium writes the port it chose into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + T;
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|t| t.lines().next()?.parse().ok()) {
                break p;
            }
            assert!(Instant::now() < deadline, "chromium did not open its DevTools port");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let ws_url = loop {
            let list: serde_json::Value =
                serde_json::from_slice(&crate::http::get(addr, "/json/list").await.body).expect("DevTools target list");
            let page = list.as_array().and_then(|l| l.iter().find(|t| t["type"] == "page").cloned());
            if let Some(u) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str().map(String::from)) {
                break u;
            }
            assert!(Instant::now() < deadline, "chromium shows no page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ws, _) = tokio::time::timeout(T, tokio_tungstenite::connect_async(ws_url)).await.unwrap().unwrap();
        Self { child, ws, next_id: 0, _profile: profile }
    }

    async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({"id": id, "method": method, "params": params});
        self.ws.send(Message::text(msg.to_string())).await.unwrap();
        loop {
            let m = tokio::time::timeout(T, self.ws.next()).await.expect("a DevTools reply").unwrap().unwrap();
            let Message::Text(t) = m else { continue };
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            // Events carry no id; replies to this call carry its id.
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression on the page.
    pub async fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r =
            self.call("Runtime.evaluate", serde_json::json!({"expression": expression, "returnByValue": true})).await;
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy (a JavaScript value), up to `within`; returns it.
    ///
    /// # Panics
    /// When it is not within time, with `what` and the page's text.
    pub async fn wait_for(&mut self, what: &str, expression: &str, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.eval(expression).await;
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body.innerText").await;
                panic!("{what}: not within {within:?}; the page says {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page as shown, as PNG bytes.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", serde_json::json!({"format": "png"})).await;
        base64::engine::general_purpose::STANDARD.decode(r["data"].as_str().expect("screenshot data")).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
