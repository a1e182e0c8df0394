//! The service binaries as processes: started with flags and environment, their output in a
//! file, ready when `/readyz` says so, stopped with SIGTERM; every wait bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failure here is a failed test

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::nats::free_port;
use crate::{bin, wait_with_deadline, workspace};

/// A free address on the loopback interface.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Runs a binary that is expected to end by itself, bounded.
pub async fn run(name: &'static str, args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let child = Command::new(bin(name))
            .args(&args)
            .envs(env)
            .current_dir(workspace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_with_deadline(child, Duration::from_secs(120))
    })
    .await
    .unwrap()
}

/// A long-running service binary, its output in a file (a pipe nobody reads could fill up).
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    child: Child,
    log: std::path::PathBuf,
}

impl Service {
    pub fn start(name: &'static str, args: &[&str], env: &[(&str, String)], logs: &std::path::Path) -> Self {
        let log = logs.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin(name))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(workspace())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Service { name, child, log }
    }

    /// The process id, for signals other than SIGTERM.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) for the process to end by itself: its exit status and log.
    pub async fn wait_exit(self, within: Duration) -> (std::process::ExitStatus, String) {
        let (log, child) = (self.log.clone(), self.child);
        let out = tokio::task::spawn_blocking(move || wait_with_deadline(child, within)).await.unwrap();
        (out.status, std::fs::read_to_string(log).unwrap_or_default())
    }

    /// SIGTERM and a clean exit (status 0, bounded), or the test fails with the service's log;
    /// the log.
    pub async fn stop(self) -> String {
        let name = self.name;
        let (status, log, _) = self.terminate().await;
        assert_eq!(status.code(), Some(0), "{name} did not stop cleanly: {log}");
        log
    }

    /// SIGTERM, then the exit status, bounded.
    pub async fn terminate(self) -> (std::process::ExitStatus, String, Duration) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success(), "{} is gone", self.name);
        let log = self.log.clone();
        let child = self.child;
        let out =
            tokio::task::spawn_blocking(move || wait_with_deadline(child, Duration::from_secs(20))).await.unwrap();
        (out.status, std::fs::read_to_string(log).unwrap_or_default(), started.elapsed())
    }
}

/// Polls `/readyz` until it answers 200.
pub async fn wait_ready(service: &Service, addr: SocketAddr) {
    wait_readyz(service, addr, "ready", |r| r.status == 200).await;
}

/// Polls `/readyz` until `done` says its reply is the one awaited (`what`), 60 s at most.
pub async fn wait_readyz(service: &Service, addr: SocketAddr, what: &str, done: impl Fn(&crate::http::Reply) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = tokio::time::timeout(Duration::from_secs(2), async {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(_) => Some(crate::http::get(addr, "/readyz").await),
                Err(_) => None,
            }
        })
        .await
        .ok()
        .flatten();
        if reply.as_ref().is_some_and(&done) {
            return;
        }
        assert!(Instant::now() < deadline, "{} not {what} within 60 s: {}", service.name, service.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
