//! The multi-session server: concurrency, misbehaving peers, panicking handlers, limits, shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use transport::{
    Channel, ChannelError, Server, ServerOptions, ServerSummary, ShutdownHandle, TcpChannel,
    TcpOptions,
};

fn options() -> ServerOptions {
    ServerOptions {
        channel: TcpOptions::default().with_read_timeout(Some(Duration::from_secs(10))),
        grace_period: Duration::from_secs(10),
        ..ServerOptions::default()
    }
}

struct Running {
    addr: SocketAddr,
    handle: ShutdownHandle,
    join: JoinHandle<ServerSummary>,
}

impl Running {
    fn start<H, R>(opts: ServerOptions, handler: H) -> Running
    where
        H: Fn(TcpChannel, SocketAddr) -> R + Send + Sync + 'static,
        R: transport::SessionOutcome,
    {
        let server = Server::bind("127.0.0.1:0", opts).unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let handle = server.shutdown_handle();
        let join = thread::spawn(move || server.run(handler));
        Running { addr, handle, join }
    }

    fn stop(self) -> ServerSummary {
        self.handle.shutdown();
        join_within(self.join, Duration::from_secs(15))
    }

    fn client(&self) -> TcpChannel {
        TcpChannel::connect(
            self.addr,
            TcpOptions::default().with_read_timeout(Some(Duration::from_secs(10))),
        )
        .unwrap()
    }
}

fn join_within<T>(join: JoinHandle<T>, limit: Duration) -> T {
    let start = Instant::now();
    while !join.is_finished() {
        assert!(
            start.elapsed() < limit,
            "thread did not finish within {limit:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
    join.join().unwrap()
}

/// Echoes frames until the peer goes away; reports how the session ended.
fn echo_session(
    mut ch: TcpChannel,
    peer: SocketAddr,
    report: &Mutex<mpsc::Sender<(SocketAddr, ChannelError)>>,
) {
    loop {
        match ch.recv_frame() {
            Ok(f) => {
                if ch.send_frame(&f).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = report.lock().unwrap().send((peer, e));
                return;
            }
        }
    }
}

fn echo_server() -> (Running, mpsc::Receiver<(SocketAddr, ChannelError)>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let running = Running::start(options(), move |ch, peer| echo_session(ch, peer, &tx));
    (running, rx)
}

/// Waits for the server-side report about `peer`, skipping reports about other peers.
fn report_for(rx: &mpsc::Receiver<(SocketAddr, ChannelError)>, peer: SocketAddr) -> ChannelError {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (p, e) = rx.recv_timeout(left).expect("no report from the server");
        if p == peer {
            return e;
        }
    }
}

fn round_trip(ch: &mut TcpChannel, frame: &[u8]) {
    ch.send_frame(frame).unwrap();
    assert_eq!(ch.recv_frame().unwrap(), frame);
}

#[test]
fn port_zero_and_concurrent_clients() {
    let (server, rx) = echo_server();
    let addr = server.addr;
    let clients: Vec<_> = (0..4u8)
        .map(|i| {
            thread::spawn(move || {
                let mut ch = TcpChannel::connect(addr, TcpOptions::default()).unwrap();
                for j in 0..50u8 {
                    round_trip(&mut ch, &vec![i ^ j; usize::from(j) * 100]);
                }
                let me = ch.local_addr().unwrap();
                drop(ch);
                me
            })
        })
        .collect();
    let mut peers: Vec<SocketAddr> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let mut reported: Vec<SocketAddr> = (0..peers.len())
        .map(|_| {
            let (peer, end) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(matches!(end, ChannelError::Closed), "{peer}: {end:?}");
            peer
        })
        .collect();
    peers.sort();
    reported.sort();
    assert_eq!(peers, reported);
    let summary = server.stop();
    assert_eq!(summary.sessions, 4);
    assert_eq!(summary.panicked, 0);
    assert_eq!(summary.unfinished, 0);
}

#[test]
fn garbage_from_raw_socket_is_truncated_and_other_sessions_keep_going() {
    let (server, rx) = echo_server();
    let mut good = server.client();
    round_trip(&mut good, b"before");

    // A frame cut in the middle of its payload.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    let raw_addr = raw.local_addr().unwrap();
    raw.write_all(&[0, 0, 0, 10, 1, 2, 3]).unwrap();
    drop(raw);
    assert!(matches!(
        report_for(&rx, raw_addr),
        ChannelError::Truncated {
            expected: 10,
            got: 3
        }
    ));

    // Half a header.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    let raw_addr = raw.local_addr().unwrap();
    raw.write_all(&[0xde, 0xad, 0xbe]).unwrap();
    drop(raw);
    assert!(matches!(
        report_for(&rx, raw_addr),
        ChannelError::Truncated {
            expected: 4,
            got: 3
        }
    ));

    // Text that is not our protocol at all: "GET " is a header claiming ~1.2 GB.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    let raw_addr = raw.local_addr().unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(matches!(
        report_for(&rx, raw_addr),
        ChannelError::FrameTooLarge { .. }
    ));
    // The server closed that session: the raw client sees end of stream (or a reset).
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    assert!(rest.is_empty());

    // The well-behaved session, open all along, is unaffected; new ones work too.
    round_trip(&mut good, b"after");
    round_trip(&mut good, &vec![9u8; 1 << 20]);
    let mut fresh = server.client();
    round_trip(&mut fresh, b"fresh");
    drop(good);
    drop(fresh);
    let summary = server.stop();
    assert_eq!(summary.sessions, 5);
    assert_eq!(summary.panicked, 0);
}

#[test]
fn panicking_handler_does_not_stop_the_server() {
    let running = Running::start(options(), |mut ch: TcpChannel, _peer| {
        let f = ch.recv_frame().unwrap();
        if f == b"panic" {
            panic!("handler asked to panic");
        }
        ch.send_frame(&f).unwrap();
    });
    for _ in 0..3 {
        let mut bad = running.client();
        bad.send_frame(b"panic").unwrap();
        // The session's channel was dropped during unwinding.
        assert!(matches!(bad.recv_frame(), Err(ChannelError::Closed)));
    }
    let mut good = running.client();
    round_trip(&mut good, b"still here");
    drop(good);
    let summary = running.stop();
    assert_eq!(summary.sessions, 4);
    assert_eq!(summary.panicked, 3);
    assert_eq!(summary.failed, 0);
}

#[test]
fn failing_handler_is_counted() {
    let running = Running::start(
        options(),
        |mut ch: TcpChannel, _peer| -> Result<(), ChannelError> {
            let f = ch.recv_frame()?;
            ch.send_frame(&f)
        },
    );
    let mut ok = running.client();
    round_trip(&mut ok, b"x");
    drop(ok);
    let quiet = running.client();
    drop(quiet); // the handler's recv fails with Closed
                 // Wait for both sessions to end before stopping.
    thread::sleep(Duration::from_millis(200));
    let summary = running.stop();
    assert_eq!(summary.sessions, 2);
    assert_eq!(summary.failed, 1);
}

#[test]
fn shutdown_handle_stops_an_idle_server() {
    let (server, _rx) = echo_server();
    let handle = server.handle.clone();
    assert!(!handle.is_shutdown());
    let start = Instant::now();
    let summary = server.stop();
    assert!(handle.is_shutdown());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(summary, ServerSummary::default());
}

#[test]
fn shutdown_waits_for_in_flight_sessions() {
    let (server, _rx) = echo_server();
    let mut client = server.client();
    round_trip(&mut client, b"in flight");
    let addr = server.addr;
    server.handle.shutdown();
    thread::sleep(Duration::from_millis(200));
    // The listener is gone: new connections are refused.
    assert!(TcpStream::connect(addr).is_err());
    // run() is still waiting for our session, which keeps working.
    assert!(!server.join.is_finished());
    round_trip(&mut client, b"still served");
    drop(client);
    let summary = join_within(server.join, Duration::from_secs(5));
    assert_eq!(summary.sessions, 1);
    assert_eq!(summary.unfinished, 0);
}

#[test]
fn grace_period_bounds_the_wait() {
    let opts = ServerOptions {
        grace_period: Duration::from_millis(300),
        ..options()
    };
    let running = Running::start(opts, |mut ch: TcpChannel, _peer| {
        // Waits for a frame that never comes (read timeout 10 s).
        let _ = ch.recv_frame();
    });
    let _client = running.client();
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let summary = running.stop();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(summary.sessions, 1);
    assert_eq!(summary.unfinished, 1);
}

#[test]
fn session_limit_refuses_extra_connections() {
    let opts = ServerOptions {
        max_sessions: Some(1),
        ..options()
    };
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let running = Running::start(opts, move |ch, peer| echo_session(ch, peer, &tx));
    let mut first = running.client();
    round_trip(&mut first, b"one");
    let mut second = running.client();
    let _ = second.send_frame(b"two");
    assert!(matches!(second.recv_frame(), Err(ChannelError::Closed)));
    // Once the first session ends there is room again.
    let first_addr = first.local_addr().unwrap();
    drop(first);
    assert!(matches!(report_for(&rx, first_addr), ChannelError::Closed));
    thread::sleep(Duration::from_millis(100)); // let the session thread finish
    let mut third = running.client();
    round_trip(&mut third, b"three");
    drop(third);
    let summary = running.stop();
    assert_eq!(summary.sessions, 2);
    assert_eq!(summary.refused, 1);
}

#[test]
fn handler_can_observe_shutdown() {
    let server = Server::bind("127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let seen_by_handler = handle.clone();
    let join = thread::spawn(move || {
        server.run(move |mut ch: TcpChannel, _peer| {
            ch.set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            while !seen_by_handler.is_shutdown() {
                match ch.recv_frame() {
                    Ok(f) => ch.send_frame(&f).unwrap(),
                    Err(ChannelError::Timeout) => continue,
                    Err(_) => return,
                }
            }
        })
    });
    let mut client = TcpChannel::connect(addr, TcpOptions::default()).unwrap();
    round_trip(&mut client, b"hi");
    handle.shutdown();
    // The session notices and ends, so run() returns although our client is still connected.
    let summary = join_within(join, Duration::from_secs(5));
    assert_eq!(summary.unfinished, 0);
    assert!(matches!(client.recv_frame(), Err(ChannelError::Closed)));
}

#[test]
fn bind_error_names_the_address() {
    let first = Server::bind("127.0.0.1:0", options()).unwrap();
    let addr = first.local_addr();
    let err = Server::bind(addr, options()).unwrap_err();
    assert!(
        matches!(err, transport::TransportError::Bind { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
