//! S1's training jobs on a Ray cluster (`smlp serve-s1 --ray ADDRESS`): for each training job S1
//! starts a Ray driver (`PYTHON -m smlp._s1_job DIR`, the `smlp` Python package's
//! `smlp.ray.train`), which splits every mini-batch over `--ray-workers` S1 worker actors, each
//! with its own TLS session to one of S1's S2 replicas as S1 (S1's kit, `--pki`). The owner's side
//! does not change: `upload`, `train --detach`, `wait`, `fetch` work as with in-process jobs, and
//! the model is the same bit for bit.
//!
//! S1 stays the owner of the job: it draws the initial weights with S2 as for any job, hands the
//! driver the data set, the key and a checkpoint in a private directory, reads the driver's
//! checkpoint after each step (progress, and into its store every `--checkpoint-every` samples or
//! `--checkpoint-secs`, and at epoch ends), and stores the model. A cancelled job or a stopping S1
//! ends the driver (SIGTERM, then SIGKILL after 10 s); a restarted S1 starts a new driver from the
//! stored checkpoint (a driver exits when S1's end of its standard input closes, so none
//! outlives a killed S1; `STATE-DIR/ray` is emptied at start). A driver that exits 3 (workers or S2 failing past Ray's retries) is retried
//! like an S2 link failure; any other failure fails the job with the driver's last error line.

use paillier::format::{read_file, write_file, PUBLIC_KEY};
use paillier::PublicKey;
use smlp::encrypted::{Checkpoint, EncryptedDataset, ModelFile, CHECKPOINT, DATASET};
use smlp_client::error::{CliError, CliResult};
use smlp_client::proto::TrainRequest;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How S1 runs its training jobs on Ray.
#[derive(Debug, Clone)]
pub struct RayOptions {
    /// The cluster's address for `ray.init` (`auto`, `HOST:6379`, `ray://HOST:10001`), or
    /// `local`: a Ray instance of the driver's own on this machine, per job.
    pub address: String,
    /// S1 worker actors per job.
    pub workers: usize,
    /// The Python that has the `smlp` package and Ray.
    pub python: PathBuf,
    /// S1's TLS kit (the workers' identity towards S2).
    pub pki: PathBuf,
    /// The S2 replicas.
    pub s2: Vec<String>,
    /// The name S2's certificates carry, if not each address's host.
    pub s2_name: Option<String>,
}

impl RayOptions {
    /// Checks at S1's start that `python` imports `smlp.ray` (the package and Ray), so that a
    /// misconfigured S1 says so at once rather than when its first job runs.
    pub fn check(&self) -> CliResult<()> {
        if self.workers == 0 || self.workers > 4096 {
            return Err(CliError("--ray-workers must be in 1..=4096".into()));
        }
        let out = Command::new(&self.python)
            .args(["-c", "import smlp._s1_job, smlp.ray"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                CliError(format!(
                    "--ray: cannot run {} ({e}); give --ray-python, a Python with the smlp \
                     package and Ray (pip install \"smlp[ray]\")",
                    self.python.display()
                ))
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(CliError(format!(
                "--ray: {} cannot import smlp.ray (pip install \"smlp[ray]\"): {}",
                self.python.display(),
                err.trim().lines().last().unwrap_or("")
            )));
        }
        Ok(())
    }
}

/// How a driver run ended.
pub enum Ended {
    /// The model, with how it was trained.
    Done(Box<ModelFile>),
    /// Stopped by S1 (cancel or shutdown).
    Stopped,
    /// Workers or S2 failed past the retries: try again from the last checkpoint.
    Retry(String),
    /// Anything else.
    Failed(String),
}

/// Longest error line of a driver kept for the job's note.
const MAX_NOTE: usize = 400;

/// What a driver trains: the job's request, its data set and key, and where it starts.
pub struct Input<'a> {
    /// The training request.
    pub req: &'a TrainRequest,
    /// Its data set.
    pub data: &'a EncryptedDataset,
    /// The key of the data set and model.
    pub pk: &'a PublicKey,
    /// The initial weights or the last checkpoint.
    pub start: &'a Checkpoint,
}

/// Runs a driver for `input` in a private directory under `work`, calling `on_step` with the
/// checkpoint the driver wrote after each step and polling `stop` every 200 ms.
pub fn run(
    opts: &RayOptions,
    work: &Path,
    input: Input<'_>,
    mut on_step: impl FnMut(Checkpoint) -> Result<(), String>,
    stop: impl Fn() -> bool,
) -> Ended {
    let dir = match tempfile::Builder::new().prefix("ray-job-").tempdir_in(work) {
        Ok(d) => d,
        Err(e) => return Ended::Failed(format!("S1 cannot make the driver's directory: {e}")),
    };
    if let Err(e) = prepare(opts, dir.path(), &input) {
        return Ended::Failed(format!("S1 cannot prepare the Ray driver: {e}"));
    }
    let mut child = match Command::new(&opts.python)
        .args(["-m", "smlp._s1_job"])
        .arg(dir.path())
        .env("PYTHONUNBUFFERED", "1")
        // Held open while S1 lives: the driver exits when it closes.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Ended::Failed(format!("S1 cannot start the Ray driver: {e}")),
    };
    tracing::info!(pid = child.id(), dir = %dir.path().display(), address = %opts.address, workers = opts.workers, "Ray driver started");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        // Ray is chatty: keep the last error line only, bounded.
        let mut last = String::new();
        let mut buf = String::new();
        let _ = BufReader::new(stderr)
            .take(64 << 20)
            .read_to_string(&mut buf);
        for line in buf.lines() {
            if line.starts_with("error: ") || last.is_empty() {
                last = line.chars().take(MAX_NOTE).collect();
            }
        }
        last
    });
    let ckpt_path = dir.path().join("checkpoint.ckpt");
    loop {
        if stop() {
            terminate(&mut child);
            return Ended::Stopped;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains("\"steps\"") => {
                let ck: Checkpoint = match read_file(&CHECKPOINT, &ckpt_path) {
                    Ok(c) => c,
                    Err(e) => {
                        terminate(&mut child);
                        return Ended::Failed(format!("the Ray driver's checkpoint: {e}"));
                    }
                };
                if let Err(e) = on_step(ck) {
                    terminate(&mut child);
                    return Ended::Failed(e);
                }
            }
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait();
    let last = errors.join().unwrap_or_default();
    let last = smlp_client::util::shown(last.trim_start_matches("error: "), MAX_NOTE);
    match status.map(|s| s.code()) {
        Ok(Some(0)) => match ModelFile::read(&dir.path().join("model.enc")) {
            Ok(f) => Ended::Done(Box::new(f)),
            Err(e) => Ended::Failed(format!("the Ray driver's model: {e}")),
        },
        Ok(Some(3)) => Ended::Retry(format!("Ray workers or S2 failed: {last}")),
        Ok(code) => Ended::Failed(format!(
            "the Ray driver failed ({}): {last}",
            code.map_or("killed by a signal".to_string(), |c| format!(
                "exit code {c}"
            ))
        )),
        Err(e) => Ended::Failed(format!("the Ray driver: {e}")),
    }
}

/// Writes the driver's inputs into `dir` (0700, made by `tempfile`; the files 0600).
fn prepare(opts: &RayOptions, dir: &Path, input: &Input<'_>) -> Result<(), String> {
    let Input {
        req,
        data,
        pk,
        start,
    } = *input;
    let e = |e: paillier::format::FileError| e.to_string();
    write_file(&DATASET, &dir.join("data.enc"), data).map_err(e)?;
    write_file(&PUBLIC_KEY, &dir.join("public.key"), pk).map_err(e)?;
    write_file(&CHECKPOINT, &dir.join("checkpoint.ckpt"), start).map_err(e)?;
    let job = serde_json::json!({
        "address": opts.address,
        "workers": opts.workers,
        "s2": opts.s2,
        "s2_name": opts.s2_name,
        "pki": opts.pki,
        "epochs": req.config.epochs,
        "batch": req.config.batch,
        "seed": req.config.seed,
        "loss": req.config.loss.name(),
        "profile": req.profile.to_string(),
        "kappa": req.kappa,
        "value_bits": req.fixed.value_bits,
    });
    paillier::format::write_atomic(&dir.join("job.json"), job.to_string().as_bytes(), true)
        .map_err(|e| e.to_string())
}

/// SIGTERM (the driver shuts Ray down), then SIGKILL after 10 s.
fn terminate(child: &mut Child) {
    #[cfg(unix)]
    {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) on our own child's pid; no memory is shared.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
