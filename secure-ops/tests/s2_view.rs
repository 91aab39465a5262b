//! What S2 sees. An observer on the S2 service records every value S2 decrypts, and a recording
//! channel records every frame S1 sends; the tests check the hiding the protocols promise:
//!
//! * fast SecReLU: the sign of the decrypted y is a fair coin whatever x is, and |y| does not
//!   depend on the sign of x; |y| does reveal the bit-length of |x| (pinned below);
//! * strict comparison: the blinded z looks uniform and the DGK zero tests are random non-zero
//!   values with at most one zero per comparison, present with probability 1/2;
//! * SecMul: the blinded operands of two very different inputs are indistinguishable at the
//!   test's resolution, and no value S2 ever decrypts equals an input or a product of inputs;
//! * every ciphertext S1 sends is fresh, even when the same inputs are sent twice.
//!
//! The statistical checks are smoke tests at the resolution of a few hundred samples (they catch
//! a missing, short or reused blind, not a 2^-κ bias); every band is 5 sigma or α = 10^-6 wide, so
//! a correct implementation fails one of them with probability below 10^-5.
//! Small keys: none of these properties depends on the key size.

mod common;
use common::*;
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{Signed, Zero};
use paillier::Ciphertext;
use secure_ops::messages::{Request, SubProtocol};
use secure_ops::{
    Channel, ChannelError, Comparison, Profile, S2Options, S2Service, S2View, SessionParams, S1,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

const L: u32 = 40;
const KAPPA: u32 = 40;

fn params(profile: Profile) -> SessionParams {
    SessionParams {
        value_bits: L,
        frac_bits: 16,
        kappa: KAPPA,
        profile,
        ..SessionParams::default()
    }
}

/// A value S2 decrypted.
#[derive(Clone, Debug)]
enum Seen {
    Slot {
        op: SubProtocol,
        index: usize,
        value: BigInt,
    },
    /// A DGK zero-test value, fully decrypted (in [0, u)).
    Zero { group: usize, value: u32 },
    /// Strict-profile range check: must be 0 for in-range inputs.
    Range { value: BigUint },
    /// The bit S2 decodes from a garbled comparison.
    Garbled { group: usize, value: bool },
}

/// Everything the S2 observer saw, in order (zero tests in rayon order).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn observer(&self) -> secure_ops::S2Observer {
        let log = Arc::clone(&self.0);
        Arc::new(move |v: &S2View<'_>| {
            let seen = match *v {
                S2View::Slot { op, index, value } => Seen::Slot {
                    op,
                    index,
                    value: value.clone(),
                },
                S2View::ZeroTest { group, value } => Seen::Zero { group, value },
                S2View::RangeCheck { value } => Seen::Range {
                    value: value.clone(),
                },
                S2View::Garbled { group, value } => Seen::Garbled { group, value },
            };
            log.lock().unwrap().push(seen);
        })
    }
    /// Everything seen since the last call.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    /// Slot values of operation `want` at the positions `keep` accepts, since the last call.
    fn slots(&self, want: SubProtocol, keep: impl Fn(usize) -> bool) -> Vec<BigInt> {
        self.take()
            .into_iter()
            .filter_map(|s| match s {
                Seen::Slot { op, index, value } if op == want && keep(index) => Some(value),
                _ => None,
            })
            .collect()
    }
}

/// Frames S1 sent.
#[derive(Clone, Default)]
struct Sent(Arc<Mutex<Vec<Vec<u8>>>>);

impl Sent {
    fn requests(&self) -> Vec<Request> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .iter()
            .map(|f| postcard::from_bytes(f).expect("S1 sends well-formed requests"))
            .collect()
    }
}

/// A channel that records every frame sent through it.
struct Recording<C> {
    inner: C,
    sent: Sent,
}

impl<C: Channel> Channel for Recording<C> {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        self.sent.0.lock().unwrap().push(frame.to_vec());
        self.inner.send_frame(frame)
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.inner.recv_frame()
    }
}

/// S1 connected to an S2 thread whose decryptions are recorded, over a recording channel.
fn observed(params: SessionParams) -> (S1<Recording<Mem>>, Running, Recorder, Sent) {
    let (c1, c2) = pair();
    let rec = Recorder::default();
    let svc =
        S2Service::new(key().clone(), S2Options::without_pool()).with_observer(rec.observer());
    let h = std::thread::spawn(move || svc.serve(c2));
    let sent = Sent::default();
    let chan = Recording {
        inner: c1,
        sent: sent.clone(),
    };
    let s1 = S1::connect(key().public_key().clone(), chan, params).unwrap();
    sent.requests(); // the handshake
    (s1, h, rec, sent)
}

fn finish<C: Channel>(s1: S1<C>, h: Running) {
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

/// Number of successes out of `n` fair coins lies within 5 sigma of n/2.
fn assert_fair_coin(successes: usize, n: usize, what: &str) {
    let mean = n as f64 / 2.0;
    let five_sigma = 5.0 * (n as f64 / 4.0).sqrt();
    assert!(
        (successes as f64 - mean).abs() <= five_sigma,
        "{what}: {successes} of {n}, expected {mean} ± {five_sigma:.0}"
    );
}

/// Two-sample Kolmogorov–Smirnov statistic D = sup |F_a − F_b|.
fn ks_statistic(a: &[BigInt], b: &[BigInt]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let v = if a[i] <= b[j] {
            a[i].clone()
        } else {
            b[j].clone()
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    d
}

/// Critical value of the two-sample KS statistic at significance α = 10^-6.
fn ks_critical(na: usize, nb: usize) -> f64 {
    let c = (-(1e-6f64 / 2.0).ln() / 2.0).sqrt(); // ≈ 2.69
    c * ((na + nb) as f64 / (na as f64 * nb as f64)).sqrt()
}

fn assert_indistinguishable(a: &[BigInt], b: &[BigInt], what: &str) {
    let (d, crit) = (ks_statistic(a, b), ks_critical(a.len(), b.len()));
    assert!(d < crit, "{what}: KS statistic {d:.3} ≥ {crit:.3}");
}

const RUNS: usize = 300;
const BATCH: usize = 100;

/// The y values (first slot of each pair) S2 decrypts in fast SecReLU on `RUNS` copies of ⟦x⟧.
fn fast_relu_y(x: i64) -> Vec<BigInt> {
    let pk = key().public_key().clone();
    let (mut s1, h, rec, _) = observed(params(Profile::Fast));
    let mut ys = Vec::new();
    for _ in 0..RUNS / BATCH {
        let (r, d) = s1.relu(&enc(&pk, &vec![x; BATCH])).unwrap();
        assert_eq!(dec(&r), vec![x.max(0) as i128; BATCH]);
        assert_eq!(dec(&d), vec![i128::from(x > 0); BATCH]);
        ys.extend(rec.slots(SubProtocol::SecReLU, |i| i % 2 == 0));
    }
    finish(s1, h);
    assert_eq!(ys.len(), RUNS);
    ys
}

/// Fast SecReLU on a fixed x: S2 decrypts y = s(a(2x − 1) + b) with a fresh coin s, a ∈ [2^κ,
/// 2^(κ+1)) and b ∈ (−a, a). The sign of y is s·sign(x): a fair coin for any x.
///
/// LEAKAGE (documented, by design of the one-round protocol): |y| = a|2x − 1| ± b lies in
/// (2^κ (|2x−1| − 1), 2^(κ+1) (|2x−1| + 1)), so S2 learns the bit-length of |2x − 1| up to ±1,
/// i.e. roughly log2 |x|. It does not learn the sign: with b symmetric around 0 the distribution
/// of |y| is the same for x' = 2x − 1 and −x' (checked below for x = ±12345 and for 0 vs 1, the
/// pair of inputs where a one-sided b would give the sign away).
#[test]
fn fast_relu_sign_is_a_fair_coin_and_magnitude_leaks_only_bit_length() {
    let mut by_x = Vec::new();
    for x in [12345i64, -12345] {
        let ys = fast_relu_y(x);
        let positive = ys.iter().filter(|y| y.sign() == Sign::Plus).count();
        assert_fair_coin(positive, RUNS, &format!("sign of y for x = {x}"));
        // The documented leak: bit-length of |y| is κ + bit-length(|2x − 1|) + {−1, 0, 1}.
        let xbits = BigInt::from(2 * x - 1).bits() as i64; // 15 for |x| = 12345
        for y in &ys {
            let ybits = y.bits() as i64;
            assert!(
                (ybits - KAPPA as i64 - xbits).abs() <= 1,
                "|y| has {ybits} bits for x = {x}"
            );
        }
        by_x.push(ys.iter().map(|y| y.abs()).collect::<Vec<_>>());
    }
    assert_indistinguishable(&by_x[0], &by_x[1], "|y| for x = 12345 vs x = -12345");

    // x = 0 and x = 1 test x' = −1 and +1. With b ∈ [0, a) instead of (−a, a), |y| would lie in
    // (0, a] for x = 0 and in [a, 2a) for x = 1, and S2 would tell them apart 69% of the time.
    let zero: Vec<BigInt> = fast_relu_y(0).iter().map(|y| y.abs()).collect();
    let one: Vec<BigInt> = fast_relu_y(1).iter().map(|y| y.abs()).collect();
    assert_indistinguishable(&zero, &one, "|y| for x = 0 vs x = 1");
}

/// The KS check has the power the tests above rely on: it sees a shift of a quarter of the
/// blinding range, and the one-sided b of the paper-style construction for x = 0 vs 1.
#[test]
fn ks_statistic_detects_what_it_should() {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let span = 1u64 << 40;
    let u: Vec<BigInt> = (0..RUNS)
        .map(|_| BigInt::from(rng.gen_range(0..span)))
        .collect();
    let shifted: Vec<BigInt> = (0..RUNS)
        .map(|_| BigInt::from(rng.gen_range(0..span) + span / 2))
        .collect();
    assert!(ks_statistic(&u, &shifted) > ks_critical(RUNS, RUNS));
    // a ∈ [2^20, 2^21), b ∈ [0, a): |a·(−1) + b| vs |a·1 + b|.
    let mut one_sided = |sign: i64| -> Vec<BigInt> {
        (0..RUNS)
            .map(|_| {
                let a = rng.gen_range(1i64 << 20..1 << 21);
                let b = rng.gen_range(0..a);
                BigInt::from((sign * a + b).abs())
            })
            .collect()
    };
    let (neg, pos) = (one_sided(-1), one_sided(1));
    assert!(ks_statistic(&neg, &pos) > ks_critical(RUNS, RUNS));
    assert!(ks_statistic(&u, &u) == 0.0);
}

/// Strict comparison with DGK: S2 sees z = x' + 2^m + r (m = ℓ + 1, r ∈ [0, 2^(m+κ))), which
/// hides x up to 2^-κ, and DGK zero tests: random non-zero values, with at most one zero per
/// comparison and a zero present with probability exactly 1/2 (it is S1's coin, not the
/// comparison's outcome). ℓ = 8 here: the view does not depend on ℓ, and the DGK cost grows with
/// it.
#[test]
fn strict_comparison_view_is_uniform_blinded_values_and_coin_flip_zeros() {
    const L8: u32 = 8;
    const STRICT_RUNS: usize = 200;
    let m = L8 + 1;
    let mut zs_by_x = Vec::new();
    for x in [100i64, -100] {
        let (mut s1, h, rec, _) = observed(SessionParams {
            value_bits: L8,
            frac_bits: 4,
            comparison: Comparison::Dgk,
            ..params(Profile::Strict)
        });
        let u = s1.dgk_public_key().u();
        let mut zs = Vec::new();
        let mut with_zero = 0;
        let mut nonzero = Vec::new();
        for _ in 0..STRICT_RUNS / BATCH {
            let mut groups: Vec<Vec<u32>> = vec![Vec::new(); BATCH];
            for s in compare_batch(&mut s1, &rec, x, &mut zs) {
                match s {
                    Seen::Zero { group, value } => groups[group].push(value),
                    other => panic!("{other:?} in a DGK session's comparison"),
                }
            }
            for g in &groups {
                assert_eq!(g.len(), m as usize + 1, "one value per bit of d' = 2d + 1");
                let zeros = g.iter().filter(|v| **v == 0).count();
                assert!(zeros <= 1, "{zeros} zeros in one comparison");
                with_zero += zeros;
                nonzero.extend(g.iter().copied().filter(|v| *v != 0));
            }
        }
        finish(s1, h);
        // The non-zero values are uniform in Z_u* = [1, u): every one below u, the upper half as
        // often as a fair coin says, the mean within 5σ of u/2 (variance u²/12 per value), and
        // no residue more often than a few times its share.
        assert!(nonzero.iter().all(|v| *v < u), "DGK value outside Z_u");
        let upper = nonzero.iter().filter(|v| **v > u / 2).count();
        assert_fair_coin(
            upper,
            nonzero.len(),
            &format!("upper half of Z_u*, x = {x}"),
        );
        let mean = nonzero.iter().map(|v| f64::from(*v)).sum::<f64>() / nonzero.len() as f64;
        let sd = f64::from(u) / (12.0 * nonzero.len() as f64).sqrt();
        assert!(
            (mean - f64::from(u) / 2.0).abs() < 5.0 * sd,
            "mean of the non-zero DGK values {mean}, u = {u}"
        );
        let mut counts = std::collections::HashMap::new();
        for v in &nonzero {
            *counts.entry(*v).or_insert(0usize) += 1;
        }
        let expect = nonzero.len() as f64 / f64::from(u - 1);
        let most = *counts.values().max().unwrap() as f64;
        assert!(
            most < 8.0 * expect + 10.0,
            "a residue appeared {most} times ({expect} expected)"
        );
        assert_eq!(zs.len(), STRICT_RUNS);
        assert_fair_coin(with_zero, STRICT_RUNS, &format!("zero present, x = {x}"));
        assert_blinded_z(&zs, m);
        zs_by_x.push(zs);
    }
    assert_indistinguishable(&zs_by_x[0], &zs_by_x[1], "z for x = 100 vs -100");
}

/// One request of BATCH strict comparisons of x (`positive`), its results checked: pushes the
/// blinded z's S2 saw onto `zs` and returns the rest of what it saw, less the range check's
/// SecMul slots (blinded bits only) and its decryption (asserted to be 0: in range).
fn compare_batch<C: Channel>(
    s1: &mut S1<C>,
    rec: &Recorder,
    x: i64,
    zs: &mut Vec<BigInt>,
) -> Vec<Seen> {
    let pk = key().public_key();
    let pos = s1.positive(&enc(pk, &vec![x; BATCH])).unwrap();
    assert_eq!(dec(&pos), vec![i128::from(x > 0); BATCH]);
    let mut rest = Vec::new();
    for s in rec.take() {
        match s {
            Seen::Slot {
                op: SubProtocol::SecMul,
                ..
            } => {}
            Seen::Slot { op, value, .. } => {
                assert_eq!(op, SubProtocol::SecCompare);
                zs.push(value);
            }
            Seen::Range { value } => assert!(value.is_zero(), "in-range check not 0"),
            other => rest.push(other),
        }
    }
    rest
}

/// A strict comparison's blinded values z = x' + 2^m + r: odd or even with probability 1/2, and
/// the top bit of the blind a fair coin.
fn assert_blinded_z(zs: &[BigInt], m: u32) {
    let odd = zs.iter().filter(|z| z.bit(0)).count();
    assert_fair_coin(odd, zs.len(), "low bit of z");
    let top = zs
        .iter()
        .filter(|z| z.bit(u64::from(m + KAPPA - 1)))
        .count();
    assert_fair_coin(top, zs.len(), "top blinding bit of z");
}

/// Strict comparison with garbled circuits (the default): S2 sees the same z as with DGK and,
/// per comparison, one decoded bit λ' = 1{d < c} ⊕ S1's coin — a fair coin whatever x (here the
/// comparison's outcome is the same every time, so a λ' that followed it would be constant) —
/// and never anything else in the clear: its labels and the tables are fresh random strings
/// (checked in `every_ciphertext_s1_sends_is_fresh`). With the coin removed (the attack a
/// missing coin would allow), λ' would equal the outcome: the test would fail.
#[test]
fn garbled_comparison_view_is_uniform_blinded_values_and_a_coin() {
    const RUNS: usize = 400;
    let m = L + 1;
    let mut zs_by_x = Vec::new();
    for x in [100i64, -100] {
        let (mut s1, h, rec, _) = observed(params(Profile::Strict));
        let (mut zs, mut lambdas) = (Vec::new(), Vec::new());
        for _ in 0..RUNS / BATCH {
            let mut groups = vec![0usize; BATCH];
            for s in compare_batch(&mut s1, &rec, x, &mut zs) {
                match s {
                    Seen::Garbled { group, value } => {
                        groups[group] += 1;
                        lambdas.push(value);
                    }
                    other => panic!("{other:?} in a garbled session's comparison"),
                }
            }
            assert!(groups.iter().all(|g| *g == 1), "one bit per comparison");
        }
        finish(s1, h);
        assert_eq!((zs.len(), lambdas.len()), (RUNS, RUNS));
        let ones = lambdas.iter().filter(|b| **b).count();
        assert_fair_coin(ones, RUNS, &format!("λ' for x = {x}"));
        assert_blinded_z(&zs, m);
        zs_by_x.push(zs);
    }
    assert_indistinguishable(&zs_by_x[0], &zs_by_x[1], "z for x = 100 vs -100");
}

/// SecMul: the blinded operands u = x + r (r ∈ [0, 2^(ℓ+κ))) S2 decrypts for x = 3 and x = 2^30
/// are indistinguishable at the test's resolution (KS on u >> 20, mean of the top byte).
#[test]
fn secmul_blinded_operands_do_not_depend_on_the_input() {
    let pk = key().public_key().clone();
    let (mut s1, h, rec, _) = observed(params(Profile::Fast));
    let mut us = Vec::new();
    for x in [3i64, 1 << 30] {
        let mut u = Vec::new();
        for _ in 0..RUNS / BATCH {
            let a = enc(&pk, &vec![x; BATCH]);
            let b = enc(&pk, &vec![5; BATCH]);
            assert_eq!(dec(&s1.mul(&a, &b).unwrap()), vec![5 * x as i128; BATCH]);
            u.extend(rec.slots(SubProtocol::SecMul, |i| i < BATCH));
        }
        assert_eq!(u.len(), RUNS);
        let lo = BigInt::from(x);
        let hi = (BigInt::from(1) << (L + KAPPA)) + x;
        assert!(
            u.iter().all(|v| v >= &lo && v < &hi),
            "u outside x + [0, 2^(ℓ+κ))"
        );
        us.push(u);
    }
    finish(s1, h);
    let high = |v: &[BigInt]| -> Vec<BigInt> { v.iter().map(|u| u >> 20u32).collect() };
    assert_indistinguishable(&high(&us[0]), &high(&us[1]), "u >> 20 for x = 3 vs 2^30");
    // Mean of the top byte of u: uniform on [0, 256), sd of a mean of 300 is 4.3.
    let top_mean = |v: &[BigInt]| -> f64 {
        let s: u64 = v
            .iter()
            .map(|u| u64::try_from(u >> (L + KAPPA - 8)).unwrap())
            .sum();
        s as f64 / v.len() as f64
    };
    let (m0, m1) = (top_mean(&us[0]), top_mean(&us[1]));
    let sd_diff = (2.0f64 * 256.0 * 256.0 / 12.0 / RUNS as f64).sqrt();
    assert!(
        (m0 - m1).abs() < 5.0 * sd_diff,
        "top-byte means {m0} vs {m1}"
    );
    assert!(
        (m0 - 127.5).abs() < 5.0 * sd_diff / 2f64.sqrt(),
        "top-byte mean {m0}"
    );
}

/// A full relu/mul/truncate/dot/compare/argmax sequence, in both profiles, on inputs drawn from a
/// known set: no value S2 decrypts (slot or zero test, read as signed) equals an input, a
/// product of two inputs, a truncated value or any of their negations.
#[test]
fn s2_never_sees_an_input_or_a_product() {
    use rand::seq::SliceRandom;
    // Products of two values stay below 2^38, inside ℓ = 40.
    const SET: [i64; 10] = [
        3,
        -7,
        12,
        255,
        -1000,
        4096,
        65537,
        -(1 << 19) + 1,
        300_001,
        1,
    ];
    let pk = key().public_key().clone();
    let mut forbidden: HashSet<BigInt> = HashSet::new();
    for &a in &SET {
        forbidden.insert(BigInt::from(a));
        for &b in &SET {
            forbidden.insert(BigInt::from(a) * b);
            forbidden.insert((BigInt::from(a) * b) >> 8u32);
        }
    }
    let negs: Vec<BigInt> = forbidden.iter().map(|v| -v).collect();
    forbidden.extend(negs);
    for profile in [Profile::Fast, Profile::Strict] {
        let (mut s1, h, rec, _) = observed(params(profile));
        let mut rng = rand::thread_rng();
        let xs: Vec<i64> = (0..12).map(|_| *SET.choose(&mut rng).unwrap()).collect();
        let ys: Vec<i64> = (0..12).map(|_| *SET.choose(&mut rng).unwrap()).collect();
        let (cx, cy) = (enc(&pk, &xs), enc(&pk, &ys));
        let (relu, _) = s1.relu(&cx).unwrap();
        let prod = s1.mul(&relu, &cy).unwrap();
        let trunc = s1.truncate(&prod, 8).unwrap();
        let dot = s1.dot(&cx, &cy).unwrap();
        let pos = s1.positive(&trunc).unwrap();
        let scores: Vec<Vec<Ciphertext>> = cx.chunks(3).map(<[Ciphertext]>::to_vec).collect();
        let hot = s1.argmax(&scores).unwrap();
        // The results are right...
        let want_prod: Vec<i128> = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| x.max(0) as i128 * y as i128)
            .collect();
        assert_eq!(dec(&prod), want_prod);
        let t = dec(&trunc);
        for (t, p) in t.iter().zip(&want_prod) {
            assert!(*t == p >> 8 || (profile == Profile::Fast && *t == (p >> 8) + 1));
        }
        assert_eq!(
            dec(&[dot])[0],
            xs.iter()
                .zip(&ys)
                .map(|(&x, &y)| x as i128 * y as i128)
                .sum::<i128>()
        );
        assert_eq!(
            dec(&pos),
            t.iter().map(|&v| i128::from(v > 0)).collect::<Vec<_>>()
        );
        assert_eq!(hot.len(), 4);
        // ...and S2 saw none of the values involved.
        let seen = rec.take();
        let comparisons = seen
            .iter()
            .filter(|s| matches!(s, Seen::Zero { .. } | Seen::Garbled { .. }))
            .count();
        assert_eq!(comparisons > 0, profile == Profile::Strict);
        for s in seen {
            let v = match s {
                Seen::Slot { value, .. } => value,
                // DGK values live in Z_u and are blinded by ρ ∈ Z_u*: a zero carries S1's coin
                // only, anything else is uniform; neither is a value of the computation.
                Seen::Zero { .. } => continue,
                // A garbled comparison's bit is S1's coin xor the outcome: a uniform bit.
                Seen::Garbled { .. } => continue,
                // Range checks of in-range values decrypt to 0.
                Seen::Range { value } => {
                    assert!(value.is_zero(), "range check not 0 ({profile})");
                    continue;
                }
            };
            assert!(!forbidden.contains(&v), "S2 saw {v} ({profile})");
        }
        finish(s1, h);
    }
}

/// Every ciphertext S1 sends is fresh: the same mul (and strict comparison) on the same input
/// ciphertexts twice sends packed ciphertexts and DGK values, or garbled tables, labels and OT
/// answers, that share nothing with each other or with the inputs, and S2 sees different
/// blinded values.
#[test]
fn every_ciphertext_s1_sends_is_fresh() {
    let pk = key().public_key().clone();
    let strict_dgk = SessionParams {
        comparison: Comparison::Dgk,
        ..params(Profile::Strict)
    };
    for params in [params(Profile::Fast), params(Profile::Strict), strict_dgk] {
        let profile = params.profile;
        let (mut s1, h, rec, sent) = observed(params);
        let mut blocks: HashSet<u128> = HashSet::new();
        let a = enc(&pk, &[3, -4, 5, 0, 7]);
        let b = enc(&pk, &[2, 2, -1, 9, 1]);
        let mut all: HashSet<Ciphertext> = a.iter().chain(&b).cloned().collect();
        let mut all_dgk: HashSet<paillier::dgk::Ciphertext> = HashSet::new();
        let mut blinded: Vec<Vec<BigInt>> = Vec::new();
        for _ in 0..2 {
            assert_eq!(dec(&s1.mul(&a, &b).unwrap()), vec![6, -8, -5, 0, 7]);
            blinded.push(rec.slots(SubProtocol::SecMul, |_| true));
            if profile == Profile::Strict {
                assert_eq!(dec(&s1.positive(&a).unwrap()), vec![1, 0, 1, 0, 1]);
                rec.take();
            }
        }
        assert_eq!(blinded[0].len(), 10);
        assert!(
            blinded[0].iter().zip(&blinded[1]).all(|(u, v)| u != v),
            "S2 saw a blinded value twice"
        );
        let mut count = 0;
        for req in sent.requests() {
            let cts: Vec<Ciphertext> = match req {
                Request::Eval { packs, .. } => packs,
                Request::ZeroTest { groups } => {
                    for c in groups.into_iter().flatten() {
                        count += 1;
                        assert!(all_dgk.insert(c), "a DGK ciphertext was sent twice");
                    }
                    continue;
                }
                Request::Garbled {
                    answers,
                    tables,
                    starts,
                    ..
                } => {
                    for b in [answers, tables, starts] {
                        for block in yao::bytes_to_blocks(&b).unwrap() {
                            count += 1;
                            assert!(blocks.insert(block), "a garbled block was sent twice");
                        }
                    }
                    continue;
                }
                // The session's base OTs, before its first comparison: fresh points.
                Request::BaseOt { points } => {
                    let fresh: HashSet<[u8; 32]> = points.iter().copied().collect();
                    assert_eq!(fresh.len(), points.len(), "a base-OT point was sent twice");
                    continue;
                }
                Request::AssertZero { cts } => cts,
                other => panic!("unexpected request {other:?}"),
            };
            for c in cts {
                count += 1;
                assert!(
                    all.insert(c),
                    "a ciphertext was sent twice or equals an input"
                );
            }
        }
        assert!(count >= 2);
        finish(s1, h);
    }
}

/// DOCUMENTED LEAK of the fast profile (docs/protocols.md, "Argmax"): the magnitudes S2 sees in
/// the two comparison rounds of argmax let it guess the predicted class. Round 1 shows
/// |sᵢ − sⱼ| roughly, so the pair with the largest |y| is likely (best, worst); round 2 tests
/// wins − 1 per class (k = 3), where the class that lost both duels has |x'| = 3 and the others 1.
/// On random scores this guess is right about 85% of the time against 33% by chance. The strict
/// profile's argmax shows S2 nothing (see the strict comparison test). If the fast argmax is
/// hardened, turn this assertion around.
#[test]
fn fast_argmax_lets_s2_guess_the_predicted_class() {
    use rand::Rng;
    let pk = key().public_key().clone();
    let (mut s1, h, rec, _) = observed(params(Profile::Fast));
    let mut rng = rand::thread_rng();
    let trials = 150;
    let mut right = 0;
    for _ in 0..trials {
        let s: Vec<i64> = (0..3).map(|_| rng.gen_range(-1000..1000)).collect();
        let best = (0..3).fold(0, |b, i| if s[i] > s[b] { i } else { b });
        let hot = s1.argmax(&[enc(&pk, &s)]).unwrap();
        assert_eq!(
            dec(&hot[0]),
            (0..3).map(|i| i128::from(i == best)).collect::<Vec<_>>()
        );
        // Slots in request order: round 1 pairs (0,1), (0,2), (1,2); round 2 classes 0, 1, 2.
        let ys: Vec<BigInt> = rec
            .slots(SubProtocol::SecReLU, |_| true)
            .iter()
            .map(|y| y.abs())
            .collect();
        assert_eq!(ys.len(), 6);
        let largest = |v: &[BigInt]| (0..3).max_by_key(|&i| v[i].clone()).unwrap();
        let (i, j) = [(0, 1), (0, 2), (1, 2)][largest(&ys[..3])];
        let loser = largest(&ys[3..]);
        // The member of the widest pair that did not lose both duels (a coin if neither did).
        let guess = match (i == loser, j == loser) {
            (true, _) => j,
            (_, true) => i,
            _ if rng.gen() => i,
            _ => j,
        };
        right += usize::from(guess == best);
    }
    finish(s1, h);
    // Chance is 50 ± 6 (sd); 5 sigma above chance is 79.
    assert!(
        right > 79,
        "S2 guessed the argmax {right} of {trials} times"
    );
}
