//! Encrypted training and classification against the plaintext fixed-point reference.
//!
//! Strict profile (exact truncation): bit-for-bit equality of weights, scores and classes.
//! Fast profile: within a few units, and the same accuracy.

use paillier::{FixedPoint, SecretKey};
use rand::SeedableRng;
use secure_ops::{
    Channel, ChannelError, Profile, ProtocolError, S2Options, S2Service, SessionParams, S1,
};
use smlp::data::{stratified_split, Dataset, EncodedDataset, Standardizer};
use smlp::encrypted::{
    classify, encrypt_params, new_model, train, train_from, Checkpoint, EncryptedDataset,
    SecureError, TrainConfig, CHECKPOINT,
};
use smlp::{
    init_fixed, FixedMlp, FixedParams, LearningRate, Loss, Params, Rounding, Shape, TrainOptions,
};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::OnceLock;

struct Mem(Sender<Vec<u8>>, Receiver<Vec<u8>>);
impl Channel for Mem {
    fn send_frame(&mut self, f: &[u8]) -> Result<(), ChannelError> {
        self.0.send(f.to_vec()).map_err(|_| ChannelError::Closed)
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.1.recv().map_err(|_| ChannelError::Closed)
    }
}

fn key() -> &'static SecretKey {
    static K: OnceLock<SecretKey> = OnceLock::new();
    K.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap()
    })
}

type Handle = std::thread::JoinHandle<Result<secure_ops::SessionSummary, ProtocolError>>;

fn session(profile: Profile, fixed: &FixedParams) -> (S1<Mem>, Handle) {
    let (a, b) = channel();
    let (c, d) = channel();
    let sk = key().clone();
    let h =
        std::thread::spawn(move || S2Service::new(sk, S2Options::without_pool()).serve(Mem(c, b)));
    let params = SessionParams {
        value_bits: fixed.value_bits,
        frac_bits: fixed.frac_bits,
        kappa: 40,
        profile,
        ..SessionParams::default()
    };
    (
        S1::connect(key().public_key().clone(), Mem(a, d), params).unwrap(),
        h,
    )
}

/// A small standardised, encoded split of an embedded data set.
fn data(ds: Dataset, train_n: usize, test_n: usize) -> (EncodedDataset, EncodedDataset) {
    let (train, test) = stratified_split(&ds, 0.2, 3).unwrap();
    let scaler = Standardizer::fit(&train);
    let fp = FixedPoint::new(16, 20).unwrap();
    // A shuffled subset (the split lists samples class by class).
    let take =
        |d: &Dataset, n: usize| d.subset(&smlp::epoch_order(d.len(), 99, 0)[..n.min(d.len())]);
    let tr = EncodedDataset::encode(&scaler.apply(&take(&train, train_n)).unwrap(), &fp).unwrap();
    let te = EncodedDataset::encode(&scaler.apply(&take(&test, test_n)).unwrap(), &fp).unwrap();
    (tr, te)
}

fn reference(
    init: &Params<i128>,
    fixed: FixedParams,
    train: &EncodedDataset,
    cfg: &TrainConfig,
) -> FixedMlp {
    let mut m = FixedMlp::from_params(init.clone(), fixed).unwrap();
    let opts = TrainOptions {
        epochs: cfg.epochs,
        batch: cfg.batch,
        seed: cfg.seed,
        loss: cfg.loss,
        start_epoch: 0,
        rounding: Rounding::Floor,
    };
    smlp::train_fixed(&mut m, train, &opts, |_, _| {}).unwrap();
    m
}

fn strict_parity(ds: Dataset, hidden: usize, cfg: TrainConfig) {
    let (train_d, test_d) = data(ds, 6, 4);
    let pk = key().public_key();
    let fixed = FixedParams::default();
    let outputs = smlp::model::outputs_for_classes(train_d.classes);
    let shape = Shape::new(vec![train_d.features[0].len(), hidden, outputs]).unwrap();
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
    );
    let want = reference(&init, fixed, &train_d, &cfg);
    if cfg.loss == Loss::SmoothHinge {
        // The clip must matter here (some output left [0, 1]), or o − y would pass as well.
        let squared = TrainConfig {
            loss: Loss::Squared,
            ..cfg.clone()
        };
        assert_ne!(
            reference(&init, fixed, &train_d, &squared).params,
            want.params
        );
    }

    let enc_train = EncryptedDataset::encrypt(pk, &train_d, true);
    let enc_test = EncryptedDataset::encrypt(pk, &test_d, false);
    let (mut s1, h) = session(Profile::Strict, &fixed);
    let mut model = new_model(
        &mut s1,
        shape,
        fixed,
        train_d.classes,
        Some(encrypt_params(pk, &init).unwrap()),
    )
    .unwrap();
    train(&mut s1, &mut model, &enc_train, &cfg, |_| {}, |_| Ok(())).unwrap();
    assert_eq!(
        model.decrypt(key()).unwrap(),
        want.params,
        "decrypted weights differ from the floor reference"
    );

    let preds = classify(&mut s1, &model, &enc_test, 8, |_| {}).unwrap();
    let classes = preds.decrypt_classes(key()).unwrap();
    let want_classes: Vec<usize> = test_d
        .features
        .iter()
        .map(|x| want.predict(x).unwrap())
        .collect();
    assert_eq!(classes, want_classes);
    let scores = preds.decrypt_scores(key()).unwrap();
    for (x, s) in test_d.features.iter().zip(&scores) {
        let out = want.output(x).unwrap();
        let want_s: Vec<f64> = out.iter().map(|&o| o as f64 / 65536.0).collect();
        assert_eq!(s, &want_s, "scores differ from the reference");
    }
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn strict_binary_sgd_and_minibatch_equal_floor_reference_bit_for_bit() {
    // 30 → 3 → 1 on wdbc: 2 epochs of per-sample SGD (12 steps) ...
    strict_parity(
        Dataset::wdbc(),
        3,
        TrainConfig {
            epochs: 2,
            batch: 1,
            seed: 4,
            loss: Loss::Squared,
        },
    );
    // ... and a mini-batch epoch (B = 4, the last batch smaller).
    strict_parity(
        Dataset::wdbc(),
        3,
        TrainConfig {
            epochs: 1,
            batch: 4,
            seed: 9,
            loss: Loss::Squared,
        },
    );
}

#[test]
fn strict_three_class_equals_floor_reference_bit_for_bit() {
    strict_parity(
        Dataset::iris(),
        4,
        TrainConfig {
            epochs: 2,
            batch: 2,
            seed: 1,
            loss: Loss::Squared,
        },
    );
}

#[test]
fn strict_smooth_hinge_equals_floor_reference_bit_for_bit() {
    // δ = max(o, 0) − max(o − 2^f, 0) − y through one SecReLU round, binary and three-class.
    strict_parity(
        Dataset::wdbc(),
        3,
        TrainConfig {
            epochs: 1,
            batch: 2,
            seed: 6,
            loss: Loss::SmoothHinge,
        },
    );
    strict_parity(
        Dataset::iris(),
        4,
        TrainConfig {
            epochs: 1,
            batch: 3,
            seed: 2,
            loss: Loss::SmoothHinge,
        },
    );
}

#[test]
fn fast_profile_stays_within_a_few_units_and_agrees_on_classes() {
    let (train_d, test_d) = data(Dataset::wdbc(), 8, 16);
    let pk = key().public_key();
    let fixed = FixedParams::default();
    let shape = Shape::new(vec![30, 4, 1]).unwrap();
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(8),
    );
    let cfg = TrainConfig {
        epochs: 1,
        batch: 1,
        seed: 2,
        loss: Loss::Squared,
    };
    let want = reference(&init, fixed, &train_d, &cfg);
    let (mut s1, h) = session(Profile::Fast, &fixed);
    let mut model = new_model(
        &mut s1,
        shape,
        fixed,
        2,
        Some(encrypt_params(pk, &init).unwrap()),
    )
    .unwrap();
    train(
        &mut s1,
        &mut model,
        &EncryptedDataset::encrypt(pk, &train_d, true),
        &cfg,
        |_| {},
        |_| Ok(()),
    )
    .unwrap();
    let got = model.decrypt(key()).unwrap();
    // Each truncation is at most one unit (2^-16) above floor; over 8 steps the weights (scale
    // 2^-38) may drift by a few units of 2^-16 times the activations. Bound in real terms: 2^-9.
    let max_diff = got
        .iter()
        .zip(want.params.iter())
        .map(|(a, b)| fixed.decode_weight(a - b).abs())
        .fold(0.0, f64::max);
    assert!(max_diff < 2f64.powi(-9), "max weight difference {max_diff}");
    assert!(max_diff > 0.0 || got == want.params);
    let preds = classify(
        &mut s1,
        &model,
        &EncryptedDataset::encrypt(pk, &test_d, false),
        16,
        |_| {},
    )
    .unwrap();
    let classes = preds.decrypt_classes(key()).unwrap();
    let want_classes: Vec<usize> = test_d
        .features
        .iter()
        .map(|x| want.predict(x).unwrap())
        .collect();
    let agree = classes
        .iter()
        .zip(&want_classes)
        .filter(|(a, b)| a == b)
        .count();
    assert!(
        agree >= 15,
        "fast profile agrees with the reference on {agree}/16 test samples"
    );
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn resume_from_checkpoint_equals_uninterrupted_run() {
    let (train_d, _) = data(Dataset::iris(), 5, 0);
    let pk = key().public_key();
    let fixed = FixedParams::default();
    let shape = Shape::new(vec![4, 3, 3]).unwrap();
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(2),
    );
    let enc = EncryptedDataset::encrypt(pk, &train_d, true);
    let cfg = TrainConfig {
        epochs: 2,
        batch: 2,
        seed: 6,
        loss: Loss::Squared,
    };

    let (mut s1, h) = session(Profile::Strict, &fixed);
    let mut full = new_model(
        &mut s1,
        shape.clone(),
        fixed,
        3,
        Some(encrypt_params(pk, &init).unwrap()),
    )
    .unwrap();
    train(&mut s1, &mut full, &enc, &cfg, |_| {}, |_| Ok(())).unwrap();

    // Interrupted run: stop after epoch 1 (the callback fails after writing the checkpoint).
    let dir = std::env::temp_dir().join(format!("smlp-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ckpt.bin");
    let mut part = new_model(
        &mut s1,
        shape,
        fixed,
        3,
        Some(encrypt_params(pk, &init).unwrap()),
    )
    .unwrap();
    let r = train(
        &mut s1,
        &mut part,
        &enc,
        &cfg,
        |_| {},
        |m| {
            paillier::format::write_file(
                &CHECKPOINT,
                &path,
                &Checkpoint {
                    model: m.clone(),
                    config: cfg.clone(),
                    position: 0,
                },
            )?;
            Err(SecureError::Callback("simulated crash".into()))
        },
    );
    assert!(r.is_err());
    let ckpt: Checkpoint = paillier::format::read_file(&CHECKPOINT, &path).unwrap();
    assert_eq!(ckpt.model.epochs_trained, 1);
    assert_eq!(ckpt.config, cfg);
    let mut resumed = ckpt.model;
    train(&mut s1, &mut resumed, &enc, &cfg, |_| {}, |_| Ok(())).unwrap();
    assert_eq!(
        resumed.decrypt(key()).unwrap(),
        full.decrypt(key()).unwrap()
    );
    assert_eq!(resumed.epochs_trained, 2);

    // Interrupted within epoch 2 (after 2 of its batches): resuming from that position equals
    // the uninterrupted run too; a position off a batch boundary is refused.
    let mut part = paillier::format::read_file::<Checkpoint>(&CHECKPOINT, &path)
        .unwrap()
        .model;
    let mut saved: Option<Checkpoint> = None;
    let r = train_from(
        &mut s1,
        &mut part,
        &enc,
        &cfg,
        0,
        |_| {},
        |m, position| {
            if position == 2 * cfg.batch {
                saved = Some(Checkpoint {
                    model: m.clone(),
                    config: cfg.clone(),
                    position,
                });
                return Err(SecureError::Callback("simulated crash".into()));
            }
            Ok(())
        },
    );
    assert!(r.is_err());
    let saved = saved.expect("a mid-epoch checkpoint");
    assert_eq!((saved.model.epochs_trained, saved.position), (1, 4));
    let mut bad = saved.model.clone();
    let err = train_from(&mut s1, &mut bad, &enc, &cfg, 3, |_| {}, |_, _| Ok(())).unwrap_err();
    assert!(err.to_string().contains("batch boundary"), "{err}");
    let mut resumed = saved.model;
    let mut positions = vec![];
    train_from(
        &mut s1,
        &mut resumed,
        &enc,
        &cfg,
        saved.position,
        |_| {},
        |_, p| {
            positions.push(p);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(
        resumed.decrypt(key()).unwrap(),
        full.decrypt(key()).unwrap()
    );
    assert_eq!(resumed.epochs_trained, 2);
    let n = enc.len();
    let want: Vec<usize> = (4 + 2..n).step_by(2).chain([0]).collect();
    assert_eq!(positions, want);

    // A corrupted checkpoint is refused with a clear error.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = paillier::format::read_file::<Checkpoint>(&CHECKPOINT, &path).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    std::fs::write(&path, &bytes[..mid]).unwrap();
    let err = paillier::format::read_file::<Checkpoint>(&CHECKPOINT, &path).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn bad_inputs_give_clear_errors() {
    let (train_d, _) = data(Dataset::wdbc(), 3, 0);
    let fixed = FixedParams::default();
    let other = SecretKey::generate_insecure_for_tests(
        512,
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(77),
    )
    .unwrap();
    let (mut s1, h) = session(Profile::Fast, &fixed);
    let cfg = TrainConfig {
        epochs: 1,
        batch: 1,
        seed: 1,
        loss: Loss::Squared,
    };

    // Data encrypted under another key.
    let foreign = EncryptedDataset::encrypt(other.public_key(), &train_d, true);
    let mut model =
        new_model(&mut s1, Shape::new(vec![30, 2, 1]).unwrap(), fixed, 2, None).unwrap();
    let err = train(&mut s1, &mut model, &foreign, &cfg, |_| {}, |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("encrypted under key"), "{err}");

    // A model whose shape does not match the data.
    let mine = EncryptedDataset::encrypt(key().public_key(), &train_d, true);
    let mut wrong =
        new_model(&mut s1, Shape::new(vec![29, 2, 1]).unwrap(), fixed, 2, None).unwrap();
    let err = train(&mut s1, &mut wrong, &mine, &cfg, |_| {}, |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("expects 29 features"), "{err}");

    // Overflow of the fixed-point range during training: a huge learning rate makes the weights
    // explode; S2 detects the out-of-range value, and so does the reference.
    let hot = FixedParams {
        lr: LearningRate::new(1 << 20, 0).unwrap(),
        value_bits: 72,
        ..fixed
    };
    let shape = Shape::new(vec![30, 2, 1]).unwrap();
    let init = init_fixed(&shape, &hot, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let mut m = new_model(
        &mut s1,
        shape,
        hot,
        2,
        Some(encrypt_params(key().public_key(), &init).unwrap()),
    )
    .unwrap();
    let cfg = TrainConfig {
        epochs: 20,
        batch: 1,
        seed: 1,
        loss: Loss::Squared,
    };
    let err = train(&mut s1, &mut m, &mine, &cfg, |_| {}, |_| Ok(())).unwrap_err();
    assert!(
        matches!(err, SecureError::Protocol(ProtocolError::OutOfRange { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("out of range"), "{err}");
    let mut r = FixedMlp::from_params(init, hot).unwrap();
    let opts = TrainOptions {
        epochs: 20,
        batch: 1,
        seed: 1,
        loss: Loss::Squared,
        start_epoch: 0,
        rounding: Rounding::Floor,
    };
    assert!(matches!(
        smlp::train_fixed(&mut r, &train_d, &opts, |_, _| {}),
        Err(smlp::Error::Overflow { .. })
    ));
    // S2 ended the session at the out-of-range value (it never answers on after one).
    let _ = s1.close();
    assert!(matches!(
        h.join().unwrap(),
        Err(ProtocolError::Refused {
            out_of_range: true,
            ..
        })
    ));
}

#[test]
fn fast_profile_whole_run_reaches_the_reference_accuracy() {
    // Four epochs over 80 wdbc samples (320 SGD steps), then accuracy on 40 held-out samples.
    let (train_d, test_d) = data(Dataset::wdbc(), 80, 40);
    let pk = key().public_key();
    // Per-sample SGD wants a smaller step than the default's (chosen for mini-batches of 16).
    let fixed = FixedParams {
        lr: LearningRate::pow2(6),
        ..FixedParams::default()
    };
    let shape = Shape::new(vec![30, 4, 1]).unwrap();
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(21),
    );
    let cfg = TrainConfig {
        epochs: 4,
        batch: 1,
        seed: 3,
        loss: Loss::Squared,
    };
    let want = reference(&init, fixed, &train_d, &cfg);
    let (mut s1, h) = session(Profile::Fast, &fixed);
    let mut model = new_model(
        &mut s1,
        shape,
        fixed,
        2,
        Some(encrypt_params(pk, &init).unwrap()),
    )
    .unwrap();
    train(
        &mut s1,
        &mut model,
        &EncryptedDataset::encrypt(pk, &train_d, true),
        &cfg,
        |_| {},
        |_| Ok(()),
    )
    .unwrap();
    let got = FixedMlp::from_params(model.decrypt(key()).unwrap(), fixed).unwrap();
    let acc = |m: &FixedMlp| smlp::accuracy(m, &test_d.features, &test_d.labels).unwrap();
    let (a_enc, a_ref) = (acc(&got), acc(&want));
    assert!(a_ref >= 0.85, "reference accuracy {a_ref}");
    assert!(
        (a_enc - a_ref).abs() <= 1.0 / 40.0 + 1e-9,
        "encrypted {a_enc} vs reference {a_ref}"
    );
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn initial_weights_drawn_jointly_are_in_the_glorot_range() {
    let fixed = FixedParams::default();
    let (mut s1, h) = session(Profile::Fast, &fixed);
    let shape = Shape::new(vec![30, 8, 1]).unwrap();
    let model = new_model(&mut s1, shape.clone(), fixed, 2, None).unwrap();
    let w = model.decrypt(key()).unwrap();
    for (l, layer) in w.layers.iter().enumerate() {
        let (fan_in, fan_out) = shape.layer_dims(l + 1);
        let b = smlp::glorot_bound(fan_in, fan_out, fixed.weight_frac_bits());
        let flat: Vec<i128> = layer.w.iter().flatten().copied().collect();
        assert!(
            flat.iter().all(|v| v.abs() <= b),
            "layer {} outside ±{b}",
            l + 1
        );
        // Sum of two uniform halves: not constant, and (where there are enough weights for it
        // to be certain: P(no weight above b/8) = 0.617^n, 2 % for the 8 of the last layer)
        // spread out with some of each sign.
        let distinct: std::collections::HashSet<i128> = flat.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            flat.len(),
            "layer {} has repeated weights",
            l + 1
        );
        if flat.len() >= 64 {
            assert!(flat.iter().any(|&v| v > b / 8) && flat.iter().any(|&v| v < -b / 8));
        }
        assert!(layer.b.iter().all(|&v| v == 0));
    }
    s1.close().unwrap();
    h.join().unwrap().unwrap();
}

/// Data-parallel steps: the gradient sums of two shards of a mini-batch, computed in two separate
/// S2 sessions and added homomorphically (in either order), give the same step as the whole
/// batch, and both equal the plaintext fixed-point step bit for bit (strict profile).
#[test]
fn shards_of_a_batch_sum_to_the_whole_batch_step_bit_for_bit() {
    use smlp::encrypted::{apply_gradients, batch_gradients};
    let (train_d, _) = data(Dataset::iris(), 6, 1);
    let pk = key().public_key();
    let fixed = FixedParams::default();
    let shape = Shape::new(vec![4, 3, 3]).unwrap();
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(8),
    );
    let enc = EncryptedDataset::encrypt(pk, &train_d, true);
    let all: Vec<&smlp::encrypted::EncryptedSample> = enc.samples.iter().collect();
    let fresh = |s1: &mut S1<Mem>| {
        new_model(
            s1,
            shape.clone(),
            fixed,
            3,
            Some(encrypt_params(pk, &init).unwrap()),
        )
        .unwrap()
    };
    let (mut s1, h) = session(Profile::Strict, &fixed);
    let mut whole = fresh(&mut s1);
    let g = batch_gradients(&mut s1, &whole, &all, Loss::SmoothHinge).unwrap();
    assert_eq!(g.samples, 6);
    apply_gradients(pk, &mut whole, &g).unwrap();
    drop(s1);
    h.join().unwrap().unwrap();
    // Two workers, two sessions; the driver adds their sums in the order they arrive.
    let (mut a, ha) = session(Profile::Strict, &fixed);
    let (mut b, hb) = session(Profile::Strict, &fixed);
    let mut sharded = fresh(&mut a);
    let ga = batch_gradients(&mut a, &sharded, &all[..2], Loss::SmoothHinge).unwrap();
    let mut gb = batch_gradients(&mut b, &sharded, &all[2..], Loss::SmoothHinge).unwrap();
    gb.add(pk, &ga).unwrap();
    apply_gradients(pk, &mut sharded, &gb).unwrap();
    drop((a, b));
    ha.join().unwrap().unwrap();
    hb.join().unwrap().unwrap();
    let mut reference = FixedMlp::from_params(init.clone(), fixed).unwrap();
    let opts = TrainOptions {
        epochs: 1,
        batch: 6,
        seed: 0,
        loss: Loss::SmoothHinge,
        start_epoch: 0,
        rounding: Rounding::Floor,
    };
    // One epoch of one batch of all six samples (the order within a batch does not matter).
    smlp::train_fixed(&mut reference, &train_d, &opts, |_, _| {}).unwrap();
    assert_eq!(whole.decrypt(key()).unwrap(), reference.params);
    assert_eq!(sharded.decrypt(key()).unwrap(), reference.params);
    // A shard of another network is refused.
    let other = Shape::new(vec![4, 2, 3]).unwrap();
    let mut wrong = whole.clone();
    wrong.shape = other.clone();
    wrong.params = encrypt_params(
        pk,
        &init_fixed(
            &other,
            &fixed,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
        ),
    )
    .unwrap();
    assert!(apply_gradients(pk, &mut wrong, &gb).is_err());
}
