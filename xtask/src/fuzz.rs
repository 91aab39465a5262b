//! `cargo xtask fuzz --seconds N`: the fuzz targets of the test suite, run for longer.
//!
//! No nightly toolchain (and so no cargo-fuzz) is needed: the targets are ordinary tests that run
//! a fixed number of cases in CI and keep going while `SMLP_FUZZ_SECONDS` lasts. Each run uses a
//! fresh seed (printed on failure; `--seed` replays one).

use crate::testcmd::{cargo, workspace_root};
use crate::Result;
use clap::Args;
use std::process::{Command, ExitCode};

#[derive(Args, Debug)]
pub struct FuzzArgs {
    /// Seconds per fuzz loop (each target has one or two loops).
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seed of the generators (default: a fresh one per loop).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// The fuzz targets: (package, test binary, what it feeds).
const TARGETS: &[(&str, &str, &str)] = &[
    (
        "smlp",
        "fuzz_files",
        "file decoders: keys, data sets, models, checkpoints, predictions",
    ),
    (
        "secure-ops",
        "fuzz",
        "S2's request handler: raw bytes, structured and mutated requests",
    ),
    (
        "smlp-cli",
        "fuzz_s1",
        "S1's request handler over TLS: raw frames and mutated requests",
    ),
];

pub fn run(args: &FuzzArgs) -> Result<ExitCode> {
    for (package, test, what) in TARGETS {
        println!(
            "==> xtask fuzz: {package}/{test} ({what}), {} s per loop",
            args.seconds
        );
        let mut cmd = Command::new(cargo());
        cmd.args([
            "test",
            "--release",
            "-p",
            package,
            "--test",
            test,
            "--",
            "--nocapture",
        ])
        .env("SMLP_FUZZ_SECONDS", args.seconds.to_string())
        .current_dir(workspace_root());
        if let Some(seed) = args.seed {
            cmd.env("SMLP_FUZZ_SEED", seed.to_string());
        }
        let status = cmd
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if !status.success() {
            println!("==> xtask fuzz: {package}/{test} FAILED");
            return Ok(ExitCode::FAILURE);
        }
    }
    println!("==> xtask fuzz: every target survived");
    Ok(ExitCode::SUCCESS)
}
