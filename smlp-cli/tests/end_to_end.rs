//! The whole flow through the real binary, with S1 and S2 as separate processes, checked bit for
//! bit against the fixed-point reference of the smlp crate (strict profile).

mod common;

use common::*;
use paillier::FixedPoint;
use rand::SeedableRng;
use serde::Deserialize;
use smlp::data::{stratified_split, Dataset, EncodedDataset, Standardizer};
use smlp::{
    init_fixed, train_fixed, FixedMlp, FixedParams, LearningRate, Params, Rounding, Shape,
    TrainOptions,
};
use std::io::Write;

#[derive(Deserialize)]
struct ModelJson {
    shape: Vec<usize>,
    epochs_trained: u64,
    profile: String,
    weight_frac_bits: u32,
    layers: Vec<LayerJson>,
    /// A checkpoint's run: only the loss is read here.
    config: Option<ConfigJson>,
}

#[derive(Deserialize)]
struct ConfigJson {
    loss: String,
}

#[derive(Deserialize)]
struct LayerJson {
    weights: Vec<Vec<f64>>,
    weights_raw: Vec<Vec<i128>>,
    biases_raw: Vec<i128>,
}

fn raw_params(m: &ModelJson) -> Params<i128> {
    Params {
        layers: m
            .layers
            .iter()
            .map(|l| smlp::Layer {
                w: l.weights_raw.clone(),
                b: l.biases_raw.clone(),
            })
            .collect(),
    }
}

fn read_json(path: &std::path::Path) -> ModelJson {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `smlp decrypt` of the model or checkpoint `enc` into `json` (both in `env`).
fn decrypt_json(env: &Env, enc: &str, json: &str) {
    ok(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p(enc),
        "--out",
        &env.p(json),
    ]);
}

/// The fixed-point reference: the same CSV, scaler, initial weights and order as the CLI run.
fn reference(
    env: &Env,
    train: &Dataset,
    init_seed: u64,
    epochs: u64,
    batch: usize,
    seed: u64,
) -> FixedMlp {
    let scaler = Standardizer::load(&env.path("train.enc.scaler.json")).unwrap();
    let fp = FixedPoint::new(16, 20).unwrap();
    let enc = EncodedDataset::encode(&scaler.apply(train).unwrap(), &fp).unwrap();
    // The CLI runs set no learning rate and no loss: `smlp train` takes those `smlp encrypt`
    // recorded in the data set (the defaults with η chosen for the data by cross-validation).
    let recorded = smlp::encrypted::read_dataset(&env.path("train.enc"))
        .unwrap()
        .settings
        .expect("smlp encrypt records settings in a training set");
    assert!(recorded.source.starts_with("auto:"), "{recorded:?}");
    let (num, shift) = (recorded.setting.lr_num, recorded.setting.lr_shift);
    let fixed = FixedParams::new(16, LearningRate::new(num, shift).unwrap(), 72).unwrap();
    let shape = Shape::new(vec![30, 3, 1]).unwrap();
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(init_seed),
    );
    let mut m = FixedMlp::from_params(init, fixed).unwrap();
    let opts = TrainOptions {
        epochs,
        batch,
        seed,
        loss: recorded.setting.loss,
        start_epoch: 0,
        rounding: Rounding::Floor,
    };
    train_fixed(&mut m, &enc, &opts, |_, _| {}).unwrap();
    m
}

#[test]
fn strict_end_to_end_equals_fixed_point_reference_and_servers_stop_cleanly() {
    let env = Env::new();
    let (train_full, test_full) = stratified_split(&Dataset::wdbc(), 0.2, 5).unwrap();
    let train = stratified_split(&train_full, 12.0 / train_full.len() as f64, 1)
        .unwrap()
        .1;
    let test = stratified_split(&test_full, 8.0 / test_full.len() as f64, 1)
        .unwrap()
        .1;
    assert_eq!((train.len(), test.len()), (12, 8));
    write_csv(&env.path("train.csv"), &train, "malignant");
    write_csv(&env.path("test.csv"), &test, "malignant");

    let out = ok(&[
        "encrypt",
        "--public-key",
        &env.public(),
        "--csv",
        &env.p("train.csv"),
        "--out",
        &env.p("train.enc"),
    ]);
    assert!(out.contains("encrypted 12 samples"), "{out}");
    assert!(env.path("train.enc.scaler.json").exists());
    ok(&[
        "encrypt",
        "--public-key",
        &env.public(),
        "--csv",
        &env.p("test.csv"),
        "--scaler",
        &env.p("train.enc.scaler.json"),
        "--out",
        &env.p("test.enc"),
    ]);
    assert!(!env.path("test.enc.scaler.json").exists());

    // DGK comparisons here (the other end-to-end tests and the demo run the default, garbled
    // ones): the same bit-exact equality with the fixed-point reference holds for both. S2
    // serves them only when its operator allows.
    let mut s2 = env.s2(&["--pool-capacity", "64", "--comparison", "any"]);
    let mut s1 = env.s1(&s2.addr, &["--comparison", "dgk"]);

    // Misbehaving clients: garbage, an oversized frame header, a silent disconnect. Both servers
    // must go on serving.
    for addr in [&s1.addr, &s2.addr] {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(&[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb])
            .unwrap();
        drop(c);
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
        drop(c);
        drop(std::net::TcpStream::connect(addr).unwrap());
    }

    // Epoch 1 (strict profile, mini-batches of 2, owner-drawn initial weights), with a checkpoint.
    let train_args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "train",
            "--s1",
            &s1.addr,
            "--data",
            &env.p("train.enc"),
            "--profile",
            "strict",
            "--batch",
            "2",
            "--seed",
            "3",
            "--kappa",
            "40",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    // Detached: the job id comes back at once; `wait` follows it, `fetch` gets the model and
    // the last checkpoint.
    let a = train_args(&[
        "--hidden",
        "3",
        "--epochs",
        "1",
        "--init-seed",
        "7",
        "--detach",
    ]);
    let job = ok(&a.iter().map(String::as_str).collect::<Vec<_>>())
        .trim()
        .to_string();
    assert!(job.starts_with("job-"), "{job}");
    let out = ok(&["wait", "--s1", &s1.addr, "--quiet", &job]);
    assert!(out.contains(&format!("job {job} done: md-")), "{out}");
    let out = ok(&["jobs", "--s1", &s1.addr]);
    assert!(out.contains(&job) && out.contains("done"), "{out}");
    ok(&[
        "fetch",
        "--s1",
        &s1.addr,
        &job,
        "--out",
        &env.p("model.enc"),
    ]);
    ok(&[
        "fetch",
        "--s1",
        &s1.addr,
        &job,
        "--checkpoint",
        "--out",
        &env.p("ckpt"),
    ]);
    assert!(env.path("ckpt").exists());
    let want1 = reference(&env, &train, 7, 1, 2, 3);
    decrypt_json(&env, "model.enc", "model.json");
    let m = read_json(&env.path("model.json"));
    assert_eq!(m.shape, vec![30, 3, 1]);
    // Weights at scale 2^(2f + s) for η = num/2^s, the one recorded in the data set.
    let recorded = smlp::encrypted::read_dataset(&env.path("train.enc"))
        .unwrap()
        .settings
        .unwrap();
    let fw = 2 * 16 + recorded.setting.lr_shift;
    assert_eq!(
        (m.epochs_trained, m.profile.as_str(), m.weight_frac_bits),
        (1, "strict", fw)
    );
    assert_eq!(
        raw_params(&m),
        want1.params,
        "encrypted weights differ from the reference"
    );
    assert_eq!(
        m.layers[0].weights[0][0],
        want1.fixed.decode_weight(want1.params.layers[0].w[0][0])
    );
    decrypt_json(&env, "ckpt", "ckpt.json");
    let ckpt = read_json(&env.path("ckpt.json"));
    assert_eq!(raw_params(&ckpt), want1.params);
    // `smlp train`'s default loss, named as `--loss` names it.
    assert_eq!(
        ckpt.config.expect("a checkpoint's run").loss,
        "smooth-hinge"
    );

    // Classification and decryption of the predictions.
    let out = ok(&[
        "classify",
        "--s1",
        &s1.addr,
        "--model",
        &env.p("model.enc"),
        "--data",
        &env.p("test.enc"),
        "--kappa",
        "40",
        "--out",
        &env.p("pred.enc"),
    ]);
    assert!(out.contains("classified 8 samples"), "{out}");
    ok(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("pred.enc"),
        "--out",
        &env.p("pred.csv"),
    ]);
    let csv = std::fs::read_to_string(env.path("pred.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("row,class"));
    let got: Vec<usize> = lines
        .enumerate()
        .map(|(i, l)| {
            let (row, class) = l.split_once(',').unwrap();
            assert_eq!(row.parse::<usize>().unwrap(), i);
            class.parse().unwrap()
        })
        .collect();
    let scaler = Standardizer::load(&env.path("train.enc.scaler.json")).unwrap();
    let test_fx = EncodedDataset::encode(
        &scaler.apply(&test).unwrap(),
        &FixedPoint::new(16, 20).unwrap(),
    )
    .unwrap();
    let want: Vec<usize> = test_fx
        .features
        .iter()
        .map(|x| want1.predict(x).unwrap())
        .collect();
    assert_eq!(got, want, "decrypted predictions differ from the reference");

    // New samples: the same features without a label column, encrypted with the training
    // scaler, classified and decrypted: the same classes as the reference.
    let mut unlabelled = test.feature_names.join(",") + "\n";
    for x in &test.features {
        let row: Vec<String> = x.iter().map(f64::to_string).collect();
        unlabelled += &(row.join(",") + "\n");
    }
    std::fs::write(env.path("new.csv"), &unlabelled).unwrap();
    let scaler_file = env.p("train.enc.scaler.json");
    let enc_new = |csv: &str| {
        run(&[
            "encrypt",
            "--public-key",
            &env.public(),
            "--csv",
            &env.p(csv),
            "--no-label",
            "--scaler",
            &scaler_file,
            "--out",
            &env.p("new.enc"),
        ])
    };
    // Without --scaler, or with columns that are not the training file's, it is refused.
    let out = run(&[
        "encrypt",
        "--public-key",
        &env.public(),
        "--csv",
        &env.p("new.csv"),
        "--no-label",
        "--out",
        &env.p("new.enc"),
    ]);
    // (a command-line error: exit code 2)
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--scaler"),
        "{out:?}"
    );
    let mut cols: Vec<&str> = unlabelled.lines().next().unwrap().split(',').collect();
    cols.swap(0, 1);
    let swapped = unlabelled.replacen(unlabelled.lines().next().unwrap(), &cols.join(","), 1);
    std::fs::write(env.path("swapped.csv"), swapped).unwrap();
    let out = enc_new("swapped.csv");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("columns must match"),
        "{out:?}"
    );
    let out = enc_new("new.csv");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("encrypted 8 unlabelled samples"));
    ok(&[
        "classify",
        "--s1",
        &s1.addr,
        "--model",
        &env.p("model.enc"),
        "--data",
        &env.p("new.enc"),
        "--kappa",
        "40",
        "--out",
        &env.p("new-pred.enc"),
    ]);
    ok(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("new-pred.enc"),
        "--out",
        &env.p("new-pred.csv"),
    ]);
    let new_csv = std::fs::read_to_string(env.path("new-pred.csv")).unwrap();
    assert_eq!(
        new_csv, csv,
        "new samples get the classes of the same labelled samples"
    );

    // Resume from the checkpoint for a second epoch: equals two uninterrupted epochs. Network,
    // batch, seed and profile come from the checkpoint; a conflicting option is refused.
    let a = train_args(&[
        "--resume",
        &env.p("ckpt"),
        "--epochs",
        "2",
        "--hidden",
        "4",
        "--out",
        &env.p("bad.enc"),
    ]);
    let err = fail(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        err.contains("--hidden [4] differs from the checkpoint's [3]"),
        "{err}"
    );
    let a = train_args(&[
        "--resume",
        &env.p("ckpt"),
        "--epochs",
        "2",
        "--out",
        &env.p("model2.enc"),
    ]);
    let out = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains("trained 30-3-1 (strict profile) for 2 epoch(s) on 12 samples"),
        "{out}"
    );
    decrypt_json(&env, "model2.enc", "model2.json");
    let m2 = read_json(&env.path("model2.json"));
    assert_eq!(m2.epochs_trained, 2);
    assert_eq!(raw_params(&m2), reference(&env, &train, 7, 2, 2, 3).params);

    // The servers logged the sessions, including the failed ones, and S1 never saw a secret.
    let log1 = s1.log_text();
    assert!(log1.contains("S1 (cloud server) listening"), "{log1}");
    assert!(log1.contains("training finished"), "{log1}");
    // The misbehaving clients (plain TCP, garbage) were refused in the TLS handshake.
    assert!(
        log1.contains("connection refused") && log1.contains("TLS handshake"),
        "{log1}"
    );
    assert!(s2.log_text().contains("S2 session with S1 finished"));

    // SIGTERM: clean exit with status 0; the ready files are removed.
    assert!(s1.is_running() && s2.is_running());
    let st = s1.signal("TERM");
    assert_eq!(st.code(), Some(0), "S1: {st}\n{}", s1.log_text());
    let st = s2.signal("INT");
    assert_eq!(st.code(), Some(0), "S2: {st}\n{}", s2.log_text());
    assert!(!env.path("s1.addr").exists() && !env.path("s2.addr").exists());
    assert!(s1.log_text().contains("S1 stopped"));
}

/// The pids of the servers a demo run printed.
fn demo_pids(out: &str) -> Vec<u32> {
    let line = out
        .lines()
        .find(|l| l.starts_with("S2 (pid "))
        .unwrap_or_else(|| panic!("no server line in:\n{out}"));
    line.split("(pid ")
        .skip(1)
        .map(|p| p.split(')').next().unwrap().parse().unwrap())
        .collect()
}

fn gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn demo_runs_the_whole_flow_and_stops_its_servers() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let out = ok(&[
        "demo",
        "--bits",
        "512",
        "--train-samples",
        "10",
        "--test-samples",
        "12",
        "--hidden",
        "3",
        "--profile",
        "strict",
        "--kappa",
        "40",
        "--quiet",
        "--workdir",
        &s(&work),
    ]);
    for want in [
        "training on 10 of the 456 training samples",
        "testing on 12 of the 113 test samples",
        "network 30-3-1, 1 epoch(s)",
        "plaintext f64 network",
        "fixed-point reference (floor rounding)",
        "encrypted (S1 + S2, strict profile)",
        "agree with the fixed-point reference on 12/12 (100.0 %)",
        "largest weight difference, encrypted vs fixed-point reference: 0\n",
        "encrypted training (10 samples × 1 epoch(s))",
        "encrypted classification (12 samples)",
        "total",
    ] {
        assert!(out.contains(want), "`{want}` missing:\n{out}");
    }
    for f in [
        "train.csv",
        "test.csv",
        "train.enc",
        "test.enc",
        "model.enc",
        "pred.enc",
        "pred.csv",
        "model.json",
        "s1.log",
        "s2.log",
    ] {
        assert!(work.join(f).exists(), "{f} missing");
    }
    for pid in demo_pids(&out) {
        assert!(gone(pid), "server {pid} still running");
    }

    // A failure after the servers started (κ below the minimum) still stops them.
    let out = run(&[
        "demo",
        "--bits",
        "512",
        "--train-samples",
        "4",
        "--test-samples",
        "4",
        "--kappa",
        "20",
        "--quiet",
        "--workdir",
        &s(&work),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: S1:") && stderr.contains("kappa = 20 is below the minimum"),
        "{stderr}"
    );
    assert!(stderr.contains("--- S1 log"), "{stderr}");
    for pid in demo_pids(&String::from_utf8_lossy(&out.stdout)) {
        assert!(gone(pid), "server {pid} still running after a failed demo");
    }
}

/// `smlp train` of the stored data set `ds` at `s1`, detached: the network 30→3→1 of
/// [`reference`]'s runs, `epochs` epochs of per-sample steps, order seed 3, initial weights from
/// seed 7, strict; returns the job id.
fn train_detached(s1: &str, ds: &str, epochs: &str) -> String {
    ok(&[
        "train",
        "--s1",
        s1,
        "--dataset",
        ds,
        "--hidden",
        "3",
        "--epochs",
        epochs,
        "--batch",
        "1",
        "--seed",
        "3",
        "--init-seed",
        "7",
        "--profile",
        "strict",
        "--kappa",
        "40",
        "--detach",
    ])
    .trim()
    .to_string()
}

/// `smlp jobs` until `pred` holds for its output (at most 120 s).
fn jobs_until(s1: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = std::time::Instant::now();
    loop {
        let out = run(&["jobs", "--s1", s1]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && pred(&text) {
            return text;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "gave up waiting; last `smlp jobs`:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The outsourced flow survives everything but the owner's cancel: upload once, train detached,
/// S1 crashes inside a checkpoint transaction (written, not committed), S1 is killed with
/// SIGKILL mid-epoch, S2 is killed and restarted on the same address mid-job; after each, the job
/// resumes from its last committed checkpoint, and the model fetched at the end equals the
/// uninterrupted fixed-point run bit for bit (strict profile, same initial weights and order).
#[test]
fn detached_training_survives_s1_crashes_and_s2_restarts_bit_for_bit() {
    let env = Env::new();
    let (train_full, _) = stratified_split(&Dataset::wdbc(), 0.2, 5).unwrap();
    let train = stratified_split(&train_full, 16.0 / train_full.len() as f64, 2)
        .unwrap()
        .1;
    assert_eq!(train.len(), 16);
    write_csv(&env.path("train.csv"), &train, "malignant");
    encrypt(&env, &env.public(), "train.csv", "train.enc");

    let s2 = env.s2(&[]);
    let s2_addr = s2.addr.clone();
    let s1_args = |extra: &[&'static str]| {
        let mut v = vec![
            "serve-s1".to_string(),
            "--s2".into(),
            s2_addr.clone(),
            "--checkpoint-every".into(),
            "2".into(),
            "--s2-connect-retry-secs".into(),
            "0.2".into(),
        ];
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let start_s1 = |envs: &[(&str, &str)]| {
        let a = s1_args(&[]);
        Server::start_env(
            env.dir.path(),
            "s1",
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            envs,
        )
    };
    // The third checkpoint transaction (initial weights, after 2 samples, after 4) aborts S1
    // before its commit.
    let mut s1 = start_s1(&[("SMLP_TEST_CRASH_AT_CHECKPOINT", "3")]);
    env.register(&s1, "owner");
    let ds = ok(&["upload", "--s1", &s1.addr, "--data", &env.p("train.enc")])
        .trim()
        .to_string();
    assert!(ds.starts_with("ds-"), "{ds}");
    // The same file again: the same stored data set.
    let again = ok(&["upload", "--s1", &s1.addr, "--data", &env.p("train.enc")]);
    assert_eq!(again.trim(), ds);
    let job = train_detached(&s1.addr, &ds, "3");
    assert!(job.starts_with("job-"), "{job}");
    let st = s1.wait_exit(60);
    assert!(!st.success(), "S1 aborted: {st}");
    assert!(s1.log_text().contains("injected crash before the commit"));

    // Restarted: the job resumes from the last committed checkpoint (after 2 samples).
    let mut s1 = start_s1(&[]);
    let addr = s1.addr.clone();
    jobs_until(&addr, |t| t.contains("epoch 2/3"));
    let log = s1.log_text();
    assert!(
        log.contains("resuming jobs left running by the previous S1")
            && log.contains("epoch=0 position=2"),
        "{log}"
    );
    // SIGKILL mid-epoch, restart, and the job resumes again.
    assert!(!s1.signal("KILL").success());
    let mut s1 = start_s1(&[]);
    let addr = s1.addr.clone();
    jobs_until(&addr, |t| t.contains("epoch 3/3"));
    // S2 killed mid-job and restarted on the same address: S1 reconnects and resumes.
    drop(s2);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = run(&["jobs", "--s1", &addr]);
    assert!(out.status.success());
    let mut s2 = Server::start(
        env.dir.path(),
        "s2b",
        &[
            "serve-s2",
            "--state-dir",
            &env.s2_state(),
            "--listen",
            &s2_addr,
        ],
    );
    let out = run(&["wait", "--s1", &addr, "--quiet", &job]);
    assert!(out.status.success(), "{out:?}\n{}", s1.log_text());
    assert!(
        s1.log_text()
            .contains("S2 link failed; retrying from the last checkpoint"),
        "{}",
        s1.log_text()
    );
    ok(&["fetch", "--s1", &addr, &job, "--out", &env.p("model.enc")]);
    decrypt_json(&env, "model.enc", "model.json");
    let m = read_json(&env.path("model.json"));
    assert_eq!(m.epochs_trained, 3);
    assert_eq!(
        raw_params(&m),
        reference(&env, &train, 7, 3, 1, 3).params,
        "the interrupted run differs from the uninterrupted reference"
    );
    // The model is listed with the job's name; the audit log saw it all.
    let models = ok(&["list", "--s1", &addr, "models"]);
    assert!(models.contains(&format!("model of {job}")), "{models}");
    let db = rusqlite::Connection::open(env.path("s1-state/s1.sqlite")).unwrap();
    let actions: Vec<String> = db
        .prepare("SELECT action FROM audit WHERE object = ?1 ORDER BY seq")
        .unwrap()
        .query_map([&job], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        actions.first().map(String::as_str),
        Some("submit"),
        "{actions:?}"
    );
    assert!(
        actions.iter().filter(|a| *a == "run").count() >= 3,
        "{actions:?}"
    );
    assert!(actions.contains(&"finish".to_string()), "{actions:?}");
    assert_eq!(s1.signal("TERM").code(), Some(0));
    assert_eq!(s2.signal("TERM").code(), Some(0));
}

/// Two owners share S1: neither can see, fetch, use, cancel or delete the other's objects and
/// jobs (another owner's id reads exactly like an unknown one); each has a storage quota.
#[test]
fn owners_are_isolated_and_quotas_hold() {
    let env = Env::new();
    let data = small_encrypted(&env);
    encrypt(&env, &env.public(), "d.csv", "d2.enc");
    let s2 = env.s2(&[]);
    let s1 = env.s1(&s2.addr, &["--quota-mib", "0.04"]);
    let ds = ok(&["upload", "--s1", &s1.addr, "--data", &data])
        .trim()
        .to_string();
    // A second, different encryption of the same rows exceeds the 40 KiB quota.
    let err = fail(&["upload", "--s1", &s1.addr, "--data", &env.p("d2.enc")]);
    assert!(err.contains("storage quota exceeded"), "{err}");
    let listed = ok(&["list", "--s1", &s1.addr, "datasets"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let job = ok(&[
        "train",
        "--s1",
        &s1.addr,
        "--dataset",
        &ds,
        "--hidden",
        "2",
        "--epochs",
        "50",
        "--kappa",
        "40",
        "--detach",
    ])
    .trim()
    .to_string();
    // Alice: her own quota, nothing of the owner's.
    let alice = |args: &[&str]| as_owner(&s1.addr, "alice", args);
    let as_alice = |args: &[&str]| {
        let v = alice(args);
        fail(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let unknown = ["ds-000000000000", "job-000000000000"];
    for (theirs, unknown) in [(&ds, unknown[0]), (&job, unknown[1])] {
        for cmd in [
            vec!["fetch", theirs.as_str(), "--out", "/nonexistent/x"],
            vec!["delete", theirs.as_str()],
        ] {
            let err = as_alice(&cmd);
            let mut cmd_unknown = cmd.clone();
            cmd_unknown[1] = unknown;
            let err_unknown = as_alice(&cmd_unknown);
            assert_eq!(err.replace(theirs.as_str(), unknown), err_unknown);
            assert!(err.contains("not found"), "{err}");
        }
    }
    assert!(as_alice(&["cancel", &job]).contains("not found"));
    assert!(as_alice(&["wait", &job]).contains("not found"));
    let err = as_alice(&["train", "--dataset", &ds, "--hidden", "2", "--detach"]);
    assert!(err.contains("not found"), "{err}");
    let v = alice(&["list", "datasets"]);
    assert!(ok(&v.iter().map(String::as_str).collect::<Vec<_>>()).contains("no data set"));
    let v = alice(&["jobs"]);
    assert!(ok(&v.iter().map(String::as_str).collect::<Vec<_>>()).contains("no jobs"));
    // Each owner works under its own key: the owner's data set is refused from alice, and so
    // is the owner's key; her own key, registered, serves her within her own quota.
    let err = as_alice(&["upload", "--data", &env.p("d2.enc")]);
    assert!(err.contains("has not registered"), "{err}");
    let err = as_alice(&["register", "--public-key", &env.public()]);
    assert!(err.contains("registered to another owner"), "{err}");
    env.keygen("alice-keys");
    let alice_public = env.p("alice-keys/public.key");
    encrypt(&env, &alice_public, "d.csv", "alice.enc");
    let v = alice(&["register", "--public-key", &alice_public]);
    ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let v = alice(&["upload", "--data", &env.p("alice.enc")]);
    ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    // The owner's job and data set are untouched; a data set in use cannot be deleted.
    let err = fail(&["delete", "--s1", &s1.addr, &ds]);
    assert!(err.contains("in use by job"), "{err}");
    ok(&["cancel", "--s1", &s1.addr, &job]);
    ok(&["delete", "--s1", &s1.addr, &ds]);
    assert!(ok(&["list", "--s1", &s1.addr, "datasets"]).contains("no data set"));
}

/// A model shared with another owner serves it under that owner's own key: S1 switches the
/// samples to the model's key through S2, classifies, and switches the results back. The
/// predictions equal, bit for bit, the model owner's own classification of the same samples
/// (strict profile), the model never leaves its key, and the share can be ended.
#[test]
fn a_shared_model_classifies_another_owners_samples_under_that_owners_key() {
    let env = Env::new();
    let data = small_encrypted(&env);
    env.keygen("alice-keys");
    let s2 = env.s2(&["--pool-capacity", "0"]);
    ok(&[
        "s2-keys",
        "--state-dir",
        &env.s2_state(),
        "add",
        "--plain",
        "--insecure-test-key",
        &env.p("alice-keys/secret.key"),
    ]);
    let s1 = env.s1(&s2.addr, &[]);
    let alice = |args: &[&str]| as_owner(&s1.addr, "alice", args);
    ok(&argv(&alice(&[
        "register",
        "--public-key",
        &env.p("alice-keys/public.key"),
    ])));
    // The owner trains a model and shares it with alice.
    ok(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &data,
        "--hidden",
        "2",
        "--kappa",
        "40",
        "--profile",
        "strict",
        "--init-seed",
        "3",
        "--out",
        &env.p("m.enc"),
    ]);
    let models = ok(&["list", "--s1", &s1.addr, "models"]);
    let model = models
        .split_whitespace()
        .find(|w| w.starts_with("md-"))
        .unwrap()
        .to_string();
    // Before the share, alice cannot name it.
    wdbc_csv(&env, "q.csv", 5, 9);
    let scaler = env.p("d.enc.scaler.json");
    for (key, out) in [
        (env.public(), "q-owner.enc"),
        (env.p("alice-keys/public.key"), "q-alice.enc"),
    ] {
        ok(&[
            "encrypt",
            "--public-key",
            &key,
            "--csv",
            &env.p("q.csv"),
            "--scaler",
            &scaler,
            "--out",
            &env.p(out),
        ]);
    }
    let classify_as_alice = || {
        alice(&[
            "classify",
            "--model",
            &model,
            "--data",
            &env.p("q-alice.enc"),
            "--kappa",
            "40",
            "--out",
            &env.p("p-alice.enc"),
        ])
    };
    let err = fail(&argv(&classify_as_alice()));
    assert!(err.contains("not found"), "{err}");
    let out = ok(&["share", "--s1", &s1.addr, &model, "--with", "alice"]);
    assert!(out.contains("alice may now classify"), "{out}");
    let listed = ok(&argv(&alice(&["list", "models"])));
    assert!(
        listed.contains(&model) && listed.contains("shared by owner"),
        "{listed}"
    );
    ok(&argv(&classify_as_alice()));
    assert!(
        s1.log_text().contains("classified with a shared model"),
        "{}",
        s1.log_text()
    );
    // The owner's own classification of the same samples under its key.
    ok(&[
        "classify",
        "--s1",
        &s1.addr,
        "--model",
        &env.p("m.enc"),
        "--data",
        &env.p("q-owner.enc"),
        "--kappa",
        "40",
        "--out",
        &env.p("p-owner.enc"),
    ]);
    let decrypt = |secret: &str, input: &str, out: &str| {
        ok(&[
            "decrypt",
            "--secret-key",
            secret,
            "--in",
            &env.p(input),
            "--out",
            &env.p(out),
            "--scores",
        ]);
        std::fs::read_to_string(env.path(out)).unwrap()
    };
    let theirs = decrypt(
        &env.p("alice-keys/secret.key"),
        "p-alice.enc",
        "p-alice.csv",
    );
    let mine = decrypt(&env.secret(), "p-owner.enc", "p-owner.csv");
    assert_eq!(theirs, mine, "alice's predictions differ from the owner's");
    assert_eq!(theirs.lines().count(), 6, "{theirs}");
    // The predictions are alice's: the owner's key does not open them.
    let err = fail(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("p-alice.enc"),
        "--out",
        &env.p("x.csv"),
    ]);
    assert!(err.contains("encrypted under key"), "{err}");
    // The model is not alice's to fetch, and after unshare not hers to use.
    let err = fail(&argv(&alice(&[
        "fetch",
        &model,
        "--out",
        &env.p("stolen.enc"),
    ])));
    assert!(err.contains("not found"), "{err}");
    ok(&["unshare", "--s1", &s1.addr, &model, "--with", "alice"]);
    let err = fail(&argv(&classify_as_alice()));
    assert!(err.contains("not found"), "{err}");
}

/// `smlp tune` chooses settings in the clear and `smlp train --settings` takes them as its
/// defaults (an explicit flag still wins).
#[test]
fn tune_writes_settings_that_train_takes_as_defaults() {
    let env = Env::new();
    wdbc_csv(&env, "d.csv", 60, 3);
    let out = ok(&[
        "tune",
        "--csv",
        &env.p("d.csv"),
        "--seconds",
        "30",
        "--hidden",
        "3",
        "--out",
        &env.p("settings.json"),
    ]);
    assert!(
        out.contains("| smooth-hinge |") && out.contains("chose"),
        "{out}"
    );
    let tuned: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("settings.json")).unwrap()).unwrap();
    assert_eq!(tuned["setting"]["hidden"], serde_json::json!([3]));
    assert!(tuned["mean"].as_f64().unwrap() >= 0.8, "{tuned}");
    assert_eq!(tuned["samples"], 60);
    // A settings file of our own, to see each field used.
    std::fs::write(
        env.path("mine.json"),
        r#"{"source":"test","setting":{"hidden":[5],"batch":4,"lr_num":1,"lr_shift":5,"epochs":1,"loss":"Squared"},"mean":0.9,"worst":0.9,"folds":3,"samples":6}"#,
    )
    .unwrap();
    let data = small_encrypted(&env);
    let s2 = env.s2(&[]);
    let s1 = env.s1(&s2.addr, &[]);
    let trained = ok(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &data,
        "--kappa",
        "40",
        "--settings",
        &env.p("mine.json"),
        "--out",
        &env.p("m.enc"),
    ]);
    assert!(
        trained.contains("30-5-1") && trained.contains("for 1 epoch(s)"),
        "{trained}"
    );
    let trained = ok(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &data,
        "--kappa",
        "40",
        "--settings",
        &env.p("mine.json"),
        "--hidden",
        "2",
        "--out",
        &env.p("m2.enc"),
    ]);
    assert!(trained.contains("30-2-1"), "{trained}");
    let err = fail(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &data,
        "--settings",
        &data,
        "--out",
        &env.p("x"),
    ]);
    assert!(err.contains("not a settings file of smlp tune"), "{err}");
}

/// `smlp encrypt` records settings in a training set: by default the defaults with the learning
/// rate that cross-validation of the fixed-point twin prefers (checked here against the
/// library's cross-validation of each candidate on the same CSV), none with --no-tune or in a
/// file scaled with another file's standardiser, the grid's best with --tune. `smlp train`
/// trains with them when no flag says otherwise, and says where each setting came from.
#[test]
fn encrypt_records_settings_that_train_takes_as_defaults() {
    use smlp::tune::{auto_repeats, repeated_cross_validate, Setting, AUTO_FOLDS, AUTO_LR_SHIFTS};
    let env = Env::new();
    wdbc_csv(&env, "d.csv", 40, 5);
    let enc = |extra: &[&str], out: &str| {
        let key = env.public();
        let mut a = vec!["encrypt", "--public-key", &key];
        let csv = env.p("d.csv");
        let out = env.p(out);
        a.extend(["--csv", &csv, "--out", &out]);
        a.extend(extra);
        ok(&a)
    };
    let printed = enc(&[], "d.enc");
    assert!(
        printed.contains("training settings recorded in it"),
        "{printed}"
    );
    let recorded = smlp::encrypted::read_dataset(&env.path("d.enc"))
        .unwrap()
        .settings
        .unwrap();
    // The candidates, cross-validated here: the recorded one has the best mean.
    let data = Dataset::load_csv(&env.path("d.csv"), Some("malignant")).unwrap();
    let scores: Vec<(u32, f64)> = AUTO_LR_SHIFTS
        .iter()
        .map(|&lr_shift| {
            let s = Setting {
                lr_shift,
                ..smlp::defaults::setting(None)
            };
            let repeats = auto_repeats(data.len());
            let scored = repeated_cross_validate(&data, &s, AUTO_FOLDS, 1, repeats).unwrap();
            (lr_shift, scored.mean)
        })
        .collect();
    let top = scores.iter().map(|s| s.1).fold(f64::MIN, f64::max);
    let chosen = scores
        .iter()
        .find(|s| s.0 == recorded.setting.lr_shift)
        .unwrap();
    assert_eq!(chosen.1, top, "{scores:?} {recorded:?}");
    assert_eq!(recorded.mean, top);
    assert_eq!(
        Setting {
            lr_shift: smlp::defaults::LEARNING_RATE.shift,
            ..recorded.setting.clone()
        },
        smlp::defaults::setting(None),
        "only η adapts"
    );
    assert_eq!(recorded.samples, 40);

    enc(&["--no-tune"], "plain.enc");
    assert!(smlp::encrypted::read_dataset(&env.path("plain.enc"))
        .unwrap()
        .settings
        .is_none());
    enc(&["--scaler", &env.p("d.enc.scaler.json")], "test.enc");
    assert!(smlp::encrypted::read_dataset(&env.path("test.enc"))
        .unwrap()
        .settings
        .is_none());
    let printed = enc(
        &["--tune", "--tune-seconds", "5", "--hidden", "3"],
        "grid.enc",
    );
    assert!(printed.contains("smlp encrypt --tune"), "{printed}");
    let grid = smlp::encrypted::read_dataset(&env.path("grid.enc"))
        .unwrap()
        .settings
        .unwrap();
    assert_eq!(grid.setting.hidden, vec![3]);

    // Train: the recorded η and loss; hidden and epochs from flags (a small, quick run).
    let s2 = env.s2(&[]);
    let s1 = env.s1(&s2.addr, &[]);
    let out = run(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &env.p("d.enc"),
        "--hidden",
        "2",
        "--epochs",
        "1",
        "--kappa",
        "40",
        "--out",
        &env.p("m.enc"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("η 1/2^{}", recorded.setting.lr_shift))
            && stderr.contains("hidden, epochs from the request")
            && stderr.contains("batch, loss, η from the data set (auto:"),
        "{stderr}"
    );
    let file = smlp::encrypted::ModelFile::read(&env.path("m.enc")).unwrap();
    assert_eq!(file.model.fixed.lr.shift, recorded.setting.lr_shift);
    // The model file says how it was trained and where each setting came from.
    let record = file.trained.as_ref().expect("a training record");
    assert_eq!(
        (
            record.config.batch,
            record.config.loss,
            record.config.epochs
        ),
        (recorded.setting.batch, recorded.setting.loss, 1)
    );
    let line = file.describe().unwrap();
    assert!(
        line.contains("hidden, epochs from the request")
            && line.contains("batch, loss, η from the data set (auto:"),
        "{line}"
    );
    // So do the job record and `smlp decrypt`.
    let jobs = ok(&["jobs", "--long", "--s1", &s1.addr]);
    assert!(jobs.contains(&format!("settings: {line}")), "{jobs}");
    let out = ok(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("m.enc"),
        "--out",
        &env.p("m.json"),
    ]);
    assert!(out.contains(&format!("trained with {line}")), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("m.json")).unwrap()).unwrap();
    assert_eq!(json["settings"], line.as_str());
    assert_eq!(json["config"]["batch"], recorded.setting.batch);
}

/// S2 replicas: two `serve-s2` processes on one state directory (the same tenant keys, one
/// refusal book under its lock), S1 given both (`--s2 A,B`). Sessions are spread round robin (two
/// jobs, two replicas); the replica serving a running job is killed, and the job goes on with
/// the other from its last checkpoint: the model equals the uninterrupted fixed-point run bit
/// for bit (strict profile, same initial weights and order).
#[test]
fn s2_replicas_share_the_jobs_and_a_dead_one_costs_nothing() {
    let env = Env::new();
    let (train_full, _) = stratified_split(&Dataset::wdbc(), 0.2, 5).unwrap();
    let train = stratified_split(&train_full, 16.0 / train_full.len() as f64, 2)
        .unwrap()
        .1;
    write_csv(&env.path("train.csv"), &train, "malignant");
    encrypt(&env, &env.public(), "train.csv", "train.enc");

    let state = env.s2_state();
    env.give_key_to_s2(&state);
    let mut replicas = vec![
        Server::start(env.dir.path(), "s2a", &["serve-s2", "--state-dir", &state]),
        Server::start(env.dir.path(), "s2b", &["serve-s2", "--state-dir", &state]),
    ];
    let both = format!("{},{}", replicas[0].addr, replicas[1].addr);
    let s1 = Server::start(
        env.dir.path(),
        "s1",
        &[
            "serve-s1",
            "--s2",
            &both,
            "--checkpoint-every",
            "2",
            "--s2-connect-retry-secs",
            "0.2",
        ],
    );
    env.register(&s1, "owner");
    let ds = ok(&["upload", "--s1", &s1.addr, "--data", &env.p("train.enc")])
        .trim()
        .to_string();
    let train_job = |epochs: &str| train_detached(&s1.addr, &ds, epochs);
    // A first, short job, then the long one: each on its own replica.
    let first = train_job("1");
    let out = run(&["wait", "--s1", &s1.addr, "--quiet", &first]);
    assert!(out.status.success(), "{out:?}");
    let job = train_job("3");
    jobs_until(&s1.addr, |t| t.contains("epoch 2/3"));
    let opened = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("S2 session opened"))
            .filter_map(|l| l.split("s2=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let sessions = opened(&s1.log_text());
    assert_eq!(sessions.len(), 2, "{}", s1.log_text());
    assert_ne!(sessions[0], sessions[1], "round robin: {sessions:?}");
    // Kill the replica serving the running job.
    let serving = replicas
        .iter()
        .position(|r| r.addr == sessions[1])
        .expect("the session's replica is one of ours");
    let mut dead = replicas.remove(serving);
    assert!(!dead.signal("KILL").success());
    let out = run(&["wait", "--s1", &s1.addr, "--quiet", &job]);
    assert!(out.status.success(), "{out:?}\n{}", s1.log_text());
    let log = s1.log_text();
    let sessions = opened(&log);
    assert!(
        sessions.len() >= 3 && sessions[2..].iter().all(|a| *a == replicas[0].addr),
        "the job went on with the live replica: {sessions:?}\n{log}"
    );
    assert!(
        log.contains("S2 link failed; retrying from the last checkpoint"),
        "{log}"
    );
    ok(&[
        "fetch",
        "--s1",
        &s1.addr,
        &job,
        "--out",
        &env.p("model.enc"),
    ]);
    decrypt_json(&env, "model.enc", "model.json");
    let m = read_json(&env.path("model.json"));
    assert_eq!(m.epochs_trained, 3);
    assert_eq!(
        raw_params(&m),
        reference(&env, &train, 7, 3, 1, 3).params,
        "the run that lost its replica differs from the uninterrupted reference"
    );
}
