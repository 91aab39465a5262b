//! `smlp serve-s1` (S1, the cloud server: public key and ciphertexts only) and what both servers
//! share (S2 itself is in `s2.rs`): on [`transport::Server`], over mutually authenticated
//! TLS only: S2 accepts only S1's certificate, S1 accepts only owner certificates and checks that
//! the S2 it dials presents S2's certificate for that host.
//!
//! Both log with `tracing` to stderr (`RUST_LOG`, default `info`), isolate sessions (a failing or
//! disconnecting client ends only its own session), and exit with status 0 on SIGINT, SIGTERM or
//! SIGHUP: the accept loop stops and running sessions get `--grace-secs` to finish.

use crate::jobs::{Runner, RunnerOptions, S2Link};
use crate::s1::{s1_session, S1Context};
use crate::store::{Store, StoreOptions};
use clap::Args;
use paillier::format::write_atomic;
use smlp_client::bail;
use smlp_client::error::{CliError, CliResult, Context};
use smlp_client::tls::TlsArgs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use transport::{
    Role, Server, ServerOptions, SessionLimiter, ShutdownHandle, TcpOptions, TlsAcceptor,
};

/// Settings shared by both servers.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Write the bound address (host:port) to this file once listening (useful with port 0).
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// Most authenticated sessions served at once; further peers are refused after their
    /// handshake.
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
    /// Most connections still in their TLS handshake at once (they hold no session slot; each
    /// has 10 s in all to finish).
    #[arg(long, default_value_t = 64)]
    pub max_handshakes: usize,
    /// Most connections in their TLS handshake at once from one IP address.
    #[arg(long, default_value_t = 32)]
    pub max_handshakes_per_address: usize,
    /// After SIGINT/SIGTERM, how long running sessions may take to finish.
    #[arg(long, default_value_t = 10)]
    pub grace_secs: u64,
    /// How long a session may wait for its peer's next message.
    #[arg(long, default_value_t = 1800)]
    pub idle_timeout_secs: u64,
    /// Largest message accepted from a peer, in MiB [default: 64 for serve-s2, 256 for serve-s1
    /// (uploads of encrypted data sets)].
    #[arg(long, value_name = "MIB")]
    pub max_frame_mib: Option<usize>,
    /// Start even though the directory of this server's TLS files holds the CA's private key
    /// (`ca.key`): anyone who can read this server's files could then issue certificates of
    /// any role.
    #[arg(long)]
    pub allow_ca_key: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl ServerArgs {
    /// Loads the server's credentials (`stem`, `role`), refusing a directory that also holds the
    /// CA's private key unless `--allow-ca-key` (then it says so in its log).
    pub fn load_tls(&self, stem: &str, role: Role) -> CliResult<transport::TlsCredentials> {
        let files = self.tls.files(stem)?;
        let dirs = [files.key.parent(), files.cert.parent(), files.ca.parent()];
        let ca_key = dirs
            .into_iter()
            .flatten()
            .map(|d| d.join("ca.key"))
            .find(|k| std::fs::File::open(k).is_ok());
        if let Some(k) = ca_key {
            let kit = transport::pki::party_dir(k.parent().unwrap_or(Path::new(".")), stem);
            if !self.allow_ca_key {
                bail!(
                    "{} is readable beside this server's TLS files: whoever reads this server's files can issue a certificate of any role (an S1 certificate that S2 accepts). Give the server its own kit, {} (ca.crt and its own pair, written by `smlp pki`), and keep ca.key offline; --allow-ca-key starts anyway",
                    k.display(),
                    kit.display()
                );
            }
            tracing::warn!(ca_key = %k.display(), "the CA's private key is readable beside this server's TLS files (--allow-ca-key): anyone who reads them can issue certificates of any role");
        }
        self.tls.load(stem, role)
    }

    pub fn options(&self, default_max_frame_mib: usize) -> ServerOptions {
        let mib = self
            .max_frame_mib
            .unwrap_or(default_max_frame_mib)
            .clamp(1, 4095);
        ServerOptions {
            channel: TcpOptions::default()
                .with_max_frame(mib << 20)
                .with_read_timeout(Some(Duration::from_secs(self.idle_timeout_secs.max(1)))),
            grace_period: Duration::from_secs(self.grace_secs),
            max_sessions: Some(self.max_sessions.max(1)),
            max_handshakes: self.max_handshakes.max(1),
            max_handshakes_per_address: self.max_handshakes_per_address.max(1),
            ..ServerOptions::default()
        }
    }
}

/// Runs S1, the cloud server: holds the owners' public keys, receives encrypted data and models
/// from them, and trains or classifies with S2's help.
///
/// Each owner registers its own public key (`smlp register`); S1 accepts an owner's data sets
/// and models only under a key that owner registered and runs each job under its inputs' key.
/// S1 never reads or receives a secret key. For every client request it opens its own session
/// with S2 (--s2). It accepts only TLS clients with an owner certificate of the deployment's CA,
/// at most --max-sessions-per-owner at once per owner.
#[derive(Args, Debug, Clone)]
pub struct ServeS1Args {
    /// Address of S2, or of several S2 replicas (`--s2 A,B` or `--s2 A --s2 B`: `serve-s2`
    /// processes with the same tenant keys, e.g. the same --state-dir). Jobs' sessions are
    /// spread over them round robin; a job whose replica fails goes on from its last checkpoint
    /// with the next one that answers.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:7002",
        value_name = "ADDR[,ADDR...]"
    )]
    pub s2: Vec<String>,
    /// Name S2's certificate must carry [default: the host part of each --s2 address].
    #[arg(long, value_name = "NAME")]
    pub s2_name: Option<String>,
    /// Most concurrent connections of one owner identity.
    #[arg(long, default_value_t = 4)]
    pub max_sessions_per_owner: usize,
    /// Directory of S1's store (SQLite: data sets, models, predictions, jobs, checkpoints,
    /// audit log). Created 0700 if missing; keep it on a disk that survives restarts.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Jobs running at once (the others wait, taken round robin between owners; jobs share
    /// the same cores).
    #[arg(long, default_value_t = 1)]
    pub max_running_jobs: usize,
    /// Jobs one owner may have queued or running at once (more are refused at submission).
    #[arg(long, default_value_t = 16)]
    pub max_jobs_per_owner: u64,
    /// Jobs of one owner that run at once (with --max-running-jobs above 1).
    #[arg(long, default_value_t = 1)]
    pub max_running_per_owner: u64,
    /// Largest work of one job, in sample passes: epochs × samples (1 × samples to classify).
    #[arg(long, default_value_t = 10_000_000)]
    pub max_job_work: u64,
    /// Checkpoint a training job every N samples [default: after about --checkpoint-secs of
    /// work], and always at the end of an epoch.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Without --checkpoint-every: seconds of work between two checkpoints.
    #[arg(long, default_value_t = 30.0)]
    pub checkpoint_secs: f64,
    /// A job fails when S2 stays unreachable this long (seconds) without progress; until then S1
    /// reconnects with backoff and resumes from the last checkpoint.
    #[arg(long, default_value_t = 600.0)]
    pub s2_retry_deadline_secs: f64,
    /// Storage quota of each owner (data sets, models, predictions), in MiB.
    #[arg(long, default_value_t = 1024.0)]
    pub quota_mib: f64,
    /// Largest size of the store's database, in MiB [default: what the disk holds].
    #[arg(long, value_name = "MIB")]
    pub max_store_mib: Option<f64>,
    /// Address to listen on for clients (port 0: any free port; see --ready-file).
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: String,
    /// How long to keep retrying when S2 does not accept a connection (seconds).
    #[arg(long, default_value_t = 2.0)]
    pub s2_connect_retry_secs: f64,
    /// Per session: precomputed randomizers for S1's blinding (0 disables the pool).
    #[arg(long, default_value_t = 0)]
    pub pool_capacity: usize,
    /// Per session: background threads filling the randomizer pool.
    #[arg(long, default_value_t = 1)]
    pub pool_workers: usize,
    /// How the jobs' S1–S2 sessions compute the strict profile's comparisons and exact
    /// truncations: garbled (Yao's garbled circuits over OT extension) or dgk (S2's DGK key).
    /// Both give the same results bit for bit; see docs/protocols.md for their costs and
    /// assumptions.
    #[arg(long, default_value_t = secure_ops::Comparison::Garbled)]
    pub comparison: secure_ops::Comparison,
    /// Run training jobs on a Ray cluster: its address for `ray.init` (`auto`, `HOST:6379`,
    /// `ray://HOST:10001`), or `local` for a Ray instance of each job's own on this machine.
    /// Each job's mini-batches are split over --ray-workers S1 worker actors (S1's kit, --pki,
    /// sessions to the --s2 replicas); the owners' side does not change.
    #[arg(long, value_name = "ADDRESS")]
    pub ray: Option<String>,
    /// With --ray: S1 worker actors per training job.
    #[arg(long, default_value_t = 2, requires = "ray")]
    pub ray_workers: usize,
    /// With --ray: the Python that has the smlp package and Ray (pip install "smlp[ray]").
    #[arg(
        long,
        default_value = "python3",
        value_name = "PYTHON",
        requires = "ray"
    )]
    pub ray_python: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn install_signal_handler(handle: ShutdownHandle) -> CliResult<()> {
    ctrlc::set_handler(move || {
        if !handle.is_shutdown() {
            tracing::info!("signal received, shutting down");
        }
        handle.shutdown();
    })
    .context("cannot install the signal handler")
}

pub fn write_ready(path: Option<&Path>, addr: SocketAddr) -> CliResult<()> {
    if let Some(p) = path {
        write_atomic(p, format!("{addr}\n").as_bytes(), false)?;
    }
    Ok(())
}

fn remove_ready(path: Option<&Path>) {
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}

/// `--ray`'s options, checked (the Python imports `smlp.ray`), with the drivers' directory
/// (`STATE-DIR/ray`, 0700).
fn ray_options(args: &ServeS1Args) -> CliResult<Option<(crate::ray::RayOptions, PathBuf)>> {
    let Some(address) = &args.ray else {
        return Ok(None);
    };
    let Some(pki) = &args.server.tls.pki else {
        bail!("--ray needs --pki: the Ray workers talk to S2 with S1's kit");
    };
    if args.comparison != secure_ops::Comparison::Garbled {
        bail!("--ray runs its workers' sessions with garbled comparisons: leave out --comparison");
    }
    let opts = crate::ray::RayOptions {
        address: address.clone(),
        workers: args.ray_workers,
        python: args.ray_python.clone(),
        pki: std::path::absolute(pki).context("--pki")?,
        s2: args.s2.clone(),
        s2_name: args.s2_name.clone(),
    };
    opts.check()?;
    let work = args.state_dir.join("ray");
    smlp_client::util::private_dir(&work).map_err(|e| CliError(e.0))?;
    // Drivers of a previous S1 are gone with it (their stdin closed); so are their files.
    if let Ok(entries) = std::fs::read_dir(&work) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("ray-job-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(Some((opts, work)))
}

/// Runs `smlp serve-s1` until a signal arrives.
pub fn serve_s1(args: &ServeS1Args) -> CliResult<()> {
    if args.s2.is_empty() || args.s2.iter().any(|a| a.trim().is_empty()) {
        bail!("--s2 needs at least one address, and no empty one");
    }
    if args.s2.len() > 64 {
        bail!("--s2: at most 64 replicas");
    }
    if !args.s2_connect_retry_secs.is_finite() || args.s2_connect_retry_secs < 0.0 {
        return Err(CliError(
            "--s2-connect-retry-secs must be a non-negative number".into(),
        ));
    }
    let tls = args.server.load_tls("s1", Role::S1)?;
    let owners_config = tls.server_config(&[Role::Owner])?;
    let s2_config = tls.client_config(Role::S2)?;
    let server = Server::bind(args.listen.as_str(), args.server.options(256))?;
    let addr = server.local_addr();
    let shutdown = server.shutdown_handle();
    install_signal_handler(shutdown.clone())?;
    let secs = |v: f64, name: &str| -> CliResult<Duration> {
        Duration::try_from_secs_f64(v)
            .map_err(|_| CliError(format!("--{name} must be a non-negative number of seconds")))
    };
    let mib = |v: f64, name: &str| -> CliResult<u64> {
        if !(v.is_finite() && v > 0.0) {
            bail!("--{name} must be a positive number of MiB");
        }
        Ok((v * 1048576.0).min(u64::MAX as f64) as u64)
    };
    let store = Arc::new(
        Store::open(
            &args.state_dir,
            StoreOptions {
                quota: mib(args.quota_mib, "quota-mib")?,
                max_bytes: args
                    .max_store_mib
                    .map(|v| mib(v, "max-store-mib"))
                    .transpose()?,
                crash_at_checkpoint: std::env::var("SMLP_TEST_CRASH_AT_CHECKPOINT")
                    .ok()
                    .and_then(|v| v.parse().ok()),
                max_jobs_per_owner: args.max_jobs_per_owner.max(1),
                max_running_per_owner: args.max_running_per_owner.max(1),
                max_job_work: args.max_job_work.max(1),
            },
        )
        .with_context(|| format!("cannot open S1's store in {}", args.state_dir.display()))?,
    );
    let runner = Runner::new(
        Arc::clone(&store),
        S2Link {
            addrs: args.s2.clone(),
            next: Default::default(),
            name: args.s2_name.clone(),
            tls: s2_config,
            options: TcpOptions::default()
                .with_read_timeout(Some(Duration::from_secs(
                    args.server.idle_timeout_secs.max(1),
                )))
                .with_connect_timeout(Duration::from_secs(5))
                .with_connect_retry(secs(args.s2_connect_retry_secs, "s2-connect-retry-secs")?),
            pool: (args.pool_capacity, args.pool_workers),
        },
        RunnerOptions {
            max_running: args.max_running_jobs.clamp(1, 64),
            checkpoint_every: args.checkpoint_every.filter(|&n| n > 0),
            checkpoint_interval: secs(args.checkpoint_secs, "checkpoint-secs")?,
            s2_retry_deadline: secs(args.s2_retry_deadline_secs, "s2-retry-deadline-secs")?,
            ray: ray_options(args)?,
            comparison: args.comparison,
        },
        shutdown.clone(),
    );
    let workers = runner.start()?;
    let ctx = Arc::new(S1Context {
        store: Arc::clone(&store),
        runner: Arc::clone(&runner),
        shutdown,
        limiter: SessionLimiter::new(args.max_sessions_per_owner),
    });
    let s2_list = args.s2.join(", ");
    tracing::info!(%addr, s2 = %s2_list, identity = %tls.identity(), store = %store.path().display(), "S1 (cloud server) listening (TLS, owner clients only)");
    match &args.ray {
        Some(ray) => {
            tracing::info!(address = %ray, workers = args.ray_workers, "training jobs run on Ray");
            println!(
                "S1 listening on {addr} (S2 at {s2_list}, a key per owner, TLS; training on Ray \
                 at {ray}, {} workers per job)",
                args.ray_workers
            );
        }
        None => println!("S1 listening on {addr} (S2 at {s2_list}, a key per owner, TLS)"),
    }
    write_ready(args.server.ready_file.as_deref(), addr)?;
    let summary = server.run_with(TlsAcceptor(owners_config), move |chan, peer| {
        s1_session(&ctx, chan, peer)
    });
    runner.notify();
    for w in workers {
        let _ = w.join();
    }
    stopped(args.server.ready_file.as_deref(), &summary, "S1 stopped");
    Ok(())
}

/// After the accept loop: removes the ready file and logs the sessions served.
pub fn stopped(ready_file: Option<&Path>, summary: &transport::ServerSummary, what: &str) {
    remove_ready(ready_file);
    tracing::info!(
        sessions = summary.sessions,
        failed = summary.failed,
        refused = summary.refused,
        "{what}"
    );
}
