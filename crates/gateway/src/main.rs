//! `pump-gateway`: gRPC queries over pump's streams. See `pump-gateway --help`.

use std::process::ExitCode;

use clap::Parser;
use pump_bus::args::CommonArgs;

#[derive(Debug, Parser)]
#[command(name = "pump-gateway", version, about = "Answers gRPC queries about poses (pump.v1.PoseQuery)")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Address the gRPC server listens on.
    #[arg(long, env = "PUMP_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    grpc_addr: std::net::SocketAddr,
    /// Poses a second under which a camera's rep counts are not exact: ListCameras, /healthz and
    /// the preview say when a camera is under it (the same variable as pump-sets').
    #[arg(long, env = "PUMP_MIN_POSE_RATE", default_value_t = pump_gateway::book::DEFAULT_POSE_RATE_FLOOR)]
    min_pose_rate: f64,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PUMP_HTTP_ADDR", default_value = "127.0.0.1:9104")]
    http_addr: std::net::SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.common.init_tracing();
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
            },
            shutdown,
        )
    })
    .await
}
