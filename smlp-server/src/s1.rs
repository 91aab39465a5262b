//! S1's side of the client protocol ([`smlp_client::proto`]): requests from authenticated owners over
//! TLS, answered from the [`Store`] and the job [`Runner`]. Every request is validated here,
//! once, before anything is stored or queued; what the owner can name is only its own.

use crate::jobs::Runner;
use crate::store::{NewJob, NewObject, Store};
use paillier::format::seal;
use paillier::{Fingerprint, PublicKey};
use secure_ops::SessionParams;
use smlp::encrypted::open_dataset;
use smlp::encrypted::{EncryptedDataset, EncryptedModel, ModelFile, DATASET};
use smlp::Shape;
use smlp_client::bail;
use smlp_client::error::{CliError, CliResult};
use smlp_client::proto::{
    looks_like_id, ClassifyRequest, ClientMsg, JobKind, ObjectInfo, ObjectKind, ServerMsg,
    TrainRequest, JOB_PREFIX, VERSION,
};
use std::sync::Arc;
use std::time::Duration;
use transport::{
    ChannelError, ChannelExt, MessageError, Peer, SessionLimiter, ShutdownHandle, TlsChannel,
};

/// What every S1 session needs.
pub struct S1Context {
    /// Data sets, models, predictions, jobs.
    pub store: Arc<Store>,
    /// The job runner.
    pub runner: Arc<Runner>,
    /// Set when the server shuts down.
    pub shutdown: ShutdownHandle,
    /// Concurrent connections per owner identity.
    pub limiter: SessionLimiter,
}

/// Serves one client connection: Hello, then requests until the client closes.
pub fn s1_session(ctx: &S1Context, mut chan: TlsChannel, peer: Peer) -> Result<(), String> {
    let owner = chan.peer().name.clone();
    let Some(_slot) = ctx.limiter.try_acquire(&owner) else {
        let why = format!(
            "owner {owner} already has {} connections to S1; wait for one to end",
            ctx.limiter.max()
        );
        let _ = chan.send_msg(&ServerMsg::Error(why.clone()));
        return Err(why);
    };
    if let Err(e) = hello(ctx, &mut chan, &owner) {
        let _ = chan.send_msg(&ServerMsg::Error(e.0.clone()));
        return Err(e.0);
    }
    loop {
        let msg = match chan.recv_msg::<ClientMsg>() {
            Ok(m) => m,
            Err(MessageError::Channel(ChannelError::Closed)) => return Ok(()),
            Err(e) => {
                let why = format!("reading the client's request: {e}");
                let _ = chan.send_msg(&ServerMsg::Error(why.clone()));
                return Err(why);
            }
        };
        let action = action_of(&msg);
        match handle(ctx, &mut chan, &owner, msg, &peer) {
            Ok(Some(reply)) => chan
                .send_msg(&reply)
                .map_err(|e| format!("sending the reply: {e}"))?,
            Ok(None) => {}
            Err(e) => {
                tracing::info!(%peer, action, error = %e, "request refused");
                ctx.store
                    .audit(&owner, action, "-", &format!("refused: {}", e.0));
                chan.send_msg(&ServerMsg::Error(e.0))
                    .map_err(|e| format!("sending the error: {e}"))?;
            }
        }
    }
}

fn hello(ctx: &S1Context, chan: &mut TlsChannel, owner: &str) -> CliResult<()> {
    match chan.recv_msg::<ClientMsg>()? {
        ClientMsg::Hello { version } if version == VERSION => {}
        ClientMsg::Hello { version } => {
            bail!("the client speaks protocol version {version}, S1 speaks version {VERSION}")
        }
        _ => bail!("protocol violation: expected Hello"),
    }
    chan.send_msg(&ServerMsg::Welcome {
        version: VERSION,
        keys: ctx.store.owner_keys(owner)?,
    })?;
    Ok(())
}

fn action_of(m: &ClientMsg) -> &'static str {
    match m {
        ClientMsg::Hello { .. } => "hello",
        ClientMsg::Register { .. } => "register",
        ClientMsg::Upload { .. } => "upload",
        ClientMsg::UploadModel { .. } => "upload-model",
        ClientMsg::Train(_) => "train",
        ClientMsg::Classify(_) => "classify",
        ClientMsg::Jobs => "jobs",
        ClientMsg::Watch { .. } => "watch",
        ClientMsg::Fetch { .. } => "fetch",
        ClientMsg::List { .. } => "list",
        ClientMsg::Cancel { .. } => "cancel",
        ClientMsg::Share { allow: true, .. } => "share",
        ClientMsg::Share { allow: false, .. } => "unshare",
        ClientMsg::Delete { .. } => "delete",
    }
}

/// Longest name of an object.
const MAX_NAME: usize = 200;

fn check_name(name: &str) -> CliResult<()> {
    if name.len() > MAX_NAME || name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        bail!("names are at most {MAX_NAME} bytes without control or bidirectional formatting characters");
    }
    Ok(())
}

/// Every id a request names has the form of an id of the store (`ds-`, `md-`, `pr-` or `job-`
/// and 12 hex digits), checked before any other use: a longer or stranger string never reaches
/// a query, an audit row or a log line (the error shows it escaped and cut).
fn check_ids(msg: &ClientMsg) -> CliResult<()> {
    let ids: Vec<&str> = match msg {
        ClientMsg::Train(r) => vec![&r.dataset],
        ClientMsg::Classify(r) => vec![&r.model, &r.data],
        ClientMsg::Watch { job } | ClientMsg::Cancel { job } => vec![job],
        ClientMsg::Share { model, .. } => vec![model],
        ClientMsg::Fetch { id, .. } | ClientMsg::Delete { id } => vec![id],
        ClientMsg::Hello { .. }
        | ClientMsg::Register { .. }
        | ClientMsg::Upload { .. }
        | ClientMsg::UploadModel { .. }
        | ClientMsg::Jobs
        | ClientMsg::List { .. } => vec![],
    };
    for id in ids {
        if !looks_like_id(id) {
            bail!(
                "{} is not an id of S1's store (ds-, md-, pr- or job- and 12 hex digits)",
                smlp_client::util::shown(id, 40)
            );
        }
    }
    Ok(())
}

/// Unicode's bidirectional formatting characters, which can make a name display as another.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

fn handle(
    ctx: &S1Context,
    chan: &mut TlsChannel,
    owner: &str,
    msg: ClientMsg,
    peer: &Peer,
) -> CliResult<Option<ServerMsg>> {
    check_ids(&msg)?;
    Ok(Some(match msg {
        ClientMsg::Hello { .. } => bail!("protocol violation: second Hello"),
        ClientMsg::Register { public_key } => {
            let fp = public_key.fingerprint();
            let new = ctx.store.register_key(owner, &public_key)?;
            tracing::info!(%peer, key = %fp, bits = public_key.bits(), new, "owner key registered");
            ServerMsg::Done(if new {
                format!(
                    "registered key {fp} ({} bits) for owner {owner}",
                    public_key.bits()
                )
            } else {
                format!("key {fp} was already registered for owner {owner}")
            })
        }
        ClientMsg::Upload { name, data } => {
            check_name(&name)?;
            let pk = &key_of(ctx, owner, &data.fingerprint, "data set")?;
            let labelled = data.samples.first().is_some_and(|s| !s.y.is_empty());
            data.check(pk, labelled)?;
            if data.is_empty() {
                bail!("the data set is empty");
            }
            let body = seal(&DATASET, &*data)?;
            let summary = format!(
                "{} samples × {} features, {}",
                data.len(),
                data.features,
                if labelled {
                    format!("{} classes", data.classes)
                } else {
                    "unlabelled".into()
                }
            );
            let (info, new) = ctx.store.put_object(
                owner,
                NewObject {
                    kind: ObjectKind::Dataset,
                    name: &name,
                    summary,
                    body: &body,
                },
            )?;
            tracing::info!(%peer, id = %info.id, new, bytes = info.bytes, "data set stored");
            ServerMsg::Stored(info)
        }
        ClientMsg::UploadModel { name, model: file } => {
            check_name(&name)?;
            let model = &file.model;
            let pk = &key_of(ctx, owner, &model.fingerprint, "model")?;
            model.check(pk)?;
            if let Some(t) = &file.trained {
                t.check()?;
            }
            let body = file.seal()?;
            let summary = format!(
                "{} ({} profile), {} epoch(s)",
                model.shape, model.profile, model.epochs_trained
            );
            let (info, _) = ctx.store.put_object(
                owner,
                NewObject {
                    kind: ObjectKind::Model,
                    name: &name,
                    summary,
                    body: &body,
                },
            )?;
            ServerMsg::Stored(info)
        }
        ClientMsg::Train(req) => {
            let data = dataset(ctx, owner, &req.dataset)?;
            let pk = &key_of(ctx, owner, &data.fingerprint, "data set")?;
            check_train(pk, &req, &data)?;
            let job = ctx.store.submit(
                owner,
                NewJob {
                    kind: JobKind::Train,
                    request: &postcard::to_stdvec(&*req)?,
                    inputs: &[&req.dataset],
                    epochs: req.config.epochs,
                    samples: data.len() as u64,
                    settings: Some(&req.settings_line()),
                },
            )?;
            tracing::info!(%peer, job = %job.id, dataset = %req.dataset, hidden = ?req.hidden, epochs = req.config.epochs, batch = req.config.batch, profile = %req.profile, "training job queued");
            ctx.runner.notify();
            ServerMsg::Submitted(job)
        }
        ClientMsg::Classify(req) => {
            let (model, model_owner, data) = check_classify(ctx, owner, &req)?;
            // A shared model stays its owner's: the job holds only the data set (the model is
            // looked up again, share included, when the job runs).
            let inputs: Vec<&str> = if model_owner == owner {
                vec![&req.model, &req.data]
            } else {
                vec![&req.data]
            };
            let job = ctx.store.submit(
                owner,
                NewJob {
                    kind: JobKind::Classify,
                    request: &postcard::to_stdvec(&*req)?,
                    inputs: &inputs,
                    epochs: 1,
                    samples: data.len() as u64,
                    settings: None,
                },
            )?;
            tracing::info!(%peer, job = %job.id, model = %model.shape, model_owner = %model_owner, samples = data.len(), "classification job queued");
            ctx.runner.notify();
            ServerMsg::Submitted(job)
        }
        ClientMsg::Jobs => ServerMsg::JobList(ctx.runner.list(owner)?),
        ClientMsg::Watch { job } => loop {
            let info = ctx.runner.info(owner, &job)?;
            let ended = info.state.ended();
            chan.send_msg(&ServerMsg::Status(info))?;
            if ended {
                return Ok(None);
            }
            if ctx.shutdown.is_shutdown() {
                bail!("S1 is shutting down; job {job} continues when S1 is back (smlp wait {job})");
            }
            std::thread::sleep(Duration::from_millis(300));
        },
        ClientMsg::Fetch { id, checkpoint } => {
            let (info, body) = fetch(ctx, owner, &id, checkpoint)?;
            ctx.store.audit(owner, "fetch", &id, "ok");
            ServerMsg::Object { info, body }
        }
        ClientMsg::List { kind } => {
            let mut objects = ctx.store.list_objects(owner, kind)?;
            if kind == ObjectKind::Model {
                objects.extend(ctx.store.shared_models(owner)?);
            }
            ServerMsg::Objects(objects)
        }
        ClientMsg::Cancel { job } => {
            let msg = ctx.runner.cancel(owner, &job)?;
            tracing::info!(%peer, %job, "cancel: {msg}");
            ServerMsg::Done(msg)
        }
        ClientMsg::Delete { id } => ServerMsg::Done(ctx.store.delete(owner, &id)?),
        ClientMsg::Share { model, with, allow } => {
            transport::pki::check_owner_name(&with).map_err(|e| CliError(e.to_string()))?;
            let msg = if allow {
                if ctx.store.share(owner, &model, &with)? {
                    format!("{with} may now classify with {model}, under {with}'s own key (S1 switches keys through S2; the model never leaves your key)")
                } else {
                    format!("{model} was already shared with {with}")
                }
            } else if ctx.store.unshare(owner, &model, &with)? {
                format!(
                    "{model} is no longer shared with {with}; its jobs not yet run will be refused"
                )
            } else {
                format!("{model} was not shared with {with}")
            };
            tracing::info!(%peer, %model, %with, allow, "share changed");
            ServerMsg::Done(msg)
        }
    }))
}

fn dataset(ctx: &S1Context, owner: &str, id: &str) -> CliResult<EncryptedDataset> {
    let (_, body) = ctx.store.get_object(owner, id, Some(ObjectKind::Dataset))?;
    Ok(open_dataset(&body)?)
}

fn fetch(
    ctx: &S1Context,
    owner: &str,
    id: &str,
    checkpoint: bool,
) -> CliResult<(ObjectInfo, Vec<u8>)> {
    if !id.starts_with(JOB_PREFIX) || !id[JOB_PREFIX.len()..].starts_with('-') {
        if checkpoint {
            bail!("--checkpoint applies to training jobs, {id} is not a job");
        }
        return Ok(ctx.store.get_object(owner, id, None)?);
    }
    let job = ctx.runner.info(owner, id)?;
    if checkpoint {
        if job.kind != JobKind::Train {
            bail!("job {id} is a classification: it has no checkpoints");
        }
        let body = ctx.store.owner_checkpoint(owner, id)?;
        let info = ObjectInfo {
            id: id.to_string(),
            kind: ObjectKind::Model,
            name: format!("checkpoint of {id}"),
            summary: format!("epoch {} of {}", job.epoch, job.epochs),
            bytes: body.len() as u64,
            created: crate::store::now(),
        };
        return Ok((info, body));
    }
    match &job.result {
        Some(r) => Ok(ctx.store.get_object(owner, r, None)?),
        None => bail!(
            "job {id} is {}{}: there is no result to fetch{}",
            job.state.name(),
            job.note
                .as_deref()
                .map_or(String::new(), |n| format!(" ({n})")),
            if job.state.ended() {
                String::new()
            } else {
                format!(" yet (smlp wait {id})")
            }
        ),
    }
}

/// The owner's registered key `fp`, under which its `what` is encrypted.
fn key_of(ctx: &S1Context, owner: &str, fp: &Fingerprint, what: &str) -> CliResult<PublicKey> {
    match ctx.store.owner_key(owner, fp)? {
        Some(pk) => Ok(pk),
        None => bail!(
            "the {what} is encrypted under key {fp}, which owner {owner} has not registered at S1 (smlp register --public-key KEYDIR/public.key)"
        ),
    }
}

fn check_key(what: &str, fp: &Fingerprint, pk: &PublicKey) -> CliResult<()> {
    if *fp != pk.fingerprint() {
        bail!(
            "the {what} is encrypted under key {fp}, the training data under key {}: one job never mixes keys",
            pk.fingerprint()
        );
    }
    Ok(())
}

/// Bounds of a training request, checked before any work.
const MAX_LAYERS: usize = 8;
const MAX_UNITS: usize = 4096;
const MAX_EPOCHS: u64 = 100_000;
const MAX_BATCH: usize = 4096;

fn check_session(pk: &PublicKey, params: SessionParams) -> CliResult<()> {
    // The session parameters (κ in 40..=256, ℓ, f, and what the key can hold) are the owner's
    // request too: refused here, before S2 is ever contacted.
    params
        .validate(pk.bits())
        .map_err(|e| CliError(format!("invalid session parameters: {e}")))
}

/// A training request against a stored data set. The data set's ciphertexts and shape were
/// checked under this key when it was uploaded (every sample labelled like the first), and the
/// job's training checks them again as the library's entry point does: not a third time here.
fn check_train(pk: &PublicKey, req: &TrainRequest, data: &EncryptedDataset) -> CliResult<()> {
    let config = &req.config;
    if data.samples.first().is_none_or(|s| s.y.is_empty()) {
        bail!(
            "data set {} has no labels: it cannot be trained on",
            req.dataset
        );
    }
    if config.batch == 0 || config.batch > MAX_BATCH {
        bail!("batch size must be in 1..={MAX_BATCH}");
    }
    req.record().check()?;
    if req.hidden.len() > MAX_LAYERS || req.hidden.iter().any(|&h| h == 0 || h > MAX_UNITS) {
        bail!("at most {MAX_LAYERS} hidden layers of 1..={MAX_UNITS} units are served");
    }
    if config.epochs == 0 || config.epochs > MAX_EPOCHS {
        bail!("epochs must be in 1..={MAX_EPOCHS}");
    }
    let shape = Shape::mlp(data.features, &req.hidden, data.outputs())?;
    req.fixed.validate()?;
    if req.fixed.frac_bits != data.frac_bits {
        bail!(
            "the training parameters use f = {} fractional bits, the data set f = {}",
            req.fixed.frac_bits,
            data.frac_bits
        );
    }
    check_session(pk, req.session())?;
    if let Some(init) = &req.initial {
        EncryptedModel {
            fingerprint: pk.fingerprint(),
            shape: shape.clone(),
            fixed: req.fixed,
            profile: req.profile,
            classes: data.classes,
            epochs_trained: 0,
            params: init.clone(),
        }
        .check(pk)
        .map_err(|e| CliError(format!("the initial weights: {e}")))?;
    }
    if let Some(ck) = &req.resume {
        let m = &ck.model;
        check_key("checkpoint", &m.fingerprint, pk)?;
        m.check(pk)?;
        if m.shape != shape {
            bail!(
                "the checkpoint's network is {}, this request's is {shape}",
                m.shape
            );
        }
        if m.fixed != req.fixed || m.profile != req.profile {
            bail!("the checkpoint was trained with other fixed-point parameters or profile");
        }
        ck.check_resumable(config, data.len())?;
    }
    Ok(())
}

/// The model (the owner's, or one shared with it), the model's owner and the data set of a
/// classification, checked. Under a shared model the data set stays under the owner's own key:
/// the job switches keys through S2.
fn check_classify(
    ctx: &S1Context,
    owner: &str,
    req: &ClassifyRequest,
) -> CliResult<(EncryptedModel, String, EncryptedDataset)> {
    let (model_owner, body) = ctx.store.usable_model(owner, &req.model)?;
    let model = ModelFile::open(&body)?.model;
    let data = dataset(ctx, owner, &req.data)?;
    // Both keys registered (by the model's owner and by this owner).
    let model_pk = &key_of(ctx, &model_owner, &model.fingerprint, "model")?;
    let data_pk = &key_of(ctx, owner, &data.fingerprint, "data set")?;
    if model_owner == owner && data.fingerprint != model.fingerprint {
        bail!(
            "the data set is encrypted under key {}, the model under key {}: one job never mixes keys",
            data.fingerprint,
            model.fingerprint
        );
    }
    // Both were checked under these keys when they were stored (uploaded, or trained here), and
    // the job's classification checks them again at the library's entry: shapes only here.
    model.check_input_shape(&data)?;
    if req.chunk == 0 || req.chunk > MAX_BATCH {
        bail!("chunk must be in 1..={MAX_BATCH}");
    }
    check_session(model_pk, req.session(&model))?;
    check_session(data_pk, req.session(&model))?;
    Ok((model, model_owner, data))
}
