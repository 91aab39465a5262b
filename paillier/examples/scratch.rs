use paillier::arith::{Nat, NatOps};
use std::time::Instant;
fn main() {
    paillier::arith::tune_backend();
    let mut rng = rand::thread_rng();
    let m = Nat::random_exact_bits(4096, &mut rng).add(&Nat::one());
    let m = if m.is_odd() { m } else { m.add(&Nat::one()) };
    let x = Nat::random_below(&m, &mut rng);
    let y = Nat::random_below(&m, &mut rng);
    let e152 = Nat::random_exact_bits(152, &mut rng);
    let n = 2000;
    for _ in 0..3 {
        let t = Instant::now();
        let mut a = x.clone();
        for _ in 0..n {
            a = a.pow_mod(&Nat::from_u64(16), &m);
        }
        let p16 = t.elapsed().as_secs_f64() / n as f64 * 1e6;
        let t = Instant::now();
        let mut a = x.clone();
        for _ in 0..n {
            for _ in 0..4 {
                a = a.square().rem(&m);
            }
        }
        let sq4 = t.elapsed().as_secs_f64() / n as f64 * 1e6;
        let t = Instant::now();
        let mut a = x.clone();
        for _ in 0..n {
            a = a.mul_mod(&y, &m);
        }
        let mm = t.elapsed().as_secs_f64() / n as f64 * 1e6;
        let t = Instant::now();
        let mut a = x.clone();
        for _ in 0..n / 10 {
            a = a.pow_mod(&e152, &m).add(&Nat::one());
        }
        let pw = t.elapsed().as_secs_f64() / (n / 10) as f64 * 1e6;
        let t = Instant::now();
        let mut a = x.clone();
        for _ in 0..n / 10 {
            a = a.pow_mod(&Nat::one().shl(162), &m);
        }
        let sh = t.elapsed().as_secs_f64() / (n / 10) as f64 * 1e6;
        println!("pow16 {p16:.1} us, 4x sq+rem {sq4:.1} us, mulmod {mm:.1} us, powm152 {pw:.1} us, pow 2^162 {sh:.1} us");
    }
}
