//! `pump`: the developer command line. See `pump --help`.

use std::process::ExitCode;

use clap::Parser;

mod args;
mod detect;
mod listen;
mod output;
mod sets;

/// Exit code for bad flags or configuration (BSD `EX_USAGE`).
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(EX_USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    args::init_tracing(&cli.log);
    let result = match cli.command {
        args::Command::Detect(a) => detect::run(a),
        args::Command::Listen(a) => listen::run(a),
        args::Command::Sets(a) => sets::run(a),
        args::Command::Prototype(a) => sets::record_prototype(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pump: {e:#}");
            ExitCode::FAILURE
        }
    }
}
