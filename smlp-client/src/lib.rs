//! The data owner's room of smlp: everything an owner runs on its own machine, and the
//! owner↔S1 protocol.
//!
//! An owner generates its key pair (`keys`), seals the secret half for S2 (`seal`), tunes in the
//! clear (`tune`), encrypts its CSV data (`encrypt`), talks to S1 over mutually authenticated
//! TLS (`client`: register, upload, train, classify, jobs; `tls` loads its certificate and makes
//! a deployment's PKI) and decrypts what comes back (`decrypt`). `proto` is the wire protocol
//! between an owner and S1, which S1's server (`smlp-server`) speaks too. The `smlp` binary
//! (`smlp-cli`) and the Python package (`smlp-py`) are thin layers over this crate; it links
//! neither server, nor SQLite.

pub mod client;
pub mod decrypt;
pub mod encrypt;
pub mod error;
pub mod keys;
pub mod proto;
pub mod seal;
pub mod tls;
pub mod tune;
pub mod util;
