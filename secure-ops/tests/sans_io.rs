//! S2 without I/O: `S2Service::open` answers the Hello and `S2Session::handle` maps each request
//! to one step, so the protocols run with S1 and S2 in one thread, S2 called as a function of
//! S1's requests — no channel, no thread, no socket.

mod common;
use common::*;
use secure_ops::messages::{Request, Response};
use secure_ops::ChannelExt;
use secure_ops::{
    Channel, ChannelError, Job, Profile, ProtocolError, S2Options, S2Service, S2Session, Step,
    SubProtocol, PROTOCOL_VERSION, S1,
};
use std::collections::VecDeque;

/// S1's "channel": every frame S1 sends is decoded and handed to S2's `handle` at once; the
/// answer waits to be received.
struct Direct<'a> {
    svc: &'a S2Service,
    session: Option<S2Session<'a>>,
    replies: VecDeque<Vec<u8>>,
    closed: bool,
}

impl Channel for Direct<'_> {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        if self.closed {
            return Err(ChannelError::Closed);
        }
        let req: Request = postcard::from_bytes(frame).expect("S1 sends well-formed requests");
        let reply = match self.session.as_mut() {
            None => match self.svc.open(req) {
                Ok((session, welcome)) => {
                    self.session = Some(session);
                    welcome
                }
                Err((reply, _)) => {
                    self.closed = true;
                    reply
                }
            },
            Some(session) => match session.handle(req) {
                Step::Reply(r) => r,
                Step::Close => {
                    self.closed = true;
                    return Ok(());
                }
                Step::Refuse { reply, .. } => {
                    self.closed = true;
                    reply
                }
            },
        };
        self.replies
            .push_back(postcard::to_stdvec(&reply).expect("responses encode"));
        Ok(())
    }

    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.replies.pop_front().ok_or(ChannelError::Closed)
    }
}

#[test]
fn protocols_run_with_s2_as_a_function_of_the_requests() {
    let sk = key();
    let pk = sk.public_key().clone();
    let svc = S2Service::new(sk.clone(), S2Options::without_pool());
    for profile in [Profile::Fast, Profile::Strict] {
        let direct = Direct {
            svc: &svc,
            session: None,
            replies: VecDeque::new(),
            closed: false,
        };
        let mut s1 = S1::connect(pk.clone(), direct, small_params(profile)).unwrap();
        // SecDot: a 2 × 3 matrix times a vector, against the plaintext product.
        let m = [3i64, -1, 4, 1, -5, 9];
        let v = [2i64, -6, 5];
        let out = s1
            .products(
                &[&enc(&pk, &m), &enc(&pk, &v)],
                &[Job::MatVec {
                    mat: 0,
                    vec: 1,
                    rows: 2,
                    cols: 3,
                }],
                false,
            )
            .unwrap();
        let want: Vec<i64> = m
            .chunks(3)
            .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
            .collect();
        let got: Vec<i64> = out[0].iter().map(|c| sk.decrypt_i64(c).unwrap()).collect();
        assert_eq!(got, want, "{profile}");
        // SecReLU, against max(x, 0).
        let xs = [-7i64, 0, 12, -1, 300];
        let relu = s1.relu(&enc(&pk, &xs)).unwrap();
        let got: Vec<i64> = relu.0.iter().map(|c| sk.decrypt_i64(c).unwrap()).collect();
        assert_eq!(got, xs.map(|x| x.max(0)).to_vec(), "{profile}");
        s1.close().unwrap();
    }
}

#[test]
fn open_and_handle_refuse_without_a_channel() {
    let sk = key();
    let svc = S2Service::new(sk.clone(), S2Options::without_pool());
    let hello = |version| Request::Hello {
        version,
        fingerprint: sk.public_key().fingerprint(),
        params: small_params(Profile::Fast),
    };
    // A wrong version, and anything but a Hello first, are refused with a reason.
    match svc.open(hello(PROTOCOL_VERSION + 1)) {
        Err((Response::Error(m), ProtocolError::Handshake(_))) => {
            assert!(m.contains("version"), "{m}")
        }
        other => panic!("{:?}", other.map(|(_, r)| r)),
    }
    assert!(matches!(
        svc.open(Request::Stats),
        Err((Response::Error(_), _))
    ));
    let (mut session, welcome) = svc
        .open(hello(PROTOCOL_VERSION))
        .map_err(|(r, _)| r)
        .unwrap();
    assert!(matches!(
        welcome,
        Response::HelloOk {
            dgk: Some(_),
            ot: Some(_)
        }
    ));
    assert!(matches!(
        session.handle(Request::Stats),
        Step::Reply(Response::Stats(_))
    ));
    // A second Hello ends the session: refused, with no sub-protocol named.
    match session.handle(hello(PROTOCOL_VERSION)) {
        Step::Refuse {
            reply: Response::Error(_),
            error: ProtocolError::Refused { op: None, .. },
        } => {}
        other => panic!("{other:?}"),
    }
    // An evaluation names its sub-protocol when refused (an empty products request).
    let (mut session, _) = svc
        .open(hello(PROTOCOL_VERSION))
        .map_err(|(r, _)| r)
        .unwrap();
    let bad = Request::Eval {
        packs: vec![],
        slot_bits: 64,
        count: 0,
        op: secure_ops::messages::Op::Products {
            jobs: vec![],
            negate: vec![],
        },
    };
    match session.handle(bad) {
        Step::Refuse {
            error: ProtocolError::Refused { op, .. },
            ..
        } => assert_eq!(op, Some(SubProtocol::SecMul)),
        other => panic!("{other:?}"),
    }
    assert_eq!(session.summary().requests, 1);
    assert!(matches!(session.handle(Request::Bye), Step::Close));
}

/// S1 checks the DGK public key a (hostile) S2 sends in its handshake: none at all, a plaintext
/// modulus u too small for the session's ℓ (a comparison could wrap to a false zero), one so
/// large that S1's tables would blow up, subgroups below t = 160, and a modulus smaller than the
/// Paillier key's are all refused before any data is sent.
#[test]
fn s1_refuses_a_dgk_key_unfit_for_the_session() {
    use paillier::dgk;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let gen = |bits, t, u, rng: &mut rand_chacha::ChaCha20Rng| {
        dgk::SecretKey::generate(bits, t, u, rng)
            .unwrap()
            .public_key()
            .clone()
    };
    let params = secure_ops::SessionParams {
        comparison: secure_ops::Comparison::Dgk,
        ..small_params(secure_ops::Profile::Strict)
    };
    let fitting = dgk::prime_above(3 * params.value_bits + 5).unwrap();
    let cases: Vec<(Option<dgk::PublicKey>, &str)> = vec![
        (None, "without a DGK public key"),
        (Some(gen(512, 160, 7, &mut rng)), "u = 7 is too small"),
        (Some(gen(512, 160, 4099, &mut rng)), "larger than 4096"),
        (Some(gen(512, 96, fitting, &mut rng)), "t = 96"),
        (
            Some(gen(384, 160, fitting, &mut rng)),
            "smaller than the Paillier key",
        ),
    ];
    for (key, want) in cases {
        let (c1, s2) = fake_s2(key, None);
        let err = S1::connect(key_pk(), c1, params).err().expect("refused");
        assert!(err.to_string().contains(want), "{want}: {err}");
        s2.join().unwrap();
    }
    // The same S2 with a fitting key is accepted.
    let good = gen(512, 160, fitting, &mut rng);
    let fp = good.fingerprint();
    let (c1, s2) = fake_s2(Some(good), None);
    let s1 = S1::connect(key_pk(), c1, params).unwrap();
    assert_eq!(s1.dgk_public_key().fingerprint(), fp);
    drop(s1);
    s2.join().unwrap();
    // A garbled session (the default) also needs S2's base-OT point, a valid one.
    let garbled = small_params(secure_ops::Profile::Strict);
    for (point, want) in [
        (None, "without its base-OT point"),
        (Some([0xffu8; 32]), "base-OT point"),
        (Some([0u8; 32]), "base-OT point"),
    ] {
        let (c1, s2) = fake_s2(Some(gen(512, 160, fitting, &mut rng)), point);
        let err = S1::connect(key_pk(), c1, garbled).err().expect("refused");
        assert!(err.to_string().contains(want), "{want}: {err}");
        s2.join().unwrap();
    }
}

/// A fake S2 that answers the hello with `HelloOk { dgk, ot }` and waits for S1 to go (S1 sends
/// nothing more: it may say goodbye or just close); S1's end of the channel and the thread.
fn fake_s2(
    dgk: Option<paillier::dgk::PublicKey>,
    ot: Option<[u8; 32]>,
) -> (Mem, std::thread::JoinHandle<()>) {
    let (c1, mut c2) = pair();
    let s2 = std::thread::spawn(move || {
        let _hello: Request = c2.recv_msg().unwrap();
        c2.send_msg(&Response::HelloOk { dgk, ot }).unwrap();
        let _ = c2.recv_frame();
    });
    (c1, s2)
}

fn key_pk() -> paillier::PublicKey {
    key().public_key().clone()
}

/// The DGK plaintext modulus S2 picks for its largest ℓ (docs/protocols.md: 223 for the default
/// ℓ = 72, 1 543 for ℓ = 512): the smallest prime above 3ℓ + 5, the largest combined value's bound.
#[test]
fn dgk_plaintext_modulus_is_the_prime_above_three_ell_plus_five() {
    assert_eq!(secure_ops::dgk_u_for(72), Some(223));
    assert_eq!(secure_ops::dgk_u_for(512), Some(1543));
    assert_eq!(secure_ops::dgk_u_for(40), Some(127));
}

/// A hostile S1 in a garbled session: a comparison before the base OTs, base OTs twice, garbled
/// comparisons with no OT batch pending, replayed for a batch already evaluated, or of the
/// wrong size are each refused (and end the session); an honest exchange in between works.
#[test]
fn s2_refuses_garbled_requests_out_of_order_or_of_the_wrong_size() {
    use secure_ops::messages::Op;
    use secure_ops::S1Core;
    let svc = S2Service::new(key().clone(), S2Options::without_pool());
    let pk = key().public_key().clone();
    let params = small_params(Profile::Strict);
    let open = || {
        let hello = S1Core::hello(&pk, &params).unwrap();
        let (session, welcome) = svc.open(hello).map_err(|(_, e)| e).unwrap();
        (
            S1Core::accept(pk.clone(), params, welcome).unwrap(),
            session,
        )
    };
    let refused = |step: Step, want: &str| match step {
        Step::Refuse {
            reply: Response::Error(m),
            ..
        } => assert!(m.contains(want), "{want}: {m}"),
        other => panic!("{want}: {other:?}"),
    };
    let garbled = |n: usize, items: usize| Request::Garbled {
        answers: vec![0; 32 * n],
        tables: vec![0; 32 * n],
        starts: vec![0; 16 * items],
        decode: vec![false; items],
    };
    let xs = enc(&pk, &[5, -3]);

    // A comparison before the base OTs.
    let (core, mut s2) = open();
    let (request, _) = core.prepare_compare(&xs, 10).unwrap();
    refused(s2.handle(request), "before the base OTs");
    // Garbled comparisons with nothing pending.
    let (core, mut s2) = open();
    let base = core.base_ot_request().unwrap();
    assert!(matches!(
        s2.handle(base.clone()),
        Step::Reply(Response::Ready)
    ));
    refused(s2.handle(garbled(22, 2)), "without a pending OT batch");
    // Base OTs twice.
    let (core, mut s2) = open();
    let base = core.base_ot_request().unwrap();
    assert!(matches!(
        s2.handle(base.clone()),
        Step::Reply(Response::Ready)
    ));
    refused(s2.handle(base), "outside a garbled session's opening");
    // One honest comparison, then its garbled request replayed, and one of the wrong size.
    for replay in [true, false] {
        let (core, mut s2) = open();
        let base = core.base_ot_request().unwrap();
        assert!(matches!(s2.handle(base), Step::Reply(Response::Ready)));
        let (request, step) = core.prepare_compare(&xs, 10).unwrap();
        assert!(matches!(
            &request,
            Request::Eval {
                op: Op::CompareBits { bits: 11 },
                ..
            }
        ));
        let Step::Reply(reply) = s2.handle(request) else {
            panic!("bits refused")
        };
        let (second, last) = step.finish(&core, reply).unwrap();
        if replay {
            let Step::Reply(reply) = s2.handle(second.clone()) else {
                panic!("garbled refused")
            };
            let out = last.finish(&core, reply).unwrap();
            // ⌊z/2^m⌋ − ⌊r/2^m⌋ − 1{d < c} = 1{x' ≥ 0} for x' = 2x − 1.
            assert_eq!(dec(&out), vec![1, 0]);
            refused(s2.handle(second), "without a pending OT batch");
        } else {
            // 2 comparisons of 11 bits: 22 transfers; one transfer short.
            refused(s2.handle(garbled(21, 2)), "bad size");
        }
    }
}

/// An S2 whose operator serves one comparison refuses a session that asks for the other, in
/// the handshake, with a reason; the one it serves opens.
#[test]
fn s2_serves_only_the_comparison_its_policy_names() {
    use secure_ops::{Comparison, S1Core, S2Policy, SessionParams};
    let pk = key().public_key().clone();
    let svc = S2Service::new(
        key().clone(),
        S2Options {
            policy: S2Policy {
                comparison: Some(Comparison::Garbled),
                ..S2Policy::default()
            },
            ..S2Options::without_pool()
        },
    );
    let dgk = SessionParams {
        comparison: Comparison::Dgk,
        ..small_params(Profile::Strict)
    };
    match svc.open(S1Core::hello(&pk, &dgk).unwrap()) {
        Err((Response::Error(m), ProtocolError::Handshake(_))) => {
            assert!(m.contains("serves only garbled comparisons"), "{m}")
        }
        other => panic!("{:?}", other.map(|(_, r)| r)),
    }
    let garbled = small_params(Profile::Strict);
    assert!(svc.open(S1Core::hello(&pk, &garbled).unwrap()).is_ok());
}
