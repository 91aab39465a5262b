//! Key generation, the public key (encryption and homomorphic operations) and the secret key
//! (CRT decryption and CRT encryption for the key holder).

use crate::arith::mont::{Elem, Montgomery};
use crate::arith::{Nat, NatOps};
use crate::error::{Error, Result};
use crate::fixed_base::{exponent_bits, fixed_residue, FixedBase};
use crate::prime;
use num_bigint::{BigInt, BigUint, Sign};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Smallest modulus accepted for real use.
pub const MIN_SECURE_BITS: u32 = 2048;
/// Smallest modulus accepted at all (tests, with an explicit opt-in).
pub const MIN_TEST_BITS: u32 = 256;
/// Largest modulus accepted.
pub const MAX_BITS: u32 = 8192;
/// Shortest binary encoding of a ciphertext that decoding accepts: 32 bytes. A ciphertext of a
/// key of at least [`MIN_TEST_BITS`] bits (Paillier: an element of Z*_{n²}, n² ≥ 2^510; DGK:
/// of Z*_n with n ≥ 2^511) is shorter with probability below 2^-254; shorter ones are refused
/// while decoding, so every ciphertext costs a peer at least 32 wire bytes (about half of
/// what it then takes in memory).
pub const MIN_CIPHERTEXT_BYTES: usize = 32;

/// Short public-key fingerprint: the first 8 bytes of SHA-256 over the modulus, shown in hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 8]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl Fingerprint {
    /// Error unless `self == expected`.
    pub fn check(&self, expected: &Fingerprint) -> Result<()> {
        if self == expected {
            Ok(())
        } else {
            Err(Error::KeyMismatch {
                expected: expected.to_string(),
                found: self.to_string(),
            })
        }
    }
}

/// A Paillier ciphertext, an element of Z*_{n^2}.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ciphertext(pub(crate) Nat);

ciphertext_newtype!(Ciphertext, "Ciphertext");

impl Ciphertext {
    /// Big-endian bytes of the ciphertext.
    pub fn to_bytes_be(&self) -> Vec<u8> {
        self.0.to_bytes_be()
    }
    /// A ciphertext from big-endian bytes; check it with [`PublicKey::validate`] before use.
    pub fn from_bytes_be(b: &[u8]) -> Self {
        Ciphertext(Nat::from_bytes_be(b))
    }
}

/// Precomputed encryption randomness ρ = r^n mod n^2 (the expensive part of an encryption).
#[derive(Clone, PartialEq, Eq)]
pub struct Randomizer(pub(crate) Nat);

impl fmt::Debug for Randomizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Randomizer(..)")
    }
}

/// Paillier public key with g = n + 1.
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) n: Nat,
    pub(crate) n2: Nat,
    pub(crate) half_n: Nat,
    fingerprint: Fingerprint,
    /// Powers of the fixed n-th residue h_s mod n², built on the first randomizer (shared by
    /// clones).
    fixed: Arc<OnceLock<FixedBase>>,
}

impl PartialEq for PublicKey {
    fn eq(&self, o: &Self) -> bool {
        self.n == o.n
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} bits, {})", self.bits(), self.fingerprint)
    }
}

fn to_nat_abs(v: &BigInt) -> Nat {
    Nat::from_biguint(v.magnitude())
}

/// Powers of one ciphertext for many multiplications by short scalars, made once
/// ([`PublicKey::powers`]) and used in many [`PublicKey::linear_combination_with`] calls: a comb
/// table c^(k·16^d) mod n² (k < 16), ⌈bits/4⌉·15 products to build, then ⌈bits/4⌉ products and no
/// squaring per scalar (about 1.2·bits operations for an exponentiation). For 153-bit scalars it
/// pays from about five uses in combinations of few terms (combinations of many terms share
/// their squarings: see [`JointPowers`]). 300 KiB at 2048 bits.
#[derive(Clone)]
pub struct CiphertextPowers {
    base: Ciphertext,
    table: FixedBase,
}

impl fmt::Debug for CiphertextPowers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CiphertextPowers({} bits)", self.table.exp_bits())
    }
}

/// The products of every subset of up to [`JointPowers::MAX`] ciphertexts
/// ([`PublicKey::joint_powers`]), for many combinations of those same ciphertexts with different
/// scalars ([`PublicKey::linear_combination_joint`]): each bit position of the scalars then costs
/// one product for the whole group instead of one per ciphertext (Straus' method with the
/// ciphertexts' bits as one window). A gradient over a mini-batch of 8 combines the same 8
/// ciphertexts (one per sample) with 30 different blinds; a batched forward pass the same row
/// of weights with every sample's blinds. 2^g − 1 products to build, 128 KiB for 8 at 2048 bits.
#[derive(Clone)]
pub struct JointPowers {
    ctx: Montgomery,
    /// The 2^len subset products in Montgomery form, indexed by the subset's bit mask.
    table: Vec<Elem>,
}

impl JointPowers {
    /// The most ciphertexts in one group.
    pub const MAX: usize = 8;

    /// How many ciphertexts the group has.
    pub fn len(&self) -> usize {
        self.table.len().trailing_zeros() as usize
    }

    /// Whether the group is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for JointPowers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JointPowers({} ciphertexts)", self.len())
    }
}

/// Straus' window width: the powers b^k, k < 2^W, of every term.
const W: u64 = 4;

/// b^k for k < 2^W, in Montgomery form.
fn window_table(b: &Nat, ctx: &Montgomery) -> Vec<Elem> {
    let b = ctx.enter(b);
    let mut t = Vec::with_capacity(1 << W);
    t.push(ctx.one());
    t.push(b.clone());
    for i in 2..(1usize << W) {
        let next = ctx.mul(&t[i - 1], &b);
        t.push(next);
    }
    t
}

/// Π bᵢ^eᵢ mod m (odd). Few terms or long exponents: one exponentiation each (the backend's
/// Montgomery ladder); many short exponents: Straus' interleaved 4-bit windows, which share the
/// squarings among all terms, in Montgomery form.
fn multi_exp(terms: &[(&Nat, Nat)], m: &Nat) -> Nat {
    let max_bits = terms.iter().map(|(_, e)| e.bits()).max().unwrap_or(0);
    if terms.len() < 4 || max_bits > 512 {
        return terms
            .iter()
            .fold(Nat::one(), |acc, (b, e)| acc.mul_mod(&b.pow_mod(e, m), m));
    }
    let ctx = Montgomery::new(m);
    let tables: Vec<Vec<Elem>> = terms.iter().map(|(b, _)| window_table(b, &ctx)).collect();
    let digits = max_bits.div_ceil(W);
    let mut acc = ctx.one();
    for d in (0..digits).rev() {
        if d + 1 != digits {
            for _ in 0..W {
                ctx.square_assign(&mut acc);
            }
        }
        for ((_, e), t) in terms.iter().zip(&tables) {
            let mut digit = 0usize;
            for bit in 0..W {
                if e.bit(d * W + bit) {
                    digit |= 1 << bit;
                }
            }
            if digit != 0 {
                ctx.mul_assign(&mut acc, &t[digit]);
            }
        }
    }
    ctx.leave(&acc)
}

impl PublicKey {
    /// A public key from its modulus. Checks that n is odd and of an accepted size.
    pub fn from_modulus(n: &BigUint) -> Result<Self> {
        let bits = u32::try_from(n.bits()).unwrap_or(u32::MAX);
        if !(MIN_TEST_BITS..=MAX_BITS).contains(&bits) {
            return Err(Error::KeySize {
                bits,
                reason: "modulus must have 256 to 8192 bits",
            });
        }
        if !n.bit(0) {
            return Err(Error::InvalidKey("modulus must be odd"));
        }
        Ok(Self::from_nat(Nat::from_biguint(n)))
    }

    pub(crate) fn from_nat(n: Nat) -> Self {
        crate::arith::tune_backend();
        let n2 = n.mul(&n);
        let half_n = n.shr(1);
        let mut h = Sha256::new();
        h.update(b"smlp/paillier/public-key/v1");
        h.update(n.to_bytes_be());
        let d = h.finalize();
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&d[..8]);
        PublicKey {
            n,
            n2,
            half_n,
            fingerprint: Fingerprint(fp),
            fixed: Arc::default(),
        }
    }

    /// The modulus n.
    pub fn n(&self) -> BigUint {
        self.n.to_biguint()
    }
    /// Bit length of n.
    pub fn bits(&self) -> u32 {
        self.n.bits() as u32
    }
    /// Short hash identifying this key.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
    /// Largest plaintext magnitude: (n - 1) / 2. Plaintexts are read as signed in
    /// [-(n-1)/2, (n-1)/2].
    pub fn max_plaintext(&self) -> BigInt {
        BigInt::from_biguint(Sign::Plus, self.half_n.to_biguint())
    }

    /// Encodes a signed integer into Z_n, refusing values outside [-(n-1)/2, (n-1)/2].
    pub(crate) fn encode(&self, m: &BigInt) -> Result<Nat> {
        let mag = to_nat_abs(m);
        if mag > self.half_n {
            return Err(Error::PlaintextOutOfRange);
        }
        Ok(match m.sign() {
            Sign::Minus => self.n.sub(&mag),
            _ => mag,
        })
    }

    /// Encodes a signed integer into Z_n (reduction mod n): the public form of the encoding.
    pub fn encode_signed(&self, m: &BigInt) -> Result<BigUint> {
        self.encode(m).map(|x| x.to_biguint())
    }

    /// Reads m ∈ [0, n) as a signed integer: m > n/2 reads as m - n (m ≥ n is reduced mod n).
    pub fn decode_signed(&self, m: &BigUint) -> BigInt {
        let m = Nat::from_biguint(m);
        let m = if m >= self.n { m.rem(&self.n) } else { m };
        self.decode_nat(&m)
    }

    pub(crate) fn decode_nat(&self, m: &Nat) -> BigInt {
        if m > &self.half_n {
            -BigInt::from_biguint(Sign::Plus, self.n.sub(m).to_biguint())
        } else {
            BigInt::from_biguint(Sign::Plus, m.to_biguint())
        }
    }

    /// Checks that `c` is a plausible ciphertext for this key: 0 < c < n^2 (cheap range check).
    pub fn validate(&self, c: &Ciphertext) -> Result<()> {
        if c.0.is_zero() || c.0 >= self.n2 {
            return Err(Error::InvalidCiphertext);
        }
        Ok(())
    }

    /// (1 + m n) mod n^2 for m already in Z_n.
    fn g_pow(&self, m: &Nat) -> Nat {
        m.mul(&self.n).add(&Nat::one()).rem(&self.n2)
    }

    /// Fresh encryption randomness ρ = h_sʳ mod n² for the key's fixed n-th residue h_s and a
    /// uniform r of |n|/2 bits, from a table of powers of h_s (one product per byte of r; the
    /// table is built on the first call). See the `fixed_base` module docs for the assumption.
    pub fn randomizer<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Randomizer {
        let r = self.short_exponent(rng);
        Randomizer(self.fixed_base().pow(&r))
    }

    /// ρ = rⁿ mod n² for a fresh uniform unit r: the textbook randomizer, one full
    /// exponentiation (what [`randomizer`](Self::randomizer) did before fixed-base randomness).
    pub fn randomizer_full<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Randomizer {
        let r = self.random_unit(rng);
        Randomizer(r.pow_mod(&self.n, &self.n2))
    }

    /// The table of powers of h_s mod n² (built once per key, about |n|/8 · 256 products).
    fn fixed_base(&self) -> &FixedBase {
        self.fixed.get_or_init(|| {
            let hs = fixed_residue(&self.n, &self.n2);
            FixedBase::new(&hs, &self.n2, exponent_bits(&self.n))
        })
    }

    /// A uniform exponent of |n|/2 bits for h_sʳ.
    pub(crate) fn short_exponent<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Nat {
        Nat::random_below(&Nat::one().shl(exponent_bits(&self.n) as u32), rng)
    }

    pub(crate) fn random_unit<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Nat {
        loop {
            let r = Nat::random_below(&self.n, rng);
            // A non-unit would reveal a factor of n; probability ~2^-1023, but check anyway.
            if !r.is_zero() && r.gcd(&self.n) == Nat::one() {
                return r;
            }
        }
    }

    /// ρ = r^n mod n^2 for a given r ∈ Z*_n.
    pub fn randomizer_from(&self, r: &BigUint) -> Result<Randomizer> {
        let r = Nat::from_biguint(r);
        if r.is_zero() || r >= self.n || r.gcd(&self.n) != Nat::one() {
            return Err(Error::InvalidRandomness);
        }
        Ok(Randomizer(r.pow_mod(&self.n, &self.n2)))
    }

    /// Encrypts the raw plaintext m ∈ [0, n) with the given r ∈ Z*_n: c = (1 + m n) r^n mod n^2.
    /// Deterministic; for known-answer tests and interoperability.
    pub fn encrypt_with(&self, m: &BigUint, r: &BigUint) -> Result<Ciphertext> {
        let m = Nat::from_biguint(m);
        if m >= self.n {
            return Err(Error::PlaintextOutOfRange);
        }
        let rho = self.randomizer_from(r)?;
        Ok(Ciphertext(self.g_pow(&m).mul_mod(&rho.0, &self.n2)))
    }

    /// Encrypts with precomputed randomness: one multiplication mod n^2.
    pub fn encrypt_with_randomizer(&self, m: &BigInt, rho: &Randomizer) -> Result<Ciphertext> {
        let m = self.encode(m)?;
        Ok(Ciphertext(self.g_pow(&m).mul_mod(&rho.0, &self.n2)))
    }

    /// The deterministic encoding (1 + m n) of m, with no randomness: NOT hiding. Use only as an
    /// operand of homomorphic operations whose result is re-randomised before it leaves.
    pub fn trivial(&self, m: &BigInt) -> Result<Ciphertext> {
        Ok(Ciphertext(self.g_pow(&self.encode(m)?)))
    }

    /// Fresh randomness for `c`, same plaintext.
    pub fn rerandomize<R: RngCore + CryptoRng + ?Sized>(
        &self,
        c: &Ciphertext,
        rng: &mut R,
    ) -> Ciphertext {
        self.rerandomize_with(c, &self.randomizer(rng))
    }

    /// Re-randomises `c` with precomputed randomness.
    pub fn rerandomize_with(&self, c: &Ciphertext, rho: &Randomizer) -> Ciphertext {
        Ciphertext(c.0.mul_mod(&rho.0, &self.n2))
    }

    /// ⟦a + b⟧.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        Ciphertext(a.0.mul_mod(&b.0, &self.n2))
    }

    /// ⟦-a⟧ (one modular inversion). Errors if `a` is not invertible mod n^2.
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext> {
        a.0.inv_mod(&self.n2)
            .map(Ciphertext)
            .ok_or(Error::InvalidCiphertext)
    }

    /// ⟦a - b⟧ (one modular inversion).
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        Ok(self.add(a, &self.neg(b)?))
    }

    /// ⟦a + m⟧ for a signed plaintext m.
    pub fn add_plain(&self, a: &Ciphertext, m: &BigInt) -> Result<Ciphertext> {
        let m = self.encode(m)?;
        Ok(Ciphertext(a.0.mul_mod(&self.g_pow(&m), &self.n2)))
    }

    /// |k| reduced mod n: the exponent of a scalar multiplication (the sign is applied apart).
    fn scalar_magnitude(&self, k: &BigInt) -> Nat {
        let mag = to_nat_abs(k);
        if mag >= self.n {
            mag.rem(&self.n)
        } else {
            mag
        }
    }

    /// ⟦k · a⟧ for a signed scalar k of any size (k is reduced mod n).
    ///
    /// A negative k of fewer than |n|/2 bits costs an exponentiation with |k| and one inversion;
    /// a larger one is reduced to n - |k| mod n (no inversion).
    pub fn mul_plain(&self, a: &Ciphertext, k: &BigInt) -> Result<Ciphertext> {
        let mag = self.scalar_magnitude(k);
        match k.sign() {
            Sign::Minus if mag.bits() * 2 < self.n.bits() => {
                self.neg(&Ciphertext(a.0.pow_mod(&mag, &self.n2)))
            }
            Sign::Minus => Ok(Ciphertext(a.0.pow_mod(&self.n.sub(&mag), &self.n2))),
            _ => Ok(Ciphertext(a.0.pow_mod(&mag, &self.n2))),
        }
    }

    /// ⟦k · a⟧ for a small signed scalar.
    pub fn mul_i64(&self, a: &Ciphertext, k: i64) -> Result<Ciphertext> {
        self.mul_plain(a, &BigInt::from(k))
    }

    /// ⟦Σ kᵢ·aᵢ + constant⟧ with a single modular inversion for all negative terms.
    pub fn linear_combination(
        &self,
        terms: &[(&Ciphertext, &BigInt)],
        constant: &BigInt,
    ) -> Result<Ciphertext> {
        self.linear_combination_with(&[], terms, constant)
    }

    /// Powers of `c` for many multiplications by scalars of up to `max_bits` bits (see
    /// [`CiphertextPowers`]).
    pub fn powers(&self, c: &Ciphertext, max_bits: u32) -> CiphertextPowers {
        CiphertextPowers {
            base: c.clone(),
            table: FixedBase::with_window(&c.0, &self.n2, u64::from(max_bits), 4),
        }
    }

    /// [`linear_combination`](Self::linear_combination) with some terms given by precomputed
    /// [`powers`](Self::powers) of their ciphertext: ⟦Σ kᵢ·mᵢ + Σ k'ⱼ·m'ⱼ + constant⟧. A scalar
    /// longer than its table is multiplied without the table; powers made with another key are
    /// `KeyMismatch`.
    pub fn linear_combination_with(
        &self,
        powers: &[(&CiphertextPowers, &BigInt)],
        terms: &[(&Ciphertext, &BigInt)],
        constant: &BigInt,
    ) -> Result<Ciphertext> {
        let mut pos_terms: Vec<(&Nat, Nat)> = Vec::new();
        let mut neg_terms: Vec<(&Nat, Nat)> = Vec::new();
        let (mut pos_acc, mut neg_acc): (Option<Nat>, Option<Nat>) = (None, None);
        for (p, k) in powers {
            if p.table.modulus() != &self.n2 {
                return Err(Error::KeyMismatch {
                    expected: "powers of a ciphertext under this key".into(),
                    found: "powers made with another key".into(),
                });
            }
            let mag = self.scalar_magnitude(k);
            if mag.is_zero() {
                continue;
            }
            let negative = k.sign() == Sign::Minus;
            if mag.bits() <= p.table.exp_bits() {
                p.table
                    .mul_pow(if negative { &mut neg_acc } else { &mut pos_acc }, &mag);
            } else if negative {
                neg_terms.push((&p.base.0, mag));
            } else {
                pos_terms.push((&p.base.0, mag));
            }
        }
        for (c, k) in terms {
            let mag = self.scalar_magnitude(k);
            if mag.is_zero() {
                continue;
            }
            match k.sign() {
                Sign::Minus => neg_terms.push((&c.0, mag)),
                _ => pos_terms.push((&c.0, mag)),
            }
        }
        let mut pos = self.g_pow(&self.encode(constant)?);
        if !pos_terms.is_empty() {
            pos = pos.mul_mod(&multi_exp(&pos_terms, &self.n2), &self.n2);
        }
        if let Some(a) = pos_acc {
            pos = pos.mul_mod(&a, &self.n2);
        }
        if !neg_terms.is_empty() {
            let m = multi_exp(&neg_terms, &self.n2);
            neg_acc = Some(match neg_acc {
                Some(a) => a.mul_mod(&m, &self.n2),
                None => m,
            });
        }
        if let Some(neg) = neg_acc {
            let inv = neg.inv_mod(&self.n2).ok_or(Error::InvalidCiphertext)?;
            pos = pos.mul_mod(&inv, &self.n2);
        }
        Ok(Ciphertext(pos))
    }

    /// The subset products of `cs` (at most [`JointPowers::MAX`]; see [`JointPowers`]).
    pub fn joint_powers(&self, cs: &[&Ciphertext]) -> Result<JointPowers> {
        if cs.len() > JointPowers::MAX {
            return Err(Error::InvalidInput(
                "more ciphertexts than one joint table holds",
            ));
        }
        let ctx = Montgomery::new(&self.n2);
        let mut table = Vec::with_capacity(1 << cs.len());
        table.push(ctx.one());
        for c in cs {
            let c = ctx.enter(&c.0);
            let half = table.len();
            for i in 0..half {
                let next = if i == 0 {
                    c.clone()
                } else {
                    ctx.mul(&table[i], &c)
                };
                table.push(next);
            }
        }
        Ok(JointPowers { ctx, table })
    }

    /// ⟦Σ_g Σ_k s_gk · m_gk + constant⟧ for groups of ciphertexts given by their
    /// [`joint_powers`](Self::joint_powers) and one scalar per ciphertext of each group (any
    /// sign and size; a group with the wrong number of scalars is `InvalidInput`, a table made
    /// with another key `KeyMismatch`). The squarings are shared by all groups; scalars of
    /// both signs take two passes and one inversion.
    pub fn linear_combination_joint(
        &self,
        groups: &[(&JointPowers, &[BigInt])],
        constant: &BigInt,
    ) -> Result<Ciphertext> {
        let mut mags: Vec<Vec<(bool, Nat)>> = Vec::with_capacity(groups.len());
        for (g, scalars) in groups {
            if g.ctx.modulus() != &self.n2 {
                return Err(Error::KeyMismatch {
                    expected: "joint powers of ciphertexts under this key".into(),
                    found: "joint powers made with another key".into(),
                });
            }
            if scalars.len() != g.len() {
                return Err(Error::InvalidInput(
                    "one scalar per ciphertext of a joint group",
                ));
            }
            mags.push(
                scalars
                    .iter()
                    .map(|k| (k.sign() == Sign::Minus, self.scalar_magnitude(k)))
                    .collect(),
            );
        }
        let pass = |negative: bool| -> Option<Nat> {
            let bits = mags
                .iter()
                .flatten()
                .filter(|(neg, _)| *neg == negative)
                .map(|(_, m)| m.bits())
                .max()
                .unwrap_or(0);
            if bits == 0 {
                return None;
            }
            let ctx = &groups.first()?.0.ctx;
            let mut acc = ctx.one();
            for d in (0..bits).rev() {
                if d + 1 != bits {
                    ctx.square_assign(&mut acc);
                }
                for ((g, _), ms) in groups.iter().zip(&mags) {
                    let mut idx = 0usize;
                    for (k, (neg, m)) in ms.iter().enumerate() {
                        if *neg == negative && m.bit(d) {
                            idx |= 1 << k;
                        }
                    }
                    if idx != 0 {
                        ctx.mul_assign(&mut acc, &g.table[idx]);
                    }
                }
            }
            Some(ctx.leave(&acc))
        };
        let mut out = self.g_pow(&self.encode(constant)?);
        if let Some(p) = pass(false) {
            out = out.mul_mod(&p, &self.n2);
        }
        if let Some(n) = pass(true) {
            let inv = n.inv_mod(&self.n2).ok_or(Error::InvalidCiphertext)?;
            out = out.mul_mod(&inv, &self.n2);
        }
        Ok(Ciphertext(out))
    }

    /// Packs ciphertexts into one: ⟦Σⱼ mⱼ · 2^(j·slot_bits)⟧ (Horner: (k−1)·slot_bits squarings).
    ///
    /// The caller keeps every slot value in [0, 2^slot_bits) and the total below n, so the
    /// key holder can unpack the slots after one decryption.
    pub fn pack(&self, cts: &[&Ciphertext], slot_bits: u32) -> Ciphertext {
        let mut it = cts.iter().rev();
        let Some(first) = it.next() else {
            return Ciphertext(Nat::one());
        };
        // Horner in Montgomery form: slot_bits squarings and one product per further slot.
        let ctx = Montgomery::new(&self.n2);
        let mut acc = ctx.enter(&first.0);
        for c in it {
            for _ in 0..slot_bits {
                ctx.square_assign(&mut acc);
            }
            ctx.mul_assign(&mut acc, &ctx.enter(&c.0));
        }
        Ciphertext(ctx.leave(&acc))
    }

    /// ⟦Σ aᵢ⟧.
    pub fn sum<'a>(&self, cs: impl IntoIterator<Item = &'a Ciphertext>) -> Ciphertext {
        Ciphertext(
            cs.into_iter()
                .fold(Nat::one(), |acc, c| acc.mul_mod(&c.0, &self.n2)),
        )
    }
}

/// Paillier secret key: the primes p and q, with the values CRT decryption and encryption need.
#[derive(Clone)]
pub struct SecretKey {
    pk: PublicKey,
    p: Nat,
    q: Nat,
    p2: Nat,
    q2: Nat,
    p_minus_1: Nat,
    q_minus_1: Nat,
    /// h_p = ((p-1) q)^-1 mod p, i.e. L_p(g^(p-1) mod p^2)^-1.
    hp: Nat,
    hq: Nat,
    /// p^-1 mod q, to recombine m mod n.
    p_inv_q: Nat,
    /// (p^2)^-1 mod q^2, to recombine randomness mod n^2.
    p2_inv_q2: Nat,
    /// q mod (p - 1) and p mod (q - 1), exponents of the CRT n-th residue.
    q_mod_pm1: Nat,
    p_mod_qm1: Nat,
    /// Powers of h_s mod p² and mod q², built on the first randomizer (shared by clones).
    crt_fixed: Arc<OnceLock<(FixedBase, FixedBase)>>,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(for {:?})", self.pk)
    }
}

impl Drop for SecretKey {
    /// The primes and the values derived from them are overwritten (GMP backend: every limb;
    /// see [`NatOps::wipe`]); the CRT tables when their last holder drops.
    fn drop(&mut self) {
        for x in [
            &mut self.p,
            &mut self.q,
            &mut self.p2,
            &mut self.q2,
            &mut self.p_minus_1,
            &mut self.q_minus_1,
            &mut self.hp,
            &mut self.hq,
            &mut self.p_inv_q,
            &mut self.p2_inv_q2,
            &mut self.q_mod_pm1,
            &mut self.p_mod_qm1,
        ] {
            x.wipe();
        }
    }
}

impl SecretKey {
    /// Generates a key pair with an n of `bits` bits (2048 or more) from a CSPRNG.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(bits: u32, rng: &mut R) -> Result<Self> {
        if bits < MIN_SECURE_BITS {
            return Err(Error::KeySize {
                bits,
                reason: "below 2048 bits; use generate_insecure_for_tests for small test keys",
            });
        }
        Self::generate_unchecked(bits, rng)
    }

    /// Generates a small key (256 bits or more) for tests only. Not secure below 2048 bits.
    pub fn generate_insecure_for_tests<R: RngCore + CryptoRng + ?Sized>(
        bits: u32,
        rng: &mut R,
    ) -> Result<Self> {
        Self::generate_unchecked(bits, rng)
    }

    fn generate_unchecked<R: RngCore + CryptoRng + ?Sized>(bits: u32, rng: &mut R) -> Result<Self> {
        if !(MIN_TEST_BITS..=MAX_BITS).contains(&bits) || !bits.is_multiple_of(2) {
            return Err(Error::KeySize {
                bits,
                reason: "must be an even number of bits in 256..=8192",
            });
        }
        crate::arith::tune_backend();
        loop {
            let p = prime::random_prime(u64::from(bits / 2), rng);
            let q = prime::random_prime(u64::from(bits / 2), rng);
            if p == q {
                continue;
            }
            let n = p.mul(&q);
            let phi = p.sub(&Nat::one()).mul(&q.sub(&Nat::one()));
            if n.bits() != u64::from(bits) || n.gcd(&phi) != Nat::one() {
                continue;
            }
            return Self::from_primes_nat(p, q);
        }
    }

    /// The secret key for primes p and q (checked for consistency, not for primality).
    pub fn from_primes(p: &BigUint, q: &BigUint) -> Result<Self> {
        Self::from_primes_nat(Nat::from_biguint(p), Nat::from_biguint(q))
    }

    fn from_primes_nat(p: Nat, q: Nat) -> Result<Self> {
        let one = Nat::one();
        if p <= Nat::from_u64(2) || q <= Nat::from_u64(2) || !p.is_odd() || !q.is_odd() || p == q {
            return Err(Error::InvalidKey("p and q must be distinct odd primes"));
        }
        let n = p.mul(&q);
        let bits = n.bits() as u32;
        if !(MIN_TEST_BITS..=MAX_BITS).contains(&bits) {
            return Err(Error::KeySize {
                bits,
                reason: "modulus must have 256 to 8192 bits",
            });
        }
        let p_minus_1 = p.sub(&one);
        let q_minus_1 = q.sub(&one);
        if n.gcd(&p_minus_1.mul(&q_minus_1)) != one {
            return Err(Error::InvalidKey("gcd(n, phi(n)) must be 1"));
        }
        let p2 = p.mul(&p);
        let q2 = q.mul(&q);
        let inv = |a: &Nat, m: &Nat| {
            a.inv_mod(m)
                .ok_or(Error::InvalidKey("p and q are not coprime"))
        };
        // L_p(g^(p-1) mod p^2) = (p-1) q mod p for g = n + 1.
        let hp = inv(&p_minus_1.mul(&q).rem(&p), &p)?;
        let hq = inv(&q_minus_1.mul(&p).rem(&q), &q)?;
        let p_inv_q = inv(&p.rem(&q), &q)?;
        let p2_inv_q2 = inv(&p2.rem(&q2), &q2)?;
        let q_mod_pm1 = q.rem(&p_minus_1);
        let p_mod_qm1 = p.rem(&q_minus_1);
        Ok(SecretKey {
            pk: PublicKey::from_nat(n),
            p,
            q,
            p2,
            q2,
            p_minus_1,
            q_minus_1,
            hp,
            hq,
            p_inv_q,
            p2_inv_q2,
            q_mod_pm1,
            p_mod_qm1,
            crt_fixed: Arc::default(),
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.pk
    }
    /// The primes (p, q).
    pub fn primes(&self) -> (BigUint, BigUint) {
        (self.p.to_biguint(), self.q.to_biguint())
    }

    /// Decrypts to the raw plaintext in [0, n) with CRT (constant-time exponentiation under `gmp`).
    pub fn decrypt_raw(&self, c: &Ciphertext) -> Result<BigUint> {
        self.decrypt_nat(c).map(|m| m.to_biguint())
    }

    pub(crate) fn decrypt_nat(&self, c: &Ciphertext) -> Result<Nat> {
        self.pk.validate(c)?;
        let mp = self.half_decrypt(&c.0, &self.p, &self.p2, &self.p_minus_1, &self.hp);
        let mq = self.half_decrypt(&c.0, &self.q, &self.q2, &self.q_minus_1, &self.hq);
        // m = mp + p * ((mq - mp) * p^-1 mod q)
        let diff = mq.add(&self.q).sub(&mp.rem(&self.q)).rem(&self.q);
        Ok(mp.add(&self.p.mul(&diff.mul_mod(&self.p_inv_q, &self.q))))
    }

    fn half_decrypt(&self, c: &Nat, p: &Nat, p2: &Nat, pm1: &Nat, hp: &Nat) -> Nat {
        let x = c.rem(p2).pow_mod_secret(pm1, p2);
        // L_p(x) = (x - 1) / p; x ≡ 1 mod p for a valid ciphertext. A bogus c (not a unit) gives
        // x = 0: treat as L = 0 instead of underflowing.
        let l = if x.is_zero() {
            Nat::zero()
        } else {
            x.sub(&Nat::one()).div_rem(p).0
        };
        l.mul_mod(hp, p)
    }

    /// Decrypts to a signed integer (m > n/2 reads as m - n).
    pub fn decrypt(&self, c: &Ciphertext) -> Result<BigInt> {
        let m = self.decrypt_nat(c)?;
        Ok(self.pk.decode_nat(&m))
    }

    /// Decrypts to an `i64`; an error if the signed plaintext does not fit.
    pub fn decrypt_i64(&self, c: &Ciphertext) -> Result<i64> {
        i64::try_from(self.decrypt(c)?).map_err(|_| Error::IntegerOverflow("i64"))
    }

    /// Textbook decryption without CRT: L(c^λ mod n^2) · λ^-1 mod n with λ = φ(n). For tests.
    pub fn decrypt_raw_without_crt(&self, c: &Ciphertext) -> Result<BigUint> {
        self.pk.validate(c)?;
        let n = &self.pk.n;
        let lambda = self.p_minus_1.mul(&self.q_minus_1);
        let x = c.0.pow_mod_secret(&lambda, &self.pk.n2);
        let l = if x.is_zero() {
            Nat::zero()
        } else {
            x.sub(&Nat::one()).div_rem(n).0
        };
        let mu = lambda
            .rem(n)
            .inv_mod(n)
            .ok_or(Error::InvalidKey("phi(n) not invertible mod n"))?;
        Ok(l.mul_mod(&mu, n).to_biguint())
    }

    /// r^n mod n^2 by CRT: r^n ≡ ((r mod p)^(q mod (p-1)) mod p)^p (mod p^2), same for q.
    fn nth_residue_crt(&self, r: &Nat) -> Nat {
        let a = r
            .rem(&self.p)
            .pow_mod_secret(&self.q_mod_pm1, &self.p)
            .pow_mod_secret(&self.p, &self.p2);
        let b = r
            .rem(&self.q)
            .pow_mod_secret(&self.p_mod_qm1, &self.q)
            .pow_mod_secret(&self.q, &self.q2);
        self.crt_n2(&a, &b)
    }

    /// Fresh randomness h_sʳ (the same distribution as [`PublicKey::randomizer`]) from the
    /// fixed-base tables mod p² and q², recombined with CRT.
    pub fn randomizer<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Randomizer {
        let r = self.pk.short_exponent(rng);
        self.randomizer_with_exponent(&r)
    }

    /// h_sʳ mod n² by CRT: the tables mod p² and q² (half-size moduli), then recombination.
    pub(crate) fn randomizer_with_exponent(&self, r: &Nat) -> Randomizer {
        let (tp, tq) = self.crt_fixed.get_or_init(|| {
            let hs = fixed_residue(&self.pk.n, &self.pk.n2);
            let bits = exponent_bits(&self.pk.n);
            // The key holder (S2) encrypts every result it returns: 10-bit windows (103 products
            // instead of 128 per prime at 2048 bits, 27 MiB per prime) up to 2048-bit keys, bytes
            // above (the tables grow with the modulus).
            let window = if self.pk.n.bits() <= 2048 { 10 } else { 8 };
            (
                FixedBase::with_window(&hs, &self.p2, bits, window),
                FixedBase::with_window(&hs, &self.q2, bits, window),
            )
        });
        Randomizer(self.crt_n2(&tp.pow(r), &tq.pow(r)))
    }

    /// The textbook CRT randomizer: a uniform n-th residue from one exponentiation mod p² and
    /// one mod q² (constant time under `gmp`); what [`randomizer`](Self::randomizer) did before
    /// fixed-base randomness.
    ///
    /// A uniform n-th residue mod n^2 is, by CRT, a pair of independent uniform elements of the
    /// order-(p−1) subgroup mod p^2 and the order-(q−1) subgroup mod q^2; y ↦ y^p mod p^2 maps
    /// Z*_p one-to-one onto the former (y^p mod p^2 depends only on y mod p). So ρ is built from
    /// uniform y_p ∈ Z*_p and y_q ∈ Z*_q with one exponentiation per prime.
    pub fn randomizer_full<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Randomizer {
        let unit = |p: &Nat, rng: &mut R| loop {
            let y = Nat::random_below(p, rng);
            if !y.is_zero() {
                return y;
            }
        };
        let a = unit(&self.p, rng).pow_mod_secret(&self.p, &self.p2);
        let b = unit(&self.q, rng).pow_mod_secret(&self.q, &self.q2);
        Randomizer(self.crt_n2(&a, &b))
    }

    /// The x mod n^2 with x ≡ a (mod p^2) and x ≡ b (mod q^2).
    fn crt_n2(&self, a: &Nat, b: &Nat) -> Nat {
        let diff = b.add(&self.q2).sub(&a.rem(&self.q2)).rem(&self.q2);
        a.add(&self.p2.mul(&diff.mul_mod(&self.p2_inv_q2, &self.q2)))
    }

    /// CRT encryption of raw m ∈ [0, n) with a given r: equals [`PublicKey::encrypt_with`].
    pub fn encrypt_with(&self, m: &BigUint, r: &BigUint) -> Result<Ciphertext> {
        let mn = Nat::from_biguint(m);
        let rn = Nat::from_biguint(r);
        if mn >= self.pk.n {
            return Err(Error::PlaintextOutOfRange);
        }
        if rn.is_zero() || rn >= self.pk.n || rn.gcd(&self.pk.n) != Nat::one() {
            return Err(Error::InvalidRandomness);
        }
        let rho = self.nth_residue_crt(&rn);
        Ok(Ciphertext(self.pk.g_pow(&mn).mul_mod(&rho, &self.pk.n2)))
    }
}

// ---------------------------------------------------------------------------------------------
// serde: integers as decimal strings in human-readable formats (JSON), as bytes in binary ones.

pub(crate) mod serde_nat {
    use super::*;
    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Nat, s: S) -> std::result::Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&v.to_biguint().to_str_radix(10))
        } else {
            s.serialize_bytes(&v.to_bytes_be())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Nat, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(D::Error::custom(
                    "expected a non-negative decimal integer string",
                ));
            }
            let v = BigUint::parse_bytes(s.as_bytes(), 10)
                .ok_or_else(|| D::Error::custom("invalid decimal integer"))?;
            Ok(Nat::from_biguint(&v))
        } else {
            let b: serde_bytes_compat::ByteBuf = Deserialize::deserialize(d)?;
            if b.0.len() > 4096 {
                return Err(D::Error::custom("integer too large"));
            }
            Ok(Nat::from_bytes_be(&b.0))
        }
    }

    /// A ciphertext (Paillier or DGK): as [`deserialize`], and in the binary encoding at least
    /// [`MIN_CIPHERTEXT_BYTES`](crate::MIN_CIPHERTEXT_BYTES) long, refused while decoding. A
    /// valid ciphertext is an element of Z*_{n²} (Paillier) or of Z_n's subgroup (DGK) for a
    /// modulus of at least 256 bits, shorter than that with probability below 2^-254; a
    /// message of empty or tiny "ciphertexts" would otherwise cost about 50 times its size in
    /// memory while it is decoded (the tenants issue). The key's own range check follows once
    /// the key is known.
    pub fn deserialize_ciphertext<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Nat, D::Error> {
        if d.is_human_readable() {
            return deserialize(d);
        }
        let b: serde_bytes_compat::ByteBuf = Deserialize::deserialize(d)?;
        if b.0.len() > 4096 {
            return Err(D::Error::custom("integer too large"));
        }
        if b.0.len() < crate::MIN_CIPHERTEXT_BYTES {
            return Err(D::Error::custom(format_args!(
                "a ciphertext of {} bytes: a valid one has at least {}",
                b.0.len(),
                crate::MIN_CIPHERTEXT_BYTES
            )));
        }
        Ok(Nat::from_bytes_be(&b.0))
    }

    /// Minimal byte-buffer visitor (accepts bytes or a sequence of u8).
    pub mod serde_bytes_compat {
        use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};
        use std::fmt;
        pub struct ByteBuf(pub Vec<u8>);
        impl<'de> Deserialize<'de> for ByteBuf {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = ByteBuf;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v.to_vec()))
                    }
                    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                        Ok(ByteBuf(v))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                        let mut out = Vec::new();
                        while let Some(b) = seq.next_element::<u8>()? {
                            if out.len() > 4096 {
                                return Err(serde::de::Error::custom("integer too large"));
                            }
                            out.push(b);
                        }
                        Ok(ByteBuf(out))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PublicKeyRepr {
    #[serde(with = "serde_nat")]
    n: Nat,
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        PublicKeyRepr { n: self.n.clone() }.serialize(s)
    }
}
impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = PublicKeyRepr::deserialize(d)?;
        PublicKey::from_modulus(&r.n.to_biguint()).map_err(serde::de::Error::custom)
    }
}

#[derive(Serialize, Deserialize)]
struct SecretKeyRepr {
    #[serde(with = "serde_nat")]
    p: Nat,
    #[serde(with = "serde_nat")]
    q: Nat,
}

impl Serialize for SecretKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        SecretKeyRepr {
            p: self.p.clone(),
            q: self.q.clone(),
        }
        .serialize(s)
    }
}
impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = SecretKeyRepr::deserialize(d)?;
        SecretKey::from_primes_nat(r.p, r.q).map_err(serde::de::Error::custom)
    }
}

/// A key that encrypts: the public key (its fixed-base randomizer mod n²) or the secret key (the
/// same randomizer by CRT mod p² and q², about twice as fast). Both give ciphertexts of the same
/// distribution under the same public key; [`encrypt`](Encrypt::encrypt) and
/// [`encrypt_i64`](Encrypt::encrypt_i64) are written once for both, and a
/// [`RandomizerPool`](crate::RandomizerPool) is typed by the key that fills it.
pub trait Encrypt: Clone + Send + Sync + 'static {
    /// The public key the ciphertexts are under.
    fn encryption_key(&self) -> &PublicKey;

    /// Fresh encryption randomness ρ (an n-th residue mod n²).
    fn fresh_randomizer<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Randomizer;

    /// Encrypts a signed plaintext with fresh randomness.
    fn encrypt<R: RngCore + CryptoRng + ?Sized>(
        &self,
        m: &BigInt,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let rho = self.fresh_randomizer(rng);
        self.encryption_key().encrypt_with_randomizer(m, &rho)
    }

    /// Encrypts an `i64` (always in range for n ≥ 256 bits) with fresh randomness.
    fn encrypt_i64<R: RngCore + CryptoRng + ?Sized>(&self, m: i64, rng: &mut R) -> Ciphertext {
        self.encrypt(&BigInt::from(m), rng)
            .expect("an i64 always fits Z_n for n >= 256 bits")
    }
}

impl Encrypt for PublicKey {
    fn encryption_key(&self) -> &PublicKey {
        self
    }
    fn fresh_randomizer<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Randomizer {
        self.randomizer(rng)
    }
}

impl Encrypt for SecretKey {
    fn encryption_key(&self) -> &PublicKey {
        &self.pk
    }
    fn fresh_randomizer<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> Randomizer {
        self.randomizer(rng)
    }
}

#[cfg(test)]
mod fixed_base_tests {
    use super::*;
    use rand::SeedableRng;

    fn key() -> SecretKey {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap()
    }

    #[test]
    fn fixed_residue_is_an_encryption_of_zero_and_not_trivial() {
        let sk = key();
        let pk = sk.public_key();
        let hs = fixed_residue(&pk.n, &pk.n2);
        // An n-th residue: as a ciphertext it decrypts to 0, and it is a unit other than 1.
        assert!(sk.decrypt_nat(&Ciphertext(hs.clone())).unwrap().is_zero());
        assert_ne!(hs, Nat::one());
        assert_eq!(hs.gcd(&pk.n), Nat::one());
        // Derived from n alone: the same for every holder of the key.
        assert_eq!(hs, fixed_residue(&pk.n, &pk.n2));
    }

    #[test]
    fn crt_and_public_fixed_base_randomizers_agree() {
        let sk = key();
        let pk = sk.public_key();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let hs = fixed_residue(&pk.n, &pk.n2);
        for _ in 0..8 {
            let r = pk.short_exponent(&mut rng);
            assert!(r.bits() <= exponent_bits(&pk.n));
            let want = hs.pow_mod(&r, &pk.n2);
            assert_eq!(pk.fixed_base().pow(&r), want);
            assert_eq!(sk.randomizer_with_exponent(&r).0, want);
        }
    }

    #[test]
    fn fresh_randomizers_differ_and_encrypt_correctly() {
        let sk = key();
        let pk = sk.public_key();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let a = pk.randomizer(&mut rng);
        let b = pk.randomizer(&mut rng);
        let c = sk.randomizer(&mut rng);
        assert!(a != b && b != c && a != c);
        for rho in [
            a,
            b,
            c,
            pk.randomizer_full(&mut rng),
            sk.randomizer_full(&mut rng),
        ] {
            let ct = pk
                .encrypt_with_randomizer(&BigInt::from(-77), &rho)
                .unwrap();
            assert_eq!(sk.decrypt(&ct).unwrap(), BigInt::from(-77));
        }
    }
}
