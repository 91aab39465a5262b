//! The DGK cryptosystem (`paillier::dgk`): known-answer vectors from TNO's independent
//! implementation (`tests/data/dgk_tno.json`, see `tests/data/README.md`) and properties of
//! encryption, the zero test, decryption, the homomorphism, blinding and the key files.

use paillier::dgk::{Ciphertext, PublicKey, SecretKey};
use paillier::{format, BigUint, Error};
use proptest::prelude::*;
use rand::SeedableRng;
use serde_json::Value;
use std::sync::OnceLock;

fn big(v: &Value) -> BigUint {
    v.as_str()
        .and_then(|s| BigUint::parse_bytes(s.as_bytes(), 10))
        .expect("decimal string")
}

fn tno_keys() -> Vec<(SecretKey, Value)> {
    let v: Value = serde_json::from_str(include_str!("data/dgk_tno.json")).unwrap();
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let u = k["u"].as_u64().unwrap() as u32;
            let t = k["t"].as_u64().unwrap() as u32;
            let pk =
                PublicKey::from_parts(&big(&k["n"]), &big(&k["g"]), &big(&k["h"]), u, t).unwrap();
            let sk = SecretKey::from_parts(
                &big(&k["p"]),
                &big(&k["q"]),
                &big(&k["v_p"]),
                &big(&k["v_q"]),
                pk,
            )
            .unwrap();
            (sk, k.clone())
        })
        .collect()
}

fn signed(v: &Value) -> i64 {
    v.as_i64().expect("integer")
}

#[test]
fn tno_keys_pass_the_consistency_checks_and_ciphertexts_match() {
    let mut checked = 0;
    for (sk, key) in tno_keys() {
        let pk = sk.public_key();
        let u = i64::from(pk.u());
        for case in key["cases"].as_array().unwrap() {
            let m = signed(&case["m"]);
            let c = big(&case["c"]);
            // Encryption with TNO's r gives TNO's ciphertext. (TNO raises g to a negative m
            // itself, through an inversion; we to m mod u: g has order u·v_p·v_q, so that is
            // another ciphertext of the same plaintext, compared below by decryption.)
            let ours = pk.encrypt_with(m, &big(&case["r"]));
            if m >= 0 {
                assert_eq!(ours.to_biguint(), c);
            }
            assert_eq!(sk.decrypt(&ours).unwrap(), m.rem_euclid(u) as u32);
            let ct = Ciphertext::from_biguint(&c);
            // TNO's zero test and decryption agree with ours, and with m.
            assert_eq!(sk.is_zero(&ct).unwrap(), case["is_zero"].as_bool().unwrap());
            assert_eq!(sk.is_zero(&ct).unwrap(), m == 0);
            let want = m.rem_euclid(u) as u32;
            assert_eq!(sk.decrypt(&ct).unwrap(), want);
            assert_eq!(signed(&case["decrypted"]).rem_euclid(u) as u32, want);
            // The homomorphism, against TNO's results.
            let other = Ciphertext::from_biguint(&big(&case["other"]));
            assert_eq!(pk.add(&ct, &other).to_biguint(), big(&case["sum"]));
            let k = signed(&case["k"]);
            let product = pk.mul_plain(&ct, k);
            assert_eq!(sk.decrypt(&product).unwrap(), (m * k).rem_euclid(u) as u32);
            if k >= 0 {
                // TNO raises to k itself; negative k goes through an inversion there and
                // through u + k here: the same plaintext, another representative.
                assert_eq!(product.to_biguint(), big(&case["product"]));
            }
            assert_eq!(
                sk.decrypt(&pk.add(&ct, &other)).unwrap(),
                (m + signed(&case["other_m"])).rem_euclid(u) as u32
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "checked {checked} vectors");
}

fn small_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        SecretKey::generate(512, 64, 227, &mut rng).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn encryption_decryption_and_the_homomorphism(a in -300i64..300, b in -300i64..300,
                                                  k in -300i64..300, seed in any::<u64>()) {
        let sk = small_key();
        let pk = sk.public_key();
        let u = i64::from(pk.u());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let ca = pk.encrypt(a, &mut rng);
        let cb = sk.encrypt(b, &mut rng); // the key holder's CRT encryption
        let dec = |c: &Ciphertext| sk.decrypt(c).unwrap() as i64;
        prop_assert_eq!(dec(&ca), a.rem_euclid(u));
        prop_assert_eq!(dec(&cb), b.rem_euclid(u));
        prop_assert_eq!(dec(&pk.add(&ca, &cb)), (a + b).rem_euclid(u));
        prop_assert_eq!(dec(&pk.add_plain(&ca, k)), (a + k).rem_euclid(u));
        prop_assert_eq!(dec(&pk.mul_plain(&ca, k)), (a * k).rem_euclid(u));
        prop_assert_eq!(dec(&pk.neg(&ca).unwrap()), (-a).rem_euclid(u));
        prop_assert_eq!(dec(&pk.rerandomize(&ca, &mut rng)), a.rem_euclid(u));
        prop_assert_eq!(sk.is_zero(&ca).unwrap(), a.rem_euclid(u) == 0);
        // Re-randomisation changes the ciphertext, not the plaintext.
        prop_assert_ne!(pk.rerandomize(&ca, &mut rng), ca.clone());
        // Blinding keeps zero at zero and moves anything else into Z_u*.
        let blinded = pk.blind(&ca, &mut rng);
        prop_assert_eq!(sk.is_zero(&blinded).unwrap(), a.rem_euclid(u) == 0);
        prop_assert_eq!(pk.validate(&blinded), Ok(()));
    }
}

#[test]
fn blinding_spreads_a_nonzero_value_over_the_units_of_z_u() {
    // ρ·m for uniform ρ ∈ Z_u*: every non-zero residue appears, about equally often.
    let sk = small_key();
    let pk = sk.public_key();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let c = pk.encrypt(5, &mut rng);
    let u = pk.u() as usize;
    let mut seen = vec![0u32; u];
    let draws = 40 * u;
    for _ in 0..draws {
        seen[sk.decrypt(&pk.blind(&c, &mut rng)).unwrap() as usize] += 1;
    }
    assert_eq!(seen[0], 0, "a non-zero value never becomes zero");
    let (lo, hi) = (
        seen[1..].iter().min().unwrap(),
        seen[1..].iter().max().unwrap(),
    );
    // 40 expected per residue: a residue outside [10, 80] has probability below 1e-9.
    assert!(*lo >= 10 && *hi <= 80, "residue counts {lo}..{hi}");
}

#[test]
fn bad_ciphertexts_and_keys_are_errors() {
    let sk = small_key();
    let pk = sk.public_key();
    let zero = Ciphertext::from_biguint(&BigUint::from(0u8));
    let big_n = Ciphertext::from_biguint(&pk.n());
    for c in [&zero, &big_n] {
        assert_eq!(pk.validate(c), Err(Error::InvalidDgkCiphertext));
        assert_eq!(sk.is_zero(c), Err(Error::InvalidDgkCiphertext));
        assert_eq!(sk.decrypt(c), Err(Error::InvalidDgkCiphertext));
    }
    // Public-key checks: even n, u not prime, u too large, t too large, g = 1.
    let (n, g, h) = (pk.n(), pk.g(), pk.h());
    let one = BigUint::from(1u8);
    assert!(PublicKey::from_parts(&(&n + 1u8), &g, &h, 227, 64).is_err());
    assert!(PublicKey::from_parts(&n, &g, &h, 225, 64).is_err());
    assert!(PublicKey::from_parts(&n, &g, &h, 65_537, 64).is_err());
    assert!(PublicKey::from_parts(&n, &g, &h, 227, 256).is_err());
    assert!(PublicKey::from_parts(&n, &one, &h, 227, 64).is_err());
    // A secret key whose primes do not match.
    let (p, q, vp, vq) = sk.parts();
    assert!(SecretKey::from_parts(&p, &q, &vp, &vp, pk.clone()).is_err());
    assert!(SecretKey::from_parts(&p, &q, &vq, &vp, pk.clone()).is_err());
}

#[test]
fn key_files_round_trip_and_refuse_other_kinds_and_versions() {
    let sk = small_key();
    let sealed = format::seal(&format::DGK_SECRET_KEY, sk).unwrap();
    let back: SecretKey = format::open(&format::DGK_SECRET_KEY, &sealed).unwrap();
    assert_eq!(back.public_key(), sk.public_key());
    assert_eq!(back.parts(), sk.parts());
    let public = format::seal(&format::DGK_PUBLIC_KEY, sk.public_key()).unwrap();
    let pk: PublicKey = format::open(&format::DGK_PUBLIC_KEY, &public).unwrap();
    assert_eq!(&pk, sk.public_key());
    // A DGK secret key is not a Paillier secret key, nor a DGK public key.
    assert!(matches!(
        format::open::<paillier::SecretKey>(&format::SECRET_KEY, &sealed),
        Err(Error::BadMagic { .. })
    ));
    assert!(matches!(
        format::open::<PublicKey>(&format::DGK_PUBLIC_KEY, &sealed),
        Err(Error::BadMagic { .. })
    ));
    // Another version is refused by name.
    let mut v2 = sealed.clone();
    v2[8] = 2;
    assert!(matches!(
        format::open::<SecretKey>(&format::DGK_SECRET_KEY, &v2),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
    // JSON too (decimal strings).
    let json = serde_json::to_string(sk.public_key()).unwrap();
    let pk2: PublicKey = serde_json::from_str(&json).unwrap();
    assert_eq!(&pk2, sk.public_key());
}

#[test]
fn key_generation_refuses_bad_parameters() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    assert!(SecretKey::generate(512, 64, 225, &mut rng).is_err()); // u not prime
    assert!(SecretKey::generate(511, 64, 227, &mut rng).is_err()); // odd size
    assert!(SecretKey::generate(256, 160, 227, &mut rng).is_err()); // no room for t
    assert!(SecretKey::generate(512, 16, 227, &mut rng).is_err()); // t too small
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever a DGK key file holds — random bytes, or a valid key with bytes flipped — opening
    /// it is a value or an error, never a panic.
    #[test]
    fn hostile_key_files_are_errors_not_panics(payload in proptest::collection::vec(any::<u8>(), 0..600),
                                               flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let sealed = format::seal_payload(&format::DGK_PUBLIC_KEY, &payload);
        let _ = format::open::<PublicKey>(&format::DGK_PUBLIC_KEY, &sealed);
        let sealed = format::seal_payload(&format::DGK_SECRET_KEY, &payload);
        let _ = format::open::<SecretKey>(&format::DGK_SECRET_KEY, &sealed);
        let mut good = postcard::to_stdvec(small_key()).unwrap();
        for (at, x) in flips {
            let i = at % good.len();
            good[i] ^= x | 1;
        }
        let sealed = format::seal_payload(&format::DGK_SECRET_KEY, &good);
        if let Ok(k) = format::open::<SecretKey>(&format::DGK_SECRET_KEY, &sealed) {
            // Whatever was accepted passed the consistency checks: it works as a key.
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
            let c = k.public_key().encrypt(1, &mut rng);
            prop_assert!(!k.is_zero(&c).unwrap());
        }
    }
}
