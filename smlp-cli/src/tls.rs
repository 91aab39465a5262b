//! `smlp pki`: its flags and what it prints; the PKI is `transport::pki`, the TLS flags every party shares `smlp_client::tls`.

pub use smlp_client::tls::*;

use clap::Args;
use smlp_client::bail;
use smlp_client::error::CliResult;
use std::path::PathBuf;
use transport::pki::{self, PkiSpec, DEFAULT_DAYS};

/// Makes a deployment PKI: a CA and a certificate for S1, S2 and each owner.
///
/// Writes DIR/ca.crt and DIR/ca.key, DIR/s1.crt + s1.key, DIR/s2.crt + s2.key and
/// DIR/owner-NAME.crt + owner-NAME.key for each owner (keys 0600). Hand each party only its own
/// files and ca.crt; keep ca.key offline. With --add-owner, issues certificates for more owners
/// with the CA already in DIR.
#[derive(Args, Debug, Clone)]
pub struct PkiArgs {
    /// Directory to write (created if missing; an existing CA is never overwritten).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Host name or IP address under which owners reach S1 (repeatable).
    #[arg(
        long = "s1-host",
        value_name = "NAME",
        required_unless_present_any = ["add_owner", "revoke"]
    )]
    pub s1_hosts: Vec<String>,
    /// Host name or IP address under which S1 reaches S2 (repeatable).
    #[arg(
        long = "s2-host",
        value_name = "NAME",
        required_unless_present_any = ["add_owner", "revoke"]
    )]
    pub s2_hosts: Vec<String>,
    /// An owner's name (repeatable) [default: one owner named "owner"].
    #[arg(long = "owner", value_name = "NAME", conflicts_with = "add_owner")]
    pub owners: Vec<String>,
    /// Add owners to the existing PKI in DIR (repeatable).
    #[arg(long = "add-owner", value_name = "NAME", conflicts_with_all = ["s1_hosts", "s2_hosts"])]
    pub add_owner: Vec<String>,
    /// Revoke a certificate of the PKI in DIR: `s1`, `s2` or an owner's name (repeatable).
    /// Writes DIR/ca.crl and a copy into every kit; servers and clients that read their kit's
    /// ca.crl refuse the certificate from their next handshake on, without a restart.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["s1_hosts", "s2_hosts", "owners", "add_owner"])]
    pub revoke: Vec<String>,
    /// Validity of the S1, S2 and owner certificates, in days.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    pub days: i64,
}

/// Runs `smlp pki`.
pub fn pki(args: &PkiArgs) -> CliResult<Vec<PathBuf>> {
    if !(1..=3650).contains(&args.days) {
        bail!("--days must be in 1..=3650");
    }
    if !args.revoke.is_empty() {
        let mut written = vec![];
        for name in &args.revoke {
            let stem = match name.as_str() {
                "s1" | "s2" => name.clone(),
                owner => {
                    pki::check_owner_name(owner)?;
                    format!("owner-{owner}")
                }
            };
            let (files, already) = pki::revoke(&args.out, &stem)?;
            println!(
                "{} {stem}: its certificate is refused from the next handshake of every party that reads its kit's {}",
                if already { "already revoked" } else { "revoked" },
                pki::CRL_FILE
            );
            written = files;
        }
        for p in &written {
            println!("wrote {}", p.display());
        }
        return Ok(written);
    }
    let written = if args.add_owner.is_empty() {
        let owners = if args.owners.is_empty() {
            vec!["owner".to_string()]
        } else {
            args.owners.clone()
        };
        pki::create(
            &args.out,
            &PkiSpec {
                s1_hosts: args.s1_hosts.clone(),
                s2_hosts: args.s2_hosts.clone(),
                owners,
                days: args.days,
            },
        )?
    } else {
        pki::add_owners(&args.out, &args.add_owner, args.days)?
    };
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(written)
}
