//! `pump-gateway`'s flags: who may ask, TLS, clips.

use clap::Parser;
use pump_bus::args::CommonArgs;

#[derive(Debug, Parser)]
#[command(
    name = "pump-gateway",
    version,
    about = "Answers gRPC queries about poses, reps and sets (pump.v1.PoseQuery), and serves the live preview (--http-addr)"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address the gRPC server listens on.
    #[arg(long, env = "PUMP_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: std::net::SocketAddr,
    /// Poses a second under which a camera's rep counts are not exact: ListCameras, /healthz and
    /// the preview say when a camera is under it (the same variable as pump-sets').
    #[arg(long, env = "PUMP_MIN_POSE_RATE", default_value_t = pump_gateway::live::DEFAULT_POSE_RATE_FLOOR)]
    pub min_pose_rate: f64,
    /// Address of the preview page (/), snapshots, /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9104")]
    pub http_addr: std::net::SocketAddr,
    /// File holding the token clients must present (gRPC `authorization: Bearer <token>`; the
    /// preview and snapshots too). Health and metrics stay open. Or PUMP_AUTH_TOKEN, from the
    /// environment. Required when either address is reachable from other machines.
    #[arg(long, env = "PUMP_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<std::path::PathBuf>,
    #[arg(long, env = "PUMP_AUTH_TOKEN", hide = true, hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Serve both ports over TLS with this certificate chain (PEM); with --tls-key.
    #[arg(long, env = "PUMP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "PUMP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Record a clip of each set (its posed frames with the skeleton and rep count, Motion-JPEG
    /// AVI) into the `pump-clips` object store on NATS; listed on the preview, downloaded from
    /// /clips/<set id>.avi or GetSetClip. The gateway then receives every camera's frames.
    #[arg(long, env = "PUMP_CLIPS", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub clips: bool,
    /// The clip store's size (MiB): the oldest clips are deleted to make room.
    #[arg(long, env = "PUMP_CLIPS_MAX_MB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(1..))]
    pub clips_max_mb: u64,
    /// Hours a clip is kept.
    #[arg(long, env = "PUMP_CLIPS_MAX_AGE_H", default_value_t = 168, value_parser = clap::value_parser!(u64).range(1..))]
    pub clips_max_age_h: u64,
    /// Serve other machines without a token (a network you trust otherwise, e.g. behind a proxy
    /// that authenticates).
    #[arg(long, env = "PUMP_ALLOW_UNAUTHENTICATED", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
    pub allow_unauthenticated: bool,
}

impl Args {
    /// Who may ask, from the flags; a gateway reachable from other machines needs a token.
    pub fn access(&self) -> Result<pump_gateway::access::Access, String> {
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

    pub fn tls(&self) -> Result<Option<pump_gateway::access::TlsFiles>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let files = pump_gateway::access::TlsFiles { cert: cert.clone(), key: key.clone() };
        files.check()?;
        Ok(Some(files))
    }

    /// How much the clip store keeps, when clips are recorded (`--clips`).
    pub fn clips(&self, replicas: usize) -> Option<pump_gateway::clips::ClipLimits> {
        self.clips.then(|| pump_gateway::clips::ClipLimits {
            max_bytes: self.clips_max_mb << 20,
            max_age: std::time::Duration::from_secs(self.clips_max_age_h * 3600),
            replicas,
        })
    }
}
