//! A deployment PKI for smlp, made with rcgen: one CA, and a certificate per party with its role.
//!
//! ```text
//! DIR/ca.crt, DIR/ca.key                    the deployment's CA (keep ca.key offline)
//! DIR/s1.crt, DIR/s1.key                    S1: serverAuth + clientAuth, SAN = its host(s)
//! DIR/s2.crt, DIR/s2.key                    S2: serverAuth, SAN = its host(s)
//! DIR/owner-NAME.crt, DIR/owner-NAME.key    an owner: clientAuth, common name NAME
//! DIR/s1/, DIR/s2/, DIR/owner-NAME/         each party's own kit: ca.crt and its pair only
//! ```
//!
//! A party is handed its kit directory (`--pki DIR/s2`), never `DIR` itself, which holds
//! `ca.key`: whoever reads `ca.key` can issue a certificate of any role.
//!
//! Keys are ECDSA P-256 from ring's system CSPRNG, written 0600 through exclusively created
//! temporary files; certificates are PEM. Each certificate carries its role as the SAN URI of
//! [`Role::uri`], which the TLS verifiers of [`crate::tls`] check.

use crate::tls::Role;
use paillier::format::{write_atomic, FileError};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Validity of the CA certificate, in days.
pub const CA_DAYS: i64 = 3650;
/// Default validity of party certificates, in days.
pub const DEFAULT_DAYS: i64 = 825;

/// Why a PKI could not be made.
#[derive(Debug, Error)]
pub enum PkiError {
    /// A host or owner name is not acceptable.
    #[error("{0}")]
    Name(String),
    /// The directory already holds a CA (never overwritten).
    #[error("{} already exists: choose another directory, or add owners with --add-owner", .0.display())]
    Exists(PathBuf),
    /// The CA needed to add owners is missing or unreadable.
    #[error("cannot use the CA in {}: {why}", dir.display())]
    Ca {
        /// The PKI directory.
        dir: PathBuf,
        /// Why.
        why: String,
    },
    /// rcgen failed.
    #[error("cannot make a certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// A file could not be written.
    #[error(transparent)]
    File(#[from] FileError),
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What to put in a new PKI.
#[derive(Clone, Debug)]
pub struct PkiSpec {
    /// Host names or IP addresses under which owners reach S1.
    pub s1_hosts: Vec<String>,
    /// Host names or IP addresses under which S1 reaches S2.
    pub s2_hosts: Vec<String>,
    /// Owner names (letters, digits, `.`, `_`, `-`; at most 64 characters).
    pub owners: Vec<String>,
    /// Validity of the party certificates, in days.
    pub days: i64,
}

impl PkiSpec {
    /// S1 and S2 on 127.0.0.1 (one machine: the demo, tests, benchmarks), with `owners`.
    pub fn loopback(owners: &[&str]) -> PkiSpec {
        PkiSpec {
            s1_hosts: vec!["127.0.0.1".into()],
            s2_hosts: vec!["127.0.0.1".into()],
            owners: owners.iter().map(|o| o.to_string()).collect(),
            days: DEFAULT_DAYS,
        }
    }
}

/// Checks an owner name: 1–64 characters of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
pub fn check_owner_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(PkiError::Name(format!(
            "owner name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-' (not first)"
        )))
    }
}

fn san(host: &str) -> Result<SanType, PkiError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        return Err(PkiError::Name(format!(
            "host {host:?} is neither an IP address nor a DNS name"
        )));
    }
    Ok(SanType::DnsName(host.try_into()?))
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn leaf_params(
    role: Role,
    common_name: &str,
    hosts: &[String],
    days: i64,
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "smlp deployment");
    p.distinguished_name = dn;
    p.subject_alt_names = hosts.iter().map(|h| san(h)).collect::<Result<_, _>>()?;
    p.subject_alt_names
        .push(SanType::URI(role.uri().try_into()?));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = match role {
        Role::S1 => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::S2 => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Role::Owner => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    p.use_authority_key_identifier_extension = true;
    p.not_before = now() - time::Duration::hours(1);
    p.not_after = now() + time::Duration::days(days.max(1));
    Ok(p)
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "smlp deployment CA");
    dn.push(DnType::OrganizationName, "smlp deployment");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now() - time::Duration::hours(1);
    p.not_after = now() + time::Duration::days(CA_DAYS);
    p
}

fn issue(
    dir: &Path,
    stem: &str,
    params: &CertificateParams,
    ca: &Issuer<'_, KeyPair>,
) -> Result<Vec<PathBuf>, PkiError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    let crt = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    let (key_pem, cert_pem) = (key.serialize_pem(), cert.pem());
    write_atomic(&key_path, key_pem.as_bytes(), true)?;
    write_atomic(&crt, cert_pem.as_bytes(), false)?;
    // The party's kit: ca.crt and its own pair, in a directory of its own (0700).
    let kit = party_dir(dir, stem);
    std::fs::create_dir_all(&kit).map_err(|source| PkiError::Dir {
        path: kit.clone(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kit, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| PkiError::Dir {
                path: kit.clone(),
                source,
            },
        )?;
    }
    let ca_crt = std::fs::read(dir.join("ca.crt")).map_err(|source| PkiError::Dir {
        path: dir.join("ca.crt"),
        source,
    })?;
    write_atomic(&kit.join("ca.crt"), &ca_crt, false)?;
    write_atomic(&kit.join(format!("{stem}.key")), key_pem.as_bytes(), true)?;
    write_atomic(&kit.join(format!("{stem}.crt")), cert_pem.as_bytes(), false)?;
    Ok(vec![crt, key_path, kit])
}

/// The kit directory of the party `stem` (`s1`, `s2`, `owner-NAME`) in the PKI `dir`: `ca.crt`
/// and the party's pair only.
pub fn party_dir(dir: &Path, stem: &str) -> PathBuf {
    dir.join(stem)
}

fn owners_checked(owners: &[String]) -> Result<(), PkiError> {
    for (i, o) in owners.iter().enumerate() {
        check_owner_name(o)?;
        if owners[..i].contains(o) {
            return Err(PkiError::Name(format!("owner {o:?} given twice")));
        }
    }
    Ok(())
}

/// Makes a new PKI in `dir` (created if missing; refused if it already holds a CA). Returns the
/// files written.
pub fn create(dir: &Path, spec: &PkiSpec) -> Result<Vec<PathBuf>, PkiError> {
    if spec.s1_hosts.is_empty() || spec.s2_hosts.is_empty() {
        return Err(PkiError::Name(
            "S1 and S2 each need at least one host name or address".into(),
        ));
    }
    owners_checked(&spec.owners)?;
    // Check every name before writing anything.
    let s1 = leaf_params(Role::S1, "S1", &spec.s1_hosts, spec.days)?;
    let s2 = leaf_params(Role::S2, "S2", &spec.s2_hosts, spec.days)?;
    let owners: Vec<(String, CertificateParams)> = spec
        .owners
        .iter()
        .map(|o| Ok((o.clone(), leaf_params(Role::Owner, o, &[], spec.days)?)))
        .collect::<Result<_, PkiError>>()?;
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca_key_path = dir.join("ca.key");
    if ca_key_path.exists() {
        return Err(PkiError::Exists(ca_key_path));
    }
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params();
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write_atomic(&ca_key_path, ca_key.serialize_pem().as_bytes(), true)?;
    write_atomic(&dir.join("ca.crt"), ca_cert.pem().as_bytes(), false)?;
    let ca = Issuer::new(ca_params, ca_key);
    let mut written = vec![dir.join("ca.crt"), ca_key_path];
    written.extend(issue(dir, "s1", &s1, &ca)?);
    written.extend(issue(dir, "s2", &s2, &ca)?);
    for (name, params) in &owners {
        written.extend(issue(dir, &format!("owner-{name}"), params, &ca)?);
    }
    Ok(written)
}

/// The CA of an existing PKI in `dir` (its `ca.key` and `ca.crt`).
fn load_ca(dir: &Path) -> Result<Issuer<'static, KeyPair>, PkiError> {
    let ca_err = |why: String| PkiError::Ca {
        dir: dir.to_path_buf(),
        why,
    };
    let key_pem =
        std::fs::read_to_string(dir.join("ca.key")).map_err(|e| ca_err(format!("ca.key: {e}")))?;
    let cert_pem =
        std::fs::read_to_string(dir.join("ca.crt")).map_err(|e| ca_err(format!("ca.crt: {e}")))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| ca_err(format!("ca.key: {e}")))?;
    Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| ca_err(format!("ca.crt: {e}")))
}

/// File name of the deployment's certificate revocation list, in the PKI directory and in every
/// party's kit (where servers and clients read it, at each handshake when it has changed).
pub const CRL_FILE: &str = "ca.crl";

/// Largest CRL file read.
pub const MAX_CRL_BYTES: u64 = 16 << 20;

/// Revokes the certificate of the party `stem` (`s1`, `s2`, `owner-NAME`) of the PKI in `dir`:
/// adds its serial number to the CA's revocation list, signs the list again (its CRL number one
/// more) and writes it to `dir/ca.crl` and into every party's kit. Returns the files written and
/// whether the certificate was already revoked.
pub fn revoke(dir: &Path, stem: &str) -> Result<(Vec<PathBuf>, bool), PkiError> {
    let ca = load_ca(dir)?;
    let ca_err = |why: String| PkiError::Ca {
        dir: dir.to_path_buf(),
        why,
    };
    let crt = dir.join(format!("{stem}.crt"));
    let pem = std::fs::read(&crt)
        .map_err(|e| PkiError::Name(format!("no certificate {} to revoke: {e}", crt.display())))?;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem)
        .map_err(|e| PkiError::Name(format!("{}: {e}", crt.display())))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PkiError::Name(format!("{}: {e}", crt.display())))?;
    let serial = cert.raw_serial().to_vec();
    // What the current list holds.
    let path = dir.join(CRL_FILE);
    let mut revoked: Vec<RevokedCertParams> = Vec::new();
    let mut number = 0u64;
    let mut already = false;
    if path.exists() {
        let bytes = std::fs::read(&path).map_err(|e| ca_err(format!("{CRL_FILE}: {e}")))?;
        let der = rustls::pki_types::CertificateRevocationListDer::from_pem_slice(&bytes)
            .map_err(|e| ca_err(format!("{CRL_FILE}: {e}")))?;
        let (_, crl) =
            x509_parser::parse_x509_crl(&der).map_err(|e| ca_err(format!("{CRL_FILE}: {e}")))?;
        number = crl
            .crl_number()
            .and_then(|n| u64::try_from(n.clone()).ok())
            .unwrap_or(0);
        for r in crl.iter_revoked_certificates() {
            already |= r.raw_serial() == serial.as_slice();
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(r.raw_serial()),
                revocation_time: time::OffsetDateTime::from_unix_timestamp(
                    r.revocation_date.timestamp(),
                )
                .unwrap_or_else(|_| now()),
                reason_code: None,
                invalidity_date: None,
            });
        }
    }
    if !already {
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: now(),
            reason_code: Some(RevocationReason::Unspecified),
            invalidity_date: None,
        });
    }
    let crl = CertificateRevocationListParams {
        this_update: now() - time::Duration::minutes(5),
        next_update: now() + time::Duration::days(CA_DAYS),
        crl_number: SerialNumber::from(number + 1),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca)?;
    let pem = crl.pem()?;
    write_atomic(&path, pem.as_bytes(), false)?;
    let mut written = vec![path];
    // Every kit gets the new list: a kit is a directory of DIR holding ca.crt.
    let entries = std::fs::read_dir(dir).map_err(|source| PkiError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries.flatten() {
        let kit = e.path();
        if kit.is_dir() && kit.join("ca.crt").is_file() {
            write_atomic(&kit.join(CRL_FILE), pem.as_bytes(), false)?;
            written.push(kit.join(CRL_FILE));
        }
    }
    Ok((written, already))
}

/// Issues certificates for more owners with the CA of an existing PKI in `dir`. An owner whose
/// certificate exists already is refused.
pub fn add_owners(dir: &Path, owners: &[String], days: i64) -> Result<Vec<PathBuf>, PkiError> {
    owners_checked(owners)?;
    let ca = load_ca(dir)?;
    let mut written = Vec::new();
    for o in owners {
        let stem = format!("owner-{o}");
        if dir.join(format!("{stem}.crt")).exists() {
            return Err(PkiError::Exists(dir.join(format!("{stem}.crt"))));
        }
        let params = leaf_params(Role::Owner, o, &[], days)?;
        written.extend(issue(dir, &stem, &params, &ca)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_names() {
        for ok in ["owner", "alice", "hospital-1", "a.b_c"] {
            check_owner_name(ok).unwrap();
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(check_owner_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hosts() {
        assert!(matches!(san("127.0.0.1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(san("::1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(
            san("s2.example.org").unwrap(),
            SanType::DnsName(_)
        ));
        for bad in ["", "a..b", "-a.b", "a_b.c", "a b"] {
            assert!(san(bad).is_err(), "{bad:?}");
        }
    }
}
