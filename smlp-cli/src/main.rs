//! `smlp`: train a multilayer perceptron on Paillier-encrypted data with two non-colluding
//! servers.
//!
//! S1 (`serve-s1`, the cloud) holds the public key and the ciphertexts and runs the training;
//! S2 (`serve-s2`, the crypto server) holds the secret key and only ever sees blinded values.
//! The data owner generates the keys, encrypts the data, asks S1 to train and classify, and
//! decrypts the results.

mod client;
mod decrypt;
mod demo;
mod encrypt;
mod error;
mod keys;
mod proto;
mod s1;
mod servers;
mod tls;
mod util;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Train an MLP on Paillier-encrypted data with two non-colluding servers.
///
/// Walk-through (each command has its own --help):
///
///   smlp keygen   --bits 2048 --out keys
///   smlp pki      --out pki --s1-host 127.0.0.1 --s2-host 127.0.0.1
///   smlp encrypt  --public-key keys/public.key --csv train.csv --out train.enc
///   smlp encrypt  --public-key keys/public.key --csv test.csv --scaler train.enc.scaler.json --out test.enc
///   smlp serve-s2 --secret-key keys/secret.key --pki pki --listen 127.0.0.1:7002 &
///   smlp serve-s1 --public-key keys/public.key --pki pki --s2 127.0.0.1:7002 --listen 127.0.0.1:7001 &
///   smlp train    --s1 127.0.0.1:7001 --pki pki --data train.enc --hidden 8 --epochs 2 --out model.enc
///   smlp classify --s1 127.0.0.1:7001 --pki pki --model model.enc --data test.enc --out pred.enc
///   smlp decrypt  --secret-key keys/secret.key --in pred.enc --out pred.csv
///
/// Or run everything at once on the embedded breast-cancer data set: smlp demo
#[derive(Parser, Debug)]
#[command(name = "smlp", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a Paillier key pair (KEYDIR/public.key, KEYDIR/secret.key).
    Keygen(keys::KeygenArgs),
    /// Make a deployment PKI: a CA and TLS certificates for S1, S2 and the owners.
    Pki(tls::PkiArgs),
    /// Encrypt a CSV data set (standardised, fixed point) under a public key.
    Encrypt(encrypt::EncryptArgs),
    /// Run S2, the crypto server holding the secret key.
    ServeS2(servers::ServeS2Args),
    /// Run S1, the cloud server that trains and classifies on ciphertexts.
    ServeS1(servers::ServeS1Args),
    /// Train a model on an encrypted data set through S1.
    Train(client::TrainArgs),
    /// Classify an encrypted data set with an encrypted model through S1.
    Classify(client::ClassifyArgs),
    /// Decrypt predictions (→ CSV), a model or checkpoint (→ JSON), or a data set (→ CSV).
    Decrypt(decrypt::DecryptArgs),
    /// Run the whole flow on the embedded wdbc data set, with both servers as child processes.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    util::init_logging(match &cli.command {
        Command::ServeS1(_) | Command::ServeS2(_) => "info",
        _ => "warn",
    });
    let outcome = match &cli.command {
        Command::Keygen(a) => keys::keygen(a).map(drop),
        Command::Pki(a) => tls::pki(a).map(drop),
        Command::Encrypt(a) => encrypt::encrypt(a).map(drop),
        Command::ServeS2(a) => servers::serve_s2(a),
        Command::ServeS1(a) => servers::serve_s1(a),
        Command::Train(a) => client::train(a).map(drop),
        Command::Classify(a) => client::classify(a).map(drop),
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
