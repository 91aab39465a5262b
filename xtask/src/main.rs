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
//! - `cargo xtask demo`: the `smlp demo` of the release build.
//! - `cargo xtask fuzz --seconds N`: the fuzz targets of the test suite, for N seconds each.
//!
//! xtask builds without GMP (feature `gmp` off), so it can first check what the GMP build needs
//! ([`prereqs`]); `repro` and `speed` then run themselves again with `--features gmp`.

mod baseline;
mod fuzz;
mod harness;
#[cfg(test)]
mod layers;
mod plot;
mod prereqs;
mod pytest;
mod repro;
mod speed;
mod testcmd;
mod tune;

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
    /// Choose training defaults: the fixed-point reference (the encrypted run's arithmetic, in
    /// the clear) over a grid of batch sizes, learning rates and epochs, several seeds each.
    Tune(tune::TuneArgs),
    /// Run the fuzz targets (file decoders, S2's and S1's request handlers) for longer.
    Fuzz(fuzz::FuzzArgs),
    /// Run `smlp demo` (release build) on the embedded data set; arguments after `--` go to it.
    Demo {
        /// Arguments of `smlp demo` (see `cargo xtask demo -- --help`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// Runs cargo with `args` in the workspace root, inheriting stdio; returns its exit code.
fn cargo_passthrough(args: &[String]) -> Result<ExitCode> {
    let status = std::process::Command::new(testcmd::cargo())
        .args(args)
        .current_dir(testcmd::workspace_root())
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1).max(1)),
        None => ExitCode::FAILURE,
    })
}

/// `repro` and `speed` measure the GMP build: without the feature, check what GMP's build needs
/// and run this command again with it (same profile, same arguments).
fn with_gmp(run: impl FnOnce() -> Result<ExitCode>) -> Result<ExitCode> {
    if cfg!(feature = "gmp") {
        return run();
    }
    prereqs::ensure_gmp_build()?;
    let mut args: Vec<String> = ["run", "--quiet", "--package", "xtask", "--features", "gmp"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !cfg!(debug_assertions) {
        args.push("--release".into());
    }
    args.push("--".into());
    args.extend(std::env::args().skip(1));
    cargo_passthrough(&args)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => prereqs::ensure_gmp_build().and_then(|()| testcmd::run(&args)),
        Command::Repro(args) => with_gmp(|| repro::run(&args)),
        Command::Speed(args) => with_gmp(|| speed::run(&args)),
        Command::Tune(args) => tune::run(&args),
        Command::Fuzz(args) => prereqs::ensure_gmp_build().and_then(|()| fuzz::run(&args)),
        Command::Demo { args } => prereqs::ensure_gmp_build().and_then(|()| {
            let mut full: Vec<String> = ["run", "--release", "--package", "smlp-cli", "--", "demo"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            full.extend(args);
            cargo_passthrough(&full)
        }),
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
