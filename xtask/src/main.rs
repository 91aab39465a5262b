//! Project automation for the smlp workspace (run as `cargo xtask <command>`; the alias lives in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask test`: the project's test command: `cargo test -p paillier` (pure-Rust backend),
//!   then `cargo test --workspace` (GMP backend everywhere), failing fast, with a closing
//!   `xtask test: N passed, M failed` line.
//! - `cargo xtask repro`: the experiment of Bellafqira et al. (IWDW 2018) on wdbc: the f64
//!   reference, the fixed-point reference and encrypted training (two servers over TCP on
//!   loopback) from the same initial weights, epoch by epoch; writes `report.md`, `report.json`
//!   and the convergence plots.
//! - `cargo xtask speed`: seconds per encrypted training sample and per classified sample.

mod baseline;
mod harness;
mod plot;
mod repro;
mod speed;
mod testcmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Errors of the xtask commands.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Result alias of the xtask commands.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "smlp project automation", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the test suite: `cargo test -p paillier` (num-bigint backend), then
    /// `cargo test --workspace` (GMP backend), failing fast.
    Test(testcmd::TestArgs),
    /// Reproduce the paper's experiment on wdbc (f64 / fixed-point / encrypted training) and
    /// write a report with convergence plots.
    Repro(repro::ReproArgs),
    /// Measure seconds per encrypted training sample and per classified sample.
    Speed(speed::SpeedArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => testcmd::run(&args),
        Command::Repro(args) => repro::run(&args),
        Command::Speed(args) => speed::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
