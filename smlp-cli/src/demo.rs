//! `smlp demo`: the whole flow on the embedded wdbc data set, with S1 and S2 as child processes.

use crate::client::S1Args;
use crate::decrypt::{self, DecryptArgs, Decrypted, ModelJson};
use crate::encrypt::{self, scaler_path_for, EncryptArgs, EncryptSummary};
use crate::error::{CliError, CliResult, Context};
use crate::keys::{self, KeygenArgs, SECRET_FILE};
use crate::owner::{self, ClassifyArgs, JobSummary, LossArg, ProfileArg, TrainArgs};
use crate::util::{bytes, secs};
use crate::{seal, tenants};
use clap::Args;
use paillier::format::write_atomic;
use paillier::FixedPoint;
use rand::SeedableRng;
use smlp::data::{
    stratified_split, stratified_subset, Dataset, EncodedDataset, Standardizer, DEFAULT_INT_BITS,
};
use smlp::{
    accuracy, init_fixed, train_fixed, train_float, FixedMlp, FixedParams, FloatMlp, LearningRate,
    Loss, Rounding, Shape, TrainOptions,
};
use smlp_client::bail;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the whole flow on the embedded wdbc (breast cancer) data set and compares the encrypted
/// model with plaintext references.
///
/// Steps: split wdbc 80/20 (stratified) and write the chosen subsets as CSV files; keygen;
/// encrypt both files (standardiser fitted on the training file); start serve-s2 and serve-s1 as
/// child processes of this executable on free loopback ports; train (initial weights drawn by the
/// owner from --seed, so the references start from the same weights); classify; decrypt; stop the
/// servers. Then it trains an f64 network and the fixed-point reference on the same data in the
/// clear and prints their accuracies next to the encrypted model's, the agreement of the
/// encrypted predictions with the fixed-point reference, and the time of every phase.
///
/// The defaults (a 30-8-1 network, one epoch of the smoothed hinge loss over the whole training
/// split of 456 samples in mini-batches of 16 with η = 1/2^4, all 113 test samples, 2048-bit key)
/// take about two minutes on two cores and reach about 95 % test accuracy (`cargo xtask tune`
/// shows the plaintext twin of the encrypted run over settings and seeds in seconds: 95.4 % mean
/// over 16 splits after this one epoch, 95.8 % after two).
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Key size in bits (below 2048 implies an insecure test key).
    #[arg(long, default_value_t = 2048)]
    pub bits: u32,
    /// Training samples: a stratified subset of the 456-sample training split (all by default).
    #[arg(long, default_value_t = 456)]
    pub train_samples: usize,
    /// Test samples: a stratified subset of the 113-sample test split (all by default).
    #[arg(long, default_value_t = 113)]
    pub test_samples: usize,
    /// Epochs.
    #[arg(long, default_value_t = 1)]
    pub epochs: u64,
    /// Hidden layer sizes, e.g. 8 or 16,8.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub hidden: Vec<usize>,
    /// Learning rate η = lr-num / 2^lr-shift.
    #[arg(long, default_value_t = smlp::defaults::LEARNING_RATE.shift)]
    pub lr_shift: u32,
    /// Learning-rate numerator.
    #[arg(long, default_value_t = smlp::defaults::LEARNING_RATE.num)]
    pub lr_num: u32,
    /// Mini-batch size.
    #[arg(long, default_value_t = smlp::defaults::BATCH)]
    pub batch: usize,
    /// The loss whose gradient training follows.
    #[arg(long, value_enum, default_value = "smooth-hinge")]
    pub loss: LossArg,
    /// Protocol profile (strict: S2 learns nothing beyond κ, and the encrypted run equals the
    /// fixed-point reference bit for bit; fast: S2 learns bit-lengths, a warning says so).
    #[arg(long, value_enum, default_value = "strict")]
    pub profile: ProfileArg,
    /// Seed of the split, the subsets, the sample order and the initial weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Statistical security parameter κ.
    #[arg(long, default_value_t = 80)]
    pub kappa: u32,
    /// Keep all files (keys, CSVs, ciphertexts, logs) in this directory instead of a temporary
    /// one.
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Do not show progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The server child processes; killed and reaped on drop (also on every error path).
#[derive(Default)]
struct Servers {
    children: Vec<(&'static str, Child, PathBuf)>,
}

impl Servers {
    fn spawn(&mut self, name: &'static str, args: &[&str], log: &Path) -> CliResult<()> {
        let command = crate::self_command()?;
        let out = File::create(log).with_context(|| log.display().to_string())?;
        let err = out.try_clone()?;
        let child = Command::new(&command[0])
            .args(&command[1..])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        self.children.push((name, child, log.to_path_buf()));
        Ok(())
    }

    /// Waits until `ready` holds an address; fails if the child exits first.
    fn wait_ready(&mut self, ready: &Path, timeout: Duration) -> CliResult<SocketAddr> {
        let start = Instant::now();
        let (name, child, log) = self.children.last_mut().expect("a spawned server");
        loop {
            if let Ok(text) = std::fs::read_to_string(ready) {
                if let Ok(addr) = text.trim().parse() {
                    return Ok(addr);
                }
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{name} exited ({status}) before listening; its log:\n{}",
                    tail(log)
                );
            }
            if start.elapsed() > timeout {
                bail!(
                    "{name} did not start listening within {}; its log:\n{}",
                    secs(timeout),
                    tail(log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for (name, _, log) in &self.children {
            let _ = writeln!(s, "--- {name} log ({}):\n{}", log.display(), tail(log));
        }
        s
    }

    fn stop(&mut self) {
        for (_, child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last lines of a log file.
fn tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A stratified subset of `n` samples of `d` (all of it if `n` ≥ its size).
fn subset(d: &Dataset, n: usize, seed: u64) -> CliResult<Dataset> {
    if n == 0 {
        bail!("a subset needs at least one sample");
    }
    Ok(d.subset(&stratified_subset(d, n, seed)))
}

/// Writes `d` as CSV with the label column `label` last (no label column with `None`: new samples).
fn write_csv(path: &Path, d: &Dataset, label: Option<&str>) -> CliResult<()> {
    let mut s = d.feature_names.join(",");
    match label {
        Some(l) => {
            let _ = writeln!(s, ",{l}");
        }
        None => s.push('\n'),
    }
    for (x, y) in d.features.iter().zip(&d.labels) {
        let row: Vec<String> = x.iter().map(f64::to_string).collect();
        s += &row.join(",");
        match label {
            Some(_) => {
                let _ = writeln!(s, ",{y}");
            }
            None => s.push('\n'),
        }
    }
    write_atomic(path, s.as_bytes(), true)?;
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

/// Runs `smlp demo`.
pub fn demo(a: &DemoArgs) -> CliResult<()> {
    let total = Instant::now();
    let _tmp;
    let dir = match &a.workdir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| d.display().to_string())?;
            d.clone()
        }
        None => {
            let t = tempfile::Builder::new().prefix("smlp-demo-").tempdir()?;
            let p = t.path().to_path_buf();
            _tmp = t;
            p
        }
    };
    let data = prepare_data(a, &dir)?;
    let shape = Shape::mlp(data.train.num_features(), &a.hidden, data.train.outputs())?;
    let fixed = FixedParams::new(16, LearningRate::new(a.lr_num, a.lr_shift)?, 72)?;
    print_plan(a, &data, &shape, &dir);
    let owner = keys_and_encryption(a, &dir, &fixed)?;
    let mut servers = Servers::default();
    let (conn, t_servers) = start_servers(a, &dir, &owner, &mut servers)?;
    let jobs = run_jobs(a, &dir, conn, &fixed, &servers)?;
    servers.stop();
    let (results, t_decrypt) = decrypt_results(&dir, &owner.secret)?;
    let refs = references(a, &shape, &fixed, &owner.scaler_file, &data)?;
    report(a, &fixed, &data, &results, &refs);
    let times = [
        (
            format!("key generation ({} bits)", a.bits),
            owner.t_keygen,
            None,
        ),
        (
            format!("encrypt training set ({} samples)", owner.train.samples),
            owner.train.elapsed,
            Some(owner.train.elapsed.as_secs_f64() / owner.train.samples as f64),
        ),
        (
            format!("encrypt test set ({} samples)", owner.test.samples),
            owner.test.elapsed,
            Some(owner.test.elapsed.as_secs_f64() / owner.test.samples as f64),
        ),
        ("start S2 and S1".into(), t_servers, None),
        (
            format!(
                "encrypted training ({} samples × {} epoch(s))",
                data.train.len(),
                a.epochs
            ),
            jobs.t_train,
            Some(
                jobs.trained.elapsed.as_secs_f64()
                    / (data.train.len() as u64 * a.epochs).max(1) as f64,
            ),
        ),
        (
            format!("encrypted classification ({} samples)", data.test.len()),
            jobs.t_classify,
            Some(jobs.classified.elapsed.as_secs_f64() / data.test.len().max(1) as f64),
        ),
        ("decrypt predictions and model".into(), t_decrypt, None),
        ("total".into(), total.elapsed(), None),
    ];
    report_times(&times, &jobs);
    Ok(())
}

/// A file of the demo's directory.
fn at(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn path_str(q: &Path) -> String {
    q.to_string_lossy().into_owned()
}

/// The demo's data: stratified subsets of both sides of an 80/20 split of wdbc.
struct DemoData {
    train: Dataset,
    test: Dataset,
    /// Sizes of the split's sides the subsets were drawn from.
    pools: (usize, usize),
}

/// Splits wdbc, draws the subsets and writes them as CSV files: train.csv and test.csv, and the
/// test samples without their labels as new.csv ("new" samples for the README's walk-through).
fn prepare_data(a: &DemoArgs, dir: &Path) -> CliResult<DemoData> {
    let wdbc = Dataset::wdbc();
    let (train_full, test_full) = stratified_split(&wdbc, 0.2, a.seed)?;
    let train = subset(&train_full, a.train_samples, a.seed)?;
    let test = subset(&test_full, a.test_samples, a.seed)?;
    write_csv(&at(dir, "train.csv"), &train, Some("malignant"))?;
    write_csv(&at(dir, "test.csv"), &test, Some("malignant"))?;
    write_csv(&at(dir, "new.csv"), &test, None)?;
    Ok(DemoData {
        train,
        test,
        pools: (train_full.len(), test_full.len()),
    })
}

fn print_plan(a: &DemoArgs, data: &DemoData, shape: &Shape, dir: &Path) {
    let profile: secure_ops::Profile = a.profile.into();
    if profile == secure_ops::Profile::Fast {
        crate::owner::warn_fast();
    }
    println!("smlp demo on wdbc (breast cancer: 569 samples, 30 features, 2 classes)");
    println!(
        "  training on {} of the {} training samples (stratified subset of an 80/20 split), \
         testing on {} of the {} test samples",
        data.train.len(),
        data.pools.0,
        data.test.len(),
        data.pools.1
    );
    println!(
        "  network {shape}, {} epoch(s), {} loss, batch {}, η = {}/2^{}, {profile} profile, \
         κ = {}, {}-bit key{}",
        a.epochs,
        Loss::from(a.loss),
        a.batch,
        a.lr_num,
        a.lr_shift,
        a.kappa,
        a.bits,
        if a.bits < 2048 {
            " (insecure, for tests)"
        } else {
            ""
        }
    );
    println!("  files in {}", dir.display());
    println!();
}

/// What the owner made: keys (and how long they took), the encrypted training and test sets
/// (encrypt.rs's summaries), the scaler and the deployment PKI.
struct OwnerFiles {
    secret: PathBuf,
    scaler_file: PathBuf,
    pki: PathBuf,
    t_keygen: Duration,
    train: EncryptSummary,
    test: EncryptSummary,
}

/// Keys, encryption (the owner holds the secret key: CRT encryption) and the deployment PKI (a
/// CA and the TLS certificates of S1, S2 and the owner).
fn keys_and_encryption(a: &DemoArgs, dir: &Path, fixed: &FixedParams) -> CliResult<OwnerFiles> {
    let t = Instant::now();
    keys::keygen(&KeygenArgs {
        bits: a.bits,
        out: at(dir, "keys"),
        insecure_test_key: a.bits < 2048,
        force: true,
    })?;
    let t_keygen = t.elapsed();
    let secret = at(dir, "keys").join(SECRET_FILE);
    let enc = |csv: &str, out: &str, scaler: Option<PathBuf>| {
        encrypt::encrypt(&EncryptArgs {
            public_key: None,
            secret_key: Some(secret.clone()),
            csv: at(dir, csv),
            label: Some("malignant".into()),
            no_label: false,
            scaler,
            frac_bits: fixed.frac_bits,
            int_bits: DEFAULT_INT_BITS,
            classes: None,
            out: at(dir, out),
            quiet: a.quiet,
            // The demo trains with its own (the default) settings, given explicitly.
            tune: false,
            no_tune: true,
            tune_seconds: 60.0,
            hidden: None,
        })
    };
    let train = enc("train.csv", "train.enc", None)?;
    let scaler_file = scaler_path_for(&at(dir, "train.enc"));
    let test = enc("test.csv", "test.enc", Some(scaler_file.clone()))?;
    let pki = at(dir, "pki");
    if !pki.join("ca.key").exists() {
        transport::pki::create(&pki, &transport::pki::PkiSpec::loopback(&["owner"]))?;
    }
    Ok(OwnerFiles {
        secret,
        scaler_file,
        pki,
        t_keygen,
        train,
        test,
    })
}

/// Starts S2, then S1 (with a fresh store: the demo's jobs are its own), as child processes on
/// free loopback ports; returns the owner's connection settings and the time it took. S2 serves
/// the demo's κ (a κ out of range is refused by S1 itself, with a message).
fn start_servers(
    a: &DemoArgs,
    dir: &Path,
    owner: &OwnerFiles,
    servers: &mut Servers,
) -> CliResult<(S1Args, Duration)> {
    let s2_kappa = a
        .kappa
        .clamp(secure_ops::MIN_KAPPA, secure_ops::MAX_KAPPA)
        .to_string();
    let t = Instant::now();
    // The tenant's key reaches S2 sealed: S2's operator makes an import key, the owner seals its
    // secret key to it (smlp seal-key), the operator adds the sealed file (smlp s2-keys add).
    let s2_state = at(dir, "s2-state");
    let _ = std::fs::remove_dir_all(&s2_state);
    let import = tenants::init(&s2_state)?;
    let sk = keys::load_secret(&owner.secret)?;
    let sealed = seal::seal_key(&sk, &import, "owner")?;
    let (held, _) = tenants::unseal_key(&s2_state, &sealed)?;
    tenants::add(&s2_state, &held, a.bits < 2048)?;
    let dgk_bits = a.bits.max(512).to_string();
    let profile_fast = secure_ops::Profile::from(a.profile) == secure_ops::Profile::Fast;
    let (s2_ready, s1_ready) = (at(dir, "s2.addr"), at(dir, "s1.addr"));
    let _ = std::fs::remove_file(&s2_ready);
    let _ = std::fs::remove_file(&s1_ready);
    servers.spawn(
        "S2",
        &[
            "serve-s2",
            "--profile",
            if profile_fast { "any" } else { "strict" },
            "--dgk-bits",
            &dgk_bits,
            "--pki",
            &path_str(&owner.pki.join("s2")),
            "--kappa",
            &s2_kappa,
            "--state-dir",
            &path_str(&s2_state),
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            &path_str(&s2_ready),
        ],
        &at(dir, "s2.log"),
    )?;
    let s2_addr = servers.wait_ready(&s2_ready, Duration::from_secs(60))?;
    let state = at(dir, "s1-state");
    let _ = std::fs::remove_dir_all(&state);
    servers.spawn(
        "S1",
        &[
            "serve-s1",
            "--state-dir",
            &path_str(&state),
            "--pki",
            &path_str(&owner.pki.join("s1")),
            "--s2",
            &s2_addr.to_string(),
            "--listen",
            "127.0.0.1:0",
            "--ready-file",
            &path_str(&s1_ready),
        ],
        &at(dir, "s1.log"),
    )?;
    let s1_addr = servers.wait_ready(&s1_ready, Duration::from_secs(60))?;
    println!(
        "S2 (pid {}) on {s2_addr}, S1 (pid {}) on {s1_addr}",
        servers.children[0].1.id(),
        servers.children[1].1.id()
    );
    let conn = S1Args {
        s1: s1_addr.to_string(),
        timeout_secs: 3600,
        reconnect_secs: 60,
        quiet: a.quiet,
        owner: "owner".into(),
        s1_name: None,
        tls: crate::tls::TlsArgs {
            pki: Some(owner.pki.clone()),
            ..Default::default()
        },
    };
    // The owner registers its public key at S1 (once): S1 then accepts its data under it.
    crate::client::Client::connect(&conn)?.register(sk.public_key())?;
    Ok((conn, t.elapsed()))
}

/// The two jobs and how long the owner waited for each.
struct DemoJobs {
    trained: JobSummary,
    classified: JobSummary,
    t_train: Duration,
    t_classify: Duration,
}

/// Trains (initial weights from the demo's seed, so that the references start from them too)
/// and classifies the test set, as jobs at S1 — the commands `smlp train` and `smlp classify`.
fn run_jobs(
    a: &DemoArgs,
    dir: &Path,
    conn: S1Args,
    fixed: &FixedParams,
    servers: &Servers,
) -> CliResult<DemoJobs> {
    let with_logs = |e: CliError| CliError(format!("{e}\n{}", servers.logs()));
    let t = Instant::now();
    let trained = owner::train(&TrainArgs {
        conn: conn.clone(),
        dataset: None,
        data: Some(at(dir, "train.enc")),
        hidden: Some(a.hidden.clone()),
        epochs: Some(a.epochs),
        batch: Some(a.batch),
        seed: Some(a.seed),
        lr_shift: Some(a.lr_shift),
        lr_num: Some(a.lr_num),
        loss: Some(a.loss),
        value_bits: Some(fixed.value_bits),
        profile: Some(a.profile),
        init_seed: Some(a.seed),
        kappa: a.kappa,
        resume: None,
        settings: None,
        detach: false,
        out: Some(at(dir, "model.enc")),
    })
    .map_err(with_logs)?
    .ok_or_else(|| CliError("the training job gave no summary".into()))?;
    let t_train = t.elapsed();
    let t = Instant::now();
    let classified = owner::classify(&ClassifyArgs {
        conn,
        model: path_str(&at(dir, "model.enc")),
        data: path_str(&at(dir, "test.enc")),
        chunk: smlp::encrypted::CLASSIFY_CHUNK,
        profile: None,
        kappa: a.kappa,
        detach: false,
        out: Some(at(dir, "pred.enc")),
    })
    .map_err(with_logs)?
    .ok_or_else(|| CliError("the classification job gave no summary".into()))?;
    Ok(DemoJobs {
        trained,
        classified,
        t_train,
        t_classify: t.elapsed(),
    })
}

/// The decrypted predictions and model (`smlp decrypt`).
struct Results {
    predicted: Vec<usize>,
    model: Box<ModelJson>,
}

fn decrypt_results(dir: &Path, secret: &Path) -> CliResult<(Results, Duration)> {
    // Killed servers cannot remove their ready files.
    let _ = std::fs::remove_file(at(dir, "s2.addr"));
    let _ = std::fs::remove_file(at(dir, "s1.addr"));
    let t = Instant::now();
    let decrypt = |input: &str, out: &str, scores: bool| {
        decrypt::decrypt(&DecryptArgs {
            secret_key: secret.to_path_buf(),
            input: at(dir, input),
            out: at(dir, out),
            scores,
        })
    };
    let predicted = match decrypt("pred.enc", "pred.csv", true)? {
        Decrypted::Predictions(c) => c,
        _ => bail!("pred.enc does not hold predictions"),
    };
    let model = match decrypt("model.enc", "model.json", false)? {
        Decrypted::Model(m) => m,
        _ => bail!("model.enc does not hold a model"),
    };
    Ok((Results { predicted, model }, t.elapsed()))
}

/// The plaintext references, trained from the same initial weights, data, scaler and sample
/// order: the fixed-point network (floor rounding) and the f64 network.
struct References {
    acc_float: f64,
    acc_fixed: f64,
    /// The fixed-point reference's classes of the test samples.
    predicted: Vec<usize>,
    fixed: FixedMlp,
}

fn references(
    a: &DemoArgs,
    shape: &Shape,
    fixed: &FixedParams,
    scaler_file: &Path,
    data: &DemoData,
) -> CliResult<References> {
    let scaler = Standardizer::load(scaler_file)?;
    let train_std = scaler.apply(&data.train)?;
    let test_std = scaler.apply(&data.test)?;
    let fp = FixedPoint::new(fixed.frac_bits, DEFAULT_INT_BITS)?;
    let train_fx = EncodedDataset::encode(&train_std, &fp)?;
    let test_fx = EncodedDataset::encode(&test_std, &fp)?;
    let init = init_fixed(
        shape,
        fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(a.seed),
    );
    let opts = TrainOptions {
        epochs: a.epochs,
        batch: a.batch,
        seed: a.seed,
        loss: a.loss.into(),
        start_epoch: 0,
        rounding: Rounding::Floor,
    };
    let mut fixed_ref = FixedMlp::from_params(init, *fixed)?;
    let mut float_ref = FloatMlp::from_fixed(&fixed_ref);
    train_fixed(&mut fixed_ref, &train_fx, &opts, |_, _| {})?;
    train_float(&mut float_ref, &train_std, &opts, |_, _| {})?;
    Ok(References {
        acc_float: accuracy(&float_ref, &test_std.features, &test_std.labels)?,
        acc_fixed: accuracy(&fixed_ref, &test_fx.features, &test_fx.labels)?,
        predicted: test_fx
            .features
            .iter()
            .map(|x| fixed_ref.predict(x))
            .collect::<Result<_, _>>()?,
        fixed: fixed_ref,
    })
}

/// The accuracy table: f64, fixed point, encrypted; agreement and the largest weight difference.
fn report(
    a: &DemoArgs,
    fixed: &FixedParams,
    data: &DemoData,
    results: &Results,
    refs: &References,
) {
    let profile: secure_ops::Profile = a.profile.into();
    let n_test = data.test.len();
    let correct = results
        .predicted
        .iter()
        .zip(&data.test.labels)
        .filter(|(p, y)| p == y)
        .count();
    let agree = results
        .predicted
        .iter()
        .zip(&refs.predicted)
        .filter(|(p, r)| p == r)
        .count();
    let max_dw = results
        .model
        .layers
        .iter()
        .zip(&refs.fixed.params.layers)
        .flat_map(|(e, r)| {
            let w = e.weights_raw.iter().flatten().zip(r.w.iter().flatten());
            let b = e.biases_raw.iter().zip(r.b.iter());
            w.chain(b).map(|(x, y)| fixed.decode_weight(x - y).abs())
        })
        .fold(0.0, f64::max);
    println!();
    println!("results on {n_test} test samples");
    println!("  {:<44} {:>9}", "model", "accuracy");
    println!(
        "  {:<44} {:>9}",
        "plaintext f64 network",
        pct(refs.acc_float)
    );
    println!(
        "  {:<44} {:>9}",
        "fixed-point reference (floor rounding)",
        pct(refs.acc_fixed)
    );
    println!(
        "  {:<44} {:>9}",
        format!("encrypted (S1 + S2, {profile} profile)"),
        pct(correct as f64 / n_test as f64)
    );
    println!(
        "  encrypted predictions agree with the fixed-point reference on {agree}/{n_test} ({})",
        pct(agree as f64 / n_test as f64)
    );
    if max_dw == 0.0 {
        println!("  largest weight difference, encrypted vs fixed-point reference: 0");
    } else {
        println!(
            "  largest weight difference, encrypted vs fixed-point reference: {max_dw:.3e}{}",
            if profile == secure_ops::Profile::Fast {
                " (fast profile: stochastic rounding)"
            } else {
                " (strict profile: must be 0)"
            }
        );
    }
}

/// The time table (phase, time, time per sample) and the S1–S2 traffic of the two jobs.
fn report_times(rows: &[(String, Duration, Option<f64>)], jobs: &DemoJobs) {
    println!();
    println!("  {:<44} {:>12} {:>14}", "phase", "time", "per sample");
    for (name, d, per) in rows {
        println!(
            "  {:<44} {:>12} {:>14}",
            name,
            secs(*d),
            per.map_or(String::new(), |s| format!("{s:.3} s"))
        );
    }
    let tc = &jobs.trained.costs;
    let cc = &jobs.classified.costs;
    println!(
        "  S1↔S2 traffic: training {} round trips, {} ({} up, {} down); classification {} \
         round trips, {}",
        tc.traffic.round_trips,
        bytes(tc.traffic.bytes_sent + tc.traffic.bytes_received),
        bytes(tc.traffic.bytes_sent),
        bytes(tc.traffic.bytes_received),
        cc.traffic.round_trips,
        bytes(cc.traffic.bytes_sent + cc.traffic.bytes_received)
    );
}
