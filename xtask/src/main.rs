//! Project automation for the smlp workspace (run as `cargo xtask <command>`; the alias lives in
//! `.cargo/config.toml`).
//!
//! - `cargo xtask test`: the project's test command: `cargo test -p paillier` (pure-Rust backend),
//!   then `cargo test --workspace` (GMP backend everywhere), then the Python package, failing
//!   fast, with a closing `xtask test: N passed, M failed` line.
//! - `cargo xtask demo`: the `smlp demo` of the release build.
//! - `cargo xtask repro|speed|tune`: the experiment harness (`smlp-harness`, in `harness/`),
//!   built and run in release with GMP.
//! - `cargo xtask wheel [--check]`: the Python package as an abi3 manylinux wheel with GMP inside;
//!   `--check` installs it where no toolchain is in reach and runs the README's Python example.
//! - `cargo xtask fuzz --seconds N`: the fuzz targets of the test suite, for N seconds each.
//!
//! xtask depends on no workspace crate: it compiles in seconds, checks what the GMP build needs
//! ([`prereqs`]) and says what it is about to build before cargo builds it, with cargo's own
//! progress on the terminal. The workspace is compiled once per profile a command needs.

mod fuzz;
#[cfg(test)]
mod layers;
mod prereqs;
mod pytest;
mod testcmd;
mod wheel;

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
    /// write a report with convergence plots (`cargo xtask repro --help` for its options).
    #[command(disable_help_flag = true)]
    Repro {
        /// Options of the harness's `repro`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure seconds per encrypted training sample and per classified sample
    /// (`cargo xtask speed --help` for its options).
    #[command(disable_help_flag = true)]
    Speed {
        /// Options of the harness's `speed`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Choose training defaults: the fixed-point reference over a grid of batch sizes, learning
    /// rates and epochs (`cargo xtask tune --help` for its options).
    #[command(disable_help_flag = true)]
    Tune {
        /// Options of the harness's `tune`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the Python package as one abi3 manylinux wheel with GMP inside (maturin, release);
    /// `--check` installs it in a new virtual environment with no toolchain on PATH and runs
    /// the README's Python example there.
    Wheel(wheel::WheelArgs),
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

/// Builds and runs the experiment harness in release with GMP: `smlp-harness <command> <args>`.
fn harness(command: &str, args: Vec<String>) -> Result<ExitCode> {
    prereqs::ensure_gmp_build()?;
    println!(
        "==> xtask {command}: building the experiment harness (smlp-harness, release, GMP; the \
         first build compiles GMP and the workspace: several minutes on 2 cores), then running it"
    );
    let mut full: Vec<String> = [
        "run",
        "--release",
        "--package",
        "smlp-harness",
        "--",
        command,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    full.extend(args);
    cargo_passthrough(&full)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => prereqs::ensure_gmp_build().and_then(|()| testcmd::run(&args)),
        Command::Repro { args } => harness("repro", args),
        Command::Speed { args } => harness("speed", args),
        Command::Tune { args } => harness("tune", args),
        Command::Wheel(args) => prereqs::ensure_gmp_build().and_then(|()| wheel::run_cmd(&args)),
        Command::Fuzz(args) => prereqs::ensure_gmp_build().and_then(|()| fuzz::run(&args)),
        Command::Demo { args } => prereqs::ensure_gmp_build().and_then(|()| {
            println!(
                "==> xtask demo: building smlp (release, GMP; the first build compiles GMP and \
                 the workspace: several minutes on 2 cores), then running `smlp demo`"
            );
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
