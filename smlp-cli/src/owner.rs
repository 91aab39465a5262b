//! The data owner's commands that talk to S1: `register`, `upload`, `train`, `jobs`, `wait`,
//! `fetch`, `cancel`, `classify`, `share`, `unshare`, `list`, `delete` — their flags and their
//! terminal output (progress bars, tables) over [`smlp_client::client::Client`].
//!
//! `train` and `classify` submit a job and, unless `--detach`, wait for it with a progress bar
//! and fetch the result. A dropped connection (a laptop that sleeps, Ctrl-C) does not stop the
//! job: `smlp wait JOB` picks it up again, `smlp fetch JOB` gets its result.

use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use paillier::format::{open, read_file, write_atomic};
use secure_ops::Profile;
use smlp::encrypted::{open_dataset, read_dataset};
use smlp::encrypted::{
    Checkpoint, Costs, EncryptedDataset, EncryptedPredictions, ModelFile, CHECKPOINT, PREDICTIONS,
};
use smlp::tune::Tuned;
use smlp::{Loss, Shape};
use smlp_client::bail;
use smlp_client::client::{
    dims, resolve_spec, train_request, Client, Failure, S1Args, TrainOverrides, TrainSpec,
};
use smlp_client::error::{CliError, CliResult};
use smlp_client::proto::{
    looks_like_id, ClassifyRequest, ClientMsg, JobInfo, JobKind, JobState, ObjectInfo, ObjectKind,
};
use smlp_client::util::{bytes, sample_bar, secs, show_progress};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    /// Also each training job's settings and where they came from.
    #[arg(long, short = 'l')]
    pub long: bool,
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
        .map(smlp_client::tune::load)
        .transpose()?;
    resolve_spec(&TrainOverrides::from(args), ckpt, file.as_ref(), recorded)
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
    let (spec, origin) = spec_of(args, ckpt.as_ref(), recorded.as_ref())?;
    if !conn.quiet {
        eprintln!("settings: {} — {origin}", spec.describe());
    }
    let (profile, epochs) = (spec.profile, spec.epochs);
    let req = train_request(
        &pk,
        dataset,
        (features, outputs, frac_bits),
        spec,
        origin,
        ckpt,
    )?;
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
    Model(String, Box<ModelFile>),
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
        ObjectKind::Model => Ref::Model(file_name(path), Box::new(ModelFile::read(path)?)),
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
        if m.model.fingerprint != d.fingerprint {
            bail!(
                "wrong key: the model {} is encrypted under key {}, the data set {} under key {}",
                args.model,
                m.model.fingerprint,
                args.data,
                d.fingerprint
            );
        }
        if d.features != m.model.shape.inputs() {
            bail!(
                "the model {} expects {} features, {} has {}",
                args.model,
                m.model.shape.inputs(),
                args.data,
                d.features
            );
        }
    }
    // The profile is the flag's, else the model's (known here when the model is a file).
    let model_fast = matches!(&model, Ref::Model(_, m) if m.model.profile == Profile::Fast);
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
            ObjectKind::Model => ModelFile::open(&body)?.model.fingerprint,
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
        if let (true, Some(line)) = (args.long, &j.settings) {
            println!("    settings: {line}");
        }
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
