//! Property tests for the `paillier` crate.
//!
//! Every property compares the crate against an independent reference written here with plain
//! num-bigint arithmetic (textbook Paillier encryption and decryption, signed reduction mod n),
//! never against the function under test itself. Keys are generated once per test binary from a
//! seeded ChaCha20 CSPRNG, so failures are reproducible.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, ToPrimitive, Zero};
use paillier::format::{self, FileError, FileKind, CIPHERTEXTS, PUBLIC_KEY, SECRET_KEY};
use paillier::Encrypt;
use paillier::{Ciphertext, Error, FixedPoint, PublicKey, SecretKey};
use proptest::collection::vec;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::sync::OnceLock;
use std::time::Instant;

// ---------------------------------------------------------------------------------------------
// Keys, generated once.

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The main test key: 512-bit n.
fn sk() -> &'static SecretKey {
    static K: OnceLock<SecretKey> = OnceLock::new();
    K.get_or_init(|| SecretKey::generate_insecure_for_tests(512, &mut rng(0x5eed_0512)).unwrap())
}

fn pk() -> &'static PublicKey {
    sk().public_key()
}

/// A second, smaller key (256-bit n) for mismatch tests.
fn sk_small() -> &'static SecretKey {
    static K: OnceLock<SecretKey> = OnceLock::new();
    K.get_or_init(|| SecretKey::generate_insecure_for_tests(256, &mut rng(0x5eed_0256)).unwrap())
}

/// A real-size key, generated through the secure entry point.
fn sk2048() -> &'static SecretKey {
    static K: OnceLock<SecretKey> = OnceLock::new();
    K.get_or_init(|| {
        let t = Instant::now();
        let sk = SecretKey::generate(2048, &mut rng(0x5eed_2048)).unwrap();
        eprintln!(
            "2048-bit key generation ({}): {:.2?}",
            paillier::arith::BACKEND,
            t.elapsed()
        );
        sk
    })
}

// ---------------------------------------------------------------------------------------------
// Independent reference arithmetic (num-bigint only).

fn int(u: &BigUint) -> BigInt {
    BigInt::from_biguint(Sign::Plus, u.clone())
}

/// x mod n read as a signed integer in [-(n-1)/2, (n-1)/2] (n odd).
fn ref_signed(x: &BigInt, n: &BigUint) -> BigInt {
    let n = int(n);
    let r = x.mod_floor(&n);
    if &r * 2 > n {
        r - n
    } else {
        r
    }
}

/// x mod n in [0, n).
fn ref_mod(x: &BigInt, n: &BigUint) -> BigUint {
    x.mod_floor(&int(n)).to_biguint().unwrap()
}

/// Textbook encryption with g = n + 1: (1 + m n) r^n mod n^2.
fn ref_encrypt(n: &BigUint, m: &BigUint, r: &BigUint) -> BigUint {
    let n2 = n * n;
    ((BigUint::one() + m * n) % &n2) * r.modpow(n, &n2) % &n2
}

/// Textbook decryption: L(c^λ mod n^2) · μ mod n with λ = lcm(p-1, q-1), μ = L(g^λ mod n^2)^-1.
fn ref_decrypt(p: &BigUint, q: &BigUint, c: &BigUint) -> BigUint {
    let n = p * q;
    let n2 = &n * &n;
    let lambda = (p - 1u32).lcm(&(q - 1u32));
    let l = |x: BigUint| (x - 1u32) / &n;
    let g = &n + 1u32;
    let mu = l(g.modpow(&lambda, &n2)).modinv(&n).unwrap();
    l(c.modpow(&lambda, &n2)) * mu % &n
}

fn half(pk: &PublicKey) -> BigInt {
    // (n - 1) / 2 from n alone.
    (int(&pk.n()) - 1) / 2
}

fn dec(sk: &SecretKey, c: &Ciphertext) -> BigInt {
    // Decrypt through the reference, then read as signed through the reference.
    let (p, q) = sk.primes();
    let raw = ref_decrypt(&p, &q, &c.to_biguint());
    ref_signed(&int(&raw), &sk.public_key().n())
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn big_from(bytes: &[u8], neg: bool) -> BigInt {
    let m = int(&BigUint::from_bytes_be(bytes));
    if neg {
        -m
    } else {
        m
    }
}

/// A signed plaintext in [-(n-1)/2, (n-1)/2] for the 512-bit key, edges included.
fn plaintext() -> impl Strategy<Value = BigInt> {
    prop_oneof![
        4 => (vec(any::<u8>(), 0..=64), any::<bool>()).prop_map(|(b, neg)| {
            let m = big_from(&b, false) % (half(pk()) + 1u32);
            if neg { -m } else { m }
        }),
        2 => any::<i64>().prop_map(BigInt::from),
        1 => (0u32..3, any::<bool>()).prop_map(|(d, neg)| {
            let m = half(pk()) - d;
            if neg { -m } else { m }
        }),
        1 => (-2i64..=2).prop_map(BigInt::from),
    ]
}

/// A signed scalar of any size: small, about |n|, or larger than n (reduced mod n by the crate).
fn scalar() -> impl Strategy<Value = BigInt> {
    prop_oneof![
        2 => any::<i64>().prop_map(BigInt::from),
        1 => (-3i64..=3).prop_map(BigInt::from),
        2 => (vec(any::<u8>(), 0..=64), any::<bool>()).prop_map(|(b, neg)| big_from(&b, neg)),
        1 => (vec(any::<u8>(), 65..=130), any::<bool>()).prop_map(|(b, neg)| big_from(&b, neg)),
        1 => (-2i64..=2, any::<bool>()).prop_map(|(d, neg)| {
            let k = int(&pk().n()) + d;
            if neg { -k } else { k }
        }),
    ]
}

fn seed() -> impl Strategy<Value = u64> {
    any::<u64>()
}

// ---------------------------------------------------------------------------------------------
// Encryption and decryption.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn decrypt_inverts_encrypt(m in plaintext(), s in seed()) {
        let (sk, pk) = (sk(), pk());
        let mut rng = rng(s);
        let n = pk.n();
        for c in [pk.encrypt(&m, &mut rng).unwrap(), sk.encrypt(&m, &mut rng).unwrap()] {
            pk.validate(&c).unwrap();
            prop_assert_eq!(dec(sk, &c), m.clone(), "reference decryption");
            prop_assert_eq!(sk.decrypt(&c).unwrap(), m.clone());
            prop_assert_eq!(sk.decrypt_raw(&c).unwrap(), ref_mod(&m, &n));
            match m.to_i64() {
                Some(v) => prop_assert_eq!(sk.decrypt_i64(&c).unwrap(), v),
                None => prop_assert_eq!(sk.decrypt_i64(&c), Err(Error::IntegerOverflow("i64"))),
            }
        }
        prop_assert_eq!(pk.encode_signed(&m).unwrap(), ref_mod(&m, &n));
        prop_assert_eq!(pk.decode_signed(&ref_mod(&m, &n)), m);
    }

    #[test]
    fn out_of_range_plaintexts_are_refused(b in vec(any::<u8>(), 0..=80), neg in any::<bool>()) {
        let pk = pk();
        let m = half(pk) + 1u32 + big_from(&b, false);
        let m = if neg { -m } else { m };
        let mut rng = rng(1);
        prop_assert_eq!(pk.encrypt(&m, &mut rng), Err(Error::PlaintextOutOfRange));
        prop_assert_eq!(sk().encrypt(&m, &mut rng), Err(Error::PlaintextOutOfRange));
        prop_assert_eq!(pk.encode_signed(&m), Err(Error::PlaintextOutOfRange));
        prop_assert_eq!(pk.trivial(&m), Err(Error::PlaintextOutOfRange));
        let c = pk.encrypt_i64(1, &mut rng);
        prop_assert_eq!(pk.add_plain(&c, &m), Err(Error::PlaintextOutOfRange));
        prop_assert_eq!(pk.linear_combination(&[], &m), Err(Error::PlaintextOutOfRange));
        let rho = pk.randomizer(&mut rng);
        prop_assert_eq!(pk.encrypt_with_randomizer(&m, &rho), Err(Error::PlaintextOutOfRange));
    }

    #[test]
    fn crt_and_textbook_decryption_agree(b in vec(any::<u8>(), 1..=128)) {
        // Any c in [1, n^2): random elements are units with overwhelming probability.
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let c = BigUint::from_bytes_be(&b) % (&n * &n);
        prop_assume!(!c.is_zero());
        let ct = Ciphertext::from_biguint(&c);
        let (p, q) = sk.primes();
        let want = ref_decrypt(&p, &q, &c);
        prop_assert_eq!(sk.decrypt_raw(&ct).unwrap(), want.clone());
        prop_assert_eq!(sk.decrypt_raw_without_crt(&ct).unwrap(), want);
    }

    #[test]
    fn crt_encryption_equals_public_encryption(mb in vec(any::<u8>(), 0..=64),
                                               rb in vec(any::<u8>(), 1..=64)) {
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let m = BigUint::from_bytes_be(&mb) % &n;
        let r = BigUint::from_bytes_be(&rb) % &n;
        prop_assume!(!r.is_zero());
        let want = ref_encrypt(&n, &m, &r);
        prop_assert_eq!(pk.encrypt_with(&m, &r).unwrap().to_biguint(), want.clone());
        prop_assert_eq!(sk.encrypt_with(&m, &r).unwrap().to_biguint(), want.clone());
        let rho = pk.randomizer_from(&r).unwrap();
        let signed = ref_signed(&int(&m), &n);
        prop_assert_eq!(pk.encrypt_with_randomizer(&signed, &rho).unwrap().to_biguint(), want);
    }

    #[test]
    fn precomputed_randomness_and_rerandomisation(m in plaintext(), s in seed()) {
        let (sk, pk) = (sk(), pk());
        let mut rng = rng(s);
        for rho in [pk.randomizer(&mut rng), sk.randomizer(&mut rng)] {
            let c = pk.encrypt_with_randomizer(&m, &rho).unwrap();
            prop_assert_eq!(dec(sk, &c), m.clone());
            let c2 = pk.rerandomize(&c, &mut rng);
            prop_assert_ne!(&c2, &c);
            pk.validate(&c2).unwrap();
            prop_assert_eq!(dec(sk, &c2), m.clone());
            let c3 = pk.rerandomize_with(&c2, &sk.randomizer(&mut rng));
            prop_assert_ne!(&c3, &c2);
            prop_assert_eq!(dec(sk, &c3), m.clone());
        }
        // The CRT randomizer is r^n mod n^2 like the public one: E(0) with it is an n-th residue.
        let c0 = pk.encrypt_with_randomizer(&BigInt::zero(), &sk.randomizer(&mut rng)).unwrap();
        prop_assert_eq!(dec(sk, &c0), BigInt::zero());
        // trivial() is the deterministic encoding (1 + m n) mod n^2.
        let n = pk.n();
        let t = pk.trivial(&m).unwrap().to_biguint();
        prop_assert_eq!(t, (BigUint::one() + ref_mod(&m, &n) * &n) % (&n * &n));
    }
}

#[test]
fn plaintext_range_edges() {
    let (sk, pk) = (sk(), pk());
    let n = pk.n();
    let h = half(pk);
    assert_eq!(pk.max_plaintext(), h);
    let mut rng = rng(7);
    for m in [h.clone(), -h.clone(), h.clone() - 1u32, -h.clone() + 1u32] {
        let c = pk.encrypt(&m, &mut rng).unwrap();
        assert_eq!(sk.decrypt(&c).unwrap(), m);
        assert_eq!(dec(sk, &c), m);
    }
    // -(n-1)/2 encodes as (n+1)/2, the first value read as negative.
    assert_eq!(pk.encode_signed(&-h.clone()).unwrap(), (&n + 1u32) / 2u32);
    assert_eq!(pk.decode_signed(&((&n + 1u32) / 2u32)), -h.clone());
    assert_eq!(pk.decode_signed(&((&n - 1u32) / 2u32)), h.clone());
    assert_eq!(pk.decode_signed(&(&n - 1u32)), BigInt::from(-1));
    for m in [h.clone() + 1u32, -h.clone() - 1u32, int(&n), -int(&n)] {
        assert_eq!(pk.encrypt(&m, &mut rng), Err(Error::PlaintextOutOfRange));
        assert_eq!(pk.encode_signed(&m), Err(Error::PlaintextOutOfRange));
    }
    // Raw encryption takes [0, n).
    let r = BigUint::from(12345u32);
    assert!(pk.encrypt_with(&(&n - 1u32), &r).is_ok());
    assert_eq!(pk.encrypt_with(&n, &r), Err(Error::PlaintextOutOfRange));
    assert_eq!(sk.encrypt_with(&n, &r), Err(Error::PlaintextOutOfRange));
}

#[test]
fn decode_signed_reduces_mod_n() {
    // Values >= n are read modulo n (the same on both backends, never a panic).
    let pk = pk();
    let n = pk.n();
    for m in [n.clone(), &n + 1u32, &n * 3u32 - 1u32, &n * &n + 5u32] {
        assert_eq!(pk.decode_signed(&m), ref_signed(&int(&m), &n));
    }
}

#[test]
fn invalid_randomness_is_refused() {
    let (sk, pk) = (sk(), pk());
    let n = pk.n();
    let (p, q) = sk.primes();
    let m = BigUint::from(5u32);
    for r in [
        BigUint::zero(),
        n.clone(),
        &n + 1u32,
        p.clone(),
        q.clone(),
        &p * 2u32,
    ] {
        assert_eq!(
            pk.encrypt_with(&m, &r),
            Err(Error::InvalidRandomness),
            "public, r = {r}"
        );
        assert_eq!(
            sk.encrypt_with(&m, &r),
            Err(Error::InvalidRandomness),
            "CRT, r = {r}"
        );
        assert_eq!(
            pk.randomizer_from(&r).map(|_| ()),
            Err(Error::InvalidRandomness)
        );
    }
}

#[test]
fn invalid_ciphertexts_are_refused_without_panic() {
    let (sk, pk) = (sk(), pk());
    let n = pk.n();
    let n2 = &n * &n;
    for c in [BigUint::zero(), n2.clone(), &n2 + 1u32, &n2 * 7u32] {
        let c = Ciphertext::from_biguint(&c);
        assert_eq!(pk.validate(&c), Err(Error::InvalidCiphertext));
        assert_eq!(sk.decrypt(&c), Err(Error::InvalidCiphertext));
        assert_eq!(sk.decrypt_raw(&c), Err(Error::InvalidCiphertext));
        assert_eq!(
            sk.decrypt_raw_without_crt(&c),
            Err(Error::InvalidCiphertext)
        );
    }
    // Non-units pass the cheap range check; decryption must still not panic, and negation
    // (an inversion) must report them.
    let (p, q) = sk.primes();
    for c in [p.clone(), q.clone(), n.clone(), &p * &p, &n * 2u32] {
        let c = Ciphertext::from_biguint(&c);
        let _ = sk.decrypt(&c);
        let _ = sk.decrypt_raw_without_crt(&c);
        assert_eq!(pk.neg(&c), Err(Error::InvalidCiphertext));
        let good = pk.encrypt_i64(3, &mut rng(3));
        assert_eq!(pk.sub(&good, &c), Err(Error::InvalidCiphertext));
    }
}

#[test]
fn ciphertext_byte_conversions() {
    let pk = pk();
    let c = pk.encrypt_i64(-42, &mut rng(11));
    assert_eq!(Ciphertext::from_bytes_be(&c.to_bytes_be()), c);
    assert_eq!(
        BigUint::from_bytes_be(&c.to_bytes_be()),
        c.to_biguint(),
        "big-endian bytes"
    );
    assert_eq!(Ciphertext::from_biguint(&c.to_biguint()), c);
}

// ---------------------------------------------------------------------------------------------
// Homomorphic operations.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn additive_homomorphism(a in plaintext(), b in plaintext(), k in plaintext(), s in seed()) {
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let mut rng = rng(s);
        let ca = pk.encrypt(&a, &mut rng).unwrap();
        let cb = pk.encrypt(&b, &mut rng).unwrap();
        prop_assert_eq!(dec(sk, &pk.add(&ca, &cb)), ref_signed(&(&a + &b), &n));
        prop_assert_eq!(dec(sk, &pk.sub(&ca, &cb).unwrap()), ref_signed(&(&a - &b), &n));
        prop_assert_eq!(dec(sk, &pk.neg(&ca).unwrap()), ref_signed(&-&a, &n));
        prop_assert_eq!(dec(sk, &pk.add_plain(&ca, &k).unwrap()), ref_signed(&(&a + &k), &n));
        prop_assert_eq!(dec(sk, &pk.add(&ca, &pk.trivial(&k).unwrap())), ref_signed(&(&a + &k), &n));
        // The crate's own decryption agrees with the reference on the results.
        prop_assert_eq!(sk.decrypt(&pk.sub(&ca, &cb).unwrap()).unwrap(), ref_signed(&(&a - &b), &n));
    }

    /// Many terms with short signed exponents take the multi-exponentiation path.
    #[test]
    fn linear_combination_many_short_terms(
        terms in vec((any::<i64>(), any::<i128>()), 4..40),
        shift in 0u32..190,
        s in seed(),
    ) {
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let mut rng = rng(s);
        let cts: Vec<Ciphertext> = terms.iter().map(|(a, _)| pk.encrypt_i64(*a, &mut rng)).collect();
        let ks: Vec<BigInt> = terms.iter().map(|(_, k)| BigInt::from(*k) << shift).collect();
        let refs: Vec<(&Ciphertext, &BigInt)> = cts.iter().zip(&ks).collect();
        let got = pk.linear_combination(&refs, &BigInt::from(7)).unwrap();
        let want = terms.iter().zip(&ks).fold(BigInt::from(7), |acc, ((a, _), k)| acc + BigInt::from(*a) * k);
        prop_assert_eq!(dec(sk, &got), ref_signed(&want, &n));
    }

    /// Terms given by precomputed powers (4-bit comb tables of `table_bits`) equal the plaintext
    /// sum, whether a scalar fits its table or not, alone or with ordinary terms and any signs.
    #[test]
    fn linear_combination_with_powers(
        tabled in vec((any::<i64>(), any::<i128>(), 0u32..100), 0..6),
        plain in vec((any::<i64>(), any::<i128>()), 0..6),
        table_bits in 1u32..200,
        s in seed(),
    ) {
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let mut rng = rng(s);
        let tc: Vec<Ciphertext> = tabled.iter().map(|(a, _, _)| pk.encrypt_i64(*a, &mut rng)).collect();
        let powers: Vec<_> = tc.iter().map(|c| pk.powers(c, table_bits)).collect();
        let tk: Vec<BigInt> = tabled.iter().map(|(_, k, sh)| BigInt::from(*k) << sh).collect();
        let pc: Vec<Ciphertext> = plain.iter().map(|(a, _)| pk.encrypt_i64(*a, &mut rng)).collect();
        let pk_: Vec<BigInt> = plain.iter().map(|(_, k)| BigInt::from(*k)).collect();
        let with: Vec<_> = powers.iter().zip(&tk).collect();
        let terms: Vec<_> = pc.iter().zip(&pk_).collect();
        let got = pk.linear_combination_with(&with, &terms, &BigInt::from(-3)).unwrap();
        let want = tabled.iter().zip(&tk).map(|((a, _, _), k)| BigInt::from(*a) * k)
            .chain(plain.iter().zip(&pk_).map(|((a, _), k)| BigInt::from(*a) * k))
            .fold(BigInt::from(-3), |acc, t| acc + t);
        prop_assert_eq!(dec(sk, &got), ref_signed(&want, &n));
    }

    /// Groups of up to 8 ciphertexts with joint tables, scalars of any sign and size: the plaintext
    /// sum; a wrong number of scalars is refused.
    #[test]
    fn linear_combination_joint_groups(
        groups in vec(vec((any::<i64>(), any::<i128>(), 0u32..120), 0..=8), 0..4),
        constant in any::<i64>(),
        s in seed(),
    ) {
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let mut rng = rng(s);
        let cts: Vec<Vec<Ciphertext>> = groups
            .iter()
            .map(|g| g.iter().map(|(a, _, _)| pk.encrypt_i64(*a, &mut rng)).collect())
            .collect();
        let tables: Vec<_> = cts
            .iter()
            .map(|g| pk.joint_powers(&g.iter().collect::<Vec<_>>()).unwrap())
            .collect();
        let scalars: Vec<Vec<BigInt>> = groups
            .iter()
            .map(|g| g.iter().map(|(_, k, sh)| BigInt::from(*k) << sh).collect())
            .collect();
        let args: Vec<_> = tables.iter().zip(&scalars).map(|(t, k)| (t, &k[..])).collect();
        let got = pk.linear_combination_joint(&args, &BigInt::from(constant)).unwrap();
        let want = groups.iter().zip(&scalars).flat_map(|(g, ks)| {
            g.iter().zip(ks).map(|((a, _, _), k)| BigInt::from(*a) * k)
        }).fold(BigInt::from(constant), |acc, t| acc + t);
        prop_assert_eq!(dec(sk, &got), ref_signed(&want, &n));
        if let Some(t) = tables.iter().find(|t| !t.is_empty()) {
            let short = vec![BigInt::from(1); t.len() - 1];
            prop_assert!(matches!(
                pk.linear_combination_joint(&[(t, &short[..])], &BigInt::from(0)),
                Err(Error::InvalidInput(_))
            ));
        }
    }

    #[test]
    fn scalar_homomorphism(a in plaintext(), k in scalar(), small in any::<i64>(), s in seed()) {
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let ca = pk.encrypt(&a, &mut rng(s)).unwrap();
        let got = pk.mul_plain(&ca, &k).unwrap();
        pk.validate(&got).unwrap();
        prop_assert_eq!(dec(sk, &got), ref_signed(&(&a * &k), &n));
        let got = pk.mul_i64(&ca, small).unwrap();
        prop_assert_eq!(dec(sk, &got), ref_signed(&(&a * small), &n));
        prop_assert_eq!(sk.decrypt(&got).unwrap(), ref_signed(&(&a * small), &n));
    }

    #[test]
    fn linear_combination_is_sum_of_terms(
        terms in vec((plaintext(), scalar()), 0..5),
        constant in plaintext(),
        s in seed(),
    ) {
        let (sk, pk) = (sk(), pk());
        let n = pk.n();
        let mut rng = rng(s);
        let cts: Vec<Ciphertext> =
            terms.iter().map(|(a, _)| pk.encrypt(a, &mut rng).unwrap()).collect();
        let refs: Vec<(&Ciphertext, &BigInt)> =
            cts.iter().zip(&terms).map(|(c, (_, k))| (c, k)).collect();
        let got = pk.linear_combination(&refs, &constant).unwrap();
        let want = terms.iter().fold(constant.clone(), |acc, (a, k)| acc + a * k);
        prop_assert_eq!(dec(sk, &got), ref_signed(&want, &n));
        // The same through individual operations.
        let mut acc = pk.trivial(&constant).unwrap();
        for (c, k) in &refs {
            acc = pk.add(&acc, &pk.mul_plain(c, k).unwrap());
        }
        prop_assert_eq!(dec(sk, &acc), ref_signed(&want, &n));
        // sum() of the ciphertexts.
        let total = terms.iter().fold(BigInt::zero(), |acc, (a, _)| acc + a);
        prop_assert_eq!(dec(sk, &pk.sum(&cts)), ref_signed(&total, &n));
    }
}

#[test]
fn scalar_edge_cases() {
    let (sk, pk) = (sk(), pk());
    let n = pk.n();
    let mut rng = rng(21);
    let a = BigInt::from(-987654321i64);
    let ca = pk.encrypt(&a, &mut rng).unwrap();
    let h = half(pk);
    let ks = [
        BigInt::zero(),
        BigInt::one(),
        -BigInt::one(),
        BigInt::from(i64::MIN),
        BigInt::from(i64::MAX),
        h.clone(),
        -h.clone(),
        int(&n),
        -int(&n),
        int(&n) - 1u32,
        -(int(&n) - 1u32),
        int(&(&n * &n)) + 1u32,
        -(int(&(&n * &n)) + 1u32),
        // Magnitudes right at the |n|/2-bit switch of mul_plain.
        BigInt::one() << (pk.bits() / 2 - 1),
        -(BigInt::one() << (pk.bits() / 2 - 1)),
        -(BigInt::one() << (pk.bits() / 2)),
        -(BigInt::one() << (pk.bits() / 2 + 1)),
    ];
    for k in ks {
        let got = pk.mul_plain(&ca, &k).unwrap();
        assert_eq!(dec(sk, &got), ref_signed(&(&a * &k), &n), "k = {k}");
    }
    assert_eq!(dec(sk, &pk.sum(std::iter::empty())), BigInt::zero());
    assert_eq!(
        dec(sk, &pk.linear_combination(&[], &BigInt::from(-5)).unwrap()),
        BigInt::from(-5)
    );
}

// ---------------------------------------------------------------------------------------------
// A 2048-bit key.

#[test]
fn keygen_2048() {
    let t = Instant::now();
    let sk = sk2048();
    eprintln!(
        "keygen_2048 test done in {:.2?} (includes generation if first)",
        t.elapsed()
    );
    let pk = sk.public_key();
    let (p, q) = sk.primes();
    assert_eq!(pk.bits(), 2048);
    assert_eq!(pk.n().bits(), 2048);
    assert_eq!(&p * &q, pk.n());
    assert_ne!(p, q);
    assert_eq!((p.bits(), q.bits()), (1024, 1024));
    assert!(is_probable_prime(&p) && is_probable_prime(&q));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn full_size_key_round_trips(mb in vec(any::<u8>(), 0..=256), neg in any::<bool>(),
                                 kb in vec(any::<u8>(), 200..=256), kneg in any::<bool>(),
                                 s in seed()) {
        let sk = sk2048();
        let pk = sk.public_key();
        let n = pk.n();
        let h = half(pk);
        let m = big_from(&mb, false) % (&h + 1u32);
        let m = if neg { -m } else { m };
        let k = big_from(&kb, kneg);
        let mut rng = rng(s);
        let c = pk.encrypt(&m, &mut rng).unwrap();
        prop_assert_eq!(dec(sk, &c), m.clone());
        prop_assert_eq!(sk.decrypt(&c).unwrap(), m.clone());
        let c_crt = sk.encrypt(&m, &mut rng).unwrap();
        prop_assert_eq!(sk.decrypt_raw(&c_crt).unwrap(), sk.decrypt_raw_without_crt(&c_crt).unwrap());
        prop_assert_eq!(sk.decrypt(&c_crt).unwrap(), m.clone());
        let ck = pk.mul_plain(&c, &k).unwrap();
        prop_assert_eq!(sk.decrypt(&ck).unwrap(), ref_signed(&(&m * &k), &n));
        for e in [h.clone(), -h.clone()] {
            prop_assert_eq!(sk.decrypt(&pk.encrypt(&e, &mut rng).unwrap()).unwrap(), e);
        }
        prop_assert_eq!(pk.encrypt(&(&h + 1u32), &mut rng), Err(Error::PlaintextOutOfRange));
    }
}

// ---------------------------------------------------------------------------------------------
// Key generation and key construction.

/// Miller–Rabin with fixed small-prime bases, written here with num-bigint only.
fn is_probable_prime(n: &BigUint) -> bool {
    let one = BigUint::one();
    let two = BigUint::from(2u32);
    if n < &two {
        return false;
    }
    for p in [2u32, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n == &BigUint::from(p) {
            return true;
        }
        if (n % p).is_zero() {
            return false;
        }
    }
    let nm1 = n - 1u32;
    let s = nm1.trailing_zeros().unwrap();
    let d = &nm1 >> s;
    'outer: for a in [2u32, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        let mut x = BigUint::from(a).modpow(&d, n);
        if x == one || x == nm1 {
            continue;
        }
        for _ in 1..s {
            x = x.modpow(&two, n);
            if x == nm1 {
                continue 'outer;
            }
        }
        return false;
    }
    true
}

#[test]
fn keygen_size_checks() {
    let mut r = rng(99);
    for bits in [0, 256, 1024, 2046, 2047] {
        assert!(
            matches!(SecretKey::generate(bits, &mut r), Err(Error::KeySize { bits: b, .. }) if b == bits),
            "generate({bits}) must refuse"
        );
    }
    for bits in [0, 128, 254, 255, 257, 511, 8193, 8194, u32::MAX] {
        assert!(
            matches!(
                SecretKey::generate_insecure_for_tests(bits, &mut r),
                Err(Error::KeySize { .. })
            ),
            "generate_insecure_for_tests({bits}) must refuse"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn generated_keys_are_well_formed(bits in prop::sample::select(vec![256u32, 258, 320, 384, 512]),
                                      s in seed()) {
        let sk = SecretKey::generate_insecure_for_tests(bits, &mut rng(s)).unwrap();
        let pk = sk.public_key();
        let (p, q) = sk.primes();
        prop_assert_eq!(pk.n().bits(), u64::from(bits));
        prop_assert_eq!(pk.bits(), bits);
        prop_assert_eq!(&p * &q, pk.n());
        prop_assert_ne!(&p, &q);
        prop_assert_eq!(p.bits(), u64::from(bits / 2));
        prop_assert_eq!(q.bits(), u64::from(bits / 2));
        prop_assert!(is_probable_prime(&p) && is_probable_prime(&q));
        // gcd(n, φ(n)) = 1
        prop_assert!(pk.n().gcd(&((&p - 1u32) * (&q - 1u32))).is_one());
        // Same seed, same key; the rebuilt key from its primes (either order) is the same key.
        let again = SecretKey::generate_insecure_for_tests(bits, &mut rng(s)).unwrap();
        prop_assert_eq!(again.primes(), (p.clone(), q.clone()));
        let swapped = SecretKey::from_primes(&q, &p).unwrap();
        prop_assert_eq!(swapped.public_key(), pk);
        let c = pk.encrypt_i64(-77, &mut rng(s ^ 1));
        prop_assert_eq!(swapped.decrypt_i64(&c).unwrap(), -77);
    }
}

#[test]
fn from_modulus_rejects_bad_moduli() {
    let n = pk().n();
    assert_eq!(PublicKey::from_modulus(&n).unwrap(), *pk());
    let odd = |bits: u64| (BigUint::one() << (bits - 1)) + 1u32;
    assert!(PublicKey::from_modulus(&odd(256)).is_ok());
    assert!(PublicKey::from_modulus(&odd(8192)).is_ok());
    for bad in [
        BigUint::zero(),
        BigUint::one(),
        BigUint::from(15u32),
        odd(255),
        odd(8193),
    ] {
        assert!(
            matches!(PublicKey::from_modulus(&bad), Err(Error::KeySize { .. })),
            "{bad}"
        );
    }
    for bad in [
        &n + 1u32,
        BigUint::one() << 300,
        (BigUint::one() << 300) + 2u32,
    ] {
        assert!(matches!(
            PublicKey::from_modulus(&bad),
            Err(Error::InvalidKey(_))
        ));
    }
}

#[test]
fn from_primes_rejects_bad_primes() {
    let (p, q) = sk().primes();
    let invalid = |a: &BigUint, b: &BigUint| {
        matches!(
            SecretKey::from_primes(a, b),
            Err(Error::InvalidKey(_)) | Err(Error::KeySize { .. })
        )
    };
    assert!(invalid(&p, &p), "p == q");
    assert!(invalid(&(&p + 1u32), &q), "even p");
    assert!(invalid(&BigUint::from(2u32), &q), "p = 2");
    assert!(invalid(&BigUint::one(), &q), "p = 1");
    assert!(invalid(&BigUint::zero(), &q), "p = 0");
    assert!(invalid(&(&p * 3u32), &(&q * 3u32)), "common factor");
    // Small primes: n far below 256 bits.
    assert!(matches!(
        SecretKey::from_primes(&BigUint::from(65521u32), &BigUint::from(65519u32)),
        Err(Error::KeySize { .. })
    ));
    // gcd(n, φ(n)) ≠ 1: p = 3, q = 7 * 2^k + 1 style (q - 1 divisible by p).
    let (p3, q3) = (BigUint::from(3u32), find_prime_1_mod_3(300));
    assert!(invalid(&p3, &q3), "p | q - 1");
}

fn find_prime_1_mod_3(bits: u64) -> BigUint {
    let mut c = (BigUint::one() << (bits - 1)) + 1u32; // ≡ 1 mod 2
    while !(&c % 3u32).is_one() {
        c += 2u32;
    }
    while !is_probable_prime(&c) {
        c += 6u32;
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Fixed point.

fn fp_format() -> impl Strategy<Value = FixedPoint> {
    (0u32..=40)
        .prop_flat_map(|f| (Just(f), 0u32..=(62 - f)))
        .prop_map(|(f, i)| FixedPoint::new(f, i).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fixed_point_round_trip(fp in fp_format(), u in -1.0f64..1.0, e in -60i32..=0) {
        // x spans many magnitudes inside (-2^int_bits, 2^int_bits).
        let x = u * f64::from(fp.int_bits as i32 + e).exp2();
        let lim = (fp.int_bits as f64).exp2();
        let step = (-(fp.frac_bits as f64)).exp2();
        match fp.encode(x) {
            Ok(v) => {
                prop_assert!(v.unsigned_abs() < 1u64 << (fp.int_bits + fp.frac_bits));
                let err = (fp.decode(v) - x).abs();
                prop_assert!(err <= step / 2.0, "x = {x}, v = {v}, err = {err}");
                prop_assert_eq!(fp.decode_big(&BigInt::from(v)), fp.decode(v));
                prop_assert_eq!(fp.check(&BigInt::from(v)), Ok(v));
            }
            Err(e) => {
                // Only values that round up to the bound may fail.
                prop_assert!(x.abs() > lim - step, "x = {x} refused: {e}");
                let is_range = matches!(e, Error::FixedPointRange { .. });
                prop_assert!(is_range);
            }
        }
    }

    #[test]
    fn fixed_point_out_of_range(fp in fp_format(), u in 1.0f64..1e6, neg in any::<bool>()) {
        let x = u * (fp.int_bits as f64).exp2();
        let x = if neg { -x } else { x };
        let refused = matches!(fp.encode(x), Err(Error::FixedPointRange { .. }));
        prop_assert!(refused, "x = {x}");
    }
}

#[test]
fn fixed_point_boundaries() {
    for (f, i) in [
        (0, 0),
        (0, 10),
        (16, 20),
        (20, 16),
        (24, 29),
        (52, 1),
        (1, 52),
        (30, 32),
        (0, 62),
    ] {
        let fp = FixedPoint::new(f, i).unwrap();
        let lim = (i as f64).exp2();
        let step = (-(f as f64)).exp2();
        let bound = 1i64 << (i + f);
        assert_eq!(fp.bound(), bound);
        for s in [1.0, -1.0] {
            assert!(
                matches!(fp.encode(s * lim), Err(Error::FixedPointRange { .. })),
                "{f}/{i}: ±2^int_bits must be refused"
            );
            assert!(matches!(
                fp.encode(s * lim * 2.0),
                Err(Error::FixedPointRange { .. })
            ));
            // The largest representable magnitude below the bound (exact in f64 up to 53 bits).
            if i + f <= 53 {
                let x = s * (lim - step);
                assert_eq!(fp.encode(x), Ok((s as i64) * (bound - 1)), "{f}/{i}");
                assert_eq!(fp.decode(bound - 1), lim - step);
            }
        }
        assert!(matches!(
            fp.check(&BigInt::from(bound)),
            Err(Error::FixedPointRange { .. })
        ));
        assert!(matches!(
            fp.check(&BigInt::from(-bound)),
            Err(Error::FixedPointRange { .. })
        ));
        assert_eq!(fp.check(&BigInt::from(bound - 1)), Ok(bound - 1));
        assert_eq!(fp.check(&BigInt::from(1 - bound)), Ok(1 - bound));
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(fp.encode(x), Err(Error::NotFinite));
        }
        assert_eq!(fp.encode(0.0), Ok(0));
        assert_eq!(fp.encode(-0.0), Ok(0));
    }
    assert!(FixedPoint::new(31, 32).is_err());
    assert!(FixedPoint::new(63, 0).is_err());
    assert!(FixedPoint::new(u32::MAX, 1).is_err());
    assert!(FixedPoint::new(1, u32::MAX).is_err());
    assert!(FixedPoint::new(u32::MAX, u32::MAX).is_err());
    // Half a step rounds away from zero.
    let fp = FixedPoint::new(2, 8).unwrap();
    assert_eq!(fp.encode(0.125), Ok(1));
    assert_eq!(fp.encode(-0.125), Ok(-1));
    assert_eq!(fp.encode(0.124), Ok(0));
}

#[test]
fn fixed_point_deserialisation_validates() {
    let ok: FixedPoint = serde_json::from_str(r#"{"frac_bits":16,"int_bits":20}"#).unwrap();
    assert_eq!(ok, FixedPoint::new(16, 20).unwrap());
    for bad in [
        r#"{"frac_bits":40,"int_bits":40}"#,
        r#"{"frac_bits":4294967295,"int_bits":1}"#,
    ] {
        assert!(serde_json::from_str::<FixedPoint>(bad).is_err(), "{bad}");
    }
    let bytes = postcard::to_stdvec(&(100u32, 100u32)).unwrap();
    assert!(postcard::from_bytes::<FixedPoint>(&bytes).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn encrypted_fixed_point_arithmetic(a in -1000.0f64..1000.0, b in -1000.0f64..1000.0,
                                        k in -1000i64..1000, s in seed()) {
        let (sk, pk) = (sk(), pk());
        let fp = FixedPoint::new(20, 24).unwrap();
        let mut rng = rng(s);
        let (ea, eb) = (fp.encode(a).unwrap(), fp.encode(b).unwrap());
        let ca = pk.encrypt_i64(ea, &mut rng);
        let cb = sk.encrypt_i64(eb, &mut rng);
        let c = pk.mul_i64(&pk.add(&ca, &cb), k).unwrap();
        let got = sk.decrypt(&c).unwrap();
        prop_assert_eq!(got.clone(), BigInt::from((ea + eb) * k));
        let x = fp.decode_big(&got);
        let tol = (k.unsigned_abs() as f64 + 1.0) * (-20f64).exp2();
        prop_assert!((x - (a + b) * k as f64).abs() <= tol + 1e-9 * x.abs());
    }
}

// ---------------------------------------------------------------------------------------------
// Serialisation.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn serde_round_trips(ms in vec(any::<i64>(), 0..6), s in seed()) {
        let (sk, pk) = (sk(), pk());
        let mut rng = rng(s);
        let cts: Vec<Ciphertext> = ms.iter().map(|&m| pk.encrypt_i64(m, &mut rng)).collect();

        // postcard through the sealed container.
        let pk2: PublicKey = format::open(&PUBLIC_KEY, &format::seal(&PUBLIC_KEY, pk).unwrap()).unwrap();
        prop_assert_eq!(pk2.n(), pk.n());
        prop_assert_eq!(pk2.fingerprint(), pk.fingerprint());
        let sk2: SecretKey = format::open(&SECRET_KEY, &format::seal(&SECRET_KEY, sk).unwrap()).unwrap();
        prop_assert_eq!(sk2.primes(), sk.primes());
        prop_assert_eq!(sk2.public_key(), pk);
        let cts2: Vec<Ciphertext> =
            format::open(&CIPHERTEXTS, &format::seal(&CIPHERTEXTS, &cts).unwrap()).unwrap();
        prop_assert_eq!(&cts2, &cts);
        for (c, &m) in cts2.iter().zip(&ms) {
            prop_assert_eq!(sk2.decrypt_i64(c).unwrap(), m);
        }
        if let Some(c) = cts.first() {
            let c2: Ciphertext = format::open(&CIPHERTEXTS, &format::seal(&CIPHERTEXTS, c).unwrap()).unwrap();
            prop_assert_eq!(&c2, c);
        }

        // JSON: integers are decimal strings.
        let n_dec = pk.n().to_str_radix(10);
        let j = serde_json::to_string(pk).unwrap();
        prop_assert!(j.contains(&format!("\"{n_dec}\"")), "{}", j);
        let pk3: PublicKey = serde_json::from_str(&j).unwrap();
        prop_assert_eq!(pk3.n(), pk.n());
        let j = serde_json::to_string(sk).unwrap();
        let (p, q) = sk.primes();
        let (pd, qd) = (format!("\"{}\"", p.to_str_radix(10)), format!("\"{}\"", q.to_str_radix(10)));
        prop_assert!(j.contains(&pd));
        prop_assert!(j.contains(&qd));
        let sk3: SecretKey = serde_json::from_str(&j).unwrap();
        prop_assert_eq!(sk3.primes(), sk.primes());
        let j = serde_json::to_string(&cts).unwrap();
        let want: Vec<String> = cts.iter().map(|c| format!("\"{}\"", c.to_biguint())).collect();
        prop_assert_eq!(j.clone(), format!("[{}]", want.join(",")));
        let cts3: Vec<Ciphertext> = serde_json::from_str(&j).unwrap();
        prop_assert_eq!(cts3, cts);
    }
}

#[test]
fn json_rejects_non_decimal_integers() {
    for bad in [
        r#""""#,
        r#""-5""#,
        r#""+5""#,
        r#"" 5""#,
        r#""0x1f""#,
        r#""1e5""#,
        r#""12a""#,
        "5",
        "null",
        "[1,2]",
    ] {
        assert!(serde_json::from_str::<Ciphertext>(bad).is_err(), "{bad}");
    }
    // A public key must be odd and of an accepted size.
    let even = format!(r#"{{"n":"{}"}}"#, pk().n() + 1u32);
    assert!(serde_json::from_str::<PublicKey>(&even).is_err());
    assert!(serde_json::from_str::<PublicKey>(r#"{"n":"15"}"#).is_err());
    let (p, _) = sk().primes();
    let same = format!(r#"{{"p":"{p}","q":"{p}"}}"#);
    assert!(serde_json::from_str::<SecretKey>(&same).is_err());
}

#[test]
fn fingerprints_identify_keys() {
    let (a, b, c) = (pk(), sk_small().public_key(), sk2048().public_key());
    let fps = [a.fingerprint(), b.fingerprint(), c.fingerprint()];
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(fps[i] == fps[j], i == j);
        }
        assert_eq!(fps[i].to_string().len(), 16);
        assert!(fps[i].to_string().bytes().all(|b| b.is_ascii_hexdigit()));
    }
    // A function of n alone.
    assert_eq!(
        PublicKey::from_modulus(&a.n()).unwrap().fingerprint(),
        fps[0]
    );
    assert_eq!(fps[0].check(&fps[0]), Ok(()));
    assert_eq!(
        fps[1].check(&fps[0]),
        Err(Error::KeyMismatch {
            expected: fps[0].to_string(),
            found: fps[1].to_string(),
        })
    );
    // Independent: first 8 bytes of SHA-256("smlp/paillier/public-key/v1" ‖ n).
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"smlp/paillier/public-key/v1");
    h.update(a.n().to_bytes_be());
    assert_eq!(&h.finalize()[..8], &fps[0].0[..]);
}

// ---------------------------------------------------------------------------------------------
// Decoder fuzzing: format::open must return an error, never panic.

fn samples() -> &'static [(FileKind, Vec<u8>)] {
    static S: OnceLock<Vec<(FileKind, Vec<u8>)>> = OnceLock::new();
    S.get_or_init(|| {
        let mut r = rng(5);
        let cts: Vec<Ciphertext> = (0..3).map(|m| pk().encrypt_i64(m, &mut r)).collect();
        vec![
            (PUBLIC_KEY, format::seal(&PUBLIC_KEY, pk()).unwrap()),
            (SECRET_KEY, format::seal(&SECRET_KEY, sk()).unwrap()),
            (CIPHERTEXTS, format::seal(&CIPHERTEXTS, &cts).unwrap()),
        ]
    })
}

/// Opens `bytes` as the type that `kind` holds.
fn open_as(kind: &FileKind, bytes: &[u8]) -> Result<(), Error> {
    match kind.tag {
        t if t == PUBLIC_KEY.tag => format::open::<PublicKey>(kind, bytes).map(|_| ()),
        t if t == SECRET_KEY.tag => format::open::<SecretKey>(kind, bytes).map(|_| ()),
        _ => format::open::<Vec<Ciphertext>>(kind, bytes).map(|_| ()),
    }
}

const HEADER: usize = 18;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn truncated_files_are_refused(which in 0usize..3, cut in any::<prop::sample::Index>()) {
        let (kind, bytes) = &samples()[which];
        let len = cut.index(bytes.len());
        let err = open_as(kind, &bytes[..len]).unwrap_err();
        let expected = if len < 8 {
            matches!(err, Error::BadMagic { .. })
        } else {
            matches!(err, Error::Truncated { .. })
        };
        prop_assert!(expected, "cut at {len}: {err:?}");
    }

    #[test]
    fn flipped_bytes_are_detected(which in 0usize..3, at in any::<prop::sample::Index>(),
                                  mask in 1u8..=255) {
        let (kind, bytes) = &samples()[which];
        let mut b = bytes.clone();
        let i = at.index(b.len());
        b[i] ^= mask;
        let err = open_as(kind, &b).unwrap_err();
        let ok = match i {
            0..=7 => matches!(err, Error::BadMagic { .. }),
            8..=9 => matches!(err, Error::UnsupportedVersion { .. }),
            // The length field: too long reads as truncated, too short leaves trailing bytes.
            10..=17 => matches!(err, Error::Truncated { .. } | Error::Malformed { .. }),
            _ => matches!(err, Error::Checksum { .. }),
        };
        prop_assert!(ok, "flip at {i}: {err:?}");
    }

    #[test]
    fn garbage_is_refused(b in vec(any::<u8>(), 0..400), which in 0usize..3) {
        let (kind, _) = &samples()[which];
        prop_assert!(open_as(kind, &b).is_err());
        // Garbage behind a valid magic and tag, any version.
        let mut g = b"SMLP".to_vec();
        g.extend_from_slice(&kind.tag);
        g.extend_from_slice(&b);
        prop_assert!(open_as(kind, &g).is_err());
    }

    /// A well-formed container (right header and checksum) around a random payload: the postcard
    /// and key-validation layers must refuse it or produce a value, never panic.
    #[test]
    fn random_payloads_never_panic(payload in vec(any::<u8>(), 0..300), which in 0usize..3) {
        let (kind, _) = &samples()[which];
        let mut b = b"SMLP".to_vec();
        b.extend_from_slice(&kind.tag);
        b.extend_from_slice(&kind.version.to_le_bytes());
        b.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        b.extend_from_slice(&payload);
        use sha2::{Digest, Sha256};
        let sum = Sha256::digest(&b);
        b.extend_from_slice(&sum[..8]);
        let _ = open_as(kind, &b);
    }

    /// Valid postcard payloads of plausible shape but bogus numbers.
    #[test]
    fn bogus_keys_are_refused_or_valid(p in vec(any::<u8>(), 0..80), q in vec(any::<u8>(), 0..80)) {
        let bp = BigUint::from_bytes_be(&p);
        let bq = BigUint::from_bytes_be(&q);
        #[derive(serde::Serialize)]
        struct Pk<'a> { #[serde(with = "serde_bytes_shim")] n: &'a [u8] }
        #[derive(serde::Serialize)]
        struct Sk<'a> {
            #[serde(with = "serde_bytes_shim")] p: &'a [u8],
            #[serde(with = "serde_bytes_shim")] q: &'a [u8],
        }
        let bytes = format::seal(&PUBLIC_KEY, &Pk { n: &p }).unwrap();
        match format::open::<PublicKey>(&PUBLIC_KEY, &bytes) {
            Ok(k) => { prop_assert_eq!(k.n(), bp.clone()); prop_assert!(bp.bit(0) && bp.bits() >= 256); }
            Err(e) => prop_assert!(matches!(e, Error::Malformed { .. }), "{e:?}"),
        }
        let bytes = format::seal(&SECRET_KEY, &Sk { p: &p, q: &q }).unwrap();
        if let Ok(k) = format::open::<SecretKey>(&SECRET_KEY, &bytes) {
            prop_assert_eq!(k.primes(), (bp, bq));
        }
    }
}

mod serde_bytes_shim {
    pub fn serialize<S: serde::Serializer>(v: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
}

#[test]
fn wrong_tag_and_version_are_refused() {
    let [(_, pkb), (_, skb), (_, ctb)] = samples() else {
        unreachable!()
    };
    // A public key file is not a secret key file, and so on.
    for (kind, bytes) in [
        (SECRET_KEY, pkb),
        (CIPHERTEXTS, pkb),
        (PUBLIC_KEY, skb),
        (PUBLIC_KEY, ctb),
    ] {
        assert!(matches!(open_as(&kind, bytes), Err(Error::BadMagic { .. })));
    }
    for v in [0u16, 2, 0xffff] {
        let mut b = pkb.clone();
        b[8..10].copy_from_slice(&v.to_le_bytes());
        assert_eq!(
            open_as(&PUBLIC_KEY, &b),
            Err(Error::UnsupportedVersion {
                kind: "public key",
                found: v,
                supported: 1
            })
        );
    }
    // A future version with a correct checksum is still refused by version.
    let future = FileKind {
        version: 2,
        ..PUBLIC_KEY
    };
    let b = format::seal(&future, pk()).unwrap();
    assert!(matches!(
        open_as(&PUBLIC_KEY, &b),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
    // Trailing bytes after the checksum.
    let mut b = ctb.clone();
    b.push(0);
    assert!(matches!(
        open_as(&CIPHERTEXTS, &b),
        Err(Error::Malformed { .. })
    ));
    // A huge declared length.
    let mut b = ctb.clone();
    b[10..18].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        open_as(&CIPHERTEXTS, &b),
        Err(Error::Truncated { .. })
    ));
    // Layout: magic, tag, version, length, payload, checksum.
    assert_eq!(&pkb[..4], b"SMLP");
    assert_eq!(&pkb[4..8], b"PKEY");
    assert_eq!(u16::from_le_bytes([pkb[8], pkb[9]]), 1);
    let len = u64::from_le_bytes(pkb[10..18].try_into().unwrap()) as usize;
    assert_eq!(pkb.len(), HEADER + len + 8);
}

// ---------------------------------------------------------------------------------------------
// Files.

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!(
        "paillier-test-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn entries(d: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn file_round_trips_and_atomic_writes() {
    let dir = scratch_dir("files");
    let (sk, pk) = (sk(), pk());
    let pk_path = dir.join("key.pub");
    let sk_path = dir.join("key.sec");
    let ct_path = dir.join("data.ct");
    let cts: Vec<Ciphertext> = (0..4)
        .map(|m| pk.encrypt_i64(m - 2, &mut rng(m as u64)))
        .collect();

    format::write_file(&PUBLIC_KEY, &pk_path, pk).unwrap();
    format::write_file(&SECRET_KEY, &sk_path, sk).unwrap();
    format::write_file(&CIPHERTEXTS, &ct_path, &cts).unwrap();
    assert_eq!(
        entries(&dir),
        ["data.ct", "key.pub", "key.sec"],
        "no temporary files left"
    );

    let pk2: PublicKey = format::read_file(&PUBLIC_KEY, &pk_path).unwrap();
    assert_eq!(&pk2, pk);
    let sk2: SecretKey = format::read_file(&SECRET_KEY, &sk_path).unwrap();
    assert_eq!(sk2.primes(), sk.primes());
    let cts2: Vec<Ciphertext> = format::read_file(&CIPHERTEXTS, &ct_path).unwrap();
    assert_eq!(cts2, cts);
    let got: Vec<i64> = cts2.iter().map(|c| sk2.decrypt_i64(c).unwrap()).collect();
    assert_eq!(got, [-2, -1, 0, 1]);

    // Overwriting replaces the content atomically.
    format::write_file(&CIPHERTEXTS, &ct_path, &cts[..1]).unwrap();
    let one: Vec<Ciphertext> = format::read_file(&CIPHERTEXTS, &ct_path).unwrap();
    assert_eq!(one, cts[..1]);

    // write_atomic with `private`.
    let raw = dir.join("raw.bin");
    format::write_atomic(&raw, b"hello", true).unwrap();
    assert_eq!(std::fs::read(&raw).unwrap(), b"hello");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&raw).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        entries(&dir),
        ["data.ct", "key.pub", "key.sec", "raw.bin"],
        "no temporary files left"
    );

    // Errors carry the path: wrong kind, corruption, missing file, missing directory.
    match format::read_file::<SecretKey>(&SECRET_KEY, &pk_path) {
        Err(FileError::Format { path, source }) => {
            assert!(path.contains("key.pub"));
            assert!(matches!(source, Error::BadMagic { .. }));
        }
        other => panic!("expected a format error, got {other:?}"),
    }
    let mut b = std::fs::read(&ct_path).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&ct_path, &b).unwrap();
    assert!(matches!(
        format::read_file::<Vec<Ciphertext>>(&CIPHERTEXTS, &ct_path),
        Err(FileError::Format {
            source: Error::Checksum { .. },
            ..
        })
    ));
    assert!(matches!(
        format::read_file::<PublicKey>(&PUBLIC_KEY, &dir.join("missing")),
        Err(FileError::Io { .. })
    ));
    let nowhere = dir.join("no-such-dir").join("x.pub");
    assert!(matches!(
        format::write_file(&PUBLIC_KEY, &nowhere, pk),
        Err(FileError::Io { .. })
    ));
    assert_eq!(entries(&dir).len(), 4, "failed writes leave nothing behind");

    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Packing.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn pack_places_slots(slot_bits in 1u32..=64, raw in vec(any::<u64>(), 0..8), s in seed()) {
        let (sk, pk) = (sk(), pk());
        // Keep Σ mⱼ 2^(j·slot_bits) below n/2 (so the signed reading equals the raw one).
        let max_slots = ((pk.bits() - 2) / slot_bits) as usize;
        let ms: Vec<BigUint> = raw
            .iter()
            .take(max_slots)
            .map(|&v| BigUint::from(v) % (BigUint::one() << slot_bits))
            .collect();
        let mut rng = rng(s);
        let cts: Vec<Ciphertext> =
            ms.iter().map(|m| pk.encrypt(&int(m), &mut rng).unwrap()).collect();
        let refs: Vec<&Ciphertext> = cts.iter().collect();
        let packed = pk.pack(&refs, slot_bits);
        let want = ms
            .iter()
            .enumerate()
            .fold(BigUint::zero(), |acc, (j, m)| acc + (m << (j as u32 * slot_bits)));
        prop_assert_eq!(dec(sk, &packed), int(&want));
    }
}

/// Powers made under one key are refused by another (the table's modulus is checked).
#[test]
fn powers_of_another_key_are_refused() {
    let pk = pk();
    let other = SecretKey::generate_insecure_for_tests(512, &mut rng(99)).unwrap();
    let c = other.public_key().encrypt_i64(5, &mut rng(1));
    let p = other.public_key().powers(&c, 160);
    let k = BigInt::from(3);
    assert!(matches!(
        pk.linear_combination_with(&[(&p, &k)], &[], &BigInt::from(0)),
        Err(Error::KeyMismatch { .. })
    ));
    let own = pk.powers(&pk.encrypt_i64(5, &mut rng(2)), 160);
    let got = pk
        .linear_combination_with(&[(&own, &k)], &[], &BigInt::from(1))
        .unwrap();
    assert_eq!(sk().decrypt_i64(&got).unwrap(), 16);
}

/// A joint table holds at most `JointPowers::MAX` ciphertexts.
#[test]
fn joint_powers_are_bounded() {
    let pk = pk();
    let c = pk.encrypt_i64(1, &mut rng(3));
    let nine = vec![&c; paillier::JointPowers::MAX + 1];
    assert!(matches!(
        pk.joint_powers(&nine),
        Err(Error::InvalidInput(_))
    ));
    let eight = pk.joint_powers(&nine[1..]).unwrap();
    assert_eq!(eight.len(), 8);
}

#[test]
fn ciphertexts_shorter_than_32_bytes_are_refused_while_decoding() {
    // The tenants issue: "ciphertexts" of one wire byte cost about 50 times their size in memory.
    for len in [0usize, 1, 16, 31] {
        let bytes = postcard::to_stdvec(&vec![0x55u8; len]).unwrap();
        assert!(
            postcard::from_bytes::<paillier::Ciphertext>(&bytes).is_err(),
            "{len}"
        );
        assert!(
            postcard::from_bytes::<paillier::dgk::Ciphertext>(&bytes).is_err(),
            "{len}"
        );
    }
    let bytes = postcard::to_stdvec(&vec![0x55u8; paillier::MIN_CIPHERTEXT_BYTES]).unwrap();
    postcard::from_bytes::<paillier::Ciphertext>(&bytes).unwrap();
    postcard::from_bytes::<paillier::dgk::Ciphertext>(&bytes).unwrap();
    // Real ciphertexts of the smallest test key round-trip.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let sk = SecretKey::generate_insecure_for_tests(paillier::MIN_TEST_BITS, &mut rng).unwrap();
    for m in [0i64, 1, -1, 12345] {
        let c = sk.public_key().encrypt(&BigInt::from(m), &mut rng).unwrap();
        let back: paillier::Ciphertext =
            postcard::from_bytes(&postcard::to_stdvec(&c).unwrap()).unwrap();
        assert_eq!(sk.decrypt(&back).unwrap(), BigInt::from(m));
    }
}
