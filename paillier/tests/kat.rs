//! Known-answer vectors from python-paillier 1.5.0 (`tests/data/paillier_kat.json`, copied from the
//! project's shared vectors; see `tests/data/README.md`). Runs on whichever backend is compiled in.

use paillier::{BigUint, Ciphertext, SecretKey};
use serde_json::Value;

fn big(v: &Value) -> BigUint {
    v.as_str()
        .and_then(|s| BigUint::parse_bytes(s.as_bytes(), 10))
        .expect("decimal string")
}

fn keys() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("data/paillier_kat.json")).unwrap();
    v["keys"].as_array().unwrap().clone()
}

#[test]
fn encryption_with_given_r_matches_python_paillier() {
    let mut checked = 0;
    for key in keys() {
        let sk = SecretKey::from_primes(&big(&key["p"]), &big(&key["q"])).unwrap();
        let pk = sk.public_key();
        assert_eq!(pk.n(), big(&key["n"]));
        assert_eq!(pk.bits() as u64, key["bits"].as_u64().unwrap());
        for case in key["encrypt"].as_array().unwrap() {
            let (m, r, c) = (big(&case["m"]), big(&case["r"]), big(&case["c"]));
            assert_eq!(
                pk.encrypt_with(&m, &r).unwrap().to_biguint(),
                c,
                "public encryption"
            );
            assert_eq!(
                sk.encrypt_with(&m, &r).unwrap().to_biguint(),
                c,
                "CRT encryption"
            );
            let ct = Ciphertext::from_biguint(&c);
            assert_eq!(sk.decrypt_raw(&ct).unwrap(), m, "CRT decryption");
            assert_eq!(
                sk.decrypt_raw_without_crt(&ct).unwrap(),
                m,
                "textbook decryption"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 9,
        "expected vectors for three key sizes, checked {checked}"
    );
}

#[test]
fn homomorphic_cases_match_python_paillier() {
    let mut checked = 0;
    for key in keys() {
        let sk = SecretKey::from_primes(&big(&key["p"]), &big(&key["q"])).unwrap();
        let pk = sk.public_key();
        for case in key["homomorphic"].as_array().unwrap() {
            let c1 = Ciphertext::from_biguint(&big(&case["c1"]));
            let c2 = Ciphertext::from_biguint(&big(&case["c2"]));
            let k = big(&case["k"]);
            assert_eq!(
                sk.decrypt_raw(&pk.add(&c1, &c2)).unwrap(),
                big(&case["sum"])
            );
            let k = paillier::BigInt::from(k);
            assert_eq!(
                sk.decrypt_raw(&pk.mul_plain(&c1, &k).unwrap()).unwrap(),
                big(&case["c1_pow_k"])
            );
            checked += 1;
        }
    }
    assert!(checked >= 3);
}
