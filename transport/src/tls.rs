//! Mutually authenticated TLS 1.3 (rustls, ring provider) with roles in the certificates.
//!
//! Every smlp party holds a certificate of the deployment's CA that names its role in a SAN URI:
//! [`Role::S1`] (`urn:smlp:role:s1`), [`Role::S2`] (`urn:smlp:role:s2`) or [`Role::Owner`]
//! (`urn:smlp:role:owner`); the subject's common name is the party's name (an owner's identity).
//! A server accepts only client certificates of its CA with one of the roles it serves, and a
//! client accepts only a server certificate of its CA that is valid for the host it dialled and
//! carries the role it expects. Both checks run inside the TLS handshake (custom rustls
//! verifiers around rustls' WebPKI verifiers), so a peer without the right certificate is refused
//! before a single frame is read.

use crate::tcp::{configure_socket, connect_socket, FramedChannel, Stream, TcpOptions};
use crate::TransportError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, DistinguishedName,
    RootCertStore, ServerConfig, ServerConnection, SignatureScheme, StreamOwned,
};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;

/// The role a certificate grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The cloud server: a TLS server to owners and a TLS client of S2.
    S1,
    /// The crypto server holding the secret key: a TLS server to S1 only.
    S2,
    /// A data owner: a TLS client of S1.
    Owner,
}

impl Role {
    /// The SAN URI that carries the role.
    pub fn uri(self) -> &'static str {
        match self {
            Role::S1 => "urn:smlp:role:s1",
            Role::S2 => "urn:smlp:role:s2",
            Role::Owner => "urn:smlp:role:owner",
        }
    }

    fn from_uri(uri: &str) -> Option<Role> {
        [Role::S1, Role::S2, Role::Owner]
            .into_iter()
            .find(|r| r.uri() == uri)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::S1 => "S1",
            Role::S2 => "S2",
            Role::Owner => "owner",
        })
    }
}

/// Who is on the other end of a TLS channel, as its (verified) certificate says.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerIdentity {
    /// The role of the certificate.
    pub role: Role,
    /// The certificate's subject common name (an owner's name).
    pub name: String,
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} \"{}\"", self.role, self.name)
    }
}

/// Why TLS credentials could not be loaded or a peer's certificate not read.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds no usable item.
    #[error("cannot load {what} from {}: {why}", path.display())]
    Load {
        /// What was expected (certificate, private key, CA certificate).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// A certificate does not carry exactly one smlp role, or no name.
    #[error("certificate without a valid smlp identity: {0}")]
    Identity(String),
    /// Our own certificate has another role than this program needs.
    #[error("the certificate {} is for {got}, this program needs a certificate for {want}", path.display())]
    WrongRole {
        /// The certificate file.
        path: PathBuf,
        /// Its role.
        got: Role,
        /// The role needed.
        want: Role,
    },
    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The name to verify the server's certificate against is not a DNS name or IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
}

/// Paths of one party's TLS credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The party's certificate (PEM; the end-entity first, intermediates after it).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The CA certificate(s) that peers' certificates must chain to (PEM).
    pub ca: PathBuf,
    /// The CA's certificate revocation list (PEM), if any: read when the credentials are loaded,
    /// and again at a handshake whenever the file has changed (or appeared), so a new list takes
    /// effect without a restart. A peer whose certificate it lists is refused in the handshake;
    /// a list that cannot be read refuses every peer until it can (fail closed).
    pub crl: Option<PathBuf>,
}

impl TlsFiles {
    /// `DIR/STEM.crt`, `DIR/STEM.key` and `DIR/ca.crt`: the layout of `smlp pki`.
    pub fn in_pki(dir: &Path, stem: &str) -> TlsFiles {
        TlsFiles {
            cert: dir.join(format!("{stem}.crt")),
            key: dir.join(format!("{stem}.key")),
            ca: dir.join("ca.crt"),
            crl: Some(dir.join(crate::pki::CRL_FILE)),
        }
    }
}

/// One party's loaded credentials: its certificate chain and key, the trusted CA, its identity.
pub struct TlsCredentials {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
    identity: PeerIdentity,
    crl: Option<PathBuf>,
}

impl fmt::Debug for TlsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCredentials")
            .field("identity", &self.identity)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// A file of `what` at `path` could not be used, because of `why`.
fn load_error(what: &'static str, path: &Path, why: impl fmt::Display) -> TlsError {
    TlsError::Load {
        what,
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// Bounded size of a PEM file we read (a certificate chain or key is a few KiB).
const MAX_PEM: u64 = 1 << 20;

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let file = std::fs::File::open(path).map_err(|e| load_error(what, path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| load_error(what, path, e))?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(load_error(
            what,
            path,
            format!("larger than {MAX_PEM} bytes"),
        ));
    }
    Ok(bytes)
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem(what, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| load_error(what, path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(load_error(what, path, "no certificate in the file"));
    }
    Ok(certs)
}

/// The smlp identity (role URI and common name) of a DER certificate.
pub fn identity_of(der: &[u8]) -> Result<PeerIdentity, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| TlsError::Identity(format!("not an X.509 certificate: {e}")))?;
    let mut roles = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if let Some(r) = Role::from_uri(uri) {
                    roles.push(r);
                }
            }
        }
    }
    let role = match roles.as_slice() {
        [r] => *r,
        [] => {
            return Err(TlsError::Identity(
                "no smlp role (urn:smlp:role:…) in its subject alternative names".into(),
            ))
        }
        _ => return Err(TlsError::Identity("more than one smlp role".into())),
    };
    let name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| TlsError::Identity("no common name".into()))?;
    Ok(PeerIdentity {
        role,
        name: name.to_string(),
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsCredentials {
    /// Loads the certificate, key and CA of `files`; the certificate must carry `role`.
    pub fn load(files: &TlsFiles, role: Role) -> Result<TlsCredentials, TlsError> {
        let chain = certs("certificate", &files.cert)?;
        let key_bytes = read_pem("private key", &files.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes)
            .map_err(|e| load_error("private key", &files.key, e))?;
        let mut roots = RootCertStore::empty();
        for ca in certs("CA certificate", &files.ca)? {
            roots
                .add(ca)
                .map_err(|e| load_error("CA certificate", &files.ca, e))?;
        }
        let identity = identity_of(&chain[0])?;
        if identity.role != role {
            return Err(TlsError::WrongRole {
                path: files.cert.clone(),
                got: identity.role,
                want: role,
            });
        }
        let creds = TlsCredentials {
            chain,
            key,
            roots: Arc::new(roots),
            identity,
            crl: files.crl.clone(),
        };
        // Fails now, not at the first connection, if the key does not match the certificate or
        // the revocation list cannot be read.
        creds.client_config(Role::S1)?;
        Ok(creds)
    }

    /// Our own identity.
    pub fn identity(&self) -> &PeerIdentity {
        &self.identity
    }

    /// A TLS 1.3 server configuration that requires a client certificate of our CA with one of
    /// the roles in `accept`.
    pub fn server_config(&self, accept: &[Role]) -> Result<Arc<ServerConfig>, TlsError> {
        let roots = self.roots.clone();
        let build = move |crls: Vec<CertificateRevocationListDer<'static>>| {
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .with_crls(crls)
                .only_check_end_entity_revocation()
                .build()
                .map_err(|e| e.to_string())
        };
        let watched = Watched::new(self.crl.clone(), Box::new(build))?;
        let verifier = Arc::new(RoleClientVerifier {
            accept: accept.to_vec(),
            watched,
        });
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        // No session resumption: a resumed session skips certificate verification, so a client
        // revoked after its first session could resume it. Every connection is a full handshake
        // (one ECDSA signature per side, negligible next to the Paillier work).
        let mut config = config;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }

    /// A TLS 1.3 client configuration that presents our certificate and accepts only a server
    /// certificate of our CA with role `expect`.
    pub fn client_config(&self, expect: Role) -> Result<Arc<ClientConfig>, TlsError> {
        let roots = self.roots.clone();
        let build = move |crls: Vec<CertificateRevocationListDer<'static>>| {
            WebPkiServerVerifier::builder_with_provider(roots.clone(), provider())
                .with_crls(crls)
                .only_check_end_entity_revocation()
                .build()
                .map_err(|e| e.to_string())
        };
        let watched = Watched::new(self.crl.clone(), Box::new(build))?;
        let verifier = Arc::new(RoleServerVerifier { expect, watched });
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        // No session resumption (see `server_config`): the server's certificate is verified,
        // against the current revocation list, at every connection.
        let mut config = config;
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(config))
    }
}

/// The error rustls reports for a certificate of the CA with the wrong role.
#[derive(Debug)]
struct RoleRefused(String);

impl fmt::Display for RoleRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RoleRefused {}

fn refuse(why: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
        RoleRefused(why),
    ))))
}

fn check_role(end_entity: &CertificateDer<'_>, allowed: &[Role]) -> Result<(), rustls::Error> {
    let id = identity_of(end_entity).map_err(|e| refuse(e.to_string()))?;
    if allowed.contains(&id.role) {
        Ok(())
    } else {
        let want: Vec<String> = allowed.iter().map(Role::to_string).collect();
        Err(refuse(format!(
            "certificate of {id} where {} is required",
            want.join(" or ")
        )))
    }
}

/// A role verifier checks signatures exactly as the WebPKI verifier it wraps (the one built at
/// start, `self.watched.first`: signatures do not depend on the revocation list).
macro_rules! delegate_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.watched
                .first
                .verify_tls12_signature(message, cert, dss)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.watched
                .first
                .verify_tls13_signature(message, cert, dss)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.watched.first.supported_verify_schemes()
        }
    };
}

/// When a revocation list file last changed: its modification time and size (`None`: no file).
type Stamp = Option<(std::time::SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len()))
}

/// Reads a PEM file of CRLs (none if the file does not exist).
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e.to_string()),
    };
    if meta.len() > crate::pki::MAX_CRL_BYTES {
        return Err(format!(
            "{} bytes, more than the {} accepted",
            meta.len(),
            crate::pki::MAX_CRL_BYTES
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if crls.is_empty() {
        return Err("no X509 CRL in the file".into());
    }
    Ok(crls)
}

type Build<V> =
    Box<dyn Fn(Vec<CertificateRevocationListDer<'static>>) -> Result<Arc<V>, String> + Send + Sync>;

/// A WebPKI verifier built with the CRLs of a file, built again when the file changes.
struct Watched<V: ?Sized> {
    path: Option<PathBuf>,
    build: Build<V>,
    current: std::sync::Mutex<(Stamp, Arc<V>)>,
    /// The verifier built at start (signatures and root hints do not depend on the CRLs).
    first: Arc<V>,
}

impl<V: ?Sized> fmt::Debug for Watched<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Watched({:?})", self.path)
    }
}

impl<V: ?Sized> Watched<V> {
    fn new(path: Option<PathBuf>, build: Build<V>) -> Result<Self, TlsError> {
        let (st, crls) = match &path {
            Some(p) => (
                stamp(p),
                read_crls(p).map_err(|e| TlsError::Load {
                    what: "certificate revocation list",
                    path: p.clone(),
                    why: e,
                })?,
            ),
            None => (None, vec![]),
        };
        let first = build(crls).map_err(|e| TlsError::Config(rustls::Error::General(e)))?;
        Ok(Watched {
            path,
            build,
            current: std::sync::Mutex::new((st, first.clone())),
            first,
        })
    }

    /// The verifier of the list as it is now (read again if the file changed). A list that
    /// cannot be read refuses the peer.
    fn get(&self) -> Result<Arc<V>, rustls::Error> {
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = &self.path {
            let now = stamp(p);
            if now != cur.0 {
                let fail = |e: String| {
                    tracing::error!(path = %p.display(), error = %e, "cannot read the certificate revocation list: refusing peers until it can be read");
                    rustls::Error::General(format!(
                        "the certificate revocation list {}: {e}",
                        p.display()
                    ))
                };
                let crls = read_crls(p).map_err(fail)?;
                let n = crls.len();
                let v = (self.build)(crls).map_err(fail)?;
                tracing::info!(path = %p.display(), lists = n, "certificate revocation list loaded");
                *cur = (now, v);
            }
        }
        Ok(cur.1.clone())
    }
}

#[derive(Debug)]
struct RoleClientVerifier {
    accept: Vec<Role>,
    watched: Watched<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for RoleClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.watched.first.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .watched
            .get()?
            .verify_client_cert(end_entity, intermediates, now)?;
        check_role(end_entity, &self.accept)?;
        Ok(ok)
    }
    delegate_signatures!();
}

#[derive(Debug)]
struct RoleServerVerifier {
    expect: Role,
    watched: Watched<WebPkiServerVerifier>,
}

impl ServerCertVerifier for RoleServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ok = self.watched.get()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        check_role(end_entity, &[self.expect])?;
        Ok(ok)
    }
    delegate_signatures!();
}

enum Conn {
    Client(Box<StreamOwned<ClientConnection, TcpStream>>),
    Server(Box<StreamOwned<ServerConnection, TcpStream>>),
}

/// A TLS stream on a TCP socket, after a completed handshake, with the peer's identity.
pub struct TlsStream {
    conn: Conn,
    peer: PeerIdentity,
}

impl TlsStream {
    /// The verified identity of the peer.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.conn {
            Conn::Client(s) => s.read(buf),
            Conn::Server(s) => s.read(buf),
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.conn {
            Conn::Client(s) => s.write(buf),
            Conn::Server(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.conn {
            Conn::Client(s) => s.flush(),
            Conn::Server(s) => s.flush(),
        }
    }
}

impl Stream for TlsStream {
    fn socket(&self) -> &TcpStream {
        match &self.conn {
            Conn::Client(s) => s.get_ref(),
            Conn::Server(s) => s.get_ref(),
        }
    }
}

/// Frames over mutually authenticated TLS; [`TlsChannel::peer`] names the peer.
pub type TlsChannel = FramedChannel<TlsStream>;

impl TlsChannel {
    /// The verified identity of the peer.
    pub fn peer(&self) -> &PeerIdentity {
        self.stream().peer()
    }
}

/// Runs a handshake to its end within `limit`, on a socket whose timeouts bound each read.
fn handshake<C, S>(conn: &mut C, sock: &mut TcpStream, limit: Duration) -> io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    // The whole handshake has `limit`: before each read or write the socket's timeouts are set
    // to what is left, so a peer that drips a byte at a time cannot stretch it (a fixed
    // per-read timeout would restart with every byte).
    let deadline = Instant::now() + limit;
    let left = || -> io::Result<Duration> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not finished in time",
            ));
        }
        Ok(left)
    };
    while conn.is_handshaking() {
        let step = Some(left()?);
        sock.set_read_timeout(step)?;
        sock.set_write_timeout(step)?;
        complete_step(conn, sock)?;
    }
    // The client's last flight (its certificate and Finished) must be on the wire before we
    // wait for the server's first frame.
    while conn.wants_write() {
        sock.set_write_timeout(Some(left()?))?;
        conn.write_tls(sock)?;
    }
    Ok(())
}

/// One step of a handshake: writes what is pending, or reads and processes one record's worth
/// (what `complete_io` does, one socket operation at a time so the deadline applies to each).
fn complete_step<C, S>(conn: &mut C, sock: &mut TcpStream) -> io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    if conn.wants_write() {
        conn.write_tls(sock)?;
        return Ok(());
    }
    if conn.wants_read() {
        if conn.read_tls(sock)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed the connection during the TLS handshake",
            ));
        }
        if let Err(e) = conn.process_new_packets() {
            // Send the alert that tells the peer why, as complete_io does.
            let _ = conn.write_tls(sock);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        return Ok(());
    }
    Err(io::Error::other("TLS handshake stalled"))
}

fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> io::Result<PeerIdentity> {
    let ee = certs.and_then(|c| c.first()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::PermissionDenied, "peer sent no certificate")
    })?;
    identity_of(ee).map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e.to_string()))
}

/// Runs the handshake of `conn` on `sock`, reads the peer's identity from its verified
/// certificate, restores the socket's timeouts and frames the stream (`wrap` makes the client or
/// server stream).
fn established<C, S>(
    mut conn: C,
    mut sock: TcpStream,
    shown: String,
    options: &TcpOptions,
    wrap: impl FnOnce(C, TcpStream) -> Conn,
) -> Result<TlsChannel, TransportError>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    handshake(&mut conn, &mut sock, options.connect_timeout)
        .map_err(|e| handshake_error(shown.clone(), e))?;
    let peer = peer_identity(conn.peer_certificates()).map_err(|e| handshake_error(shown, e))?;
    configure_socket(&sock, options)?;
    let stream = TlsStream {
        conn: wrap(conn, sock),
        peer,
    };
    Ok(FramedChannel::over(stream, options))
}

/// Why a TLS connection could not be set up.
fn handshake_error(peer: String, e: io::Error) -> TransportError {
    TransportError::Tls { peer, source: e }
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => host,
        _ => addr,
    }
}

/// Connects to `addr` over TCP (with the retries of `options`) and runs a TLS handshake, checking
/// the server's certificate against `server_name` (default: the host part of `addr`).
pub fn connect<A>(
    addr: A,
    server_name: Option<&str>,
    config: Arc<ClientConfig>,
    options: &TcpOptions,
) -> Result<TlsChannel, TransportError>
where
    A: ToSocketAddrs + fmt::Display,
{
    let shown = addr.to_string();
    let host = server_name.unwrap_or_else(|| host_of(&shown)).to_string();
    let name = ServerName::try_from(host.clone()).map_err(|_| TransportError::Tls {
        peer: shown.clone(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            TlsError::ServerName(host.clone()),
        ),
    })?;
    let sock = connect_socket(&addr, options)?;
    let conn = ClientConnection::new(config, name).map_err(|e| TransportError::Tls {
        peer: shown.clone(),
        source: io::Error::other(e),
    })?;
    established(conn, sock, shown, options, |c, s| {
        Conn::Client(Box::new(StreamOwned::new(c, s)))
    })
}

/// Runs the server side of a TLS handshake on an accepted socket (at most
/// `options.connect_timeout`); the client's certificate is verified by `config`'s verifier.
pub fn accept(
    sock: TcpStream,
    config: Arc<ServerConfig>,
    options: &TcpOptions,
) -> Result<TlsChannel, TransportError> {
    let shown = sock
        .peer_addr()
        .map_or_else(|_| "unknown peer".to_string(), |a| a.to_string());
    configure_socket(&sock, options)?;
    let conn = ServerConnection::new(config).map_err(|e| TransportError::Tls {
        peer: shown.clone(),
        source: io::Error::other(e),
    })?;
    established(conn, sock, shown, options, |c, s| {
        Conn::Server(Box::new(StreamOwned::new(c, s)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("127.0.0.1:7001"), "127.0.0.1");
        assert_eq!(host_of("s2.example:7002"), "s2.example");
        assert_eq!(host_of("[::1]:7002"), "::1");
        assert_eq!(host_of("s2.example"), "s2.example");
        assert_eq!(host_of("::1"), "::1");
    }

    #[test]
    fn roles_round_trip_through_their_uri() {
        for r in [Role::S1, Role::S2, Role::Owner] {
            assert_eq!(Role::from_uri(r.uri()), Some(r));
        }
        assert_eq!(Role::from_uri("urn:smlp:role:admin"), None);
    }
}
