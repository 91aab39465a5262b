//! `cargo xtask speed`: seconds per encrypted training sample (one at a time and in mini-batches)
//! and per classified sample, with both servers on loopback over mutually authenticated TLS
//! (`--link tcp`: plain TCP, to measure what TLS costs; the harness of `repro`), and operation
//! counts per sample, for the strict profile, the fast one or both in the same run (then with the
//! strict/fast ratios). `--with-baseline` also runs the python-paillier peer
//! (`../shared/peers/phe_smlp.py`) right after, on the same machine, key size and network, and
//! prints the table of ratios.

use crate::baseline::{self, Outcome};
use crate::harness::{self, median, Servers};
use crate::Result;
use clap::Args;
use rand::SeedableRng;
use secure_ops::{Comparison, Profile};
use smlp::encrypted::{
    classify, costs, encrypt_params, new_model, train_batch, Costs, EncryptedDataset,
    CLASSIFY_CHUNK,
};
use smlp::{init_fixed, FixedParams, Loss, Shape};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct SpeedArgs {
    /// Paillier modulus size in bits (below 2048: an insecure test key).
    #[arg(long, default_value_t = 2048)]
    pub bits: u32,
    /// Hidden units of the 30 → H → 1 network.
    #[arg(long, default_value_t = 8)]
    pub hidden: usize,
    /// Training samples to time (also the number of samples classified).
    #[arg(long, default_value_t = 4)]
    pub samples: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Protocol profile: strict, fast or both (measured one after the other in this run, with
    /// the strict/fast ratios).
    #[arg(long, value_enum, default_value_t = Profiles::Both)]
    pub profile: Profiles,
    /// Mini-batch size of the second training measurement (two mini-batches are timed; 16 is
    /// `smlp train`'s default; 0 skips it).
    #[arg(long, default_value_t = 16)]
    pub minibatch: usize,
    /// Seed of the split and the initial weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The S1–S2 link: tls (as deployed) or tcp (to measure what TLS costs).
    #[arg(long, value_enum, default_value_t = harness::Link::Tls)]
    pub link: harness::Link,
    /// Also time mini-batches of 8 and run the python-paillier peer (needs `pip install
    /// phe==1.5.0 gmpy2` and ../shared/peers/phe_smlp.py), then print the table of ratios.
    #[arg(long)]
    pub with_baseline: bool,
    /// How the strict profile compares: garbled circuits (the default), DGK, or both (measured
    /// one after the other in this run, each against the fast profile).
    #[arg(long, value_enum, default_value_t = Comparisons::Garbled)]
    pub comparison: Comparisons,
    /// Test samples classified in batches of 32 (113: the whole test split, as `smlp demo`).
    #[arg(long, default_value_t = 113)]
    pub classify: usize,
    /// Training samples the peer times (at B = 1; each takes about a minute at 2048 bits).
    #[arg(long, default_value_t = 2)]
    pub baseline_samples: usize,
}

/// The profiles a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Profiles {
    /// The strict profile only.
    Strict,
    /// The fast profile only.
    Fast,
    /// Both, strict first.
    Both,
}

impl Profiles {
    fn list(self) -> Vec<Profile> {
        match self {
            Profiles::Strict => vec![Profile::Strict],
            Profiles::Fast => vec![Profile::Fast],
            Profiles::Both => vec![Profile::Strict, Profile::Fast],
        }
    }
}

/// The strict profile's comparisons a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Comparisons {
    /// Garbled circuits over OT extension (the default).
    Garbled,
    /// DGK.
    Dgk,
    /// Both, garbled first.
    Both,
}

impl Comparisons {
    fn list(self) -> Vec<Comparison> {
        match self {
            Comparisons::Garbled => vec![Comparison::Garbled],
            Comparisons::Dgk => vec![Comparison::Dgk],
            Comparisons::Both => vec![Comparison::Garbled, Comparison::Dgk],
        }
    }
}

/// One profile's medians.
#[derive(Clone, Copy, Debug)]
struct Measured {
    profile: Profile,
    comparison: Comparison,
    train_s: f64,
    minibatch_s: Option<f64>,
    classify_s: f64,
}

/// Seconds per sample of each batch of `train` (a fresh model from `init`).
fn time_training(
    s1: &mut secure_ops::S1<harness::S1Link>,
    shape: &Shape,
    fixed: &FixedParams,
    init: &smlp::Params<i128>,
    train: &[smlp::encrypted::EncryptedSample],
    batch: usize,
) -> Result<(Vec<f64>, Costs)> {
    let pk = s1.public_key().clone();
    let mut model = new_model(
        s1,
        shape.clone(),
        *fixed,
        2,
        Some(encrypt_params(&pk, init)?),
    )?;
    let before = costs(s1)?;
    let mut times = Vec::new();
    for chunk in train.chunks(batch) {
        let t = Instant::now();
        let refs: Vec<_> = chunk.iter().collect();
        // The squared error, as the peer (the paper's network) computes it.
        train_batch(s1, &mut model, &refs, Loss::Squared)?;
        times.push(t.elapsed().as_secs_f64() / chunk.len() as f64);
    }
    Ok((times, costs(s1)?.since(&before)))
}

/// Per-sample averages of a cost delta, formatted on one line.
pub fn per_sample_line(c: &Costs, n: usize) -> String {
    let per = |v: u64| v as f64 / n.max(1) as f64;
    format!(
        "S1 randomizers {:.0}, short exps {:.0}, full exps {:.0}, pack squarings {:.0}, DGK blindings {:.0}; \
         S2 decryptions {:.0}, encryptions {:.0}, DGK encryptions {:.0}, zero tests {:.0}; \
         garbled AND gates (one OT each) {:.0}; {:.1} KiB sent, {:.1} KiB received, {:.1} round trips",
        per(c.s1.randomizers),
        per(c.s1.short_exps),
        per(c.s1.full_exps),
        per(c.s1.pack_squarings),
        per(c.s1.dgk_blinds),
        per(c.s2.decryptions),
        per(c.s2.encryptions),
        per(c.s2.dgk_encryptions),
        per(c.s2.zero_tests),
        per(c.s1.gates),
        per(c.traffic.bytes_sent) / 1024.0,
        per(c.traffic.bytes_received) / 1024.0,
        per(c.traffic.round_trips),
    )
}

pub fn run(args: &SpeedArgs) -> Result<ExitCode> {
    if args.samples == 0 || args.batch == 0 || args.hidden == 0 || args.classify == 0 {
        return Err("--samples, --batch, --hidden and --classify must be at least 1".into());
    }
    let fixed = FixedParams::default();
    let key = harness::generate_key(args.bits)?;
    println!(
        "keygen {} bits{}: {:.2} s, backend {}, {} rayon threads",
        args.bits,
        if key.insecure {
            " (insecure test key)"
        } else {
            ""
        },
        key.seconds,
        paillier::arith::backend_description(),
        rayon::current_num_threads()
    );
    let pk = key.sk.public_key().clone();
    // Mini-batches: two of them, timed after the per-sample run.
    let big = 2 * args.minibatch;
    let n_train = args.samples.max(big);
    let data = harness::wdbc(
        Some(n_train),
        Some(args.samples.max(args.classify)),
        args.seed,
        &fixed,
    )?;
    let train = EncryptedDataset::encrypt(&pk, &data.train_enc, true);
    let test = EncryptedDataset::encrypt(&pk, &data.test_enc, false);
    let shape = Shape::new(vec![30, args.hidden, 1])?;
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(args.seed),
    );
    let mut results = Vec::new();
    for profile in args.profile.list() {
        let comparisons = match profile {
            Profile::Strict => args.comparison.list(),
            Profile::Fast => vec![Comparison::default()],
        };
        for comparison in comparisons {
            results.push(measure(
                args, profile, comparison, &key.sk, &shape, &fixed, &init, &train, &test, big,
            )?);
        }
    }
    if let Some(fast) = results.iter().find(|m| m.profile == Profile::Fast) {
        for strict in results.iter().filter(|m| m.profile == Profile::Strict) {
            print!("{}", ratio_table(args, strict, fast));
        }
    }
    if args.with_baseline {
        println!(
            "[baseline] python-paillier peer: {} --bits {} --hidden {} --samples {}",
            baseline::script_path().display(),
            args.bits,
            args.hidden,
            args.baseline_samples
        );
        match baseline::run(args.bits, args.hidden, args.baseline_samples.max(1)) {
            Outcome::Ran(b) => {
                for m in &results {
                    print!("{}", table(args, m, b.train_s, b.classify_s));
                }
            }
            Outcome::Unavailable(why) => println!("  baseline unavailable: {why}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Times training (B = `--batch`, then mini-batches), one-at-a-time and batched classification
/// in `profile`, with fresh servers.
#[allow(clippy::too_many_arguments)]
fn measure(
    args: &SpeedArgs,
    profile: Profile,
    comparison: Comparison,
    sk: &paillier::SecretKey,
    shape: &Shape,
    fixed: &FixedParams,
    init: &smlp::Params<i128>,
    train: &EncryptedDataset,
    test: &EncryptedDataset,
    big: usize,
) -> Result<Measured> {
    let pk = sk.public_key().clone();
    let mut servers = Servers::start(sk, profile, comparison, fixed, args.link)?;
    let warm = Duration::from_secs(30);
    let profile_name = match profile {
        Profile::Strict => format!("{profile}, {comparison}"),
        Profile::Fast => profile.to_string(),
    };
    println!(
        "[{profile_name}] randomizer pools of S1 and S2 filled in {:.1} s before timing (as in a running server)",
        servers.warm_up(warm)
    );
    let first = &train.samples[..args.samples.min(train.len())];
    let (times, c) = time_training(&mut servers.s1, shape, fixed, init, first, args.batch)?;
    let (lo, hi) = times
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
    let train_s = median(&times);
    println!(
        "30-{}-1 {profile_name} batch {} over {:?}: training s/sample median {train_s:.3} (min {lo:.3}, max {hi:.3}) over {} samples",
        args.hidden,
        args.batch,
        args.link,
        first.len()
    );
    println!(
        "  per training sample: {}",
        per_sample_line(&c, first.len())
    );
    let minibatch_s = if big > 0 {
        servers.warm_up(warm);
        let (cpu, t) = (harness::cpu_seconds(), Instant::now());
        let (times, c) = time_training(
            &mut servers.s1,
            shape,
            fixed,
            init,
            &train.samples[..big],
            args.minibatch,
        )?;
        let busy = harness::cores_busy(cpu, t.elapsed().as_secs_f64());
        println!(
            "  training s/sample with mini-batches of {} ({big} samples): {:.3} ({busy} cores busy, S1 and S2 together); per sample: {}",
            args.minibatch,
            median(&times),
            per_sample_line(&c, big)
        );
        Some(median(&times))
    } else {
        None
    };
    let model = smlp::encrypted::EncryptedModel {
        fingerprint: pk.fingerprint(),
        shape: shape.clone(),
        fixed: *fixed,
        profile,
        classes: 2,
        epochs_trained: 0,
        params: encrypt_params(&pk, init)?,
    };

    let subset = |n: usize| EncryptedDataset {
        samples: test.samples[..n.min(test.len())].to_vec(),
        ..test.clone()
    };
    let few = subset(args.samples);
    servers.warm_up(warm);
    let s1 = &mut servers.s1;
    let before = costs(s1)?;
    let t = Instant::now();
    classify(s1, &model, &few, 1, |_| {})?;
    let one = t.elapsed().as_secs_f64() / few.len() as f64;
    let c = costs(s1)?.since(&before);
    println!(
        "  classification s/sample (one at a time, {} samples): {one:.3}",
        few.len()
    );
    println!(
        "  per classified sample: {}",
        per_sample_line(&c, few.len())
    );
    let batch = subset(args.classify);
    let n = batch.len();
    servers.warm_up(warm);
    let s1 = &mut servers.s1;
    let before = costs(s1)?;
    let (cpu, t) = (harness::cpu_seconds(), Instant::now());
    classify(s1, &model, &batch, CLASSIFY_CHUNK, |_| {})?;
    let classify_s = t.elapsed().as_secs_f64() / n as f64;
    let busy = harness::cores_busy(cpu, t.elapsed().as_secs_f64());
    let c = costs(s1)?.since(&before);
    println!(
        "  classification s/sample ({n} samples in batches of {CLASSIFY_CHUNK}): {classify_s:.3} ({busy} cores busy)"
    );
    println!(
        "  per classified sample in the batch: {}",
        per_sample_line(&c, n)
    );
    servers.close()?;
    Ok(Measured {
        profile,
        comparison,
        train_s,
        minibatch_s,
        classify_s,
    })
}

/// Strict against fast, measured in the same run (markdown).
fn ratio_table(args: &SpeedArgs, strict: &Measured, fast: &Measured) -> String {
    let row = |name: String, s: f64, f: f64| {
        format!("| {name} | {s:.3} s | {f:.3} s | {:.2}× |\n", s / f)
    };
    let mut t = format!(
        "\n30→{}→1, {} bits, S1 and S2 over {:?} on loopback, strict comparisons {}; marginal \
         seconds per sample, medians\n\n\
         | | strict | fast | strict / fast |\n|---|---:|---:|---:|\n",
        args.hidden, args.bits, args.link, strict.comparison
    );
    t += &row(
        format!("training, B = {}", args.batch),
        strict.train_s,
        fast.train_s,
    );
    if let (Some(s), Some(f)) = (strict.minibatch_s, fast.minibatch_s) {
        t += &row(format!("training, B = {}", args.minibatch), s, f);
    }
    t += &row(
        format!(
            "classification, {} samples in batches of {CLASSIFY_CHUNK}",
            args.classify
        ),
        strict.classify_s,
        fast.classify_s,
    );
    t
}

/// The side-by-side table (markdown), with ratios peer / smlp.
fn table(args: &SpeedArgs, m: &Measured, peer_train_s: f64, peer_classify_s: f64) -> String {
    let row = |name: String, ours: f64, peer: f64| {
        format!(
            "| {name} | {ours:.3} s | {peer:.2} s | {:.1}× |\n",
            peer / ours
        )
    };
    let mut t = format!(
        "\n30→{}→1, {} bits, {} profile, S1 and S2 over {:?} on loopback; marginal seconds per \
         sample, medians\n\n| | smlp | python-paillier | ratio |\n|---|---:|---:|---:|\n",
        args.hidden, args.bits, m.profile, args.link
    );
    t += &row(
        format!("training, B = {}", args.batch),
        m.train_s,
        peer_train_s,
    );
    if let Some(b) = m.minibatch_s {
        t += &row(
            format!(
                "training, mini-batches of {} (the peer has no mini-batches: B = 1)",
                args.minibatch
            ),
            b,
            peer_train_s,
        );
    }
    t += &row(
        format!(
            "classification, {} samples in batches of {CLASSIFY_CHUNK}",
            args.classify
        ),
        m.classify_s,
        peer_classify_s,
    );
    t
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_ratios() {
        use clap::Parser;
        #[derive(Parser)]
        struct A {
            #[command(flatten)]
            s: super::SpeedArgs,
        }
        let a = A::parse_from(["x", "--samples", "4", "--classify", "4", "--minibatch", "8"]);
        let m = super::Measured {
            profile: secure_ops::Profile::Fast,
            comparison: secure_ops::Comparison::Garbled,
            train_s: 2.0,
            minibatch_s: Some(0.5),
            classify_s: 1.0,
        };
        let t = super::table(&a.s, &m, 60.0, 10.0);
        assert!(
            t.contains("| training, B = 1 | 2.000 s | 60.00 s | 30.0× |"),
            "{t}"
        );
        assert!(t.contains("| 0.500 s | 60.00 s | 120.0× |"), "{t}");
        assert!(
            t.contains(
                "| classification, 4 samples in batches of 32 | 1.000 s | 10.00 s | 10.0× |"
            ),
            "{t}"
        );
        let strict = super::Measured {
            profile: secure_ops::Profile::Strict,
            comparison: secure_ops::Comparison::Dgk,
            train_s: 3.0,
            minibatch_s: Some(0.75),
            classify_s: 1.5,
        };
        let r = super::ratio_table(&a.s, &strict, &m);
        assert!(
            r.contains("| training, B = 1 | 3.000 s | 2.000 s | 1.50× |"),
            "{r}"
        );
        assert!(
            r.contains("| training, B = 8 | 0.750 s | 0.500 s | 1.50× |"),
            "{r}"
        );
    }
}
