//! `pump hook --pump BASE_URL`: each closed set logged in the PUMP workout logger, in PUMP's
//! contract ([`super::logger`]), exactly once.
//!
//! PUMP has no idempotency key, so what it already has is kept here: before a set is
//! acknowledged on the sets stream, the id PUMP gave it is stored in the KV bucket
//! [`LOGGED_BUCKET`] (key: the hook's name and the set's id). A set redelivered after a crash
//! between the store and the acknowledgement is found there and not posted again; a set not yet
//! stored is posted on the next start. What remains is the moment between PUMP's `201` and the
//! bucket's acknowledgement of the id (a millisecond on one machine): a crash exactly there posts
//! the set again, and nothing can tell without an idempotency key in PUMP.
//!
//! What PUMP's answers do:
//! - **401**: the key is wrong for every set: the set is handed back and the hook stops (exit 1)
//!   with one line.
//! - **403**: CV auto-logging is off in PUMP, the athlete's own switch: said in one line, the set
//!   kept on `pump.hook.<name>.aside` and counted as not logged; never retried.
//! - others as [`super`] says: retried, or set aside with why.
//!
//! A set's clip, once the gateway wrote it (`pump-clips`), is linked with `PATCH /api/sets/<id>`
//! `{"ClipPath": …}`; which sets have their clip linked is kept in the same bucket, so a restart
//! links what it missed and nothing twice.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, consumer, kv, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use pump_proto::SetEvent;
use serde_json::{json, Value};

use super::logger::{body, created_id, Logged, Names};
use super::{answer, set_aside, shown, Answer, POST_TIMEOUT};

/// Which sets PUMP has: `<hook name>.<set id>` → `{"id": N, "clip": "…"}`.
pub const LOGGED_BUCKET: &str = "pump-hook-logged";

/// What the bucket says of one set.
#[derive(Debug, Clone, Default, PartialEq)]
struct Entry {
    id: u64,
    /// The ClipPath PUMP was given ("" until then).
    clip: String,
}

impl Entry {
    fn from_bytes(b: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(b).ok()?;
        Some(Self { id: v["id"].as_u64()?, clip: v["clip"].as_str().unwrap_or_default().to_string() })
    }

    fn to_bytes(&self) -> Bytes {
        Bytes::from(json!({"id": self.id, "clip": self.clip}).to_string())
    }
}

/// The bucket's key of a set: KV keys take letters, digits and `-_=.`; a set id with anything
/// else is written out in hex so two ids never share a key.
fn key(hook: &str, set_id: &str) -> String {
    let plain = set_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_=".contains(c));
    if plain && !set_id.is_empty() {
        format!("{hook}.{set_id}")
    } else {
        format!("{hook}.x{}", set_id.bytes().map(|b| format!("{b:02x}")).collect::<String>())
    }
}

/// The gym's local date of a set: the day its last rep ended.
fn local_date(set: &SetEvent, tz: &jiff::tz::TimeZone) -> String {
    let ns = [set.end_unix_ns, set.start_unix_ns].into_iter().find(|n| *n > 0);
    let at = ns.and_then(|n| jiff::Timestamp::from_nanosecond(i128::from(n)).ok()).unwrap_or_else(jiff::Timestamp::now);
    at.to_zoned(tz.clone()).date().to_string()
}

/// Talking to PUMP.
pub(super) struct Pump {
    http: reqwest::Client,
    base: reqwest::Url,
    key: Option<String>,
    names: Names,
    read_at: Option<Instant>,
    refresh: Duration,
    tz: jiff::tz::TimeZone,
    weight: Option<f64>,
    clip_base: Option<reqwest::Url>,
    /// The wall display's wake and sleep delays, when it is driven.
    wall: Option<(Duration, Duration)>,
}

/// PUMP's answer to one request.
#[derive(Debug)]
enum Reply {
    Ok(Value),
    /// 401: wrong or missing key.
    Unauthorized,
    Other(Answer),
}

impl Pump {
    pub(super) fn new(
        args: &crate::args::HookArgs,
        base: &str,
        http: reqwest::Client,
        key: Option<String>,
    ) -> Result<Self> {
        let url = |flag: &str, s: &str| {
            let mut u = reqwest::Url::parse(s)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .with_context(|| format!("{flag} {s}: expected http://HOST[:PORT] or https://…"))?;
            // A base with a path keeps it: PUMP behind a proxy at /pump/.
            if !u.path().ends_with('/') {
                let p = format!("{}/", u.path());
                u.set_path(&p);
            }
            Ok::<_, anyhow::Error>(u)
        };
        let tz = match &args.time_zone {
            Some(z) => jiff::tz::TimeZone::get(z).with_context(|| format!("--time-zone {z}: not an IANA time zone"))?,
            None => jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        };
        let non_negative = |flag: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(anyhow::anyhow!("{flag} {v}: expected a number 0 or more"))
            }
        };
        let weight = args.weight.map(|w| non_negative("--weight", w)).transpose()?;
        let wake = non_negative("--wall-wake-after-s", args.wall_wake_after_s)?;
        let sleep = non_negative("--wall-sleep-after-s", args.wall_sleep_after_s)?;
        Ok(Self {
            http,
            base: url("--pump", base)?,
            key,
            names: Names::new(&args.exercise_names, args.fallback_exercise.clone()).map_err(anyhow::Error::msg)?,
            read_at: None,
            refresh: Duration::from_secs(args.exercises_refresh_s.max(1)),
            tz,
            weight,
            clip_base: args.clip_base.as_deref().map(|c| url("--clip-base", c)).transpose()?,
            wall: args.wall.then(|| (Duration::from_secs_f64(wake), Duration::from_secs_f64(sleep))),
        })
    }

    pub(super) fn shown(&self) -> String {
        shown(&self.base)
    }

    async fn request(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Reply {
        let Ok(url) = self.base.join(path) else { return Reply::Other(Answer::Failed(format!("bad path {path}"))) };
        let mut req = self.http.request(method, url);
        if let Some(k) = &self.key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let location = r.headers().get("location").and_then(|l| l.to_str().ok()).map(str::to_string);
                let text = r.bytes().await.unwrap_or_default();
                match status {
                    401 => Reply::Unauthorized,
                    200..=299 => Reply::Ok(serde_json::from_slice(&text).unwrap_or(Value::Null)),
                    _ => {
                        let said = serde_json::from_slice::<Value>(&text)
                            .ok()
                            .and_then(|v| v["error"].as_str().map(str::to_string))
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default();
                        Reply::Other(match answer(status, location.as_deref()) {
                            Answer::Unacceptable(s, why) => Answer::Unacceptable(s, format!("{why}{said}")),
                            Answer::Failed(why) => Answer::Failed(format!("{why}{said}")),
                            other => other,
                        })
                    }
                }
            }
            Err(e) if e.is_timeout() => {
                Reply::Other(Answer::Failed(format!("no answer within {}s", POST_TIMEOUT.as_secs())))
            }
            Err(e) => Reply::Other(Answer::Failed(format!("{e:#}"))),
        }
    }

    /// Reads PUMP's exercise names when they are older than the refresh time (or `now`).
    async fn read_names(&mut self, now: bool) -> Result<(), Stop> {
        if !now && self.read_at.is_some_and(|t| t.elapsed() < self.refresh) {
            return Ok(());
        }
        match self.request(reqwest::Method::GET, "api/exercises", None).await {
            Reply::Ok(list) => {
                let n = self.names.learn(&list).map_err(|e| Stop::Retry(format!("GET /api/exercises: {e}")))?;
                if self.read_at.is_none() {
                    eprintln!("pump hook: PUMP at {} has {n} exercises", self.shown());
                }
                self.read_at = Some(Instant::now());
                Ok(())
            }
            Reply::Unauthorized => Err(Stop::Unauthorized),
            Reply::Other(a) => Err(Stop::Retry(format!("GET /api/exercises: {}", said(&a)))),
        }
    }
}

/// Why the set in hand cannot go on now.
#[derive(Debug)]
enum Stop {
    Unauthorized,
    Retry(String),
}

fn said(a: &Answer) -> String {
    match a {
        Answer::Taken => "taken".into(),
        Answer::Declined => "HTTP 403".into(),
        Answer::Misdirected(w) | Answer::Failed(w) => w.clone(),
        Answer::Unacceptable(_, w) => w.clone(),
    }
}

/// What became of one set.
enum Outcome {
    /// PUMP has it (now or from before).
    Logged(Entry),
    /// Not logged, for good, and kept aside: acknowledged. True when PUMP declined it (403).
    NotLogged(bool),
}

/// How long a set is tried, how long between tries, the bucket's replicas.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub give_up: Duration,
    pub max_backoff: Duration,
    pub replicas: usize,
}

/// Delivers the sets of `messages` to PUMP until `stop`; returns on a clean stop, fails on 401.
#[allow(clippy::too_many_arguments)]
pub(super) async fn deliver(
    mut pump: Pump,
    client: async_nats::Client,
    js: jetstream::Context,
    mut messages: consumer::pull::Stream,
    hook: String,
    aside: String,
    limits: Limits,
    stats: std::sync::Arc<crate::stats::Stats>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    let store = tokio::select! {
        _ = &mut stop => return Ok(()),
        s = logged_bucket(&js, limits.replicas) => s?,
    };
    let clips = ClipLinker { js: js.clone(), store: store.clone(), hook: hook.clone() };
    if pump.clip_base.is_some() {
        let (pump_for_clips, clips) = (pump.another_handle(), clips.clone());
        tokio::spawn(async move { clips.watch(pump_for_clips).await });
    } else {
        eprintln!("pump hook: no --clip-base: sets are logged without their clips");
    }
    if let Some((wake, sleep)) = pump.wall {
        tokio::spawn(drive_wall(pump.another_handle(), client.clone(), wake, sleep));
    }
    // A wrong key is said at the start, not at the first set; PUMP away is no reason to wait.
    match pump.read_names(true).await {
        Err(Stop::Unauthorized) => {
            bail!("PUMP at {} answers 401 unauthorized: its API key is not the one in --api-key-file", pump.shown())
        }
        Err(Stop::Retry(why)) => eprintln!("pump hook: cannot read PUMP's exercises yet ({why}); reading them per set"),
        Ok(()) => {}
    }
    let mut not_logged = 0u64;
    loop {
        let (msg, set) = tokio::select! {
            _ = &mut stop => return Ok(()),
            m = super::next_set(&mut messages, &js, &aside) => m?,
        };
        let k = key(&hook, &set.set_id);
        let outcome = tokio::select! {
            _ = &mut stop => return super::hand_back(&client, messages, &msg, &set.set_id).await,
            o = log_one(&mut pump, &store, &js, &aside, &k, &set, &msg, limits, &stats) => o,
        };
        stats.waiting.store(false, std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok(Outcome::Logged(entry)) => {
                stats.delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The clip may have been written before the set was logged; one written after
                // is the watcher's.
                clips.link(&pump, &set.set_id, entry).await;
            }
            Ok(Outcome::NotLogged(declined)) => {
                let counter = if declined { &stats.declined } else { &stats.set_aside };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                not_logged += 1;
                eprintln!("pump hook: {not_logged} set(s) not logged since the start");
            }
            Err(Stop::Unauthorized) => {
                let _ = super::hand_back(&client, messages, &msg, &set.set_id).await;
                bail!(
                    "PUMP at {} answers 401 unauthorized: its API key is not the one in --api-key-file (nothing was dropped)",
                    pump.shown()
                );
            }
            Err(Stop::Retry(why)) => bail!("set {}: {why}", set.set_id),
        }
        msg.double_ack().await.map_err(|e| anyhow::anyhow!("acknowledging set {}: {e}", set.set_id))?;
    }
}

impl Pump {
    /// Another handle on the same PUMP (the clip linker's, the wall's), with its own name cache.
    fn another_handle(&self) -> Self {
        Self {
            http: self.http.clone(),
            base: self.base.clone(),
            key: self.key.clone(),
            names: Names::default(),
            read_at: None,
            refresh: self.refresh,
            tz: self.tz.clone(),
            weight: self.weight,
            clip_base: self.clip_base.clone(),
            wall: self.wall,
        }
    }
}

/// Drives the wall display from what every camera sees ([`crate::wall`]), until the process
/// ends. Poses are read as they come (core NATS): presence is now, not history.
async fn drive_wall(pump: Pump, client: async_nats::Client, wake_after: Duration, sleep_after: Duration) {
    use prost::Message as _;
    let start = Instant::now();
    let mut wall = crate::wall::Wall::new(wake_after, sleep_after, Duration::ZERO);
    let mut poses = loop {
        match client.subscribe(pump_bus::subject::POSES_ALL).await {
            Ok(s) => break s,
            Err(e) => {
                eprintln!("pump hook: cannot follow the poses for the wall display ({e}); again in 5s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_said = String::new();
    loop {
        let command = tokio::select! {
            m = poses.next() => {
                let Some(m) = m else { return };
                let anyone = pump_proto::PoseFrame::decode(m.payload).is_ok_and(|p| !p.people.is_empty());
                wall.poses(start.elapsed(), anyone)
            }
            _ = tick.tick() => wall.tick(start.elapsed()),
        };
        let Some(command) = command else { continue };
        let said = match pump.request(reqwest::Method::POST, command.path(), Some(&json!({}))).await {
            Reply::Ok(_) => {
                println!("wall display: {}", command.path().trim_start_matches("api/wall/"));
                continue;
            }
            Reply::Unauthorized => "HTTP 401".to_string(),
            // PUMP without a wall (404) or one that refuses: said once, not tried again.
            Reply::Other(a @ (Answer::Misdirected(_) | Answer::Unacceptable(..) | Answer::Declined)) => said(&a),
            Reply::Other(a) => {
                wall.unsent();
                said(&a)
            }
        };
        if said != last_said {
            eprintln!(
                "pump hook: the wall display was not told to {} ({said})",
                command.path().trim_start_matches("api/wall/")
            );
            last_said = said;
        }
    }
}

/// Opens (or makes) the bucket of what PUMP has, retrying while JetStream is away.
async fn logged_bucket(js: &jetstream::Context, replicas: usize) -> Result<kv::Store> {
    let mut wait = Duration::from_millis(200);
    loop {
        let made = match js.get_key_value(LOGGED_BUCKET).await {
            Ok(s) => Ok(s),
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: LOGGED_BUCKET.into(),
                    description: "pump hook: the sets PUMP has, and their ids there".into(),
                    history: 1,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string()),
        };
        match made {
            Ok(s) => return Ok(s),
            Err(e) if wait >= Duration::from_secs(5) => bail!("cannot open the {LOGGED_BUCKET} bucket: {e}"),
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// Retries `f` with backoff until it gives a value; what went wrong is said each time.
async fn until_ok<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    max: Duration,
    mut f: impl FnMut() -> F,
) -> T {
    let mut wait = Duration::from_millis(500);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => eprintln!("pump hook: {what} ({e}); again in {:.1}s", wait.as_secs_f64()),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(max);
    }
}

/// Logs one set, or finds it already logged.
#[allow(clippy::too_many_arguments)]
async fn log_one(
    pump: &mut Pump,
    store: &kv::Store,
    js: &jetstream::Context,
    aside: &str,
    k: &str,
    set: &SetEvent,
    msg: &jetstream::Message,
    limits: Limits,
    stats: &crate::stats::Stats,
) -> Result<Outcome, Stop> {
    let Limits { give_up, max_backoff, .. } = limits;
    let known = until_ok("cannot read what PUMP has", max_backoff, || store.get(k)).await;
    if let Some(entry) = known.as_deref().and_then(Entry::from_bytes) {
        println!("{}: set {} already in PUMP as #{}", set.camera, set.set_id, entry.id);
        return Ok(Outcome::Logged(entry));
    }
    let mut backoff = Duration::from_secs(1);
    let first_try = Instant::now();
    let mut last_said = String::new();
    loop {
        let attempt = async {
            pump.read_names(false).await?;
            let mut logged = pump.names.resolve(&set.exercise);
            if !matches!(logged, Logged::As(_)) {
                // PUMP may have gained the exercise since it was read.
                pump.read_names(true).await?;
                logged = pump.names.resolve(&set.exercise);
            }
            Ok::<_, Stop>(logged)
        };
        let again = match attempt.await {
            Err(Stop::Unauthorized) => return Err(Stop::Unauthorized),
            Err(Stop::Retry(why)) => why,
            Ok(Logged::Held(why)) => {
                format!("{why}: add it in PUMP, map it (--exercise-name), or give --fallback-exercise")
            }
            Ok(logged) => {
                let b = body(set, &logged, &local_date(set, &pump.tz), pump.weight);
                match pump.request(reqwest::Method::POST, "api/sets", Some(&b)).await {
                    Reply::Unauthorized => return Err(Stop::Unauthorized),
                    Reply::Ok(answer) => {
                        let Some(id) = created_id(&answer) else {
                            // Taken, but with no id to link the clip to: logged all the same.
                            eprintln!("pump hook: PUMP took set {} without an id ({answer})", set.set_id);
                            return Ok(Outcome::Logged(Entry { id: 0, clip: "-".into() }));
                        };
                        let entry = Entry { id, clip: String::new() };
                        until_ok("cannot store what PUMP has", max_backoff, || store.put(k, entry.to_bytes())).await;
                        println!(
                            "{}: set {} logged in PUMP as #{id}: {} × {} {}",
                            set.camera, set.set_id, b["Reps"], b["Name"], b["Note"]
                        );
                        return Ok(Outcome::Logged(entry));
                    }
                    Reply::Other(Answer::Declined) => {
                        eprintln!(
                            "pump hook: CV auto-logging is off in PUMP: set {} not logged, kept on {aside}",
                            set.set_id
                        );
                        keep_aside(js, aside, &b, set, "CV auto-logging is off in PUMP", max_backoff).await;
                        return Ok(Outcome::NotLogged(true));
                    }
                    Reply::Other(Answer::Unacceptable(_, why)) => {
                        eprintln!("pump hook: PUMP cannot take set {} ({why}); set aside on {aside}", set.set_id);
                        keep_aside(js, aside, &b, set, &why, max_backoff).await;
                        return Ok(Outcome::NotLogged(false));
                    }
                    Reply::Other(Answer::Failed(why)) if first_try.elapsed() >= give_up => {
                        eprintln!(
                            "pump hook: set {} still not logged after {}s ({why}); set aside on {aside}, the next goes on",
                            set.set_id,
                            give_up.as_secs()
                        );
                        keep_aside(js, aside, &b, set, &why, max_backoff).await;
                        return Ok(Outcome::NotLogged(false));
                    }
                    Reply::Other(a) => said(&a),
                }
            }
        };
        // One line per new reason, not one per retry of the same.
        if again != last_said {
            eprintln!("pump hook: set {} not logged yet ({again}); trying again", set.set_id);
            last_said = again;
        }
        stats.waiting.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = msg.ack_with(AckKind::Progress).await;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max_backoff);
    }
}

/// Keeps a set PUMP will not take on the hook's aside subject, with why, retrying while
/// JetStream is away: it is acknowledged only once kept.
async fn keep_aside(js: &jetstream::Context, aside: &str, body: &Value, set: &SetEvent, why: &str, max: Duration) {
    let body = Bytes::from(body.to_string());
    until_ok("cannot keep the set aside", max, || set_aside(js, aside, body.clone(), &set.set_id, why)).await;
}

/// Links each set's clip in PUMP once the gateway has written it.
#[derive(Clone)]
struct ClipLinker {
    js: jetstream::Context,
    store: kv::Store,
    hook: String,
}

impl ClipLinker {
    /// Gives PUMP the set's ClipPath when its clip is in the store; remembers it did. False when it
    /// is to be tried again (the clip not there yet, the store or PUMP failing).
    async fn link(&self, pump: &Pump, set_id: &str, mut entry: Entry) -> bool {
        let Some(base) = &pump.clip_base else { return true };
        if entry.id == 0 || !entry.clip.is_empty() {
            return true;
        }
        let name = pump_gateway_clip_name(set_id);
        let Ok(clips) = self.js.get_object_store(CLIPS_BUCKET).await else { return false };
        if !clips.info(&name).await.is_ok_and(|i| !i.deleted) {
            return false;
        }
        let Ok(path) = base.join(&format!("clips/{name}")) else { return true };
        let body = json!({"ClipPath": path.as_str()});
        match pump.request(reqwest::Method::PATCH, &format!("api/sets/{}", entry.id), Some(&body)).await {
            Reply::Ok(_) => {
                entry.clip = path.to_string();
                let k = key(&self.hook, set_id);
                if let Err(e) = self.store.put(&k, entry.to_bytes()).await {
                    eprintln!("pump hook: set {set_id}'s clip linked, not remembered ({e}): it may be linked again");
                }
                println!("set {set_id}: clip linked in PUMP (#{})", entry.id);
                true
            }
            Reply::Unauthorized => {
                eprintln!("pump hook: PUMP answers 401 to the clip of set {set_id}");
                false
            }
            Reply::Other(a) => {
                eprintln!("pump hook: the clip of set {set_id} not linked yet ({})", said(&a));
                false
            }
        }
    }

    /// Follows the clip store (from its first clip: a restart links what it missed) and links
    /// each new clip of a set PUMP has; clips that could not be linked are tried again.
    async fn watch(self, pump: Pump) {
        let mut wait = Duration::from_secs(1);
        loop {
            if let Ok(clips) = self.js.get_object_store(CLIPS_BUCKET).await {
                if let Ok(mut watch) = clips.watch_with_history().await {
                    wait = Duration::from_secs(1);
                    let mut unlinked: Vec<String> = Vec::new();
                    let mut tick = tokio::time::interval(Duration::from_secs(10));
                    loop {
                        let info = tokio::select! {
                            i = watch.next() => i,
                            _ = tick.tick() => {
                                for set_id in std::mem::take(&mut unlinked) {
                                    self.try_link(&pump, &set_id, &mut unlinked).await;
                                }
                                continue;
                            }
                        };
                        let Some(Ok(info)) = info else { break };
                        if info.deleted {
                            continue;
                        }
                        if let Some(set_id) = info.name.strip_suffix(".avi") {
                            self.try_link(&pump, set_id, &mut unlinked).await;
                        }
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    async fn try_link(&self, pump: &Pump, set_id: &str, unlinked: &mut Vec<String>) {
        let k = key(&self.hook, set_id);
        let Ok(Some(b)) = self.store.get(&k).await else { return };
        let Some(entry) = Entry::from_bytes(&b) else { return };
        if !self.link(pump, set_id, entry).await && !unlinked.iter().any(|s| s == set_id) {
            unlinked.push(set_id.to_string());
        }
    }
}

/// The gateway's clip store and its names (`pump_gateway::clips`), said again here: the command
/// line does not link the gateway.
const CLIPS_BUCKET: &str = "pump-clips";
fn pump_gateway_clip_name(set_id: &str) -> String {
    format!("{set_id}.avi")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_id_is_a_key_of_its_own() {
        assert_eq!(key("logger", "rack1-3"), "logger.rack1-3");
        assert_eq!(key("logger", "a.b"), "logger.x612e62");
        assert_ne!(key("logger", "a b"), key("logger", "a_b"));
    }

    #[test]
    fn the_date_is_the_gyms_local_day_of_the_sets_end() {
        // 23:30 UTC on 4 December is already the 5th in Auckland, still the 4th in New York.
        let end = jiff::Timestamp::from_second(1_796_427_000).unwrap();
        assert_eq!(end.to_string(), "2026-12-04T23:30:00Z");
        let set = SetEvent { end_unix_ns: end.as_nanosecond() as i64, ..Default::default() };
        let tz = |z| jiff::tz::TimeZone::get(z).unwrap();
        assert_eq!(local_date(&set, &tz("Pacific/Auckland")), "2026-12-05");
        assert_eq!(local_date(&set, &tz("America/New_York")), "2026-12-04");
    }

    #[test]
    fn an_entry_reads_back() {
        let e = Entry { id: 42, clip: "http://g/clips/a.avi".into() };
        assert_eq!(Entry::from_bytes(&e.to_bytes()), Some(e));
        assert_eq!(Entry::from_bytes(b"nope"), None);
    }
}
