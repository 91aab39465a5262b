//! A compact, versioned binary container for files and messages:
//!
//! ```text
//! "SMLP" | tag (4 bytes) | version (u16 LE) | payload length (u64 LE) | payload (postcard) | SHA-256(header ‖ payload)[..8]
//! ```
//!
//! Every decoding failure (wrong magic or tag, unknown version, truncation, checksum mismatch,
//! malformed payload) is an [`Error`], never a panic.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

/// Magic bytes at the start of every smlp file.
pub const MAGIC: [u8; 4] = *b"SMLP";
const HEADER: usize = 4 + 4 + 2 + 8;
const CHECKSUM: usize = 8;

/// What a file holds: its tag, a human name for errors, and the version this build writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileKind {
    /// Four-byte tag after the magic.
    pub tag: [u8; 4],
    /// Name used in error messages.
    pub name: &'static str,
    /// Version this build writes and reads.
    pub version: u16,
}

/// A Paillier public key file.
pub const PUBLIC_KEY: FileKind = FileKind {
    tag: *b"PKEY",
    name: "public key",
    version: 1,
};
/// A Paillier secret key file.
pub const SECRET_KEY: FileKind = FileKind {
    tag: *b"SKEY",
    name: "secret key",
    version: 1,
};
/// A DGK public key file (n, g, h, u, t).
pub const DGK_PUBLIC_KEY: FileKind = FileKind {
    tag: *b"DPUB",
    name: "DGK public key",
    version: 1,
};
/// A DGK secret key file (the public key and p, q, v_p, v_q).
pub const DGK_SECRET_KEY: FileKind = FileKind {
    tag: *b"DSEC",
    name: "DGK secret key",
    version: 1,
};
/// A list of ciphertexts under one key.
pub const CIPHERTEXTS: FileKind = FileKind {
    tag: *b"CTXT",
    name: "ciphertext",
    version: 1,
};

fn checksum(data: &[u8]) -> [u8; CHECKSUM] {
    let d = Sha256::digest(data);
    let mut out = [0u8; CHECKSUM];
    out.copy_from_slice(&d[..CHECKSUM]);
    out
}

/// Serialises `value` into a sealed container of the given kind.
pub fn seal<T: Serialize + ?Sized>(kind: &FileKind, value: &T) -> Result<Vec<u8>> {
    let payload = postcard::to_stdvec(value).map_err(|e| Error::Malformed {
        kind: kind.name,
        detail: e.to_string(),
    })?;
    Ok(seal_payload(kind, &payload))
}

/// Seals an already encoded payload (any bytes: the checksum detects accidents, not attacks, so
/// decoders must survive whatever a sealed payload holds; fuzzers use this).
pub fn seal_payload(kind: &FileKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len() + CHECKSUM);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&kind.tag);
    out.extend_from_slice(&kind.version.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    out
}

/// Opens a sealed container of the given kind.
pub fn open<T: DeserializeOwned>(kind: &FileKind, bytes: &[u8]) -> Result<T> {
    if bytes.len() < 8 || bytes[..4] != MAGIC || bytes[4..8] != kind.tag {
        return Err(Error::BadMagic {
            expected: kind.name,
        });
    }
    if bytes.len() < HEADER {
        return Err(Error::Truncated {
            kind: kind.name,
            expected: HEADER,
            found: bytes.len(),
        });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != kind.version {
        return Err(Error::UnsupportedVersion {
            kind: kind.name,
            found: version,
            supported: kind.version,
        });
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[10..18]);
    let len = u64::from_le_bytes(len);
    let total = (HEADER as u64)
        .saturating_add(len)
        .saturating_add(CHECKSUM as u64);
    if (bytes.len() as u64) < total {
        return Err(Error::Truncated {
            kind: kind.name,
            expected: usize::try_from(total).unwrap_or(usize::MAX),
            found: bytes.len(),
        });
    }
    let total = total as usize;
    if bytes.len() > total {
        return Err(Error::Malformed {
            kind: kind.name,
            detail: "trailing bytes after checksum".into(),
        });
    }
    let body_end = HEADER + len as usize;
    if checksum(&bytes[..body_end]) != bytes[body_end..total] {
        return Err(Error::Checksum { kind: kind.name });
    }
    postcard::from_bytes(&bytes[HEADER..body_end]).map_err(|e| Error::Malformed {
        kind: kind.name,
        detail: e.to_string(),
    })
}

/// Reads and opens a sealed file; I/O errors are reported with the path.
pub fn read_file<T: DeserializeOwned>(
    kind: &FileKind,
    path: &Path,
) -> std::result::Result<T, FileError> {
    let bytes = read_bytes(path)?;
    open(kind, &bytes).map_err(|e| FileError::Format {
        path: path.display().to_string(),
        source: e,
    })
}

/// Opens a sealed container of `kind` written at this build's version, or at the older version
/// `old`, whose payload `Old` is converted with `upgrade` (a file format that grew a field).
pub fn open_upgrading<T: DeserializeOwned, Old: DeserializeOwned>(
    kind: &FileKind,
    old: u16,
    bytes: &[u8],
    upgrade: impl FnOnce(Old) -> T,
) -> Result<T> {
    match open(kind, bytes) {
        Err(Error::UnsupportedVersion { found, .. }) if found == old => {
            let old_kind = FileKind {
                version: old,
                ..*kind
            };
            open::<Old>(&old_kind, bytes).map(upgrade)
        }
        r => r,
    }
}

fn read_bytes(path: &Path) -> std::result::Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(|e| FileError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

/// [`read_file`] with [`open_upgrading`].
pub fn read_file_upgrading<T: DeserializeOwned, Old: DeserializeOwned>(
    kind: &FileKind,
    old: u16,
    path: &Path,
    upgrade: impl FnOnce(Old) -> T,
) -> std::result::Result<T, FileError> {
    let bytes = read_bytes(path)?;
    open_upgrading(kind, old, &bytes, upgrade).map_err(|e| FileError::Format {
        path: path.display().to_string(),
        source: e,
    })
}

/// Seals `value` and writes it atomically (temporary file in the same directory, then rename),
/// so a crash never leaves a half-written file behind.
pub fn write_file<T: Serialize + ?Sized>(
    kind: &FileKind,
    path: &Path,
    value: &T,
) -> std::result::Result<(), FileError> {
    let bytes = seal(kind, value).map_err(|e| FileError::Format {
        path: path.display().to_string(),
        source: e,
    })?;
    // Everything but a public key belongs to the owner alone: secret keys, and ciphertexts that
    // nobody else needs to read.
    write_atomic(path, &bytes, kind.tag != PUBLIC_KEY.tag)
}

/// Writes `bytes` to `path` atomically: into a temporary file created exclusively (`O_EXCL`, a
/// random name, never following a planted link) beside `path`, synced, then renamed over `path`
/// (the rename replaces a link at `path` itself, it does not follow it). With `private` the file
/// is created with mode 0600 on Unix, else 0644 (less the umask). On any error the temporary file
/// is removed and `path` is left as it was.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    private: bool,
) -> std::result::Result<(), FileError> {
    let io = |e| FileError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(if private {
            0o600
        } else {
            0o644
        }));
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    // Make the rename itself durable.
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Operating-system error.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The contents are not a valid file of the expected kind.
    #[error("{path}: {source}")]
    Format {
        path: String,
        #[source]
        source: Error,
    },
}

/// Decoding of sequences with a bound on their length, for types decoded from files and peers.
///
/// serde's `Vec` decoder grows with the input, so a frame of N bytes that encodes N empty inner
/// vectors (one byte each on the wire) becomes N · 24 bytes in memory before any check of the
/// caller runs. Fields decoded through [`bounded::vec`] fail as soon as the announced or actual
/// length passes the bound, and preallocate at most 1024 elements.
pub mod bounded {
    use serde::de::{Deserialize, Deserializer, Error as _, SeqAccess, Visitor};
    use std::fmt;
    use std::marker::PhantomData;

    struct BoundedVisitor<T> {
        max: usize,
        what: &'static str,
        _t: PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for BoundedVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a sequence of at most {} {}", self.max, self.what)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let too_long = || A::Error::custom(format!("more than {} {}", self.max, self.what));
            let hint = seq.size_hint().unwrap_or(0);
            if hint > self.max {
                return Err(too_long());
            }
            let mut out = Vec::with_capacity(hint.min(1024));
            while let Some(v) = seq.next_element()? {
                if out.len() == self.max {
                    return Err(too_long());
                }
                out.push(v);
            }
            Ok(out)
        }
    }

    /// Decodes a `Vec<T>` of at most `max` elements (`what` names them in the error).
    pub fn vec<'de, D, T>(d: D, max: usize, what: &'static str) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        d.deserialize_seq(BoundedVisitor {
            max,
            what,
            _t: PhantomData,
        })
    }
}
