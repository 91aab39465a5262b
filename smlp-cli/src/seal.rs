//! `smlp seal-key`: its flags and what it prints; sealing is `smlp_client::seal`.

pub use smlp_client::seal::*;

use clap::Args;
use paillier::format::write_atomic;
use smlp_client::error::CliResult;
use std::path::PathBuf;

/// `smlp seal-key`: seals an owner's secret key for one S2.
///
/// Reads KEYDIR/secret.key and S2's import.pub (from S2's operator, `smlp s2-keys init`) and
/// writes a file that only that S2 can open; send it to S2's operator, who adds it with
/// `smlp s2-keys add FILE`.
#[derive(Args, Debug, Clone)]
pub struct SealKeyArgs {
    /// Your secret key file (KEYDIR/secret.key).
    #[arg(long, value_name = "FILE")]
    pub secret_key: PathBuf,
    /// S2's import public key (its operator's import.pub).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// A label shown in S2's list (your name, say).
    #[arg(long, default_value = "")]
    pub label: String,
    /// The sealed key file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `smlp seal-key`.
pub fn seal_key_cmd(args: &SealKeyArgs) -> CliResult<()> {
    let sk = crate::keys::load_secret(&args.secret_key)?;
    let bytes = seal_key(&sk, &args.to, &args.label)?;
    write_atomic(&args.out, &bytes, true)?;
    println!(
        "sealed key {} for S2 → {} (only the S2 holding the matching import key can open it)",
        sk.public_key().fingerprint(),
        args.out.display()
    );
    Ok(())
}
