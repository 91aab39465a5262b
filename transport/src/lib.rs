//! Transports for the two-server protocols: every protocol in `secure-ops` is written against the
//! [`Channel`] trait (whole frames in, whole frames out); this crate supplies the channels.
//!
//! * [`memory::pair`] — an in-process duplex channel for tests and single-process runs.
//! * [`tcp::TcpChannel`] — frames over a `TcpStream`: a 4-byte big-endian length prefix and
//!   the payload, with a maximum frame size, read/write timeouts and a whole-frame deadline.
//! * [`tls::TlsChannel`] — the same frames over mutually authenticated TLS 1.3 (rustls), with
//!   the smlp role of each party in its certificate ([`tls::Role`]); [`pki`] makes the
//!   certificates (rcgen).
//! * [`server::Server`] — a TCP or TLS server that runs one session handler per connection on its
//!   own thread (the TLS handshake runs there too), survives misbehaving or panicking sessions, and shuts down gracefully through a
//!   [`server::ShutdownHandle`].
//!
//! Peer input never panics this crate: malformed or cut-off frames are reported as
//! [`ChannelError`]s.
//!
//! # Example
//!
//! ```
//! use transport::{memory, ChannelExt};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Share {
//!     step: u32,
//!     values: Vec<i64>,
//! }
//!
//! let (mut s1, mut s2) = memory::pair();
//! let s2_thread = std::thread::spawn(move || {
//!     let share: Share = s2.recv_msg().unwrap();
//!     s2.send_msg(&(share.values.iter().sum::<i64>())).unwrap();
//! });
//!
//! s1.send_msg(&Share { step: 1, values: vec![3, -1, 4] }).unwrap();
//! let sum: i64 = s1.recv_msg().unwrap();
//! assert_eq!(sum, 6);
//! s2_thread.join().unwrap();
//! ```

#![warn(missing_docs)]

pub mod limits;
pub mod loopback;
pub mod memory;
pub mod pki;
pub mod server;
pub mod tcp;
pub mod tls;

pub use limits::{SessionGuard, SessionLimiter};
pub use memory::MemoryChannel;
pub use secure_ops::channel::{
    Channel, ChannelError, ChannelExt, MessageError, Metered, Traffic, TrafficSnapshot,
};
pub use server::{
    Acceptor, Peer, PlainTcp, Server, ServerOptions, ServerSummary, SessionOutcome, ShutdownHandle,
    TlsAcceptor,
};
pub use tcp::{FrameDeadline, FramedChannel, TcpChannel, TcpOptions};
pub use tls::{PeerIdentity, Role, TlsChannel, TlsCredentials, TlsError, TlsFiles};

use std::io;
use std::time::Duration;
use thiserror::Error;

/// Setting up a connection or a listener failed (errors on an established channel are
/// [`ChannelError`]s).
#[derive(Debug, Error)]
pub enum TransportError {
    /// The address could not be resolved.
    #[error("cannot resolve address {addr}: {source}")]
    Resolve {
        /// The address as given.
        addr: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The address resolved to no socket address at all.
    #[error("address {addr} resolves to no socket address")]
    NoAddress {
        /// The address as given.
        addr: String,
    },
    /// No connection could be made within the retry window.
    #[error(
        "cannot connect to {addr} ({attempts} attempt(s) over {:.1}s): {source}",
        elapsed.as_secs_f64()
    )]
    Connect {
        /// The address as given.
        addr: String,
        /// How many connection attempts were made.
        attempts: u32,
        /// How long was spent trying.
        elapsed: Duration,
        /// The last attempt's error.
        #[source]
        source: io::Error,
    },
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as given.
        addr: String,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// A socket could not be configured (timeouts, `TCP_NODELAY`, blocking mode) or queried.
    #[error("cannot configure socket: {0}")]
    Socket(#[source] io::Error),
    /// The TLS handshake failed: the peer's certificate was refused (or ours was), or the peer
    /// does not speak TLS, or it did not finish in time.
    #[error("TLS handshake with {peer} failed: {source}")]
    Tls {
        /// The peer's address.
        peer: String,
        /// What went wrong (rustls' error, or the I/O error).
        #[source]
        source: io::Error,
    },
}

impl From<TransportError> for ChannelError {
    /// Folds a set-up error into [`ChannelError::Io`], keeping its message (including the
    /// address), for callers that use a single error type.
    fn from(e: TransportError) -> Self {
        let kind = match &e {
            TransportError::Resolve { source, .. }
            | TransportError::Connect { source, .. }
            | TransportError::Bind { source, .. }
            | TransportError::Socket(source)
            | TransportError::Tls { source, .. } => source.kind(),
            TransportError::NoAddress { .. } => io::ErrorKind::InvalidInput,
        };
        ChannelError::Io(io::Error::new(kind, e.to_string()))
    }
}
