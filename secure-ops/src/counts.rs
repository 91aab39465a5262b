//! Operation counters for the cost model.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of the expensive operations, per party.
#[derive(Debug, Default)]
pub struct OpCounter {
    /// S1: fresh randomizers r^n mod n^2 (full-size exponentiations).
    pub randomizers: AtomicU64,
    /// S1: exponentiations with short (ℓ+κ-bit) exponents during unblinding.
    pub short_exps: AtomicU64,
    /// S1: full-size exponentiations other than randomizers (DGK blinding).
    pub full_exps: AtomicU64,
    /// S1: modular squarings spent packing slots.
    pub pack_squarings: AtomicU64,
    /// S2: decryptions.
    pub decryptions: AtomicU64,
    /// S2: encryptions.
    pub encryptions: AtomicU64,
}

/// A snapshot of [`OpCounter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// S1: fresh randomizers (full-size exponentiations).
    pub randomizers: u64,
    /// S1: short exponentiations.
    pub short_exps: u64,
    /// S1: other full-size exponentiations.
    pub full_exps: u64,
    /// S1: squarings spent packing.
    pub pack_squarings: u64,
    /// S2: decryptions.
    pub decryptions: u64,
    /// S2: encryptions.
    pub encryptions: u64,
}

impl OpCounter {
    pub(crate) fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Ordering::Relaxed);
    }
    /// Current values.
    pub fn snapshot(&self) -> OpCounts {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        OpCounts {
            randomizers: g(&self.randomizers),
            short_exps: g(&self.short_exps),
            full_exps: g(&self.full_exps),
            pack_squarings: g(&self.pack_squarings),
            decryptions: g(&self.decryptions),
            encryptions: g(&self.encryptions),
        }
    }
}

impl OpCounts {
    /// Component-wise `self - earlier`.
    pub fn since(&self, e: &OpCounts) -> OpCounts {
        OpCounts {
            randomizers: self.randomizers - e.randomizers,
            short_exps: self.short_exps - e.short_exps,
            full_exps: self.full_exps - e.full_exps,
            pack_squarings: self.pack_squarings - e.pack_squarings,
            decryptions: self.decryptions - e.decryptions,
            encryptions: self.encryptions - e.encryptions,
        }
    }
    /// Component-wise sum.
    pub fn plus(&self, o: &OpCounts) -> OpCounts {
        OpCounts {
            randomizers: self.randomizers + o.randomizers,
            short_exps: self.short_exps + o.short_exps,
            full_exps: self.full_exps + o.full_exps,
            pack_squarings: self.pack_squarings + o.pack_squarings,
            decryptions: self.decryptions + o.decryptions,
            encryptions: self.encryptions + o.encryptions,
        }
    }
}
