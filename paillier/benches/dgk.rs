//! DGK micro-benchmarks at a 2048-bit modulus with t = 160 (the strict profile's comparisons).
//!
//! `cargo bench -p paillier --features gmp --bench dgk`. Ids are `dgk2048/<operation>`:
//! `keygen` (u = 227), `enc_public` (g^m·h^r, r of 2.5t bits, table), `enc_crt` (the key
//! holder's h^r by CRT, exactly uniform), `blind` (c^ρ·h^r, ρ ∈ Z_u*: what S1 does per bit),
//! `zero_test` (c^v_p mod p: what S2 does per bit), `decrypt` (baby-step giant-step).

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use paillier::dgk::{SecretKey, DEFAULT_T};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

fn key() -> &'static SecretKey {
    static K: OnceLock<SecretKey> = OnceLock::new();
    K.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        SecretKey::generate(2048, DEFAULT_T, 227, &mut rng).expect("key generation")
    })
}

fn operations(c: &mut Criterion) {
    let sk = key();
    let pk = sk.public_key();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let ct = pk.encrypt(5, &mut rng);
    // Warm the tables.
    let _ = sk.encrypt(1, &mut rng);
    let _ = sk.decrypt(&ct);
    let mut g = c.benchmark_group("dgk2048");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("enc_public", |b| {
        b.iter(|| pk.encrypt(black_box(1), &mut rng))
    });
    g.bench_function("enc_crt", |b| b.iter(|| sk.encrypt(black_box(1), &mut rng)));
    g.bench_function("blind", |b| b.iter(|| pk.blind(black_box(&ct), &mut rng)));
    g.bench_function("zero_test", |b| {
        b.iter(|| sk.is_zero(black_box(&ct)).unwrap())
    });
    g.bench_function("decrypt", |b| {
        b.iter(|| sk.decrypt(black_box(&ct)).unwrap())
    });
    g.bench_function("add", |b| b.iter(|| pk.add(black_box(&ct), &ct)));
    g.bench_function("mul_plain_3", |b| {
        b.iter(|| pk.mul_plain(black_box(&ct), 3))
    });
    g.bench_function("mul_plain_minus_3", |b| {
        b.iter(|| pk.mul_plain(black_box(&ct), -3))
    });
    g.bench_function("neg", |b| b.iter(|| pk.neg(black_box(&ct)).unwrap()));
    g.finish();
}

fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("dgk2048");
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    g.bench_function("keygen", |b| {
        b.iter(|| SecretKey::generate(2048, DEFAULT_T, 227, &mut rng).unwrap())
    });
    g.finish();
}

criterion_group!(benches, operations, keygen);
criterion_main!(benches);
