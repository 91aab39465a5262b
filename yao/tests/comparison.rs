//! The whole comparison as S1 and S2 run it: base OTs once, then batches of garbled
//! comparisons whose input labels travel by OT extension; checked against 1{d < c} in the clear.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use yao::{base, compare, iknp};

fn bits(x: u128, m: usize) -> Vec<bool> {
    (0..m).map(|i| (x >> i) & 1 == 1).collect()
}

#[test]
fn batches_of_comparisons_over_ot_match_the_clear_comparison() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    // Session set-up: S2 is the base sender, S1 the base receiver with its secret s.
    let (base_sender, a) = base::Sender::new(&mut rng);
    let s: u128 = rng.gen();
    let s_bits: Vec<bool> = (0..iknp::K).map(|i| (s >> i) & 1 == 1).collect();
    let (points, keys) = base::receive(&a, &s_bits, &mut rng).unwrap();
    let mut s1 = iknp::Sender::new(s, keys).unwrap();
    let mut s2 = iknp::Receiver::new(base_sender.keys(&points, iknp::K).unwrap()).unwrap();

    for (items, m) in [(1usize, 73usize), (17, 37), (64, 5)] {
        let mask = (1u128 << m) - 1;
        let ds: Vec<u128> = (0..items).map(|_| rng.gen::<u128>() & mask).collect();
        let cs: Vec<u128> = (0..items).map(|_| rng.gen::<u128>() & mask).collect();
        // S2: its choice bits are the bits of every d.
        let choices: Vec<bool> = ds.iter().flat_map(|d| bits(*d, m)).collect();
        let (first, columns, batch) = s2.extend(&choices).unwrap();
        // S1: garbles, and sends the input labels' pairs through the extension.
        let delta = compare::fresh_delta(&mut rng);
        let mut circuits = Vec::new();
        let mut pairs = Vec::new();
        let mut coins = Vec::new();
        for (item, c) in cs.iter().enumerate() {
            let coin: bool = rng.gen();
            let (circuit, zero) = compare::garble(&bits(*c, m), coin, delta, item as u32, &mut rng);
            pairs.extend(zero.iter().map(|l| (*l, l ^ delta)));
            circuits.push(circuit);
            coins.push(coin);
        }
        let answers = s1.send(first, &columns, &pairs).unwrap();
        // S2: opens its labels and evaluates; S1 removes its coins.
        let labels = batch.open(&answers).unwrap();
        for (item, (circuit, ls)) in circuits.iter().zip(labels.chunks(m)).enumerate() {
            let lambda = compare::evaluate(circuit, ls, item as u32).unwrap();
            assert_eq!(lambda ^ coins[item], ds[item] < cs[item], "item {item}");
        }
    }
}
