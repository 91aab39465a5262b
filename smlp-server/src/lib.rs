//! The servers' room of smlp: S1, the cloud that trains and classifies on ciphertexts, and S2,
//! the crypto server that holds the tenants' secret keys and answers blinded requests.
//!
//! S1: `servers::serve_s1` (listener, owner sessions in `s1`, S2 replicas), `jobs` (the
//! restart-safe job runner; `ray` runs its training jobs on a Ray cluster) and `store` (SQLite: objects, jobs, checkpoints, audit). S2: `s2`
//! (`serve_s2`, profile policy, backend check), `tenants` (the key directory, unsealing) and
//! `refusals` (the refusal book that cuts off a probing S1). `servers` also holds what both
//! share (signals, the ready file). Owners' code and the wire protocol are in `smlp-client`;
//! the `smlp` binary (`smlp-cli`) parses the flags and calls in here.

pub mod jobs;
pub mod ray;
pub mod refusals;
pub mod s1;
pub mod s2;
pub mod servers;
pub mod store;
pub mod tenants;
