//! S2's refusal budget: refusals (a value out of range, a malformed or over-limit request) counted
//! per S1 identity across sessions and restarts. When an identity has spent its budget
//! (`--max-refusals-per-hour` within an hour, or `--max-refusals` in all) it is refused right
//! after its TLS handshake until the operator clears it (`smlp s2-refusals --state-dir DIR
//! --clear NAME`): it gets at most that many refused answers.
//!
//! Why: each refused request ends its session, so one session answers at most one range question,
//! but an authenticated S1 could reconnect after each refusal and binary-search a value one
//! session at a time (the tenants issue: a 36-bit secret in 36 probes, 0.39 s). With a budget of B
//! refusals an S1 that runs n sessions learns at most log₂ Σ_{k≤B} C(n, k) ≤ B·log₂(e·n/B) bits from
//! S2's range answers; the binary search, refused about every other probe, gets about 2·B bits
//! before it is blocked (8 bits of a 36-bit secret with the default hourly budget of 4, tested).
//!
//! The book is a small JSON file, `DIR/refusals.json` (0600, written through an exclusive
//! temporary file), read and written under an exclusive lock of `DIR/refusals.lock`, so the
//! operator's `--clear` and a running S2 never overwrite each other (`serve-s2` always has a state
//! directory; the library can keep a book in memory only, which a restart forgets).

use serde::{Deserialize, Serialize};
use smlp_client::bail;
use smlp_client::error::{CliError, CliResult, Context};
use smlp_client::util::shown;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One S1 identity's refusals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Refusals since the operator last cleared this identity.
    pub total: u64,
    /// Times (Unix seconds) of the refusals of the last hour.
    pub recent: Vec<u64>,
    /// Why the identity is blocked (`None`: it is served).
    pub blocked: Option<String>,
}

/// The book: records by S1 identity (the certificate's name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    /// Records by identity.
    pub peers: BTreeMap<String, Record>,
}

/// Largest book file read (a damaged or planted file is refused, not loaded whole).
const MAX_BOOK_BYTES: u64 = 16 << 20;

/// The budget and where its book is kept.
pub struct RefusalBudget {
    dir: Option<PathBuf>,
    per_hour: u64,
    total: u64,
    memory: Mutex<Book>,
}

impl RefusalBudget {
    /// A budget of `per_hour` refusals in any hour and `total` in all per identity, its book in
    /// `dir` (created 0700 if missing) or in memory.
    pub fn new(dir: Option<&Path>, per_hour: u64, total: u64) -> CliResult<Self> {
        if let Some(d) = dir {
            smlp_client::util::private_dir(d)?;
            // Read once now: a damaged book stops S2 at start, not at its first refusal.
            with_book(d, |_| Ok(()))?;
        }
        Ok(RefusalBudget {
            dir: dir.map(Path::to_path_buf),
            per_hour: per_hour.max(1),
            total: total.max(1),
            memory: Mutex::new(Book::default()),
        })
    }

    /// Whether the book is kept across restarts.
    pub fn persistent(&self) -> bool {
        self.dir.is_some()
    }

    fn update<T>(&self, f: impl FnOnce(&mut Book) -> T) -> CliResult<T> {
        match &self.dir {
            Some(d) => with_book(d, |b| Ok(f(b))),
            None => {
                let mut book = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                Ok(f(&mut book))
            }
        }
    }

    /// `Err(why)` if `peer` is blocked (checked right after the handshake).
    pub fn check(&self, peer: &str) -> CliResult<()> {
        let blocked = self.update(|b| b.peers.get(peer).and_then(|r| r.blocked.clone()))?;
        match blocked {
            Some(why) => bail!(
                "S1 identity {} is blocked: {why}; S2's operator clears it with `smlp s2-refusals --state-dir DIR --clear {}`",
                shown(peer, 64),
                shown(peer, 64)
            ),
            None => Ok(()),
        }
    }

    /// Counts a refusal of `peer` at `now` (Unix seconds); returns whether the identity is now
    /// blocked.
    pub fn record(&self, peer: &str, now: u64) -> CliResult<bool> {
        let (per_hour, total) = (self.per_hour, self.total);
        self.update(|b| {
            let r = b.peers.entry(peer.to_string()).or_default();
            r.total = r.total.saturating_add(1);
            r.recent.retain(|&t| t.saturating_add(3600) > now);
            r.recent.push(now);
            if r.blocked.is_none() {
                if r.recent.len() as u64 >= per_hour {
                    r.blocked = Some(format!(
                        "{} refusals within an hour (budget {per_hour})",
                        r.recent.len()
                    ));
                } else if r.total >= total {
                    r.blocked = Some(format!("{} refusals (budget {total})", r.total));
                }
            }
            r.blocked.is_some()
        })
    }
}

/// Runs `f` on the book of `dir` under its lock, writing it back if `f` changed it.
fn with_book<T>(dir: &Path, f: impl FnOnce(&mut Book) -> CliResult<T>) -> CliResult<T> {
    let lock_path = dir.join("refusals.lock");
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let lock = options
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let path = dir.join("refusals.json");
    let before = read_book(&path)?;
    let mut book = before.clone();
    let out = f(&mut book)?;
    if book != before {
        let json = serde_json::to_vec_pretty(&book)
            .map_err(|e| CliError(format!("encoding the refusal book: {e}")))?;
        paillier::format::write_atomic(&path, &json, true)?;
    }
    drop(lock);
    Ok(out)
}

fn read_book(path: &Path) -> CliResult<Book> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Book::default()),
        Err(e) => return Err(CliError(format!("reading {}: {e}", path.display()))),
    };
    let len = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_BOOK_BYTES {
        bail!(
            "{} is {len} bytes, more than a refusal book can be ({MAX_BOOK_BYTES})",
            path.display()
        );
    }
    serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
        CliError(format!(
            "{} is not a refusal book ({e}); move it away to start a new one",
            path.display()
        ))
    })
}

/// Shows S2's refusal book, or clears an identity's record: the operator's side of the budget.
#[derive(clap::Args, Debug, Clone)]
pub struct S2RefusalsArgs {
    /// S2's state directory (serve-s2 --state-dir).
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Clear this S1 identity's record (and unblock it).
    #[arg(long, value_name = "NAME")]
    pub clear: Option<String>,
}

/// `smlp s2-refusals`.
pub fn s2_refusals(args: &S2RefusalsArgs) -> CliResult<()> {
    if !args.state_dir.is_dir() {
        bail!("{} is not a directory", args.state_dir.display());
    }
    let text = with_book(&args.state_dir, |book| {
        if let Some(name) = &args.clear {
            return match book.peers.remove(name) {
                Some(r) => Ok(format!(
                    "cleared {} ({} refusals{})",
                    shown(name, 64),
                    r.total,
                    r.blocked
                        .map_or(String::new(), |w| format!("; was blocked: {w}"))
                )),
                None => bail!("no record of {} in the refusal book", shown(name, 64)),
            };
        }
        if book.peers.is_empty() {
            return Ok("no refusals recorded".to_string());
        }
        let mut out = String::new();
        for (name, r) in &book.peers {
            out.push_str(&format!(
                "{}: {} refusals, {} in the last hour as recorded, {}\n",
                shown(name, 64),
                r.total,
                r.recent.len(),
                r.blocked
                    .as_deref()
                    .map_or("served".to_string(), |w| format!("BLOCKED: {w}"))
            ));
        }
        Ok(out.trim_end().to_string())
    })?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_blocks_past_the_hourly_and_total_limits_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let b = RefusalBudget::new(Some(dir.path()), 2, 3).unwrap();
        b.check("S1").unwrap();
        // The second refusal within the hour spends the hourly budget of 2.
        assert!(!b.record("S1", 1000).unwrap());
        b.check("S1").unwrap();
        assert!(b.record("S1", 1001).unwrap());
        let e = b.check("S1").unwrap_err();
        assert!(e.0.contains("2 refusals within an hour"), "{}", e.0);
        // Another identity is not affected; a new budget on the same directory (a restart)
        // still blocks S1.
        b.check("S1-other").unwrap();
        let again = RefusalBudget::new(Some(dir.path()), 2, 3).unwrap();
        assert!(again.check("S1").is_err());
        // The operator clears it.
        s2_refusals(&S2RefusalsArgs {
            state_dir: dir.path().to_path_buf(),
            clear: Some("S1".into()),
        })
        .unwrap();
        again.check("S1").unwrap();
        // Spread over hours, the total budget still ends it: the third refusal spends it.
        for (i, t) in [0u64, 4000].iter().enumerate() {
            assert!(!again.record("S1", 10_000 + t).unwrap(), "refusal {i}");
        }
        assert!(again.record("S1", 30_000).unwrap());
        assert!(again
            .check("S1")
            .unwrap_err()
            .0
            .contains("3 refusals (budget 3)"));
    }

    #[cfg(unix)]
    #[test]
    fn the_book_and_its_lock_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let b = RefusalBudget::new(Some(dir.path()), 2, 3).unwrap();
        b.record("S1", 1).unwrap();
        for f in ["refusals.json", "refusals.lock"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }

    #[test]
    fn a_damaged_book_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("refusals.json"), b"{not json").unwrap();
        let e = RefusalBudget::new(Some(dir.path()), 2, 3).err().unwrap();
        assert!(e.0.contains("is not a refusal book"), "{}", e.0);
    }

    #[test]
    fn in_memory_budget_blocks_too() {
        let b = RefusalBudget::new(None, 2, 10).unwrap();
        assert!(!b.persistent());
        assert!(!b.record("S1", 5).unwrap());
        assert!(b.record("S1", 6).unwrap());
        assert!(b.check("S1").is_err());
    }
}
