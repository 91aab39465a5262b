//! Base oblivious transfers: Chou and Orlandi, "The Simplest Protocol for Oblivious Transfer"
//! (LATINCRYPT 2015), over Ristretto255, in batches of [`crate::iknp::K`] random OTs.
//!
//! The sender picks a, sends A = a·G. For each transfer i the receiver, with choice sᵢ, picks
//! bᵢ and sends Bᵢ = bᵢ·G + sᵢ·A; its key is H(i, A, Bᵢ, bᵢ·A). The sender's keys are
//! kᵢ⁰ = H(i, A, Bᵢ, a·Bᵢ) and kᵢ¹ = H(i, A, Bᵢ, a·(Bᵢ − A)): the receiver's key is kᵢ^{sᵢ}
//! (since a·(Bᵢ − sᵢ·A) = bᵢ·A), the other one is a CDH value it cannot compute, and Bᵢ is
//! uniform whatever sᵢ (the sender learns nothing of the choices). Semi-honest here; the points
//! are checked (a valid encoding, not the identity) so that a hostile peer only gets an error.

use crate::Error;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// A 256-bit key that seeds one column of the OT extension.
pub type Seed = [u8; 32];

/// A compressed Ristretto255 point, as sent.
pub type Point = [u8; 32];

fn decode(p: &Point) -> Result<RistrettoPoint, Error> {
    let point = CompressedRistretto(*p)
        .decompress()
        .ok_or(Error::BadPoint)?;
    if point == RistrettoPoint::identity() {
        return Err(Error::BadPoint);
    }
    Ok(point)
}

fn key(i: usize, a: &Point, b: &Point, shared: &RistrettoPoint) -> Seed {
    let mut h = Sha256::new();
    h.update(b"smlp-yao base OT");
    h.update((i as u64).to_le_bytes());
    h.update(a);
    h.update(b);
    h.update(shared.compress().as_bytes());
    h.finalize().into()
}

/// Checks that `p` encodes a Ristretto255 point other than the identity (what [`receive`] and
/// [`Sender::keys`] accept), without doing a transfer.
pub fn check_point(p: &Point) -> Result<(), Error> {
    decode(p).map(drop)
}

/// The sender's secret a (wiped when dropped) and its message A.
pub struct Sender {
    a: Scalar,
    big_a: RistrettoPoint,
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.a.zeroize();
    }
}

impl Sender {
    /// A fresh sender and A = a·G, its first message.
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> (Self, Point) {
        let a = Scalar::random(rng);
        let big_a = &a * RISTRETTO_BASEPOINT_TABLE;
        let msg = big_a.compress().to_bytes();
        (Sender { a, big_a }, msg)
    }

    /// Both keys of every transfer, from the receiver's points (exactly `count` of them).
    pub fn keys(&self, points: &[Point], count: usize) -> Result<Vec<(Seed, Seed)>, Error> {
        if points.len() != count {
            return Err(Error::Size {
                what: "base OT points",
                expected: count,
                got: points.len(),
            });
        }
        let a_bytes = self.big_a.compress().to_bytes();
        points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let b = decode(p)?;
                let k0 = key(i, &a_bytes, p, &(self.a * b));
                let k1 = key(i, &a_bytes, p, &(self.a * (b - self.big_a)));
                Ok((k0, k1))
            })
            .collect()
    }
}

/// The receiver's side in one call: for the sender's A and the choices, the points Bᵢ to send
/// and the keys kᵢ^{sᵢ}.
pub fn receive<R: RngCore + CryptoRng>(
    a: &Point,
    choices: &[bool],
    rng: &mut R,
) -> Result<(Vec<Point>, Vec<Seed>), Error> {
    let big_a = decode(a)?;
    let mut points = Vec::with_capacity(choices.len());
    let mut keys = Vec::with_capacity(choices.len());
    for (i, &s) in choices.iter().enumerate() {
        let mut b = Scalar::random(rng);
        let mut big_b = &b * RISTRETTO_BASEPOINT_TABLE;
        if s {
            big_b += big_a;
        }
        let p = big_b.compress().to_bytes();
        keys.push(key(i, a, &p, &(b * big_a)));
        points.push(p);
        b.zeroize();
    }
    Ok((points, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn the_receiver_gets_the_key_of_its_choice_and_not_the_other() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (sender, a) = Sender::new(&mut rng);
        let choices: Vec<bool> = (0..64).map(|_| rng.gen()).collect();
        let (points, keys) = receive(&a, &choices, &mut rng).unwrap();
        let both = sender.keys(&points, 64).unwrap();
        for ((s, k), (k0, k1)) in choices.iter().zip(&keys).zip(&both) {
            assert_ne!(k0, k1);
            assert_eq!(k, if *s { k1 } else { k0 });
        }
    }

    #[test]
    fn hostile_points_are_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (sender, a) = Sender::new(&mut rng);
        let (mut points, _) = receive(&a, &[false, true], &mut rng).unwrap();
        assert!(matches!(sender.keys(&points, 3), Err(Error::Size { .. })));
        points[1] = [0xff; 32]; // not a canonical encoding
        assert_eq!(sender.keys(&points, 2), Err(Error::BadPoint));
        points[1] = [0; 32]; // the identity
        assert_eq!(sender.keys(&points, 2), Err(Error::BadPoint));
        assert!(receive(&[0xff; 32], &[true], &mut rng).is_err());
    }
}
