//! `smlp keygen`: its flags and what it prints; generating, writing and loading keys is `smlp_client::keys`.

pub use smlp_client::keys::*;

use clap::Args;
use paillier::SecretKey;
use smlp_client::error::CliResult;
use std::path::PathBuf;
use std::time::Instant;

/// Generates a Paillier key pair.
///
/// Writes KEYDIR/public.key (give it to S1 and to whoever encrypts data) and KEYDIR/secret.key
/// (mode 0600; only S2 and the data owner need it). Existing key files are not overwritten unless
/// --force is given.
#[derive(Args, Debug, Clone)]
pub struct KeygenArgs {
    /// Size of the modulus n in bits (2048 or more; see --insecure-test-key).
    #[arg(long, default_value_t = 2048)]
    pub bits: u32,
    /// Directory to write public.key and secret.key into (created if missing).
    #[arg(long, value_name = "KEYDIR")]
    pub out: PathBuf,
    /// Allow key sizes below 2048 bits (down to 256). For tests only: such keys are not secure.
    #[arg(long)]
    pub insecure_test_key: bool,
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

/// Runs `smlp keygen`; returns the secret key.
pub fn keygen(args: &KeygenArgs) -> CliResult<SecretKey> {
    let start = Instant::now();
    let bits = args.bits;
    let sk = generate_key(bits, args.insecure_test_key)?;
    let (public, secret) = write_keys(&args.out, &sk, args.force)?;
    println!(
        "generated a {bits}-bit Paillier key pair in {:.2} s (fingerprint {})",
        start.elapsed().as_secs_f64(),
        sk.public_key().fingerprint()
    );
    println!("  public key: {}", public.display());
    println!("  secret key: {} (mode 0600)", secret.display());
    Ok(sk)
}
