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

use crate::arith::mont::{Elem, Montgomery};
use crate::arith::{Nat, NatOps};
use sha2::{Digest, Sha256};

/// Powers of one base for exponents of up to `window · rows.len()` bits: `rows[i][j]` is
/// base^(j · 2^(window·i)) mod m (a fixed-base comb: one product per window of the exponent, no
/// squarings), kept in Montgomery form (`arith::mont`: one k×k product and one reduction per
/// window). Windows of 8 bits serve the randomizers (|n|/2-bit exponents, thousands of uses);
/// windows of 4 bits serve short scalars of one ciphertext used a few dozen times. The modulus
/// is odd (n², p², q²).
#[derive(Clone)]
pub(crate) struct FixedBase {
    ctx: Montgomery,
    window: u32,
    rows: Vec<Vec<Elem>>,
}

impl Drop for FixedBase {
    /// The tables of a secret key (powers mod p², q², p, q) are overwritten when dropped; a
    /// public key's too (rare: once per key).
    fn drop(&mut self) {
        for e in self.rows.iter_mut().flatten() {
            e.wipe();
        }
    }
}

impl FixedBase {
    /// The table of `base` modulo `m` for exponents of up to `exp_bits` bits, 8-bit windows.
    pub(crate) fn new(base: &Nat, m: &Nat, exp_bits: u64) -> Self {
        Self::with_window(base, m, exp_bits, 8)
    }

    /// The table with `window`-bit windows (1 to 16 bits; 2^window entries per row) for an odd
    /// modulus `m`.
    pub(crate) fn with_window(base: &Nat, m: &Nat, exp_bits: u64, window: u32) -> Self {
        debug_assert!((1..=16).contains(&window));
        let ctx = Montgomery::new(m);
        let digits = exp_bits.div_ceil(u64::from(window)).max(1) as usize;
        let size = 1usize << window;
        let mut rows = Vec::with_capacity(digits);
        let mut b = ctx.enter(base);
        let one = ctx.one();
        for _ in 0..digits {
            let mut row = Vec::with_capacity(size);
            row.push(one.clone());
            row.push(b.clone());
            for j in 2..size {
                let next = ctx.mul(&row[j - 1], &b);
                row.push(next);
            }
            b = ctx.mul(&row[size - 1], &b); // b^(2^window)
            rows.push(row);
        }
        FixedBase { ctx, window, rows }
    }

    /// The modulus.
    pub(crate) fn modulus(&self) -> &Nat {
        self.ctx.modulus()
    }

    /// The largest exponent size the table serves, in bits.
    pub(crate) fn exp_bits(&self) -> u64 {
        u64::from(self.window) * self.rows.len() as u64
    }

    /// base^e mod m, for e below 2^[`exp_bits`](Self::exp_bits).
    pub(crate) fn pow(&self, e: &Nat) -> Nat {
        let mut acc = None;
        self.mul_pow(&mut acc, e);
        acc.unwrap_or_else(Nat::one)
    }

    /// acc · base^e mod m (`None` stands for 1), for e below 2^[`exp_bits`](Self::exp_bits).
    pub(crate) fn mul_pow(&self, acc: &mut Option<Nat>, e: &Nat) {
        debug_assert!(e.bits() <= self.exp_bits(), "exponent beyond the table");
        let mut le = e.to_bytes_be();
        le.reverse();
        let w = self.window as usize;
        let mask = (1u32 << w) - 1;
        let mut prod: Option<Elem> = None;
        for (i, row) in self.rows.iter().enumerate() {
            let bit = i * w;
            if bit >= le.len() * 8 {
                break;
            }
            // Up to 16 bits from bit `bit`: three bytes from bit / 8 hold them.
            let word = (0..3).fold(0u32, |acc, k| {
                acc | u32::from(le.get(bit / 8 + k).copied().unwrap_or(0)) << (8 * k)
            });
            let digit = ((word >> (bit % 8)) & mask) as usize;
            if digit == 0 {
                continue;
            }
            match prod.as_mut() {
                None => prod = Some(row[digit].clone()),
                Some(p) => self.ctx.mul_assign(p, &row[digit]),
            }
        }
        // The last product leaves the Montgomery domain: p'·a·R⁻¹ = p·a.
        if let Some(p) = prod {
            *acc = Some(match acc.take() {
                None => self.ctx.leave(&p),
                Some(a) => self.ctx.mul_plain(&p, &a),
            });
        }
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
        let t4 = FixedBase::with_window(&base, &m, 153, 4);
        assert_eq!(t4.exp_bits(), 156);
        let t10 = FixedBase::with_window(&base, &m, 153, 10);
        assert_eq!(t10.exp_bits(), 160);
        let acc = Nat::random_below(&m, &mut rng);
        for bits in [0u64, 1, 3, 4, 5, 7, 8, 9, 64, 129, 136, 153, 156] {
            let e = if bits == 0 {
                Nat::zero()
            } else {
                Nat::random_exact_bits(bits, &mut rng)
            };
            let want = base.pow_mod(&e, &m);
            if bits <= 136 {
                assert_eq!(t.pow(&e), want, "{bits} bits");
            }
            assert_eq!(t4.pow(&e), want, "{bits} bits, 4-bit windows");
            assert_eq!(t10.pow(&e), want, "{bits} bits, 10-bit windows");
            let mut into = Some(acc.clone());
            t4.mul_pow(&mut into, &e);
            assert_eq!(into, Some(acc.mul_mod(&want, &m)), "{bits} bits, into");
        }
    }
}
