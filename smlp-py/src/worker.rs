//! Data-parallel training on S1's side (`smlp.ray`): an S1 worker holds its own TLS session with
//! an S2 replica and returns the encrypted gradient sums of a shard of a mini-batch; the driver
//! adds the shards' sums homomorphically and applies the step. Exact integers under encryption:
//! any split of a batch gives the step of the whole batch, bit for bit
//! (`smlp::encrypted::{batch_gradients, Gradients, apply_gradients}`).

use super::{
    err, parse_loss, parse_profile, EncryptedDataset, EncryptedModel, EncryptedPredictions,
    PublicKey, SMLPError,
};
use paillier::format::{open, read_file, seal, write_file};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use secure_ops::{SessionParams, S1};
use smlp::encrypted::{
    apply_gradients as apply, batch_gradients, classify as classify_on, encrypt_params, Checkpoint,
    Gradients, TrainConfig, CHECKPOINT, GRADIENTS, PREDICTIONS,
};
use smlp::{init_fixed, FixedParams, LearningRate, Shape};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use transport::{Role, TcpOptions, TlsChannel, TlsCredentials, TlsFiles};

/// An S1 worker: a secure-ops session with S2 (at `s2`, mutually authenticated TLS with the S1
/// certificate of the kit `pki`, e.g. `PKI/s1`) under `public_key`, for the session parameters of
/// the model it will train.
#[pyclass(module = "smlp._native")]
pub struct S1Worker {
    session: Mutex<S1<TlsChannel>>,
    pk: paillier::PublicKey,
}

impl S1Worker {
    /// The samples `indices` of `data`, after checking that `model` and `data` are under this
    /// worker's key.
    fn shard<'d>(
        &self,
        model: &smlp::encrypted::EncryptedModel,
        data: &'d smlp::encrypted::EncryptedDataset,
        indices: &[usize],
    ) -> PyResult<Vec<&'d smlp::encrypted::EncryptedSample>> {
        if model.fingerprint != self.pk.fingerprint() || data.fingerprint != self.pk.fingerprint() {
            return Err(SMLPError::new_err(
                "the model and the data must be under this worker's key",
            ));
        }
        indices
            .iter()
            .map(|&i| {
                data.samples.get(i).ok_or_else(|| {
                    SMLPError::new_err(format!("sample {i} of a data set of {}", data.len()))
                })
            })
            .collect()
    }
}

#[pymethods]
impl S1Worker {
    #[new]
    #[pyo3(signature = (s2, pki, public_key, frac_bits = 16, value_bits = 72, kappa = 80,
                        profile = "strict", s2_name = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        s2: String,
        pki: PathBuf,
        public_key: &PublicKey,
        frac_bits: u32,
        value_bits: u32,
        kappa: u32,
        profile: &str,
        s2_name: Option<String>,
    ) -> PyResult<Self> {
        let profile = parse_profile(profile)?;
        let pk = public_key.inner.clone();
        let params = SessionParams {
            value_bits,
            frac_bits,
            kappa,
            profile,
            ..SessionParams::default()
        };
        let session = py
            .detach(|| -> Result<S1<TlsChannel>, String> {
                let creds = TlsCredentials::load(&TlsFiles::in_pki(&pki, "s1"), Role::S1)
                    .map_err(|e| format!("S1's TLS credentials in {}: {e}", pki.display()))?;
                let config = creds.client_config(Role::S2).map_err(|e| e.to_string())?;
                let options = TcpOptions::default()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_read_timeout(Some(Duration::from_secs(1800)));
                let chan =
                    transport::tls::connect(s2.as_str(), s2_name.as_deref(), config, &options)
                        .map_err(|e| format!("cannot reach S2 at {s2}: {e}"))?;
                S1::connect(pk.clone(), chan, params).map_err(|e| format!("S2 at {s2}: {e}"))
            })
            .map_err(SMLPError::new_err)?;
        Ok(S1Worker {
            session: Mutex::new(session),
            pk,
        })
    }

    /// The sealed encrypted gradient sums of the samples `indices` of `data` for one step of
    /// `model` (labelled data; `loss` "smooth_hinge" or "squared").
    fn gradients<'py>(
        &self,
        py: Python<'py>,
        model: &EncryptedModel,
        data: &EncryptedDataset,
        indices: Vec<usize>,
        loss: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let loss = parse_loss(loss)?;
        let (m, d) = (&model.inner, &data.inner);
        let batch = self.shard(m, d, &indices)?;
        let k = d.outputs();
        if let Some((i, _)) = indices
            .iter()
            .zip(&batch)
            .find(|(_, s)| s.x.len() != m.shape.inputs() || s.y.len() != k)
        {
            return Err(SMLPError::new_err(format!(
                "sample {i} does not fit the network {}",
                m.shape
            )));
        }
        let sealed = py.detach(|| -> Result<Vec<u8>, String> {
            let mut s1 = self.session.lock().unwrap_or_else(|p| p.into_inner());
            let g = batch_gradients(&mut s1, m, &batch, loss).map_err(|e| e.to_string())?;
            seal(&GRADIENTS, &g).map_err(|e| e.to_string())
        });
        Ok(PyBytes::new(py, &sealed.map_err(SMLPError::new_err)?))
    }

    /// The sealed encrypted predictions of `model` for the samples `indices` of `data` (labels,
    /// if any, unused), `chunk` samples per request to S2 (S1's classifier on a shard).
    fn classify<'py>(
        &self,
        py: Python<'py>,
        model: &EncryptedModel,
        data: &EncryptedDataset,
        indices: Vec<usize>,
        chunk: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let (m, d) = (&model.inner, &data.inner);
        let shard = smlp::encrypted::EncryptedDataset {
            fingerprint: d.fingerprint,
            frac_bits: d.frac_bits,
            classes: d.classes,
            features: d.features,
            samples: self.shard(m, d, &indices)?.into_iter().cloned().collect(),
            settings: None,
        };
        let sealed = py.detach(|| -> Result<Vec<u8>, String> {
            let mut s1 = self.session.lock().unwrap_or_else(|p| p.into_inner());
            let p =
                classify_on(&mut s1, m, &shard, chunk.max(1), |_| {}).map_err(|e| e.to_string())?;
            seal(&PREDICTIONS, &p).map_err(|e| e.to_string())
        });
        Ok(PyBytes::new(py, &sealed.map_err(SMLPError::new_err)?))
    }
}

/// The predictions of several shards (sealed, in sample order) as one: the shards must be under
/// `public_key`, of the same classes and scale.
#[pyfunction]
pub fn concat_predictions(
    py: Python<'_>,
    public_key: &PublicKey,
    shards: Vec<Vec<u8>>,
) -> PyResult<EncryptedPredictions> {
    let pk = &public_key.inner;
    let joined = py
        .detach(
            || -> Result<smlp::encrypted::EncryptedPredictions, String> {
                let mut all: Option<smlp::encrypted::EncryptedPredictions> = None;
                for bytes in &shards {
                    let p: smlp::encrypted::EncryptedPredictions =
                        open(&PREDICTIONS, bytes).map_err(|e| e.to_string())?;
                    p.check(pk).map_err(|e| e.to_string())?;
                    match &mut all {
                        None => all = Some(p),
                        Some(a) => {
                            if (a.classes, a.frac_bits) != (p.classes, p.frac_bits) {
                                return Err(
                                    "the shards' predictions differ in classes or scale".into()
                                );
                            }
                            a.classes_enc.extend(p.classes_enc);
                            a.scores.extend(p.scores);
                        }
                    }
                }
                all.ok_or_else(|| "no predictions to join".to_string())
            },
        )
        .map_err(SMLPError::new_err)?;
    Ok(EncryptedPredictions { inner: joined })
}

/// One SGD step: the sum of the sealed shard gradients `shards` (in any order) applied to
/// `model` under `public_key`; `end_of_epoch` counts the epoch as trained. A new model.
#[pyfunction]
#[pyo3(signature = (public_key, model, shards, end_of_epoch = false))]
pub fn apply_gradients(
    py: Python<'_>,
    public_key: &PublicKey,
    model: &EncryptedModel,
    shards: Vec<Vec<u8>>,
    end_of_epoch: bool,
) -> PyResult<EncryptedModel> {
    let pk = &public_key.inner;
    let mut m = model.inner.clone();
    py.detach(|| -> Result<(), String> {
        let mut total: Option<Gradients> = None;
        for bytes in &shards {
            let g: Gradients = open(&GRADIENTS, bytes).map_err(|e| e.to_string())?;
            g.check(pk, &m).map_err(|e| e.to_string())?;
            match &mut total {
                Some(t) => t.add(pk, &g).map_err(|e| e.to_string())?,
                None => total = Some(g),
            }
        }
        let total = total.ok_or("no gradients to apply")?;
        apply(pk, &mut m, &total).map_err(|e| e.to_string())?;
        if end_of_epoch {
            m.epochs_trained += 1;
        }
        Ok(())
    })
    .map_err(SMLPError::new_err)?;
    Ok(EncryptedModel::bare(m))
}

/// The sample order of `epoch` (`smlp::epoch_order`: what S1's trainer uses).
#[pyfunction]
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    smlp::epoch_order(n, seed, epoch)
}

/// A model with initial weights drawn here from `seed` (`smlp::init_fixed` with ChaCha8, as
/// `smlp train --init-seed`), encrypted under `public_key`.
#[pyfunction]
#[pyo3(signature = (public_key, features, hidden, classes, seed, lr_num = 1, lr_shift = 4,
                    frac_bits = 16, value_bits = 72, profile = "strict"))]
#[allow(clippy::too_many_arguments)]
pub fn initial_model(
    public_key: &PublicKey,
    features: usize,
    hidden: Vec<usize>,
    classes: usize,
    seed: u64,
    lr_num: u32,
    lr_shift: u32,
    frac_bits: u32,
    value_bits: u32,
    profile: &str,
) -> PyResult<EncryptedModel> {
    use rand::SeedableRng;
    let profile = parse_profile(profile)?;
    let fixed = FixedParams::new(
        frac_bits,
        LearningRate::new(lr_num, lr_shift).map_err(err)?,
        value_bits,
    )
    .map_err(err)?;
    let shape =
        Shape::mlp(features, &hidden, smlp::model::outputs_for_classes(classes)).map_err(err)?;
    let init = init_fixed(
        &shape,
        &fixed,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed),
    );
    let pk = &public_key.inner;
    Ok(EncryptedModel::bare(smlp::encrypted::EncryptedModel {
        fingerprint: pk.fingerprint(),
        shape,
        fixed,
        profile,
        classes,
        epochs_trained: 0,
        params: encrypt_params(pk, &init).map_err(err)?,
    }))
}

/// Writes the checkpoint of a data-parallel run (the format of `smlp fetch --checkpoint`,
/// atomically: a crash leaves the previous one whole): `model` after `position` samples of epoch
/// `model.epochs_trained` of the run (`epochs`, `batch`, `seed`, `loss`).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn save_checkpoint(
    py: Python<'_>,
    path: PathBuf,
    model: &EncryptedModel,
    epochs: u64,
    batch: usize,
    seed: u64,
    loss: &str,
    position: usize,
) -> PyResult<()> {
    let ck = Checkpoint {
        model: model.inner.clone(),
        config: TrainConfig {
            epochs,
            batch,
            seed,
            loss: parse_loss(loss)?,
        },
        position,
    };
    py.detach(|| write_file(&CHECKPOINT, &path, &ck))
        .map_err(|e| SMLPError::new_err(e.to_string()))
}

/// Reads the checkpoint at `path` and checks that it continues the run (`epochs`, `batch`,
/// `seed`, `loss`) on `samples` samples under `public_key`: the model and the position in its
/// epoch.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn resume_checkpoint(
    py: Python<'_>,
    path: PathBuf,
    public_key: &PublicKey,
    epochs: u64,
    batch: usize,
    seed: u64,
    loss: &str,
    samples: usize,
) -> PyResult<(EncryptedModel, usize)> {
    let config = TrainConfig {
        epochs,
        batch,
        seed,
        loss: parse_loss(loss)?,
    };
    let pk = &public_key.inner;
    let ck = py
        .detach(|| -> Result<Checkpoint, String> {
            let ck: Checkpoint = read_file(&CHECKPOINT, &path).map_err(|e| e.to_string())?;
            ck.model.check(pk).map_err(|e| e.to_string())?;
            ck.check_resumable(&config, samples)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(ck)
        })
        .map_err(SMLPError::new_err)?;
    Ok((EncryptedModel::bare(ck.model), ck.position))
}
