//! `smlp keygen` and key loading.

use crate::bail;
use crate::error::{CliResult, Context};
use paillier::format::{read_file, seal, write_atomic, write_file, PUBLIC_KEY, SECRET_KEY};
use paillier::{PublicKey, SecretKey, MIN_SECURE_BITS, MIN_TEST_BITS};
use std::path::{Path, PathBuf};

/// File name of the public key in a key directory.
pub const PUBLIC_FILE: &str = "public.key";
/// File name of the secret key in a key directory.
pub const SECRET_FILE: &str = "secret.key";

/// Generates a key pair of `bits` (at least 2048, or at least 256 with `insecure_test_key`).
pub fn generate_key(bits: u32, insecure_test_key: bool) -> CliResult<SecretKey> {
    Ok(if bits >= MIN_SECURE_BITS {
        SecretKey::generate(bits, &mut rand::rngs::OsRng)?
    } else if insecure_test_key {
        if bits < MIN_TEST_BITS {
            bail!("key size {bits} is below the minimum of {MIN_TEST_BITS} bits, even for tests");
        }
        SecretKey::generate_insecure_for_tests(bits, &mut rand::rngs::OsRng)?
    } else {
        bail!(
            "key size {bits} is below {MIN_SECURE_BITS} bits; pass --insecure-test-key to allow \
             small keys for tests"
        );
    })
}

/// Writes `dir/public.key` and `dir/secret.key` (0600), refusing to overwrite existing files
/// unless `force`; returns both paths.
pub fn write_keys(dir: &Path, sk: &SecretKey, force: bool) -> CliResult<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create key directory {}", dir.display()))?;
    let public = dir.join(PUBLIC_FILE);
    let secret = dir.join(SECRET_FILE);
    if !force {
        for p in [&public, &secret] {
            if p.exists() {
                bail!(
                    "{} already exists; pass --force to overwrite it",
                    p.display()
                );
            }
        }
    }
    let bytes = seal(&SECRET_KEY, sk)?;
    write_atomic(&secret, &bytes, true)?;
    write_file(&PUBLIC_KEY, &public, sk.public_key())?;
    Ok((public, secret))
}

/// Reads a public key file.
pub fn load_public(path: &Path) -> CliResult<PublicKey> {
    Ok(read_file(&PUBLIC_KEY, path)?)
}

/// Reads a secret key file (warns if others may read it).
pub fn load_secret(path: &Path) -> CliResult<SecretKey> {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: {} is readable by other users (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
    Ok(read_file(&SECRET_KEY, path)?)
}
