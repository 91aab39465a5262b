//! `smlp decrypt`: predictions → CSV, models and checkpoints → JSON, data sets → CSV.

use crate::bail;
use crate::error::CliResult;
use paillier::format::{write_atomic, MAGIC};
use paillier::SecretKey;
use serde::{Deserialize, Serialize};
use smlp::encrypted::{EncryptedDataset, EncryptedPredictions, ModelFile};
use std::fmt::Write as _;
use std::path::Path;

/// What a decrypted file held.
#[derive(Debug, Clone)]
pub enum Decrypted {
    /// Predicted classes.
    Predictions(Vec<usize>),
    /// Model weights.
    Model(Box<ModelJson>),
    /// Features and labels.
    Dataset,
}

/// The JSON form of a decrypted model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelJson {
    /// Layer sizes [d, h1, ..., k].
    pub shape: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// Profile the model was trained in.
    pub profile: String,
    /// Epochs trained.
    pub epochs_trained: u64,
    /// Fingerprint of the key the model was encrypted under.
    pub fingerprint: String,
    /// f: fractional bits of inputs and activations.
    pub frac_bits: u32,
    /// F_w: weights and biases are integers at scale 2^F_w.
    pub weight_frac_bits: u32,
    /// Learning rate η = num / 2^shift.
    pub learning_rate: LearningRateJson,
    /// ℓ: bound on the values in the sub-protocols.
    pub value_bits: u32,
    /// The run's configuration (a checkpoint's, or how a model was trained when its file says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigJson>,
    /// How the model was trained and where its settings came from, one line, when its file says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
    /// Layers 1..L.
    pub layers: Vec<LayerJson>,
}

/// Learning rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearningRateJson {
    /// Numerator.
    pub num: u32,
    /// η = num / 2^shift.
    pub shift: u32,
    /// η.
    pub value: f64,
}

/// A run's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigJson {
    /// Epochs of the run.
    pub epochs: u64,
    /// Batch size.
    pub batch: usize,
    /// Order seed.
    pub seed: u64,
    /// The loss (`smooth-hinge` or `squared`, as `smlp train --loss` names it).
    pub loss: String,
}

/// One weight layer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerJson {
    /// W[out][in] as reals (raw / 2^F_w).
    pub weights: Vec<Vec<f64>>,
    /// b[out] as reals.
    pub biases: Vec<f64>,
    /// W[out][in], raw integers at scale 2^F_w (may exceed 2^53: parse as big integers).
    pub weights_raw: Vec<Vec<i128>>,
    /// b[out], raw integers at scale 2^F_w.
    pub biases_raw: Vec<i128>,
}

/// The 4-byte kind tag after the "SMLP" magic.
pub fn file_tag(bytes: &[u8]) -> CliResult<[u8; 4]> {
    if bytes.len() < 8 || bytes[..4] != MAGIC {
        bail!("not an smlp file (bad magic bytes)");
    }
    let mut t = [0u8; 4];
    t.copy_from_slice(&bytes[4..8]);
    Ok(t)
}

pub fn decrypt_predictions(
    sk: &SecretKey,
    p: &EncryptedPredictions,
    scores: bool,
    out: &Path,
) -> CliResult<Decrypted> {
    let classes = p.decrypt_classes(sk)?;
    let mut csv = String::from("row,class");
    let sc = if scores {
        if p.scores.is_empty() && !p.classes_enc.is_empty() {
            bail!("this predictions file holds no scores (decrypt without --scores)");
        }
        let s = p.decrypt_scores(sk)?;
        let k = s.first().map_or(0, Vec::len);
        for j in 0..k {
            write!(csv, ",score_{j}").expect("string write");
        }
        Some(s)
    } else {
        None
    };
    csv.push('\n');
    for (i, c) in classes.iter().enumerate() {
        write!(csv, "{i},{c}").expect("string write");
        if let Some(row) = sc.as_ref().and_then(|s| s.get(i)) {
            for v in row {
                write!(csv, ",{v}").expect("string write");
            }
        }
        csv.push('\n');
    }
    write_atomic(out, csv.as_bytes(), true)?;
    let mut counts = vec![0usize; p.classes.max(2)];
    for &c in &classes {
        if c < counts.len() {
            counts[c] += 1;
        }
    }
    println!(
        "decrypted {} predictions (per class: {:?}) → {}",
        classes.len(),
        counts,
        out.display()
    );
    Ok(Decrypted::Predictions(classes))
}

/// Decrypts a model into its JSON form.
pub fn model_json(sk: &SecretKey, file: &ModelFile) -> CliResult<ModelJson> {
    let m = &file.model;
    let raw = m.decrypt(sk)?;
    let fixed = m.fixed;
    let layers = raw
        .layers
        .iter()
        .map(|l| LayerJson {
            weights: l
                .w
                .iter()
                .map(|r| r.iter().map(|&v| fixed.decode_weight(v)).collect())
                .collect(),
            biases: l.b.iter().map(|&v| fixed.decode_weight(v)).collect(),
            weights_raw: l.w.clone(),
            biases_raw: l.b.clone(),
        })
        .collect();
    Ok(ModelJson {
        shape: m.shape.sizes().to_vec(),
        classes: m.classes,
        profile: m.profile.to_string(),
        epochs_trained: m.epochs_trained,
        fingerprint: m.fingerprint.to_string(),
        frac_bits: fixed.frac_bits,
        weight_frac_bits: fixed.weight_frac_bits(),
        learning_rate: LearningRateJson {
            num: fixed.lr.num,
            shift: fixed.lr.shift,
            value: fixed.lr.value(),
        },
        value_bits: fixed.value_bits,
        config: file.trained.as_ref().map(|t| ConfigJson {
            epochs: t.config.epochs,
            batch: t.config.batch,
            seed: t.config.seed,
            loss: t.config.loss.name().to_string(),
        }),
        settings: file.describe(),
        layers,
    })
}

pub fn write_json(out: &Path, json: &ModelJson) -> CliResult<()> {
    let mut text = serde_json::to_string_pretty(json)?;
    text.push('\n');
    write_atomic(out, text.as_bytes(), true)?;
    Ok(())
}

pub fn decrypt_dataset(sk: &SecretKey, d: &EncryptedDataset, out: &Path) -> CliResult<()> {
    let scale = f64::from(d.frac_bits).exp2();
    let rows: Vec<String> = d
        .decrypt(sk)?
        .into_iter()
        .map(|(x, y)| {
            let mut row = String::new();
            for (j, v) in x.iter().enumerate() {
                if j > 0 {
                    row.push(',');
                }
                write!(row, "{}", *v as f64 / scale).expect("string write");
            }
            let label = match y.len() {
                0 => String::new(),
                1 => (y[0] as f64 / scale).to_string(),
                _ => y
                    .iter()
                    .position(|&v| v != 0)
                    .map_or(String::new(), |c| c.to_string()),
            };
            write!(row, ",{label}").expect("string write");
            row
        })
        .collect();
    let mut csv: String = (0..d.features).map(|j| format!("x{j},")).collect();
    csv.push_str("label\n");
    for r in rows {
        csv.push_str(&r);
        csv.push('\n');
    }
    write_atomic(out, csv.as_bytes(), true)?;
    println!(
        "decrypted data set of {} samples (standardised features) → {}",
        d.len(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_tags() {
        let sealed = paillier::format::seal(&smlp::encrypted::PREDICTIONS, &1u8).unwrap();
        assert_eq!(file_tag(&sealed).unwrap(), *b"PRED");
        assert!(file_tag(b"SMLP").is_err());
        assert!(file_tag(b"hello, world").is_err());
    }
}
