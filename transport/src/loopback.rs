//! S2 on loopback: an [`S2Service`] behind a real [`Server`] on 127.0.0.1, on a thread of its
//! own — the set-up that the experiment harness (smlp-harness), the protocol benches and the TCP tests share.

use crate::server::{Acceptor, PlainTcp, Server, ServerOptions, ServerSummary, ShutdownHandle};
use crate::TransportError;
use secure_ops::{Channel, S2Service};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A running S2 server on a free loopback port; [`stop`](Self::stop) ends it.
pub struct LoopbackS2 {
    addr: SocketAddr,
    shutdown: ShutdownHandle,
    thread: JoinHandle<ServerSummary>,
}

impl LoopbackS2 {
    /// S2 over plain TCP; every session is `svc.serve`.
    pub fn tcp(svc: Arc<S2Service>, options: ServerOptions) -> Result<Self, TransportError> {
        Self::start(PlainTcp, options, move |chan, _| {
            svc.serve(chan).map(|_| ()).map_err(|e| e.to_string())
        })
    }

    /// S2 behind `acceptor` (a [`crate::TlsAcceptor`] accepting S1's certificate, say); every
    /// session is `svc.serve`.
    pub fn serve<A>(
        svc: Arc<S2Service>,
        acceptor: A,
        options: ServerOptions,
    ) -> Result<Self, TransportError>
    where
        A: Acceptor,
        A::Channel: Channel,
    {
        Self::start(acceptor, options, move |chan, _| {
            svc.serve(chan).map(|_| ()).map_err(|e| e.to_string())
        })
    }

    /// A server whose sessions run `handler` (e.g. to record each session's outcome). Panics if
    /// the system cannot start a thread.
    pub fn start<A, H>(
        acceptor: A,
        options: ServerOptions,
        handler: H,
    ) -> Result<Self, TransportError>
    where
        A: Acceptor,
        H: Fn(A::Channel, crate::server::Peer) -> Result<(), String> + Send + Sync + 'static,
    {
        let server = Server::bind("127.0.0.1:0", options)?;
        let addr = server.local_addr();
        let shutdown = server.shutdown_handle();
        let thread = std::thread::Builder::new()
            .name("s2".into())
            .spawn(move || server.run_with(acceptor, handler))
            .expect("the OS starts a thread");
        Ok(LoopbackS2 {
            addr,
            shutdown,
            thread,
        })
    }

    /// Where S2 listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets running sessions finish (the grace period) and returns the
    /// server's summary (`None` if its thread panicked).
    pub fn stop(self) -> Option<ServerSummary> {
        self.shutdown.shutdown();
        self.thread.join().ok()
    }
}
