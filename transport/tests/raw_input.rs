//! Arbitrary bytes written raw to the server never panic it: each session sees exactly the
//! frames a reference parser finds in those bytes, then the right error, and the server keeps
//! serving.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;
use transport::{Channel, ChannelError, Server, ServerOptions, TcpChannel, TcpOptions};

const MAX_FRAME: usize = 64;
const LIVENESS_PING: &[u8] = b"__liveness-ping-7f3a9c__";

/// How a session ended, comparable with the reference parser.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    Closed,
    Truncated { expected: usize, got: usize },
    TooLarge { size: u64 },
    Other(String),
}

#[derive(Debug)]
struct Observation {
    peer: SocketAddr,
    frames: Vec<Vec<u8>>,
    end: End,
}

/// The reference parser: frames in `bytes`, and how reading them ends.
fn model(bytes: &[u8]) -> (Vec<Vec<u8>>, End) {
    let mut frames = Vec::new();
    let mut rest = bytes;
    loop {
        if rest.is_empty() {
            return (frames, End::Closed);
        }
        if rest.len() < 4 {
            return (
                frames,
                End::Truncated {
                    expected: 4,
                    got: rest.len(),
                },
            );
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_FRAME {
            return (frames, End::TooLarge { size: len as u64 });
        }
        rest = &rest[4..];
        if rest.len() < len {
            return (
                frames,
                End::Truncated {
                    expected: len,
                    got: rest.len(),
                },
            );
        }
        frames.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
}

fn session(mut ch: TcpChannel, peer: SocketAddr, report: &Mutex<mpsc::Sender<Observation>>) {
    let mut frames = Vec::new();
    let end = loop {
        match ch.recv_frame() {
            Ok(f) if f == LIVENESS_PING => {
                let _ = ch.send_frame(b"pong");
            }
            Ok(f) => frames.push(f),
            Err(ChannelError::Closed) => break End::Closed,
            Err(ChannelError::Truncated { expected, got }) => {
                break End::Truncated { expected, got }
            }
            Err(ChannelError::FrameTooLarge { size, .. }) => break End::TooLarge { size },
            Err(e) => break End::Other(e.to_string()),
        }
    };
    let _ = report
        .lock()
        .unwrap()
        .send(Observation { peer, frames, end });
}

/// Bytes that are mostly well-formed frames with a garbage tail, or pure garbage.
fn input() -> impl Strategy<Value = Vec<u8>> {
    let frame = prop::collection::vec(any::<u8>(), 0..=MAX_FRAME).prop_map(|p| {
        let mut f = (p.len() as u32).to_be_bytes().to_vec();
        f.extend(p);
        f
    });
    let near_limit_header =
        (MAX_FRAME as u32 - 2..=MAX_FRAME as u32 + 2).prop_map(|n| n.to_be_bytes().to_vec());
    let tail = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12),
        near_limit_header,
        any::<u32>().prop_map(|n| n.to_be_bytes().to_vec()),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        (prop::collection::vec(frame, 0..6), tail).prop_map(|(frames, tail)| {
            let mut bytes: Vec<u8> = frames.concat();
            bytes.extend(tail);
            bytes
        }),
    ]
}

fn next_observation_for(rx: &mpsc::Receiver<Observation>, peer: SocketAddr) -> Observation {
    loop {
        let obs = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("no report from the server");
        if obs.peer == peer {
            return obs;
        }
    }
}

#[test]
fn arbitrary_bytes_never_break_the_server() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let opts = ServerOptions {
        channel: TcpOptions::default()
            .with_max_frame(MAX_FRAME)
            .with_read_timeout(Some(Duration::from_secs(10))),
        grace_period: Duration::from_secs(5),
        ..ServerOptions::default()
    };
    let server = Server::bind("127.0.0.1:0", opts).unwrap();
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let join = thread::spawn(move || server.run(move |ch, peer| session(ch, peer, &tx)));

    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&input(), |bytes| {
            let mut raw =
                TcpStream::connect(addr).map_err(|e| TestCaseError::fail(e.to_string()))?;
            raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let me = raw.local_addr().unwrap();
            // The server may stop reading early (oversized header) and reset us: ignore errors.
            let _ = raw.write_all(&bytes);
            let _ = raw.shutdown(Shutdown::Write);
            let mut sink = Vec::new();
            let _ = raw.read_to_end(&mut sink);
            let obs = next_observation_for(&rx, me);
            let (frames, end) = model(&bytes);
            prop_assert_eq!(&obs.frames, &frames);
            prop_assert_eq!(&obs.end, &end);
            prop_assert!(sink.is_empty());

            // The server is still alive and serving well-formed sessions.
            let mut ok = TcpChannel::connect(addr, TcpOptions::default())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            ok.send_frame(LIVENESS_PING).unwrap();
            prop_assert_eq!(ok.recv_frame().unwrap(), b"pong".to_vec());
            Ok(())
        })
        .unwrap();

    handle.shutdown();
    let summary = join.join().unwrap();
    assert_eq!(summary.panicked, 0);
    assert_eq!(summary.failed, 0);
    assert_eq!(summary.refused, 0);
    assert_eq!(summary.unfinished, 0);
    assert_eq!(summary.sessions, 2 * 64);
}
