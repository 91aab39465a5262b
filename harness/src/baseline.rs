//! The python-paillier peer (`../shared/peers/phe_smlp.py`, relative to the workspace root): the
//! same two-server training written with phe + gmpy2, run on the same machine right after ours.

use crate::workspace_root;
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// What the peer measured.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    pub script: String,
    pub bits: u32,
    pub hidden: usize,
    pub samples: usize,
    /// Seconds per training sample (median over `samples`).
    pub train_s: f64,
    /// Seconds per forward-only classification.
    pub classify_s: f64,
    /// Wall time of the whole script, key generation included.
    pub wall_s: f64,
    /// Its other summary lines (op counts, ulp difference).
    pub notes: Vec<String>,
}

/// Why there is no baseline, or the baseline.
#[derive(Clone, Debug, Serialize)]
pub enum Outcome {
    Ran(Baseline),
    Unavailable(String),
}

pub fn script_path() -> PathBuf {
    let p = workspace_root().join("../shared/peers/phe_smlp.py");
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// Parses the peer's output; `None` if either timing line is missing.
pub fn parse(output: &str) -> Option<(f64, f64, Vec<String>)> {
    let mut train = None;
    let mut classify = None;
    let mut notes = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if line.starts_with("seconds per training sample") {
            train = line.rsplit(':').next()?.trim().parse::<f64>().ok();
        } else if line.starts_with("seconds per forward-only classification") {
            classify = line.rsplit(':').next()?.trim().parse::<f64>().ok();
        } else if line.starts_with("per training sample")
            || line.starts_with("max weight difference")
        {
            notes.push(line.to_string());
        }
    }
    Some((train?, classify?, notes))
}

/// Runs the peer if python3 can import phe and gmpy2 and the script exists; streams its output.
pub fn run(bits: u32, hidden: usize, samples: usize) -> Outcome {
    let script = script_path();
    if !script.exists() {
        return Outcome::Unavailable(format!("{} does not exist", script.display()));
    }
    let probe = Command::new("python3")
        .args(["-c", "import phe, gmpy2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(s) if s.success() => {}
        Ok(_) => {
            return Outcome::Unavailable(
                "`python3 -c \"import phe, gmpy2\"` failed (install with `pip install phe==1.5.0 gmpy2`)"
                    .into(),
            )
        }
        Err(e) => return Outcome::Unavailable(format!("cannot run python3: {e}")),
    }
    let t = Instant::now();
    let child = Command::new("python3")
        .arg(&script)
        .args([
            "--bits",
            &bits.to_string(),
            "--hidden",
            &hidden.to_string(),
            "--samples",
            &samples.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Outcome::Unavailable(format!("cannot start the peer: {e}")),
    };
    let mut all = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(std::io::Result::ok) {
            println!("    [phe] {line}");
            all.push_str(&line);
            all.push('\n');
        }
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait();
    let wall_s = t.elapsed().as_secs_f64();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            return Outcome::Unavailable(format!(
                "the peer exited with {s}: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ));
        }
        Err(e) => return Outcome::Unavailable(format!("waiting for the peer failed: {e}")),
    }
    match parse(&all) {
        Some((train_s, classify_s, notes)) => Outcome::Ran(Baseline {
            script: script.display().to_string(),
            bits,
            hidden,
            samples,
            train_s,
            classify_s,
            wall_s,
            notes,
        }),
        None => Outcome::Unavailable("the peer's output has no timing lines".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_peer_output() {
        let out = "phe raw Paillier, n=2048 bits, MLP 30-8-1, F=16, kappa=80, L=64\n\
                   \x20 sample 0: 12.10 s  {'enc': 1}\n\
                   seconds per training sample (median of 3): 12.345\n\
                   seconds per forward-only classification: 2.5\n\
                   per training sample: encryptions=100 decryptions=200 exps=300\n\
                   max weight difference vs plaintext reference: 1 ulp (2^-16)\n";
        let (t, c, notes) = super::parse(out).unwrap();
        assert_eq!((t, c), (12.345, 2.5));
        assert_eq!(notes.len(), 2);
        assert!(super::parse("nothing").is_none());
    }
}
