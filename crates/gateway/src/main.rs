//! `pump-gateway`: gRPC queries over pump's streams. See `pump-gateway --help`.

use std::process::ExitCode;

use clap::Parser;
use pump_bus::args::CommonArgs;

#[derive(Debug, Parser)]
#[command(
    name = "pump-gateway",
    version,
    about = "Answers gRPC queries about poses, reps and sets (pump.v1.PoseQuery), and serves the live preview (--http-addr)"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Address the gRPC server listens on.
    #[arg(long, env = "PUMP_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: std::net::SocketAddr,
    /// Poses a second under which a camera's rep counts are not exact: ListCameras, /healthz and
    /// the preview say when a camera is under it (the same variable as pump-sets').
    #[arg(long, env = "PUMP_MIN_POSE_RATE", default_value_t = pump_gateway::live::DEFAULT_POSE_RATE_FLOOR)]
    min_pose_rate: f64,
    /// Address of the preview page (/), snapshots, /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9104")]
    http_addr: std::net::SocketAddr,
    /// File holding the token clients must present (gRPC `authorization: Bearer <token>`; the
    /// preview and snapshots too). Health and metrics stay open. Or PUMP_AUTH_TOKEN, from the
    /// environment. Required when either address is reachable from other machines.
    #[arg(long, env = "PUMP_AUTH_TOKEN_FILE")]
    auth_token_file: Option<std::path::PathBuf>,
    #[arg(long, env = "PUMP_AUTH_TOKEN", hide = true, hide_env_values = true)]
    auth_token: Option<String>,
    /// Serve both ports over TLS with this certificate chain (PEM); with --tls-key.
    #[arg(long, env = "PUMP_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "PUMP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Record a clip of each set (its posed frames with the skeleton and rep count, Motion-JPEG
    /// AVI) into the `pump-clips` object store on NATS; listed on the preview, downloaded from
    /// /clips/<set id>.avi or GetSetClip. The gateway then receives every camera's frames.
    #[arg(long, env = "PUMP_CLIPS", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    clips: bool,
    /// The clip store's size (MiB): the oldest clips are deleted to make room.
    #[arg(long, env = "PUMP_CLIPS_MAX_MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    clips_max_mb: u64,
    /// Hours a clip is kept.
    #[arg(long, env = "PUMP_CLIPS_MAX_AGE_H", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..))]
    clips_max_age_h: u64,
    /// Serve other machines without a token (a network you trust otherwise, e.g. behind a proxy
    /// that authenticates).
    #[arg(long, env = "PUMP_ALLOW_UNAUTHENTICATED", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    allow_unauthenticated: bool,
}

impl Args {
    /// Who may ask, from the flags; a gateway reachable from other machines needs a token.
    fn access(&self) -> Result<pump_gateway::access::Access, String> {
        let token = pump_bus::auth::secret(self.auth_token_file.as_deref(), self.auth_token.as_deref(), "auth token")?;
        if token.as_deref().is_some_and(str::is_empty) {
            return Err("the auth token is empty".into());
        }
        let exposed = [self.grpc_addr, self.http_addr].into_iter().find(|a| !a.ip().is_loopback());
        match (token, exposed) {
            (Some(t), _) => Ok(pump_gateway::access::Access::with_token(t, self.tls_cert.is_some())),
            (None, Some(addr)) if !self.allow_unauthenticated => Err(format!(
                "{addr} is reachable from other machines: set PUMP_AUTH_TOKEN_FILE (and PUMP_TLS_CERT/KEY), \
                 or PUMP_ALLOW_UNAUTHENTICATED=true to serve anyone"
            )),
            (None, _) => Ok(pump_gateway::access::Access::open()),
        }
    }

    fn tls(&self) -> Result<Option<pump_gateway::access::TlsFiles>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let files = pump_gateway::access::TlsFiles { cert: cert.clone(), key: key.clone() };
        files.check()?;
        Ok(Some(files))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.common.init_tracing();
    let (access, tls) = match (args.access(), args.tls()) {
        (Ok(a), Ok(t)) => (a, t),
        (Err(e), _) | (_, Err(e)) => return pump_bus::args::usage_error("pump-gateway", e),
    };
    if !access.is_open() && tls.is_none() && !args.grpc_addr.ip().is_loopback() {
        tracing::warn!("the token travels in clear text: set PUMP_TLS_CERT and PUMP_TLS_KEY beyond localhost");
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("preview at {scheme}://{}/", args.http_addr);
    let listener = match pump_bus::args::bind("pump-gateway", args.grpc_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    let ops = match pump_bus::args::bind("pump-gateway", args.http_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    let bus = match args.common.bus("pump-gateway") {
        Ok(bus) => bus,
        Err(e) => return pump_bus::args::usage_error("pump-gateway", e),
    };
    let limits = args.common.stream_limits();
    pump_bus::args::serve("pump-gateway", &bus, |client, shutdown| {
        pump_gateway::run(
            pump_gateway::Service {
                client,
                listener,
                limits,
                skipped: Default::default(),
                ops: Some(ops),
                snapshots: Default::default(),
                pose_rate_floor: args.min_pose_rate,
                access,
                tls,
                clips: args.clips.then(|| pump_gateway::clips::ClipLimits {
                    max_bytes: args.clips_max_mb << 20,
                    max_age: std::time::Duration::from_secs(args.clips_max_age_h * 3600),
                    replicas: limits.replicas,
                }),
            },
            shutdown,
        )
    })
    .await
}
