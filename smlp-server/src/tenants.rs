//! A key per tenant: S2's key directory, and how an owner's secret key reaches it.
//!
//! Every data owner has its own Paillier key pair (`smlp keygen`). S2 holds the secret keys of
//! the tenants it serves in `STATE/keys/`, one file per key named by its fingerprint
//! (`<fingerprint>.key`, the format of `secret.key`, 0600). An S1 session names the key it works
//! under in its hello; S2 serves it with that key only, and refuses a key it does not hold. The
//! directory is read at each hello, so the operator adds and removes tenants without
//! restarting S2 (`smlp s2-keys add|remove`); a removed key is refused from the next session on.
//!
//! **Delivery.** The owner never sends its secret key in the clear: `smlp s2-keys init` gives
//! S2 an import key pair (X25519; `STATE/import.key` 0600 and `STATE/import.pub`, which the
//! operator hands to owners), and the owner seals its secret key to it with `smlp seal-key`
//! (`smlp_client::seal`: HPKE, RFC 9180, with the key's fingerprint, size and label bound as
//! associated data); [`unseal_key`] opens it here. The sealed file can
//! travel by any channel; only the S2 that holds the import key opens it (`smlp s2-keys add`),
//! and a changed byte, a file sealed for another S2 or a key whose fingerprint does not match
//! are refused.

use clap::{Args, Subcommand};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, Serializable};
use paillier::format::{open, read_file, seal, write_atomic, FileKind, SECRET_KEY};
use paillier::{Fingerprint, PublicKey, SecretKey, MIN_SECURE_BITS, MIN_TEST_BITS};
use secure_ops::{S2Options, S2Service, TenantKeys};
use serde::{Deserialize, Serialize};
use smlp_client::bail;
use smlp_client::error::{CliError, CliResult, Context};
use smlp_client::seal::{
    hex, import_fingerprint, ImportPublic, Kem, SealedKey, IMPORT_PUBLIC, INFO, MAX_LABEL,
    SEALED_KEY,
};
use smlp_client::util::{private_dir, shown};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// S2's import secret key (`STATE/import.key`, 0600).
pub const IMPORT_SECRET: FileKind = FileKind {
    tag: *b"IMPS",
    name: "secret import key of S2",
    version: 1,
};
/// File names in S2's state directory.
pub const IMPORT_PUBLIC_FILE: &str = "import.pub";
/// File name of the import secret key.
pub const IMPORT_SECRET_FILE: &str = "import.key";
/// The directory of the tenants' secret keys, in S2's state directory.
pub const KEYS_DIR: &str = "keys";
/// Most tenant keys one S2 holds.
pub const MAX_TENANTS: usize = 1024;

#[derive(Serialize, Deserialize)]
struct ImportSecret {
    key: [u8; 32],
}

/// Opens a sealed key with S2's import secret key: the secret key inside, checked against the
/// fingerprint and size the file states.
pub fn unseal_key(state: &Path, sealed: &[u8]) -> CliResult<(SecretKey, String)> {
    let s: SealedKey = open(&SEALED_KEY, sealed)?;
    let (secret, public) = load_import(state)?;
    let ours = import_fingerprint(&public);
    if s.import_key != ours {
        bail!(
            "this key is sealed for another S2 (import key {}, this S2's is {}): seal it with this S2's {IMPORT_PUBLIC_FILE}",
            hex(&s.import_key),
            hex(&ours)
        );
    }
    let sk_r = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret)
        .map_err(|e| CliError(format!("S2's import key is damaged: {e}")))?;
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(&s.encapped)
        .map_err(|_| CliError("the sealed key is damaged (its encapsulated key)".into()))?;
    let aad = SealedKey::aad(&s.fingerprint, s.bits, &s.label, &s.import_key);
    let plain = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk_r,
        &encapped,
        INFO,
        &s.ciphertext,
        &aad,
    )
    .map_err(|_| {
        CliError("the sealed key does not open: it was altered, or sealed for another S2".into())
    })?;
    let sk: SecretKey = open(&SECRET_KEY, &plain)?;
    let pk = sk.public_key();
    if pk.fingerprint() != s.fingerprint || pk.bits() != s.bits {
        bail!(
            "the sealed key is {} ({} bits), but the file says {} ({} bits)",
            pk.fingerprint(),
            pk.bits(),
            s.fingerprint,
            s.bits
        );
    }
    Ok((sk, s.label))
}

fn load_import(state: &Path) -> CliResult<([u8; 32], [u8; 32])> {
    let path = state.join(IMPORT_SECRET_FILE);
    if !path.exists() {
        bail!(
            "{} has no import key: run `smlp s2-keys --state-dir {} init` first",
            state.display(),
            state.display()
        );
    }
    let secret: ImportSecret = read_file(&IMPORT_SECRET, &path)?;
    let public: ImportPublic = read_file(&IMPORT_PUBLIC, &state.join(IMPORT_PUBLIC_FILE))?;
    Ok((secret.key, public.key))
}

/// Path of a tenant key in S2's state directory.
fn key_path(state: &Path, fp: &Fingerprint) -> PathBuf {
    state.join(KEYS_DIR).join(format!("{fp}.key"))
}

fn parse_fingerprint(s: &str) -> Option<Fingerprint> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(Fingerprint(out))
}

/// A tenant key S2 holds, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Fingerprint of its public key.
    pub fingerprint: Fingerprint,
    /// Its file.
    pub path: PathBuf,
}

/// The tenant keys in S2's state directory (file names only: nothing is decrypted or loaded).
pub fn tenants(state: &Path) -> CliResult<Vec<Tenant>> {
    let dir = state.join(KEYS_DIR);
    if !dir.exists() {
        return Ok(vec![]);
    }
    let mut out = vec![];
    for e in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(fp) = name.strip_suffix(".key").and_then(parse_fingerprint) {
            out.push(Tenant {
                fingerprint: fp,
                path: e.path(),
            });
        }
        if out.len() > MAX_TENANTS {
            bail!("{} holds more than {MAX_TENANTS} keys", dir.display());
        }
    }
    out.sort_by_key(|t| t.fingerprint.0);
    Ok(out)
}

/// Manages S2's tenant keys: the import key owners seal to, and the keys S2 holds.
///
/// Changes take effect at the next S1 session; S2 need not be restarted.
#[derive(Args, Debug, Clone)]
pub struct S2KeysArgs {
    /// S2's state directory (serve-s2 --state-dir).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    #[command(subcommand)]
    pub action: KeysAction,
}

/// What `smlp s2-keys` does.
#[derive(Subcommand, Debug, Clone)]
pub enum KeysAction {
    /// Make S2's import key pair (once): DIR/import.key (0600) and DIR/import.pub, which owners
    /// seal their secret keys to (smlp seal-key --to import.pub).
    Init,
    /// Add a tenant's key: a file from `smlp seal-key` (or, with --plain, a secret.key file).
    Add {
        /// The sealed key file (or the secret key file, with --plain).
        file: PathBuf,
        /// The file is an owner's secret.key itself, not sealed (when the operator is the owner).
        #[arg(long)]
        plain: bool,
        /// Accept a key below 2048 bits (down to 256). For tests only: such keys are not secure.
        #[arg(long)]
        insecure_test_key: bool,
    },
    /// List the tenant keys S2 holds.
    List,
    /// Remove a tenant's key: its S1 sessions are refused from the next one on.
    Remove {
        /// The key's fingerprint (16 hex digits, as listed).
        fingerprint: String,
    },
}

/// Runs `smlp s2-keys`.
pub fn s2_keys(args: &S2KeysArgs) -> CliResult<()> {
    let state = &args.state_dir;
    match &args.action {
        KeysAction::Init => {
            let path = init(state)?;
            println!(
                "S2's import key is ready; give {} to the owners (smlp seal-key --to {})",
                path.display(),
                path.display()
            );
        }
        KeysAction::Add {
            file,
            plain,
            insecure_test_key,
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let (sk, label) = if *plain {
                (open::<SecretKey>(&SECRET_KEY, &bytes)?, String::new())
            } else {
                unseal_key(state, &bytes)?
            };
            let fp = add(state, &sk, *insecure_test_key)?;
            println!(
                "S2 now holds key {fp} ({} bits{}); S1 sessions under it are served from the next one on",
                sk.public_key().bits(),
                if label.is_empty() {
                    String::new()
                } else {
                    format!(", {}", shown(&label, MAX_LABEL))
                }
            );
        }
        KeysAction::List => {
            let all = tenants(state)?;
            if all.is_empty() {
                println!("S2 holds no tenant keys (smlp s2-keys add)");
            }
            for t in all {
                println!("{}", t.fingerprint);
            }
        }
        KeysAction::Remove { fingerprint } => {
            let Some(fp) = parse_fingerprint(fingerprint) else {
                bail!(
                    "{} is not a key fingerprint (16 hex digits)",
                    shown(fingerprint, 40)
                );
            };
            let path = key_path(state, &fp);
            if !path.exists() {
                bail!("S2 holds no key {fp}");
            }
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            println!("removed key {fp}: S1 sessions under it are refused from the next one on");
        }
    }
    Ok(())
}

/// Makes S2's import key pair if it has none; returns the public file's path.
pub fn init(state: &Path) -> CliResult<PathBuf> {
    private_dir(state)?;
    let public_path = state.join(IMPORT_PUBLIC_FILE);
    if state.join(IMPORT_SECRET_FILE).exists() {
        return Ok(public_path);
    }
    let (sk, pk) = Kem::gen_keypair(&mut rand::rngs::OsRng);
    let mut secret = [0u8; 32];
    secret.copy_from_slice(&sk.to_bytes());
    let mut public = [0u8; 32];
    public.copy_from_slice(&pk.to_bytes());
    write_atomic(
        &state.join(IMPORT_SECRET_FILE),
        &seal(&IMPORT_SECRET, &ImportSecret { key: secret })?,
        true,
    )?;
    write_atomic(
        &public_path,
        &seal(&IMPORT_PUBLIC, &ImportPublic { key: public })?,
        false,
    )?;
    Ok(public_path)
}

/// Writes `sk` into S2's key directory (0600); returns its fingerprint.
pub fn add(state: &Path, sk: &SecretKey, insecure_test_key: bool) -> CliResult<Fingerprint> {
    let bits = sk.public_key().bits();
    if bits < MIN_SECURE_BITS && !(insecure_test_key && bits >= MIN_TEST_BITS) {
        bail!("the key has {bits} bits, below {MIN_SECURE_BITS}; --insecure-test-key accepts small keys for tests");
    }
    private_dir(state)?;
    private_dir(&state.join(KEYS_DIR))?;
    if tenants(state)?.len() >= MAX_TENANTS {
        bail!("S2 already holds {MAX_TENANTS} keys");
    }
    let fp = sk.public_key().fingerprint();
    write_atomic(&key_path(state, &fp), &seal(&SECRET_KEY, sk)?, true)?;
    Ok(fp)
}

/// Values made from the tenant keys in S2's state directory, by fingerprint: made from the key
/// file when first asked, then kept; dropped, and refused, once the file is gone (the operator's
/// `smlp s2-keys remove` takes effect at the next lookup).
struct KeyCache<T> {
    state: PathBuf,
    entries: Mutex<HashMap<Fingerprint, T>>,
}

impl<T: Clone> KeyCache<T> {
    fn new(state: &Path) -> Self {
        KeyCache {
            state: state.to_path_buf(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value of the key `fp`, made with `make` from its secret key on first use.
    fn get(&self, fp: &Fingerprint, make: impl FnOnce(SecretKey) -> T) -> Result<T, String> {
        let path = key_path(&self.state, fp);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if !path.is_file() {
            entries.remove(fp);
            return Err(format!("S2 holds no key {fp}"));
        }
        if let Some(v) = entries.get(fp) {
            return Ok(v.clone());
        }
        let sk: SecretKey = read_file(&SECRET_KEY, &path).map_err(|e| {
            tracing::error!(key = %fp, error = %e, "cannot load a tenant key");
            format!("S2 cannot load key {fp}")
        })?;
        if sk.public_key().fingerprint() != *fp {
            tracing::error!(key = %fp, found = %sk.public_key().fingerprint(), "a tenant key file holds another key");
            return Err(format!("S2 cannot load key {fp}"));
        }
        let v = make(sk);
        entries.insert(*fp, v.clone());
        Ok(v)
    }
}

/// The public keys of the tenants S2 holds, for key switching (a model shared with another
/// owner), from S2's key directory like its sessions' keys ([`KeyRing`]).
pub fn tenant_keys(state: &Path) -> TenantKeys {
    let cache: KeyCache<PublicKey> = KeyCache::new(state);
    TenantKeys(Arc::new(move |fp: &Fingerprint| {
        cache.get(fp, |sk| sk.public_key().clone()).ok()
    }))
}

/// S2's services, one per tenant key, made when a session first names the key and dropped when
/// its file is gone.
pub struct KeyRing {
    options: S2Options,
    services: KeyCache<Arc<S2Service>>,
}

impl KeyRing {
    /// The keys of `state`, each served with `options` (their DGK key shared by all).
    pub fn new(state: &Path, options: S2Options) -> Self {
        KeyRing {
            options,
            services: KeyCache::new(state),
        }
    }

    /// The service of the key `fp`, if S2 holds it now.
    pub fn service(&self, fp: &Fingerprint) -> Result<Arc<S2Service>, String> {
        self.services.get(fp, |sk| {
            tracing::info!(key = %fp, bits = sk.public_key().bits(), "tenant key loaded");
            Arc::new(S2Service::new(sk, self.options.clone()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use smlp_client::seal::seal_key;

    fn key(seed: u64) -> SecretKey {
        SecretKey::generate_insecure_for_tests(
            512,
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed),
        )
        .unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_at_its_s2_and_not_when_altered() {
        let s2 = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let pub_path = init(s2.path()).unwrap();
        init(other.path()).unwrap();
        let sk = key(1);
        let sealed = seal_key(&sk, &pub_path, "alice").unwrap();
        // The secret key's bytes are not in the file.
        let plain = seal(&SECRET_KEY, &sk).unwrap();
        let tail = &plain[plain.len() - 32..];
        assert!(!sealed.windows(32).any(|w| w == tail));
        let (back, label) = unseal_key(s2.path(), &sealed).unwrap();
        assert_eq!(back.public_key(), sk.public_key());
        assert_eq!(label, "alice");
        // Another S2 cannot open it.
        let e = unseal_key(other.path(), &sealed).err().unwrap();
        assert!(e.0.contains("sealed for another S2"), "{}", e.0);
        // A flipped bit anywhere in the ciphertext or the bound label is refused.
        let mut s: SealedKey = open(&SEALED_KEY, &sealed).unwrap();
        let n = s.ciphertext.len();
        s.ciphertext[n / 2] ^= 1;
        let e = unseal_key(s2.path(), &seal(&SEALED_KEY, &s).unwrap())
            .err()
            .unwrap();
        assert!(e.0.contains("does not open"), "{}", e.0);
        let mut s: SealedKey = open(&SEALED_KEY, &sealed).unwrap();
        s.label = "mallory".into();
        let e = unseal_key(s2.path(), &seal(&SEALED_KEY, &s).unwrap())
            .err()
            .unwrap();
        assert!(e.0.contains("does not open"), "{}", e.0);
        // A file that claims another key is refused even when it opens (the fingerprint is
        // bound; changing it breaks the seal).
        let mut s: SealedKey = open(&SEALED_KEY, &sealed).unwrap();
        s.fingerprint = key(2).public_key().fingerprint();
        assert!(unseal_key(s2.path(), &seal(&SEALED_KEY, &s).unwrap()).is_err());
    }

    #[test]
    fn the_key_directory_is_read_at_each_session_and_small_keys_need_an_opt_in() {
        let s2 = tempfile::tempdir().unwrap();
        let sk = key(3);
        let e = add(s2.path(), &sk, false).err().unwrap();
        assert!(e.0.contains("below 2048"), "{}", e.0);
        let fp = add(s2.path(), &sk, true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&key_path(s2.path(), &fp)), 0o600);
            assert_eq!(mode(&s2.path().join(KEYS_DIR)), 0o700);
        }
        assert_eq!(
            tenants(s2.path()).unwrap(),
            vec![Tenant {
                fingerprint: fp,
                path: key_path(s2.path(), &fp)
            }]
        );
        let ring = KeyRing::new(
            s2.path(),
            S2Options {
                pool_capacity: 0,
                ..S2Options::default()
            },
        );
        let other = key(4).public_key().fingerprint();
        assert_eq!(
            ring.service(&other).err().unwrap(),
            format!("S2 holds no key {other}")
        );
        let svc = ring.service(&fp).unwrap();
        assert!(Arc::ptr_eq(&svc, &ring.service(&fp).unwrap()));
        // Removed: refused from the next session on, without a restart.
        s2_keys(&S2KeysArgs {
            state_dir: s2.path().to_path_buf(),
            action: KeysAction::Remove {
                fingerprint: fp.to_string(),
            },
        })
        .unwrap();
        assert!(ring.service(&fp).is_err());
        assert!(tenants(s2.path()).unwrap().is_empty());
        assert!(parse_fingerprint("../../etc/passwd").is_none());
    }
}
