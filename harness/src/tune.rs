//! `cargo xtask tune`: how the training defaults were chosen. Trains the fixed-point reference
//! (`smlp::FixedMlp`: the same integer operations the encrypted run performs, with the floor
//! rounding of the strict profile) in the clear on the whole wdbc training split (or an iris
//! split), for a grid of losses, mini-batch sizes, learning rates η = 2^-s and epochs, over several
//! seeds (split, initial weights and sample order), and prints the test accuracy of each
//! setting: mean, worst and best over the seeds. Seconds, not hours: nothing is encrypted.

use crate::Result;
use clap::Args;
use smlp::data::{stratified_split, Dataset};
use smlp::tune::{holdout_accuracy, Setting};
use smlp::{LearningRate, Loss};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Data set: wdbc or iris.
    #[arg(long, default_value = "wdbc")]
    pub data: String,
    /// Hidden layer sizes.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    pub hidden: Vec<usize>,
    /// Mini-batch sizes to try.
    #[arg(long, value_delimiter = ',', default_value = "1,4,8,16")]
    pub batch: Vec<usize>,
    /// Learning rates η = num/2^s to try, as num:s (a bare s means 1:s).
    #[arg(long, value_delimiter = ',', default_value = "4,5,3:7,6,3:8,7")]
    pub lr: Vec<String>,
    /// Losses to try: smooth-hinge, squared.
    #[arg(long, value_delimiter = ',', default_value = "smooth-hinge,squared")]
    pub loss: Vec<String>,
    /// Epoch counts to try.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub epochs: Vec<u64>,
    /// Seeds (split, initial weights, order): 1..=N.
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
}

/// Test accuracy of the fixed-point reference for one setting and seed on an 80/20 stratified
/// split (`smlp::tune::holdout_accuracy`); `None` where training left the fixed-point range.
fn run_one(
    data: &Dataset,
    hidden: &[usize],
    batch: usize,
    lr: LearningRate,
    loss: Loss,
    epochs: u64,
    seed: u64,
) -> Result<Option<f64>> {
    let (train, test) = stratified_split(data, 0.2, seed)?;
    let setting = Setting {
        hidden: hidden.to_vec(),
        batch,
        lr_num: lr.num,
        lr_shift: lr.shift,
        epochs,
        loss,
    };
    Ok(holdout_accuracy(&train, &test, &setting, seed)?)
}

pub fn run(a: &TuneArgs) -> Result<ExitCode> {
    let data = match a.data.as_str() {
        "wdbc" => Dataset::wdbc(),
        "iris" => Dataset::iris(),
        other => return Err(format!("unknown data set {other:?} (wdbc or iris)").into()),
    };
    if a.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    println!(
        "fixed-point reference (floor rounding), {} ({} samples, 80/20 stratified split), hidden {:?}, \
         test accuracy over seeds 1..={}: mean (worst–best)",
        a.data,
        data.len(),
        a.hidden,
        a.seeds
    );
    println!(
        "| loss | batch | η | epochs | mean | worst | best | seed 1 | diverged |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut best: Option<(f64, String)> = None;
    let mut best_mean: Option<(f64, String)> = None;
    let lrs: Vec<LearningRate> =
        a.lr.iter()
            .map(|t| -> Result<LearningRate> {
                let (num, shift) = t.split_once(':').unwrap_or(("1", t));
                let parse = |v: &str| {
                    v.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("bad --lr {t:?}"))
                };
                Ok(LearningRate::new(parse(num)?, parse(shift)?)?)
            })
            .collect::<Result<_>>()?;
    let losses: Vec<Loss> = (a.loss.iter())
        .map(|l| l.parse::<Loss>())
        .collect::<std::result::Result<_, _>>()?;
    for (&loss, &batch) in losses
        .iter()
        .flat_map(|l| a.batch.iter().map(move |b| (l, b)))
    {
        for &lr in &lrs {
            for &epochs in &a.epochs {
                let runs: Vec<Option<f64>> = (1..=a.seeds)
                    .map(|seed| run_one(&data, &a.hidden, batch, lr, loss, epochs, seed))
                    .collect::<Result<_>>()?;
                let diverged = runs.iter().filter(|r| r.is_none()).count();
                let first = runs[0].map_or("—".to_string(), |v| format!("{:.1} %", 100.0 * v));
                // A diverged run counts as 0 % in the statistics.
                let accs: Vec<f64> = runs.iter().map(|r| r.unwrap_or(0.0)).collect();
                let mean = accs.iter().sum::<f64>() / accs.len() as f64;
                let lo = accs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = accs.iter().copied().fold(0.0, f64::max);
                let row = format!(
                    "| {loss} | {batch} | {}/2^{} | {epochs} | {:.1} % | {:.1} % | {:.1} % | {first} | {diverged} |",
                    lr.num,
                    lr.shift,
                    100.0 * mean,
                    100.0 * lo,
                    100.0 * hi
                );
                println!("{row}");
                if best.as_ref().is_none_or(|(m, _)| lo > *m) {
                    best = Some((lo, row.clone()));
                }
                if best_mean.as_ref().is_none_or(|(m, _)| mean > *m) {
                    best_mean = Some((mean, row));
                }
            }
        }
    }
    if let Some((_, row)) = best {
        println!("best worst case: {row}");
    }
    if let Some((_, row)) = best_mean {
        println!("best mean:       {row}");
    }
    Ok(ExitCode::SUCCESS)
}
