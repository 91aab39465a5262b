//! Step 3 of `cargo xtask test`: the Python package (`smlp-py`) tested with pytest in a virtual
//! environment (`target/py-venv`).
//!
//! Needs a CPython ≥ 3.9 with `venv` (`$SMLP_PYTHON`, else `python3`); on a Debian/Ubuntu machine
//! where it is missing, as root, `python3` and `python3-venv` are installed with apt-get. The test
//! dependencies (numpy, pytest, scikit-learn, pandas, python-paillier) come from PyPI into the
//! virtual environment, once. The extension is built by cargo with the whole workspace selected,
//! as in step 2, so that the feature resolution is the same and nothing is compiled twice
//! (`maturin develop` resolves smlp-py alone and would rebuild the workspace with other features:
//! minutes on 2 cores); it goes where `maturin develop` would put it, beside the Python sources,
//! which pytest imports through `PYTHONPATH`. `pip install ./smlp-py` (maturin, release) is the
//! user's way and is what the README measures.

use crate::testcmd::{workspace_root, Tally};
use crate::Result;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Optional test dependencies (import name, requirement): the Ray test needs Ray.
const OPTIONAL: &[(&str, &str)] = &[("ray", "ray==2.60.0")];

/// What pytest needs in the virtual environment (import name, requirement).
const PACKAGES: &[(&str, &str)] = &[
    ("numpy", "numpy"),
    ("pytest", "pytest"),
    ("sklearn", "scikit-learn"),
    ("pandas", "pandas"),
    ("phe", "phe==1.5.0"),
];

pub(crate) fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})").into())
    }
}

/// A Python with `venv`, installing Debian's packages where they are missing and we are root.
pub(crate) fn python() -> Result<String> {
    let python = std::env::var("SMLP_PYTHON").unwrap_or_else(|_| "python3".into());
    let usable = |p: &str| ok(Command::new(p).args(["-c", "import venv, ensurepip"]));
    if usable(&python) {
        return Ok(python);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root && ok(Command::new("sh").args(["-c", "command -v apt-get"])) {
        println!("==> xtask: the Python tests need python3 with venv; installing python3 python3-venv with apt-get");
        run(
            Command::new("apt-get").args(["update", "-qq"]),
            "apt-get update",
        )?;
        run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "python3", "python3-venv"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install python3 python3-venv",
        )?;
        if usable("python3") {
            return Ok("python3".into());
        }
    }
    Err(format!(
        "the Python package's tests need CPython >= 3.9 with venv ({python} has none): install \
         python3 and python3-venv, or set SMLP_PYTHON, or skip them with `cargo xtask test --no-python`"
    )
    .into())
}

/// The virtual environment with the test dependencies, made if missing.
fn venv(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target").join("py-venv");
    ensure_venv(&dir, PACKAGES)?;
    // Ray, for the data-parallel test only: where it cannot be installed (no wheel for this
    // platform or Python), that test is skipped with its reason, and we say so here.
    if let Err(e) = ensure_venv(&dir, OPTIONAL) {
        println!(
            "==> xtask: could not install {} ({e}); smlp-py/tests/test_ray.py will be skipped",
            OPTIONAL.iter().map(|p| p.1).collect::<Vec<_>>().join(" ")
        );
    }
    Ok(dir)
}

/// Makes the virtual environment `dir` if it has no Python, then installs into it from PyPI
/// those of `packages` (import name, requirement) that it cannot import.
pub(crate) fn ensure_venv(dir: &Path, packages: &[(&str, &str)]) -> Result<()> {
    let bin = dir.join("bin");
    if !bin.join("python").exists() {
        let python = python()?;
        println!(
            "==> xtask: making the virtual environment {}",
            dir.display()
        );
        run(
            Command::new(&python).arg("-m").arg("venv").arg(dir),
            "python3 -m venv",
        )?;
    }
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(module, _)| {
            !ok(Command::new(bin.join("python")).args(["-c", &format!("import {module}")]))
        })
        .map(|(_, req)| *req)
        .collect();
    if !missing.is_empty() {
        println!("==> xtask: installing into it: {}", missing.join(" "));
        run(
            Command::new(bin.join("python"))
                .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
                .args(&missing),
            "pip install",
        )?;
    }
    Ok(())
}

/// The feature that makes smlp-py an extension module; steps 2 and 3 both select it with the
/// whole workspace, so that cargo resolves (and compiles) every crate once.
pub const EXTENSION_FEATURE: &str = "smlp-py/extension-module";

/// Builds the extension with step 2's feature resolution, puts it beside the Python sources
/// (where `maturin develop` puts it) and runs pytest there; returns the tally and the failure
/// status, if any.
pub fn run_python_tests(test_args: &[String]) -> Result<(Tally, Option<i32>)> {
    let root = workspace_root();
    let venv = venv(&root)?;
    let bin = venv.join("bin");
    println!("==> xtask: building the extension (cargo build --workspace --lib --tests --features {EXTENSION_FEATURE})");
    run(
        Command::new(crate::testcmd::cargo())
            .args([
                "build",
                "--quiet",
                "--workspace",
                "--lib",
                "--tests",
                "--features",
            ])
            .arg(EXTENSION_FEATURE)
            .current_dir(&root),
        "cargo build of the extension",
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let built = target.join("debug").join(if cfg!(target_os = "macos") {
        "lib_native.dylib"
    } else {
        "lib_native.so"
    });
    let python_src = root.join("smlp-py").join("python");
    let installed = python_src.join("smlp").join("_native.abi3.so");
    // Replace, never write through: a running interpreter may have the old file mapped.
    let _ = std::fs::remove_file(&installed);
    std::fs::copy(&built, &installed).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            built.display(),
            installed.display()
        )
    })?;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new(bin.join("python"))
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "smlp-py/tests",
        ])
        .args(test_args)
        .env("VIRTUAL_ENV", &venv)
        .env("PATH", &path)
        .env("PYTHONPATH", &python_src)
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start pytest: {e}"))?;
    let mut tally = Tally::default();
    let stdout = std::io::stdout();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        {
            let mut out = stdout.lock();
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        add_pytest_line(&mut tally, &line);
    }
    let status = child.wait()?;
    Ok((
        tally,
        (!status.success()).then(|| status.code().unwrap_or(1)),
    ))
}

/// Adds pytest's closing line (`3 failed, 10 passed, 1 skipped in 12.3s`, possibly framed by
/// `=`) to `tally`; other lines are ignored.
pub fn add_pytest_line(tally: &mut Tally, line: &str) {
    let line = line.trim().trim_matches('=').trim();
    let Some((counts, time)) = line.rsplit_once(" in ") else {
        return;
    };
    if !time.trim_end_matches(|c: char| c != 's').ends_with('s') {
        return;
    }
    let mut t = Tally::default();
    for part in counts.split(", ") {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what), None) = (words.next(), words.next(), words.next()) else {
            return;
        };
        let Ok(n) = n.parse::<u64>() else { return };
        match what {
            "passed" => t.passed += n,
            "failed" | "error" | "errors" => t.failed += n,
            "skipped" | "deselected" | "xfailed" | "xpassed" | "warning" | "warnings" => {
                t.ignored += n
            }
            _ => return,
        }
    }
    t.suites = 1;
    tally.merge(&t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pytest_closing_lines() {
        let mut t = Tally::default();
        add_pytest_line(&mut t, "........                     [100%]");
        add_pytest_line(&mut t, "11 passed in 33.98s");
        add_pytest_line(
            &mut t,
            "===== 1 failed, 10 passed, 2 skipped, 1 warning in 1.20s =====",
        );
        add_pytest_line(&mut t, "this test passed in 3 steps");
        assert_eq!(
            t,
            Tally {
                passed: 21,
                failed: 1,
                ignored: 3,
                suites: 2
            }
        );
    }
}
