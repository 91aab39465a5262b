//! Sub-protocol benchmarks with a 2048-bit key, over memory and over TCP loopback.
//!
//! `cargo bench -p transport --features gmp --bench protocols` prints a cost table first (S1 and S2 operation
//! counts, bytes and round trips of one run of each protocol, from `S1::counts`,
//! `S1::s2_counts` and `S1::traffic_snapshot`), then times every protocol with criterion.
//! Pass a criterion filter to time a subset (`-- 'secmul|relu'`); the cost table is printed only
//! when no filter is given or the filter is `cost_table`.
//!
//! Ids are `<protocol>/<link>/<batch>`: batch = values per request (a SecDot batch of B is a
//! B × 64 matrix times a 64-vector; argmax of 3 scores per sample). Sessions use the default
//! parameters ℓ = 72, κ = 80; no randomizer pools (every timing includes all exponentiations).

use criterion::{black_box, BenchmarkId, Criterion, SamplingMode, Throughput};
use num_bigint::BigInt;
use paillier::{Ciphertext, PublicKey, SecretKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use secure_ops::{Channel, OpCounts, Profile, S2Options, S2Service, SessionParams, Truncation, S1};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use transport::loopback::LoopbackS2;
use transport::{ServerOptions, TcpChannel, TcpOptions};

const KEY_BITS: u32 = 2048;
const DOT_LEN: usize = 64;
const TRUNC_BITS: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    SecMul,
    SecDot,
    ReluFast,
    TruncStochastic,
    TruncExact,
    PositiveFast,
    PositiveStrict,
    Argmax3,
}

const PROTOS: [Proto; 8] = [
    Proto::SecMul,
    Proto::SecDot,
    Proto::ReluFast,
    Proto::TruncStochastic,
    Proto::TruncExact,
    Proto::PositiveFast,
    Proto::PositiveStrict,
    Proto::Argmax3,
];

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::SecMul => "secmul",
            Proto::SecDot => "secdot_x64",
            Proto::ReluFast => "relu_fast",
            Proto::TruncStochastic => "trunc_stochastic",
            Proto::TruncExact => "trunc_exact_strict",
            Proto::PositiveFast => "compare_fast",
            Proto::PositiveStrict => "compare_strict",
            Proto::Argmax3 => "argmax3_fast",
        }
    }
    /// Batches of one and of 64 values (exact truncation also 8, the size of a hidden layer).
    fn batches(self) -> &'static [usize] {
        match self {
            Proto::TruncExact => &[1, 8, 64],
            _ => &[1, 64],
        }
    }
    fn profile(self) -> Profile {
        match self {
            Proto::TruncExact | Proto::PositiveStrict => Profile::Strict,
            _ => Profile::Fast,
        }
    }
}

/// Encrypted inputs for one batch size.
struct Inputs {
    a: Vec<Ciphertext>,
    b: Vec<Ciphertext>,
    mat: Vec<Ciphertext>,
    vec: Vec<Ciphertext>,
    scores: Vec<Vec<Ciphertext>>,
}

impl Inputs {
    /// Fixed-point-sized random values (products and dot products stay far inside ℓ = 72).
    /// Input preparation only: one randomizer serves all encryptions.
    fn new(pk: &PublicKey, batch: usize, rng: &mut ChaCha20Rng) -> Self {
        let rho = pk.randomizer(rng);
        let mut enc = |n: usize, bound: i64| -> Vec<Ciphertext> {
            (0..n)
                .map(|_| {
                    let v = BigInt::from(rng.gen_range(-bound..bound));
                    pk.encrypt_with_randomizer(&v, &rho).unwrap()
                })
                .collect()
        };
        Inputs {
            a: enc(batch, 1 << 30),
            b: enc(batch, 1 << 30),
            mat: enc(batch * DOT_LEN, 1 << 20),
            vec: enc(DOT_LEN, 1 << 20),
            scores: (0..batch).map(|_| enc(3, 1 << 24)).collect(),
        }
    }
}

/// Runs `proto` once on `batch` values; returns the number of result ciphertexts.
fn run<C: Channel>(proto: Proto, s1: &mut S1<C>, inp: &Inputs, batch: usize) -> usize {
    let a = &inp.a[..batch];
    match proto {
        Proto::SecMul => s1.mul(a, &inp.b[..batch]).unwrap().len(),
        Proto::SecDot => s1
            .mat_vec(&inp.mat[..batch * DOT_LEN], batch, &inp.vec)
            .unwrap()
            .len(),
        Proto::ReluFast => s1.relu(a).unwrap().0.len() * 2,
        Proto::TruncStochastic => s1
            .truncate_with(a, TRUNC_BITS, Truncation::Stochastic)
            .unwrap()
            .len(),
        Proto::TruncExact => s1
            .truncate_with(a, TRUNC_BITS, Truncation::Exact)
            .unwrap()
            .len(),
        Proto::PositiveFast | Proto::PositiveStrict => s1.positive(a).unwrap().len(),
        Proto::Argmax3 => s1.argmax(&inp.scores[..batch]).unwrap().len() * 3,
    }
}

type Chan = Box<dyn Channel + Send>;

/// S2 over memory (one thread per session) and over TCP (one server, sessions sharing the
/// service).
struct Bed {
    pk: PublicKey,
    svc: Arc<S2Service>,
    s2: LoopbackS2,
    memory_s2: Vec<JoinHandle<()>>,
}

impl Bed {
    fn new(sk: SecretKey) -> Self {
        let pk = sk.public_key().clone();
        let svc = Arc::new(S2Service::new(sk, S2Options::without_pool()));
        let s2 = LoopbackS2::tcp(Arc::clone(&svc), ServerOptions::default()).unwrap();
        Bed {
            pk,
            svc,
            s2,
            memory_s2: Vec::new(),
        }
    }

    fn session(&mut self, link: &str, profile: Profile) -> S1<Chan> {
        let chan: Chan = match link {
            "memory" => {
                let (c1, c2) = transport::memory::pair();
                let svc = Arc::clone(&self.svc);
                self.memory_s2.push(std::thread::spawn(move || {
                    svc.serve(c2).expect("S2 session");
                }));
                Box::new(c1)
            }
            _ => Box::new(TcpChannel::connect(self.s2.addr(), TcpOptions::default()).unwrap()),
        };
        let params = SessionParams {
            profile,
            ..SessionParams::default()
        };
        S1::connect(self.pk.clone(), chan, params).unwrap()
    }

    fn shutdown(self) {
        for h in self.memory_s2 {
            h.join().unwrap();
        }
        let summary = self.s2.stop().unwrap();
        assert_eq!((summary.failed, summary.panicked), (0, 0));
    }
}

fn per(v: u64, batch: usize) -> String {
    let x = v as f64 / batch as f64;
    if x >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// One run of every protocol and batch over memory: operation counts, bytes and round trips.
fn cost_table(bed: &mut Bed, inputs: &[(usize, Inputs)]) {
    println!(
        "\n### Cost of one call, {KEY_BITS}-bit key, ℓ = 72, κ = 80 (per value = per input value)\n"
    );
    println!("| protocol | batch | S1 randomizers | S1 full exps | S1 short exps | S1 pack squarings | S1 DGK blindings | garbled AND gates | S2 decryptions | S2 encryptions | S2 DGK encryptions | S2 zero tests | bytes S1→S2 | bytes S2→S1 | bytes/value | rounds | ms (one run) | ms/value |");
    println!(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for profile in [Profile::Fast, Profile::Strict] {
        let mut s1 = bed.session("memory", profile);
        for proto in PROTOS.iter().filter(|p| p.profile() == profile) {
            for &batch in proto.batches() {
                let inp = &inputs.iter().find(|(b, _)| *b >= batch).unwrap().1;
                let s2_before = s1.s2_counts().unwrap();
                let (c0, t0) = (s1.counts(), s1.traffic_snapshot());
                let start = Instant::now();
                run(*proto, &mut s1, inp, batch);
                let ms = start.elapsed().as_secs_f64() * 1e3;
                let (c, t) = (s1.counts().since(&c0), s1.traffic_snapshot().since(&t0));
                let s2: OpCounts = s1.s2_counts().unwrap().since(&s2_before);
                println!(
                    "| {} | {batch} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {ms:.0} | {:.1} |",
                    proto.name(),
                    c.randomizers,
                    c.full_exps,
                    c.short_exps,
                    c.pack_squarings,
                    c.dgk_blinds,
                    c.gates,
                    s2.decryptions,
                    s2.encryptions,
                    s2.dgk_encryptions,
                    s2.zero_tests,
                    t.bytes_sent,
                    t.bytes_received,
                    per(t.bytes_sent + t.bytes_received, batch),
                    t.round_trips,
                    ms / batch as f64,
                );
            }
        }
        s1.close().unwrap();
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let benchmarking = args.iter().any(|a| a == "--bench");

    let start = Instant::now();
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(KEY_BITS));
    let sk = SecretKey::generate(KEY_BITS, &mut rng).unwrap();
    eprintln!(
        "{KEY_BITS}-bit key in {:.1} s, backend {}",
        start.elapsed().as_secs_f64(),
        paillier::arith::BACKEND
    );
    let mut bed = Bed::new(sk.clone());
    let inputs: Vec<(usize, Inputs)> = [8usize, 64]
        .iter()
        .map(|&b| (b, Inputs::new(&bed.pk, b, &mut rng)))
        .collect();

    if benchmarking && filter.is_none_or(|f| f == "cost_table") {
        cost_table(&mut bed, &inputs);
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for link in ["memory", "tcp"] {
        let mut fast = bed.session(link, Profile::Fast);
        let mut strict = bed.session(link, Profile::Strict);
        for proto in PROTOS {
            let mut g = c.benchmark_group(proto.name());
            g.sampling_mode(SamplingMode::Flat);
            for &batch in proto.batches() {
                let inp = &inputs.iter().find(|(b, _)| *b >= batch).unwrap().1;
                let s1 = match proto.profile() {
                    Profile::Fast => &mut fast,
                    Profile::Strict => &mut strict,
                };
                g.throughput(Throughput::Elements(batch as u64));
                g.bench_with_input(BenchmarkId::new(link, batch), &batch, |b, &batch| {
                    b.iter(|| black_box(run(proto, s1, inp, batch)))
                });
            }
            g.finish();
        }
        fast.close().unwrap();
        strict.close().unwrap();
    }
    bed.shutdown();
    c.final_summary();
}
