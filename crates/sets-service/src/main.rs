//! `pump-sets`: the sets service. See `pump-sets --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use std::sync::Arc;

use pump_bus::args::CommonArgs;
use pump_bus::connect::BusConfig;
use pump_sets_service::{Config, Service};

#[derive(Debug, Parser)]
#[command(name = "pump-sets", version, about = "Counts reps and closes sets from pump.poses.<camera>")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Seconds without a rep that close a set.
    #[arg(long, env = "PUMP_QUIET_SECONDS", default_value_t = 25.0)]
    quiet_seconds: f64,
    /// The exercise for every camera; otherwise recognised from prototypes.
    #[arg(long, env = "PUMP_EXERCISE")]
    exercise: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9103")]
    http_addr: std::net::SocketAddr,
    /// Folder of prototype files (`{"exercise": …, "frames": [[6 angles], …]}`).
    #[arg(long, env = "PUMP_PROTOTYPES")]
    prototypes: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.common.init_tracing();
    if !(args.quiet_seconds.is_finite() && args.quiet_seconds > 0.0) {
        return pump_bus::args::usage_error("pump-sets", "--quiet-seconds must be above zero");
    }
    let mut config = Config::new(BusConfig::new(&args.common.nats_url, "pump-sets"));
    config.limits = args.common.stream_limits();
    config.sets.quiet = args.quiet_seconds;
    config.sets.exercise = args.exercise;
    if let Some(dir) = &args.prototypes {
        match pump_features::load_prototypes(dir) {
            Ok(p) => config.sets.prototypes = p,
            Err(e) => return pump_bus::args::usage_error("pump-sets", e),
        }
    }
    let ops = match pump_bus::args::bind("pump-sets", args.http_addr).await {
        Ok(l) => l,
        Err(code) => return code,
    };
    pump_bus::args::serve("pump-sets", &config.bus.clone(), |client, shutdown| {
        pump_sets_service::run(Service { config, client, stats: Arc::default(), ops: Some(ops) }, shutdown)
    })
    .await
}
