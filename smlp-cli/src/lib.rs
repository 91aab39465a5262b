//! The `smlp` command: train a multilayer perceptron on Paillier-encrypted data with two
//! non-colluding servers. This crate is the thin layer of flags, dispatch and what each command
//! prints (and the demo, which runs every role at once): `owner` for the commands that talk to
//! S1, `keys`, `tls` (pki), `seal`, `tune`, `encrypt` and `decrypt` for the owner's file
//! commands, each over `smlp-client`'s module of the same name (re-exported here); the work and
//! the owner↔S1 protocol are in `smlp-client`, the two servers in `smlp-server`. The Python package (`smlp-py`) uses
//! `smlp-client` for its API and this crate only for its `smlp` entry point, which starts the
//! servers of `smlp.LocalCluster`.
//!
//! S1 (`serve-s1`, the cloud) holds the owners' public keys and the ciphertexts and runs the
//! training; S2 (`serve-s2`, the crypto server) holds the tenants' secret keys (`tenants`) and
//! only ever sees blinded values. Each data owner generates its own keys, seals the secret one
//! for S2, encrypts the data, asks S1 to train and classify, and decrypts the results.

pub mod decrypt;
pub mod demo;
pub mod encrypt;
pub mod keys;
pub mod owner;
pub mod seal;
pub mod tls;
pub mod tune;

pub use smlp_client::{client, error, proto, util};
pub use smlp_server::{refusals, s2, servers, tenants};

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::OnceLock;

/// Train an MLP on Paillier-encrypted data with two non-colluding servers.
///
/// Walk-through (each command has its own --help):
///
///   smlp pki      --out pki --s1-host 127.0.0.1 --s2-host 127.0.0.1                # the deployment's CA
///   smlp s2-keys  --state-dir s2-state init                                          # S2's operator
///   smlp keygen   --bits 2048 --out keys                                             # the owner's own key
///   smlp seal-key --secret-key keys/secret.key --to s2-state/import.pub --out owner.sealed
///   smlp s2-keys  --state-dir s2-state add owner.sealed                              # S2 now holds it
///   smlp encrypt  --public-key keys/public.key --csv train.csv --out train.enc
///   smlp encrypt  --public-key keys/public.key --csv test.csv --scaler train.enc.scaler.json --out test.enc
///   smlp serve-s2 --pki pki/s2 --state-dir s2-state --listen 127.0.0.1:7002 &
///   smlp serve-s1 --pki pki/s1 --s2 127.0.0.1:7002 --state-dir s1-state --listen 127.0.0.1:7001 &
///   smlp register --s1 127.0.0.1:7001 --pki pki/owner-owner --public-key keys/public.key
///   smlp upload   --s1 127.0.0.1:7001 --pki pki/owner-owner --data train.enc            # prints ds-…
///   smlp train    --s1 127.0.0.1:7001 --pki pki/owner-owner --dataset ds-… --hidden 8 --epochs 2 --detach
///   smlp jobs     --s1 127.0.0.1:7001 --pki pki/owner-owner                             # go offline, come back
///   smlp wait     --s1 127.0.0.1:7001 --pki pki/owner-owner job-…
///   smlp fetch    --s1 127.0.0.1:7001 --pki pki/owner-owner job-… --out model.enc
///   smlp encrypt  --public-key keys/public.key --csv new.csv --no-label --scaler train.enc.scaler.json --out new.enc
///   smlp classify --s1 127.0.0.1:7001 --pki pki/owner-owner --model model.enc --data new.enc --out pred.enc
///   smlp decrypt  --secret-key keys/secret.key --in pred.enc --out pred.csv
///
/// Or run everything at once on the embedded breast-cancer data set: smlp demo
#[derive(Parser, Debug)]
#[command(name = "smlp", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate a Paillier key pair (KEYDIR/public.key, KEYDIR/secret.key).
    Keygen(keys::KeygenArgs),
    /// Make a deployment PKI: a CA and TLS certificates for S1, S2 and the owners.
    Pki(tls::PkiArgs),
    /// Choose training settings in the clear, before encrypting (cross-validation of the
    /// fixed-point twin).
    Tune(tune::TuneArgs),
    /// Encrypt a CSV data set (standardised, fixed point) under a public key.
    Encrypt(encrypt::EncryptArgs),
    /// Run S2, the crypto server holding the secret key.
    ServeS2(s2::ServeS2Args),
    /// Manage S2's tenant keys: its import key, and the owners' keys it holds (add, list, remove).
    S2Keys(tenants::S2KeysArgs),
    /// Seal your secret key for one S2 (its import.pub), to hand to S2's operator.
    SealKey(seal::SealKeyArgs),
    /// Show S2's refusal book (refusals per S1 identity) or clear a blocked identity.
    S2Refusals(refusals::S2RefusalsArgs),
    /// Run S1, the cloud server that trains and classifies on ciphertexts.
    ServeS1(servers::ServeS1Args),
    /// Register your public key at S1 (once per key).
    Register(owner::RegisterArgs),
    /// Upload an encrypted data set to S1, which keeps it; prints its id.
    Upload(owner::UploadArgs),
    /// Train a model at S1 (a job that runs without you; waits unless --detach).
    Train(owner::TrainArgs),
    /// Your jobs at S1: state, progress, throughput, ETA.
    Jobs(owner::JobsArgs),
    /// Wait for a job with a progress bar (exit code 0 done, 1 failed, 3 cancelled).
    Wait(owner::WaitArgs),
    /// Write a stored object or a job's result (or checkpoint) to a file.
    Fetch(owner::FetchArgs),
    /// Cancel a queued or running job.
    Cancel(owner::CancelArgs),
    /// Classify encrypted samples with an encrypted model at S1 (waits unless --detach).
    Classify(owner::ClassifyArgs),
    /// List your data sets, models or predictions at S1.
    List(owner::ListArgs),
    /// Let another owner classify with one of your models, under its own key.
    Share(owner::ShareArgs),
    /// Stop letting another owner classify with one of your models.
    Unshare(owner::ShareArgs),
    /// Delete a data set, model, predictions or ended job at S1.
    Delete(owner::DeleteArgs),
    /// Decrypt predictions (→ CSV), a model or checkpoint (→ JSON), or a data set (→ CSV).
    Decrypt(decrypt::DecryptArgs),
    /// Run the whole flow on the embedded wdbc data set, with both servers as child processes.
    Demo(demo::DemoArgs),
}

/// How this tool starts itself (the demo's server processes): the running executable unless a
/// host program said otherwise with [`set_self_command`].
static SELF_COMMAND: OnceLock<Vec<OsString>> = OnceLock::new();

/// Sets the command (program and leading arguments) that starts this tool again, for a host
/// whose executable is not `smlp` (the Python package: `python -m smlp`). First call wins.
pub fn set_self_command(command: Vec<OsString>) {
    let _ = SELF_COMMAND.set(command);
}

/// The command that starts this tool again: program and leading arguments.
pub fn self_command() -> error::CliResult<Vec<OsString>> {
    match SELF_COMMAND.get() {
        Some(c) if !c.is_empty() => Ok(c.clone()),
        _ => Ok(vec![std::env::current_exe()
            .map_err(|e| error::CliError(format!("cannot locate the smlp executable: {e}")))?
            .into_os_string()]),
    }
}

/// Runs the tool on `args` (the program name first, as `std::env::args_os`): parses them, runs
/// the command and returns its exit status; usage errors and `--help` print as clap does and
/// never exit the process (a host such as a notebook survives them).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    util::init_logging(match &cli.command {
        Command::ServeS1(_) | Command::ServeS2(_) => "info",
        _ => "warn",
    });
    let outcome = match &cli.command {
        Command::Keygen(a) => keys::keygen(a).map(drop),
        Command::Pki(a) => tls::pki(a).map(drop),
        Command::Encrypt(a) => encrypt::encrypt(a).map(drop),
        Command::Tune(a) => tune::run(a).map(drop),
        Command::ServeS2(a) => s2::serve_s2(a),
        Command::S2Refusals(a) => refusals::s2_refusals(a),
        Command::S2Keys(a) => tenants::s2_keys(a),
        Command::SealKey(a) => seal::seal_key_cmd(a),
        Command::ServeS1(a) => servers::serve_s1(a),
        Command::Register(a) => owner::register(a),
        Command::Upload(a) => owner::upload(a).map(drop),
        Command::Train(a) => owner::train(a).map(drop),
        Command::Jobs(a) => owner::jobs(a),
        Command::Wait(a) => match owner::wait(a) {
            Ok(proto::JobState::Done) => Ok(()),
            Ok(proto::JobState::Cancelled) => return ExitCode::from(3),
            Ok(_) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Fetch(a) => owner::fetch(a),
        Command::Cancel(a) => owner::cancel(a),
        Command::Classify(a) => owner::classify(a).map(drop),
        Command::List(a) => owner::list(a).map(drop),
        Command::Delete(a) => owner::delete(a),
        Command::Share(a) => owner::share(a, true),
        Command::Unshare(a) => owner::share(a, false),
        Command::Decrypt(a) => decrypt::decrypt(a).map(drop),
        Command::Demo(a) => demo::demo(a),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
