//! A real `nats-server` per test, on a free port, with JetStream and its own store; killed and
//! its store deleted on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    /// The server's configuration file, and what its `$VARIABLES` read from the environment.
    config: PathBuf,
    env: Vec<(String, String)>,
}

/// The nats-server the tests run: `PUMP_NATS_SERVER`, else the one `just setup` pins in
/// `.cache/nats-server` (a current server: the shipped configs need 2.10+).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("PUMP_NATS_SERVER") {
        return p.into();
    }
    let pinned = crate::workspace().join(".cache/nats-server/nats-server");
    assert!(pinned.is_file(), "{} is missing: run `just setup` (or set PUMP_NATS_SERVER)", pinned.display());
    pinned
}

/// Returns a port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts connections.
    ///
    /// # Panics
    /// When nats-server is missing or does not come up within 10 s.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts a server on `port` (for tests that start a service before the server).
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, crate::workspace().join("deploy/nats.conf"), Vec::new())
    }

    /// Starts a server with another configuration (`deploy/nats-secure.conf`), whose variables
    /// (certificate paths, passwords) come from `env`.
    pub fn start_with(port: u16, config: PathBuf, env: Vec<(String, String)>) -> Self {
        let store = tempfile::tempdir().expect("temp dir");
        let mut s = Self { child: None, port, store, config, env };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            // The configuration pump ships (raw 1080p frames fit), with this test's port and store.
            .arg("-c")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "--store_dir"])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id while it runs (its CPU time, in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (its store is kept, for a restart).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops and starts again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Stops with SIGTERM (the server shuts down in order, as under a service manager), then
    /// starts again on the same port and store.
    pub fn restart_gracefully(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Three `nats-server` nodes on loopback clustered with JetStream clustering, each from
/// `deploy/nats-cluster.conf` on free ports with its own store: what the cluster tests run on.
#[derive(Debug)]
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts the three nodes; they elect a JetStream leader within a few seconds of this.
    pub fn start() -> Self {
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let config = crate::workspace().join("deploy/nats-cluster.conf");
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (port, cluster))| {
                let mut env = vec![
                    ("NATS_NODE".to_string(), format!("n{i}")),
                    ("NATS_PORT".to_string(), port.to_string()),
                    ("NATS_CLUSTER_PORT".to_string(), cluster.to_string()),
                ];
                for (j, (_, c)) in ports.iter().enumerate() {
                    env.push((format!("NATS_ROUTE_{j}"), format!("nats-route://127.0.0.1:{c}")));
                }
                NatsServer::start_with(*port, config.clone(), env)
            })
            .collect();
        Self { nodes }
    }

    /// Every node's URL, comma-separated: how a service is told of a cluster.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }
}
