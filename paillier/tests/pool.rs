//! `RandomizerPool`: values taken from the pool encrypt correctly, and dropping the pool stops and
//! joins its worker threads. A single test, so that the thread count of this process is not
//! disturbed by other tests running in parallel.

use num_bigint::{BigInt, BigUint};
use paillier::{Encrypt, RandomizerPool, SecretKey};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::time::{Duration, Instant};

/// Number of threads of this process (Linux only).
fn threads() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// Waits up to 2 s for the thread count to reach `want`.
fn wait_threads(want: usize) -> usize {
    let start = Instant::now();
    loop {
        let t = threads().unwrap();
        if t == want || start.elapsed() > Duration::from_secs(2) {
            return t;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Textbook decryption with num-bigint (independent of the crate).
fn ref_decrypt(p: &BigUint, q: &BigUint, c: &BigUint) -> BigUint {
    let n = p * q;
    let n2 = &n * &n;
    let lambda = (p - 1u32) * (q - 1u32);
    let l = (c.modpow(&lambda, &n2) - 1u32) / &n;
    let mu = (&lambda % &n).modinv(&n).unwrap();
    l * mu % &n
}

#[test]
fn pool_values_encrypt_correctly_and_drop_joins_workers() {
    let sk =
        SecretKey::generate_insecure_for_tests(512, &mut ChaCha20Rng::seed_from_u64(42)).unwrap();
    let pk = sk.public_key();
    let base = threads();

    // A public-key pool and a key holder's pool are different types; both fill the same way.
    check(&sk, RandomizerPool::new(pk, 4, 2), "public", 2, base);
    check(&sk, RandomizerPool::new(&sk, 4, 3), "secret", 3, base);

    // No workers: every take computes inline and counts a miss.
    let pool = RandomizerPool::new(pk, 1, 0);
    for i in 0..3 {
        let rho = pool.take();
        let c = pk.encrypt_with_randomizer(&BigInt::from(i), &rho).unwrap();
        assert_eq!(sk.decrypt_i64(&c).unwrap(), i);
    }
    assert_eq!(pool.misses(), 3);
    if let Some(base) = base {
        assert_eq!(threads(), Some(base));
    }
}

/// Takes randomizers from `pool` (filled by `workers` threads), checks the ciphertexts made with
/// them against textbook decryption, and that dropping the pool joins its workers.
fn check<K: Encrypt>(
    sk: &SecretKey,
    pool: RandomizerPool<K>,
    name: &str,
    workers: usize,
    base: Option<usize>,
) {
    let pk = sk.public_key();
    let (p, q) = sk.primes();
    let n = pk.n();
    if let Some(base) = base {
        assert_eq!(
            wait_threads(base + workers),
            base + workers,
            "{name}: workers started"
        );
    }
    // Let the queue fill, then take more than it holds.
    std::thread::sleep(Duration::from_millis(100));
    let mut seen = Vec::new();
    for i in 0..10i64 {
        let m = BigInt::from(i * 1_000_003 - 5_000_000);
        let rho = pool.take();
        let c = pk.encrypt_with_randomizer(&m, &rho).unwrap();
        let want = if i * 1_000_003 - 5_000_000 < 0 {
            &n - BigUint::try_from(-&m).unwrap()
        } else {
            BigUint::try_from(&m).unwrap()
        };
        assert_eq!(ref_decrypt(&p, &q, &c.to_biguint()), want, "{name}");
        assert_eq!(sk.decrypt(&c).unwrap(), m, "{name}");
        let r2 = pk.rerandomize_with(&c, &pool.take());
        assert_ne!(r2, c);
        assert_eq!(sk.decrypt(&r2).unwrap(), m, "{name}");
        seen.push(c);
    }
    let mut dedup = seen.clone();
    dedup.sort_by_key(|c| c.to_biguint());
    dedup.dedup();
    assert_eq!(
        dedup.len(),
        seen.len(),
        "{name}: fresh randomness every take"
    );

    let t = Instant::now();
    drop(pool);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "{name}: drop is prompt"
    );
    if let Some(base) = base {
        assert_eq!(wait_threads(base), base, "{name}: workers joined");
    }
}
