//! `cargo xtask speed`: seconds per encrypted training sample and per classified sample, with both
//! servers on loopback over mutually authenticated TLS (`--link tcp`: plain TCP, to measure what TLS
//! costs; the harness of `repro`), and operation counts per sample.

use crate::harness::{self, median, Servers};
use crate::Result;
use clap::Args;
use rand::SeedableRng;
use secure_ops::Profile;
use smlp::encrypted::{
    classify, costs, encrypt_params, new_model, train_batch, Costs, EncryptedDataset,
};
use smlp::{init_fixed, FixedParams, Shape};
use std::process::ExitCode;
use std::time::Instant;

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
    /// Protocol profile: fast or strict.
    #[arg(long, default_value_t = Profile::Fast)]
    pub profile: Profile,
    /// Seed of the split and the initial weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The S1–S2 link: tls (as deployed) or tcp (to measure what TLS costs).
    #[arg(long, value_enum, default_value_t = harness::Link::Tls)]
    pub link: harness::Link,
}

/// Per-sample averages of a cost delta, formatted on one line.
pub fn per_sample_line(c: &Costs, n: usize) -> String {
    let per = |v: u64| v as f64 / n.max(1) as f64;
    format!(
        "S1 randomizers {:.0}, short exps {:.0}, full exps {:.0}, pack squarings {:.0}; S2 decryptions {:.0}, encryptions {:.0}; \
         {:.1} KiB sent, {:.1} KiB received, {:.1} round trips",
        per(c.s1.randomizers),
        per(c.s1.short_exps),
        per(c.s1.full_exps),
        per(c.s1.pack_squarings),
        per(c.s2.decryptions),
        per(c.s2.encryptions),
        per(c.traffic.bytes_sent) / 1024.0,
        per(c.traffic.bytes_received) / 1024.0,
        per(c.traffic.round_trips),
    )
}

pub fn run(args: &SpeedArgs) -> Result<ExitCode> {
    if args.samples == 0 || args.batch == 0 || args.hidden == 0 {
        return Err("--samples, --batch and --hidden must be at least 1".into());
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
        paillier::arith::BACKEND,
        rayon::current_num_threads()
    );
    let pk = key.sk.public_key().clone();
    let data = harness::wdbc(Some(args.samples), Some(args.samples), args.seed, &fixed)?;
    let train = EncryptedDataset::encrypt(&pk, &data.train_enc, true);
    let test = EncryptedDataset::encrypt(&pk, &data.test_enc, false);
    let shape = Shape::new(vec![30, args.hidden, 1])?;
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(args.seed),
    );
    let mut servers = Servers::start(&key.sk, args.profile, &fixed, args.link)?;
    let s1 = &mut servers.s1;
    let mut model = new_model(s1, shape, fixed, 2, Some(encrypt_params(&pk, &init)?))?;

    let before = costs(s1)?;
    let mut times = Vec::new();
    for chunk in train.samples.chunks(args.batch) {
        let t = Instant::now();
        let refs: Vec<_> = chunk.iter().collect();
        train_batch(s1, &mut model, &refs)?;
        times.push(t.elapsed().as_secs_f64() / chunk.len() as f64);
    }
    let c = costs(s1)?.since(&before);
    let (lo, hi) = times
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &t| (a.min(t), b.max(t)));
    println!(
        "30-{}-1 {} batch {} over {:?}: training s/sample median {:.3} (min {lo:.3}, max {hi:.3}) over {} samples",
        args.hidden,
        args.profile,
        args.batch,
        args.link,
        median(&times),
        train.len()
    );
    println!(
        "  per training sample: {}",
        per_sample_line(&c, train.len())
    );

    let n = test.len();
    let before = costs(s1)?;
    let t = Instant::now();
    classify(s1, &model, &test, 1, |_| {})?;
    let one = t.elapsed().as_secs_f64() / n as f64;
    let c = costs(s1)?.since(&before);
    println!("  classification s/sample (one at a time): {one:.3}");
    println!("  per classified sample: {}", per_sample_line(&c, n));
    let t = Instant::now();
    classify(s1, &model, &test, n, |_| {})?;
    println!(
        "  classification s/sample (all {n} in one batch): {:.3}",
        t.elapsed().as_secs_f64() / n as f64
    );
    servers.close()?;
    Ok(ExitCode::SUCCESS)
}
