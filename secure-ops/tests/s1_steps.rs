//! S1 without I/O: each sub-protocol's `prepare` and `finish` on `S1Core`, with S2 answering
//! as a function of the request (`S2Session::handle`) — no channel, no thread. Every step's
//! result is checked against the plaintext computation, and the operation counts charged per
//! sub-protocol add up to the session's.

mod common;
use common::*;
use secure_ops::messages::{Request, Response};
use secure_ops::{
    Comparison, DivideStep, Divided, Job, OpCounts, Operand, Profile, ProtocolError, S1Core,
    S2Options, S2Service, S2Session, SessionParams, Step, SubProtocol, Truncation,
};

/// S1's core and S2's session after the handshake, both without I/O.
fn open(svc: &S2Service, profile: Profile) -> (S1Core, S2Session<'_>) {
    open_with(svc, small_params(profile))
}

fn open_with(svc: &S2Service, params: SessionParams) -> (S1Core, S2Session<'_>) {
    let pk = key().public_key().clone();
    let hello = S1Core::hello(&pk, &params).unwrap();
    let (mut session, welcome) = svc.open(hello).map_err(|(_, e)| e).unwrap();
    let core = S1Core::accept(pk, params, welcome).unwrap();
    // A garbled session's base OTs (the default comparison), before the first comparison.
    if let Some(request) = core.base_ot_request() {
        let reply = answer(&mut session, request);
        core.finish_base_ot(reply).unwrap();
    }
    assert!(core.base_ot_request().is_none(), "sent once");
    (core, session)
}

/// S2's answer to one request.
fn answer(s2: &mut S2Session<'_>, request: Request) -> Response {
    match s2.handle(request) {
        Step::Reply(r) => r,
        Step::Refuse { reply, .. } => reply,
        Step::Close => panic!("S2 closed the session"),
    }
}

fn decrypt(v: &[paillier::Ciphertext]) -> Vec<i64> {
    v.iter().map(|c| key().decrypt_i64(c).unwrap()).collect()
}

#[test]
fn products_prepare_and_finish_match_the_plaintext_and_kept_operands_are_reused() {
    let svc = S2Service::new(key().clone(), S2Options::without_pool());
    let (core, mut s2) = open(&svc, Profile::Strict);
    let pk = core.public_key().clone();
    let (m, v, w) = ([3i64, -1, 4, 1, -5, 9], [2i64, -6, 5], [7i64, -8, 1]);
    let (cm, cv, cw) = (enc(&pk, &m), enc(&pk, &v), enc(&pk, &w));
    // M·v, and −(v ⊙ w); v and w are kept for a later request.
    let (request, step) = core
        .prepare_products(
            &[
                Operand::Fresh(&cm),
                Operand::Fresh(&cv),
                Operand::Fresh(&cw),
            ],
            &[
                (
                    Job::MatVec {
                        mat: 0,
                        vec: 1,
                        rows: 2,
                        cols: 3,
                    },
                    false,
                ),
                (Job::Elementwise { a: 1, b: 2 }, true),
            ],
            Some(1),
        )
        .unwrap();
    // S2 sees packs of blinded values, never the operands themselves.
    let Request::Eval { packs, count, .. } = &request else {
        panic!("a products request is an Eval")
    };
    assert!(packs.len() < *count as usize && !packs.iter().any(|p| cm.contains(p)));
    let (out, kept) = step.finish(&core, answer(&mut s2, request)).unwrap();
    core.attribute(SubProtocol::SecMul);
    let mv: Vec<i64> = m
        .chunks(3)
        .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
        .collect();
    assert_eq!(decrypt(&out[0]), mv);
    assert_eq!(decrypt(&out[1]), vec![-14, -48, -5]);
    // The kept operands, sent again as they were: v·w as a dot product.
    let kept = kept.expect("operands 1.. kept");
    assert_eq!(kept.ciphertexts().len(), 6);
    let (request, step) = core
        .prepare_products(
            &[Operand::Reused(&kept)],
            &[(
                Job::OuterSum {
                    a: 0,
                    b: 0,
                    a_len: 3,
                    b_len: 3,
                    batch: 2,
                },
                false,
            )],
            None,
        )
        .unwrap();
    let (out, _) = step.finish(&core, answer(&mut s2, request)).unwrap();
    core.attribute(SubProtocol::SecMul);
    // Σ_t a_t a_tᵀ over the rows v and w.
    let want: Vec<i64> = (0..3)
        .flat_map(|j| (0..3).map(move |i| v[j] * v[i] + w[j] * w[i]))
        .collect();
    assert_eq!(decrypt(&out[0]), want);
    // Only the first request packed and encrypted anything new for the kept operands.
    let by = core.counts_by_protocol();
    assert_eq!(by.len(), 1);
    assert_eq!(by[0].1, core.counts());
}

#[test]
fn exact_truncation_takes_a_bits_step_and_a_zero_test_and_floors() {
    let svc = S2Service::new(key().clone(), S2Options::without_pool());
    for comparison in [Comparison::Dgk, Comparison::Garbled] {
        exact_truncation_steps(&svc, comparison);
    }
}

fn exact_truncation_steps(svc: &S2Service, comparison: Comparison) {
    let (core, mut s2) = open_with(
        svc,
        SessionParams {
            comparison,
            ..small_params(Profile::Fast)
        },
    );
    let pk = core.public_key().clone();
    let xs = [-70_001i64, -65_536, -1, 0, 1, 65_535, 65_536, 1 << 30];
    let cx = enc(&pk, &xs);
    let (request, step) = core.prepare_truncate(&cx, 16, Truncation::Exact).unwrap();
    assert!(matches!(step, DivideStep::Exact(_)));
    let Divided::ZeroTest(request, step) = step.finish(&core, answer(&mut s2, request)).unwrap()
    else {
        panic!("an exact truncation has a zero test")
    };
    core.attribute(SubProtocol::Truncation);
    match (&request, comparison) {
        // S2 zero-tests one group of 16 + 1 DGK values per truncated value...
        (Request::ZeroTest { groups }, Comparison::Dgk) => {
            assert_eq!(groups.len(), xs.len());
            assert!(groups.iter().all(|g| g.len() == 17));
        }
        // ...or evaluates one garbled circuit of 16 AND gates (32 bytes each, and 32 bytes of
        // OT answers per input bit) per truncated value.
        (
            Request::Garbled {
                answers,
                tables,
                starts,
                decode,
            },
            Comparison::Garbled,
        ) => {
            assert_eq!(decode.len(), xs.len());
            assert_eq!(starts.len(), 16 * xs.len());
            assert_eq!(tables.len(), 32 * 16 * xs.len());
            assert_eq!(answers.len(), 32 * 16 * xs.len());
        }
        (other, _) => panic!("{other:?}"),
    }
    let round = step.name();
    let out = step.finish(&core, answer(&mut s2, request)).unwrap();
    core.attribute(round);
    let floor: Vec<i64> = xs.iter().map(|x| x.div_euclid(1 << 16)).collect();
    assert_eq!(decrypt(&out), floor);
    // Stochastic: one step, ⌊x/2^k⌋ or one more.
    let (request, step) = core
        .prepare_truncate(&cx, 16, Truncation::Stochastic)
        .unwrap();
    let Divided::Done(out) = step.finish(&core, answer(&mut s2, request)).unwrap() else {
        panic!("stochastic truncation is one round")
    };
    core.attribute(SubProtocol::Truncation);
    for (got, want) in decrypt(&out).iter().zip(&floor) {
        assert!(got - want == 0 || got - want == 1, "{got} vs {want}");
    }
    // The DGK blinding, or the garbling, is charged to the truncation (its bits step made the
    // second round).
    let by = core.counts_by_protocol();
    let of = |p| by.iter().find(|(q, _)| *q == p).map(|(_, c)| *c).unwrap();
    let n = xs.len() as u64;
    let (blinds, gates) = match comparison {
        Comparison::Dgk => (17 * n, 0),
        Comparison::Garbled => (0, 16 * n),
    };
    assert_eq!(of(SubProtocol::Truncation).dgk_blinds, blinds);
    assert_eq!(of(SubProtocol::Truncation).gates, gates);
    assert_eq!(of(round).dgk_blinds + of(round).gates, 0);
    let total = by
        .iter()
        .fold(OpCounts::default(), |acc, (_, c)| acc.plus(c));
    assert_eq!(total, core.counts());
}

#[test]
fn strict_comparison_steps_give_bits_and_the_range_check_catches_a_non_bit() {
    let svc = S2Service::new(key().clone(), S2Options::without_pool());
    let (core, mut s2) = open(&svc, Profile::Strict);
    let pk = core.public_key().clone();
    let xs = [-5i64, 0, 1, 12, -(1 << 20), 1 << 20];
    let cx = enc(&pk, &xs);
    let (request, step) = core.prepare_compare(&cx, 22).unwrap();
    let (request, step) = step.finish(&core, answer(&mut s2, request)).unwrap();
    let betas = step.finish(&core, answer(&mut s2, request)).unwrap();
    assert_eq!(
        decrypt(&betas),
        xs.iter().map(|&x| i64::from(x > 0)).collect::<Vec<_>>()
    );
    // The range check of real bits passes ...
    let squares = enc(&pk, &decrypt(&betas));
    let request = core.prepare_range_check(&betas, &squares).unwrap();
    core.finish_range_check(answer(&mut s2, request)).unwrap();
    // ... and a "bit" of 2 (2² − 2 ≠ 0) is reported out of range.
    let two = enc(&pk, &[2]);
    let four = enc(&pk, &[4]);
    let request = core.prepare_range_check(&two, &four).unwrap();
    match core.finish_range_check(answer(&mut s2, request)) {
        Err(ProtocolError::OutOfRange { op, .. }) => assert_eq!(op, SubProtocol::RangeCheck),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fast_sign_step_gives_relu_and_its_derivative() {
    let svc = S2Service::new(key().clone(), S2Options::without_pool());
    let (core, mut s2) = open(&svc, Profile::Fast);
    let pk = core.public_key().clone();
    let xs = [-7i64, 0, 12, -1, 300, 1];
    let cx = enc(&pk, &xs);
    let (request, step) = core.prepare_sign(&cx, true).unwrap();
    let (relu, deriv) = step.finish(&core, answer(&mut s2, request)).unwrap();
    assert_eq!(decrypt(&relu), xs.map(|x| x.max(0)).to_vec());
    assert_eq!(decrypt(&deriv), xs.map(|x| i64::from(x > 0)).to_vec());
    // A reply of the wrong length is a protocol violation, not a panic.
    let (_, step) = core.prepare_sign(&cx, false).unwrap();
    let short = Response::Ciphertexts(enc(&pk, &[1]));
    assert!(matches!(
        step.finish(&core, short),
        Err(ProtocolError::Violation(_))
    ));
}

#[test]
fn random_values_are_split_per_draw() {
    let svc = S2Service::new(key().clone(), S2Options::without_pool());
    let (core, mut s2) = open(&svc, Profile::Strict);
    let draws = [(3usize, num_bigint::BigInt::from(5)), (2, 100.into())];
    let request = core.prepare_random(&draws).unwrap();
    let out = core
        .finish_random(&draws, answer(&mut s2, request))
        .unwrap();
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), [3, 2]);
    assert!(decrypt(&out[0]).iter().all(|v| v.abs() <= 5));
    assert!(decrypt(&out[1]).iter().all(|v| v.abs() <= 100));
}
