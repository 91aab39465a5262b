//! Session parameters, agreed by S1 and S2 in the handshake.

use serde::{Deserialize, Serialize};

/// Version of the S1–S2 wire protocol; both sides must agree.
/// 2: the strict profile's comparison bits and zero tests under DGK, S2's DGK public key in the
/// handshake's reply.
/// 3: the comparison of a session ([`Comparison`]): garbled circuits over OT extension (base
/// OTs after the handshake) by default, DGK on request.
pub const PROTOCOL_VERSION: u16 = 3;

/// How a session computes the strict comparisons and the carries of exact divisions: 1{d < c}
/// for S2's m-bit d (low bits of a blinded value) and S1's c (low bits of its blind), known to S2
/// only masked by a coin of S1's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Comparison {
    /// Yao's garbled less-than circuit (m AND gates, half gates), S2's input labels by IKNP OT
    /// extension seeded by 128 base OTs per session (crate `yao`). The default: a few hash
    /// evaluations a bit.
    #[default]
    Garbled,
    /// DGK (Damgård–Geisler–Krøigaard; Veugen): S2 encrypts the bits of d under its DGK key, S1
    /// blinds m + 1 combinations, S2 zero-tests them. About 0.25 ms of modular arithmetic a bit.
    Dgk,
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Comparison::Garbled => "garbled",
            Comparison::Dgk => "dgk",
        })
    }
}

impl std::str::FromStr for Comparison {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "garbled" => Ok(Comparison::Garbled),
            "dgk" => Ok(Comparison::Dgk),
            other => Err(format!(
                "unknown comparison '{other}' (expected 'garbled' or 'dgk')"
            )),
        }
    }
}

/// Security/speed profile of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Profile {
    /// Paper-style one-round SecReLU (S2 learns roughly the bit-length of each tested value) and
    /// stochastic truncation (S2 learns nothing beyond κ).
    Fast,
    /// Exact comparisons for ReLU and exact truncation: S2 learns nothing beyond κ, and the
    /// encrypted computation equals floor arithmetic in the clear bit for bit. The default.
    #[default]
    Strict,
}

impl Profile {
    /// What S2 learns in the fast profile, said wherever it is chosen (the CLI's warning line,
    /// the Python package's `UserWarning`).
    pub const FAST_LEAKAGE: &'static str = "the fast profile lets S2 learn the bit-length of every value it compares (each pre-activation of each sample) and, in k-class argmax, a good guess of the predicted class; the strict profile (the default) lets it learn nothing beyond 2^-κ";
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Profile::Fast => "fast",
            Profile::Strict => "strict",
        })
    }
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fast" => Ok(Profile::Fast),
            "strict" => Ok(Profile::Strict),
            other => Err(format!(
                "unknown profile '{other}' (expected 'fast' or 'strict')"
            )),
        }
    }
}

/// How a product is rescaled by a power of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Truncation {
    /// ⌊x / 2^k⌋ exactly (a comparison computes the carry).
    Exact,
    /// ⌊x / 2^k⌋ + c with c ∈ {0, 1}, P(c = 1) = (x mod 2^k) / 2^k: unbiased stochastic rounding.
    Stochastic,
}

/// Parameters of a session: ℓ, κ and the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionParams {
    /// ℓ: every value entering a sub-protocol satisfies |x| < 2^ℓ.
    pub value_bits: u32,
    /// κ: statistical security parameter of the additive blinding (≥ 40, default 80).
    pub kappa: u32,
    /// f: fractional bits of the fixed-point values (S2 does not use it; both sides agree on it
    /// so that a session is never run with data or a model of another scale).
    pub frac_bits: u32,
    /// Profile (fast or strict).
    pub profile: Profile,
    /// How comparisons and exact carries are computed (both give the same results bit for bit).
    pub comparison: Comparison,
}

impl Default for SessionParams {
    fn default() -> Self {
        SessionParams {
            value_bits: 72,
            kappa: 80,
            frac_bits: 16,
            profile: Profile::Strict,
            comparison: Comparison::Garbled,
        }
    }
}

/// Smallest κ accepted.
pub const MIN_KAPPA: u32 = 40;
/// Largest κ accepted (keeps every width computed from it far from overflow).
pub const MAX_KAPPA: u32 = 256;

impl SessionParams {
    /// Truncation used by this profile.
    pub fn truncation(&self) -> Truncation {
        match self.profile {
            Profile::Fast => Truncation::Stochastic,
            Profile::Strict => Truncation::Exact,
        }
    }

    /// Width of a packed slot for blinded values of `value_bits + extra` bits.
    ///
    /// A blinded value u = x + r (r < 2^(ℓ+κ)) sits in its slot with an offset of 2^(W−2), so
    /// |x| up to 2^(W−2) = 2^(ℓ+κ+8) cannot wrap: S2 then detects every x with
    /// 2^(ℓ+κ+1) ≤ |x| < 2^(ℓ+κ+8) with certainty (a guard band of 7 bits). A value that jumps
    /// past the band in one step wraps its slot and is caught with probability 1 − 2^−10.
    pub(crate) fn slot_bits(&self, extra: u32) -> u32 {
        self.value_bits + self.kappa + 10 + extra
    }

    /// Checks the parameters against a key of `key_bits` bits.
    ///
    /// Products of two blinded operands (each below 2^(ℓ+κ+1)), summed over up to 2^20 terms,
    /// must stay below n/2: 2(ℓ+κ+1) + 20 + 2 ≤ log2 n. This implies ℓ + κ + 4 ≤ log2 n.
    pub fn validate(&self, key_bits: u32) -> Result<(), String> {
        if self.kappa < MIN_KAPPA {
            return Err(format!(
                "kappa = {} is below the minimum of {MIN_KAPPA}",
                self.kappa
            ));
        }
        if self.kappa > MAX_KAPPA {
            return Err(format!(
                "kappa = {} is above the maximum of {MAX_KAPPA}",
                self.kappa
            ));
        }
        if self.frac_bits == 0 || self.frac_bits >= self.value_bits {
            return Err(format!(
                "frac_bits = {} must be in 1..value_bits ({})",
                self.frac_bits, self.value_bits
            ));
        }
        if self.value_bits < 8 || self.value_bits > 512 {
            return Err(format!(
                "value bits = {} must be in 8..=512",
                self.value_bits
            ));
        }
        // ℓ ≤ 512 and κ ≤ 256 (checked above): no overflow below.
        let need = 2 * (self.value_bits + self.kappa + 1) + 22;
        if need + 2 > key_bits {
            return Err(format!(
                "value bits {} and kappa {} need a key of at least {} bits, this key has {}",
                self.value_bits,
                self.kappa,
                need + 2,
                key_bits
            ));
        }
        Ok(())
    }
}

/// Whether a DGK plaintext modulus `u` serves comparisons of values of up to `value_bits` bits:
/// the combined values of a comparison of m ≤ ℓ + 1 bits lie in [−2, 3m + 2], so u must exceed
/// 3ℓ + 5 (then such a value is 0 mod u only if it is 0). S2 picks its u by it, S1 checks S2's.
pub fn dgk_u_serves(u: u32, value_bits: u32) -> bool {
    u64::from(u) > 3 * u64::from(value_bits) + 5
}

/// 2^k as a big integer (slot offsets, blinding bounds, truncation divisors).
pub fn pow2(k: u32) -> num_bigint::BigInt {
    num_bigint::BigInt::from(1u8) << k
}
