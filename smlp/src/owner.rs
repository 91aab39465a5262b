//! The data owner's side: encryption of data sets and decryption of models and predictions.
//!
//! This module is the only place of the crate that takes a [`SecretKey`]; S1's side
//! ([`crate::encrypted`]: training and classification on ciphertexts) works with the
//! [`PublicKey`] and ciphertexts alone, and a test (`cargo xtask test`, `xtask/src/layers.rs`)
//! fails if an S1-side source file ever names the secret key.

use crate::data::EncodedDataset;
use crate::encrypted::{
    map_order, EncryptedDataset, EncryptedModel, EncryptedPredictions, EncryptedSample,
    SecureError, SecureResult,
};
use crate::Params;
use paillier::Encrypt;
use paillier::{BigInt, PublicKey, SecretKey};
use rayon::prelude::*;

impl EncryptedDataset {
    /// Encrypts an encoded data set under `pk` (owner side; parallel over samples; CSPRNG).
    pub fn encrypt(pk: &PublicKey, data: &EncodedDataset, with_labels: bool) -> Self {
        Self::encrypt_with(pk, None, data, with_labels, || {})
    }

    /// Like [`encrypt`](Self::encrypt); with the owner's secret key, encryption uses CRT (about
    /// twice as fast, same ciphertext distribution), and `on_sample` is called after each sample
    /// (e.g. to drive a progress bar).
    pub fn encrypt_with(
        pk: &PublicKey,
        sk: Option<&SecretKey>,
        data: &EncodedDataset,
        with_labels: bool,
        on_sample: impl Fn() + Sync,
    ) -> Self {
        let enc = |v: i64, rng: &mut rand::rngs::ThreadRng| match sk {
            Some(sk) => sk.encrypt_i64(v, rng),
            None => pk.encrypt_i64(v, rng),
        };
        let samples = data
            .features
            .par_iter()
            .zip(data.targets.par_iter())
            .map(|(x, y)| {
                let mut rng = rand::thread_rng();
                let s = EncryptedSample {
                    x: x.iter().map(|&v| enc(v, &mut rng)).collect(),
                    y: if with_labels {
                        y.iter().map(|&v| enc(v, &mut rng)).collect()
                    } else {
                        Vec::new()
                    },
                };
                on_sample();
                s
            })
            .collect();
        EncryptedDataset {
            fingerprint: pk.fingerprint(),
            frac_bits: data.frac_bits,
            classes: data.classes,
            features: data.features.first().map_or(0, Vec::len),
            samples,
            settings: None,
        }
    }
}

impl EncryptedDataset {
    /// Decrypts every sample (owner side; parallel over samples) to its features and targets at
    /// scale 2^f; the targets are empty for unlabelled samples.
    #[allow(clippy::type_complexity)]
    pub fn decrypt(&self, sk: &SecretKey) -> SecureResult<Vec<(Vec<i64>, Vec<i64>)>> {
        self.check(sk.public_key(), false)?;
        let dec = |v: &[paillier::Ciphertext]| -> SecureResult<Vec<i64>> {
            Ok(v.iter()
                .map(|c| sk.decrypt_i64(c))
                .collect::<Result<_, _>>()?)
        };
        self.samples
            .par_iter()
            .map(|s| Ok((dec(&s.x)?, dec(&s.y)?)))
            .collect()
    }
}

impl EncryptedModel {
    /// Decrypts the weights (owner side) to integers at scale 2^F_w.
    pub fn decrypt(&self, sk: &SecretKey) -> SecureResult<Params<i128>> {
        self.check(sk.public_key())?;
        let flat = map_order(&self.params);
        let vals: Vec<i128> = flat
            .par_iter()
            .map(|c| {
                let v = sk.decrypt(c)?;
                i128::try_from(v)
                    .map_err(|_| SecureError::Mismatch("a weight does not fit i128".into()))
            })
            .collect::<SecureResult<_>>()?;
        let mut it = vals.into_iter();
        Ok(self.params.map(|_| it.next().expect("same count")))
    }
}

impl EncryptedPredictions {
    /// Decrypts the predicted classes (owner side).
    pub fn decrypt_classes(&self, sk: &SecretKey) -> SecureResult<Vec<usize>> {
        self.check(sk.public_key())?;
        self.classes_enc
            .par_iter()
            .map(|v| {
                let bits: Vec<BigInt> =
                    v.iter().map(|c| sk.decrypt(c)).collect::<Result<_, _>>()?;
                let one = BigInt::from(1);
                if bits.len() == 1 {
                    return Ok(usize::from(bits[0] == one));
                }
                bits.iter().position(|b| b == &one).ok_or_else(|| {
                    SecureError::Mismatch("decrypted one-hot vector has no 1".into())
                })
            })
            .collect()
    }

    /// Decrypts the scores as reals.
    pub fn decrypt_scores(&self, sk: &SecretKey) -> SecureResult<Vec<Vec<f64>>> {
        self.check(sk.public_key())?;
        let scale = (self.frac_bits as f64).exp2();
        self.scores
            .par_iter()
            .map(|v| {
                v.iter()
                    .map(|c| {
                        let x = sk.decrypt(c)?;
                        Ok(num_traits::ToPrimitive::to_f64(&x).unwrap_or(f64::NAN) / scale)
                    })
                    .collect()
            })
            .collect()
    }
}
