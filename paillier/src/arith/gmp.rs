//! GMP backend through `rug` (feature `gmp`).

use super::NatOps;
use num_bigint::BigUint;
use rug::integer::Order;
use rug::Integer;

/// Non-negative big integer backed by `rug::Integer` (GMP).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct GmpNat(pub(crate) Integer);

impl NatOps for GmpNat {
    fn wipe(&mut self) {
        use zeroize::Zeroize;
        // SAFETY: `d[0..alloc]` is the limb buffer this integer owns (GMP's documented layout);
        // after zeroing it, size 0 is the valid representation of 0 with the same buffer.
        unsafe {
            let raw = self.0.as_raw_mut();
            let alloc = usize::try_from((*raw).alloc).unwrap_or(0);
            if alloc > 0 {
                std::slice::from_raw_parts_mut((*raw).d.as_ptr(), alloc).zeroize();
            }
            (*raw).size = 0;
        }
    }
    fn zero() -> Self {
        GmpNat(Integer::new())
    }
    fn from_u64(v: u64) -> Self {
        GmpNat(Integer::from(v))
    }
    fn from_biguint(v: &BigUint) -> Self {
        GmpNat(Integer::from_digits(&v.to_u64_digits(), Order::Lsf))
    }
    fn to_biguint(&self) -> BigUint {
        let digits: Vec<u32> = self.0.to_digits(Order::Lsf);
        BigUint::from_slice(&digits)
    }
    fn from_bytes_be(b: &[u8]) -> Self {
        GmpNat(Integer::from_digits(b, Order::Msf))
    }
    fn to_bytes_be(&self) -> Vec<u8> {
        self.0.to_digits(Order::Msf)
    }
    fn bits(&self) -> u64 {
        u64::from(self.0.significant_bits())
    }
    fn bit(&self, i: u64) -> bool {
        u32::try_from(i).map(|i| self.0.get_bit(i)).unwrap_or(false)
    }
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
    fn add(&self, o: &Self) -> Self {
        GmpNat(Integer::from(&self.0 + &o.0))
    }
    fn sub(&self, o: &Self) -> Self {
        GmpNat(Integer::from(&self.0 - &o.0))
    }
    fn mul(&self, o: &Self) -> Self {
        GmpNat(Integer::from(&self.0 * &o.0))
    }
    fn div_rem(&self, o: &Self) -> (Self, Self) {
        let (q, r) = self.0.div_rem_floor_ref(&o.0).into();
        (GmpNat(q), GmpNat(r))
    }
    fn rem(&self, m: &Self) -> Self {
        GmpNat(Integer::from(&self.0 % &m.0))
    }
    fn shr(&self, k: u32) -> Self {
        GmpNat(Integer::from(&self.0 >> k))
    }
    fn shl(&self, k: u32) -> Self {
        GmpNat(Integer::from(&self.0 << k))
    }
    fn mul_mod(&self, o: &Self, m: &Self) -> Self {
        let mut p = Integer::from(&self.0 * &o.0);
        p %= &m.0;
        GmpNat(p)
    }
    fn pow_mod(&self, e: &Self, m: &Self) -> Self {
        GmpNat(Integer::from(
            self.0
                .pow_mod_ref(&e.0, &m.0)
                .expect("non-negative exponent"),
        ))
    }
    fn pow_mod_secret(&self, e: &Self, m: &Self) -> Self {
        // mpz_powm_sec requires an odd modulus and a positive exponent.
        if e.0.is_zero() || m.0.is_even() {
            return self.pow_mod(e, m);
        }
        GmpNat(Integer::from(self.0.secure_pow_mod_ref(&e.0, &m.0)))
    }
    fn inv_mod(&self, m: &Self) -> Option<Self> {
        self.0.invert_ref(&m.0).map(|r| GmpNat(Integer::from(r)))
    }
    fn gcd(&self, o: &Self) -> Self {
        GmpNat(Integer::from(self.0.gcd_ref(&o.0)))
    }
    fn square(&self) -> Self {
        GmpNat(Integer::from(self.0.square_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wipe` leaves 0 and overwrites every limb of the buffer the value lived in (read back
    /// through the still-owned buffer, which GMP keeps allocated at size 0).
    #[test]
    fn wipe_overwrites_every_limb() {
        let big = (BigUint::from(1u8) << 2048u32) - 1u8;
        let mut x = GmpNat::from_biguint(&big);
        let (d, alloc) = unsafe {
            let r = x.0.as_raw();
            (
                (*r).d.as_ptr() as *const u64,
                usize::try_from((*r).alloc).unwrap(),
            )
        };
        assert!(alloc >= 32);
        // Before: the limbs hold the value.
        assert!(unsafe { std::slice::from_raw_parts(d, 32) }
            .iter()
            .all(|&l| l == u64::MAX));
        x.wipe();
        assert_eq!(x, GmpNat::zero());
        let limbs = unsafe { std::slice::from_raw_parts(d, alloc) };
        assert!(limbs.iter().all(|&l| l == 0));
    }
}
