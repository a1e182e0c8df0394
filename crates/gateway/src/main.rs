//! `pump-gateway`: gRPC queries over pump's streams. See `pump-gateway --help`.

use std::process::ExitCode;

mod args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match pump_bus::args::parse::<args::Args>() {
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
                clips: args.clips(limits.replicas),
            },
            shutdown,
        )
    })
    .await
}
