//! The garbled less-than circuit: 1{d < c} for the evaluator's m-bit d and the garbler's m-bit
//! c, with the output masked by the garbler's coin.
//!
//! From the least significant bit up, ltᵢ₊₁ = 1{d mod 2^(i+1) < c mod 2^(i+1)}:
//! ltᵢ₊₁ = ¬dᵢ ∨ ltᵢ where cᵢ = 1 and ¬dᵢ ∧ ltᵢ where cᵢ = 0, with lt₀ = 0 — one AND gate a bit
//! (an OR is an AND with negated inputs and output). Free XOR (every wire's labels are W⁰ and
//! W⁰ ⊕ Δ, lsb(Δ) = 1) makes each negation a relabelling the evaluator cannot see, so every
//! circuit looks the same whatever c: m AND gates in a chain, garbled with half gates (two
//! blocks each). lt₀ is a wire the garbler gives the label of "false" for. The evaluator reads
//! the output through one decoding bit, which the garbler flips with its coin: what it learns is
//! λ' = 1{d < c} ⊕ coin, a uniform bit.

use crate::{hash, Block, Error};
use rand::{CryptoRng, Rng, RngCore};

const DOMAIN: &[u8] = b"smlp-yao half gates";

/// One garbled comparison: the half-gate tables (TG, TE) of its m AND gates, least significant
/// bit first, the label of lt₀ = false, and the output's decoding bit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    /// (TG, TE) per AND gate.
    pub tables: Vec<(Block, Block)>,
    /// The label of the constant lt₀ = false.
    pub start: Block,
    /// lsb of the output's 0-label, xor the garbler's coin.
    pub decode: bool,
}

/// A fresh global offset Δ with lsb(Δ) = 1 (one per request is enough: each circuit's labels
/// are fresh).
pub fn fresh_delta<R: RngCore + CryptoRng>(rng: &mut R) -> Block {
    rng.gen::<u128>() | 1
}

fn lsb(x: Block) -> bool {
    x & 1 == 1
}

/// The two tweaks of gate `bit` of circuit `item`.
fn tweaks(item: u32, bit: usize) -> (u64, u64) {
    let base = (u64::from(item) << 32) | ((bit as u64) << 1);
    (base, base | 1)
}

/// Garbles 1{d < c} ⊕ `coin` for c's bits `c` (least significant first, m = `c.len()` ≥ 1)
/// under `delta`. Returns the circuit and the 0-labels of d's m input wires: the evaluator must
/// get Dᵢ⁰ ⊕ dᵢ·Δ for each (by oblivious transfer of (Dᵢ⁰, Dᵢ⁰ ⊕ Δ)). `item` numbers the
/// circuit within the request (its gates' hash tweaks).
pub fn garble<R: RngCore + CryptoRng>(
    c: &[bool],
    coin: bool,
    delta: Block,
    item: u32,
    rng: &mut R,
) -> (Circuit, Vec<Block>) {
    debug_assert!(lsb(delta));
    let inputs: Vec<Block> = c.iter().map(|_| rng.gen()).collect();
    let start: Block = rng.gen();
    let mut lt = start; // 0-label of ltᵢ
    let mut tables = Vec::with_capacity(c.len());
    for (i, (&ci, &d0)) in c.iter().zip(&inputs).enumerate() {
        // AND(dᵢ, ¬ltᵢ) negated for cᵢ = 1; AND(¬dᵢ, ltᵢ) for cᵢ = 0.
        let (a0, b0) = if ci {
            (d0, lt ^ delta)
        } else {
            (d0 ^ delta, lt)
        };
        let (j0, j1) = tweaks(item, i);
        let (pa, pb) = (lsb(a0), lsb(b0));
        let (a1, b1) = (a0 ^ delta, b0 ^ delta);
        let ha0 = hash(DOMAIN, j0, a0);
        let hb0 = hash(DOMAIN, j1, b0);
        let tg = ha0 ^ hash(DOMAIN, j0, a1) ^ if pb { delta } else { 0 };
        let wg0 = ha0 ^ if pa { tg } else { 0 };
        let te = hb0 ^ hash(DOMAIN, j1, b1) ^ a0;
        let we0 = hb0 ^ if pb { te ^ a0 } else { 0 };
        let g0 = wg0 ^ we0;
        lt = if ci { g0 ^ delta } else { g0 };
        tables.push((tg, te));
    }
    (
        Circuit {
            tables,
            start,
            decode: lsb(lt) ^ coin,
        },
        inputs,
    )
}

/// Evaluates circuit `item` on the labels of d's bits: λ' = 1{d < c} ⊕ coin.
pub fn evaluate(circuit: &Circuit, labels: &[Block], item: u32) -> Result<bool, Error> {
    if labels.len() != circuit.tables.len() {
        return Err(Error::Size {
            what: "garbled comparison inputs",
            expected: circuit.tables.len(),
            got: labels.len(),
        });
    }
    let mut lt = circuit.start;
    for (i, (&a, &(tg, te))) in labels.iter().zip(&circuit.tables).enumerate() {
        let (j0, j1) = tweaks(item, i);
        let b = lt;
        let wg = hash(DOMAIN, j0, a) ^ if lsb(a) { tg } else { 0 };
        let we = hash(DOMAIN, j1, b) ^ if lsb(b) { te ^ a } else { 0 };
        lt = wg ^ we;
    }
    Ok(lsb(lt) ^ circuit.decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn bits(x: u128, m: usize) -> Vec<bool> {
        (0..m).map(|i| (x >> i) & 1 == 1).collect()
    }

    /// Garbles for c, hands the evaluator d's labels directly, evaluates.
    fn run(c: u128, d: u128, m: usize, coin: bool, rng: &mut ChaCha20Rng) -> bool {
        let delta = fresh_delta(rng);
        let (circuit, zero) = garble(&bits(c, m), coin, delta, 7, rng);
        let labels: Vec<u128> = zero
            .iter()
            .zip(bits(d, m))
            .map(|(l, b)| if b { l ^ delta } else { *l })
            .collect();
        evaluate(&circuit, &labels, 7).unwrap()
    }

    #[test]
    fn every_pair_of_four_bit_values_compares_correctly() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        for c in 0..16u128 {
            for d in 0..16u128 {
                for coin in [false, true] {
                    assert_eq!(run(c, d, 4, coin, &mut rng), (d < c) ^ coin, "c={c} d={d}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn wide_values_compare_correctly(c in any::<u128>(), d in any::<u128>(), m in 1usize..=128,
                                         coin in any::<bool>(), seed in any::<u64>()) {
            let mask = if m == 128 { u128::MAX } else { (1u128 << m) - 1 };
            let (c, d) = (c & mask, d & mask);
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            prop_assert_eq!(run(c, d, m, coin, &mut rng), (d < c) ^ coin);
        }
    }

    #[test]
    fn the_wrong_tweak_or_label_count_does_not_compare() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let delta = fresh_delta(&mut rng);
        let (circuit, zero) = garble(&bits(5, 8), false, delta, 1, &mut rng);
        assert!(matches!(
            evaluate(&circuit, &zero[1..], 1),
            Err(Error::Size { .. })
        ));
        // Evaluating under another item's tweaks gives noise: over many circuits the output is
        // not the comparison's.
        let mut agree = 0;
        for _ in 0..200 {
            let (circuit, zero) = garble(&bits(5, 8), false, delta, 1, &mut rng);
            agree += usize::from(evaluate(&circuit, &zero, 2).unwrap() == (0 < 5));
        }
        assert!((60..=140).contains(&agree), "{agree}");
    }

    #[test]
    fn the_evaluator_sees_the_same_shape_and_a_fair_output_bit_whatever_c() {
        // What the evaluator holds: m table pairs, a start label, a decoding bit, and its
        // output lsb(L) ⊕ decode. For two very different c the decoded bit is a fair coin
        // (the garbler's), and the decoding bit alone too.
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        for c in [0u128, 0xffff] {
            let (mut ones, mut decode_ones) = (0, 0);
            for _ in 0..400 {
                let coin: bool = rng.gen();
                let delta = fresh_delta(&mut rng);
                let (circuit, zero) = garble(&bits(c, 16), coin, delta, 0, &mut rng);
                assert_eq!(circuit.tables.len(), 16);
                ones += usize::from(evaluate(&circuit, &zero, 0).unwrap());
                decode_ones += usize::from(circuit.decode);
            }
            // 400 fair coins: within 5σ (σ = 10) of 200.
            assert!((150..=250).contains(&ones), "c={c}: {ones}");
            assert!((150..=250).contains(&decode_ones), "c={c}: {decode_ones}");
        }
    }
}
