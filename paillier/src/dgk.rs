//! The DGK cryptosystem (Damgård, Geisler and Krøigaard, "Efficient and secure comparison for
//! on-line auctions", ACISP 2007, with the correction of IJACT 2009): additively homomorphic
//! encryption of small plaintexts, built for comparisons, whose key holder tests a ciphertext
//! for zero with one short exponentiation.
//!
//! * Plaintexts live in Z_u for a small prime u (a few bits: above every value a comparison
//!   combines).
//! * n = pq with primes v_p | p − 1 and v_q | q − 1 of t bits (and u | p − 1, u | q − 1).
//! * g has order u·v_p·v_q and h order v_p·v_q in Z_n*; E(m) = g^m·h^r mod n, with r of 2.5·t
//!   bits from a public-key holder (statistically close to uniform in ⟨h⟩) or uniform modulo
//!   v_p·v_q from the key holder (by CRT, exactly uniform).
//! * Zero test: c^{v_p} mod p = (g^{v_p})^m mod p is 1 iff m ≡ 0 (mod u) — one exponentiation
//!   by a t-bit secret exponent modulo the |n|/2-bit p, constant time with GMP.
//! * Full decryption of m ∈ Z_u: a baby-step giant-step discrete logarithm in the subgroup of
//!   order u of Z_p* (√u products).
//!
//! Security rests on the hardness of factoring n and on the subgroup-decision assumption of
//! DGK. The best known attack on the small subgroups finds v_p in about 2^(t/2) operations, so
//! t = 160 gives 80 bits (the literature's choice), t = 224 gives 112 bits (a 2048-bit modulus's
//! level).
//!
//! smlp uses DGK inside the strict profile's comparisons: S2 encrypts the bits of a blinded
//! value, S1 combines them homomorphically, blinds each combination by a random ρ ∈ Z_u* and
//! re-randomises it, and S2 tests which one is zero.

use crate::arith::{Nat, NatOps};
use crate::error::{Error, Result};
use crate::fixed_base::FixedBase;
use crate::keys::serde_nat;
use crate::keys::Fingerprint;
use crate::prime;
use num_bigint::BigUint;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Default bit length t of v_p and v_q (80-bit security against the subgroup attack).
pub const DEFAULT_T: u32 = 160;
/// Smallest t accepted (tests use small keys; real keys use [`DEFAULT_T`] or more).
pub const MIN_T: u32 = 32;
/// Largest t accepted.
pub const MAX_T: u32 = 512;
/// Largest plaintext modulus u accepted (2^16: decryption tables and blinding exponents stay
/// small).
pub const MAX_U: u32 = 1 << 16;
/// Smallest modulus accepted.
pub const MIN_BITS: u32 = 256;
/// Largest modulus accepted.
pub const MAX_BITS: u32 = 8192;

/// A DGK ciphertext, an element of Z_n*.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ciphertext(pub(crate) Nat);

ciphertext_newtype!(Ciphertext, "DgkCiphertext");

/// Tables of a public key, built on first use and shared by clones.
struct PublicTables {
    /// h mod n for exponents of 2.5·t bits (10-bit windows: 40 products for t = 160; a 10 MiB
    /// table at 2048 bits, built in about 40 000 products).
    h: FixedBase,
    /// g^k mod n for k ∈ [0, u).
    g_small: Vec<Nat>,
}

/// A DGK public key: n, g, h, u and t.
#[derive(Clone)]
pub struct PublicKey {
    n: Nat,
    g: Nat,
    h: Nat,
    u: u32,
    t: u32,
    fingerprint: Fingerprint,
    tables: Arc<OnceLock<PublicTables>>,
}

impl PartialEq for PublicKey {
    fn eq(&self, o: &Self) -> bool {
        self.n == o.n && self.g == o.g && self.h == o.h && self.u == o.u && self.t == o.t
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DgkPublicKey({} bits, u = {}, t = {}, {})",
            self.bits(),
            self.u,
            self.t,
            self.fingerprint
        )
    }
}

fn is_small_prime(u: u32) -> bool {
    u >= 2
        && (2..)
            .take_while(|d| d * d <= u)
            .all(|d| !u.is_multiple_of(d))
}

impl PublicKey {
    /// A public key from its parts, checked: n odd of 256 to 8192 bits, u a prime in [3, 2^16],
    /// t in [32, 512] and below |n|/2, g and h units of Z_n other than 1.
    pub fn from_parts(n: &BigUint, g: &BigUint, h: &BigUint, u: u32, t: u32) -> Result<Self> {
        Self::from_nat(
            Nat::from_biguint(n),
            Nat::from_biguint(g),
            Nat::from_biguint(h),
            u,
            t,
        )
    }

    fn from_nat(n: Nat, g: Nat, h: Nat, u: u32, t: u32) -> Result<Self> {
        let bits = u32::try_from(n.bits()).unwrap_or(u32::MAX);
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(Error::KeySize {
                bits,
                reason: "a DGK modulus must have 256 to 8192 bits",
            });
        }
        if !n.is_odd() {
            return Err(Error::InvalidKey("DGK modulus must be odd"));
        }
        if !(3..=MAX_U).contains(&u) || !is_small_prime(u) {
            return Err(Error::InvalidKey("DGK u must be a prime in 3..=65536"));
        }
        if !(MIN_T..=MAX_T).contains(&t) || 2 * t >= bits {
            return Err(Error::InvalidKey(
                "DGK t must be in 32..=512 and below half the modulus size",
            ));
        }
        let one = Nat::one();
        for x in [&g, &h] {
            if x.is_zero() || *x == one || *x >= n || x.gcd(&n) != one {
                return Err(Error::InvalidKey(
                    "DGK g and h must be units of Z_n other than 1",
                ));
            }
        }
        crate::arith::tune_backend();
        let mut d = Sha256::new();
        d.update(b"smlp/dgk/public-key/v1");
        for x in [&n, &g, &h] {
            let b = x.to_bytes_be();
            d.update((b.len() as u32).to_be_bytes());
            d.update(&b);
        }
        d.update(u.to_be_bytes());
        d.update(t.to_be_bytes());
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&d.finalize()[..8]);
        Ok(PublicKey {
            n,
            g,
            h,
            u,
            t,
            fingerprint: Fingerprint(fp),
            tables: Arc::default(),
        })
    }

    /// The modulus n.
    pub fn n(&self) -> BigUint {
        self.n.to_biguint()
    }
    /// The generator g (order u·v_p·v_q).
    pub fn g(&self) -> BigUint {
        self.g.to_biguint()
    }
    /// The generator h (order v_p·v_q).
    pub fn h(&self) -> BigUint {
        self.h.to_biguint()
    }
    /// The plaintext modulus u (a small prime).
    pub fn u(&self) -> u32 {
        self.u
    }
    /// The bit length t of v_p and v_q.
    pub fn t(&self) -> u32 {
        self.t
    }
    /// Bit length of n.
    pub fn bits(&self) -> u32 {
        self.n.bits() as u32
    }
    /// Short hash identifying this key (SHA-256 over n, g, h, u and t).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
    /// Bits of the randomness r of a public-key encryption: 2.5·t.
    pub fn randomness_bits(&self) -> u32 {
        self.t * 5 / 2
    }

    fn tables(&self) -> &PublicTables {
        self.tables.get_or_init(|| {
            let h = FixedBase::with_window(&self.h, &self.n, u64::from(self.randomness_bits()), 10);
            let mut g_small = Vec::with_capacity(self.u as usize);
            let mut acc = Nat::one();
            for _ in 0..self.u {
                g_small.push(acc.clone());
                acc = acc.mul_mod(&self.g, &self.n);
            }
            PublicTables { h, g_small }
        })
    }

    /// m mod u for a signed m, in [0, u).
    pub fn reduce(&self, m: i64) -> u32 {
        m.rem_euclid(i64::from(self.u)) as u32
    }

    /// Checks that `c` is a plausible ciphertext for this key: 0 < c < n (cheap range check).
    pub fn validate(&self, c: &Ciphertext) -> Result<()> {
        if c.0.is_zero() || c.0 >= self.n {
            return Err(Error::InvalidDgkCiphertext);
        }
        Ok(())
    }

    /// g^m mod n for m ∈ Z_u (reduced).
    fn g_pow(&self, m: u32) -> &Nat {
        &self.tables().g_small[(m % self.u) as usize]
    }

    /// A fresh uniform exponent of 2.5·t bits.
    fn random_exponent<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Nat {
        Nat::random_below(&Nat::one().shl(self.randomness_bits()), rng)
    }

    /// E(m) = g^m·h^r mod n for m reduced mod u and a fresh r of 2.5·t bits.
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(&self, m: i64, rng: &mut R) -> Ciphertext {
        let r = self.random_exponent(rng);
        let mut acc = Some(self.g_pow(self.reduce(m)).clone());
        self.tables().h.mul_pow(&mut acc, &r);
        Ciphertext(acc.expect("an accumulator was given"))
    }

    /// E(m) = g^m·h^r mod n for a given r (known-answer tests; r below 2^(2.5·t) uses the
    /// table, larger r a plain exponentiation).
    pub fn encrypt_with(&self, m: i64, r: &BigUint) -> Ciphertext {
        let r = Nat::from_biguint(r);
        let g = self.g_pow(self.reduce(m));
        let hr = if r.bits() <= u64::from(self.randomness_bits()) {
            self.tables().h.pow(&r)
        } else {
            self.h.pow_mod(&r, &self.n)
        };
        Ciphertext(g.mul_mod(&hr, &self.n))
    }

    /// E(a + b).
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        Ciphertext(a.0.mul_mod(&b.0, &self.n))
    }

    /// E(a + k) for a plaintext k.
    pub fn add_plain(&self, a: &Ciphertext, k: i64) -> Ciphertext {
        match self.reduce(k) {
            0 => a.clone(),
            k => Ciphertext(a.0.mul_mod(self.g_pow(k), &self.n)),
        }
    }

    /// E(k·a) for a plaintext k (reduced mod u: a short exponentiation).
    pub fn mul_plain(&self, a: &Ciphertext, k: i64) -> Ciphertext {
        match self.reduce(k) {
            0 => Ciphertext(Nat::one()),
            1 => a.clone(),
            k => Ciphertext(a.0.pow_mod(&Nat::from_u64(u64::from(k)), &self.n)),
        }
    }

    /// E(−a) (an inversion mod n; `None` for a non-unit, which no valid ciphertext is).
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext> {
        a.0.inv_mod(&self.n)
            .map(Ciphertext)
            .ok_or(Error::InvalidDgkCiphertext)
    }

    /// E(m) again with fresh randomness: c·h^r for a fresh r of 2.5·t bits.
    pub fn rerandomize<R: RngCore + CryptoRng + ?Sized>(
        &self,
        c: &Ciphertext,
        rng: &mut R,
    ) -> Ciphertext {
        let mut acc = Some(c.0.clone());
        self.tables()
            .h
            .mul_pow(&mut acc, &self.random_exponent(rng));
        Ciphertext(acc.expect("an accumulator was given"))
    }

    /// E(ρ·m) re-randomised, for a uniform ρ ∈ Z_u* drawn here: what a zero test's holder may
    /// see of a combined value (0 stays 0, anything else becomes uniform in Z_u*).
    pub fn blind<R: RngCore + CryptoRng + ?Sized>(
        &self,
        c: &Ciphertext,
        rng: &mut R,
    ) -> Ciphertext {
        let rho = 1 + (rng.next_u64() % u64::from(self.u - 1)); // bias < u/2^64
        let mut acc = Some(c.0.pow_mod(&Nat::from_u64(rho), &self.n));
        self.tables()
            .h
            .mul_pow(&mut acc, &self.random_exponent(rng));
        Ciphertext(acc.expect("an accumulator was given"))
    }
}

/// Tables of a secret key, built on first use and shared by clones.
struct SecretTables {
    /// h mod p and mod q for exponents of t bits.
    hp: FixedBase,
    hq: FixedBase,
    /// Baby steps of the discrete logarithm base g^{v_p} mod p: value bytes → exponent.
    baby: HashMap<Vec<u8>, u32>,
    /// (g^{v_p})^{−s} mod p, the giant step, and s.
    giant: Nat,
    step: u32,
}

/// A DGK secret key: the primes p, q, v_p, v_q and the public key.
#[derive(Clone)]
pub struct SecretKey {
    pk: PublicKey,
    p: Nat,
    q: Nat,
    vp: Nat,
    vq: Nat,
    /// p^−1 mod q, to recombine by CRT.
    p_inv_q: Nat,
    tables: Arc<OnceLock<SecretTables>>,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DgkSecretKey(for {:?})", self.pk)
    }
}

impl Drop for SecretKey {
    /// p, q, v_p, v_q are overwritten (GMP backend: every limb); the tables when their last
    /// holder drops.
    fn drop(&mut self) {
        for x in [
            &mut self.p,
            &mut self.q,
            &mut self.vp,
            &mut self.vq,
            &mut self.p_inv_q,
        ] {
            x.wipe();
        }
    }
}

impl Drop for SecretTables {
    fn drop(&mut self) {
        self.giant.wipe();
        for (mut k, _) in self.baby.drain() {
            zeroize::Zeroize::zeroize(&mut k);
        }
    }
}

/// An element of order exactly `order` (a product of the distinct primes in `factors`) in Z_p*,
/// as x^((p−1)/order) for random x.
fn element_of_order<R: RngCore + CryptoRng + ?Sized>(
    p: &Nat,
    order: &Nat,
    factors: &[&Nat],
    rng: &mut R,
) -> Nat {
    let one = Nat::one();
    let pm1 = p.sub(&one);
    let (cof, _) = pm1.div_rem(order);
    loop {
        let x = Nat::random_below(&pm1, rng).add(&one); // in [1, p − 1]
        let y = x.pow_mod(&cof, p);
        if factors.iter().all(|f| {
            let (rest, _) = order.div_rem(f);
            y.pow_mod(&rest, p) != one
        }) {
            return y;
        }
    }
}

/// x ≡ a (mod p), x ≡ b (mod q), x ∈ [0, pq).
fn crt(a: &Nat, b: &Nat, p: &Nat, q: &Nat, p_inv_q: &Nat) -> Nat {
    // x = a + p·((b − a)·p⁻¹ mod q)
    let a_q = a.rem(q);
    let diff = if b >= &a_q {
        b.sub(&a_q)
    } else {
        b.add(q).sub(&a_q)
    };
    a.add(&p.mul(&diff.mul_mod(p_inv_q, q)))
}

/// A prime p = 2·m·k + 1 of exactly `bits` bits with its two top bits set, for random k.
fn prime_of_form<R: RngCore + CryptoRng + ?Sized>(m: &Nat, bits: u32, rng: &mut R) -> Nat {
    let one = Nat::one();
    let two_m = m.shl(1);
    // p ∈ [2^(bits−1) + 2^(bits−2), 2^bits): k ∈ [lo, hi).
    let lo_p = one.shl(bits - 1).add(&one.shl(bits - 2));
    let (lo, _) = lo_p.div_rem(&two_m);
    let lo = lo.add(&one);
    let (hi, _) = one.shl(bits).sub(&one).div_rem(&two_m);
    let span = hi.sub(&lo);
    loop {
        let k = Nat::random_below(&span, rng).add(&lo);
        let p = two_m.mul(&k).add(&one);
        if p.bits() != u64::from(bits) || !prime::no_small_factor(&p) {
            continue;
        }
        if prime::miller_rabin(&p, 1, rng) && prime::miller_rabin(&p, prime::MR_ROUNDS - 1, rng) {
            return p;
        }
    }
}

impl SecretKey {
    /// Generates a key with an n of `bits` bits (2048 or more for real use), subgroup primes of
    /// `t` bits and the plaintext modulus `u` (a prime), from a CSPRNG.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(
        bits: u32,
        t: u32,
        u: u32,
        rng: &mut R,
    ) -> Result<Self> {
        if !(MIN_BITS..=MAX_BITS).contains(&bits) || !bits.is_multiple_of(2) {
            return Err(Error::KeySize {
                bits,
                reason: "a DGK modulus must have an even number of bits in 256..=8192",
            });
        }
        if !(3..=MAX_U).contains(&u) || !is_small_prime(u) {
            return Err(Error::InvalidKey("DGK u must be a prime in 3..=65536"));
        }
        if !(MIN_T..=MAX_T).contains(&t) {
            return Err(Error::InvalidKey("DGK t must be in 32..=512"));
        }
        // p − 1 = 2·u·v_p·k needs room for k of at least 16 bits.
        let u_bits = 32 - u.leading_zeros();
        if bits / 2 < 1 + u_bits + t + 16 {
            return Err(Error::KeySize {
                bits,
                reason: "too small for this t and u: |n|/2 must exceed t + log2(u) + 17",
            });
        }
        crate::arith::tune_backend();
        let un = Nat::from_u64(u64::from(u));
        loop {
            let vp = prime::random_prime(u64::from(t), rng);
            let vq = prime::random_prime(u64::from(t), rng);
            if vp == vq {
                continue;
            }
            let p = prime_of_form(&un.mul(&vp), bits / 2, rng);
            let q = prime_of_form(&un.mul(&vq), bits / 2, rng);
            if p == q {
                continue;
            }
            let one = Nat::one();
            // v_q must not divide p − 1 (nor v_p q − 1): then g and h have the orders claimed.
            if p.sub(&one).rem(&vq).is_zero() || q.sub(&one).rem(&vp).is_zero() {
                continue;
            }
            let n = p.mul(&q);
            if n.bits() != u64::from(bits) {
                continue;
            }
            let p_inv_q = p.inv_mod(&q).expect("distinct primes");
            let gp = element_of_order(&p, &un.mul(&vp), &[&un, &vp], rng);
            let gq = element_of_order(&q, &un.mul(&vq), &[&un, &vq], rng);
            let hp = element_of_order(&p, &vp, &[&vp], rng);
            let hq = element_of_order(&q, &vq, &[&vq], rng);
            let g = crt(&gp, &gq, &p, &q, &p_inv_q);
            let h = crt(&hp, &hq, &p, &q, &p_inv_q);
            let pk = PublicKey::from_nat(n, g, h, u, t)?;
            return Ok(SecretKey {
                pk,
                p,
                q,
                vp,
                vq,
                p_inv_q,
                tables: Arc::default(),
            });
        }
    }

    /// The secret key from its parts, checked for consistency: n = pq, v_p | p − 1,
    /// v_q | q − 1, u | p − 1 and q − 1, g of order u·v_p·v_q and h of order v_p·v_q (their
    /// powers by the claimed orders are 1, and by the orders divided by any prime factor are
    /// not, modulo p and modulo q). Not checked: primality.
    pub fn from_parts(
        p: &BigUint,
        q: &BigUint,
        vp: &BigUint,
        vq: &BigUint,
        pk: PublicKey,
    ) -> Result<Self> {
        let (p, q) = (Nat::from_biguint(p), Nat::from_biguint(q));
        let (vp, vq) = (Nat::from_biguint(vp), Nat::from_biguint(vq));
        let one = Nat::one();
        let bad = |why: &'static str| Err(Error::InvalidKey(why));
        if p.mul(&q) != pk.n || p == q || p <= one || q <= one {
            return bad("DGK p·q is not the public modulus");
        }
        let un = Nat::from_u64(u64::from(pk.u));
        for (prime, v) in [(&p, &vp), (&q, &vq)] {
            let pm1 = prime.sub(&one);
            if v.is_zero() || !pm1.rem(v).is_zero() || !pm1.rem(&un).is_zero() {
                return bad("DGK v_p, v_q and u must divide p − 1 and q − 1");
            }
            if v.bits() != u64::from(pk.t) {
                return bad("DGK v_p and v_q must have t bits");
            }
        }
        let order_is = |x: &Nat, m: &Nat, factors: &[&Nat]| {
            let full: Nat = factors.iter().fold(one.clone(), |a, f| a.mul(f));
            x.rem(m).pow_mod(&full, m) == one
                && factors.iter().all(|f| {
                    let (rest, _) = full.div_rem(f);
                    x.rem(m).pow_mod(&rest, m) != one
                })
        };
        if !order_is(&pk.g, &p, &[&un, &vp]) || !order_is(&pk.g, &q, &[&un, &vq]) {
            return bad("DGK g does not have order u·v_p·v_q");
        }
        if !order_is(&pk.h, &p, &[&vp]) || !order_is(&pk.h, &q, &[&vq]) {
            return bad("DGK h does not have order v_p·v_q");
        }
        let p_inv_q = p
            .inv_mod(&q)
            .ok_or(Error::InvalidKey("DGK p and q must be coprime"))?;
        Ok(SecretKey {
            pk,
            p,
            q,
            vp,
            vq,
            p_inv_q,
            tables: Arc::default(),
        })
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.pk
    }

    /// The secret primes (p, q, v_p, v_q), for writing the key out.
    pub fn parts(&self) -> (BigUint, BigUint, BigUint, BigUint) {
        (
            self.p.to_biguint(),
            self.q.to_biguint(),
            self.vp.to_biguint(),
            self.vq.to_biguint(),
        )
    }

    fn tables(&self) -> &SecretTables {
        self.tables.get_or_init(|| {
            let t = u64::from(self.pk.t);
            let hp = FixedBase::new(&self.pk.h.rem(&self.p), &self.p, t);
            let hq = FixedBase::new(&self.pk.h.rem(&self.q), &self.q, t);
            // Discrete logarithms base G = g^{v_p} mod p (order u): baby steps G^j, j < s.
            let base = self.pk.g.rem(&self.p).pow_mod(&self.vp, &self.p);
            let step = (f64::from(self.pk.u).sqrt().ceil() as u32).max(1);
            let mut baby = HashMap::with_capacity(step as usize);
            let mut acc = Nat::one();
            for j in 0..step {
                baby.entry(acc.to_bytes_be()).or_insert(j);
                acc = acc.mul_mod(&base, &self.p);
            }
            // acc = G^s; the giant step multiplies by G^{−s}.
            let giant = acc.inv_mod(&self.p).expect("a power of a unit mod a prime");
            SecretTables {
                hp,
                hq,
                baby,
                giant,
                step,
            }
        })
    }

    /// c^{v_p} mod p: the ciphertext's plaintext, in the exponent of g^{v_p} (order u).
    /// Constant time in v_p and p with GMP.
    fn project(&self, c: &Ciphertext) -> Result<Nat> {
        self.pk.validate(c)?;
        Ok(c.0.rem(&self.p).pow_mod_secret(&self.vp, &self.p))
    }

    /// Whether `c` encrypts 0 (mod u): one exponentiation by v_p modulo p.
    pub fn is_zero(&self, c: &Ciphertext) -> Result<bool> {
        Ok(self.project(c)? == Nat::one())
    }

    /// The plaintext m ∈ [0, u) of `c` (baby-step giant-step, about 2√u products).
    pub fn decrypt(&self, c: &Ciphertext) -> Result<u32> {
        let mut y = self.project(c)?;
        let tab = self.tables();
        for i in 0..=tab.step {
            if let Some(j) = tab.baby.get(&y.to_bytes_be()) {
                let m = i * tab.step + j;
                if m < self.pk.u {
                    return Ok(m);
                }
            }
            y = y.mul_mod(&tab.giant, &self.p);
        }
        Err(Error::InvalidDgkCiphertext)
    }

    /// E(m) with exactly uniform randomness in ⟨h⟩: h^r by CRT from r_p ∈ [0, v_p) and
    /// r_q ∈ [0, v_q) (two t-bit table exponentiations modulo the primes).
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(&self, m: i64, rng: &mut R) -> Ciphertext {
        let tab = self.tables();
        let a = tab.hp.pow(&Nat::random_below(&self.vp, rng));
        let b = tab.hq.pow(&Nat::random_below(&self.vq, rng));
        let hr = crt(&a, &b, &self.p, &self.q, &self.p_inv_q);
        Ciphertext(hr.mul_mod(self.pk.g_pow(self.pk.reduce(m)), &self.pk.n))
    }
}

// ---------------------------------------------------------------------------------------------
// serde

#[derive(Serialize, Deserialize)]
struct PublicKeyRepr {
    #[serde(with = "serde_nat")]
    n: Nat,
    #[serde(with = "serde_nat")]
    g: Nat,
    #[serde(with = "serde_nat")]
    h: Nat,
    u: u32,
    t: u32,
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        PublicKeyRepr {
            n: self.n.clone(),
            g: self.g.clone(),
            h: self.h.clone(),
            u: self.u,
            t: self.t,
        }
        .serialize(s)
    }
}
impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = PublicKeyRepr::deserialize(d)?;
        PublicKey::from_nat(r.n, r.g, r.h, r.u, r.t).map_err(serde::de::Error::custom)
    }
}

#[derive(Serialize, Deserialize)]
struct SecretKeyRepr {
    public: PublicKey,
    #[serde(with = "serde_nat")]
    p: Nat,
    #[serde(with = "serde_nat")]
    q: Nat,
    #[serde(with = "serde_nat")]
    vp: Nat,
    #[serde(with = "serde_nat")]
    vq: Nat,
}

impl Serialize for SecretKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        SecretKeyRepr {
            public: self.pk.clone(),
            p: self.p.clone(),
            q: self.q.clone(),
            vp: self.vp.clone(),
            vq: self.vq.clone(),
        }
        .serialize(s)
    }
}
impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = SecretKeyRepr::deserialize(d)?;
        SecretKey::from_parts(
            &r.p.to_biguint(),
            &r.q.to_biguint(),
            &r.vp.to_biguint(),
            &r.vq.to_biguint(),
            r.public,
        )
        .map_err(serde::de::Error::custom)
    }
}

/// The smallest prime above `x` (for choosing u: above every value a comparison combines).
pub fn prime_above(x: u32) -> Option<u32> {
    (x.checked_add(1)?..=MAX_U).find(|&c| is_small_prime(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn key(seed: u64) -> SecretKey {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        SecretKey::generate(512, 64, 227, &mut rng).unwrap()
    }

    #[test]
    fn generated_keys_pass_their_own_consistency_checks() {
        let sk = key(1);
        let (p, q, vp, vq) = sk.parts();
        let again = SecretKey::from_parts(&p, &q, &vp, &vq, sk.public_key().clone()).unwrap();
        assert_eq!(again.public_key(), sk.public_key());
        assert_eq!(sk.public_key().bits(), 512);
        // Swapping g and h breaks the order checks.
        let pk = sk.public_key();
        let swapped = PublicKey::from_parts(&pk.n(), &pk.h(), &pk.g(), pk.u(), pk.t()).unwrap();
        assert!(SecretKey::from_parts(&p, &q, &vp, &vq, swapped).is_err());
    }

    #[test]
    fn prime_above_finds_the_next_prime() {
        assert_eq!(prime_above(223), Some(227));
        assert_eq!(prime_above(2), Some(3));
        assert_eq!(prime_above(MAX_U), None);
    }
}
