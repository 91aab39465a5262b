//! S1's side of every sub-protocol. S1 holds only the public key and ciphertexts; it blinds, packs
//! and sends values to S2, and removes the blinds from S2's answers homomorphically.

use crate::channel::{Channel, ChannelExt, Metered, Traffic, TrafficSnapshot};
use crate::counts::{OpCounter, OpCounts};
use crate::error::ProtocolError;
use crate::messages::{Op, Request, Response, SubProtocol, WireJob};
use crate::params::{dgk_u_serves, Comparison, SessionParams, Truncation, PROTOCOL_VERSION};
use num_bigint::{BigInt, Sign};
use num_traits::{One, Zero};
use paillier::{dgk, Ciphertext, CiphertextPowers, JointPowers, PublicKey, RandomizerPool};
use rand::{Rng, RngCore};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A product job over caller operands (indices into the `operands` slice of
/// [`S1::products`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// SecDot, matrix × vector: out[j] = Σ_i M[j·cols + i] · v[i] (M row-major, rows × cols).
    MatVec {
        mat: usize,
        vec: usize,
        rows: usize,
        cols: usize,
    },
    /// Vector × matrix: out[i] = Σ_j M[j·cols + i] · v[j] (i < cols).
    VecMat {
        mat: usize,
        vec: usize,
        rows: usize,
        cols: usize,
    },
    /// Sum over a batch of outer products: out[j·b_len + i] = Σ_t a[t·a_len + j] · b[t·b_len + i].
    OuterSum {
        a: usize,
        b: usize,
        a_len: usize,
        b_len: usize,
        batch: usize,
    },
    /// SecMul, element-wise: out[i] = a[i] · b[i].
    Elementwise { a: usize, b: usize },
}

fn too_large() -> ProtocolError {
    ProtocolError::InvalidRequest("more operand values than a request can carry".into())
}

impl Job {
    /// The job on the wire, over operands laid side by side from `starts`, after checking that
    /// each operand has exactly the length the job reads.
    fn wire(&self, operands: &[&[Ciphertext]], starts: &[u32]) -> Result<WireJob, ProtocolError> {
        let len = |i: usize| -> Result<usize, ProtocolError> {
            operands
                .get(i)
                .map(|o| o.len())
                .ok_or_else(|| ProtocolError::InvalidRequest(format!("operand {i} does not exist")))
        };
        let dim = |v: usize| u32::try_from(v).map_err(|_| too_large());
        let mismatch = || ProtocolError::InvalidRequest(format!("shape mismatch in {self:?}"));
        let fits = |op: usize, want: Option<usize>| -> Result<u32, ProtocolError> {
            if Some(len(op)?) == want {
                Ok(starts[op])
            } else {
                Err(mismatch())
            }
        };
        Ok(match *self {
            Job::MatVec {
                mat,
                vec,
                rows,
                cols,
            } => WireJob::MatVec {
                mat: fits(mat, rows.checked_mul(cols))?,
                vec: fits(vec, Some(cols))?,
                rows: dim(rows)?,
                cols: dim(cols)?,
            },
            Job::VecMat {
                mat,
                vec,
                rows,
                cols,
            } => WireJob::VecMat {
                mat: fits(mat, rows.checked_mul(cols))?,
                vec: fits(vec, Some(rows))?,
                rows: dim(rows)?,
                cols: dim(cols)?,
            },
            Job::OuterSum {
                a,
                b,
                a_len,
                b_len,
                batch,
            } => WireJob::OuterSum {
                a: fits(a, a_len.checked_mul(batch))?,
                b: fits(b, b_len.checked_mul(batch))?,
                a_len: dim(a_len)?,
                b_len: dim(b_len)?,
                batch: dim(batch)?,
            },
            Job::Elementwise { a, b } => WireJob::Elementwise {
                a: fits(a, Some(len(b)?))?,
                b: starts[b],
                len: dim(len(a)?)?,
            },
        })
    }
}

/// Uniform in [0, 2^bits).
pub(crate) fn random_bits<R: RngCore + ?Sized>(bits: u32, rng: &mut R) -> BigInt {
    let nbytes = bits.div_ceil(8) as usize;
    let mut buf = vec![0u8; nbytes];
    rng.fill_bytes(&mut buf);
    let extra = nbytes as u32 * 8 - bits;
    if extra > 0 {
        buf[0] &= 0xffu8 >> extra;
    }
    BigInt::from_bytes_be(Sign::Plus, &buf)
}

/// Uniform in [lo, hi) for lo < hi.
fn random_range<R: RngCore + ?Sized>(lo: &BigInt, hi: &BigInt, rng: &mut R) -> BigInt {
    let span = (hi - lo).to_biguint().expect("lo < hi");
    lo + BigInt::from(paillier::random_below(&span, rng))
}

use crate::params::pow2;

/// One slot of a packed request: S2 will see `m + tau` where ⟦m⟧ is `ct` (`None`: a padding
/// slot, m = 0, that no job reads).
struct Slot<'a> {
    ct: Option<&'a Ciphertext>,
    tau: BigInt,
}

/// An operand of [`S1::products_reusing`]: ciphertexts to blind and pack, or the packs of an
/// earlier request's operands, sent again.
#[derive(Clone, Copy, Debug)]
pub enum Operand<'a> {
    /// Ciphertexts, blinded and packed for this request.
    Fresh(&'a [Ciphertext]),
    /// Operands kept from an earlier request of this session.
    Reused(&'a Reusable),
}

/// Operands of a products request kept by [`S1::products_reusing`] with their blinds and the
/// very packs S2 decrypted: a later request of the same session can send them again
/// ([`Operand::Reused`]) — the forward SecDot's inputs in the gradient — at no packing cost. S2
/// sees the values it has already seen (the same ciphertexts, so it can tell they are the same;
/// it learns nothing else).
#[derive(Clone, Debug)]
pub struct Reusable {
    cts: Vec<Ciphertext>,
    blinds: Vec<BigInt>,
    packs: Vec<Ciphertext>,
    slot_bits: u32,
    session: u64,
}

impl Reusable {
    /// The kept operands' ciphertexts, side by side.
    pub fn ciphertexts(&self) -> &[Ciphertext] {
        &self.cts
    }
}

/// Sessions of this process, to refuse a [`Reusable`] from another session.
static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// S1's end of a session with S2: an [`S1Core`] (every step of every sub-protocol, without
/// I/O) and the channel. Each method below is the core's steps with one round trip between
/// them ([`S1::round`], the only place that sends or receives).
pub struct S1<C: Channel> {
    core: S1Core,
    chan: Metered<C>,
}

/// S1's side of a session without I/O: the public key, S2's DGK public key, the session
/// parameters, the operation counters (per sub-protocol too) and the randomizer pool.
///
/// Each sub-protocol is a `prepare_…` method that blinds and packs its inputs and returns the
/// [`Request`] for S2 with what S1 keeps until the answer (a step value), and that step's
/// `finish`, which takes S2's [`Response`] and removes the blinds (or returns the next
/// request, for the strict comparison's two rounds). Nothing here touches a channel: the steps
/// run against [`S2Session::handle`](crate::S2Session::handle) in a unit test as well as over
/// TLS through [`S1`]. Thread-safe: the work inside a step is spread over rayon's threads.
pub struct S1Core {
    pk: PublicKey,
    /// S2's DGK public key, received (and checked) in the handshake.
    dgk: dgk::PublicKey,
    params: SessionParams,
    counter: Arc<OpCounter>,
    pool: Option<RandomizerPool<PublicKey>>,
    /// This session's number in the process (for [`Reusable`]).
    session: u64,
    /// Operation counts per sub-protocol, as attributed by [`S1Core::attribute`].
    by_protocol: Mutex<(OpCounts, Vec<(SubProtocol, OpCounts)>)>,
    /// A garbled session's oblivious transfers.
    ot: Mutex<OtSide>,
}

/// Where S1's oblivious transfers stand in a session.
enum OtSide {
    /// A DGK session: none.
    Unused,
    /// S2's base-OT point, received in the handshake; the base OTs are done before the first
    /// comparison ([`S1Core::base_ot_request`]).
    Offered([u8; 32]),
    /// The OT extension's sender, seeded.
    Ready(yao::iknp::Sender),
}

impl S1Core {
    /// The handshake's first message, after checking the parameters against the key.
    pub fn hello(pk: &PublicKey, params: &SessionParams) -> Result<Request, ProtocolError> {
        params
            .validate(pk.bits())
            .map_err(ProtocolError::InvalidParams)?;
        Ok(Request::Hello {
            version: PROTOCOL_VERSION,
            fingerprint: pk.fingerprint(),
            params: *params,
        })
    }

    /// The session, from S2's answer to [`hello`](Self::hello): S2's DGK public key is checked
    /// against the session (its plaintext space, its size); in a garbled session S1 answers
    /// S2's base-OT point (its own choices and keys drawn here), and
    /// [`base_ot_request`](Self::base_ot_request) is the message to send before any comparison.
    pub fn accept(
        pk: PublicKey,
        params: SessionParams,
        reply: Response,
    ) -> Result<Self, ProtocolError> {
        let (dgk, point) = match reply {
            Response::HelloOk { dgk: Some(key), ot } => (check_dgk_key(key, &pk, &params)?, ot),
            Response::HelloOk { dgk: None, .. } => {
                return Err(ProtocolError::Violation(
                    "S2 accepted the session without a DGK public key".into(),
                ))
            }
            Response::Error(m) => return Err(ProtocolError::Handshake(m)),
            other => {
                return Err(ProtocolError::Violation(format!(
                    "unexpected handshake reply {other:?}"
                )))
            }
        };
        let ot = match (params.comparison, point) {
            (Comparison::Dgk, _) => OtSide::Unused,
            (Comparison::Garbled, None) => {
                return Err(ProtocolError::Violation(
                    "S2 accepted a garbled session without its base-OT point".into(),
                ))
            }
            (Comparison::Garbled, Some(a)) => {
                yao::base::check_point(&a)
                    .map_err(|e| ProtocolError::Violation(format!("S2's base-OT point: {e}")))?;
                OtSide::Offered(a)
            }
        };
        Ok(S1Core {
            pk,
            dgk,
            params,
            counter: Arc::new(OpCounter::default()),
            pool: None,
            session: SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            by_protocol: Mutex::new((OpCounts::default(), Vec::new())),
            ot: Mutex::new(ot),
        })
    }

    /// A garbled session's base OTs (S1's points, its secret choices and keys drawn here), the
    /// message to send before the session's first comparison or exact division, once: `None` in
    /// a DGK session and after the first call. S2 answers [`Response::Ready`]
    /// ([`finish_base_ot`](Self::finish_base_ot)). [`S1`] sends it just before the first
    /// request that needs it, so a session that never compares exactly never pays for it.
    pub fn base_ot_request(&self) -> Option<Request> {
        let mut ot = self.ot.lock().unwrap_or_else(|p| p.into_inner());
        let OtSide::Offered(a) = *ot else {
            return None;
        };
        let mut rng = rand::thread_rng();
        let s: u128 = rng.gen();
        let choices: Vec<bool> = (0..yao::iknp::K).map(|i| (s >> i) & 1 == 1).collect();
        // Neither can fail: the point was checked in `accept`, and there are K keys.
        let (points, keys) = yao::base::receive(&a, &choices, &mut rng).ok()?;
        *ot = OtSide::Ready(yao::iknp::Sender::new(s, keys).ok()?);
        Some(Request::BaseOt { points })
    }

    /// S2's answer to [`base_ot_request`](Self::base_ot_request).
    pub fn finish_base_ot(&self, reply: Response) -> Result<(), ProtocolError> {
        match reply {
            Response::Ready => Ok(()),
            Response::Error(m) => Err(ProtocolError::Handshake(m)),
            other => Err(ProtocolError::Violation(format!(
                "unexpected answer to the base OTs {other:?}"
            ))),
        }
    }

    /// S2's DGK public key, received and checked in the handshake.
    pub fn dgk_public_key(&self) -> &dgk::PublicKey {
        &self.dgk
    }
    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.pk
    }
    /// The session parameters.
    pub fn params(&self) -> &SessionParams {
        &self.params
    }
    /// S1's operation counts, all sub-protocols together.
    pub fn counts(&self) -> OpCounts {
        self.counter.snapshot()
    }

    /// Charges the operations counted since the previous call to `name` (the drivers in [`S1`]
    /// call it after each step's `finish`; so does a caller that drives the steps itself).
    pub fn attribute(&self, name: SubProtocol) {
        let now = self.counter.snapshot();
        let mut g = self.by_protocol.lock().unwrap_or_else(|p| p.into_inner());
        let delta = now.since(&g.0);
        g.0 = now;
        match g.1.iter_mut().find(|(p, _)| *p == name) {
            Some((_, c)) => *c = c.plus(&delta),
            None => g.1.push((name, delta)),
        }
    }

    /// S1's operation counts per sub-protocol, in the order each first ran.
    pub fn counts_by_protocol(&self) -> Vec<(SubProtocol, OpCounts)> {
        self.by_protocol
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    // -----------------------------------------------------------------------------------------
    // SecMul / SecDot

    /// Products of encrypted operands in one request: SecMul (element-wise), SecDot (matrix ×
    /// vector), vector × matrix and batched outer products. Operands may be [`Reusable`] packs
    /// of an earlier request of this session; with `keep = Some(k)`, operands `k..` (fresh ones)
    /// come back from [`ProductsStep::finish`] as a [`Reusable`]. A reused or kept group of
    /// operands starts and ends on a pack boundary (the gaps are padding slots S2 decrypts and
    /// no job reads: a blind alone). Every operand value must satisfy |x| < 2^ℓ.
    pub fn prepare_products<'a>(
        &self,
        operands: &[Operand<'a>],
        signed_jobs: &[(Job, bool)],
        keep: Option<usize>,
    ) -> Result<(Request, ProductsStep<'a>), ProtocolError> {
        let slot_bits = self.params.slot_bits(0);
        let per = self.per_pack(slot_bits);
        // The operands side by side (with padding) form the request's slots; each job names slot
        // ranges. Every slot gets its blind: fresh, or the one it was sent with before.
        let mut starts = Vec::with_capacity(operands.len());
        let mut slots: Vec<Slot<'a>> = Vec::new();
        let mut premade: Vec<Option<&Ciphertext>> = Vec::new();
        let mut kept_start = None;
        let pad = |slots: &mut Vec<Slot<'a>>| {
            while !slots.len().is_multiple_of(per) {
                slots.push(Slot {
                    ct: None,
                    tau: self.blind(),
                });
            }
        };
        for (i, op) in operands.iter().enumerate() {
            if keep == Some(i) {
                pad(&mut slots);
                kept_start = Some(slots.len());
            }
            match op {
                Operand::Fresh(cts) => {
                    starts.push(u32::try_from(slots.len()).map_err(|_| too_large())?);
                    slots.extend(cts.iter().map(|c| Slot {
                        ct: Some(c),
                        tau: self.blind(),
                    }));
                }
                Operand::Reused(r) => {
                    if kept_start.is_some() {
                        return Err(ProtocolError::InvalidRequest(
                            "a reused operand cannot be kept again".into(),
                        ));
                    }
                    if r.session != self.session || r.slot_bits != slot_bits {
                        return Err(ProtocolError::InvalidRequest(
                            "reused operands from another session".into(),
                        ));
                    }
                    pad(&mut slots);
                    premade.resize(slots.len() / per, None);
                    premade.extend(r.packs.iter().map(Some));
                    starts.push(u32::try_from(slots.len()).map_err(|_| too_large())?);
                    slots.extend(r.cts.iter().zip(&r.blinds).map(|(c, b)| Slot {
                        ct: Some(c),
                        tau: b.clone(),
                    }));
                    pad(&mut slots);
                }
            }
        }
        if kept_start.is_some() {
            pad(&mut slots);
        }
        let op_slices: Vec<&[Ciphertext]> = operands
            .iter()
            .map(|o| match o {
                Operand::Fresh(c) => *c,
                Operand::Reused(r) => &r.cts[..],
            })
            .collect();
        let slots_len = slots.len() as u64;
        let mut wire = Vec::with_capacity(signed_jobs.len());
        let mut out_lens = Vec::with_capacity(signed_jobs.len());
        for (job, _) in signed_jobs {
            let w = job.wire(&op_slices, &starts)?;
            let (n, _) = w.shape(slots_len).ok_or_else(|| {
                ProtocolError::InvalidRequest(format!("empty or out-of-range product job {job:?}"))
            })?;
            wire.push(w);
            out_lens.push(n);
        }
        let negate: Vec<bool> = signed_jobs.iter().map(|(_, n)| *n).collect();
        let packs = self.pack(&slots, slot_bits, &premade)?;
        let reusable = kept_start.map(|start| {
            let kept = || {
                slots[start..]
                    .iter()
                    .filter_map(|s| s.ct.map(|c| (c, &s.tau)))
            };
            Reusable {
                cts: kept().map(|(c, _)| c.clone()).collect(),
                blinds: kept().map(|(_, t)| t.clone()).collect(),
                packs: packs[start / per..].to_vec(),
                slot_bits,
                session: self.session,
            }
        });
        let request = eval_request(
            packs,
            slots.len(),
            slot_bits,
            Op::Products {
                jobs: wire.clone(),
                negate: negate.clone(),
            },
        )?;
        Ok((
            request,
            ProductsStep {
                slots,
                wire,
                out_lens,
                negate,
                reusable,
            },
        ))
    }

    // -----------------------------------------------------------------------------------------
    // Truncation, division and key switching

    /// ⌊xᵢ / 2^k⌋ exactly ([`Truncation::Exact`]: two rounds) or with unbiased stochastic
    /// rounding (one round).
    pub fn prepare_truncate(
        &self,
        xs: &[Ciphertext],
        k: u32,
        mode: Truncation,
    ) -> Result<(Request, DivideStep), ProtocolError> {
        if k == 0 || k > self.params.value_bits {
            return Err(ProtocolError::InvalidRequest(format!(
                "truncation by 2^{k} outside 1..=ℓ"
            )));
        }
        let exact = mode == Truncation::Exact;
        let op = Op::Divide {
            shift: k,
            carry_bits: exact,
        };
        self.prepare_blinded_division(xs, pow2(k), k, op, exact, SubProtocol::Truncation)
    }

    /// ⌊xᵢ / d⌋ for a public divisor d ≥ 2 (Veugen, "Encrypted integer division", 2010): S2
    /// divides the blinded x + R, S1 subtracts ⌊R / d⌋; the carry 1{(u mod d) < (R mod d)} is
    /// subtracted too in [`Truncation::Exact`] (a DGK comparison) and kept in
    /// [`Truncation::Stochastic`] (then the result is ⌊x/d⌋ + 1 with probability (x mod d)/d).
    pub fn prepare_divide(
        &self,
        xs: &[Ciphertext],
        d: u64,
        mode: Truncation,
    ) -> Result<(Request, DivideStep), ProtocolError> {
        let l = self.params.value_bits;
        let m = 64 - d.leading_zeros();
        if d < 2 || m > l {
            return Err(ProtocolError::InvalidRequest(format!(
                "division by {d}: need 2 ≤ d < 2^ℓ"
            )));
        }
        let exact = mode == Truncation::Exact;
        let op = Op::DivideBy {
            divisor: d,
            carry_bits: exact,
        };
        self.prepare_blinded_division(xs, BigInt::from(d), m, op, exact, SubProtocol::Division)
    }

    /// The division protocol behind [`prepare_truncate`](Self::prepare_truncate) and
    /// [`prepare_divide`](Self::prepare_divide): S2 sees u = x + R with R = 2^ℓ + r (positive,
    /// statistically hiding x) and returns ⟦⌊u/d⌋⟧ (and, if `exact`, the bits of 2(u mod d) + 1,
    /// m + 1 of them, for the DGK carry 1{(u mod d) < (R mod d)}); S1 subtracts ⌊R/d⌋ and, if
    /// exact, the carry.
    fn prepare_blinded_division(
        &self,
        xs: &[Ciphertext],
        d: BigInt,
        m: u32,
        op: Op,
        exact: bool,
        name: SubProtocol,
    ) -> Result<(Request, DivideStep), ProtocolError> {
        let l = self.params.value_bits;
        let big_r: Vec<BigInt> = xs.iter().map(|_| pow2(l) + self.blind()).collect();
        let slots: Vec<Slot<'_>> = xs
            .iter()
            .zip(&big_r)
            .map(|(c, r)| Slot {
                ct: Some(c),
                tau: r.clone(),
            })
            .collect();
        let slot_bits = self.params.slot_bits(0);
        let request = eval_request(self.pack(&slots, slot_bits, &[])?, xs.len(), slot_bits, op)?;
        let offsets = big_r.iter().map(|r| -(r / &d)).collect();
        let step = if exact {
            DivideStep::Exact(BitsStep {
                cs: big_r.iter().map(|r| r % &d).collect(),
                offsets,
                m,
                name,
            })
        } else {
            DivideStep::Stochastic { offsets, name }
        };
        Ok((request, step))
    }

    /// Key switching: ⟦xᵢ⟧ under the session's key to ⟦xᵢ⟧ under `to`, another tenant's key
    /// that S2 holds (|xᵢ| < 2^ℓ). S2 decrypts uᵢ = xᵢ + rᵢ (rᵢ of ℓ + κ bits: statistically
    /// hiding) and encrypts it under `to`; S1 subtracts rᵢ under `to`. One round; S2 learns
    /// nothing beyond 2^(1−κ) per value, and refuses a target key it does not hold.
    pub fn prepare_switch_key(
        &self,
        xs: &[Ciphertext],
        to: &PublicKey,
    ) -> Result<(Request, KeySwitchStep), ProtocolError> {
        self.params.validate(to.bits()).map_err(|e| {
            ProtocolError::InvalidRequest(format!("the target key {}: {e}", to.fingerprint()))
        })?;
        let rs: Vec<BigInt> = xs.iter().map(|_| self.blind()).collect();
        let slots: Vec<Slot<'_>> = xs
            .iter()
            .zip(&rs)
            .map(|(c, r)| Slot {
                ct: Some(c),
                tau: r.clone(),
            })
            .collect();
        let slot_bits = self.params.slot_bits(0);
        let request = eval_request(
            self.pack(&slots, slot_bits, &[])?,
            xs.len(),
            slot_bits,
            Op::Reencrypt {
                to: to.fingerprint(),
            },
        )?;
        Ok((request, KeySwitchStep { to: to.clone(), rs }))
    }

    // -----------------------------------------------------------------------------------------
    // SecReLU and comparison

    /// The fast profile's one-round sign test (the paper's) on x' = 2x − 1 (never zero; positive
    /// iff x > 0): S2 sees s(a·x' + b) with a fresh sign s, a ∈ [2^κ, 2^(κ+1)) and b ∈ (−a, a),
    /// and, `with_value`, x + r; S1 gets ⟦1{x > 0}⟧ and, `with_value`, ⟦max(x, 0)⟧.
    pub fn prepare_sign<'a>(
        &self,
        xs: &'a [Ciphertext],
        with_value: bool,
    ) -> Result<(Request, SignStep<'a>), ProtocolError> {
        let (l, kappa) = (self.params.value_bits, self.params.kappa);
        let pk = &self.pk;
        let masks: Vec<SignMask> = xs
            .par_iter()
            .map(|x| {
                let mut rng = rand::thread_rng();
                let s_pos: bool = rng.gen();
                let a = pow2(kappa) + random_bits(kappa, &mut rng); // a ∈ [2^κ, 2^(κ+1))
                                                                    // b ∈ (−a, a), symmetric: |y| = |a·x' + b| then has the same distribution for
                                                                    // x' and −x' (with b ∈ [0, a) it would lie in [a|x'|, a(|x'|+1)) for x' > 0 but
                                                                    // in (a(|x'|−1), a|x'|] for x' < 0, and S2 could tell x = 0 from x = 1).
                                                                    // |b| < a ≤ a|x'| keeps y non-zero with the sign of s·x'.
                let b = random_range(&(BigInt::one() - &a), &a, &mut rng);
                let s = if s_pos { BigInt::one() } else { -BigInt::one() };
                // y = s(a(2x − 1) + b) = (2sa)·x + s(b − a)
                let y = pk.mul_plain(x, &(&s * &a * 2))?;
                let r = random_bits(l + kappa, &mut rng);
                Ok(SignMask {
                    s_pos,
                    r,
                    y,
                    y_tau: &s * (b - &a),
                })
            })
            .collect::<Result<_, ProtocolError>>()?;
        OpCounter::add(&self.counter.short_exps, xs.len() as u64);
        let mut slots = Vec::with_capacity(xs.len() * 2);
        for (x, m) in xs.iter().zip(&masks) {
            slots.push(Slot {
                ct: Some(&m.y),
                tau: m.y_tau.clone(),
            });
            if with_value {
                slots.push(Slot {
                    ct: Some(x),
                    tau: m.r.clone(),
                });
            }
        }
        let slot_bits = self.params.slot_bits(2);
        let request = eval_request(
            self.pack(&slots, slot_bits, &[])?,
            slots.len(),
            slot_bits,
            Op::Sign { with_value },
        )?;
        Ok((
            request,
            SignStep {
                xs,
                masks,
                with_value,
            },
        ))
    }

    /// The strict comparison's first round: ⟦1{xᵢ > 0}⟧ via DGK on x' = 2x − 1 (m = `bits` + 1
    /// bits for |x| < 2^`bits`). S2 sees z = x' + 2^m + r (r of m + κ bits) and answers
    /// ⟦⌊z/2^m⌋⟧ and the DGK bits of z mod 2^m; [`BitsStep::finish`] makes the zero test.
    pub fn prepare_compare(
        &self,
        xs: &[Ciphertext],
        bits: u32,
    ) -> Result<(Request, BitsStep), ProtocolError> {
        let l = self.params.value_bits;
        if bits == 0 || bits > l {
            return Err(ProtocolError::InvalidRequest(format!(
                "comparison of values below 2^{bits}: the bound must be in 1..=ℓ ({l})"
            )));
        }
        let m = bits + 1;
        let pk = &self.pk;
        let one = BigInt::one();
        // z = x' + 2^m + r with x' = 2x − 1: ciphertext ⟦x⟧², plaintext part 2^m − 1 + r.
        let doubled: Vec<Ciphertext> = xs.iter().map(|x| pk.add(x, x)).collect();
        let rs: Vec<BigInt> = xs
            .iter()
            .map(|_| random_bits(m + self.params.kappa, &mut rand::thread_rng()))
            .collect();
        let slots: Vec<Slot<'_>> = doubled
            .iter()
            .zip(&rs)
            .map(|(c, r)| Slot {
                ct: Some(c),
                tau: pow2(m) - &one + r,
            })
            .collect();
        let slot_bits = self.params.slot_bits(2);
        let request = eval_request(
            self.pack(&slots, slot_bits, &[])?,
            xs.len(),
            slot_bits,
            Op::CompareBits { bits: m },
        )?;
        let mask = pow2(m) - 1;
        // 1{x' ≥ 0} = ⌊z/2^m⌋ − ⌊r/2^m⌋ − 1{d < c}
        Ok((
            request,
            BitsStep {
                cs: rs.iter().map(|r| r & &mask).collect(),
                offsets: rs.iter().map(|r| -(r >> m)).collect(),
                m,
                name: SubProtocol::SecCompare,
            },
        ))
    }

    /// Range check of the strict comparison: for an x outside |x| < 2^ℓ the DGK result
    /// ⌊z/2^m⌋ − ⌊r/2^m⌋ − 1{d < c} is not a bit. S1 sends one ciphertext for the whole request,
    /// ⟦ρ·Σⱼ ρⱼ(βⱼ² − βⱼ)⟧ with ρⱼ uniform in [1, 2^κ) and ρ uniform in [1, n), freshly
    /// re-randomised; S2 checks that it decrypts to 0 and reports an out-of-range value
    /// otherwise. If some βⱼ² − βⱼ ≠ 0 (a small non-zero integer, a unit mod n), the sum is 0 for
    /// at most one of the 2^κ − 1 values of ρⱼ: a probability ≤ 2^−κ of missing it; a non-zero
    /// sum times ρ is uniform in Z_n*, so S2 learns only "in range" or "not". Its answer is
    /// checked by [`finish_range_check`](Self::finish_range_check).
    pub fn prepare_range_check(
        &self,
        bits: &[Ciphertext],
        squares: &[Ciphertext],
    ) -> Result<Request, ProtocolError> {
        let pk = &self.pk;
        let n = BigInt::from_biguint(Sign::Plus, pk.n());
        let one = BigInt::one();
        let kappa = self.params.kappa;
        let mut rng = rand::thread_rng();
        let rhos: Vec<BigInt> = bits
            .iter()
            .map(|_| random_range(&one, &pow2(kappa), &mut rng))
            .collect();
        let neg: Vec<BigInt> = rhos.iter().map(|r| -r).collect();
        let mut terms: Vec<(&Ciphertext, &BigInt)> = Vec::with_capacity(2 * bits.len());
        for ((b, sq), (r, nr)) in bits.iter().zip(squares).zip(rhos.iter().zip(&neg)) {
            terms.push((sq, r));
            terms.push((b, nr));
        }
        let sum = pk.linear_combination(&terms, &BigInt::zero())?;
        OpCounter::add(&self.counter.short_exps, terms.len() as u64);
        let rho = random_range(&one, &n, &mut rng);
        let e = pk.mul_plain(&sum, &rho)?;
        OpCounter::add(&self.counter.full_exps, 1);
        let blinded = pk.add(&e, &self.fresh_encryption(&BigInt::zero())?);
        Ok(Request::AssertZero { cts: vec![blinded] })
    }

    /// S2's answer to the range check: an empty list of ciphertexts if every value was a bit.
    pub fn finish_range_check(&self, reply: Response) -> Result<(), ProtocolError> {
        self.ciphertexts(reply, 0, SubProtocol::RangeCheck, &self.pk)
            .map(drop)
    }

    /// Fresh encrypted uniform values drawn by S2: for each (count, bound), `count` values in
    /// [−bound, bound]. Nobody sees them in the clear. Split by
    /// [`finish_random`](Self::finish_random).
    pub fn prepare_random(&self, draws: &[(usize, BigInt)]) -> Result<Request, ProtocolError> {
        let wire = draws
            .iter()
            .map(|(c, b)| Ok((u32::try_from(*c).map_err(|_| too_large())?, b.clone())))
            .collect::<Result<_, ProtocolError>>()?;
        Ok(Request::Random { draws: wire })
    }

    /// S2's random values, one vector per draw of [`prepare_random`](Self::prepare_random).
    pub fn finish_random(
        &self,
        draws: &[(usize, BigInt)],
        reply: Response,
    ) -> Result<Vec<Vec<Ciphertext>>, ProtocolError> {
        let total = draws
            .iter()
            .try_fold(0usize, |a, d| a.checked_add(d.0))
            .ok_or_else(too_large)?;
        let v = self.ciphertexts(reply, total, SubProtocol::RandomValues, &self.pk)?;
        let mut it = v.into_iter();
        Ok(draws
            .iter()
            .map(|(c, _)| it.by_ref().take(*c).collect())
            .collect())
    }

    // -----------------------------------------------------------------------------------------
    // Answers

    /// The error of a reply that is not the one expected.
    fn refusal<T>(&self, reply: Response, name: SubProtocol) -> Result<T, ProtocolError> {
        Err(match reply {
            Response::OutOfRange(_) => ProtocolError::OutOfRange {
                op: name,
                value_bits: self.params.value_bits,
            },
            Response::Error(m) => ProtocolError::Peer(m),
            other => ProtocolError::Violation(format!("{name}: unexpected reply {other:?}")),
        })
    }

    /// `expect` ciphertexts under `pk`, each checked, or the error the reply stands for.
    fn ciphertexts(
        &self,
        reply: Response,
        expect: usize,
        name: SubProtocol,
        pk: &PublicKey,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        match reply {
            Response::Ciphertexts(v) if v.len() == expect => {
                for c in &v {
                    pk.validate(c)?;
                }
                Ok(v)
            }
            Response::Ciphertexts(v) => Err(ProtocolError::Violation(format!(
                "{name}: expected {expect} ciphertexts, got {}",
                v.len()
            ))),
            other => self.refusal(other, name),
        }
    }

    /// An `Eval` answered with DGK bits ([`Response::Bits`]): `want` Paillier values, each with
    /// `bits` DGK bits, every one checked.
    fn bits_reply(
        &self,
        reply: Response,
        want: usize,
        bits: usize,
        name: SubProtocol,
    ) -> Result<(Vec<Ciphertext>, Vec<dgk::Ciphertext>), ProtocolError> {
        match reply {
            Response::Bits { values, bits: b }
                if values.len() == want && Some(b.len()) == want.checked_mul(bits) =>
            {
                for c in &values {
                    self.pk.validate(c)?;
                }
                for c in &b {
                    self.dgk.validate(c)?;
                }
                Ok((values, b))
            }
            Response::Bits { values, bits: b } => Err(ProtocolError::Violation(format!(
                "{name}: expected {want} values with {bits} bits each, got {} and {}",
                values.len(),
                b.len()
            ))),
            other => self.refusal(other, name),
        }
    }

    /// The zero-test groups of DGK comparisons: for each item S2 holds d (the DGK encryptions
    /// of the bits of d' = 2d + 1 are `dbits`, LSB first, m + 1 of them) and S1 holds c < 2^m.
    /// Each group's combined values (cheap) are blinded (the expensive part, spread over every
    /// core bit by bit) and shuffled; the coins say how S2's λ reads.
    #[allow(clippy::type_complexity)]
    fn dgk_groups(
        &self,
        dbits: &[&[dgk::Ciphertext]],
        cs: &[BigInt],
        m: u32,
    ) -> (Vec<Vec<dgk::Ciphertext>>, Vec<bool>) {
        let key = &self.dgk;
        let nbits = m as usize + 1;
        let combined: Vec<(bool, Vec<dgk::Ciphertext>)> = dbits
            .par_iter()
            .zip(cs.par_iter())
            .map(|(bits, c)| dgk_combine(key, bits, c, nbits, &mut rand::thread_rng()))
            .collect();
        let coins: Vec<bool> = combined.iter().map(|(s, _)| *s).collect();
        let mut groups: Vec<Vec<dgk::Ciphertext>> =
            combined.into_iter().map(|(_, es)| es).collect();
        groups
            .par_iter_mut()
            .flat_map(|g| g.par_iter_mut())
            .for_each(|e| *e = key.blind(e, &mut rand::thread_rng()));
        OpCounter::add(&self.counter.dgk_blinds, (groups.len() * nbits) as u64);
        let mut rng = rand::thread_rng();
        for g in &mut groups {
            // Fisher–Yates.
            for i in (1..g.len()).rev() {
                let j = rng.gen_range(0..=i);
                g.swap(i, j);
            }
        }
        (groups, coins)
    }

    /// A garbled session's second round of comparisons: from S2's quotients and OT batch (chosen
    /// by the m bits of each d), the garbled less-than circuit of every d against S1's c (each
    /// with a fresh coin, all under one fresh Δ) and the OT answers carrying d's input labels.
    /// Returns the quotients, the [`Request::Garbled`] and, per comparison, whether S2's λ' is
    /// 1{d < c} itself (coin 0).
    #[allow(clippy::type_complexity)]
    fn garble_carries(
        &self,
        reply: Response,
        cs: &[BigInt],
        m: u32,
        name: SubProtocol,
    ) -> Result<(Vec<Ciphertext>, Request, Vec<bool>), ProtocolError> {
        let want = cs.len();
        let (quotients, first, columns) = match reply {
            Response::OtBits {
                values,
                first,
                columns,
            } if values.len() == want => {
                for c in &values {
                    self.pk.validate(c)?;
                }
                (values, first, columns)
            }
            Response::OtBits { values, .. } => {
                return Err(ProtocolError::Violation(format!(
                    "{name}: expected {want} values, got {}",
                    values.len()
                )))
            }
            other => return self.refusal(other, name),
        };
        let m = m as usize;
        let delta = yao::compare::fresh_delta(&mut rand::thread_rng());
        let garbled: Vec<(bool, yao::compare::Circuit, Vec<u128>)> = cs
            .par_iter()
            .enumerate()
            .map(|(item, c)| {
                let mut rng = rand::thread_rng();
                let coin: bool = rng.gen();
                let bits: Vec<bool> = (0..m as u64).map(|i| c.bit(i)).collect();
                let (circuit, zero) =
                    yao::compare::garble(&bits, coin, delta, item as u32, &mut rng);
                (coin, circuit, zero)
            })
            .collect();
        let pairs: Vec<(u128, u128)> = garbled
            .iter()
            .flat_map(|(_, _, zero)| zero.iter().map(|l| (*l, l ^ delta)))
            .collect();
        let answers = match &mut *self.ot.lock().unwrap_or_else(|p| p.into_inner()) {
            OtSide::Ready(sender) => sender
                .send(first, &columns, &pairs)
                .map_err(|e| ProtocolError::Violation(format!("{name}: OT extension: {e}")))?,
            _ => {
                return Err(ProtocolError::Violation(format!(
                    "{name}: an OT batch before the session's base OTs"
                )))
            }
        };
        OpCounter::add(&self.counter.gates, pairs.len() as u64);
        let tables: Vec<(u128, u128)> = garbled
            .iter()
            .flat_map(|(_, c, _)| c.tables.iter().copied())
            .collect();
        let request = Request::Garbled {
            answers: yao::pairs_to_bytes(&answers),
            tables: yao::pairs_to_bytes(&tables),
            starts: yao::blocks_to_bytes(
                &garbled.iter().map(|(_, c, _)| c.start).collect::<Vec<_>>(),
            ),
            decode: garbled.iter().map(|(_, c, _)| c.decode).collect(),
        };
        let coins = garbled.iter().map(|(coin, _, _)| !coin).collect();
        Ok((quotients, request, coins))
    }

    /// Removes the blinds from S2's products: Σ ab = P − Σ r_a·b − Σ r_b·a − Σ r_a·r_b over each
    /// output's slot pairs ([`WireJob::terms`]), signs flipped where the job was negated. One
    /// linear combination per output, in parallel. A slot that several small outputs multiply by
    /// their own blinds (an outer product's operands: each δⱼ for every input, each input for
    /// every δⱼ) gets a table of its powers once ([`PublicKey::powers`]), so each of those scalar
    /// multiplications costs a quarter of an exponentiation.
    fn unblind_products(
        &self,
        raw: &[Ciphertext],
        wire: &[WireJob],
        out_lens: &[usize],
        negate: &[bool],
        slots: &[Slot<'_>],
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        // Jobs read operand slots only (`Job::wire` checked their ranges); padding is never read.
        let ct = |i: usize| -> &Ciphertext { slots[i].ct.expect("a job reads an operand slot") };
        let blind = |i: usize| &slots[i].tau;
        let outputs: Vec<(&WireJob, bool, usize)> = wire
            .iter()
            .zip(out_lens)
            .zip(negate)
            .flat_map(|((w, &n), &neg)| (0..n).map(move |o| (w, neg, o)))
            .collect();
        let pairs: Vec<Vec<(usize, usize)>> = outputs
            .iter()
            .map(|(job, _, o)| job.terms(*o).collect())
            .collect();
        // Small outputs (at most SMALL pairs: element-wise products, a per-sample outer product):
        // a slot that at least USES of them multiply by their blinds gets a comb table.
        const SMALL: usize = 4;
        const USES: usize = 5;
        let mut uses = vec![0usize; slots.len()];
        for p in pairs.iter().filter(|p| p.len() <= SMALL) {
            for &(a, b) in p {
                uses[a] += 1;
                uses[b] += 1;
            }
        }
        let pk = &self.pk;
        let bits = self.params.value_bits + self.params.kappa;
        let comb_slots: Vec<usize> = (0..slots.len()).filter(|&i| uses[i] >= USES).collect();
        let built: Vec<CiphertextPowers> = comb_slots
            .par_iter()
            .map(|&i| pk.powers(ct(i), bits))
            .collect();
        let mut combs: Vec<Option<&CiphertextPowers>> = vec![None; slots.len()];
        for (&i, t) in comb_slots.iter().zip(&built) {
            combs[i] = Some(t);
        }
        // Large outputs (dot products, a mini-batch's gradient): the slots multiplied by blinds
        // form two lists, [b_k] and [a_k] over the output's pairs (a_k, b_k), which recur across
        // outputs (a row of weights for every sample, a sample's inputs for every row; each δ of
        // a batch for every input). Each list is cut into groups of at most 8 whose joint tables
        // are built once when the group recurs, so every bit of the blinds costs one product per
        // group ([`PublicKey::linear_combination_joint`]).
        let groups_of = |p: &[(usize, usize)]| -> Vec<Vec<usize>> {
            let mut out = Vec::new();
            for side in [0, 1] {
                let list: Vec<usize> = p
                    .iter()
                    .map(|&(a, b)| if side == 0 { b } else { a })
                    .collect();
                let k = list.len().div_ceil(JointPowers::MAX);
                let base = list.len() / k;
                let extra = list.len() % k;
                let mut start = 0;
                for c in 0..k {
                    let len = base + usize::from(c < extra);
                    out.push(list[start..start + len].to_vec());
                    start += len;
                }
            }
            out
        };
        let out_groups: Vec<Option<Vec<Vec<usize>>>> = pairs
            .iter()
            .map(|p| (p.len() > SMALL).then(|| groups_of(p)))
            .collect();
        let mut recurring: HashMap<Vec<usize>, usize> = HashMap::new();
        for g in out_groups.iter().flatten().flatten() {
            *recurring.entry(g.clone()).or_default() += 1;
        }
        recurring.retain(|_, n| *n >= 2);
        let keys: Vec<Vec<usize>> = recurring.into_keys().collect();
        let joint_tables: Vec<JointPowers> = keys
            .par_iter()
            .map(|g| pk.joint_powers(&g.iter().map(|&i| ct(i)).collect::<Vec<_>>()))
            .collect::<Result<_, _>>()?;
        let joint: HashMap<&[usize], &JointPowers> = keys
            .iter()
            .map(|k| k.as_slice())
            .zip(joint_tables.iter())
            .collect();
        let counter = &self.counter;
        outputs
            .par_iter()
            .zip(pairs.par_iter())
            .zip(out_groups.par_iter())
            .zip(raw.par_iter())
            .map(|(((&(_, neg, _), pairs), groups), product)| {
                let sign = if neg { BigInt::one() } else { -BigInt::one() };
                let constant = pairs
                    .iter()
                    .fold(BigInt::zero(), |acc, &(a, b)| acc + blind(a) * blind(b));
                OpCounter::add(&counter.short_exps, 2 * pairs.len() as u64);
                let corr = if let Some(groups) = groups {
                    let mut own: Vec<JointPowers> = Vec::new();
                    for g in groups {
                        if !joint.contains_key(g.as_slice()) {
                            own.push(
                                pk.joint_powers(&g.iter().map(|&i| ct(i)).collect::<Vec<_>>())?,
                            );
                        }
                    }
                    // Scalars side by side with groups_of: side 0 lists b_k (scalar r_(a_k)),
                    // side 1 lists a_k (scalar r_(b_k)), both in pair order.
                    let scalars: Vec<BigInt> = [0, 1]
                        .iter()
                        .flat_map(|&side| {
                            pairs
                                .iter()
                                .map(move |&(a, b)| if side == 0 { a } else { b })
                        })
                        .map(|i| &sign * blind(i))
                        .collect();
                    let mut args: Vec<(&JointPowers, &[BigInt])> = Vec::new();
                    let (mut start, mut own_it) = (0, own.iter());
                    for g in groups {
                        let table = match joint.get(g.as_slice()) {
                            Some(t) => *t,
                            None => own_it.next().expect("built above"),
                        };
                        args.push((table, &scalars[start..start + g.len()]));
                        start += g.len();
                    }
                    pk.linear_combination_joint(&args, &(&sign * constant))?
                } else {
                    let mut coeffs: Vec<(usize, BigInt)> = Vec::with_capacity(2 * pairs.len());
                    for &(a, b) in pairs {
                        coeffs.push((b, &sign * blind(a)));
                        coeffs.push((a, &sign * blind(b)));
                    }
                    let mut with = Vec::new();
                    let mut terms = Vec::new();
                    for (slot, k) in &coeffs {
                        match combs[*slot] {
                            Some(t) => with.push((t, k)),
                            None => terms.push((ct(*slot), k)),
                        }
                    }
                    pk.linear_combination_with(&with, &terms, &(&sign * constant))?
                };
                Ok(pk.add(product, &corr))
            })
            .collect()
    }

    fn blind(&self) -> BigInt {
        random_bits(
            self.params.value_bits + self.params.kappa,
            &mut rand::thread_rng(),
        )
    }

    /// Slots per pack for `slot_bits`-bit slots.
    fn per_pack(&self, slot_bits: u32) -> usize {
        ((self.pk.bits() - 2) / slot_bits).max(1) as usize
    }

    fn fresh_encryption(&self, m: &BigInt) -> Result<Ciphertext, ProtocolError> {
        OpCounter::add(&self.counter.randomizers, 1);
        let rho = match &self.pool {
            Some(p) => p.take(),
            None => self.pk.randomizer(&mut rand::thread_rng()),
        };
        Ok(self.pk.encrypt_with_randomizer(m, &rho)?)
    }

    /// Packs slots into as few ciphertexts as the key allows, each with fresh randomness; pack
    /// `i` is `premade[i]` as it is where one is given (a [`Reusable`]'s pack). Slot values seen
    /// by S2 are `m + tau` offset by 2^(slot_bits − 2).
    fn pack(
        &self,
        slots: &[Slot<'_>],
        slot_bits: u32,
        premade: &[Option<&Ciphertext>],
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        let per_pack = self.per_pack(slot_bits);
        let offset = pow2(slot_bits - 2);
        slots
            .par_chunks(per_pack)
            .enumerate()
            .map(|(i, chunk)| {
                if let Some(Some(p)) = premade.get(i) {
                    return Ok((*p).clone());
                }
                // Padding comes last in a pack: Horner from the last real slot.
                let used = chunk
                    .iter()
                    .rposition(|s| s.ct.is_some())
                    .map_or(0, |p| p + 1);
                let cts: Vec<&Ciphertext> = chunk[..used].iter().filter_map(|s| s.ct).collect();
                if cts.len() != used {
                    return Err(ProtocolError::InvalidRequest(
                        "padding inside a pack".into(),
                    ));
                }
                let packed = self.pk.pack(&cts, slot_bits);
                OpCounter::add(
                    &self.counter.pack_squarings,
                    (used.max(1) as u64 - 1) * u64::from(slot_bits),
                );
                let mut plain = BigInt::zero();
                for s in chunk.iter().rev() {
                    plain = (plain << slot_bits) + &s.tau + &offset;
                }
                let fresh = self.fresh_encryption(&plain)?;
                Ok(self.pk.add(&packed, &fresh))
            })
            .collect()
    }
}

/// A request's `Eval` of `count` slots packed in `packs`.
fn eval_request(
    packs: Vec<Ciphertext>,
    count: usize,
    slot_bits: u32,
    op: Op,
) -> Result<Request, ProtocolError> {
    let count = u32::try_from(count).map_err(|_| too_large())?;
    Ok(Request::Eval {
        packs,
        slot_bits,
        count,
        op,
    })
}

/// What S1 keeps of a products request until S2 answers ([`S1Core::prepare_products`]): the
/// slots with their blinds, the jobs, and the operands to keep.
pub struct ProductsStep<'a> {
    slots: Vec<Slot<'a>>,
    wire: Vec<WireJob>,
    out_lens: Vec<usize>,
    negate: Vec<bool>,
    reusable: Option<Reusable>,
}

impl ProductsStep<'_> {
    /// Removes the blinds from S2's products: one vector of ciphertexts per job, and the kept
    /// operands (with `keep`).
    #[allow(clippy::type_complexity)]
    pub fn finish(
        self,
        core: &S1Core,
        reply: Response,
    ) -> Result<(Vec<Vec<Ciphertext>>, Option<Reusable>), ProtocolError> {
        let total: usize = self.out_lens.iter().sum();
        let raw = core.ciphertexts(reply, total, SubProtocol::SecMul, &core.pk)?;
        let unblinded =
            core.unblind_products(&raw, &self.wire, &self.out_lens, &self.negate, &self.slots)?;
        let mut it = unblinded.into_iter();
        Ok((
            self.out_lens
                .iter()
                .map(|&n| it.by_ref().take(n).collect())
                .collect(),
            self.reusable,
        ))
    }
}

/// What S1 keeps of a truncation or division ([`S1Core::prepare_truncate`],
/// [`S1Core::prepare_divide`]) until S2 answers.
pub enum DivideStep {
    /// Stochastic rounding: one round; S1 subtracts ⌊R/d⌋ (the offsets −⌊R/d⌋ are kept).
    Stochastic {
        /// −⌊Rᵢ/d⌋ per value.
        offsets: Vec<BigInt>,
        /// Truncation or division.
        name: SubProtocol,
    },
    /// Exact: S2's answer carries DGK bits for the carry, a zero test follows.
    Exact(BitsStep),
}

/// A division after S2's first answer.
pub enum Divided {
    /// The quotients (stochastic rounding).
    Done(Vec<Ciphertext>),
    /// Exact: the zero-test request to send and what finishes it.
    ZeroTest(Request, ZeroTestStep),
}

impl DivideStep {
    /// Truncation or division.
    pub fn name(&self) -> SubProtocol {
        match self {
            DivideStep::Stochastic { name, .. } => *name,
            DivideStep::Exact(b) => b.name,
        }
    }

    /// Takes S2's answer: the quotients, or (exact) the zero test of the carries.
    pub fn finish(self, core: &S1Core, reply: Response) -> Result<Divided, ProtocolError> {
        match self {
            DivideStep::Stochastic { offsets, name } => {
                let raw = core.ciphertexts(reply, offsets.len(), name, &core.pk)?;
                let out = raw
                    .iter()
                    .zip(&offsets)
                    .map(|(q, k)| Ok(core.pk.add_plain(q, k)?))
                    .collect::<Result<_, ProtocolError>>()?;
                Ok(Divided::Done(out))
            }
            DivideStep::Exact(bits) => {
                let (request, step) = bits.finish(core, reply)?;
                Ok(Divided::ZeroTest(request, step))
            }
        }
    }
}

/// The first round of a DGK comparison (the strict profile's comparison, an exact division's
/// carry): what S1 keeps until S2's quotients and DGK bits arrive. For each value S1 holds
/// c < 2^m (the low bits of its blind) and the offset to add to S2's quotient.
pub struct BitsStep {
    cs: Vec<BigInt>,
    offsets: Vec<BigInt>,
    m: u32,
    name: SubProtocol,
}

impl BitsStep {
    /// From S2's quotients and the DGK bits of d' = 2d + 1, the zero-test request: for each
    /// value a fresh coin and m + 1 combined values, blinded by ρ ∈ Z_u*, re-randomised and
    /// shuffled (Veugen 2010 / Bost et al. 2015); S2 then sees a fair coin and values uniform in
    /// Z_u* or one zero.
    pub fn finish(
        self,
        core: &S1Core,
        reply: Response,
    ) -> Result<(Request, ZeroTestStep), ProtocolError> {
        if core.params.comparison == Comparison::Garbled {
            let (quotients, request, coins) =
                core.garble_carries(reply, &self.cs, self.m, self.name)?;
            return Ok((
                request,
                ZeroTestStep {
                    quotients,
                    offsets: self.offsets,
                    coins,
                    round: SubProtocol::Garbled,
                },
            ));
        }
        let nbits = self.m as usize + 1;
        let (quotients, dbits) = core.bits_reply(reply, self.cs.len(), nbits, self.name)?;
        let bits: Vec<&[dgk::Ciphertext]> = dbits.chunks(nbits).collect();
        let (groups, coins) = core.dgk_groups(&bits, &self.cs, self.m);
        Ok((
            Request::ZeroTest { groups },
            ZeroTestStep {
                quotients,
                offsets: self.offsets,
                coins,
                round: SubProtocol::ZeroTest,
            },
        ))
    }
}

/// What S1 keeps of a comparison's second round (a DGK zero test or garbled comparisons): the
/// quotients, their offsets and S1's coins (true where S2's λ is 1{d < c} itself).
pub struct ZeroTestStep {
    quotients: Vec<Ciphertext>,
    offsets: Vec<BigInt>,
    coins: Vec<bool>,
    round: SubProtocol,
}

impl ZeroTestStep {
    /// The round: [`SubProtocol::ZeroTest`] or [`SubProtocol::Garbled`].
    pub fn name(&self) -> SubProtocol {
        self.round
    }

    /// From S2's ⟦λ⟧ per comparison: ⟦q + offset − 1{d < c}⟧ per value.
    pub fn finish(self, core: &S1Core, reply: Response) -> Result<Vec<Ciphertext>, ProtocolError> {
        let lambdas = core.ciphertexts(reply, self.coins.len(), self.round, &core.pk)?;
        let pk = &core.pk;
        self.quotients
            .par_iter()
            .zip(self.offsets.par_iter())
            .zip(lambdas.into_par_iter().zip(self.coins.into_par_iter()))
            .map(|((q, k), (lambda, s_pos))| LessThan { lambda, s_pos }.subtract_from(pk, q, k))
            .collect()
    }
}

/// What S1 keeps of a key switch: the target key and the blinds.
pub struct KeySwitchStep {
    to: PublicKey,
    rs: Vec<BigInt>,
}

impl KeySwitchStep {
    /// From S2's re-encryptions under the target key: ⟦xᵢ⟧ under it.
    pub fn finish(self, core: &S1Core, reply: Response) -> Result<Vec<Ciphertext>, ProtocolError> {
        let raw = core.ciphertexts(reply, self.rs.len(), SubProtocol::KeySwitch, &self.to)?;
        raw.iter()
            .zip(&self.rs)
            .map(|(q, r)| Ok(self.to.add_plain(q, &-r)?))
            .collect()
    }
}

/// One value's masks in the fast sign test.
struct SignMask {
    s_pos: bool,
    r: BigInt,
    y: Ciphertext,
    y_tau: BigInt,
}

/// What S1 keeps of the fast sign test ([`S1Core::prepare_sign`]): the inputs and the masks.
pub struct SignStep<'a> {
    xs: &'a [Ciphertext],
    masks: Vec<SignMask>,
    with_value: bool,
}

impl SignStep<'_> {
    /// From S2's answers: (⟦max(xᵢ, 0)⟧, ⟦1{xᵢ > 0}⟧) (without the value, the derivative twice).
    #[allow(clippy::type_complexity)]
    pub fn finish(
        self,
        core: &S1Core,
        reply: Response,
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>), ProtocolError> {
        let per = if self.with_value { 2 } else { 1 };
        let raw = core.ciphertexts(reply, per * self.xs.len(), SubProtocol::SecReLU, &core.pk)?;
        let pk = &core.pk;
        let with_value = self.with_value;
        let one = BigInt::one();
        let results: Vec<(Ciphertext, Ciphertext)> = raw
            .par_chunks(per)
            .zip(self.masks.par_iter())
            .zip(self.xs.par_iter())
            .map(|((ch, m), x)| {
                let beta = &ch[0];
                let deriv = if m.s_pos {
                    beta.clone()
                } else {
                    pk.linear_combination(&[(beta, &-&one)], &one)?
                };
                if !with_value {
                    return Ok((deriv.clone(), deriv));
                }
                let beta_u = &ch[1];
                // ⟦βx⟧ = ⟦βu⟧ − r⟦β⟧; ReLU = ⟦βx⟧ (s = +1) or ⟦x⟧ − ⟦βx⟧ (s = −1).
                let value = if m.s_pos {
                    pk.linear_combination(&[(beta_u, &one), (beta, &-&m.r)], &BigInt::zero())?
                } else {
                    pk.linear_combination(
                        &[(x, &one), (beta_u, &-&one), (beta, &m.r)],
                        &BigInt::zero(),
                    )?
                };
                Ok((value, deriv))
            })
            .collect::<Result<_, ProtocolError>>()?;
        OpCounter::add(
            &core.counter.short_exps,
            if with_value { self.xs.len() as u64 } else { 0 },
        );
        Ok(results.into_iter().unzip())
    }
}

impl<C: Channel> S1<C> {
    /// Opens a session: sends the handshake (protocol version, key fingerprint, parameters) and
    /// waits for S2 to accept it.
    pub fn connect(pk: PublicKey, chan: C, params: SessionParams) -> Result<Self, ProtocolError> {
        let hello = S1Core::hello(&pk, &params)?;
        let mut chan = Metered::new(chan);
        chan.send_msg(&hello)?;
        let reply = chan.recv_msg::<Response>()?;
        Ok(S1 {
            core: S1Core::accept(pk, params, reply)?,
            chan,
        })
    }

    /// The session's steps without I/O.
    pub fn core(&self) -> &S1Core {
        &self.core
    }

    /// S2's DGK public key, received and checked in the handshake (S1 logs its fingerprint and
    /// keeps it with a job's record).
    pub fn dgk_public_key(&self) -> &dgk::PublicKey {
        &self.core.dgk
    }

    /// Keeps a pool of precomputed randomizers filled by `workers` background threads.
    pub fn with_randomizer_pool(mut self, capacity: usize, workers: usize) -> Self {
        self.core.pool = Some(RandomizerPool::new(&self.core.pk, capacity, workers));
        self
    }

    /// Randomizers ready in S1's pool and its capacity (`None` without a pool).
    pub fn pool_fill(&self) -> Option<(usize, usize)> {
        self.core.pool.as_ref().map(|p| (p.ready(), p.capacity()))
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.core.pk
    }
    /// The session parameters.
    pub fn params(&self) -> &SessionParams {
        &self.core.params
    }
    /// Traffic counters of the channel.
    pub fn traffic(&self) -> Traffic {
        self.chan.traffic()
    }
    /// Current traffic.
    pub fn traffic_snapshot(&self) -> TrafficSnapshot {
        self.chan.traffic().snapshot()
    }
    /// S1's operation counts.
    pub fn counts(&self) -> OpCounts {
        self.core.counts()
    }
    /// S1's operation counts per sub-protocol (each round's step charged to its sub-protocol).
    pub fn counts_by_protocol(&self) -> Vec<(SubProtocol, OpCounts)> {
        self.core.counts_by_protocol()
    }

    /// One round trip: the only place a session sends a request and reads S2's answer.
    fn round(&mut self, request: &Request) -> Result<Response, ProtocolError> {
        if needs_ot(request) {
            if let Some(base) = self.core.base_ot_request() {
                self.chan.send_msg(&base)?;
                self.core
                    .finish_base_ot(self.chan.recv_msg::<Response>()?)?;
            }
        }
        self.chan.send_msg(request)?;
        Ok(self.chan.recv_msg::<Response>()?)
    }

    /// S2's operation counts (one round trip).
    pub fn s2_counts(&mut self) -> Result<OpCounts, ProtocolError> {
        match self.round(&Request::Stats)? {
            Response::Stats(c) => Ok(c),
            Response::Error(m) => Err(ProtocolError::Peer(m)),
            other => Err(ProtocolError::Violation(format!(
                "expected stats, got {other:?}"
            ))),
        }
    }

    /// Ends the session cleanly.
    pub fn close(mut self) -> Result<(), ProtocolError> {
        self.chan.send_msg(&Request::Bye)?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // SecMul / SecDot

    /// Products of encrypted operands in one round trip: SecMul (element-wise), SecDot
    /// (matrix × vector), vector × matrix and batched outer products, all in one request.
    ///
    /// Every operand value must satisfy |x| < 2^ℓ. Returns one vector of ciphertexts per job.
    /// With `negate`, returns the encryptions of the negated products.
    pub fn products(
        &mut self,
        operands: &[&[Ciphertext]],
        jobs: &[Job],
        negate: bool,
    ) -> Result<Vec<Vec<Ciphertext>>, ProtocolError> {
        let signed: Vec<(Job, bool)> = jobs.iter().map(|j| (*j, negate)).collect();
        self.products_signed(operands, &signed)
    }

    /// Like [`products`](Self::products), with a negation flag per job.
    pub fn products_signed(
        &mut self,
        operands: &[&[Ciphertext]],
        signed_jobs: &[(Job, bool)],
    ) -> Result<Vec<Vec<Ciphertext>>, ProtocolError> {
        let ops: Vec<Operand<'_>> = operands.iter().map(|o| Operand::Fresh(o)).collect();
        Ok(self.products_reusing(&ops, signed_jobs, None)?.0)
    }

    /// [`products_signed`](Self::products_signed) over operands that may be [`Reusable`] packs
    /// of an earlier request of this session; with `keep = Some(k)`, operands `k..` (fresh ones)
    /// are returned as a [`Reusable`] for a later request ([`S1Core::prepare_products`]).
    #[allow(clippy::type_complexity)]
    pub fn products_reusing(
        &mut self,
        operands: &[Operand<'_>],
        signed_jobs: &[(Job, bool)],
        keep: Option<usize>,
    ) -> Result<(Vec<Vec<Ciphertext>>, Option<Reusable>), ProtocolError> {
        let (request, step) = self.core.prepare_products(operands, signed_jobs, keep)?;
        let reply = self.round(&request)?;
        let out = step.finish(&self.core, reply)?;
        self.core.attribute(SubProtocol::SecMul);
        Ok(out)
    }

    /// SecMul: ⟦aᵢ·bᵢ⟧ element-wise, one round trip.
    pub fn mul(
        &mut self,
        a: &[Ciphertext],
        b: &[Ciphertext],
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        Ok(self
            .products(&[a, b], &[Job::Elementwise { a: 0, b: 1 }], false)?
            .remove(0))
    }

    /// SecDot: ⟦M·v⟧ for a row-major rows × cols matrix, one ciphertext per row, one round trip.
    pub fn mat_vec(
        &mut self,
        m: &[Ciphertext],
        rows: usize,
        v: &[Ciphertext],
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        let cols = v.len();
        Ok(self
            .products(
                &[m, v],
                &[Job::MatVec {
                    mat: 0,
                    vec: 1,
                    rows,
                    cols,
                }],
                false,
            )?
            .remove(0))
    }

    /// SecDot of two vectors: ⟦Σ aᵢbᵢ⟧.
    pub fn dot(&mut self, a: &[Ciphertext], b: &[Ciphertext]) -> Result<Ciphertext, ProtocolError> {
        Ok(self.mat_vec(a, 1, b)?.remove(0))
    }

    // -----------------------------------------------------------------------------------------
    // Truncation and division

    /// ⌊xᵢ / 2^k⌋ with the profile's truncation (stochastic in `fast`, exact in `strict`).
    pub fn truncate(
        &mut self,
        xs: &[Ciphertext],
        k: u32,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        let t = self.core.params.truncation();
        self.truncate_with(xs, k, t)
    }

    /// ⌊xᵢ / 2^k⌋ exactly ([`Truncation::Exact`]) or with unbiased stochastic rounding
    /// ([`S1Core::prepare_truncate`]).
    pub fn truncate_with(
        &mut self,
        xs: &[Ciphertext],
        k: u32,
        mode: Truncation,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        if xs.is_empty() {
            return Ok(Vec::new());
        }
        let (request, step) = self.core.prepare_truncate(xs, k, mode)?;
        self.division(request, step)
    }

    /// ⌊xᵢ / d⌋ for a public divisor d ≥ 2 ([`S1Core::prepare_divide`]).
    pub fn divide(
        &mut self,
        xs: &[Ciphertext],
        d: u64,
        mode: Truncation,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        if xs.is_empty() {
            return Ok(Vec::new());
        }
        let (request, step) = self.core.prepare_divide(xs, d, mode)?;
        self.division(request, step)
    }

    /// A division's rounds: one, or two for the exact carry.
    fn division(
        &mut self,
        request: Request,
        step: DivideStep,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        let name = step.name();
        let reply = self.round(&request)?;
        let divided = step.finish(&self.core, reply)?;
        self.core.attribute(name);
        match divided {
            Divided::Done(out) => Ok(out),
            Divided::ZeroTest(request, step) => self.zero_test(request, step),
        }
    }

    /// A DGK zero test's round.
    fn zero_test(
        &mut self,
        request: Request,
        step: ZeroTestStep,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        let name = step.name();
        let reply = self.round(&request)?;
        let out = step.finish(&self.core, reply)?;
        self.core.attribute(name);
        Ok(out)
    }

    /// Key switching ([`S1Core::prepare_switch_key`]): ⟦xᵢ⟧ under the session's key to ⟦xᵢ⟧
    /// under `to`, another tenant's key that S2 holds. One round.
    pub fn switch_key(
        &mut self,
        xs: &[Ciphertext],
        to: &PublicKey,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        if xs.is_empty() {
            return Ok(Vec::new());
        }
        let (request, step) = self.core.prepare_switch_key(xs, to)?;
        let reply = self.round(&request)?;
        let out = step.finish(&self.core, reply)?;
        self.core.attribute(SubProtocol::KeySwitch);
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // SecReLU and comparison

    /// SecReLU: (⟦max(xᵢ, 0)⟧, ⟦1{xᵢ > 0}⟧), exact (no approximation). Fast profile: one round
    /// trip; strict profile: DGK comparison, a SecMul and the range check (four round trips).
    pub fn relu(
        &mut self,
        xs: &[Ciphertext],
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>), ProtocolError> {
        let l = self.core.params.value_bits;
        self.relu_within(xs, l)
    }

    /// [`relu`](Self::relu) of values known to satisfy |xᵢ| < 2^`bits` (`bits` ≤ ℓ), e.g. the
    /// result of a truncation by 2^k of an in-range value (`bits` = ℓ − k + 1): the strict
    /// comparison then works on `bits` + 1 bits instead of ℓ + 1 — one DGK value per bit. A value
    /// outside the bound fails the range check like any out-of-range value.
    pub fn relu_within(
        &mut self,
        xs: &[Ciphertext],
        bits: u32,
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>), ProtocolError> {
        if xs.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        match self.core.params.profile {
            crate::Profile::Fast => self.sign_fast(xs, true),
            crate::Profile::Strict => {
                let bits_enc = self.compare(xs, bits)?;
                // One round: ReLU = β·x, and β·β for the range check.
                let mut res = self.products(
                    &[&bits_enc, xs],
                    &[
                        Job::Elementwise { a: 0, b: 1 },
                        Job::Elementwise { a: 0, b: 0 },
                    ],
                    false,
                )?;
                let squares = res.pop().expect("two jobs");
                let values = res.pop().expect("two jobs");
                self.range_check(&bits_enc, &squares)?;
                Ok((values, bits_enc))
            }
        }
    }

    /// ⟦1{xᵢ > 0}⟧ (SecCompare against zero; compare x − t with a threshold t).
    pub fn positive(&mut self, xs: &[Ciphertext]) -> Result<Vec<Ciphertext>, ProtocolError> {
        let l = self.core.params.value_bits;
        self.positive_within(xs, l)
    }

    /// [`positive`](Self::positive) of values known to satisfy |xᵢ| < 2^`bits` (`bits` ≤ ℓ; see
    /// [`relu_within`](Self::relu_within)).
    pub fn positive_within(
        &mut self,
        xs: &[Ciphertext],
        bits: u32,
    ) -> Result<Vec<Ciphertext>, ProtocolError> {
        if xs.is_empty() {
            return Ok(Vec::new());
        }
        match self.core.params.profile {
            crate::Profile::Fast => Ok(self.sign_fast(xs, false)?.1),
            crate::Profile::Strict => {
                let bits_enc = self.compare(xs, bits)?;
                let squares = self.mul(&bits_enc, &bits_enc)?;
                self.range_check(&bits_enc, &squares)?;
                Ok(bits_enc)
            }
        }
    }

    /// The strict comparison's two rounds ([`S1Core::prepare_compare`], then the zero test):
    /// ⟦1{xᵢ > 0}⟧, not yet range-checked.
    fn compare(&mut self, xs: &[Ciphertext], bits: u32) -> Result<Vec<Ciphertext>, ProtocolError> {
        let (request, step) = self.core.prepare_compare(xs, bits)?;
        let reply = self.round(&request)?;
        let (request, step) = step.finish(&self.core, reply)?;
        self.core.attribute(SubProtocol::SecCompare);
        self.zero_test(request, step)
    }

    /// The range check's round ([`S1Core::prepare_range_check`]).
    fn range_check(
        &mut self,
        bits: &[Ciphertext],
        squares: &[Ciphertext],
    ) -> Result<(), ProtocolError> {
        let request = self.core.prepare_range_check(bits, squares)?;
        let reply = self.round(&request)?;
        self.core.finish_range_check(reply)?;
        self.core.attribute(SubProtocol::RangeCheck);
        Ok(())
    }

    /// The fast sign test's round ([`S1Core::prepare_sign`]).
    #[allow(clippy::type_complexity)]
    fn sign_fast(
        &mut self,
        xs: &[Ciphertext],
        with_value: bool,
    ) -> Result<(Vec<Ciphertext>, Vec<Ciphertext>), ProtocolError> {
        let (request, step) = self.core.prepare_sign(xs, with_value)?;
        let reply = self.round(&request)?;
        let out = step.finish(&self.core, reply)?;
        self.core.attribute(SubProtocol::SecReLU);
        Ok(out)
    }

    /// Argmax over k encrypted scores per sample: an encrypted one-hot vector (ties go to the
    /// lowest index). Two comparison rounds: all pairs, then "won every duel".
    pub fn argmax(
        &mut self,
        scores: &[Vec<Ciphertext>],
    ) -> Result<Vec<Vec<Ciphertext>>, ProtocolError> {
        let l = self.core.params.value_bits;
        self.argmax_within(scores, l - 1)
    }

    /// [`argmax`](Self::argmax) of scores known to satisfy |s| < 2^`bits` (`bits` < ℓ): the
    /// pairwise differences are compared on `bits` + 2 bits and the win tallies on a few.
    pub fn argmax_within(
        &mut self,
        scores: &[Vec<Ciphertext>],
        bits: u32,
    ) -> Result<Vec<Vec<Ciphertext>>, ProtocolError> {
        let l = self.core.params.value_bits;
        let pk = self.core.pk.clone();
        let one = BigInt::one();
        let mut diffs = Vec::new();
        let mut index = Vec::new();
        for (s, sc) in scores.iter().enumerate() {
            let k = sc.len();
            if k < 2 {
                return Err(ProtocolError::InvalidRequest(
                    "argmax needs at least two scores".into(),
                ));
            }
            for i in 0..k {
                for j in i + 1..k {
                    // s_i ≥ s_j ⟺ s_i − s_j + 1 > 0
                    diffs.push(pk.add_plain(&pk.sub(&sc[i], &sc[j])?, &one)?);
                    index.push((s, i, j));
                }
            }
        }
        // |sᵢ − sⱼ + 1| ≤ 2^(bits+1).
        let wins = self.positive_within(&diffs, (bits + 2).min(l))?;
        // For each class, the number of duels won; it wins iff that count is k − 1.
        let mut tallies: Vec<Vec<Ciphertext>> = scores
            .iter()
            .map(|sc| vec![pk.trivial(&BigInt::zero()).expect("0 fits"); sc.len()])
            .collect();
        for (w, &(s, i, j)) in wins.iter().zip(&index) {
            tallies[s][i] = pk.add(&tallies[s][i], w);
            tallies[s][j] = pk.add(&tallies[s][j], &pk.add_plain(&pk.neg(w)?, &one)?);
        }
        let mut flat = Vec::new();
        for t in &tallies {
            let k = t.len() as i64;
            for c in t {
                // wins − (k − 1) + 1 > 0 ⟺ wins = k − 1
                flat.push(pk.add_plain(c, &BigInt::from(2 - k))?);
            }
        }
        // wins − k + 2 ∈ [2 − k, 1]: |·| < 2^(bits of k).
        let kmax = scores.iter().map(Vec::len).max().unwrap_or(2) as u64;
        let tally_bits = (64 - kmax.leading_zeros()).min(l);
        let hot = self.positive_within(&flat, tally_bits)?;
        let mut it = hot.into_iter();
        Ok(scores
            .iter()
            .map(|sc| it.by_ref().take(sc.len()).collect())
            .collect())
    }

    /// Fresh encrypted uniform values drawn by S2: for each (count, bound), `count` values in
    /// [−bound, bound]. Nobody sees them in the clear.
    pub fn random_values(
        &mut self,
        draws: &[(usize, BigInt)],
    ) -> Result<Vec<Vec<Ciphertext>>, ProtocolError> {
        let request = self.core.prepare_random(draws)?;
        let reply = self.round(&request)?;
        let out = self.core.finish_random(draws, reply)?;
        self.core.attribute(SubProtocol::RandomValues);
        Ok(out)
    }
}

/// ⟦1{d < c}⟧ as S2's zero-test answer ⟦λ⟧ and S1's coin s: λ = 1{d < c} for s = +1 and
/// 1{d > c} = 1 − 1{d < c} for s = −1 (d' ≠ c' always).
struct LessThan {
    lambda: Ciphertext,
    s_pos: bool,
}

impl LessThan {
    /// ⟦q − 1{d < c} + k⟧: q·⟦λ⟧⁻¹·(1 + kn) for s = +1, q·⟦λ⟧·(1 + (k − 1)n) for s = −1.
    fn subtract_from(
        self,
        pk: &PublicKey,
        q: &Ciphertext,
        k: &BigInt,
    ) -> Result<Ciphertext, ProtocolError> {
        Ok(if self.s_pos {
            pk.add_plain(&pk.sub(q, &self.lambda)?, k)?
        } else {
            pk.add_plain(&pk.add(q, &self.lambda), &(k - 1))?
        })
    }
}

/// One comparison's zero-test values before blinding: with a fresh coin s ∈ {±1}, for every bit
/// i (from the top) eᵢ = d'ᵢ − c'ᵢ + s + 3·Σ_{j>i} (d'ⱼ ⊕ c'ⱼ) under DGK. eᵢ ∈ [−2, 3m + 2] and
/// u > 3ℓ + 5 ≥ 3m + 2, so eᵢ is 0 mod u only if it is 0 — for at most one i, the first bit from
/// the top where d' and c' differ, and there only if d' < c' (s = +1) or d' > c' (s = −1). The
/// caller blinds each by ρᵢ ∈ Z_u* with fresh randomness and shuffles the group.
fn dgk_combine<R: rand::RngCore + rand::CryptoRng>(
    key: &dgk::PublicKey,
    bits: &[dgk::Ciphertext],
    c: &BigInt,
    nbits: usize,
    rng: &mut R,
) -> (bool, Vec<dgk::Ciphertext>) {
    let s_pos: bool = rng.gen();
    let s = if s_pos { 1i64 } else { -1 };
    let c2: BigInt = c << 1u32; // c' = 2c, m + 1 bits
    let mut suffix: Option<dgk::Ciphertext> = None; // ⟦3 Σ_{j>i} d'ⱼ ⊕ c'ⱼ⟧
    let mut es = Vec::with_capacity(nbits);
    for i in (0..nbits).rev() {
        let ci = c2.bit(i as u64);
        let di = &bits[i];
        let e = key.add_plain(di, s - i64::from(ci));
        es.push(match &suffix {
            Some(sfx) => key.add(&e, sfx),
            None => e,
        });
        if i > 0 {
            // 3·(d'ᵢ ⊕ c'ᵢ) = 3d'ᵢ if c'ᵢ = 0, else 3 − 3d'ᵢ.
            let x3 = if ci {
                key.add_plain(&key.mul_plain(di, -3), 3)
            } else {
                key.mul_plain(di, 3)
            };
            suffix = Some(match suffix {
                Some(sfx) => key.add(&sfx, &x3),
                None => x3,
            });
        }
    }
    (s_pos, es)
}

/// Whether S2 answers `request` with carry bits (a comparison, an exact division): in a garbled
/// session, an OT batch, for which the base OTs must be done.
fn needs_ot(request: &Request) -> bool {
    matches!(
        request,
        Request::Eval {
            op: Op::CompareBits { .. }
                | Op::Divide {
                    carry_bits: true,
                    ..
                }
                | Op::DivideBy {
                    carry_bits: true,
                    ..
                },
            ..
        }
    )
}

/// Checks S2's DGK public key for a strict session under `pk`: u must exceed 3ℓ + 5 (every
/// combined value of a comparison is then 0 mod u only if it is 0), the modulus must be as large
/// as the Paillier key's (up to 2048 bits), and t at least [`dgk::DEFAULT_T`].
fn check_dgk_key(
    key: dgk::PublicKey,
    pk: &PublicKey,
    params: &SessionParams,
) -> Result<dgk::PublicKey, ProtocolError> {
    let refuse = |why: String| {
        Err(ProtocolError::Handshake(format!(
            "S2's DGK key {}: {why}",
            key.fingerprint()
        )))
    };
    if !dgk_u_serves(key.u(), params.value_bits) {
        return refuse(format!(
            "u = {} is too small for comparisons of {} value bits",
            key.u(),
            params.value_bits
        ));
    }
    if key.bits() < pk.bits().min(2048) {
        return refuse(format!(
            "a {}-bit modulus is smaller than the Paillier key's {} bits",
            key.bits(),
            pk.bits()
        ));
    }
    // A hostile S2 must not make S1 build huge tables: u ≤ 4096 (S2 picks the prime above
    // 3ℓ + 5, at most 1 543 for ℓ ≤ 512) and a modulus at most twice the Paillier key's.
    if key.u() > 4096 {
        return refuse(format!("u = {} is larger than 4096", key.u()));
    }
    if key.bits() > 2 * pk.bits().max(2048) {
        return refuse(format!(
            "a {}-bit modulus is more than twice the Paillier key's {} bits",
            key.bits(),
            pk.bits()
        ));
    }
    if key.t() < dgk::DEFAULT_T {
        return refuse(format!(
            "subgroups of t = {} bits are below the minimum of {}",
            key.t(),
            dgk::DEFAULT_T
        ));
    }
    Ok(key)
}
