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
