#![allow(dead_code)]
//! Test harness: an in-memory channel and a running S2 on a thread.

use paillier::Encrypt;
use paillier::{Ciphertext, PublicKey, SecretKey};
use rand::SeedableRng;
use secure_ops::{Channel, ChannelError, Profile, S2Options, S2Service, SessionParams, S1};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::OnceLock;

pub struct Mem(Sender<Vec<u8>>, Receiver<Vec<u8>>);

impl Channel for Mem {
    fn send_frame(&mut self, f: &[u8]) -> Result<(), ChannelError> {
        self.0.send(f.to_vec()).map_err(|_| ChannelError::Closed)
    }
    fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.1.recv().map_err(|_| ChannelError::Closed)
    }
}

pub fn pair() -> (Mem, Mem) {
    let (a, b) = channel();
    let (c, d) = channel();
    (Mem(a, d), Mem(c, b))
}

/// A 512-bit key shared by the tests of one binary (small keys: the properties do not depend on
/// key size).
pub fn key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap()
    })
}

pub type Running =
    std::thread::JoinHandle<Result<secure_ops::SessionSummary, secure_ops::ProtocolError>>;

/// A fresh S2 thread holding `sk` (no randomizer pool) and S1's end of its channel.
pub fn spawn_s2(sk: &SecretKey) -> (Mem, Running) {
    let (c1, c2) = pair();
    let sk2 = sk.clone();
    let h = std::thread::spawn(move || S2Service::new(sk2, S2Options::without_pool()).serve(c2));
    (c1, h)
}

/// S1 connected to a fresh S2 thread holding `sk`.
pub fn session_with(sk: &SecretKey, params: SessionParams) -> (S1<Mem>, Running) {
    let (c1, h) = spawn_s2(sk);
    let s1 = S1::connect(sk.public_key().clone(), c1, params).unwrap();
    (s1, h)
}

pub fn session(params: SessionParams) -> (S1<Mem>, Running) {
    session_with(key(), params)
}

pub fn enc(pk: &PublicKey, v: &[i64]) -> Vec<Ciphertext> {
    let mut rng = rand::thread_rng();
    v.iter().map(|&x| pk.encrypt_i64(x, &mut rng)).collect()
}

pub fn dec(v: &[Ciphertext]) -> Vec<i128> {
    v.iter()
        .map(|c| i128::try_from(key().decrypt(c).unwrap()).unwrap())
        .collect()
}

/// Small session parameters for tests: ℓ = 40, f = 16, κ = 40.
#[allow(dead_code)]
pub fn small_params(profile: Profile) -> SessionParams {
    SessionParams {
        value_bits: 40,
        frac_bits: 16,
        kappa: 40,
        profile,
        ..SessionParams::default()
    }
}
