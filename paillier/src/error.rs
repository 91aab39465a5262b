use thiserror::Error;

/// Everything that can go wrong in the `paillier` crate.
///
/// No function of this crate panics on input that comes from a file or a peer; it returns one of
/// these instead.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// Requested modulus size is not allowed.
    #[error("key size of {bits} bits is not allowed: {reason}")]
    KeySize { bits: u32, reason: &'static str },
    /// A plaintext does not fit the plaintext space Z_n read as signed integers.
    #[error("plaintext does not fit in Z_n: |m| must be at most (n-1)/2")]
    PlaintextOutOfRange,
    /// A real number does not fit the fixed-point range.
    #[error("value {value} does not fit the fixed-point range (|x| < 2^{int_bits} with {frac_bits} fractional bits)")]
    FixedPointRange {
        value: f64,
        int_bits: u32,
        frac_bits: u32,
    },
    /// A real number is NaN or infinite.
    #[error("value is not a finite number")]
    NotFinite,
    /// An integer does not fit the requested machine type.
    #[error("integer does not fit in {0}")]
    IntegerOverflow(&'static str),
    /// A ciphertext is not an element of Z*_{n^2}.
    #[error("invalid ciphertext: not in Z*_(n^2) for this key")]
    InvalidCiphertext,
    /// A DGK ciphertext is not in [1, n) for its key (or not a unit).
    #[error("invalid DGK ciphertext: not in [1, n) for this key")]
    InvalidDgkCiphertext,
    /// A randomness value r is not in Z*_n.
    #[error("invalid encryption randomness: r must be in Z*_n")]
    InvalidRandomness,
    /// A secret key is inconsistent (p, q not matching n, or not valid primes).
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),

    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// Data was encrypted under a different public key.
    #[error("key mismatch: data is for key {found}, this key is {expected}")]
    KeyMismatch { expected: String, found: String },
    /// A file or message does not start with the expected magic bytes.
    #[error("not a {expected} file (bad magic bytes)")]
    BadMagic { expected: &'static str },
    /// A file has a version this build cannot read.
    #[error("unsupported {kind} format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        kind: &'static str,
        found: u16,
        supported: u16,
    },
    /// A file is shorter than its header says.
    #[error("truncated {kind} data: expected {expected} bytes, found {found}")]
    Truncated {
        kind: &'static str,
        expected: usize,
        found: usize,
    },
    /// The checksum of a file does not match its contents.
    #[error("corrupted {kind} data: checksum mismatch")]
    Checksum { kind: &'static str },
    /// Payload could not be decoded.
    #[error("malformed {kind} data: {detail}")]
    Malformed { kind: &'static str, detail: String },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
