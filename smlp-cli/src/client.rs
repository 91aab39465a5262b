//! `smlp train` and `smlp classify`: the data owner's side of the client protocol.

use crate::bail;
use crate::error::{CliError, CliResult, Context};
use crate::proto::{ClassifyRequest, ClientMsg, ServerMsg, TrainRequest, VERSION};
use crate::util::{bytes, sample_bar, secs, show_progress};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use paillier::format::{read_file, write_file};
use paillier::{Fingerprint, PublicKey};
use rand::SeedableRng;
use secure_ops::Profile;
use smlp::encrypted::{
    encrypt_params, Checkpoint, Costs, EncryptedDataset, EncryptedModel, TrainConfig, CHECKPOINT,
    DATASET, MODEL, PREDICTIONS,
};
use smlp::{init_fixed, FixedParams, LearningRate, Shape};
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

/// Settings of the connection to S1.
#[derive(Args, Debug, Clone)]
pub struct S1Args {
    /// Address of S1.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub s1: String,
    /// Statistical security parameter κ of the blinding (at least 40).
    #[arg(long, default_value_t = 80)]
    pub kappa: u32,
    /// How long to wait for S1's next message (seconds).
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
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

/// Trains an MLP on an encrypted data set, through S1 (which works with S2).
///
/// Uploads the encrypted data and the training request to S1, shows progress (epoch, samples,
/// throughput, ETA; the loss is unknown to S1) and writes the encrypted model. Nobody but the
/// secret-key holder can read the model: `smlp decrypt` it, or `smlp classify` with it.
///
/// Initial weights are drawn by S2 (nobody sees them) unless --init-seed is given: then this
/// client draws them as `init_fixed(shape, params, ChaCha8Rng::seed_from_u64(SEED))` of the smlp
/// crate and sends them encrypted, so that a plaintext reference run can start from the same
/// weights. With --resume, the network, parameters, batch and seed default to the checkpoint's
/// and must match it; --epochs is the total, counting the checkpoint's epochs.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Encrypted training data (from `smlp encrypt`).
    #[arg(long, value_name = "TRAIN.enc")]
    pub data: PathBuf,
    /// Hidden layer sizes, e.g. 8 or 16,8 [default: 8].
    #[arg(long, value_delimiter = ',', value_name = "N[,N...]")]
    pub hidden: Option<Vec<usize>>,
    /// Epochs to train in total [default: 1].
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Mini-batch size (1 = per-sample SGD) [default: 1].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Seed of the (public) sample order [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Learning rate η = lr-num / 2^lr-shift [default: 6].
    #[arg(long)]
    pub lr_shift: Option<u32>,
    /// Learning-rate numerator [default: 1].
    #[arg(long)]
    pub lr_num: Option<u32>,
    /// ℓ: every value in a sub-protocol must satisfy |v| < 2^ℓ [default: 72].
    #[arg(long)]
    pub value_bits: Option<u32>,
    /// Protocol profile [default: fast].
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Draw the initial weights here from this seed (reproducible runs) instead of at S2.
    #[arg(long, conflicts_with = "resume")]
    pub init_seed: Option<u64>,
    /// Write a checkpoint here after every epoch.
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: Option<PathBuf>,
    /// Continue the run saved in this checkpoint.
    #[arg(long, value_name = "CKPT")]
    pub resume: Option<PathBuf>,
    /// Output file (encrypted model).
    #[arg(long, value_name = "MODEL.enc")]
    pub out: PathBuf,
}

/// Classifies an encrypted data set with an encrypted model, through S1.
///
/// The predictions stay encrypted: `smlp decrypt` them with the secret key.
#[derive(Args, Debug, Clone)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub conn: S1Args,
    /// Encrypted model (from `smlp train`).
    #[arg(long, value_name = "MODEL.enc")]
    pub model: PathBuf,
    /// Encrypted samples (from `smlp encrypt`; labels, if any, are not used).
    #[arg(long, value_name = "TEST.enc")]
    pub data: PathBuf,
    /// Samples per forward pass (one S2 round trip per layer and chunk).
    #[arg(long, default_value_t = 32)]
    pub chunk: usize,
    /// Protocol profile [default: the model's].
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// Output file (encrypted predictions).
    #[arg(long, value_name = "PRED.enc")]
    pub out: PathBuf,
}

/// What a training run did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// S1's training time.
    pub elapsed: Duration,
    /// Costs of the S1–S2 session.
    pub costs: Costs,
}

/// What a classification run did.
#[derive(Debug, Clone)]
pub struct ClassifySummary {
    /// S1's classification time.
    pub elapsed: Duration,
    /// Costs of the S1–S2 session.
    pub costs: Costs,
}

/// Connects to S1 over TLS (our owner certificate; S1's certificate and role checked) and
/// exchanges Hello/Welcome; returns the channel and S1's public key.
pub fn connect_s1(conn: &S1Args) -> CliResult<(TlsChannel, PublicKey)> {
    transport::pki::check_owner_name(&conn.owner)?;
    let creds = conn
        .tls
        .load(&format!("owner-{}", conn.owner), Role::Owner)?;
    let opts = TcpOptions::default()
        .with_read_timeout(Some(Duration::from_secs(conn.timeout_secs.max(1))))
        .with_connect_timeout(Duration::from_secs(10));
    let mut chan = tls::connect(
        conn.s1.as_str(),
        conn.s1_name.as_deref(),
        creds.client_config(Role::S1)?,
        &opts,
    )
    .map_err(|e| match e {
        transport::TransportError::Tls { .. } => CliError(format!(
            "{e} (are this owner's certificate and S1's from the same deployment PKI, and is \
             {} a name in S1's certificate?)",
            conn.s1_name
                .as_deref()
                .unwrap_or_else(|| tls::host_of(&conn.s1))
        )),
        e => CliError(format!("S1 is unreachable: {e}")),
    })?;
    chan.send_msg(&ClientMsg::Hello { version: VERSION })
        .map_err(|e| s1_error(conn, e))?;
    match chan
        .recv_msg::<ServerMsg>()
        .map_err(|e| s1_error(conn, e))?
    {
        ServerMsg::Welcome {
            version,
            public_key,
        } if version == VERSION => Ok((chan, public_key)),
        ServerMsg::Welcome { version, .. } => bail!(
            "S1 at {} speaks protocol version {version}, this client version {VERSION}",
            conn.s1
        ),
        ServerMsg::Error(m) => bail!("S1: {m}"),
        other => bail!("protocol violation by S1: unexpected {}", msg_name(&other)),
    }
}

fn s1_error(conn: &S1Args, e: MessageError) -> CliError {
    match e {
        MessageError::Channel(ChannelError::Closed)
        | MessageError::Channel(ChannelError::Truncated { .. }) => CliError(format!(
            "S1 at {} closed the connection unexpectedly",
            conn.s1
        )),
        MessageError::Channel(ChannelError::Timeout) => CliError(format!(
            "no message from S1 at {} for {} s (see --timeout-secs)",
            conn.s1, conn.timeout_secs
        )),
        MessageError::Channel(ChannelError::Io(io)) if io.to_string().contains("alert") => {
            CliError(format!(
                "S1 at {} refused this client's TLS certificate ({io}): is the owner certificate \
                 from the same deployment PKI as S1's?",
                conn.s1
            ))
        }
        e => CliError(format!("connection to S1 at {}: {e}", conn.s1)),
    }
}

fn msg_name(m: &ServerMsg) -> &'static str {
    match m {
        ServerMsg::Welcome { .. } => "Welcome",
        ServerMsg::Started { .. } => "Started",
        ServerMsg::Progress { .. } => "Progress",
        ServerMsg::Checkpoint(_) => "Checkpoint",
        ServerMsg::Trained { .. } => "Trained",
        ServerMsg::Classified { .. } => "Classified",
        ServerMsg::Error(_) => "Error",
    }
}

fn check_fingerprint(
    path: &Path,
    what: &str,
    fp: &Fingerprint,
    pk: &PublicKey,
    s1: &str,
) -> CliResult<()> {
    if *fp != pk.fingerprint() {
        bail!(
            "wrong key: the {what} {} is encrypted under key {fp}, but S1 at {s1} works under key {}",
            path.display(),
            pk.fingerprint()
        );
    }
    Ok(())
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

/// Progress display of a training or classification run.
struct Display {
    bar: ProgressBar,
    lines: bool,
    start_epoch: u64,
    what: &'static str,
}

impl Display {
    fn new(quiet: bool, start_epoch: u64, epochs: u64, samples: usize, what: &'static str) -> Self {
        let len = epochs.saturating_sub(start_epoch).max(1) * samples as u64;
        let bar = sample_bar(len, quiet);
        bar.set_prefix(what);
        Display {
            bar,
            lines: !quiet && !show_progress(quiet),
            start_epoch,
            what,
        }
    }
    fn progress(&self, epoch: u64, epochs: u64, done: usize, total: usize) {
        let pos = (epoch - self.start_epoch.min(epoch)) * total as u64 + done as u64;
        self.bar.set_position(pos);
        if self.what == "training" {
            self.bar
                .set_prefix(format!("epoch {}/{}", epoch + 1, epochs));
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

/// Runs `smlp train`.
pub fn train(args: &TrainArgs) -> CliResult<TrainSummary> {
    let conn = &args.conn;
    let data: EncryptedDataset = read_file(&DATASET, &args.data)?;
    let ckpt: Option<Checkpoint> = match &args.resume {
        Some(p) => Some(read_file(&CHECKPOINT, p)?),
        None => None,
    };
    let cm = ckpt.as_ref().map(|c| &c.model);
    let hidden = from_ckpt(
        &args.hidden,
        cm.map(|m| m.shape.sizes()[1..m.shape.sizes().len() - 1].to_vec()),
        vec![8],
        "hidden",
    )?;
    let epochs = from_ckpt(
        &args.epochs,
        None,
        ckpt.as_ref().map_or(1, |c| c.config.epochs),
        "epochs",
    )?;
    let batch = from_ckpt(
        &args.batch,
        ckpt.as_ref().map(|c| c.config.batch),
        1,
        "batch",
    )?;
    let seed = from_ckpt(&args.seed, ckpt.as_ref().map(|c| c.config.seed), 1, "seed")?;
    let lr_shift = from_ckpt(&args.lr_shift, cm.map(|m| m.fixed.lr.shift), 6, "lr-shift")?;
    let lr_num = from_ckpt(&args.lr_num, cm.map(|m| m.fixed.lr.num), 1, "lr-num")?;
    let value_bits = from_ckpt(
        &args.value_bits,
        cm.map(|m| m.fixed.value_bits),
        72,
        "value-bits",
    )?;
    let profile = from_ckpt(
        &args.profile.map(Profile::from),
        cm.map(|m| m.profile),
        Profile::Fast,
        "profile",
    )?;
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    if epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if data.is_empty() {
        bail!("{} holds no samples", args.data.display());
    }
    let fixed = FixedParams::new(
        data.frac_bits,
        LearningRate::new(lr_num, lr_shift)?,
        value_bits,
    )?;
    let mut sizes = vec![data.features];
    sizes.extend_from_slice(&hidden);
    sizes.push(data.outputs());
    let shape = Shape::new(sizes)?;
    if let Some(c) = &ckpt {
        if c.model.shape != shape {
            bail!(
                "the checkpoint's network {} does not fit {} (network {shape})",
                c.model.shape,
                args.data.display()
            );
        }
        if c.model.fingerprint != data.fingerprint {
            bail!("the checkpoint and the data set are encrypted under different keys");
        }
    }

    let (mut chan, pk) = connect_s1(conn)?;
    check_fingerprint(&args.data, "data set", &data.fingerprint, &pk, &conn.s1)?;
    let initial = match args.init_seed {
        Some(s) => {
            let init = init_fixed(
                &shape,
                &fixed,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(s),
            );
            Some(encrypt_params(&pk, &init)?)
        }
        None => None,
    };
    let samples = data.len();
    let req = TrainRequest {
        data,
        hidden,
        fixed,
        config: TrainConfig {
            epochs,
            batch,
            seed,
        },
        profile,
        kappa: conn.kappa,
        initial,
        resume: ckpt,
    };
    let wall = Instant::now();
    chan.send_msg(&ClientMsg::Train(Box::new(req)))
        .map_err(|e| s1_error(conn, e))?;
    let mut display: Option<Display> = None;
    let mut start_epoch = 0;
    loop {
        let msg = chan.recv_msg::<ServerMsg>().map_err(|e| s1_error(conn, e));
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                if let Some(d) = &display {
                    d.bar.abandon();
                }
                return Err(e);
            }
        };
        match msg {
            ServerMsg::Started {
                start_epoch: s,
                epochs: e,
                samples: n,
            } => {
                start_epoch = s;
                let d = Display::new(conn.quiet, s, e, n, "training");
                if s > 0 {
                    d.line(format!("resuming after epoch {s} of {e}"));
                }
                display = Some(d);
            }
            ServerMsg::Progress {
                epoch,
                epochs,
                done,
                total,
                ..
            } => {
                if let Some(d) = &display {
                    d.progress(epoch, epochs, done, total);
                }
            }
            ServerMsg::Checkpoint(ck) => {
                if let Some(p) = &args.checkpoint {
                    write_file(&CHECKPOINT, p, &*ck).context("cannot write the checkpoint")?;
                }
                if let Some(d) = &display {
                    d.line(format!(
                        "epoch {}/{} finished after {}{}",
                        ck.model.epochs_trained,
                        ck.config.epochs,
                        secs(wall.elapsed()),
                        args.checkpoint
                            .as_ref()
                            .map_or(String::new(), |p| format!(", checkpoint → {}", p.display()))
                    ));
                }
            }
            ServerMsg::Trained {
                model,
                costs,
                elapsed_ms,
            } => {
                if let Some(d) = &display {
                    d.bar.finish_and_clear();
                }
                write_file(&MODEL, &args.out, &*model)?;
                let elapsed = Duration::from_millis(elapsed_ms);
                let epochs_run = model.epochs_trained - start_epoch;
                let steps = (epochs_run as usize * samples).max(1);
                println!(
                    "trained {} ({} profile) for {epochs_run} epoch(s) on {samples} samples in {} \
                     ({:.2} s per sample) → {}",
                    model.shape,
                    model.profile,
                    secs(elapsed),
                    elapsed.as_secs_f64() / steps as f64,
                    args.out.display()
                );
                print_costs(&costs);
                return Ok(TrainSummary { elapsed, costs });
            }
            ServerMsg::Error(m) => {
                if let Some(d) = &display {
                    d.bar.abandon();
                }
                bail!("S1: {m}")
            }
            other => bail!("protocol violation by S1: unexpected {}", msg_name(&other)),
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

/// Runs `smlp classify`.
pub fn classify(args: &ClassifyArgs) -> CliResult<ClassifySummary> {
    let conn = &args.conn;
    let model: EncryptedModel = read_file(&MODEL, &args.model)?;
    let data: EncryptedDataset = read_file(&DATASET, &args.data)?;
    if model.fingerprint != data.fingerprint {
        bail!(
            "wrong key: the model {} is encrypted under key {}, the data set {} under key {}",
            args.model.display(),
            model.fingerprint,
            args.data.display(),
            data.fingerprint
        );
    }
    if data.features != model.shape.inputs() {
        bail!(
            "the model {} expects {} features, {} has {}",
            args.model.display(),
            model.shape.inputs(),
            args.data.display(),
            data.features
        );
    }
    if data.is_empty() {
        bail!("{} holds no samples", args.data.display());
    }
    let (mut chan, pk) = connect_s1(conn)?;
    check_fingerprint(&args.model, "model", &model.fingerprint, &pk, &conn.s1)?;
    let samples = data.len();
    let req = ClassifyRequest {
        model,
        data,
        kappa: conn.kappa,
        profile: args.profile.map(Profile::from),
        chunk: args.chunk.max(1),
    };
    chan.send_msg(&ClientMsg::Classify(Box::new(req)))
        .map_err(|e| s1_error(conn, e))?;
    let mut display: Option<Display> = None;
    loop {
        let msg = match chan.recv_msg::<ServerMsg>().map_err(|e| s1_error(conn, e)) {
            Ok(m) => m,
            Err(e) => {
                if let Some(d) = &display {
                    d.bar.abandon();
                }
                return Err(e);
            }
        };
        match msg {
            ServerMsg::Started { samples: n, .. } => {
                display = Some(Display::new(conn.quiet, 0, 1, n, "classifying"));
            }
            ServerMsg::Progress {
                epoch,
                epochs,
                done,
                total,
                ..
            } => {
                if let Some(d) = &display {
                    d.progress(epoch, epochs, done, total);
                }
            }
            ServerMsg::Classified {
                predictions,
                costs,
                elapsed_ms,
            } => {
                if let Some(d) = &display {
                    d.bar.finish_and_clear();
                }
                if predictions.classes_enc.len() != samples {
                    bail!(
                        "protocol violation by S1: {} predictions for {samples} samples",
                        predictions.classes_enc.len()
                    );
                }
                write_file(&PREDICTIONS, &args.out, &*predictions)?;
                let elapsed = Duration::from_millis(elapsed_ms);
                println!(
                    "classified {samples} samples in {} ({:.2} s per sample) → {}",
                    secs(elapsed),
                    elapsed.as_secs_f64() / samples as f64,
                    args.out.display()
                );
                print_costs(&costs);
                return Ok(ClassifySummary { elapsed, costs });
            }
            ServerMsg::Error(m) => {
                if let Some(d) = &display {
                    d.bar.abandon();
                }
                bail!("S1: {m}")
            }
            other => bail!("protocol violation by S1: unexpected {}", msg_name(&other)),
        }
    }
}
