//! Fuzzing the file decoders on stable Rust: every file kind smlp reads (keys, encrypted data
//! sets, models, checkpoints, predictions), as raw bytes and as mutations of valid payloads that
//! are then sealed again (the checksum detects accidents, not attackers). Decoding and the
//! invariant checks that follow it must never panic, and must stay within time and memory bounds.
//!
//! A fixed number of cases runs in CI; `SMLP_FUZZ_SECONDS=N` (`cargo xtask fuzz --seconds N`)
//! keeps each loop going for N seconds, `SMLP_FUZZ_SEED` picks the seed.

use paillier::format::{self, seal_payload, FileKind, PUBLIC_KEY, SECRET_KEY};
use paillier::Encrypt;
use paillier::{Ciphertext, PublicKey, SecretKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smlp::encrypted::{
    Checkpoint, EncryptedDataset, EncryptedModel, EncryptedPredictions, EncryptedSample, ModelFile,
    TrainConfig, TrainRecord, CHECKPOINT, DATASET, MODEL, PREDICTIONS,
};
use smlp::{FixedParams, Params, Shape};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        SecretKey::generate_insecure_for_tests(256, &mut rng).unwrap()
    })
}

fn seed_and_deadline(default_secs: Option<u64>) -> (u64, Option<Instant>) {
    let seed = std::env::var("SMLP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let secs = std::env::var("SMLP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .or(default_secs);
    (seed, secs.map(|s| Instant::now() + Duration::from_secs(s)))
}

/// Valid files of every kind, sealed.
fn valid_files() -> Vec<(FileKind, Vec<u8>)> {
    let sk = key();
    let pk = sk.public_key();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut c = |v: i64| pk.encrypt_i64(v, &mut rng);
    let shape = Shape::new(vec![3, 2, 1]).unwrap();
    let model = EncryptedModel {
        fingerprint: pk.fingerprint(),
        shape: shape.clone(),
        fixed: FixedParams::default(),
        profile: secure_ops::Profile::Fast,
        classes: 2,
        epochs_trained: 1,
        params: Params::filled(&shape, c(7)),
    };
    let data = EncryptedDataset {
        fingerprint: pk.fingerprint(),
        frac_bits: 16,
        classes: 2,
        features: 3,
        samples: (0..3)
            .map(|i| EncryptedSample {
                x: vec![c(i), c(-i), c(2 * i)],
                y: vec![c(i % 2)],
            })
            .collect(),
        settings: Some(smlp::tune::Tuned {
            source: "defaults".into(),
            setting: smlp::defaults::setting(None),
            mean: 0.0,
            worst: 0.0,
            folds: 0,
            samples: 3,
        }),
    };
    let preds = EncryptedPredictions {
        fingerprint: pk.fingerprint(),
        classes: 2,
        frac_bits: 16,
        classes_enc: vec![vec![c(1)], vec![c(0)]],
        scores: vec![vec![c(70000)], vec![c(-3)]],
    };
    let ckpt = Checkpoint {
        model: model.clone(),
        config: TrainConfig {
            epochs: 2,
            batch: 1,
            seed: 1,
            loss: smlp::Loss::Squared,
        },
        position: 0,
    };
    vec![
        (PUBLIC_KEY, format::seal(&PUBLIC_KEY, pk).unwrap()),
        (SECRET_KEY, format::seal(&SECRET_KEY, sk).unwrap()),
        (DATASET, format::seal(&DATASET, &data).unwrap()),
        (
            MODEL,
            ModelFile {
                model: model.clone(),
                trained: Some(TrainRecord {
                    config: ckpt.config.clone(),
                    origin: "hidden from the request\u{1b}[2J".into(),
                }),
            }
            .seal()
            .unwrap(),
        ),
        // A model file of version 1 (the bare model) is still read.
        (
            FileKind {
                version: 1,
                ..MODEL
            },
            format::seal(
                &FileKind {
                    version: 1,
                    ..MODEL
                },
                &model,
            )
            .unwrap(),
        ),
        (CHECKPOINT, format::seal(&CHECKPOINT, &ckpt).unwrap()),
        (PREDICTIONS, format::seal(&PREDICTIONS, &preds).unwrap()),
    ]
}

/// Decodes `bytes` as `kind` and runs the checks a reader runs next; `Ok` if it was accepted.
fn read(kind: &FileKind, bytes: &[u8]) -> Result<(), String> {
    let pk: &PublicKey = key().public_key();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match &kind.tag {
        b"PKEY" => format::open::<PublicKey>(kind, bytes)
            .map(drop)
            .map_err(|x| e(&x)),
        b"SKEY" => {
            let sk: SecretKey = format::open(kind, bytes).map_err(|x| e(&x))?;
            // Use it as S2 would: decrypt a ciphertext of the right size.
            let ct: Ciphertext = pk.encrypt_i64(5, &mut rand::thread_rng());
            let _ = sk.decrypt(&ct);
            Ok(())
        }
        b"DSET" => {
            let d: EncryptedDataset = format::open(kind, bytes).map_err(|x| e(&x))?;
            d.check(pk, false).map_err(|x| e(&x))
        }
        b"MODL" => {
            let f = ModelFile::open(bytes).map_err(|x| e(&x))?;
            let _ = f.describe();
            f.model.check(pk).map_err(|x| e(&x))
        }
        b"CKPT" => {
            let c: Checkpoint = format::open(kind, bytes).map_err(|x| e(&x))?;
            c.model.check(pk).map_err(|x| e(&x))
        }
        b"PRED" => {
            let p: EncryptedPredictions = format::open(kind, bytes).map_err(|x| e(&x))?;
            p.check(pk).map_err(|x| e(&x))?;
            p.decrypt_classes(key()).map(drop).map_err(|x| e(&x))?;
            p.decrypt_scores(key()).map(drop).map_err(|x| e(&x))
        }
        _ => unreachable!(),
    }
}

/// The payload of a sealed file (between the 18-byte header and the 8-byte checksum).
fn payload(sealed: &[u8]) -> Vec<u8> {
    sealed[18..sealed.len() - 8].to_vec()
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    for _ in 0..rng.gen_range(1..4) {
        if bytes.is_empty() {
            bytes.push(rng.gen());
            continue;
        }
        let i = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..6) {
            0 => bytes[i] ^= 1 << rng.gen_range(0..8),
            1 => bytes[i] = rng.gen(),
            2 => bytes.truncate(i),
            3 => {
                // A length or count blown up (varint).
                bytes.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0x0f]);
            }
            4 => {
                // A length set to zero.
                bytes[i] = 0;
            }
            _ => {
                let j = rng.gen_range(0..bytes.len());
                let (a, b) = (i.min(j), i.max(j));
                let chunk = bytes[a..b].to_vec();
                bytes.splice(b..b, chunk);
            }
        }
    }
}

fn check_one(kind: &FileKind, bytes: &[u8], seed: u64) {
    let start = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| read(kind, bytes)));
    assert!(
        r.is_ok(),
        "{} decoder panicked on {} bytes (seed {seed}): {:02x?}",
        kind.name,
        bytes.len(),
        &bytes[..bytes.len().min(64)]
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{} decoder took {:?} (seed {seed})",
        kind.name,
        start.elapsed()
    );
}

#[test]
fn valid_files_are_accepted() {
    for (kind, bytes) in valid_files() {
        read(&kind, &bytes).unwrap_or_else(|e| panic!("{}: {e}", kind.name));
    }
}

#[test]
fn decoders_survive_mutated_payloads() {
    let (seed, deadline) = seed_and_deadline(None);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let files = valid_files();
    let mut done = 0u64;
    let mut accepted = 0u64;
    while done < 1500 || deadline.is_some_and(|t| Instant::now() < t) {
        let (kind, sealed) = &files[rng.gen_range(0..files.len())];
        let mut p = payload(sealed);
        mutate(&mut p, &mut rng);
        let bytes = seal_payload(kind, &p);
        check_one(kind, &bytes, seed);
        accepted += u64::from(read(kind, &bytes).is_ok());
        done += 1;
    }
    eprintln!("{done} mutated files, {accepted} accepted (seed {seed})");
}

#[test]
fn decoders_survive_raw_bytes() {
    let (seed, deadline) = seed_and_deadline(None);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let kinds = [
        PUBLIC_KEY,
        SECRET_KEY,
        DATASET,
        MODEL,
        CHECKPOINT,
        PREDICTIONS,
    ];
    let mut done = 0u64;
    while done < 600 || deadline.is_some_and(|t| Instant::now() < t) {
        let kind = &kinds[rng.gen_range(0..kinds.len())];
        let len = rng.gen_range(0..200);
        let p: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        // Sealed (reaches the decoder) and unsealed (the container's own checks).
        check_one(kind, &seal_payload(kind, &p), seed);
        check_one(kind, &p, seed);
        done += 1;
    }
}

/// A data set file of version 1 (before settings were recorded in it) still opens, with no
/// settings and the same samples; the current version round-trips its settings.
#[test]
fn a_version_1_data_set_opens_without_settings() {
    #[derive(serde::Serialize)]
    struct V1<'a> {
        fingerprint: &'a paillier::Fingerprint,
        frac_bits: u32,
        classes: usize,
        features: usize,
        samples: &'a [EncryptedSample],
    }
    let (kind, sealed) = valid_files()
        .into_iter()
        .find(|(k, _)| k.tag == DATASET.tag)
        .unwrap();
    let now: EncryptedDataset = format::open(&kind, &sealed).unwrap();
    assert!(now.settings.is_some());
    assert_eq!(
        smlp::encrypted::open_dataset(&sealed).unwrap().settings,
        now.settings
    );
    let v1 = FileKind {
        version: 1,
        ..DATASET
    };
    let old = format::seal(
        &v1,
        &V1 {
            fingerprint: &now.fingerprint,
            frac_bits: now.frac_bits,
            classes: now.classes,
            features: now.features,
            samples: &now.samples,
        },
    )
    .unwrap();
    // The current decoder alone refuses it; the upgrading one reads it.
    assert!(format::open::<EncryptedDataset>(&DATASET, &old).is_err());
    let read = smlp::encrypted::open_dataset(&old).unwrap();
    assert_eq!(read.settings, None);
    assert_eq!(read.samples.len(), now.samples.len());
    assert!(read
        .samples
        .iter()
        .zip(&now.samples)
        .all(|(a, b)| a.x == b.x && a.y == b.y));
    assert_eq!((read.features, read.classes), (now.features, now.classes));
}

/// A model file says how its model was trained: the record survives sealing, a file of version 1
/// (the bare model) still opens with no record, control characters of a hostile origin never
/// reach the line shown to people, and an oversized origin is refused.
#[test]
fn model_files_carry_their_training_record() {
    let files = valid_files();
    let (_, v2) = files.iter().find(|(k, _)| *k == MODEL).unwrap();
    let f = ModelFile::open(v2).unwrap();
    let t = f.trained.as_ref().unwrap();
    assert_eq!((t.config.epochs, t.config.batch, t.config.seed), (2, 1, 1));
    let line = f.describe().unwrap();
    assert_eq!(
        line,
        "hidden 2, batch 1, η 1/2^4, 2 epoch(s), squared loss, seed 1 — hidden from the request [2J"
    );
    assert!(!line.chars().any(char::is_control));

    let (_, v1) = files
        .iter()
        .find(|(k, _)| k.tag == MODEL.tag && k.version == 1)
        .unwrap();
    let old = ModelFile::open(v1).unwrap();
    assert!(old.trained.is_none() && old.describe().is_none());
    assert_eq!(old.model.params, f.model.params);

    let mut big = f.clone();
    big.trained.as_mut().unwrap().origin = "x".repeat(smlp::encrypted::MAX_ORIGIN_BYTES + 1);
    let err = ModelFile::open(&big.seal().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("origin has 2049 bytes"), "{err}");
}
