//! `smlp decrypt`: its flags and what it prints; decrypting predictions, models and data sets is `smlp_client::decrypt`.

pub use smlp_client::decrypt::*;

use clap::Args;
use paillier::format::{open, PUBLIC_KEY, SECRET_KEY};
use smlp::encrypted::{
    open_dataset, Checkpoint, EncryptedDataset, EncryptedPredictions, ModelFile, TrainRecord,
    CHECKPOINT, DATASET, MODEL, PREDICTIONS,
};
use smlp_client::bail;
use smlp_client::error::{CliResult, Context};
use smlp_client::keys::load_secret;
use std::path::PathBuf;

/// Decrypts a predictions, model, checkpoint or data set file with the secret key.
///
/// The kind is read from the file's header:
///   predictions → CSV `row,class`: the 0-based row of the classified data set and its class
///                 (--scores adds the output scores);
///   model, checkpoint → JSON with the shape, the parameters and the weights, both as real
///                 numbers and as the raw integers at scale 2^F_w;
///   data set → CSV of the standardised features and the labels.
#[derive(Args, Debug, Clone)]
pub struct DecryptArgs {
    /// Secret key file (KEYDIR/secret.key).
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// Encrypted file (predictions, model, checkpoint or data set).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Output file (CSV or JSON).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// For predictions: add the decrypted output scores as columns score_0, score_1, ...
    #[arg(long)]
    pub scores: bool,
}

/// Runs `smlp decrypt`.
pub fn decrypt(args: &DecryptArgs) -> CliResult<Decrypted> {
    let bytes = std::fs::read(&args.input).with_context(|| args.input.display().to_string())?;
    let tag = file_tag(&bytes).with_context(|| args.input.display().to_string())?;
    let sk = load_secret(&args.secret_key)?;
    let ctx = || args.input.display().to_string();
    match &tag {
        t if *t == PREDICTIONS.tag => {
            let p: EncryptedPredictions = open(&PREDICTIONS, &bytes).with_context(ctx)?;
            decrypt_predictions(&sk, &p, args.scores, &args.out).with_context(ctx)
        }
        t if *t == MODEL.tag => {
            let file = ModelFile::open(&bytes).with_context(ctx)?;
            let json = model_json(&sk, &file).with_context(ctx)?;
            let m = &file.model;
            write_json(&args.out, &json)?;
            println!(
                "decrypted model {} ({} epochs) → {}",
                m.shape,
                m.epochs_trained,
                args.out.display()
            );
            if let Some(line) = &json.settings {
                println!("trained with {line}");
            }
            Ok(Decrypted::Model(Box::new(json)))
        }
        t if *t == CHECKPOINT.tag => {
            let c: Checkpoint = open(&CHECKPOINT, &bytes).with_context(ctx)?;
            let file = ModelFile {
                model: c.model.clone(),
                trained: Some(TrainRecord {
                    config: c.config.clone(),
                    origin: String::new(),
                }),
            };
            let json = model_json(&sk, &file).with_context(ctx)?;
            write_json(&args.out, &json)?;
            println!(
                "decrypted checkpoint {} ({} of {} epochs) → {}",
                c.model.shape,
                c.model.epochs_trained,
                c.config.epochs,
                args.out.display()
            );
            Ok(Decrypted::Model(Box::new(json)))
        }
        t if *t == DATASET.tag => {
            let d: EncryptedDataset = open_dataset(&bytes).with_context(ctx)?;
            decrypt_dataset(&sk, &d, &args.out).with_context(ctx)?;
            Ok(Decrypted::Dataset)
        }
        t if *t == PUBLIC_KEY.tag || *t == SECRET_KEY.tag => {
            bail!("{} is a key file; nothing to decrypt", args.input.display())
        }
        t => bail!(
            "{}: unknown smlp file kind `{}`",
            args.input.display(),
            String::from_utf8_lossy(t)
        ),
    }
}
