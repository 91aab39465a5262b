//! Oblivious transfer and a garbled comparison for two semi-honest parties.
//!
//! The strict profile's comparisons ask one question many times: S2 holds d, S1 holds c (both
//! m-bit, d the low bits of a blinded value, c the low bits of S1's blind), and the answer
//! 1{d < c} must reach S2 only as λ' = 1{d < c} ⊕ s for a coin s of S1's (S2 then returns ⟦λ'⟧
//! under Paillier and S1 removes s). This crate answers it with Yao's garbled circuits:
//!
//! - [`base`]: 128 Chou–Orlandi oblivious transfers over Ristretto255, once per session (S2
//!   sends, S1 receives), which seed
//! - [`iknp`]: the IKNP extension (Ishai, Kilian, Nissim, Petrank, CRYPTO 2003): any number of
//!   further transfers for a few hash evaluations each (S1 sends, S2 chooses with the bits of d);
//! - [`compare`]: the less-than circuit of an m-bit d against S1's c, garbled with free XOR and
//!   half gates (Zahur, Rosulek, Evans, EUROCRYPT 2015): m AND gates, 32 bytes each.
//!
//! Semi-honest security: S1 learns nothing of d (IKNP's receiver privacy); S2 learns its
//! labels, the garbled tables and λ', which a simulator produces from the uniform bit λ' alone
//! (the garbling's privacy; the negations that depend on c are free and invisible). The hash is
//! SHA-256, modelled as a random oracle (the correlation robustness IKNP and half gates need).
//! Sans-IO: every message is a plain value; the caller carries it.

pub mod base;
pub mod compare;
pub mod iknp;

use sha2::{Digest, Sha256};

/// A wire label or OT message: 128 bits.
pub type Block = u128;

/// What goes wrong with a peer's message.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A base-OT point that is not the encoding of a Ristretto255 point.
    #[error("base OT: not a valid group element")]
    BadPoint,
    /// A message of the wrong size for what it answers.
    #[error("{what}: expected {expected}, got {got}")]
    Size {
        /// The message.
        what: &'static str,
        /// The size it must have.
        expected: usize,
        /// The size it has.
        got: usize,
    },
    /// OT extension indices that go backwards or overflow (a batch must never reuse one).
    #[error(
        "OT extension: batch at index {got}, expected at least {expected} (a multiple of 128)"
    )]
    Index {
        /// The first index the batch may use.
        expected: u64,
        /// The batch's first index.
        got: u64,
    },
}

/// H(domain, tweak, x): the first 128 bits of SHA-256 over a domain tag, a 64-bit tweak and x.
pub(crate) fn hash(domain: &[u8], tweak: u64, x: Block) -> Block {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(tweak.to_le_bytes());
    h.update(x.to_le_bytes());
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    u128::from_le_bytes(out)
}

/// Blocks as bytes (16 each, little-endian), for a wire format.
pub fn blocks_to_bytes(blocks: &[Block]) -> Vec<u8> {
    blocks.iter().flat_map(|b| b.to_le_bytes()).collect()
}

/// Bytes back to blocks; `None` unless the length is a multiple of 16.
pub fn bytes_to_blocks(bytes: &[u8]) -> Option<Vec<Block>> {
    if !bytes.len().is_multiple_of(16) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(16)
            .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes")))
            .collect(),
    )
}

/// Pairs of blocks as bytes (32 each: the first block, then the second), for a wire format:
/// OT answers (y⁰, y¹) and half-gate tables (TG, TE).
pub fn pairs_to_bytes(pairs: &[(Block, Block)]) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|(a, b)| a.to_le_bytes().into_iter().chain(b.to_le_bytes()))
        .collect()
}

/// Bytes back to pairs of blocks; `None` unless the length is a multiple of 32.
pub fn bytes_to_pairs(bytes: &[u8]) -> Option<Vec<(Block, Block)>> {
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    let blocks = bytes_to_blocks(bytes)?;
    Some(blocks.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_odd_lengths_are_refused() {
        let b = vec![1u128, u128::MAX, 0x0123_4567_89ab_cdef_u128 << 64];
        assert_eq!(bytes_to_blocks(&blocks_to_bytes(&b)).unwrap(), b);
        assert_eq!(bytes_to_blocks(&[0u8; 17]), None);
        assert_eq!(bytes_to_blocks(&[]).unwrap(), Vec::<u128>::new());
        let pairs = vec![(1u128, 2u128), (u128::MAX, 0)];
        let bytes = pairs_to_bytes(&pairs);
        assert_eq!(bytes.len(), 64);
        assert_eq!(bytes_to_blocks(&bytes).unwrap(), vec![1, 2, u128::MAX, 0]);
        assert_eq!(bytes_to_pairs(&bytes).unwrap(), pairs);
        assert_eq!(bytes_to_pairs(&bytes[..48]), None);
    }

    #[test]
    fn hash_separates_domains_and_tweaks() {
        let x = 42u128;
        assert_ne!(hash(b"a", 0, x), hash(b"b", 0, x));
        assert_ne!(hash(b"a", 0, x), hash(b"a", 1, x));
        assert_ne!(hash(b"a", 0, x), hash(b"a", 0, x + 1));
        assert_eq!(hash(b"a", 7, x), hash(b"a", 7, x));
    }
}
