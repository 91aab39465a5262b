//! `cargo xtask wheel`: the Python package as one wheel that installs without Rust.
//!
//! [maturin](https://www.maturin.rs) (installed from PyPI into `target/py-build`) builds
//! `smlp-py` in release, stripped, as an abi3 wheel (one file for every CPython ≥ 3.9) with GMP
//! linked in statically (gmp-mpfr-sys builds it from source and links it into the extension, so
//! the wheel needs no libgmp on the target machine). maturin checks the extension's symbol
//! versions and names the wheel with the oldest manylinux policy they satisfy: the glibc of the
//! machine that builds it (`manylinux_2_34` on this project's Debian 13 VM); build on an older
//! distribution for older targets.
//!
//! `--check` then does what a user of the wheel does, on nothing but the wheel: a new virtual
//! environment, `pip install --only-binary :all:` of the wheel and scikit-learn with a `PATH`
//! that holds no Rust toolchain, no C compiler and no `m4` (and no cargo variables), and the
//! README's Python example (`smlp-py/examples/notebook.py`, with 512-bit test keys) run from
//! outside the clone, so that `smlp` is the installed one. `cargo xtask test` runs both as its
//! last step.

use crate::pytest::{ensure_venv, ok, python, run};
use crate::testcmd::workspace_root;
use crate::Result;
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Args, Debug)]
pub struct WheelArgs {
    /// The folder the wheel goes to (earlier smlp wheels there are removed first).
    #[arg(long, default_value = "target/wheels")]
    pub out: PathBuf,
    /// Then install the wheel in a new virtual environment with no Rust toolchain and no compiler
    /// on PATH, and run the README's Python example there (512-bit test keys).
    #[arg(long)]
    pub check: bool,
}

/// `cargo xtask wheel [--out DIR] [--check]`.
pub fn run_cmd(args: &WheelArgs) -> Result<ExitCode> {
    let root = workspace_root();
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    let wheel = build(&root, &out)?;
    println!("==> xtask wheel: {}", wheel.display());
    if args.check {
        check(&root, &wheel)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the wheel into `out` and returns its path.
pub fn build(root: &Path, out: &Path) -> Result<PathBuf> {
    let tools = root.join("target").join("py-build");
    ensure_venv(&tools, &[("maturin", "maturin>=1.5,<2")])?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for old in smlp_wheels(out)? {
        std::fs::remove_file(&old)
            .map_err(|e| format!("cannot remove the old wheel {}: {e}", old.display()))?;
    }
    println!(
        "==> xtask wheel: building the Python package's wheel (maturin build --release --strip: \
         smlp-py and the workspace in release with GMP; the first build takes minutes on 2 cores)"
    );
    run(
        Command::new(tools.join("bin").join("maturin"))
            .args(["build", "--release", "--strip", "--manifest-path"])
            .arg(root.join("smlp-py").join("Cargo.toml"))
            .arg("--out")
            .arg(out)
            .current_dir(root),
        "maturin build",
    )?;
    match smlp_wheels(out)?.as_slice() {
        [one] => Ok(one.clone()),
        other => Err(format!(
            "maturin build left {} smlp wheels in {} (expected one)",
            other.len(),
            out.display()
        )
        .into()),
    }
}

/// The `smlp-*.whl` files in `dir`.
fn smlp_wheels(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?
    {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("smlp-") && name.ends_with(".whl") {
            found.push(path);
        }
    }
    Ok(found)
}

/// A command whose environment has `bin` as its whole `PATH` and none of cargo's, rustup's or a
/// C compiler's variables.
fn bare(program: &Path, bin: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if ["CARGO", "RUSTUP", "RUSTC", "RUSTDOC", "RUST_"]
            .iter()
            .any(|p| k.starts_with(p))
            || ["CC", "CXX", "LD", "CFLAGS", "VIRTUAL_ENV", "PYTHONPATH"].contains(&k.as_ref())
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env("PATH", bin);
    cmd
}

/// Installs `wheel` in a new virtual environment without a toolchain in reach and runs the
/// README's Python example there.
pub fn check(root: &Path, wheel: &Path) -> Result<()> {
    let dir = root.join("target").join("wheel-check");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    let venv = dir.join("venv");
    println!(
        "==> xtask wheel --check: a new virtual environment {} with only the wheel and \
         scikit-learn, PATH without cargo, rustc, cc or m4",
        venv.display()
    );
    run(
        Command::new(python()?).arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    let bin = venv.join("bin");
    let py = bin.join("python");
    for tool in ["cargo", "rustc", "cc", "gcc", "m4"] {
        if ok(bare(&py, &bin).args([
            "-c",
            &format!("import shutil, sys; sys.exit(shutil.which('{tool}') is None)"),
        ])) {
            return Err(format!("the check's PATH still reaches {tool}").into());
        }
    }
    run(
        bare(&py, &bin)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--only-binary",
                ":all:",
            ])
            .arg(wheel)
            .arg("scikit-learn"),
        "pip install of the wheel (binary only)",
    )?;
    let example = root.join("smlp-py").join("examples").join("notebook.py");
    println!(
        "==> xtask wheel --check: {} --insecure-test-key, from {}",
        example.display(),
        dir.display()
    );
    run(
        bare(&py, &bin)
            .arg(&example)
            .arg("--insecure-test-key")
            .current_dir(&dir),
        "the README's Python example on the installed wheel",
    )?;
    let installed = bare(&py, &bin)
        .args(["-c", "import smlp, sys; sys.stdout.write(smlp.__file__)"])
        .current_dir(&dir)
        .output()?;
    let location = String::from_utf8_lossy(&installed.stdout).into_owned();
    if !location.starts_with(&*venv.to_string_lossy()) {
        return Err(format!(
            "the example imported smlp from {location}, not from the wheel installed in {}",
            venv.display()
        )
        .into());
    }
    println!("==> xtask wheel --check: passed ({location})");
    Ok(())
}
