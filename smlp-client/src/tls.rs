//! `smlp pki` and the TLS options every networked command shares (`--pki DIR [--as NAME]`, or
//! an operator's own `--tls-cert/--tls-key/--tls-ca`).

use crate::bail;
use crate::error::{CliError, CliResult};
use clap::Args;
use std::path::PathBuf;
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
