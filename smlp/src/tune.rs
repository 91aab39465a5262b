//! Tuning in the clear, on the owner's side: k-fold cross-validation of the fixed-point twin
//! ([`FixedMlp`]: the integer arithmetic the encrypted run performs, with the strict profile's
//! floor rounding) over a small grid of training settings, within a time budget. Nothing is
//! encrypted, so a setting costs milliseconds instead of an encrypted run's minutes, and the
//! owner, who holds the plaintext, learns nothing it did not know.

use crate::data::{Dataset, EncodedDataset, Standardizer, DEFAULT_INT_BITS};
use crate::model::{init_fixed, FixedParams, LearningRate, Loss, Shape};
use crate::reference::{accuracy, train_fixed, FixedMlp, TrainOptions};
use crate::{Error, Result};
use paillier::FixedPoint;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One training setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Mini-batch size.
    pub batch: usize,
    /// Learning rate num / 2^shift.
    pub lr_num: u32,
    /// Learning rate num / 2^shift.
    pub lr_shift: u32,
    /// Epochs.
    pub epochs: u64,
    /// Loss.
    pub loss: Loss,
}

impl Setting {
    /// One line for people: `hidden 8, batch 16, η 1/2^5, 2 epoch(s), smooth-hinge loss`.
    pub fn describe(&self) -> String {
        let hidden: Vec<String> = self.hidden.iter().map(|h| h.to_string()).collect();
        format!(
            "hidden {}, batch {}, η {}/2^{}, {} epoch(s), {} loss",
            hidden.join(","),
            self.batch,
            self.lr_num,
            self.lr_shift,
            self.epochs,
            self.loss
        )
    }
}

/// A setting's cross-validated accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The setting.
    pub setting: Setting,
    /// Mean accuracy over the folds (a fold whose training left the fixed-point range counts 0).
    pub mean: f64,
    /// The worst fold's accuracy.
    pub worst: f64,
    /// Folds whose training left the fixed-point range.
    pub diverged: usize,
}

/// Settings chosen for a data set, and where they came from: what `smlp tune` writes, what
/// `smlp encrypt` records in the data set (public, like its shape: S1 trains with them anyway),
/// and what `smlp train` takes as its defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tuned {
    /// Where they came from, for people (`auto: …`, `smlp tune …`, `defaults`).
    pub source: String,
    /// The setting.
    pub setting: Setting,
    /// Its mean cross-validated accuracy (0 when not cross-validated).
    pub mean: f64,
    /// Its worst fold (0 when not cross-validated).
    pub worst: f64,
    /// Folds (0: not cross-validated).
    pub folds: usize,
    /// Samples it was chosen on.
    pub samples: usize,
}

/// Longest [`Tuned::source`] accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024;
/// Widest hidden layer and most epochs accepted in recorded settings.
pub const MAX_HIDDEN: usize = 4096;
/// See [`MAX_HIDDEN`].
pub const MAX_EPOCHS: u64 = 10_000;

impl Tuned {
    /// Checks settings read from a file or a peer: at least one hidden layer, each of 1 to
    /// [`MAX_HIDDEN`] neurons (at most 8 layers), a batch and 1 to [`MAX_EPOCHS`] epochs, a
    /// learning-rate numerator ≥ 1 and shift ≤ 64, a source of at most [`MAX_SOURCE_BYTES`].
    pub fn validate(&self) -> Result<()> {
        let s = &self.setting;
        let bad = |what: String| Err(Error::InvalidParams(what));
        if s.hidden.is_empty()
            || s.hidden.len() > 8
            || s.hidden.iter().any(|&h| h == 0 || h > MAX_HIDDEN)
        {
            return bad(format!(
                "hidden sizes {:?} (1 to 8 layers of 1 to {MAX_HIDDEN})",
                s.hidden
            ));
        }
        if s.batch == 0 || s.epochs == 0 || s.epochs > MAX_EPOCHS {
            return bad(format!("batch {} and {} epochs", s.batch, s.epochs));
        }
        if s.lr_num == 0 || s.lr_shift > 64 {
            return bad(format!("learning rate {}/2^{}", s.lr_num, s.lr_shift));
        }
        if self.source.len() > MAX_SOURCE_BYTES {
            return bad(format!("a source of {} bytes", self.source.len()));
        }
        Ok(())
    }

    /// One line for people: `hidden 8, batch 16, η 1/2^5, 2 epoch(s), smooth-hinge loss`.
    pub fn describe(&self) -> String {
        self.setting.describe()
    }
}

/// Learning rates [`auto`] tries: η = 2^-3 … 2^-7, the default first.
pub const AUTO_LR_SHIFTS: [u32; 5] = [4, 5, 3, 6, 7];

/// Folds of [`auto`]'s cross-validation.
pub const AUTO_FOLDS: usize = 3;

/// The default settings ([`crate::defaults`]) with the learning rate chosen on `data`: `k`-fold
/// cross-validation of the fixed-point twin over [`AUTO_LR_SHIFTS`], every core, repeated
/// [`auto_repeats`] times on small sets. The batch, the
/// epochs and the network stay the defaults', so the encrypted run costs what the defaults' would:
/// only the step adapts (wider inputs and more classes want a smaller one). Milliseconds to
/// seconds (digits, 1 257 samples, hidden 16: about a second on 2 cores).
pub fn auto(data: &Dataset, hidden: Option<&[usize]>, k: usize, seed: u64) -> Result<Tuned> {
    let base = crate::defaults::setting(hidden);
    let scored = AUTO_LR_SHIFTS
        .iter()
        .map(|&lr_shift| {
            let s = Setting {
                lr_shift,
                ..base.clone()
            };
            repeated_cross_validate(data, &s, k, seed, auto_repeats(data.len()))
        })
        .collect::<Result<Vec<_>>>()?;
    let chosen = best(&scored).expect("AUTO_LR_SHIFTS is not empty");
    Ok(Tuned {
        source: format!(
            "auto: learning rate by {k}-fold cross-validation ({} time(s)) of the fixed-point \
             twin over η = 2^-3 … 2^-7 on {} samples; the rest the defaults",
            auto_repeats(data.len()),
            data.len()
        ),
        setting: chosen.setting.clone(),
        mean: chosen.mean,
        worst: chosen.worst,
        folds: k,
        samples: data.len(),
    })
}

/// Repetitions of [`auto`]'s cross-validation (with folds and initial weights from seeds
/// `seed`, `seed + 1`, …) for `samples` samples: enough that about 2 000 sample-folds judge each
/// step (small sets are noisy and cheap), 1 to 8.
pub fn auto_repeats(samples: usize) -> u64 {
    (2000 / samples.max(1)).clamp(1, 8) as u64
}

/// [`cross_validate`] repeated with seeds `seed .. seed + repeats`: the mean of the means, the
/// worst fold of all, the diverged folds of all.
pub fn repeated_cross_validate(
    data: &Dataset,
    setting: &Setting,
    k: usize,
    seed: u64,
    repeats: u64,
) -> Result<Scored> {
    let runs = (seed..seed + repeats.max(1))
        .map(|s| cross_validate(data, setting, k, s))
        .collect::<Result<Vec<_>>>()?;
    Ok(Scored {
        setting: setting.clone(),
        mean: runs.iter().map(|r| r.mean).sum::<f64>() / runs.len() as f64,
        worst: runs.iter().map(|r| r.worst).fold(f64::INFINITY, f64::min),
        diverged: runs.iter().map(|r| r.diverged).sum(),
    })
}

/// Measured seconds per training sample of the 30→8→1 network (257 weights), strict profile,
/// 2048-bit key, on the project's 2-core VM (README, Measured, 2026-12-05): B = 1 and B = 16.
const SECONDS_PER_SAMPLE_B1: f64 = 0.381;
/// See [`SECONDS_PER_SAMPLE_B1`].
const SECONDS_PER_SAMPLE_B16: f64 = 0.159;

/// An estimate of what `setting` costs encrypted on `samples` samples of `features` features and
/// `outputs` outputs, in seconds on 2 cores (strict, 2048-bit key): the measured per-sample cost
/// of the 30→8→1 network, interpolated in 1/B between B = 1 and B = 16 and scaled by the number
/// of weights (the products, truncations and most comparisons are per weight or per neuron),
/// times epochs × samples. An estimate for choosing, not a promise.
pub fn estimated_seconds(
    setting: &Setting,
    features: usize,
    outputs: usize,
    samples: usize,
) -> f64 {
    let Ok(shape) = Shape::mlp(features, &setting.hidden, outputs) else {
        return f64::NAN;
    };
    let sizes = shape.sizes();
    let weights: usize = sizes.windows(2).map(|w| (w[0] + 1) * w[1]).sum();
    // c(B) = a + b / B through the two measured points.
    let b = (SECONDS_PER_SAMPLE_B1 - SECONDS_PER_SAMPLE_B16) * 16.0 / 15.0;
    let a = SECONDS_PER_SAMPLE_B1 - b;
    let per_sample = a + b / setting.batch.max(1) as f64;
    per_sample * weights as f64 / 257.0 * setting.epochs as f64 * samples as f64
}

/// The grid tried by default: mini-batches of 8 and 16, η = 2^-3 … 2^-7, 1 and 2 epochs, the
/// smoothed hinge loss, the given hidden sizes — 20 settings, in the order they are tried.
pub fn default_grid(hidden: &[usize]) -> Vec<Setting> {
    let mut grid = Vec::new();
    for epochs in [1u64, 2] {
        for batch in [16usize, 8] {
            for lr_shift in [4u32, 5, 3, 6, 7] {
                grid.push(Setting {
                    hidden: hidden.to_vec(),
                    batch,
                    lr_num: 1,
                    lr_shift,
                    epochs,
                    loss: Loss::SmoothHinge,
                });
            }
        }
    }
    grid
}

/// The sample indices of `k` stratified folds of `data` (each class dealt round robin after a
/// shuffle with `seed`).
pub fn folds(data: &Dataset, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let k = k.max(1);
    let mut out = vec![Vec::new(); k];
    let mut next = 0;
    for class in 0..data.classes {
        let mut idx: Vec<usize> = (0..data.len())
            .filter(|&i| data.labels[i] == class)
            .collect();
        idx.shuffle(&mut rng);
        for i in idx {
            out[next % k].push(i);
            next += 1;
        }
    }
    for f in &mut out {
        f.sort_unstable();
    }
    out
}

/// Accuracy of `setting` on `held` after training on `train` (standardiser fitted on `train`,
/// as `smlp encrypt` does; initial weights and sample order from `seed`); `None` if training, or
/// classifying the held-out samples, left the fixed-point range (the encrypted run stops there
/// with the same overflow error).
pub fn holdout_accuracy(
    train: &Dataset,
    held: &Dataset,
    setting: &Setting,
    seed: u64,
) -> Result<Option<f64>> {
    let scaler = Standardizer::fit(train);
    let fp = FixedPoint::new(16, DEFAULT_INT_BITS)?;
    let train_enc = EncodedDataset::encode(&scaler.apply(train)?, &fp)?;
    let held = EncodedDataset::encode(&scaler.apply(held)?, &fp)?;
    let shape = Shape::mlp(train.num_features(), &setting.hidden, train.outputs())?;
    let lr = LearningRate::new(setting.lr_num, setting.lr_shift)?;
    let fixed = FixedParams::new(16, lr, 72)?;
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed),
    );
    let mut model = FixedMlp::from_params(init, fixed)?;
    // From epoch 0, floor rounding (the strict profile's).
    let opts = TrainOptions {
        epochs: setting.epochs,
        batch: setting.batch,
        seed,
        loss: setting.loss,
        ..TrainOptions::default()
    };
    if train_fixed(&mut model, &train_enc, &opts, |_, _| {}).is_err() {
        return Ok(None);
    }
    // Weights that trained within range can still overflow on held-out samples: diverged too
    // (the encrypted classification would stop there with the same error).
    Ok(accuracy(&model, &held.features, &held.labels).ok())
}

/// [`holdout_accuracy`] on fold `test`, trained on the other folds.
fn fold_accuracy(
    data: &Dataset,
    setting: &Setting,
    folds: &[Vec<usize>],
    test: usize,
    seed: u64,
) -> Result<Option<f64>> {
    let train_idx: Vec<usize> = folds
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != test)
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    holdout_accuracy(
        &data.subset(&train_idx),
        &data.subset(&folds[test]),
        setting,
        seed,
    )
}

/// `k`-fold cross-validation of `setting` on `data` (folds and initial weights from `seed`).
pub fn cross_validate(data: &Dataset, setting: &Setting, k: usize, seed: u64) -> Result<Scored> {
    if k < 2 || data.len() < k {
        return Err(Error::InvalidParams(format!(
            "{k}-fold cross-validation needs k ≥ 2 and at least k samples ({} here)",
            data.len()
        )));
    }
    let folds = folds(data, k, seed);
    let runs: Vec<Option<f64>> = (0..k)
        .into_par_iter()
        .map(|t| fold_accuracy(data, setting, &folds, t, seed))
        .collect::<Result<_, _>>()?;
    let accs: Vec<f64> = runs.iter().map(|r| r.unwrap_or(0.0)).collect();
    Ok(Scored {
        setting: setting.clone(),
        mean: accs.iter().sum::<f64>() / k as f64,
        worst: accs.iter().copied().fold(f64::INFINITY, f64::min),
        diverged: runs.iter().filter(|r| r.is_none()).count(),
    })
}

/// Cross-validates the settings of `grid` in order, on every core, until `deadline` (a setting
/// started before it finishes; none starts after it). Returns those scored, in grid order.
pub fn tune(
    data: &Dataset,
    grid: &[Setting],
    k: usize,
    seed: u64,
    deadline: Instant,
) -> Result<Vec<Scored>> {
    let mut out = Vec::new();
    for s in grid {
        if Instant::now() >= deadline && !out.is_empty() {
            break;
        }
        out.push(cross_validate(data, s, k, seed)?);
    }
    Ok(out)
}

/// The best of `scored`: the highest mean, then the highest worst fold, then the earlier (cheaper)
/// in grid order.
pub fn best(scored: &[Scored]) -> Option<&Scored> {
    let mut best: Option<&Scored> = None;
    for s in scored {
        let better = match best {
            None => true,
            Some(b) => {
                s.mean > b.mean + 1e-12 || ((s.mean - b.mean).abs() <= 1e-12 && s.worst > b.worst)
            }
        };
        if better {
            best = Some(s);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_the_samples_and_keep_the_classes_balanced() {
        let d = Dataset::wdbc();
        let f = folds(&d, 3, 7);
        let mut all: Vec<usize> = f.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..d.len()).collect::<Vec<_>>());
        let per_class =
            |fold: &[usize], c: usize| fold.iter().filter(|&&i| d.labels[i] == c).count();
        for c in 0..2 {
            let counts: Vec<usize> = f.iter().map(|x| per_class(x, c)).collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "{counts:?}");
        }
    }

    #[test]
    fn the_defaults_cross_validate_as_the_harness_measured_and_a_wild_rate_diverges() {
        // The README's figure (cargo xtask tune, 80/20 splits): the defaults reach about 95 % on
        // wdbc after one epoch. Three folds here, an independent estimate of the same thing.
        let d = Dataset::wdbc();
        let s = Setting {
            hidden: vec![8],
            batch: 16,
            lr_num: 1,
            lr_shift: 4,
            epochs: 1,
            loss: Loss::SmoothHinge,
        };
        let scored = cross_validate(&d, &s, 3, 5).unwrap();
        assert!(
            scored.mean >= 0.93 && scored.worst <= scored.mean,
            "{scored:?}"
        );
        assert_eq!(scored.diverged, 0);
        // η = 2^3 leaves the fixed-point range: the folds count as diverged, scored 0.
        let wild = Setting {
            lr_num: 8,
            lr_shift: 0,
            ..s.clone()
        };
        let w = cross_validate(&d, &wild, 3, 5).unwrap();
        assert!(w.diverged > 0, "{w:?}");
        assert_eq!(best(&[w, scored.clone()]).unwrap().setting, s);
        assert!(cross_validate(&d, &s, 1, 5).is_err());
    }
}
