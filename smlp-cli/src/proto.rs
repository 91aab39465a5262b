//! The client ↔ S1 protocol: postcard messages ([`transport::ChannelExt`]) over a
//! length-prefixed, mutually authenticated [`transport::TlsChannel`].
//!
//! ```text
//! client                                   S1
//!   Hello { version }                  →
//!                                      ←   Welcome { version, public_key }   (or Error)
//!   Train(TrainRequest)                →   S1 opens its own session to S2
//!                                      ←   Started { start_epoch, epochs, samples }
//!                                      ←   Progress { .. }        (repeated, throttled)
//!                                      ←   Checkpoint(..)         (after every epoch)
//!                                      ←   Trained { model, costs, .. }
//! or
//!   Classify(ClassifyRequest)          →
//!                                      ←   Started { .. }, Progress { .. } ...
//!                                      ←   Classified { predictions, costs, .. }
//! ```
//!
//! Any failure on S1's side (S2 unreachable, wrong key, mismatched checkpoint, overflow detected by
//! S2, ...) ends the exchange with `Error(message)`. One request per connection.
//!
//! The client learns S1's public key from `Welcome` and checks it against the fingerprint in its
//! files before uploading anything; it uses the key only to encrypt owner-chosen initial weights
//! (`--init-seed`).

use paillier::{Ciphertext, PublicKey};
use secure_ops::Profile;
use serde::{Deserialize, Serialize};
use smlp::encrypted::{
    Checkpoint, Costs, EncryptedDataset, EncryptedModel, EncryptedPredictions, TrainConfig,
};
use smlp::{FixedParams, Params};

/// Version of this protocol; both sides must agree.
pub const VERSION: u16 = 1;

/// Messages from the client to S1.
#[derive(Debug, Serialize, Deserialize)]
pub enum ClientMsg {
    /// Opens the exchange.
    Hello {
        /// [`VERSION`] of the client.
        version: u16,
    },
    /// Train a model on an encrypted data set.
    Train(Box<TrainRequest>),
    /// Classify an encrypted data set with an encrypted model.
    Classify(Box<ClassifyRequest>),
}

/// What to train.
#[derive(Debug, Serialize, Deserialize)]
pub struct TrainRequest {
    /// The encrypted training data (with targets).
    pub data: EncryptedDataset,
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
    /// Owner-supplied encrypted initial weights; `None`: S2 draws them (nobody sees them).
    pub initial: Option<Params<Ciphertext>>,
    /// Continue from this checkpoint instead of starting afresh.
    pub resume: Option<Checkpoint>,
}

/// What to classify.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClassifyRequest {
    /// The encrypted model.
    pub model: EncryptedModel,
    /// The encrypted samples (targets, if any, are ignored).
    pub data: EncryptedDataset,
    /// Statistical security parameter κ of the blinding.
    pub kappa: u32,
    /// Profile of the session; `None`: the model's.
    pub profile: Option<Profile>,
    /// Samples per forward pass (one S2 round trip per layer and chunk).
    pub chunk: usize,
}

/// Messages from S1 to the client.
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerMsg {
    /// Reply to `Hello`.
    Welcome {
        /// [`VERSION`] of S1.
        version: u16,
        /// The public key S1 works under.
        public_key: PublicKey,
    },
    /// The request was accepted and S2 answered the handshake; work begins.
    Started {
        /// First epoch to run (0, or the checkpoint's epoch count).
        start_epoch: u64,
        /// Total epochs (1 for classification).
        epochs: u64,
        /// Samples per epoch.
        samples: usize,
    },
    /// Progress within the current epoch.
    Progress {
        /// Current epoch (0-based).
        epoch: u64,
        /// Total epochs.
        epochs: u64,
        /// Samples done in this epoch.
        done: usize,
        /// Samples per epoch.
        total: usize,
        /// Milliseconds since work began.
        elapsed_ms: u64,
    },
    /// The model at the end of an epoch.
    Checkpoint(Box<Checkpoint>),
    /// Training finished.
    Trained {
        /// The trained model.
        model: Box<EncryptedModel>,
        /// Operations and traffic of the S1–S2 session.
        costs: Costs,
        /// Milliseconds of training (after `Started`).
        elapsed_ms: u64,
    },
    /// Classification finished.
    Classified {
        /// The encrypted predictions.
        predictions: Box<EncryptedPredictions>,
        /// Operations and traffic of the S1–S2 session.
        costs: Costs,
        /// Milliseconds of classification (after `Started`).
        elapsed_ms: u64,
    },
    /// The request failed.
    Error(String),
}
