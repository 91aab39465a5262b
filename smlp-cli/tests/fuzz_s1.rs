//! Fuzzing S1's request handler through the real `serve-s1` process, over real TLS as an
//! authenticated owner: raw frames, and mutations of a valid request (the upload of a data set,
//! captured from the real `smlp train` client by a stand-in S1). S1 must answer each request with
//! one message or close the session, keep serving, and never panic. A mutation that stays valid is
//! stored like any upload.
//!
//! A fixed number of cases runs in CI; `SMLP_FUZZ_SECONDS=N` (`cargo xtask fuzz --seconds N`)
//! keeps going for N seconds, `SMLP_FUZZ_SEED` picks the seed.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use transport::{
    tls, Channel, Role, Server as TlsServer, ServerOptions, TcpOptions, TlsAcceptor, TlsChannel,
    TlsCredentials, TlsFiles,
};

/// `ClientMsg::Hello { version: 5 }` in postcard: variant 0, then the version as a varint.
const HELLO: [u8; 2] = [0, 5];

#[test]
fn hello_is_the_clients_encoding() {
    let hello = smlp_cli::proto::ClientMsg::Hello {
        version: smlp_cli::proto::VERSION,
    };
    assert_eq!(postcard::to_stdvec(&hello).unwrap(), HELLO);
}

fn opts() -> TcpOptions {
    TcpOptions::default()
        .with_connect_timeout(Duration::from_secs(10))
        .with_read_timeout(Some(Duration::from_secs(20)))
}

fn owner(addr: &str) -> TlsChannel {
    let creds = TlsCredentials::load(&TlsFiles::in_pki(pki(), "owner-owner"), Role::Owner).unwrap();
    tls::connect(addr, None, creds.client_config(Role::S1).unwrap(), &opts()).unwrap()
}

/// S1's `Welcome` frame, as the real S1 sends it.
fn welcome(s1: &str) -> Vec<u8> {
    let mut c = owner(s1);
    c.send_frame(&HELLO).unwrap();
    c.recv_frame().unwrap()
}

/// The first request the real client sends (the upload of its data set), captured by a stand-in S1 that answers its hello
/// with the real `Welcome`.
fn captured_train_request(env: &Env, welcome: Vec<u8>) -> Vec<u8> {
    let creds = TlsCredentials::load(&TlsFiles::in_pki(pki(), "s1"), Role::S1).unwrap();
    let config = creds.server_config(&[Role::Owner]).unwrap();
    let server = TlsServer::bind("127.0.0.1:0", ServerOptions::default()).unwrap();
    let addr = server.local_addr().to_string();
    let stop = server.shutdown_handle();
    let got: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let got2 = Arc::clone(&got);
    let join = std::thread::spawn(move || {
        server.run_with(TlsAcceptor(config), move |mut c: TlsChannel, _| {
            let _hello = c.recv_frame();
            let _ = c.send_frame(&welcome);
            if let Ok(req) = c.recv_frame() {
                *got2.lock().unwrap() = Some(req);
            }
        })
    });
    let _ = run(&[
        "train",
        "--s1",
        &addr,
        "--data",
        &env.p("d.enc"),
        "--hidden",
        "2",
        "--epochs",
        "1",
        "--kappa",
        "40",
        "--out",
        &env.p("m.enc"),
    ]);
    stop.shutdown();
    join.join().unwrap();
    let req = got
        .lock()
        .unwrap()
        .take()
        .expect("the client sent its request");
    req
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    for _ in 0..rng.gen_range(1..4) {
        let i = rng.gen_range(0..bytes.len().max(1));
        match rng.gen_range(0..5) {
            0 if !bytes.is_empty() => bytes[i] ^= 1 << rng.gen_range(0..8),
            1 if !bytes.is_empty() => bytes[i] = rng.gen(),
            2 => bytes.truncate(i),
            3 => {
                bytes.splice(
                    i.min(bytes.len())..i.min(bytes.len()),
                    [0xff, 0xff, 0xff, 0xff, 0x0f],
                );
            }
            _ if !bytes.is_empty() => bytes[i] = 0,
            _ => bytes.push(rng.gen()),
        }
    }
}

#[test]
fn s1_survives_raw_and_mutated_requests() {
    let env = Env::new();
    small_encrypted(&env);
    let mut s1 = env.s1(
        &closed_port(),
        &[
            "--s2-connect-retry-secs",
            "0",
            "--max-sessions-per-owner",
            "64",
        ],
    );
    let w = welcome(&s1.addr);
    let train = captured_train_request(&env, w);
    assert!(train.len() > 1000, "an upload with the data set");

    let seed = std::env::var("SMLP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let until = std::env::var("SMLP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut done = 0u64;
    let mut answered = 0u64;
    while done < 40 || until.is_some_and(|t| Instant::now() < t) {
        let start = Instant::now();
        let mut c = owner(&s1.addr);
        let frame = if rng.gen_bool(0.25) {
            let len = rng.gen_range(0..256);
            (0..len).map(|_| rng.gen()).collect()
        } else {
            let mut t = train.clone();
            mutate(&mut t, &mut rng);
            t
        };
        // Half the time the hello first (the mutated request then reaches the request handler).
        let hello_first = rng.gen_bool(0.5);
        if hello_first {
            c.send_frame(&HELLO).unwrap();
            c.recv_frame().unwrap();
        }
        if c.send_frame(&frame).is_ok() {
            // S1 answers (one message: an error, or what was asked) or closes.
            if let Ok(reply) = c.recv_frame() {
                answered += 1;
                assert!(!reply.is_empty());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "S1 took {:?} (seed {seed})",
            start.elapsed()
        );
        assert!(s1.is_running(), "S1 died (seed {seed}):\n{}", s1.log_text());
        done += 1;
    }
    // Still serving, and no session panicked.
    assert_eq!(welcome(&s1.addr).first(), Some(&0u8));
    let log = s1.log_text();
    assert!(!log.contains("panicked"), "seed {seed}:\n{log}");
    eprintln!("{done} sessions, {answered} answers (seed {seed})");
}
