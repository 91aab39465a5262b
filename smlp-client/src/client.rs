//! The data owner's commands that talk to S1: `upload`, `train`, `jobs`, `wait`, `fetch`,
//! `cancel`, `classify`, `list`, `delete`.
//!
//! S1 keeps what it is given (encrypted data sets and models) and runs jobs on its own: `train`
//! and `classify` submit a job and, unless `--detach`, wait for it with a progress bar and fetch
//! the result. A dropped connection (a laptop that sleeps, Ctrl-C) does not stop the job: `smlp
//! wait JOB` picks it up again, `smlp fetch JOB` gets its result.

use crate::bail;
use crate::error::{CliError, CliResult};
use crate::proto::{
    looks_like_id, ClassifyRequest, ClientMsg, JobInfo, JobKind, JobState, ObjectInfo, ObjectKind,
    ServerMsg, TrainRequest, VERSION,
};
use crate::util::{bytes, sample_bar, secs, show_progress};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use paillier::format::{open, read_file, write_atomic};
use paillier::PublicKey;
use rand::SeedableRng;
use secure_ops::Profile;
use smlp::encrypted::{
    encrypt_params, Checkpoint, Costs, EncryptedDataset, EncryptedModel, EncryptedPredictions,
    TrainConfig, CHECKPOINT, MODEL, PREDICTIONS,
};
use smlp::encrypted::{open_dataset, read_dataset};
use smlp::tune::Tuned;
use smlp::{init_fixed, FixedParams, LearningRate, Loss, Shape};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use transport::{tls, ChannelError, ChannelExt, MessageError, Role, TcpOptions, TlsChannel};

/// Protocol profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// One-round SecReLU and stochastic truncation: faster; S2 learns roughly the bit length of
    /// the values it compares.
    Fast,
    /// DGK comparisons and exact truncation: slower; S2 learns nothing beyond κ, and the result
    /// equals floor arithmetic in the clear bit for bit.
    Strict,
}

impl From<ProfileArg> for Profile {
    fn from(p: ProfileArg) -> Self {
        match p {
            ProfileArg::Fast => Profile::Fast,
            ProfileArg::Strict => Profile::Strict,
        }
    }
}

/// Prints the one line said wherever the fast profile is chosen ([`Profile::FAST_LEAKAGE`]) to
/// standard error.
pub fn warn_fast() {
    eprintln!("warning: {}", Profile::FAST_LEAKAGE);
}

/// The training loss (see `smlp::Loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LossArg {
    /// ½(o − y)²: the paper's; follows large errors in full, so it needs small learning rates.
    Squared,
    /// The smoothed hinge of the margin: error clip(o, 0, 1) − y, bounded by 1; one more SecReLU
    /// round per step; learns wdbc to about 95 % in one epoch.
    SmoothHinge,
}

impl From<LossArg> for Loss {
    fn from(l: LossArg) -> Self {
        match l {
            LossArg::Squared => Loss::Squared,
            LossArg::SmoothHinge => Loss::SmoothHinge,
        }
    }
}

/// Settings of the connection to S1.
#[derive(Args, Debug, Clone)]
pub struct S1Args {
    /// Address of S1.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub s1: String,
    /// How long to wait for S1's next message (seconds).
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// While waiting for a job: how long to keep reconnecting after the connection to S1 drops
    /// (seconds; the job goes on at S1 regardless).
    #[arg(long, default_value_t = 120)]
    pub reconnect_secs: u64,
    /// Do not show a progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// The owner identity to use: PKI/owner-NAME.crt and owner-NAME.key.
    #[arg(long = "as", value_name = "NAME", default_value = "owner")]
    pub owner: String,
    /// Name S1's certificate must carry [default: the host part of --s1].
    #[arg(long, value_name = "NAME")]
    pub s1_name: Option<String>,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

/// Registers your public key at S1 (once per key): S1 then accepts your data sets and models
/// encrypted under it, and runs your jobs under it.
///
/// Each owner has its own key pair (`smlp keygen`); a key belongs to the first owner who
/// registers it. S2 must hold the secret half (`smlp seal-key`, then S2's operator runs
/// `smlp s2-keys add`) before S1 can train or classify under it.
#[derive(Args, Debug, Clone)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Your public key file (KEYDIR/public.key).
    #[arg(long, value_name = "FILE")]
    pub public_key: PathBuf,
}

/// Runs `smlp register`.
pub fn register(args: &RegisterArgs) -> CliResult<()> {
    let pk = crate::keys::load_public(&args.public_key)?;
    let mut c = Client::connect(&args.conn)?;
    println!("{}", c.register(&pk)?);
    Ok(())
}

/// Lets another owner classify with one of your models, under its own key (or, with
/// `smlp unshare`, stops it).
///
/// The other owner names the model's id in `smlp classify --model ID`. Its samples stay under
/// its key: S1 switches them to your model's key through S2 (blinded with κ bits), classifies
/// with your encrypted model, and switches the encrypted results back; your model is never
/// decrypted and never leaves your key, and the other owner gets only its predictions. It
/// cannot fetch your model (its `smlp list models` shows it as shared by you). Each of its queries is a query of your model: a model
/// can be learned from enough answers (share with owners you trust to ask reasonably).
#[derive(Args, Debug, Clone)]
pub struct ShareArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// The model's id at S1 (md-…).
    pub model: String,
    /// The other owner's name (its certificate's).
    #[arg(long, value_name = "NAME")]
    pub with: String,
}

/// Runs `smlp share` (`allow`) or `smlp unshare`.
pub fn share(args: &ShareArgs, allow: bool) -> CliResult<()> {
    let mut c = Client::connect(&args.conn)?;
    println!("{}", c.share(&args.model, &args.with, allow)?);
    Ok(())
}

/// Uploads an encrypted data set to S1, which keeps it; prints its id.
///
/// An identical data set already uploaded by the same owner is not stored twice: its id is
/// printed. Training and classification jobs then name it with --dataset ID / --data ID.
#[derive(Args, Debug, Clone)]
pub struct UploadArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Encrypted data set (from `smlp encrypt`).
    #[arg(long, value_name = "DATA.enc")]
    pub data: PathBuf,
    /// Name shown by `smlp list datasets` [default: the file name].
    #[arg(long)]
    pub name: Option<String>,
}

/// Trains an MLP on an encrypted data set at S1 (which works with S2): a job that runs without
/// the owner.
///
/// Submits the job (uploading --data FILE first, or naming a stored --dataset ID), then, unless
/// --detach, shows its progress (epoch, samples, throughput, ETA; the loss is unknown to S1) and
/// writes the encrypted model to --out. Leaving (Ctrl-C, a dropped network) does not stop the
/// job: `smlp wait JOB`, `smlp fetch JOB --out MODEL.enc`. Nobody but the secret-key holder can
/// read the model: `smlp decrypt` it, or `smlp classify` with it.
///
/// Initial weights are drawn by S2 and S1 (nobody sees them) unless --init-seed is given: then
/// this client draws them as `init_fixed(shape, params, ChaCha8Rng::seed_from_u64(SEED))` of the
/// smlp crate and sends them encrypted, so that a plaintext reference run can start from the same
/// weights. With --resume CKPT (from `smlp fetch JOB --checkpoint`), the network, parameters,
/// batch and seed default to the checkpoint's and must match it; --epochs is the total, counting
/// the checkpoint's epochs.

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Id of a data set stored at S1 (`smlp upload`).
    #[arg(
        long,
        value_name = "ID",
        conflicts_with = "data",
        required_unless_present = "data"
    )]
    pub dataset: Option<String>,
    /// Encrypted training data (from `smlp encrypt`), uploaded first.
    #[arg(long, value_name = "TRAIN.enc")]
    pub data: Option<PathBuf>,
    /// Hidden layer sizes, e.g. 8 or 16,8 [default: the data set's recorded settings, else 8].
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]")]
    pub hidden: Option<Vec<usize>>,
    /// Epochs to train in total [default: the data set's recorded settings, else 2].
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Mini-batch size (1 = per-sample SGD; the batch's gradients are summed) [default: the data
    /// set's recorded settings, else 16].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed of the (public) sample order [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Learning rate η = lr-num / 2^lr-shift [default: the data set's recorded settings (`smlp
    /// encrypt` chooses η for the data), else 4].
    #[arg(long)]
    pub lr_shift: Option<u32>,
    /// Learning-rate numerator [default: 1].
    #[arg(long)]
    pub lr_num: Option<u32>,
    /// The loss whose gradient training follows [default: the data set's recorded settings, else
    /// smooth-hinge].
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// ℓ: every value in a sub-protocol must satisfy |v| < 2^ℓ [default: 72].
    #[arg(long)]
    pub value_bits: Option<u32>,
    /// Protocol profile [default: strict]. `fast` lets S2 learn the bit-length of every value it
    /// compares (a warning says so).
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Statistical security parameter κ of the blinding (at least 40).
    #[arg(long, default_value_t = 80)]
    pub kappa: u32,
    /// Draw the initial weights here from this seed (reproducible runs) instead of at S2.
    #[arg(long, conflicts_with = "resume")]
    pub init_seed: Option<u64>,
    /// Continue the run saved in this checkpoint.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Settings chosen by `smlp tune` (hidden sizes, batch, learning rate, epochs, loss): the
    /// defaults of this run; a flag given explicitly still wins.
    #[arg(long, value_name = "SETTINGS.json")]
    pub settings: Option<PathBuf>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub detach: bool,
    /// Output file (encrypted model).
    #[arg(long, value_name = "MODEL.enc", required_unless_present = "detach")]
    pub out: Option<PathBuf>,
}

/// Classifies encrypted samples with an encrypted model at S1: a job that runs without the owner.
///
/// The predictions stay encrypted: `smlp decrypt` them with the secret key.
#[derive(Args, Debug, Clone)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Encrypted model: a file (from `smlp fetch`), uploaded first, or the id of a model at S1.
    #[arg(long, value_name = "MODEL.enc|ID")]
    pub model: String,
    /// Encrypted samples: a file (from `smlp encrypt`, labels optional), uploaded first, or the
    /// id of a data set at S1.
    #[arg(long, value_name = "NEW.enc|ID")]
    pub data: String,
    /// Samples per forward pass (one S2 round trip per layer and chunk).
    #[arg(long, default_value_t = smlp::encrypted::CLASSIFY_CHUNK)]
    pub chunk: usize,
    /// Protocol profile [default: the model's].
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Statistical security parameter κ of the blinding (at least 40).
    #[arg(long, default_value_t = 80)]
    pub kappa: u32,
    /// Print the job id and return at once.
    #[arg(long)]
    pub detach: bool,
    /// Output file (encrypted predictions).
    #[arg(long, value_name = "PRED.enc", required_unless_present = "detach")]
    pub out: Option<PathBuf>,
}

/// Lists the owner's jobs at S1: id, kind, state, progress, samples/s, ETA, start.
#[derive(Args, Debug, Clone)]
pub struct JobsArgs {
    #[command(flatten)]
    pub conn: S1Args,
}

/// Waits for a job with a progress bar. Exit code: 0 done, 1 failed, 3 cancelled.
#[derive(Args, Debug, Clone)]
pub struct WaitArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Job id.
    pub job: String,
}

/// Writes a stored object, or a job's result, to a file.
///
/// A training job gives its model, a classification job its predictions; `--checkpoint` gives a
/// training job's latest checkpoint (it may still be running), for `smlp train --resume`.
#[derive(Args, Debug, Clone)]
pub struct FetchArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Job, model, data-set or predictions id.
    pub id: String,
    /// The training job's latest checkpoint instead of its model.
    #[arg(long)]
    pub checkpoint: bool,
    /// Output file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Cancels a queued or running job (a running one stops at its next exchange with S2).
#[derive(Args, Debug, Clone)]
pub struct CancelArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Job id.
    pub job: String,
}

/// What `smlp list` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListWhat {
    /// Encrypted data sets.
    Datasets,
    /// Encrypted models.
    Models,
    /// Encrypted predictions.
    Predictions,
}

/// Lists the owner's data sets, models or predictions at S1.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// What to list.
    #[arg(value_enum)]
    pub what: ListWhat,
}

/// Deletes a data set, model or predictions (not while a job uses it), or an ended job.
#[derive(Args, Debug, Clone)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Id.
    pub id: String,
}

/// What a finished job did.
#[derive(Debug, Clone)]
pub struct JobSummary {
    /// The job.
    pub job: JobInfo,
    /// S1's working time (last run).
    pub elapsed: Duration,
    /// Costs of the S1–S2 session (last run).
    pub costs: Costs,
}

/// How a request to S1 failed.
#[derive(Debug)]
enum Failure {
    /// The connection failed (worth reconnecting).
    Link(CliError),
    /// S1 answered with an error.
    Refused(CliError),
}

impl From<Failure> for CliError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Link(e) | Failure::Refused(e) => e,
        }
    }
}

/// A connection to S1, after Hello/Welcome.
pub struct Client {
    chan: TlsChannel,
    keys: Vec<PublicKey>,
    s1: String,
    timeout_secs: u64,
}

impl Client {
    /// Connects to S1 over TLS (our owner certificate; S1's certificate and role checked) and
    /// exchanges Hello/Welcome.
    pub fn connect(conn: &S1Args) -> CliResult<Client> {
        Self::try_connect(conn).map_err(CliError::from)
    }

    fn try_connect(conn: &S1Args) -> Result<Client, Failure> {
        let refused = |e: CliError| Failure::Refused(e);
        transport::pki::check_owner_name(&conn.owner).map_err(|e| refused(e.into()))?;
        let creds = conn
            .tls
            .load(&format!("owner-{}", conn.owner), Role::Owner)
            .map_err(refused)?;
        let opts = TcpOptions::default()
            .with_read_timeout(Some(Duration::from_secs(conn.timeout_secs.max(1))))
            .with_connect_timeout(Duration::from_secs(10))
            .with_max_frame(1 << 30);
        let config = creds
            .client_config(Role::S1)
            .map_err(|e| refused(e.into()))?;
        let chan = tls::connect(conn.s1.as_str(), conn.s1_name.as_deref(), config, &opts).map_err(
            |e| match e {
                transport::TransportError::Tls { .. } => Failure::Refused(CliError(format!(
                    "{e} (are this owner's certificate and S1's from the same deployment PKI, \
                     and is {} a name in S1's certificate?)",
                    conn.s1_name
                        .as_deref()
                        .unwrap_or_else(|| tls::host_of(&conn.s1))
                ))),
                e => Failure::Link(CliError(format!("S1 is unreachable: {e}"))),
            },
        )?;
        let mut chan = chan;
        let link = |e| link_failure(&conn.s1, conn.timeout_secs, e);
        chan.send_msg(&ClientMsg::Hello { version: VERSION })
            .map_err(link)?;
        match chan.recv_msg::<ServerMsg>().map_err(link)? {
            ServerMsg::Welcome { version, keys } if version == VERSION => Ok(Client {
                chan,
                keys,
                s1: conn.s1.clone(),
                timeout_secs: conn.timeout_secs,
            }),
            ServerMsg::Welcome { version, .. } => Err(Failure::Refused(CliError(format!(
                "S1 at {} speaks protocol version {version}, this client version {VERSION}",
                conn.s1
            )))),
            other => Err(violation(&other)),
        }
    }

    /// The public keys this owner registered at S1.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The registered key `fp` (a data set, model or result under any other key is refused).
    pub fn key(&self, fp: &paillier::Fingerprint, what: &str) -> CliResult<&PublicKey> {
        self.keys.iter().find(|k| k.fingerprint() == *fp).ok_or_else(|| {
            CliError(format!(
                "the {what} is encrypted under key {fp}, which this owner has not registered at S1 {}: smlp register --public-key KEYDIR/public.key",
                self.s1
            ))
        })
    }

    /// Registers one of this owner's public keys at S1 (nothing happens if it already is).
    pub fn register(&mut self, pk: &PublicKey) -> CliResult<String> {
        match self.request(&ClientMsg::Register {
            public_key: pk.clone(),
        })? {
            ServerMsg::Done(msg) => {
                if !self.keys.contains(pk) {
                    self.keys.push(pk.clone());
                }
                Ok(msg)
            }
            other => Err(self.violation(&other).into()),
        }
    }

    fn link(&self, e: MessageError) -> Failure {
        link_failure(&self.s1, self.timeout_secs, e)
    }

    fn violation(&self, m: &ServerMsg) -> Failure {
        violation(m)
    }

    fn recv(&mut self) -> Result<ServerMsg, Failure> {
        match self.chan.recv_msg::<ServerMsg>() {
            Ok(ServerMsg::Error(m)) => Err(Failure::Refused(CliError(format!("S1: {m}")))),
            Ok(m) => Ok(m),
            Err(e) => Err(self.link(e)),
        }
    }

    fn request(&mut self, msg: &ClientMsg) -> Result<ServerMsg, Failure> {
        self.chan.send_msg(msg).map_err(|e| self.link(e))?;
        self.recv()
    }

    /// Uploads a data set; S1 keeps it (or an identical one already kept).
    pub fn upload(&mut self, name: &str, data: EncryptedDataset) -> CliResult<ObjectInfo> {
        self.key(&data.fingerprint, "data set")?;
        match self.request(&ClientMsg::Upload {
            name: name.to_string(),
            data: Box::new(data),
        })? {
            ServerMsg::Stored(info) => Ok(info),
            other => Err(self.violation(&other).into()),
        }
    }

    /// Uploads a model.
    pub fn upload_model(&mut self, name: &str, model: EncryptedModel) -> CliResult<ObjectInfo> {
        self.key(&model.fingerprint, "model")?;
        match self.request(&ClientMsg::UploadModel {
            name: name.to_string(),
            model: Box::new(model),
        })? {
            ServerMsg::Stored(info) => Ok(info),
            other => Err(self.violation(&other).into()),
        }
    }

    /// Queues a job (`ClientMsg::Train` or `ClientMsg::Classify`).
    pub fn submit(&mut self, msg: ClientMsg) -> CliResult<JobInfo> {
        match self.request(&msg)? {
            ServerMsg::Submitted(job) => Ok(job),
            other => Err(self.violation(&other).into()),
        }
    }

    /// The owner's jobs.
    pub fn jobs(&mut self) -> CliResult<Vec<JobInfo>> {
        match self.request(&ClientMsg::Jobs)? {
            ServerMsg::JobList(j) => Ok(j),
            other => Err(self.violation(&other).into()),
        }
    }

    /// Follows a job until it ends; `on_status` sees every update.
    fn watch(
        &mut self,
        job: &str,
        mut on_status: impl FnMut(&JobInfo),
    ) -> Result<JobInfo, Failure> {
        self.chan
            .send_msg(&ClientMsg::Watch {
                job: job.to_string(),
            })
            .map_err(|e| self.link(e))?;
        loop {
            match self.recv()? {
                ServerMsg::Status(info) if info.id == job => {
                    on_status(&info);
                    if info.state.ended() {
                        return Ok(info);
                    }
                }
                other => return Err(self.violation(&other)),
            }
        }
    }

    /// An object or a job's result (or checkpoint): its info and sealed bytes.
    pub fn fetch(&mut self, id: &str, checkpoint: bool) -> CliResult<(ObjectInfo, Vec<u8>)> {
        match self.request(&ClientMsg::Fetch {
            id: id.to_string(),
            checkpoint,
        })? {
            ServerMsg::Object { info, body } => Ok((info, body)),
            other => Err(self.violation(&other).into()),
        }
    }

    fn done(&mut self, msg: ClientMsg) -> CliResult<String> {
        match self.request(&msg)? {
            ServerMsg::Done(m) => Ok(m),
            other => Err(self.violation(&other).into()),
        }
    }

    /// Cancels a queued or running job; S1's confirmation.
    pub fn cancel(&mut self, job: &str) -> CliResult<String> {
        self.done(ClientMsg::Cancel {
            job: job.to_string(),
        })
    }

    /// Deletes an object or an ended job; S1's confirmation.
    pub fn delete(&mut self, id: &str) -> CliResult<String> {
        self.done(ClientMsg::Delete { id: id.to_string() })
    }

    /// Lets the owner `with` classify with our model `model` (`allow`), or stops it; S1's
    /// confirmation.
    pub fn share(&mut self, model: &str, with: &str, allow: bool) -> CliResult<String> {
        self.done(ClientMsg::Share {
            model: model.to_string(),
            with: with.to_string(),
            allow,
        })
    }

    /// The owner's objects of one kind.
    pub fn list(&mut self, kind: ObjectKind) -> CliResult<Vec<ObjectInfo>> {
        match self.request(&ClientMsg::List { kind })? {
            ServerMsg::Objects(o) => Ok(o),
            other => Err(self.violation(&other).into()),
        }
    }

    /// Features, outputs and f of a data set stored at S1.
    pub fn dataset_dims(&mut self, id: &str) -> CliResult<StoredDataset> {
        let (_, body) = self.fetch(id, false)?;
        let d: EncryptedDataset = open_dataset(&body)?;
        let pk = self.key(&d.fingerprint, "data set")?.clone();
        if let Some(t) = &d.settings {
            t.validate()
                .map_err(|e| CliError(format!("the settings recorded in data set {id}: {e}")))?;
        }
        Ok((dims(&d), pk, d.settings))
    }
}

fn link_failure(s1: &str, timeout_secs: u64, e: MessageError) -> Failure {
    Failure::Link(CliError(match e {
        MessageError::Channel(ChannelError::Closed)
        | MessageError::Channel(ChannelError::Truncated { .. }) => {
            format!("S1 at {s1} closed the connection unexpectedly")
        }
        MessageError::Channel(ChannelError::Timeout) => {
            format!("no message from S1 at {s1} for {timeout_secs} s (see --timeout-secs)")
        }
        MessageError::Channel(ChannelError::Io(io)) if io.to_string().contains("alert") => {
            format!(
                "S1 at {s1} refused this client's TLS certificate ({io}): is the owner \
                 certificate from the same deployment PKI as S1's?"
            )
        }
        e => format!("connection to S1 at {s1}: {e}"),
    }))
}

fn violation(m: &ServerMsg) -> Failure {
    let name = match m {
        ServerMsg::Welcome { .. } => "Welcome",
        ServerMsg::Stored(_) => "Stored",
        ServerMsg::Submitted(_) => "Submitted",
        ServerMsg::JobList(_) => "JobList",
        ServerMsg::Status(_) => "Status",
        ServerMsg::Object { .. } => "Object",
        ServerMsg::Objects(_) => "Objects",
        ServerMsg::Done(_) => "Done",
        ServerMsg::Error(m) => return Failure::Refused(CliError(format!("S1: {m}"))),
    };
    Failure::Refused(CliError(format!(
        "protocol violation by S1: unexpected {name}"
    )))
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Runs `smlp upload`.
pub fn upload(args: &UploadArgs) -> CliResult<ObjectInfo> {
    let data: EncryptedDataset = read_dataset(&args.data)?;
    let mut c = Client::connect(&args.conn)?;
    let name = args.name.clone().unwrap_or_else(|| file_name(&args.data));
    let info = c.upload(&name, data)?;
    println!("{}", info.id);
    eprintln!(
        "stored {} ({}, {})",
        info.name,
        info.summary,
        bytes(info.bytes)
    );
    Ok(info)
}

/// Fills an option from the checkpoint, or checks that it agrees with it.
fn from_ckpt<T: PartialEq + Clone + std::fmt::Debug>(
    given: &Option<T>,
    ckpt: Option<T>,
    default: T,
    name: &str,
) -> CliResult<T> {
    match (given, ckpt) {
        (Some(g), Some(c)) if *g != c => {
            bail!("--{name} {g:?} differs from the checkpoint's {c:?}")
        }
        (Some(g), _) => Ok(g.clone()),
        (None, Some(c)) => Ok(c),
        (None, None) => Ok(default),
    }
}

/// A training job's settings as asked for: `None` takes the next source in [`resolve_spec`]'s order.
#[derive(Debug, Clone, Default)]
pub struct TrainOverrides {
    /// Hidden layer sizes.
    pub hidden: Option<Vec<usize>>,
    /// Epochs in total.
    pub epochs: Option<u64>,
    /// Mini-batch size.
    pub batch: Option<usize>,
    /// Seed of the public sample order.
    pub seed: Option<u64>,
    /// The loss.
    pub loss: Option<Loss>,
    /// Learning-rate numerator.
    pub lr_num: Option<u32>,
    /// Learning-rate shift.
    pub lr_shift: Option<u32>,
    /// ℓ.
    pub value_bits: Option<u32>,
    /// Protocol profile.
    pub profile: Option<Profile>,
    /// Statistical security parameter κ.
    pub kappa: u32,
    /// Draw the initial weights here from this seed.
    pub init_seed: Option<u64>,
}

impl From<&TrainArgs> for TrainOverrides {
    fn from(a: &TrainArgs) -> Self {
        TrainOverrides {
            hidden: a.hidden.clone(),
            epochs: a.epochs,
            batch: a.batch,
            seed: a.seed,
            loss: a.loss.map(Loss::from),
            lr_num: a.lr_num,
            lr_shift: a.lr_shift,
            value_bits: a.value_bits,
            profile: a.profile.map(Profile::from),
            kappa: a.kappa,
            init_seed: a.init_seed,
        }
    }
}

/// The job's settings from `smlp train`'s arguments ([`resolve_spec`] with `--settings FILE`).
fn spec_of(
    args: &TrainArgs,
    ckpt: Option<&Checkpoint>,
    recorded: Option<&Tuned>,
) -> CliResult<(TrainSpec, String)> {
    let file = args
        .settings
        .as_deref()
        .map(crate::tune::load)
        .transpose()?;
    resolve_spec(&TrainOverrides::from(args), ckpt, file.as_ref(), recorded)
}

/// A job's settings, each from the first of: `given`; the checkpoint being resumed (a value
/// given must agree with it; epochs are the new total); `file` (`smlp tune`'s settings); the
/// settings `recorded` in the data set (`smlp encrypt`); the defaults ([`smlp::defaults`]).
/// The one place the CLI and the Python package resolve training settings. Returns them with a
/// line saying where they came from.
pub fn resolve_spec(
    given: &TrainOverrides,
    ckpt: Option<&Checkpoint>,
    file: Option<&Tuned>,
    recorded: Option<&Tuned>,
) -> CliResult<(TrainSpec, String)> {
    let args = given;
    let cm = ckpt.map(|c| &c.model);
    // The settings below the given values and the checkpoint, and their origin.
    let (base, base_origin) = match (file, recorded) {
        (Some(t), _) => (t.setting.clone(), "--settings"),
        (None, Some(t)) => (t.setting.clone(), "the data set"),
        (None, None) => (smlp::defaults::setting(None), "the defaults"),
    };
    let mut origins: Vec<(&str, &str)> = Vec::new();
    let mut note = |name: &'static str, flag: bool, from_ckpt: bool| {
        let origin = if flag {
            "the request"
        } else if from_ckpt {
            "the checkpoint"
        } else {
            base_origin
        };
        origins.push((name, origin));
    };
    let hidden_ckpt = cm.map(|m| m.shape.sizes()[1..m.shape.sizes().len() - 1].to_vec());
    note("hidden", args.hidden.is_some(), hidden_ckpt.is_some());
    let hidden = from_ckpt(&args.hidden, hidden_ckpt, base.hidden.clone(), "hidden")?;
    note("epochs", args.epochs.is_some(), ckpt.is_some());
    let epochs = from_ckpt(
        &args.epochs,
        None,
        ckpt.map_or(base.epochs, |c| c.config.epochs),
        "epochs",
    )?;
    note("batch", args.batch.is_some(), ckpt.is_some());
    let batch = from_ckpt(
        &args.batch,
        ckpt.map(|c| c.config.batch),
        base.batch,
        "batch",
    )?;
    let seed = from_ckpt(
        &args.seed,
        ckpt.map(|c| c.config.seed),
        smlp::defaults::SEED,
        "seed",
    )?;
    note("loss", args.loss.is_some(), ckpt.is_some());
    let loss = from_ckpt(&args.loss, ckpt.map(|c| c.config.loss), base.loss, "loss")?;
    note(
        "η",
        args.lr_shift.is_some() || args.lr_num.is_some(),
        cm.is_some(),
    );
    let lr_shift = from_ckpt(
        &args.lr_shift,
        cm.map(|m| m.fixed.lr.shift),
        base.lr_shift,
        "lr-shift",
    )?;
    let lr_num = from_ckpt(
        &args.lr_num,
        cm.map(|m| m.fixed.lr.num),
        base.lr_num,
        "lr-num",
    )?;
    let value_bits = from_ckpt(
        &args.value_bits,
        cm.map(|m| m.fixed.value_bits),
        smlp::defaults::VALUE_BITS,
        "value-bits",
    )?;
    let profile = from_ckpt(
        &args.profile,
        cm.map(|m| m.profile),
        Profile::Strict,
        "profile",
    )?;
    let spec = TrainSpec {
        hidden,
        epochs,
        batch,
        seed,
        loss,
        lr: LearningRate::new(lr_num, lr_shift)?,
        value_bits,
        profile,
        kappa: args.kappa,
        init_seed: args.init_seed,
    };
    Ok((
        spec.clone(),
        describe_origins(&spec, &origins, file.or(recorded)),
    ))
}

/// `hidden 8, batch 16, η 1/2^5, 2 epoch(s), smooth-hinge loss — η, batch … from the data set
/// (auto: …); hidden from flags`.
fn describe_origins(spec: &TrainSpec, origins: &[(&str, &str)], base: Option<&Tuned>) -> String {
    let values = Tuned {
        source: String::new(),
        setting: smlp::tune::Setting {
            hidden: spec.hidden.clone(),
            batch: spec.batch,
            lr_num: spec.lr.num,
            lr_shift: spec.lr.shift,
            epochs: spec.epochs,
            loss: spec.loss,
        },
        mean: 0.0,
        worst: 0.0,
        folds: 0,
        samples: 0,
    }
    .describe();
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (name, origin) in origins {
        match groups.iter_mut().find(|(o, _)| o == origin) {
            Some((_, names)) => names.push(name),
            None => groups.push((origin, vec![name])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(origin, names)| {
            let why = match (*origin, base) {
                ("the data set" | "--settings", Some(t)) => format!(" ({})", t.source),
                _ => String::new(),
            };
            format!("{} from {origin}{why}", names.join(", "))
        })
        .collect();
    format!("{values} — {}", parts.join("; "))
}

/// Runs `smlp train`.
pub fn train(args: &TrainArgs) -> CliResult<Option<JobSummary>> {
    let conn = &args.conn;
    let ckpt: Option<Checkpoint> = match &args.resume {
        Some(p) => Some(read_file(&CHECKPOINT, p)?),
        None => None,
    };
    let local: Option<EncryptedDataset> = match &args.data {
        Some(p) => Some(read_dataset(p)?),
        None => None,
    };
    if let Some(d) = &local {
        if d.is_empty() {
            bail!(
                "{} holds no samples",
                args.data
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string())
            );
        }
    }

    // The profile comes from the flag or the checkpoint (never from recorded settings): warn
    // before anything else can fail.
    if args
        .profile
        .map(Profile::from)
        .or(ckpt.as_ref().map(|c| c.model.profile))
        == Some(Profile::Fast)
    {
        warn_fast();
    }
    let mut c = Client::connect(conn)?;
    // The dimensions and f of the data set (the fixed-point parameters and the initial weights
    // need them here): from the file before it is uploaded, or from the stored copy.
    let (dataset, (features, outputs, frac_bits), pk, recorded) =
        match (&args.dataset, local, &args.data) {
            (Some(id), _, _) => {
                let (dims, pk, recorded) = c.dataset_dims(id)?;
                (id.clone(), dims, pk, recorded)
            }
            (None, Some(d), Some(p)) => {
                let dims = dims(&d);
                let pk = c.key(&d.fingerprint, "data set")?.clone();
                let recorded = d.settings.clone();
                let info = c.upload(&file_name(p), d)?;
                if !conn.quiet {
                    eprintln!("uploaded {} as {} ({})", p.display(), info.id, info.summary);
                }
                (info.id, dims, pk, recorded)
            }
            _ => bail!("give --dataset ID or --data FILE"),
        };
    let (spec, origins) = spec_of(args, ckpt.as_ref(), recorded.as_ref())?;
    if !conn.quiet {
        eprintln!("settings: {origins}");
    }
    let (profile, epochs) = (spec.profile, spec.epochs);
    let req = train_request(&pk, dataset, (features, outputs, frac_bits), spec, ckpt)?;
    let shape = Shape::mlp(features, &req.hidden, outputs)?;
    let Some((summary, out)) = submit(
        conn,
        c,
        ClientMsg::Train(Box::new(req)),
        args.detach,
        args.out.as_deref(),
    )?
    else {
        return Ok(None);
    };
    let elapsed = summary.elapsed;
    let steps = (summary.job.samples * epochs).max(1);
    println!(
        "trained {shape} ({profile} profile) for {epochs} epoch(s) on {} samples in {} ({:.2} s \
         per sample of its last run) → {}",
        summary.job.samples,
        secs(elapsed),
        elapsed.as_secs_f64() / steps as f64,
        out.display()
    );
    print_costs(&summary.costs);
    Ok(Some(summary))
}

/// The settings of a training job (the data set's dimensions aside).
#[derive(Debug, Clone)]
pub struct TrainSpec {
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Epochs in total (counting a resumed checkpoint's).
    pub epochs: u64,
    /// Mini-batch size (1: per-sample SGD).
    pub batch: usize,
    /// Seed of the public sample order.
    pub seed: u64,
    /// The loss.
    pub loss: Loss,
    /// Learning rate.
    pub lr: LearningRate,
    /// ℓ: bound on the values in a sub-protocol.
    pub value_bits: u32,
    /// Protocol profile.
    pub profile: Profile,
    /// Statistical security parameter κ.
    pub kappa: u32,
    /// Draw the initial weights here from this seed (reproducible runs) instead of at S2.
    pub init_seed: Option<u64>,
}

/// The request that trains `spec` on the stored data set `dataset` of dimensions
/// `(features, outputs, f)` (from [`dims`] or [`Client::dataset_dims`]), or continues `resume`.
/// With `spec.init_seed`, the initial weights are drawn here and encrypted under `pk`.
pub fn train_request(
    pk: &PublicKey,
    dataset: String,
    (features, outputs, frac_bits): (usize, usize, u32),
    spec: TrainSpec,
    resume: Option<Checkpoint>,
) -> CliResult<TrainRequest> {
    if spec.batch == 0 {
        bail!("the batch size must be at least 1");
    }
    if spec.epochs == 0 {
        bail!("the number of epochs must be at least 1");
    }
    let fixed = FixedParams::new(frac_bits, spec.lr, spec.value_bits)?;
    let shape = Shape::mlp(features, &spec.hidden, outputs)?;
    if let Some(ck) = &resume {
        if ck.model.shape != shape {
            bail!(
                "the checkpoint's network {} does not fit the data set (network {shape})",
                ck.model.shape
            );
        }
    }
    let initial = match spec.init_seed {
        Some(s) => {
            let init = init_fixed(
                &shape,
                &fixed,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(s),
            );
            Some(encrypt_params(pk, &init)?)
        }
        None => None,
    };
    Ok(TrainRequest {
        dataset,
        hidden: spec.hidden,
        fixed,
        config: TrainConfig {
            epochs: spec.epochs,
            batch: spec.batch,
            seed: spec.seed,
            loss: spec.loss,
        },
        profile: spec.profile,
        kappa: spec.kappa,
        initial,
        resume,
    })
}

/// A stored data set's dimensions ([`dims`]), key and recorded settings.
pub type StoredDataset = ((usize, usize, u32), PublicKey, Option<Tuned>);

/// Features, outputs and f of a data set.
pub fn dims(d: &EncryptedDataset) -> (usize, usize, u32) {
    (d.features, d.outputs(), d.frac_bits)
}

/// Queues a job; with `detach` prints its id and returns `None`, else waits for it and writes
/// its result to `out`.
fn submit<'a>(
    conn: &S1Args,
    mut c: Client,
    msg: ClientMsg,
    detach: bool,
    out: Option<&'a Path>,
) -> CliResult<Option<(JobSummary, &'a Path)>> {
    let job = c.submit(msg)?;
    if detach {
        println!("{}", job.id);
        return Ok(None);
    }
    eprintln!(
        "job {} queued; leaving does not stop it (smlp wait {0}, smlp cancel {0})",
        job.id
    );
    let out = out.ok_or_else(|| CliError("--out is required without --detach".into()))?;
    Ok(Some((wait_and_fetch(conn, c, &job.id, out)?, out)))
}

/// Waits for the job (reconnecting when the connection drops), then fetches its result to `out`.
fn wait_and_fetch(conn: &S1Args, c: Client, job: &str, out: &Path) -> CliResult<JobSummary> {
    let info = wait_job(conn, Some(c), job)?;
    match info.state {
        JobState::Done => {}
        JobState::Failed => bail!(
            "job {job} failed: {}",
            info.note.as_deref().unwrap_or("no reason given")
        ),
        _ => bail!("job {job} was cancelled"),
    }
    let mut c = Client::connect(conn)?;
    fetch_to(&mut c, job, false, out)?;
    Ok(JobSummary {
        elapsed: Duration::from_millis(info.elapsed_ms.unwrap_or(0)),
        costs: info.costs.unwrap_or_default(),
        job: info,
    })
}

/// Follows a job to its end with a progress bar, reconnecting for up to `--reconnect-secs`.
fn wait_job(conn: &S1Args, mut client: Option<Client>, job: &str) -> CliResult<JobInfo> {
    let mut display: Option<Display> = None;
    let mut last_ok = Instant::now();
    let mut warned = false;
    loop {
        let attempt = match client.take() {
            Some(c) => Ok(c),
            None => Client::try_connect(conn),
        }
        .and_then(|mut c| {
            c.watch(job, |info| {
                last_ok = Instant::now();
                let d = display.get_or_insert_with(|| Display::new(conn.quiet, info));
                d.update(info);
            })
        });
        match attempt {
            Ok(info) => {
                if let Some(d) = &display {
                    d.bar.finish_and_clear();
                }
                return Ok(info);
            }
            Err(Failure::Link(e))
                if last_ok.elapsed() < Duration::from_secs(conn.reconnect_secs) =>
            {
                if !warned {
                    let msg = format!("{e}; reconnecting (job {job} goes on at S1)");
                    match &display {
                        Some(d) => d.line(msg),
                        None => eprintln!("{msg}"),
                    }
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                if let Some(d) = &display {
                    d.bar.abandon();
                }
                match e {
                    Failure::Link(e) => bail!("{e} (job {job} goes on at S1: smlp wait {job})"),
                    Failure::Refused(e) => return Err(e),
                }
            }
        }
    }
}

/// Progress display of a job.
struct Display {
    bar: ProgressBar,
    lines: bool,
    epoch: Option<u64>,
    start: Instant,
}

impl Display {
    fn new(quiet: bool, info: &JobInfo) -> Self {
        let bar = sample_bar(
            info.epochs.max(1).saturating_mul(info.samples.max(1)),
            quiet,
        );
        bar.set_prefix(info.kind.name());
        Display {
            bar,
            lines: !quiet && !show_progress(quiet),
            epoch: None,
            start: Instant::now(),
        }
    }
    fn update(&mut self, info: &JobInfo) {
        self.bar
            .set_length(info.epochs.max(1).saturating_mul(info.samples.max(1)));
        let pos = info.epoch.saturating_mul(info.samples) + info.done;
        self.bar.set_position(pos);
        if info.kind == JobKind::Train {
            self.bar.set_prefix(format!(
                "epoch {}/{}",
                (info.epoch + 1).min(info.epochs),
                info.epochs
            ));
            if let Some(prev) = self.epoch {
                if info.epoch > prev && info.state == JobState::Running {
                    self.line(format!(
                        "epoch {}/{} finished after {}",
                        info.epoch,
                        info.epochs,
                        secs(self.start.elapsed())
                    ));
                }
            }
            self.epoch = Some(info.epoch);
        }
    }
    fn line(&self, text: String) {
        if self.lines {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

fn print_costs(c: &Costs) {
    println!(
        "  S1↔S2: {} round trips, {} sent, {} received; S2: {} decryptions, {} encryptions; \
         S1: {} randomizers",
        c.traffic.round_trips,
        bytes(c.traffic.bytes_sent),
        bytes(c.traffic.bytes_received),
        c.s2.decryptions,
        c.s2.encryptions,
        c.s1.randomizers
    );
}

/// A model or data set given as a file (read before connecting, uploaded) or as the id of a
/// stored one.
enum Ref {
    Id(String),
    Model(String, Box<EncryptedModel>),
    Data(String, EncryptedDataset),
}

fn resolve(arg: &str, kind: ObjectKind) -> CliResult<Ref> {
    let path = Path::new(arg);
    if !path.exists() {
        if looks_like_id(arg) {
            return Ok(Ref::Id(arg.to_string()));
        }
        bail!(
            "{arg}: no such file (nor the id of a {} at S1)",
            kind.noun()
        );
    }
    Ok(match kind {
        ObjectKind::Model => Ref::Model(file_name(path), Box::new(read_file(&MODEL, path)?)),
        _ => {
            let d: EncryptedDataset = read_dataset(path)?;
            if d.is_empty() {
                bail!("{arg} holds no samples");
            }
            Ref::Data(file_name(path), d)
        }
    })
}

impl Ref {
    /// The id at S1 (uploading a file first).
    fn store(self, c: &mut Client, arg: &str, quiet: bool) -> CliResult<String> {
        let info = match self {
            Ref::Id(id) => return Ok(id),
            Ref::Model(name, m) => c.upload_model(&name, *m)?,
            Ref::Data(name, d) => c.upload(&name, d)?,
        };
        if !quiet {
            eprintln!("uploaded {arg} as {} ({})", info.id, info.summary);
        }
        Ok(info.id)
    }
}

/// Runs `smlp classify`.
pub fn classify(args: &ClassifyArgs) -> CliResult<Option<JobSummary>> {
    let conn = &args.conn;
    let model = resolve(&args.model, ObjectKind::Model)?;
    let data = resolve(&args.data, ObjectKind::Dataset)?;
    if let (Ref::Model(_, m), Ref::Data(_, d)) = (&model, &data) {
        if m.fingerprint != d.fingerprint {
            bail!(
                "wrong key: the model {} is encrypted under key {}, the data set {} under key {}",
                args.model,
                m.fingerprint,
                args.data,
                d.fingerprint
            );
        }
        if d.features != m.shape.inputs() {
            bail!(
                "the model {} expects {} features, {} has {}",
                args.model,
                m.shape.inputs(),
                args.data,
                d.features
            );
        }
    }
    // The profile is the flag's, else the model's (known here when the model is a file).
    let model_fast = matches!(&model, Ref::Model(_, m) if m.profile == Profile::Fast);
    if args.profile == Some(ProfileArg::Fast) || (args.profile.is_none() && model_fast) {
        warn_fast();
    }
    let mut c = Client::connect(conn)?;
    let model = model.store(&mut c, &args.model, conn.quiet)?;
    let data = data.store(&mut c, &args.data, conn.quiet)?;
    let req = ClassifyRequest {
        model,
        data,
        kappa: args.kappa,
        profile: args.profile.map(Profile::from),
        chunk: args.chunk.max(1),
    };
    let Some((summary, out)) = submit(
        conn,
        c,
        ClientMsg::Classify(Box::new(req)),
        args.detach,
        args.out.as_deref(),
    )?
    else {
        return Ok(None);
    };
    let n = summary.job.samples.max(1);
    println!(
        "classified {} samples in {} ({:.2} s per sample) → {}",
        summary.job.samples,
        secs(summary.elapsed),
        summary.elapsed.as_secs_f64() / n as f64,
        out.display()
    );
    print_costs(&summary.costs);
    Ok(Some(summary))
}

/// Fetches `id` and writes it to `out` after checking that it is a well-formed file of the
/// expected kind under S1's key.
fn fetch_to(c: &mut Client, id: &str, checkpoint: bool, out: &Path) -> CliResult<ObjectInfo> {
    let (info, body) = c.fetch(id, checkpoint)?;
    let fp = if checkpoint {
        open::<Checkpoint>(&CHECKPOINT, &body)?.model.fingerprint
    } else {
        match info.kind {
            ObjectKind::Dataset => open_dataset(&body)?.fingerprint,
            ObjectKind::Model => open::<EncryptedModel>(&MODEL, &body)?.fingerprint,
            ObjectKind::Predictions => {
                open::<EncryptedPredictions>(&PREDICTIONS, &body)?.fingerprint
            }
        }
    };
    c.key(&fp, info.kind.noun())?;
    write_atomic(out, &body, true)?;
    Ok(info)
}

/// Runs `smlp fetch`.
pub fn fetch(args: &FetchArgs) -> CliResult<()> {
    let mut c = Client::connect(&args.conn)?;
    let info = fetch_to(&mut c, &args.id, args.checkpoint, &args.out)?;
    println!(
        "{} ({}, {}) → {}",
        info.name,
        info.summary,
        bytes(info.bytes),
        args.out.display()
    );
    Ok(())
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
fn utc(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let rem = t % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn progress_text(j: &JobInfo) -> String {
    let total = j.epochs.max(1).saturating_mul(j.samples.max(1));
    let pos = (j.epoch.saturating_mul(j.samples) + j.done).min(total);
    let pct = 100.0 * pos as f64 / total as f64;
    match j.kind {
        JobKind::Train => format!(
            "epoch {}/{}, {}/{} ({pct:.0} %)",
            (j.epoch + 1).min(j.epochs),
            j.epochs,
            j.done,
            j.samples
        ),
        JobKind::Classify => format!("{}/{} ({pct:.0} %)", j.done, j.samples),
    }
}

/// Runs `smlp jobs`.
pub fn jobs(args: &JobsArgs) -> CliResult<()> {
    let mut c = Client::connect(&args.conn)?;
    let jobs = c.jobs()?;
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(());
    }
    println!(
        "{:<16} {:<8} {:<9} {:<30} {:>9} {:>10}  {:<19}  RESULT / NOTE",
        "ID", "KIND", "STATE", "PROGRESS", "SAMPLES/S", "ETA", "STARTED (UTC)"
    );
    for j in &jobs {
        let progress = match j.state {
            JobState::Done => "finished".to_string(),
            _ => progress_text(j),
        };
        println!(
            "{:<16} {:<8} {:<9} {:<30} {:>9} {:>10}  {:<19}  {}",
            j.id,
            j.kind.name(),
            j.state.name(),
            progress,
            if j.samples_per_s > 0.0 {
                format!("{:.2}", j.samples_per_s)
            } else {
                "-".into()
            },
            j.eta_secs()
                .map_or("-".into(), |s| secs(Duration::from_secs_f64(s.min(1e9)))),
            j.started.map_or("-".into(), utc),
            j.result.as_deref().or(j.note.as_deref()).unwrap_or("")
        );
    }
    Ok(())
}

/// Runs `smlp wait`: the job's final state.
pub fn wait(args: &WaitArgs) -> CliResult<JobState> {
    let info = wait_job(&args.conn, None, &args.job)?;
    match info.state {
        JobState::Done => println!(
            "job {} done: {}",
            info.id,
            info.result.as_deref().unwrap_or("-")
        ),
        JobState::Failed => eprintln!(
            "error: job {} failed: {}",
            info.id,
            info.note.as_deref().unwrap_or("no reason given")
        ),
        _ => eprintln!("job {} was cancelled", info.id),
    }
    Ok(info.state)
}

/// Runs `smlp cancel`.
pub fn cancel(args: &CancelArgs) -> CliResult<()> {
    let mut c = Client::connect(&args.conn)?;
    println!("{}", c.cancel(&args.job)?);
    Ok(())
}

/// Runs `smlp delete`.
pub fn delete(args: &DeleteArgs) -> CliResult<()> {
    let mut c = Client::connect(&args.conn)?;
    println!("{}", c.delete(&args.id)?);
    Ok(())
}

/// Runs `smlp list`.
pub fn list(args: &ListArgs) -> CliResult<Vec<ObjectInfo>> {
    let kind = match args.what {
        ListWhat::Datasets => ObjectKind::Dataset,
        ListWhat::Models => ObjectKind::Model,
        ListWhat::Predictions => ObjectKind::Predictions,
    };
    let mut c = Client::connect(&args.conn)?;
    let objects = c.list(kind)?;
    if objects.is_empty() {
        println!("no {}", kind.noun());
    }
    for o in &objects {
        println!(
            "{:<16} {:<19}  {:>10}  {:<24}  {}",
            o.id,
            utc(o.created),
            bytes(o.bytes),
            o.name,
            o.summary
        );
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_796_083_199), "2026-11-30 23:59:59");
    }
}
