//! # paillier
//!
//! The Paillier cryptosystem with g = n + 1, as smlp uses it: key generation from a CSPRNG, encryption
//! (plain, with CRT for the key holder, or with precomputed randomness), CRT decryption, the additive
//! homomorphism (add, subtract, negate, add a plaintext, multiply by a signed scalar), signed and
//! fixed-point encodings with range checks, and a versioned binary file format.
//!
//! The hot arithmetic runs on num-bigint by default and on GMP with the `gmp` feature; the two
//! backends sit behind one internal interface ([`arith::NatOps`]) and give identical results.
//!
//! ```
//! use paillier::{Encrypt, FixedPoint, SecretKey};
//! use num_bigint::BigInt;
//!
//! let mut rng = rand::thread_rng();
//! // Small keys only for examples and tests; real keys use `SecretKey::generate(2048, ..)`.
//! let sk = SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap();
//! let pk = sk.public_key();
//!
//! let fp = FixedPoint::new(16, 20).unwrap();
//! let a = pk.encrypt_i64(fp.encode(1.5).unwrap(), &mut rng);
//! let b = pk.encrypt_i64(fp.encode(-4.25).unwrap(), &mut rng);
//! let sum = pk.add(&a, &b);
//! let tripled = pk.mul_plain(&sum, &BigInt::from(-3)).unwrap();
//! assert_eq!(fp.decode(sk.decrypt_i64(&tripled).unwrap()), 8.25);
//! ```

/// What a ciphertext newtype over `Nat` has, for Paillier's and DGK's: a `Debug` that shows its
/// first bytes and size, conversions from and to `BigUint`, and serde through
/// `crate::keys::serde_nat` (decoding refuses ciphertexts shorter than
/// [`MIN_CIPHERTEXT_BYTES`]).
macro_rules! ciphertext_newtype {
    ($ty:ident, $shown:literal) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let b = self.0.to_bytes_be();
                let head: String = b.iter().take(6).map(|x| format!("{x:02x}")).collect();
                write!(f, "{}({head}…, {} bits)", $shown, self.0.bits())
            }
        }

        impl $ty {
            /// The ciphertext as a non-negative integer.
            pub fn to_biguint(&self) -> num_bigint::BigUint {
                self.0.to_biguint()
            }
            /// A ciphertext from an integer; check it with `PublicKey::validate` before use.
            pub fn from_biguint(c: &num_bigint::BigUint) -> Self {
                $ty(crate::arith::Nat::from_biguint(c))
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                crate::keys::serde_nat::serialize(&self.0, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                crate::keys::serde_nat::deserialize_ciphertext(d).map($ty)
            }
        }
    };
}

pub mod arith;
pub mod dgk;
mod encoding;
mod error;
mod fixed_base;
pub mod format;
mod keys;
mod pool;
mod prime;

pub use encoding::FixedPoint;
pub use error::{Error, Result};
pub use keys::{
    Ciphertext, CiphertextPowers, Encrypt, Fingerprint, JointPowers, PublicKey, Randomizer,
    SecretKey, MAX_BITS, MIN_CIPHERTEXT_BYTES, MIN_SECURE_BITS, MIN_TEST_BITS,
};
pub use num_bigint::{BigInt, BigUint};
pub use pool::RandomizerPool;

/// Uniform in [0, `bound`) for `bound` > 0 (rejection sampling on bytes from `rng`; pass a CSPRNG
/// for blinding values).
pub fn random_below<R: rand::RngCore + ?Sized>(bound: &BigUint, rng: &mut R) -> BigUint {
    use arith::NatOps;
    arith::Nat::random_below(&arith::Nat::from_biguint(bound), rng).to_biguint()
}
