//! `cargo xtask test`: the project's test command.
//!
//! 1. `cargo test -p paillier`: only paillier is selected, so the feature resolver leaves `gmp`
//!    off and this run tests the pure-Rust num-bigint backend (known-answer and property tests).
//! 2. `cargo test --workspace --features smlp-py/extension-module`: smlp-cli's default feature
//!    `gmp` turns on `paillier/gmp`, and features are unified over the selected packages, so every
//!    crate is built and tested on the GMP backend (smlp-py has no Rust tests; naming its feature
//!    here gives step 3 the same feature resolution, so nothing is compiled twice).
//! 3. The Python package: the extension built by cargo with step 2's resolution, pytest in
//!    `target/py-venv` (`pytest.rs`); `--no-python` skips it.
//! 4. The wheel (`wheel.rs`): built by maturin in release, installed in a new virtual environment
//!    with no toolchain on `PATH`, the README's Python example run on it (counted as one test);
//!    `--no-wheel` (or `--no-python`) skips it.
//!
//! Output of cargo and the test binaries is streamed as it comes; the `test result:` lines are
//! added up into a closing `xtask test: N passed, M failed` line. The first failing step stops the
//! run with a non-zero exit status.

use crate::Result;
use clap::Args;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

#[derive(Args, Debug)]
pub struct TestArgs {
    /// Arguments passed to the test binaries of both runs (after `--`), e.g. `--test-threads=1`.
    #[arg(last = true)]
    pub test_args: Vec<String>,
    /// Skip step 3, the Python package's tests (they need python3 with venv and PyPI).
    #[arg(long)]
    pub no_python: bool,
    /// Skip step 4, building the wheel in release and checking it in a clean virtual environment.
    #[arg(long)]
    pub no_wheel: bool,
}

/// Passed and failed counts summed over `test result:` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
    /// Number of `test result:` lines seen (test binaries and doc-test runs).
    pub suites: u64,
}

impl Tally {
    /// Adds the counts of one line if it is a `test result:` line.
    pub fn add_line(&mut self, line: &str) {
        let Some(pos) = line.find("test result:") else {
            return;
        };
        let rest = &line[pos + "test result:".len()..];
        self.suites += 1;
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(num)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = num.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }

    pub fn merge(&mut self, o: &Tally) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.ignored += o.ignored;
        self.suites += o.suites;
    }
}

/// The workspace root (the parent of xtask's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// The cargo that runs us (`$CARGO`), or `cargo` from the path.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs a cargo command, streaming its stdout (parsed for `test result:` lines) and stderr.
/// Returns the tally and whether the command succeeded.
fn run_streaming(args: &[String]) -> Result<(Tally, Option<i32>)> {
    let mut child = Command::new(cargo())
        .args(args)
        .current_dir(workspace_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut tally = Tally::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    let stdout = std::io::stdout();
    loop {
        let n = match out.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        {
            let mut lock = stdout.lock();
            lock.write_all(&buf[..n])?;
            lock.flush()?;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            tally.add_line(&String::from_utf8_lossy(&line));
        }
    }
    if !pending.is_empty() {
        tally.add_line(&String::from_utf8_lossy(&pending));
    }
    let status = child.wait()?;
    Ok((
        tally,
        if status.success() {
            None
        } else {
            status.code().or(Some(1))
        },
    ))
}

/// Whether paillier is built with `gmp` when cargo selects `packages` (`--workspace` or
/// `-p NAME`), from `cargo tree`.
fn uses_gmp(packages: &[&str]) -> Option<bool> {
    let out = Command::new(cargo())
        .arg("tree")
        .args(packages)
        .args(["-e", "features", "-i", "paillier", "--prefix", "none"])
        .current_dir(workspace_root())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).contains("paillier feature \"gmp\""))
}

pub fn run(args: &TestArgs) -> Result<ExitCode> {
    let note = |packages: &[&str], want: bool| match uses_gmp(packages) {
        Some(got) if got == want => format!(
            "checked with `cargo tree`: paillier is built {} feature \"gmp\"",
            if want { "with" } else { "without" }
        ),
        Some(got) => format!(
            "WARNING: `cargo tree` shows paillier built {} feature \"gmp\"",
            if got { "WITH" } else { "WITHOUT" }
        ),
        None => "could not check with `cargo tree`".into(),
    };
    let steps: [(&str, Vec<&str>, String); 2] = [
        (
            "cargo test -p paillier",
            vec!["test", "-p", "paillier"],
            format!(
                "paillier alone, on the pure-Rust num-bigint backend: known-answer and property tests ({})",
                note(&["-p", "paillier"], false)
            ),
        ),
        (
            "cargo test --workspace",
            vec!["test", "--workspace", "--features", crate::pytest::EXTENSION_FEATURE],
            format!(
                "every crate on the GMP backend: smlp-cli's default feature `gmp` \
                 unifies paillier/gmp over the workspace ({})",
                note(&["--workspace"], true)
            ),
        ),
    ];
    let mut total = Tally::default();
    let n = steps.len();
    let wheel = !args.no_python && !args.no_wheel;
    let all = n + usize::from(!args.no_python) + usize::from(wheel);
    for (i, (name, cargo_args, what)) in steps.iter().enumerate() {
        println!("==> xtask test [{}/{all}]: {name}", i + 1);
        println!("    {what}");
        let mut full: Vec<String> = cargo_args.iter().map(|s| s.to_string()).collect();
        if !args.test_args.is_empty() {
            full.push("--".into());
            full.extend(args.test_args.iter().cloned());
        }
        let (tally, failure) = run_streaming(&full)?;
        total.merge(&tally);
        println!(
            "==> {name}: {} passed, {} failed, {} ignored ({} test runs)",
            tally.passed, tally.failed, tally.ignored, tally.suites
        );
        if let Some(code) = failure {
            let why = if tally.failed == 0 {
                " without a failing test (a build error, a crashed test binary or bad arguments)"
            } else {
                ""
            };
            println!("==> {name} FAILED (exit status {code}){why}; stopping");
            println!(
                "xtask test: {} passed, {} failed",
                total.passed, total.failed
            );
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)));
        }
    }
    if args.no_python {
        println!("==> xtask test: the Python package's tests skipped (--no-python)");
    } else {
        let name = "pytest smlp-py/tests";
        println!("==> xtask test [{}/{all}]: {name}", n + 1);
        println!(
            "    the Python package (smlp-py, built with maturin into target/py-venv) with pytest"
        );
        let (tally, failure) = crate::pytest::run_python_tests(&[])?;
        total.merge(&tally);
        println!(
            "==> {name}: {} passed, {} failed, {} skipped",
            tally.passed, tally.failed, tally.ignored
        );
        if let Some(code) = failure {
            println!("==> {name} FAILED (exit status {code})");
            println!(
                "xtask test: {} passed, {} failed",
                total.passed, total.failed
            );
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1).max(1)));
        }
    }
    if wheel {
        let name = "cargo xtask wheel --check";
        println!("==> xtask test [{all}/{all}]: {name}");
        println!(
            "    the wheel (maturin, release) installed in a new virtual environment with no \
             toolchain on PATH; the README's Python example on it (one test)"
        );
        let root = workspace_root();
        let result = crate::wheel::build(&root, &root.join("target").join("wheels"))
            .and_then(|w| crate::wheel::check(&root, &w));
        match result {
            Ok(()) => total.passed += 1,
            Err(e) => {
                println!("==> {name} FAILED: {e}");
                println!(
                    "xtask test: {} passed, {} failed",
                    total.passed,
                    total.failed + 1
                );
                return Ok(ExitCode::FAILURE);
            }
        }
    } else if !args.no_python {
        println!("==> xtask test: the wheel's check skipped (--no-wheel)");
    }
    println!(
        "xtask test: {} passed, {} failed",
        total.passed, total.failed
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn parses_test_result_lines() {
        let mut t = Tally::default();
        t.add_line("running 3 tests");
        t.add_line("test result: ok. 12 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.31s");
        t.add_line("test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.00s\n");
        t.add_line("test foo ... ok");
        assert_eq!(
            t,
            Tally {
                passed: 15,
                failed: 1,
                ignored: 2,
                suites: 2
            }
        );
    }
}
