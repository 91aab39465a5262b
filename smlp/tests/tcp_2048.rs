//! Encrypted training with a real 2048-bit key, S2 behind a real TCP server on loopback and S1 on
//! a TCP channel: a few steps, checked against the plaintext fixed-point reference.

use paillier::{FixedPoint, SecretKey};
use rand::SeedableRng;
use secure_ops::{Profile, S2Options, S2Service, SessionParams, S1};
use smlp::data::{stratified_split, Dataset, EncodedDataset, Standardizer};
use smlp::encrypted::{
    classify, encrypt_params, new_model, train, EncryptedDataset, EncryptedModel, TrainConfig,
};
use smlp::{init_fixed, FixedMlp, FixedParams, Rounding, Shape, TrainOptions};
use std::sync::Arc;
use transport::loopback::LoopbackS2;
use transport::{ServerOptions, TcpChannel, TcpOptions};

fn encoded(ds: Dataset, n: usize) -> EncodedDataset {
    let (train, _) = stratified_split(&ds, 0.2, 5).unwrap();
    let scaler = Standardizer::fit(&train);
    let fp = FixedPoint::new(16, 20).unwrap();
    EncodedDataset::encode(
        &scaler
            .apply(&train.subset(&(0..n).collect::<Vec<_>>()))
            .unwrap(),
        &fp,
    )
    .unwrap()
}

/// Trains `data` for one epoch (B = 1, order `seed`) from `init_fixed(.., ChaCha8Rng(init_seed))`
/// on ciphertexts with S2 at `addr`, and in the clear with floor rounding; the S1 session stays
/// open for more.
fn run(
    pk: &paillier::PublicKey,
    addr: std::net::SocketAddr,
    profile: Profile,
    data: &EncodedDataset,
    sizes: &[usize],
    init_seed: u64,
    seed: u64,
) -> (S1<TcpChannel>, EncryptedModel, EncryptedDataset, FixedMlp) {
    let fixed = FixedParams::default();
    let shape = Shape::new(sizes.to_vec()).unwrap();
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(init_seed),
    );
    let mut reference = FixedMlp::from_params(init.clone(), fixed).unwrap();
    let opts = TrainOptions {
        epochs: 1,
        batch: 1,
        seed,
        loss: smlp::Loss::Squared,
        start_epoch: 0,
        rounding: Rounding::Floor,
    };
    smlp::train_fixed(&mut reference, data, &opts, |_, _| {}).unwrap();
    let ch = TcpChannel::connect(addr, TcpOptions::default()).unwrap();
    let params = SessionParams {
        value_bits: fixed.value_bits,
        frac_bits: fixed.frac_bits,
        kappa: 80,
        profile,
        ..SessionParams::default()
    };
    let mut s1 = S1::connect(pk.clone(), ch, params)
        .unwrap()
        .with_randomizer_pool(256, 1);
    let enc = EncryptedDataset::encrypt(pk, data, true);
    let mut model = new_model(
        &mut s1,
        shape,
        fixed,
        data.classes,
        Some(encrypt_params(pk, &init).unwrap()),
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        batch: 1,
        seed,
        loss: smlp::Loss::Squared,
    };
    train(&mut s1, &mut model, &enc, &cfg, |_| {}, |_| Ok(())).unwrap();
    (s1, model, enc, reference)
}

#[test]
fn real_key_over_tcp_matches_reference() {
    let sk = SecretKey::generate(2048, &mut rand::rngs::OsRng).unwrap();
    let pk = sk.public_key().clone();
    assert_eq!(pk.bits(), 2048);
    let svc = Arc::new(S2Service::new(sk.clone(), S2Options::default()));
    let s2 = LoopbackS2::tcp(svc, ServerOptions::default()).unwrap();
    let addr = s2.addr();
    let fixed = FixedParams::default();

    // Strict profile, exact: one SGD step of a 4 → 2 → 3 network on iris equals the floor
    // reference bit for bit.
    let data = encoded(Dataset::iris(), 1);
    let (s1, model, _, reference) = run(&pk, addr, Profile::Strict, &data, &[4, 2, 3], 3, 1);
    assert_eq!(model.decrypt(&sk).unwrap(), reference.params);
    s1.close().unwrap();

    // Fast profile: three SGD steps of 30 → 3 → 1 on wdbc stay within stochastic rounding of the
    // floor reference, and the encrypted classifier agrees with it.
    let data = encoded(Dataset::wdbc(), 3);
    let (mut s1, model, enc, reference) = run(&pk, addr, Profile::Fast, &data, &[30, 3, 1], 4, 2);
    let got = model.decrypt(&sk).unwrap();
    let max_diff = got
        .iter()
        .zip(reference.params.iter())
        .map(|(a, b)| fixed.decode_weight(a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        max_diff < 2f64.powi(-10),
        "max weight difference {max_diff}"
    );
    let preds = classify(&mut s1, &model, &enc, 3, |_| {}).unwrap();
    let scores = preds.decrypt_scores(&sk).unwrap();
    for (x, s) in data.features.iter().zip(&scores) {
        let want = reference.output(x).unwrap()[0] as f64 / 65536.0;
        assert!(
            (s[0] - want).abs() < 2f64.powi(-8),
            "score {} vs reference {want}",
            s[0]
        );
    }
    s1.close().unwrap();
    let summary = s2.stop().unwrap();
    assert_eq!(summary.panicked, 0);
}
