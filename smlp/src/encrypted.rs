//! The encrypted side: data sets, models and predictions as ciphertexts; the owner's encryption
//! and decryption; and S1's trainer and classifier, which run the fixed-point contract of
//! [`crate::model`] on ciphertexts with S2's help through [`secure_ops::S1`].
//!
//! In the strict profile (exact truncation, DGK comparisons) the decrypted weights and predictions
//! equal those of [`crate::FixedMlp`] with [`crate::Rounding::Floor`] bit for bit; in the fast
//! profile each truncation may be one unit higher (unbiased stochastic rounding).

use crate::model::{
    epoch_order, glorot_bound, outputs_for_classes, FixedParams, Layer, LearningRate, Loss, Params,
    Shape,
};
use paillier::format::{FileError, FileKind};
use paillier::Encrypt;
use paillier::{BigInt, Ciphertext, Fingerprint, PublicKey};
use rayon::prelude::*;
use secure_ops::{
    pow2, Channel, Job, OpCounts, Operand, Profile, ProtocolError, Reusable, TrafficSnapshot, S1,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// An encrypted data set file.
pub const DATASET: FileKind = FileKind {
    tag: *b"DSET",
    name: "encrypted data set",
    version: 2,
};
/// An encrypted model file.
pub const MODEL: FileKind = FileKind {
    tag: *b"MODL",
    name: "encrypted model",
    // 2: a [`ModelFile`]: the model and how it was trained (version 1, the bare model, is read).
    version: 2,
};
/// A training checkpoint file.
pub const CHECKPOINT: FileKind = FileKind {
    tag: *b"CKPT",
    name: "training checkpoint",
    // 2: checkpoints within an epoch (`position`); 3: the run's loss in its configuration.
    version: 3,
};
/// An encrypted predictions file.
pub const PREDICTIONS: FileKind = FileKind {
    tag: *b"PRED",
    name: "encrypted predictions",
    version: 1,
};

/// Errors of encrypted training and classification.
#[derive(Debug, thiserror::Error)]
pub enum SecureError {
    /// A sub-protocol with S2 failed (includes fixed-point overflow detected by S2).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A model or data error.
    #[error(transparent)]
    Model(#[from] crate::Error),
    /// A Paillier error.
    #[error(transparent)]
    Paillier(#[from] paillier::Error),
    /// A file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
    /// Data, model, key or configuration do not belong together.
    #[error("{0}")]
    Mismatch(String),
    /// The caller's `on_epoch`/`on_batch` callback failed (saving a checkpoint, say); training
    /// stopped there, after the last completed batch.
    #[error("{0}")]
    Callback(String),
}

/// Result alias for this module.
pub type SecureResult<T> = Result<T, SecureError>;

/// One encrypted sample: features x̂ and targets ŷ (scale 2^f), all ciphertexts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EncryptedSample {
    /// ⟦x̂ᵢ⟧.
    #[serde(deserialize_with = "units")]
    pub x: Vec<Ciphertext>,
    /// ⟦ŷⱼ⟧ (one for binary problems, one-hot for k classes). Empty for unlabelled samples.
    #[serde(deserialize_with = "units")]
    pub y: Vec<Ciphertext>,
}

/// Most samples in an encrypted data set (decoding stops beyond it).
pub const MAX_SAMPLES: usize = 1 << 20;

fn units<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Ciphertext>, D::Error> {
    paillier::format::bounded::vec(d, Shape::MAX_UNITS, "values in a sample")
}

fn samples<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<EncryptedSample>, D::Error> {
    paillier::format::bounded::vec(d, MAX_SAMPLES, "samples")
}

/// An encrypted data set: what the owner uploads to S1. Only the shape, f, the number of classes
/// and the key fingerprint are public.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EncryptedDataset {
    /// Key the data is encrypted under.
    pub fingerprint: Fingerprint,
    /// f, fractional bits of the encoding.
    pub frac_bits: u32,
    /// Number of classes k (public metadata).
    pub classes: usize,
    /// Number of features d.
    pub features: usize,
    /// The samples.
    #[serde(deserialize_with = "samples")]
    pub samples: Vec<EncryptedSample>,
    /// Training settings recorded by the owner when encrypting (public, like the shape: S1
    /// trains with them anyway); `smlp train` takes them as its defaults. `None`: the defaults.
    pub settings: Option<crate::tune::Tuned>,
}

/// A data set file of version 1 (before settings were recorded in it).
#[derive(Deserialize)]
struct EncryptedDatasetV1 {
    fingerprint: Fingerprint,
    frac_bits: u32,
    classes: usize,
    features: usize,
    #[serde(deserialize_with = "samples")]
    samples: Vec<EncryptedSample>,
}

impl From<EncryptedDatasetV1> for EncryptedDataset {
    fn from(d: EncryptedDatasetV1) -> Self {
        EncryptedDataset {
            fingerprint: d.fingerprint,
            frac_bits: d.frac_bits,
            classes: d.classes,
            features: d.features,
            samples: d.samples,
            settings: None,
        }
    }
}

/// Opens a sealed data set of this version or of version 1 (read with no recorded settings:
/// files and S1's stored copies from before version 2 keep working).
pub fn open_dataset(bytes: &[u8]) -> paillier::Result<EncryptedDataset> {
    paillier::format::open_upgrading(&DATASET, 1, bytes, |d: EncryptedDatasetV1| d.into())
}

/// Reads a data set file of this version or of version 1 ([`open_dataset`]).
pub fn read_dataset(
    path: &std::path::Path,
) -> Result<EncryptedDataset, paillier::format::FileError> {
    paillier::format::read_file_upgrading(&DATASET, 1, path, |d: EncryptedDatasetV1| d.into())
}

impl EncryptedDataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    /// Network outputs for this data: 1 for two classes, k otherwise.
    pub fn outputs(&self) -> usize {
        outputs_for_classes(self.classes)
    }

    /// Checks key, shapes and every ciphertext against `pk`; `labelled` requires targets.
    pub fn check(&self, pk: &PublicKey, labelled: bool) -> SecureResult<()> {
        self.fingerprint.check(&pk.fingerprint()).map_err(|_| {
            SecureError::Mismatch(format!(
                "the data set is encrypted under key {}, but this key is {}",
                self.fingerprint,
                pk.fingerprint()
            ))
        })?;
        if self.classes < 2 {
            return Err(SecureError::Mismatch(format!(
                "data set declares {} classes",
                self.classes
            )));
        }
        if let Some(t) = &self.settings {
            t.validate()
                .map_err(|e| SecureError::Mismatch(format!("the data set's settings: {e}")))?;
        }
        let k = self.outputs();
        for (i, s) in self.samples.iter().enumerate() {
            if s.x.len() != self.features || (labelled && s.y.len() != k) {
                return Err(SecureError::Mismatch(format!(
                    "sample {i} has {} features and {} targets, expected {} and {k}",
                    s.x.len(),
                    s.y.len(),
                    self.features
                )));
            }
            for c in s.x.iter().chain(&s.y) {
                pk.validate(c).map_err(|_| {
                    SecureError::Mismatch(format!("sample {i} holds an invalid ciphertext"))
                })?;
            }
        }
        Ok(())
    }
}

/// An encrypted model: shape, arithmetic and protocol parameters (public) and encrypted weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EncryptedModel {
    /// Key the weights are encrypted under.
    pub fingerprint: Fingerprint,
    /// Layer sizes.
    pub shape: Shape,
    /// Fixed-point parameters (f, learning rate, ℓ).
    pub fixed: FixedParams,
    /// Profile used for training.
    pub profile: Profile,
    /// Number of classes.
    pub classes: usize,
    /// Epochs trained so far.
    pub epochs_trained: u64,
    /// ⟦W⟧, ⟦b⟧ at scale 2^F_w.
    pub params: Params<Ciphertext>,
}

impl EncryptedModel {
    /// Checks key and shape consistency.
    pub fn check(&self, pk: &PublicKey) -> SecureResult<()> {
        self.fingerprint.check(&pk.fingerprint()).map_err(|_| {
            SecureError::Mismatch(format!(
                "the model is encrypted under key {}, but this key is {}",
                self.fingerprint,
                pk.fingerprint()
            ))
        })?;
        let shape = self.params.shape()?;
        if shape != self.shape {
            return Err(SecureError::Mismatch(format!(
                "model weights have shape {shape}, header says {}",
                self.shape
            )));
        }
        if self.shape.outputs() != outputs_for_classes(self.classes) {
            return Err(SecureError::Mismatch(format!(
                "model has {} outputs but {} classes",
                self.shape.outputs(),
                self.classes
            )));
        }
        for c in self.params.iter() {
            pk.validate(c)
                .map_err(|_| SecureError::Mismatch("model holds an invalid ciphertext".into()))?;
        }
        Ok(())
    }

    /// Checks that this model can be trained on `data`: [`check_inputs`](Self::check_inputs) and
    /// the number of classes.
    pub fn check_data(&self, data: &EncryptedDataset) -> SecureResult<()> {
        self.check_inputs(data)?;
        if outputs_for_classes(data.classes) != self.shape.outputs() {
            return Err(SecureError::Mismatch(format!(
                "model has {} outputs, the data set has {} classes",
                self.shape.outputs(),
                data.classes
            )));
        }
        Ok(())
    }

    /// Checks that this model can classify `data`: same key, number of features and f.
    pub fn check_inputs(&self, data: &EncryptedDataset) -> SecureResult<()> {
        if data.fingerprint != self.fingerprint {
            return Err(SecureError::Mismatch(format!(
                "data set is encrypted under key {}, the model under key {}",
                data.fingerprint, self.fingerprint
            )));
        }
        self.check_input_shape(data)
    }

    /// [`check_inputs`](Self::check_inputs) but the key: the features and f of `data` fit the
    /// model (a data set under another key, to be switched to the model's).
    pub fn check_input_shape(&self, data: &EncryptedDataset) -> SecureResult<()> {
        if data.features != self.shape.inputs() {
            return Err(SecureError::Mismatch(format!(
                "model expects {} features, the data set has {}",
                self.shape.inputs(),
                data.features
            )));
        }
        if data.frac_bits != self.fixed.frac_bits {
            return Err(SecureError::Mismatch(format!(
                "model uses f = {} fractional bits, the data set f = {}",
                self.fixed.frac_bits, data.frac_bits
            )));
        }
        Ok(())
    }
}

/// How a model was trained, recorded in its file ([`MODEL`] version 2) by whoever trained it
/// (S1's training job, `smlp.ray.train`): the run's configuration (the learning rate, hidden
/// sizes and profile are the model's own) and, for people, where each setting came from (`hidden,
/// epochs … from the data set (auto: …); η from the request`). Public, like the model's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// Epochs, batch, order seed and loss of the run.
    pub config: TrainConfig,
    /// Where the settings came from (at most [`MAX_ORIGIN_BYTES`]; empty: not said).
    pub origin: String,
}

/// Longest [`TrainRecord::origin`] accepted, in bytes.
pub const MAX_ORIGIN_BYTES: usize = 2048;

impl TrainRecord {
    /// Checks a record read from a file or a peer: a batch of at least 1 and an origin of at most
    /// [`MAX_ORIGIN_BYTES`].
    pub fn check(&self) -> SecureResult<()> {
        if self.config.batch == 0 {
            return Err(SecureError::Mismatch(
                "a training record with batch 0".into(),
            ));
        }
        if self.origin.len() > MAX_ORIGIN_BYTES {
            return Err(SecureError::Mismatch(format!(
                "a training record whose origin has {} bytes (at most {MAX_ORIGIN_BYTES})",
                self.origin.len()
            )));
        }
        Ok(())
    }
}

impl TrainRecord {
    /// The run's setting, with the hidden sizes and learning rate of its model.
    pub fn setting(&self, hidden: Vec<usize>, lr: LearningRate) -> crate::tune::Setting {
        crate::tune::Setting {
            hidden,
            batch: self.config.batch,
            lr_num: lr.num,
            lr_shift: lr.shift,
            epochs: self.config.epochs,
            loss: self.config.loss,
        }
    }

    /// One line for people: `hidden 8, batch 16, η 1/2^4, 2 epoch(s), smooth-hinge loss, seed 1
    /// — hidden, … from the data set (auto: …)`; control characters of a hostile origin are shown
    /// as spaces.
    pub fn describe(&self, hidden: Vec<usize>, lr: LearningRate) -> String {
        let mut line = format!(
            "{}, seed {}",
            self.setting(hidden, lr).describe(),
            self.config.seed
        );
        if !self.origin.is_empty() {
            let clean: String = self
                .origin
                .chars()
                .map(|ch| if ch.is_control() { ' ' } else { ch })
                .collect();
            line.push_str(" — ");
            line.push_str(&clean);
        }
        line
    }
}

/// What a model file holds: the model and, when its trainer said, how it was trained.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelFile {
    /// The model.
    pub model: EncryptedModel,
    /// How it was trained (`None`: a model file of version 1, or initial weights).
    pub trained: Option<TrainRecord>,
}

impl ModelFile {
    /// How the model was trained, one line for people ([`TrainRecord::describe`]); `None` when
    /// its file does not say.
    pub fn describe(&self) -> Option<String> {
        let m = &self.model;
        let sizes = m.shape.sizes();
        let hidden = sizes
            .get(1..sizes.len().saturating_sub(1))
            .unwrap_or_default()
            .to_vec();
        self.trained
            .as_ref()
            .map(|t| t.describe(hidden, m.fixed.lr))
    }

    /// Seals the model file (the current [`MODEL`] version).
    pub fn seal(&self) -> paillier::Result<Vec<u8>> {
        paillier::format::seal(&MODEL, self)
    }

    /// Opens a sealed model file of this version or of version 1 (no record), checking the
    /// record.
    pub fn open(bytes: &[u8]) -> SecureResult<ModelFile> {
        paillier::format::open_upgrading(&MODEL, 1, bytes, Self::bare)?.checked()
    }

    /// Reads a model file ([`ModelFile::open`]); errors name the path.
    pub fn read(path: &std::path::Path) -> SecureResult<ModelFile> {
        paillier::format::read_file_upgrading(&MODEL, 1, path, Self::bare)?.checked()
    }

    /// A model without a record (what a file of version 1 holds).
    fn bare(model: EncryptedModel) -> ModelFile {
        ModelFile {
            model,
            trained: None,
        }
    }

    fn checked(self) -> SecureResult<ModelFile> {
        if let Some(t) = &self.trained {
            t.check()?;
        }
        Ok(self)
    }

    /// Writes the model file atomically (owner-only permissions).
    pub fn write(&self, path: &std::path::Path) -> SecureResult<()> {
        Ok(paillier::format::write_file(&MODEL, path, self)?)
    }
}

/// How a training run is configured (recorded in checkpoints to refuse a mismatched resume).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs to train in total.
    pub epochs: u64,
    /// Mini-batch size B (1 = per-sample SGD).
    pub batch: usize,
    /// Seed of the (public) sample order.
    pub seed: u64,
    /// The loss whose gradient the run follows.
    pub loss: Loss,
}

/// A checkpoint: the model after `model.epochs_trained` whole epochs and the first `position`
/// samples (in [`epoch_order`]) of the next one, of a run with `config`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The model so far.
    pub model: EncryptedModel,
    /// The run's configuration.
    pub config: TrainConfig,
    /// Samples of epoch `model.epochs_trained` already trained (0 at an epoch boundary; a
    /// multiple of the batch size).
    pub position: usize,
}

impl Checkpoint {
    /// Checks that this checkpoint can continue `config` on `samples` samples: same batch and
    /// seed, no more epochs than requested, a position on a batch boundary inside the epoch.
    pub fn check_resumable(&self, config: &TrainConfig, samples: usize) -> SecureResult<()> {
        let c = &self.config;
        if (c.batch, c.seed, c.loss) != (config.batch, config.seed, config.loss) {
            return Err(SecureError::Mismatch(format!(
                "the checkpoint's run used batch {}, seed {} and the {} loss, this one batch {}, \
                 seed {} and the {} loss",
                c.batch, c.seed, c.loss, config.batch, config.seed, config.loss
            )));
        }
        if self.model.epochs_trained > config.epochs
            || (self.model.epochs_trained == config.epochs && self.position > 0)
        {
            return Err(SecureError::Mismatch(format!(
                "the checkpoint already has {} epochs, more than the {} requested",
                self.model.epochs_trained, config.epochs
            )));
        }
        if self.position >= samples.max(1) || !self.position.is_multiple_of(config.batch.max(1)) {
            return Err(SecureError::Mismatch(format!(
                "the checkpoint's position {} is not a batch boundary of an epoch of {samples} \
                 samples",
                self.position
            )));
        }
        Ok(())
    }
}

/// Progress of a training or classification run.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Current epoch (0-based).
    pub epoch: u64,
    /// Total epochs.
    pub epochs: u64,
    /// Samples done in this epoch.
    pub done: usize,
    /// Samples per epoch.
    pub total: usize,
    /// Time since the start of the run.
    pub elapsed: Duration,
}

/// Costs of a run or step: S1 and S2 operations and traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Costs {
    /// S1's operations.
    pub s1: OpCounts,
    /// S2's operations.
    pub s2: OpCounts,
    /// Traffic seen from S1.
    pub traffic: TrafficSnapshot,
}

/// Snapshot of a session's costs (one round trip for S2's counters).
pub fn costs<C: Channel>(s1: &mut S1<C>) -> SecureResult<Costs> {
    Ok(Costs {
        s1: s1.counts(),
        s2: s1.s2_counts()?,
        traffic: s1.traffic_snapshot(),
    })
}

impl Costs {
    /// `self − earlier`.
    pub fn since(&self, e: &Costs) -> Costs {
        Costs {
            s1: self.s1.since(&e.s1),
            s2: self.s2.since(&e.s2),
            traffic: self.traffic.since(&e.traffic),
        }
    }
}

/// Every entry in the order [`Params::map`] visits them (per layer: weights row by row, then
/// biases), so that `params.map(|_| it.next())` rebuilds the same layout.
pub(crate) fn map_order<T>(p: &Params<T>) -> Vec<&T> {
    p.layers
        .iter()
        .flat_map(|l| l.w.iter().flatten().chain(l.b.iter()))
        .collect()
}

/// Encrypts plaintext initial weights (the owner supplies them; used for reproducible runs and for
/// the bit-for-bit parity tests).
pub fn encrypt_params(pk: &PublicKey, params: &Params<i128>) -> SecureResult<Params<Ciphertext>> {
    let flat = map_order(params);
    let cts: Vec<Ciphertext> = flat
        .par_iter()
        .map(|&&v| Ok(pk.encrypt(&BigInt::from(v), &mut rand::thread_rng())?))
        .collect::<SecureResult<_>>()?;
    let mut it = cts.into_iter();
    Ok(params.map(|_| it.next().expect("same count")))
}

/// A new encrypted model. With `initial = None` the weights are the sum of two independent
/// uniform draws in [−B_l/2, B_l/2] (B_l = [`glorot_bound`]): one drawn and encrypted by S2
/// (`random_values`), one drawn and encrypted by S1 with a CSPRNG, so that neither server knows
/// them (their distribution is triangular on [−B_l, B_l]). Biases start at ⟦0⟧.
pub fn new_model<C: Channel>(
    s1: &mut S1<C>,
    shape: Shape,
    fixed: FixedParams,
    classes: usize,
    initial: Option<Params<Ciphertext>>,
) -> SecureResult<EncryptedModel> {
    fixed.validate()?;
    if shape.outputs() != outputs_for_classes(classes) {
        return Err(SecureError::Mismatch(format!(
            "{classes} classes need {} outputs",
            outputs_for_classes(classes)
        )));
    }
    let pk = s1.public_key().clone();
    let params = match initial {
        Some(p) => p,
        None => {
            let fw = fixed.weight_frac_bits();
            let halves: Vec<BigInt> = (1..=shape.num_layers())
                .map(|l| {
                    let (fan_in, fan_out) = shape.layer_dims(l);
                    BigInt::from(glorot_bound(fan_in, fan_out, fw) / 2)
                })
                .collect();
            let draws: Vec<(usize, BigInt)> = (1..=shape.num_layers())
                .map(|l| {
                    let (fan_in, fan_out) = shape.layer_dims(l);
                    (fan_in * fan_out, halves[l - 1].clone())
                })
                .collect();
            let drawn = s1.random_values(&draws)?;
            let layers = drawn
                .into_iter()
                .enumerate()
                .map(|(idx, w)| {
                    let (fan_in, fan_out) = shape.layer_dims(idx + 1);
                    let half = &halves[idx];
                    let span: BigInt = half * 2 + 1u32;
                    let span = span.to_biguint().expect("non-negative");
                    let mine: Vec<Ciphertext> = w
                        .par_iter()
                        .map(|c| {
                            let mut rng = rand::rngs::OsRng;
                            let v = BigInt::from(paillier::random_below(&span, &mut rng)) - half;
                            Ok(pk.add(c, &pk.encrypt(&v, &mut rng)?))
                        })
                        .collect::<SecureResult<_>>()?;
                    let mut it = mine.into_iter();
                    let mut rng = rand::rngs::OsRng;
                    Ok(Layer {
                        w: (0..fan_out)
                            .map(|_| it.by_ref().take(fan_in).collect())
                            .collect(),
                        b: (0..fan_out).map(|_| pk.encrypt_i64(0, &mut rng)).collect(),
                    })
                })
                .collect::<SecureResult<_>>()?;
            Params { layers }
        }
    };
    let model = EncryptedModel {
        fingerprint: pk.fingerprint(),
        shape,
        fixed,
        profile: s1.params().profile,
        classes,
        epochs_trained: 0,
        params,
    };
    model.check(&pk)?;
    Ok(model)
}

fn check_session<C: Channel>(s1: &S1<C>, model: &EncryptedModel) -> SecureResult<()> {
    if s1.public_key().fingerprint() != model.fingerprint {
        return Err(SecureError::Mismatch(
            "the session key does not match the model's key".into(),
        ));
    }
    if s1.params().frac_bits != model.fixed.frac_bits {
        return Err(SecureError::Mismatch(format!(
            "session fractional bits f = {} differ from the model's f = {}",
            s1.params().frac_bits,
            model.fixed.frac_bits
        )));
    }
    if s1.params().value_bits != model.fixed.value_bits {
        return Err(SecureError::Mismatch(format!(
            "session value bound ℓ = {} differs from the model's ℓ = {}",
            s1.params().value_bits,
            model.fixed.value_bits
        )));
    }
    Ok(())
}

/// What the forward pass keeps for the backward pass, for a batch of samples.
struct ForwardTrace {
    /// a_l per layer l = 0..L−1 (a_0 = x), each a batch-major flat vector.
    acts: Vec<Vec<Ciphertext>>,
    /// ReLU derivatives d_l for hidden layers l = 1..L−1 (index l − 1), batch-major.
    derivs: Vec<Vec<Ciphertext>>,
    /// Outputs o (batch-major, k per sample).
    out: Vec<Ciphertext>,
    /// The inputs' blinded packs of the first SecDot, for the gradient (training only).
    inputs: Option<Reusable>,
}

fn flat_weights(layer: &Layer<Ciphertext>) -> Vec<Ciphertext> {
    layer.w.iter().flatten().cloned().collect()
}

/// Forward pass for a batch: per layer one SecDot round (all samples share the blinded weights),
/// one truncation round and, on hidden layers, one SecReLU round. With `keep_inputs`, the first
/// SecDot's blinded input packs are kept for the gradient ([`Reusable`]).
fn forward<C: Channel>(
    s1: &mut S1<C>,
    params: &Params<Ciphertext>,
    fixed: &FixedParams,
    xs: &[&[Ciphertext]],
    keep_inputs: bool,
) -> SecureResult<ForwardTrace> {
    let pk = s1.public_key().clone();
    let (b, fw, f) = (xs.len(), fixed.weight_frac_bits(), fixed.frac_bits);
    let mut acts: Vec<Vec<Ciphertext>> = vec![xs.iter().flat_map(|x| x.iter().cloned()).collect()];
    let mut derivs = Vec::new();
    let mut inputs = None;
    let nl = params.layers.len();
    for (idx, layer) in params.layers.iter().enumerate() {
        let (rows, cols) = (layer.fan_out(), layer.fan_in());
        let w = flat_weights(layer);
        let a = acts.last().expect("input");
        let mut operands: Vec<Operand<'_>> = vec![Operand::Fresh(&w)];
        operands.extend(a.chunks(cols).map(Operand::Fresh));
        let jobs: Vec<(Job, bool)> = (0..b)
            .map(|t| {
                let job = Job::MatVec {
                    mat: 0,
                    vec: t + 1,
                    rows,
                    cols,
                };
                (job, false)
            })
            .collect();
        let keep = (keep_inputs && idx == 0).then_some(1);
        let (sums, kept) = s1.products_reusing(&operands, &jobs, keep)?;
        if kept.is_some() {
            inputs = kept;
        }
        // s = W·a + b·2^f, then ⌊s / 2^F_w⌋.
        let scale = pow2(f);
        let bias: Vec<Ciphertext> = layer
            .b
            .par_iter()
            .map(|c| pk.mul_plain(c, &scale))
            .collect::<Result<_, _>>()?;
        let s: Vec<Ciphertext> = sums
            .iter()
            .flat_map(|row| row.iter().zip(&bias).map(|(x, bb)| pk.add(x, bb)))
            .collect();
        let z = s1.truncate(&s, fw)?;
        if idx + 1 < nl {
            // |s| < 2^ℓ, so |z| ≤ 2^(ℓ − F_w): a strict comparison of ℓ − F_w + 1 bits.
            let (a_next, d) = s1.relu_within(&z, truncated_bits(s1, fw))?;
            acts.push(a_next);
            derivs.push(d);
        } else {
            return Ok(ForwardTrace {
                acts,
                derivs,
                out: z,
                inputs,
            });
        }
    }
    unreachable!("a network has at least one layer")
}

/// A bound on the bits of ⌊s / 2^k⌋ for an in-range s (|s| < 2^ℓ): |⌊s / 2^k⌋| ≤ 2^(ℓ − k) <
/// 2^(ℓ − k + 1) (at most ℓ) — what a strict comparison of a truncated value needs.
fn truncated_bits<C: Channel>(s1: &S1<C>, k: u32) -> u32 {
    let l = s1.params().value_bits;
    (l.saturating_sub(k) + 1).min(l)
}

/// One SGD step on a mini-batch (all samples use the same weights; gradients of `loss` are
/// summed), exactly as [`crate::FixedMlp::train_batch`] does in the clear:
/// [`batch_gradients`], then [`apply_gradients`].
pub fn train_batch<C: Channel>(
    s1: &mut S1<C>,
    model: &mut EncryptedModel,
    batch: &[&EncryptedSample],
    loss: Loss,
) -> SecureResult<()> {
    let pk = s1.public_key().clone();
    let g = batch_gradients(s1, model, batch, loss)?;
    apply_gradients(&pk, model, &g)
}

/// The encrypted sums a mini-batch contributes to an SGD step, per layer: −Σ_t δ_t ⊗ a_t (the
/// negated weight gradient, at the weights' scale, row-major) and Σ_t δ_t (for the biases).
/// Both are exact integers under encryption, so the sums of two shards of a batch, added
/// homomorphically ([`Gradients::add`]), are the sums of the whole batch: data-parallel training
/// over any split of a batch gives the same step bit for bit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Gradients {
    /// Per layer (first to last): (−Σ δ ⊗ a, Σ δ).
    pub layers: Vec<(Vec<Ciphertext>, Vec<Ciphertext>)>,
    /// Samples summed.
    pub samples: usize,
}

/// A sealed [`Gradients`] (what a data-parallel worker sends back).
pub const GRADIENTS: FileKind = FileKind {
    tag: *b"GRAD",
    name: "encrypted gradients",
    version: 1,
};

impl Gradients {
    /// Adds `other` (another shard of the same step) homomorphically.
    pub fn add(&mut self, pk: &PublicKey, other: &Gradients) -> SecureResult<()> {
        if self.layers.len() != other.layers.len()
            || self
                .layers
                .iter()
                .zip(&other.layers)
                .any(|(a, b)| a.0.len() != b.0.len() || a.1.len() != b.1.len())
        {
            return Err(SecureError::Mismatch(
                "the gradients are of different networks".into(),
            ));
        }
        for (a, b) in self.layers.iter_mut().zip(&other.layers) {
            for (x, y) in a.0.iter_mut().zip(&b.0).chain(a.1.iter_mut().zip(&b.1)) {
                *x = pk.add(x, y);
            }
        }
        self.samples += other.samples;
        Ok(())
    }

    /// Checks the shape against `model` and every ciphertext against `pk` (input from a peer).
    pub fn check(&self, pk: &PublicKey, model: &EncryptedModel) -> SecureResult<()> {
        let fits =
            self.layers.len() == model.params.layers.len()
                && self.layers.iter().zip(&model.params.layers).all(|(g, l)| {
                    g.0.len() == l.fan_out() * l.fan_in() && g.1.len() == l.fan_out()
                });
        if !fits {
            return Err(SecureError::Mismatch(format!(
                "the gradients do not fit the network {}",
                model.shape
            )));
        }
        for c in self.layers.iter().flat_map(|(w, b)| w.iter().chain(b)) {
            pk.validate(c)
                .map_err(|_| SecureError::Mismatch("an invalid gradient ciphertext".into()))?;
        }
        Ok(())
    }
}

/// Applies one step's summed gradients: W += num·(−ΣΔ) exactly, b −= num·2^f·Σδ.
pub fn apply_gradients(
    pk: &PublicKey,
    model: &mut EncryptedModel,
    g: &Gradients,
) -> SecureResult<()> {
    g.check(pk, model)?;
    let fixed = model.fixed;
    let num = BigInt::from(fixed.lr.num);
    let bias_step = -(&num * pow2(fixed.frac_bits));
    for (layer, (neg_grad, delta_sum)) in model.params.layers.iter_mut().zip(&g.layers) {
        let cols = layer.fan_in();
        let w = flat_weights(layer);
        let new_w: Vec<Ciphertext> = w
            .par_iter()
            .zip(neg_grad.par_iter())
            .map(|(wc, g)| {
                if fixed.lr.num == 1 {
                    Ok(pk.add(wc, g))
                } else {
                    Ok(pk.add(wc, &pk.mul_plain(g, &num)?))
                }
            })
            .collect::<Result<_, paillier::Error>>()?;
        for (row, chunk) in layer.w.iter_mut().zip(new_w.chunks(cols)) {
            row.clone_from_slice(chunk);
        }
        let new_b: Vec<Ciphertext> = layer
            .b
            .par_iter()
            .zip(delta_sum.par_iter())
            .map(|(b, d)| {
                let one = BigInt::from(1);
                pk.linear_combination(&[(b, &one), (d, &bias_step)], &BigInt::from(0))
            })
            .collect::<Result<_, _>>()?;
        layer.b = new_b;
    }
    Ok(())
}

/// The sums `batch` contributes to one SGD step of `model` ([`Gradients`]); `model` is not
/// changed.
pub fn batch_gradients<C: Channel>(
    s1: &mut S1<C>,
    model: &EncryptedModel,
    batch: &[&EncryptedSample],
    loss: Loss,
) -> SecureResult<Gradients> {
    if batch.is_empty() {
        return Err(SecureError::Mismatch("an empty mini-batch".into()));
    }
    let pk = s1.public_key().clone();
    let fixed = model.fixed;
    let (f, fw) = (fixed.frac_bits, fixed.weight_frac_bits());
    let xs: Vec<&[Ciphertext]> = batch.iter().map(|s| &s.x[..]).collect();
    let mut trace = forward(s1, &model.params, &fixed, &xs, true)?;
    let bsz = batch.len();
    let k = model.shape.outputs();
    // δ_L = e − y with e = o (squared loss) or e = clip(o, 0, 1) = max(o, 0) − max(o − 2^f, 0)
    // (smooth hinge: both ReLUs in one SecReLU round).
    let e = match loss {
        Loss::Squared => trace.out,
        Loss::SmoothHinge => {
            let minus_one = -pow2(f);
            let mut z = trace.out.clone();
            for o in &trace.out {
                z.push(pk.add_plain(o, &minus_one)?);
            }
            // |o| ≤ 2^(ℓ − F_w) and |o − 2^f| < that + 2^f.
            let bound = truncated_bits(s1, fw).max(f) + 1;
            let (r, _) = s1.relu_within(&z, bound.min(s1.params().value_bits))?;
            let (low, high) = r.split_at(trace.out.len());
            low.par_iter()
                .zip(high)
                .map(|(a, b)| pk.sub(a, b))
                .collect::<Result<_, _>>()?
        }
    };
    let mut delta: Vec<Ciphertext> = e
        .par_iter()
        .enumerate()
        .map(|(i, o)| pk.sub(o, &batch[i / k].y[i % k]))
        .collect::<Result<_, _>>()?;
    let mut grads: Vec<(Vec<Ciphertext>, Vec<Ciphertext>)> =
        vec![(Vec::new(), Vec::new()); model.params.layers.len()];
    for l in (1..=model.params.layers.len()).rev() {
        let layer = &model.params.layers[l - 1];
        let (rows, cols) = (layer.fan_out(), layer.fan_in());
        let a_prev = &trace.acts[l - 1];
        let w = flat_weights(layer);
        // One round: −Σ_t δ_t ⊗ a_t (the gradient, negated) and, below the top, W^T δ_t per sample.
        // The first layer's inputs go as the packs the forward SecDot sent (no packing).
        let kept = if l == 1 { trace.inputs.take() } else { None };
        let a_op = match &kept {
            Some(r) => Operand::Reused(r),
            None => Operand::Fresh(a_prev),
        };
        let mut operands: Vec<Operand<'_>> = vec![Operand::Fresh(&delta), a_op];
        let mut jobs = vec![(
            Job::OuterSum {
                a: 0,
                b: 1,
                a_len: rows,
                b_len: cols,
                batch: bsz,
            },
            true,
        )];
        if l > 1 {
            operands.push(Operand::Fresh(&w));
            operands.extend(delta.chunks(rows).map(Operand::Fresh));
            jobs.extend((0..bsz).map(|t| {
                (
                    Job::VecMat {
                        mat: 2,
                        vec: 3 + t,
                        rows,
                        cols,
                    },
                    false,
                )
            }));
        }
        let mut res = s1.products_reusing(&operands, &jobs, None)?.0;
        let back: Vec<Ciphertext> = res.drain(1..).flatten().collect();
        let neg_grad = res.pop().expect("gradient");
        let delta_sum: Vec<Ciphertext> = (0..rows)
            .into_par_iter()
            .map(|j| {
                let mut acc = delta[j].clone();
                for s in 1..bsz {
                    acc = pk.add(&acc, &delta[s * rows + j]);
                }
                acc
            })
            .collect();
        grads[l - 1] = (neg_grad, delta_sum);
        if l > 1 {
            // δ_{l−1} = d_{l−1} ⊙ ⌊W^T δ / 2^F_w⌋
            let t = s1.truncate(&back, fw)?;
            delta = s1.mul(&trace.derivs[l - 2], &t)?;
        }
    }
    Ok(Gradients {
        layers: grads,
        samples: bsz,
    })
}

/// Trains `model` on `data` for the epochs `model.epochs_trained .. config.epochs`, in the order
/// given by [`epoch_order`]`(n, seed, epoch)`, calling `progress` after each batch and `on_epoch`
/// (e.g. to write a checkpoint) after each epoch.
pub fn train<C: Channel>(
    s1: &mut S1<C>,
    model: &mut EncryptedModel,
    data: &EncryptedDataset,
    config: &TrainConfig,
    progress: impl FnMut(&Progress),
    mut on_epoch: impl FnMut(&EncryptedModel) -> SecureResult<()>,
) -> SecureResult<()> {
    train_from(s1, model, data, config, 0, progress, |m, position| {
        if position == 0 {
            on_epoch(m)
        } else {
            Ok(())
        }
    })
}

/// [`train`] from a checkpoint within an epoch: the first `position` samples of epoch
/// `model.epochs_trained` are already trained. `on_batch(model, position)` is called after every
/// batch with the position reached in epoch `model.epochs_trained` (0 right after an epoch ends),
/// so that `Checkpoint { model, config, position }` can be saved at any batch boundary; resuming
/// from it gives the same computation as the uninterrupted run (bit for bit in the strict profile).
pub fn train_from<C: Channel>(
    s1: &mut S1<C>,
    model: &mut EncryptedModel,
    data: &EncryptedDataset,
    config: &TrainConfig,
    position: usize,
    mut progress: impl FnMut(&Progress),
    mut on_batch: impl FnMut(&EncryptedModel, usize) -> SecureResult<()>,
) -> SecureResult<()> {
    check_session(s1, model)?;
    data.check(s1.public_key(), true)?;
    model.check_data(data)?;
    if config.batch == 0 {
        return Err(SecureError::Mismatch(
            "batch size must be at least 1".into(),
        ));
    }
    if data.is_empty() {
        return Err(SecureError::Mismatch("the data set is empty".into()));
    }
    let n = data.len();
    if position > 0 {
        Checkpoint {
            model: model.clone(),
            config: config.clone(),
            position,
        }
        .check_resumable(config, n)?;
    }
    let start = Instant::now();
    let mut skip = position;
    while model.epochs_trained < config.epochs {
        let epoch = model.epochs_trained;
        let order = epoch_order(n, config.seed, epoch);
        let mut done = std::mem::take(&mut skip);
        for chunk in order[done..].chunks(config.batch) {
            let batch: Vec<&EncryptedSample> = chunk.iter().map(|&i| &data.samples[i]).collect();
            train_batch(s1, model, &batch, config.loss)?;
            done += chunk.len();
            progress(&Progress {
                epoch,
                epochs: config.epochs,
                done,
                total: n,
                elapsed: start.elapsed(),
            });
            if done == n {
                model.epochs_trained += 1;
                on_batch(model, 0)?;
            } else {
                on_batch(model, done)?;
            }
        }
    }
    Ok(())
}

/// Encrypted predictions: per sample the class as an encrypted bit (binary) or one-hot vector,
/// and the encrypted output scores (scale 2^f).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EncryptedPredictions {
    /// Key of the ciphertexts.
    pub fingerprint: Fingerprint,
    /// Number of classes.
    pub classes: usize,
    /// f of the scores.
    pub frac_bits: u32,
    /// ⟦class bit⟧ or ⟦one-hot⟧ per sample.
    pub classes_enc: Vec<Vec<Ciphertext>>,
    /// ⟦scores⟧ per sample.
    pub scores: Vec<Vec<Ciphertext>>,
}

impl EncryptedPredictions {
    /// Checks the file's invariants against `pk`: the key, at least two classes, one class entry
    /// per sample (one bit, or a one-hot vector of `classes`), scores for every sample or none,
    /// each of the same width, and valid ciphertexts throughout.
    pub fn check(&self, pk: &PublicKey) -> SecureResult<()> {
        if self.fingerprint != pk.fingerprint() {
            return Err(SecureError::Mismatch(format!(
                "predictions are encrypted under key {}, but this key is {}",
                self.fingerprint,
                pk.fingerprint()
            )));
        }
        let bad = |m: String| Err(SecureError::Mismatch(format!("malformed predictions: {m}")));
        if self.classes < 2 {
            return bad(format!("{} classes", self.classes));
        }
        let width = outputs_for_classes(self.classes);
        if let Some(i) = self.classes_enc.iter().position(|v| v.len() != width) {
            return bad(format!("sample {i} has a class entry of the wrong width"));
        }
        if !self.scores.is_empty() {
            if self.scores.len() != self.classes_enc.len() {
                return bad(format!(
                    "{} score rows for {} samples",
                    self.scores.len(),
                    self.classes_enc.len()
                ));
            }
            if let Some(i) = self.scores.iter().position(|v| v.len() != width) {
                return bad(format!("sample {i} has scores of the wrong width"));
            }
        }
        for c in self.classes_enc.iter().chain(&self.scores).flatten() {
            pk.validate(c).map_err(|_| {
                SecureError::Mismatch("predictions hold an invalid ciphertext".into())
            })?;
        }
        Ok(())
    }
}

/// Samples per forward pass of [`classify`] by default (`smlp classify --chunk`, the demo, `xtask
/// speed`): one S2 round trip per layer and chunk; a request holds at most
/// [`secure_ops::messages::MAX_WIRE_ITEMS`] product jobs, one per sample.
pub const CLASSIFY_CHUNK: usize = 32;

/// Values per key-switching request (well below S2's default limit of 2^18).
const SWITCH_CHUNK: usize = 1 << 14;

/// `cts` (under the session's key) under `to`, another tenant's key S2 holds, in requests of at
/// most [`SWITCH_CHUNK`] values ([`S1::switch_key`]).
fn switch_all<C: Channel>(
    s1: &mut S1<C>,
    cts: &[Ciphertext],
    to: &PublicKey,
) -> SecureResult<Vec<Ciphertext>> {
    let mut out = Vec::with_capacity(cts.len());
    for part in cts.chunks(SWITCH_CHUNK) {
        out.extend(s1.switch_key(part, to)?);
    }
    Ok(out)
}

/// A data set's features, moved from the session's key to `to` through S2's key switching
/// (labels are dropped: this serves classification with another tenant's model). Exact: the
/// values under `to` are those under the session's key.
pub fn switch_dataset<C: Channel>(
    s1: &mut S1<C>,
    data: &EncryptedDataset,
    to: &PublicKey,
) -> SecureResult<EncryptedDataset> {
    data.check(s1.public_key(), false)?;
    let flat: Vec<Ciphertext> = data.samples.iter().flat_map(|s| s.x.clone()).collect();
    let moved = switch_all(s1, &flat, to)?;
    let mut it = moved.into_iter();
    let samples = data
        .samples
        .iter()
        .map(|s| EncryptedSample {
            x: it.by_ref().take(s.x.len()).collect(),
            y: Vec::new(),
        })
        .collect();
    Ok(EncryptedDataset {
        fingerprint: to.fingerprint(),
        frac_bits: data.frac_bits,
        classes: data.classes,
        features: data.features,
        samples,
        settings: data.settings.clone(),
    })
}

/// Predictions moved from the session's key to `to` through S2's key switching (exact).
pub fn switch_predictions<C: Channel>(
    s1: &mut S1<C>,
    p: &EncryptedPredictions,
    to: &PublicKey,
) -> SecureResult<EncryptedPredictions> {
    p.check(s1.public_key())?;
    let flat: Vec<Ciphertext> = p
        .classes_enc
        .iter()
        .chain(&p.scores)
        .flat_map(|v| v.clone())
        .collect();
    let moved = switch_all(s1, &flat, to)?;
    let mut it = moved.into_iter();
    let mut take = |rows: &[Vec<Ciphertext>]| -> Vec<Vec<Ciphertext>> {
        rows.iter()
            .map(|r| it.by_ref().take(r.len()).collect())
            .collect()
    };
    let classes_enc = take(&p.classes_enc);
    let scores = take(&p.scores);
    Ok(EncryptedPredictions {
        fingerprint: to.fingerprint(),
        classes: p.classes,
        frac_bits: p.frac_bits,
        classes_enc,
        scores,
    })
}

/// Classifies encrypted samples: forward pass in batches of `chunk`, then SecCompare of the score
/// with 1/2 (binary) or an encrypted argmax (k classes). Results stay encrypted.
pub fn classify<C: Channel>(
    s1: &mut S1<C>,
    model: &EncryptedModel,
    data: &EncryptedDataset,
    chunk: usize,
    mut progress: impl FnMut(&Progress),
) -> SecureResult<EncryptedPredictions> {
    check_session(s1, model)?;
    model.check(s1.public_key())?;
    data.check(s1.public_key(), false)?;
    model.check_inputs(data)?;
    let pk = s1.public_key().clone();
    let k = model.shape.outputs();
    let start = Instant::now();
    let mut classes_enc = Vec::with_capacity(data.len());
    let mut scores = Vec::with_capacity(data.len());
    for part in data.samples.chunks(chunk.max(1)) {
        let xs: Vec<&[Ciphertext]> = part.iter().map(|s| &s.x[..]).collect();
        let out = forward(s1, &model.params, &model.fixed, &xs, false)?.out;
        let per: Vec<Vec<Ciphertext>> = out.chunks(k).map(<[Ciphertext]>::to_vec).collect();
        if k == 1 {
            // class = 1{o > 2^(f−1)}
            let half = -pow2(model.fixed.frac_bits - 1);
            let shifted: Vec<Ciphertext> = out
                .iter()
                .map(|o| pk.add_plain(o, &half))
                .collect::<Result<_, _>>()?;
            // |o| ≤ 2^(ℓ − F_w) and 2^(f−1) < 2^f.
            let fw = model.fixed.weight_frac_bits();
            let bound =
                (truncated_bits(s1, fw).max(model.fixed.frac_bits) + 1).min(s1.params().value_bits);
            classes_enc.extend(
                s1.positive_within(&shifted, bound)?
                    .into_iter()
                    .map(|b| vec![b]),
            );
        } else {
            // |o| ≤ 2^(ℓ − F_w).
            let fw = model.fixed.weight_frac_bits();
            let bound = truncated_bits(s1, fw).min(s1.params().value_bits - 1);
            classes_enc.extend(s1.argmax_within(&per, bound)?);
        }
        scores.extend(per);
        progress(&Progress {
            epoch: 0,
            epochs: 1,
            done: scores.len(),
            total: data.len(),
            elapsed: start.elapsed(),
        });
    }
    Ok(EncryptedPredictions {
        fingerprint: model.fingerprint,
        classes: model.classes,
        frac_bits: model.fixed.frac_bits,
        classes_enc,
        scores,
    })
}
