//! `smlp encrypt`: CSV → standardised, fixed-point, encrypted data set.

use crate::bail;
use crate::error::{CliResult, Context};
use paillier::format::{write_atomic, write_file};
use paillier::{FixedPoint, PublicKey, SecretKey};
use smlp::data::{Dataset, EncodedDataset, Standardizer};
use smlp::encrypted::{EncryptedDataset, DATASET};
use smlp::tune::{auto, best, default_grid, tune, Tuned};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `encrypt` did.
#[derive(Debug, Clone)]
pub struct EncryptSummary {
    /// Samples encrypted.
    pub samples: usize,
    /// Time spent encrypting.
    pub elapsed: Duration,
}

/// `OUT.scaler.json`.
pub fn scaler_path_for(out: &Path) -> PathBuf {
    let mut s = OsString::from(out.as_os_str());
    s.push(".scaler.json");
    PathBuf::from(s)
}

/// The settings `smlp encrypt` records for `data` with the given hidden sizes:
/// `smlp::tune::auto`, or with `grid_seconds` (--tune) the best of the grid found within that
/// many seconds; `None` (with a note) when the file is too small to cross-validate.
pub fn choose_settings(
    data: &Dataset,
    hidden: Option<&[usize]>,
    grid_seconds: Option<f64>,
) -> CliResult<Option<Tuned>> {
    let folds = smlp::tune::AUTO_FOLDS;
    let per_class = (0..data.classes)
        .map(|c| data.labels.iter().filter(|&&l| l == c).count())
        .min()
        .unwrap_or(0);
    if data.len() < 2 * folds || per_class == 0 {
        println!(
            "  no training settings recorded: {} samples are too few to cross-validate (smlp train \
             will use the defaults)",
            data.len()
        );
        return Ok(None);
    }
    let start = Instant::now();
    let tuned = if let Some(seconds) = grid_seconds {
        if !(seconds.is_finite() && seconds > 0.0) {
            bail!("--tune-seconds must be a positive number");
        }
        let grid = default_grid(hidden.unwrap_or(smlp::defaults::HIDDEN));
        let deadline = start + Duration::from_secs_f64(seconds);
        let scored = tune(data, &grid, folds, 1, deadline)?;
        let Some(chosen) = best(&scored) else {
            bail!("no setting was tried");
        };
        Tuned {
            source: format!(
                "smlp encrypt --tune: best of {} settings of smlp tune's grid by {folds}-fold \
                 cross-validation of the fixed-point twin on {} samples",
                scored.len(),
                data.len()
            ),
            setting: chosen.setting.clone(),
            mean: chosen.mean,
            worst: chosen.worst,
            folds,
            samples: data.len(),
        }
    } else {
        auto(data, hidden, folds, 1)?
    };
    tracing::debug!(secs = start.elapsed().as_secs_f64(), "settings chosen");
    Ok(Some(tuned))
}

/// Standardises `data` (with `scaler`, or one fitted on it), encodes it in fixed point with
/// `(frac_bits, int_bits)` and encrypts it (with the secret key's CRT when given; `on_sample`
/// after each sample). Returns the encrypted data set and the scaler used.
pub fn encrypt_dataset(
    pk: &PublicKey,
    sk: Option<&SecretKey>,
    data: &Dataset,
    scaler: Option<Standardizer>,
    (frac_bits, int_bits): (u32, u32),
    labelled: bool,
    on_sample: impl Fn() + Sync,
) -> CliResult<(EncryptedDataset, Standardizer)> {
    let scaler = match scaler {
        Some(s) => {
            if s.mean.len() != data.num_features() {
                bail!(
                    "the scaler is for {} features, but the data has {}",
                    s.mean.len(),
                    data.num_features()
                );
            }
            s
        }
        None => Standardizer::fit(data),
    };
    let fp = FixedPoint::new(frac_bits, int_bits).context("fixed-point encoding")?;
    let scaled = scaler.apply(data).context("applying the scaler")?;
    let encoded = EncodedDataset::encode(&scaled, &fp)?;
    let ds = EncryptedDataset::encrypt_with(pk, sk, &encoded, labelled, on_sample);
    Ok((ds, scaler))
}

/// Writes an encrypted data set to `out` and, when given, the scaler fitted on it to
/// `OUT.scaler.json` (both 0600); returns the scaler's path.
pub fn save_dataset(
    out: &Path,
    ds: &EncryptedDataset,
    fitted: Option<&Standardizer>,
) -> CliResult<Option<PathBuf>> {
    let path = match fitted {
        Some(scaler) => {
            let path = scaler_path_for(out);
            write_atomic(&path, scaler.to_json().as_bytes(), true)?;
            Some(path)
        }
        None => None,
    };
    write_file(&DATASET, out, ds)?;
    Ok(path)
}
