//! The messages S1 and S2 exchange. Every request is answered by exactly one response.

use crate::counts::OpCounts;
use crate::params::SessionParams;
use paillier::format::bounded;
use paillier::{BigInt, Ciphertext, Fingerprint};
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

fn jobs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<WireJob>, D::Error> {
    bounded::vec(d, MAX_WIRE_ITEMS, "product jobs")
}

fn flags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<bool>, D::Error> {
    bounded::vec(d, MAX_WIRE_ITEMS, "negation flags")
}

fn draws<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(u32, BigInt)>, D::Error> {
    bounded::vec(d, MAX_WIRE_ITEMS, "random-value draws")
}

/// One zero-test group, decoded with its bound.
struct Group(Vec<Ciphertext>);

impl<'de> Deserialize<'de> for Group {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bounded::vec(d, MAX_WIRE_GROUP, "ciphertexts in a zero-test group").map(Group)
    }
}

fn groups<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<Ciphertext>>, D::Error> {
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
    /// encrypted bits of 2·(u mod 2^shift) + 1 (DGK, exact truncation).
    Divide { shift: u32, carry_bits: bool },
    /// ⌊u / d⌋ for every slot u and a public divisor d ≥ 2. With `carry_bits`, also the
    /// encrypted bits of 2·(u mod d) + 1 (m + 1 bits, m = bit length of d) for an exact result.
    DivideBy { divisor: u64, carry_bits: bool },
    /// Paper-style sign test: slots come in pairs (y, u); S2 returns ⟦β⟧ and, if `with_value`,
    /// ⟦β·u⟧ with β = 1{y > 0}.
    Sign { with_value: bool },
    /// Strict comparison, first step: for each slot z, ⟦⌊z / 2^bits⌋⟧ and the encrypted bits of
    /// 2·(z mod 2^bits) + 1.
    CompareBits { bits: u32 },
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
    /// DGK zero test: for each group, ⟦1⟧ if some ciphertext decrypts to 0, else ⟦0⟧.
    ZeroTest {
        #[serde(deserialize_with = "groups")]
        groups: Vec<Vec<Ciphertext>>,
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
    /// Handshake accepted.
    HelloOk,
    /// Result ciphertexts, in request order.
    Ciphertexts(#[serde(deserialize_with = "cts")] Vec<Ciphertext>),
    /// S2's counters.
    Stats(OpCounts),
    /// A value was out of its declared range.
    OutOfRange(String),
    /// The request was refused.
    Error(String),
}
