//! Fixed-base exponentiation for cheap encryption randomness (Damgård–Jurik–Nielsen).
//!
//! A Paillier randomizer is an n-th residue ρ = rⁿ mod n², one full exponentiation with a
//! |n|-bit exponent. Following Damgård, Jurik and Nielsen ("A generalization of Paillier's
//! public-key system with applications to electronic voting", IJIS 2010, §4.2) and SecretFlow
//! HEU's ZPaillier, the randomizer is instead h_sʳ mod n² for a fixed n-th residue
//! h_s = (−x²)ⁿ mod n² and a short r of |n|/2 bits; with h_s fixed, a table of its powers makes
//! each randomizer about |n|/16 multiplications (one per byte of r). The key holder does the
//! same modulo p² and q² and recombines with CRT.
//!
//! x is derived from n by hashing (nothing up the sleeve, the same for every holder of the key),
//! so keys need no new fields and keys written before this change work unchanged. Ciphertexts
//! stay ordinary Paillier ciphertexts (g = n + 1): decryption and the homomorphic operations do
//! not change. Security rests on DCR plus the assumption that h_sʳ for r of |n|/2 bits cannot be
//! told from a uniform n-th residue (see `paillier/README.md`).
//!
//! The table lookups are indexed by the bytes of r: like the rest of the encryption path this is
//! not constant time (decryption, with the secret exponent, is).

use crate::arith::{Nat, NatOps};
use sha2::{Digest, Sha256};

/// Powers of one base for exponents of up to `8 · rows.len()` bits: `rows[i][j]` is
/// base^(j · 256^i) mod m.
pub(crate) struct FixedBase {
    m: Nat,
    rows: Vec<Vec<Nat>>,
}

impl FixedBase {
    /// The table of `base` modulo `m` for exponents of up to `exp_bits` bits.
    pub(crate) fn new(base: &Nat, m: &Nat, exp_bits: u64) -> Self {
        let digits = exp_bits.div_ceil(8).max(1) as usize;
        let mut rows = Vec::with_capacity(digits);
        let mut b = base.rem(m);
        for _ in 0..digits {
            let mut row = Vec::with_capacity(256);
            row.push(Nat::one());
            for j in 1..256 {
                let next = row[j - 1].mul_mod(&b, m);
                row.push(next);
            }
            b = row[255].mul_mod(&b, m); // b^256
            rows.push(row);
        }
        FixedBase { m: m.clone(), rows }
    }

    /// The largest exponent size the table serves, in bits.
    #[cfg(test)]
    pub(crate) fn exp_bits(&self) -> u64 {
        8 * self.rows.len() as u64
    }

    /// base^e mod m, for e below 2^(8 · rows).
    pub(crate) fn pow(&self, e: &Nat) -> Nat {
        let bytes = e.to_bytes_be();
        debug_assert!(bytes.len() <= self.rows.len(), "exponent beyond the table");
        let mut acc = Nat::one();
        for (row, &digit) in self.rows.iter().zip(bytes.iter().rev()) {
            acc = acc.mul_mod(&row[digit as usize], &self.m);
        }
        acc
    }
}

/// The fixed n-th residue h_s = (−x²)ⁿ mod n² of the modulus `n`, with x derived from n by
/// SHA-256 (counter mode, |n| + 128 bits reduced mod n; a unit of Z_n).
pub(crate) fn fixed_residue(n: &Nat, n2: &Nat) -> Nat {
    let want = n.bits() as usize / 8 + 16;
    for attempt in 0u32.. {
        let mut bytes = Vec::with_capacity(want + 32);
        let mut block = 0u32;
        while bytes.len() < want {
            let mut h = Sha256::new();
            h.update(b"smlp/paillier/fixed-base/v1");
            h.update(attempt.to_be_bytes());
            h.update(block.to_be_bytes());
            h.update(n.to_bytes_be());
            bytes.extend_from_slice(&h.finalize());
            block += 1;
        }
        let x = Nat::from_bytes_be(&bytes[..want]).rem(n);
        if x.is_zero() || x.gcd(n) != Nat::one() {
            continue;
        }
        let minus_x2 = n.sub(&x.mul_mod(&x, n)); // −x² mod n (x² ≠ 0 for a unit x)
        return minus_x2.pow_mod(n, n2);
    }
    unreachable!("a unit of Z_n is found after a few attempts")
}

/// Bits of the short exponent r: |n|/2.
pub(crate) fn exponent_bits(n: &Nat) -> u64 {
    n.bits() / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn table_powers_equal_modular_exponentiation() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let m = Nat::random_exact_bits(300, &mut rng).add(&Nat::one());
        let base = Nat::random_below(&m, &mut rng);
        let t = FixedBase::new(&base, &m, 130);
        assert_eq!(t.exp_bits(), 136);
        for bits in [0u64, 1, 7, 8, 9, 64, 129, 136] {
            let e = if bits == 0 {
                Nat::zero()
            } else {
                Nat::random_exact_bits(bits, &mut rng)
            };
            assert_eq!(t.pow(&e), base.pow_mod(&e, &m), "{bits} bits");
        }
    }
}
