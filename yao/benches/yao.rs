//! `cargo bench -p yao`: one garbled comparison of m = 37 and m = 73 bits (what a strict
//! truncation by 2^36 and a ReLU of a 72-bit value compare), S1's and S2's work together
//! (OT extension batch, garbling, opening, evaluation), and the session's base OTs.

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::hint::black_box;
use yao::{base, compare, iknp};

fn bits(x: u128, m: usize) -> Vec<bool> {
    (0..m).map(|i| (x >> i) & 1 == 1).collect()
}

fn session(rng: &mut ChaCha20Rng) -> (iknp::Sender, iknp::Receiver) {
    let (bs, a) = base::Sender::new(rng);
    let s: u128 = rng.gen();
    let choices: Vec<bool> = (0..iknp::K).map(|i| (s >> i) & 1 == 1).collect();
    let (points, keys) = base::receive(&a, &choices, rng).unwrap();
    let both = bs.keys(&points, iknp::K).unwrap();
    (
        iknp::Sender::new(s, keys).unwrap(),
        iknp::Receiver::new(both).unwrap(),
    )
}

fn comparisons(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("yao");
    g.bench_function("base_ots_128", |b| b.iter(|| session(&mut rng)));
    let (mut s1, mut s2) = session(&mut rng);
    for (items, m) in [(1usize, 37usize), (1, 73), (64, 37)] {
        let id = format!("compare_m{m}_x{items}");
        g.bench_function(&id, |b| {
            b.iter(|| {
                let d: Vec<u128> = (0..items).map(|_| rng.gen::<u128>() >> (128 - m)).collect();
                let choices: Vec<bool> = d.iter().flat_map(|d| bits(*d, m)).collect();
                let (first, cols, batch) = s2.extend(&choices).unwrap();
                let delta = compare::fresh_delta(&mut rng);
                let mut circuits = Vec::new();
                let mut pairs = Vec::new();
                for item in 0..items {
                    let c: u128 = rng.gen::<u128>() >> (128 - m);
                    let (circ, zero) =
                        compare::garble(&bits(c, m), false, delta, item as u32, &mut rng);
                    pairs.extend(zero.iter().map(|l| (*l, l ^ delta)));
                    circuits.push(circ);
                }
                let answers = s1.send(first, &cols, &pairs).unwrap();
                let labels = batch.open(&answers).unwrap();
                for (item, (circ, ls)) in circuits.iter().zip(labels.chunks(m)).enumerate() {
                    black_box(compare::evaluate(circ, ls, item as u32).unwrap());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, comparisons);
criterion_main!(benches);
