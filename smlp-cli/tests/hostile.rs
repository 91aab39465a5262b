//! Hostile peers and files against the real binary, over real TLS: who is refused in the
//! handshake, the comparison-oracle attack of an authenticated S1 against a real S2, requests
//! built to exhaust S2, crafted files, and how secret-derived files are written.

mod common;

use common::*;
use paillier::BigInt;
use paillier::Encrypt;
use paillier::{Ciphertext, PublicKey, SecretKey};
use secure_ops::messages::{Op, Request, Response, WireJob};
use secure_ops::{ChannelExt, SessionParams, PROTOCOL_VERSION, S1};
use std::path::Path;
use std::time::{Duration, Instant};
use transport::{tls, Channel, Role, TcpChannel, TcpOptions, TlsChannel, TlsCredentials, TlsFiles};

fn opts() -> TcpOptions {
    TcpOptions::default()
        .with_connect_timeout(Duration::from_secs(10))
        .with_read_timeout(Some(Duration::from_secs(30)))
}

/// A TLS connection to `addr` with the credentials `stem` of the test PKI, expecting `server`.
fn dial(addr: &str, stem: &str, role: Role, server: Role) -> Result<TlsChannel, String> {
    let creds = TlsCredentials::load(&TlsFiles::in_pki(pki(), stem), role).unwrap();
    tls::connect(addr, None, creds.client_config(server).unwrap(), &opts())
        .map_err(|e| e.to_string())
}

fn start_s2(env: &Env) -> Server {
    // A refusal budget large enough for the tests that send many refused requests (the budget
    // has its own test).
    env.s2(&[
        "--pool-capacity",
        "0",
        "--max-refusals-per-hour",
        "1000",
        "--max-refusals",
        "1000",
    ])
}

/// Hello; `false` if the session is refused or closed instead.
fn try_hello(chan: &mut impl Channel, pk: &PublicKey) -> bool {
    let sent = chan.send_msg(&Request::Hello {
        version: PROTOCOL_VERSION,
        fingerprint: pk.fingerprint(),
        params: params(),
    });
    sent.is_ok() && matches!(chan.recv_msg::<Response>(), Ok(Response::HelloOk { .. }))
}

fn keys(env: &Env) -> (SecretKey, PublicKey) {
    let bytes = std::fs::read(env.path("keys/secret.key")).unwrap();
    let sk: SecretKey = paillier::format::open(&paillier::format::SECRET_KEY, &bytes).unwrap();
    let pk = sk.public_key().clone();
    (sk, pk)
}

fn params() -> SessionParams {
    SessionParams {
        kappa: 40,
        ..SessionParams::default()
    }
}

fn hello(chan: &mut impl Channel, pk: &PublicKey) {
    chan.send_msg(&Request::Hello {
        version: PROTOCOL_VERSION,
        fingerprint: pk.fingerprint(),
        params: params(),
    })
    .unwrap();
    assert!(matches!(
        chan.recv_msg::<Response>().unwrap(),
        Response::HelloOk { .. }
    ));
}

/// The oracle probe of the security review: a SecMul of u = x + (H − m) with itself, which S2
/// finds in range iff x < m (for the encrypted secret `ct_x`).
fn range_probe(pk: &PublicKey, ct_x: &Ciphertext, m: u64) -> Request {
    let p = params();
    let w = p.value_bits + p.kappa + 10; // the slot width of a SecMul operand
    let hi: BigInt =
        (BigInt::from(1) << (p.value_bits + p.kappa)) + (BigInt::from(1) << p.value_bits);
    let offset: BigInt = BigInt::from(1) << (w - 2);
    let c = &hi - BigInt::from(m) + &offset;
    Request::Eval {
        packs: vec![pk.add_plain(ct_x, &c).unwrap()],
        slot_bits: w,
        count: 1,
        op: Op::Products {
            jobs: vec![WireJob::Elementwise { a: 0, b: 0, len: 1 }],
            negate: vec![false],
        },
    }
}

/// Asks for S2's counters: the first exchange after the handshake, where a refused client
/// certificate shows.
fn stats(mut c: TlsChannel) -> Result<Vec<u8>, String> {
    c.send_msg(&Request::Stats).map_err(|e| e.to_string())?;
    c.recv_frame().map_err(|e| e.to_string())
}

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn wait_log(server: &Server, text: &str) -> String {
    let start = Instant::now();
    loop {
        let log = server.log_text();
        if log.contains(text) {
            return log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "`{text}` not logged:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn only_the_right_certificates_get_through_the_handshake() {
    let env = Env::new();
    let s2 = start_s2(&env);
    // No owner has connected to this S1 (nor registered a key).
    let s1 = Server::start(env.dir.path(), "s1", &["serve-s1", "--s2", &s2.addr]);
    let (_, pk) = keys(&env);
    // S1's certificate is served by S2.
    let mut served = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    hello(&mut served, &pk);
    served.send_msg(&Request::Bye).unwrap();
    // An owner's certificate is refused by S2, S1's and S2's by S1 (only owners are clients there).
    for (addr, stem, role, server) in [
        (&s2.addr, "owner-owner", Role::Owner, Role::S2),
        (&s1.addr, "s1", Role::S1, Role::S1),
        (&s1.addr, "s2", Role::S2, Role::S1),
    ] {
        let r = dial(addr, stem, role, server).and_then(stats);
        assert!(r.is_err(), "{stem} at {addr}: {r:?}");
    }
    // Plain TCP (the pre-TLS protocol) is refused by both: the smlp frame is no TLS record.
    for addr in [&s2.addr, &s1.addr] {
        let mut plain = TcpChannel::connect(addr.as_str(), opts()).unwrap();
        let _ = plain.send_msg(&Request::Hello {
            version: PROTOCOL_VERSION,
            fingerprint: pk.fingerprint(),
            params: params(),
        });
        assert!(plain.recv_frame().is_err());
    }
    // A certificate of another deployment's CA.
    let other = tempfile::tempdir().unwrap();
    ok_pki(other.path());
    let creds = TlsCredentials::load(
        &TlsFiles {
            ca: pki().join("ca.crt"),
            ..TlsFiles::in_pki(other.path(), "s1")
        },
        Role::S1,
    )
    .unwrap();
    let r = tls::connect(
        s2.addr.as_str(),
        None,
        creds.client_config(Role::S2).unwrap(),
        &opts(),
    )
    .map_err(|e| e.to_string())
    .and_then(stats);
    assert!(r.is_err(), "{r:?}");
    // Both servers logged the refusals and served none of them.
    let log2 = wait_log(&s2, "connection refused");
    assert!(log2.contains("certificate"), "{log2}");
    assert!(!log2.contains("owner \"owner\""), "{log2}");
    let log1 = wait_log(&s1, "connection refused");
    assert!(!log1.contains("session started"), "{log1}");
    // The owner's command line without TLS credentials is refused with the way out.
    small_encrypted(&env);
    let err = fail_without_pki(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &env.p("d.enc"),
        "--out",
        &env.p("m.enc"),
    ]);
    assert!(err.contains("--pki"), "{err}");
}

fn ok_pki(dir: &Path) {
    ok(&[
        "pki",
        "--out",
        &s(dir),
        "--s1-host",
        "127.0.0.1",
        "--s2-host",
        "127.0.0.1",
    ]);
}

fn fail_without_pki(args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env_remove("SMLP_PKI")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The attack of the security review: with a ciphertext ⟦x⟧ (here a 36-bit secret), send
/// ⟦x + c⟧ unblinded as a SecMul operand and read S2's "out of range" answer as the comparison
/// x ≥ H − c; binary search recovers x in 37 probes when S2 answers on. S2 now ends the session
/// at the first out-of-range probe: the attack learns one comparison and nothing further.
#[test]
fn comparison_oracle_attack_by_an_authenticated_s1_is_cut_off() {
    let env = Env::new();
    let s2 = start_s2(&env);
    let (_, pk) = keys(&env);
    let secret: u64 = 0xA_5A5A_5A5A; // 36 bits, unknown to the attacker
    let ct_x = pk
        .encrypt(&BigInt::from(secret), &mut rand::thread_rng())
        .unwrap();

    let mut chan = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    hello(&mut chan, &pk);
    let (mut lo, mut up) = (0u64, 1u64 << 36); // x ∈ [lo, up)
    let mut answered = 0;
    let mut out_of_range = 0;
    let mut cut_off = false;
    while up - lo > 1 {
        let m = lo + (up - lo) / 2;
        let sent = chan.send_msg(&range_probe(&pk, &ct_x, m));
        let reply = sent.ok().and_then(|()| chan.recv_msg::<Response>().ok());
        match reply {
            Some(Response::Ciphertexts(_)) => up = m,
            Some(Response::OutOfRange(_)) => {
                lo = m;
                out_of_range += 1;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                cut_off = true;
                break;
            }
        }
        answered += 1;
    }
    assert!(
        cut_off,
        "S2 answered all {answered} probes: the oracle is open"
    );
    assert_eq!(
        out_of_range, 1,
        "S2 answers no probe after the first out-of-range one"
    );
    // x's top bit is set: the first probe was out of range, and the attack stopped there.
    assert_eq!(answered, 1);
    assert!(
        up - lo >= 1 << 35,
        "the attacker narrowed x to [{lo}, {up})"
    );
    // S2 logged the refusal with S1's certificate identity and the sub-protocol.
    let log = wait_log(&s2, "request refused, session ended");
    assert!(log.contains("S1 \"S1\"") && log.contains("SecMul"), "{log}");
}

/// Requests built to make S2 allocate or compute without bound each get a clear error, S2's
/// peak memory stays small, and an honest session on the same S2 completes afterwards.
#[test]
fn amplification_requests_are_refused_before_any_work() {
    let env = Env::new();
    let s2 = start_s2(&env);
    let (sk, pk) = keys(&env);
    let p = params();
    let w = p.value_bits + p.kappa + 10;
    let one_pack = || {
        vec![pk
            .encrypt(&BigInt::from(1), &mut rand::thread_rng())
            .unwrap()]
    };
    let products = |job: WireJob| Request::Eval {
        packs: one_pack(),
        slot_bits: w,
        count: 1,
        op: Op::Products {
            jobs: vec![job],
            negate: vec![false],
        },
    };
    let attacks: Vec<(&str, Request)> = vec![
        (
            "OuterSum with batch 0",
            products(WireJob::OuterSum {
                a: 0,
                b: 0,
                a_len: u32::MAX,
                b_len: u32::MAX,
                batch: 0,
            }),
        ),
        (
            "MatVec with cols 0",
            products(WireJob::MatVec {
                mat: 0,
                vec: 0,
                rows: u32::MAX,
                cols: 0,
            }),
        ),
        (
            "millions of empty zero-test groups",
            Request::ZeroTest {
                groups: vec![Vec::new(); 4_000_000],
            },
        ),
        (
            "slot width u32::MAX",
            Request::Eval {
                packs: one_pack(),
                slot_bits: u32::MAX,
                count: 1,
                op: Op::Sign { with_value: false },
            },
        ),
        (
            "a count far beyond its packs",
            Request::Eval {
                packs: one_pack(),
                slot_bits: w,
                count: u32::MAX,
                op: Op::CompareBits { bits: 73 },
            },
        ),
    ];
    let before = peak_rss_kib(s2.pid());
    for (name, req) in &attacks {
        let start = Instant::now();
        let mut chan = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
        hello(&mut chan, &pk);
        chan.send_msg(req).unwrap();
        match chan.recv_msg::<Response>() {
            Ok(Response::Error(m)) => assert!(!m.is_empty(), "{name}"),
            other => panic!("{name}: expected a clear error, got {other:?}"),
        }
        assert!(chan.recv_frame().is_err(), "{name}: the session ends");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{name} took {:?}",
            start.elapsed()
        );
    }
    let after = peak_rss_kib(s2.pid());
    eprintln!("S2 peak RSS: {before} KiB before, {after} KiB after the attacks");
    // Nothing is computed or allocated for any of them: the 4 MB zero-test frame (96 MB if it
    // were decoded as 4 million empty vectors) is refused by the bounded decoder. Measured: about
    // 12 MiB peak with a 512-bit key; bound: 64 MiB.
    assert!(after < 64 * 1024, "S2 peak RSS {after} KiB");
    // An honest session still works.
    let chan = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    let mut s1 = S1::connect(pk.clone(), chan, params()).unwrap();
    let x = [pk.encrypt_i64(-6, &mut rand::thread_rng())];
    let y = [pk.encrypt_i64(7, &mut rand::thread_rng())];
    let prod = s1.mul(&x, &y).unwrap();
    assert_eq!(sk.decrypt_i64(&prod[0]).unwrap(), -42);
    s1.close().unwrap();
}

/// The fields of an encrypted model in file order, with the shape as a plain vector: what a
/// crafted file can hold.
#[derive(serde::Serialize)]
struct RawModel {
    fingerprint: paillier::Fingerprint,
    shape: Vec<usize>,
    fixed: smlp::FixedParams,
    profile: secure_ops::Profile,
    classes: usize,
    epochs_trained: u64,
    params: smlp::Params<Ciphertext>,
}

#[derive(serde::Serialize)]
struct RawCheckpoint {
    model: RawModel,
    config: smlp::encrypted::TrainConfig,
    position: usize,
}

#[test]
fn crafted_model_checkpoint_and_prediction_files_give_errors_not_panics() {
    use paillier::format::write_file;
    use smlp::encrypted::{EncryptedPredictions, CHECKPOINT, MODEL, PREDICTIONS};
    let env = Env::new();
    let (_, pk) = keys(&env);
    small_encrypted(&env);
    let raw = |shape: Vec<usize>| RawModel {
        fingerprint: pk.fingerprint(),
        shape,
        fixed: smlp::FixedParams::default(),
        profile: secure_ops::Profile::Fast,
        classes: 2,
        epochs_trained: 0,
        params: smlp::Params { layers: Vec::new() },
    };
    // Shapes that `Shape::new` refuses: a single size, a zero size, an absurd size.
    for (i, shape) in [vec![30], vec![30, 0, 1], vec![30, usize::MAX, 1], vec![]]
        .into_iter()
        .enumerate()
    {
        let model = env.p(&format!("crafted-{i}.enc"));
        // As a model file of this version (the model, then no training record) and of version 1
        // (the bare model), in turn.
        if i % 2 == 0 {
            write_file(&MODEL, Path::new(&model), &(raw(shape.clone()), None::<()>)).unwrap();
        } else {
            let v1 = paillier::format::FileKind {
                version: 1,
                ..MODEL
            };
            write_file(&v1, Path::new(&model), &raw(shape.clone())).unwrap();
        }
        let err = fail(&[
            "classify",
            "--s1",
            &closed_port(),
            "--model",
            &model,
            "--data",
            &env.p("d.enc"),
            "--out",
            &env.p("p.enc"),
        ]);
        assert!(
            err.contains("malformed encrypted model"),
            "{shape:?}: {err}"
        );
        fail(&[
            "decrypt",
            "--secret-key",
            &env.secret(),
            "--in",
            &model,
            "--out",
            &env.p("m.json"),
        ]);
        let ck = env.p(&format!("crafted-{i}.ckpt"));
        write_file(
            &CHECKPOINT,
            Path::new(&ck),
            &RawCheckpoint {
                model: raw(shape),
                config: smlp::encrypted::TrainConfig {
                    epochs: 1,
                    batch: 1,
                    seed: 1,
                    loss: smlp::Loss::Squared,
                },
                position: 0,
            },
        )
        .unwrap();
        fail(&[
            "decrypt",
            "--secret-key",
            &env.secret(),
            "--in",
            &ck,
            "--out",
            &env.p("c.json"),
        ]);
        fail(&[
            "train",
            "--s1",
            &closed_port(),
            "--data",
            &env.p("d.enc"),
            "--resume",
            &ck,
            "--out",
            &env.p("m.enc"),
        ]);
    }
    // Predictions: scores for fewer samples than classes, a class entry of the wrong width, no
    // classes at all, scores asked of a file without them.
    let c = |v: i64| pk.encrypt_i64(v, &mut rand::thread_rng());
    let preds =
        |classes: usize, classes_enc: Vec<Vec<Ciphertext>>, scores: Vec<Vec<Ciphertext>>| {
            EncryptedPredictions {
                fingerprint: pk.fingerprint(),
                classes,
                frac_bits: 16,
                classes_enc,
                scores,
            }
        };
    let cases = [
        (
            preds(
                2,
                vec![vec![c(1)], vec![c(0)], vec![c(1)]],
                vec![vec![c(5)]],
            ),
            true,
        ),
        (preds(3, vec![vec![c(1)]], Vec::new()), false),
        (preds(0, vec![vec![c(1)]], Vec::new()), false),
        (preds(2, vec![vec![c(1)], vec![c(0)]], Vec::new()), true),
    ];
    for (i, (p, scores)) in cases.iter().enumerate() {
        let f = env.p(&format!("pred-{i}.enc"));
        write_file(&PREDICTIONS, Path::new(&f), p).unwrap();
        let (secret, out) = (env.secret(), env.p("pred.csv"));
        let mut args = vec![
            "decrypt",
            "--secret-key",
            &secret,
            "--in",
            &f,
            "--out",
            &out,
        ];
        if *scores {
            args.push("--scores");
        }
        fail(&args);
    }
}

#[cfg(unix)]
#[test]
fn secret_derived_files_are_private_and_planted_links_are_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    wdbc_csv(&env, "d.csv", 6, 1);
    // A link planted where the output will go, pointing at a file of someone else's.
    let victim = env.path("victim.txt");
    std::fs::write(&victim, "do not touch").unwrap();
    std::os::unix::fs::symlink(&victim, env.path("d.enc")).unwrap();
    ok(&[
        "encrypt",
        "--public-key",
        &env.public(),
        "--csv",
        &env.p("d.csv"),
        "--out",
        &env.p("d.enc"),
    ]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "do not touch");
    assert!(!std::fs::symlink_metadata(env.path("d.enc"))
        .unwrap()
        .file_type()
        .is_symlink());
    ok(&[
        "decrypt",
        "--secret-key",
        &env.secret(),
        "--in",
        &env.p("d.enc"),
        "--out",
        &env.p("d.plain.csv"),
    ]);
    let mode = |name: &str| {
        std::fs::metadata(env.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    // Decrypted data, the scaler (statistics of the data), the secret key, the ciphertexts: 0600.
    for f in [
        "d.plain.csv",
        "d.enc.scaler.json",
        "keys/secret.key",
        "d.enc",
    ] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
    assert_eq!(mode("keys/public.key") & 0o600, 0o600);
    // The PKI's private keys too.
    for f in ["ca.key", "s1.key", "s2.key", "owner-owner.key"] {
        let m = std::fs::metadata(pki().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, 0o600, "{f}");
    }
    // No temporary file is left behind.
    assert!(
        !env.files().iter().any(|f| f.contains(".tmp")),
        "{:?}",
        env.files()
    );
}

#[test]
fn s1_bounds_each_request_before_any_work() {
    let env = Env::new();
    small_encrypted(&env);
    // No S2 at all: every refusal below happens before S1 would contact it.
    let s1 = env.s1(
        &closed_port(),
        &[
            "--s2-connect-retry-secs",
            "0",
            "--s2-retry-deadline-secs",
            "1",
        ],
    );
    let train = |extra: &[&str]| {
        let (data, out) = (env.p("d.enc"), env.p("m.enc"));
        let mut args = vec!["train", "--s1", &s1.addr, "--data", &data, "--out", &out];
        args.extend_from_slice(extra);
        fail(&args)
    };
    let err = train(&["--hidden", "5000"]);
    assert!(err.contains("hidden layers of 1..=4096 units"), "{err}");
    let err = train(&["--hidden", "2,2,2,2,2,2,2,2,2"]);
    assert!(err.contains("at most 8 hidden layers"), "{err}");
    let err = train(&["--batch", "100000"]);
    assert!(err.contains("batch size"), "{err}");
    let err = train(&["--epochs", "1000000"]);
    assert!(err.contains("epochs"), "{err}");
    let err = train(&["--kappa", "300"]);
    assert!(err.contains("kappa = 300"), "{err}");
    // A request within the bounds becomes a job, which waits for S2 (unreachable here) until
    // --s2-retry-deadline-secs, then fails with a clear message.
    let err = train(&["--hidden", "2"]);
    assert!(
        err.contains("failed: S2 stayed unreachable for 1 s; S1's log has the detail"),
        "{err}"
    );
}

#[test]
fn concurrent_sessions_are_limited_per_identity() {
    let env = Env::new();
    small_encrypted(&env);
    let s2 = env.s2(&["--max-sessions-per-peer", "1"]);
    let s1 = env.s1(&s2.addr, &["--max-sessions-per-owner", "1"]);
    let (_, pk) = keys(&env);
    // S2: one S1 session open (after its hello); a second one from the same identity is closed.
    let mut first = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    hello(&mut first, &pk);
    let mut second = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    let _ = second.send_msg(&Request::Hello {
        version: PROTOCOL_VERSION,
        fingerprint: pk.fingerprint(),
        params: params(),
    });
    assert!(
        second.recv_frame().is_err(),
        "the second session is refused"
    );
    wait_log(&s2, "already runs 1 sessions");
    drop(first);
    // S1: an owner holding one session (hello sent, request pending) cannot open a second one;
    // another owner can.
    let mut held = dial(&s1.addr, "owner-owner", Role::Owner, Role::S1).unwrap();
    held.send_msg(&smlp_cli::proto::ClientMsg::Hello {
        version: smlp_cli::proto::VERSION,
    })
    .unwrap();
    held.recv_frame().unwrap();
    let (data, out) = (env.p("d.enc"), env.p("m.enc"));
    let err = fail(&[
        "train", "--s1", &s1.addr, "--data", &data, "--hidden", "2", "--out", &out,
    ]);
    assert!(err.contains("already has 1 connections to S1"), "{err}");
    let err = fail(&[
        "train", "--s1", &s1.addr, "--as", "alice", "--data", &data, "--hidden", "2", "--kappa",
        "20", "--out", &out,
    ]);
    assert!(
        err.contains("which this owner has not registered"),
        "alice is served (and told that the data set is not under her key): {err}"
    );
    drop(held);
}

#[test]
fn ids_are_checked_before_use_and_cannot_forge_log_lines_or_grow_the_store() {
    // The attack of the tenants issue: Fetch requests with a 4 MiB id holding newlines grew
    // s1.sqlite by 4 MiB of audit rows each and wrote a forged line into S1's log.
    use smlp_cli::proto::{ClientMsg, ServerMsg, VERSION};
    let env = Env::new();
    let s1 = env.s1(&closed_port(), &[]);
    let mut chan = dial(&s1.addr, "owner-owner", Role::Owner, Role::S1).unwrap();
    chan.send_msg(&ClientMsg::Hello { version: VERSION })
        .unwrap();
    assert!(matches!(
        chan.recv_msg::<ServerMsg>().unwrap(),
        ServerMsg::Welcome { .. }
    ));
    let forged = "\nFAKE LOG LINE level=INFO owner=admin\n";
    let id = format!("md-{}{forged}", "a".repeat(1 << 20));
    for request in [
        ClientMsg::Fetch {
            id: id.clone(),
            checkpoint: false,
        },
        ClientMsg::Delete { id: id.clone() },
        ClientMsg::Cancel { job: id.clone() },
        ClientMsg::Watch {
            job: format!("job-0123456789ab{forged}"),
        },
        ClientMsg::Fetch {
            id: format!("md-0123456789ab{forged}"),
            checkpoint: false,
        },
    ] {
        chan.send_msg(&request).unwrap();
        match chan.recv_msg::<ServerMsg>().unwrap() {
            ServerMsg::Error(e) => {
                assert!(e.contains("is not an id of S1's store"), "{e}");
                assert!(e.len() < 200, "the error is cut: {} bytes", e.len());
                assert!(!e.contains('\n'), "{e}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    drop(chan);
    let log = wait_log(&s1, "request refused");
    std::thread::sleep(Duration::from_millis(300));
    let log = log + &s1.log_text();
    assert!(
        !log.lines().any(|l| l.starts_with("FAKE LOG LINE")),
        "a forged line reached S1's log:\n{log}"
    );
    let db: u64 = std::fs::read_dir(env.path("s1-state"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(db < 1 << 20, "S1's state grew to {db} bytes");
}

#[test]
fn reconnecting_after_each_refusal_spends_a_budget_kept_across_restarts() {
    // The probe of the tenants issue: a new session after each refused request recovered a
    // 36-bit secret in 36 probes. With the default budget (4 refusals an hour) S2 blocks the
    // identity after its fourth refusal, across sessions and a restart, until its operator
    // clears it.
    let env = Env::new();
    let state = env.p("s2-state");
    let args = ["--pool-capacity", "0", "--state-dir", &state];
    let s2 = env.s2(&args);
    let (_, pk) = keys(&env);
    let secret: u64 = 0xA_5A5A_5A5A;
    let ct_x = pk
        .encrypt(&BigInt::from(secret), &mut rand::thread_rng())
        .unwrap();
    let (mut lo, mut up) = (0u64, 1u64 << 36);
    let (mut probes, mut refused, mut blocked) = (0, 0, false);
    while up - lo > 1 {
        let mut chan = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
        if !try_hello(&mut chan, &pk) {
            blocked = true;
            break;
        }
        let m = lo + (up - lo) / 2;
        chan.send_msg(&range_probe(&pk, &ct_x, m)).unwrap();
        match chan.recv_msg::<Response>().unwrap() {
            Response::Ciphertexts(_) => up = m,
            Response::OutOfRange(_) => {
                lo = m;
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
        probes += 1;
        drop(chan);
        std::thread::sleep(Duration::from_millis(50)); // S2 records the refusal as the session ends
    }
    assert!(blocked, "S2 answered all {probes} probes across sessions");
    assert_eq!(refused, 4, "the hourly budget");
    // x = 1010 0101 1…: its fourth one-bit is its eighth bit, so 8 probes, 8 bits learned.
    assert_eq!(probes, 8);
    assert!(up - lo >= 1 << 28, "narrowed to [{lo}, {up})");
    wait_log(&s2, "refusal budget spent");
    wait_log(&s2, "is blocked: 4 refusals within an hour");
    // A restart keeps the book: still blocked.
    drop(s2);
    let s2 = Server::start(&env.path("."), "s2-again", &{
        let mut a = vec!["serve-s2"];
        a.extend_from_slice(&args);
        a
    });
    let mut chan = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    assert!(!try_hello(&mut chan, &pk), "blocked after a restart");
    // The operator looks and clears; S1 is served again.
    let book = ok(&["s2-refusals", "--state-dir", &state]);
    assert!(
        book.contains("S1: 4 refusals") && book.contains("BLOCKED"),
        "{book}"
    );
    let cleared = ok(&["s2-refusals", "--state-dir", &state, "--clear", "S1"]);
    assert!(cleared.contains("cleared S1 (4 refusals"), "{cleared}");
    let mut chan = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    assert!(
        try_hello(&mut chan, &pk),
        "served after the operator cleared it"
    );
}

#[test]
fn servers_refuse_to_start_beside_the_ca_key_and_run_from_their_kits() {
    // The tenants issue: the walk-through handed both servers the pki/ directory holding
    // ca.key, and a certificate minted with it (role s1) was accepted by S2.
    let env = Env::new();
    let dir = env.path("pki");
    ok_pki(&dir);
    // Each kit holds ca.crt and the party's pair only.
    for (stem, files) in [
        ("s1", ["ca.crt", "s1.crt", "s1.key"]),
        ("s2", ["ca.crt", "s2.crt", "s2.key"]),
        (
            "owner-owner",
            ["ca.crt", "owner-owner.crt", "owner-owner.key"],
        ),
    ] {
        let mut got: Vec<String> = std::fs::read_dir(dir.join(stem))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        got.sort();
        assert_eq!(got, files, "{stem}");
    }
    let root = s(&dir);
    let err = fail(&[
        "serve-s2",
        "--state-dir",
        &env.p("s2-state"),
        "--pki",
        &root,
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(
        err.contains("ca.key is readable beside this server's TLS files")
            && err.contains("--allow-ca-key"),
        "{err}"
    );
    let err = fail(&[
        "serve-s1",
        "--pki",
        &root,
        "--s2",
        &closed_port(),
        "--state-dir",
        &env.p("st"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("ca.key is readable"), "{err}");
    // From its kit, S2 runs and serves S1's kit.
    let kit = s(&dir.join("s2"));
    let s2 = env.s2(&["--pki", &kit]);
    let creds = TlsCredentials::load(&TlsFiles::in_pki(&dir.join("s1"), "s1"), Role::S1).unwrap();
    let chan = tls::connect(
        s2.addr.as_str(),
        None,
        creds.client_config(Role::S2).unwrap(),
        &opts(),
    )
    .unwrap();
    stats(chan).unwrap();
}

#[test]
fn an_owner_with_every_file_of_s1_decrypts_nothing_of_another_owner() {
    // The tenants issue: with one key for the whole deployment, owner bob read alice's data set
    // and model out of s1.sqlite and decrypted both with his own files. Here the test PKI's
    // "owner" is the victim and "alice" the attacker; each has a key of its own.
    use smlp::encrypted::EncryptedDataset;
    let env = Env::new();
    let (victim_sk, _) = keys(&env);
    env.keygen("attacker");
    let attacker_sk: SecretKey = paillier::format::open(
        &paillier::format::SECRET_KEY,
        &std::fs::read(env.path("attacker/secret.key")).unwrap(),
    )
    .unwrap();
    // S2 holds both tenants' keys; the attacker's arrives sealed, as the README says.
    let state = env.s2_state();
    ok(&["s2-keys", "--state-dir", &state, "init"]);
    let import = format!("{state}/import.pub");
    let sealed = env.p("attacker.sealed");
    ok(&[
        "seal-key",
        "--secret-key",
        &env.p("attacker/secret.key"),
        "--to",
        &import,
        "--label",
        "alice",
        "--out",
        &sealed,
    ]);
    ok(&[
        "s2-keys",
        "--state-dir",
        &state,
        "add",
        "--insecure-test-key",
        &sealed,
    ]);
    let s2 = env.s2(&["--pool-capacity", "0"]);
    let listed = ok(&["s2-keys", "--state-dir", &state, "list"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    let s1 = env.s1(&s2.addr, &[]);
    let as_attacker = |args: &[&str]| as_owner(&s1.addr, "alice", args);
    ok(&argv(&as_attacker(&[
        "register",
        "--public-key",
        &env.p("attacker/public.key"),
    ])));
    // The victim trains on its data.
    let data = small_encrypted(&env);
    ok(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &data,
        "--hidden",
        "2",
        "--kappa",
        "40",
        "--out",
        &env.p("m.enc"),
    ]);
    // The attacker holds S1's whole database (a backup, a disk, an S1 bug) and its own files.
    let db = rusqlite::Connection::open(env.path("s1-state/s1.sqlite")).unwrap();
    let blobs: Vec<(String, Vec<u8>)> = db
        .prepare("SELECT kind, body FROM objects")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(blobs.iter().any(|(k, _)| k == "ds") && blobs.iter().any(|(k, _)| k == "md"));
    for (i, (kind, body)) in blobs.iter().enumerate() {
        let f = env.p(&format!("stolen-{i}"));
        std::fs::write(&f, body).unwrap();
        // The tool refuses: the file is under another key.
        let err = fail(&[
            "decrypt",
            "--secret-key",
            &env.p("attacker/secret.key"),
            "--in",
            &f,
            "--out",
            &env.p("stolen.out"),
        ]);
        assert!(err.contains("encrypted under key"), "{kind}: {err}");
        // And the arithmetic gives nothing: no ciphertext decrypts under the attacker's key to
        // what the victim's key reads.
        let cts: Vec<Ciphertext> = match kind.as_str() {
            "ds" => {
                let d: EncryptedDataset = smlp::encrypted::open_dataset(body).unwrap();
                d.samples.iter().flat_map(|s| s.x.clone()).collect()
            }
            _ => {
                let m = smlp::encrypted::ModelFile::open(body).unwrap().model;
                m.params.layers.iter().flat_map(|l| l.w.concat()).collect()
            }
        };
        assert!(!cts.is_empty());
        let mut same = 0;
        for c in &cts {
            let truth = victim_sk.decrypt(c).unwrap();
            if attacker_sk.decrypt(c).ok() == Some(truth) {
                same += 1;
            }
        }
        assert_eq!(
            same,
            0,
            "{kind}: the attacker read {same} of {} values",
            cts.len()
        );
        // Nor can the attacker have S1 work on it: the victim's data set is not under a key of
        // his, and the victim's key is not his to register.
        if kind == "ds" {
            let err = fail(&argv(&as_attacker(&["upload", "--data", &f])));
            assert!(err.contains("has not registered"), "{err}");
        }
    }
    let err = fail(&argv(&as_attacker(&[
        "register",
        "--public-key",
        &env.public(),
    ])));
    assert!(err.contains("registered to another owner"), "{err}");
    // S2 refuses a session under a key it does not hold, and one whose key its operator
    // removed, without a restart.
    let third = SecretKey::generate_insecure_for_tests(512, &mut rand::thread_rng()).unwrap();
    let mut chan = dial(&s2.addr, "s1", Role::S1, Role::S2).unwrap();
    assert!(!try_hello(&mut chan, third.public_key()));
    wait_log(
        &s2,
        &format!("S2 holds no key {}", third.public_key().fingerprint()),
    );
    let victim_fp = victim_sk.public_key().fingerprint().to_string();
    ok(&["s2-keys", "--state-dir", &state, "remove", &victim_fp]);
    let err = fail(&[
        "train",
        "--s1",
        &s1.addr,
        "--data",
        &data,
        "--hidden",
        "2",
        "--kappa",
        "40",
        "--out",
        &env.p("m2.enc"),
    ]);
    assert!(err.contains("S2 refused the session"), "{err}");
    assert!(
        s1.log_text()
            .contains(&format!("S2 holds no key {victim_fp}")),
        "{}",
        s1.log_text()
    );
}

#[test]
fn a_revoked_owner_is_refused_by_the_running_s1_and_the_others_are_served() {
    // The tenants issue: a lost owner certificate could only be stopped by replacing the CA.
    let env = Env::new();
    let dir = env.path("pki");
    ok(&[
        "pki",
        "--out",
        &s(&dir),
        "--s1-host",
        "127.0.0.1",
        "--s2-host",
        "127.0.0.1",
        "--owner",
        "owner",
        "--owner",
        "bob",
    ]);
    let s1 = Server::start(
        env.dir.path(),
        "s1",
        &[
            "serve-s1",
            "--s2",
            &closed_port(),
            "--pki",
            &s(&dir.join("s1")),
        ],
    );
    let as_party = |owner: &str| {
        run(&[
            "jobs",
            "--s1",
            &s1.addr,
            "--as",
            owner,
            "--pki",
            &s(&dir.join(format!("owner-{owner}"))),
        ])
    };
    assert!(as_party("owner").status.success());
    assert!(as_party("bob").status.success());
    let out = ok(&["pki", "--out", &s(&dir), "--revoke", "bob"]);
    assert!(out.contains("revoked owner-bob"), "{out}");
    // S1 was not restarted: bob is refused in the handshake, the owner still served.
    let refused = as_party("bob");
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(err.contains("revoked"), "{err}");
    assert!(as_party("owner").status.success());
    let log = wait_log(&s1, "certificate revocation list loaded");
    assert!(log.to_lowercase().contains("revoked"), "{log}");
}

/// What `ClientMsg::Upload` looks like on the wire, with ciphertexts as raw bytes (postcard
/// encodes a byte vector exactly as the ciphertext's big-endian bytes).
#[derive(serde::Serialize)]
enum RawClientMsg {
    #[allow(dead_code)]
    Hello {
        version: u16,
    },
    #[allow(dead_code)]
    Register {
        public_key: PublicKey,
    },
    Upload {
        name: String,
        data: RawDataset,
    },
}

#[derive(serde::Serialize)]
struct RawDataset {
    fingerprint: paillier::Fingerprint,
    frac_bits: u32,
    classes: usize,
    features: usize,
    samples: Vec<RawSample>,
    /// The recorded training settings (none here).
    settings: Option<()>,
}

#[derive(serde::Serialize)]
struct RawSample {
    x: Vec<Vec<u8>>,
    y: Vec<Vec<u8>>,
}

#[test]
fn an_upload_costs_s1_a_small_multiple_of_its_frame_and_empty_ciphertexts_are_refused() {
    // The tenants issue: an upload of samples of empty ciphertexts (one wire byte each) took
    // S1's peak memory from 45 MB to 818 MB for a 15.9 MiB frame.
    use smlp_cli::proto::{ClientMsg, ServerMsg, VERSION};
    let env = Env::new();
    let s1 = env.s1(&closed_port(), &[]);
    let (_, pk) = keys(&env);
    let upload = |samples: usize, features: usize, ct: &dyn Fn(usize) -> Vec<u8>| {
        let mut chan = dial(&s1.addr, "owner-owner", Role::Owner, Role::S1).unwrap();
        chan.send_msg(&ClientMsg::Hello { version: VERSION })
            .unwrap();
        assert!(matches!(
            chan.recv_msg::<ServerMsg>().unwrap(),
            ServerMsg::Welcome { .. }
        ));
        let msg = RawClientMsg::Upload {
            name: "big".into(),
            data: RawDataset {
                fingerprint: pk.fingerprint(),
                frac_bits: 16,
                classes: 2,
                features,
                samples: (0..samples)
                    .map(|i| RawSample {
                        x: (0..features).map(|j| ct(i * features + j)).collect(),
                        y: vec![ct(usize::MAX - i)],
                    })
                    .collect(),
                settings: None,
            },
        };
        let frame = postcard::to_stdvec(&msg).unwrap();
        chan.send_frame(&frame).unwrap();
        let reply = chan.recv_msg::<ServerMsg>().unwrap();
        (frame.len(), reply)
    };
    // Empty ciphertexts: refused while decoding.
    let before = peak_rss_kib(s1.pid());
    let (bytes, reply) = upload(64, 4096, &|_| Vec::new());
    match reply {
        // (postcard keeps no decoder message: the error says only that the request is malformed.)
        ServerMsg::Error(e) => assert!(e.contains("malformed message"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let grown = peak_rss_kib(s1.pid()).saturating_sub(before);
    assert!(
        grown * 1024 < 4 * bytes as u64,
        "{grown} KiB for a {bytes}-byte frame"
    );
    // A 16 MiB frame of well-formed ciphertexts (random values below n², 32 bytes each, the
    // shortest accepted): decoded, checked under the key, sealed and stored.
    let mut rng = rand::thread_rng();
    let cts: Vec<Vec<u8>> = (0..1024)
        .map(|_| {
            let mut b = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rng, &mut b);
            b[0] |= 0x80;
            b
        })
        .collect();
    let before = peak_rss_kib(s1.pid());
    let (bytes, reply) = upload(4000, 127, &|i| cts[i % cts.len()].clone());
    assert!(bytes > 16 << 20, "{bytes}");
    assert!(matches!(reply, ServerMsg::Stored(_)), "{reply:?}");
    let grown = peak_rss_kib(s1.pid()).saturating_sub(before) * 1024;
    let ratio = grown as f64 / bytes as f64;
    eprintln!("S1's peak memory grew by {grown} bytes for a {bytes}-byte frame: {ratio:.2}×");
    assert!(ratio < 8.0, "{ratio:.2}× the frame");
}
