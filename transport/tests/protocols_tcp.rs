//! The protocols over real TCP (`transport`), against a real S2 server: one
//! `transport::server::Server` whose sessions share one `Arc<S2Service>`.
//!
//! * every protocol once with a real 2048-bit key, checked against plaintext;
//! * the strict profile with a small key;
//! * misbehaving clients (garbage, truncated and oversized frames, a wrong key, a malformed
//!   request, out-of-range values, a client that vanishes mid-protocol) each get a clear error,
//!   nothing panics, and well-behaved sessions running beside them and after them still get
//!   correct answers.

use num_bigint::BigInt;
use paillier::Encrypt;
use paillier::{Ciphertext, PublicKey, SecretKey};
use secure_ops::messages::{Op, Request, Response};
use secure_ops::{
    Channel, ChannelError, ChannelExt, Comparison, Job, Profile, ProtocolError, S2Options,
    S2Service, SessionParams, SessionSummary, Truncation, PROTOCOL_VERSION, S1,
};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use transport::loopback::LoopbackS2;
use transport::server::PlainTcp;
use transport::{ServerOptions, ServerSummary, TcpChannel, TcpOptions};

/// A 512-bit key (small keys where the property does not depend on key size).
fn small_key() -> SecretKey {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap()
}

fn enc(pk: &PublicKey, v: &[i64]) -> Vec<Ciphertext> {
    let mut rng = rand::thread_rng();
    v.iter().map(|&x| pk.encrypt_i64(x, &mut rng)).collect()
}

type Outcomes = Arc<Mutex<Vec<Result<SessionSummary, String>>>>;

/// A running S2 server on 127.0.0.1 (port picked by the system).
struct S2Server {
    s2: LoopbackS2,
    addr: SocketAddr,
    outcomes: Outcomes,
}

impl S2Server {
    fn start(sk: SecretKey) -> Self {
        let svc = Arc::new(S2Service::new(sk, S2Options::without_pool()));
        let options = ServerOptions {
            channel: TcpOptions::default().with_read_timeout(Some(Duration::from_secs(60))),
            grace_period: Duration::from_secs(10),
            ..ServerOptions::default()
        };
        let outcomes = Outcomes::default();
        let log = Arc::clone(&outcomes);
        let s2 = LoopbackS2::start(PlainTcp, options, move |chan: TcpChannel, _peer| {
            let result = svc.serve(chan);
            log.lock()
                .unwrap()
                .push(result.as_ref().map(Clone::clone).map_err(|e| e.to_string()));
            result.map(|_| ()).map_err(|e| e.to_string())
        })
        .unwrap();
        S2Server {
            addr: s2.addr(),
            s2,
            outcomes,
        }
    }

    fn channel(&self) -> TcpChannel {
        TcpChannel::connect(self.addr, TcpOptions::default()).unwrap()
    }

    fn session(&self, pk: &PublicKey, params: SessionParams) -> S1<TcpChannel> {
        S1::connect(pk.clone(), self.channel(), params).unwrap()
    }

    /// Stops the server; its summary and the outcome of every session.
    fn stop(self) -> (ServerSummary, Vec<Result<SessionSummary, String>>) {
        let summary = self.s2.stop().unwrap();
        let outcomes = std::mem::take(&mut *self.outcomes.lock().unwrap());
        (summary, outcomes)
    }
}

fn dec(sk: &SecretKey, v: &[Ciphertext]) -> Vec<i128> {
    v.iter()
        .map(|c| i128::try_from(sk.decrypt(c).unwrap()).unwrap())
        .collect()
}

fn relu_of(x: &[i64]) -> (Vec<i128>, Vec<i128>) {
    (
        x.iter().map(|&v| i128::from(v.max(0))).collect(),
        x.iter().map(|&v| i128::from(v > 0)).collect(),
    )
}

fn argmax_of(s: &[i64]) -> Vec<i128> {
    let best = (0..s.len()).fold(0, |b, i| if s[i] > s[b] { i } else { b });
    (0..s.len()).map(|i| i128::from(i == best)).collect()
}

/// Runs every protocol once on `s1` and checks it against plaintext.
fn check_every_protocol(s1: &mut S1<TcpChannel>, sk: &SecretKey) {
    let pk = sk.public_key().clone();
    let strict = s1.params().profile == Profile::Strict;
    // Fixed-point-sized values (f = 16: a few units in 2^16), products below 2^40.
    let x = [-5 << 16, 0, 7 << 16, 1, -1, 123_456];
    let y = [3 << 16, 9, -(2 << 16), 4, 5, -6];
    let (cx, cy) = (enc(&pk, &x), enc(&pk, &y));
    let prod: Vec<i128> = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| i128::from(a) * i128::from(b))
        .collect();

    // SecMul and SecDot.
    assert_eq!(dec(sk, &s1.mul(&cx, &cy).unwrap()), prod);
    assert_eq!(
        dec(sk, &[s1.dot(&cx, &cy).unwrap()]),
        vec![prod.iter().sum::<i128>()]
    );
    let mv = dec(sk, &s1.mat_vec(&cx, 2, &cy[..3]).unwrap());
    let want_mv: Vec<i128> = (0..2)
        .map(|j| {
            (0..3)
                .map(|i| i128::from(x[3 * j + i]) * i128::from(y[i]))
                .sum()
        })
        .collect();
    assert_eq!(mv, want_mv);

    // Products: MatVec, VecMat and OuterSum in one request (one round trip).
    let (rows, cols, batch) = (2, 3, 2);
    let m = [1, -2, 3, 4, 5, -6];
    let v = [7, 8, -9];
    let w = [10, -11];
    let a = [1, 2, 3, 4]; // batch × rows
    let b = [5, 6, 7, -8, 9, 10]; // batch × cols
    let ops = [
        enc(&pk, &m),
        enc(&pk, &v),
        enc(&pk, &w),
        enc(&pk, &a),
        enc(&pk, &b),
    ];
    let refs: Vec<&[Ciphertext]> = ops.iter().map(Vec::as_slice).collect();
    let before = s1.traffic_snapshot();
    let out = s1
        .products(
            &refs,
            &[
                Job::MatVec {
                    mat: 0,
                    vec: 1,
                    rows,
                    cols,
                },
                Job::VecMat {
                    mat: 0,
                    vec: 2,
                    rows,
                    cols,
                },
                Job::OuterSum {
                    a: 3,
                    b: 4,
                    a_len: rows,
                    b_len: cols,
                    batch,
                },
            ],
            false,
        )
        .unwrap();
    assert_eq!(s1.traffic_snapshot().since(&before).round_trips, 1);
    let mv: Vec<i128> = (0..rows)
        .map(|j| (0..cols).map(|i| i128::from(m[j * cols + i] * v[i])).sum())
        .collect();
    let vm: Vec<i128> = (0..cols)
        .map(|i| (0..rows).map(|j| i128::from(m[j * cols + i] * w[j])).sum())
        .collect();
    let outer: Vec<i128> = (0..rows * cols)
        .map(|o| {
            (0..batch)
                .map(|t| i128::from(a[t * rows + o / cols] * b[t * cols + o % cols]))
                .sum()
        })
        .collect();
    assert_eq!(dec(sk, &out[0]), mv);
    assert_eq!(dec(sk, &out[1]), vm);
    assert_eq!(dec(sk, &out[2]), outer);

    // SecReLU (fast one-round, or strict DGK) and comparison.
    let (r, d) = s1.relu(&cx).unwrap();
    let (want_r, want_d) = relu_of(&x);
    assert_eq!(dec(sk, &r), want_r);
    assert_eq!(dec(sk, &d), want_d);
    assert_eq!(dec(sk, &s1.positive(&cy).unwrap()), relu_of(&y).1);

    // Truncation by 2^16 of the products: stochastic within one unit of the floor; exact in
    // the strict profile.
    let cp = s1.mul(&cx, &cy).unwrap();
    let floor: Vec<i128> = prod.iter().map(|p| p >> 16).collect();
    if strict {
        assert_eq!(dec(sk, &s1.truncate(&cp, 16).unwrap()), floor);
    } else {
        let st = dec(
            sk,
            &s1.truncate_with(&cp, 16, Truncation::Stochastic).unwrap(),
        );
        for (s, f) in st.iter().zip(&floor) {
            assert!(*s == *f || *s == *f + 1, "stochastic {s} vs floor {f}");
        }
    }

    // Argmax of 3 (two samples) and S2-drawn random values.
    let scores = [[5, -3, 9], [2, 2, -7]];
    let cs: Vec<Vec<Ciphertext>> = scores.iter().map(|s| enc(&pk, s)).collect();
    let hot = s1.argmax(&cs).unwrap();
    for (s, h) in scores.iter().zip(&hot) {
        assert_eq!(dec(sk, h), argmax_of(s));
    }
    let rv = s1
        .random_values(&[(8, BigInt::from(1 << 12)), (2, BigInt::from(0))])
        .unwrap();
    assert!(dec(sk, &rv[0])
        .iter()
        .all(|v| (-(1 << 12)..=1 << 12).contains(v)));
    assert_eq!(dec(sk, &rv[1]), vec![0, 0]);
}

fn assert_clean_shutdown(server: S2Server, sessions: u64) {
    let (summary, outcomes) = server.stop();
    assert_eq!(summary.sessions, sessions);
    assert_eq!(
        (summary.failed, summary.panicked, summary.unfinished),
        (0, 0, 0),
        "{outcomes:?}"
    );
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
}

/// Every protocol over TCP with a real 2048-bit key (default ℓ = 72, κ = 80, fast profile).
#[test]
fn every_protocol_over_tcp_with_a_2048_bit_key() {
    let start = Instant::now();
    let sk = SecretKey::generate(2048, &mut rand::rngs::OsRng).unwrap();
    let keygen = start.elapsed();
    assert_eq!(sk.public_key().bits(), 2048);
    let server = S2Server::start(sk.clone());
    let mut s1 = server.session(sk.public_key(), SessionParams::default());
    check_every_protocol(&mut s1, &sk);
    s1.close().unwrap();
    assert_clean_shutdown(server, 1);
    eprintln!(
        "2048-bit key generated in {:.1} s, protocols in {:.1} s",
        keygen.as_secs_f64(),
        (start.elapsed() - keygen).as_secs_f64()
    );
}

/// The strict profile (exact comparisons and truncation) over TCP with a small key, with
/// garbled comparisons (the default) and with DGK, one session each on the same S2.
#[test]
fn strict_profile_over_tcp() {
    let sk = small_key();
    let server = S2Server::start(sk.clone());
    for comparison in [Comparison::Garbled, Comparison::Dgk] {
        let params = SessionParams {
            value_bits: 48,
            frac_bits: 16,
            kappa: 40,
            profile: Profile::Strict,
            comparison,
        };
        let mut s1 = server.session(sk.public_key(), params);
        check_every_protocol(&mut s1, &sk);
        s1.close().unwrap();
    }
    assert_clean_shutdown(server, 2);
}

/// A channel that drops the connection after `sends` frames: a client that sends a request and
/// vanishes before the answer.
struct CutAfter {
    inner: Option<TcpChannel>,
    sends: usize,
}

impl Channel for CutAfter {
    fn send_frame(&mut self, frame: &[u8]) -> Result<(), ChannelError> {
        let chan = self.inner.as_mut().ok_or(ChannelError::Closed)?;
        chan.send_frame(frame)?;
        self.sends -= 1;
        if self.sends == 0 {
            self.inner = None;
        }
        Ok(())
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.inner
            .as_mut()
            .ok_or(ChannelError::Closed)?
            .recv_frame()
    }
}

/// Sends raw bytes, half-closes, and returns what the server answered before closing.
fn raw_client(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    match s.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the server's answer: {e}"),
    }
    answer
}

fn hello(pk: &PublicKey, params: SessionParams) -> Request {
    Request::Hello {
        version: PROTOCOL_VERSION,
        fingerprint: pk.fingerprint(),
        params,
    }
}

/// Misbehaving clients against one S2 server, with a well-behaved S1 session running beside them
/// and another one after them.
#[test]
fn s2_server_survives_misbehaving_clients() {
    let sk = small_key();
    let pk = sk.public_key().clone();
    let params = SessionParams {
        value_bits: 40,
        frac_bits: 16,
        kappa: 40,
        profile: Profile::Fast,
        ..SessionParams::default()
    };
    let server = S2Server::start(sk.clone());
    let addr = server.addr;
    let mut good = server.session(&pk, params);
    let (a, b) = (enc(&pk, &[6, -7]), enc(&pk, &[7, 6]));
    assert_eq!(dec(&sk, &good.mul(&a, &b).unwrap()), vec![42, -42]);

    let mut clients: Vec<JoinHandle<()>> = Vec::new();
    // Garbage: a well-framed payload that is no message at all. S2 sends nothing back.
    clients.push(thread::spawn(move || {
        let mut frame = 16u32.to_be_bytes().to_vec();
        frame.extend([0xff; 16]);
        assert!(raw_client(addr, &frame).is_empty());
    }));
    // Not even a frame: an HTTP request (its "length" is 1.2 GB, far above the limit).
    clients.push(thread::spawn(move || {
        assert!(raw_client(addr, b"GET / HTTP/1.1\r\nHost: s2\r\n\r\n").is_empty());
    }));
    // A truncated frame: 100 bytes announced, 10 sent, then the connection is closed.
    clients.push(thread::spawn(move || {
        let mut frame = 100u32.to_be_bytes().to_vec();
        frame.extend([0u8; 10]);
        assert!(raw_client(addr, &frame).is_empty());
    }));
    // An oversized frame header (4 GiB − 1) is refused before anything is allocated.
    clients.push(thread::spawn(move || {
        assert!(raw_client(addr, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).is_empty());
    }));
    // A wrong key: the handshake is refused with a message naming both fingerprints.
    clients.push(thread::spawn(move || {
        let other = {
            use rand::SeedableRng;
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(99);
            SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap()
        };
        let chan = TcpChannel::connect(addr, TcpOptions::default()).unwrap();
        let err = S1::connect(other.public_key().clone(), chan, params)
            .err()
            .unwrap();
        assert!(
            matches!(&err, ProtocolError::Handshake(m) if m.contains("public key mismatch")),
            "{err}"
        );
    }));
    // A malformed request after a good handshake: S2 says why and ends the session.
    let pk2 = pk.clone();
    clients.push(thread::spawn(move || {
        let mut chan = TcpChannel::connect(addr, TcpOptions::default()).unwrap();
        chan.send_msg(&hello(&pk2, params)).unwrap();
        assert!(matches!(
            chan.recv_msg::<Response>().unwrap(),
            Response::HelloOk { .. }
        ));
        chan.send_frame(&[0xff; 8]).unwrap();
        match chan.recv_msg::<Response>().unwrap() {
            Response::Error(m) => assert!(m.contains("malformed request"), "{m}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(matches!(chan.recv_frame(), Err(ChannelError::Closed)));
    }));
    // A well-formed but inconsistent request is refused and the session ends.
    let pk3 = pk.clone();
    clients.push(thread::spawn(move || {
        let mut chan = TcpChannel::connect(addr, TcpOptions::default()).unwrap();
        chan.send_msg(&hello(&pk3, params)).unwrap();
        assert!(matches!(
            chan.recv_msg::<Response>().unwrap(),
            Response::HelloOk { .. }
        ));
        chan.send_msg(&Request::Eval {
            packs: Vec::new(),
            slot_bits: 10,
            count: 3,
            op: Op::Sign { with_value: false },
        })
        .unwrap();
        match chan.recv_msg::<Response>().unwrap() {
            Response::Error(m) => assert!(m.contains("slot width 10 not allowed"), "{m}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(matches!(chan.recv_frame(), Err(ChannelError::Closed)));
    }));
    // Out-of-range values: S1 gets OutOfRange, and S2 ends the session (no oracle).
    let pk4 = pk.clone();
    clients.push(thread::spawn(move || {
        let mut s1 = S1::connect(
            pk4.clone(),
            TcpChannel::connect(addr, TcpOptions::default()).unwrap(),
            params,
        )
        .unwrap();
        let huge = pk4
            .encrypt(&(BigInt::from(1) << 84), &mut rand::thread_rng())
            .unwrap();
        let ok = enc(&pk4, &[11]);
        let err = s1.mul(std::slice::from_ref(&huge), &ok).err().unwrap();
        assert!(matches!(err, ProtocolError::OutOfRange { .. }), "{err}");
        assert!(err.to_string().contains("out of range"), "{err}");
        let err = s1.relu(std::slice::from_ref(&huge)).err().unwrap();
        assert!(err.is_closed(), "{err}");
    }));
    // A client that sends an Eval request and drops the socket before the answer.
    let pk5 = pk.clone();
    clients.push(thread::spawn(move || {
        let chan = CutAfter {
            inner: Some(TcpChannel::connect(addr, TcpOptions::default()).unwrap()),
            sends: 2, // Hello, then the SecMul request
        };
        let mut s1 = S1::connect(pk5.clone(), chan, params).unwrap();
        let x = enc(&pk5, &[1, 2, 3]);
        let err = s1.mul(&x, &x).err().unwrap();
        assert!(err.is_closed(), "{err}");
    }));

    // The good session keeps working while they run...
    for i in 0..5i64 {
        let (x, y) = (enc(&pk, &[i, -i - 1]), enc(&pk, &[3, 3]));
        assert_eq!(
            dec(&sk, &good.mul(&x, &y).unwrap()),
            vec![3 * i as i128, -3 * (i as i128 + 1)]
        );
        let (r, d) = good.relu(&x).unwrap();
        assert_eq!((dec(&sk, &r), dec(&sk, &d)), relu_of(&[i, -i - 1]));
    }
    let n_clients = clients.len() as u64;
    for c in clients {
        c.join().expect("a misbehaving client's own checks");
    }
    // ...and after them, as does a fresh session.
    assert_eq!(dec(&sk, &[good.dot(&a, &b).unwrap()]), vec![0]);
    good.close().unwrap();
    let mut fresh = server.session(&pk, params);
    assert_eq!(
        dec(&sk, &fresh.truncate(&enc(&pk, &[1 << 20]), 20).unwrap()),
        vec![1]
    );
    fresh.close().unwrap();

    // Wait until every session has ended (the server records each outcome).
    let sessions = n_clients + 2;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (server.outcomes.lock().unwrap().len() as u64) < sessions && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let (summary, outcomes) = server.stop();
    let errors: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    eprintln!("S2 session errors: {errors:#?}");
    assert_eq!(summary.sessions, sessions, "{outcomes:?}");
    assert_eq!(summary.panicked, 0);
    assert_eq!(summary.unfinished, 0);
    assert_eq!(summary.failed, errors.len() as u64, "{outcomes:?}");
    // S2's side of each failure says what happened.
    for expected in [
        "malformed message from peer",                   // garbage payload
        "frame of 1195725856 bytes exceeds the maximum", // "GET " read as a length
        "middle of a frame (10 of 100 bytes)",           // truncated frame
        "frame of 4294967295 bytes exceeds the maximum", // oversized header
        "public key mismatch",                           // wrong key
        "malformed request",                             // garbage after the handshake
        "slot width 10 not allowed",                     // inconsistent request: session ended
        "blinded value outside",                         // out of range: session ended
    ] {
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "no session failed with '{expected}': {errors:?}"
        );
    }
    // The vanished client's session ended either quietly or on the failed send of its answer.
    assert!(
        errors.len() == 8 || errors.len() == 9,
        "unexpected failures: {errors:?}"
    );
}
