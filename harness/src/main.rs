//! The experiment harness of the smlp workspace, run by `cargo xtask repro|speed|tune` in
//! release with the GMP backend (`cargo run --release -p smlp-harness -- <command>` does the same).
//!
//! - `repro`: the experiment of Bellafqira et al. (IWDW 2018) on wdbc: the f64 reference, the
//!   fixed-point reference and encrypted training (two servers over TLS on loopback) from the same
//!   initial weights, epoch by epoch; writes `report.md`, `report.json` and the convergence plots.
//! - `speed`: seconds per encrypted training sample and per classified sample, with
//!   python-paillier side by side when it is installed.
//! - `tune`: how the training defaults were chosen (the fixed-point reference over a grid).

mod baseline;
mod harness;
mod plot;
mod repro;
mod speed;
mod tune;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Errors of the harness commands.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result alias of the harness commands.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The workspace root (the harness lives in it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness lives inside the workspace")
        .to_path_buf()
}

#[derive(Parser)]
#[command(name = "cargo xtask", about = "smlp experiment harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce the paper's experiment on wdbc (f64 / fixed-point / encrypted training) and
    /// write a report with convergence plots.
    Repro(repro::ReproArgs),
    /// Measure seconds per encrypted training sample and per classified sample.
    Speed(speed::SpeedArgs),
    /// Choose training defaults: the fixed-point reference (the encrypted run's arithmetic, in
    /// the clear) over a grid of batch sizes, learning rates and epochs, several seeds each.
    Tune(tune::TuneArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Repro(args) => repro::run(&args),
        Command::Speed(args) => speed::run(&args),
        Command::Tune(args) => tune::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smlp-harness: error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
