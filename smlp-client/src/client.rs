//! The owner's client of S1: [`Client`] (a mutually authenticated TLS connection that speaks
//! [`crate::proto`]: register, upload, train, classify, jobs, fetch, cancel, share, list, delete)
//! and the one place that decides a training job's settings ([`resolve_spec`]: a flag, the
//! checkpoint being resumed, a settings file, the data set's recorded tuning, else
//! `smlp::defaults`; [`TrainSpec`] and [`train_request`]). The `smlp` commands over it, with
//! their flags and terminal output, are in `smlp-cli`; the Python package uses it directly.
//!
//! S1 keeps what it is given (encrypted data sets and models) and runs jobs on its own: a
//! dropped connection (a laptop that sleeps, Ctrl-C) does not stop a job.

use crate::bail;
use crate::error::{CliError, CliResult};
use crate::proto::{ClientMsg, JobInfo, ObjectInfo, ObjectKind, ServerMsg, TrainRequest, VERSION};
use clap::Args;
use paillier::PublicKey;
use rand::SeedableRng;
use secure_ops::Profile;
use smlp::encrypted::{
    encrypt_params, open_dataset, Checkpoint, EncryptedDataset, ModelFile, TrainConfig, TrainRecord,
};
use smlp::tune::Tuned;
use smlp::{init_fixed, FixedParams, LearningRate, Loss, Shape};
use std::time::Duration;
use transport::{tls, ChannelError, ChannelExt, MessageError, Role, TcpOptions, TlsChannel};

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

/// How a request to S1 failed.
#[derive(Debug)]
pub enum Failure {
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

    /// [`connect`](Self::connect), telling a failed link (worth retrying) from a refusal.
    pub fn try_connect(conn: &S1Args) -> Result<Client, Failure> {
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

    /// Uploads a model (with how it was trained, if its file says).
    pub fn upload_model(&mut self, name: &str, model: ModelFile) -> CliResult<ObjectInfo> {
        self.key(&model.model.fingerprint, "model")?;
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

    /// Follows a job until it ends; `on_status` sees every update. A [`Failure::Link`] is worth
    /// reconnecting for: the job goes on at S1.
    pub fn watch(
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

/// A job's settings, each from the first of: `given`; the checkpoint being resumed (a value
/// given must agree with it; epochs are the new total); `file` (`smlp tune`'s settings); the
/// settings `recorded` in the data set (`smlp encrypt`); the defaults ([`smlp::defaults`]).
/// The one place the CLI and the Python package resolve training settings. Returns them with a
/// line saying where they came from (for people, and for [`train_request`], which sends it to
/// S1 to keep in the job record and the model file).
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
    let origin = describe_origins(&origins, file.or(recorded));
    Ok((spec, origin))
}

/// Where each setting came from: `hidden, epochs, batch, loss, η from the data set (auto: …);
/// seed from the defaults`.
fn describe_origins(origins: &[(&str, &str)], base: Option<&Tuned>) -> String {
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
    parts.join("; ")
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

impl TrainSpec {
    /// The settings as a [`TrainRecord`] would show them, for people: `hidden 8, batch 16, η
    /// 1/2^4, 2 epoch(s), smooth-hinge loss, seed 1`.
    pub fn describe(&self) -> String {
        self.record(String::new())
            .describe(self.hidden.clone(), self.lr)
    }

    fn record(&self, origin: String) -> TrainRecord {
        TrainRecord {
            config: TrainConfig {
                epochs: self.epochs,
                batch: self.batch,
                seed: self.seed,
                loss: self.loss,
            },
            origin,
        }
    }
}

/// The request that trains `spec` on the stored data set `dataset` of dimensions
/// `(features, outputs, f)` (from [`dims`] or [`Client::dataset_dims`]), or continues `resume`;
/// `origin` says where the settings came from ([`resolve_spec`]'s line). With `spec.init_seed`,
/// the initial weights are drawn here and encrypted under `pk`.
pub fn train_request(
    pk: &PublicKey,
    dataset: String,
    (features, outputs, frac_bits): (usize, usize, u32),
    spec: TrainSpec,
    origin: String,
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
    let record = spec.record(origin);
    record.check()?;
    Ok(TrainRequest {
        dataset,
        hidden: spec.hidden,
        fixed,
        config: record.config,
        profile: spec.profile,
        kappa: spec.kappa,
        initial,
        resume,
        origin: record.origin,
    })
}

/// A stored data set's dimensions ([`dims`]), key and recorded settings.
pub type StoredDataset = ((usize, usize, u32), PublicKey, Option<Tuned>);

/// Features, outputs and f of a data set.
pub fn dims(d: &EncryptedDataset) -> (usize, usize, u32) {
    (d.features, d.outputs(), d.frac_bits)
}
