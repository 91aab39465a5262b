//! S2's side: a service that answers S1's requests with the secret key until S1 ends the
//! session. S2 only ever decrypts values S1 has blinded, and checks their ranges.

use crate::channel::{Channel, ChannelError, ChannelExt, MessageError};
use crate::counts::{OpCounter, OpCounts};
use crate::error::ProtocolError;
use crate::messages::{Op, Request, Response, WireJob};
use crate::params::{SessionParams, PROTOCOL_VERSION};
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{One, Zero};
use paillier::{Ciphertext, RandomizerPool, SecretKey};
use rayon::prelude::*;
use std::sync::Arc;

/// Largest number of values in one request.
pub const MAX_REQUEST_VALUES: usize = 1 << 22;

/// Options of the S2 service.
#[derive(Clone, Debug)]
pub struct S2Options {
    /// Precomputed randomizers kept ready (0 disables the pool).
    pub pool_capacity: usize,
    /// Background threads filling the pool.
    pub pool_workers: usize,
}

impl Default for S2Options {
    fn default() -> Self {
        S2Options {
            pool_capacity: 4096,
            pool_workers: 1,
        }
    }
}

/// What a finished session did.
#[derive(Clone, Debug, Default)]
pub struct SessionSummary {
    /// Requests answered.
    pub requests: u64,
    /// Operations of this session.
    pub counts: OpCounts,
    /// Parameters agreed in the handshake.
    pub params: Option<SessionParams>,
}

/// A plaintext S2 has just decrypted, as shown to an observer ([`S2Service::with_observer`]).
///
/// This is everything S2 learns about S1's data: the tests use it to check what the blinding
/// hides. Values are borrowed; clone what you keep.
#[derive(Clone, Copy, Debug)]
pub enum S2View<'a> {
    /// One unpacked, signed slot value u of an `Eval` request (before the per-value range checks).
    Slot {
        /// `"products"` (SecMul/SecDot), `"divide"` (truncation), `"sign"` (fast SecReLU:
        /// slots alternate y, u when the value is requested) or `"compare"` (strict comparison).
        op: &'static str,
        /// Position of the slot in its request.
        index: usize,
        /// The value S2 sees.
        value: &'a BigInt,
    },
    /// One decryption of a strict-profile range check (0, or uniformly random if out of range).
    RangeCheck {
        /// The value S2 sees.
        value: &'a BigUint,
    },
    /// One decryption of a DGK zero test (raw, in [0, n)).
    ZeroTest {
        /// Group (comparison) of the request the value belongs to.
        group: usize,
        /// The value S2 sees.
        value: &'a BigUint,
    },
}

/// Callback receiving every [`S2View`]; called from rayon worker threads.
pub type S2Observer = Arc<dyn Fn(&S2View<'_>) + Send + Sync>;

/// The S2 service: the secret key, a randomizer pool and counters shared by all sessions.
pub struct S2Service {
    sk: SecretKey,
    pool: Option<RandomizerPool>,
    total: OpCounter,
    observer: Option<S2Observer>,
}

struct Session<'a> {
    svc: &'a S2Service,
    params: SessionParams,
    counter: OpCounter,
}

fn pow2(k: u32) -> BigInt {
    BigInt::one() << k
}

/// A refusal to answer: either an out-of-range value or a malformed request.
enum Refusal {
    Range(String),
    Bad(String),
}

type Answer = Result<Vec<Ciphertext>, Refusal>;

impl S2Service {
    /// A service for `sk`.
    pub fn new(sk: SecretKey, opts: S2Options) -> Self {
        let pool = (opts.pool_capacity > 0 && opts.pool_workers > 0)
            .then(|| RandomizerPool::for_secret_key(&sk, opts.pool_capacity, opts.pool_workers));
        S2Service {
            sk,
            pool,
            total: OpCounter::default(),
            observer: None,
        }
    }

    /// Calls `f` with every value S2 decrypts (for tests and audits of what S2 learns). Without
    /// an observer nothing is recorded.
    pub fn with_observer(mut self, f: S2Observer) -> Self {
        self.observer = Some(f);
        self
    }

    /// Operation counts over all sessions.
    pub fn counts(&self) -> OpCounts {
        self.total.snapshot()
    }

    /// Serves one S1 session on `chan` until S1 says goodbye or closes the channel.
    ///
    /// Returns an error if the handshake is refused, the channel fails, or S1 sends a malformed
    /// message (S2 tells S1 why before returning). Out-of-range values are reported to S1 and the
    /// session goes on.
    pub fn serve<C: Channel>(&self, mut chan: C) -> Result<SessionSummary, ProtocolError> {
        let params = match chan.recv_msg::<Request>()? {
            Request::Hello {
                version,
                fingerprint,
                params,
            } => {
                let pk = self.sk.public_key();
                let refusal = if version != PROTOCOL_VERSION {
                    Some(format!("protocol version {version} is not supported (S2 speaks {PROTOCOL_VERSION})"))
                } else if fingerprint != pk.fingerprint() {
                    Some(format!(
                        "public key mismatch: S1 uses key {fingerprint}, S2 holds the secret key of {}",
                        pk.fingerprint()
                    ))
                } else {
                    params.validate(pk.bits()).err()
                };
                if let Some(msg) = refusal {
                    let _ = chan.send_msg(&Response::Error(msg.clone()));
                    return Err(ProtocolError::Handshake(msg));
                }
                params
            }
            other => {
                let msg = format!("expected Hello, got {}", request_name(&other));
                let _ = chan.send_msg(&Response::Error(msg.clone()));
                return Err(ProtocolError::Handshake(msg));
            }
        };
        chan.send_msg(&Response::HelloOk)?;
        let session = Session {
            svc: self,
            params,
            counter: OpCounter::default(),
        };
        let mut summary = SessionSummary {
            params: Some(params),
            ..Default::default()
        };
        loop {
            let req = match chan.recv_msg::<Request>() {
                Ok(r) => r,
                Err(MessageError::Channel(ChannelError::Closed)) => break,
                Err(MessageError::Decode(d)) => {
                    let msg = format!("malformed request: {d}");
                    let _ = chan.send_msg(&Response::Error(msg.clone()));
                    return Err(ProtocolError::Violation(msg));
                }
                Err(e) => return Err(e.into()),
            };
            summary.requests += 1;
            let resp = match req {
                Request::Bye => break,
                Request::Hello { .. } => Response::Error("session already open".into()),
                Request::Stats => Response::Stats(session.counter.snapshot()),
                Request::Eval {
                    packs,
                    slot_bits,
                    count,
                    op,
                } => session.eval(&packs, slot_bits, count as usize, &op).into(),
                Request::ZeroTest { groups } => session.zero_test(&groups).into(),
                Request::Random { draws } => session.random(&draws).into(),
                Request::AssertZero { cts } => session.assert_zero(&cts).into(),
            };
            chan.send_msg(&resp)?;
        }
        summary.counts = session.counter.snapshot();
        Ok(summary)
    }
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Hello { .. } => "Hello",
        Request::Eval { .. } => "Eval",
        Request::ZeroTest { .. } => "ZeroTest",
        Request::Random { .. } => "Random",
        Request::AssertZero { .. } => "AssertZero",
        Request::Stats => "Stats",
        Request::Bye => "Bye",
    }
}

impl From<Answer> for Response {
    fn from(a: Answer) -> Self {
        match a {
            Ok(v) => Response::Ciphertexts(v),
            Err(Refusal::Range(m)) => Response::OutOfRange(m),
            Err(Refusal::Bad(m)) => Response::Error(m),
        }
    }
}

impl Session<'_> {
    fn decrypt(&self, c: &Ciphertext) -> Result<BigUint, Refusal> {
        OpCounter::add(&self.counter.decryptions, 1);
        OpCounter::add(&self.svc.total.decryptions, 1);
        self.svc
            .sk
            .decrypt_raw(c)
            .map_err(|e| Refusal::Bad(format!("undecryptable ciphertext: {e}")))
    }

    fn encrypt_all(&self, values: &[BigInt]) -> Answer {
        let n = values.len() as u64;
        OpCounter::add(&self.counter.encryptions, n);
        OpCounter::add(&self.svc.total.encryptions, n);
        let pk = self.svc.sk.public_key();
        values
            .par_iter()
            .map(|v| {
                let rho = match &self.svc.pool {
                    Some(p) => p.take(),
                    None => self.svc.sk.randomizer(&mut rand::thread_rng()),
                };
                pk.encrypt_with_randomizer(v, &rho)
                    .map_err(|e| Refusal::Bad(format!("result does not fit: {e}")))
            })
            .collect()
    }

    /// Decrypts the packs and returns the signed slot values u = t − 2^(slot_bits − 2).
    fn unpack(
        &self,
        packs: &[Ciphertext],
        slot_bits: u32,
        count: usize,
    ) -> Result<Vec<BigInt>, Refusal> {
        let key_bits = self.svc.sk.public_key().bits();
        if slot_bits < self.params.slot_bits(0) || slot_bits + 2 > key_bits {
            return Err(Refusal::Bad(format!("slot width {slot_bits} not allowed")));
        }
        if count == 0 || count > MAX_REQUEST_VALUES {
            return Err(Refusal::Bad(format!(
                "request of {count} values not allowed"
            )));
        }
        let per = ((key_bits - 2) / slot_bits) as usize;
        if packs.len() != count.div_ceil(per) {
            return Err(Refusal::Bad(format!(
                "{} packs for {count} values",
                packs.len()
            )));
        }
        let plains: Vec<BigUint> = packs
            .par_iter()
            .map(|c| self.decrypt(c))
            .collect::<Result<_, _>>()?;
        let mask = (BigUint::one() << slot_bits) - 1u32;
        let offset = pow2(slot_bits - 2);
        let mut out = Vec::with_capacity(count);
        for (i, p) in plains.iter().enumerate() {
            let here = per.min(count - i * per);
            if p.bits() > u64::from(slot_bits) * here as u64 {
                return Err(Refusal::Range("packed value larger than its slots".into()));
            }
            for j in 0..here {
                let t = (p >> (j as u32 * slot_bits)) & &mask;
                out.push(BigInt::from_biguint(Sign::Plus, t) - &offset);
            }
        }
        Ok(out)
    }

    /// |x| < 2^ℓ was promised for the operand; u = x + r with r ∈ [0, 2^(ℓ+κ)). Values outside
    /// [−2^ℓ, 2^(ℓ+κ) + 2^ℓ) prove that x left its range.
    fn check_blinded(&self, u: &BigInt, extra_bits: u32, what: &str) -> Result<(), Refusal> {
        let l = self.params.value_bits + extra_bits;
        let lo = -pow2(l);
        let hi = pow2(l + self.params.kappa) + pow2(l);
        if u < &lo || u >= &hi {
            return Err(Refusal::Range(format!(
                "{what}: blinded value outside [-2^{l}, 2^{} + 2^{l})",
                l + self.params.kappa
            )));
        }
        Ok(())
    }

    fn eval(&self, packs: &[Ciphertext], slot_bits: u32, count: usize, op: &Op) -> Answer {
        let u = self.unpack(packs, slot_bits, count)?;
        if let Some(obs) = &self.svc.observer {
            let name = match op {
                Op::Products { .. } => "products",
                Op::Divide { .. } | Op::DivideBy { .. } => "divide",
                Op::Sign { .. } => "sign",
                Op::CompareBits { .. } => "compare",
            };
            for (index, value) in u.iter().enumerate() {
                obs(&S2View::Slot {
                    op: name,
                    index,
                    value,
                });
            }
        }
        let l = self.params.value_bits;
        match op {
            Op::Products { jobs, negate } => {
                for v in &u {
                    self.check_blinded(v, 0, "SecMul operand")?;
                }
                if negate.len() != jobs.len() {
                    return Err(Refusal::Bad("one negation flag per job expected".into()));
                }
                let mut outs = Vec::new();
                for (job, neg) in jobs.iter().zip(negate) {
                    let start = outs.len();
                    self.run_job(job, &u, &mut outs)?;
                    if outs.len() > MAX_REQUEST_VALUES {
                        return Err(Refusal::Bad("too many products".into()));
                    }
                    if *neg {
                        outs[start..].iter_mut().for_each(|v| *v = -&*v);
                    }
                }
                self.encrypt_all(&outs)
            }
            Op::Divide { shift, carry_bits } => {
                if *shift == 0 || *shift > l {
                    return Err(Refusal::Bad(format!("division by 2^{shift} not allowed")));
                }
                self.divide(&u, &pow2(*shift), *shift, *carry_bits, "truncation")
            }
            Op::DivideBy {
                divisor,
                carry_bits,
            } => {
                let m = 64 - divisor.leading_zeros();
                if *divisor < 2 || m > l {
                    return Err(Refusal::Bad(format!("division by {divisor} not allowed")));
                }
                self.divide(&u, &BigInt::from(*divisor), m, *carry_bits, "division")
            }
            Op::Sign { with_value } => {
                let per = if *with_value { 2 } else { 1 };
                if u.len() % per != 0 {
                    return Err(Refusal::Bad("sign test needs pairs".into()));
                }
                let mut outs = Vec::with_capacity(u.len());
                let ybound = pow2(l + self.params.kappa + 3);
                for ch in u.chunks(per) {
                    let y = &ch[0];
                    if y.is_zero() {
                        return Err(Refusal::Bad(
                            "sign test on zero (malformed blinding)".into(),
                        ));
                    }
                    if y >= &ybound || y <= &-&ybound {
                        return Err(Refusal::Range("SecReLU: blinded value out of range".into()));
                    }
                    let beta = y.sign() == Sign::Plus;
                    outs.push(BigInt::from(u8::from(beta)));
                    if *with_value {
                        self.check_blinded(&ch[1], 0, "SecReLU operand")?;
                        outs.push(if beta { ch[1].clone() } else { BigInt::zero() });
                    }
                }
                self.encrypt_all(&outs)
            }
            Op::CompareBits { bits } => {
                let m = *bits;
                if m == 0 || m > l + 1 {
                    return Err(Refusal::Bad(format!("comparison of {m} bits not allowed")));
                }
                let mut outs = Vec::with_capacity(u.len() * (m as usize + 2));
                for z in &u {
                    if z.sign() == Sign::Minus || z >= &(pow2(m + self.params.kappa) + pow2(m + 1))
                    {
                        return Err(Refusal::Range(
                            "comparison: blinded value out of range".into(),
                        ));
                    }
                    outs.push(z >> m);
                    push_bits(&mut outs, z, m);
                }
                self.encrypt_all(&outs)
            }
        }
    }

    /// ⌊v / d⌋ for every blinded v = x + 2^ℓ + r (≥ 0 for in-range x), and with `carry_bits`
    /// the bits of 2·(v mod d) + 1 (m + 1 of them, d < 2^m) for S1's DGK carry.
    fn divide(&self, u: &[BigInt], d: &BigInt, m: u32, carry_bits: bool, what: &str) -> Answer {
        let l = self.params.value_bits;
        let hi = pow2(l + self.params.kappa) + pow2(l + 1);
        let mut outs = Vec::with_capacity(u.len() * if carry_bits { m as usize + 2 } else { 1 });
        for v in u {
            if v.sign() == Sign::Minus || v >= &hi {
                return Err(Refusal::Range(format!(
                    "{what}: blinded value out of range"
                )));
            }
            outs.push(v / d);
            if carry_bits {
                push_bits(&mut outs, &(v % d), m);
            }
        }
        self.encrypt_all(&outs)
    }

    fn run_job(&self, job: &WireJob, u: &[BigInt], outs: &mut Vec<BigInt>) -> Result<(), Refusal> {
        let n = u.len() as u64;
        let bad = || Refusal::Bad(format!("product job out of bounds: {job:?}"));
        let fits = |start: u32, len: u64| -> bool {
            u64::from(start).checked_add(len).is_some_and(|e| e <= n)
        };
        match *job {
            WireJob::MatVec {
                mat,
                vec,
                rows,
                cols,
            }
            | WireJob::VecMat {
                mat,
                vec,
                rows,
                cols,
            } => {
                let (r, c) = (u64::from(rows), u64::from(cols));
                let is_mv = matches!(job, WireJob::MatVec { .. });
                if !fits(mat, r * c) || !fits(vec, if is_mv { c } else { r }) {
                    return Err(bad());
                }
                let (mat, vec, rows, cols) =
                    (mat as usize, vec as usize, rows as usize, cols as usize);
                if is_mv {
                    for j in 0..rows {
                        outs.push(
                            (0..cols)
                                .map(|i| &u[mat + j * cols + i] * &u[vec + i])
                                .sum(),
                        );
                    }
                } else {
                    for i in 0..cols {
                        outs.push(
                            (0..rows)
                                .map(|j| &u[mat + j * cols + i] * &u[vec + j])
                                .sum(),
                        );
                    }
                }
            }
            WireJob::OuterSum {
                a,
                b,
                a_len,
                b_len,
                batch,
            } => {
                let t = u64::from(batch);
                if !fits(a, u64::from(a_len) * t) || !fits(b, u64::from(b_len) * t) {
                    return Err(bad());
                }
                let (a, b, al, bl, batch) = (
                    a as usize,
                    b as usize,
                    a_len as usize,
                    b_len as usize,
                    batch as usize,
                );
                for j in 0..al {
                    for i in 0..bl {
                        outs.push(
                            (0..batch)
                                .map(|t| &u[a + t * al + j] * &u[b + t * bl + i])
                                .sum(),
                        );
                    }
                }
            }
            WireJob::Elementwise { a, b, len } => {
                if !fits(a, u64::from(len)) || !fits(b, u64::from(len)) {
                    return Err(bad());
                }
                let (a, b) = (a as usize, b as usize);
                for i in 0..len as usize {
                    outs.push(&u[a + i] * &u[b + i]);
                }
            }
        }
        Ok(())
    }

    fn assert_zero(&self, cts: &[Ciphertext]) -> Answer {
        if cts.len() > MAX_REQUEST_VALUES {
            return Err(Refusal::Bad("range check of a bad size".into()));
        }
        let values: Vec<BigUint> = cts
            .par_iter()
            .map(|c| self.decrypt(c))
            .collect::<Result<_, _>>()?;
        if let Some(obs) = &self.svc.observer {
            for value in &values {
                obs(&S2View::RangeCheck { value });
            }
        }
        if values.iter().any(|v| !v.is_zero()) {
            return Err(Refusal::Range(
                "SecCompare: a compared value left |x| < 2^ℓ".into(),
            ));
        }
        Ok(Vec::new())
    }

    fn zero_test(&self, groups: &[Vec<Ciphertext>]) -> Answer {
        let total: usize = groups.iter().map(Vec::len).sum();
        if groups.is_empty() || total > MAX_REQUEST_VALUES {
            return Err(Refusal::Bad("zero test of a bad size".into()));
        }
        let lambdas: Vec<BigInt> = groups
            .par_iter()
            .enumerate()
            .map(|(group, g)| {
                let mut any = false;
                for c in g {
                    let value = self.decrypt(c)?;
                    if let Some(obs) = &self.svc.observer {
                        obs(&S2View::ZeroTest {
                            group,
                            value: &value,
                        });
                    }
                    any |= value.is_zero();
                }
                Ok(BigInt::from(u8::from(any)))
            })
            .collect::<Result<_, Refusal>>()?;
        self.encrypt_all(&lambdas)
    }

    fn random(&self, draws: &[(u32, BigInt)]) -> Answer {
        let total: u64 = draws.iter().map(|d| u64::from(d.0)).sum();
        if total as usize > MAX_REQUEST_VALUES {
            return Err(Refusal::Bad("too many random values".into()));
        }
        let mut values = Vec::with_capacity(total as usize);
        let mut rng = rand::thread_rng();
        for (count, bound) in draws {
            if bound.sign() == Sign::Minus || bound.bits() > u64::from(self.params.value_bits) {
                return Err(Refusal::Bad(format!(
                    "random bound must be in [0, 2^{})",
                    self.params.value_bits
                )));
            }
            let span = (bound * 2u32 + 1u32).to_biguint().expect("non-negative");
            for _ in 0..*count {
                let v = paillier::random_below(&span, &mut rng);
                values.push(BigInt::from_biguint(Sign::Plus, v) - bound);
            }
        }
        self.encrypt_all(&values)
    }
}

/// Pushes the bits of d' = 2·(v mod 2^m) + 1, LSB first (m + 1 bits).
fn push_bits(outs: &mut Vec<BigInt>, v: &BigInt, m: u32) {
    let d = v & (pow2(m) - 1);
    let d2: BigInt = (d << 1u32) + 1;
    for i in 0..=u64::from(m) {
        outs.push(BigInt::from(u8::from(d2.bit(i))));
    }
}
