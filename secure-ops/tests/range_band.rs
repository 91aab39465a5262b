//! The range checks S2 runs on blinded values (ℓ = 40, κ = 40, slot width W = ℓ + κ + 10):
//!
//! * |x| in [2^(ℓ+κ+1), 2^(ℓ+κ+8)) is always reported as `OutOfRange` (SecMul, truncation);
//! * |x| in [2^ℓ, 2^(ℓ+κ+1)) is either reported or computed correctly (products, truncation,
//!   fast sign test) — only the statistical hiding shrinks;
//! * a value far beyond the band wraps its slot and is still caught with probability ≈ 1 − 2^-10;
//! * the fast sign test reports every |x| in (2^(ℓ+2), 2^(ℓ+8)) with certainty.
//!
//! * the strict comparison checks that its result is a bit (β² − β = 0, tested by S2 on a
//!   multiplicatively blinded value), so every |x| ≥ 2^ℓ whose DGK result is not a bit is
//!   reported.

mod common;
use common::*;
use num_bigint::BigInt;
use num_traits::One;
use paillier::Ciphertext;
use paillier::Encrypt;
use secure_ops::{Comparison, Profile, ProtocolError, SessionParams, Truncation};

const L: u32 = 40;
const KAPPA: u32 = 40;

fn fast() -> SessionParams {
    SessionParams {
        value_bits: L,
        frac_bits: 16,
        kappa: KAPPA,
        profile: Profile::Fast,
        ..SessionParams::default()
    }
}

fn enc_big(v: &BigInt) -> Ciphertext {
    key()
        .public_key()
        .encrypt(v, &mut rand::thread_rng())
        .unwrap()
}

fn dec_big(c: &Ciphertext) -> BigInt {
    key().decrypt(c).unwrap()
}

fn pow2(e: u32) -> BigInt {
    BigInt::one() << e
}

fn floor_div(x: &BigInt, k: u32) -> BigInt {
    x >> k // arithmetic shift: floor for negative values too
}

fn is_out_of_range<T: std::fmt::Debug>(r: &Result<T, ProtocolError>) -> bool {
    matches!(r, Err(ProtocolError::OutOfRange { .. }))
}

/// Runs `f` on a fresh session: S2 ends a session at its first out-of-range value, so every probe
/// that may be reported gets its own. Checks that S2 ended the session exactly when it reported.
fn fresh<T: std::fmt::Debug>(
    params: SessionParams,
    f: impl FnOnce(&mut secure_ops::S1<Mem>) -> Result<T, ProtocolError>,
) -> Result<T, ProtocolError> {
    let (mut s1, h) = session(params);
    let r = f(&mut s1);
    if r.is_ok() {
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    } else {
        drop(s1);
        assert!(
            matches!(h.join().unwrap(), Err(ProtocolError::Refused { .. })),
            "S2 ends the session after a refusal"
        );
    }
    r
}

#[test]
fn certain_band_is_always_reported() {
    let three = enc(key().public_key(), &[3]);
    for e in [L + KAPPA + 1, L + KAPPA + 4, L + KAPPA + 7] {
        for v in [pow2(e), -pow2(e), pow2(e + 1) - 1, -(pow2(e + 1) - 1u32)] {
            let x = [enc_big(&v)];
            for _ in 0..3 {
                assert!(
                    is_out_of_range(&fresh(fast(), |s1| s1.mul(&x, &three))),
                    "mul, x = {v}"
                );
                assert!(
                    is_out_of_range(&fresh(fast(), |s1| s1.truncate(&x, 8))),
                    "truncate, x = {v}"
                );
            }
        }
    }
    // A new session is served.
    assert_eq!(
        dec(&fresh(fast(), |s1| s1.mul(&three, &three)).unwrap()),
        vec![9]
    );
}

#[test]
fn between_bound_and_band_values_are_reported_or_correct() {
    let three = enc(key().public_key(), &[3]);
    let mut computed = 0;
    for e in [L, L + 1, L + 10, L + KAPPA - 1, L + KAPPA] {
        for v in [pow2(e) + 12345, -pow2(e) - 12345] {
            let x = [enc_big(&v)];
            let m = fresh(fast(), |s1| s1.mul(&x, &three));
            if !is_out_of_range(&m) {
                assert_eq!(dec_big(&m.unwrap()[0]), &v * 3, "mul, x = {v}");
                computed += 1;
            }
            for mode in [Truncation::Stochastic, Truncation::Exact] {
                let t = fresh(fast(), |s1| s1.truncate_with(&x, 8, mode));
                if !is_out_of_range(&t) {
                    let got = dec_big(&t.unwrap()[0]);
                    let want = floor_div(&v, 8);
                    assert!(
                        got == want || (mode == Truncation::Stochastic && got == &want + 1),
                        "{mode:?} truncation of {v}: {got}"
                    );
                    computed += 1;
                }
            }
        }
    }
    // Near 2^ℓ the blinding almost never exposes the value: most of these were computed.
    assert!(computed >= 12, "only {computed} of 30 computed");
}

#[test]
fn wrapped_slots_are_caught_with_probability_one_minus_2_pow_minus_10() {
    use rand::Rng;
    let three = enc(key().public_key(), &[3]);
    let trials = 200;
    let mut missed = 0;
    let mut rng = rand::thread_rng();
    for _ in 0..trials {
        // Far beyond the band, with x mod 2^W spread over all residues: x + r + offset wraps the
        // slot (and carries into the next one). (An x that is an exact multiple of 2^W plus an
        // in-range value lands back in range: the check works modulo the slot width.)
        let mut bytes = [0u8; 14]; // 112 bits
        rng.fill(&mut bytes[..]);
        bytes[0] |= 0x80;
        let v = BigInt::from_bytes_be(num_bigint::Sign::Plus, &bytes);
        let v = if rng.gen() { v } else { -v };
        if !is_out_of_range(&fresh(fast(), |s1| s1.mul(&[enc_big(&v)], &three))) {
            missed += 1;
        }
    }
    // Expected misses: 200 · 2^-10 ≈ 0.2; four or more has probability below 10^-4.
    assert!(
        missed <= 3,
        "{missed} of {trials} wrapped values were not caught"
    );
}

#[test]
fn fast_sign_test_reports_large_values_and_is_right_below() {
    for e in [L + 3, L + 5, L + 7] {
        for v in [pow2(e), -pow2(e)] {
            for _ in 0..3 {
                assert!(
                    is_out_of_range(&fresh(fast(), |s1| s1.relu(&[enc_big(&v)]))),
                    "relu, x = {v}"
                );
            }
        }
    }
    for v in [pow2(L), -pow2(L), pow2(L + 1) - 1, -(pow2(L + 1) - 1u32)] {
        let r = fresh(fast(), |s1| s1.relu(&[enc_big(&v)]));
        if !is_out_of_range(&r) {
            let (value, deriv) = r.unwrap();
            let positive = v > BigInt::from(0);
            assert_eq!(dec_big(&deriv[0]), BigInt::from(u8::from(positive)));
            let want = if positive { v.clone() } else { BigInt::from(0) };
            assert_eq!(dec_big(&value[0]), want);
        }
    }
}

#[test]
fn strict_comparison_reports_values_outside_the_bound() {
    let strict = SessionParams {
        profile: Profile::Strict,
        ..fast()
    };
    for v in [
        pow2(L + 1),
        -pow2(L + 1),
        pow2(L + 20) + 12345,
        -pow2(L + KAPPA - 1),
    ] {
        assert!(
            is_out_of_range(&fresh(strict, |s1| s1.positive(&[enc_big(&v)]))),
            "positive, x = {v}"
        );
        assert!(
            is_out_of_range(&fresh(strict, |s1| s1.relu(&[enc_big(&v)]))),
            "relu, x = {v}"
        );
    }
    // In range, a session answers correctly.
    let (mut s1, h) = session(strict);
    for v in [
        pow2(L) - 1u32,
        -(pow2(L) - 1u32),
        BigInt::from(0),
        BigInt::one(),
    ] {
        let (value, deriv) = s1.relu(&[enc_big(&v)]).unwrap();
        let positive = v > BigInt::from(0);
        assert_eq!(dec_big(&deriv[0]), BigInt::from(u8::from(positive)));
        assert_eq!(
            dec_big(&value[0]),
            if positive { v.clone() } else { BigInt::from(0) }
        );
    }
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

/// A comparison of values promised below 2^bits (`relu_within`, `positive_within`: ℓ − k + 1
/// bits after a truncation by 2^k) works on bits + 1 DGK bits. In range it is right; a value
/// far beyond the promise is reported by the range check, and one just beyond is reported or
/// right (its result is still a bit exactly when it is the correct one).
#[test]
fn bounded_strict_comparison_is_right_in_range_and_reports_far_beyond() {
    let strict = SessionParams {
        profile: Profile::Strict,
        ..fast()
    };
    const B: u32 = 12;
    for v in [pow2(B + 5), -pow2(B + 5), pow2(L - 1), -(pow2(L) - 1u32)] {
        assert!(
            is_out_of_range(&fresh(strict, |s1| s1.positive_within(&[enc_big(&v)], B))),
            "positive_within, x = {v}"
        );
        assert!(
            is_out_of_range(&fresh(strict, |s1| s1.relu_within(&[enc_big(&v)], B))),
            "relu_within, x = {v}"
        );
    }
    for v in [pow2(B), pow2(B) + 1000u32, -pow2(B) - 1u32, -pow2(B + 1)] {
        match fresh(strict, |s1| s1.relu_within(&[enc_big(&v)], B)) {
            Ok((value, deriv)) => {
                let positive = v > BigInt::from(0);
                assert_eq!(
                    dec_big(&deriv[0]),
                    BigInt::from(u8::from(positive)),
                    "x = {v}"
                );
                assert_eq!(
                    dec_big(&value[0]),
                    if positive { v.clone() } else { BigInt::from(0) }
                );
            }
            Err(e) => assert!(
                matches!(e, ProtocolError::OutOfRange { .. }),
                "x = {v}: {e}"
            ),
        }
    }
    // In range, one session answers everything correctly, with B + 1 garbled AND gates (or, with
    // DGK, B + 2 DGK values) per comparison.
    let dgk = SessionParams {
        comparison: Comparison::Dgk,
        ..strict
    };
    for (params, per_value) in [(dgk, B as u64 + 2), (strict, B as u64 + 1)] {
        let (mut s1, h) = session(params);
        let vals = [
            pow2(B) - 1u32,
            -(pow2(B) - 1u32),
            BigInt::from(0),
            BigInt::one(),
            BigInt::from(-1),
        ];
        let before = s1.counts();
        let cts: Vec<Ciphertext> = vals.iter().map(enc_big).collect();
        let (value, deriv) = s1.relu_within(&cts, B).unwrap();
        let spent = s1.counts().since(&before);
        let work = match params.comparison {
            Comparison::Dgk => spent.dgk_blinds,
            Comparison::Garbled => spent.gates,
        };
        assert_eq!(work, per_value * vals.len() as u64);
        for ((v, val), d) in vals.iter().zip(&value).zip(&deriv) {
            let positive = v > &BigInt::from(0);
            assert_eq!(dec_big(d), BigInt::from(u8::from(positive)));
            assert_eq!(
                dec_big(val),
                if positive { v.clone() } else { BigInt::from(0) }
            );
        }
        let pos = s1.positive_within(&cts, B).unwrap();
        for (v, p) in vals.iter().zip(&pos) {
            assert_eq!(dec_big(p), BigInt::from(u8::from(v > &BigInt::from(0))));
        }
        // A bound of 0 or above ℓ is the caller's error, not S2's.
        assert!(matches!(
            s1.relu_within(&cts, 0),
            Err(ProtocolError::InvalidRequest(_))
        ));
        assert!(matches!(
            s1.positive_within(&cts, L + 1),
            Err(ProtocolError::InvalidRequest(_))
        ));
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }
}
