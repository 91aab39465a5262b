//! The network and its fixed-point contract: parameters, shapes, weight containers, truncation,
//! initialisation, sample order and targets.
//!
//! Everything here is shared by the plaintext references ([`crate::reference`]) and the encrypted
//! trainer, which performs exactly the same integer operations on ciphertexts.
//!
//! # Scales
//! With `f` = [`FixedParams::frac_bits`] and η = `num / 2^shift` ([`LearningRate`]):
//! - inputs, activations, errors δ and targets are integers at scale 2^f (x̂ = round(x·2^f));
//! - weights and biases are integers at scale 2^F_w with F_w = 2f + shift
//!   ([`FixedParams::weight_frac_bits`]), so that the update W −= num·∇W is exact (no truncation);
//! - the forward sum s = Σ W·a + b·2^f is at scale 2^(F_w+f) and is truncated by 2^F_w;
//! - the backward sum Σ W·δ is at scale 2^(F_w+f) and is truncated by 2^F_w.
//!
//! Every value that enters a two-party sub-protocol must satisfy |v| < 2^ℓ
//! ([`FixedParams::value_bits`]); a violation is [`Error::Overflow`], never a silent wrap.

use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Learning rate η = `num` / 2^`shift`, applied to the gradient summed over a mini-batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LearningRate {
    /// Numerator (at least 1).
    pub num: u32,
    /// η = num / 2^shift.
    pub shift: u32,
}

impl LearningRate {
    /// η = num / 2^shift; `num` must be at least 1.
    pub fn new(num: u32, shift: u32) -> Result<Self> {
        if num == 0 {
            return Err(Error::InvalidParams(
                "learning-rate numerator must be at least 1".into(),
            ));
        }
        Ok(LearningRate { num, shift })
    }

    /// η = 2^(−shift).
    pub fn pow2(shift: u32) -> Self {
        LearningRate { num: 1, shift }
    }

    /// η as a real number.
    pub fn value(&self) -> f64 {
        self.num as f64 / (self.shift as f64).exp2()
    }
}

impl Default for LearningRate {
    /// [`crate::defaults::LEARNING_RATE`]: η = 2^−4.
    fn default() -> Self {
        crate::defaults::LEARNING_RATE
    }
}

/// Parameters of the fixed-point arithmetic (see the module documentation for the scales).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FixedParams {
    /// f: fractional bits of inputs, activations, errors and targets (default 16).
    pub frac_bits: u32,
    /// Learning rate η = num / 2^shift (default 2^−4).
    pub lr: LearningRate,
    /// ℓ: every value entering a sub-protocol must satisfy |v| < 2^ℓ (default 72).
    pub value_bits: u32,
}

impl Default for FixedParams {
    fn default() -> Self {
        FixedParams {
            frac_bits: crate::defaults::FRAC_BITS,
            lr: LearningRate::default(),
            value_bits: crate::defaults::VALUE_BITS,
        }
    }
}

/// Largest `value_bits` accepted (values live in `i128`).
pub const MAX_VALUE_BITS: u32 = 120;
/// Largest weight scale F_w accepted (keeps [`glorot_bound`] exact and the sums inside `i128`).
pub const MAX_WEIGHT_FRAC_BITS: u32 = 60;

impl FixedParams {
    /// Checked constructor.
    pub fn new(frac_bits: u32, lr: LearningRate, value_bits: u32) -> Result<Self> {
        let p = FixedParams {
            frac_bits,
            lr,
            value_bits,
        };
        p.validate()?;
        Ok(p)
    }

    /// Checks the parameters: num ≥ 1, 1 ≤ f, F_w ≤ [`MAX_WEIGHT_FRAC_BITS`],
    /// F_w + f < ℓ ≤ [`MAX_VALUE_BITS`].
    pub fn validate(&self) -> Result<()> {
        if self.lr.num == 0 {
            return Err(Error::InvalidParams(
                "learning-rate numerator must be at least 1".into(),
            ));
        }
        if self.frac_bits == 0 {
            return Err(Error::InvalidParams("frac_bits must be at least 1".into()));
        }
        let fw = u64::from(self.frac_bits) * 2 + u64::from(self.lr.shift);
        if fw > u64::from(MAX_WEIGHT_FRAC_BITS) {
            return Err(Error::InvalidParams(format!(
                "weight scale 2f + shift = {fw} exceeds {MAX_WEIGHT_FRAC_BITS} bits"
            )));
        }
        if self.value_bits > MAX_VALUE_BITS {
            return Err(Error::InvalidParams(format!(
                "value_bits = {} exceeds {MAX_VALUE_BITS}",
                self.value_bits
            )));
        }
        if u64::from(self.value_bits) <= fw + u64::from(self.frac_bits) {
            return Err(Error::InvalidParams(format!(
                "value_bits = {} must exceed the scale of the forward sums (3f + shift = {})",
                self.value_bits,
                fw + u64::from(self.frac_bits)
            )));
        }
        Ok(())
    }

    /// F_w = 2f + shift: weights and biases are integers at scale 2^F_w.
    pub fn weight_frac_bits(&self) -> u32 {
        2 * self.frac_bits + self.lr.shift
    }

    /// 2^f, the encoding of 1.0 for inputs, activations, errors and targets.
    pub fn one(&self) -> i128 {
        1i128 << self.frac_bits
    }

    /// 2^ℓ, the exclusive bound on the magnitude of every value entering a sub-protocol.
    pub fn bound(&self) -> i128 {
        1i128 << self.value_bits
    }

    /// |v| < 2^ℓ.
    pub fn in_range(&self, v: i128) -> bool {
        v.unsigned_abs() < self.bound().unsigned_abs()
    }

    /// Returns `v` if |v| < 2^ℓ, else [`Error::Overflow`] naming the value and its layer (1-based).
    pub fn check(&self, v: i128, what: &'static str, layer: usize) -> Result<i128> {
        if self.in_range(v) {
            Ok(v)
        } else {
            Err(Error::Overflow { what, layer })
        }
    }

    /// Decodes an activation, error, output or target: v / 2^f.
    pub fn decode_value(&self, v: i128) -> f64 {
        v as f64 / (self.frac_bits as f64).exp2()
    }

    /// Decodes a weight or bias: v / 2^F_w.
    pub fn decode_weight(&self, v: i128) -> f64 {
        v as f64 / (self.weight_frac_bits() as f64).exp2()
    }
}

/// Layer sizes [d, h₁, …, k]: d inputs, hidden layers, k outputs. L = len − 1 weight layers.
///
/// Only [`Shape::new`] makes one, decoding included (serde goes through it), so every shape has
/// at least two sizes, each in 1..=[`Shape::MAX_UNITS`], at most [`Shape::MAX_SIZES`] of them and
/// at most [`Shape::MAX_PARAMS`] weights and biases in all.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<usize>", into = "Vec<usize>")]
pub struct Shape(Vec<usize>);

impl TryFrom<Vec<usize>> for Shape {
    type Error = Error;
    fn try_from(sizes: Vec<usize>) -> Result<Self> {
        Shape::new(sizes)
    }
}

impl From<Shape> for Vec<usize> {
    fn from(s: Shape) -> Vec<usize> {
        s.0
    }
}

impl Shape {
    /// Most layer sizes (input, hidden layers, output).
    pub const MAX_SIZES: usize = 34;
    /// Largest layer.
    pub const MAX_UNITS: usize = 1 << 16;
    /// Most weights and biases in all.
    pub const MAX_PARAMS: usize = 1 << 24;

    /// Checked constructor: at least two sizes, all positive, within the bounds above.
    pub fn new(sizes: Vec<usize>) -> Result<Self> {
        if sizes.len() < 2 || sizes.len() > Self::MAX_SIZES {
            return Err(Error::InvalidParams(format!(
                "a network needs an input and an output size and at most {} sizes in all, got {} sizes",
                Self::MAX_SIZES,
                sizes.len()
            )));
        }
        if sizes.iter().any(|&n| n == 0 || n > Self::MAX_UNITS) {
            return Err(Error::InvalidParams(format!(
                "layer sizes must be in 1..={}, got {sizes:?}",
                Self::MAX_UNITS
            )));
        }
        let params = sizes
            .windows(2)
            .try_fold(0usize, |acc, w| {
                (w[0] + 1)
                    .checked_mul(w[1])
                    .and_then(|n| acc.checked_add(n))
            })
            .filter(|&n| n <= Self::MAX_PARAMS);
        if params.is_none() {
            return Err(Error::InvalidParams(format!(
                "a network of {sizes:?} has more than {} weights",
                Self::MAX_PARAMS
            )));
        }
        Ok(Shape(sizes))
    }

    /// [`Shape::new`] of `inputs`, the `hidden` layer sizes, then `outputs`.
    pub fn mlp(inputs: usize, hidden: &[usize], outputs: usize) -> Result<Self> {
        let mut sizes = Vec::with_capacity(hidden.len() + 2);
        sizes.push(inputs);
        sizes.extend_from_slice(hidden);
        sizes.push(outputs);
        Self::new(sizes)
    }

    /// The layer sizes [d, h₁, …, k].
    pub fn sizes(&self) -> &[usize] {
        &self.0
    }

    /// d, the number of inputs.
    pub fn inputs(&self) -> usize {
        self.0[0]
    }

    /// k, the number of outputs.
    pub fn outputs(&self) -> usize {
        *self.0.last().expect("a shape has at least two sizes")
    }

    /// L, the number of weight layers.
    pub fn num_layers(&self) -> usize {
        self.0.len() - 1
    }

    /// (fan_in, fan_out) of weight layer `l` (1-based, 1 ≤ l ≤ L).
    pub fn layer_dims(&self, l: usize) -> (usize, usize) {
        (self.0[l - 1], self.0[l])
    }

    /// Number of weights and biases.
    pub fn num_params(&self) -> usize {
        self.0.windows(2).map(|w| (w[0] + 1) * w[1]).sum()
    }
}

impl fmt::Display for Shape {
    /// `30-16-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|n| n.to_string()).collect();
        f.write_str(&parts.join("-"))
    }
}

impl FromStr for Shape {
    type Err = Error;

    /// Parses `30-16-1` (also accepts `,` or `x` as separators).
    fn from_str(s: &str) -> Result<Self> {
        let sizes = s
            .split(['-', ',', 'x'])
            .map(|p| {
                p.trim().parse::<usize>().map_err(|_| {
                    Error::InvalidParams(format!("bad layer size `{p}` in shape `{s}`"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Shape::new(sizes)
    }
}

/// One weight layer: `w[j][i]` connects input i to output j; `b[j]` is the bias of output j.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer<T> {
    /// Weights, `[out][in]`.
    pub w: Vec<Vec<T>>,
    /// Biases, `[out]`.
    pub b: Vec<T>,
}

impl<T> Layer<T> {
    /// fan_in (length of each weight row; 0 for a layer without outputs).
    pub fn fan_in(&self) -> usize {
        self.w.first().map_or(0, Vec::len)
    }

    /// fan_out.
    pub fn fan_out(&self) -> usize {
        self.b.len()
    }

    /// Applies `f` to every weight (row by row), then to every bias.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> Layer<U> {
        Layer {
            w: self
                .w
                .iter()
                .map(|row| row.iter().map(&mut f).collect())
                .collect(),
            b: self.b.iter().map(f).collect(),
        }
    }
}

/// All weight layers of a network: `layers[l − 1]` holds W_l and b_l. Generic so that the encrypted
/// trainer can hold `Params<Ciphertext>` with the same layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params<T> {
    /// Layers 1..=L.
    pub layers: Vec<Layer<T>>,
}

impl<T> Params<T> {
    /// Builds parameters of `shape` with `f(l, j, Some(i))` for weight `W_l[j][i]` and
    /// `f(l, j, None)` for bias `b_l[j]` (l 1-based). Calls are made in the order of
    /// [`Params::iter`]: per layer, the weights row by row, then the biases.
    pub fn from_fn(shape: &Shape, mut f: impl FnMut(usize, usize, Option<usize>) -> T) -> Self {
        let layers = (1..=shape.num_layers())
            .map(|l| {
                let (fan_in, fan_out) = shape.layer_dims(l);
                let w = (0..fan_out)
                    .map(|j| (0..fan_in).map(|i| f(l, j, Some(i))).collect())
                    .collect();
                let b = (0..fan_out).map(|j| f(l, j, None)).collect();
                Layer { w, b }
            })
            .collect();
        Params { layers }
    }

    /// The shape these parameters have, if consistent (every row of a layer has the same length
    /// and each layer's fan_in is the previous layer's fan_out).
    pub fn shape(&self) -> Result<Shape> {
        let first = self
            .layers
            .first()
            .ok_or_else(|| Error::Shape("parameters have no layer".into()))?;
        let mut sizes = vec![first.fan_in()];
        for (idx, layer) in self.layers.iter().enumerate() {
            let l = idx + 1;
            if layer.w.len() != layer.b.len() {
                return Err(Error::Shape(format!(
                    "layer {l}: {} weight rows but {} biases",
                    layer.w.len(),
                    layer.b.len()
                )));
            }
            let fan_in = *sizes.last().expect("non-empty");
            if let Some(j) = layer.w.iter().position(|row| row.len() != fan_in) {
                return Err(Error::Shape(format!(
                    "layer {l}: weight row {j} has {} entries, expected {fan_in}",
                    layer.w[j].len()
                )));
            }
            sizes.push(layer.fan_out());
        }
        Shape::new(sizes).map_err(|e| Error::Shape(e.to_string()))
    }

    /// Applies `f` to every weight and bias, in the order of [`Params::iter`].
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> Params<U> {
        Params {
            layers: self.layers.iter().map(|layer| layer.map(&mut f)).collect(),
        }
    }

    /// Every weight and bias: per layer, the weights row by row, then the biases (the order in
    /// which [`Params::map`] and [`Params::from_fn`] visit them).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.layers
            .iter()
            .flat_map(|layer| layer.w.iter().flatten().chain(&layer.b))
    }
}

impl<T: Clone> Params<T> {
    /// Parameters of `shape` with every entry equal to `v`.
    pub fn filled(shape: &Shape, v: T) -> Self {
        Params::from_fn(shape, |_, _, _| v.clone())
    }
}

/// What a forward pass for one sample keeps for the backward pass (generic so that the encrypted
/// trainer can keep `Trace<Ciphertext>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace<T> {
    /// a_0 (the input), a_1, …, a_{L−1}: the input of each weight layer.
    pub activations: Vec<Vec<T>>,
    /// d_1, …, d_{L−1}: ReLU derivatives of the hidden layers (1 iff z > 0, else 0; so
    /// ReLU'(0) = 0).
    pub derivs: Vec<Vec<T>>,
    /// o = z_L, the outputs.
    pub output: Vec<T>,
}

/// How a truncation floor(v / 2^k) is rounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rounding {
    /// Exact floor division (strict profile; default reference).
    #[default]
    Floor,
    /// floor(v / 2^k) + c with c = 1 with probability (v mod 2^k) / 2^k, drawn from a ChaCha8Rng
    /// seeded with this value (the fast profile's reference).
    Stochastic(u64),
}

/// The training loss, per output o with target t ∈ {0, 1} (the label, or one entry of the one-hot
/// vector). Both have an error δ = ∂loss/∂o that the encrypted trainer computes exactly.
///
/// - [`Loss::Squared`]: ½(o − t)², δ = o − t (the paper's).
/// - [`Loss::SmoothHinge`]: the smoothed hinge loss of the margin m = o for t = 1 and m = 1 − o for
///   t = 0 (Rennie & Srebro, 2005): ½ − m for m ≤ 0, ½(1 − m)² for 0 < m < 1, 0 for m ≥ 1. Its
///   error δ = clip(o, 0, 1) − t is bounded by 1, so one badly scaled sample cannot throw the
///   weights far, and larger learning rates stay stable (`cargo xtask tune`). In fixed point
///   clip(o, 0, 1) = max(o, 0) − max(o − 2^f, 0): two exact ReLUs, one more SecReLU round on the
///   output layer per step in the encrypted run. Classification is unchanged (the class of o and
///   of clip(o, 0, 1) agree for one output; several outputs use the argmax of o).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Loss {
    /// ½(o − t)², δ = o − t.
    #[default]
    Squared,
    /// Smoothed hinge of the margin, δ = clip(o, 0, 1) − t.
    SmoothHinge,
}

impl Loss {
    /// The loss of one real output `o` for target `t`.
    pub fn value(self, o: f64, t: f64) -> f64 {
        match self {
            Loss::Squared => 0.5 * (o - t).powi(2),
            Loss::SmoothHinge => {
                let m = if t > 0.5 { o } else { 1.0 - o };
                if m <= 0.0 {
                    0.5 - m
                } else if m < 1.0 {
                    0.5 * (1.0 - m).powi(2)
                } else {
                    0.0
                }
            }
        }
    }

    /// δ = ∂loss/∂o for a real output `o` and target `t`.
    pub fn delta(self, o: f64, t: f64) -> f64 {
        match self {
            Loss::Squared => o - t,
            Loss::SmoothHinge => o.clamp(0.0, 1.0) - t,
        }
    }

    /// The CLI name: `squared` or `smooth-hinge`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Squared => "squared",
            Loss::SmoothHinge => "smooth-hinge",
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loss {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "squared" => Ok(Loss::Squared),
            // The command line's spelling and Python's (an identifier).
            "smooth-hinge" | "smooth_hinge" => Ok(Loss::SmoothHinge),
            _ => Err(Error::InvalidParams(format!(
                "unknown loss `{s}` (expected `squared` or `smooth-hinge`, also spelt `smooth_hinge`)"
            ))),
        }
    }
}

/// floor(v / 2^k) (an arithmetic shift, which rounds towards −∞).
pub fn floor_shift(v: i128, k: u32) -> i128 {
    v >> k
}

/// A stateful truncation operator for one [`Rounding`] mode.
#[derive(Clone, Debug)]
pub struct Truncator {
    rng: Option<ChaCha8Rng>,
}

impl Truncator {
    /// A truncator for `rounding` (for `Stochastic(seed)` its random stream starts at `seed`).
    pub fn new(rounding: Rounding) -> Self {
        Truncator {
            rng: match rounding {
                Rounding::Floor => None,
                Rounding::Stochastic(seed) => Some(ChaCha8Rng::seed_from_u64(seed)),
            },
        }
    }

    /// The floor truncator.
    pub fn floor() -> Self {
        Truncator { rng: None }
    }

    /// floor(v / 2^k), plus for stochastic rounding a carry c ∈ {0, 1} with P(c = 1) =
    /// (v mod 2^k) / 2^k. Requires k ≤ 126. A stochastic truncation draws one `u64` from the
    /// stream when k ≤ 64 and two otherwise (also when v mod 2^k = 0, so that the stream does not
    /// depend on the values).
    pub fn truncate(&mut self, v: i128, k: u32) -> i128 {
        assert!(k <= 126, "truncation by 2^{k} is not supported");
        let q = floor_shift(v, k);
        let Some(rng) = self.rng.as_mut() else {
            return q;
        };
        let mask: u128 = (1u128 << k) - 1;
        let rem = (v as u128) & mask; // v mod 2^k ∈ [0, 2^k), also for negative v
        let draw = if k <= 64 {
            u128::from(rng.next_u64())
        } else {
            (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
        } & mask;
        q + i128::from(draw < rem)
    }
}

/// B = floor(sqrt(6 / (fan_in + fan_out)) · 2^F_w), the Glorot-uniform bound at weight scale
/// 2^`weight_frac_bits`, computed exactly in integers (as floor(sqrt(floor(6·4^F_w / n))), which is
/// the same number). Requires `weight_frac_bits` ≤ [`MAX_WEIGHT_FRAC_BITS`] and fan_in + fan_out ≥ 1.
pub fn glorot_bound(fan_in: usize, fan_out: usize, weight_frac_bits: u32) -> i128 {
    assert!(
        weight_frac_bits <= MAX_WEIGHT_FRAC_BITS,
        "weight scale 2^{weight_frac_bits} too large for glorot_bound"
    );
    let n = (fan_in + fan_out) as u128;
    assert!(n > 0, "glorot_bound needs fan_in + fan_out ≥ 1");
    let x = (6u128 << (2 * weight_frac_bits)) / n;
    isqrt(x) as i128
}

/// floor(sqrt(x)) for u128.
fn isqrt(x: u128) -> u128 {
    if x < 2 {
        return x;
    }
    // Newton iteration from an upper bound.
    let mut r = 1u128 << (128 - x.leading_zeros()).div_ceil(2);
    loop {
        let next = (r + x / r) / 2;
        if next >= r {
            break;
        }
        r = next;
    }
    while r * r > x {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= x {
        r += 1;
    }
    r
}

/// Glorot-uniform initialisation at weight scale 2^F_w: `W_l[j][i]` uniform in [−B_l, B_l] with
/// B_l = `glorot_bound(fan_in, fan_out, F_w)` ([`glorot_bound`]), biases 0. Weights are drawn with
/// `rng.gen_range(-B..=B)` layer by layer, row by row, in input order.
pub fn init_fixed(shape: &Shape, fixed: &FixedParams, rng: &mut impl RngCore) -> Params<i128> {
    let fw = fixed.weight_frac_bits();
    let bounds: Vec<i128> = (1..=shape.num_layers())
        .map(|l| {
            let (fan_in, fan_out) = shape.layer_dims(l);
            glorot_bound(fan_in, fan_out, fw)
        })
        .collect();
    Params::from_fn(shape, |l, _, i| match i {
        Some(_) => {
            let b = bounds[l - 1];
            rng.gen_range(-b..=b)
        }
        None => 0,
    })
}

/// The order in which the samples are visited in `epoch` (0-based): a permutation of 0..n, shuffled
/// with `SliceRandom::shuffle` from `ChaCha8Rng::seed_from_u64(seed · 0x9E3779B97F4A7C15 ^ epoch)`
/// (wrapping multiplication). Depends only on (n, seed, epoch), so training can resume from a
/// checkpoint. Mini-batches are consecutive chunks of this order.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

/// Number of network outputs for `classes` classes: 1 for a binary problem, else `classes`.
pub fn outputs_for_classes(classes: usize) -> usize {
    if classes <= 2 {
        1
    } else {
        classes
    }
}

/// The real-valued target of `label` for a network with `outputs` outputs: `[label]` when
/// `outputs == 1` (binary), else the one-hot vector of length `outputs`.
pub fn float_target(label: usize, outputs: usize) -> Result<Vec<f64>> {
    check_label(label, outputs)?;
    Ok(if outputs == 1 {
        vec![label as f64]
    } else {
        (0..outputs)
            .map(|c| if c == label { 1.0 } else { 0.0 })
            .collect()
    })
}

/// The fixed-point target of `label` at scale 2^`frac_bits`: `[label · 2^f]` for one output, else
/// one-hot · 2^f.
pub fn fixed_target(label: usize, outputs: usize, frac_bits: u32) -> Result<Vec<i64>> {
    check_label(label, outputs)?;
    if frac_bits > 62 {
        return Err(Error::InvalidParams(format!(
            "frac_bits = {frac_bits} does not fit an i64 target"
        )));
    }
    let one = 1i64 << frac_bits;
    Ok(if outputs == 1 {
        vec![label as i64 * one]
    } else {
        (0..outputs)
            .map(|c| if c == label { one } else { 0 })
            .collect()
    })
}

fn check_label(label: usize, outputs: usize) -> Result<()> {
    let classes = if outputs == 1 { 2 } else { outputs };
    if outputs == 0 || label >= classes {
        return Err(Error::Shape(format!(
            "label {label} does not fit a network with {outputs} output(s)"
        )));
    }
    Ok(())
}

/// The class predicted from fixed-point outputs at scale 2^f: with one output, 1 iff o > 2^(f−1)
/// (score above ½); with several, the index of the largest output (ties: the lowest index).
pub fn predict_fixed(output: &[i128], frac_bits: u32) -> usize {
    if output.len() == 1 {
        let half = if frac_bits == 0 {
            0
        } else {
            1i128 << (frac_bits - 1)
        };
        usize::from(output[0] > half)
    } else {
        argmax(output)
    }
}

/// The class predicted from real outputs: with one output, 1 iff o > ½; else the argmax (ties:
/// the lowest index).
pub fn predict_float(output: &[f64]) -> usize {
    if output.len() == 1 {
        usize::from(output[0] > 0.5)
    } else {
        argmax(output)
    }
}

/// Index of the first maximum.
fn argmax<T: PartialOrd>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate().skip(1) {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn floor_of_negative_values_rounds_down() {
        assert_eq!(floor_shift(-1, 4), -1);
        assert_eq!(floor_shift(-16, 4), -1);
        assert_eq!(floor_shift(-17, 4), -2);
        assert_eq!(floor_shift(17, 4), 1);
        assert_eq!(floor_shift(15, 4), 0);
        let mut t = Truncator::floor();
        assert_eq!(t.truncate(-7, 2), -2);
        assert_eq!(t.truncate(-8, 2), -2);
        assert_eq!(t.truncate(-9, 2), -3);
    }

    #[test]
    fn stochastic_rounding_is_floor_or_floor_plus_one_and_unbiased() {
        let mut t = Truncator::new(Rounding::Stochastic(7));
        for &(v, k) in &[
            (-1000i128, 5u32),
            (12345, 8),
            (-(1 << 40) - 3, 38),
            (77, 70),
        ] {
            let f = floor_shift(v, k);
            let trials = 20_000;
            let mut sum = 0i128;
            for _ in 0..trials {
                let r = t.truncate(v, k);
                assert!(r == f || r == f + 1, "{v} >> {k}: got {r}, floor {f}");
                sum += r - f;
            }
            // E[c] = (v mod 2^k) / 2^k; the empirical mean is within 5 standard deviations.
            let p = ((v as u128) & ((1u128 << k) - 1)) as f64 / (k as f64).exp2();
            let mean = sum as f64 / trials as f64;
            let sd = (p * (1.0 - p) / trials as f64).sqrt();
            assert!(
                (mean - p).abs() <= 5.0 * sd + 1e-12,
                "{v} >> {k}: mean carry {mean}, expected {p}"
            );
        }
        // Exact multiples are never rounded up.
        for _ in 0..100 {
            assert_eq!(t.truncate(-(3 << 10), 10), -3);
        }
    }

    #[test]
    fn stochastic_rounding_is_reproducible() {
        let run = |seed| {
            let mut t = Truncator::new(Rounding::Stochastic(seed));
            (0..64)
                .map(|v| t.truncate(v * 37 - 999, 6))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn glorot_bound_matches_float_formula() {
        for &(a, b, fw) in &[
            (30usize, 16usize, 38u32),
            (16, 1, 38),
            (4, 8, 10),
            (1, 1, 0),
            (2, 3, 60),
        ] {
            let exact = glorot_bound(a, b, fw);
            let approx = (6.0 / (a + b) as f64).sqrt() * (fw as f64).exp2();
            assert!(
                (exact as f64 - approx).abs() <= 1.0 + approx * 1e-15,
                "{a} {b} {fw}"
            );
            // floor property: B² ≤ 6·4^F_w/n < (B+1)²
            let n = (a + b) as u128;
            let x = 6u128 << (2 * fw);
            let bb = exact as u128;
            assert!(bb * bb * n <= x && (bb + 1) * (bb + 1) * n > x);
        }
        assert_eq!(glorot_bound(30, 16, 38), 99_274_233_965);
    }

    #[test]
    fn smooth_hinge_values_and_errors() {
        let h = Loss::SmoothHinge;
        // Label 1: margin o.
        assert_eq!((h.value(-1.0, 1.0), h.delta(-1.0, 1.0)), (1.5, -1.0));
        assert_eq!((h.value(0.25, 1.0), h.delta(0.25, 1.0)), (0.28125, -0.75));
        assert_eq!((h.value(2.0, 1.0), h.delta(2.0, 1.0)), (0.0, 0.0));
        // Label 0: margin 1 − o.
        assert_eq!((h.value(-3.0, 0.0), h.delta(-3.0, 0.0)), (0.0, 0.0));
        assert_eq!((h.value(0.75, 0.0), h.delta(0.75, 0.0)), (0.28125, 0.75));
        assert_eq!((h.value(3.0, 0.0), h.delta(3.0, 0.0)), (2.5, 1.0));
        // δ is the derivative of the value (central differences, away from the kinks).
        for t in [0.0, 1.0] {
            for o in [-2.3, -0.4, 0.1, 0.6, 0.9, 1.7, 3.2] {
                let e = 1e-6;
                let num = (h.value(o + e, t) - h.value(o - e, t)) / (2.0 * e);
                assert!((num - h.delta(o, t)).abs() < 1e-6, "o = {o}, t = {t}");
                let s = Loss::Squared;
                let num = (s.value(o + e, t) - s.value(o - e, t)) / (2.0 * e);
                assert!((num - s.delta(o, t)).abs() < 1e-6);
            }
        }
        assert_eq!("smooth-hinge".parse::<Loss>().unwrap(), Loss::SmoothHinge);
        assert_eq!("smooth_hinge".parse::<Loss>().unwrap(), Loss::SmoothHinge);
        assert_eq!(
            Loss::Squared.to_string().parse::<Loss>().unwrap(),
            Loss::Squared
        );
        assert!("hinge".parse::<Loss>().is_err());
    }

    #[test]
    fn init_is_within_bounds_and_biases_zero() {
        let shape = Shape::new(vec![30, 16, 1]).unwrap();
        let fixed = FixedParams::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = init_fixed(&shape, &fixed, &mut rng);
        assert_eq!(p.shape().unwrap(), shape);
        for (l, layer) in p.layers.iter().enumerate() {
            let (fi, fo) = shape.layer_dims(l + 1);
            let b = glorot_bound(fi, fo, fixed.weight_frac_bits());
            assert!(layer.w.iter().flatten().all(|w| (-b..=b).contains(w)));
            assert!(layer.b.iter().all(|&x| x == 0));
            // Not degenerate: the largest weight is in the top quarter of the range.
            let max = layer.w.iter().flatten().map(|w| w.abs()).max().unwrap();
            assert!(max > b / 4 * 3);
        }
        assert_eq!(p.iter().count(), shape.num_params());
    }

    #[test]
    fn shape_parse_and_display() {
        let s: Shape = "30-16-1".parse().unwrap();
        assert_eq!(s, Shape(vec![30, 16, 1]));
        assert_eq!(s.to_string(), "30-16-1");
        assert_eq!(s.num_layers(), 2);
        assert_eq!(s.num_params(), 31 * 16 + 17);
        assert!("30".parse::<Shape>().is_err());
        assert!("30-0-1".parse::<Shape>().is_err());
        assert!("30-a-1"
            .parse::<Shape>()
            .unwrap_err()
            .to_string()
            .contains("`a`"));
    }

    #[test]
    fn from_fn_iter_and_map_share_one_order() {
        let shape = Shape(vec![2, 3, 1]);
        let mut calls = Vec::new();
        let p = Params::from_fn(&shape, |l, j, i| {
            calls.push((l, j, i));
            calls.len()
        });
        let visited: Vec<usize> = p.iter().copied().collect();
        assert_eq!(visited, (1..=shape.num_params()).collect::<Vec<_>>());
        let mut mapped = Vec::new();
        p.map(|&v| mapped.push(v));
        assert_eq!(mapped, visited);
        assert_eq!(
            calls[..3],
            [(1, 0, Some(0)), (1, 0, Some(1)), (1, 1, Some(0))]
        );
        assert_eq!(calls[6..9], [(1, 0, None), (1, 1, None), (1, 2, None)]);
    }

    #[test]
    fn params_shape_detects_ragged_layers() {
        let mut p = Params::filled(&Shape(vec![3, 2, 1]), 0i128);
        assert!(p.shape().is_ok());
        p.layers[1].w[0].push(1);
        assert!(p.shape().unwrap_err().to_string().contains("layer 2"));
    }

    #[test]
    fn fixed_params_validation() {
        assert!(FixedParams::default().validate().is_ok());
        assert_eq!(FixedParams::default().weight_frac_bits(), 36);
        assert!(FixedParams::new(16, LearningRate { num: 0, shift: 6 }, 72).is_err());
        assert!(FixedParams::new(16, LearningRate::pow2(6), 54).is_err()); // ℓ ≤ 3f + shift
        assert!(FixedParams::new(16, LearningRate::pow2(6), 55).is_ok());
        assert!(FixedParams::new(16, LearningRate::pow2(6), 121).is_err());
        assert!(FixedParams::new(30, LearningRate::pow2(6), 110).is_err()); // F_w = 66
    }

    #[test]
    fn range_check_reports_what_and_layer() {
        let p = FixedParams::default();
        assert!(p.check((1 << 72) - 1, "x", 1).is_ok());
        assert!(p.check(-(1 << 72) + 1, "x", 1).is_ok());
        assert_eq!(
            p.check(1 << 72, "weight", 2),
            Err(Error::Overflow {
                what: "weight",
                layer: 2
            })
        );
        assert!(p.check(-(1 << 72), "weight", 2).is_err());
        assert!(p.check(i128::MIN, "weight", 2).is_err());
    }

    #[test]
    fn targets_and_predictions() {
        assert_eq!(fixed_target(1, 1, 16).unwrap(), vec![65536]);
        assert_eq!(fixed_target(0, 1, 16).unwrap(), vec![0]);
        assert_eq!(fixed_target(2, 3, 4).unwrap(), vec![0, 0, 16]);
        assert!(fixed_target(2, 1, 16).is_err());
        assert!(fixed_target(3, 3, 16).is_err());
        assert_eq!(float_target(1, 3).unwrap(), vec![0.0, 1.0, 0.0]);
        // binary threshold: strictly above one half
        assert_eq!(predict_fixed(&[32768], 16), 0);
        assert_eq!(predict_fixed(&[32769], 16), 1);
        assert_eq!(predict_fixed(&[-5], 16), 0);
        assert_eq!(predict_float(&[0.5]), 0);
        assert_eq!(predict_float(&[0.51]), 1);
        // argmax ties go to the lowest index
        assert_eq!(predict_fixed(&[3, 7, 7], 16), 1);
        assert_eq!(predict_fixed(&[-1, -1, -2], 16), 0);
        assert_eq!(predict_float(&[0.1, 0.9, 0.9]), 1);
        assert_eq!(outputs_for_classes(2), 1);
        assert_eq!(outputs_for_classes(3), 3);
    }

    #[test]
    fn epoch_order_is_deterministic_and_depends_on_epoch_and_seed() {
        assert_eq!(epoch_order(100, 5, 3), epoch_order(100, 5, 3));
        assert_ne!(epoch_order(100, 5, 3), epoch_order(100, 5, 4));
        assert_ne!(epoch_order(100, 5, 3), epoch_order(100, 6, 3));
        assert!(epoch_order(0, 1, 1).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn epoch_order_is_a_permutation(n in 0usize..300, seed: u64, epoch in 0u64..1000) {
            let mut order = epoch_order(n, seed, epoch);
            order.sort_unstable();
            prop_assert_eq!(order, (0..n).collect::<Vec<_>>());
        }

        #[test]
        fn floor_truncation_is_floor_division(v in -(1i128 << 100)..(1i128 << 100), k in 0u32..80) {
            let q = floor_shift(v, k);
            let d = 1i128 << k;
            prop_assert!(q * d <= v && v < (q + 1) * d);
        }

        #[test]
        fn isqrt_is_floor_sqrt(x: u64) {
            let x = u128::from(x) * u128::from(x >> 7);
            let r = isqrt(x);
            prop_assert!(r * r <= x && (r + 1) * (r + 1) > x);
        }
    }
}
