//! A tenant's secret key on its way to S2: the sealed-key format and the owner's side of it.
//!
//! The owner never sends its secret key in the clear: S2's operator runs `smlp s2-keys init`,
//! which gives S2 an import key pair (X25519) and hands its public half (`import.pub`) to owners;
//! the owner seals its secret key to it with `smlp seal-key` ([`seal_key`]): HPKE (RFC 9180,
//! base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305), with the key's
//! fingerprint, size, label and the import key's fingerprint bound as associated data. S2 opens
//! it (`smlp_server::tenants::unseal_key`).

use crate::bail;
use crate::error::{CliError, CliResult};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeS, Serializable};
use paillier::format::{read_file, seal, FileKind, SECRET_KEY};
use paillier::{Fingerprint, SecretKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The HPKE suite's key encapsulation.
pub type Kem = X25519HkdfSha256;

/// S2's import public key (`STATE/import.pub`): what owners seal their secret keys to.
pub const IMPORT_PUBLIC: FileKind = FileKind {
    tag: *b"IMPP",
    name: "public import key of S2",
    version: 1,
};
/// A tenant's secret key sealed for one S2 (`smlp seal-key`).
pub const SEALED_KEY: FileKind = FileKind {
    tag: *b"SEAL",
    name: "sealed secret key",
    version: 1,
};

/// The HPKE `info` of a sealed key: binds the context (this tool, this purpose, this version).
pub const INFO: &[u8] = b"smlp tenant secret key for S2, version 1";
#[derive(Serialize, Deserialize)]
pub struct ImportPublic {
    /// The X25519 public key.
    pub key: [u8; 32],
}

/// A secret key sealed for one S2: in the clear, what it is (fingerprint, size, a label) and
/// which import key it is sealed to; sealed, the secret key file's bytes.
#[derive(Serialize, Deserialize)]
pub struct SealedKey {
    /// Fingerprint of the sealed key's public key.
    pub fingerprint: Fingerprint,
    /// Its modulus size.
    pub bits: u32,
    /// The owner's label (shown by `smlp s2-keys list`).
    pub label: String,
    /// Fingerprint of the import public key it is sealed to.
    pub import_key: [u8; 8],
    /// HPKE encapsulated key.
    pub encapped: Vec<u8>,
    /// HPKE ciphertext of the secret key file.
    pub ciphertext: Vec<u8>,
}

impl SealedKey {
    /// The associated data: what is in the clear, bound to the ciphertext.
    pub fn aad(fingerprint: &Fingerprint, bits: u32, label: &str, import_key: &[u8; 8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(24 + label.len());
        aad.extend_from_slice(&fingerprint.0);
        aad.extend_from_slice(&bits.to_be_bytes());
        aad.extend_from_slice(import_key);
        aad.extend_from_slice(label.as_bytes());
        aad
    }
}

/// Short fingerprint of an import public key (first 8 bytes of SHA-256).
pub fn import_fingerprint(key: &[u8; 32]) -> [u8; 8] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(key);
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Longest label of a sealed key.
pub const MAX_LABEL: usize = 64;

/// Seals `sk` for the S2 whose import public key file is `import_pub`.
pub fn seal_key(sk: &SecretKey, import_pub: &Path, label: &str) -> CliResult<Vec<u8>> {
    if label.len() > MAX_LABEL || label.chars().any(|c| c.is_control()) {
        bail!("the label is at most {MAX_LABEL} bytes without control characters");
    }
    let import: ImportPublic = read_file(&IMPORT_PUBLIC, import_pub)?;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&import.key)
        .map_err(|e| CliError(format!("{}: not an import key: {e}", import_pub.display())))?;
    let import_key = import_fingerprint(&import.key);
    let fingerprint = sk.public_key().fingerprint();
    let bits = sk.public_key().bits();
    let plaintext = seal(&SECRET_KEY, sk)?;
    let aad = SealedKey::aad(&fingerprint, bits, label, &import_key);
    let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        INFO,
        &plaintext,
        &aad,
        &mut rand::rngs::OsRng,
    )
    .map_err(|e| CliError(format!("cannot seal the key: {e}")))?;
    Ok(seal(
        &SEALED_KEY,
        &SealedKey {
            fingerprint,
            bits,
            label: label.to_string(),
            import_key,
            encapped: encapped.to_bytes().to_vec(),
            ciphertext,
        },
    )?)
}
