//! # smlp
//!
//! A multilayer perceptron (d → h₁ → … → k, ReLU hidden layers, linear outputs, squared-error loss)
//! trained on Paillier-encrypted data by two non-colluding servers: S1 holds the ciphertexts and
//! drives training, S2 holds the secret key and only ever sees blinded values.
//!
//! This crate holds the network and its fixed-point contract ([`model`]), the data handling
//! ([`data`]: embedded data sets, CSV parsing, standardisation, stratified splits, fixed-point
//! encoding) and two plaintext references ([`reference`](mod@reference)): [`FixedMlp`], which performs exactly the
//! integer operations of the encrypted trainer (so a strict encrypted run equals it bit for bit),
//! and [`FloatMlp`], the same network in f64, which shows that the fixed-point network learns as
//! well as an ordinary one.
//!
//! ```
//! use paillier::FixedPoint;
//! use rand::SeedableRng;
//! use smlp::data::{stratified_split, Dataset, EncodedDataset, Standardizer};
//! use smlp::{accuracy, train_fixed, FixedMlp, FixedParams, Shape, TrainOptions};
//!
//! // Iris, 80/20 split, standardised with statistics of the training part.
//! let (train, test) = stratified_split(&Dataset::iris(), 0.2, 1)?;
//! let scaler = Standardizer::fit(&train);
//! let fp = FixedPoint::new(16, 20)?;
//! let train = EncodedDataset::encode(&scaler.apply(&train)?, &fp)?;
//! let test = EncodedDataset::encode(&scaler.apply(&test)?, &fp)?;
//!
//! // 4 → 8 → 3, weights at scale 2^(2f + shift); the defaults of `smlp::defaults`: η = 2^-4,
//! // mini-batches of 16 (gradients summed), the smoothed hinge.
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
//! let mut model = FixedMlp::init(&Shape::new(vec![4, 8, 3])?, FixedParams::default(), &mut rng)?;
//! let opts = TrainOptions { epochs: 20, ..TrainOptions::default() };
//! let history = train_fixed(&mut model, &train, &opts, |_, _| {})?;
//! assert!(history.epochs[19].loss < history.epochs[0].loss);
//! assert!(accuracy(&model, &test.features, &test.labels)? > 0.8);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same network trained on ciphertexts: the owner encrypts ([`owner`]), S1 trains with
//! [`encrypted::train`] over a session with S2 (here an in-memory channel and a thread; in a
//! deployment TLS between two servers, see `smlp-cli`), and in the strict profile the decrypted
//! weights equal the plaintext fixed-point reference bit for bit.
//!
//! ```
//! use paillier::{FixedPoint, SecretKey};
//! use rand::SeedableRng;
//! use secure_ops::{Profile, S2Options, S2Service, SessionParams, S1};
//! use smlp::data::{Dataset, EncodedDataset, Standardizer};
//! use smlp::encrypted::{encrypt_params, new_model, train, EncryptedDataset, TrainConfig};
//! use smlp::{init_fixed, train_fixed, FixedMlp, FixedParams, Loss, Shape, TrainOptions};
//!
//! // Six iris samples, standardised and encoded; a small test key (512 bits: not secure).
//! let iris = Dataset::iris();
//! let data = iris.subset(&[0, 50, 100, 1, 51, 101]);
//! let fixed = FixedParams::default();
//! let fp = FixedPoint::new(fixed.frac_bits, 20)?;
//! let data = EncodedDataset::encode(&Standardizer::fit(&data).apply(&data)?, &fp)?;
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//! let sk = SecretKey::generate_insecure_for_tests(512, &mut rng)?;
//! let pk = sk.public_key().clone();
//!
//! // The owner encrypts; S2 serves one session on its own thread.
//! let enc = EncryptedDataset::encrypt(&pk, &data, true);
//! let (to_s2, at_s2) = transport::memory::pair();
//! let s2_key = sk.clone();
//! let s2 = std::thread::spawn(move || S2Service::new(s2_key, S2Options::default()).serve(at_s2));
//! let params = SessionParams { profile: Profile::Strict, ..SessionParams::default() };
//! let mut s1 = S1::connect(pk.clone(), to_s2, params)?;
//!
//! // S1 trains 4 → 3 → 3 for one epoch from initial weights the owner chose (for the comparison).
//! let shape = Shape::new(vec![4, 3, 3])?;
//! let init = init_fixed(&shape, &fixed, &mut rand_chacha::ChaCha8Rng::seed_from_u64(2));
//! let mut model = new_model(&mut s1, shape, fixed, 3, Some(encrypt_params(&pk, &init)?))?;
//! let config = TrainConfig { epochs: 1, batch: 1, seed: 3, loss: Loss::SmoothHinge };
//! train(&mut s1, &mut model, &enc, &config, |_| {}, |_| Ok(()))?;
//! s1.close()?;
//! s2.join().expect("the S2 thread")?;
//!
//! // The plaintext reference with exact (floor) rounding, from the same weights.
//! let mut reference = FixedMlp::from_params(init, fixed)?;
//! let opts = TrainOptions { epochs: 1, batch: 1, seed: 3, loss: Loss::SmoothHinge, ..TrainOptions::default() };
//! train_fixed(&mut reference, &data, &opts, |_, _| {})?;
//! assert_eq!(model.decrypt(&sk)?, reference.params);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod data;
pub mod defaults;
pub mod encrypted;
pub mod model;
pub mod owner;
pub mod reference;
pub mod tune;

pub use data::{DataError, Dataset, EncodedDataset, Standardizer};
pub use model::{
    epoch_order, glorot_bound, init_fixed, FixedParams, Layer, LearningRate, Loss, Params,
    Rounding, Shape, Trace, Truncator,
};
pub use reference::{
    accuracy, evaluate, train_fixed, train_float, Classifier, EpochStats, FixedMlp, FloatMlp,
    History, Metrics, TrainOptions,
};

/// Everything that can go wrong in the `smlp` crate.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// A value left the range |v| < 2^ℓ that the two-party sub-protocols require (or the `i128`
    /// arithmetic of the reference). Layers are numbered from 1.
    #[error("fixed-point value out of range: {what} in layer {layer} does not satisfy |v| < 2^ℓ (raise value_bits, lower the learning rate, or check the data's scaling)")]
    Overflow {
        /// Which value: "weight", "bias", "activation", "forward sum", "ReLU input", "delta",
        /// "backward sum", …
        what: &'static str,
        /// 1-based weight layer.
        layer: usize,
    },
    /// Inconsistent arithmetic or training parameters.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// Dimensions of data, targets or weights do not match the network.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Reading or encoding data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A Paillier or fixed-point operation failed.
    #[error(transparent)]
    Paillier(#[from] paillier::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
