//! The client ↔ S1 protocol: postcard messages ([`transport::ChannelExt`]) over a
//! length-prefixed, mutually authenticated [`transport::TlsChannel`].
//!
//! ```text
//! client                                   S1
//!   Hello { version }                  →
//!                                      ←   Welcome { version, keys }   (or Error)
//! then any number of requests, each answered before the next:
//!   Register { public_key }            ←→  Done(message)              the owner's own key
//!   Upload { name, data }              ←→  Stored(ObjectInfo)         a data set kept at S1
//!   UploadModel { name, model }        ←→  Stored(ObjectInfo)
//!   Train(TrainRequest)                ←→  Submitted(JobInfo)         queued; runs without us
//!   Classify(ClassifyRequest)          ←→  Submitted(JobInfo)
//!   Jobs                               ←→  JobList(..)
//!   Watch { job }                      ←   Status(JobInfo) ... until the job has ended
//!   Fetch { id, checkpoint }           ←→  Object { info, body }      sealed file bytes
//!   List { kind }                      ←→  Objects(..)
//!   Share { model, with, allow }       ←→  Done(message)              another owner may classify
//!   Cancel { job } / Delete { id }     ←→  Done(message)
//! ```
//!
//! Any refused request is answered with `Error(message)`; the connection stays usable. Objects
//! and jobs are the owner's (the identity of its TLS certificate): another owner's id is "not
//! found", exactly like an unknown one.
//!
//! Every owner works under its own Paillier key (the tenants issue): it registers the public half
//! once (`smlp register`), and S1 accepts its data sets and models only under a key it registered,
//! runs each job under the key of its inputs, and never mixes keys in one computation. A key
//! belongs to the first owner who registers it. `Welcome` lists the owner's registered keys; the
//! client checks every fetched file against them and uses them only to encrypt owner-chosen
//! initial weights (`--init-seed`).

use paillier::{Ciphertext, PublicKey};
use secure_ops::{Profile, SessionParams};
use serde::{Deserialize, Serialize};
use smlp::encrypted::{
    Checkpoint, EncryptedDataset, EncryptedModel, ModelFile, TrainConfig, TrainRecord,
};
use smlp::{FixedParams, Params};

/// Version of this protocol; both sides must agree. 2: stored objects and jobs; 3: the loss in
/// a training job's configuration; 4: a key per owner (`Register`, the owner's keys in
/// `Welcome`); 5: where a job's settings came from (`TrainRequest::origin`, `JobInfo::settings`)
/// and uploaded models with how they were trained ([`ModelFile`]).
pub const VERSION: u16 = 5;

/// Messages from the client to S1.
#[derive(Debug, Serialize, Deserialize)]
pub enum ClientMsg {
    /// Opens the exchange.
    Hello {
        /// [`VERSION`] of the client.
        version: u16,
    },
    /// Register one of the owner's public keys (its data sets and models are encrypted under it).
    Register {
        /// The public key.
        public_key: PublicKey,
    },
    /// Keep an encrypted data set at S1 (an identical one of the same owner is reused).
    Upload {
        /// A name for listings.
        name: String,
        /// The data set.
        data: Box<EncryptedDataset>,
    },
    /// Keep an encrypted model at S1.
    UploadModel {
        /// A name for listings.
        name: String,
        /// The model and how it was trained, if its file says.
        model: Box<ModelFile>,
    },
    /// Queue a training job.
    Train(Box<TrainRequest>),
    /// Queue a classification job.
    Classify(Box<ClassifyRequest>),
    /// The owner's jobs.
    Jobs,
    /// Status updates of a job until it ends.
    Watch {
        /// Job id.
        job: String,
    },
    /// An object (data set, model, predictions) or a job's result.
    Fetch {
        /// Object or job id.
        id: String,
        /// For a training job: its latest checkpoint instead of the final model.
        checkpoint: bool,
    },
    /// The owner's objects of one kind.
    List {
        /// Which kind.
        kind: ObjectKind,
    },
    /// Let another owner classify with one of our models (under its own key, through S2's key
    /// switching), or stop letting it.
    Share {
        /// Model id.
        model: String,
        /// The other owner's name (its certificate's).
        with: String,
        /// `false`: end the share.
        allow: bool,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// Job id.
        job: String,
    },
    /// Delete an object, or an ended job.
    Delete {
        /// Object or job id.
        id: String,
    },
}

/// What to train.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainRequest {
    /// Id of the stored, labelled training data set.
    pub dataset: String,
    /// Hidden layer sizes (the input and output sizes come from the data).
    pub hidden: Vec<usize>,
    /// Fixed-point parameters (f must equal the data's).
    pub fixed: FixedParams,
    /// Epochs (total, counting those of a resumed checkpoint), batch size, order seed.
    pub config: TrainConfig,
    /// Protocol profile of the S1–S2 session.
    pub profile: Profile,
    /// Statistical security parameter κ of the blinding.
    pub kappa: u32,
    /// Owner-supplied encrypted initial weights; `None`: S2 and S1 draw them (nobody sees them).
    pub initial: Option<Params<Ciphertext>>,
    /// Continue from this checkpoint instead of starting afresh.
    pub resume: Option<Checkpoint>,
    /// Where the settings came from, for people (`resolve_spec`'s line; at most
    /// [`smlp::encrypted::MAX_ORIGIN_BYTES`]): S1 keeps it in the job record and the model file.
    pub origin: String,
}

/// What to classify.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifyRequest {
    /// Id of the stored model.
    pub model: String,
    /// Id of the stored data set of samples (labels, if any, are ignored).
    pub data: String,
    /// Statistical security parameter κ of the blinding.
    pub kappa: u32,
    /// Profile of the session; `None`: the model's.
    pub profile: Option<Profile>,
    /// Samples per forward pass (one S2 round trip per layer and chunk).
    pub chunk: usize,
}

impl TrainRequest {
    /// The job's settings and where they came from, one line for its record.
    pub fn settings_line(&self) -> String {
        self.record().describe(self.hidden.clone(), self.fixed.lr)
    }

    /// How a model of this job was trained, for its file.
    pub fn record(&self) -> TrainRecord {
        TrainRecord {
            config: self.config.clone(),
            origin: self.origin.clone(),
        }
    }

    /// The S1–S2 session this job runs in (checked at submission, used by the runner).
    pub fn session(&self) -> SessionParams {
        SessionParams {
            value_bits: self.fixed.value_bits,
            frac_bits: self.fixed.frac_bits,
            kappa: self.kappa,
            profile: self.profile,
            ..SessionParams::default()
        }
    }
}

impl ClassifyRequest {
    /// The S1–S2 session this job runs in with `model` (checked at submission, used by the
    /// runner): the model's ℓ and f, the request's κ and profile (default: the model's).
    pub fn session(&self, model: &EncryptedModel) -> SessionParams {
        SessionParams {
            value_bits: model.fixed.value_bits,
            frac_bits: model.fixed.frac_bits,
            kappa: self.kappa,
            profile: self.profile.unwrap_or(model.profile),
            ..SessionParams::default()
        }
    }
}

/// The id prefix of a job (`job-…`); objects' prefixes are [`ObjectKind::prefix`].
pub const JOB_PREFIX: &str = "job";

/// Whether `s` has the form of an id at S1 (`ds-`, `md-`, `pr-`, `job-` and 12 hex digits):
/// what S1 accepts as an id, and what the client takes for an id rather than a file name.
pub fn looks_like_id(s: &str) -> bool {
    let Some((prefix, hex)) = s.split_once('-') else {
        return false;
    };
    (prefix == JOB_PREFIX || ObjectKind::from_prefix(prefix).is_some())
        && hex.len() == 12
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Kinds of stored objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    /// An encrypted data set (`ds-…`).
    Dataset,
    /// An encrypted model (`md-…`).
    Model,
    /// Encrypted predictions (`pr-…`).
    Predictions,
}

impl ObjectKind {
    /// The id prefix and database name.
    pub fn prefix(self) -> &'static str {
        match self {
            ObjectKind::Dataset => "ds",
            ObjectKind::Model => "md",
            ObjectKind::Predictions => "pr",
        }
    }
    /// From the database name.
    pub fn from_prefix(s: &str) -> Option<Self> {
        Some(match s {
            "ds" => ObjectKind::Dataset,
            "md" => ObjectKind::Model,
            "pr" => ObjectKind::Predictions,
            _ => return None,
        })
    }
    /// For messages.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Dataset => "data set",
            ObjectKind::Model => "model",
            ObjectKind::Predictions => "predictions",
        }
    }
}

/// A stored object, as listed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectInfo {
    /// Id (`ds-…`, `md-…`, `pr-…`).
    pub id: String,
    /// Kind.
    pub kind: ObjectKind,
    /// Name given by the owner or the job that made it.
    pub name: String,
    /// One-line description (samples, network, ...).
    pub summary: String,
    /// Size of the stored body.
    pub bytes: u64,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

/// States of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for a free slot.
    Queued,
    /// Running (or waiting for S2 to come back).
    Running,
    /// Finished; the result is stored.
    Done,
    /// Ended with an error.
    Failed,
    /// Cancelled by the owner.
    Cancelled,
}

impl JobState {
    /// Database name.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
    /// From the database name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
    /// Whether the job has ended.
    pub fn ended(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// Kinds of jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// Training.
    Train,
    /// Classification.
    Classify,
}

impl JobKind {
    /// Database name.
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Train => "train",
            JobKind::Classify => "classify",
        }
    }
    /// From the database name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "train" => JobKind::Train,
            "classify" => JobKind::Classify,
            _ => return None,
        })
    }
}

/// A job, as listed and watched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobInfo {
    /// Id (`job-…`).
    pub id: String,
    /// Kind.
    pub kind: JobKind,
    /// State.
    pub state: JobState,
    /// Current epoch (0-based; 0 for classification).
    pub epoch: u64,
    /// Total epochs (1 for classification).
    pub epochs: u64,
    /// Samples done in the current epoch.
    pub done: u64,
    /// Samples per epoch.
    pub samples: u64,
    /// Throughput of the current run of the job (0 when unknown).
    pub samples_per_s: f64,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// When it first started running.
    pub started: Option<u64>,
    /// When it ended.
    pub finished: Option<u64>,
    /// Why it failed, or what it is waiting for (S2 unreachable, ...).
    pub note: Option<String>,
    /// The stored result (model or predictions) once done.
    pub result: Option<String>,
    /// Once done: milliseconds of work of its last run (after the S2 handshake).
    pub elapsed_ms: Option<u64>,
    /// Once done: operations and traffic of its last run's S1–S2 session.
    pub costs: Option<smlp::encrypted::Costs>,
    /// A training job's settings and where they came from (as its owner's client resolved them).
    pub settings: Option<String>,
}

impl JobInfo {
    /// Samples still to process.
    pub fn remaining(&self) -> u64 {
        let left_epochs = self.epochs.saturating_sub(self.epoch);
        (left_epochs.saturating_mul(self.samples)).saturating_sub(self.done)
    }
    /// Estimated seconds to the end, from the current throughput.
    pub fn eta_secs(&self) -> Option<f64> {
        (self.state == JobState::Running && self.samples_per_s > 0.0)
            .then(|| self.remaining() as f64 / self.samples_per_s)
    }
}

/// Messages from S1 to the client.
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Reply to `Hello`.
    Welcome {
        /// [`VERSION`] of S1.
        version: u16,
        /// The public keys this owner registered, oldest first.
        keys: Vec<PublicKey>,
    },
    /// An upload was stored (or an identical object reused).
    Stored(ObjectInfo),
    /// A job was queued.
    Submitted(JobInfo),
    /// The owner's jobs, oldest first.
    JobList(Vec<JobInfo>),
    /// A watched job's status (the last one has an ended state).
    Status(JobInfo),
    /// A fetched object: its sealed file bytes (`smlp` file format of its kind).
    Object {
        /// What it is.
        info: ObjectInfo,
        /// The file's bytes (for a checkpoint: a checkpoint file).
        body: Vec<u8>,
    },
    /// The owner's objects of one kind, oldest first.
    Objects(Vec<ObjectInfo>),
    /// A request without data in its answer succeeded.
    Done(String),
    /// The request failed.
    Error(String),
}

/// What earlier versions stored, to upgrade an S1 store in place (`crate::store`): version 2 of
/// this protocol and of the checkpoint file had no loss in a run's configuration (those runs
/// followed the squared loss); versions 3 and 4 no origin of a job's settings.
pub mod legacy {
    use super::*;
    use paillier::format::{open, seal, FileKind};
    use smlp::encrypted::CHECKPOINT;
    use smlp::Loss;

    /// A checkpoint file of version 2.
    const CHECKPOINT_V2: FileKind = FileKind {
        version: 2,
        ..CHECKPOINT
    };

    #[derive(Deserialize)]
    struct TrainConfigV2 {
        epochs: u64,
        batch: usize,
        seed: u64,
    }

    impl From<TrainConfigV2> for TrainConfig {
        fn from(c: TrainConfigV2) -> Self {
            TrainConfig {
                epochs: c.epochs,
                batch: c.batch,
                seed: c.seed,
                loss: Loss::Squared,
            }
        }
    }

    #[derive(Deserialize)]
    struct CheckpointV2 {
        model: EncryptedModel,
        config: TrainConfigV2,
        position: usize,
    }

    impl From<CheckpointV2> for Checkpoint {
        fn from(c: CheckpointV2) -> Self {
            Checkpoint {
                model: c.model,
                config: c.config.into(),
                position: c.position,
            }
        }
    }

    #[derive(Deserialize)]
    struct TrainRequestV2 {
        dataset: String,
        hidden: Vec<usize>,
        fixed: FixedParams,
        config: TrainConfigV2,
        profile: Profile,
        kappa: u32,
        initial: Option<Params<Ciphertext>>,
        resume: Option<CheckpointV2>,
    }

    /// A stored training request of protocol version 2 (postcard), re-encoded for this version
    /// with the squared loss it was trained with.
    pub fn upgrade_train_request(bytes: &[u8]) -> Result<Vec<u8>, postcard::Error> {
        let old: TrainRequestV2 = postcard::from_bytes(bytes)?;
        postcard::to_stdvec(&TrainRequest {
            dataset: old.dataset,
            hidden: old.hidden,
            fixed: old.fixed,
            config: old.config.into(),
            profile: old.profile,
            kappa: old.kappa,
            initial: old.initial,
            resume: old.resume.map(Checkpoint::from),
            origin: String::new(),
        })
    }

    #[derive(Deserialize)]
    struct TrainRequestV4 {
        dataset: String,
        hidden: Vec<usize>,
        fixed: FixedParams,
        config: TrainConfig,
        profile: Profile,
        kappa: u32,
        initial: Option<Params<Ciphertext>>,
        resume: Option<Checkpoint>,
    }

    /// A stored training request of protocol versions 3 and 4, re-encoded for this version
    /// (no word on where its settings came from).
    pub fn upgrade_train_request_v4(bytes: &[u8]) -> Result<Vec<u8>, postcard::Error> {
        let old: TrainRequestV4 = postcard::from_bytes(bytes)?;
        postcard::to_stdvec(&TrainRequest {
            dataset: old.dataset,
            hidden: old.hidden,
            fixed: old.fixed,
            config: old.config,
            profile: old.profile,
            kappa: old.kappa,
            initial: old.initial,
            resume: old.resume,
            origin: String::new(),
        })
    }

    /// A sealed checkpoint file of version 2, sealed again as the current version (the squared
    /// loss in its configuration).
    pub fn upgrade_checkpoint(sealed: &[u8]) -> paillier::Result<Vec<u8>> {
        let old: CheckpointV2 = open(&CHECKPOINT_V2, sealed)?;
        seal(&CHECKPOINT, &Checkpoint::from(old))
    }
}
