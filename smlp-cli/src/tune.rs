//! `smlp tune`: its flags and what it prints; the cross-validation is `smlp::tune`, the table and the settings file `smlp_client::tune`.

pub use smlp_client::tune::*;

use clap::Args;
use paillier::format::write_atomic;
use smlp::data::Dataset;
use smlp::tune::{best, default_grid, tune, Tuned};
use smlp_client::bail;
use smlp_client::error::{CliError, CliResult};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Chooses training settings for a data set, in the clear, before it is encrypted.
///
/// Cross-validates (k folds, stratified) the fixed-point twin of the encrypted training — the
/// same integer arithmetic, so its accuracy is the encrypted run's — over mini-batches of 8 and
/// 16, learning rates 2^-3 … 2^-7 and 1 or 2 epochs, for at most --seconds, on every core;
/// prints what it tried and writes the best setting (highest mean accuracy, then best worst
/// fold) to --out, which `smlp train --settings FILE` takes as its defaults.
#[derive(Args, Debug, Clone)]
pub struct TuneArgs {
    /// The training data (CSV, as for `smlp encrypt`).
    #[arg(long, value_name = "TRAIN.csv")]
    pub csv: PathBuf,
    /// Label column [default: the last].
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    /// Hidden layer sizes.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub hidden: Vec<usize>,
    /// Folds of the cross-validation.
    #[arg(long, default_value_t = 3)]
    pub folds: usize,
    /// Time budget in seconds (settings started within it finish).
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// Seed of the folds and initial weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the chosen settings (JSON).
    #[arg(long, value_name = "SETTINGS.json")]
    pub out: PathBuf,
}

/// Runs `smlp tune`; returns what it wrote.
pub fn run(args: &TuneArgs) -> CliResult<Tuned> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds must be a positive number");
    }
    let data = Dataset::load_csv(&args.csv, args.label.as_deref())?;
    let grid = default_grid(&args.hidden);
    println!(
        "tuning on {} ({} samples, {} features, {} classes): {}-fold cross-validation of the fixed-point twin, up to {} settings in {} s",
        args.csv.display(),
        data.len(),
        data.num_features(),
        data.classes,
        args.folds,
        grid.len(),
        args.seconds
    );
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let scored = tune(&data, &grid, args.folds, args.seed, deadline)?;
    let dims = (data.num_features(), data.outputs(), data.len());
    println!("| loss | batch | η | epochs | mean | worst fold | diverged folds | encrypted (est.) |\n|---|---:|---:|---:|---:|---:|---:|---:|");
    for s in &scored {
        println!("{}", row(s, dims));
    }
    println!(
        "(encrypted: an estimate of training on all {} samples, strict, 2048-bit key, 2 cores, from \
         the measured per-sample cost of the 30→8→1 network scaled by the number of weights)",
        data.len()
    );
    let Some(chosen) = best(&scored) else {
        bail!("no setting was tried");
    };
    let tuned = Tuned {
        source: format!("smlp tune --csv {}", args.csv.display()),
        setting: chosen.setting.clone(),
        mean: chosen.mean,
        worst: chosen.worst,
        folds: args.folds,
        samples: data.len(),
    };
    let json = serde_json::to_string_pretty(&tuned).map_err(|e| CliError(e.to_string()))?;
    write_atomic(&args.out, json.as_bytes(), true)?;
    println!(
        "tried {} of {} settings in {:.1} s; chose {} → {} (smlp train --settings {})",
        scored.len(),
        grid.len(),
        start.elapsed().as_secs_f64(),
        row(chosen, dims),
        args.out.display(),
        args.out.display()
    );
    Ok(tuned)
}
