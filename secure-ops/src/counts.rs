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
    /// S1: full-size exponentiations other than randomizers (the range check's blinding).
    pub full_exps: AtomicU64,
    /// S1: modular squarings spent packing slots.
    pub pack_squarings: AtomicU64,
    /// S2: decryptions.
    pub decryptions: AtomicU64,
    /// S2: encryptions.
    pub encryptions: AtomicU64,
    /// S1: DGK blindings (a short exponentiation by ρ and a re-randomisation, modulo n).
    pub dgk_blinds: AtomicU64,
    /// S2: DGK encryptions (of the bits of a blinded value).
    pub dgk_encryptions: AtomicU64,
    /// S2: DGK zero tests (one t-bit exponentiation modulo p each).
    pub zero_tests: AtomicU64,
    /// AND gates of garbled comparisons: garbled (S1), evaluated (S2); one OT each.
    pub gates: AtomicU64,
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
    /// S1: DGK blindings.
    pub dgk_blinds: u64,
    /// S2: DGK encryptions.
    pub dgk_encryptions: u64,
    /// S2: DGK zero tests.
    pub zero_tests: u64,
    /// Garbled AND gates (S1 garbles, S2 evaluates), one oblivious transfer each.
    pub gates: u64,
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
            dgk_blinds: g(&self.dgk_blinds),
            dgk_encryptions: g(&self.dgk_encryptions),
            zero_tests: g(&self.zero_tests),
            gates: g(&self.gates),
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
            dgk_blinds: self.dgk_blinds - e.dgk_blinds,
            dgk_encryptions: self.dgk_encryptions - e.dgk_encryptions,
            zero_tests: self.zero_tests - e.zero_tests,
            gates: self.gates - e.gates,
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
            dgk_blinds: self.dgk_blinds + o.dgk_blinds,
            dgk_encryptions: self.dgk_encryptions + o.dgk_encryptions,
            zero_tests: self.zero_tests + o.zero_tests,
            gates: self.gates + o.gates,
        }
    }
}
