//! What the GMP build needs, checked (and installed where we may) before cargo builds it.
//!
//! The deployment build uses GMP through `rug`; `gmp-mpfr-sys` compiles GMP from source, and GMP's
//! `configure` needs `m4`. Debian's and Ubuntu's Rust images do not ship it, and the system GMP
//! cannot stand in (gmp-mpfr-sys 1.7 refuses Debian 12's libgmp 6.2.1). So the commands that build
//! GMP (`cargo xtask test`, `cargo xtask demo`, and `repro`/`speed`, which re-run themselves with
//! the `gmp` feature) first make sure `m4` is there: as root, or with password-less sudo, they
//! install it with the system's package manager; otherwise they stop with the one command to run.
//!
//! xtask itself builds without GMP (its `gmp` feature is off by default), so this check can run on
//! a machine that cannot build GMP yet.

use crate::Result;
use std::process::{Command, Stdio};

/// Whether `program` runs (found on the PATH and answers `--version`).
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A package manager we know how to drive: the commands that install `m4` with it.
struct Manager {
    name: &'static str,
    steps: &'static [&'static [&'static str]],
}

const MANAGERS: &[Manager] = &[
    Manager {
        name: "apt-get",
        steps: &[
            &["apt-get", "update", "-qq"],
            &["apt-get", "install", "-y", "-qq", "m4"],
        ],
    },
    Manager {
        name: "dnf",
        steps: &[&["dnf", "install", "-y", "-q", "m4"]],
    },
    Manager {
        name: "yum",
        steps: &[&["yum", "install", "-y", "-q", "m4"]],
    },
    Manager {
        name: "zypper",
        steps: &[&["zypper", "--non-interactive", "install", "m4"]],
    },
    Manager {
        name: "pacman",
        steps: &[&["pacman", "-S", "--noconfirm", "--needed", "m4"]],
    },
    Manager {
        name: "apk",
        steps: &[&["apk", "add", "--no-cache", "m4"]],
    },
];

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn manager() -> Option<&'static Manager> {
    MANAGERS
        .iter()
        .find(|m| runs("sh", &["-c", &format!("command -v {}", m.name)]))
}

fn install_line(m: Option<&Manager>) -> String {
    match m {
        Some(m) => m
            .steps
            .iter()
            .map(|s| format!("sudo {}", s.join(" ")))
            .collect::<Vec<_>>()
            .join(" && "),
        None if cfg!(target_os = "macos") => "brew install m4".into(),
        None => "install the `m4` package with your system's package manager".into(),
    }
}

/// Makes sure the GMP build can run: `m4` on the PATH, installed if it is missing and we may.
pub fn ensure_gmp_build() -> Result<()> {
    if runs("m4", &["--version"]) {
        return Ok(());
    }
    let m = manager();
    let how = install_line(m);
    let Some(m) = m else {
        return Err(format!(
            "GMP is built from source and needs `m4`, which is not installed; {how}, then run this command again"
        )
        .into());
    };
    let sudo = if is_root() {
        false
    } else if runs("sudo", &["-n", "true"]) {
        true
    } else {
        return Err(format!(
            "GMP is built from source and needs `m4`, which is not installed; run `{how}`, then this command again"
        )
        .into());
    };
    println!(
        "==> xtask: GMP is built from source and needs `m4`; installing it with {}",
        m.name
    );
    for step in m.steps {
        let (program, args): (&str, Vec<&str>) = if sudo {
            (
                "sudo",
                std::iter::once("-n").chain(step.iter().copied()).collect(),
            )
        } else {
            (step[0], step[1..].to_vec())
        };
        println!("    {program} {}", args.join(" "));
        let status = Command::new(program)
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`{program} {}` failed ({status}); install `m4` yourself ({how}) and run this command again",
                args.join(" ")
            )
            .into());
        }
    }
    if !runs("m4", &["--version"]) {
        return Err(format!(
            "`m4` is still not runnable after installing it with {}",
            m.name
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_line_names_every_step_with_sudo() {
        let apt = &MANAGERS[0];
        assert_eq!(
            install_line(Some(apt)),
            "sudo apt-get update -qq && sudo apt-get install -y -qq m4"
        );
    }

    #[test]
    fn a_program_that_does_not_exist_does_not_run() {
        assert!(!runs("smlp-no-such-program-xyz", &["--version"]));
        assert!(runs("sh", &["-c", "exit 0"]));
        assert!(!runs("sh", &["-c", "exit 3"]));
    }
}
