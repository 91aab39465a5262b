//! Plaintext references: [`FixedMlp`] runs the exact integer arithmetic of the encrypted trainer
//! (floor or stochastic truncation), [`FloatMlp`] the same network in f64. Training drivers
//! ([`train_fixed`], [`train_float`]) and metrics ([`evaluate`], [`accuracy`]).
//!
//! One training step on a mini-batch (all samples use the weights from before the batch):
//!
//! ```text
//! forward   a_0 = x;  s_j = Σ_i W_l[j][i]·a_{l−1}[i] + b_l[j]·2^f;  z_j = ⌊s_j / 2^F_w⌋
//!           hidden: a_l[j] = max(z_j, 0), d_l[j] = 1{z_j > 0};  output o = z
//! backward  δ_L = o − y (squared loss) or clip(o, 0, 1) − y (smooth hinge, see [`Loss`]);  ∇W_l[j][i] += δ_l[j]·a_{l−1}[i];  ∇b_l[j] += δ_l[j]·2^f
//!           δ_{l−1}[i] = d_{l−1}[i] · ⌊Σ_j W_l[j][i]·δ_l[j] / 2^F_w⌋
//! update    W_l −= num·∇W_l;  b_l −= num·∇b_l   (exact: F_w = 2f + shift)
//! ```

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, EncodedDataset};
use crate::model::{
    epoch_order, init_fixed, predict_fixed, predict_float, FixedParams, Layer, Loss, Params,
    Rounding, Shape, Trace, Truncator,
};
use crate::{Error, Result};

/// What a fixed-point forward pass keeps for the backward pass.
pub type FixedTrace = Trace<i128>;
/// What a float forward pass keeps for the backward pass.
pub type FloatTrace = Trace<f64>;

/// The layer loop shared by both references: `affine(l, layer, a_{l−1})` gives z_l (checked and
/// truncated as the arithmetic requires), `relu(l, z)` the hidden activation and derivative.
fn forward_layers<T>(
    layers: &[Layer<T>],
    x: Vec<T>,
    mut affine: impl FnMut(usize, &Layer<T>, &[T]) -> Result<Vec<T>>,
    relu: impl Fn(usize, T) -> Result<(T, T)>,
) -> Result<Trace<T>> {
    let mut a = x;
    let mut activations = Vec::with_capacity(layers.len());
    let mut derivs = Vec::with_capacity(layers.len().saturating_sub(1));
    for (idx, layer) in layers.iter().enumerate() {
        let l = idx + 1;
        if a.len() != layer.fan_in() {
            return Err(Error::Shape(format!(
                "layer {l} expects {} inputs, got {}",
                layer.fan_in(),
                a.len()
            )));
        }
        let z = affine(l, layer, &a)?;
        activations.push(a);
        if l == layers.len() {
            return Ok(Trace {
                activations,
                derivs,
                output: z,
            });
        }
        let (next, d): (Vec<T>, Vec<T>) = z
            .into_iter()
            .map(|v| relu(l, v))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip();
        derivs.push(d);
        a = next;
    }
    Err(Error::Shape("network has no layer".into()))
}

/// The fixed-point reference network (weights and biases at scale 2^F_w).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedMlp {
    /// Arithmetic parameters.
    pub fixed: FixedParams,
    /// Weights and biases at scale 2^F_w.
    pub params: Params<i128>,
}

fn ovf(what: &'static str, layer: usize) -> Error {
    Error::Overflow { what, layer }
}

impl FixedMlp {
    /// A network of `shape` with Glorot-uniform weights ([`init_fixed`]).
    pub fn init(shape: &Shape, fixed: FixedParams, rng: &mut impl RngCore) -> Result<Self> {
        fixed.validate()?;
        let params = init_fixed(shape, &fixed, rng);
        Ok(FixedMlp { fixed, params })
    }

    /// A network with the given weights (checks the parameters and the layer dimensions).
    pub fn from_params(params: Params<i128>, fixed: FixedParams) -> Result<Self> {
        fixed.validate()?;
        params.shape()?;
        Ok(FixedMlp { fixed, params })
    }

    /// The network's shape.
    pub fn shape(&self) -> Shape {
        self.params
            .shape()
            .expect("FixedMlp parameters are checked at construction")
    }

    /// Forward pass for one sample x (at scale 2^f), truncating with `trunc`. Range-checks the
    /// weights, biases, layer inputs, pre-truncation sums and ReLU inputs against 2^ℓ.
    pub fn forward(&self, x: &[i64], trunc: &mut Truncator) -> Result<FixedTrace> {
        let fixed = &self.fixed;
        let fw = fixed.weight_frac_bits();
        let one = fixed.one();
        let affine = |l: usize, layer: &Layer<i128>, a: &[i128]| -> Result<Vec<i128>> {
            for &v in a {
                fixed.check(v, "activation", l)?;
            }
            let mut z = Vec::with_capacity(layer.fan_out());
            for (row, &b) in layer.w.iter().zip(&layer.b) {
                fixed.check(b, "bias", l)?;
                let mut s = b.checked_mul(one).ok_or(ovf("bias", l))?;
                for (&w, &ai) in row.iter().zip(a) {
                    fixed.check(w, "weight", l)?;
                    let p = w.checked_mul(ai).ok_or(ovf("forward product", l))?;
                    s = s.checked_add(p).ok_or(ovf("forward sum", l))?;
                }
                fixed.check(s, "forward sum", l)?;
                z.push(trunc.truncate(s, fw));
            }
            Ok(z)
        };
        let relu = |l: usize, z: i128| -> Result<(i128, i128)> {
            fixed.check(z, "ReLU input", l)?;
            Ok((z.max(0), i128::from(z > 0)))
        };
        let x = x.iter().map(|&v| i128::from(v)).collect();
        forward_layers(&self.params.layers, x, affine, relu)
    }

    /// Outputs for one sample with floor truncation (scale 2^f).
    pub fn output(&self, x: &[i64]) -> Result<Vec<i128>> {
        Ok(self.forward(x, &mut Truncator::floor())?.output)
    }

    /// Predicted class for one sample (floor truncation; see [`predict_fixed`]).
    pub fn predict(&self, x: &[i64]) -> Result<usize> {
        Ok(predict_fixed(&self.output(x)?, self.fixed.frac_bits))
    }

    /// Backward pass for one sample with target `y` (scale 2^f) and `loss`: adds this sample's
    /// gradients to `grads` (which has the network's shape). Uses the current weights, i.e. those
    /// before the batch's update. Range-checks the errors δ and the backward sums against 2^ℓ
    /// (and, for the smooth hinge, o − 2^f as the second ReLU's input).
    pub fn backward(
        &self,
        trace: &FixedTrace,
        y: &[i64],
        loss: Loss,
        grads: &mut Params<i128>,
        trunc: &mut Truncator,
    ) -> Result<()> {
        let fixed = &self.fixed;
        let fw = fixed.weight_frac_bits();
        let f = fixed.frac_bits;
        let num_layers = self.params.layers.len();
        if y.len() != trace.output.len() {
            return Err(Error::Shape(format!(
                "target has {} entries, the network {} outputs",
                y.len(),
                trace.output.len()
            )));
        }
        let one = fixed.one();
        let mut delta: Vec<i128> = trace
            .output
            .iter()
            .zip(y)
            .map(|(&o, &t)| {
                let e = match loss {
                    Loss::Squared => o,
                    // max(o, 0) − max(o − 2^f, 0), as the encrypted run computes it.
                    Loss::SmoothHinge => {
                        let shifted = o.checked_sub(one).ok_or(ovf("ReLU input", num_layers))?;
                        fixed.check(shifted, "ReLU input", num_layers)?;
                        o.max(0) - shifted.max(0)
                    }
                };
                e.checked_sub(i128::from(t)).ok_or(ovf("delta", num_layers))
            })
            .collect::<Result<_>>()?;
        for l in (1..=num_layers).rev() {
            let layer = &self.params.layers[l - 1];
            let grad = &mut grads.layers[l - 1];
            let a_prev = &trace.activations[l - 1];
            for &d in &delta {
                fixed.check(d, "delta", l)?;
            }
            for (j, &dj) in delta.iter().enumerate() {
                for (g, &ai) in grad.w[j].iter_mut().zip(a_prev) {
                    let p = dj.checked_mul(ai).ok_or(ovf("weight gradient", l))?;
                    *g = g.checked_add(p).ok_or(ovf("weight gradient", l))?;
                }
                let p = dj.checked_shl(f).filter(|p| p >> f == dj);
                let p = p.ok_or(ovf("bias gradient", l))?;
                grad.b[j] = grad.b[j].checked_add(p).ok_or(ovf("bias gradient", l))?;
            }
            if l > 1 {
                let d_prev = &trace.derivs[l - 2];
                let mut next = Vec::with_capacity(layer.fan_in());
                for (i, &di) in d_prev.iter().enumerate() {
                    let mut s = 0i128;
                    for (row, &dj) in layer.w.iter().zip(&delta) {
                        let p = row[i].checked_mul(dj).ok_or(ovf("backward product", l))?;
                        s = s.checked_add(p).ok_or(ovf("backward sum", l))?;
                    }
                    fixed.check(s, "backward sum", l)?;
                    let t = trunc.truncate(s, fw);
                    next.push(di.checked_mul(t).ok_or(ovf("delta", l - 1))?);
                }
                delta = next;
            }
        }
        Ok(())
    }

    /// W −= num·∇W and b −= num·∇b (exact; no truncation).
    pub fn apply_gradients(&mut self, grads: &Params<i128>) -> Result<()> {
        let num = i128::from(self.fixed.lr.num);
        for (idx, (layer, grad)) in self.params.layers.iter_mut().zip(&grads.layers).enumerate() {
            let l = idx + 1;
            let step = |w: &mut i128, g: i128| -> Result<()> {
                *w = g
                    .checked_mul(num)
                    .and_then(|d| w.checked_sub(d))
                    .ok_or(ovf("weight update", l))?;
                Ok(())
            };
            for (row, grow) in layer.w.iter_mut().zip(&grad.w) {
                for (w, &g) in row.iter_mut().zip(grow) {
                    step(w, g)?;
                }
            }
            for (b, &g) in layer.b.iter_mut().zip(&grad.b) {
                step(b, g)?;
            }
        }
        Ok(())
    }

    /// One mini-batch step: forward and backward for each sample `(x, y)` in order with the
    /// current weights, gradients of `loss` summed, then one update. Returns the batch's summed
    /// loss (decoded with 2^f).
    pub fn train_batch<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (&'a [i64], &'a [i64])>,
        loss: Loss,
        trunc: &mut Truncator,
    ) -> Result<f64> {
        let mut grads = Params::filled(&self.shape(), 0i128);
        let total = self.accumulate_batch(batch, loss, &mut grads, trunc)?;
        self.apply_gradients(&grads)?;
        Ok(total)
    }

    fn accumulate_batch<'a>(
        &self,
        batch: impl IntoIterator<Item = (&'a [i64], &'a [i64])>,
        loss: Loss,
        grads: &mut Params<i128>,
        trunc: &mut Truncator,
    ) -> Result<f64> {
        let mut total = 0.0;
        for (x, y) in batch {
            let trace = self.forward(x, trunc)?;
            let decode = |v: i128| self.fixed.decode_value(v);
            total += trace
                .output
                .iter()
                .zip(y)
                .map(|(&o, &t)| loss.value(decode(o), decode(i128::from(t))))
                .sum::<f64>();
            self.backward(&trace, y, loss, grads, trunc)?;
        }
        Ok(total)
    }

    /// The weights decoded to reals (W / 2^F_w).
    pub fn decoded_params(&self) -> Params<f64> {
        self.params.map(|&w| self.fixed.decode_weight(w))
    }
}

/// The f64 reference network: same structure, real arithmetic, loss ½Σ(o − y)², learning rate
/// applied to the batch sum of the gradients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FloatMlp {
    /// Weights and biases.
    pub params: Params<f64>,
    /// Learning rate η.
    pub lr: f64,
}

impl FloatMlp {
    /// The float network starting from the same weights as `m` (decoded: W / 2^F_w), with
    /// η = num / 2^shift.
    pub fn from_fixed(m: &FixedMlp) -> Self {
        FloatMlp {
            params: m.decoded_params(),
            lr: m.fixed.lr.value(),
        }
    }

    /// The network's shape.
    pub fn shape(&self) -> Result<Shape> {
        self.params.shape()
    }

    /// Forward pass for one sample.
    pub fn forward(&self, x: &[f64]) -> Result<FloatTrace> {
        let affine = |_: usize, layer: &Layer<f64>, a: &[f64]| -> Result<Vec<f64>> {
            Ok(layer
                .w
                .iter()
                .zip(&layer.b)
                .map(|(row, &b)| row.iter().zip(a).map(|(w, x)| w * x).sum::<f64>() + b)
                .collect())
        };
        let relu = |_: usize, z: f64| Ok((z.max(0.0), if z > 0.0 { 1.0 } else { 0.0 }));
        forward_layers(&self.params.layers, x.to_vec(), affine, relu)
    }

    /// Outputs for one sample.
    pub fn output(&self, x: &[f64]) -> Result<Vec<f64>> {
        Ok(self.forward(x)?.output)
    }

    /// Predicted class for one sample (see [`predict_float`]).
    pub fn predict(&self, x: &[f64]) -> Result<usize> {
        Ok(predict_float(&self.output(x)?))
    }

    /// Adds one sample's gradients of `loss` to `grads`.
    pub fn backward(
        &self,
        trace: &FloatTrace,
        y: &[f64],
        loss: Loss,
        grads: &mut Params<f64>,
    ) -> Result<()> {
        if y.len() != trace.output.len() {
            return Err(Error::Shape(format!(
                "target has {} entries, the network {} outputs",
                y.len(),
                trace.output.len()
            )));
        }
        let mut delta: Vec<f64> = (trace.output.iter().zip(y))
            .map(|(&o, &t)| loss.delta(o, t))
            .collect();
        for l in (1..=self.params.layers.len()).rev() {
            let layer = &self.params.layers[l - 1];
            let grad = &mut grads.layers[l - 1];
            let a_prev = &trace.activations[l - 1];
            for (j, &dj) in delta.iter().enumerate() {
                for (g, &ai) in grad.w[j].iter_mut().zip(a_prev) {
                    *g += dj * ai;
                }
                grad.b[j] += dj;
            }
            if l > 1 {
                delta = trace.derivs[l - 2]
                    .iter()
                    .enumerate()
                    .map(|(i, &di)| {
                        di * layer
                            .w
                            .iter()
                            .zip(&delta)
                            .map(|(row, d)| row[i] * d)
                            .sum::<f64>()
                    })
                    .collect();
            }
        }
        Ok(())
    }

    /// W −= η·∇W, b −= η·∇b.
    pub fn apply_gradients(&mut self, grads: &Params<f64>) {
        let lr = self.lr;
        for (layer, grad) in self.params.layers.iter_mut().zip(&grads.layers) {
            for (row, grow) in layer.w.iter_mut().zip(&grad.w) {
                for (w, g) in row.iter_mut().zip(grow) {
                    *w -= lr * g;
                }
            }
            for (b, g) in layer.b.iter_mut().zip(&grad.b) {
                *b -= lr * g;
            }
        }
    }

    /// One mini-batch step (see [`FixedMlp::train_batch`]); returns the summed loss.
    pub fn train_batch<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (&'a [f64], &'a [f64])>,
        loss: Loss,
    ) -> Result<f64> {
        let mut grads = Params::filled(&self.shape()?, 0.0);
        let mut total = 0.0;
        for (x, y) in batch {
            let trace = self.forward(x)?;
            total += (trace.output.iter().zip(y))
                .map(|(&o, &t)| loss.value(o, t))
                .sum::<f64>();
            self.backward(&trace, y, loss, &mut grads)?;
        }
        self.apply_gradients(&grads);
        Ok(total)
    }
}

/// How to run a training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Number of epochs to run.
    pub epochs: u64,
    /// Mini-batch size B (1 = per-sample SGD); the last batch of an epoch may be smaller.
    pub batch: usize,
    /// The loss whose gradient is followed (default: [`crate::defaults::LOSS`], the smoothed hinge).
    pub loss: Loss,
    /// Seed of the sample order ([`epoch_order`]).
    pub seed: u64,
    /// First epoch index (0 for a fresh run; k to resume after k finished epochs).
    pub start_epoch: u64,
    /// Truncation mode of the fixed-point reference (ignored by the float reference). For
    /// `Stochastic(seed)` one stream serves the whole call, drawn in computation order (per sample:
    /// forward layer by layer, output neuron by output neuron; backward layer L down to 2, input
    /// neuron by input neuron); a resumed run starts a fresh stream, so only `Floor` runs resume
    /// bit for bit.
    pub rounding: Rounding,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: crate::defaults::EPOCHS,
            batch: crate::defaults::BATCH,
            loss: crate::defaults::LOSS,
            seed: crate::defaults::SEED,
            start_epoch: 0,
            rounding: Rounding::Floor,
        }
    }
}

/// Statistics of one finished epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch index (0-based).
    pub epoch: u64,
    /// Mean training loss (of [`TrainOptions::loss`]) over the epoch's samples, from the forward passes made
    /// during training (so with the weights of the time).
    pub loss: f64,
}

/// Per-epoch statistics of a training run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One entry per epoch run.
    pub epochs: Vec<EpochStats>,
}

impl History {
    /// Training losses, one per epoch.
    pub fn losses(&self) -> Vec<f64> {
        self.epochs.iter().map(|e| e.loss).collect()
    }
}

fn check_options(opts: &TrainOptions, n: usize) -> Result<()> {
    if opts.batch == 0 {
        return Err(Error::InvalidParams("batch size must be at least 1".into()));
    }
    if n == 0 {
        return Err(Error::InvalidParams("training set is empty".into()));
    }
    Ok(())
}

fn check_dims(shape: &Shape, d: usize, k: usize) -> Result<()> {
    if d != shape.inputs() || k != shape.outputs() {
        return Err(Error::Shape(format!(
            "data has {d} features and {k} target(s) per sample; network {shape} expects {} and {}",
            shape.inputs(),
            shape.outputs()
        )));
    }
    Ok(())
}

/// Trains the fixed-point reference: for each epoch, visits the samples in [`epoch_order`] in
/// mini-batches of `opts.batch`, and calls `on_epoch` after each epoch.
pub fn train_fixed(
    model: &mut FixedMlp,
    data: &EncodedDataset,
    opts: &TrainOptions,
    on_epoch: impl FnMut(&EpochStats, &FixedMlp),
) -> Result<History> {
    check_options(opts, data.len())?;
    if data.frac_bits != model.fixed.frac_bits {
        return Err(Error::InvalidParams(format!(
            "data encoded with {} fractional bits, model uses {}",
            data.frac_bits, model.fixed.frac_bits
        )));
    }
    let shape = model.shape();
    for (x, y) in data.features.iter().zip(&data.targets) {
        check_dims(&shape, x.len(), y.len())?;
    }
    let mut trunc = Truncator::new(opts.rounding);
    let mut grads = Params::filled(&shape, 0i128);
    run_epochs(
        model,
        data.len(),
        opts,
        |model, chunk| {
            grads.layers.iter_mut().for_each(|g| {
                g.w.iter_mut().flatten().for_each(|v| *v = 0);
                g.b.iter_mut().for_each(|v| *v = 0);
            });
            let batch = chunk
                .iter()
                .map(|&i| (data.features[i].as_slice(), data.targets[i].as_slice()));
            let loss = model.accumulate_batch(batch, opts.loss, &mut grads, &mut trunc)?;
            model.apply_gradients(&grads)?;
            Ok(loss)
        },
        on_epoch,
    )
}

/// The epoch loop both references share: for each epoch, the batches of [`epoch_order`] through
/// `step` (which returns the batch's summed loss), then `on_epoch` with the mean loss.
fn run_epochs<M>(
    model: &mut M,
    n: usize,
    opts: &TrainOptions,
    mut step: impl FnMut(&mut M, &[usize]) -> Result<f64>,
    mut on_epoch: impl FnMut(&EpochStats, &M),
) -> Result<History> {
    let mut history = History::default();
    for epoch in opts.start_epoch..opts.start_epoch + opts.epochs {
        let order = epoch_order(n, opts.seed, epoch);
        let mut loss = 0.0;
        for chunk in order.chunks(opts.batch) {
            loss += step(model, chunk)?;
        }
        let stats = EpochStats {
            epoch,
            loss: loss / n as f64,
        };
        history.epochs.push(stats);
        on_epoch(&stats, model);
    }
    Ok(history)
}

/// Trains the float reference on real-valued features (targets from the labels: label, or
/// one-hot), with the same sample order and batches as [`train_fixed`].
pub fn train_float(
    model: &mut FloatMlp,
    data: &Dataset,
    opts: &TrainOptions,
    on_epoch: impl FnMut(&EpochStats, &FloatMlp),
) -> Result<History> {
    check_options(opts, data.len())?;
    let shape = model.shape()?;
    check_dims(&shape, data.num_features(), data.outputs())?;
    if let Some(x) = data.features.iter().find(|x| x.len() != shape.inputs()) {
        return Err(Error::Shape(format!(
            "a sample has {} features, expected {}",
            x.len(),
            shape.inputs()
        )));
    }
    let targets = data.float_targets();
    run_epochs(
        model,
        data.len(),
        opts,
        |model, chunk| {
            let batch = chunk
                .iter()
                .map(|&i| (data.features[i].as_slice(), targets[i].as_slice()));
            model.train_batch(batch, opts.loss)
        },
        on_epoch,
    )
}

/// A model that assigns a class to one sample.
pub trait Classifier {
    /// Type of one feature value (`i64` fixed point, or `f64`).
    type Input;
    /// The predicted class of `x`.
    fn classify(&self, x: &[Self::Input]) -> Result<usize>;
}

impl Classifier for FixedMlp {
    type Input = i64;
    fn classify(&self, x: &[i64]) -> Result<usize> {
        self.predict(x)
    }
}

impl Classifier for FloatMlp {
    type Input = f64;
    fn classify(&self, x: &[f64]) -> Result<usize> {
        self.predict(x)
    }
}

/// Confusion matrix and derived metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Metrics {
    /// Builds the confusion matrix from predictions (classes = the larger of `classes` and the
    /// largest class seen + 1).
    pub fn from_predictions(predicted: &[usize], labels: &[usize], classes: usize) -> Self {
        let k = predicted
            .iter()
            .chain(labels)
            .map(|&c| c + 1)
            .max()
            .unwrap_or(0)
            .max(classes);
        let mut confusion = vec![vec![0; k]; k];
        for (&p, &t) in predicted.iter().zip(labels) {
            confusion[t][p] += 1;
        }
        Metrics { confusion }
    }

    /// Number of samples.
    pub fn total(&self) -> usize {
        self.confusion.iter().flatten().sum()
    }

    /// Fraction classified correctly (0 for no sample).
    pub fn accuracy(&self) -> f64 {
        let correct: usize = (0..self.confusion.len())
            .map(|c| self.confusion[c][c])
            .sum();
        ratio(correct, self.total())
    }

    /// Precision of `class`: TP / (TP + FP) (0 when nothing was predicted as `class`).
    pub fn precision(&self, class: usize) -> f64 {
        let predicted: usize = self.confusion.iter().map(|row| row[class]).sum();
        ratio(self.confusion[class][class], predicted)
    }

    /// Recall of `class`: TP / (TP + FN) (0 when `class` has no sample).
    pub fn recall(&self, class: usize) -> f64 {
        ratio(
            self.confusion[class][class],
            self.confusion[class].iter().sum(),
        )
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Classifies every sample of `xs` and compares with `labels`.
pub fn evaluate<C: Classifier>(
    model: &C,
    xs: &[Vec<C::Input>],
    labels: &[usize],
) -> Result<Metrics> {
    if xs.len() != labels.len() {
        return Err(Error::Shape(format!(
            "{} samples but {} labels",
            xs.len(),
            labels.len()
        )));
    }
    let predicted = xs
        .iter()
        .map(|x| model.classify(x))
        .collect::<Result<Vec<_>>>()?;
    Ok(Metrics::from_predictions(&predicted, labels, 2))
}

/// Fraction of `xs` that `model` classifies as `labels` says.
pub fn accuracy<C: Classifier>(model: &C, xs: &[Vec<C::Input>], labels: &[usize]) -> Result<f64> {
    Ok(evaluate(model, xs, labels)?.accuracy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LearningRate;

    #[test]
    fn metrics_precision_recall() {
        // truth:     1 1 1 0 0 0 0
        // predicted: 1 1 0 1 0 0 0
        let m = Metrics::from_predictions(&[1, 1, 0, 1, 0, 0, 0], &[1, 1, 1, 0, 0, 0, 0], 2);
        assert_eq!(m.confusion, vec![vec![3, 1], vec![1, 2]]);
        assert_eq!(m.total(), 7);
        assert!((m.accuracy() - 5.0 / 7.0).abs() < 1e-12);
        assert!((m.precision(1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.recall(1) - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.precision(0) - 0.75).abs() < 1e-12);
        let empty = Metrics::from_predictions(&[], &[], 2);
        assert_eq!(empty.accuracy(), 0.0);
        assert_eq!(empty.precision(1), 0.0);
    }

    /// A 1→1→1 network that overflows ℓ only when ℓ is small.
    #[test]
    fn overflow_is_reported_with_small_value_bits() {
        let fixed = FixedParams::new(4, LearningRate::pow2(1), 14).unwrap(); // F_w = 9
        let params = Params {
            layers: vec![
                Layer {
                    w: vec![vec![1 << 9]],
                    b: vec![0],
                },
                Layer {
                    w: vec![vec![1 << 9]],
                    b: vec![0],
                },
            ],
        };
        let m = FixedMlp::from_params(params, fixed).unwrap();
        // x = 1.0 → s = 2^9·2^4 = 2^13 < 2^14: fine.
        assert_eq!(m.output(&[16]).unwrap(), vec![16]);
        // x = 2.0 → s = 2^14: the forward sum of layer 1 is out of range.
        assert_eq!(
            m.output(&[32]),
            Err(Error::Overflow {
                what: "forward sum",
                layer: 1
            })
        );
        // x itself out of range.
        assert_eq!(
            m.output(&[1 << 14]),
            Err(Error::Overflow {
                what: "activation",
                layer: 1
            })
        );
        let msg = Error::Overflow {
            what: "forward sum",
            layer: 1,
        }
        .to_string();
        assert!(
            msg.contains("forward sum") && msg.contains("layer 1"),
            "{msg}"
        );

        // A large error δ is caught in the backward pass.
        let trace = m.forward(&[16], &mut Truncator::floor()).unwrap();
        let mut grads = Params::filled(&m.shape(), 0i128);
        let err = m
            .backward(
                &trace,
                &[-(1 << 14)],
                Loss::Squared,
                &mut grads,
                &mut Truncator::floor(),
            )
            .unwrap_err();
        assert_eq!(
            err,
            Error::Overflow {
                what: "delta",
                layer: 2
            }
        );

        // A weight out of range.
        let mut big = m.clone();
        big.params.layers[1].w[0][0] = 1 << 14;
        assert_eq!(
            big.output(&[16]),
            Err(Error::Overflow {
                what: "weight",
                layer: 2
            })
        );
        // Wider ℓ accepts the same computation.
        let wide = FixedMlp::from_params(
            m.params.clone(),
            FixedParams {
                value_bits: 40,
                ..fixed
            },
        )
        .unwrap();
        assert_eq!(wide.output(&[32]).unwrap(), vec![32]);
    }

    #[test]
    fn relu_derivative_at_zero_is_zero() {
        // 1→1→1: hidden z = ⌊(W·x + b·2^f)/2^F_w⌋ with b = −W·x/2^f exactly, so z = 0.
        let fixed = FixedParams::new(4, LearningRate::pow2(0), 20).unwrap(); // F_w = 8
        let params = Params {
            layers: vec![
                Layer {
                    w: vec![vec![256]],
                    b: vec![-256],
                }, // z = x − 1
                Layer {
                    w: vec![vec![256]],
                    b: vec![0],
                },
            ],
        };
        let m = FixedMlp::from_params(params, fixed).unwrap();
        let trace = m.forward(&[16], &mut Truncator::floor()).unwrap(); // x = 1 → z = 0
        assert_eq!(trace.derivs, vec![vec![0]]);
        assert_eq!(trace.activations[1], vec![0]);
        let mut grads = Params::filled(&m.shape(), 0i128);
        m.backward(
            &trace,
            &[16],
            Loss::Squared,
            &mut grads,
            &mut Truncator::floor(),
        )
        .unwrap();
        // δ_2 = 0 − 16 flows back through W = 1, but ReLU'(0) = 0 stops it.
        assert_eq!(grads.layers[0].w, vec![vec![0]]);
        assert_eq!(grads.layers[0].b, vec![0]);
        assert_eq!(grads.layers[1].b, vec![-16 * 16]);
        // Just above zero the gradient passes.
        let trace = m.forward(&[17], &mut Truncator::floor()).unwrap();
        assert_eq!(trace.derivs, vec![vec![1]]);
    }
}
