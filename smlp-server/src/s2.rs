//! `smlp serve-s2`: S2, the crypto server — the only server process that loads the secret key.
//! It accepts only S1's certificate, serves what its operator's policy allows, and ends a session
//! at the first refused request.

use crate::refusals::RefusalBudget;
use crate::servers::{install_signal_handler, stopped, write_ready, ServerArgs};
use crate::tenants::{tenant_keys, tenants, KeyRing};
use clap::{Args, ValueEnum};
use secure_ops::{serve_keyed, Comparison, Profile, ProtocolError, S2Options, S2Policy};
use smlp_client::bail;
use smlp_client::error::{describe, CliResult};
use std::path::PathBuf;
use std::sync::Arc;
use transport::{Role, Server, SessionLimiter, TlsAcceptor};

/// The profiles S2 serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfilePolicy {
    /// Both profiles.
    Any,
    /// Only the fast profile.
    Fast,
    /// Only the strict profile (S2 learns nothing beyond κ).
    Strict,
}

/// The comparisons S2 serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ComparisonPolicy {
    /// Both.
    Any,
    /// Only garbled circuits over OT extension (≈ 126-bit computational security).
    Garbled,
    /// Only DGK (80-bit at the default --dgk-subgroup-bits 160).
    Dgk,
}

/// Runs S2, the crypto server: holds the tenants' secret keys and answers S1's blinded requests.
///
/// S2 only ever serves secure-ops sessions with S1: it never receives data, model weights or
/// predictions, only values that S1 has blinded with random masks of κ extra bits. Each session
/// names the tenant key it works under; S2 serves it with that key from --state-dir's keys/
/// (`smlp s2-keys`) and refuses a key it does not hold. It accepts only TLS clients with S1's
/// certificate (DIR/s2.crt and s2.key identify it). A session whose
/// parameters are outside --profile, --kappa and --max-value-bits is refused in the handshake; a
/// request beyond the limits, of another profile or with a value out of its range ends the
/// session and is logged with the peer's identity.
#[derive(Args, Debug, Clone)]
pub struct ServeS2Args {
    /// Address to listen on (port 0: any free port; see --ready-file).
    #[arg(long, default_value = "127.0.0.1:7002")]
    pub listen: String,
    /// Precomputed encryption randomizers kept ready (0 disables the pool).
    #[arg(long, default_value_t = 4096)]
    pub pool_capacity: usize,
    /// Background threads filling the randomizer pool.
    #[arg(long, default_value_t = 1)]
    pub pool_workers: usize,
    /// Profiles served. Strict by default: S1 cannot run a session in which S2 learns more
    /// than κ allows (an owner's `--profile fast` is refused unless S2's operator serves it).
    #[arg(long, value_enum, default_value_t = ProfilePolicy::Strict)]
    pub profile: ProfilePolicy,
    /// Comparisons served (how a session computes exact comparisons and truncations). Garbled
    /// by default; an S1 running `--comparison dgk` needs `any` or `dgk` here.
    #[arg(long, value_enum, default_value_t = ComparisonPolicy::Garbled)]
    pub comparison: ComparisonPolicy,
    /// Smallest statistical blinding parameter κ accepted (at least 40; at most 256 is served).
    #[arg(long, default_value_t = 80)]
    pub kappa: u32,
    /// Largest value bound ℓ (|x| < 2^ℓ) accepted.
    #[arg(long, default_value_t = 72)]
    pub max_value_bits: u32,
    /// Most concurrent sessions of one S1 identity.
    #[arg(long, default_value_t = 64)]
    pub max_sessions_per_peer: usize,
    /// S2's state directory (made 0700): the tenants' secret keys (DIR/keys/, managed with
    /// `smlp s2-keys` while S2 runs), its import key, and the refusal book, kept across restarts.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Refusals (out of range, malformed, over a limit) one S1 identity may cause within an hour;
    /// once spent, the identity is refused after its handshake until the operator clears it
    /// (`smlp s2-refusals --clear NAME`).
    #[arg(long, default_value_t = 4)]
    pub max_refusals_per_hour: u64,
    /// Refusals one S1 identity may cause in all (until the operator clears it).
    #[arg(long, default_value_t = 16)]
    pub max_refusals: u64,
    /// Most blinded values in one request (a layer's operands: batch × units, weights; at most
    /// the default, the bound of message decoding).
    #[arg(long, default_value_t = secure_ops::MAX_REQUEST_VALUES)]
    pub max_request_values: usize,
    /// Most ciphertexts returned for one request (a strict comparison returns ℓ + 3 per value;
    /// at most the default).
    #[arg(long, default_value_t = secure_ops::MAX_REQUEST_OUTPUTS)]
    pub max_request_outputs: usize,
    /// Bit length t of the DGK subgroup primes of the comparison key S2 generates at start (160:
    /// 80-bit security against the best known subgroup attack; 224: 112 bits).
    #[arg(long, default_value_t = paillier::dgk::DEFAULT_T, value_parser = clap::value_parser!(u32).range(160..=512))]
    pub dgk_subgroup_bits: u32,
    /// Modulus size of the DGK comparison key S2 generates at start (kept in memory only; one
    /// for all tenants: S1 encrypts nothing of a tenant's under it).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(512..=8192))]
    pub dgk_bits: u32,
    /// Run even though this build's secret-key arithmetic is not constant time (the num-bigint
    /// backend): timing may leak the secret key to S1.
    #[arg(long)]
    pub allow_variable_time: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Whether this build's secret-key arithmetic is constant time (GMP's `mpz_powm_sec`).
pub const CONSTANT_TIME: bool = cfg!(feature = "gmp");

/// Whether S2 may run: refused on a variable-time backend unless the operator allows it.
fn backend_check(constant_time: bool, allow_variable_time: bool) -> CliResult<()> {
    if !constant_time {
        if !allow_variable_time {
            bail!(
                "this build uses the {} backend, whose secret-exponent arithmetic is not constant time; build smlp with its default `gmp` feature, or pass --allow-variable-time",
                paillier::arith::BACKEND
            );
        }
        tracing::warn!(
            backend = paillier::arith::BACKEND,
            "running S2 with variable-time secret-key arithmetic (--allow-variable-time)"
        );
    }
    Ok(())
}

/// Runs `smlp serve-s2` until a signal arrives.
pub fn serve_s2(args: &ServeS2Args) -> CliResult<()> {
    backend_check(CONSTANT_TIME, args.allow_variable_time)?;
    let policy = S2Policy {
        profile: match args.profile {
            ProfilePolicy::Any => None,
            ProfilePolicy::Fast => Some(Profile::Fast),
            ProfilePolicy::Strict => Some(Profile::Strict),
        },
        comparison: match args.comparison {
            ComparisonPolicy::Any => None,
            ComparisonPolicy::Garbled => Some(Comparison::Garbled),
            ComparisonPolicy::Dgk => Some(Comparison::Dgk),
        },
        min_kappa: args.kappa,
        max_value_bits: args.max_value_bits,
        max_values: args
            .max_request_values
            .clamp(1, secure_ops::messages::MAX_WIRE_VALUES),
        max_outputs: args
            .max_request_outputs
            .clamp(1, secure_ops::messages::MAX_WIRE_VALUES),
        ..S2Policy::default()
    };
    if args.kappa < secure_ops::MIN_KAPPA || args.kappa > secure_ops::MAX_KAPPA {
        bail!(
            "--kappa must be in {}..={}",
            secure_ops::MIN_KAPPA,
            secure_ops::MAX_KAPPA
        );
    }
    let tls = args.server.load_tls("s2", Role::S2)?;
    let tls_config = tls.server_config(&[Role::S1])?;
    smlp_client::util::private_dir(&args.state_dir)?;
    let held = tenants(&args.state_dir)?;
    let server = Server::bind(args.listen.as_str(), args.server.options(64))?;
    let addr = server.local_addr();
    install_signal_handler(server.shutdown_handle())?;
    // The DGK key of the comparisons: generated now, kept in memory only (nothing is ever
    // stored under it; S1 receives its public half in each session's handshake over TLS), and
    // shared by the tenants' services.
    let started = std::time::Instant::now();
    let dgk_key =
        secure_ops::generate_dgk_key(args.dgk_bits, args.dgk_subgroup_bits, policy.max_value_bits)?;
    let dgk = dgk_key.public_key().clone();
    tracing::info!(dgk_key = %dgk.fingerprint(), bits = dgk.bits(), u = dgk.u(), t = dgk.t(), seconds = started.elapsed().as_secs_f64(), "DGK comparison key generated (in memory)");
    let ring = Arc::new(KeyRing::new(
        &args.state_dir,
        S2Options {
            pool_capacity: args.pool_capacity,
            pool_workers: args.pool_workers,
            policy,
            dgk: Some(dgk_key),
            dgk_t: args.dgk_subgroup_bits,
            tenants: Some(tenant_keys(&args.state_dir)),
        },
    ));
    // Load the keys held now (their randomizer pools start filling); later ones load at their
    // first session.
    for t in &held {
        if let Err(e) = ring.service(&t.fingerprint) {
            tracing::warn!(key = %t.fingerprint, error = %e, "tenant key not loaded");
        }
    }
    if held.is_empty() {
        tracing::warn!(state = %args.state_dir.display(), "S2 holds no tenant keys yet: add them with `smlp s2-keys add` (no restart needed)");
    }
    let limiter = SessionLimiter::new(args.max_sessions_per_peer);
    let budget = Arc::new(RefusalBudget::new(
        Some(&args.state_dir),
        args.max_refusals_per_hour,
        args.max_refusals,
    )?);
    tracing::info!(
        per_hour = args.max_refusals_per_hour,
        total = args.max_refusals,
        "refusal budget per S1 identity (book in the state directory)"
    );
    tracing::info!(%addr, tenants = held.len(), identity = %tls.identity(), backend = %paillier::arith::backend_description(), "S2 (crypto server) listening (TLS, S1 clients only)");
    println!(
        "S2 listening on {addr} ({} tenant key(s) in {}, DGK key {}, TLS)",
        held.len(),
        args.state_dir.join(crate::tenants::KEYS_DIR).display(),
        dgk.fingerprint()
    );
    write_ready(args.server.ready_file.as_deref(), addr)?;
    let summary = server.run_with(
        TlsAcceptor(tls_config),
        move |chan, peer| -> Result<(), String> {
            let id = peer.identity.as_ref().map_or_else(String::new, |i| i.name.clone());
            if let Err(e) = budget.check(&id) {
                return Err(format!("{peer} refused: {}", e.0));
            }
            let Some(_slot) = limiter.try_acquire(&id) else {
                return Err(format!(
                    "{peer} already runs {} sessions; connection closed",
                    limiter.max()
                ));
            };
            let count_refusal = || match budget.record(&id, crate::store::now()) {
                Ok(true) => tracing::warn!(%peer, "refusal budget spent: this S1 identity is refused until the operator clears it (smlp s2-refusals --clear)"),
                Ok(false) => {}
                Err(e) => tracing::error!(%peer, error = %e.0, "cannot record the refusal"),
            };
            match serve_keyed(chan, |fp| ring.service(fp)) {
                Ok(s) => {
                    tracing::info!(
                        %peer,
                        requests = s.requests,
                        decryptions = s.counts.decryptions,
                        encryptions = s.counts.encryptions,
                        zero_tests = s.counts.zero_tests,
                        dgk_encryptions = s.counts.dgk_encryptions,
                        params = ?s.params,
                        "S2 session with S1 finished"
                    );
                    Ok(())
                }
                Err(ProtocolError::Refused {
                    op,
                    why,
                    out_of_range,
                }) => {
                    let op = op.map_or("a request", |o| o.name());
                    tracing::warn!(%peer, op, out_of_range, reason = %why, "request refused, session ended");
                    count_refusal();
                    Err(format!("refused {op}: {why}"))
                }
                Err(e) => {
                    // A request that does not decode is a refusal too; a peer that just goes
                    // away is not.
                    if e.counts_as_refusal() {
                        count_refusal();
                    }
                    Err(describe(&e))
                }
            }
        },
    );
    stopped(args.server.ready_file.as_deref(), &summary, "S2 stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s2_serves_only_the_strict_profile_unless_its_operator_says_otherwise() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cmd {
            #[command(flatten)]
            args: ServeS2Args,
        }
        let parse = |extra: &[&str]| {
            let mut v = vec!["serve-s2", "--state-dir", "s2-state"];
            v.extend_from_slice(extra);
            Cmd::try_parse_from(v).unwrap().args
        };
        assert_eq!(parse(&[]).profile, ProfilePolicy::Strict);
        assert_eq!(parse(&["--profile", "any"]).profile, ProfilePolicy::Any);
        assert_eq!(parse(&[]).comparison, ComparisonPolicy::Garbled);
        assert_eq!(
            parse(&["--comparison", "any"]).comparison,
            ComparisonPolicy::Any
        );
    }

    #[test]
    fn s2_refuses_a_variable_time_backend_unless_allowed() {
        let err = backend_check(false, false).unwrap_err();
        assert!(err.0.contains("not constant time"), "{}", err.0);
        assert!(err.0.contains("--allow-variable-time"), "{}", err.0);
        backend_check(false, true).unwrap();
        backend_check(true, false).unwrap();
        // The deployment build (default features) is constant time.
        assert_eq!(CONSTANT_TIME, cfg!(feature = "gmp"));
    }
}
