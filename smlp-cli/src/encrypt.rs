//! `smlp encrypt`: its flags and what it prints; standardising, encoding, tuning and encrypting is `smlp_client::encrypt`.

pub use smlp_client::encrypt::*;

use clap::Args;
use smlp::data::{Dataset, Labels, Standardizer, DEFAULT_INT_BITS};
use smlp_client::bail;
use smlp_client::error::{CliResult, Context};
use smlp_client::keys::{load_public, load_secret};
use smlp_client::util::{sample_bar, secs};
use std::path::PathBuf;
use std::time::Instant;

/// Encrypts a CSV data set under a public key.
///
/// Every column except the label column is a numeric feature; the label column (the last one
/// unless --label names another) holds class indices 0, 1, ..., k-1, and k is recorded in the
/// file. Features are standardised ((x - mean) / std), encoded in fixed point with --frac-bits
/// fractional bits and encrypted, with the one-hot (or 0/1) targets, under the public key.
///
/// Without --scaler, the standardiser is fitted on this file and written next to the output as
/// OUT.scaler.json; encrypt test files with the training file's scaler (--scaler
/// TRAIN.enc.scaler.json) so that both are scaled alike.
///
/// A labelled file encrypted with a standardiser fitted on it (a training set) gets training
/// settings recorded in it, which `smlp train` takes as its defaults (flags still win): by
/// default the defaults with the learning rate chosen by 3-fold cross-validation of the
/// fixed-point twin over η = 2^-3 … 2^-7 (seconds, in the clear, the same encrypted cost as the
/// defaults); with --tune, the best of `smlp tune`'s grid (batch, η, epochs) within
/// --tune-seconds; with --no-tune, none (the defaults). They are public, like the data set's
/// shape: S1 trains with them anyway.
///
/// New samples to classify have no label: --no-label reads every column as a feature; the columns
/// must be the training file's features, in order (checked against the scaler, which is then
/// required).
#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["public_key", "secret_key"])))]
pub struct EncryptArgs {
    /// Public key file (KEYDIR/public.key).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// Encrypt with the secret key instead (the data owner has it): same ciphertexts, about twice
    /// as fast (CRT).
    #[arg(long, value_name = "FILE")]
    pub secret_key: Option<PathBuf>,
    /// The data: a header row with column names, then one sample per row.
    #[arg(long, value_name = "DATA.csv")]
    pub csv: PathBuf,
    /// Name of the label column (default: the last column).
    #[arg(long, value_name = "COLUMN")]
    pub label: Option<String>,
    /// The file has no label column (new samples to classify); needs --scaler.
    #[arg(long, conflicts_with = "label", requires = "scaler")]
    pub no_label: bool,
    /// Standardiser (JSON) to apply instead of fitting one on this file.
    #[arg(long, value_name = "SCALER.json")]
    pub scaler: Option<PathBuf>,
    /// Fractional bits f of the fixed-point encoding (x̂ = round(x·2^f)).
    #[arg(long, default_value_t = 16)]
    pub frac_bits: u32,
    /// Integer bits of the encoding: standardised features must satisfy |x| < 2^int-bits.
    #[arg(long, default_value_t = DEFAULT_INT_BITS)]
    pub int_bits: u32,
    /// Number of classes k (default: largest label + 1, at least 2, every class below it
    /// present); with it, labels must be below k and any class may be missing (a small test
    /// file).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Output file (encrypted data set).
    #[arg(long, value_name = "DATA.enc")]
    pub out: PathBuf,
    /// Record the best setting of `smlp tune`'s grid (batch, learning rate, epochs) instead of
    /// the defaults with a learning rate chosen for this data (the default).
    #[arg(long, conflicts_with = "no_tune")]
    pub tune: bool,
    /// Record no settings: `smlp train` then uses the defaults.
    #[arg(long)]
    pub no_tune: bool,
    /// Time budget of --tune in seconds.
    #[arg(long, default_value_t = 60.0, requires = "tune")]
    pub tune_seconds: f64,
    /// Hidden layer sizes the settings are chosen for (recorded with them) [default: 8].
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]")]
    pub hidden: Option<Vec<usize>>,
    /// Do not show a progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `smlp encrypt`.
pub fn encrypt(args: &EncryptArgs) -> CliResult<EncryptSummary> {
    let (pk, sk) = match (&args.public_key, &args.secret_key) {
        (Some(p), None) => (load_public(p)?, None),
        (None, Some(s)) => {
            let sk = load_secret(s)?;
            (sk.public_key().clone(), Some(sk))
        }
        _ => bail!("give exactly one of --public-key and --secret-key"),
    };
    let labels = match (&args.label, args.no_label) {
        (_, true) => Labels::Absent,
        (Some(name), false) => Labels::Column(name),
        (None, false) => Labels::Last,
    };
    let data = Dataset::load_csv_with(&args.csv, labels, args.classes)
        .with_context(|| args.csv.display().to_string())?;
    let scaler = match &args.scaler {
        Some(path) => Some(Standardizer::load(path).with_context(|| path.display().to_string())?),
        None => None,
    };
    let fitted = scaler.is_none();
    let settings = if args.no_label || args.no_tune || !(fitted || args.tune) {
        None
    } else {
        choose_settings(
            &data,
            args.hidden.as_deref(),
            args.tune.then_some(args.tune_seconds),
        )?
    };
    let start = Instant::now();
    let bar = sample_bar(data.len() as u64, args.quiet);
    bar.set_prefix("encrypting");
    let (ds, scaler) = encrypt_dataset(
        &pk,
        sk.as_ref(),
        &data,
        scaler,
        (args.frac_bits, args.int_bits),
        !args.no_label,
        || bar.inc(1),
    )
    .with_context(|| args.csv.display().to_string())?;
    bar.finish_and_clear();
    let mut ds = ds;
    ds.settings = settings;
    let elapsed = start.elapsed();
    let scaler_written = save_dataset(&args.out, &ds, fitted.then_some(&scaler))?;
    println!(
        "encrypted {} {}samples ({} features, {} classes, f = {}) under key {} in {} → {}",
        ds.len(),
        if args.no_label { "unlabelled " } else { "" },
        ds.features,
        ds.classes,
        ds.frac_bits,
        ds.fingerprint,
        secs(elapsed),
        args.out.display()
    );
    if let Some(p) = &scaler_written {
        println!("  standardiser fitted on this file: {}", p.display());
    }
    if let Some(t) = &ds.settings {
        println!(
            "  training settings recorded in it (smlp train's defaults): {}\n    {}{}",
            t.describe(),
            t.source,
            if t.folds > 0 {
                format!(
                    "; cross-validated accuracy {:.1} % (worst fold {:.1} %)",
                    100.0 * t.mean,
                    100.0 * t.worst
                )
            } else {
                String::new()
            }
        );
    }
    Ok(EncryptSummary {
        samples: ds.len(),
        elapsed,
    })
}
