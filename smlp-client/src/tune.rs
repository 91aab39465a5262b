//! `smlp tune`: the owner chooses training settings in the clear, before encrypting: k-fold
//! cross-validation of the fixed-point twin of the encrypted run (`smlp::tune`) over a small grid,
//! within a time budget, on every core. Writes the chosen settings for `smlp train --settings`.

use crate::bail;
use crate::error::{CliError, CliResult, Context};
use smlp::tune::{estimated_seconds, Scored, Tuned};
use std::path::Path;

/// Largest settings file read.
const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// Reads a settings file of `smlp tune`.
pub fn load(path: &Path) -> CliResult<Tuned> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_SETTINGS_BYTES {
        bail!(
            "{} is not a settings file of smlp tune (too large)",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let tuned: Tuned = serde_json::from_slice(&bytes).map_err(|e| {
        CliError(format!(
            "{} is not a settings file of smlp tune: {e}",
            path.display()
        ))
    })?;
    tuned
        .validate()
        .map_err(|e| CliError(format!("{}: {e}", path.display())))?;
    Ok(tuned)
}

/// A table row; `dims` = (features, outputs, samples) for the cost estimate.
pub fn row(s: &Scored, (features, outputs, samples): (usize, usize, usize)) -> String {
    format!(
        "| {} | {} | {}/2^{} | {} | {:.1} % | {:.1} % | {} | {} |",
        s.setting.loss,
        s.setting.batch,
        s.setting.lr_num,
        s.setting.lr_shift,
        s.setting.epochs,
        100.0 * s.mean,
        100.0 * s.worst,
        s.diverged,
        minutes(estimated_seconds(&s.setting, features, outputs, samples))
    )
}

/// `≈ 12 min`, `≈ 3.4 h`.
pub fn minutes(secs: f64) -> String {
    if secs >= 5400.0 {
        format!("≈ {:.1} h", secs / 3600.0)
    } else {
        format!("≈ {:.0} min", (secs / 60.0).max(1.0))
    }
}
