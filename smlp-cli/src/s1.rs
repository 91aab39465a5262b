//! S1's side of the client protocol ([`crate::proto`]): one request per TLS connection from an
//! authenticated owner, served with a fresh secure-ops session to S2 (TLS, S2's certificate
//! checked). Every request is bounded before any work; S2's refusals reach the owner as a
//! category, their detail stays in S1's log.

use crate::bail;
use crate::error::{CliError, CliResult, Context};
use crate::proto::{ClassifyRequest, ClientMsg, ServerMsg, TrainRequest, VERSION};
use paillier::PublicKey;
use secure_ops::{Channel, ChannelError, SessionParams, S1};
use smlp::encrypted::{
    classify, costs, new_model, train, Checkpoint, Costs, EncryptedDataset, SecureError,
};
use smlp::Shape;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use transport::{tls, ChannelExt, Peer, SessionLimiter, ShutdownHandle, TcpOptions, TlsChannel};

/// What every S1 session needs.
pub struct S1Context {
    /// The public key S1 works under.
    pub pk: PublicKey,
    /// S2's address.
    pub s2: String,
    /// The name S2's certificate must carry (default: the host of `s2`).
    pub s2_name: Option<String>,
    /// TLS client configuration for S2 (our S1 certificate; S2's role checked).
    pub s2_tls: Arc<rustls::ClientConfig>,
    /// Options of the connection to S2.
    pub s2_options: TcpOptions,
    /// Randomizer pool (capacity, workers) of each session; capacity 0: none.
    pub pool: (usize, usize),
    /// Set when the server shuts down.
    pub shutdown: ShutdownHandle,
    /// Concurrent sessions per owner identity.
    pub limiter: SessionLimiter,
}

/// Why a session must stop early (set by the client-side sends, read by the S2 channel).
#[derive(Clone, Default)]
struct Abort(Arc<Mutex<Option<String>>>);

impl Abort {
    fn set(&self, why: String) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert(why);
    }
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The channel to S2, refusing to send once the session is aborted (client gone, or shutdown),
/// so that a long training run stops at its next S2 round trip.
struct Guarded {
    inner: TlsChannel,
    abort: Abort,
    shutdown: ShutdownHandle,
}

impl Channel for Guarded {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        if self.shutdown.is_shutdown() {
            self.abort.set("S1 is shutting down".into());
        }
        if let Some(why) = self.abort.get() {
            return Err(ChannelError::Io(std::io::Error::other(format!(
                "session aborted: {why}"
            ))));
        }
        self.inner.send_frame(frame)
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.inner.recv_frame()
    }
}

/// Serves one client connection.
pub fn s1_session(ctx: &S1Context, mut chan: TlsChannel, peer: Peer) -> Result<(), String> {
    let owner = chan.peer().name.clone();
    let result = match ctx.limiter.try_acquire(&owner) {
        Some(_slot) => serve(ctx, &mut chan, &peer),
        None => Err(CliError(format!(
            "owner {owner} already runs {} sessions at S1; wait for one to finish",
            ctx.limiter.max()
        ))),
    };
    if let Err(e) = &result {
        // Best effort: the client may be gone.
        let _ = chan.send_msg(&ServerMsg::Error(e.0.clone()));
    }
    result.map_err(|e| e.0)
}

fn serve(ctx: &S1Context, chan: &mut TlsChannel, peer: &Peer) -> CliResult<()> {
    match chan
        .recv_msg::<ClientMsg>()
        .context("reading the client's hello")?
    {
        ClientMsg::Hello { version } if version == VERSION => {}
        ClientMsg::Hello { version } => {
            bail!("the client speaks protocol version {version}, S1 speaks version {VERSION}")
        }
        _ => bail!("protocol violation: expected Hello"),
    }
    chan.send_msg(&ServerMsg::Welcome {
        version: VERSION,
        public_key: ctx.pk.clone(),
    })?;
    match chan
        .recv_msg::<ClientMsg>()
        .context("reading the client's request")?
    {
        ClientMsg::Train(r) => serve_train(ctx, chan, *r, peer),
        ClientMsg::Classify(r) => serve_classify(ctx, chan, *r, peer),
        ClientMsg::Hello { .. } => bail!("protocol violation: second Hello"),
    }
}

/// Opens the secure-ops session with S2.
fn connect_s2(ctx: &S1Context, params: SessionParams, abort: &Abort) -> CliResult<S1<Guarded>> {
    // The session parameters (κ in 40..=256, ℓ, f, and what the key can hold) are the owner's
    // request too: refused here, before S2 is contacted.
    params
        .validate(ctx.pk.bits())
        .map_err(|e| CliError(format!("invalid session parameters: {e}")))?;
    let link = tls::connect(
        ctx.s2.as_str(),
        ctx.s2_name.as_deref(),
        Arc::clone(&ctx.s2_tls),
        &ctx.s2_options,
    )
    .map_err(|e| {
        tracing::warn!(s2 = %ctx.s2, error = %e, "cannot reach S2");
        CliError("S2 is unreachable from S1 (S1's log has the detail)".into())
    })?;
    let chan = Guarded {
        inner: link,
        abort: abort.clone(),
        shutdown: ctx.shutdown.clone(),
    };
    let s1 = S1::connect(ctx.pk.clone(), chan, params)
        .map_err(|e| CliError(format!("S2 at {} refused the session: {e}", ctx.s2)))?;
    Ok(match ctx.pool {
        (0, _) | (_, 0) => s1,
        (cap, workers) => s1.with_randomizer_pool(cap, workers),
    })
}

fn check_key(what: &str, fp: &paillier::Fingerprint, pk: &PublicKey) -> CliResult<()> {
    if *fp != pk.fingerprint() {
        bail!(
            "the {what} is encrypted under key {fp}, but S1 works under key {}",
            pk.fingerprint()
        );
    }
    Ok(())
}

fn shape_for(data: &EncryptedDataset, hidden: &[usize]) -> CliResult<Shape> {
    let mut sizes = vec![data.features];
    sizes.extend_from_slice(hidden);
    sizes.push(data.outputs());
    Ok(Shape::new(sizes)?)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Sends progress to the client at most every 200 ms (and at the end of every epoch).
struct ProgressSender<'a, 'b> {
    chan: &'a RefCell<&'b mut TlsChannel>,
    abort: Abort,
    last: Option<Instant>,
}

impl ProgressSender<'_, '_> {
    fn send(&mut self, p: &smlp::encrypted::Progress) {
        if p.done < p.total
            && self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        self.last = Some(Instant::now());
        let msg = ServerMsg::Progress {
            epoch: p.epoch,
            epochs: p.epochs,
            done: p.done,
            total: p.total,
            elapsed_ms: ms(p.elapsed),
        };
        if let Err(e) = self.chan.borrow_mut().send_msg(&msg) {
            self.abort.set(format!("the client went away ({e})"));
        }
    }
}

/// Bounds of a training request, checked before any work.
const MAX_LAYERS: usize = 8;
const MAX_UNITS: usize = 4096;
const MAX_EPOCHS: u64 = 100_000;
const MAX_BATCH: usize = 4096;

/// What the owner is told when a computation fails at S2 or on the way: a category; the detail
/// (S2's own words, which could otherwise serve as an oracle on crafted inputs) stays in S1's log.
fn categorised(e: SecureError, peer: &Peer, what: &str) -> CliError {
    use secure_ops::ProtocolError as P;
    tracing::warn!(%peer, error = %e, "{what} failed");
    match &e {
        SecureError::Protocol(P::OutOfRange { .. }) => CliError(format!(
            "{what} stopped: a value left the fixed-point range |x| < 2^ℓ (an overflow: try a smaller learning rate or a larger --value-bits); S1's log has the detail"
        )),
        SecureError::Protocol(P::Message(_)) => CliError(format!(
            "{what} stopped: the link to S2 failed (S2 stopped, or the network dropped); S1's log \
             has the detail"
        )),
        SecureError::Protocol(P::Peer(_) | P::Violation(_) | P::Refused { .. }) => CliError(
            format!("{what} stopped: S2 refused the computation; S1's log has the detail"),
        ),
        _ => e.into(),
    }
}

fn serve_train(
    ctx: &S1Context,
    chan: &mut TlsChannel,
    req: TrainRequest,
    peer: &Peer,
) -> CliResult<()> {
    let data = &req.data;
    let config = req.config.clone();
    tracing::info!(
        %peer,
        samples = data.len(),
        features = data.features,
        classes = data.classes,
        hidden = ?req.hidden,
        epochs = config.epochs,
        batch = config.batch,
        seed = config.seed,
        profile = %req.profile,
        kappa = req.kappa,
        owner_init = req.initial.is_some(),
        resume = req.resume.is_some(),
        "training request"
    );
    check_key("data set", &data.fingerprint, &ctx.pk)?;
    data.check(&ctx.pk, true)?;
    if data.is_empty() {
        bail!("the data set is empty");
    }
    if config.batch == 0 || config.batch > MAX_BATCH {
        bail!("batch size must be in 1..={MAX_BATCH}");
    }
    if req.hidden.len() > MAX_LAYERS || req.hidden.iter().any(|&h| h == 0 || h > MAX_UNITS) {
        bail!("at most {MAX_LAYERS} hidden layers of 1..={MAX_UNITS} units are served");
    }
    if config.epochs == 0 || config.epochs > MAX_EPOCHS {
        bail!("epochs must be in 1..={MAX_EPOCHS}");
    }
    let shape = shape_for(data, &req.hidden)?;
    req.fixed.validate()?;
    if req.fixed.frac_bits != data.frac_bits {
        bail!(
            "the training parameters use f = {} fractional bits, the data set f = {}",
            req.fixed.frac_bits,
            data.frac_bits
        );
    }
    if let Some(ck) = &req.resume {
        let m = &ck.model;
        check_key("checkpoint", &m.fingerprint, &ctx.pk)?;
        m.check(&ctx.pk)?;
        if m.shape != shape {
            bail!(
                "the checkpoint's network is {}, this request's is {shape}",
                m.shape
            );
        }
        if m.fixed != req.fixed || m.profile != req.profile {
            bail!("the checkpoint was trained with other fixed-point parameters or profile");
        }
        if (ck.config.batch, ck.config.seed) != (config.batch, config.seed) {
            bail!(
                "the checkpoint's run used batch {} and seed {}, this request batch {} and seed {}",
                ck.config.batch,
                ck.config.seed,
                config.batch,
                config.seed
            );
        }
        if m.epochs_trained > config.epochs {
            bail!(
                "the checkpoint already has {} epochs, more than the {} requested",
                m.epochs_trained,
                config.epochs
            );
        }
    }

    let abort = Abort::default();
    let params = SessionParams {
        value_bits: req.fixed.value_bits,
        frac_bits: req.fixed.frac_bits,
        kappa: req.kappa,
        profile: req.profile,
    };
    let mut s1 = connect_s2(ctx, params, &abort)?;
    let mut model = match req.resume {
        Some(ck) => ck.model,
        None => new_model(&mut s1, shape, req.fixed, data.classes, req.initial)?,
    };
    chan.send_msg(&ServerMsg::Started {
        start_epoch: model.epochs_trained,
        epochs: config.epochs,
        samples: data.len(),
    })?;
    let start = Instant::now();
    let cell = RefCell::new(chan);
    let mut progress = ProgressSender {
        chan: &cell,
        abort: abort.clone(),
        last: None,
    };
    let result = train(
        &mut s1,
        &mut model,
        data,
        &config,
        |p| progress.send(p),
        |m| {
            tracing::info!(%peer, epoch = m.epochs_trained, of = config.epochs, elapsed_s = start.elapsed().as_secs_f64(), "epoch finished");
            let ck = Checkpoint {
                model: m.clone(),
                config: config.clone(),
                position: 0,
            };
            cell.borrow_mut()
                .send_msg(&ServerMsg::Checkpoint(Box::new(ck)))
                .map_err(|e| {
                    abort.set(format!("the client went away ({e})"));
                    SecureError::Mismatch(format!("cannot send the checkpoint to the client: {e}"))
                })
        },
    );
    if let Err(e) = result {
        if let Some(why) = abort.get() {
            bail!("training stopped: {why}");
        }
        return Err(categorised(e, peer, "training"));
    }
    let elapsed = start.elapsed();
    let session_costs: Costs = costs(&mut s1)?;
    let _ = s1.close();
    tracing::info!(
        %peer,
        elapsed_s = elapsed.as_secs_f64(),
        round_trips = session_costs.traffic.round_trips,
        bytes_sent = session_costs.traffic.bytes_sent,
        bytes_received = session_costs.traffic.bytes_received,
        "training finished"
    );
    drop(progress);
    let chan = cell.into_inner();
    chan.send_msg(&ServerMsg::Trained {
        model: Box::new(model),
        costs: session_costs,
        elapsed_ms: ms(elapsed),
    })?;
    Ok(())
}

fn serve_classify(
    ctx: &S1Context,
    chan: &mut TlsChannel,
    req: ClassifyRequest,
    peer: &Peer,
) -> CliResult<()> {
    let (model, data) = (&req.model, &req.data);
    let profile = req.profile.unwrap_or(model.profile);
    tracing::info!(
        %peer,
        samples = data.len(),
        model = %model.shape,
        %profile,
        kappa = req.kappa,
        "classification request"
    );
    check_key("model", &model.fingerprint, &ctx.pk)?;
    check_key("data set", &data.fingerprint, &ctx.pk)?;
    model.check(&ctx.pk)?;
    data.check(&ctx.pk, false)?;
    model.check_inputs(data)?;
    if data.is_empty() {
        bail!("the data set is empty");
    }
    let abort = Abort::default();
    let params = SessionParams {
        value_bits: model.fixed.value_bits,
        frac_bits: model.fixed.frac_bits,
        kappa: req.kappa,
        profile,
    };
    let mut s1 = connect_s2(ctx, params, &abort)?;
    chan.send_msg(&ServerMsg::Started {
        start_epoch: 0,
        epochs: 1,
        samples: data.len(),
    })?;
    let start = Instant::now();
    let cell = RefCell::new(chan);
    let mut progress = ProgressSender {
        chan: &cell,
        abort: abort.clone(),
        last: None,
    };
    let result = classify(&mut s1, model, data, req.chunk.max(1), |p| progress.send(p));
    let predictions = match result {
        Ok(p) => p,
        Err(e) => {
            if let Some(why) = abort.get() {
                bail!("classification stopped: {why}");
            }
            return Err(categorised(e, peer, "classification"));
        }
    };
    let elapsed = start.elapsed();
    let session_costs = costs(&mut s1)?;
    let _ = s1.close();
    tracing::info!(
        %peer,
        elapsed_s = elapsed.as_secs_f64(),
        round_trips = session_costs.traffic.round_trips,
        "classification finished"
    );
    drop(progress);
    let chan = cell.into_inner();
    chan.send_msg(&ServerMsg::Classified {
        predictions: Box::new(predictions),
        costs: session_costs,
        elapsed_ms: ms(elapsed),
    })?;
    Ok(())
}
