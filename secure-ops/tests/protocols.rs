//! Every sub-protocol against plaintext integer arithmetic, over an in-memory channel.

mod common;
use common::*;
use num_bigint::BigInt;
use paillier::Ciphertext;
use paillier::Encrypt;
use proptest::prelude::*;
use secure_ops::{Comparison, Job, Operand, Profile, ProtocolError, SessionParams, Truncation};

fn fast() -> SessionParams {
    SessionParams {
        value_bits: 40,
        frac_bits: 16,
        kappa: 40,
        profile: Profile::Fast,
        ..SessionParams::default()
    }
}
fn strict() -> SessionParams {
    SessionParams {
        value_bits: 40,
        frac_bits: 16,
        kappa: 40,
        profile: Profile::Strict,
        ..SessionParams::default()
    }
}
/// The strict profile with DGK comparisons (the default is garbled circuits).
fn strict_dgk() -> SessionParams {
    SessionParams {
        comparison: Comparison::Dgk,
        ..strict()
    }
}
/// 0: fast, 1: strict (garbled comparisons), 2: strict with DGK.
fn by_index(i: u8) -> SessionParams {
    match i {
        0 => fast(),
        1 => strict(),
        _ => strict_dgk(),
    }
}
const LIM: i64 = 1 << 39; // |x| < 2^ℓ with ℓ = 40

fn small() -> impl Strategy<Value = i64> {
    prop_oneof![-(1i64 << 19)..(1i64 << 19), Just(0), Just(1), Just(-1)]
}
fn full() -> impl Strategy<Value = i64> {
    prop_oneof![
        -LIM..LIM,
        Just(0),
        Just(LIM - 1),
        Just(-LIM + 1),
        Just(1),
        Just(-1)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn secmul_and_secdot_match_plaintext(a in proptest::collection::vec(small(), 1..12), seed in any::<u64>()) {
        let pk = key().public_key().clone();
        let b: Vec<i64> = a.iter().enumerate().map(|(i, x)| (x.wrapping_mul(31) ^ (seed as i64 >> i)) % (1 << 19)).collect();
        let (mut s1, h) = session(fast());
        let (ca, cb) = (enc(&pk, &a), enc(&pk, &b));
        let prod = dec(&s1.mul(&ca, &cb).unwrap());
        let want: Vec<i128> = a.iter().zip(&b).map(|(x, y)| *x as i128 * *y as i128).collect();
        prop_assert_eq!(prod, want.clone());
        let dot = dec(&[s1.dot(&ca, &cb).unwrap()]);
        prop_assert_eq!(dot[0], want.iter().sum::<i128>());
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }

    #[test]
    fn mat_vec_vec_mat_outer_in_one_round(rows in 1usize..4, cols in 1usize..5, batch in 1usize..3, seed in any::<i64>()) {
        let pk = key().public_key().clone();
        let val = |i: usize| seed.wrapping_add(i as i64 * 7919).wrapping_mul(2654435761) % (1 << 18);
        let m: Vec<i64> = (0..rows * cols).map(val).collect();
        let v: Vec<i64> = (0..cols).map(|i| val(i + 100)).collect();
        let w: Vec<i64> = (0..rows).map(|i| val(i + 200)).collect();
        let a: Vec<i64> = (0..rows * batch).map(|i| val(i + 300)).collect();
        let b: Vec<i64> = (0..cols * batch).map(|i| val(i + 400)).collect();
        let (mut s1, h) = session(fast());
        let (cm, cv, cw, ca, cb) = (enc(&pk, &m), enc(&pk, &v), enc(&pk, &w), enc(&pk, &a), enc(&pk, &b));
        let before = s1.traffic_snapshot();
        let out = s1.products(&[&cm, &cv, &cw, &ca, &cb], &[
            Job::MatVec { mat: 0, vec: 1, rows, cols },
            Job::VecMat { mat: 0, vec: 2, rows, cols },
            Job::OuterSum { a: 3, b: 4, a_len: rows, b_len: cols, batch },
        ], false).unwrap();
        prop_assert_eq!(s1.traffic_snapshot().since(&before).round_trips, 1);
        let mv: Vec<i128> = (0..rows).map(|j| (0..cols).map(|i| m[j * cols + i] as i128 * v[i] as i128).sum()).collect();
        let vm: Vec<i128> = (0..cols).map(|i| (0..rows).map(|j| m[j * cols + i] as i128 * w[j] as i128).sum()).collect();
        let outer: Vec<i128> = (0..rows * cols).map(|o| (0..batch).map(|t| a[t * rows + o / cols] as i128 * b[t * cols + o % cols] as i128).sum()).collect();
        prop_assert_eq!(dec(&out[0]), mv);
        prop_assert_eq!(dec(&out[1]), vm);
        prop_assert_eq!(dec(&out[2]), outer.clone());
        // negated variant
        let neg = s1.products(&[&ca, &cb], &[Job::OuterSum { a: 0, b: 1, a_len: rows, b_len: cols, batch }], true).unwrap();
        prop_assert_eq!(dec(&neg[0]), outer.iter().map(|x| -x).collect::<Vec<_>>());
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }

    /// Inputs kept from a SecDot and sent again as the same packs to an outer product (a training
    /// step's gradient): both results equal the plaintext, the second request packs only δ, and
    /// a kept group is refused by another session.
    #[test]
    fn reused_input_packs_match_plaintext_and_skip_packing(rows in 1usize..4, cols in 1usize..30, batch in 1usize..3, seed in any::<i64>(), profile in 0u8..3) {
        let pk = key().public_key().clone();
        let val = |i: usize| seed.wrapping_add(i as i64 * 7919).wrapping_mul(2654435761) % (1 << 18);
        let m: Vec<i64> = (0..rows * cols).map(val).collect();
        let x: Vec<i64> = (0..cols * batch).map(|i| val(i + 100)).collect();
        let d: Vec<i64> = (0..rows * batch).map(|i| val(i + 300)).collect();
        let (mut s1, h) = session(by_index(profile));
        let (cm, cx, cd) = (enc(&pk, &m), enc(&pk, &x), enc(&pk, &d));
        let mut ops = vec![Operand::Fresh(&cm)];
        ops.extend(cx.chunks(cols).map(Operand::Fresh));
        let jobs: Vec<(Job, bool)> = (0..batch).map(|t| (Job::MatVec { mat: 0, vec: t + 1, rows, cols }, false)).collect();
        let (sums, kept) = s1.products_reusing(&ops, &jobs, Some(1)).unwrap();
        let kept = kept.expect("kept");
        prop_assert_eq!(kept.ciphertexts(), &cx[..]);
        for t in 0..batch {
            let want: Vec<i128> = (0..rows).map(|j| (0..cols).map(|i| m[j * cols + i] as i128 * x[t * cols + i] as i128).sum()).collect();
            prop_assert_eq!(dec(&sums[t]), want);
        }
        let before = s1.counts();
        let job = Job::OuterSum { a: 0, b: 1, a_len: rows, b_len: cols, batch };
        let (out, none) = s1.products_reusing(&[Operand::Fresh(&cd), Operand::Reused(&kept)], &[(job, true)], None).unwrap();
        prop_assert!(none.is_none());
        let outer: Vec<i128> = (0..rows * cols).map(|o| -(0..batch).map(|t| d[t * rows + o / cols] as i128 * x[t * cols + o % cols] as i128).sum::<i128>()).collect();
        prop_assert_eq!(dec(&out[0]), outer);
        // Only δ was packed: (len − 1)·W squarings per pack of δ's slots, nothing for the inputs.
        let per = ((pk.bits() - 2) / (fast().value_bits + fast().kappa + 10)) as u64;
        let slot_bits = u64::from(fast().value_bits + fast().kappa + 10);
        let dl = (rows * batch) as u64;
        let want_sq: u64 = (0..dl.div_ceil(per)).map(|p| (dl - p * per).min(per) - 1).sum::<u64>() * slot_bits;
        prop_assert_eq!(s1.counts().pack_squarings - before.pack_squarings, want_sq);
        // Another session refuses it.
        let (mut other, h2) = session(fast());
        let err = other.products_reusing(&[Operand::Fresh(&cd), Operand::Reused(&kept)], &[(job, false)], None).unwrap_err();
        prop_assert!(matches!(err, ProtocolError::InvalidRequest(_)), "{err:?}");
        other.close().unwrap();
        h2.join().unwrap().unwrap();
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }

    #[test]
    fn relu_is_exact_in_both_profiles(x in proptest::collection::vec(full(), 1..8), profile in 0u8..3) {
        let pk = key().public_key().clone();
        let (mut s1, h) = session(by_index(profile));
        let (r, d) = s1.relu(&enc(&pk, &x)).unwrap();
        prop_assert_eq!(dec(&r), x.iter().map(|&v| v.max(0) as i128).collect::<Vec<_>>());
        prop_assert_eq!(dec(&d), x.iter().map(|&v| i128::from(v > 0)).collect::<Vec<_>>());
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }

    #[test]
    fn truncation_exact_equals_floor_and_stochastic_within_one(x in proptest::collection::vec(full(), 1..8), k in 1u32..30) {
        let pk = key().public_key().clone();
        let floor: Vec<i128> = x.iter().map(|&v| (v >> k) as i128).collect();
        let (mut s1, h) = session(fast());
        let st = dec(&s1.truncate_with(&enc(&pk, &x), k, Truncation::Stochastic).unwrap());
        for (s, f) in st.iter().zip(&floor) {
            prop_assert!(*s == *f || *s == *f + 1, "stochastic {s} vs floor {f}");
        }
        let ex = dec(&s1.truncate_with(&enc(&pk, &x), k, Truncation::Exact).unwrap());
        prop_assert_eq!(ex, floor);
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }

    #[test]
    fn compare_and_argmax(scores in proptest::collection::vec(proptest::collection::vec(-1000i64..1000, 3), 1..4), profile in 0u8..3) {
        let pk = key().public_key().clone();
        let (mut s1, h) = session(by_index(profile));
        let flat: Vec<i64> = scores.iter().flatten().copied().collect();
        let pos = dec(&s1.positive(&enc(&pk, &flat)).unwrap());
        prop_assert_eq!(pos, flat.iter().map(|&v| i128::from(v > 0)).collect::<Vec<_>>());
        let cts: Vec<Vec<_>> = scores.iter().map(|s| enc(&pk, s)).collect();
        let hot = s1.argmax(&cts).unwrap();
        for (s, h1) in scores.iter().zip(&hot) {
            let best = (0..s.len()).fold(0, |b, i| if s[i] > s[b] { i } else { b });
            let want: Vec<i128> = (0..s.len()).map(|i| i128::from(i == best)).collect();
            prop_assert_eq!(dec(h1), want);
        }
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }
}

#[test]
fn division_by_public_constants() {
    let pk = key().public_key().clone();
    let x: Vec<i64> = vec![
        0,
        1,
        -1,
        6,
        -6,
        7,
        1000,
        -1000,
        LIM - 1,
        -LIM + 1,
        123456789,
    ];
    for params in [
        fast(),
        SessionParams {
            comparison: Comparison::Dgk,
            ..fast()
        },
    ] {
        let (mut s1, h) = session(params);
        for d in [2u64, 3, 6, 10, 1000, (1 << 20) + 7] {
            let floor: Vec<i128> = x.iter().map(|&v| v.div_euclid(d as i64) as i128).collect();
            let ex = dec(&s1.divide(&enc(&pk, &x), d, Truncation::Exact).unwrap());
            assert_eq!(ex, floor, "exact division by {d}");
            let st = dec(&s1.divide(&enc(&pk, &x), d, Truncation::Stochastic).unwrap());
            for (s, f) in st.iter().zip(&floor) {
                assert!(
                    *s == *f || *s == *f + 1,
                    "stochastic division by {d}: {s} vs {f}"
                );
            }
        }
        assert!(s1.divide(&enc(&pk, &x), 1, Truncation::Exact).is_err());
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }
}

#[test]
fn relu_boundary_values() {
    let pk = key().public_key().clone();
    let x = [0, 1, -1, LIM - 1, -LIM + 1, 2, -2];
    for p in [fast(), strict(), strict_dgk()] {
        let (mut s1, h) = session(p);
        let (r, d) = s1.relu(&enc(&pk, &x)).unwrap();
        assert_eq!(
            dec(&r),
            x.iter().map(|&v| v.max(0) as i128).collect::<Vec<_>>()
        );
        assert_eq!(
            dec(&d),
            x.iter().map(|&v| i128::from(v > 0)).collect::<Vec<_>>()
        );
        s1.close().unwrap();
        h.join().unwrap().unwrap();
    }
}

#[test]
fn stochastic_truncation_is_unbiased() {
    let pk = key().public_key().clone();
    let (mut s1, h) = session(fast());
    // 5 / 8 = 0.625: the rounded-up result 1 should appear with probability 0.625.
    let x = vec![5i64; 400];
    let out = dec(&s1
        .truncate_with(&enc(&pk, &x), 3, Truncation::Stochastic)
        .unwrap());
    let ups = out.iter().filter(|&&v| v == 1).count();
    assert!(out.iter().all(|&v| v == 0 || v == 1));
    assert!(
        (200..300).contains(&ups),
        "{ups} of 400 rounded up, expected about 250"
    );
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn random_values_are_in_range_and_vary() {
    let (mut s1, h) = session(fast());
    let v = s1
        .random_values(&[(50, BigInt::from(1000)), (10, BigInt::from(0))])
        .unwrap();
    let a = dec(&v[0]);
    assert!(a.iter().all(|x| (-1000..=1000).contains(x)));
    assert!(a.iter().collect::<std::collections::HashSet<_>>().len() > 30);
    assert_eq!(dec(&v[1]), vec![0; 10]);
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn out_of_range_value_is_reported_and_ends_the_session() {
    let pk = key().public_key().clone();
    let ok = enc(&pk, &[3]);
    // ℓ = 40, κ = 40: ±2^84 is far outside |x| < 2^40 and inside S2's guard band
    // [2^(ℓ+κ+1), 2^(ℓ+κ+8)), where detection is certain.
    let big: BigInt = BigInt::from(1) << 84;
    type Probe =
        fn(&mut secure_ops::S1<Mem>, &Ciphertext, &[Ciphertext]) -> Result<(), ProtocolError>;
    let probes: [Probe; 3] = [
        |s1, huge, ok| s1.mul(std::slice::from_ref(huge), ok).map(|_| ()),
        |s1, huge, _| s1.relu(std::slice::from_ref(huge)).map(|_| ()),
        |s1, huge, _| s1.truncate(std::slice::from_ref(huge), 4).map(|_| ()),
    ];
    for v in [big.clone(), -big + 12345] {
        let huge = pk.encrypt(&v, &mut rand::thread_rng()).unwrap();
        for (i, probe) in probes.iter().enumerate() {
            let (mut s1, h) = session(fast());
            let r = probe(&mut s1, &huge, &ok);
            assert!(
                matches!(r, Err(ProtocolError::OutOfRange { .. })),
                "{i}: {r:?}"
            );
            // S2 ended the session: nothing more is answered on it.
            assert!(s1.mul(&ok, &ok).unwrap_err().is_closed());
            match h.join().unwrap() {
                Err(ProtocolError::Refused { out_of_range, .. }) => assert!(out_of_range),
                other => panic!("{i}: S2 should end the session, got {other:?}"),
            }
        }
    }
    // A new session works.
    let (mut s1, h) = session(fast());
    assert_eq!(dec(&s1.mul(&ok, &ok).unwrap()), vec![9]);
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn handshake_refuses_wrong_key_and_bad_params() {
    let other = {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(99);
        paillier::SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap()
    };
    let (c1, c2) = pair();
    let sk = key().clone();
    let h =
        std::thread::spawn(move || secure_ops::S2Service::new(sk, Default::default()).serve(c2));
    let err = secure_ops::S1::connect(other.public_key().clone(), c1, fast())
        .err()
        .unwrap();
    assert!(
        matches!(&err, ProtocolError::Handshake(m) if m.contains("key mismatch")),
        "{err}"
    );
    assert!(matches!(
        h.join().unwrap(),
        Err(ProtocolError::Handshake(_))
    ));
    // κ below the minimum and ℓ too large for the key are refused before anything is sent.
    // f must lie in 1..ℓ.
    for f in [0, 40, 41] {
        let (c1, _c2) = pair();
        let bad = SessionParams {
            frac_bits: f,
            ..fast()
        };
        let e = secure_ops::S1::connect(key().public_key().clone(), c1, bad)
            .err()
            .unwrap();
        assert!(e.to_string().contains("frac_bits"), "{e}");
    }
    let (c1, _c2) = pair();
    let bad = SessionParams {
        kappa: 20,
        ..fast()
    };
    assert!(matches!(
        secure_ops::S1::connect(key().public_key().clone(), c1, bad),
        Err(ProtocolError::InvalidParams(_))
    ));
    let (c1, _c2) = pair();
    let bad = SessionParams {
        value_bits: 200,
        kappa: 80,
        ..fast()
    };
    let e = secure_ops::S1::connect(key().public_key().clone(), c1, bad)
        .err()
        .unwrap();
    assert!(e.to_string().contains("need a key of at least"), "{e}");
}

#[test]
fn key_switching_moves_values_to_another_tenants_key_exactly_and_only_to_one_s2_holds() {
    use paillier::SecretKey;
    use rand::SeedableRng;
    use secure_ops::{S2Options, S2Service, TenantKeys, S1};
    use std::sync::Arc;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(31);
    let other = SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap();
    let stranger = SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap();
    let held = other.public_key().clone();
    let tenants = TenantKeys(Arc::new(move |fp: &paillier::Fingerprint| {
        (*fp == held.fingerprint()).then(|| held.clone())
    }));
    for profile in [Profile::Strict, Profile::Fast] {
        let params = small_params(profile);
        let (c1, c2) = pair();
        let sk = key().clone();
        let opts = S2Options {
            tenants: Some(tenants.clone()),
            ..S2Options::without_pool()
        };
        let s2 = std::thread::spawn(move || S2Service::new(sk, opts).serve(c2));
        let mut s1 = S1::connect(key().public_key().clone(), c1, params).unwrap();
        let bound = (1i64 << params.value_bits) - 1;
        let xs: Vec<i64> = vec![0, 1, -1, 12345, -99999, bound, -bound];
        let moved = s1
            .switch_key(&enc(key().public_key(), &xs), other.public_key())
            .unwrap();
        let back: Vec<i64> = moved
            .iter()
            .map(|c| i64::try_from(other.decrypt(c).unwrap()).unwrap())
            .collect();
        assert_eq!(back, xs, "{profile}");
        // A key S2 does not hold is refused (S2 ends the session).
        let err = s1
            .switch_key(&enc(key().public_key(), &[5]), stranger.public_key())
            .unwrap_err();
        assert!(err.to_string().contains("holds no key"), "{err}");
        assert!(s2.join().unwrap().is_err());
    }
}
