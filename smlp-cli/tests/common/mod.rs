//! Helpers for the tests that run the real `smlp` binary.
#![allow(dead_code)]

use smlp::data::Dataset;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_smlp");

/// One deployment PKI for the whole test binary (`smlp pki`: S1 and S2 on 127.0.0.1, owners
/// "owner" and "alice"), handed to every child process through `SMLP_PKI` (the `--pki` default).
pub fn pki() -> &'static Path {
    static PKI: OnceLock<tempfile::TempDir> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("smlp-cli-pki-")
            .tempdir()
            .unwrap();
        let out = Command::new(BIN)
            .args(["pki", "--out"])
            .arg(dir.path())
            .args(["--s1-host", "127.0.0.1", "--s2-host", "127.0.0.1"])
            .args(["--owner", "owner", "--owner", "alice"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
    .path()
}

pub fn run(args: &[&str]) -> Output {
    // A server reads its own kit (the PKI's root holds ca.key, beside which servers refuse to
    // start); an explicit --pki wins over the variable.
    let pki_dir = match args.first() {
        Some(&"serve-s1") => pki().join("s1"),
        Some(&"serve-s2") => pki().join("s2"),
        _ => pki().to_path_buf(),
    };
    Command::new(BIN)
        .args(args)
        .env("SMLP_PKI", pki_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run smlp")
}

fn show(args: &[&str], out: &Output) -> String {
    format!(
        "smlp {}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs smlp, asserts success, returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "expected success:\n{}",
        show(args, &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs smlp, asserts a clean failure (exit code 1, one `error:` line, no panic), returns stderr.
pub fn fail(args: &[&str]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1:\n{}",
        show(args, &out)
    );
    assert!(
        stderr.starts_with("error: ") || stderr.contains("\nerror: "),
        "expected an `error:` line:\n{}",
        show(args, &out)
    );
    assert!(!stderr.contains("panicked"), "panic:\n{}", show(args, &out));
    stderr
}

pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A test directory with a 512-bit key pair in `keys/`.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("smlp-cli-test-")
            .tempdir()
            .unwrap();
        let env = Env { dir };
        ok(&[
            "keygen",
            "--bits",
            "512",
            "--insecure-test-key",
            "--out",
            &env.p("keys"),
        ]);
        env
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    pub fn p(&self, name: &str) -> String {
        s(&self.path(name))
    }
    pub fn public(&self) -> String {
        self.p("keys/public.key")
    }
    pub fn secret(&self) -> String {
        self.p("keys/secret.key")
    }
    /// S2's state directory of this environment (the one `s2` starts with unless `extra` names
    /// another).
    pub fn s2_state(&self) -> String {
        self.p("s2-state")
    }
    /// Adds this environment's secret key to the S2 state directory `state` (as S2's operator
    /// does with `smlp s2-keys add`).
    pub fn give_key_to_s2(&self, state: &str) {
        ok(&[
            "s2-keys",
            "--state-dir",
            state,
            "add",
            "--plain",
            "--insecure-test-key",
            &self.secret(),
        ]);
    }
    /// `serve-s2` holding this environment's secret key (in its state directory) with `extra`
    /// options.
    pub fn s2(&self, extra: &[&str]) -> Server {
        let state = match extra.iter().position(|a| *a == "--state-dir") {
            Some(i) => extra[i + 1].to_string(),
            None => self.s2_state(),
        };
        self.give_key_to_s2(&state);
        let mut args = vec!["serve-s2"];
        if !extra.contains(&"--state-dir") {
            args.extend(["--state-dir", &state]);
        }
        args.extend_from_slice(extra);
        Server::start(self.dir.path(), "s2", &args)
    }
    /// `serve-s1` with S2 at `s2` and `extra` options; this environment's public key is
    /// registered for the owner "owner".
    pub fn s1(&self, s2: &str, extra: &[&str]) -> Server {
        let mut args = vec!["serve-s1", "--s2", s2];
        args.extend_from_slice(extra);
        let server = Server::start(self.dir.path(), "s1", &args);
        self.register(&server, "owner");
        server
    }
    /// Registers this environment's public key at `s1` for `owner`.
    pub fn register(&self, s1: &Server, owner: &str) {
        ok(&[
            "register",
            "--s1",
            &s1.addr,
            "--as",
            owner,
            "--public-key",
            &self.public(),
        ]);
    }
    /// Another 512-bit key pair (another owner's), in the directory `dir`; returns its path.
    pub fn keygen(&self, dir: &str) -> String {
        ok(&[
            "keygen",
            "--bits",
            "512",
            "--insecure-test-key",
            "--out",
            &self.p(dir),
        ]);
        self.p(dir)
    }
    /// Files in the directory (not recursive), sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Writes `d` as CSV with the label column `label` last.
pub fn write_csv(path: &Path, d: &Dataset, label: &str) {
    let mut s = d.feature_names.join(",");
    writeln!(s, ",{label}").unwrap();
    for (x, y) in d.features.iter().zip(&d.labels) {
        for v in x {
            write!(s, "{v},").unwrap();
        }
        writeln!(s, "{y}").unwrap();
    }
    std::fs::write(path, s).unwrap();
}

/// A server child process started with `--listen 127.0.0.1:0 --ready-file`.
pub struct Server {
    pub child: Option<Child>,
    pub addr: String,
    pub log: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> Server {
        Server::start_env(dir, name, args, &[])
    }

    /// [`Server::start`] with extra environment variables (the log is appended to).
    pub fn start_env(dir: &Path, name: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let ready = dir.join(format!("{name}.addr"));
        let log = dir.join(format!("{name}.log"));
        let _ = std::fs::remove_file(&ready);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        // Small test keys: the S2 of the tests serves κ down to 40.
        let mut extra: Vec<String> = vec![];
        if args.first() == Some(&"serve-s2") && !args.contains(&"--kappa") {
            extra.extend(["--kappa".into(), "40".into()]);
        }
        // The tests run both profiles: their S2 serves both unless a test says otherwise.
        if args.first() == Some(&"serve-s2") && !args.contains(&"--profile") {
            extra.extend(["--profile".into(), "any".into()]);
        }
        // A small DGK key: the tests' Paillier keys are small too.
        if args.first() == Some(&"serve-s2") && !args.contains(&"--dgk-bits") {
            extra.extend(["--dgk-bits".into(), "512".into()]);
        }
        // S1 keeps its store in the test directory (one per server name).
        if args.first() == Some(&"serve-s1") && !args.contains(&"--state-dir") {
            extra.extend(["--state-dir".into(), s(&dir.join(format!("{name}-state")))]);
        }
        // Each server gets its own kit of the test PKI (ca.crt and its pair; the PKI's root
        // holds ca.key, which servers refuse to start beside).
        for (cmd, stem) in [("serve-s1", "s1"), ("serve-s2", "s2")] {
            if args.first() == Some(&cmd) && !args.contains(&"--pki") {
                extra.extend(["--pki".into(), s(&pki().join(stem))]);
            }
        }
        if !args.contains(&"--listen") {
            extra.extend(["--listen".into(), "127.0.0.1:0".into()]);
        }
        let child = Command::new(BIN)
            .args(args)
            .args(&extra)
            .args(["--ready-file", &s(&ready)])
            .env("SMLP_PKI", pki())
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        let mut server = Server {
            child: Some(child),
            addr: String::new(),
            log,
        };
        let start = Instant::now();
        loop {
            if let Ok(t) = std::fs::read_to_string(&ready) {
                if t.ends_with('\n') {
                    server.addr = t.trim().to_string();
                    return server;
                }
            }
            if let Some(st) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("{name} exited with {st}:\n{}", server.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name} did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit status.
    pub fn signal(&mut self, signal: &str) -> ExitStatus {
        let st = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!(
                    "server did not exit after SIG{signal}:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Waits (at most `secs`) for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return st;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "still running:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A loopback address on which nothing listens.
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

/// A stratified wdbc subset of `n` samples written as `name`.
pub fn wdbc_csv(env: &Env, name: &str, n: usize, seed: u64) {
    let d = Dataset::wdbc();
    let sub = smlp::data::stratified_split(&d, n as f64 / d.len() as f64, seed)
        .unwrap()
        .1;
    write_csv(&env.path(name), &sub, "malignant");
}

/// `smlp encrypt` of `env/csv` under `key` into `env/out`.
pub fn encrypt(env: &Env, key: &str, csv: &str, out: &str) {
    ok(&[
        "encrypt",
        "--public-key",
        key,
        "--csv",
        &env.p(csv),
        "--out",
        &env.p(out),
    ]);
}

/// Six wdbc samples encrypted under the environment's key as `d.enc` (from `d.csv`).
pub fn small_encrypted(env: &Env) -> String {
    wdbc_csv(env, "d.csv", 6, 1);
    encrypt(env, &env.public(), "d.csv", "d.enc");
    env.p("d.enc")
}

/// `args` (a command, then its options) against S1 at `s1` as the owner `owner`.
pub fn as_owner(s1: &str, owner: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec![args[0], "--s1", s1, "--as", owner];
    v.extend_from_slice(&args[1..]);
    v.iter().map(|x| x.to_string()).collect()
}

/// The `&str`s of an argument vector.
pub fn argv(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
