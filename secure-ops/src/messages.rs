//! The messages S1 and S2 exchange. Every request is answered by exactly one response.

use crate::counts::OpCounts;
use crate::params::SessionParams;
use paillier::format::bounded;
use paillier::{dgk, BigInt, Ciphertext, Fingerprint};
use serde::{Deserialize, Deserializer, Serialize};

/// Most ciphertexts a message may carry (decoding stops beyond it; S2's policy may set less).
pub const MAX_WIRE_VALUES: usize = 1 << 18;
/// Most ciphertexts in one zero-test group (comparisons of at most ℓ + 1 ≤ 513 bits).
pub const MAX_WIRE_GROUP: usize = 514;
/// Most product jobs, or random-value draws, in one request.
pub const MAX_WIRE_ITEMS: usize = 64;

fn cts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ciphertext>, D::Error> {
    bounded::vec(d, MAX_WIRE_VALUES, "ciphertexts")
}

fn dgk_cts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<dgk::Ciphertext>, D::Error> {
    bounded::vec(d, MAX_WIRE_VALUES, "DGK ciphertexts")
}

fn jobs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WireJob>, D::Error> {
    bounded::vec(d, MAX_WIRE_ITEMS, "product jobs")
}

fn flags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<bool>, D::Error> {
    bounded::vec(d, MAX_WIRE_ITEMS, "negation flags")
}

fn draws<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u32, BigInt)>, D::Error> {
    bounded::vec(d, MAX_WIRE_ITEMS, "random-value draws")
}

/// Most bytes in one byte string of a message (garbled tables, OT columns and answers:
/// 32 bytes a compared bit at most, so 2^26 serve 2^21 bits, more than a request may hold).
pub const MAX_WIRE_BYTES: usize = 1 << 26;

/// A byte string on the wire (`serialize_bytes`: a length and the bytes, no per-byte framing),
/// decoded with a bound.
mod wire_bytes {
    use super::MAX_WIRE_BYTES;
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a byte string of at most {MAX_WIRE_BYTES} bytes")
        }
        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            if v.len() > MAX_WIRE_BYTES {
                return Err(E::custom(format!("more than {MAX_WIRE_BYTES} bytes")));
            }
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            self.visit_bytes(&v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }
}

fn points<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
    bounded::vec(d, yao::iknp::K, "base OT points")
}

fn bools<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<bool>, D::Error> {
    bounded::vec(d, MAX_WIRE_VALUES, "decoding bits")
}

/// One zero-test group of DGK ciphertexts, decoded with its bound.
struct Group(Vec<dgk::Ciphertext>);

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bounded::vec(d, MAX_WIRE_GROUP, "ciphertexts in a zero-test group").map(Group)
    }
}

fn groups<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<dgk::Ciphertext>>, D::Error> {
    let g: Vec<Group> = bounded::vec(d, MAX_WIRE_VALUES / 2, "zero-test groups")?;
    Ok(g.into_iter().map(|g| g.0).collect())
}

/// A product job over the unpacked slots (indices are slot offsets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireJob {
    /// out[j] = Σ_i m[j·cols + i] · v[i], j < rows.
    MatVec {
        mat: u32,
        vec: u32,
        rows: u32,
        cols: u32,
    },
    /// out[i] = Σ_j m[j·cols + i] · v[j], i < cols.
    VecMat {
        mat: u32,
        vec: u32,
        rows: u32,
        cols: u32,
    },
    /// out[j·b_len + i] = Σ_t a[t·a_len + j] · b[t·b_len + i] (a batch of outer products, summed).
    OuterSum {
        a: u32,
        b: u32,
        a_len: u32,
        b_len: u32,
        batch: u32,
    },
    /// out[i] = a[i] · b[i], i < len.
    Elementwise { a: u32, b: u32, len: u32 },
}

impl WireJob {
    /// The number of outputs and of products of the job over `slots` unpacked values, or `None`
    /// when a dimension is 0 or an operand range leaves the slots. Checked arithmetic throughout:
    /// S2 calls it on jobs from the network, S1 on the jobs it is about to send.
    pub fn shape(&self, slots: u64) -> Option<(usize, u64)> {
        let fits = |start: u32, len: u64| {
            u64::from(start)
                .checked_add(len)
                .is_some_and(|e| e <= slots)
        };
        let (outputs, work) = match *self {
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
                let is_mv = matches!(self, WireJob::MatVec { .. });
                let size = r.checked_mul(c)?;
                if r == 0 || c == 0 || !fits(mat, size) || !fits(vec, if is_mv { c } else { r }) {
                    return None;
                }
                (if is_mv { r } else { c }, size)
            }
            WireJob::OuterSum {
                a,
                b,
                a_len,
                b_len,
                batch,
            } => {
                let (al, bl, t) = (u64::from(a_len), u64::from(b_len), u64::from(batch));
                if al == 0
                    || bl == 0
                    || t == 0
                    || !fits(a, al.checked_mul(t)?)
                    || !fits(b, bl.checked_mul(t)?)
                {
                    return None;
                }
                let outputs = al.checked_mul(bl)?;
                (outputs, outputs.checked_mul(t)?)
            }
            WireJob::Elementwise { a, b, len } => {
                let len = u64::from(len);
                if len == 0 || !fits(a, len) || !fits(b, len) {
                    return None;
                }
                (len, len)
            }
        };
        Some((usize::try_from(outputs).ok()?, work))
    }

    /// The slot pairs (a, b) whose products sum to output `o` of the job (`o` below the job's
    /// output count from [`shape`](Self::shape)): what S2 multiplies and S1 unblinds.
    pub fn terms(&self, o: usize) -> Terms {
        let at = |x: u32| x as usize;
        let (a, a_step, b, b_step, count) = match *self {
            WireJob::MatVec { mat, vec, cols, .. } => {
                let cols = at(cols);
                (at(mat) + o * cols, 1, at(vec), 1, cols)
            }
            WireJob::VecMat {
                mat,
                vec,
                rows,
                cols,
            } => (at(mat) + o, at(cols), at(vec), 1, at(rows)),
            WireJob::OuterSum {
                a,
                b,
                a_len,
                b_len,
                batch,
            } => {
                let (al, bl) = (at(a_len), at(b_len));
                (at(a) + o / bl, al, at(b) + o % bl, bl, at(batch))
            }
            WireJob::Elementwise { a, b, .. } => (at(a) + o, 0, at(b) + o, 0, 1),
        };
        Terms {
            a,
            a_step,
            b,
            b_step,
            left: count,
        }
    }
}

/// The slot pairs of one output of a product job: two arithmetic progressions
/// ([`WireJob::terms`]).
#[derive(Clone, Debug)]
pub struct Terms {
    a: usize,
    a_step: usize,
    b: usize,
    b_step: usize,
    left: usize,
}

impl Iterator for Terms {
    type Item = (usize, usize);
    fn next(&mut self) -> Option<(usize, usize)> {
        if self.left == 0 {
            return None;
        }
        let item = (self.a, self.b);
        self.left -= 1;
        self.a += self.a_step;
        self.b += self.b_step;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Terms {}

/// The sub-protocols, by the paper's names (and the helpers the constructions need): what S1
/// requests, S2 serves, errors report, logs and the leakage observer ([`crate::S2View`]) name.
/// Argmax is not among them: S1 builds it from SecReLU or SecCompare requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SubProtocol {
    /// SecMul and SecDot: products of encrypted operands (element-wise, matrix × vector, batched
    /// outer products).
    SecMul,
    /// Truncation: rescaling a fixed-point value, ⌊x / 2^k⌋ (exact or stochastic).
    Truncation,
    /// Division by a public integer (averages over a mini-batch).
    Division,
    /// SecReLU: the sign of a value and ReLU (fast profile: a one-round sign test).
    SecReLU,
    /// SecCompare: the strict profile's comparison (bits of a blinded value).
    SecCompare,
    /// The strict comparison's range check (S2 learns only whether a value was in range).
    RangeCheck,
    /// DGK zero tests.
    ZeroTest,
    /// Garbled comparisons (the second round of a comparison in a garbled session).
    Garbled,
    /// Random values drawn by S2 (secret initial weights).
    RandomValues,
    /// Key switching: a value under the session's key re-encrypted, blinded, under another
    /// tenant's key S2 holds (a model shared with another owner).
    KeySwitch,
}

impl SubProtocol {
    /// The name in messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            SubProtocol::SecMul => "SecMul/SecDot",
            SubProtocol::Truncation => "truncation",
            SubProtocol::Division => "division",
            SubProtocol::SecReLU => "SecReLU",
            SubProtocol::SecCompare => "SecCompare",
            SubProtocol::RangeCheck => "SecCompare range check",
            SubProtocol::ZeroTest => "DGK zero test",
            SubProtocol::Garbled => "garbled comparison",
            SubProtocol::RandomValues => "random values",
            SubProtocol::KeySwitch => "key switch",
        }
    }
}

impl std::fmt::Display for SubProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What S2 computes on the unpacked, blinded values of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Products of blinded operands (SecMul, SecDot and friends). Where `negate[i]` is set, S2
    /// returns the encryptions of job i's negated products (saves S1 a modular inversion).
    Products {
        #[serde(deserialize_with = "jobs")]
        jobs: Vec<WireJob>,
        #[serde(deserialize_with = "flags")]
        negate: Vec<bool>,
    },
    /// ⌊u / 2^shift⌋ for every slot u (u ≥ 0 for in-range values). With `carry_bits`, also the
    /// DGK-encrypted bits of 2·(u mod 2^shift) + 1 (exact truncation; answered with
    /// [`Response::Bits`]).
    Divide { shift: u32, carry_bits: bool },
    /// ⌊u / d⌋ for every slot u and a public divisor d ≥ 2. With `carry_bits`, also the
    /// DGK-encrypted bits of 2·(u mod d) + 1 (m + 1 bits, m = bit length of d) for an exact
    /// result ([`Response::Bits`]).
    DivideBy { divisor: u64, carry_bits: bool },
    /// Paper-style sign test: slots come in pairs (y, u); S2 returns ⟦β⟧ and, if `with_value`,
    /// ⟦β·u⟧ with β = 1{y > 0}.
    Sign { with_value: bool },
    /// Strict comparison, first step: for each slot z, ⟦⌊z / 2^bits⌋⟧ (Paillier) and, by the
    /// session's [`Comparison`](crate::Comparison), the DGK-encrypted bits of
    /// 2·(z mod 2^bits) + 1 ([`Response::Bits`]) or an OT extension batch chosen by the bits of
    /// z mod 2^bits ([`Response::OtBits`]). Exact divisions (`carry_bits`) answer the same way.
    CompareBits { bits: u32 },
    /// Key switching: every slot u = x + r encrypted under the tenant key `to` (which S2 must
    /// hold) instead of the session's key.
    Reencrypt { to: Fingerprint },
}

/// S1 → S2.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// First message of a session.
    Hello {
        version: u16,
        fingerprint: Fingerprint,
        params: SessionParams,
    },
    /// Packed blinded values and what to compute on them.
    Eval {
        #[serde(deserialize_with = "cts")]
        packs: Vec<Ciphertext>,
        slot_bits: u32,
        count: u32,
        op: Op,
    },
    /// DGK zero test: for each group of DGK ciphertexts, the Paillier encryption of 1 if one of
    /// them encrypts 0, else of 0.
    ZeroTest {
        #[serde(deserialize_with = "groups")]
        groups: Vec<Vec<dgk::Ciphertext>>,
    },
    /// S1's base-OT points (one per base transfer: [`yao::iknp::K`]), in answer to the point
    /// of S2's `HelloOk`, before the first comparison of a garbled session. Answered by
    /// [`Response::Ready`].
    BaseOt {
        #[serde(deserialize_with = "points")]
        points: Vec<[u8; 32]>,
    },
    /// Garbled comparisons for S2's last [`Response::OtBits`]: per compared bit, the OT
    /// extension's answer (yⱼ⁰, yⱼ¹) (32 bytes) and the half-gate tables (TG, TE) (32 bytes);
    /// per comparison, the label of lt₀ (16 bytes) and the decoding bit. S2 answers ⟦λ'⟧ per
    /// comparison (Paillier), λ' = 1{d < c} ⊕ S1's coin.
    Garbled {
        #[serde(with = "wire_bytes")]
        answers: Vec<u8>,
        #[serde(with = "wire_bytes")]
        tables: Vec<u8>,
        #[serde(with = "wire_bytes")]
        starts: Vec<u8>,
        #[serde(deserialize_with = "bools")]
        decode: Vec<bool>,
    },
    /// Range check: every ciphertext must decrypt to 0; S2 answers with no ciphertexts, or
    /// with `OutOfRange`.
    AssertZero {
        #[serde(deserialize_with = "cts")]
        cts: Vec<Ciphertext>,
    },
    /// Fresh encrypted uniform values in [−bound, bound], `count` of each.
    Random {
        #[serde(deserialize_with = "draws")]
        draws: Vec<(u32, BigInt)>,
    },
    /// S2's operation counters.
    Stats,
    /// End of session.
    Bye,
}

/// S2 → S1.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// Handshake accepted, with S2's DGK public key (a DGK session's comparison bits are
    /// encrypted under it), which S1 receives over the authenticated channel, and in a garbled
    /// session S2's base-OT point A (S1 answers with [`Request::BaseOt`]).
    HelloOk {
        dgk: Option<dgk::PublicKey>,
        ot: Option<[u8; 32]>,
    },
    /// The base OTs are done.
    Ready,
    /// Result ciphertexts, in request order.
    Ciphertexts(#[serde(deserialize_with = "cts")] Vec<Ciphertext>),
    /// Results of a request with DGK bits (`CompareBits`, exact division): per value, one
    /// Paillier ciphertext in `values` and its bits, LSB first, side by side in `bits`.
    Bits {
        #[serde(deserialize_with = "cts")]
        values: Vec<Ciphertext>,
        #[serde(deserialize_with = "dgk_cts")]
        bits: Vec<dgk::Ciphertext>,
    },
    /// Results of a request with carry bits in a garbled session: per value one Paillier
    /// ciphertext, and the OT extension batch (its first index and its [`yao::iknp::K`]
    /// columns) chosen by the m bits of every value's d, LSB first.
    OtBits {
        #[serde(deserialize_with = "cts")]
        values: Vec<Ciphertext>,
        first: u64,
        #[serde(with = "wire_bytes")]
        columns: Vec<u8>,
    },
    /// S2's counters.
    Stats(OpCounts),
    /// A value was out of its declared range.
    OutOfRange(String),
    /// The request was refused.
    Error(String),
}

impl Op {
    /// The sub-protocol this evaluation serves.
    pub fn sub_protocol(&self) -> SubProtocol {
        match self {
            Op::Products { .. } => SubProtocol::SecMul,
            Op::Divide { .. } => SubProtocol::Truncation,
            Op::DivideBy { .. } => SubProtocol::Division,
            Op::Sign { .. } => SubProtocol::SecReLU,
            Op::CompareBits { .. } => SubProtocol::SecCompare,
            Op::Reencrypt { .. } => SubProtocol::KeySwitch,
        }
    }
}

impl Request {
    /// The sub-protocol a computing request serves (`None` for the session's own messages).
    pub fn sub_protocol(&self) -> Option<SubProtocol> {
        match self {
            Request::Eval { op, .. } => Some(op.sub_protocol()),
            Request::ZeroTest { .. } => Some(SubProtocol::ZeroTest),
            Request::Garbled { .. } => Some(SubProtocol::Garbled),
            Request::AssertZero { .. } => Some(SubProtocol::RangeCheck),
            Request::Random { .. } => Some(SubProtocol::RandomValues),
            Request::Hello { .. } | Request::BaseOt { .. } | Request::Stats | Request::Bye => None,
        }
    }
}
