//! S1's job runner: a queue of training and classification jobs kept in the [`Store`], run by
//! `--max-running-jobs` workers (default 1: jobs share the same cores), each with its own
//! secure-ops session to S2 (TLS, S2's certificate checked).
//!
//! A training job checkpoints into the store every `--checkpoint-every` samples (default: about
//! every `--checkpoint-secs` seconds of work) and at the end of every epoch; a restarted S1 queues
//! every job it left running and resumes it from its checkpoint, which gives the same computation
//! as the uninterrupted run ([`smlp::encrypted::train_from`]). When S2 cannot be reached or the
//! link drops, the job reconnects with backoff and resumes from its last checkpoint; it fails only
//! when S2 stayed unreachable for `--s2-retry-deadline-secs` without progress. Classification jobs
//! restart from the beginning. Only the owner's cancel (or a permanent error) ends a job early.

use crate::store::{JobRow, NewObject, Store, StoreError};
use paillier::format::{open, seal};
use paillier::PublicKey;
use secure_ops::{Channel, ChannelError, ProtocolError, SessionParams, S1};
use smlp::encrypted::open_dataset;
use smlp::encrypted::{
    classify, costs, new_model, switch_dataset, switch_predictions, train_from, Checkpoint, Costs,
    EncryptedDataset, EncryptedModel, ModelFile, SecureError, TrainConfig, CHECKPOINT, PREDICTIONS,
};
use smlp::Shape;
use smlp_client::error::CliError;
use smlp_client::proto::{ClassifyRequest, JobInfo, JobKind, JobState, ObjectKind, TrainRequest};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use transport::{tls, ShutdownHandle, TcpOptions, TlsChannel};

/// How S1 reaches S2.
pub struct S2Link {
    /// The addresses of S2's replicas (one or more), tried round robin.
    pub addrs: Vec<String>,
    /// The replica the next session starts trying at.
    pub next: std::sync::atomic::AtomicUsize,
    /// The name S2's certificate must carry (default: the host of `addr`).
    pub name: Option<String>,
    /// TLS client configuration for S2 (our S1 certificate; S2's role checked).
    pub tls: Arc<rustls::ClientConfig>,
    /// Options of the connection.
    pub options: TcpOptions,
    /// Randomizer pool (capacity, workers) of each session; capacity 0: none.
    pub pool: (usize, usize),
}

/// Settings of the runner.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Jobs running at once.
    pub max_running: usize,
    /// Checkpoint every this many samples (`None`: by time).
    pub checkpoint_every: Option<usize>,
    /// Without `checkpoint_every`: checkpoint after this much work.
    pub checkpoint_interval: Duration,
    /// A job fails when S2 stays unreachable this long without progress.
    pub s2_retry_deadline: Duration,
    /// Run training jobs on a Ray cluster (`serve-s1 --ray`), with the directory for the
    /// drivers' files; `None`: in this process.
    pub ray: Option<(crate::ray::RayOptions, std::path::PathBuf)>,
    /// How the jobs' S1–S2 sessions compute exact comparisons (`serve-s1 --comparison`).
    pub comparison: secure_ops::Comparison,
}

/// Why a session must stop early.
#[derive(Clone, Default)]
struct Abort(Arc<Mutex<Option<Stop>>>);

#[derive(Clone, Debug)]
enum Stop {
    Cancelled,
    Shutdown,
}

impl Abort {
    fn set(&self, why: Stop) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.get_or_insert(why);
    }
    fn get(&self) -> Option<Stop> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The channel to S2, refusing to send once the job is cancelled or S1 shuts down, so that a
/// long job stops at its next S2 round trip.
struct Guarded {
    inner: TlsChannel,
    abort: Abort,
    shutdown: ShutdownHandle,
}

impl Channel for Guarded {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        if self.shutdown.is_shutdown() {
            self.abort.set(Stop::Shutdown);
        }
        if self.abort.get().is_some() {
            return Err(ChannelError::Io(std::io::Error::other("job stopped")));
        }
        self.inner.send_frame(frame)
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.inner.recv_frame()
    }
}

/// Progress of a running job, kept in memory (the store has the last checkpoint's).
#[derive(Clone)]
struct Live {
    epoch: u64,
    done: u64,
    samples: u64,
    rate: f64,
    abort: Abort,
}

/// How an attempt to run a job ended, other than with a result.
enum Outcome {
    /// Stopped by the owner or by S1's shutdown.
    Stopped,
    /// S2 unreachable or the link dropped; retry. `progressed`: a checkpoint was saved.
    Retry { why: String, progressed: bool },
    /// A permanent error (told to the owner).
    Failed(String),
}

impl From<StoreError> for Outcome {
    fn from(e: StoreError) -> Self {
        Outcome::Failed(e.to_string())
    }
}

/// The job runner.
pub struct Runner {
    store: Arc<Store>,
    s2: S2Link,
    opts: RunnerOptions,
    shutdown: ShutdownHandle,
    live: Mutex<HashMap<String, Live>>,
    wake: (Mutex<()>, Condvar),
}

impl Runner {
    /// A runner over `store`; [`Runner::start`] starts its workers.
    pub fn new(
        store: Arc<Store>,
        s2: S2Link,
        opts: RunnerOptions,
        shutdown: ShutdownHandle,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            store,
            s2,
            opts,
            shutdown,
            live: Mutex::new(HashMap::new()),
            wake: (Mutex::new(()), Condvar::new()),
        })
    }

    /// Queues the jobs a previous S1 left running and starts the workers.
    pub fn start(self: &Arc<Self>) -> Result<Vec<std::thread::JoinHandle<()>>, CliError> {
        let n = self.store.requeue_running()?;
        if n > 0 {
            tracing::info!(jobs = n, "resuming jobs left running by the previous S1");
        }
        Ok((0..self.opts.max_running.max(1))
            .map(|i| {
                let me = Arc::clone(self);
                std::thread::Builder::new()
                    .name(format!("job-worker-{i}"))
                    .spawn(move || me.worker())
                    .expect("spawn a job worker")
            })
            .collect())
    }

    /// Wakes the workers (a job was queued, or S1 shuts down).
    pub fn notify(&self) {
        let _g = self.wake.0.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.1.notify_all();
    }

    fn worker(self: Arc<Self>) {
        while !self.shutdown.is_shutdown() {
            match self.store.claim_next() {
                Ok(Some(job)) => self.run(job),
                Ok(None) => {
                    let g = self.wake.0.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = self.wake.1.wait_timeout(g, Duration::from_millis(500));
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the job queue");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// The owner's view of a job: the store's row with the live progress of a running job.
    pub fn info(&self, owner: &str, id: &str) -> Result<JobInfo, StoreError> {
        let info = self.store.job(owner, id)?;
        Ok(self.merge(info))
    }

    /// The owner's jobs with live progress.
    pub fn list(&self, owner: &str) -> Result<Vec<JobInfo>, StoreError> {
        Ok(self
            .store
            .jobs(owner)?
            .into_iter()
            .map(|i| self.merge(i))
            .collect())
    }

    fn merge(&self, mut info: JobInfo) -> JobInfo {
        if info.state == JobState::Running {
            let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(l) = live.get(&info.id) {
                info.epoch = l.epoch;
                info.done = l.done;
                info.samples = l.samples;
                info.samples_per_s = l.rate;
            }
        }
        info
    }

    /// Cancels the owner's job; a running one stops at its next S2 round trip.
    pub fn cancel(&self, owner: &str, id: &str) -> Result<String, StoreError> {
        let msg = self.store.cancel(owner, id)?;
        if let Some(l) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            l.abort.set(Stop::Cancelled);
        }
        Ok(msg)
    }

    fn set_live(&self, id: &str, f: impl FnOnce(&mut Live)) {
        if let Some(l) = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(id)
        {
            f(l);
        }
    }

    fn run(&self, job: JobRow) {
        let abort = Abort::default();
        self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(
            job.id.clone(),
            Live {
                epoch: 0,
                done: 0,
                samples: 0,
                rate: 0.0,
                abort: abort.clone(),
            },
        );
        tracing::info!(job = %job.id, owner = %job.owner, kind = job.kind.name(), "job started");
        let mut failing_since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(500);
        loop {
            let attempt = match job.kind {
                JobKind::Train => self.train(&job, &abort),
                JobKind::Classify => self.classify(&job, &abort),
            };
            let outcome = match attempt {
                Ok(result) => match self.store.finish(
                    &job,
                    result.as_new(),
                    result.elapsed_ms,
                    result.costs.as_ref(),
                ) {
                    Ok(Some(id)) => {
                        tracing::info!(job = %job.id, result = %id, "job done");
                        break;
                    }
                    Ok(None) => {
                        tracing::info!(job = %job.id, "job cancelled; result dropped");
                        break;
                    }
                    Err(e) => Outcome::Failed(format!("cannot store the result: {e}")),
                },
                Err(o) => o,
            };
            match outcome {
                Outcome::Stopped => {
                    match abort.get() {
                        Some(Stop::Cancelled) => tracing::info!(job = %job.id, "job cancelled"),
                        _ => tracing::info!(job = %job.id, "job paused: S1 is shutting down"),
                    }
                    break;
                }
                Outcome::Failed(why) => {
                    tracing::warn!(job = %job.id, error = %why, "job failed");
                    if let Err(e) = self.store.fail(&job, &why) {
                        tracing::error!(job = %job.id, error = %e, "cannot record the failure");
                    }
                    break;
                }
                Outcome::Retry { why, progressed } => {
                    if progressed {
                        failing_since = None;
                        backoff = Duration::from_millis(500);
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.opts.s2_retry_deadline {
                        tracing::warn!(job = %job.id, error = %why, "job failed: S2 stayed unreachable");
                        // The owner learns the category (S2's address and errors are S1's
                        // operator's business).
                        let told = format!(
                            "S2 stayed unreachable for {} s; S1's log has the detail{}",
                            self.opts.s2_retry_deadline.as_secs_f64(),
                            if job.kind == JobKind::Train {
                                format!(
                                    "; the last checkpoint is kept (smlp fetch {} --checkpoint)",
                                    job.id
                                )
                            } else {
                                String::new()
                            }
                        );
                        let _ = self.store.fail(&job, &told);
                        break;
                    }
                    tracing::warn!(job = %job.id, error = %why, retry_in_s = backoff.as_secs_f64(), "S2 link failed; retrying from the last checkpoint");
                    let _ = self
                        .store
                        .set_note(&job.id, Some("waiting for S2 to come back; retrying"));
                    if !self.sleep(backoff, &abort) {
                        break;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job.id);
    }

    /// Sleeps `d` unless the job is stopped meanwhile (then false).
    fn sleep(&self, d: Duration, abort: &Abort) -> bool {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.shutdown.is_shutdown() || abort.get().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
        }
        !self.shutdown.is_shutdown() && abort.get().is_none()
    }

    /// A TLS link to one of S2's replicas: starting at the next in the round robin, each tried
    /// once in turn (with one replica, with the configured connection retry); the address that
    /// answered, or `Retry` naming every failure.
    fn connect_replica(&self) -> Result<(String, TlsChannel), Outcome> {
        use std::sync::atomic::Ordering;
        let n = self.s2.addrs.len().max(1);
        let start = self.s2.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut options = self.s2.options.clone();
        if n > 1 {
            // Another replica is the retry: do not wait on a dead one.
            options = options.with_connect_retry(Duration::ZERO);
        }
        let mut failures = Vec::new();
        for i in 0..n {
            let Some(addr) = self.s2.addrs.get((start + i) % n) else {
                continue;
            };
            match tls::connect(
                addr.as_str(),
                self.s2.name.as_deref(),
                Arc::clone(&self.s2.tls),
                &options,
            ) {
                Ok(link) => return Ok((addr.clone(), link)),
                Err(e) => {
                    if n > 1 {
                        tracing::warn!(s2 = %addr, error = %e, "S2 replica unreachable; trying the next");
                    }
                    failures.push(format!("{addr}: {e}"));
                }
            }
        }
        Err(Outcome::Retry {
            why: format!("cannot reach S2 at {}", failures.join("; ")),
            progressed: false,
        })
    }

    /// Opens a secure-ops session with S2 for `job`; logs S2's DGK key (received in the
    /// handshake over TLS) and records its fingerprint in the audit table with the job.
    fn connect(
        &self,
        job: &JobRow,
        pk: PublicKey,
        params: SessionParams,
        abort: &Abort,
    ) -> Result<S1<Guarded>, Outcome> {
        let (addr, link) = self.connect_replica()?;
        let chan = Guarded {
            inner: link,
            abort: abort.clone(),
            shutdown: self.shutdown.clone(),
        };
        let params = SessionParams {
            comparison: self.opts.comparison,
            ..params
        };
        let s1 = S1::connect(pk, chan, params).map_err(|e| match e {
            ProtocolError::Message(_) => Outcome::Retry {
                why: format!("S2's handshake failed: {e}"),
                progressed: false,
            },
            e => Outcome::Failed(format!("S2 refused the session: {e}")),
        })?;
        let key = s1.dgk_public_key();
        let fp = key.fingerprint().to_string();
        tracing::info!(job = %job.id, s2 = %addr, dgk_key = %fp, bits = key.bits(), u = key.u(), t = key.t(), profile = %params.profile, comparison = %params.comparison, "S2 session opened");
        self.store
            .audit(&job.owner, "s2-session", &job.id, &format!("dgk-key {fp}"));
        Ok(match self.s2.pool {
            (0, _) | (_, 0) => s1,
            (cap, workers) => s1.with_randomizer_pool(cap, workers),
        })
    }

    /// What a failed computation means for the job.
    fn outcome(&self, e: SecureError, abort: &Abort, job: &JobRow, progressed: bool) -> Outcome {
        if abort.get().is_some() || self.shutdown.is_shutdown() {
            return Outcome::Stopped;
        }
        let what = job.kind.name();
        tracing::warn!(job = %job.id, error = %e, "{what} failed");
        match &e {
            SecureError::Protocol(ProtocolError::Message(m)) => Outcome::Retry {
                why: format!("the link to S2 failed: {m}"),
                progressed,
            },
            SecureError::Protocol(ProtocolError::OutOfRange { .. }) => Outcome::Failed(
                "a value left the fixed-point range |x| < 2^ℓ (an overflow: try a smaller \
                 learning rate or a larger --value-bits); S1's log has the detail"
                    .into(),
            ),
            SecureError::Protocol(
                ProtocolError::Peer(_)
                | ProtocolError::Violation(_)
                | ProtocolError::Refused { .. },
            ) => Outcome::Failed("S2 refused the computation; S1's log has the detail".into()),
            SecureError::Callback(_) => Outcome::Failed(
                "S1 could not store the job's checkpoint (its disk or store); S1's log has the \
                 detail"
                    .into(),
            ),
            _ => Outcome::Failed(e.to_string()),
        }
    }

    fn load_dataset(&self, owner: &str, id: &str) -> Result<EncryptedDataset, Outcome> {
        let (_, body) = self
            .store
            .get_object(owner, id, Some(ObjectKind::Dataset))?;
        open_dataset(&body).map_err(|e| Outcome::Failed(format!("stored data set {id}: {e}")))
    }

    /// The owner's registered key `fp`: the key the job works under (its inputs' key).
    fn key(&self, job: &JobRow, fp: &paillier::Fingerprint) -> Result<PublicKey, Outcome> {
        self.store.owner_key(&job.owner, fp)?.ok_or_else(|| {
            Outcome::Failed(format!(
                "the job's inputs are under key {fp}, which owner {} has not registered (smlp register)",
                job.owner
            ))
        })
    }

    fn train(&self, job: &JobRow, abort: &Abort) -> Result<JobResult, Outcome> {
        let req: TrainRequest = postcard::from_bytes(&job.request)
            .map_err(|e| Outcome::Failed(format!("stored request: {e}")))?;
        let data = self.load_dataset(&job.owner, &req.dataset)?;
        let config = req.config.clone();
        let samples = data.len() as u64;
        let stored: Option<Checkpoint> = match self.store.checkpoint(&job.id)? {
            Some(c) => {
                tracing::info!(job = %job.id, epoch = c.epoch, position = c.position, "stored checkpoint found");
                Some(
                    open(&CHECKPOINT, &c.body)
                        .map_err(|e| Outcome::Failed(format!("stored checkpoint: {e}")))?,
                )
            }
            None => None,
        };
        let pk = self.key(job, &data.fingerprint)?;
        let mut s1 = self.connect(job, pk.clone(), req.session(), abort)?;
        let _ = self.store.set_note(&job.id, None);
        let mut progress = Progress::new(self, job, abort, &config);
        let (mut model, position) = match stored.or(req.resume.clone()) {
            Some(c) => {
                tracing::info!(job = %job.id, epoch = c.model.epochs_trained, position = c.position, "resuming from checkpoint");
                (c.model, c.position)
            }
            None => {
                let shape = Shape::mlp(data.features, &req.hidden, data.outputs())
                    .map_err(|e| Outcome::Failed(e.to_string()))?;
                let m = new_model(&mut s1, shape, req.fixed, data.classes, req.initial.clone())
                    .map_err(|e| self.outcome(e, abort, job, false))?;
                // The initial weights are kept at once: a restart continues with the same ones.
                progress
                    .save(&m, 0)
                    .map_err(|e| self.outcome(SecureError::Callback(e), abort, job, false))?;
                (m, 0)
            }
        };
        self.set_live(&job.id, |l| {
            l.epoch = model.epochs_trained;
            l.done = position as u64;
            l.samples = samples;
        });
        if self.opts.ray.is_some() {
            // The initial weights are drawn and kept; the rest runs on the cluster.
            let _ = s1.close();
            let start = Checkpoint {
                model,
                config,
                position,
            };
            return self.train_on_ray(job, abort, &req, &data, &pk, start);
        }
        let start = progress.start();
        let result = train_from(
            &mut s1,
            &mut model,
            &data,
            &config,
            position,
            |_| {},
            |m, pos| progress.step(m, pos).map_err(SecureError::Callback),
        );
        if let Err(e) = result {
            return Err(self.outcome(e, abort, job, progress.progressed));
        }
        let elapsed = start.elapsed();
        let costs = costs(&mut s1).ok();
        let _ = s1.close();
        tracing::info!(job = %job.id, elapsed_s = elapsed.as_secs_f64(), "training finished");
        self.model_result(job, &req, model, elapsed, costs)
    }

    /// A training job's result: its model's file, with how it was trained.
    fn model_result(
        &self,
        job: &JobRow,
        req: &TrainRequest,
        model: EncryptedModel,
        elapsed: Duration,
        costs: Option<Costs>,
    ) -> Result<JobResult, Outcome> {
        let file = ModelFile {
            model,
            trained: Some(req.record()),
        };
        let body = file.seal().map_err(|e| Outcome::Failed(e.to_string()))?;
        let model = file.model;
        Ok(JobResult {
            kind: ObjectKind::Model,
            name: format!("model of {}", job.id),
            summary: format!(
                "{} ({} profile), {} epoch(s) on {}",
                model.shape, model.profile, model.epochs_trained, req.dataset
            ),
            body,
            elapsed_ms: ms(elapsed),
            costs,
        })
    }

    /// [`Runner::train`] on a Ray cluster ([`crate::ray`]) from `start`: progress and
    /// checkpoints from the driver's steps, the model from its file.
    fn train_on_ray(
        &self,
        job: &JobRow,
        abort: &Abort,
        req: &TrainRequest,
        data: &EncryptedDataset,
        pk: &PublicKey,
        start: Checkpoint,
    ) -> Result<JobResult, Outcome> {
        let Some((ray, work)) = &self.opts.ray else {
            return Err(Outcome::Failed("S1 runs no Ray jobs".into()));
        };
        let mut progress = Progress::new(self, job, abort, &req.config);
        let begun = progress.start();
        let on_step = |ck: Checkpoint| -> Result<(), String> {
            // What the driver wrote must continue this job under its key.
            ck.model
                .check(pk)
                .and_then(|_| ck.check_resumable(&req.config, data.len()))
                .map_err(|e| format!("the Ray driver's checkpoint: {e}"))?;
            progress.step(&ck.model, ck.position)
        };
        let stop = || abort.get().is_some() || self.shutdown.is_shutdown();
        let input = crate::ray::Input {
            req,
            data,
            pk,
            start: &start,
        };
        let ended = crate::ray::run(ray, work, input, on_step, stop);
        match ended {
            crate::ray::Ended::Done(file) => {
                let model = file.model;
                model
                    .check(pk)
                    .map_err(|e| Outcome::Failed(format!("the Ray driver's model: {e}")))?;
                if model.epochs_trained != req.config.epochs || model.shape != start.model.shape {
                    return Err(Outcome::Failed(format!(
                        "the Ray driver returned a model of {} after {} epoch(s), not {} after {}",
                        model.shape, model.epochs_trained, start.model.shape, req.config.epochs
                    )));
                }
                let elapsed = begun.elapsed();
                tracing::info!(job = %job.id, elapsed_s = elapsed.as_secs_f64(), "training on Ray finished");
                self.model_result(job, req, model, elapsed, None)
            }
            crate::ray::Ended::Stopped => Err(Outcome::Stopped),
            crate::ray::Ended::Retry(why) => {
                if stop() {
                    return Err(Outcome::Stopped);
                }
                Err(Outcome::Retry {
                    why,
                    progressed: progress.progressed,
                })
            }
            crate::ray::Ended::Failed(why) => {
                if stop() {
                    return Err(Outcome::Stopped);
                }
                tracing::warn!(job = %job.id, error = %why, "training on Ray failed");
                Err(Outcome::Failed(why))
            }
        }
    }

    fn classify(&self, job: &JobRow, abort: &Abort) -> Result<JobResult, Outcome> {
        let req: ClassifyRequest = postcard::from_bytes(&job.request)
            .map_err(|e| Outcome::Failed(format!("stored request: {e}")))?;
        // The owner's model, or one shared with it (the share is checked again now).
        let (model_owner, body) = self.store.usable_model(&job.owner, &req.model)?;
        let model = ModelFile::open(&body)
            .map_err(|e| Outcome::Failed(format!("stored model {}: {e}", req.model)))?
            .model;
        let data = self.load_dataset(&job.owner, &req.data)?;
        if model_owner != job.owner {
            return self.classify_shared(job, &req, &model, &model_owner, &data, abort);
        }
        if data.fingerprint != model.fingerprint {
            return Err(Outcome::Failed(format!(
                "the data set is under key {}, the model under key {}",
                data.fingerprint, model.fingerprint
            )));
        }
        let pk = self.key(job, &model.fingerprint)?;
        let mut s1 = self.connect(job, pk, req.session(&model), abort)?;
        let _ = self.store.set_note(&job.id, None);
        // The work of the run, after the S2 handshake (as `JobInfo::elapsed_ms` says).
        let start = Instant::now();
        let samples = data.len() as u64;
        let predictions = classify(
            &mut s1,
            &model,
            &data,
            req.chunk.max(1),
            self.classify_progress(&job.id, start, samples),
        )
        .map_err(|e| self.outcome(e, abort, job, false))?;
        let elapsed = start.elapsed();
        let costs = costs(&mut s1).ok();
        let _ = s1.close();
        predictions_result(
            job,
            &predictions,
            format!("{samples} samples, model {}", req.model),
            elapsed,
            costs,
        )
    }
}

/// A classification's result: its predictions sealed, with the job's name and `summary`.
fn predictions_result(
    job: &JobRow,
    predictions: &smlp::encrypted::EncryptedPredictions,
    summary: String,
    elapsed: Duration,
    costs: Option<Costs>,
) -> Result<JobResult, Outcome> {
    Ok(JobResult {
        kind: ObjectKind::Predictions,
        name: format!("predictions of {}", job.id),
        summary,
        body: seal(&PREDICTIONS, predictions).map_err(|e| Outcome::Failed(e.to_string()))?,
        elapsed_ms: ms(elapsed),
        costs,
    })
}

impl Runner {
    /// What a classification reports as it goes: samples done and the rate since `start`.
    fn classify_progress<'a>(
        &'a self,
        job: &'a str,
        start: Instant,
        samples: u64,
    ) -> impl FnMut(&smlp::encrypted::Progress) + 'a {
        move |p| {
            let rate = p.done as f64 / start.elapsed().as_secs_f64().max(1e-9);
            self.set_live(job, |l| {
                l.done = p.done as u64;
                l.samples = samples;
                l.rate = rate;
            });
        }
    }

    /// A classification with another owner's model shared with this job's owner: the samples
    /// move from the owner's key to the model's through S2 (a session under the owner's key),
    /// the model classifies them under its own key (a session under it), and the encrypted
    /// classes and scores move back the same way. The model is never decrypted nor leaves its
    /// key; S2 sees only values blinded with κ bits; the owner gets predictions under its key.
    fn classify_shared(
        &self,
        job: &JobRow,
        req: &ClassifyRequest,
        model: &EncryptedModel,
        model_owner: &str,
        data: &EncryptedDataset,
        abort: &Abort,
    ) -> Result<JobResult, Outcome> {
        let model_pk = self
            .store
            .owner_key(model_owner, &model.fingerprint)?
            .ok_or_else(|| Outcome::Failed("the shared model's key is gone".into()))?;
        let data_pk = self.key(job, &data.fingerprint)?;
        let params = req.session(model);
        let samples = data.len() as u64;
        let mut own = self.connect(job, data_pk.clone(), params, abort)?;
        let _ = self.store.set_note(&job.id, None);
        let start = Instant::now();
        let moved = switch_dataset(&mut own, data, &model_pk)
            .map_err(|e| self.outcome(e, abort, job, false))?;
        let mut theirs = self.connect(job, model_pk, params, abort)?;
        let predictions = classify(
            &mut theirs,
            model,
            &moved,
            req.chunk.max(1),
            self.classify_progress(&job.id, start, samples),
        )
        .map_err(|e| self.outcome(e, abort, job, false))?;
        let back = switch_predictions(&mut theirs, &predictions, &data_pk)
            .map_err(|e| self.outcome(e, abort, job, false))?;
        let elapsed = start.elapsed();
        let costs = costs(&mut theirs).ok();
        let _ = theirs.close();
        let _ = own.close();
        tracing::info!(job = %job.id, model = %req.model, %model_owner, samples, "classified with a shared model (keys switched through S2)");
        predictions_result(
            job,
            &back,
            format!("{samples} samples, model {} of {model_owner}", req.model),
            elapsed,
            costs,
        )
    }
}

/// A job's result, to store.
struct JobResult {
    kind: ObjectKind,
    name: String,
    summary: String,
    body: Vec<u8>,
    elapsed_ms: u64,
    costs: Option<Costs>,
}

/// A training run as S1 follows it, in-process or on a Ray driver: after each step the job's
/// live progress, and its checkpoint stored every `--checkpoint-every` samples (or after
/// `--checkpoint-secs` of work) and at every epoch's end.
struct Progress<'a> {
    runner: &'a Runner,
    job: &'a JobRow,
    abort: &'a Abort,
    config: &'a TrainConfig,
    started: Instant,
    steps: u64,
    /// When, and after how many steps, the last checkpoint was stored.
    last: (Instant, u64),
    /// A checkpoint was stored during this run (a retry then starts afresh its deadline).
    progressed: bool,
}

impl<'a> Progress<'a> {
    fn new(runner: &'a Runner, job: &'a JobRow, abort: &'a Abort, config: &'a TrainConfig) -> Self {
        Progress {
            runner,
            job,
            abort,
            config,
            started: Instant::now(),
            steps: 0,
            last: (Instant::now(), 0),
            progressed: false,
        }
    }

    /// Starts the clock of the steps (the throughput counts from here); returns it.
    fn start(&mut self) -> Instant {
        self.started = Instant::now();
        self.last = (self.started, self.steps);
        self.started
    }

    /// After a step that left `model` at `position` in its epoch.
    fn step(&mut self, model: &EncryptedModel, position: usize) -> Result<(), String> {
        self.steps += 1;
        let batch = self.config.batch as u64;
        let rate = self.steps as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.runner.set_live(&self.job.id, |l| {
            l.epoch = model.epochs_trained;
            l.done = position as u64;
            l.rate = rate * batch as f64;
        });
        let due = match self.runner.opts.checkpoint_every {
            Some(n) => (self.steps - self.last.1) * batch >= n as u64,
            None => self.last.0.elapsed() >= self.runner.opts.checkpoint_interval,
        };
        if position == 0 || due {
            self.save(model, position)?;
            self.last = (Instant::now(), self.steps);
            self.progressed = true;
        }
        Ok(())
    }

    /// Stores `model` at `position` as the job's checkpoint; a job cancelled meanwhile (the
    /// store refuses) is stopped.
    fn save(&self, model: &EncryptedModel, position: usize) -> Result<(), String> {
        let ck = Checkpoint {
            model: model.clone(),
            config: self.config.clone(),
            position,
        };
        let body = seal(&CHECKPOINT, &ck).map_err(|e| e.to_string())?;
        self.runner
            .store
            .save_checkpoint(&self.job.id, model.epochs_trained, position as u64, &body)
            .map_err(|e| {
                if matches!(e, StoreError::Conflict(_)) {
                    self.abort.set(Stop::Cancelled);
                }
                format!("S1 cannot save the checkpoint: {e}")
            })
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl JobResult {
    fn as_new(&self) -> NewObject<'_> {
        NewObject {
            kind: self.kind,
            name: &self.name,
            summary: self.summary.clone(),
            body: &self.body,
        }
    }
}
