//! `smlp pki` and the TLS options every networked command shares (`--pki DIR [--as NAME]`, or
//! an operator's own `--tls-cert/--tls-key/--tls-ca`).

use crate::bail;
use crate::error::{CliError, CliResult};
use clap::Args;
use std::path::PathBuf;
use transport::pki::{self, PkiSpec, DEFAULT_DAYS};
use transport::{Role, TlsCredentials, TlsFiles};

/// Where this party's TLS credentials are.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Deployment PKI directory made by `smlp pki` (reads only ca.crt and this party's
    /// certificate and key) [env: SMLP_PKI].
    #[arg(long, env = "SMLP_PKI", value_name = "DIR")]
    pub pki: Option<PathBuf>,
    /// This party's certificate (PEM), from an operator's own CA, instead of --pki. It must carry
    /// the role as a SAN URI (urn:smlp:role:s1, urn:smlp:role:s2 or urn:smlp:role:owner).
    #[arg(long, value_name = "PEM", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// This party's private key (PEM), with --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA certificate(s) peers must chain to (PEM), with --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_ca: Option<PathBuf>,
    /// The CA's certificate revocation list (PEM), with --tls-cert (with --pki: the kit's
    /// ca.crl, if there). Read again whenever it changes.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_crl: Option<PathBuf>,
}

impl TlsArgs {
    /// The files of `stem` (`s1`, `s2`, `owner-NAME`).
    pub fn files(&self, stem: &str) -> CliResult<TlsFiles> {
        if let (Some(cert), Some(key), Some(ca)) = (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            return Ok(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
                crl: self.tls_crl.clone(),
            });
        }
        match &self.pki {
            Some(dir) => Ok(TlsFiles::in_pki(dir, stem)),
            None => bail!(
                "every smlp link is mutually authenticated TLS: give --pki DIR (made by `smlp pki`), \
                 or --tls-cert, --tls-key and --tls-ca"
            ),
        }
    }

    /// Loads the credentials of `stem`, which must carry `role`.
    pub fn load(&self, stem: &str, role: Role) -> CliResult<TlsCredentials> {
        let files = self.files(stem)?;
        TlsCredentials::load(&files, role).map_err(|e| CliError(format!("TLS credentials: {e}")))
    }
}

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
