//! TcpChannel over loopback: framing, limits, timeouts, disconnects, connect errors, metering.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use transport::{
    Channel, ChannelError, ChannelExt, Metered, TcpChannel, TcpOptions, TransportError,
};

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// A connected (client, server) pair of channels.
fn channel_pair(client: TcpOptions, server: TcpOptions) -> (TcpChannel, TcpChannel) {
    let (l, addr) = listener();
    let c = TcpChannel::connect(addr, client).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, TcpChannel::from_stream(s, &server).unwrap())
}

/// A channel whose peer is a raw socket.
fn channel_and_raw(options: TcpOptions) -> (TcpChannel, TcpStream) {
    let (l, addr) = listener();
    let raw = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    (TcpChannel::from_stream(s, &options).unwrap(), raw)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn echo_until_closed(mut ch: impl Channel) -> usize {
    let mut n = 0;
    loop {
        match ch.recv_frame() {
            Ok(f) => {
                ch.send_frame(&f).unwrap();
                n += 1;
            }
            Err(ChannelError::Closed) => return n,
            Err(e) => panic!("echo: {e}"),
        }
    }
}

#[test]
fn round_trip_many_frames_including_empty_and_large() {
    let (mut client, server) = channel_pair(TcpOptions::default(), TcpOptions::default());
    let echo = thread::spawn(move || echo_until_closed(server));
    let mut sizes = vec![
        0usize,
        1,
        3,
        4,
        5,
        1000,
        65_535,
        65_536,
        65_537,
        1 << 20,
        8 << 20,
    ];
    sizes.extend((0..200).map(|i| (i * 37) % 300));
    for (i, &len) in sizes.iter().enumerate() {
        let f = pattern(len, i as u8);
        client.send_frame(&f).unwrap();
        assert_eq!(client.recv_frame().unwrap(), f, "frame {i} of {len} bytes");
    }
    // Pipelined small frames: several in flight before reading any back.
    for i in 0..50u8 {
        client.send_frame(&[i; 10]).unwrap();
    }
    for i in 0..50u8 {
        assert_eq!(client.recv_frame().unwrap(), vec![i; 10]);
    }
    drop(client);
    assert_eq!(echo.join().unwrap(), sizes.len() + 50);
}

#[test]
fn typed_messages_over_tcp() {
    let (mut a, mut b) = channel_pair(TcpOptions::default(), TcpOptions::default());
    a.send_msg(&(42u64, vec![-1i64, 2, -3], String::from("s1")))
        .unwrap();
    let got: (u64, Vec<i64>, String) = b.recv_msg().unwrap();
    assert_eq!(got, (42, vec![-1, 2, -3], "s1".to_string()));
}

#[test]
fn oversized_frame_rejected_on_send_and_channel_stays_usable() {
    let opts = TcpOptions::default().with_max_frame(1000);
    let (mut client, mut server) = channel_pair(opts.clone(), opts);
    match client.send_frame(&[0u8; 1001]) {
        Err(ChannelError::FrameTooLarge {
            size: 1001,
            max: 1000,
        }) => {}
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    client.send_frame(&[7u8; 1000]).unwrap();
    assert_eq!(server.recv_frame().unwrap(), vec![7u8; 1000]);
}

#[test]
fn oversized_incoming_header_rejected() {
    // Default limit (256 MiB): a header claiming ~4 GiB must fail without allocating it.
    let (mut ch, mut raw) = channel_and_raw(TcpOptions::default());
    raw.write_all(&u32::MAX.to_be_bytes()).unwrap();
    raw.write_all(b"some bytes that follow").unwrap();
    match ch.recv_frame() {
        Err(ChannelError::FrameTooLarge { size, max }) => {
            assert_eq!(size, u64::from(u32::MAX));
            assert_eq!(max, 256 << 20);
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    // The receive side cannot resynchronise; it keeps failing without panicking.
    assert!(matches!(ch.recv_frame(), Err(ChannelError::Io(_))));

    // A small custom limit, one byte over.
    let (mut ch, mut raw) = channel_and_raw(TcpOptions::default().with_max_frame(64));
    raw.write_all(&65u32.to_be_bytes()).unwrap();
    assert!(matches!(
        ch.recv_frame(),
        Err(ChannelError::FrameTooLarge { size: 65, max: 64 })
    ));
    // Exactly at the limit is fine.
    let (mut ch, mut raw) = channel_and_raw(TcpOptions::default().with_max_frame(64));
    raw.write_all(&64u32.to_be_bytes()).unwrap();
    raw.write_all(&[1u8; 64]).unwrap();
    assert_eq!(ch.recv_frame().unwrap(), vec![1u8; 64]);
}

#[test]
fn truncated_header_reported() {
    let (mut ch, mut raw) = channel_and_raw(TcpOptions::default());
    raw.write_all(&[0, 0]).unwrap();
    raw.shutdown(Shutdown::Write).unwrap();
    match ch.recv_frame() {
        Err(ChannelError::Truncated {
            expected: 4,
            got: 2,
        }) => {}
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn peer_disconnects_mid_payload() {
    let (mut ch, mut raw) = channel_and_raw(TcpOptions::default());
    // One whole frame, then a frame cut after 40 of 100 payload bytes.
    raw.write_all(&[0, 0, 0, 2, 8, 9]).unwrap();
    raw.write_all(&100u32.to_be_bytes()).unwrap();
    raw.write_all(&[5u8; 40]).unwrap();
    drop(raw);
    assert_eq!(ch.recv_frame().unwrap(), vec![8, 9]);
    match ch.recv_frame() {
        Err(ChannelError::Truncated {
            expected: 100,
            got: 40,
        }) => {}
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn peer_disconnects_mid_large_frame_from_channel() {
    // The peer is a real TcpChannel-speaking writer that dies half-way through a large payload.
    let (mut ch, mut raw) = channel_and_raw(TcpOptions::default());
    let writer = thread::spawn(move || {
        raw.write_all(&(4u32 << 20).to_be_bytes()).unwrap();
        raw.write_all(&vec![3u8; 3 << 20]).unwrap();
    });
    match ch.recv_frame() {
        Err(ChannelError::Truncated { expected, got }) => {
            assert_eq!(expected, 4 << 20);
            assert_eq!(got, 3 << 20);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    writer.join().unwrap();
}

#[test]
fn clean_close_between_frames_is_closed() {
    let (mut client, mut server) = channel_pair(TcpOptions::default(), TcpOptions::default());
    client.send_frame(b"bye").unwrap();
    drop(client);
    assert_eq!(server.recv_frame().unwrap(), b"bye");
    assert!(matches!(server.recv_frame(), Err(ChannelError::Closed)));
    assert!(matches!(server.recv_frame(), Err(ChannelError::Closed)));
}

#[test]
fn send_to_closed_peer_fails_without_panicking() {
    let (mut client, server) = channel_pair(TcpOptions::default(), TcpOptions::default());
    drop(server);
    // The first sends may still land in the kernel buffer; within a few the reset shows up.
    let mut failed = None;
    for _ in 0..100 {
        if let Err(e) = client.send_frame(&[0u8; 64 << 10]) {
            failed = Some(e);
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert!(
        matches!(failed, Some(ChannelError::Closed)),
        "got {failed:?}"
    );
    // The send side is now unusable, reported as an error.
    assert!(matches!(client.send_frame(b"x"), Err(ChannelError::Io(_))));
}

#[test]
fn read_timeout_is_timeout() {
    let opts = TcpOptions::default().with_read_timeout(Some(Duration::from_millis(150)));
    let (mut ch, mut raw) = channel_and_raw(opts);
    let start = Instant::now();
    assert!(matches!(ch.recv_frame(), Err(ChannelError::Timeout)));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(100),
        "returned after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "returned after {waited:?}");
    // A timeout is not fatal: a frame that arrives later is still received.
    raw.write_all(&[0, 0, 0, 1, 77]).unwrap();
    assert_eq!(ch.recv_frame().unwrap(), vec![77]);
}

#[test]
fn write_timeout_is_timeout() {
    let opts = TcpOptions::default().with_write_timeout(Some(Duration::from_millis(200)));
    // The raw peer never reads, so the socket buffers fill up.
    let (mut ch, _raw) = channel_and_raw(opts);
    let frame = vec![0u8; 4 << 20];
    let mut result = Ok(());
    for _ in 0..64 {
        result = ch.send_frame(&frame);
        if result.is_err() {
            break;
        }
    }
    assert!(
        matches!(result, Err(ChannelError::Timeout)),
        "got {result:?}"
    );
}

#[test]
fn connect_to_closed_port_names_the_address() {
    let (l, addr) = listener();
    drop(l);
    let err = TcpChannel::connect(addr, TcpOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&addr.to_string()), "{msg}");
    match &err {
        TransportError::Connect {
            attempts: 1,
            source,
            ..
        } => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    // Folded into a ChannelError, the message keeps the address.
    let ce: ChannelError = err.into();
    assert!(ce.to_string().contains(&addr.to_string()), "{ce}");
}

#[test]
fn connect_retry_window_then_gives_up() {
    let (l, addr) = listener();
    drop(l);
    let opts = TcpOptions {
        connect_retry: Duration::from_millis(400),
        connect_retry_interval: Duration::from_millis(100),
        ..TcpOptions::default()
    };
    let start = Instant::now();
    let err = TcpChannel::connect(addr.to_string(), opts).unwrap_err();
    let elapsed = start.elapsed();
    match err {
        TransportError::Connect { attempts, .. } => assert!(attempts >= 2, "{attempts} attempts"),
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[test]
fn connect_retry_reaches_a_late_listener() {
    let (l, addr) = listener();
    drop(l);
    let late = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        let l = TcpListener::bind(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut ch = TcpChannel::from_stream(s, &TcpOptions::default()).unwrap();
        ch.send_frame(b"hello").unwrap();
    });
    let opts = TcpOptions::default().with_connect_retry(Duration::from_secs(10));
    let mut ch = TcpChannel::connect(addr, opts).unwrap();
    assert_eq!(ch.recv_frame().unwrap(), b"hello");
    late.join().unwrap();
}

#[test]
fn unresolvable_address_is_reported() {
    let err = TcpChannel::connect("127.0.0.1", TcpOptions::default()).unwrap_err();
    assert!(matches!(err, TransportError::Resolve { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

#[test]
fn metered_counts_payload_bytes_over_tcp() {
    let (client, server) = channel_pair(TcpOptions::default(), TcpOptions::default());
    let mut client = Metered::new(client);
    let mut server = Metered::new(server);
    let server_traffic = server.traffic();
    let echo = thread::spawn(move || {
        echo_until_closed(&mut server);
    });
    let sizes = [0usize, 1, 17, 1000, 70_000, 1 << 20];
    for (i, &len) in sizes.iter().enumerate() {
        let f = pattern(len, i as u8);
        client.send_frame(&f).unwrap();
        assert_eq!(client.recv_frame().unwrap(), f);
    }
    let total: u64 = sizes.iter().map(|&s| s as u64).sum();
    let c = client.traffic().snapshot();
    assert_eq!(c.bytes_sent, total);
    assert_eq!(c.bytes_received, total);
    assert_eq!(c.messages_sent, sizes.len() as u64);
    assert_eq!(c.messages_received, sizes.len() as u64);
    assert_eq!(c.round_trips, sizes.len() as u64);
    drop(client);
    echo.join().unwrap();
    let s = server_traffic.snapshot();
    assert_eq!(s.bytes_sent, total);
    assert_eq!(s.bytes_received, total);

    // And the wire carries exactly 4 bytes of header per frame on top of that.
    let (mut ch, mut raw) = channel_and_raw(TcpOptions::default());
    let mut metered = Metered::new(&mut ch);
    for &len in &sizes {
        metered.send_frame(&pattern(len, 0)).unwrap();
    }
    assert_eq!(metered.traffic().snapshot().bytes_sent, total);
    drop(metered);
    drop(ch);
    let mut wire = Vec::new();
    raw.read_to_end(&mut wire).unwrap();
    assert_eq!(wire.len() as u64, total + 4 * sizes.len() as u64);
}
