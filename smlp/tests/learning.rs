//! The plaintext references against hand computation, against each other, and on real data.

use paillier::FixedPoint;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smlp::data::{stratified_split, Dataset, EncodedDataset, Standardizer, DEFAULT_INT_BITS};
use smlp::model::Truncator;
use smlp::{
    accuracy, evaluate, train_fixed, train_float, FixedMlp, FixedParams, FloatMlp, Layer,
    LearningRate, Loss, Params, Rounding, Shape, TrainOptions,
};

/// The paper's training loop these tests were calibrated with: per-sample SGD on the squared
/// error, 10 epochs, order seed 0 (the library's defaults are mini-batches of 16 and the smoothed
/// hinge).
fn paper_options() -> TrainOptions {
    TrainOptions {
        epochs: 10,
        batch: 1,
        loss: Loss::Squared,
        seed: 0,
        ..TrainOptions::default()
    }
}

/// The fixed-point parameters these tests were calibrated with: η = 2^-6, a step for per-sample
/// SGD (the library's default, 2^-4, is chosen for mini-batches of 16).
fn per_sample() -> FixedParams {
    FixedParams {
        lr: LearningRate::pow2(6),
        ..FixedParams::default()
    }
}

/// 2→2→1 with f = 4 (1.0 = 16), η = 2^-2, so F_w = 2·4 + 2 = 10 (weight 1.0 = 1024).
fn tiny(num: u32) -> FixedMlp {
    let fixed = FixedParams::new(4, LearningRate::new(num, 2).unwrap(), 40).unwrap();
    let params = Params {
        layers: vec![
            Layer {
                w: vec![vec![512, -256], vec![-768, 1024]], // [[0.5, -0.25], [-0.75, 1]]
                b: vec![128, -64],                          // [0.125, -0.0625]
            },
            Layer {
                w: vec![vec![1280, -512]], // [[1.25, -0.5]]
                b: vec![200],              // 0.1953125
            },
        ],
    };
    FixedMlp::from_params(params, fixed).unwrap()
}

#[test]
fn hand_computed_step() {
    let m = tiny(1);
    let x = [25i64, -8]; // [1.5625, -0.5]
    let y = [32i64]; // 2.0
    let mut floor = Truncator::floor();
    let trace = m.forward(&x, &mut floor).unwrap();
    // Layer 1: s_0 = 512·25 + (−256)(−8) + 128·16 = 12800 + 2048 + 2048 = 16896 → ⌊16896/1024⌋ = 16
    //          s_1 = (−768)·25 + 1024·(−8) + (−64)·16 = −19200 − 8192 − 1024 = −28416
    //                → ⌊−27.75⌋ = −28 (floor, not towards zero), ReLU → 0, d = 0
    assert_eq!(trace.activations[0], vec![25, -8]);
    assert_eq!(trace.activations[1], vec![16, 0]);
    assert_eq!(trace.derivs, vec![vec![1, 0]]);
    // Layer 2: s = 1280·16 + (−512)·0 + 200·16 = 23680 → ⌊23.125⌋ = 23
    assert_eq!(trace.output, vec![23]);

    // Backward: δ_2 = 23 − 32 = −9
    //   ∇W_2 = [−9·16, −9·0] = [−144, 0], ∇b_2 = −9·16 = −144
    //   t_0 = ⌊1280·(−9)/1024⌋ = ⌊−11.25⌋ = −12, t_1 = ⌊(−512)(−9)/1024⌋ = ⌊4.5⌋ = 4
    //   δ_1 = [1·(−12), 0·4] = [−12, 0]
    //   ∇W_1 = [[−12·25, −12·(−8)], [0, 0]] = [[−300, 96], [0, 0]], ∇b_1 = [−12·16, 0]
    let mut grads = Params::filled(&m.shape(), 0i128);
    m.backward(&trace, &y, Loss::Squared, &mut grads, &mut floor)
        .unwrap();
    assert_eq!(grads.layers[1].w, vec![vec![-144, 0]]);
    assert_eq!(grads.layers[1].b, vec![-144]);
    assert_eq!(grads.layers[0].w, vec![vec![-300, 96], vec![0, 0]]);
    assert_eq!(grads.layers[0].b, vec![-192, 0]);

    // Update with num = 1: W −= ∇W (exact: real η·g = ¼·(−300/256) = −300/1024).
    let mut stepped = m.clone();
    let loss = stepped
        .train_batch([(&x[..], &y[..])], Loss::Squared, &mut Truncator::floor())
        .unwrap();
    assert_eq!(loss, 0.5 * (9.0f64 / 16.0).powi(2));
    assert_eq!(
        stepped.params.layers[0].w,
        vec![vec![812, -352], vec![-768, 1024]]
    );
    assert_eq!(stepped.params.layers[0].b, vec![320, -64]);
    assert_eq!(stepped.params.layers[1].w, vec![vec![1424, -512]]);
    assert_eq!(stepped.params.layers[1].b, vec![344]);

    // num = 3 (η = 3/4): W −= 3·∇W.
    let mut three = tiny(3);
    three
        .train_batch([(&x[..], &y[..])], Loss::Squared, &mut Truncator::floor())
        .unwrap();
    assert_eq!(
        three.params.layers[0].w,
        vec![vec![512 + 900, -256 - 288], vec![-768, 1024]]
    );
    assert_eq!(three.params.layers[0].b, vec![128 + 576, -64]);
    assert_eq!(three.params.layers[1].w, vec![vec![1280 + 432, -512]]);
    assert_eq!(three.params.layers[1].b, vec![200 + 432]);

    // The float reference from the same weights takes the same step up to the truncations.
    let mut fl = FloatMlp::from_fixed(&m);
    assert_eq!(fl.params.layers[1].w[0][0], 1.25);
    assert_eq!(fl.lr, 0.25);
    fl.train_batch([(&[25.0 / 16.0, -0.5][..], &[2.0][..])], Loss::Squared)
        .unwrap();
    let decoded = stepped.decoded_params();
    for (a, b) in decoded.iter().zip(fl.params.iter()) {
        assert!((a - b).abs() < 0.1, "{a} vs {b}");
    }
}

/// The smooth hinge on the hand-computed network above (output o = 23, i.e. 1.4375 at f = 4).
#[test]
fn smooth_hinge_by_hand() {
    let m = tiny(1);
    let x = [25i64, -8];
    let trace = m.forward(&x, &mut Truncator::floor()).unwrap();
    assert_eq!(trace.output, vec![23]);
    let grad = |y: i64| {
        let mut g = Params::filled(&m.shape(), 0i128);
        m.backward(
            &trace,
            &[y],
            Loss::SmoothHinge,
            &mut g,
            &mut Truncator::floor(),
        )
        .unwrap();
        g
    };
    // Label 1 (y = 16): the margin o ≥ 1, δ = clip(23, 0, 16) − 16 = 0: nothing moves.
    assert_eq!(grad(16), Params::filled(&m.shape(), 0i128));
    // Label 0: δ_2 = 16 − 0 = 16 (the squared loss would give 23).
    //   ∇W_2 = [16·16, 16·0] = [256, 0], ∇b_2 = 16·16 = 256
    //   t_0 = ⌊1280·16/1024⌋ = 20, t_1 = ⌊(−512)·16/1024⌋ = −8, δ_1 = [1·20, 0·(−8)] = [20, 0]
    //   ∇W_1 = [[20·25, 20·(−8)], [0, 0]], ∇b_1 = [20·16, 0]
    let g = grad(0);
    assert_eq!(g.layers[1].w, vec![vec![256, 0]]);
    assert_eq!(g.layers[1].b, vec![256]);
    assert_eq!(g.layers[0].w, vec![vec![500, -160], vec![0, 0]]);
    assert_eq!(g.layers[0].b, vec![320, 0]);
    // Its loss: margin 1 − 1.4375 < 0, so ½ − m = 0.9375.
    let mut stepped = m.clone();
    let loss = stepped
        .train_batch(
            [(&x[..], &[0i64][..])],
            Loss::SmoothHinge,
            &mut Truncator::floor(),
        )
        .unwrap();
    assert_eq!(loss, 0.9375);
}

#[test]
fn batch_uses_old_weights_and_sums_gradients() {
    let m = tiny(1);
    let samples: [([i64; 2], [i64; 1]); 2] = [([25, -8], [32]), ([-10, 30], [0])];
    // Reference: both gradients with the initial weights, summed, one update.
    let mut grads = Params::filled(&m.shape(), 0i128);
    for (x, y) in &samples {
        let t = m.forward(x, &mut Truncator::floor()).unwrap();
        m.backward(&t, y, Loss::Squared, &mut grads, &mut Truncator::floor())
            .unwrap();
    }
    let mut expected = m.clone();
    expected.apply_gradients(&grads).unwrap();

    let mut batched = m.clone();
    batched
        .train_batch(
            samples.iter().map(|(x, y)| (&x[..], &y[..])),
            Loss::Squared,
            &mut Truncator::floor(),
        )
        .unwrap();
    assert_eq!(batched, expected);

    // Two per-sample steps differ (the second sample sees updated weights).
    let mut sgd = m.clone();
    for (x, y) in &samples {
        sgd.train_batch([(&x[..], &y[..])], Loss::Squared, &mut Truncator::floor())
            .unwrap();
    }
    assert_ne!(sgd, expected);
}

struct Prepared {
    train: Dataset,
    test: Dataset,
    train_enc: EncodedDataset,
    test_enc: EncodedDataset,
}

/// Stratified split (seed `split_seed`), standardiser fit on the training part, f = 16.
fn prepare(data: &Dataset, test_fraction: f64, split_seed: u64) -> Prepared {
    let (train, test) = stratified_split(data, test_fraction, split_seed).unwrap();
    let scaler = Standardizer::fit(&train);
    let train = scaler.apply(&train).unwrap();
    let test = scaler.apply(&test).unwrap();
    let fp = FixedPoint::new(16, DEFAULT_INT_BITS).unwrap();
    Prepared {
        train_enc: EncodedDataset::encode(&train, &fp).unwrap(),
        test_enc: EncodedDataset::encode(&test, &fp).unwrap(),
        train,
        test,
    }
}

/// Result of training both references from the same initial weights.
struct Run {
    fixed_acc: f64,
    float_acc: f64,
    fixed_loss: Vec<f64>,
    float_loss: Vec<f64>,
    fixed: FixedMlp,
}

/// Initial weights from `ChaCha8Rng(seed)`, sample order from `seed`, η = 2^-6, f = 16.
fn run_both(p: &Prepared, shape: &[usize], seed: u64, opts: TrainOptions) -> Run {
    let shape = Shape::new(shape.to_vec()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fixed = FixedMlp::init(&shape, per_sample(), &mut rng).unwrap();
    let mut float = FloatMlp::from_fixed(&fixed);
    let opts = TrainOptions { seed, ..opts };
    let hf = train_fixed(&mut fixed, &p.train_enc, &opts, |_, _| {}).unwrap();
    let hr = train_float(&mut float, &p.train, &opts, |_, _| {}).unwrap();
    Run {
        fixed_acc: accuracy(&fixed, &p.test_enc.features, &p.test_enc.labels).unwrap(),
        float_acc: accuracy(&float, &p.test.features, &p.test.labels).unwrap(),
        fixed_loss: hf.losses(),
        float_loss: hr.losses(),
        fixed,
    }
}

/// Fixed point and f64 start from the same weights and stay within a unit of 2^-16 over the first
/// steps: after 20 per-sample steps on wdbc (30→16→1, η = 2^-6) the largest weight difference was
/// 3.0e-6 (0.2 unit of 2^-16; weights are ~0.3, and the largest one moved by 0.16), the largest output
/// difference 1.7e-5 (1.1 units).
#[test]
fn fixed_and_float_agree_over_a_few_steps() {
    agree_over_a_few_steps(Loss::Squared);
}

/// The same for the smooth hinge, whose error clip(o, 0, 1) − y the fixed-point reference computes
/// as max(o, 0) − max(o − 2^f, 0) − y.
#[test]
fn fixed_and_float_agree_over_a_few_steps_with_the_smooth_hinge() {
    agree_over_a_few_steps(Loss::SmoothHinge);
}

fn agree_over_a_few_steps(loss: Loss) {
    let p = prepare(&Dataset::wdbc(), 0.2, 42);
    let shape = Shape::new(vec![30, 16, 1]).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut fixed = FixedMlp::init(&shape, per_sample(), &mut rng).unwrap();
    let mut float = FloatMlp::from_fixed(&fixed);
    let init = float.params.clone();
    let targets = p.train.float_targets();
    let mut floor = Truncator::floor();
    let mut max_out_diff: f64 = 0.0;
    let samples = p.train_enc.features.iter().zip(&p.train_enc.targets);
    let float_samples = p.train.features.iter().zip(&targets);
    for ((xf, yf), (xr, yr)) in samples.zip(float_samples).take(20) {
        let of = fixed.fixed.decode_value(fixed.output(xf).unwrap()[0]);
        let or = float.output(xr).unwrap()[0];
        max_out_diff = max_out_diff.max((of - or).abs());
        fixed
            .train_batch([(&xf[..], &yf[..])], loss, &mut floor)
            .unwrap();
        float.train_batch([(&xr[..], &yr[..])], loss).unwrap();
    }
    let max_abs_diff = |a: &Params<f64>, b: &Params<f64>| {
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    let max_w_diff = max_abs_diff(&fixed.decoded_params(), &float.params);
    let moved = max_abs_diff(&init, &float.params);
    let unit = 2f64.powi(-16);
    println!("max weight difference {max_w_diff:e}, max output difference {max_out_diff:e}, moved {moved:e}");
    assert!(max_w_diff < unit, "weights differ by {max_w_diff}");
    assert!(
        max_out_diff < 4.0 * unit,
        "outputs differ by {max_out_diff}"
    );
    assert!(moved > 1000.0 * unit, "the weights hardly moved: {moved}");
}

/// Stochastic rounding stays within a few units of floor over a few steps, since each truncation
/// differs by at most one unit.
#[test]
fn stochastic_rounding_stays_close_to_floor() {
    let p = prepare(&Dataset::wdbc(), 0.2, 42);
    let shape = Shape::new(vec![30, 16, 1]).unwrap();
    let init = FixedMlp::init(&shape, per_sample(), &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    let mut a = init.clone();
    let mut b = init.clone();
    let mut floor = Truncator::floor();
    let mut stoch = Truncator::new(Rounding::Stochastic(9));
    for i in 0..10 {
        let (x, y) = (&p.train_enc.features[i][..], &p.train_enc.targets[i][..]);
        let oa = a.forward(x, &mut Truncator::floor()).unwrap().output[0];
        let ob = b.forward(x, &mut Truncator::floor()).unwrap().output[0];
        assert!((oa - ob).abs() <= 16, "step {i}: outputs {oa} vs {ob}");
        a.train_batch([(x, y)], Loss::Squared, &mut floor).unwrap();
        b.train_batch([(x, y)], Loss::Squared, &mut stoch).unwrap();
    }
    assert_ne!(a, b);
    let unit = 2f64.powi(-16);
    let diff = a
        .decoded_params()
        .iter()
        .zip(b.decoded_params().iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    println!("floor vs stochastic: max weight difference {diff:e}");
    assert!(diff < 4.0 * unit, "weights differ by {diff}");
}

#[test]
fn resuming_from_a_checkpoint_is_bit_identical() {
    let p = prepare(&Dataset::iris(), 0.2, 3);
    let shape = Shape::new(vec![4, 8, 3]).unwrap();
    let init = FixedMlp::init(&shape, per_sample(), &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
    let opts = TrainOptions {
        epochs: 3,
        batch: 4,
        seed: 11,
        ..paper_options()
    };
    let mut whole = init.clone();
    let h = train_fixed(&mut whole, &p.train_enc, &opts, |_, _| {}).unwrap();
    let mut part = init.clone();
    let mut seen = Vec::new();
    train_fixed(
        &mut part,
        &p.train_enc,
        &TrainOptions { epochs: 2, ..opts },
        |s, _| seen.push(s.epoch),
    )
    .unwrap();
    let json = serde_json::to_string(&part).unwrap(); // checkpoint
    let mut resumed: FixedMlp = serde_json::from_str(&json).unwrap();
    let h2 = train_fixed(
        &mut resumed,
        &p.train_enc,
        &TrainOptions {
            epochs: 1,
            start_epoch: 2,
            ..opts
        },
        |s, _| seen.push(s.epoch),
    )
    .unwrap();
    assert_eq!(resumed, whole);
    assert_eq!(seen, vec![0, 1, 2]);
    assert_eq!(h2.epochs[0], h.epochs[2]);
}

#[test]
fn training_rejects_mismatched_data() {
    let p = prepare(&Dataset::iris(), 0.2, 3);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut m =
        FixedMlp::init(&Shape::new(vec![4, 8, 1]).unwrap(), per_sample(), &mut rng).unwrap();
    let e = train_fixed(&mut m, &p.train_enc, &paper_options(), |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("expects 4 and 1"), "{e}");
    let e = train_fixed(
        &mut m,
        &p.train_enc,
        &TrainOptions {
            batch: 0,
            ..paper_options()
        },
        |_, _| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("batch"), "{e}");
}

/// Acceptance bar on wdbc: 30→16→1, per-sample SGD, η = 2^-6, 10 epochs, stratified 80/20 splits
/// (113 test samples; one sample is 0.88 points), standardiser fit on the training part, the same
/// initial weights for both references (init and order seed 1).
///
/// The split matters more than anything else, so instead of one split this test runs five (split
/// seeds 0..5) and asserts the mean. What `survey` printed (fixed point / f64 test accuracy, %,
/// 10 epochs, init seeds 1, 2, 3, 4):
///
/// ```text
/// split 0:  99.1/99.1 95.6/95.6 95.6/95.6 97.3/97.3
/// split 1:  95.6/95.6 93.8/93.8 94.7/94.7 92.9/92.9
/// split 2:  97.3/97.3 99.1/99.1 96.5/97.3 98.2/98.2
/// split 3:  95.6/95.6 96.5/96.5 93.8/93.8 95.6/95.6
/// split 4:  98.2/98.2 95.6/95.6 98.2/98.2 95.6/95.6
/// split 42: 98.2/98.2 98.2/98.2 99.1/99.1 99.1/99.1
/// ```
///
/// Mean over those 24 runs 96.6%, minimum 92.9% (3 of 24 single runs fall below 94%); fixed point
/// and f64 agree exactly in 23 of 24 runs and differ by one test sample in the other. 5 epochs:
/// mean 95.3%, minimum 89.4%; 20 epochs: mean 96.7%, minimum 92.0%.
#[test]
fn wdbc_fixed_point_learns_like_float() {
    let mean = mean_over_splits(&Dataset::wdbc(), &[30, 16, 1], 10, 0.92, 0.01, |p, r| {
        // The training loss goes down and tracks the float loss.
        assert!(
            r.fixed_loss[9] < r.fixed_loss[0] / 2.0,
            "{:?}",
            r.fixed_loss
        );
        for (a, b) in r.fixed_loss.iter().zip(&r.float_loss) {
            assert!((a - b).abs() < 1e-3 + 0.02 * b, "loss {a} vs {b}");
        }
        // Precision and recall of the malignant class.
        let m = evaluate(&r.fixed, &p.test_enc.features, &p.test_enc.labels).unwrap();
        assert!(m.precision(1) > 0.85 && m.recall(1) > 0.85, "{m:?}");
    });
    assert!(mean >= 0.94, "mean fixed-point accuracy {mean}");
}

/// Trains both references (per-sample SGD, init seed 1) on the stratified 80/20 splits with seeds
/// 0..5; checks each run's fixed-point accuracy against `min_each` and its distance to the f64
/// accuracy against `max_gap`, runs `more` on each, and returns the mean fixed-point accuracy.
fn mean_over_splits(
    data: &Dataset,
    shape: &[usize],
    epochs: u64,
    min_each: f64,
    max_gap: f64,
    mut more: impl FnMut(&Prepared, &Run),
) -> f64 {
    let opts = TrainOptions {
        epochs,
        batch: 1,
        ..paper_options()
    };
    let mut accs = Vec::new();
    for split in 0..5 {
        let p = prepare(data, 0.2, split);
        let r = run_both(&p, shape, 1, opts);
        let (fixed, float) = (r.fixed_acc, r.float_acc);
        assert!(
            fixed >= min_each,
            "split {split}: fixed-point accuracy {fixed}"
        );
        assert!(
            (fixed - float).abs() <= max_gap,
            "split {split}: fixed {fixed} vs float {float}"
        );
        more(&p, &r);
        accs.push(fixed);
    }
    println!("fixed-point test accuracies {accs:?}");
    accs.iter().sum::<f64>() / accs.len() as f64
}

/// Iris: 4→16→3, one-hot targets, per-sample SGD, η = 2^-6, 50 epochs, stratified 80/20 splits
/// (30 test samples: one sample is 3.3 points). As for wdbc, the mean over five splits (seeds 0..5,
/// init seed 1). Observed by `survey` (fixed point, %, 50 epochs, init seeds 1..4; f64 identical in
/// all 24 runs):
///
/// ```text
/// split 0:  96.7 96.7 96.7 96.7      split 3:  96.7 93.3 96.7 93.3
/// split 1:  90.0 93.3 93.3 86.7      split 4: 100.0 100.0 96.7 100.0
/// split 2: 100.0 100.0 100.0 96.7    split 42: 93.3 93.3 93.3 93.3
/// ```
///
/// Mean 95.7%, minimum 86.7%. 4→8→3 was about one point lower (mean 94.3%); 30 epochs mean 95.1%,
/// 100 epochs 95.3%.
#[test]
fn iris_fixed_point_learns() {
    // One test sample is 3.3 points: allow the references to differ by one sample.
    let mean = mean_over_splits(&Dataset::iris(), &[4, 16, 3], 50, 0.85, 0.034, |_, _| {});
    assert!(mean >= 0.9, "mean fixed-point accuracy {mean}");
}

/// Prints test accuracies (fixed point / f64) over split seeds, init-and-order seeds and epochs,
/// for the configurations the acceptance tests use (run with
/// `cargo test -p smlp --release --test learning -- --ignored --nocapture survey`).
#[test]
#[ignore]
fn survey() {
    for (name, data, shape, epochs) in [
        ("wdbc", Dataset::wdbc(), vec![30, 16, 1], vec![5u64, 10, 20]),
        ("iris", Dataset::iris(), vec![4, 16, 3], vec![30, 50, 100]),
    ] {
        for &e in &epochs {
            let mut all = Vec::new();
            for split in [0u64, 1, 2, 3, 4, 42] {
                let p = prepare(&data, 0.2, split);
                let mut line = Vec::new();
                for seed in 1..=4 {
                    let opts = TrainOptions {
                        epochs: e,
                        batch: 1,
                        ..paper_options()
                    };
                    let r = run_both(&p, &shape, seed, opts);
                    line.push(format!(
                        "{:.1}/{:.1}",
                        100.0 * r.fixed_acc,
                        100.0 * r.float_acc
                    ));
                    all.push(r.fixed_acc);
                }
                println!("{name} epochs {e} split {split}: {}", line.join(" "));
            }
            let mean = all.iter().sum::<f64>() / all.len() as f64;
            let min = all.iter().cloned().fold(1.0, f64::min);
            println!(
                "{name} epochs {e}: fixed-point mean {:.2}% min {:.2}%",
                100.0 * mean,
                100.0 * min
            );
        }
    }
}
