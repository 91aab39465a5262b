//! S2's side: a service that answers S1's requests with the secret key until S1 ends the
//! session. S2 only ever decrypts values S1 has blinded, and checks their ranges.

use crate::channel::{Channel, ChannelError, ChannelExt, MessageError};
use crate::counts::{OpCounter, OpCounts};
use crate::error::ProtocolError;
use crate::messages::{Op, Request, Response, SubProtocol, WireJob};
use crate::params::{
    dgk_u_serves, Comparison, Profile, SessionParams, MAX_KAPPA, MIN_KAPPA, PROTOCOL_VERSION,
};
use num_bigint::{BigInt, BigUint, Sign};
use num_traits::{One, Zero};
use paillier::{dgk, Ciphertext, Encrypt, Fingerprint, RandomizerPool, SecretKey};
use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

/// Default largest number of blinded values in one request.
pub const MAX_REQUEST_VALUES: usize = 1 << 18;
/// Default largest number of ciphertexts S2 returns for one request.
pub const MAX_REQUEST_OUTPUTS: usize = 1 << 18;
/// Default largest number of products of blinded operands S2 computes for one request.
pub const MAX_REQUEST_WORK: u64 = 1 << 26;
/// Largest number of ciphertexts in one DGK zero-test group (ℓ ≤ 512: at most ℓ + 2 bits).
const MAX_GROUP: usize = 514;

/// What the S2 operator agrees to serve; a session asking for anything else is refused in the
/// handshake, and every request is checked against the limits before any decryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S2Policy {
    /// The only profile served (`None`: both).
    pub profile: Option<Profile>,
    /// The only comparison served (`None`: both).
    pub comparison: Option<Comparison>,
    /// Smallest κ accepted (and never below [`MIN_KAPPA`]); κ above [`MAX_KAPPA`] is refused.
    pub min_kappa: u32,
    /// Largest ℓ accepted.
    pub max_value_bits: u32,
    /// Most blinded values in one request.
    pub max_values: usize,
    /// Most ciphertexts returned for one request.
    pub max_outputs: usize,
    /// Most products of blinded operands computed for one request.
    pub max_work: u64,
}

impl Default for S2Policy {
    fn default() -> Self {
        S2Policy {
            profile: None,
            comparison: None,
            min_kappa: MIN_KAPPA,
            max_value_bits: 512,
            max_values: MAX_REQUEST_VALUES,
            max_outputs: MAX_REQUEST_OUTPUTS,
            max_work: MAX_REQUEST_WORK,
        }
    }
}

impl S2Policy {
    /// Why `params` are refused, if they are.
    pub fn refusal(&self, params: &SessionParams) -> Option<String> {
        if let Some(p) = self.profile {
            if p != params.profile {
                return Some(format!(
                    "this S2 serves only the {p} profile, the session asks for {}",
                    params.profile
                ));
            }
        }
        if let Some(c) = self.comparison {
            if c != params.comparison {
                return Some(format!(
                    "this S2 serves only {c} comparisons, the session asks for {}",
                    params.comparison
                ));
            }
        }
        let min = self.min_kappa.max(MIN_KAPPA);
        if params.kappa < min || params.kappa > MAX_KAPPA {
            return Some(format!(
                "kappa = {} is outside what this S2 serves ({min}..={MAX_KAPPA})",
                params.kappa
            ));
        }
        if params.value_bits > self.max_value_bits {
            return Some(format!(
                "value bits = {} exceed this S2's maximum of {}",
                params.value_bits, self.max_value_bits
            ));
        }
        None
    }
}

/// The public keys of the other tenants this S2 serves, by fingerprint: the keys a key switch
/// may re-encrypt to ([`Op::Reencrypt`]). A server holding several tenants' keys provides it.
#[derive(Clone)]
pub struct TenantKeys(pub Arc<TenantKeyFn>);

/// Looks up a tenant's public key by fingerprint.
pub type TenantKeyFn = dyn Fn(&Fingerprint) -> Option<paillier::PublicKey> + Send + Sync;

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKeys(..)")
    }
}

/// Options of the S2 service.
#[derive(Clone, Debug)]
pub struct S2Options {
    /// Precomputed randomizers kept ready (0 disables the pool).
    pub pool_capacity: usize,
    /// Background threads filling the pool.
    pub pool_workers: usize,
    /// What this S2 serves.
    pub policy: S2Policy,
    /// The DGK key of the strict profile's comparisons (`None`: S2 generates one on first need,
    /// [`S2Service::dgk_key`], and keeps it in memory for its lifetime).
    pub dgk: Option<dgk::SecretKey>,
    /// Bit length t of the DGK subgroup primes for a generated key.
    pub dgk_t: u32,
    /// The other tenants' public keys a key switch may re-encrypt to (`None`: key switching is
    /// refused).
    pub tenants: Option<TenantKeys>,
}

impl Default for S2Options {
    fn default() -> Self {
        S2Options {
            pool_capacity: 4096,
            pool_workers: 1,
            policy: S2Policy::default(),
            dgk: None,
            dgk_t: dgk::DEFAULT_T,
            tenants: None,
        }
    }
}

/// The smallest DGK plaintext modulus u that serves comparisons of values of up to `value_bits`
/// bits ([`dgk_u_serves`]): the prime above 3ℓ + 5.
pub fn dgk_u_for(value_bits: u32) -> Option<u32> {
    dgk::prime_above(value_bits.checked_mul(3)?.checked_add(5)?)
}

impl S2Options {
    /// The default policy without a randomizer pool (tests and benches: every encryption is
    /// computed when it is needed, and no background thread runs).
    pub fn without_pool() -> Self {
        S2Options {
            pool_capacity: 0,
            pool_workers: 0,
            ..S2Options::default()
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
        /// The sub-protocol: SecMul (SecMul/SecDot), Truncation or Division, SecReLU (fast: slots
        /// alternate y, u when the value is requested) or SecCompare (strict).
        op: SubProtocol,
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
    /// One DGK ciphertext of a zero test, fully decrypted (S2 only tests it for zero, but could
    /// decrypt it: this is what it could learn).
    ZeroTest {
        /// Group (comparison) of the request the value belongs to.
        group: usize,
        /// The value S2 sees, in [0, u).
        value: u32,
    },
    /// The bit S2 decodes from one garbled comparison, λ' = 1{d < c} ⊕ S1's coin (its labels
    /// and the tables are uniform strings to it).
    Garbled {
        /// Comparison of the request the bit belongs to.
        group: usize,
        /// The bit S2 sees.
        value: bool,
    },
}

/// Callback receiving every [`S2View`]; called from rayon worker threads.
pub type S2Observer = Arc<dyn Fn(&S2View<'_>) + Send + Sync>;

/// The S2 service: the secret key, a randomizer pool and counters shared by all sessions.
pub struct S2Service {
    sk: SecretKey,
    pool: Option<RandomizerPool<SecretKey>>,
    policy: S2Policy,
    total: OpCounter,
    observer: Option<S2Observer>,
    dgk: OnceLock<dgk::SecretKey>,
    dgk_t: u32,
    tenants: Option<TenantKeys>,
}

struct Session<'a> {
    svc: &'a S2Service,
    params: SessionParams,
    counter: OpCounter,
    /// S2's DGK key.
    dgk: &'a dgk::SecretKey,
    /// A garbled session's oblivious transfers.
    ot: Mutex<OtState>,
}

/// Where a garbled session's oblivious transfers stand.
enum OtState {
    /// A DGK session: none.
    Unused,
    /// S2's base-OT point was sent; S1's points are awaited.
    Offered(yao::base::Sender),
    /// The extension is seeded; `pending` is the batch of the last carry-bits answer, until
    /// its garbled comparisons arrive.
    Ready {
        receiver: yao::iknp::Receiver,
        pending: Option<Pending>,
    },
}

/// One OT batch awaiting its garbled comparisons: `items` comparisons of `m` bits.
struct Pending {
    batch: yao::iknp::ReceiverBatch,
    items: usize,
    m: usize,
}

use crate::params::pow2;

/// A refusal to answer: either an out-of-range value or a malformed request. Either ends the
/// session: an honest S1 sends neither (an out-of-range value is a fixed-point overflow, fatal
/// to its computation anyway), and answering on would make S2 an oracle.
enum Refusal {
    Range(String),
    Bad(String),
}

type Answer = Result<Response, Refusal>;

impl S2Service {
    /// A service for `sk`.
    pub fn new(sk: SecretKey, opts: S2Options) -> Self {
        let pool = (opts.pool_capacity > 0 && opts.pool_workers > 0)
            .then(|| RandomizerPool::new(&sk, opts.pool_capacity, opts.pool_workers));
        let dgk = OnceLock::new();
        if let Some(k) = opts.dgk {
            let _ = dgk.set(k);
        }
        S2Service {
            sk,
            pool,
            policy: opts.policy,
            total: OpCounter::default(),
            observer: None,
            dgk,
            dgk_t: opts.dgk_t,
            tenants: opts.tenants,
        }
    }

    /// The public key of another tenant this S2 holds (a key switch's target).
    fn tenant_key(&self, fp: &Fingerprint) -> Option<paillier::PublicKey> {
        self.tenants.as_ref().and_then(|t| (t.0)(fp))
    }

    /// S2's DGK key: the one given in [`S2Options::dgk`], or one generated now on first call
    /// (a modulus of the Paillier key's size, at least 512 bits; subgroup primes of
    /// [`S2Options::dgk_t`] bits; u from [`dgk_u_for`] this S2's largest ℓ) and kept in memory
    /// only. Call it at start-up to pay the generation there and log the fingerprint.
    pub fn dgk_key(&self) -> Result<&dgk::SecretKey, ProtocolError> {
        if let Some(k) = self.dgk.get() {
            return Ok(k);
        }
        let bits = self.sk.public_key().bits().max(512).next_multiple_of(2);
        let key = generate_dgk_key(bits, self.dgk_t, self.policy.max_value_bits)?;
        Ok(self.dgk.get_or_init(|| key))
    }

    /// Randomizers ready in S2's pool and its capacity (`None` without a pool).
    pub fn pool_fill(&self) -> Option<(usize, usize)> {
        self.pool.as_ref().map(|p| (p.ready(), p.capacity()))
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
    /// Returns an error if the handshake is refused (by version, key, parameters or this S2's
    /// [`S2Policy`]), the channel fails, or S1 sends a malformed request, a request beyond the
    /// limits or a value out of its range: S2 tells S1 why, then ends the session
    /// ([`ProtocolError::Refused`]).
    pub fn serve<C: Channel>(&self, mut chan: C) -> Result<SessionSummary, ProtocolError> {
        // Not even a hello: nothing is said to whatever sent it.
        let hello = chan.recv_msg::<Request>()?;
        self.serve_hello(chan, hello)
    }

    /// [`serve`](Self::serve) after S1's first message, `hello`, was read from `chan` (by a
    /// server that picks the service by the key the hello names, [`hello_key`]).
    pub fn serve_hello<C: Channel>(
        &self,
        mut chan: C,
        hello: Request,
    ) -> Result<SessionSummary, ProtocolError> {
        let (mut session, welcome) = match self.open(hello) {
            Ok(opened) => opened,
            Err((reply, error)) => {
                let _ = chan.send_msg(&reply);
                return Err(error);
            }
        };
        chan.send_msg(&welcome)?;
        loop {
            let req = match chan.recv_msg::<Request>() {
                Ok(r) => r,
                Err(MessageError::Channel(ChannelError::Closed)) => break,
                Err(MessageError::Decode(d)) => {
                    let msg = format!("malformed request: {d}");
                    let _ = chan.send_msg(&Response::Error(msg.clone()));
                    return Err(ProtocolError::Refused {
                        op: None,
                        why: msg,
                        out_of_range: false,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            match session.handle(req) {
                Step::Reply(r) => chan.send_msg(&r)?,
                Step::Close => break,
                Step::Refuse { reply, error } => {
                    let _ = chan.send_msg(&reply);
                    return Err(error);
                }
            }
        }
        Ok(session.summary())
    }

    /// The session's opening without I/O: checks S1's `Hello` (version, key, parameters, this
    /// S2's [`S2Policy`]) and returns the session and the `HelloOk` to send, or the reply that
    /// refuses it and the error. [`serve`](Self::serve) is this, [`S2Session::handle`] and a
    /// channel.
    #[allow(clippy::result_large_err)]
    pub fn open(
        &self,
        hello: Request,
    ) -> Result<(S2Session<'_>, Response), (Response, ProtocolError)> {
        let refuse = |msg: String| (Response::Error(msg.clone()), ProtocolError::Handshake(msg));
        let params = match hello {
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
                    params
                        .validate(pk.bits())
                        .err()
                        .or_else(|| self.policy.refusal(&params))
                };
                if let Some(msg) = refusal {
                    return Err(refuse(msg));
                }
                params
            }
            other => {
                return Err(refuse(format!(
                    "expected Hello, got {}",
                    request_name(&other)
                )))
            }
        };
        // Every session gets the DGK key: the strict profile's comparisons and any exact
        // truncation or division (which a fast session may ask for) need it.
        let key = self
            .dgk_key()
            .map_err(|e| refuse(format!("no DGK key: {e}")))?;
        let u = key.public_key().u();
        if !dgk_u_serves(u, params.value_bits) {
            return Err(refuse(format!(
                "this S2's DGK key (u = {u}) serves comparisons of at most {} value bits, the session asks for {}",
                (u - 6) / 3,
                params.value_bits
            )));
        }
        let dgk = key;
        let (ot, point) = match params.comparison {
            Comparison::Dgk => (OtState::Unused, None),
            Comparison::Garbled => {
                let (sender, point) = yao::base::Sender::new(&mut rand::thread_rng());
                (OtState::Offered(sender), Some(point))
            }
        };
        let session = Session {
            svc: self,
            params,
            counter: OpCounter::default(),
            dgk,
            ot: Mutex::new(ot),
        };
        Ok((
            S2Session {
                session,
                requests: 0,
            },
            Response::HelloOk {
                dgk: Some(dgk.public_key().clone()),
                ot: point,
            },
        ))
    }
}

/// A fresh DGK comparison key of a `bits`-bit modulus with `t`-bit subgroup primes and the
/// plaintext modulus u that serves comparisons of up to `max_value_bits` ([`dgk_u_for`]), from
/// the OS's CSPRNG: what an S2 generates at start and keeps in memory only.
pub fn generate_dgk_key(
    bits: u32,
    t: u32,
    max_value_bits: u32,
) -> Result<dgk::SecretKey, ProtocolError> {
    let u = dgk_u_for(max_value_bits).ok_or_else(|| {
        ProtocolError::InvalidParams(format!(
            "no DGK plaintext modulus serves ℓ = {max_value_bits}"
        ))
    })?;
    Ok(dgk::SecretKey::generate(
        bits,
        t,
        u,
        &mut rand::rngs::OsRng,
    )?)
}

/// The fingerprint of the key an S1 `Hello` names (`None` for any other request): a server
/// that holds the keys of several tenants picks the [`S2Service`] by it.
pub fn hello_key(hello: &Request) -> Option<Fingerprint> {
    match hello {
        Request::Hello { fingerprint, .. } => Some(*fingerprint),
        _ => None,
    }
}

/// Serves one S1 session with the service of the key its hello names: `pick` returns the
/// [`S2Service`] of that key, or why S2 does not serve it (told to S1; the session ends with
/// [`ProtocolError::Handshake`]). For an S2 that holds the keys of several tenants.
pub fn serve_keyed<C: Channel>(
    mut chan: C,
    pick: impl FnOnce(&Fingerprint) -> Result<Arc<S2Service>, String>,
) -> Result<SessionSummary, ProtocolError> {
    let hello = chan.recv_msg::<Request>()?;
    let picked = match hello_key(&hello) {
        Some(fp) => pick(&fp),
        None => Err(format!("expected Hello, got {}", request_name(&hello))),
    };
    match picked {
        Ok(svc) => svc.serve_hello(chan, hello),
        Err(msg) => {
            let _ = chan.send_msg(&Response::Error(msg.clone()));
            Err(ProtocolError::Handshake(msg))
        }
    }
}

/// What S2 does with one request of an open session ([`S2Session::handle`]).
#[derive(Debug)]
pub enum Step {
    /// Send this answer and wait for the next request.
    Reply(Response),
    /// S1 said goodbye: the session is over.
    Close,
    /// Send this refusal, then end the session with this error (a malformed request, one beyond
    /// the limits or the session's profile, or a value out of its range).
    Refuse {
        /// The answer that tells S1 why.
        reply: Response,
        /// The session's error.
        error: ProtocolError,
    },
}

/// One S1 session at S2 without I/O: each request in, one [`Step`] out — S2 as a function of
/// the request, testable without a channel.
pub struct S2Session<'a> {
    session: Session<'a>,
    requests: u64,
}

impl S2Session<'_> {
    /// The session's parameters (agreed in the handshake).
    pub fn params(&self) -> &SessionParams {
        &self.session.params
    }

    /// Answers one request.
    pub fn handle(&mut self, req: Request) -> Step {
        self.requests += 1;
        let session = &self.session;
        let op = req.sub_protocol();
        let answer = match req {
            Request::Bye => return Step::Close,
            Request::Hello { .. } => Err(Refusal::Bad("session already open".into())),
            Request::Stats => return Step::Reply(Response::Stats(session.counter.snapshot())),
            Request::Eval {
                packs,
                slot_bits,
                count,
                op,
            } => session.eval(&packs, slot_bits, count as usize, &op),
            Request::ZeroTest { groups } => session.zero_test(&groups),
            Request::BaseOt { points } => session.base_ot(&points),
            Request::Garbled {
                answers,
                tables,
                starts,
                decode,
            } => session.garbled(&answers, &tables, &starts, &decode),
            Request::Random { draws } => session.random(&draws),
            Request::AssertZero { cts } => session.assert_zero(&cts),
        };
        match answer {
            Ok(r) => Step::Reply(r),
            Err(refusal) => {
                let (reply, why, out_of_range) = match refusal {
                    Refusal::Range(m) => (Response::OutOfRange(m.clone()), m, true),
                    Refusal::Bad(m) => (Response::Error(m.clone()), m, false),
                };
                Step::Refuse {
                    reply,
                    error: ProtocolError::Refused {
                        op,
                        why,
                        out_of_range,
                    },
                }
            }
        }
    }

    /// What the session did so far.
    pub fn summary(&self) -> SessionSummary {
        SessionSummary {
            requests: self.requests,
            counts: self.session.counter.snapshot(),
            params: Some(self.session.params),
        }
    }
}

/// The message type of a request (for the handshake's error).
fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Hello { .. } => "Hello",
        Request::Eval { .. } => "Eval",
        Request::ZeroTest { .. } => "ZeroTest",
        Request::BaseOt { .. } => "BaseOt",
        Request::Garbled { .. } => "Garbled",
        Request::Random { .. } => "Random",
        Request::AssertZero { .. } => "AssertZero",
        Request::Stats => "Stats",
        Request::Bye => "Bye",
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

    fn encrypt_all(&self, values: &[BigInt]) -> Result<Vec<Ciphertext>, Refusal> {
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

    /// Checks an `Eval` request against its declared shape before anything is decrypted or
    /// allocated: the slot width the protocol uses for `op`, the number of packs, what `op` is
    /// allowed in this session's profile, and (with checked arithmetic) its output count and
    /// work against the policy's limits.
    fn check_eval(
        &self,
        packs: usize,
        slot_bits: u32,
        count: usize,
        op: &Op,
    ) -> Result<(), Refusal> {
        let policy = &self.svc.policy;
        let l = self.params.value_bits;
        let strict = self.params.profile == Profile::Strict;
        let extra = match op {
            Op::Products { .. }
            | Op::Divide { .. }
            | Op::DivideBy { .. }
            | Op::Reencrypt { .. } => 0,
            Op::Sign { .. } | Op::CompareBits { .. } => 2,
        };
        if slot_bits != self.params.slot_bits(extra) {
            return Err(Refusal::Bad(format!("slot width {slot_bits} not allowed")));
        }
        if count == 0 || count > policy.max_values {
            return Err(Refusal::Bad(format!(
                "request of {count} values not allowed (1..={})",
                policy.max_values
            )));
        }
        let key_bits = self.svc.sk.public_key().bits();
        let per = ((key_bits - 2) / slot_bits).max(1) as usize;
        if packs != count.div_ceil(per) {
            return Err(Refusal::Bad(format!("{packs} packs for {count} values")));
        }
        let bad = |m: String| Err(Refusal::Bad(m));
        let too_many = || Refusal::Bad("request too large".into());
        let (outputs, work): (usize, u64) = match op {
            Op::Products { jobs, negate } => {
                if jobs.is_empty() || negate.len() != jobs.len() {
                    return bad("one negation flag per job, and at least one job, expected".into());
                }
                let mut outputs = 0usize;
                let mut work = 0u64;
                for job in jobs {
                    let (o, w) = job_shape(job, count as u64)?;
                    outputs = outputs.checked_add(o).ok_or_else(too_many)?;
                    work = work.checked_add(w).ok_or_else(too_many)?;
                }
                (outputs, work)
            }
            Op::Divide { shift, carry_bits } => {
                if *shift == 0 || *shift > l {
                    return bad(format!("division by 2^{shift} not allowed"));
                }
                if strict && !carry_bits {
                    return bad("stochastic truncation is not served in a strict session".into());
                }
                let per = if *carry_bits { *shift as usize + 2 } else { 1 };
                (count.checked_mul(per).ok_or_else(too_many)?, 0)
            }
            Op::DivideBy {
                divisor,
                carry_bits,
            } => {
                let m = 64 - divisor.leading_zeros();
                if *divisor < 2 || m > l {
                    return bad(format!("division by {divisor} not allowed"));
                }
                if strict && !carry_bits {
                    return bad("stochastic division is not served in a strict session".into());
                }
                let per = if *carry_bits { m as usize + 2 } else { 1 };
                (count.checked_mul(per).ok_or_else(too_many)?, 0)
            }
            Op::Sign { with_value } => {
                if strict {
                    return bad("the fast sign test is not served in a strict session".into());
                }
                if *with_value && !count.is_multiple_of(2) {
                    return bad("sign test needs pairs".into());
                }
                (count, 0)
            }
            Op::CompareBits { bits } => {
                if *bits == 0 || *bits > l + 1 {
                    return bad(format!("comparison of {bits} bits not allowed"));
                }
                let per = *bits as usize + 2;
                (count.checked_mul(per).ok_or_else(too_many)?, 0)
            }
            Op::Reencrypt { to } => {
                if self.svc.tenant_key(to).is_none() {
                    return bad(format!("S2 holds no key {to} to re-encrypt to"));
                }
                (count, 0)
            }
        };
        if outputs > policy.max_outputs || work > policy.max_work {
            return bad(format!(
                "request of {outputs} results and {work} products exceeds this S2's limits ({} results, {} products)",
                policy.max_outputs, policy.max_work
            ));
        }
        Ok(())
    }

    /// Decrypts the packs and returns the signed slot values u = t − 2^(slot_bits − 2); the
    /// request was checked by [`check_eval`](Self::check_eval).
    fn unpack(
        &self,
        packs: &[Ciphertext],
        slot_bits: u32,
        count: usize,
    ) -> Result<Vec<BigInt>, Refusal> {
        let key_bits = self.svc.sk.public_key().bits();
        let per = ((key_bits - 2) / slot_bits).max(1) as usize;
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

    /// Runs an `Eval` request; its parameters (shift, divisor, pairs, bits) are those
    /// [`check_eval`](Self::check_eval) accepted.
    fn eval(&self, packs: &[Ciphertext], slot_bits: u32, count: usize, op: &Op) -> Answer {
        self.check_eval(packs.len(), slot_bits, count, op)?;
        let u = self.unpack(packs, slot_bits, count)?;
        if let Some(obs) = &self.svc.observer {
            for (index, value) in u.iter().enumerate() {
                obs(&S2View::Slot {
                    op: op.sub_protocol(),
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
                let mut outs = Vec::new();
                for (job, neg) in jobs.iter().zip(negate) {
                    let start = outs.len();
                    self.run_job(job, &u, &mut outs)?;
                    if *neg {
                        outs[start..].iter_mut().for_each(|v| *v = -&*v);
                    }
                }
                self.encrypt_all(&outs).map(Response::Ciphertexts)
            }
            Op::Divide { shift, carry_bits } => {
                self.divide(&u, &pow2(*shift), *shift, *carry_bits, "truncation")
            }
            Op::DivideBy {
                divisor,
                carry_bits,
            } => {
                let m = 64 - divisor.leading_zeros();
                self.divide(&u, &BigInt::from(*divisor), m, *carry_bits, "division")
            }
            Op::Sign { with_value } => {
                let per = if *with_value { 2 } else { 1 };
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
                self.encrypt_all(&outs).map(Response::Ciphertexts)
            }
            Op::CompareBits { bits } => {
                let m = *bits;
                let hi = pow2(m + self.params.kappa) + pow2(m + 1);
                let mask = pow2(m) - 1;
                let mut quotients = Vec::with_capacity(u.len());
                let mut ds = Vec::with_capacity(u.len());
                for z in &u {
                    if z.sign() == Sign::Minus || z >= &hi {
                        return Err(Refusal::Range(
                            "comparison: blinded value out of range".into(),
                        ));
                    }
                    quotients.push(z >> m);
                    ds.push(z & &mask);
                }
                self.carry_answer(&quotients, &ds, m)
            }
            Op::Reencrypt { to } => {
                for v in &u {
                    self.check_blinded(v, 0, "key switch operand")?;
                }
                let target = self
                    .svc
                    .tenant_key(to)
                    .ok_or_else(|| Refusal::Bad(format!("S2 holds no key {to}")))?;
                let n = u.len() as u64;
                OpCounter::add(&self.counter.encryptions, n);
                OpCounter::add(&self.svc.total.encryptions, n);
                u.par_iter()
                    .map(|v| {
                        target
                            .encrypt(v, &mut rand::thread_rng())
                            .map_err(|e| Refusal::Bad(format!("result does not fit: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Response::Ciphertexts)
            }
        }
    }

    /// ⌊v / d⌋ for every blinded v = x + 2^ℓ + r (≥ 0 for in-range x), and with `carry_bits`
    /// the bits of 2·(v mod d) + 1 (m + 1 of them, d < 2^m) for S1's DGK carry.
    fn divide(&self, u: &[BigInt], d: &BigInt, m: u32, carry_bits: bool, what: &str) -> Answer {
        let l = self.params.value_bits;
        let hi = pow2(l + self.params.kappa) + pow2(l + 1);
        let mut quotients = Vec::with_capacity(u.len());
        let mut ds = Vec::with_capacity(if carry_bits { u.len() } else { 0 });
        for v in u {
            if v.sign() == Sign::Minus || v >= &hi {
                return Err(Refusal::Range(format!(
                    "{what}: blinded value out of range"
                )));
            }
            quotients.push(v / d);
            if carry_bits {
                ds.push(v % d);
            }
        }
        if carry_bits {
            self.carry_answer(&quotients, &ds, m)
        } else {
            self.encrypt_all(&quotients).map(Response::Ciphertexts)
        }
    }

    /// The answer to a request with carry bits: the Paillier encryptions of the quotients and,
    /// for each d (m bits, d < 2^m), by the session's comparison, the DGK encryptions of the
    /// bits of 2d + 1 ([`Response::Bits`]) or an OT extension batch chosen by d's bits, kept
    /// until S1's garbled comparisons arrive ([`Response::OtBits`]).
    fn carry_answer(&self, quotients: &[BigInt], ds: &[BigInt], m: u32) -> Answer {
        if self.params.comparison == Comparison::Dgk {
            let mut dbits = Vec::with_capacity(ds.len() * (m as usize + 1));
            for d in ds {
                push_bits(&mut dbits, d, m);
            }
            return self.with_bits(quotients, &dbits);
        }
        let choices: Vec<bool> = ds
            .iter()
            .flat_map(|d| (0..u64::from(m)).map(move |i| d.bit(i)))
            .collect();
        let mut state = self.ot.lock().unwrap_or_else(|p| p.into_inner());
        let OtState::Ready { receiver, pending } = &mut *state else {
            return Err(Refusal::Bad(
                "comparison before the base OTs of a garbled session".into(),
            ));
        };
        let (first, columns, batch) = receiver
            .extend(&choices)
            .map_err(|e| Refusal::Bad(format!("OT extension: {e}")))?;
        *pending = Some(Pending {
            batch,
            items: ds.len(),
            m: m as usize,
        });
        drop(state);
        let values = self.encrypt_all(quotients)?;
        Ok(Response::OtBits {
            values,
            first,
            columns,
        })
    }

    /// S1's base-OT points: seeds the OT extension (once per garbled session).
    fn base_ot(&self, points: &[[u8; 32]]) -> Answer {
        let mut state = self.ot.lock().unwrap_or_else(|p| p.into_inner());
        let OtState::Offered(sender) = &*state else {
            return Err(Refusal::Bad(
                "base OTs outside a garbled session's opening".into(),
            ));
        };
        let keys = sender
            .keys(points, yao::iknp::K)
            .map_err(|e| Refusal::Bad(format!("base OT: {e}")))?;
        let receiver =
            yao::iknp::Receiver::new(keys).map_err(|e| Refusal::Bad(format!("base OT: {e}")))?;
        *state = OtState::Ready {
            receiver,
            pending: None,
        };
        Ok(Response::Ready)
    }

    /// S1's garbled comparisons for the pending OT batch: opens the input labels, evaluates
    /// every circuit and returns ⟦λ'⟧ per comparison.
    fn garbled(&self, answers: &[u8], tables: &[u8], starts: &[u8], decode: &[bool]) -> Answer {
        let pending = match &mut *self.ot.lock().unwrap_or_else(|p| p.into_inner()) {
            OtState::Ready { pending, .. } => pending.take(),
            _ => None,
        };
        let Some(Pending { batch, items, m }) = pending else {
            return Err(Refusal::Bad(
                "garbled comparisons without a pending OT batch".into(),
            ));
        };
        let n = batch.len();
        if answers.len() != 32 * n
            || tables.len() != 32 * n
            || starts.len() != 16 * items
            || decode.len() != items
        {
            return Err(Refusal::Bad(format!(
                "garbled comparisons of a bad size for {items} comparisons of {m} bits"
            )));
        }
        // The sizes were checked: whole pairs and blocks.
        let bad_size = || Refusal::Bad("garbled comparisons of a bad size".into());
        let answers = yao::bytes_to_pairs(answers).ok_or_else(bad_size)?;
        let tables = yao::bytes_to_pairs(tables).ok_or_else(bad_size)?;
        let starts = yao::bytes_to_blocks(starts).ok_or_else(bad_size)?;
        let labels = batch
            .open(&answers)
            .map_err(|e| Refusal::Bad(format!("OT extension: {e}")))?;
        OpCounter::add(&self.counter.gates, n as u64);
        OpCounter::add(&self.svc.total.gates, n as u64);
        let lambdas: Vec<BigInt> = (0..items)
            .into_par_iter()
            .map(|item| {
                let circuit = yao::compare::Circuit {
                    tables: tables[item * m..(item + 1) * m].to_vec(),
                    start: starts[item],
                    decode: decode[item],
                };
                let value = yao::compare::evaluate(
                    &circuit,
                    &labels[item * m..(item + 1) * m],
                    item as u32,
                )
                .map_err(|e| Refusal::Bad(format!("garbled comparison: {e}")))?;
                if let Some(obs) = &self.svc.observer {
                    obs(&S2View::Garbled { group: item, value });
                }
                Ok(BigInt::from(u8::from(value)))
            })
            .collect::<Result<_, Refusal>>()?;
        self.encrypt_all(&lambdas).map(Response::Ciphertexts)
    }

    /// The Paillier encryptions of `values` and the DGK encryptions of `bits` (0 or 1 each),
    /// in one [`Response::Bits`].
    fn with_bits(&self, values: &[BigInt], bits: &[bool]) -> Answer {
        let key = self.dgk;
        let values = self.encrypt_all(values)?;
        let n = bits.len() as u64;
        OpCounter::add(&self.counter.dgk_encryptions, n);
        OpCounter::add(&self.svc.total.dgk_encryptions, n);
        let bits = bits
            .par_iter()
            .map(|b| key.encrypt(i64::from(*b), &mut rand::thread_rng()))
            .collect();
        Ok(Response::Bits { values, bits })
    }

    fn run_job(&self, job: &WireJob, u: &[BigInt], outs: &mut Vec<BigInt>) -> Result<(), Refusal> {
        let (outputs, _) = job_shape(job, u.len() as u64)?;
        outs.extend((0..outputs).map(|o| job.terms(o).map(|(a, b)| &u[a] * &u[b]).sum::<BigInt>()));
        Ok(())
    }

    fn assert_zero(&self, cts: &[Ciphertext]) -> Answer {
        if self.params.profile != Profile::Strict {
            return Err(Refusal::Bad(
                "the range check of the strict comparison is served in strict sessions only".into(),
            ));
        }
        if cts.is_empty() || cts.len() > self.svc.policy.max_values {
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
        Ok(Response::Ciphertexts(Vec::new()))
    }

    fn zero_test(&self, groups: &[Vec<dgk::Ciphertext>]) -> Answer {
        let key = self.dgk;
        // S1 sends one group of m + 1 blinded values per comparison, m + 1 the same for every
        // group of a request and at most ℓ + 2 (comparisons of at most ℓ + 1 bits).
        let size = groups.first().map_or(0, Vec::len);
        let max_size = (self.params.value_bits as usize + 2).min(MAX_GROUP);
        if groups.is_empty()
            || size < 2
            || size > max_size
            || groups.iter().any(|g| g.len() != size)
            || groups
                .len()
                .checked_mul(size)
                .is_none_or(|t| t > self.svc.policy.max_values)
            || groups.len() > self.svc.policy.max_outputs
        {
            return Err(Refusal::Bad("zero test of a bad size".into()));
        }
        // Every ciphertext is checked before any is tested.
        for c in groups.iter().flatten() {
            key.public_key()
                .validate(c)
                .map_err(|e| Refusal::Bad(format!("zero test: {e}")))?;
        }
        let tests = (groups.len() * size) as u64;
        OpCounter::add(&self.counter.zero_tests, tests);
        OpCounter::add(&self.svc.total.zero_tests, tests);
        // Every value is tested, whatever the others give (work independent of the data), each
        // on any core.
        let zeros: Vec<bool> = groups
            .par_iter()
            .enumerate()
            .flat_map(|(group, g)| g.par_iter().map(move |c| (group, c)))
            .map(|(group, c)| {
                let zero = key
                    .is_zero(c)
                    .map_err(|e| Refusal::Bad(format!("zero test: {e}")))?;
                if let Some(obs) = &self.svc.observer {
                    let value = key
                        .decrypt(c)
                        .map_err(|e| Refusal::Bad(format!("zero test: {e}")))?;
                    obs(&S2View::ZeroTest { group, value });
                }
                Ok(zero)
            })
            .collect::<Result<_, Refusal>>()?;
        let lambdas: Vec<BigInt> = zeros
            .chunks(size)
            .map(|g| BigInt::from(u8::from(g.iter().any(|z| *z))))
            .collect();
        self.encrypt_all(&lambdas).map(Response::Ciphertexts)
    }

    fn random(&self, draws: &[(u32, BigInt)]) -> Answer {
        let mut total = 0usize;
        for (count, bound) in draws {
            if bound.sign() == Sign::Minus || bound.bits() > u64::from(self.params.value_bits) {
                return Err(Refusal::Bad(format!(
                    "random bound must be in [0, 2^{})",
                    self.params.value_bits
                )));
            }
            total = total
                .checked_add(*count as usize)
                .filter(|t| *t <= self.svc.policy.max_outputs)
                .ok_or_else(|| Refusal::Bad("too many random values".into()))?;
        }
        if total == 0 {
            return Err(Refusal::Bad("no random values asked for".into()));
        }
        let mut values = Vec::with_capacity(total);
        let mut rng = rand::thread_rng();
        for (count, bound) in draws {
            let span = (bound * 2u32 + 1u32).to_biguint().expect("non-negative");
            for _ in 0..*count {
                let v = paillier::random_below(&span, &mut rng);
                values.push(BigInt::from_biguint(Sign::Plus, v) - bound);
            }
        }
        self.encrypt_all(&values).map(Response::Ciphertexts)
    }
}

/// The output count and number of products of `job` over `n` slots ([`WireJob::shape`]), or the
/// refusal of a job out of bounds.
fn job_shape(job: &WireJob, n: u64) -> Result<(usize, u64), Refusal> {
    job.shape(n)
        .ok_or_else(|| Refusal::Bad(format!("product job out of bounds: {job:?}")))
}

/// Pushes the bits of d' = 2d + 1 for d < 2^m (the caller reduced it), LSB first (m + 1 bits).
fn push_bits(outs: &mut Vec<bool>, d: &BigInt, m: u32) {
    let d2: BigInt = (d << 1u32) + 1;
    for i in 0..=u64::from(m) {
        outs.push(d2.bit(i));
    }
}
