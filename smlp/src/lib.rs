//! smlp (work in progress).
