//! Every error case through the real binary: exit code 1, one clear `error:` line, no panic, and
//! nothing half-written.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn start_servers(env: &Env) -> (Server, Server) {
    let s2 = env.s2(&["--pool-capacity", "16"]);
    let s1 = env.s1(&s2.addr, &[]);
    (s2, s1)
}

fn wait_for_log(server: &Server, text: &str) {
    let start = Instant::now();
    while !server.log_text().contains(text) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "`{text}` not logged:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn wrong_key_for_this_file() {
    let env = Env::new();
    ok(&[
        "keygen",
        "--bits",
        "512",
        "--insecure-test-key",
        "--out",
        &env.p("other"),
    ]);
    let other_public = env.p("other/public.key");
    let other_secret = env.p("other/secret.key");
    wdbc_csv(&env, "d.csv", 6, 1);
    encrypt(&env, &env.public(), "d.csv", "mine.enc");
    encrypt(&env, &other_public, "d.csv", "foreign.enc");
    let (_s2, s1) = start_servers(&env);

    // Data under a key this owner has not registered: refused before anything is uploaded.
    let err = fail(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &env.p("foreign.enc"),
        "--out",
        &env.p("m.enc"),
    ]);
    assert!(err.contains("the data set is encrypted under key"), "{err}");
    assert!(err.contains("has not registered"), "{err}");

    // A quick model and predictions under the right key ...
    ok(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &env.p("mine.enc"),
        "--hidden",
        "2",
        "--kappa",
        "40",
        "--out",
        &env.p("m.enc"),
    ]);
    ok(&[
        "classify",
        "--s1",
        &s1.addr,
        "--model",
        &env.p("m.enc"),
        "--data",
        &env.p("mine.enc"),
        "--kappa",
        "40",
        "--out",
        &env.p("p.enc"),
    ]);
    // ... cannot be decrypted with another secret key,
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &other_secret,
        "--in",
        &env.p("p.enc"),
        "--out",
        &env.p("p.csv"),
    ]);
    assert!(err.contains("predictions are encrypted under key"), "{err}");
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &other_secret,
        "--in",
        &env.p("m.enc"),
        "--out",
        &env.p("m.json"),
    ]);
    assert!(err.contains("the model is encrypted under key"), "{err}");
    // ... nor used with data under another key.
    let err = fail(&[
        "classify",
        "--s1",
        &s1.addr,
        "--model",
        &env.p("m.enc"),
        "--data",
        &env.p("foreign.enc"),
        "--out",
        &env.p("p2.enc"),
    ]);
    assert!(err.contains("wrong key"), "{err}");
    assert!(
        !env.path("p.csv").exists() && !env.path("m.json").exists() && !env.path("p2.enc").exists()
    );

    // The other key registered at S1, but S2 does not hold it: S2 refuses the handshake, S1
    // reports it.
    ok(&["register", "--s1", &s1.addr, "--public-key", &other_public]);
    let err = fail(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &env.p("foreign.enc"),
        "--out",
        &env.p("m2.enc"),
    ]);
    assert!(err.contains("failed: S2 refused the session"), "{err}");
    assert!(!env.path("m2.enc").exists());
}

#[test]
fn s2_unreachable_is_reported_by_s1() {
    let env = Env::new();
    wdbc_csv(&env, "d.csv", 4, 2);
    encrypt(&env, &env.public(), "d.csv", "d.enc");
    let mut s1 = Server::start(
        env.dir.path(),
        "s1",
        &[
            "serve-s1",
            "--s2",
            &closed_port(),
            "--s2-connect-retry-secs",
            "0",
            "--s2-retry-deadline-secs",
            "0.5",
        ],
    );
    env.register(&s1, "owner");
    for _ in 0..2 {
        let err = fail(&[
            "train",
            "--s1",
            &s1.addr,
            "--data",
            &env.p("d.enc"),
            "--out",
            &env.p("m.enc"),
        ]);
        // The job waits for S2 until the deadline; the owner learns the category, S1's
        // operator the detail.
        assert!(
            err.contains("failed: S2 stayed unreachable for 0.5 s; S1's log has the detail"),
            "{err}"
        );
        assert!(
            s1.log_text().contains("cannot connect to"),
            "{}",
            s1.log_text()
        );
        assert_eq!(err.matches("error:").count(), 1, "{err}");
        assert!(
            !err.contains("127.0.0.1"),
            "no S2 address for the owner: {err}"
        );
        assert!(s1.is_running(), "S1 must survive");
    }
    assert!(!env.path("m.enc").exists());
}

#[test]
fn s1_unreachable() {
    let env = Env::new();
    wdbc_csv(&env, "d.csv", 4, 3);
    encrypt(&env, &env.public(), "d.csv", "d.enc");
    let addr = closed_port();
    let err = fail(&[
        "train",
        "--s1",
        &addr,
        "--data",
        &env.p("d.enc"),
        "--out",
        &env.p("m.enc"),
    ]);
    assert!(
        err.contains("S1 is unreachable: cannot connect to"),
        "{err}"
    );
    let err = fail(&[
        "train",
        "--s1",
        "no-such-host.invalid:1",
        "--data",
        &env.p("d.enc"),
        "--out",
        &env.p("m.enc"),
    ]);
    assert!(err.contains("S1 is unreachable"), "{err}");
    assert!(!env.path("m.enc").exists());
}

#[test]
fn corrupt_truncated_and_foreign_files() {
    let env = Env::new();
    wdbc_csv(&env, "d.csv", 4, 4);
    encrypt(&env, &env.public(), "d.csv", "d.enc");
    let good = std::fs::read(env.path("d.enc")).unwrap();
    let nowhere = closed_port();

    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x10;
    std::fs::write(env.path("corrupt.enc"), &corrupt).unwrap();
    let err = fail(&[
        "train",
        "--s1",
        &nowhere,
        "--data",
        &env.p("corrupt.enc"),
        "--out",
        &env.p("m.enc"),
    ]);
    assert!(
        err.contains("corrupt.enc: corrupted encrypted data set data: checksum mismatch"),
        "{err}"
    );
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("corrupt.enc"),
        "--out",
        &env.p("x.csv"),
    ]);
    assert!(err.contains("checksum mismatch"), "{err}");

    std::fs::write(env.path("short.enc"), &good[..good.len() - 100]).unwrap();
    let err = fail(&[
        "train",
        "--s1",
        &nowhere,
        "--data",
        &env.p("short.enc"),
        "--out",
        &env.p("m.enc"),
    ]);
    assert!(
        err.contains("short.enc: truncated encrypted data set data"),
        "{err}"
    );
    std::fs::write(env.path("tiny.enc"), &good[..12]).unwrap();
    let err = fail(&[
        "classify",
        "--s1",
        &nowhere,
        "--model",
        &env.p("tiny.enc"),
        "--data",
        &env.p("d.enc"),
        "--out",
        &env.p("p.enc"),
    ]);
    assert!(
        err.contains("not a encrypted model file") || err.contains("bad magic"),
        "{err}"
    );
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("tiny.enc"),
        "--out",
        &env.p("x.csv"),
    ]);
    assert!(err.contains("truncated"), "{err}");

    std::fs::write(env.path("text.enc"), "hello, world\n").unwrap();
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("text.enc"),
        "--out",
        &env.p("x.csv"),
    ]);
    assert!(err.contains("not an smlp file"), "{err}");
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("missing.enc"),
        "--out",
        &env.p("x.csv"),
    ]);
    assert!(
        err.contains("missing.enc") && err.contains("No such file"),
        "{err}"
    );

    // Keys: the wrong kind of key file, a corrupted key.
    let err = fail(&[
        "encrypt",
        "--public-key",
        &env.secret(),
        "--csv",
        &env.p("d.csv"),
        "--out",
        &env.p("x.enc"),
    ]);
    assert!(err.contains("not a public key file"), "{err}");
    let err = fail(&[
        "s2-keys",
        "--state-dir",
        &env.p("s2-state"),
        "add",
        "--plain",
        &env.public(),
    ]);
    assert!(err.contains("not a secret key file"), "{err}");
    let err = fail(&[
        "seal-key",
        "--secret-key",
        &env.secret(),
        "--to",
        &env.p("d.enc"),
        "--out",
        &env.p("x.sealed"),
    ]);
    assert!(err.contains("not a public import key of S2 file"), "{err}");
    let mut key = std::fs::read(env.path("keys/public.key")).unwrap();
    let n = key.len();
    key[n - 20] ^= 1;
    std::fs::write(env.path("bad.key"), &key).unwrap();
    let err = fail(&[
        "encrypt",
        "--public-key",
        &env.p("bad.key"),
        "--csv",
        &env.p("d.csv"),
        "--out",
        &env.p("x.enc"),
    ]);
    assert!(err.contains("checksum mismatch"), "{err}");
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.public(),
        "--out",
        &env.p("x.csv"),
    ]);
    assert!(err.contains("is a key file"), "{err}");

    for f in ["m.enc", "x.csv", "p.enc", "x.enc"] {
        assert!(!env.path(f).exists(), "{f} was written");
    }
    assert!(
        !env.files().iter().any(|f| f.contains(".tmp")),
        "{:?}",
        env.files()
    );
}

#[test]
fn csv_errors_and_nothing_half_written() {
    let env = Env::new();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "a,b,y\n1,2,0\n3,,1\n",
            &[],
            "line 3: missing value in column `b`",
        ),
        (
            "a,b,y\n1,2,0\n3,x7,1\n",
            &[],
            "line 3: value `x7` in column `b` is not a finite number",
        ),
        (
            "a,b,y\n1,2,0\n3,4,1\n",
            &["--label", "class"],
            "label column `class` not found in the header (columns: a,b,y)",
        ),
        (
            "a,b,y\n1,2,0\n3,4,2\n",
            &[],
            "labels must be the integers 0..2: class 1 has no sample",
        ),
        (
            "a,b,y\n1,2,0\n3,4,1.5\n",
            &[],
            "label `1.5` in column `y` is not a class index",
        ),
        (
            "a,b,y\n1,2,0\n3,4\n",
            &[],
            "line 3: expected 3 fields (as in the header), found 2",
        ),
        ("", &[], "empty CSV"),
        (
            "a,b,y\n1,2,0\n3,1e300,1\n",
            &[],
            "does not fit the fixed-point range",
        ),
    ];
    let before = env.files();
    for (i, (text, extra, want)) in cases.iter().enumerate() {
        std::fs::write(env.path("bad.csv"), text).unwrap();
        let public = env.public();
        let mut args = vec!["encrypt", "--public-key", &public, "--csv"];
        let csv = env.p("bad.csv");
        let out = env.p("bad.enc");
        args.push(&csv);
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", &out]);
        let err = fail(&args);
        assert!(err.contains(want), "case {i}: want `{want}`, got: {err}");
        assert!(
            err.contains("bad.csv"),
            "case {i}: the file is named: {err}"
        );
        let mut files = env.files();
        files.retain(|f| f != "bad.csv");
        assert_eq!(files, before, "case {i}: something was written");
    }
    // A scaler for another number of features.
    std::fs::write(env.path("ok.csv"), "a,b,y\n1,2,0\n3,4,1\n").unwrap();
    std::fs::write(env.path("s.json"), "{\"mean\":[0],\"std\":[1]}").unwrap();
    let err = fail(&[
        "encrypt",
        "--public-key",
        &env.public(),
        "--csv",
        &env.p("ok.csv"),
        "--scaler",
        &env.p("s.json"),
        "--out",
        &env.p("ok.enc"),
    ]);
    assert!(err.contains("is for 1 features"), "{err}");
    assert!(!env.path("ok.enc").exists());
}

#[test]
fn failures_leave_existing_outputs_alone_and_interrupted_runs_write_nothing() {
    let env = Env::new();
    ok(&[
        "keygen",
        "--bits",
        "512",
        "--insecure-test-key",
        "--out",
        &env.p("other"),
    ]);
    wdbc_csv(&env, "small.csv", 4, 5);
    wdbc_csv(&env, "big.csv", 120, 6);
    encrypt(&env, &env.public(), "small.csv", "small.enc");
    encrypt(&env, &env.public(), "big.csv", "big.enc");
    let (_s2, mut s1) = start_servers(&env);
    ok(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &env.p("small.enc"),
        "--hidden",
        "2",
        "--kappa",
        "40",
        "--out",
        &env.p("m.enc"),
    ]);
    ok(&[
        "classify",
        "--s1",
        &s1.addr,
        "--model",
        &env.p("m.enc"),
        "--data",
        &env.p("small.enc"),
        "--kappa",
        "40",
        "--out",
        &env.p("p.enc"),
    ]);

    // A failed decryption leaves the existing output untouched.
    std::fs::write(env.path("p.csv"), "OLD").unwrap();
    fail(&[
        "decrypt",
        "--secret-key",
        &env.p("other/secret.key"),
        "--in",
        &env.p("p.enc"),
        "--out",
        &env.p("p.csv"),
    ]);
    assert_eq!(std::fs::read_to_string(env.path("p.csv")).unwrap(), "OLD");

    // A client killed in the middle of training leaves no model and no temporary file; the job
    // goes on at S1 (the owner left, nothing else happened) until the owner cancels it.
    let mut client = std::process::Command::new(BIN)
        .env("SMLP_PKI", pki())
        .args([
            "train",
            "--s1",
            &s1.addr,
            "--data",
            &env.p("big.enc"),
            "--profile",
            "strict",
            "--kappa",
            "40",
            "--out",
            &env.p("big-model.enc"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_log(&s1, "training job queued");
    std::thread::sleep(Duration::from_millis(800));
    client.kill().unwrap();
    client.wait().unwrap();
    assert!(!env.path("big-model.enc").exists());
    assert!(
        !env.files().iter().any(|f| f.contains(".tmp")),
        "{:?}",
        env.files()
    );
    let jobs = ok(&["jobs", "--s1", &s1.addr]);
    let job = jobs
        .lines()
        .find(|l| l.contains("running"))
        .unwrap_or_else(|| panic!("the job goes on:\n{jobs}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = ok(&["cancel", "--s1", &s1.addr, &job]);
    assert!(out.contains(&format!("cancelled job {job}")), "{out}");
    let st = run(&["wait", "--s1", &s1.addr, &job]);
    assert_eq!(st.status.code(), Some(3), "{st:?}");
    wait_for_log(&s1, "job cancelled");
    ok(&[
        "classify",
        "--s1",
        &s1.addr,
        "--model",
        &env.p("m.enc"),
        "--data",
        &env.p("small.enc"),
        "--kappa",
        "40",
        "--out",
        &env.p("p2.enc"),
    ]);

    // SIGTERM during a training run: S1 pauses the job, tells the waiting client, and exits
    // with 0; the job is kept for the next start.
    let client = std::process::Command::new(BIN)
        .env("SMLP_PKI", pki())
        .args([
            "train",
            "--s1",
            &s1.addr,
            "--data",
            &env.p("big.enc"),
            "--profile",
            "strict",
            "--kappa",
            "40",
            "--reconnect-secs",
            "0",
            "--out",
            &env.p("big-model.enc"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let n = s1.log_text().matches("training job queued").count();
    let start = Instant::now();
    while s1.log_text().matches("training job queued").count() == n {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let st = s1.signal("TERM");
    assert_eq!(st.code(), Some(0), "{}", s1.log_text());
    assert!(s1.log_text().contains("job paused: S1 is shutting down"));
    let out = client.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: S1: S1 is shutting down; job job-")
            && err.contains("continues when S1 is back (smlp wait job-"),
        "{err}"
    );
    assert!(!env.path("big-model.enc").exists());
}

#[test]
fn keygen_rules() {
    let dir = tempfile::tempdir().unwrap();
    let k = |name: &str| s(&dir.path().join(name));
    let err = fail(&["keygen", "--bits", "512", "--out", &k("a")]);
    assert!(err.contains("pass --insecure-test-key"), "{err}");
    let err = fail(&[
        "keygen",
        "--bits",
        "128",
        "--insecure-test-key",
        "--out",
        &k("a"),
    ]);
    assert!(err.contains("below the minimum of 256"), "{err}");
    let out = ok(&[
        "keygen",
        "--bits",
        "256",
        "--insecure-test-key",
        "--out",
        &k("a"),
    ]);
    assert!(out.contains("fingerprint"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("a/secret.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(dir.path().join("a/secret.key")).unwrap();
    let err = fail(&[
        "keygen",
        "--bits",
        "256",
        "--insecure-test-key",
        "--out",
        &k("a"),
    ]);
    assert!(err.contains("already exists; pass --force"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("a/secret.key")).unwrap(),
        before
    );
    ok(&[
        "keygen",
        "--bits",
        "256",
        "--insecure-test-key",
        "--out",
        &k("a"),
        "--force",
    ]);
    assert_ne!(
        std::fs::read(dir.path().join("a/secret.key")).unwrap(),
        before
    );
}

#[test]
fn every_command_has_help() {
    let out = ok(&["--help"]);
    for cmd in [
        "keygen", "pki", "encrypt", "serve-s2", "serve-s1", "upload", "train", "jobs", "wait",
        "fetch", "cancel", "classify", "list", "delete", "decrypt", "demo",
    ] {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
        let h = ok(&[cmd, "--help"]);
        assert!(
            h.len() > 300 && h.contains("Usage: smlp"),
            "{cmd} --help:\n{h}"
        );
    }
    assert!(ok(&["encrypt", "--help"]).contains("--scaler"));
    assert!(ok(&["train", "--help"]).contains("--resume"));
    assert!(ok(&["serve-s1", "--help"]).contains("--ready-file"));
    let err = run(&["train", "--profile", "turbo"]);
    assert_eq!(err.status.code(), Some(2));
}

/// Private by default: `train` without `--profile` says nothing about profiles; with
/// `--profile fast` one warning line on stderr says what S2 then learns (before anything else
/// fails here: no S1 listens on port 1).
#[test]
fn choosing_the_fast_profile_warns_once() {
    let base = [
        "train",
        "--s1",
        "127.0.0.1:1",
        "--dataset",
        "ds-000000000000",
        "--detach",
    ];
    let out = run(&base);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("fast profile"), "{stderr}");
    let mut fast = base.to_vec();
    fast.extend(["--profile", "fast"]);
    let out = run(&fast);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: the fast profile lets S2 learn the bit-length"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
}
