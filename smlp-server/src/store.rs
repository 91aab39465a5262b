//! S1's store: encrypted data sets, models, predictions, jobs, their checkpoints and an audit log
//! in one SQLite database (`STATE-DIR/s1.sqlite`, through `rusqlite` with SQLite bundled).
//!
//! Everything stored is ciphertext (sealed `smlp` files, exactly the bytes `smlp fetch` writes) or
//! public metadata (owner names from certificates, sizes, states, times). Every change is one
//! transaction in WAL mode with `synchronous = FULL`: a crash at any moment leaves the database
//! consistent and loses no committed object. Every query that reads or changes an owner's object
//! names the owner: another owner's id is "not found", exactly like an unknown one.

use paillier::PublicKey;
use rand::Rng;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};
#[cfg(test)]
use smlp_client::proto::looks_like_id;
use smlp_client::proto::{JobInfo, JobKind, JobState, ObjectInfo, ObjectKind, JOB_PREFIX};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object or job of this owner.
    #[error("not found: {0}")]
    NotFound(String),
    /// The owner's quota would be exceeded.
    #[error(
        "storage quota exceeded: {owner} stores {used} bytes, this would add {adding} (quota \
         {quota} bytes); delete data sets, models or predictions first (smlp list, smlp delete)"
    )]
    Quota {
        /// Owner.
        owner: String,
        /// Bytes stored.
        used: u64,
        /// Bytes the change would add.
        adding: u64,
        /// The quota.
        quota: u64,
    },
    /// The disk (or the store's configured size) is full; nothing was changed.
    #[error("S1's store is full (disk or --max-store-mib); nothing was changed")]
    Full,
    /// The request conflicts with the state of an object (in use by a job, not ended, ...).
    #[error("{0}")]
    Conflict(String),
    /// A per-owner limit of S1's operator (jobs queued or running, work of one job).
    #[error("{0}")]
    Limit(String),
    /// A stored row does not decode (the database was edited or damaged).
    #[error("the store is damaged: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("S1's store failed: {0}")]
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::Full,
            _ => StoreError::Db(e),
        }
    }
}

/// Result alias of the store.
pub type StoreResult<T> = Result<T, StoreError>;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh random id with `prefix` (public: ids name objects, they do not protect them).
fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}-{:012x}",
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('ds', 'md', 'pr')),
    name TEXT NOT NULL,
    summary TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created INTEGER NOT NULL,
    job TEXT,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS objects_owner ON objects (owner, kind, sha256);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('train', 'classify')),
    state TEXT NOT NULL,
    request BLOB NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,
    epochs INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    samples INTEGER NOT NULL,
    created INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER,
    note TEXT,
    result TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    work_ms INTEGER,
    costs BLOB,
    settings TEXT
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner);
CREATE TABLE IF NOT EXISTS job_inputs (
    job TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    object TEXT NOT NULL REFERENCES objects (id) ON DELETE RESTRICT,
    PRIMARY KEY (job, object)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    job TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    position INTEGER NOT NULL,
    saved INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    owner TEXT NOT NULL,
    action TEXT NOT NULL,
    object TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_owner ON audit (owner);
CREATE TABLE IF NOT EXISTS owner_keys (
    fingerprint TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    body BLOB NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS owner_keys_owner ON owner_keys (owner);
CREATE TABLE IF NOT EXISTS shares (
    model TEXT NOT NULL REFERENCES objects (id) ON DELETE CASCADE,
    with_owner TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (model, with_owner)
);
CREATE TABLE IF NOT EXISTS owner_turns (
    owner TEXT PRIMARY KEY,
    turn INTEGER NOT NULL
);
";

/// Most public keys one owner registers.
pub const MAX_KEYS_PER_OWNER: usize = 16;

/// 2: training requests and checkpoints carry the run's loss (protocol version 3); 3: training
/// requests say where their settings came from and jobs keep that line (`settings`, protocol
/// version 5). Older stores are upgraded in place when they are opened ([`upgrade`]).
const SCHEMA_VERSION: &str = "3";

/// Settings of the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of objects one owner may keep (data sets, models, predictions).
    pub quota: u64,
    /// Largest database file (`None`: the disk's size).
    pub max_bytes: Option<u64>,
    /// Test-only fault injection: abort the process inside the Nth checkpoint transaction, after
    /// its write and before its commit.
    pub crash_at_checkpoint: Option<u64>,
    /// Jobs one owner may have queued or running at once.
    pub max_jobs_per_owner: u64,
    /// Jobs of one owner that run at once (the others wait while other owners' jobs run).
    pub max_running_per_owner: u64,
    /// Largest work of one job: epochs × samples (sample passes; 1 × samples to classify).
    pub max_job_work: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            quota: 1 << 30,
            max_bytes: None,
            crash_at_checkpoint: None,
            max_jobs_per_owner: 16,
            max_running_per_owner: 1,
            max_job_work: 10_000_000,
        }
    }
}

/// The store (one connection behind a mutex: SQLite serialises writers anyway).
pub struct Store {
    conn: Mutex<Connection>,
    opts: StoreOptions,
    checkpoints: Mutex<u64>,
    path: PathBuf,
}

/// A job row as the runner needs it.
pub struct JobRow {
    /// Id.
    pub id: String,
    /// Owner.
    pub owner: String,
    /// Kind.
    pub kind: JobKind,
    /// The request (postcard of [`smlp_client::proto::TrainRequest`] or `ClassifyRequest`).
    pub request: Vec<u8>,
}

/// A stored checkpoint.
pub struct CheckpointRow {
    /// Sealed checkpoint file bytes.
    pub body: Vec<u8>,
    /// Epochs done.
    pub epoch: u64,
    /// Position within the next epoch.
    pub position: u64,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn object_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectInfo> {
    let kind: String = row.get("kind")?;
    Ok(ObjectInfo {
        id: row.get("id")?,
        kind: ObjectKind::from_prefix(&kind).unwrap_or(ObjectKind::Dataset),
        name: row.get("name")?,
        summary: row.get("summary")?,
        bytes: to_u64(row.get("bytes")?),
        created: to_u64(row.get("created")?),
    })
}

const JOB_COLUMNS: &str =
    "id, kind, state, epoch, epochs, done, samples, created, started, finished, note, result, \
     work_ms, costs, settings";

fn job_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<JobInfo> {
    let kind: String = row.get("kind")?;
    let state: String = row.get("state")?;
    Ok(JobInfo {
        id: row.get("id")?,
        kind: JobKind::parse(&kind).unwrap_or(JobKind::Train),
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        epoch: to_u64(row.get("epoch")?),
        epochs: to_u64(row.get("epochs")?),
        done: to_u64(row.get("done")?),
        samples: to_u64(row.get("samples")?),
        samples_per_s: 0.0,
        created: to_u64(row.get("created")?),
        started: row.get::<_, Option<i64>>("started")?.map(to_u64),
        finished: row.get::<_, Option<i64>>("finished")?.map(to_u64),
        note: row.get("note")?,
        result: row.get("result")?,
        elapsed_ms: row.get::<_, Option<i64>>("work_ms")?.map(to_u64),
        costs: row
            .get::<_, Option<Vec<u8>>>("costs")?
            .and_then(|b| postcard::from_bytes(&b).ok()),
        settings: row.get("settings")?,
    })
}

/// Longest object and outcome text of an audit row, in characters (escaped, then cut).
pub const MAX_AUDIT_FIELD: usize = 240;

fn audit(
    tx: &Transaction<'_>,
    owner: &str,
    action: &str,
    object: &str,
    outcome: &str,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO audit (at, owner, action, object, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            to_i64(now()),
            owner,
            action,
            smlp_client::util::shown(object, MAX_AUDIT_FIELD),
            smlp_client::util::shown(outcome, MAX_AUDIT_FIELD)
        ],
    )?;
    Ok(())
}

/// What `owner` stores, in bytes: objects, job requests (which may carry initial weights or a
/// checkpoint), checkpoints and audit rows all count toward the quota.
fn used_bytes(tx: &Transaction<'_>, owner: &str) -> StoreResult<u64> {
    let used: i64 = tx.query_row(
        "SELECT (SELECT COALESCE(SUM(bytes), 0) FROM objects WHERE owner = ?1)
              + (SELECT COALESCE(SUM(length(request) + COALESCE(length(settings), 0)), 0)
                   FROM jobs WHERE owner = ?1)
              + (SELECT COALESCE(SUM(length(c.body)), 0) FROM checkpoints c
                   JOIN jobs j ON j.id = c.job WHERE j.owner = ?1)
              + (SELECT COALESCE(SUM(length(object) + length(outcome) + length(action) + 16), 0)
                   FROM audit WHERE owner = ?1)",
        [owner],
        |r| r.get(0),
    )?;
    Ok(to_u64(used))
}

/// A new job to queue.
pub struct NewJob<'a> {
    /// Kind.
    pub kind: JobKind,
    /// The request (postcard), as the runner will decode it.
    pub request: &'a [u8],
    /// Ids of the owner's objects it reads (kept while it is queued or running).
    pub inputs: &'a [&'a str],
    /// Epochs (1 for classification).
    pub epochs: u64,
    /// Samples per epoch.
    pub samples: u64,
    /// A training job's settings and where they came from, one line.
    pub settings: Option<&'a str>,
}

/// A new object to store.
pub struct NewObject<'a> {
    /// Kind.
    pub kind: ObjectKind,
    /// Name.
    pub name: &'a str,
    /// One-line description.
    pub summary: String,
    /// Sealed file bytes.
    pub body: &'a [u8],
}

fn owned_job_state(tx: &Transaction<'_>, owner: &str, id: &str) -> StoreResult<String> {
    tx.query_row(
        "SELECT state FROM jobs WHERE id = ?1 AND owner = ?2",
        params![id, owner],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(id.to_string()))
}

/// Inserts an object row; its id.
fn insert_object(
    tx: &Transaction<'_>,
    owner: &str,
    obj: &NewObject<'_>,
    job: Option<&str>,
) -> StoreResult<ObjectInfo> {
    let info = ObjectInfo {
        id: new_id(obj.kind.prefix()),
        kind: obj.kind,
        name: obj.name.to_string(),
        summary: obj.summary.clone(),
        bytes: obj.body.len() as u64,
        created: now(),
    };
    tx.execute(
        "INSERT INTO objects (id, owner, kind, name, summary, sha256, bytes, created, job, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            info.id,
            owner,
            obj.kind.prefix(),
            info.name,
            info.summary,
            sha256(obj.body),
            to_i64(info.bytes),
            to_i64(info.created),
            job,
            obj.body
        ],
    )?;
    Ok(info)
}

/// Upgrades a store of schema version 1 or 2 in one transaction: each training job's request is
/// re-encoded for this protocol (version 1: with the squared loss those runs followed, and each
/// checkpoint too; both: no origin of its settings) and the jobs gain their `settings` column. A
/// row that does not decode is left as it is: its job fails with "stored request" or "stored
/// checkpoint" when it runs, as it would have before.
fn upgrade(conn: &mut Connection, from: &str) -> StoreResult<()> {
    let tx = conn.transaction()?;
    let request: fn(&[u8]) -> Result<Vec<u8>, postcard::Error> = match from {
        "1" => smlp_client::proto::legacy::upgrade_train_request,
        _ => smlp_client::proto::legacy::upgrade_train_request_v4,
    };
    let requests = reencode(
        &tx,
        "SELECT id, request FROM jobs WHERE kind = 'train'",
        "UPDATE jobs SET request = ?1 WHERE id = ?2",
        |b| request(b).ok(),
    )?;
    let checkpoints = if from == "1" {
        reencode(
            &tx,
            "SELECT job, body FROM checkpoints",
            "UPDATE checkpoints SET body = ?1 WHERE job = ?2",
            |b| smlp_client::proto::legacy::upgrade_checkpoint(b).ok(),
        )?
    } else {
        0
    };
    let has_settings: bool = tx
        .prepare("SELECT 1 FROM pragma_table_info('jobs') WHERE name = 'settings'")?
        .exists([])?;
    if !has_settings {
        tx.execute("ALTER TABLE jobs ADD COLUMN settings TEXT", [])?;
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema'",
        [SCHEMA_VERSION],
    )?;
    tx.commit()?;
    tracing::info!(
        requests,
        checkpoints,
        "store upgraded from schema version {from} to {SCHEMA_VERSION}"
    );
    Ok(())
}

/// Rewrites the blob of every row `select` yields (key, blob) that `f` converts, with `update`
/// (?1 the new blob, ?2 the key). Returns how many rows changed.
fn reencode(
    tx: &Transaction<'_>,
    select: &str,
    update: &str,
    f: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> StoreResult<usize> {
    let rows: Vec<(String, Vec<u8>)> = tx
        .prepare(select)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut changed = 0;
    for (key, old) in rows {
        if let Some(new) = f(&old) {
            tx.execute(update, params![new, key])?;
            changed += 1;
        }
    }
    Ok(changed)
}

fn open_key(body: &[u8]) -> StoreResult<PublicKey> {
    paillier::format::open(&paillier::format::PUBLIC_KEY, body)
        .map_err(|e| StoreError::Corrupt(format!("a stored public key: {e}")))
}

fn sha256(body: &[u8]) -> String {
    format!("{:x}", Sha256::digest(body))
}

impl Store {
    /// Opens (creating if needed) the store in `dir` (created 0700).
    pub fn open(dir: &Path, opts: StoreOptions) -> StoreResult<Store> {
        // The directory 0700 (an error if it cannot be made so), the database 0600 before SQLite
        // opens it: SQLite gives its -wal and -shm files the database's permissions.
        smlp_client::util::private_dir(dir).map_err(|e| StoreError::Conflict(e.0))?;
        let path = dir.join("s1.sqlite");
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .and_then(|_| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                })
                .map_err(|e| {
                    StoreError::Conflict(format!("cannot make {} private: {e}", path.display()))
                })?;
        }
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if let Some(max) = opts.max_bytes {
            let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages = (to_i64(max) / page.max(512)).max(16);
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        conn.execute_batch(SCHEMA)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match version.as_deref() {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(v @ ("1" | "2")) => upgrade(&mut conn, v)?,
            Some(v) => {
                return Err(StoreError::Corrupt(format!(
                    "{} has schema version {v}, this S1 reads version {SCHEMA_VERSION}",
                    path.display()
                )))
            }
        }
        Ok(Store {
            conn: Mutex::new(conn),
            opts,
            checkpoints: Mutex::new(0),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one transaction (committed only if `f` succeeds).
    fn tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = lock(&self.conn);
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Records an event that changes nothing else (a refused request, a fetch).
    /// An audit row of a request (a refusal, a fetch). Rows count toward the owner's quota; an
    /// owner past it gets no more of these rows (the server log still has the event), so a flood
    /// of refused requests fills only that owner's share of the store.
    pub fn audit(&self, owner: &str, action: &str, object: &str, outcome: &str) {
        let written = self.tx(|tx| {
            if used_bytes(tx, owner)? >= self.opts.quota {
                return Ok(false);
            }
            audit(tx, owner, action, object, outcome)?;
            Ok(true)
        });
        match written {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(%owner, action, "owner past its quota: audit row not written")
            }
            Err(e) => tracing::warn!(error = %e, "cannot write the audit log"),
        }
    }

    /// Registers `pk` as a key of `owner` (`Ok(false)`: it already was). A key belongs to the
    /// owner who registered it first: another owner naming it is refused, so no owner's job
    /// runs under another owner's key.
    pub fn register_key(&self, owner: &str, pk: &PublicKey) -> StoreResult<bool> {
        let fp = pk.fingerprint().to_string();
        let body = paillier::format::seal(&paillier::format::PUBLIC_KEY, pk)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.tx(|tx| {
            let holder: Option<String> = tx
                .query_row(
                    "SELECT owner FROM owner_keys WHERE fingerprint = ?1",
                    [&fp],
                    |r| r.get(0),
                )
                .optional()?;
            match holder {
                Some(h) if h == owner => return Ok(false),
                Some(_) => {
                    return Err(StoreError::Conflict(format!(
                        "key {fp} is registered to another owner; generate your own (smlp keygen)"
                    )))
                }
                None => {}
            }
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM owner_keys WHERE owner = ?1",
                [owner],
                |r| r.get(0),
            )?;
            if n as usize >= MAX_KEYS_PER_OWNER {
                return Err(StoreError::Conflict(format!(
                    "owner {owner} already has {MAX_KEYS_PER_OWNER} keys registered"
                )));
            }
            tx.execute(
                "INSERT INTO owner_keys (fingerprint, owner, body, created) VALUES (?1, ?2, ?3, ?4)",
                params![fp, owner, body, to_i64(now())],
            )?;
            audit(tx, owner, "register-key", &fp, "ok")?;
            Ok(true)
        })
    }

    /// Lets `with` classify with `owner`'s model `model` (`Ok(false)`: it already could).
    pub fn share(&self, owner: &str, model: &str, with: &str) -> StoreResult<bool> {
        if with == owner {
            return Err(StoreError::Conflict(
                "a model is always its owner's to use".into(),
            ));
        }
        self.tx(|tx| {
            let ok: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM objects WHERE id = ?1 AND owner = ?2 AND kind = 'md'",
                    params![model, owner],
                    |r| r.get(0),
                )
                .optional()?;
            if ok.is_none() {
                return Err(StoreError::NotFound(model.to_string()));
            }
            let n = tx.execute(
                "INSERT OR IGNORE INTO shares (model, with_owner, created) VALUES (?1, ?2, ?3)",
                params![model, with, to_i64(now())],
            )?;
            audit(tx, owner, "share", model, &format!("with {with}"))?;
            Ok(n == 1)
        })
    }

    /// Ends a share (`Ok(false)`: there was none). Jobs of `with` not yet run are refused when
    /// they start.
    pub fn unshare(&self, owner: &str, model: &str, with: &str) -> StoreResult<bool> {
        self.tx(|tx| {
            let n = tx.execute(
                "DELETE FROM shares WHERE with_owner = ?2 AND model IN
                 (SELECT id FROM objects WHERE id = ?1 AND owner = ?3)",
                params![model, with, owner],
            )?;
            audit(tx, owner, "unshare", model, &format!("with {with}"))?;
            Ok(n == 1)
        })
    }

    /// The models other owners shared with `reader`, their summaries naming the owner.
    pub fn shared_models(&self, reader: &str) -> StoreResult<Vec<ObjectInfo>> {
        let conn = lock(&self.conn);
        let mut st = conn.prepare(
            "SELECT o.id, o.kind, o.name, 'shared by ' || o.owner || ': ' || o.summary AS summary,
                    o.bytes, o.created
             FROM objects o JOIN shares s ON s.model = o.id
             WHERE s.with_owner = ?1 ORDER BY s.created, s.rowid",
        )?;
        let rows = st.query_map([reader], object_info)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A model `reader` may classify with: its own, or one shared with it. Returns the model's
    /// owner and its body; any other id is "not found".
    pub fn usable_model(&self, reader: &str, model: &str) -> StoreResult<(String, Vec<u8>)> {
        let conn = lock(&self.conn);
        conn.query_row(
            "SELECT o.owner, o.body FROM objects o WHERE o.id = ?1 AND o.kind = 'md'
             AND (o.owner = ?2 OR EXISTS
                  (SELECT 1 FROM shares s WHERE s.model = o.id AND s.with_owner = ?2))",
            params![model, reader],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(model.to_string()))
    }

    /// The key `fp` if `owner` registered it.
    pub fn owner_key(
        &self,
        owner: &str,
        fp: &paillier::Fingerprint,
    ) -> StoreResult<Option<PublicKey>> {
        let conn = lock(&self.conn);
        let body: Option<Vec<u8>> = conn
            .query_row(
                "SELECT body FROM owner_keys WHERE fingerprint = ?1 AND owner = ?2",
                params![fp.to_string(), owner],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| open_key(&b)).transpose()
    }

    /// The keys `owner` registered, oldest first.
    pub fn owner_keys(&self, owner: &str) -> StoreResult<Vec<PublicKey>> {
        let conn = lock(&self.conn);
        let mut st =
            conn.prepare("SELECT body FROM owner_keys WHERE owner = ?1 ORDER BY created, rowid")?;
        let rows = st.query_map([owner], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|b| open_key(&b?)).collect()
    }

    /// Stores an upload of `owner` (quota checked in the same transaction). An identical object
    /// of the same owner and kind is reused: `(info, false)`.
    pub fn put_object(&self, owner: &str, obj: NewObject<'_>) -> StoreResult<(ObjectInfo, bool)> {
        let sha = sha256(obj.body);
        let size = obj.body.len() as u64;
        self.tx(|tx| {
            let existing = tx
                .query_row(
                    "SELECT * FROM objects WHERE owner = ?1 AND kind = ?2 AND sha256 = ?3",
                    params![owner, obj.kind.prefix(), sha],
                    object_info,
                )
                .optional()?;
            if let Some(info) = existing {
                audit(tx, owner, "upload", &info.id, "reused an identical object")?;
                return Ok((info, false));
            }
            let used = used_bytes(tx, owner)?;
            if used.saturating_add(size) > self.opts.quota {
                return Err(StoreError::Quota {
                    owner: owner.to_string(),
                    used,
                    adding: size,
                    quota: self.opts.quota,
                });
            }
            let info = insert_object(tx, owner, &obj, None)?;
            audit(tx, owner, "store", &info.id, &format!("{} bytes", size))?;
            Ok((info, true))
        })
    }

    /// An object of `owner` of the given kind (any kind if `None`) with its body.
    pub fn get_object(
        &self,
        owner: &str,
        id: &str,
        kind: Option<ObjectKind>,
    ) -> StoreResult<(ObjectInfo, Vec<u8>)> {
        let conn = lock(&self.conn);
        let row = conn
            .query_row(
                "SELECT *, body FROM objects WHERE id = ?1 AND owner = ?2",
                params![id, owner],
                |r| Ok((object_info(r)?, r.get::<_, Vec<u8>>("body")?)),
            )
            .optional()?;
        match row {
            Some((info, body)) if kind.is_none_or(|k| k == info.kind) => Ok((info, body)),
            _ => Err(StoreError::NotFound(id.to_string())),
        }
    }

    /// The owner's objects of a kind, oldest first.
    pub fn list_objects(&self, owner: &str, kind: ObjectKind) -> StoreResult<Vec<ObjectInfo>> {
        let conn = lock(&self.conn);
        let mut st = conn.prepare(
            "SELECT id, kind, name, summary, bytes, created FROM objects
             WHERE owner = ?1 AND kind = ?2 ORDER BY created, rowid",
        )?;
        let rows = st.query_map(params![owner, kind.prefix()], object_info)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes an object of `owner` (refused while a queued or running job uses it) or an ended
    /// job (with its checkpoint; its results stay).
    pub fn delete(&self, owner: &str, id: &str) -> StoreResult<String> {
        self.tx(|tx| {
            if id.starts_with(JOB_PREFIX) && id[JOB_PREFIX.len()..].starts_with('-') {
                let state = owned_job_state(tx, owner, id)?;
                if !JobState::parse(&state).is_some_and(JobState::ended) {
                    return Err(StoreError::Conflict(format!(
                        "job {id} is {state}: cancel it first (smlp cancel {id})"
                    )));
                }
                tx.execute("DELETE FROM jobs WHERE id = ?1", [id])?;
                audit(tx, owner, "delete", id, "ok")?;
                return Ok(format!("deleted job {id}"));
            }
            let exists: Option<String> = tx
                .query_row(
                    "SELECT kind FROM objects WHERE id = ?1 AND owner = ?2",
                    params![id, owner],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound(id.to_string()));
            }
            let users: Vec<String> = tx
                .prepare(
                    "SELECT jobs.id FROM job_inputs JOIN jobs ON jobs.id = job_inputs.job
                     WHERE job_inputs.object = ?1 AND jobs.state IN ('queued', 'running')",
                )?
                .query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if let Some(j) = users.first() {
                return Err(StoreError::Conflict(format!(
                    "{id} is in use by job {j}, which has not ended: cancel it first or wait"
                )));
            }
            // Ended jobs keep their record, not the input.
            tx.execute("DELETE FROM job_inputs WHERE object = ?1", [id])?;
            tx.execute("DELETE FROM objects WHERE id = ?1", [id])?;
            audit(tx, owner, "delete", id, "ok")?;
            Ok(format!("deleted {id}"))
        })
    }

    /// Queues a job of `owner` reading `inputs` (checked to be the owner's in this transaction).
    pub fn submit(&self, owner: &str, job: NewJob<'_>) -> StoreResult<JobInfo> {
        let NewJob {
            kind,
            request,
            inputs,
            epochs,
            samples,
            settings,
        } = job;
        let id = new_id(JOB_PREFIX);
        let work = epochs.saturating_mul(samples);
        if work > self.opts.max_job_work {
            return Err(StoreError::Limit(format!(
                "the job's work, {epochs} epoch(s) × {samples} samples = {work} sample passes, is above this S1's limit of {} (--max-job-work)",
                self.opts.max_job_work
            )));
        }
        self.tx(|tx| {
            let open: i64 = tx.query_row(
                "SELECT COUNT(*) FROM jobs WHERE owner = ?1 AND state IN ('queued', 'running')",
                [owner],
                |r| r.get(0),
            )?;
            if to_u64(open) >= self.opts.max_jobs_per_owner {
                return Err(StoreError::Limit(format!(
                    "owner {owner} already has {open} jobs queued or running, this S1's limit (--max-jobs-per-owner); wait for one to end or cancel one"
                )));
            }
            for input in inputs {
                let ok: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM objects WHERE id = ?1 AND owner = ?2",
                        params![input, owner],
                        |r| r.get(0),
                    )
                    .optional()?;
                if ok.is_none() {
                    return Err(StoreError::NotFound(input.to_string()));
                }
            }
            let used = used_bytes(tx, owner)?;
            let adding = (request.len() + settings.map_or(0, str::len)) as u64;
            if used.saturating_add(adding) > self.opts.quota {
                return Err(StoreError::Quota {
                    owner: owner.to_string(),
                    used,
                    adding,
                    quota: self.opts.quota,
                });
            }
            tx.execute(
                "INSERT INTO jobs (id, owner, kind, state, request, epochs, samples, created, settings)
                 VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    owner,
                    kind.name(),
                    request,
                    to_i64(epochs),
                    to_i64(samples),
                    to_i64(now()),
                    settings
                ],
            )?;
            for input in inputs {
                tx.execute(
                    "INSERT OR IGNORE INTO job_inputs (job, object) VALUES (?1, ?2)",
                    params![id, input],
                )?;
            }
            audit(tx, owner, "submit", &id, kind.name())?;
            Ok(())
        })?;
        self.job(owner, &id)
    }

    /// A job of `owner`.
    pub fn job(&self, owner: &str, id: &str) -> StoreResult<JobInfo> {
        let conn = lock(&self.conn);
        conn.query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1 AND owner = ?2"),
            params![id, owner],
            job_info,
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// The owner's jobs, oldest first.
    pub fn jobs(&self, owner: &str) -> StoreResult<Vec<JobInfo>> {
        let conn = lock(&self.conn);
        let mut st = conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE owner = ?1 ORDER BY seq"
        ))?;
        let rows = st.query_map([owner], job_info)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// At start-up: every job left running by a stopped or crashed S1 is queued again (it resumes
    /// from its checkpoint). Returns how many.
    pub fn requeue_running(&self) -> StoreResult<usize> {
        self.tx(|tx| {
            let n = tx.execute(
                "UPDATE jobs SET state = 'queued', note = 'resumed after S1 restarted'
                 WHERE state = 'running'",
                [],
            )?;
            Ok(n)
        })
    }

    /// Takes the oldest queued job and marks it running.
    pub fn claim_next(&self) -> StoreResult<Option<JobRow>> {
        self.tx(|tx| {
            // Round robin between owners: the oldest queued job of the owner whose turn came
            // longest ago (or never), among owners below their running limit.
            let row = tx
                .query_row(
                    "SELECT j.id, j.owner, j.kind, j.request FROM jobs j
                     LEFT JOIN owner_turns t ON t.owner = j.owner
                     WHERE j.state = 'queued'
                       AND (SELECT COUNT(*) FROM jobs r
                            WHERE r.owner = j.owner AND r.state = 'running') < ?1
                     ORDER BY COALESCE(t.turn, 0), j.seq LIMIT 1",
                    [to_i64(self.opts.max_running_per_owner)],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Vec<u8>>(3)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, owner, kind, request)) = row else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE jobs SET state = 'running', runs = runs + 1,
                 started = COALESCE(started, ?2) WHERE id = ?1",
                params![id, to_i64(now())],
            )?;
            tx.execute(
                "INSERT INTO owner_turns (owner, turn)
                 VALUES (?1, (SELECT COALESCE(MAX(turn), 0) + 1 FROM owner_turns))
                 ON CONFLICT (owner) DO UPDATE SET turn = excluded.turn",
                [&owner],
            )?;
            audit(tx, &owner, "run", &id, "started")?;
            let kind = JobKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("job {id} has kind {kind}")))?;
            Ok(Some(JobRow {
                id,
                owner,
                kind,
                request,
            }))
        })
    }

    /// Sets a running job's note (what it waits for), or clears it.
    pub fn set_note(&self, id: &str, note: Option<&str>) -> StoreResult<()> {
        self.tx(|tx| {
            tx.execute("UPDATE jobs SET note = ?2 WHERE id = ?1", params![id, note])?;
            Ok(())
        })
    }

    /// Saves a job's checkpoint (replacing the previous one) and its progress, in one
    /// transaction; only while the job is running.
    pub fn save_checkpoint(
        &self,
        id: &str,
        epoch: u64,
        position: u64,
        body: &[u8],
    ) -> StoreResult<()> {
        let n = {
            let mut c = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
            *c += 1;
            *c
        };
        self.tx(|tx| {
            tx.execute(
                "INSERT INTO checkpoints (job, epoch, position, saved, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (job) DO UPDATE SET epoch = ?2, position = ?3, saved = ?4, body = ?5",
                params![id, to_i64(epoch), to_i64(position), to_i64(now()), body],
            )?;
            let changed = tx.execute(
                "UPDATE jobs SET epoch = ?2, done = ?3 WHERE id = ?1 AND state = 'running'",
                params![id, to_i64(epoch), to_i64(position)],
            )?;
            if changed == 0 {
                return Err(StoreError::Conflict(format!("job {id} is no longer running")));
            }
            if self.opts.crash_at_checkpoint == Some(n) {
                // Fault injection for the tests: the checkpoint is written, not committed.
                tracing::error!(job = id, checkpoint = n, "injected crash before the commit");
                std::process::abort();
            }
            Ok(())
        })
    }

    /// A job's checkpoint, if any.
    pub fn checkpoint(&self, id: &str) -> StoreResult<Option<CheckpointRow>> {
        let conn = lock(&self.conn);
        Ok(conn
            .query_row(
                "SELECT body, epoch, position FROM checkpoints WHERE job = ?1",
                [id],
                |r| {
                    Ok(CheckpointRow {
                        body: r.get(0)?,
                        epoch: to_u64(r.get(1)?),
                        position: to_u64(r.get(2)?),
                    })
                },
            )
            .optional()?)
    }

    /// The latest checkpoint of `owner`'s job `id`.
    pub fn owner_checkpoint(&self, owner: &str, id: &str) -> StoreResult<Vec<u8>> {
        self.job(owner, id)?;
        self.checkpoint(id)?
            .map(|c| c.body)
            .ok_or_else(|| StoreError::Conflict(format!("job {id} has no checkpoint (yet)")))
    }

    /// Ends a running job with its result, stored in the same transaction (not counted against
    /// the quota: results are what the owner asked for). A job cancelled meanwhile stays
    /// cancelled and its result is dropped.
    pub fn finish(
        &self,
        job: &JobRow,
        result: NewObject<'_>,
        elapsed_ms: u64,
        costs: Option<&smlp::encrypted::Costs>,
    ) -> StoreResult<Option<String>> {
        let costs = costs.and_then(|c| postcard::to_stdvec(c).ok());
        self.tx(|tx| {
            let state: String =
                tx.query_row("SELECT state FROM jobs WHERE id = ?1", [&job.id], |r| {
                    r.get(0)
                })?;
            if state != "running" {
                return Ok(None);
            }
            let id = insert_object(tx, &job.owner, &result, Some(&job.id))?.id;
            tx.execute(
                "UPDATE jobs SET state = 'done', finished = ?2, result = ?3, note = NULL,
                 epoch = epochs, done = 0, work_ms = ?4, costs = ?5 WHERE id = ?1",
                params![job.id, to_i64(now()), id, to_i64(elapsed_ms), costs],
            )?;
            audit(tx, &job.owner, "finish", &job.id, &format!("done: {id}"))?;
            Ok(Some(id))
        })
    }

    /// Ends a running job with an error.
    pub fn fail(&self, job: &JobRow, why: &str) -> StoreResult<()> {
        self.tx(|tx| {
            tx.execute(
                "UPDATE jobs SET state = 'failed', finished = ?2, note = ?3
                 WHERE id = ?1 AND state = 'running'",
                params![job.id, to_i64(now()), why],
            )?;
            audit(tx, &job.owner, "finish", &job.id, &format!("failed: {why}"))
        })
    }

    /// Cancels `owner`'s job if it has not ended; returns the message for the owner.
    pub fn cancel(&self, owner: &str, id: &str) -> StoreResult<String> {
        self.tx(|tx| {
            let state = owned_job_state(tx, owner, id)?;
            if JobState::parse(&state).is_some_and(JobState::ended) {
                return Ok(format!("job {id} has already ended ({state})"));
            }
            tx.execute(
                "UPDATE jobs SET state = 'cancelled', finished = ?2, note = 'cancelled by the owner'
                 WHERE id = ?1",
                params![id, to_i64(now())],
            )?;
            tx.execute("DELETE FROM checkpoints WHERE job = ?1", [id])?;
            audit(tx, owner, "cancel", id, &format!("was {state}"))?;
            Ok(format!("cancelled job {id}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, quota: u64) -> Store {
        Store::open(
            dir,
            StoreOptions {
                quota,
                ..StoreOptions::default()
            },
        )
        .unwrap()
    }

    fn obj(body: &[u8]) -> NewObject<'_> {
        NewObject {
            kind: ObjectKind::Dataset,
            name: "d",
            summary: "s".into(),
            body,
        }
    }

    /// The state directory is 0700 and the database with its WAL files 0600 (the tenants issue
    /// found them 0644), also when the directory and an old database were made open.
    #[cfg(unix)]
    #[test]
    fn the_store_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(state.join("s1.sqlite"), b"").unwrap();
        std::fs::set_permissions(
            state.join("s1.sqlite"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let st = store(&state, 1 << 20);
        st.put_object("alice", obj(&[1; 10])).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        for f in ["s1.sqlite", "s1.sqlite-wal", "s1.sqlite-shm"] {
            assert_eq!(mode(&state.join(f)), 0o600, "{f}");
        }
    }

    /// Job requests and audit rows count toward the owner's quota (the tenants issue: refused
    /// requests grew the store by megabytes of audit rows outside any quota), and an owner past
    /// the quota fills no more of the store; another owner is not affected.
    #[test]
    fn job_requests_and_audit_rows_count_toward_the_quota() {
        let dir = tempfile::tempdir().unwrap();
        let st = store(dir.path(), 4000);
        let (ds, _) = st.put_object("alice", obj(&[7u8; 1000])).unwrap();
        // A 2 KiB request fits (1000 + 2048 < 4000), a second one does not.
        st.submit(
            "alice",
            NewJob {
                kind: JobKind::Classify,
                request: &[1u8; 2048],
                inputs: &[&ds.id],
                epochs: 1,
                samples: 1,
                settings: None,
            },
        )
        .unwrap();
        let e = st
            .submit(
                "alice",
                NewJob {
                    kind: JobKind::Classify,
                    request: &[1u8; 2048],
                    inputs: &[&ds.id],
                    epochs: 1,
                    samples: 1,
                    settings: None,
                },
            )
            .unwrap_err();
        assert!(matches!(e, StoreError::Quota { .. }), "{e}");
        // Refusal rows: each is cut to MAX_AUDIT_FIELD characters, and they stop at the quota.
        let huge = "x".repeat(1 << 20);
        for _ in 0..100 {
            st.audit("alice", "fetch", &huge, &huge);
        }
        let conn = lock(&st.conn);
        let (rows, longest): (i64, i64) = conn
            .query_row(
                "SELECT COUNT(*), MAX(length(object)) FROM audit WHERE owner = 'alice'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        drop(conn);
        assert!(longest < 300, "{longest}");
        assert!(rows < 10, "{rows} audit rows past a 4000-byte quota");
        // Bob's share is his own.
        st.put_object("bob", obj(&[8u8; 3000])).unwrap();
    }

    /// A store of schema version 1 (protocol 2: no loss in a run's configuration) is upgraded when
    /// opened: its training request and checkpoint read as this version's, with the squared loss
    /// those runs followed; the rest of the job is untouched.
    #[test]
    fn schema_1_store_is_upgraded_in_place() {
        use paillier::format::{open, seal, FileKind};
        use secure_ops::Profile;
        use serde::Serialize;
        use smlp::encrypted::{Checkpoint, EncryptedModel, CHECKPOINT};
        use smlp::{FixedParams, Loss, Params, Shape};
        use smlp_client::proto::TrainRequest;

        // The layouts of version 2, written as an S1 of that version wrote them.
        #[derive(Serialize)]
        struct ConfigV2 {
            epochs: u64,
            batch: usize,
            seed: u64,
        }
        #[derive(Serialize)]
        struct CheckpointV2 {
            model: EncryptedModel,
            config: ConfigV2,
            position: usize,
        }
        #[derive(Serialize)]
        struct RequestV2 {
            dataset: String,
            hidden: Vec<usize>,
            fixed: FixedParams,
            config: ConfigV2,
            profile: Profile,
            kappa: u32,
            initial: Option<Params<paillier::Ciphertext>>,
            resume: Option<CheckpointV2>,
        }
        // Any odd 256-bit modulus serves to make ciphertexts (S1's code never holds a key pair).
        let n = (paillier::BigUint::from(1u8) << 255u32) + 1u32 + (1u64 << 40);
        let pk = &paillier::PublicKey::from_modulus(&n).unwrap();
        let shape = Shape::new(vec![2, 1]).unwrap();
        let fixed = FixedParams::default();
        let model = EncryptedModel {
            fingerprint: pk.fingerprint(),
            shape: shape.clone(),
            fixed,
            profile: Profile::Strict,
            classes: 2,
            epochs_trained: 1,
            params: smlp::encrypted::encrypt_params(pk, &Params::filled(&shape, 5i128)).unwrap(),
        };
        let config = || ConfigV2 {
            epochs: 4,
            batch: 2,
            seed: 9,
        };
        let request = postcard::to_stdvec(&RequestV2 {
            dataset: "ds-000000000001".into(),
            hidden: vec![],
            fixed,
            config: config(),
            profile: Profile::Strict,
            kappa: 80,
            initial: None,
            resume: Some(CheckpointV2 {
                model: model.clone(),
                config: config(),
                position: 0,
            }),
        })
        .unwrap();
        let v2 = FileKind {
            version: 2,
            ..CHECKPOINT
        };
        let ckpt = seal(
            &v2,
            &CheckpointV2 {
                model: model.clone(),
                config: config(),
                position: 2,
            },
        )
        .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = store(dir.path(), 1 << 20);
            let (d, _) = s.put_object("alice", obj(&[1; 8])).unwrap();
            let job = s
                .submit(
                    "alice",
                    NewJob {
                        kind: JobKind::Train,
                        request: &request,
                        inputs: &[&d.id],
                        epochs: 4,
                        samples: 6,
                        settings: None,
                    },
                )
                .unwrap();
            let c = lock(&s.conn);
            c.execute(
                "INSERT INTO checkpoints (job, epoch, position, saved, body) VALUES (?1, 1, 2, 0, ?2)",
                params![job.id, ckpt],
            )
            .unwrap();
            c.execute("UPDATE meta SET value = '1' WHERE key = 'schema'", [])
                .unwrap();
            job.id
        };
        // This version cannot read the old bytes as they are ...
        assert!(postcard::from_bytes::<TrainRequest>(&request).is_err());
        assert!(open::<Checkpoint>(&CHECKPOINT, &ckpt).is_err());

        // ... and reads them after the upgrade.
        let s = store(dir.path(), 1 << 20);
        let row = s.claim_next().unwrap().expect("the queued job");
        assert_eq!(row.id, id);
        let req: TrainRequest = postcard::from_bytes(&row.request).unwrap();
        assert_eq!(
            (
                req.config.epochs,
                req.config.batch,
                req.config.seed,
                req.config.loss
            ),
            (4, 2, 9, Loss::Squared)
        );
        assert_eq!((req.dataset.as_str(), req.kappa), ("ds-000000000001", 80));
        let resume = req.resume.expect("the resumed checkpoint");
        assert_eq!(resume.config, req.config);
        assert_eq!(resume.model.params, model.params);
        let stored = s.checkpoint(&id).unwrap().expect("the checkpoint");
        let c: Checkpoint = open(&CHECKPOINT, &stored.body).unwrap();
        assert_eq!((c.position, c.config.loss), (2, Loss::Squared));
        assert_eq!(c.model.params, model.params);
        drop(s);
        // Opened again: already version 2, nothing to do.
        store(dir.path(), 1 << 20);
    }

    /// A store of schema version 2 (protocols 3 and 4: no origin of a job's settings, no
    /// `settings` column) is upgraded when opened: its queued training request reads as this
    /// version's with an empty origin, the job gains the column (empty), and new jobs keep theirs.
    #[test]
    fn schema_2_store_is_upgraded_in_place() {
        use secure_ops::Profile;
        use serde::Serialize;
        use smlp::encrypted::{Checkpoint, TrainConfig};
        use smlp::{FixedParams, Loss, Params};
        use smlp_client::proto::TrainRequest;

        #[derive(Serialize)]
        struct RequestV4 {
            dataset: String,
            hidden: Vec<usize>,
            fixed: FixedParams,
            config: TrainConfig,
            profile: Profile,
            kappa: u32,
            initial: Option<Params<paillier::Ciphertext>>,
            resume: Option<Checkpoint>,
        }
        let config = TrainConfig {
            epochs: 3,
            batch: 4,
            seed: 7,
            loss: Loss::SmoothHinge,
        };
        let request = postcard::to_stdvec(&RequestV4 {
            dataset: "ds-000000000002".into(),
            hidden: vec![5],
            fixed: FixedParams::default(),
            config: config.clone(),
            profile: Profile::Strict,
            kappa: 80,
            initial: None,
            resume: None,
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let s = store(dir.path(), 1 << 20);
            let (d, _) = s.put_object("alice", obj(&[1; 8])).unwrap();
            let job = s
                .submit(
                    "alice",
                    NewJob {
                        kind: JobKind::Train,
                        request: &request,
                        inputs: &[&d.id],
                        epochs: 3,
                        samples: 6,
                        settings: None,
                    },
                )
                .unwrap();
            let c = lock(&s.conn);
            c.execute_batch(
                "ALTER TABLE jobs DROP COLUMN settings;
                 UPDATE meta SET value = '2' WHERE key = 'schema';",
            )
            .unwrap();
            job.id
        };
        assert!(postcard::from_bytes::<TrainRequest>(&request).is_err());

        let s = store(dir.path(), 1 << 20);
        assert_eq!(s.job("alice", &id).unwrap().settings, None);
        let row = s.claim_next().unwrap().expect("the queued job");
        let req: TrainRequest = postcard::from_bytes(&row.request).unwrap();
        assert_eq!(
            (req.config, req.hidden, req.origin),
            (config, vec![5], String::new())
        );
        let (d, _) = s.put_object("alice", obj(&[2; 8])).unwrap();
        let line = "hidden 5 — η from the request";
        let job = s
            .submit(
                "alice",
                NewJob {
                    kind: JobKind::Train,
                    request: b"r",
                    inputs: &[&d.id],
                    epochs: 1,
                    samples: 1,
                    settings: Some(line),
                },
            )
            .unwrap();
        assert_eq!(job.settings.as_deref(), Some(line));
        drop(s);
        store(dir.path(), 1 << 20);
    }

    #[test]
    fn jobs_are_taken_round_robin_between_owners_within_per_owner_limits() {
        // The tenants issue: thirty long jobs from alice queued bob's one-epoch job behind them
        // (one FIFO queue, no per-owner limit).
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(
            dir.path(),
            StoreOptions {
                max_jobs_per_owner: 3,
                max_running_per_owner: 1,
                max_job_work: 1000,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let (da, _) = s.put_object("alice", obj(b"alice's")).unwrap();
        let (db, _) = s.put_object("bob", obj(b"bob's")).unwrap();
        let submit = |owner: &str, ds: &str, epochs: u64, samples: u64| {
            s.submit(
                owner,
                NewJob {
                    kind: JobKind::Train,
                    request: b"req",
                    inputs: &[ds],
                    epochs,
                    samples,
                    settings: None,
                },
            )
        };
        let a: Vec<String> = (0..3)
            .map(|_| submit("alice", &da.id, 10, 100).unwrap().id)
            .collect();
        // A fourth job of alice's, and a job above the work bound, are refused.
        let e = submit("alice", &da.id, 1, 1).unwrap_err();
        assert!(e.to_string().contains("--max-jobs-per-owner"), "{e}");
        let e = submit("bob", &db.id, 11, 100).unwrap_err();
        assert!(e.to_string().contains("1100 sample passes"), "{e}");
        let b = submit("bob", &db.id, 1, 100).unwrap().id;
        // Alice queued first and runs first; bob's job is next, ahead of her other two, which
        // wait for her running one.
        let first = s.claim_next().unwrap().unwrap();
        assert_eq!(first.id, a[0]);
        let second = s.claim_next().unwrap().unwrap();
        assert_eq!(second.id, b);
        assert!(
            s.claim_next().unwrap().is_none(),
            "one running job per owner"
        );
        s.fail(&first, "done with it").unwrap();
        let third = s.claim_next().unwrap().unwrap();
        assert_eq!(third.id, a[1]);
        s.fail(&second, "done with it").unwrap();
        s.fail(&third, "done with it").unwrap();
        // Bob queues again, after alice's last job: his last turn is older than hers, so his
        // job goes first.
        let b2 = submit("bob", &db.id, 1, 100).unwrap().id;
        assert_eq!(s.claim_next().unwrap().unwrap().id, b2);
        assert!(s.claim_next().unwrap().is_some_and(|j| j.id == a[2]));
    }

    #[test]
    fn owners_are_isolated_and_quota_holds() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 200);
        let (a, new) = s.put_object("alice", obj(&[1; 60])).unwrap();
        assert!(new && looks_like_id(&a.id));
        // The same bytes again: reused, not stored twice.
        let (a2, new) = s.put_object("alice", obj(&[1; 60])).unwrap();
        assert!(!new && a2.id == a.id);
        // Over quota: refused, nothing stored.
        let e = s.put_object("alice", obj(&[2; 60])).unwrap_err();
        // (60 bytes of data and the audit rows of its upload.)
        assert!(
            matches!(e, StoreError::Quota { used, .. } if (60..200).contains(&used)),
            "{e}"
        );
        assert_eq!(
            s.list_objects("alice", ObjectKind::Dataset).unwrap().len(),
            1
        );
        // Bob's quota is his own; he cannot see, use or delete Alice's object.
        s.put_object("bob", obj(&[2; 60])).unwrap();
        assert!(matches!(
            s.get_object("bob", &a.id, None),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.delete("bob", &a.id),
            Err(StoreError::NotFound(_))
        ));
        let e = s
            .submit(
                "bob",
                NewJob {
                    kind: JobKind::Train,
                    request: b"r",
                    inputs: &[&a.id],
                    epochs: 1,
                    samples: 1,
                    settings: None,
                },
            )
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound(_)));
        assert!(s.get_object("alice", &a.id, None).is_ok());
        // An input in use by a queued job cannot be deleted; after cancelling, it can.
        let j = s
            .submit(
                "alice",
                NewJob {
                    kind: JobKind::Train,
                    request: b"r",
                    inputs: &[&a.id],
                    epochs: 2,
                    samples: 60,
                    settings: None,
                },
            )
            .unwrap();
        assert_eq!(j.state, JobState::Queued);
        assert!(matches!(
            s.cancel("bob", &j.id),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.delete("alice", &a.id),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.delete("alice", &j.id),
            Err(StoreError::Conflict(_))
        ));
        s.cancel("alice", &j.id).unwrap();
        s.delete("alice", &a.id).unwrap();
        s.delete("alice", &j.id).unwrap();
        assert!(s.jobs("alice").unwrap().is_empty());
    }

    #[test]
    fn running_jobs_are_requeued_and_checkpoints_replace_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), 1000);
        let (a, _) = s.put_object("alice", obj(&[1; 10])).unwrap();
        let j1 = s
            .submit(
                "alice",
                NewJob {
                    kind: JobKind::Train,
                    request: b"one",
                    inputs: &[&a.id],
                    epochs: 2,
                    samples: 10,
                    settings: None,
                },
            )
            .unwrap();
        let j2 = s
            .submit(
                "alice",
                NewJob {
                    kind: JobKind::Train,
                    request: b"two",
                    inputs: &[&a.id],
                    epochs: 2,
                    samples: 10,
                    settings: None,
                },
            )
            .unwrap();
        let row = s.claim_next().unwrap().unwrap();
        assert_eq!(
            (row.id.as_str(), row.request.as_slice()),
            (j1.id.as_str(), &b"one"[..])
        );
        s.save_checkpoint(&row.id, 0, 4, b"ck1").unwrap();
        s.save_checkpoint(&row.id, 1, 0, b"ck2").unwrap();
        drop(s);
        // A new S1 on the same directory: the running job is queued again, first in line.
        let s = store(dir.path(), 1000);
        assert_eq!(s.requeue_running().unwrap(), 1);
        let row = s.claim_next().unwrap().unwrap();
        assert_eq!(row.id, j1.id);
        let ck = s.checkpoint(&row.id).unwrap().unwrap();
        assert_eq!(
            (ck.body.as_slice(), ck.epoch, ck.position),
            (&b"ck2"[..], 1, 0)
        );
        let info = s.job("alice", &j1.id).unwrap();
        assert_eq!(
            (info.state, info.epoch, info.done),
            (JobState::Running, 1, 0)
        );
        let res = s
            .finish(
                &row,
                NewObject {
                    kind: ObjectKind::Model,
                    name: "m",
                    summary: "x".into(),
                    body: b"model",
                },
                5,
                None,
            )
            .unwrap()
            .unwrap();
        let (info, body) = s
            .get_object("alice", &res, Some(ObjectKind::Model))
            .unwrap();
        assert_eq!(
            (info.kind, body.as_slice()),
            (ObjectKind::Model, &b"model"[..])
        );
        assert_eq!(
            s.job("alice", &j1.id).unwrap().result.as_deref(),
            Some(res.as_str())
        );
        // A cancelled running job keeps its state when its worker finishes.
        let row2 = s.claim_next().unwrap().unwrap();
        assert_eq!(row2.id, j2.id);
        s.cancel("alice", &j2.id).unwrap();
        assert!(s.finish(&row2, obj(b"late"), 1, None).unwrap().is_none());
        assert_eq!(s.job("alice", &j2.id).unwrap().state, JobState::Cancelled);
        // Audit log: who did what.
        let conn = Connection::open(s.path()).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE owner = 'alice'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(n >= 7, "{n}");
    }

    #[test]
    fn a_full_store_refuses_cleanly_and_keeps_its_objects() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(
            dir.path(),
            StoreOptions {
                quota: u64::MAX,
                max_bytes: Some(256 << 10),
                ..StoreOptions::default()
            },
        )
        .unwrap();
        let (a, _) = s.put_object("alice", obj(&[1; 50_000])).unwrap();
        let e = s.put_object("alice", obj(&[2; 400_000])).unwrap_err();
        assert!(matches!(e, StoreError::Full), "{e:?}");
        assert_eq!(
            s.list_objects("alice", ObjectKind::Dataset).unwrap().len(),
            1
        );
        assert_eq!(s.get_object("alice", &a.id, None).unwrap().1.len(), 50_000);
        assert!(looks_like_id("job-0123456789ab") && !looks_like_id("model.enc"));
    }
}
