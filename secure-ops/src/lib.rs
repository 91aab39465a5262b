//! # secure-ops
//!
//! The two-server sub-protocols of smlp, written once against the small [`Channel`] trait so they
//! run over memory (tests) or TCP (deployment). S1 holds the public key and ciphertexts
//! ([`S1`]); S2 holds the secret key and answers blinded requests ([`S2Service`]).
//!
//! Every protocol is batched: one request carries a whole layer's worth of values, and blinded
//! values are packed several to a ciphertext, so S2 decrypts once for many.
//!
//! ```
//! use secure_ops::{S1, S2Service, S2Options, SessionParams, Channel, ChannelError};
//! use paillier::{Encrypt, SecretKey};
//! # use std::sync::mpsc::{channel, Sender, Receiver};
//! # struct Mem(Sender<Vec<u8>>, Receiver<Vec<u8>>);
//! # impl Channel for Mem {
//! #     fn send_frame(&mut self, f: &[u8]) -> Result<(), ChannelError> { self.0.send(f.to_vec()).map_err(|_| ChannelError::Closed) }
//! #     fn recv_frame(&mut self) -> Result<Vec<u8>, ChannelError> { self.1.recv().map_err(|_| ChannelError::Closed) }
//! # }
//! # fn pair() -> (Mem, Mem) { let (a, b) = channel(); let (c, d) = channel(); (Mem(a, d), Mem(c, b)) }
//! let mut rng = rand::thread_rng();
//! let sk = SecretKey::generate_insecure_for_tests(512, &mut rng).unwrap();
//! let pk = sk.public_key().clone();
//! let (c1, c2) = pair(); // any Channel: transport::memory::pair() or TCP
//! let s2_key = sk.clone();
//! let s2 = std::thread::spawn(move || S2Service::new(s2_key, S2Options::default()).serve(c2));
//!
//! let params = SessionParams { value_bits: 32, kappa: 40, ..Default::default() };
//! let mut s1 = S1::connect(pk.clone(), c1, params).unwrap();
//! let x = [pk.encrypt_i64(-7, &mut rng), pk.encrypt_i64(5, &mut rng)];
//! let y = [pk.encrypt_i64(3, &mut rng), pk.encrypt_i64(4, &mut rng)];
//! let prod = s1.mul(&x, &y).unwrap();          // ⟦-21⟧, ⟦20⟧
//! let (relu, deriv) = s1.relu(&x).unwrap();    // ⟦0⟧, ⟦5⟧ and ⟦0⟧, ⟦1⟧
//! s1.close().unwrap();
//! let summary = s2.join().unwrap().unwrap();
//! // The default, strict profile: S2 decrypted one packed ciphertext for the products, one for the
//! // comparison's blinded values, one for ReLU's products and one range check, and evaluated a
//! // garbled circuit of ℓ + 1 = 33 AND gates per compared value, whose one output bit is S1's
//! // coin xor the comparison.
//! assert_eq!(summary.counts.decryptions, 4);
//! assert_eq!(summary.counts.gates, 2 * 33);
//! assert_eq!(summary.counts.zero_tests, 0);
//!
//! // Only the owner of the secret key can look: the products and the exact ReLU.
//! let dec = |cs: &[paillier::Ciphertext]| -> Vec<i64> {
//!     cs.iter().map(|c| sk.decrypt_i64(c).unwrap()).collect()
//! };
//! assert_eq!(dec(&prod), [-21, 20]);
//! assert_eq!(dec(&relu), [0, 5]);
//! assert_eq!(dec(&deriv), [0, 1]);
//! ```

pub mod channel;
mod counts;
mod error;
pub mod messages;
mod params;
mod s1;
mod s2;

pub use channel::{
    Channel, ChannelError, ChannelExt, MessageError, Metered, Traffic, TrafficSnapshot,
};
pub use counts::{OpCounter, OpCounts};
pub use error::ProtocolError;
pub use messages::SubProtocol;
pub use params::{
    dgk_u_serves, pow2, Comparison, Profile, SessionParams, Truncation, MAX_KAPPA, MIN_KAPPA,
    PROTOCOL_VERSION,
};
pub use s1::{
    BitsStep, DivideStep, Divided, Job, KeySwitchStep, Operand, ProductsStep, Reusable, S1Core,
    SignStep, ZeroTestStep, S1,
};
pub use s2::{
    dgk_u_for, generate_dgk_key, hello_key, serve_keyed, S2Observer, S2Options, S2Policy,
    S2Service, S2Session, S2View, SessionSummary, Step, TenantKeys, MAX_REQUEST_OUTPUTS,
    MAX_REQUEST_VALUES, MAX_REQUEST_WORK,
};
