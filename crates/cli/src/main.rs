//! `pump`: the developer command line. See `pump --help`.

use std::process::ExitCode;

mod annotate;
mod args;
mod client;
mod detect;
mod listen;
mod output;
mod sets;
mod up;

fn main() -> ExitCode {
    let cli = match pump_bus::args::parse::<args::Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    args::init_tracing(&cli.log);
    let result = match cli.command {
        args::Command::Detect(a) => detect::run(a),
        args::Command::Listen(a) => listen::run(a),
        args::Command::Hook(a) => pump_hook::run(*a, None),
        args::Command::Sets(a) => sets::run(a),
        args::Command::Prototype(a) => sets::record_prototype(a),
        args::Command::Cameras(a) => client::cameras(&a, a.json),
        args::Command::Poses(a) => client::poses(&a.client, &a.camera, a.follow.then_some(a.wait), a.client.json),
        args::Command::Snapshot(a) => client::snapshot(&a.client, &a.camera, a.overlay, &a.output),
        args::Command::Clip(a) => client::clip(&a.client, &a.set_id, a.output.as_deref()),
        args::Command::Up(a) => up::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if reader_left(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pump: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A closed pipe (`pump … | head`) is the reader saying it has enough, not a failure.
fn reader_left(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind));
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}
