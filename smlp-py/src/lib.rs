//! `smlp._native`: the Rust side of the `smlp` Python package.
//!
//! A thin layer over the workspace: keys and files are `paillier`'s and `smlp`'s types, written
//! and read by the same functions as the CLI (`smlp_client::keys`, `smlp_client::encrypt`, the
//! sealed file formats), and the service client is `smlp_client::client::Client` over the same
//! mutually authenticated TLS. Nothing here computes on ciphertexts or speaks a sub-protocol; the Python
//! modules in `python/smlp` add the numpy, scikit-learn and python-paillier conveniences.
//!
//! Long calls (key generation, encryption, decryption, network requests) release the GIL; the
//! ones that take a while come back to Python between chunks to report progress and to let
//! Ctrl-C (`KeyboardInterrupt`) through.

use paillier::format::{open, read_file, seal, write_file, PUBLIC_KEY, SECRET_KEY};
use paillier::{Ciphertext, Encrypt};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use smlp::data::{Dataset, Standardizer, DEFAULT_INT_BITS};
use smlp::encrypted::{open_dataset, read_dataset};
use smlp::encrypted::{
    Checkpoint, EncryptedDataset as Dataset_, EncryptedModel as Model_,
    EncryptedPredictions as Predictions_, EncryptedSample, ModelFile, TrainConfig, TrainRecord,
    CHECKPOINT, DATASET, PREDICTIONS,
};
use smlp::Loss;
use smlp_client::client::{resolve_spec, train_request, Client as Client_, S1Args, TrainOverrides};
use smlp_client::error::CliError;
use smlp_client::proto::{ClassifyRequest, ClientMsg, ObjectKind};
use smlp_client::tls::TlsArgs;
use std::path::PathBuf;
use std::sync::Mutex;

mod worker;

pyo3::create_exception!(
    _native,
    SMLPError,
    PyException,
    "An smlp operation failed: a refused or malformed file, a wrong key, a refused request, an \
     unreachable server. The message says which."
);

fn err(e: impl Into<CliError>) -> PyErr {
    SMLPError::new_err(e.into().0)
}

fn cli<T>(r: Result<T, CliError>) -> PyResult<T> {
    r.map_err(|e| SMLPError::new_err(e.0))
}

/// Big unsigned integers cross the boundary as big-endian bytes (`int.from_bytes(b, "big")`).
fn biguint(b: &[u8]) -> num_bigint::BigUint {
    num_bigint::BigUint::from_bytes_be(b)
}

// ---------------------------------------------------------------------------------------------
// Keys

/// A Paillier public key (g = n + 1, as python-paillier's).
#[pyclass(frozen, module = "smlp._native")]
#[derive(Clone)]
struct PublicKey {
    inner: paillier::PublicKey,
}

#[pymethods]
impl PublicKey {
    /// Reads a public key file (`KEYDIR/public.key`, as written by `smlp keygen`).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(PublicKey {
            inner: cli(smlp_client::keys::load_public(&path))?,
        })
    }

    /// The key of modulus n (big-endian bytes), e.g. a python-paillier `PaillierPublicKey`'s.
    #[staticmethod]
    fn from_n(n: &[u8]) -> PyResult<Self> {
        Ok(PublicKey {
            inner: paillier::PublicKey::from_modulus(&biguint(n)).map_err(err)?,
        })
    }

    /// Writes the key file (0644).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        write_file(&PUBLIC_KEY, &path, &self.inner).map_err(err)
    }

    /// The modulus n, big-endian bytes.
    fn n_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.n().to_bytes_be())
    }

    /// Bits of n.
    #[getter]
    fn bits(&self) -> u32 {
        self.inner.bits()
    }

    /// The key's fingerprint, as files and S1 show it.
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint().to_string()
    }

    /// Encrypts signed integers (already in fixed point, or any integer |m| < n/2); ciphertexts
    /// as big-endian bytes.
    fn encrypt_ints<'py>(
        &self,
        py: Python<'py>,
        values: Vec<String>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let values = parse_ints(&values)?;
        let cts = py.detach(|| -> Result<Vec<Vec<u8>>, paillier::Error> {
            let mut rng = rand::rngs::OsRng;
            values
                .iter()
                .map(|m| Ok(self.inner.encrypt(m, &mut rng)?.to_bytes_be()))
                .collect()
        });
        Ok(cts
            .map_err(err)?
            .iter()
            .map(|c| PyBytes::new(py, c))
            .collect())
    }

    fn __eq__(&self, other: &PublicKey) -> bool {
        self.inner == other.inner
    }

    fn __repr__(&self) -> String {
        format!(
            "PublicKey({} bits, fingerprint {})",
            self.inner.bits(),
            self.inner.fingerprint()
        )
    }
}

fn parse_ints(values: &[String]) -> PyResult<Vec<paillier::BigInt>> {
    values
        .iter()
        .map(|v| {
            v.parse::<paillier::BigInt>()
                .map_err(|_| SMLPError::new_err(format!("{v:?} is not an integer")))
        })
        .collect()
}

/// A Paillier secret key (the data owner's and S2's).
#[pyclass(frozen, module = "smlp._native")]
struct SecretKey {
    inner: paillier::SecretKey,
}

#[pymethods]
impl SecretKey {
    /// Generates a key pair with n of `bits` bits from the operating system's CSPRNG (at least
    /// 2048, or at least 256 with `insecure_test_key`: tests only, not secure).
    #[staticmethod]
    #[pyo3(signature = (bits = 2048, insecure_test_key = false))]
    fn generate(py: Python<'_>, bits: u32, insecure_test_key: bool) -> PyResult<Self> {
        let inner = cli(py.detach(|| smlp_client::keys::generate_key(bits, insecure_test_key)))?;
        Ok(SecretKey { inner })
    }

    /// Reads a secret key file (`KEYDIR/secret.key`).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(SecretKey {
            inner: cli(smlp_client::keys::load_secret(&path))?,
        })
    }

    /// The key of primes p and q (big-endian bytes), e.g. a python-paillier
    /// `PaillierPrivateKey`'s.
    #[staticmethod]
    fn from_primes(p: &[u8], q: &[u8]) -> PyResult<Self> {
        Ok(SecretKey {
            inner: paillier::SecretKey::from_primes(&biguint(p), &biguint(q)).map_err(err)?,
        })
    }

    /// Writes `dir/public.key` and `dir/secret.key` (0600) exactly as `smlp keygen` does.
    #[pyo3(signature = (dir, force = false))]
    fn save(&self, dir: PathBuf, force: bool) -> PyResult<(PathBuf, PathBuf)> {
        cli(smlp_client::keys::write_keys(&dir, &self.inner, force))
    }

    /// Writes only the secret key file (0600).
    fn save_secret(&self, path: PathBuf) -> PyResult<()> {
        write_file(&SECRET_KEY, &path, &self.inner).map_err(err)
    }

    /// The public key.
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.public_key().clone(),
        }
    }

    /// The primes (p, q), big-endian bytes.
    fn primes<'py>(&self, py: Python<'py>) -> (Bound<'py, PyBytes>, Bound<'py, PyBytes>) {
        let (p, q) = self.inner.primes();
        (
            PyBytes::new(py, &p.to_bytes_be()),
            PyBytes::new(py, &q.to_bytes_be()),
        )
    }

    /// Decrypts ciphertexts (big-endian bytes) to signed integers (decimal strings).
    fn decrypt_ints(&self, py: Python<'_>, cts: Vec<Vec<u8>>) -> PyResult<Vec<String>> {
        py.detach(|| {
            cts.iter()
                .map(|c| {
                    let c = Ciphertext::from_bytes_be(c);
                    Ok(self.inner.decrypt(&c)?.to_string())
                })
                .collect::<Result<Vec<_>, paillier::Error>>()
        })
        .map_err(err)
    }

    fn __repr__(&self) -> String {
        format!(
            "SecretKey({} bits, fingerprint {})",
            self.inner.public_key().bits(),
            self.inner.public_key().fingerprint()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The standardiser and the encrypted objects

/// The standardiser x ↦ (x − mean) / std fitted on the training data (the CLI's
/// `TRAIN.enc.scaler.json`).
#[pyclass(frozen, module = "smlp._native")]
#[derive(Clone)]
struct Scaler {
    inner: Standardizer,
}

#[pymethods]
impl Scaler {
    /// Reads a scaler JSON file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(Scaler {
            inner: Standardizer::load(&path).map_err(err)?,
        })
    }
    /// Parses the JSON text.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        Ok(Scaler {
            inner: Standardizer::from_json(text).map_err(err)?,
        })
    }
    /// Writes the JSON file (0600: it is derived from the owner's data).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        paillier::format::write_atomic(&path, self.inner.to_json().as_bytes(), true).map_err(err)
    }
    /// The JSON text.
    fn to_json(&self) -> String {
        self.inner.to_json()
    }
    /// Pickles as its JSON text.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        Ok((
            py.get_type::<Self>().getattr("from_json")?,
            (self.inner.to_json(),),
        ))
    }
    #[getter]
    fn mean(&self) -> Vec<f64> {
        self.inner.mean.clone()
    }
    #[getter]
    fn std(&self) -> Vec<f64> {
        self.inner.std.clone()
    }
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.inner.feature_names.clone()
    }
}

/// An encrypted data set (features and, for training data, targets), as `smlp encrypt` writes.
#[pyclass(frozen, module = "smlp._native")]
#[derive(Clone)]
struct EncryptedDataset {
    inner: Dataset_,
    /// The scaler the features were standardised with, when encrypted here.
    scaler: Option<Standardizer>,
    /// Whether that scaler was fitted on this data (then `save` writes it beside the file, as
    /// `smlp encrypt` does).
    fitted: bool,
}

impl EncryptedDataset {
    fn new(inner: Dataset_) -> Self {
        EncryptedDataset {
            inner,
            scaler: None,
            fitted: false,
        }
    }
}

#[pymethods]
impl EncryptedDataset {
    /// Reads a data set file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(EncryptedDataset::new(read_dataset(&path).map_err(err)?))
    }
    /// Parses the sealed bytes of a data set file.
    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        Ok(EncryptedDataset::new(open_dataset(bytes).map_err(err)?))
    }
    /// A data set of ciphertexts made elsewhere (e.g. by python-paillier): features `x` and
    /// targets `y` (one per sample, or none) per sample, as big-endian bytes, at scale 2^f.
    /// Every ciphertext and shape is checked under `public_key`.
    #[staticmethod]
    fn from_ciphertexts(
        py: Python<'_>,
        public_key: &PublicKey,
        x: Vec<Vec<Vec<u8>>>,
        y: Option<Vec<Vec<Vec<u8>>>>,
        classes: usize,
        frac_bits: u32,
    ) -> PyResult<Self> {
        let labelled = y.is_some();
        let to_ct = |v: &Vec<Vec<u8>>| -> Vec<Ciphertext> {
            v.iter().map(|c| Ciphertext::from_bytes_be(c)).collect()
        };
        let samples: Vec<EncryptedSample> = match &y {
            Some(y) if y.len() != x.len() => {
                return Err(SMLPError::new_err(format!(
                    "{} samples of features but {} of targets",
                    x.len(),
                    y.len()
                )))
            }
            Some(y) => x
                .iter()
                .zip(y)
                .map(|(x, y)| EncryptedSample {
                    x: to_ct(x),
                    y: to_ct(y),
                })
                .collect(),
            None => x
                .iter()
                .map(|x| EncryptedSample {
                    x: to_ct(x),
                    y: Vec::new(),
                })
                .collect(),
        };
        let inner = Dataset_ {
            fingerprint: public_key.inner.fingerprint(),
            frac_bits,
            classes,
            features: x.first().map_or(0, Vec::len),
            samples,
            settings: None,
        };
        py.detach(|| inner.check(&public_key.inner, labelled))
            .map_err(err)?;
        Ok(EncryptedDataset::new(inner))
    }
    /// The training settings recorded in the data set (JSON of `smlp::tune::Tuned`), or None.
    #[getter]
    fn settings(&self) -> PyResult<Option<String>> {
        self.inner
            .settings
            .as_ref()
            .map(|t| serde_json::to_string(t).map_err(err))
            .transpose()
    }
    /// Writes the data set file (0600) and, when the scaler was fitted on this data,
    /// `PATH.scaler.json`, as `smlp encrypt` does; returns the scaler's path.
    fn save(&self, path: PathBuf) -> PyResult<Option<PathBuf>> {
        let fitted = self.scaler.as_ref().filter(|_| self.fitted);
        cli(smlp_client::encrypt::save_dataset(
            &path,
            &self.inner,
            fitted,
        ))
    }
    /// The scaler the features were standardised with (when encrypted here).
    #[getter]
    fn scaler(&self) -> Option<Scaler> {
        self.scaler.clone().map(|inner| Scaler { inner })
    }
    /// The sealed file bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &seal(&DATASET, &self.inner).map_err(err)?))
    }
    /// Pickles as its sealed file bytes (the scaler travels separately: `scaler`).
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Reduced<'py>> {
        reduced::<Self>(py, self.to_bytes(py)?)
    }
    /// The ciphertexts: (features per sample, targets per sample), big-endian bytes.
    #[allow(clippy::type_complexity)]
    fn ciphertexts(&self) -> (Vec<Vec<Vec<u8>>>, Vec<Vec<Vec<u8>>>) {
        let bytes = |v: &[Ciphertext]| v.iter().map(Ciphertext::to_bytes_be).collect();
        (
            self.inner.samples.iter().map(|s| bytes(&s.x)).collect(),
            self.inner.samples.iter().map(|s| bytes(&s.y)).collect(),
        )
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    #[getter]
    fn features(&self) -> usize {
        self.inner.features
    }
    #[getter]
    fn classes(&self) -> usize {
        self.inner.classes
    }
    #[getter]
    fn frac_bits(&self) -> u32 {
        self.inner.frac_bits
    }
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint.to_string()
    }
    /// Whether the samples carry encrypted targets (training data).
    #[getter]
    fn labelled(&self) -> bool {
        self.inner.samples.first().is_some_and(|s| !s.y.is_empty())
    }
    fn __repr__(&self) -> String {
        format!(
            "EncryptedDataset({} samples, {} features, {} classes, f = {}, key {})",
            self.inner.len(),
            self.inner.features,
            self.inner.classes,
            self.inner.frac_bits,
            self.inner.fingerprint
        )
    }
}

/// What `__reduce__` returns for a class pickled as its sealed file bytes.
type Reduced<'py> = (Bound<'py, PyAny>, (Bound<'py, PyBytes>,));

/// `T.from_bytes(bytes)`, for pickle: a class whose state is its sealed file.
fn reduced<'py, T: pyo3::PyTypeInfo>(
    py: Python<'py>,
    bytes: Bound<'py, PyBytes>,
) -> PyResult<Reduced<'py>> {
    Ok((py.get_type::<T>().getattr("from_bytes")?, (bytes,)))
}

/// An encrypted model (weights under the owner's key), as `smlp fetch` writes.
#[pyclass(frozen, module = "smlp._native")]
#[derive(Clone)]
struct EncryptedModel {
    inner: Model_,
    /// How it was trained, when its file or trainer said.
    trained: Option<TrainRecord>,
}

impl EncryptedModel {
    /// A model whose file does not say how it was trained (yet).
    pub(crate) fn bare(inner: Model_) -> Self {
        EncryptedModel {
            inner,
            trained: None,
        }
    }

    fn file(&self) -> ModelFile {
        ModelFile {
            model: self.inner.clone(),
            trained: self.trained.clone(),
        }
    }
}

#[pymethods]
impl EncryptedModel {
    /// Reads a model file, or a checkpoint file (its model).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let bytes = std::fs::read(&path)
            .map_err(|e| SMLPError::new_err(format!("{}: {e}", path.display())))?;
        Self::from_bytes(&bytes)
    }
    /// Parses the sealed bytes of a model or checkpoint file.
    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        let file = match ModelFile::open(bytes) {
            Ok(f) => f,
            Err(e) => match open::<Checkpoint>(&CHECKPOINT, bytes) {
                Ok(c) => ModelFile {
                    model: c.model,
                    trained: Some(TrainRecord {
                        config: c.config,
                        origin: String::new(),
                    }),
                },
                Err(_) => return Err(err(e)),
            },
        };
        Ok(EncryptedModel {
            inner: file.model,
            trained: file.trained,
        })
    }
    /// Writes the model file (0600).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.file().write(&path).map_err(err)
    }
    /// The sealed model file's bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.file().seal().map_err(err)?))
    }
    /// How the model was trained and where its settings came from, one line (`None` when its
    /// file does not say): `hidden 8, batch 16, η 1/2^4, 2 epoch(s), smooth-hinge loss, seed 1 —
    /// …`.
    #[getter]
    fn settings(&self) -> Option<String> {
        self.file().describe()
    }
    /// The same model, recording that it was trained for `epochs` epochs in mini-batches of
    /// `batch` in the order of `seed` with `loss`, the settings coming from `origin`.
    #[pyo3(signature = (epochs, batch, seed, loss, origin = String::new()))]
    fn trained_with(
        &self,
        epochs: u64,
        batch: usize,
        seed: u64,
        loss: &str,
        origin: String,
    ) -> PyResult<Self> {
        let record = TrainRecord {
            config: TrainConfig {
                epochs,
                batch,
                seed,
                loss: parse_loss(loss)?,
            },
            origin,
        };
        record.check().map_err(err)?;
        Ok(EncryptedModel {
            inner: self.inner.clone(),
            trained: Some(record),
        })
    }
    /// Pickles as its sealed file bytes: ciphertexts under the owner's key, no secret.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Reduced<'py>> {
        reduced::<Self>(py, self.to_bytes(py)?)
    }
    /// Layer sizes [d, h1, ..., outputs].
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.inner.shape.sizes().to_vec()
    }
    #[getter]
    fn classes(&self) -> usize {
        self.inner.classes
    }
    #[getter]
    fn profile(&self) -> String {
        self.inner.profile.to_string()
    }
    #[getter]
    fn epochs_trained(&self) -> u64 {
        self.inner.epochs_trained
    }
    /// f, the fractional bits of the model's fixed point (a session for it uses the same).
    #[getter]
    fn frac_bits(&self) -> u32 {
        self.inner.fixed.frac_bits
    }
    /// ℓ, the value bound of the model's sessions.
    #[getter]
    fn value_bits(&self) -> u32 {
        self.inner.fixed.value_bits
    }
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint.to_string()
    }
    fn __repr__(&self) -> String {
        format!(
            "EncryptedModel({}, {} profile, {} epochs, key {})",
            self.inner.shape, self.inner.profile, self.inner.epochs_trained, self.inner.fingerprint
        )
    }
}

/// Encrypted predictions: the class (one-hot or one bit) and the scores of each sample.
#[pyclass(frozen, module = "smlp._native")]
#[derive(Clone)]
struct EncryptedPredictions {
    inner: Predictions_,
}

#[pymethods]
impl EncryptedPredictions {
    /// Reads a predictions file.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(EncryptedPredictions {
            inner: read_file(&PREDICTIONS, &path).map_err(err)?,
        })
    }
    /// Parses the sealed bytes of a predictions file.
    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        Ok(EncryptedPredictions {
            inner: open(&PREDICTIONS, bytes).map_err(err)?,
        })
    }
    /// Writes the predictions file (0600).
    fn save(&self, path: PathBuf) -> PyResult<()> {
        write_file(&PREDICTIONS, &path, &self.inner).map_err(err)
    }
    /// The encrypted scores per sample (big-endian bytes, scale 2^f).
    fn score_ciphertexts(&self) -> Vec<Vec<Vec<u8>>> {
        self.inner
            .scores
            .iter()
            .map(|v| v.iter().map(Ciphertext::to_bytes_be).collect())
            .collect()
    }
    fn __len__(&self) -> usize {
        self.inner.classes_enc.len()
    }
    #[getter]
    fn classes(&self) -> usize {
        self.inner.classes
    }
    #[getter]
    fn frac_bits(&self) -> u32 {
        self.inner.frac_bits
    }
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint.to_string()
    }
    fn __repr__(&self) -> String {
        format!(
            "EncryptedPredictions({} samples, {} classes, key {})",
            self.inner.classes_enc.len(),
            self.inner.classes,
            self.inner.fingerprint
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The owner's encryption and decryption

/// Samples encrypted between two returns to Python (progress, Ctrl-C).
const CHUNK: usize = 32;

/// Standardises (with `scaler`, or one fitted here), encodes and encrypts rows of features and,
/// for training data, labels: `smlp encrypt` on arrays. With the secret key, CRT encryption.
/// `progress(done, total)` is called between chunks.
#[pyfunction]
#[pyo3(signature = (key, features, feature_names, labels = None, classes = None, scaler = None,
                    frac_bits = 16, int_bits = DEFAULT_INT_BITS, progress = None, tune = "auto"))]
#[allow(clippy::too_many_arguments)]
fn encrypt(
    py: Python<'_>,
    key: &Bound<'_, PyAny>,
    features: Vec<Vec<f64>>,
    feature_names: Vec<String>,
    labels: Option<Vec<usize>>,
    classes: Option<usize>,
    scaler: Option<&Scaler>,
    frac_bits: u32,
    int_bits: u32,
    progress: Option<Py<PyAny>>,
    tune: Option<&str>,
) -> PyResult<EncryptedDataset> {
    let (pk, sk): (paillier::PublicKey, Option<Bound<'_, SecretKey>>) =
        if let Ok(sk) = key.cast::<SecretKey>() {
            (sk.get().inner.public_key().clone(), Some(sk.clone()))
        } else if let Ok(pk) = key.cast::<PublicKey>() {
            (pk.get().inner.clone(), None)
        } else {
            return Err(SMLPError::new_err("key must be a PublicKey or a SecretKey"));
        };
    let labelled = labels.is_some();
    let data = Dataset::from_rows(feature_names, features, labels, classes).map_err(err)?;
    let fitted = scaler.is_none();
    let scaler = match scaler {
        Some(s) => s.inner.clone(),
        None => Standardizer::fit(&data),
    };
    let sk_ref = sk.as_ref().map(|s| &s.get().inner);
    let total = data.len();
    let mut out: Option<Dataset_> = None;
    for start in (0..total).step_by(CHUNK) {
        let rows: Vec<usize> = (start..(start + CHUNK).min(total)).collect();
        let part = data.subset(&rows);
        let (ds, _) = cli(py.detach(|| {
            smlp_client::encrypt::encrypt_dataset(
                &pk,
                sk_ref,
                &part,
                Some(scaler.clone()),
                (frac_bits, int_bits),
                labelled,
                || {},
            )
        }))?;
        match &mut out {
            Some(o) => o.samples.extend(ds.samples),
            None => out = Some(ds),
        }
        if let Some(cb) = &progress {
            cb.call1(py, (rows.len() + start, total))?;
        }
        py.check_signals()?;
    }
    let mut inner = out.ok_or_else(|| SMLPError::new_err("no samples to encrypt"))?;
    // Training settings recorded in a training set (as `smlp encrypt`): "auto" (the defaults
    // with η chosen for the data), None (no settings: the defaults).
    inner.settings = match tune {
        Some("auto") if labelled && fitted && data.len() >= 2 * smlp::tune::AUTO_FOLDS => Some(
            py.detach(|| smlp::tune::auto(&data, None, smlp::tune::AUTO_FOLDS, 1))
                .map_err(err)?,
        ),
        Some("auto") | None => None,
        Some(other) => {
            return Err(SMLPError::new_err(format!(
                "tune {other:?}: expected \"auto\" or None"
            )))
        }
    };
    Ok(EncryptedDataset {
        inner,
        scaler: Some(scaler),
        fitted,
    })
}

/// Decrypts predictions: (classes, scores); scores are empty when the file holds none.
/// Cross-validates training settings on plaintext data (`smlp::tune`, as `smlp tune`): `x` rows,
/// `y` class indices 0..k, `settings` a JSON list of `smlp::tune::Setting`; settings are tried in
/// order until `seconds` have passed. A JSON list of the scored settings.
#[pyfunction]
#[pyo3(signature = (x, y, settings, folds = 3, seconds = 60.0, seed = 1))]
fn tune(
    py: Python<'_>,
    x: Vec<Vec<f64>>,
    y: Vec<usize>,
    settings: &str,
    folds: usize,
    seconds: f64,
    seed: u64,
) -> PyResult<String> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(SMLPError::new_err("seconds must be a positive number"));
    }
    let grid: Vec<smlp::tune::Setting> = serde_json::from_str(settings).map_err(err)?;
    let names = (0..x.first().map_or(0, Vec::len))
        .map(|i| format!("x{i}"))
        .collect();
    let data = smlp::data::Dataset::from_rows(names, x, Some(y), None).map_err(err)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let scored = py
        .detach(|| smlp::tune::tune(&data, &grid, folds, seed, deadline))
        .map_err(err)?;
    serde_json::to_string(&scored).map_err(err)
}

#[pyfunction]
fn decrypt_predictions(
    py: Python<'_>,
    secret_key: &SecretKey,
    predictions: &EncryptedPredictions,
) -> PyResult<(Vec<usize>, Vec<Vec<f64>>)> {
    let p = &predictions.inner;
    let sk = &secret_key.inner;
    py.detach(|| {
        let classes = p.decrypt_classes(sk)?;
        let scores = if p.scores.is_empty() {
            Vec::new()
        } else {
            p.decrypt_scores(sk)?
        };
        Ok((classes, scores))
    })
    .map_err(|e: smlp::encrypted::SecureError| err(e))
}

/// Decrypts a model to the JSON of `smlp decrypt` (shape, parameters, weights as reals and raw
/// integers).
#[pyfunction]
fn decrypt_model(
    py: Python<'_>,
    secret_key: &SecretKey,
    model: &EncryptedModel,
) -> PyResult<String> {
    let json =
        cli(py.detach(|| smlp_client::decrypt::model_json(&secret_key.inner, &model.file())))?;
    serde_json::to_string(&json).map_err(err)
}

/// Decrypts a data set: (standardised features per sample, labels per sample or None).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn decrypt_dataset(
    py: Python<'_>,
    secret_key: &SecretKey,
    dataset: &EncryptedDataset,
) -> PyResult<(Vec<Vec<f64>>, Option<Vec<Vec<f64>>>)> {
    let d = &dataset.inner;
    let scale = f64::from(d.frac_bits).exp2();
    let samples = py.detach(|| d.decrypt(&secret_key.inner)).map_err(err)?;
    let real = |v: &[i64]| -> Vec<f64> { v.iter().map(|&m| m as f64 / scale).collect() };
    let labelled = samples.first().is_some_and(|(_, y)| !y.is_empty());
    let x = samples.iter().map(|(x, _)| real(x)).collect();
    let y = labelled.then(|| samples.iter().map(|(_, y)| real(y)).collect());
    Ok((x, y))
}

// ---------------------------------------------------------------------------------------------
// The client of S1

/// A connection to S1 as one owner (mutually authenticated TLS with the owner's certificate of
/// the deployment PKI), over which any number of requests go. Results are JSON texts of the
/// protocol's `ObjectInfo` and `JobInfo`.
#[pyclass(module = "smlp._native")]
struct Client {
    conn: S1Args,
    inner: Mutex<Option<Client_>>,
}

impl Client {
    /// Runs `f` on the connection, connecting first when there is none; a failed request drops
    /// the connection, so that the next call connects afresh (S1 may have restarted).
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Client_) -> Result<T, CliError> + Send,
    ) -> PyResult<T> {
        let conn = &self.conn;
        let inner = &self.inner;
        cli(py.detach(|| {
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            let c = match guard.as_mut() {
                Some(c) => c,
                None => guard.insert(Client_::connect(conn)?),
            };
            let r = f(c);
            if r.is_err() {
                *guard = None;
            }
            r
        }))
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, CliError> {
    serde_json::to_string(v).map_err(CliError::from)
}

#[pymethods]
impl Client {
    /// Connects to S1 at `s1` with the credentials `pki/owner-OWNER.{crt,key}` and
    /// `pki/ca.crt`. `s1_name`: the name S1's certificate must carry (default: the host of
    /// `s1`); `timeout_secs`: how long to wait for S1's answer.
    #[new]
    #[pyo3(signature = (s1, pki, owner = "owner".to_string(), s1_name = None, timeout_secs = 600))]
    fn new(
        py: Python<'_>,
        s1: String,
        pki: PathBuf,
        owner: String,
        s1_name: Option<String>,
        timeout_secs: u64,
    ) -> PyResult<Self> {
        let conn = S1Args {
            s1,
            timeout_secs,
            reconnect_secs: 0,
            quiet: true,
            owner,
            s1_name,
            tls: TlsArgs {
                pki: Some(pki),
                ..TlsArgs::default()
            },
        };
        let c = cli(py.detach(|| Client_::connect(&conn)))?;
        Ok(Client {
            conn,
            inner: Mutex::new(Some(c)),
        })
    }

    /// The public keys this owner registered at S1 (from the handshake).
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<PublicKey>> {
        let keys = self.with(py, |c| Ok(c.keys().to_vec()))?;
        Ok(keys.into_iter().map(|inner| PublicKey { inner }).collect())
    }

    /// Registers one of this owner's public keys at S1 (nothing happens if it already is).
    fn register(&self, py: Python<'_>, public_key: &PublicKey) -> PyResult<String> {
        let pk = public_key.inner.clone();
        self.with(py, |c| c.register(&pk))
    }

    /// Uploads a data set; S1 keeps it. ObjectInfo JSON.
    fn upload(&self, py: Python<'_>, data: &EncryptedDataset, name: String) -> PyResult<String> {
        let d = data.inner.clone();
        self.with(py, |c| json(&c.upload(&name, d)?))
    }

    /// Uploads a model. ObjectInfo JSON.
    fn upload_model(
        &self,
        py: Python<'_>,
        model: &EncryptedModel,
        name: String,
    ) -> PyResult<String> {
        let m = model.file();
        self.with(py, |c| json(&c.upload_model(&name, m)?))
    }

    /// Submits a training job on the stored data set `dataset`. Each setting left `None` is the
    /// data set's recorded one, else the default (`smlp_client::client::resolve_spec`, as `smlp
    /// train`). (JobInfo JSON, the line saying where the settings came from.)
    #[pyo3(signature = (dataset, hidden = None, epochs = None, batch = None, seed = None,
                        lr_num = None, lr_shift = None, value_bits = None, profile = "strict",
                        kappa = 80, init_seed = None, loss = None))]
    #[allow(clippy::too_many_arguments)]
    fn train(
        &self,
        py: Python<'_>,
        dataset: String,
        hidden: Option<Vec<usize>>,
        epochs: Option<u64>,
        batch: Option<usize>,
        seed: Option<u64>,
        lr_num: Option<u32>,
        lr_shift: Option<u32>,
        value_bits: Option<u32>,
        profile: &str,
        kappa: u32,
        init_seed: Option<u64>,
        loss: Option<&str>,
    ) -> PyResult<(String, String)> {
        let given = TrainOverrides {
            hidden,
            epochs,
            batch,
            seed,
            loss: loss.map(parse_loss).transpose()?,
            lr_num,
            lr_shift,
            value_bits,
            profile: Some(parse_profile(profile)?),
            kappa,
            init_seed,
        };
        self.with(py, |c| {
            let (dims, pk, recorded) = c.dataset_dims(&dataset)?;
            let (spec, origin) = resolve_spec(&given, None, None, recorded.as_ref())?;
            let line = format!("{} — {origin}", spec.describe());
            let req = train_request(&pk, dataset, dims, spec, origin, None)?;
            Ok((json(&c.submit(ClientMsg::Train(Box::new(req)))?)?, line))
        })
    }

    /// Submits a classification job: stored model and data set ids. JobInfo JSON.
    #[pyo3(signature = (model, data, chunk = 32, profile = None, kappa = 80))]
    fn classify(
        &self,
        py: Python<'_>,
        model: String,
        data: String,
        chunk: usize,
        profile: Option<&str>,
        kappa: u32,
    ) -> PyResult<String> {
        let profile = profile.map(parse_profile).transpose()?;
        self.with(py, |c| {
            let req = ClassifyRequest {
                model,
                data,
                kappa,
                profile,
                chunk: chunk.max(1),
            };
            json(&c.submit(ClientMsg::Classify(Box::new(req)))?)
        })
    }

    /// The owner's jobs. JSON list of JobInfo.
    fn jobs(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |c| json(&c.jobs()?))
    }

    /// An object or a job's result (`checkpoint`: a training job's latest checkpoint):
    /// (kind, sealed bytes); kind is "dataset", "model", "predictions" or "checkpoint".
    #[pyo3(signature = (id, checkpoint = false))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        id: String,
        checkpoint: bool,
    ) -> PyResult<(String, Bound<'py, PyBytes>)> {
        let (info, body) = self.with(py, |c| c.fetch(&id, checkpoint))?;
        let kind = if checkpoint {
            "checkpoint"
        } else {
            match info.kind {
                ObjectKind::Dataset => "dataset",
                ObjectKind::Model => "model",
                ObjectKind::Predictions => "predictions",
            }
        };
        Ok((kind.to_string(), PyBytes::new(py, &body)))
    }

    /// Cancels a queued or running job; S1's confirmation.
    fn cancel(&self, py: Python<'_>, job: String) -> PyResult<String> {
        self.with(py, |c| c.cancel(&job))
    }

    /// Deletes an object or an ended job; S1's confirmation.
    fn delete(&self, py: Python<'_>, id: String) -> PyResult<String> {
        self.with(py, |c| c.delete(&id))
    }

    /// Lets the owner `with_` classify with our model (`allow`), or stops it; S1's confirmation.
    fn share(&self, py: Python<'_>, model: String, with_: String, allow: bool) -> PyResult<String> {
        self.with(py, |c| c.share(&model, &with_, allow))
    }

    /// The owner's "datasets", "models" or "predictions". JSON list of ObjectInfo.
    fn list(&self, py: Python<'_>, what: &str) -> PyResult<String> {
        let kind = match what {
            "datasets" | "dataset" => ObjectKind::Dataset,
            "models" | "model" => ObjectKind::Model,
            "predictions" => ObjectKind::Predictions,
            other => {
                return Err(SMLPError::new_err(format!(
                    "list what? {other:?} (datasets, models or predictions)"
                )))
            }
        };
        self.with(py, |c| json(&c.list(kind)?))
    }

    /// Closes the connection (the next call reconnects).
    fn close(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A loss by name: `smlp::Loss`'s parser, the one place that knows the names.
fn parse_loss(l: &str) -> PyResult<Loss> {
    l.parse()
        .map_err(|e: smlp::Error| SMLPError::new_err(e.to_string()))
}

/// A profile by name: `secure_ops::Profile`'s parser, the one place that knows the names.
fn parse_profile(p: &str) -> PyResult<secure_ops::Profile> {
    p.parse().map_err(SMLPError::new_err)
}

// ---------------------------------------------------------------------------------------------
// The command line

/// Runs the `smlp` command line on `argv` (program name first) and returns its exit status.
/// `self_command` is how the tool starts itself (the demo's servers), e.g.
/// `[sys.executable, "-m", "smlp"]`. Only in builds with the `cli` feature (the default).
#[cfg(feature = "cli")]
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<String>, self_command: Vec<String>) -> i32 {
    smlp_cli::set_self_command(self_command.into_iter().map(Into::into).collect());
    let code = py.detach(|| smlp_cli::run(argv));
    // ExitCode has no accessor; the tool's statuses are 0, 1, 2 (usage) and 3 (cancelled).
    for c in [0u8, 1, 2, 3] {
        if code == std::process::ExitCode::from(c) {
            return i32::from(c);
        }
    }
    1
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SMLPError", m.py().get_type::<SMLPError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "BACKEND",
        if cfg!(feature = "gmp") {
            "gmp"
        } else {
            "num-bigint"
        },
    )?;
    m.add("FAST_WARNING", secure_ops::Profile::FAST_LEAKAGE)?;
    // The training defaults (smlp::defaults), for the Python package's signatures.
    let defaults = pyo3::types::PyDict::new(m.py());
    defaults.set_item("hidden", smlp::defaults::HIDDEN.to_vec())?;
    defaults.set_item("epochs", smlp::defaults::EPOCHS)?;
    defaults.set_item("batch", smlp::defaults::BATCH)?;
    defaults.set_item("learning_rate", smlp::defaults::LEARNING_RATE.value())?;
    defaults.set_item(
        "loss",
        match smlp::defaults::LOSS {
            Loss::SmoothHinge => "smooth_hinge",
            Loss::Squared => "squared",
        },
    )?;
    defaults.set_item("seed", smlp::defaults::SEED)?;
    defaults.set_item("value_bits", smlp::defaults::VALUE_BITS)?;
    m.add("DEFAULTS", defaults)?;
    m.add_class::<PublicKey>()?;
    m.add_class::<SecretKey>()?;
    m.add_class::<Scaler>()?;
    m.add_class::<EncryptedDataset>()?;
    m.add_class::<EncryptedModel>()?;
    m.add_class::<EncryptedPredictions>()?;
    m.add_class::<Client>()?;
    m.add_function(wrap_pyfunction!(encrypt, m)?)?;
    m.add_class::<worker::S1Worker>()?;
    m.add_function(wrap_pyfunction!(worker::apply_gradients, m)?)?;
    m.add_function(wrap_pyfunction!(worker::concat_predictions, m)?)?;
    m.add_function(wrap_pyfunction!(worker::save_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(worker::resume_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(worker::epoch_order, m)?)?;
    m.add_function(wrap_pyfunction!(worker::initial_model, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_predictions, m)?)?;
    m.add_function(wrap_pyfunction!(tune, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_model, m)?)?;
    m.add_function(wrap_pyfunction!(decrypt_dataset, m)?)?;
    #[cfg(feature = "cli")]
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    Ok(())
}
