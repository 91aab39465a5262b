//! The one small internal interface over the two bignum backends.
//!
//! The cryptosystem is written once against [`Nat`]; the `gmp` feature switches `Nat` from
//! num-bigint (pure Rust, default) to GMP through `rug`. Both implement [`NatOps`], so the compiler
//! checks they offer the same operations; with `gmp` on, both are compiled and a test compares them.

use num_bigint::BigUint;
use rand::RngCore;
use std::fmt::Debug;

#[cfg_attr(feature = "gmp", allow(dead_code))]
pub(crate) mod big;
#[cfg(feature = "gmp")]
pub(crate) mod gmp;
#[cfg(all(feature = "gmp", target_arch = "x86_64", target_os = "linux"))]
mod gmp_cpu;
pub(crate) mod mont;

#[cfg(not(feature = "gmp"))]
pub use big::BigNat as Nat;
#[cfg(feature = "gmp")]
pub use gmp::GmpNat as Nat;

/// Name of the backend compiled in, for reports.
pub const BACKEND: &str = if cfg!(feature = "gmp") {
    "gmp (rug)"
} else {
    "num-bigint"
};

/// On x86-64 with GMP: installs GMP's Skylake routines where GMP's fat binary does not recognise
/// the processor and fell back to generic code (see `arith/gmp_cpu.rs`); nothing otherwise. Key
/// constructors call it; it runs once.
pub fn tune_backend() {
    #[cfg(all(feature = "gmp", target_arch = "x86_64", target_os = "linux"))]
    gmp_cpu::install();
}

/// [`BACKEND`], and which routines GMP runs where [`tune_backend`] replaced its generic ones.
pub fn backend_description() -> String {
    #[cfg(all(feature = "gmp", target_arch = "x86_64", target_os = "linux"))]
    if gmp_cpu::install() {
        return format!("{BACKEND}, Skylake routines (GMP did not recognise this x86-64 core)");
    }
    BACKEND.to_string()
}

/// Non-negative big integer operations the cryptosystem needs.
#[allow(missing_docs)]
pub trait NatOps: Sized + Clone + Eq + Ord + Debug + Send + Sync + 'static {
    fn zero() -> Self;
    /// Sets the value to 0, overwriting the memory that held it where the backend allows (GMP:
    /// every allocated limb, with volatile writes; num-bigint keeps its buffer private, so its
    /// memory is released without being overwritten).
    fn wipe(&mut self);
    fn from_u64(v: u64) -> Self;
    fn from_biguint(v: &BigUint) -> Self;
    fn to_biguint(&self) -> BigUint;
    fn from_bytes_be(b: &[u8]) -> Self;
    fn to_bytes_be(&self) -> Vec<u8>;
    fn bits(&self) -> u64;
    fn bit(&self, i: u64) -> bool;
    fn is_zero(&self) -> bool;
    fn add(&self, o: &Self) -> Self;
    /// `self - o`; callers guarantee `self >= o`.
    fn sub(&self, o: &Self) -> Self;
    fn mul(&self, o: &Self) -> Self;
    fn div_rem(&self, o: &Self) -> (Self, Self);
    fn rem(&self, m: &Self) -> Self;
    fn shr(&self, k: u32) -> Self;
    fn shl(&self, k: u32) -> Self;
    fn mul_mod(&self, o: &Self, m: &Self) -> Self;
    /// Variable-time modular exponentiation (public exponents).
    fn pow_mod(&self, e: &Self, m: &Self) -> Self;
    /// Modular exponentiation for secret exponents: constant time with GMP.
    fn pow_mod_secret(&self, e: &Self, m: &Self) -> Self;
    fn inv_mod(&self, m: &Self) -> Option<Self>;
    fn gcd(&self, o: &Self) -> Self;
    fn square(&self) -> Self {
        self.mul(self)
    }
    fn one() -> Self {
        Self::from_u64(1)
    }
    fn is_odd(&self) -> bool {
        self.bit(0)
    }
    /// Uniform in `[0, bound)`, by rejection sampling on bytes from `rng`.
    fn random_below<R: RngCore + ?Sized>(bound: &Self, rng: &mut R) -> Self {
        let bits = bound.bits();
        assert!(bits > 0, "random_below(0)");
        let nbytes = bits.div_ceil(8) as usize;
        let top_mask = if bits.is_multiple_of(8) {
            0xff
        } else {
            (1u8 << (bits % 8)) - 1
        };
        let mut buf = vec![0u8; nbytes];
        loop {
            rng.fill_bytes(&mut buf);
            buf[0] &= top_mask;
            let v = Self::from_bytes_be(&buf);
            if &v < bound {
                return v;
            }
        }
    }
    /// Uniform with exactly `bits` bits (top bit set).
    fn random_exact_bits<R: RngCore + ?Sized>(bits: u64, rng: &mut R) -> Self {
        let nbytes = bits.div_ceil(8) as usize;
        let mut buf = vec![0u8; nbytes];
        rng.fill_bytes(&mut buf);
        let extra = (nbytes as u64 * 8 - bits) as u32;
        buf[0] &= 0xffu8 >> extra;
        buf[0] |= 0x80u8 >> extra;
        Self::from_bytes_be(&buf)
    }
}

#[cfg(all(test, feature = "gmp"))]
mod cross_backend {
    use super::{big::BigNat, gmp::GmpNat, NatOps};
    use proptest::prelude::*;

    fn pair(b: &[u8]) -> (BigNat, GmpNat) {
        (BigNat::from_bytes_be(b), GmpNat::from_bytes_be(b))
    }

    proptest! {
        #[test]
        fn backends_agree(a in proptest::collection::vec(any::<u8>(), 1..160),
                          e in proptest::collection::vec(any::<u8>(), 1..80),
                          m in proptest::collection::vec(any::<u8>(), 1..160)) {
            let (a1, a2) = pair(&a);
            let (e1, e2) = pair(&e);
            let (m1, m2) = pair(&m);
            prop_assume!(!m1.is_zero() && m1 != BigNat::one());
            let m1 = if m1.is_odd() { m1 } else { m1.add(&BigNat::one()) };
            let m2 = if m2.is_odd() { m2 } else { m2.add(&GmpNat::one()) };
            prop_assert_eq!(a1.pow_mod(&e1, &m1).to_bytes_be(), a2.pow_mod(&e2, &m2).to_bytes_be());
            prop_assert_eq!(a1.pow_mod_secret(&e1, &m1).to_bytes_be(), a2.pow_mod_secret(&e2, &m2).to_bytes_be());
            prop_assert_eq!(a1.mul_mod(&e1, &m1).to_bytes_be(), a2.mul_mod(&e2, &m2).to_bytes_be());
            prop_assert_eq!(a1.inv_mod(&m1).map(|x| x.to_bytes_be()), a2.inv_mod(&m2).map(|x| x.to_bytes_be()));
            prop_assert_eq!(a1.gcd(&m1).to_bytes_be(), a2.gcd(&m2).to_bytes_be());
            let (q1, r1) = a1.div_rem(&m1);
            let (q2, r2) = a2.div_rem(&m2);
            prop_assert_eq!((q1.to_bytes_be(), r1.to_bytes_be()), (q2.to_bytes_be(), r2.to_bytes_be()));
            prop_assert_eq!(a1.shr(7).to_bytes_be(), a2.shr(7).to_bytes_be());
            prop_assert_eq!(a1.bits(), a2.bits());
            prop_assert_eq!(a1.to_biguint(), a2.to_biguint());
        }
    }
}
