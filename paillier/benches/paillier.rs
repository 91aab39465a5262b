//! Paillier micro-benchmarks at 2048- and 3072-bit moduli.
//!
//! `cargo bench -p paillier --features gmp` (GMP) or `cargo bench -p paillier` (num-bigint).
//! Benchmark ids are `p<bits>/<operation>` and `keygen/<bits>`; pass a regex to select, e.g.
//! `cargo bench -p paillier -- 'p2048/(raw|enc|dec)'`. `raw_modexp` is the reference cost
//! r^n mod n^2 computed directly with the backend's modular exponentiation.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use paillier::arith::{Nat, NatOps, BACKEND};
use paillier::Encrypt;
use paillier::{BigInt, BigUint, Ciphertext, Randomizer, SecretKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

const SIZES: [u32; 2] = [2048, 3072];

/// Everything one key size needs, built lazily so that filtered runs only pay for what they use.
struct Fixture {
    sk: SecretKey,
    m: BigInt,
    c1: Ciphertext,
    c2: Ciphertext,
    rho: Randomizer,
    r: Nat,
    n: Nat,
    n2: Nat,
    k64: BigInt,
    k64_neg: BigInt,
    k2048: BigInt,
}

fn fixture(bits: u32) -> &'static Fixture {
    static F: [OnceLock<Fixture>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = SIZES
        .iter()
        .position(|&b| b == bits)
        .expect("a benchmarked size");
    F[slot].get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(bits));
        let sk = SecretKey::generate(bits, &mut rng).expect("key generation");
        let pk = sk.public_key();
        // A full-size plaintext near the top of the range.
        let m = pk.max_plaintext() - BigInt::from(rng.gen::<u64>());
        let c1 = pk.encrypt(&m, &mut rng).unwrap();
        let c2 = pk.encrypt(&-m.clone(), &mut rng).unwrap();
        let rho = pk.randomizer(&mut rng);
        let n = Nat::from_biguint(&pk.n());
        let n2 = n.mul(&n);
        let r = Nat::random_below(&n, &mut rng);
        let k64 = BigInt::from(rng.gen::<u64>() | (1 << 63));
        let k64_neg = -k64.clone();
        let mut kb = [0u8; 256];
        rng.fill(&mut kb[..]);
        kb[0] |= 0x80;
        let k2048 = BigInt::from(BigUint::from_bytes_be(&kb));
        Fixture {
            sk,
            m,
            c1,
            c2,
            rho,
            r,
            n,
            n2,
            k64,
            k64_neg,
            k2048,
        }
    })
}

fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("keygen");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(8));
    for bits in SIZES {
        let mut rng = ChaCha20Rng::seed_from_u64(1000 + u64::from(bits));
        g.bench_with_input(BenchmarkId::from_parameter(bits), &bits, |b, &bits| {
            b.iter(|| SecretKey::generate(bits, &mut rng).unwrap())
        });
    }
    g.finish();
}

fn operations(c: &mut Criterion) {
    eprintln!("paillier benchmarks, backend: {BACKEND}");
    for bits in SIZES {
        let mut g = c.benchmark_group(format!("p{bits}"));
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let mut rng = ChaCha20Rng::seed_from_u64(7 + u64::from(bits));

        g.bench_function("raw_modexp", |b| {
            let f = fixture(bits);
            b.iter(|| black_box(&f.r).pow_mod(&f.n, &f.n2))
        });
        g.bench_function("encrypt_public", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.encrypt(black_box(&f.m), &mut rng).unwrap())
        });
        g.bench_function("encrypt_crt", |b| {
            let f = fixture(bits);
            b.iter(|| f.sk.encrypt(black_box(&f.m), &mut rng).unwrap())
        });
        // Encryption randomness: fixed-base h_s^r (what encrypt uses) against the textbook r^n.
        g.bench_function("randomizer_fixed_public", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.randomizer(&mut rng))
        });
        g.bench_function("randomizer_fixed_crt", |b| {
            let f = fixture(bits);
            b.iter(|| f.sk.randomizer(&mut rng))
        });
        g.bench_function("randomizer_full_public", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.randomizer_full(&mut rng))
        });
        g.bench_function("randomizer_full_crt", |b| {
            let f = fixture(bits);
            b.iter(|| f.sk.randomizer_full(&mut rng))
        });
        g.bench_function("encrypt_precomputed", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.encrypt_with_randomizer(black_box(&f.m), &f.rho).unwrap())
        });
        g.bench_function("decrypt_crt", |b| {
            let f = fixture(bits);
            b.iter(|| f.sk.decrypt(black_box(&f.c1)).unwrap())
        });
        g.bench_function("decrypt_textbook", |b| {
            let f = fixture(bits);
            b.iter(|| f.sk.decrypt_raw_without_crt(black_box(&f.c1)).unwrap())
        });
        g.bench_function("add", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.add(black_box(&f.c1), &f.c2))
        });
        g.bench_function("mul_64", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.mul_plain(black_box(&f.c1), &f.k64).unwrap())
        });
        g.bench_function("mul_neg64", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.mul_plain(black_box(&f.c1), &f.k64_neg).unwrap())
        });
        g.bench_function("mul_2048", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.mul_plain(black_box(&f.c1), &f.k2048).unwrap())
        });
        g.bench_function("rerandomize", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.rerandomize(black_box(&f.c1), &mut rng))
        });
        g.bench_function("rerandomize_crt", |b| {
            let f = fixture(bits);
            let pk = f.sk.public_key();
            b.iter(|| pk.rerandomize_with(black_box(&f.c1), &f.sk.randomizer(&mut rng)))
        });
        g.finish();
    }
}

/// S1's unblinding paths at 2048 bits, 152-bit blinds (ℓ + κ = 72 + 80): a combination of two
/// terms by exponentiations and with comb tables (`powers`, built once per ciphertext), the
/// tables themselves, and a combination of 16 terms by Straus (tables per term) and by two joint
/// tables of 8 (`joint_powers`, built once per group).
fn s1_paths(c: &mut Criterion) {
    let mut g = c.benchmark_group("s1_2048");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let f = fixture(2048);
    let pk = f.sk.public_key();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let cts: Vec<Ciphertext> = (0..16).map(|i| pk.encrypt_i64(i, &mut rng)).collect();
    let blind = |rng: &mut ChaCha20Rng| -> BigInt {
        let mut b = [0u8; 19];
        rng.fill(&mut b[..]);
        -BigInt::from_bytes_be(num_bigint::Sign::Plus, &b)
    };
    let ks: Vec<BigInt> = (0..16).map(|_| blind(&mut rng)).collect();
    let zero = BigInt::from(0);
    g.bench_function("lincomb_2_exp", |b| {
        let t = [(&cts[0], &ks[0]), (&cts[1], &ks[1])];
        b.iter(|| pk.linear_combination(black_box(&t), &zero).unwrap())
    });
    let powers: Vec<_> = cts[..2].iter().map(|c| pk.powers(c, 152)).collect();
    g.bench_function("lincomb_2_comb", |b| {
        let t = [(&powers[0], &ks[0]), (&powers[1], &ks[1])];
        b.iter(|| {
            pk.linear_combination_with(black_box(&t), &[], &zero)
                .unwrap()
        })
    });
    g.bench_function("powers_152", |b| {
        b.iter(|| pk.powers(black_box(&cts[0]), 152))
    });
    g.bench_function("lincomb_16_straus", |b| {
        let t: Vec<_> = cts.iter().zip(&ks).collect();
        b.iter(|| pk.linear_combination(black_box(&t), &zero).unwrap())
    });
    let refs: Vec<&Ciphertext> = cts.iter().collect();
    g.bench_function("joint_powers_8", |b| {
        b.iter(|| pk.joint_powers(black_box(&refs[..8])).unwrap())
    });
    let joint = [
        pk.joint_powers(&refs[..8]).unwrap(),
        pk.joint_powers(&refs[8..]).unwrap(),
    ];
    g.bench_function("lincomb_16_joint", |b| {
        let t = [(&joint[0], &ks[..8]), (&joint[1], &ks[8..])];
        b.iter(|| pk.linear_combination_joint(black_box(&t), &zero).unwrap())
    });
    g.bench_function("pack_12x162", |b| {
        b.iter(|| pk.pack(black_box(&refs[..12]), 162))
    });
    g.finish();
}

criterion_group!(benches, operations, keygen, s1_paths);
criterion_main!(benches);
