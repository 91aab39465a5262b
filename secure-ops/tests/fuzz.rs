//! Fuzzing S2's request handler on stable Rust: raw bytes and structure-aware mutations of valid
//! requests, each fed to a real `S2Service` session after a valid handshake. No input may panic
//! S2, and each must be answered (or the session ended) within a time bound. And the other way:
//! S1's strict protocols against a hostile S2's random and mutated responses (DGK bits included).
//!
//! The loops run a fixed number of cases in CI; `SMLP_FUZZ_SECONDS=N` (set by
//! `cargo xtask fuzz --seconds N`) keeps them going for N seconds each, and `SMLP_FUZZ_SEED`
//! picks the seed (printed on failure).

mod common;

use common::*;
use num_bigint::BigInt;
use paillier::Encrypt;
use paillier::{Ciphertext, PublicKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use secure_ops::messages::{Op, Request, Response, WireJob};
use secure_ops::{Channel, ChannelExt, Profile, PROTOCOL_VERSION};
use std::time::{Duration, Instant};

/// The fuzzing budget: at least `cases` inputs, and more until `SMLP_FUZZ_SECONDS` have passed.
struct Budget {
    cases: u64,
    until: Option<Instant>,
    seed: u64,
}

impl Budget {
    fn new(cases: u64) -> Budget {
        let seconds = std::env::var("SMLP_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        let seed = std::env::var("SMLP_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| rand::thread_rng().gen());
        Budget {
            cases,
            until: seconds.map(|s| Instant::now() + Duration::from_secs(s)),
            seed,
        }
    }
    fn more(&self, done: u64) -> bool {
        done < self.cases || self.until.is_some_and(|t| Instant::now() < t)
    }
}

/// Runs one S2 session on `frames` (after a valid hello) and checks that S2 neither panics nor
/// takes longer than the bound; returns the responses.
fn run_session(profile: Profile, frames: Vec<Vec<u8>>, seed: u64) -> Vec<Response> {
    let (mut c1, s2) = spawn_s2(key());
    let start = Instant::now();
    c1.send_msg(&Request::Hello {
        version: PROTOCOL_VERSION,
        fingerprint: key().public_key().fingerprint(),
        params: small_params(profile),
    })
    .unwrap();
    let point = match c1.recv_msg::<Response>().unwrap() {
        Response::HelloOk { ot, .. } => ot,
        other => panic!("{other:?}"),
    };
    // Half the garbled sessions do their base OTs first, so that carry bits are answered with an
    // OT batch and garbled requests reach their checks.
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ frames.len() as u64);
    if let (Some(a), true) = (point, rng.gen::<bool>()) {
        let choices: Vec<bool> = (0..yao::iknp::K).map(|_| rng.gen()).collect();
        let (points, _) = yao::base::receive(&a, &choices, &mut rng).unwrap();
        c1.send_msg(&Request::BaseOt { points }).unwrap();
        assert!(matches!(
            c1.recv_msg::<Response>().unwrap(),
            Response::Ready
        ));
    }
    let mut out = Vec::new();
    for f in frames {
        if c1.send_frame(&f).is_err() {
            break;
        }
        match c1.recv_msg::<Response>() {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
    }
    drop(c1);
    let joined = s2.join();
    assert!(joined.is_ok(), "S2 panicked (seed {seed})");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "S2 took {:?} (seed {seed})",
        start.elapsed()
    );
    out
}

fn ct(pk: &PublicKey, rng: &mut ChaCha8Rng) -> Ciphertext {
    pk.encrypt(&BigInt::from(rng.gen_range(-1000i64..1000)), rng)
        .unwrap()
}

/// A DGK "ciphertext" from the hostile side: random bytes of up to 80, sometimes 0 or huge.
fn dgk_ct(rng: &mut ChaCha8Rng) -> paillier::dgk::Ciphertext {
    let len = match rng.gen_range(0..6) {
        0 => 0,
        1 => 600,
        _ => rng.gen_range(1..80),
    };
    let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    paillier::dgk::Ciphertext::from_biguint(&num_bigint::BigUint::from_bytes_be(&bytes))
}

/// A u32 that is usually small, sometimes at an edge.
fn dim(rng: &mut ChaCha8Rng) -> u32 {
    match rng.gen_range(0..10) {
        0 => 0,
        1 => u32::MAX,
        2 => rng.gen(),
        3 => 1 << rng.gen_range(0..32),
        _ => rng.gen_range(0..8),
    }
}

fn job(rng: &mut ChaCha8Rng) -> WireJob {
    match rng.gen_range(0..4) {
        0 => WireJob::MatVec {
            mat: dim(rng),
            vec: dim(rng),
            rows: dim(rng),
            cols: dim(rng),
        },
        1 => WireJob::VecMat {
            mat: dim(rng),
            vec: dim(rng),
            rows: dim(rng),
            cols: dim(rng),
        },
        2 => WireJob::OuterSum {
            a: dim(rng),
            b: dim(rng),
            a_len: dim(rng),
            b_len: dim(rng),
            batch: dim(rng),
        },
        _ => WireJob::Elementwise {
            a: dim(rng),
            b: dim(rng),
            len: dim(rng),
        },
    }
}

/// A request of a valid type with random (often hostile) fields.
fn request(pk: &PublicKey, rng: &mut ChaCha8Rng) -> Request {
    let n = rng.gen_range(0..4);
    let packs: Vec<Ciphertext> = (0..n).map(|_| ct(pk, rng)).collect();
    let slot_bits = match rng.gen_range(0..4) {
        0 => 90, // the width of a SecMul operand (ℓ + κ + 10)
        1 => 92, // the width of a sign test
        2 => dim(rng),
        _ => rng.gen_range(0..600),
    };
    let op = match rng.gen_range(0..5) {
        0 => Op::Products {
            jobs: (0..rng.gen_range(0..3)).map(|_| job(rng)).collect(),
            negate: (0..rng.gen_range(0..3)).map(|_| rng.gen()).collect(),
        },
        1 => Op::Divide {
            shift: dim(rng),
            carry_bits: rng.gen(),
        },
        2 => Op::DivideBy {
            divisor: rng.gen_range(0..1 << 20),
            carry_bits: rng.gen(),
        },
        3 => Op::Sign {
            with_value: rng.gen(),
        },
        _ => Op::CompareBits { bits: dim(rng) },
    };
    let bytes = |rng: &mut ChaCha8Rng| -> Vec<u8> {
        let len = match rng.gen_range(0..4) {
            0 => 32 * rng.gen_range(0..80),
            1 => 16 * rng.gen_range(0..8),
            _ => rng.gen_range(0..200),
        };
        (0..len).map(|_| rng.gen()).collect()
    };
    match rng.gen_range(0..10) {
        8 => Request::BaseOt {
            points: (0..rng.gen_range(0..130))
                .map(|_| {
                    let mut p = [0u8; 32];
                    rng.fill(&mut p);
                    p
                })
                .collect(),
        },
        9 => Request::Garbled {
            answers: bytes(rng),
            tables: bytes(rng),
            starts: bytes(rng),
            decode: (0..rng.gen_range(0..8)).map(|_| rng.gen()).collect(),
        },
        0 => Request::ZeroTest {
            groups: (0..rng.gen_range(0..4))
                .map(|_| (0..rng.gen_range(0..50)).map(|_| dgk_ct(rng)).collect())
                .collect(),
        },
        1 => Request::AssertZero {
            cts: (0..rng.gen_range(0..3)).map(|_| ct(pk, rng)).collect(),
        },
        2 => Request::Random {
            draws: (0..rng.gen_range(0..3))
                .map(|_| {
                    (
                        dim(rng),
                        BigInt::from(rng.gen::<i64>()) >> rng.gen_range(0..64),
                    )
                })
                .collect(),
        },
        _ => Request::Eval {
            packs,
            slot_bits,
            count: dim(rng),
            op,
        },
    }
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    if bytes.is_empty() {
        bytes.push(rng.gen());
        return;
    }
    match rng.gen_range(0..4) {
        0 => {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] = rng.gen();
        }
        2 => bytes.truncate(rng.gen_range(0..bytes.len())),
        _ => {
            // A varint length field blown up.
            let i = rng.gen_range(0..bytes.len());
            bytes.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0x0f]);
        }
    }
}

#[test]
fn s2_survives_raw_bytes() {
    let budget = Budget::new(60);
    let mut rng = ChaCha8Rng::seed_from_u64(budget.seed);
    let mut done = 0;
    while budget.more(done) {
        let frames: Vec<Vec<u8>> = (0..rng.gen_range(1..4))
            .map(|_| {
                let len = rng.gen_range(0..64);
                (0..len).map(|_| rng.gen()).collect()
            })
            .collect();
        run_session(Profile::Fast, frames, budget.seed);
        done += 1;
    }
}

#[test]
fn s2_survives_structured_and_mutated_requests() {
    let budget = Budget::new(150);
    let mut rng = ChaCha8Rng::seed_from_u64(budget.seed);
    let pk = key().public_key().clone();
    let mut done = 0;
    let mut answered = 0;
    while budget.more(done) {
        let profile = if rng.gen() {
            Profile::Fast
        } else {
            Profile::Strict
        };
        let mut frames = Vec::new();
        for _ in 0..rng.gen_range(1..3) {
            let mut bytes = postcard::to_stdvec(&request(&pk, &mut rng)).unwrap();
            if rng.gen_bool(0.4) {
                mutate(&mut bytes, &mut rng);
            }
            frames.push(bytes);
        }
        let responses = run_session(profile, frames, budget.seed);
        answered += responses
            .iter()
            .filter(|r| matches!(r, Response::Ciphertexts(_)))
            .count();
        done += 1;
    }
    // Most random requests are refused; some are valid and computed (the generator reaches both).
    eprintln!(
        "{done} sessions, {answered} requests computed (seed {})",
        budget.seed
    );
}

/// A hostile S2 answers S1's strict requests (comparison bits, exact truncation, zero tests,
/// range checks) with random, mis-sized and mutated responses — `Bits` with wrong counts or
/// out-of-range DGK ciphertexts among them. S1 returns a value or an error, never panics, and
/// stops within the time bound.
#[test]
fn s1_survives_a_hostile_s2_in_strict_sessions() {
    use paillier::dgk;
    let budget = Budget::new(40);
    let mut rng = ChaCha8Rng::seed_from_u64(budget.seed);
    let pk = key().public_key().clone();
    let garbled = small_params(Profile::Strict);
    let dgk_session = secure_ops::SessionParams {
        comparison: secure_ops::Comparison::Dgk,
        ..garbled
    };
    let params = garbled;
    let dgk_key = dgk::SecretKey::generate(
        512,
        dgk::DEFAULT_T,
        dgk::prime_above(3 * params.value_bits + 5).unwrap(),
        &mut rng,
    )
    .unwrap();
    let xs: Vec<Ciphertext> = (0..3).map(|_| ct(&pk, &mut rng)).collect();
    let mut done = 0;
    let mut errors = 0;
    while budget.more(done) {
        let (c1, mut c2) = pair();
        let seed: u64 = rng.gen();
        let (dpk, dsk) = (dgk_key.public_key().clone(), dgk_key.clone());
        let pk2 = pk.clone();
        // Every other session garbled (then S2's answers include OT batches).
        let params = if done % 2 == 0 { garbled } else { dgk_session };
        let is_garbled = params.comparison == secure_ops::Comparison::Garbled;
        let s2 = std::thread::spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            if c2.recv_frame().is_err() {
                return;
            }
            let ot = is_garbled.then(|| yao::base::Sender::new(&mut rng).1);
            c2.send_msg(&Response::HelloOk { dgk: Some(dpk), ot })
                .unwrap();
            if is_garbled {
                if c2.recv_frame().is_err() {
                    return;
                }
                c2.send_msg(&Response::Ready).unwrap();
            }
            while c2.recv_frame().is_ok() {
                let n = rng.gen_range(0..8usize);
                let reply = match rng.gen_range(0..6) {
                    5 => Response::OtBits {
                        values: (0..n).map(|_| ct(&pk2, &mut rng)).collect(),
                        first: if rng.gen() { 0 } else { rng.gen() },
                        columns: (0..rng.gen_range(0..3) * 128 * 16)
                            .map(|_| rng.gen())
                            .collect(),
                    },
                    0 => Response::Bits {
                        values: (0..n).map(|_| ct(&pk2, &mut rng)).collect(),
                        bits: (0..rng.gen_range(0..120))
                            .map(|_| {
                                if rng.gen_bool(0.8) {
                                    dsk.encrypt(rng.gen_range(0..2), &mut rng)
                                } else {
                                    dgk_ct(&mut rng)
                                }
                            })
                            .collect(),
                    },
                    1 => Response::Ciphertexts((0..n).map(|_| ct(&pk2, &mut rng)).collect()),
                    2 => Response::OutOfRange("no".into()),
                    3 => Response::Error("no".into()),
                    _ => Response::Stats(Default::default()),
                };
                let mut bytes = postcard::to_stdvec(&reply).unwrap();
                if rng.gen_bool(0.3) {
                    mutate(&mut bytes, &mut rng);
                }
                if c2.send_frame(&bytes).is_err() {
                    return;
                }
            }
        });
        let start = Instant::now();
        let mut s1 = secure_ops::S1::connect(pk.clone(), c1, params).unwrap();
        let r1 = s1.relu(&xs).map(drop);
        let r2 = s1.truncate(&xs, 8).map(drop);
        errors += usize::from(r1.is_err()) + usize::from(r2.is_err());
        drop(s1);
        assert!(s2.join().is_ok(), "fake S2 thread (seed {})", budget.seed);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "S1 took {:?} (seed {})",
            start.elapsed(),
            budget.seed
        );
        done += 1;
    }
    // Random answers almost never fit: S1 refused them.
    assert!(errors as u64 >= done, "{errors} errors in {done} sessions");
}
