//! The messages S1 and S2 exchange. Every request is answered by exactly one response.

use crate::counts::OpCounts;
use crate::params::SessionParams;
use paillier::{BigInt, Ciphertext, Fingerprint};
use serde::{Deserialize, Serialize};

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
        jobs: Vec<WireJob>,
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
        packs: Vec<Ciphertext>,
        slot_bits: u32,
        count: u32,
        op: Op,
    },
    /// DGK zero test: for each group, ⟦1⟧ if some ciphertext decrypts to 0, else ⟦0⟧.
    ZeroTest { groups: Vec<Vec<Ciphertext>> },
    /// Range check: every ciphertext must decrypt to 0; S2 answers with no ciphertexts, or
    /// with `OutOfRange`.
    AssertZero { cts: Vec<Ciphertext> },
    /// Fresh encrypted uniform values in [−bound, bound], `count` of each.
    Random { draws: Vec<(u32, BigInt)> },
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
    Ciphertexts(Vec<Ciphertext>),
    /// S2's counters.
    Stats(OpCounts),
    /// A value was out of its declared range.
    OutOfRange(String),
    /// The request was refused.
    Error(String),
}
