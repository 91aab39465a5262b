//! `cargo xtask repro`: the experiment of Bellafqira et al. (IWDW 2018) on the embedded wdbc data.
//!
//! From one set of initial weights (`init_fixed`, seeded), trains side by side
//! (a) the f64 reference (`FloatMlp::from_fixed`), (b) the fixed-point reference (`FixedMlp`, floor
//! truncation for the strict profile, stochastic for the fast one) and (c) the encrypted network:
//! the owner encrypts the same weights, S1 trains on the encrypted training subset with S2 over
//! TLS on loopback. After every epoch the harness, playing the owner, decrypts the model and
//! evaluates it in the clear; at the end the encrypted classifier runs on the encrypted test set.
//! Writes `report.md`, `report.json`, `loss.{svg,png}` and `accuracy.{svg,png}`.

use crate::baseline::{self, Outcome};
use crate::harness::{self, median, Data, Servers};
use crate::speed::per_sample_line;
use crate::workspace_root;
use crate::Result;
use clap::Args;
use rand::SeedableRng;
use secure_ops::Profile;
use serde::Serialize;
use smlp::encrypted::{
    classify, costs, encrypt_params, new_model, train, Costs, EncryptedDataset, TrainConfig,
};
use smlp::{
    evaluate, init_fixed, train_fixed, train_float, FixedMlp, FixedParams, FloatMlp, Loss, Metrics,
    Params, Rounding, Shape, TrainOptions,
};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod report;
use report::write_outputs;

/// Full run: training subset and epochs, sized for roughly 15–30 minutes on 2 cores at 2048 bits:
/// 750 encrypted training steps at 1.3 s (measured with `cargo xtask speed`, fast profile, GMP) to
/// 2 s (busy machine) each, plus about a minute to classify the 113 test samples one at a time.
const FULL_TRAIN: usize = 150;
const FULL_EPOCHS: u64 = 5;
/// Quick run.
const QUICK_BITS: u32 = 1024;
const QUICK_TRAIN: usize = 40;
const QUICK_TEST: usize = 40;
const QUICK_EPOCHS: u64 = 3;
/// Samples the python-paillier peer times.
const BASELINE_SAMPLES: usize = 3;

#[derive(Args, Debug)]
pub struct ReproArgs {
    /// Small run (1024-bit insecure test key, 40 training and 40 test samples, 3 epochs): one to
    /// two minutes on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Paillier modulus size in bits [default: 2048; --quick: 1024].
    #[arg(long)]
    pub bits: Option<u32>,
    /// Hidden units of the 30 → H → 1 network.
    #[arg(long, default_value_t = 8)]
    pub hidden: usize,
    /// Epochs [default: 5; --quick: 3].
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Training samples, a stratified subset of the 80 % training part [default: 150; --quick: 40].
    #[arg(long)]
    pub train_samples: Option<usize>,
    /// Test samples, a stratified subset of the 20 % test part [default: all 113; --quick: 40].
    #[arg(long)]
    pub test_samples: Option<usize>,
    /// Mini-batch size (1 = per-sample SGD).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Protocol profile: fast (stochastic truncation; reference with stochastic rounding) or
    /// strict (exact; equals the floor reference bit for bit).
    #[arg(long, default_value_t = Profile::Strict)]
    pub profile: Profile,
    /// Seed of the split, the subsets, the initial weights and the sample order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Samples per encrypted classification batch (1 = one sample at a time).
    #[arg(long, default_value_t = 1)]
    pub classify_batch: usize,
    /// Also time the python-paillier peer (../shared/peers/phe_smlp.py) with the same key size and
    /// hidden size, right after our run.
    #[arg(long)]
    pub with_baseline: bool,
    /// Output directory [default: target/repro].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Resolved configuration.
#[derive(Clone, Debug, Serialize)]
struct Config {
    quick: bool,
    bits: u32,
    insecure_key: bool,
    shape: String,
    hidden: usize,
    epochs: u64,
    train_samples: usize,
    test_samples: usize,
    full_train: usize,
    full_test: usize,
    batch: usize,
    profile: String,
    reference_rounding: String,
    seed: u64,
    classify_batch: usize,
    frac_bits: u32,
    weight_frac_bits: u32,
    learning_rate: f64,
    learning_rate_str: String,
    value_bits: u32,
    kappa: u32,
    backend: String,
    rayon_threads: usize,
    cores: usize,
    build: String,
    command: String,
}

/// Evaluation of one model at one point (after `epoch` epochs; 0 = initial weights).
#[derive(Clone, Copy, Debug, Serialize)]
struct Eval {
    epoch: u64,
    /// Mean ½Σ(o − y)² over the training subset with these weights.
    loss: f64,
    accuracy: f64,
    /// Of the positive class (1 = malignant).
    precision: f64,
    recall: f64,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct WeightDiff {
    epoch: u64,
    /// max |W_enc − W_fixed| in units of 2^−F_w.
    enc_fixed_units: u128,
    /// The same in real terms.
    enc_fixed_real: f64,
    /// max |W_fixed/2^F_w − W_f64| (fixed-point against real arithmetic).
    fixed_float_real: f64,
    /// max |W| (real) of the encrypted model, for scale.
    max_abs_weight: f64,
}

#[derive(Clone, Debug, Serialize)]
struct Classification {
    samples: usize,
    seconds: f64,
    seconds_per_sample: f64,
    accuracy: f64,
    precision: f64,
    recall: f64,
    /// Fraction of test samples where the encrypted classifier's class equals the fixed-point
    /// reference's.
    agreement_with_fixed_reference: f64,
    /// … equals the plaintext prediction with the decrypted weights.
    agreement_with_decrypted_weights: f64,
    /// max |score_enc − score_plain(decrypted weights)| in units of 2^−f.
    max_score_diff_units: i128,
    costs: Costs,
}

#[derive(Clone, Debug, Serialize)]
struct Timings {
    keygen_s: f64,
    encrypt_data_s: f64,
    encrypt_weights_s: f64,
    float_reference_s: f64,
    fixed_reference_s: f64,
    /// Wall time of each encrypted epoch (training only).
    epoch_s: Vec<f64>,
    /// Per training sample, over all epochs.
    train_sample_median_s: f64,
    train_sample_mean_s: f64,
    train_sample_min_s: f64,
    train_sample_max_s: f64,
    /// Decrypting and evaluating the model after each epoch (harness only).
    owner_eval_s: f64,
    total_s: f64,
}

#[derive(Clone, Debug, Serialize)]
struct Report {
    config: Config,
    float: Vec<Eval>,
    fixed: Vec<Eval>,
    encrypted: Vec<Eval>,
    weight_diff: Vec<WeightDiff>,
    train_samples_processed: u64,
    train_costs: Costs,
    classification: Classification,
    timings: Timings,
    baseline: Option<Outcome>,
}

fn pos_metrics(m: &Metrics, epoch: u64, loss: f64) -> Eval {
    Eval {
        epoch,
        loss,
        accuracy: m.accuracy(),
        precision: m.precision(1),
        recall: m.recall(1),
    }
}

fn eval_fixed(m: &FixedMlp, data: &Data, epoch: u64) -> Result<Eval> {
    let tr = &data.train_enc;
    let mut loss = 0.0;
    for (x, y) in tr.features.iter().zip(&tr.targets) {
        let o = m.output(x)?;
        loss += o
            .iter()
            .zip(y)
            .map(|(&o, &t)| 0.5 * m.fixed.decode_value(o - i128::from(t)).powi(2))
            .sum::<f64>();
    }
    let metrics = evaluate(m, &data.test_enc.features, &data.test_enc.labels)?;
    Ok(pos_metrics(&metrics, epoch, loss / tr.len() as f64))
}

fn eval_float(m: &FloatMlp, data: &Data, epoch: u64) -> Result<Eval> {
    let targets = data.train.float_targets();
    let mut loss = 0.0;
    for (x, y) in data.train.features.iter().zip(&targets) {
        let o = m.output(x)?;
        loss += o
            .iter()
            .zip(y)
            .map(|(o, t)| 0.5 * (o - t).powi(2))
            .sum::<f64>();
    }
    let metrics = evaluate(m, &data.test.features, &data.test.labels)?;
    Ok(pos_metrics(&metrics, epoch, loss / data.train.len() as f64))
}

fn max_abs_diff(a: &Params<i128>, b: &Params<i128>) -> u128 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

fn fmt_secs(s: f64) -> String {
    if s < 0.1 {
        format!("{:.2} ms", s * 1e3)
    } else if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else if s >= 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.3} s")
    }
}

/// The run's configuration, data and output directory, resolved from the arguments (and
/// announced).
struct Setup {
    config: Config,
    data: Data,
    shape: Shape,
    rounding: Rounding,
    out_dir: PathBuf,
}

fn setup(args: &ReproArgs, fixed: &FixedParams) -> Result<Setup> {
    let bits = args
        .bits
        .unwrap_or(if args.quick { QUICK_BITS } else { 2048 });
    let epochs = args.epochs.unwrap_or(if args.quick {
        QUICK_EPOCHS
    } else {
        FULL_EPOCHS
    });
    let train_n = args
        .train_samples
        .unwrap_or(if args.quick { QUICK_TRAIN } else { FULL_TRAIN });
    let test_n = args
        .test_samples
        .or(if args.quick { Some(QUICK_TEST) } else { None });
    if args.hidden == 0 || args.batch == 0 || epochs == 0 || train_n == 0 || test_n == Some(0) {
        return Err(
            "--hidden, --batch, --epochs, --train-samples and --test-samples must be at least 1"
                .into(),
        );
    }
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| workspace_root().join("target/repro"));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;

    let data = harness::wdbc(Some(train_n), test_n, args.seed, fixed)?;
    let shape = Shape::new(vec![data.train.num_features(), args.hidden, 1])?;
    let rounding = match args.profile {
        Profile::Strict => Rounding::Floor,
        Profile::Fast => Rounding::Stochastic(args.seed),
    };
    let config = Config {
        quick: args.quick,
        bits,
        insecure_key: bits < 2048,
        shape: shape.to_string(),
        hidden: args.hidden,
        epochs,
        train_samples: data.train.len(),
        test_samples: data.test.len(),
        full_train: data.full_train,
        full_test: data.full_test,
        batch: args.batch,
        profile: args.profile.to_string(),
        reference_rounding: match rounding {
            Rounding::Floor => "floor".into(),
            Rounding::Stochastic(s) => format!("stochastic (seed {s})"),
        },
        seed: args.seed,
        classify_batch: args.classify_batch.max(1),
        frac_bits: fixed.frac_bits,
        weight_frac_bits: fixed.weight_frac_bits(),
        learning_rate: fixed.lr.value(),
        learning_rate_str: format!("{}/2^{}", fixed.lr.num, fixed.lr.shift),
        value_bits: fixed.value_bits,
        kappa: harness::KAPPA,
        backend: paillier::arith::backend_description(),
        rayon_threads: rayon::current_num_threads(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        build: if cfg!(debug_assertions) {
            "dev profile (workspace crates opt-level 1, paillier and dependencies opt-level 3)"
                .into()
        } else {
            "release profile".into()
        },
        command: std::iter::once("cargo xtask repro".to_string())
            .chain(std::env::args().skip(2))
            .collect::<Vec<_>>()
            .join(" "),
    };
    println!(
        "xtask repro: wdbc {} {} profile, {}-bit key{}, {} training / {} test samples, {} epochs, batch {}, seed {}",
        config.shape,
        config.profile,
        bits,
        if config.insecure_key { " (insecure test key)" } else { "" },
        config.train_samples,
        config.test_samples,
        epochs,
        args.batch,
        args.seed
    );
    println!(
        "    backend {}, {} rayon threads, output {}",
        config.backend,
        config.rayon_threads,
        out_dir.display()
    );
    Ok(Setup {
        config,
        data,
        shape,
        rounding,
        out_dir,
    })
}

/// The plaintext references trained from the same initial weights: (a) the f64 network and (b)
/// the fixed-point network, with their evaluation and weights after every epoch.
struct References {
    float_evals: Vec<Eval>,
    float_params: Vec<Params<f64>>,
    fixed_evals: Vec<Eval>,
    fixed_params: Vec<Params<i128>>,
    fixed_model: FixedMlp,
    float_s: f64,
    fixed_s: f64,
}

fn references(
    init_model: &FixedMlp,
    data: &Data,
    opts: &TrainOptions,
    reference_rounding: &str,
) -> Result<References> {
    // (a) f64 reference.
    println!("[1/4] f64 reference");
    let t = Instant::now();
    let mut float_model = FloatMlp::from_fixed(init_model);
    let mut float_evals = vec![eval_float(&float_model, data, 0)?];
    let mut float_params = vec![float_model.params.clone()];
    let mut err = None;
    train_float(&mut float_model, &data.train, opts, |st, m| {
        match eval_float(m, data, st.epoch + 1) {
            Ok(e) => float_evals.push(e),
            Err(e) => err = Some(e),
        }
        float_params.push(m.params.clone());
    })?;
    if let Some(e) = err.take() {
        return Err(e);
    }
    let float_s = t.elapsed().as_secs_f64();

    // (b) fixed-point reference.
    println!("[2/4] fixed-point reference ({})", reference_rounding);
    let t = Instant::now();
    let mut fixed_model = init_model.clone();
    let mut fixed_evals = vec![eval_fixed(&fixed_model, data, 0)?];
    let mut fixed_params = vec![fixed_model.params.clone()];
    train_fixed(&mut fixed_model, &data.train_enc, opts, |st, m| {
        match eval_fixed(m, data, st.epoch + 1) {
            Ok(e) => fixed_evals.push(e),
            Err(e) => err = Some(e),
        }
        fixed_params.push(m.params.clone());
    })?;
    if let Some(e) = err.take() {
        return Err(e);
    }
    let fixed_s = t.elapsed().as_secs_f64();
    for (f, x) in float_evals.iter().zip(&fixed_evals) {
        println!(
            "    epoch {}: loss f64 {:.5} fixed {:.5}, test accuracy f64 {:.1} % fixed {:.1} %",
            f.epoch,
            f.loss,
            x.loss,
            f.accuracy * 100.0,
            x.accuracy * 100.0
        );
    }
    Ok(References {
        float_evals,
        float_params,
        fixed_evals,
        fixed_params,
        fixed_model,
        float_s,
        fixed_s,
    })
}

pub fn run(args: &ReproArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let fixed = FixedParams::default();
    let Setup {
        config,
        data,
        shape,
        rounding,
        out_dir,
    } = setup(args, &fixed)?;
    let (bits, epochs) = (config.bits, config.epochs);
    // Initial weights shared by all three networks.
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(args.seed),
    );
    let init_model = FixedMlp::from_params(init.clone(), fixed)?;
    let opts = TrainOptions {
        epochs,
        batch: args.batch,
        seed: args.seed,
        // The paper's loss.
        loss: Loss::Squared,
        start_epoch: 0,
        rounding,
    };

    let refs = references(&init_model, &data, &opts, &config.reference_rounding)?;

    // (c) encrypted training.
    println!("[3/4] encrypted training, S1 and S2 over TLS on loopback");
    let key = harness::generate_key(bits)?;
    println!(
        "    key: {} bits{} in {:.2} s",
        bits,
        if key.insecure {
            " (generate_insecure_for_tests)"
        } else {
            ""
        },
        key.seconds
    );
    let sk = &key.sk;
    let pk = sk.public_key().clone();
    let t = Instant::now();
    let enc_train = EncryptedDataset::encrypt(&pk, &data.train_enc, true);
    let enc_test = EncryptedDataset::encrypt(&pk, &data.test_enc, false);
    let encrypt_data_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let enc_init = encrypt_params(&pk, &init)?;
    let encrypt_weights_s = t.elapsed().as_secs_f64();
    println!(
        "    owner encrypted {} training and {} test samples in {:.1} s, the initial weights in {:.2} s",
        enc_train.len(),
        enc_test.len(),
        encrypt_data_s,
        encrypt_weights_s
    );

    let mut servers = Servers::start(
        sk,
        args.profile,
        secure_ops::Comparison::default(),
        &fixed,
        harness::Link::Tls,
    )?;
    println!("    S2 listening on {}, S1 connected", servers.addr);
    let s1 = &mut servers.s1;
    let mut model = new_model(s1, shape.clone(), fixed, 2, Some(enc_init))?;
    if model.decrypt(sk)? != init {
        return Err("the encrypted initial weights do not decrypt to the initial weights".into());
    }
    let mut enc_evals = vec![eval_fixed(&init_model, &data, 0)?];
    let fw_scale = (fixed.weight_frac_bits() as f64).exp2();
    let diff_at = |e: u64, enc: &Params<i128>| -> WeightDiff {
        let units = max_abs_diff(enc, &refs.fixed_params[e as usize]);
        let fixed_float_real = refs.fixed_params[e as usize]
            .iter()
            .zip(refs.float_params[e as usize].iter())
            .map(|(&w, &f)| (fixed.decode_weight(w) - f).abs())
            .fold(0.0, f64::max);
        WeightDiff {
            epoch: e,
            enc_fixed_units: units,
            enc_fixed_real: units as f64 / fw_scale,
            fixed_float_real,
            max_abs_weight: enc
                .iter()
                .map(|&w| fixed.decode_weight(w).abs())
                .fold(0.0, f64::max),
        }
    };
    let mut diffs = vec![diff_at(0, &init)];
    let n = enc_train.len();
    let mut sample_times: Vec<f64> = Vec::new();
    let mut epoch_s = Vec::new();
    let mut owner_eval = Duration::ZERO;
    let train_before = costs(s1)?;
    let mut final_plain = init_model.clone();
    for e in 0..epochs {
        let mut progress =
            harness::Progress::new(format!("    encrypted epoch {}/{epochs}", e + 1), n as u64);
        let mut last = (Duration::ZERO, 0usize);
        let t = Instant::now();
        train(
            s1,
            &mut model,
            &enc_train,
            &TrainConfig {
                epochs: e + 1,
                batch: args.batch,
                seed: args.seed,
                loss: opts.loss,
            },
            |p| {
                let dt = p.elapsed.saturating_sub(last.0).as_secs_f64();
                let k = p.done.saturating_sub(last.1).max(1);
                sample_times.extend(std::iter::repeat_n(dt / k as f64, k));
                last = (p.elapsed, p.done);
                progress.set(p.done as u64);
            },
            |_| Ok(()),
        )?;
        let secs = t.elapsed().as_secs_f64();
        progress.finish();
        epoch_s.push(secs);
        let t = Instant::now();
        let params = model.decrypt(sk)?;
        let d = diff_at(e + 1, &params);
        final_plain = FixedMlp::from_params(params, fixed)?;
        let ev = eval_fixed(&final_plain, &data, e + 1)?;
        owner_eval += t.elapsed();
        println!(
            "    epoch {}/{epochs}: {} ({:.2} s/sample); loss enc {:.5} (fixed {:.5}, f64 {:.5}); test accuracy enc {:.1} % (fixed {:.1} %, f64 {:.1} %); max |W_enc − W_fixed| = {} units of 2^-{}",
            e + 1,
            fmt_secs(secs),
            secs / n as f64,
            ev.loss,
            refs.fixed_evals[(e + 1) as usize].loss,
            refs.float_evals[(e + 1) as usize].loss,
            ev.accuracy * 100.0,
            refs.fixed_evals[(e + 1) as usize].accuracy * 100.0,
            refs.float_evals[(e + 1) as usize].accuracy * 100.0,
            d.enc_fixed_units,
            fixed.weight_frac_bits()
        );
        enc_evals.push(ev);
        diffs.push(d);
    }
    let train_costs = costs(s1)?.since(&train_before);
    let processed = n as u64 * epochs;
    println!(
        "    per training sample: {}",
        per_sample_line(&train_costs, processed as usize)
    );

    // Encrypted classification of the encrypted test set.
    println!(
        "[4/4] encrypted classification of {} test samples (batches of {})",
        enc_test.len(),
        config.classify_batch
    );
    let before = costs(s1)?;
    let mut progress = harness::Progress::new("    classified", enc_test.len() as u64);
    let t = Instant::now();
    let preds = classify(s1, &model, &enc_test, config.classify_batch, |p| {
        progress.set(p.done as u64)
    })?;
    let classify_s = t.elapsed().as_secs_f64();
    progress.finish();
    let classify_costs = costs(s1)?.since(&before);
    servers.close()?;

    let classes = preds.decrypt_classes(sk)?;
    let scores = preds.decrypt_scores(sk)?;
    let metrics = Metrics::from_predictions(&classes, &data.test_enc.labels, 2);
    let mut agree_ref = 0usize;
    let mut agree_plain = 0usize;
    let mut max_score_diff = 0i128;
    let f_scale = (fixed.frac_bits as f64).exp2();
    for ((x, &c), s) in data.test_enc.features.iter().zip(&classes).zip(&scores) {
        agree_ref += usize::from(refs.fixed_model.predict(x)? == c);
        agree_plain += usize::from(final_plain.predict(x)? == c);
        for (o, sv) in final_plain.output(x)?.iter().zip(s) {
            max_score_diff = max_score_diff.max((o - (sv * f_scale).round() as i128).abs());
        }
    }
    let m = enc_test.len();
    let classification = Classification {
        samples: m,
        seconds: classify_s,
        seconds_per_sample: classify_s / m as f64,
        accuracy: metrics.accuracy(),
        precision: metrics.precision(1),
        recall: metrics.recall(1),
        agreement_with_fixed_reference: agree_ref as f64 / m as f64,
        agreement_with_decrypted_weights: agree_plain as f64 / m as f64,
        max_score_diff_units: max_score_diff,
        costs: classify_costs,
    };
    println!(
        "    {:.3} s/sample; accuracy {:.1} %, agreement with the fixed-point reference {:.1} %, with the decrypted weights {:.1} %",
        classification.seconds_per_sample,
        classification.accuracy * 100.0,
        classification.agreement_with_fixed_reference * 100.0,
        classification.agreement_with_decrypted_weights * 100.0
    );

    let (lo, hi) = sample_times
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
    let timings = Timings {
        keygen_s: key.seconds,
        encrypt_data_s,
        encrypt_weights_s,
        float_reference_s: refs.float_s,
        fixed_reference_s: refs.fixed_s,
        train_sample_median_s: median(&sample_times),
        train_sample_mean_s: epoch_s.iter().sum::<f64>() / processed as f64,
        train_sample_min_s: lo,
        train_sample_max_s: hi,
        epoch_s,
        owner_eval_s: owner_eval.as_secs_f64(),
        total_s: 0.0,
    };

    let baseline = if args.with_baseline {
        println!(
            "[baseline] python-paillier peer: {} --bits {bits} --hidden {} --samples {BASELINE_SAMPLES}",
            baseline::script_path().display(),
            args.hidden
        );
        let b = baseline::run(bits, args.hidden, BASELINE_SAMPLES);
        match &b {
            Outcome::Ran(b) => println!(
                "    python-paillier: {:.3} s per training sample, {:.3} s per forward-only classification",
                b.train_s, b.classify_s
            ),
            Outcome::Unavailable(why) => println!("    baseline unavailable: {why}"),
        }
        Some(b)
    } else {
        None
    };

    let mut report = Report {
        config,
        float: refs.float_evals,
        fixed: refs.fixed_evals,
        encrypted: enc_evals,
        weight_diff: diffs,
        train_samples_processed: processed,
        train_costs,
        classification,
        timings,
        baseline,
    };
    report.timings.total_s = start.elapsed().as_secs_f64();

    let written = write_outputs(&report, &out_dir)?;
    println!(
        "xtask repro: done in {}; wrote {}",
        fmt_secs(report.timings.total_s),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
