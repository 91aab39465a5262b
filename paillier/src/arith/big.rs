//! num-bigint backend (pure Rust, default).

use super::NatOps;
use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{One, Zero};

/// Non-negative big integer backed by `num_bigint::BigUint`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct BigNat(pub(crate) BigUint);

impl NatOps for BigNat {
    fn wipe(&mut self) {
        self.0 = BigUint::zero();
    }
    fn zero() -> Self {
        BigNat(BigUint::zero())
    }
    fn from_u64(v: u64) -> Self {
        BigNat(BigUint::from(v))
    }
    fn from_biguint(v: &BigUint) -> Self {
        BigNat(v.clone())
    }
    fn to_biguint(&self) -> BigUint {
        self.0.clone()
    }
    fn from_bytes_be(b: &[u8]) -> Self {
        BigNat(BigUint::from_bytes_be(b))
    }
    fn to_bytes_be(&self) -> Vec<u8> {
        if self.0.is_zero() {
            return Vec::new();
        }
        self.0.to_bytes_be()
    }
    fn bits(&self) -> u64 {
        self.0.bits()
    }
    fn bit(&self, i: u64) -> bool {
        self.0.bit(i)
    }
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
    fn add(&self, o: &Self) -> Self {
        BigNat(&self.0 + &o.0)
    }
    fn sub(&self, o: &Self) -> Self {
        BigNat(&self.0 - &o.0)
    }
    fn mul(&self, o: &Self) -> Self {
        BigNat(&self.0 * &o.0)
    }
    fn div_rem(&self, o: &Self) -> (Self, Self) {
        let (q, r) = self.0.div_rem(&o.0);
        (BigNat(q), BigNat(r))
    }
    fn rem(&self, m: &Self) -> Self {
        BigNat(&self.0 % &m.0)
    }
    fn shr(&self, k: u32) -> Self {
        BigNat(&self.0 >> k)
    }
    fn shl(&self, k: u32) -> Self {
        BigNat(&self.0 << k)
    }
    fn mul_mod(&self, o: &Self, m: &Self) -> Self {
        BigNat((&self.0 * &o.0) % &m.0)
    }
    fn pow_mod(&self, e: &Self, m: &Self) -> Self {
        BigNat(self.0.modpow(&e.0, &m.0))
    }
    fn pow_mod_secret(&self, e: &Self, m: &Self) -> Self {
        // num-bigint has no constant-time exponentiation; the `gmp` feature provides one.
        BigNat(self.0.modpow(&e.0, &m.0))
    }
    fn inv_mod(&self, m: &Self) -> Option<Self> {
        if m.0.is_one() {
            return Some(BigNat::zero());
        }
        self.0.modinv(&m.0).map(BigNat)
    }
    fn gcd(&self, o: &Self) -> Self {
        BigNat(self.0.gcd(&o.0))
    }
}
