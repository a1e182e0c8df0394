//! Flags every service shares, flattened into each one's clap parser.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// NATS server URL (tls:// for TLS); a cluster's URLs comma-separated (a list in the config
    /// file): the service connects to any and fails over to the others.
    #[arg(long, env = "PUMP_NATS_URL", default_value = "nats://127.0.0.1:4222", value_delimiter = ',')]
    pub nats_url: Vec<String>,
    #[command(flatten)]
    pub nats_auth: crate::auth::NatsAuthArgs,
    /// Log filter (tracing EnvFilter syntax, e.g. `info,pump_infer=debug`).
    #[arg(long, env = "PUMP_LOG", default_value = "info")]
    pub log: String,
    /// Pose history kept by the poses stream, in seconds (same value for every service: the first
    /// to start sets it).
    #[arg(long, env = "PUMP_POSES_MAX_AGE_S", default_value_t = 3600)]
    pub poses_max_age_s: u64,
    /// Pose history kept by the poses stream, in bytes.
    #[arg(long, env = "PUMP_POSES_MAX_BYTES", default_value_t = 1 << 30)]
    pub poses_max_bytes: i64,
    /// Set history kept by the sets stream, in bytes (kept 30 days; the oldest go first at the cap).
    #[arg(long, env = "PUMP_SETS_MAX_BYTES", default_value_t = 256 << 20)]
    pub sets_max_bytes: i64,
    /// Largest frame message the frames stream accepts, in bytes.
    #[arg(long, env = "PUMP_MAX_FRAME_BYTES", default_value_t = 8 << 20)]
    pub max_frame_bytes: i32,
    /// Most bytes the frames stream holds in nats-server's memory (the oldest frames go first).
    #[arg(long, env = "PUMP_FRAMES_MAX_BYTES", default_value_t = 1 << 30)]
    pub frames_max_bytes: i64,
    /// Most cameras the frames stream keeps a frame of, and each service keeps state of (the
    /// longest silent go first; never a camera with a set in progress or a frame being inferred):
    /// a flood of camera names cannot fill the server's memory nor a service's.
    #[arg(long, env = "PUMP_MAX_CAMERAS", default_value_t = 256)]
    pub max_cameras: i64,
    /// Copies of every stream pump creates, on that many nodes of a NATS cluster (1 on a single
    /// server, 3 in the shipped cluster configs; `[streams] replicas` in the config file). Only
    /// the first service to create a stream decides: later ones warn when they differ.
    #[arg(long, env = "PUMP_STREAMS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub streams_replicas: u8,
}

impl CommonArgs {
    /// How this service connects, as `name`; a credential file that cannot be read is one line.
    pub fn bus(&self, name: &str) -> Result<crate::connect::BusConfig, String> {
        let mut bus = crate::connect::BusConfig::new(self.nats_url.join(","), name);
        bus.auth = self.nats_auth.resolve()?;
        Ok(bus)
    }

    /// The stream limits these flags ask for.
    pub fn stream_limits(&self) -> crate::streams::StreamLimits {
        crate::streams::StreamLimits {
            max_frame_bytes: self.max_frame_bytes,
            frames_max_bytes: self.frames_max_bytes,
            max_cameras: self.max_cameras,
            poses_max_age: std::time::Duration::from_secs(self.poses_max_age_s),
            poses_max_bytes: self.poses_max_bytes,
            sets_max_bytes: self.sets_max_bytes,
            replicas: usize::from(self.streams_replicas),
        }
    }

    /// Installs the stderr logger with this filter.
    pub fn init_tracing(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
}

/// Parses the command line; on bad flags prints clap's message and returns exit code 64
/// (`EX_USAGE`), on `--help`/`--version` prints them and returns 0. A service also takes
/// `--config FILE` / `PUMP_CONFIG` ([`crate::config`]): the file's settings become the defaults
/// that flags and variables override; a bad file is one line naming the key, exit 64.
pub fn parse<A: clap::Parser>() -> Result<A, std::process::ExitCode> {
    let mut cmd = A::command();
    let binary = cmd.get_name().to_string();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let config_arg =
        || {
            clap::Arg::new("config").long("config").env("PUMP_CONFIG").value_name("FILE").help(
                "Configuration file (TOML; deploy/pump.toml shows every key): flags and PUMP_* variables override it",
            )
        };
    if let Some(table) = crate::config::table_of(&binary) {
        cmd = cmd.arg(config_arg());
        if let Some(path) = crate::config::path_from(&args) {
            let bad = |e: String| usage_error(&binary, format!("{}: {e}", path.display()));
            let mut settings = crate::config::load(&path, table).map_err(bad)?;
            if table == "hook" {
                only_top_level_keys_it_has(&cmd, &mut settings);
            }
            cmd = with_settings(cmd, settings, &binary, table).map_err(bad)?;
        }
    }
    // A subcommand that runs as a service (`pump hook`) reads its table of the file too.
    let sub = args.iter().skip(1).map(|a| a.to_string_lossy()).find(|a| !a.starts_with('-')).map(|a| a.to_string());
    if let Some((sub, table)) = sub.and_then(|s| crate::config::table_of_subcommand(&binary, &s).map(|t| (s, t))) {
        if let Some(mut sc) = cmd.find_subcommand(&sub).cloned() {
            let name = format!("{binary} {sub}");
            sc = sc.arg(config_arg());
            if let Some(path) = crate::config::path_from(&args) {
                let bad = |e: String| usage_error(&name, format!("{}: {e}", path.display()));
                let mut settings = crate::config::load(&path, table).map_err(bad)?;
                only_top_level_keys_it_has(&sc, &mut settings);
                sc = with_settings(sc, settings, &name, table).map_err(bad)?;
            }
            cmd = cmd.mut_subcommand(&sub, |_| sc);
        }
    }
    let clap_error = |e: clap::Error| {
        let _ = e.print();
        if e.use_stderr() {
            std::process::ExitCode::from(64)
        } else {
            std::process::ExitCode::SUCCESS
        }
    };
    let matches = cmd.try_get_matches().map_err(clap_error)?;
    A::from_arg_matches(&matches).map_err(clap_error)
}

/// Drops the top-level keys `cmd` has no flag for: they are the pipeline services' (stream
/// limits), and the hook, which reads none of their streams' settings, takes those it has.
fn only_top_level_keys_it_has(cmd: &clap::Command, settings: &mut crate::config::Settings) {
    let has: Vec<String> = cmd.get_arguments().filter_map(|a| Some(a.get_env()?.to_str()?.to_string())).collect();
    let top = settings.top_level.clone();
    settings.values.retain(|var, _| !top.contains_key(var) || has.contains(var));
}

/// The file's settings as the defaults of the flags that read the same variables.
fn with_settings(
    mut cmd: clap::Command,
    settings: crate::config::Settings,
    binary: &str,
    table: &str,
) -> Result<clap::Command, String> {
    let ids: std::collections::BTreeMap<String, clap::Id> =
        cmd.get_arguments().filter_map(|a| Some((a.get_env()?.to_str()?.to_string(), a.get_id().clone()))).collect();
    for (var, values) in settings.values {
        // `[hook] http_addr`: the hook's own keys are PUMP_HOOK_*, every service's ops port is
        // PUMP_HTTP_ADDR.
        let shared = var.strip_prefix("PUMP_HOOK_").and_then(|rest| ids.get(&format!("PUMP_{rest}")));
        match ids.get(&var).or(shared) {
            // A value from the file satisfies a required flag (`--camera`).
            Some(id) => cmd = cmd.mut_arg(id.clone(), |a| a.default_values(values).required(false)),
            // A camera's source is capture's, its exercise the sets stage's.
            None if settings.from_cameras.contains(&var) => {}
            None => {
                let prefix = if table == "hook" { "PUMP_HOOK_" } else { "PUMP_" };
                let key = var.trim_start_matches(prefix).to_ascii_lowercase();
                return Err(match settings.top_level.get(&var) {
                    Some(k) => format!(
                        "{k}: {binary} has no such setting ({var}); top-level keys are for every service, \
                         a service's own go under [{table}] and the others' tables"
                    ),
                    None => format!("[{table}] {key}: {binary} has no such setting ({var})"),
                });
            }
        }
    }
    Ok(cmd)
}

/// Bad input the flags could not catch (a value out of range, an unreadable file): one line on
/// stderr, exit code 64 (`EX_USAGE`) as for bad flags.
pub fn usage_error(binary: &str, message: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("{binary}: {message}");
    std::process::ExitCode::from(64)
}

/// Runs a service: connects (retrying until the server is there), runs `service` with a token
/// that SIGINT/SIGTERM cancel, and turns the outcome into the exit code (1 with one line on
/// stderr on failure).
pub async fn serve<F, Fut, E>(binary: &str, bus: &crate::connect::BusConfig, service: F) -> std::process::ExitCode
where
    F: FnOnce(async_nats::Client, tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let client = match crate::connect::connect(bus).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{binary}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signals = tokio::spawn(shutdown_on_signal(shutdown.clone()));
    // A server that refuses these credentials ends the service with its reason, rather than
    // leaving it waiting for a connection that cannot come.
    let result = tokio::select! {
        r = service(client, shutdown.clone()) => r.map_err(|e| format!("{e:#}")),
        e = crate::connect::refused(bus) => {
            shutdown.cancel();
            Err(e.to_string())
        }
    };
    signals.abort();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Binds a listener, or says why not in one line (for `main`, which then exits 1).
pub async fn bind(binary: &str, addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, std::process::ExitCode> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        eprintln!("{binary}: cannot listen on {addr}: {e}");
        std::process::ExitCode::FAILURE
    })
}

/// Waits for SIGINT or SIGTERM, cancels `token`, and exits with 1 on a second signal.
pub async fn shutdown_on_signal(token: tokio_util::sync::CancellationToken) {
    #[cfg(unix)]
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    for round in 0..2 {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        if round == 0 {
            tracing::info!("shutting down (signal again to exit at once)");
            token.cancel();
        } else {
            tracing::warn!("second signal: exiting now");
            std::process::exit(1);
        }
    }
}
