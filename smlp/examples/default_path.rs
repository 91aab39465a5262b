//! The default path against the best of the grid, in the clear (issue "settings that learn"):
//! for each CSV (label in the last column) and each of `SPLITS` stratified 70/30 splits, the
//! held-out accuracy of the fixed-point twin trained with
//!
//! - the defaults (`smlp::defaults`),
//! - the default path: the defaults with the learning rate `smlp::tune::auto` chooses on the
//!   training part (what `smlp encrypt` records and `smlp train` uses; the same encrypted cost),
//! - every setting of `smlp tune`'s grid: the best single setting (the highest median over the
//!   splits: the goal's "best setting of the same grid") and, per split, the best on the held-out
//!   part (an oracle, optimistic: the best of 20 noisy scores),
//!
//! printed as medians over the splits. `cargo run --release -p smlp --example default_path --
//! HIDDEN A.csv B.csv …`.

use smlp::data::{stratified_split, Dataset};
use smlp::tune::{auto, best, default_grid, holdout_accuracy, tune, AUTO_FOLDS};
use std::path::Path;

/// Splits (`SPLITS` in the environment overrides).
fn splits() -> u64 {
    std::env::var("SPLITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `a ×3, b ×1`, most frequent first.
fn counts(v: Vec<String>) -> String {
    let mut c: Vec<(String, usize)> = Vec::new();
    for x in v {
        match c.iter_mut().find(|(y, _)| *y == x) {
            Some((_, n)) => *n += 1,
            None => c.push((x, 1)),
        }
    }
    c.sort_by_key(|x| std::cmp::Reverse(x.1));
    let parts: Vec<String> = c.into_iter().map(|(x, n)| format!("{x} ×{n}")).collect();
    parts.join(", ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((hidden, files)) = args.split_first() else {
        return Err("usage: default_path HIDDEN A.csv [B.csv …]".into());
    };
    let hidden: Vec<usize> = hidden
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    println!("| data set | samples | defaults | default path (auto η) | grid by CV | best single setting of the grid | gap to it | best of grid per split (oracle) | auto's η | CV's choice | oracle's |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
    for file in files {
        let data = Dataset::load_csv(Path::new(file), None)?;
        let (mut defaults, mut auto_acc, mut best_acc, mut etas) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut cv_acc, mut cv_pick, mut oracle_pick) = (Vec::new(), Vec::new(), Vec::new());
        let short =
            |s: &smlp::tune::Setting| format!("B{} η2^-{} e{}", s.batch, s.lr_shift, s.epochs);
        let grid = default_grid(&hidden);
        let mut per_setting = vec![Vec::new(); grid.len()];
        for split in 0..splits() {
            let (train, test) = stratified_split(&data, 0.3, split)?;
            let acc = |s: &smlp::tune::Setting| -> Result<f64, smlp::Error> {
                Ok(holdout_accuracy(&train, &test, s, split)?.unwrap_or(0.0))
            };
            let d = acc(&smlp::defaults::setting(Some(&hidden)))?;
            let chosen = auto(&train, Some(&hidden), AUTO_FOLDS, 1)?;
            let a = acc(&chosen.setting)?;
            let mut top: f64 = 0.0;
            let mut top_s = String::new();
            for (i, s) in grid.iter().enumerate() {
                let a = acc(s)?;
                per_setting[i].push(a);
                if a > top {
                    top = a;
                    top_s = short(s);
                }
            }
            let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
            let scored = tune(&train, &grid, AUTO_FOLDS, 1, far)?;
            let pick = best(&scored).unwrap().setting.clone();
            cv_acc.push(acc(&pick)?);
            cv_pick.push(short(&pick));
            oracle_pick.push(top_s);
            defaults.push(d);
            auto_acc.push(a);
            best_acc.push(top);
            etas.push(format!("2^-{}", chosen.setting.lr_shift));
        }
        // The best single setting: the grid's setting with the highest median over the splits.
        let (single_i, single) = per_setting
            .iter()
            .map(|v| median(v.clone()))
            .enumerate()
            .fold((0, 0.0), |b, (i, m)| if m > b.1 { (i, m) } else { b });
        let path = median(auto_acc);
        println!(
            "| {} | {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % ({}) | {:.1} points | {:.1} % | {} | {} | {} |",
            Path::new(file).file_stem().unwrap().to_string_lossy(),
            data.len(),
            100.0 * median(defaults),
            100.0 * path,
            100.0 * median(cv_acc),
            100.0 * single,
            short(&grid[single_i]),
            100.0 * (single - path),
            100.0 * median(best_acc),
            counts(etas),
            counts(cv_pick),
            counts(oracle_pick)
        );
    }
    Ok(())
}
