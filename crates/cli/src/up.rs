//! `pump up [CONFIG]`: the whole system on one machine, from one config file. Starts nats-server
//! (from PATH) with its JetStream store in the data folder, then the services — the same binaries
//! the containers run, each reading the config — says when each is ready and where the preview
//! and gRPC are, and on Ctrl-C (or SIGTERM) stops them in order: the hook (with `[hook]`: sets
//! logged in PUMP), which hands back the set it holds; the camera, so nothing new arrives;
//! inference; the sets stage, which stores what it has; the gateway; NATS last.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::args::UpArgs;

/// A line for the user on stdout. A reader that went away (a pipe closed by Ctrl-C) must not
/// stop the orderly shutdown half way, as `println!`'s panic would.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The services in the order they start (consumers before the camera) and their default ops port.
const SERVICES: [(&str, &str, &str); 4] = [
    ("gateway", "pump-gateway", "127.0.0.1:9104"),
    ("sets", "pump-sets", "127.0.0.1:9103"),
    ("infer", "pump-infer", "127.0.0.1:9102"),
    ("capture", "pump-capture", "127.0.0.1:9101"),
];

/// How long a service has to stop after SIGTERM before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(20);

struct Running {
    name: &'static str,
    child: Child,
    http: Option<SocketAddr>,
    ready: bool,
    log: PathBuf,
}

/// Each service's view of the config file, read once.
struct Views(std::collections::BTreeMap<&'static str, pump_bus::config::Settings>);

impl Views {
    /// Reads the file for every service: a bad key stops `pump up` before anything runs.
    fn read(config: &Path) -> Result<Self> {
        let mut views = std::collections::BTreeMap::new();
        for table in SERVICES.map(|s| s.0).into_iter().chain(["hook"]) {
            let s = pump_bus::config::load(config, table).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
            views.insert(table, s);
        }
        Ok(Self(views))
    }

    /// A setting of `table`'s service, or `default`.
    fn setting(&self, table: &str, var: &str, default: &str) -> String {
        let value = self.0.get(table).and_then(|s| s.values.get(var)).and_then(|v| v.first());
        value.cloned().unwrap_or_else(|| default.to_string())
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

/// Where `just setup` puts the pinned nats-server, from the checkout's root.
const PINNED_NATS_SERVER: &str = ".cache/nats-server/nats-server";

/// Whether `nats_server` can sync every JetStream write before its ack (2.10 and newer); an
/// older one runs, with one line saying what it risks.
async fn syncs_each_write(nats_server: &Path) -> Result<bool> {
    let out = Command::new(nats_server)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("cannot run {}", nats_server.display()))?;
    let says = String::from_utf8_lossy(&out.stdout);
    let Some((version, current)) = nats_version(&says) else {
        let first = says.lines().next().unwrap_or("").trim();
        bail!("{} is not a nats-server (`--version` said {first:?})", nats_server.display())
    };
    if !current {
        say!(
            "nats-server {version} is older than 2.10: a power cut may lose the last 2 minutes of sets (`just setup` pins a current one)"
        );
    }
    Ok(current)
}

/// The version `nats-server --version` printed ("nats-server: v2.15.1"), and whether it is 2.10
/// or newer.
fn nats_version(says: &str) -> Option<(&str, bool)> {
    let version = says.trim().strip_prefix("nats-server: v")?;
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().ok());
    let (major, minor) = (parts.next()??, parts.next()??);
    Some((version, (major, minor) >= (2, 10)))
}

/// `/readyz` answers 200.
async fn ready(addr: SocketAddr) -> bool {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n").await.ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        Some(head.ends_with(b"200"))
    };
    tokio::time::timeout(Duration::from_secs(1), ask).await.ok().flatten().unwrap_or(false)
}

/// Sends SIGTERM and waits; kills what outlives [`STOP_WITHIN`].
async fn stop(r: &mut Running) {
    if let Some(pid) = r.child.id() {
        // tokio's Child can only SIGKILL; a service needs SIGTERM to stop in order.
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    match tokio::time::timeout(STOP_WITHIN, r.child.wait()).await {
        // nats-server says 1 after an orderly stop on SIGTERM.
        Ok(Ok(status)) if status.success() || r.name == "nats-server" => say!("stopped {}", r.name),
        Ok(Ok(status)) => say!("stopped {} ({status}; see {})", r.name, r.log.display()),
        _ => {
            let _ = r.child.kill().await;
            say!("killed {} (no stop within {STOP_WITHIN:?})", r.name);
        }
    }
}

fn spawn(name: &'static str, program: &Path, args: &[&str], env: &[(&str, &Path)], logs: &Path) -> Result<Running> {
    let log = logs.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).with_context(|| format!("cannot write {}", log.display()))?;
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        // Its own process group: Ctrl-C reaches `pump up` alone, which then stops each in order
        // (a second signal would make a service drop what it holds and exit at once).
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    Ok(Running { name, child, http: None, ready: false, log })
}

pub fn run(a: UpArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(up(a))
}

async fn up(a: UpArgs) -> Result<()> {
    let config = std::fs::canonicalize(&a.config).with_context(|| format!("cannot read {}", a.config.display()))?;
    let views = Views::read(&config)?;
    let nats_url = views.setting("capture", "PUMP_NATS_URL", "nats://127.0.0.1:4222");
    let host_port = nats_url.trim_start_matches("nats://").rsplit('@').next().unwrap_or("").to_string();
    let (host, port) = host_port.rsplit_once(':').context("nats_url: expected nats://HOST:PORT")?;
    let nats_server = match a.nats_server.clone() {
        Some(p) => p,
        None => Some(PathBuf::from(PINNED_NATS_SERVER)).filter(|p| p.is_file()).or_else(|| find_on_path("nats-server")).context(
            "no nats-server: `just setup` fetches one into .cache/nats-server (or give --nats-server, or put one on PATH)",
        )?,
    };
    let sync = syncs_each_write(&nats_server).await?;
    let bin_dir = std::env::current_exe()?.parent().map(Path::to_path_buf).context("where pump is")?;
    // Each service reads the file as it will at start (`--version` after the settings are
    // applied): a key it does not have stops `pump up` here, before anything runs.
    let hooked = views
        .0
        .get("hook")
        .is_some_and(|h| h.values.contains_key("PUMP_HOOK_PUMP") || h.values.contains_key("PUMP_HOOK_URL"));
    let checked = SERVICES.map(|s| s.1).into_iter().chain(hooked.then_some("pump-hook"));
    for binary in checked {
        let out = Command::new(bin_dir.join(binary))
            .arg("--config")
            .arg(&config)
            .arg("--version")
            .output()
            .await
            .with_context(|| format!("cannot run {binary} (built? cargo build --workspace --bins)"))?;
        if !out.status.success() {
            let says = String::from_utf8_lossy(&out.stderr);
            bail!("{}", says.lines().find(|l| !l.trim().is_empty()).unwrap_or("bad configuration"));
        }
    }

    std::fs::create_dir_all(a.data.join("logs"))?;
    let data = std::fs::canonicalize(&a.data)?;
    let logs = data.join("logs");
    // Frames up to 8 MB (raw 1080p, capture's default), JetStream on disk in the data folder.
    let nats_conf = data.join("nats.conf");
    // A set acknowledged is on disk (deploy/nats.conf), where the server can say so.
    let sync_line = if sync { "  sync_interval: always\n" } else { "" };
    std::fs::write(
        &nats_conf,
        format!("max_payload: 8MB\njetstream {{\n  store_dir: {:?}\n{sync_line}}}\n", data.join("jetstream")),
    )?;
    let conf = nats_conf.display().to_string();
    let mut nats = spawn("nats-server", &nats_server, &["-c", &conf, "-a", host, "-p", port], &[], &logs)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect((host, port.parse::<u16>()?)).await.is_err() {
        if Instant::now() > deadline || nats.child.try_wait()?.is_some() {
            bail!("nats-server did not start on {host}:{port}: see {}", nats.log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    say!("nats-server on {nats_url} (store in {})", data.join("jetstream").display());

    let mut services = Vec::new();
    for (table, binary, default_http) in SERVICES {
        let mut r = spawn(binary, &bin_dir.join(binary), &[], &[("PUMP_CONFIG", &config)], &logs)?;
        r.http = views.setting(table, "PUMP_HTTP_ADDR", default_http).parse().ok();
        services.push(r);
    }
    // The PUMP logger's hook, where the file gives it somewhere to log.
    if hooked {
        services.push(spawn("pump-hook", &bin_dir.join("pump-hook"), &[], &[("PUMP_CONFIG", &config)], &logs)?);
    }
    let grpc = views.setting("gateway", "PUMP_GRPC_ADDR", "127.0.0.1:50051");
    let preview = views.setting("gateway", "PUMP_HTTP_ADDR", "127.0.0.1:9104");
    say!("logs in {}; Ctrl-C stops everything", logs.display());

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut announced = false;
    let failure = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break None,
            _ = term.recv() => break None,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let mut failed = None;
        for r in services.iter_mut() {
            if let Some(status) = r.child.try_wait()? {
                // A capture of files ends when they do; anything else ending is a failure.
                if !(r.name == "pump-capture" && status.success()) {
                    failed = Some(format!("{} exited ({status}): see {}", r.name, r.log.display()));
                }
                continue;
            }
            if !r.ready {
                if let Some(addr) = r.http {
                    if ready(addr).await {
                        r.ready = true;
                        say!("ready: {}", r.name);
                    }
                }
            }
        }
        if nats.child.try_wait()?.is_some() {
            failed = Some(format!("nats-server exited: see {}", nats.log.display()));
        }
        if failed.is_some() {
            break failed;
        }
        if !announced && services.iter().filter(|r| !["pump-capture", "pump-hook"].contains(&r.name)).all(|r| r.ready) {
            announced = true;
            say!("preview: http://{preview}/   gRPC: {grpc}");
        }
    };
    // The camera first, NATS last (services store what they hold while the bus is there).
    for r in services.iter_mut().rev() {
        if r.child.try_wait()?.is_none() {
            stop(r).await;
        }
    }
    stop(&mut nats).await;
    match failure {
        Some(why) => bail!(why),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_servers_from_2_10_sync_each_write() {
        assert_eq!(nats_version("nats-server: v2.15.1\n"), Some(("2.15.1", true)));
        assert_eq!(nats_version("nats-server: v2.10.0-beta.3"), Some(("2.10.0-beta.3", true)));
        assert_eq!(nats_version("nats-server: v2.9.10"), Some(("2.9.10", false)));
        assert_eq!(nats_version("nats-server: v3.0.0"), Some(("3.0.0", true)));
        assert_eq!(nats_version("Usage: something else"), None);
        assert_eq!(nats_version("nats-server: vX"), None);
    }
}
