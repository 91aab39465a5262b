//! Seconds per encrypted training sample and per classified sample, both servers over TCP on
//! loopback (S2 on a thread behind a real `transport` server).
//!
//! `cargo run --release -p smlp --features gmp --example speed -- [bits] [hidden] [samples] [fast|strict] [batch]`

use paillier::{FixedPoint, SecretKey};
use secure_ops::{S2Options, S2Service, SessionParams, S1};
use smlp::data::{stratified_split, Dataset, EncodedDataset, Standardizer};
use smlp::encrypted::{classify, costs, new_model, train_batch, EncryptedDataset};
use smlp::{FixedParams, Shape};
use std::sync::Arc;
use std::time::Instant;
use transport::{server::Server, ServerOptions, TcpChannel, TcpOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bits: u32 = args.get(1).map_or(2048, |s| s.parse().unwrap());
    let hidden: usize = args.get(2).map_or(8, |s| s.parse().unwrap());
    let n: usize = args.get(3).map_or(4, |s| s.parse().unwrap());
    let profile = args.get(4).map_or("fast", |s| s.as_str()).parse().unwrap();
    let batch: usize = args.get(5).map_or(1, |s| s.parse().unwrap());
    let mut rng = rand::rngs::OsRng;
    let t = Instant::now();
    let sk = if bits >= 2048 {
        SecretKey::generate(bits, &mut rng)
    } else {
        SecretKey::generate_insecure_for_tests(bits, &mut rng)
    }
    .unwrap();
    println!(
        "keygen {bits} bits: {:.2} s, backend {}",
        t.elapsed().as_secs_f64(),
        paillier::arith::BACKEND
    );
    let pk = sk.public_key().clone();

    let server = Server::bind("127.0.0.1:0", ServerOptions::default()).unwrap();
    let addr = server.local_addr();
    let svc = Arc::new(S2Service::new(sk.clone(), S2Options::default()));
    std::thread::spawn(move || server.run(move |ch, _| svc.serve(ch).map(|_| ())));

    let (train, _) = stratified_split(&Dataset::wdbc(), 0.2, 1).unwrap();
    let scaler = Standardizer::fit(&train);
    let fp = FixedPoint::new(16, 20).unwrap();
    let enc = EncodedDataset::encode(
        &scaler
            .apply(&train.subset(&(0..n).collect::<Vec<_>>()))
            .unwrap(),
        &fp,
    )
    .unwrap();
    let data = EncryptedDataset::encrypt(&pk, &enc, true);

    let fixed = FixedParams::default();
    let ch = TcpChannel::connect(addr, TcpOptions::default()).unwrap();
    let params = SessionParams {
        value_bits: fixed.value_bits,
        frac_bits: fixed.frac_bits,
        kappa: 80,
        profile,
    };
    let mut s1 = S1::connect(pk.clone(), ch, params)
        .unwrap()
        .with_randomizer_pool(1024, 1);
    let mut model = new_model(
        &mut s1,
        Shape::new(vec![30, hidden, 1]).unwrap(),
        fixed,
        2,
        None,
    )
    .unwrap();
    let before = costs(&mut s1).unwrap();
    let mut times = Vec::new();
    for chunk in data.samples.chunks(batch) {
        let t = Instant::now();
        let refs: Vec<_> = chunk.iter().collect();
        train_batch(&mut s1, &mut model, &refs).unwrap();
        times.push(t.elapsed().as_secs_f64() / chunk.len() as f64);
    }
    let m = times.len();
    let c = costs(&mut s1).unwrap().since(&before);
    times.sort_by(f64::total_cmp);
    println!("30-{hidden}-1 {profile} batch {batch}: training s/sample median {:.3} (min {:.3}, max {:.3}) over {n}", times[m / 2], times[0], times[m - 1]);
    let per = |v: u64| v as f64 / n as f64;
    println!(
        "  per sample: S1 randomizers {:.0}, short exps {:.0}, full exps {:.0}, pack squarings {:.0}; S2 dec {:.0}, enc {:.0}; bytes {:.0} sent / {:.0} received; rounds {:.0}",
        per(c.s1.randomizers), per(c.s1.short_exps), per(c.s1.full_exps), per(c.s1.pack_squarings),
        per(c.s2.decryptions), per(c.s2.encryptions), per(c.traffic.bytes_sent), per(c.traffic.bytes_received), per(c.traffic.round_trips)
    );
    let before = costs(&mut s1).unwrap();
    let t = Instant::now();
    classify(&mut s1, &model, &data, 1, |_| {}).unwrap();
    let c = costs(&mut s1).unwrap().since(&before);
    println!(
        "  classification s/sample (one at a time): {:.3}; S2 dec {:.0} enc {:.0}",
        t.elapsed().as_secs_f64() / n as f64,
        per(c.s2.decryptions),
        per(c.s2.encryptions)
    );
    let t = Instant::now();
    classify(&mut s1, &model, &data, n, |_| {}).unwrap();
    println!(
        "  classification s/sample (batched): {:.3}",
        t.elapsed().as_secs_f64() / n as f64
    );
    s1.close().unwrap();
}
