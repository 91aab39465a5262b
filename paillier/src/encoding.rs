//! Fixed-point encoding of reals: x̂ = round(x · 2^f), with an explicit range.

use crate::error::{Error, Result};
use num_bigint::BigInt;
use num_traits::ToPrimitive;
use serde::{Deserialize, Serialize};

/// Fixed-point format with `frac_bits` fractional bits and magnitudes below 2^`int_bits`
/// (so |x̂| < 2^(int_bits + frac_bits)). Encoding a value outside that range is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FixedPointRepr")]
pub struct FixedPoint {
    /// f: number of fractional bits.
    pub frac_bits: u32,
    /// Bits of integer part (the real value satisfies |x| < 2^int_bits).
    pub int_bits: u32,
}

/// What a serialised [`FixedPoint`] holds; deserialisation goes through [`FixedPoint::new`] so
/// that a file or a peer cannot supply a format whose bound overflows.
#[derive(Deserialize)]
struct FixedPointRepr {
    frac_bits: u32,
    int_bits: u32,
}

impl TryFrom<FixedPointRepr> for FixedPoint {
    type Error = Error;
    fn try_from(r: FixedPointRepr) -> Result<Self> {
        FixedPoint::new(r.frac_bits, r.int_bits)
    }
}

impl FixedPoint {
    /// A format; `int_bits + frac_bits` must be at most 62 so that encodings fit an `i64`.
    pub fn new(frac_bits: u32, int_bits: u32) -> Result<Self> {
        if frac_bits > 62 || int_bits > 62 - frac_bits {
            return Err(Error::IntegerOverflow(
                "i64 fixed point (int_bits + frac_bits > 62)",
            ));
        }
        Ok(FixedPoint {
            frac_bits,
            int_bits,
        })
    }

    /// 2^f as a float.
    pub fn scale(&self) -> f64 {
        (self.frac_bits as f64).exp2()
    }

    /// Exclusive bound on the magnitude of an encoded value: 2^(int_bits + frac_bits).
    pub fn bound(&self) -> i64 {
        1i64 << (self.int_bits + self.frac_bits)
    }

    /// round(x · 2^f), or an error if x is not finite or out of range.
    pub fn encode(&self, x: f64) -> Result<i64> {
        if !x.is_finite() {
            return Err(Error::NotFinite);
        }
        let v = (x * self.scale()).round();
        if v.abs() >= self.bound() as f64 {
            return Err(Error::FixedPointRange {
                value: x,
                int_bits: self.int_bits,
                frac_bits: self.frac_bits,
            });
        }
        Ok(v as i64)
    }

    /// x̂ / 2^f.
    pub fn decode(&self, v: i64) -> f64 {
        v as f64 / self.scale()
    }

    /// x̂ / 2^f for a big integer (e.g. a decrypted value).
    pub fn decode_big(&self, v: &BigInt) -> f64 {
        v.to_f64().unwrap_or(f64::NAN) / self.scale()
    }

    /// Checks an already encoded value against the range.
    pub fn check(&self, v: &BigInt) -> Result<i64> {
        let bound = BigInt::from(self.bound());
        if v >= &bound || v <= &-bound {
            return Err(Error::FixedPointRange {
                value: self.decode_big(v),
                int_bits: self.int_bits,
                frac_bits: self.frac_bits,
            });
        }
        v.to_i64().ok_or(Error::IntegerOverflow("i64"))
    }
}
