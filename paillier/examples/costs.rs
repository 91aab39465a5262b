//! Median cost of the primitives the protocols are built from (single thread).
//! `cargo run --release -p paillier --features gmp --example costs -- [bits]`
use paillier::Encrypt;
use paillier::{BigInt, Ciphertext, SecretKey};
use std::time::Instant;

fn median(mut f: impl FnMut(), reps: usize) -> f64 {
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[reps / 2]
}

fn main() {
    let bits: u32 = std::env::args().nth(1).map_or(2048, |s| s.parse().unwrap());
    let mut rng = rand::thread_rng();
    let sk = SecretKey::generate_insecure_for_tests(bits, &mut rng).unwrap();
    let pk = sk.public_key();
    let cts: Vec<Ciphertext> = (0..64).map(|i| pk.encrypt_i64(i, &mut rng)).collect();
    let short = |b: u32| BigInt::from(1) << b;
    println!(
        "backend {}, {bits}-bit key, ms (median)",
        paillier::arith::backend_description()
    );
    // Build the fixed-base tables first (once per key), and time that too.
    let t = Instant::now();
    drop(pk.randomizer(&mut rng));
    let table_pk = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    drop(sk.randomizer(&mut rng));
    let table_sk = t.elapsed().as_secs_f64() * 1e3;
    println!("fixed-base tables        {table_pk:.1} (public), {table_sk:.1} (CRT), once per key");
    println!(
        "randomizer r^n mod n^2   {:.3}",
        median(|| drop(pk.randomizer_full(&mut rand::thread_rng())), 21)
    );
    println!(
        "randomizer h_s^r (fixed) {:.3}",
        median(|| drop(pk.randomizer(&mut rand::thread_rng())), 41)
    );
    println!(
        "S2 CRT randomizer        {:.3}",
        median(|| drop(sk.randomizer_full(&mut rand::thread_rng())), 21)
    );
    println!(
        "S2 CRT h_s^r (fixed)     {:.3}",
        median(|| drop(sk.randomizer(&mut rand::thread_rng())), 41)
    );
    let m = BigInt::from(12345);
    println!(
        "encrypt, public key      {:.3}",
        median(
            || drop(pk.encrypt(&m, &mut rand::thread_rng()).unwrap()),
            41
        )
    );
    println!(
        "encrypt, key holder      {:.3}",
        median(
            || drop(sk.encrypt(&m, &mut rand::thread_rng()).unwrap()),
            41
        )
    );
    println!(
        "CRT decryption           {:.3}",
        median(|| drop(sk.decrypt(&cts[3]).unwrap()), 21)
    );
    let k = short(151) + 12345;
    println!(
        "152-bit scalar mult      {:.3}",
        median(|| drop(pk.mul_plain(&cts[1], &k).unwrap()), 41)
    );
    let terms2: Vec<(&Ciphertext, &BigInt)> = cts.iter().take(2).map(|c| (c, &k)).collect();
    println!(
        "lincomb 2 x 152-bit      {:.3}",
        median(
            || drop(pk.linear_combination(&terms2, &BigInt::from(1)).unwrap()),
            41
        )
    );
    let terms60: Vec<(&Ciphertext, &BigInt)> = cts.iter().take(60).map(|c| (c, &k)).collect();
    println!(
        "lincomb 60 x 152-bit     {:.3}",
        median(
            || drop(pk.linear_combination(&terms60, &BigInt::from(1)).unwrap()),
            11
        )
    );
    let refs: Vec<&Ciphertext> = cts.iter().take(12).collect();
    println!(
        "pack 12 slots of 162 bit {:.3}",
        median(|| drop(pk.pack(&refs, 162)), 11)
    );
    println!(
        "add                      {:.4}",
        median(|| drop(pk.add(&cts[1], &cts[2])), 101)
    );
    println!(
        "neg (inversion)          {:.4}",
        median(|| drop(pk.neg(&cts[1]).unwrap()), 101)
    );
}
