//! A multi-session server: one thread per connection, each running a caller-supplied session
//! handler on a [`TcpChannel`] ([`Server::run`]) or, after a mutually authenticated TLS handshake
//! on that thread, on a [`TlsChannel`] ([`Server::run_with`] and [`TlsAcceptor`]).
//!
//! * A connection whose TLS handshake fails (no certificate, another CA, a refused role, not TLS
//!   at all, too slow) is logged and closed before the handler sees a byte of it.
//! * A session that fails or panics is logged (`tracing`, level warn) and forgotten; the server
//!   keeps accepting. Panics are caught with `catch_unwind` around the handler.
//! * [`ShutdownHandle::shutdown`] (for example from a SIGINT/SIGTERM handler) stops the accept
//!   loop within [`ServerOptions::poll_interval`]; [`Server::run`] then closes the listener and
//!   waits for in-flight sessions to finish, at most [`ServerOptions::grace_period`], and
//!   returns a [`ServerSummary`]. Sessions still running after the grace period are left
//!   detached. Handlers that want to stop early can keep a clone of the handle and poll
//!   [`ShutdownHandle::is_shutdown`].
//! * Connections still in their handshake (not yet authenticated) have slots of their own: at
//!   most [`ServerOptions::max_handshakes`] at once, [`ServerOptions::max_handshakes_per_address`]
//!   from one IP address, each with a total deadline (`connect_timeout`, checked before every
//!   read); connections beyond that are closed at once. Unauthenticated peers that connect and
//!   never finish therefore cannot take an authenticated session's place.
//! * At most [`ServerOptions::max_sessions`] authenticated sessions run at once; a peer that
//!   completes its handshake beyond that is closed at once. Both kinds of refusal are logged and
//!   counted as refused.

use crate::limits::{SessionGuard, SessionLimiter};
use crate::tcp::{TcpChannel, TcpOptions};
use crate::tls::{self, PeerIdentity, TlsChannel};
use crate::TransportError;
use std::any::Any;
use std::fmt;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Settings of a [`Server`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOptions {
    /// Settings of every accepted channel (frame limit, timeouts, frame deadline; `connect_timeout`
    /// bounds the TLS handshake).
    pub channel: TcpOptions,
    /// How long [`Server::run`] waits for in-flight sessions after a shutdown. Default 30 s.
    pub grace_period: Duration,
    /// Most authenticated sessions running at once (`None`: no limit). Default 64.
    pub max_sessions: Option<usize>,
    /// Most connections in their handshake at once, apart from the sessions. Default 64.
    pub max_handshakes: usize,
    /// Most connections in their handshake at once from one IP address. Default 32 (half the
    /// handshake slots: a burst of honest connections from one S1 or one NAT still fits, and one
    /// address cannot take them all).
    pub max_handshakes_per_address: usize,
    /// How often the accept loop checks for shutdown while no connection is pending, and how
    /// often finished sessions are looked for during the grace period. Default 20 ms.
    pub poll_interval: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            channel: TcpOptions::default(),
            grace_period: Duration::from_secs(30),
            max_sessions: Some(64),
            max_handshakes: 64,
            max_handshakes_per_address: 32,
            poll_interval: Duration::from_millis(20),
        }
    }
}

/// Stops a running [`Server`]. Cloning shares the same flag; cheap to call from a signal
/// handler thread.
#[derive(Clone, Debug, Default)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
}

impl ShutdownHandle {
    /// A fresh handle, not yet shut down.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks the server to stop accepting connections and return from [`Server::run`].
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }
    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shutdown(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// What a session handler may return: `()` or `Result<(), E>` with a displayable error (logged
/// as a failed session).
pub trait SessionOutcome {
    /// `Err(message)` for a failed session.
    fn into_session_result(self) -> Result<(), String>;
}

impl SessionOutcome for () {
    fn into_session_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: fmt::Display> SessionOutcome for Result<(), E> {
    fn into_session_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Counts reported by [`Server::run`] when it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerSummary {
    /// Sessions started (connections handed to the handler).
    pub sessions: u64,
    /// Sessions whose handler returned an error.
    pub failed: u64,
    /// Sessions whose handler panicked.
    pub panicked: u64,
    /// Connections closed without a session (session limit reached, the socket could not be
    /// set up, or the TLS handshake failed).
    pub refused: u64,
    /// Sessions still running when the grace period ended (left detached).
    pub unfinished: usize,
}

#[derive(Default)]
struct Counters {
    failed: AtomicU64,
    panicked: AtomicU64,
    refused: AtomicU64,
}

/// The slots of a server, each a [`SessionLimiter`] (a slot is a guard, given back when dropped,
/// also when a handler panics): connections in their handshake in all (one key) and per IP
/// address, and authenticated sessions (one key; `None`: no limit).
struct Slots {
    handshakes: SessionLimiter,
    per_address: SessionLimiter,
    sessions: Option<SessionLimiter>,
}

/// The one key of a limiter that counts everything.
const ALL: &str = "";

impl Slots {
    fn new(opts: &ServerOptions) -> Self {
        Slots {
            handshakes: SessionLimiter::new(opts.max_handshakes),
            per_address: SessionLimiter::new(opts.max_handshakes_per_address),
            sessions: opts.max_sessions.map(SessionLimiter::new),
        }
    }

    /// The handshake slots (in all and of `ip`), or why not.
    fn handshake(&self, ip: IpAddr) -> Result<[SessionGuard; 2], &'static str> {
        let all = self
            .handshakes
            .try_acquire(ALL)
            .ok_or("handshake limit reached")?;
        let mine = self
            .per_address
            .try_acquire(&ip.to_string())
            .ok_or("handshake limit for this address reached")?;
        Ok([all, mine])
    }
}

/// The peer of a session: its address and, over TLS, its verified identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The peer's socket address.
    pub addr: SocketAddr,
    /// The identity in its certificate (`None` over plain TCP).
    pub identity: Option<PeerIdentity>,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.identity {
            Some(id) => write!(f, "{id} at {}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Turns an accepted socket into a channel (on the session's own thread).
pub trait Acceptor: Send + Sync + 'static {
    /// The channel handed to the session handler.
    type Channel: Send + 'static;
    /// Sets up the channel; an error refuses the connection.
    fn accept(
        &self,
        stream: TcpStream,
        options: &TcpOptions,
    ) -> Result<(Self::Channel, Option<PeerIdentity>), TransportError>;
}

/// Plain TCP: no authentication (tests and in-process use; the `smlp` servers use TLS).
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainTcp;

impl Acceptor for PlainTcp {
    type Channel = TcpChannel;
    fn accept(
        &self,
        stream: TcpStream,
        options: &TcpOptions,
    ) -> Result<(TcpChannel, Option<PeerIdentity>), TransportError> {
        Ok((TcpChannel::from_stream(stream, options)?, None))
    }
}

/// Mutually authenticated TLS with the given server configuration (see
/// [`crate::TlsCredentials::server_config`]).
#[derive(Clone, Debug)]
pub struct TlsAcceptor(pub Arc<rustls::ServerConfig>);

impl Acceptor for TlsAcceptor {
    type Channel = TlsChannel;
    fn accept(
        &self,
        stream: TcpStream,
        options: &TcpOptions,
    ) -> Result<(TlsChannel, Option<PeerIdentity>), TransportError> {
        let chan = tls::accept(stream, Arc::clone(&self.0), options)?;
        let id = chan.peer().clone();
        Ok((chan, Some(id)))
    }
}

/// A bound TCP listener that serves sessions; see the [module docs](self).
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    options: ServerOptions,
    shutdown: ShutdownHandle,
}

impl Server {
    /// Binds a listener on `addr` (port 0 picks a free port; see [`local_addr`](Self::local_addr)).
    pub fn bind<A>(addr: A, options: ServerOptions) -> Result<Server, TransportError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let listener = TcpListener::bind(&addr).map_err(|source| TransportError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        Self::from_listener(listener, options)
    }

    /// Serves on an already bound listener.
    pub fn from_listener(
        listener: TcpListener,
        options: ServerOptions,
    ) -> Result<Server, TransportError> {
        listener
            .set_nonblocking(true)
            .map_err(TransportError::Socket)?;
        let local_addr = listener.local_addr().map_err(TransportError::Socket)?;
        Ok(Server {
            listener,
            local_addr,
            options,
            shutdown: ShutdownHandle::new(),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops [`run`](Self::run).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Accepts connections until shut down, running `handler(channel, peer)` on a new thread for
    /// each; then waits for in-flight sessions (at most the grace period) and returns the
    /// counts. Never fails because of a peer or a session.
    pub fn run<H, R>(self, handler: H) -> ServerSummary
    where
        H: Fn(TcpChannel, SocketAddr) -> R + Send + Sync + 'static,
        R: SessionOutcome,
    {
        self.run_with(PlainTcp, move |chan, peer: Peer| handler(chan, peer.addr))
    }

    /// Like [`run`](Self::run), with `acceptor` setting up each connection (a TLS handshake with
    /// [`TlsAcceptor`]) on the session's thread before `handler` runs.
    pub fn run_with<A, H, R>(self, acceptor: A, handler: H) -> ServerSummary
    where
        A: Acceptor,
        H: Fn(A::Channel, Peer) -> R + Send + Sync + 'static,
        R: SessionOutcome,
    {
        let Server {
            listener,
            local_addr,
            options,
            shutdown,
        } = self;
        let handler = Arc::new(handler);
        let acceptor = Arc::new(acceptor);
        let channel_options = Arc::new(options.channel.clone());
        let counters = Arc::new(Counters::default());
        let slots = Slots::new(&options);
        let mut sessions: Vec<(u64, SocketAddr, JoinHandle<()>)> = Vec::new();
        let mut summary = ServerSummary::default();
        let mut next_id = 0u64;
        let poll = options.poll_interval.max(Duration::from_millis(1));
        tracing::info!(addr = %local_addr, "server listening");

        while !shutdown.is_shutdown() {
            reap(&mut sessions);
            let (stream, addr) = match listener.accept() {
                Ok(conn) => conn,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    thread::sleep(poll);
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // For example out of file descriptors: keep serving the sessions we have.
                    tracing::warn!(error = %e, "accept failed");
                    thread::sleep(poll);
                    continue;
                }
            };
            // The handshake slot is taken here and moved to the thread, which gives it back
            // (or dropped with the closure if the thread cannot start).
            let handshake = match slots.handshake(addr.ip()) {
                Ok(slot) => slot,
                Err(why) => {
                    tracing::warn!(peer = %addr, "{why}, connection refused");
                    summary.refused += 1;
                    continue;
                }
            };
            next_id += 1;
            let id = next_id;
            let handler = Arc::clone(&handler);
            let acceptor = Arc::clone(&acceptor);
            let channel_options = Arc::clone(&channel_options);
            let counters = Arc::clone(&counters);
            let session_slots = slots.sessions.clone();
            let spawned = thread::Builder::new()
                .name(format!("session-{id}"))
                .spawn(move || {
                    let accepted = acceptor.accept(stream, &channel_options);
                    drop(handshake);
                    let (channel, identity) = match accepted {
                        Ok(c) => c,
                        Err(e) => {
                            counters.refused.fetch_add(1, Ordering::SeqCst);
                            tracing::warn!(session = id, peer = %addr, error = %e, "connection refused");
                            return;
                        }
                    };
                    let peer = Peer { addr, identity };
                    // The session slot, held until the session ends (none without a limit).
                    let _session = match &session_slots {
                        Some(limiter) => match limiter.try_acquire(ALL) {
                            Some(slot) => Some(slot),
                            None => {
                                counters.refused.fetch_add(1, Ordering::SeqCst);
                                tracing::warn!(session = id, %peer, active = limiter.active(ALL), "session limit reached, connection refused");
                                return;
                            }
                        },
                        None => None,
                    };
                    run_session(id, peer, channel, &*handler, &counters)
                });
            match spawned {
                Ok(join) => {
                    summary.sessions += 1;
                    sessions.push((id, addr, join));
                }
                Err(e) => {
                    tracing::warn!(session = id, peer = %addr, error = %e, "cannot start session thread");
                    summary.refused += 1;
                }
            }
        }

        drop(listener);
        reap(&mut sessions);
        if !sessions.is_empty() {
            tracing::info!(
                active = sessions.len(),
                grace_s = options.grace_period.as_secs_f64(),
                "shutting down, waiting for sessions to finish"
            );
        }
        let deadline = Instant::now() + options.grace_period;
        while !sessions.is_empty() && Instant::now() < deadline {
            thread::sleep(poll.min(deadline.saturating_duration_since(Instant::now())));
            reap(&mut sessions);
        }
        for (id, peer, _) in &sessions {
            tracing::warn!(session = id, %peer, "session still running after the grace period; left detached");
        }
        summary.unfinished = sessions.len();
        summary.failed = counters.failed.load(Ordering::SeqCst);
        summary.panicked = counters.panicked.load(Ordering::SeqCst);
        let refused_in_handshake = counters.refused.load(Ordering::SeqCst);
        summary.refused += refused_in_handshake;
        summary.sessions -= refused_in_handshake;
        tracing::info!(addr = %local_addr, ?summary, "server stopped");
        summary
    }
}

/// Joins the session threads that have finished.
fn reap(sessions: &mut Vec<(u64, SocketAddr, JoinHandle<()>)>) {
    let mut i = 0;
    while i < sessions.len() {
        if sessions[i].2.is_finished() {
            let (id, peer, join) = sessions.swap_remove(i);
            if join.join().is_err() {
                // Only possible if logging itself panicked; the handler's panics are caught.
                tracing::warn!(session = id, %peer, "session thread panicked");
            }
        } else {
            i += 1;
        }
    }
}

fn run_session<C, H, R>(id: u64, peer: Peer, channel: C, handler: &H, counters: &Counters)
where
    H: Fn(C, Peer) -> R,
    R: SessionOutcome,
{
    tracing::info!(session = id, %peer, "session started");
    let start = Instant::now();
    let shown = peer.to_string();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        handler(channel, peer).into_session_result()
    }));
    let elapsed_s = start.elapsed().as_secs_f64();
    match outcome {
        Ok(Ok(())) => tracing::info!(session = id, peer = %shown, elapsed_s, "session ended"),
        Ok(Err(error)) => {
            counters.failed.fetch_add(1, Ordering::SeqCst);
            tracing::warn!(session = id, peer = %shown, elapsed_s, %error, "session failed");
        }
        Err(payload) => {
            counters.panicked.fetch_add(1, Ordering::SeqCst);
            let panic = panic_message(payload.as_ref());
            tracing::warn!(session = id, peer = %shown, elapsed_s, %panic, "session panicked");
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}
