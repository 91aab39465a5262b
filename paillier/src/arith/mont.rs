//! Montgomery multiplication for the fixed-base tables ([`crate::fixed_base::FixedBase`]).
//!
//! A table entry is multiplied into an accumulator over and over (one product per window of an
//! exponent) and never leaves the table, so it can be kept in Montgomery form x·R mod m
//! (R = 2^(64·k) for a k-limb odd modulus m): a product is then one k×k multiplication and one
//! Montgomery reduction instead of a multiplication and a division. With GMP both are GMP's own
//! routines (`mpn_mul_n`, and `mpn_redc_1`, which GMP's `mpz_powm` uses for the same purpose):
//! 1.1 µs instead of 1.8 µs per product modulo a 2048-bit p² on the project machine. The last
//! product of an exponentiation multiplies by the accumulator in ordinary form, which also leaves
//! the Montgomery domain (x'·a·R⁻¹ = x·a), so no conversion is paid at the end.
//!
//! Without GMP the "Montgomery form" is the ordinary residue and a product is `mul_mod`: the
//! tables work the same on both backends.

use super::{Nat, NatOps};

pub(crate) use imp::{Elem, Montgomery};

#[cfg(feature = "gmp")]
mod imp {
    use super::{Nat, NatOps};
    use gmp_mpfr_sys::gmp;
    use rug::integer::Order;
    use rug::Integer;

    extern "C" {
        // GMP's internal Montgomery reduction (gmp-impl.h; mpz_powm's): rp = up·R⁻¹ mod mp for
        // the 2n-limb up < mp·R, destroying up; returns the carry out of the n-limb result (the
        // result is below 2·mp). `invm` is −1/mp[0] mod 2^64. Exported by every GMP build (in a
        // fat build it dispatches through the CPU vector, like `mpn_mul_n`).
        #[link_name = "__gmpn_redc_1"]
        fn mpn_redc_1(rp: *mut u64, up: *mut u64, mp: *const u64, n: i64, invm: u64) -> u64;
    }

    /// A residue in Montgomery form, `k` limbs, least significant first, below m.
    #[derive(Clone)]
    pub(crate) struct Elem(Box<[u64]>);

    impl Elem {
        /// Overwrites the limbs with zeros (tables of secret moduli, when they are dropped).
        pub(crate) fn wipe(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.0[..]);
        }
    }

    impl Drop for Montgomery {
        /// A secret key's moduli (p², q², p, q) do not outlive their context in memory.
        fn drop(&mut self) {
            zeroize::Zeroize::zeroize(&mut self.m[..]);
            self.modulus.wipe();
        }
    }

    /// An odd modulus m of k limbs with −1/m mod 2^64.
    #[derive(Clone)]
    pub(crate) struct Montgomery {
        m: Box<[u64]>,
        modulus: Nat,
        ninv: u64,
    }

    impl Montgomery {
        /// The context of an odd modulus `m` > 1.
        pub(crate) fn new(m: &Nat) -> Self {
            assert!(
                m.is_odd() && m.bits() > 1,
                "Montgomery needs an odd modulus"
            );
            let limbs: Vec<u64> = m.0.to_digits(Order::Lsf);
            // Newton's iteration for 1/m0 mod 2^64: each step doubles the correct low bits.
            let m0 = limbs[0];
            let mut inv: u64 = 1;
            for _ in 0..6 {
                inv = inv.wrapping_mul(2u64.wrapping_sub(m0.wrapping_mul(inv)));
            }
            debug_assert_eq!(m0.wrapping_mul(inv), 1);
            Montgomery {
                m: limbs.into_boxed_slice(),
                modulus: m.clone(),
                ninv: inv.wrapping_neg(),
            }
        }

        fn k(&self) -> usize {
            self.m.len()
        }

        /// The modulus m.
        pub(crate) fn modulus(&self) -> &Nat {
            &self.modulus
        }

        /// x·R mod m.
        pub(crate) fn enter(&self, x: &Nat) -> Elem {
            let shifted = Integer::from(&x.0 << (64 * self.k() as u32));
            let r = shifted % &self.modulus.0;
            self.limbs(&r)
        }

        fn limbs(&self, x: &Integer) -> Elem {
            let mut v: Vec<u64> = x.to_digits(Order::Lsf);
            v.resize(self.k(), 0);
            Elem(v.into_boxed_slice())
        }

        /// out = redc(a·b) = a·b·R⁻¹ mod m for k-limb a, b below m; with `b` = `None`, a²·R⁻¹
        /// (GMP's squaring, cheaper than a product).
        ///
        /// # Safety
        /// `out`, `a` and `b` address k limbs each; `out` may be `a` or `b` (the product is made
        /// in a separate buffer before `out` is written).
        unsafe fn mul_raw(&self, out: *mut u64, a: *const u64, b: Option<*const u64>) {
            let k = self.k();
            // The 2k-limb product, written whole by mpn_mul_n / mpn_sqr before anything reads it,
            // so the stack buffer (moduli up to 16 384 bits) is not initialised: zeroing 4 KiB
            // would cost a few per cent of a 2048-bit product.
            let mut stack = std::mem::MaybeUninit::<[u64; 512]>::uninit();
            let mut heap = Vec::new();
            let prod: *mut u64 = if 2 * k <= 512 {
                stack.as_mut_ptr().cast()
            } else {
                heap.resize(2 * k, 0);
                heap.as_mut_ptr()
            };
            let n = k as i64;
            // SAFETY: the caller's pointers address k limbs, the product 2k; the product does
            // not overlap the inputs (mpn_mul_n's and mpn_sqr's requirement), and redc_1 reads
            // only the product and m while it writes the k limbs of `out`.
            unsafe {
                match b {
                    Some(b) => gmp::mpn_mul_n(prod, a, b, n),
                    None => gmp::mpn_sqr(prod, a, n),
                }
                let carry = mpn_redc_1(out, prod, self.m.as_ptr(), n, self.ninv);
                if carry != 0 || gmp::mpn_cmp(out, self.m.as_ptr(), n) >= 0 {
                    gmp::mpn_sub_n(out, out, self.m.as_ptr(), n);
                }
            }
        }

        fn mul_into(&self, out: &mut [u64], a: &[u64], b: &[u64]) {
            let k = self.k();
            assert!(a.len() == k && b.len() == k && out.len() == k);
            // SAFETY: three slices of k limbs.
            unsafe { self.mul_raw(out.as_mut_ptr(), a.as_ptr(), Some(b.as_ptr())) }
        }

        /// The Montgomery product a·b·R⁻¹ (Montgomery form in, Montgomery form out).
        pub(crate) fn mul(&self, a: &Elem, b: &Elem) -> Elem {
            let mut out = vec![0u64; self.k()].into_boxed_slice();
            self.mul_into(&mut out, &a.0, &b.0);
            Elem(out)
        }

        /// 1 in Montgomery form (R mod m).
        pub(crate) fn one(&self) -> Elem {
            self.enter(&Nat::one())
        }

        /// acc ← acc²·R⁻¹.
        pub(crate) fn square_assign(&self, acc: &mut Elem) {
            assert!(acc.0.len() == self.k());
            let out = acc.0.as_mut_ptr();
            // SAFETY: k limbs; `out` is also the input, which mul_raw allows.
            unsafe { self.mul_raw(out, out, None) }
        }

        /// acc ← acc·b·R⁻¹.
        pub(crate) fn mul_assign(&self, acc: &mut Elem, b: &Elem) {
            let k = self.k();
            assert!(acc.0.len() == k && b.0.len() == k);
            let out = acc.0.as_mut_ptr();
            // SAFETY: k limbs each; `out` is also the first input, which mul_raw allows.
            unsafe { self.mul_raw(out, out, Some(b.0.as_ptr())) }
        }

        /// x·y mod m for x in Montgomery form and an ordinary residue `y` (reduced here): the
        /// product leaves the Montgomery domain.
        pub(crate) fn mul_plain(&self, x: &Elem, y: &Nat) -> Nat {
            let y = self.limbs(&Integer::from(&y.0 % &self.modulus.0));
            let mut out = vec![0u64; self.k()];
            self.mul_into(&mut out, &x.0, &y.0);
            from_limbs(&out)
        }

        /// x for x·R mod m.
        pub(crate) fn leave(&self, x: &Elem) -> Nat {
            let mut one = vec![0u64; self.k()];
            one[0] = 1;
            let mut out = vec![0u64; self.k()];
            self.mul_into(&mut out, &x.0, &one);
            from_limbs(&out)
        }
    }

    fn from_limbs(l: &[u64]) -> Nat {
        Nat(Integer::from_digits(l, Order::Lsf))
    }
}

#[cfg(not(feature = "gmp"))]
mod imp {
    use super::{Nat, NatOps};

    /// A residue (the ordinary form: this backend has no Montgomery arithmetic).
    #[derive(Clone)]
    pub(crate) struct Elem(Nat);

    impl Elem {
        /// See the GMP backend's.
        pub(crate) fn wipe(&mut self) {
            self.0.wipe();
        }
    }

    impl Drop for Montgomery {
        fn drop(&mut self) {
            self.m.wipe();
        }
    }

    /// The modulus.
    #[derive(Clone)]
    pub(crate) struct Montgomery {
        m: Nat,
    }

    impl Montgomery {
        pub(crate) fn new(m: &Nat) -> Self {
            assert!(
                m.is_odd() && m.bits() > 1,
                "Montgomery needs an odd modulus"
            );
            Montgomery { m: m.clone() }
        }

        pub(crate) fn modulus(&self) -> &Nat {
            &self.m
        }

        pub(crate) fn enter(&self, x: &Nat) -> Elem {
            Elem(x.rem(&self.m))
        }

        pub(crate) fn mul(&self, a: &Elem, b: &Elem) -> Elem {
            Elem(a.0.mul_mod(&b.0, &self.m))
        }

        pub(crate) fn mul_assign(&self, acc: &mut Elem, b: &Elem) {
            acc.0 = acc.0.mul_mod(&b.0, &self.m);
        }

        pub(crate) fn one(&self) -> Elem {
            Elem(Nat::one())
        }

        pub(crate) fn square_assign(&self, acc: &mut Elem) {
            acc.0 = acc.0.square().rem(&self.m);
        }

        pub(crate) fn mul_plain(&self, x: &Elem, y: &Nat) -> Nat {
            x.0.mul_mod(y, &self.m)
        }

        pub(crate) fn leave(&self, x: &Elem) -> Nat {
            x.0.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Montgomery products, conversions and mixed products agree with `mul_mod` for random odd
    /// moduli of 1 to 70 limbs (with the top bits set or not) and random residues, including 0,
    /// 1 and m − 1.
    #[test]
    fn montgomery_agrees_with_mul_mod() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for bits in [3u64, 64, 65, 127, 512, 1023, 2048, 2049, 4096, 4480] {
            for _ in 0..4 {
                let m = Nat::random_below(&Nat::one().shl(bits as u32), &mut rng);
                let m = if m.is_odd() { m } else { m.add(&Nat::one()) };
                if m.bits() < 2 {
                    continue;
                }
                let ctx = Montgomery::new(&m);
                let m1 = m.sub(&Nat::one());
                let mut xs = vec![Nat::zero(), Nat::one(), m1];
                xs.extend((0..4).map(|_| Nat::random_below(&m, &mut rng)));
                for a in &xs {
                    let am = ctx.enter(a);
                    assert_eq!(&ctx.leave(&am), a);
                    for b in &xs {
                        let want = a.mul_mod(b, &m);
                        let bm = ctx.enter(b);
                        assert_eq!(ctx.leave(&ctx.mul(&am, &bm)), want);
                        assert_eq!(ctx.mul_plain(&am, b), want);
                        let mut acc = am.clone();
                        ctx.mul_assign(&mut acc, &bm);
                        assert_eq!(ctx.leave(&acc), want);
                    }
                    let mut sq = am.clone();
                    ctx.square_assign(&mut sq);
                    assert_eq!(ctx.leave(&sq), a.mul_mod(a, &m));
                    let mut one = ctx.one();
                    ctx.mul_assign(&mut one, &am);
                    assert_eq!(&ctx.leave(&one), a);
                }
                // y larger than m is reduced first.
                let big = m.mul(&m).add(&Nat::from_u64(5));
                assert_eq!(
                    ctx.mul_plain(&ctx.enter(&Nat::from_u64(3)), &big),
                    Nat::from_u64(15).rem(&m)
                );
            }
        }
    }
}
