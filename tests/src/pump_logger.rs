//! A stand-in of the PUMP workout logger, written from its contract as pump-cv uses it: API key,
//! `GET /api/exercises`, `POST /api/sets` (refusing, with 400, a body PUMP would store wrong),
//! `PATCH /api/sets/<id>`, the athlete's CV switch (403) and a restart (503).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

pub const KEY: &str = "s3cret";

/// What the stand-in holds and how it answers.
#[derive(Debug, Default)]
pub struct Pump {
    pub exercises: Vec<String>,
    /// The athlete's switch: off answers 403.
    pub cv_on: bool,
    /// Answer 503 to everything (PUMP restarting).
    pub down: bool,
    /// Stored sets: (id, the body PUMP took, ClipPath patched).
    pub sets: Vec<(u64, Value, Option<String>)>,
    /// Every request: (method, path).
    pub requests: Vec<(String, String)>,
    /// What the wall display was told, in order ("wake", "sleep").
    pub wall: Vec<String>,
    /// What it refused and why (a test that sees one fails).
    pub refused: Vec<String>,
}

pub type Shared = Arc<Mutex<Pump>>;

/// Why PUMP would not store `b` as a CV set, if it would not: the contract field for field.
fn invalid(b: &Value, exercises: &[String]) -> Option<String> {
    let o = b.as_object()?;
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys != ["Confidence", "Date", "Name", "Note", "Pending", "Reps", "Source", "Weight"] {
        return Some(format!("fields {keys:?}"));
    }
    let date = b["Date"].as_str().unwrap_or("");
    let date_ok = date.len() == 10
        && date.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    if !date_ok {
        return Some(format!("Date {date:?}"));
    }
    if !b["Name"].as_str().is_some_and(|n| exercises.iter().any(|e| e == n)) {
        return Some(format!("Name {} is not one of PUMP's", b["Name"]));
    }
    if !b["Weight"].as_str().is_some_and(|w| w.parse::<f64>().is_ok_and(|w| w >= 0.0)) {
        return Some(format!("Weight {} is not a decimal string", b["Weight"]));
    }
    if b["Reps"].as_u64().is_none_or(|r| r == 0) || b["Source"] != "cv" || !b["Pending"].is_boolean() {
        return Some(format!("Reps/Source/Pending {b}"));
    }
    if !b["Confidence"].as_f64().is_some_and(|c| (0.0..=1.0).contains(&c)) || !b["Note"].is_string() {
        return Some(format!("Confidence/Note {b}"));
    }
    None
}

fn answer(state: &Shared, method: &str, path: &str, key: &str, body: &[u8]) -> (u16, Value) {
    let mut p = state.lock().unwrap();
    p.requests.push((method.to_string(), path.to_string()));
    if p.down {
        return (503, json!({"error": "restarting"}));
    }
    if key != KEY {
        return (401, json!({"error": "unauthorized"}));
    }
    match (method, path) {
        ("GET", "/api/exercises") => {
            let list: Vec<Value> =
                p.exercises.iter().enumerate().map(|(i, n)| json!({"ID": i + 1, "Name": n, "Category": "x"})).collect();
            (200, Value::Array(list))
        }
        ("POST", "/api/sets") => {
            let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            if let Some(why) = invalid(&b, &p.exercises) {
                p.refused.push(why.clone());
                return (400, json!({"error": why}));
            }
            if !p.cv_on {
                return (403, json!({"error": "cv auto-logging is disabled"}));
            }
            let id = 100 + p.sets.len() as u64;
            p.sets.push((id, b, None));
            (201, json!({"id": id}))
        }
        ("POST", "/api/wall/wake") | ("POST", "/api/wall/sleep") => {
            p.wall.push(path.trim_start_matches("/api/wall/").to_string());
            (200, json!({"ok": true}))
        }
        ("PATCH", path) if path.starts_with("/api/sets/") => {
            let id: u64 = path["/api/sets/".len()..].parse().unwrap_or(0);
            let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(set) = p.sets.iter_mut().find(|s| s.0 == id) else {
                return (404, json!({"error": "no such set"}));
            };
            set.2 = b["ClipPath"].as_str().map(str::to_string);
            (200, json!({"ok": true}))
        }
        _ => (404, json!({"error": "not found"})),
    }
}

/// The stand-in on a free port, one request per connection.
pub async fn stand_in(exercises: &[&str]) -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state: Shared = Arc::new(Mutex::new(Pump {
        exercises: exercises.iter().map(|s| s.to_string()).collect(),
        cv_on: true,
        ..Default::default()
    }));
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let state = shared.clone();
            tokio::spawn(async move {
                let Some((head, body)) = crate::http::read_request(&mut sock).await else { return };
                let header = |name: &str| crate::http::request_header(&head, name);
                let mut words = head.split(' ');
                let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
                let (status, reply) = answer(&state, &method, &path, &header("x-api-key"), &body);
                let reply = reply.to_string();
                let out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = sock.write_all(out.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), state)
}
