//! The durable operation-result store: what a coordinator knows about the operations it ran,
//! kept in one redb file so results survive a restart, expire after a TTL and stay bounded
//! in number. It also persists the handle counter so handles never repeat.
//!
//! What does not live here: running operations and talking to hosts (coordination), handle
//! syntax ([`crate::ops::handle`]), printing results (the CLI).
//!
//! # Layout on disk
//!
//! One redb database, five tables, values CBOR (ciborium):
//!
//! | table                              | key                    | value                      |
//! |------------------------------------|------------------------|----------------------------|
//! | `werify_meta`                      | `"schema_version"`, `"next_counter"` | `u64`         |
//! | `werify_operations`                | handle                 | the record without hosts   |
//! | `werify_host_results`              | (handle, `"IP:PORT"`)  | [`HostReport`]             |
//! | `werify_operations_by_submit_time` | (submitted ms, handle) | `()`                       |
//! | `werify_unfinished`                | handle                 | `()`                       |
//!
//! Host results have their own rows so that recording one answer costs one small write,
//! whatever the number of hosts; the two index tables make [`Store::expire`] and
//! [`Store::unfinished`] cheap without decoding every record.
//!
//! # Durability and blocking
//!
//! Every method that changes something is one redb write transaction committed with
//! immediate durability (fsync) before it returns: once it returns `Ok`, a crash loses
//! nothing, and a crash in the middle loses only that one change. **All methods block the
//! calling thread on disk I/O** (an fsync is typically 0.1–10 ms). From async code call them
//! through `tokio::task::spawn_blocking`; [`Store`] is a cheap `Clone` (an `Arc`) and
//! `Send + Sync`, so move a clone into the closure. Write transactions are serialized by
//! redb; reads run concurrently with them.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ops::handle::Handle;
use crate::rpc::protocol::{HostReport, OperationReport};

/// Counters and the schema marker.
const META: TableDefinition<&str, u64> = TableDefinition::new("werify_meta");
/// Handle → [`StoredOperation`] (CBOR).
const OPERATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("werify_operations");
/// (handle, host) → [`HostReport`] (CBOR).
const HOST_RESULTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("werify_host_results");
/// (submitted_unix_ms, handle): the expiry order, oldest first.
const BY_SUBMIT_TIME: TableDefinition<(u64, &str), ()> =
    TableDefinition::new("werify_operations_by_submit_time");
/// Handles of operations that have not been [finished](Store::finish).
const UNFINISHED: TableDefinition<&str, ()> = TableDefinition::new("werify_unfinished");

/// The names of all our tables, to tell our file from someone else's.
const OUR_TABLES: [&str; 5] = [
    "werify_meta",
    "werify_operations",
    "werify_host_results",
    "werify_operations_by_submit_time",
    "werify_unfinished",
];

const SCHEMA_VERSION_KEY: &str = "schema_version";
const NEXT_COUNTER_KEY: &str = "next_counter";
/// Bump when the layout or the encoding of a value changes incompatibly.
const SCHEMA_VERSION: u64 = 1;
/// The first counter a fresh store hands out, as in the original tool (`gxm1`).
const FIRST_COUNTER: u64 = 1;
/// redb's page cache (read cache and write buffer together). Its default (1 GiB) is sized
/// for databases far larger than ours; results are written once and read rarely (the OS
/// page cache still holds the file). The cache fills as the file grows and its pages stay
/// on the heap, so it is kept at 256 KiB: 64 pages, enough for a commit's B-tree path.
const CACHE_BYTES: usize = 256 * 1024;

/// Default time results are kept: a day, enough to read them the morning after.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Default cap on stored operations; at a few KiB each, tens of MiB at most.
pub const DEFAULT_MAX_RECORDS: usize = 10_000;

/// Everything a coordinator keeps about one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// The operation's name, as given to the client.
    pub handle: Handle,
    /// `"IP:PORT"` of the coordinating node.
    pub coordinator: String,
    /// When the coordinator accepted the operation (Unix time, ms). Expiry counts from here.
    pub submitted_unix_ms: u64,
    /// When the coordinator stops waiting for answers (Unix time, ms).
    pub deadline_unix_ms: u64,
    /// When the operation ended (all hosts answered or failed), `None` while it runs.
    pub ended_unix_ms: Option<u64>,
    /// The check names of the operation, in file order.
    pub check_names: Vec<String>,
    /// Per targeted host (`"IP:PORT"`), what it answered so far.
    pub hosts: BTreeMap<String, HostReport>,
}

impl OperationRecord {
    /// Whether [`Store::finish`] has been called for this operation.
    pub fn is_finished(&self) -> bool {
        self.ended_unix_ms.is_some()
    }
}

impl From<OperationRecord> for OperationReport {
    fn from(rec: OperationRecord) -> OperationReport {
        OperationReport {
            handle: rec.handle.into(),
            coordinator: rec.coordinator,
            submitted_unix_ms: rec.submitted_unix_ms,
            deadline_unix_ms: rec.deadline_unix_ms,
            ended_unix_ms: rec.ended_unix_ms,
            check_names: rec.check_names,
            hosts: rec.hosts,
        }
    }
}

/// How long and how many operations the store keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Operations submitted longer ago than this are dropped by [`Store::expire`].
    pub ttl: Duration,
    /// At most this many operations are kept; the oldest (by submission) go first.
    /// Must be at least 1.
    pub max_records: usize,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits {
            ttl: DEFAULT_TTL,
            max_records: DEFAULT_MAX_RECORDS,
        }
    }
}

/// Why a store operation failed.
///
/// Unless a variant says otherwise, a failed call changed nothing on disk (its transaction
/// was not committed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the store file could not be created. Nothing was opened.
    #[error(
        "cannot create the directory {} for the operation store: {source}; \
         check its permissions or choose another data dir",
        path.display()
    )]
    CreateDir {
        /// The directory we tried to create.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Another process (or another `Store` in this one) has the file open.
    #[error(
        "the operation store {} is already in use by another process; stop the other \
         werify node or give this one its own data dir",
        path.display()
    )]
    AlreadyOpen {
        /// The store file.
        path: PathBuf,
    },
    /// The file is damaged or is not a redb database at all.
    #[error(
        "the operation store {} is corrupt or not a werify store ({detail}); move it away \
         (e.g. to {}.bad) and restart to begin with an empty store",
        path.display(),
        path.display()
    )]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What redb found wrong.
        detail: String,
    },
    /// The file is a valid redb database that belongs to something else.
    #[error(
        "{} is a database that does not belong to werify ({detail}); move it away or \
         point the node at another data dir",
        path.display()
    )]
    Foreign {
        /// The store file.
        path: PathBuf,
        /// What gave it away.
        detail: String,
    },
    /// The file was written by a werify with another store layout.
    #[error(
        "the operation store {} has layout version {found} but this werify reads version \
         {supported}; run a matching werify or move the file away",
        path.display()
    )]
    UnsupportedVersion {
        /// The store file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The version this build reads.
        supported: u64,
    },
    /// The limits passed to [`Store::open`] make no sense. Nothing was opened.
    #[error("invalid operation store limits: {0}")]
    InvalidLimits(&'static str),
    /// A record on disk could not be decoded. The store itself is still usable; the
    /// damaged record is dropped when it expires.
    #[error(
        "operation {key} in the store {} cannot be decoded ({detail}); ignore it, it is \
         dropped when it expires",
        path.display()
    )]
    Decode {
        /// The store file.
        path: PathBuf,
        /// The stored key (handle, and host if the damage is in a host row).
        key: String,
        /// What the decoder said.
        detail: String,
    },
    /// A value could not be encoded. BUG!: plain data always encodes to CBOR.
    #[error("BUG! cannot encode operation {handle} for the store: {detail}")]
    Encode {
        /// The operation being written.
        handle: Handle,
        /// What the encoder said.
        detail: String,
    },
    /// No such operation: never stored here, or expired.
    #[error(
        "no operation {0} in this node's store; it may have expired, or was issued by \
         another node"
    )]
    UnknownHandle(Handle),
    /// [`Store::insert`] was given a handle that is already stored. Local misuse: handles
    /// must come from [`Store::next_counter`].
    #[error("operation {0} is already in the store; handles must be unique (BUG! in the caller)")]
    DuplicateHandle(Handle),
    /// All 2⁶⁴ counters have been handed out. Not going to happen; reported, not wrapped.
    #[error("the operation counter in {} is exhausted; move the store away", path.display())]
    CounterExhausted {
        /// The store file.
        path: PathBuf,
    },
    /// Any other failure of the database: I/O errors, a full disk, ….
    #[error(
        "operation store {}: {source}; check the disk and the file's permissions",
        path.display()
    )]
    Storage {
        /// The store file.
        path: PathBuf,
        /// What redb said.
        source: redb::Error,
    },
}

/// The durable operation-result store. Cheap to clone; clones share one open database.
///
/// All methods block on disk I/O; see the [module docs](self) for how to call them from
/// async code.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    limits: StoreLimits,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

/// The operation record minus its hosts, as stored under its handle.
#[derive(Serialize, Deserialize)]
struct StoredOperation {
    coordinator: String,
    submitted_unix_ms: u64,
    deadline_unix_ms: u64,
    ended_unix_ms: Option<u64>,
    check_names: Vec<String>,
}

/// All record tables, opened in one write transaction.
struct WriteTables<'txn> {
    operations: Table<'txn, &'static str, &'static [u8]>,
    host_results: Table<'txn, (&'static str, &'static str), &'static [u8]>,
    by_submit_time: Table<'txn, (u64, &'static str), ()>,
    unfinished: Table<'txn, &'static str, ()>,
}

impl<'txn> WriteTables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<WriteTables<'txn>, redb::TableError> {
        Ok(WriteTables {
            operations: txn.open_table(OPERATIONS)?,
            host_results: txn.open_table(HOST_RESULTS)?,
            by_submit_time: txn.open_table(BY_SUBMIT_TIME)?,
            unfinished: txn.open_table(UNFINISHED)?,
        })
    }

    /// Deletes every row of one operation.
    fn remove_operation(
        &mut self,
        handle: &str,
        submitted_unix_ms: u64,
    ) -> Result<(), redb::Error> {
        self.operations.remove(handle)?;
        self.by_submit_time.remove((submitted_unix_ms, handle))?;
        self.unfinished.remove(handle)?;
        let mut hosts = Vec::new();
        for row in self.host_results.range((handle, "")..)? {
            let (key, _) = row?;
            let (row_handle, host) = key.value();
            if row_handle != handle {
                break;
            }
            hosts.push(host.to_string());
        }
        for host in hosts {
            self.host_results.remove((handle, host.as_str()))?;
        }
        Ok(())
    }
}

impl Store {
    /// Opens the store at `path`, creating the file and its parent directories if needed.
    ///
    /// The whole file is read and integrity-checked on open (once per start; proportional to
    /// the file size, which `max_records` bounds), so a damaged file is reported as
    /// [`StoreError::Corrupt`] instead of being trusted: redb may panic on a damaged file it
    /// opens without the check. A redb file written by someone else gives [`StoreError::Foreign`], one in
    /// use by another process [`StoreError::AlreadyOpen`].
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Store, StoreError> {
        if limits.max_records == 0 {
            return Err(StoreError::InvalidLimits("max_records must be at least 1"));
        }
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|err| classify(path, err.into()))?;
        let store = Store {
            inner: Arc::new(Inner {
                db,
                path: path.to_path_buf(),
                limits,
            }),
        };
        store.init_schema()?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The limits given to [`Store::open`].
    pub fn limits(&self) -> StoreLimits {
        self.inner.limits
    }

    /// Checks that the file is ours and of our version, or marks a new file as ours and
    /// creates the tables.
    fn init_schema(&self) -> Result<(), StoreError> {
        let path = &self.inner.path;
        let txn = self.inner.db.begin_write().map_err(|e| self.fail(e))?;
        let existing: Vec<String> = txn
            .list_tables()
            .map_err(|e| self.fail(e))?
            .map(|table| redb::TableHandle::name(&table).to_string())
            .collect();
        let has_meta = existing.iter().any(|name| name == "werify_meta");
        if let Some(stranger) = existing
            .iter()
            .find(|name| !OUR_TABLES.contains(&name.as_str()))
        {
            return Err(StoreError::Foreign {
                path: path.clone(),
                detail: format!("it has a table named {stranger:?}"),
            });
        }
        if !existing.is_empty() && !has_meta {
            return Err(StoreError::Foreign {
                path: path.clone(),
                detail: "it has no werify version marker".to_string(),
            });
        }
        {
            let mut meta = txn.open_table(META).map_err(|e| self.fail(e))?;
            let version = meta
                .get(SCHEMA_VERSION_KEY)
                .map_err(|e| self.fail(e))?
                .map(|v| v.value());
            match version {
                Some(SCHEMA_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::UnsupportedVersion {
                        path: path.clone(),
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                None if has_meta => {
                    return Err(StoreError::Foreign {
                        path: path.clone(),
                        detail: "its meta table has no version".to_string(),
                    });
                }
                None => {
                    meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                        .map_err(|e| self.fail(e))?;
                }
            }
            // Creates missing tables; a table with other key or value types is not ours.
            WriteTables::open(&txn).map_err(|e| self.fail(e))?;
        }
        txn.commit().map_err(|e| self.fail(e))
    }

    /// Hands out the next operation counter: 1, 2, 3, … durably, so a counter is never
    /// handed out twice, even across restarts or from concurrent callers.
    pub fn next_counter(&self) -> Result<u64, StoreError> {
        let txn = self.inner.db.begin_write().map_err(|e| self.fail(e))?;
        let counter = {
            let mut meta = txn.open_table(META).map_err(|e| self.fail(e))?;
            let counter = meta
                .get(NEXT_COUNTER_KEY)
                .map_err(|e| self.fail(e))?
                .map_or(FIRST_COUNTER, |v| v.value());
            let next = counter
                .checked_add(1)
                .ok_or_else(|| StoreError::CounterExhausted {
                    path: self.inner.path.clone(),
                })?;
            meta.insert(NEXT_COUNTER_KEY, next)
                .map_err(|e| self.fail(e))?;
            counter
        };
        txn.commit().map_err(|e| self.fail(e))?;
        Ok(counter)
    }

    /// Stores a new operation with its hosts (usually all [`HostReport::Pending`]).
    ///
    /// If the store is full, the oldest operations are dropped first, so the count never
    /// exceeds `max_records` even if [`Store::expire`] is never called. A handle already
    /// stored is refused ([`StoreError::DuplicateHandle`]).
    pub fn insert(&self, rec: &OperationRecord) -> Result<(), StoreError> {
        let handle = rec.handle.as_str();
        let header = encode(
            &rec.handle,
            &StoredOperation {
                coordinator: rec.coordinator.clone(),
                submitted_unix_ms: rec.submitted_unix_ms,
                deadline_unix_ms: rec.deadline_unix_ms,
                ended_unix_ms: rec.ended_unix_ms,
                check_names: rec.check_names.clone(),
            },
        )?;
        let hosts = rec
            .hosts
            .iter()
            .map(|(host, result)| Ok((host.as_str(), encode(&rec.handle, result)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;

        let txn = self.inner.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut tables = WriteTables::open(&txn).map_err(|e| self.fail(e))?;
            if tables
                .operations
                .get(handle)
                .map_err(|e| self.fail(e))?
                .is_some()
            {
                return Err(StoreError::DuplicateHandle(rec.handle.clone()));
            }
            let count = tables.by_submit_time.len().map_err(|e| self.fail(e))?;
            let max = self.max_records();
            let excess = (count + 1).saturating_sub(max);
            self.drop_oldest(&mut tables, |position, _| position < excess)?;

            tables
                .operations
                .insert(handle, header.as_slice())
                .map_err(|e| self.fail(e))?;
            tables
                .by_submit_time
                .insert((rec.submitted_unix_ms, handle), ())
                .map_err(|e| self.fail(e))?;
            if rec.ended_unix_ms.is_none() {
                tables
                    .unfinished
                    .insert(handle, ())
                    .map_err(|e| self.fail(e))?;
            }
            for (host, bytes) in &hosts {
                tables
                    .host_results
                    .insert((handle, *host), bytes.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
        }
        txn.commit().map_err(|e| self.fail(e))
    }

    /// Records what `host` answered for the operation `handle`, replacing what was there.
    pub fn record_host(
        &self,
        handle: &Handle,
        host: &str,
        result: HostReport,
    ) -> Result<(), StoreError> {
        self.record_hosts(handle, [(host.to_string(), result)])
    }

    /// Like [`Store::record_host`] for several hosts in one commit (one fsync), e.g. to
    /// mark every host that missed the deadline as failed.
    pub fn record_hosts(
        &self,
        handle: &Handle,
        results: impl IntoIterator<Item = (String, HostReport)>,
    ) -> Result<(), StoreError> {
        let rows = results
            .into_iter()
            .map(|(host, result)| Ok((host, encode(handle, &result)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let txn = self.inner.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let known = txn
                .open_table(OPERATIONS)
                .and_then(|table| Ok(table.get(handle.as_str())?.is_some()))
                .map_err(|e| self.fail(e))?;
            if !known {
                return Err(StoreError::UnknownHandle(handle.clone()));
            }
            let mut host_results = txn.open_table(HOST_RESULTS).map_err(|e| self.fail(e))?;
            for (host, bytes) in &rows {
                host_results
                    .insert((handle.as_str(), host.as_str()), bytes.as_slice())
                    .map_err(|e| self.fail(e))?;
            }
        }
        txn.commit().map_err(|e| self.fail(e))
    }

    /// Marks the operation as ended at `ended_unix_ms`. Calling it again moves the end time.
    pub fn finish(&self, handle: &Handle, ended_unix_ms: u64) -> Result<(), StoreError> {
        let txn = self.inner.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut tables = WriteTables::open(&txn).map_err(|e| self.fail(e))?;
            let stored = tables
                .operations
                .get(handle.as_str())
                .map_err(|e| self.fail(e))?
                .map(|bytes| bytes.value().to_vec())
                .ok_or_else(|| StoreError::UnknownHandle(handle.clone()))?;
            let mut header: StoredOperation = self.decode(handle.as_str(), &stored)?;
            header.ended_unix_ms = Some(ended_unix_ms);
            let bytes = encode(handle, &header)?;
            tables
                .operations
                .insert(handle.as_str(), bytes.as_slice())
                .map_err(|e| self.fail(e))?;
            tables
                .unfinished
                .remove(handle.as_str())
                .map_err(|e| self.fail(e))?;
        }
        txn.commit().map_err(|e| self.fail(e))
    }

    /// The operation `handle` with every host result recorded so far, or `None` if it is
    /// not stored (never was, or expired).
    pub fn get(&self, handle: &Handle) -> Result<Option<OperationRecord>, StoreError> {
        let txn = self.inner.db.begin_read().map_err(|e| self.fail(e))?;
        let operations = txn.open_table(OPERATIONS).map_err(|e| self.fail(e))?;
        let host_results = txn.open_table(HOST_RESULTS).map_err(|e| self.fail(e))?;
        self.read_record(&operations, &host_results, handle)
    }

    /// Drops operations submitted more than the TTL before `now_unix_ms`, then the oldest
    /// ones beyond `max_records`. Returns how many were dropped. Call it periodically
    /// (e.g. every minute) and once after opening.
    pub fn expire(&self, now_unix_ms: u64) -> Result<usize, StoreError> {
        let ttl_ms = u64::try_from(self.inner.limits.ttl.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_unix_ms.saturating_sub(ttl_ms);
        let txn = self.inner.db.begin_write().map_err(|e| self.fail(e))?;
        let dropped = {
            let mut tables = WriteTables::open(&txn).map_err(|e| self.fail(e))?;
            let count = tables.by_submit_time.len().map_err(|e| self.fail(e))?;
            let excess = count.saturating_sub(self.max_records());
            self.drop_oldest(&mut tables, |position, submitted| {
                submitted < cutoff || position < excess
            })?
        };
        txn.commit().map_err(|e| self.fail(e))?;
        Ok(dropped)
    }

    /// Operations that were never [finished](Store::finish), oldest first: after a
    /// restart, the coordinator resumes or fails them.
    pub fn unfinished(&self) -> Result<Vec<OperationRecord>, StoreError> {
        let txn = self.inner.db.begin_read().map_err(|e| self.fail(e))?;
        let unfinished = txn.open_table(UNFINISHED).map_err(|e| self.fail(e))?;
        let operations = txn.open_table(OPERATIONS).map_err(|e| self.fail(e))?;
        let host_results = txn.open_table(HOST_RESULTS).map_err(|e| self.fail(e))?;
        let mut records = Vec::new();
        for row in unfinished.iter().map_err(|e| self.fail(e))? {
            let (key, _) = row.map_err(|e| self.fail(e))?;
            let handle = self.parse_stored_handle(key.value())?;
            if let Some(record) = self.read_record(&operations, &host_results, &handle)? {
                records.push(record);
            }
        }
        records.sort_by_key(|rec| (rec.submitted_unix_ms, rec.handle.counter()));
        Ok(records)
    }

    /// Walks the operations oldest first and drops each one for which
    /// `doomed(position, submitted_unix_ms)` holds, stopping at the first that survives.
    /// `doomed` must be monotone (once false, false for all later entries).
    fn drop_oldest(
        &self,
        tables: &mut WriteTables<'_>,
        doomed: impl Fn(u64, u64) -> bool,
    ) -> Result<usize, StoreError> {
        let mut victims = Vec::new();
        for (position, row) in (0u64..).zip(tables.by_submit_time.iter().map_err(|e| self.fail(e))?)
        {
            let (key, _) = row.map_err(|e| self.fail(e))?;
            let (submitted, handle) = key.value();
            if !doomed(position, submitted) {
                break;
            }
            victims.push((submitted, handle.to_string()));
        }
        for (submitted, handle) in &victims {
            tables
                .remove_operation(handle, *submitted)
                .map_err(|e| self.fail(e))?;
        }
        Ok(victims.len())
    }

    /// Reads and assembles one record from a read transaction's tables.
    fn read_record(
        &self,
        operations: &redb::ReadOnlyTable<&'static str, &'static [u8]>,
        host_results: &redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
        handle: &Handle,
    ) -> Result<Option<OperationRecord>, StoreError> {
        let key = handle.as_str();
        let Some(stored) = operations.get(key).map_err(|e| self.fail(e))? else {
            return Ok(None);
        };
        let header: StoredOperation = self.decode(key, stored.value())?;
        let mut hosts = BTreeMap::new();
        for row in host_results.range((key, "")..).map_err(|e| self.fail(e))? {
            let (row_key, value) = row.map_err(|e| self.fail(e))?;
            let (row_handle, host) = row_key.value();
            if row_handle != key {
                break;
            }
            let result: HostReport = self.decode(&format!("{key} host {host}"), value.value())?;
            hosts.insert(host.to_string(), result);
        }
        Ok(Some(OperationRecord {
            handle: handle.clone(),
            coordinator: header.coordinator,
            submitted_unix_ms: header.submitted_unix_ms,
            deadline_unix_ms: header.deadline_unix_ms,
            ended_unix_ms: header.ended_unix_ms,
            check_names: header.check_names,
            hosts,
        }))
    }

    fn max_records(&self) -> u64 {
        u64::try_from(self.inner.limits.max_records).unwrap_or(u64::MAX)
    }

    fn parse_stored_handle(&self, text: &str) -> Result<Handle, StoreError> {
        text.parse().map_err(
            |err: crate::ops::handle::ParseHandleError| StoreError::Decode {
                path: self.inner.path.clone(),
                key: err.text.clone(),
                detail: err.reason.to_string(),
            },
        )
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T, StoreError> {
        ciborium::from_reader(bytes).map_err(|err| StoreError::Decode {
            path: self.inner.path.clone(),
            key: key.to_string(),
            detail: err.to_string(),
        })
    }

    /// Wraps a redb failure with the store's path, sorting out the ones users can act on.
    fn fail(&self, err: impl Into<redb::Error>) -> StoreError {
        classify(&self.inner.path, err.into())
    }
}

fn encode<T: Serialize>(handle: &Handle, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(|err| StoreError::Encode {
        handle: handle.clone(),
        detail: err.to_string(),
    })?;
    Ok(bytes)
}

/// Turns a redb error into the [`StoreError`] that tells the user what to do.
fn classify(path: &Path, err: redb::Error) -> StoreError {
    let path = path.to_path_buf();
    match err {
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
            StoreError::AlreadyOpen { path }
        }
        redb::Error::Corrupted(detail) => StoreError::Corrupt { path, detail },
        // redb reports a file without its magic number as invalid data, and a truncated
        // one runs out of bytes: both mean the file is not a usable database.
        redb::Error::Io(err)
            if matches!(
                err.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            StoreError::Corrupt {
                path,
                detail: err.to_string(),
            }
        }
        redb::Error::UpgradeRequired(version) => StoreError::Corrupt {
            path,
            detail: format!("written in the old redb file format {version}"),
        },
        redb::Error::TableTypeMismatch { table, .. } => StoreError::Foreign {
            path,
            detail: format!("its table {table:?} has other key or value types"),
        },
        redb::Error::TableIsMultimap(table) => StoreError::Foreign {
            path,
            detail: format!("its table {table:?} is a multimap table"),
        },
        source => StoreError::Storage { path, source },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::base::NodeId;
    use crate::checks::Outcome;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "werify-store-test-{}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed),
                rand::random::<u32>()
            ));
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        fn file(&self) -> PathBuf {
            self.0.join("data").join("operations.redb")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn limits(ttl_ms: u64, max_records: usize) -> StoreLimits {
        StoreLimits {
            ttl: Duration::from_millis(ttl_ms),
            max_records,
        }
    }

    fn record(counter: u64, submitted_unix_ms: u64) -> OperationRecord {
        let hosts = ["127.0.0.1:7001", "127.0.0.2:7001", "127.0.0.3:7001"]
            .into_iter()
            .map(|host| (host.to_string(), HostReport::Pending))
            .collect();
        OperationRecord {
            handle: Handle::new(counter * 7919, counter, NodeId([3; 16])),
            coordinator: "127.0.0.1:7001".to_string(),
            submitted_unix_ms,
            deadline_unix_ms: submitted_unix_ms + 30_000,
            ended_unix_ms: None,
            check_names: vec!["disk".to_string(), "sshd".to_string()],
            hosts,
        }
    }

    fn answered() -> HostReport {
        HostReport::Answered {
            results: BTreeMap::from([
                ("disk".to_string(), Outcome::Success(true)),
                (
                    "sshd".to_string(),
                    Outcome::Error("permission denied".to_string()),
                ),
            ]),
            took_ms: 12,
            observations: BTreeMap::from([(
                "disk".to_string(),
                crate::checks::Observation {
                    found: crate::checks::Facts::new().with("free_percent", "42.00"),
                    ..Default::default()
                },
            )]),
        }
    }

    impl Store {
        /// Test-only: how many host rows exist in total, to see that expiry leaves none.
        fn host_row_count(&self) -> u64 {
            let txn = self.inner.db.begin_read().expect("read");
            let table = txn.open_table(HOST_RESULTS).expect("table");
            table.len().expect("len")
        }

        /// Test-only: overwrite a stored value with bytes that are not CBOR.
        fn damage_record(&self, handle: &Handle) {
            let txn = self.inner.db.begin_write().expect("write");
            {
                let mut table = txn.open_table(OPERATIONS).expect("table");
                table
                    .insert(handle.as_str(), [0xffu8, 0x00, 0x13].as_slice())
                    .expect("insert");
            }
            txn.commit().expect("commit");
        }
    }

    #[test]
    fn record_round_trips_through_insert_record_host_finish_and_get() {
        let dir = TempDir::new();
        let store = Store::open(&dir.file(), StoreLimits::default()).expect("open");
        let mut rec = record(1, 1_000);
        store.insert(&rec).expect("insert");
        assert_eq!(store.get(&rec.handle).expect("get"), Some(rec.clone()));

        store
            .record_host(&rec.handle, "127.0.0.1:7001", answered())
            .expect("record");
        store
            .record_host(
                &rec.handle,
                "127.0.0.2:7001",
                HostReport::Failed("host unreachable".into()),
            )
            .expect("record");
        store.finish(&rec.handle, 1_500).expect("finish");

        rec.hosts.insert("127.0.0.1:7001".into(), answered());
        rec.hosts.insert(
            "127.0.0.2:7001".into(),
            HostReport::Failed("host unreachable".into()),
        );
        rec.ended_unix_ms = Some(1_500);
        let got = store.get(&rec.handle).expect("get").expect("present");
        assert_eq!(got, rec);
        assert!(got.is_finished());
        assert_eq!(got.hosts.get("127.0.0.3:7001"), Some(&HostReport::Pending));
    }

    #[test]
    fn records_do_not_leak_into_each_other() {
        let dir = TempDir::new();
        let store = Store::open(&dir.file(), StoreLimits::default()).expect("open");
        // Handles that are prefixes of each other ("abc1-…" vs "abc10-…") must stay apart.
        let first = record(1, 10);
        let mut tenth = record(10, 20);
        tenth.hosts = BTreeMap::from([("10.0.0.9:1".to_string(), HostReport::Pending)]);
        store.insert(&first).expect("insert");
        store.insert(&tenth).expect("insert");
        store
            .record_host(&tenth.handle, "10.0.0.9:1", answered())
            .expect("record");
        assert_eq!(store.get(&first.handle).expect("get"), Some(first));
        let got = store.get(&tenth.handle).expect("get").expect("present");
        assert_eq!(got.hosts.len(), 1);
    }

    #[test]
    fn unknown_and_duplicate_handles_are_refused() {
        let dir = TempDir::new();
        let store = Store::open(&dir.file(), StoreLimits::default()).expect("open");
        let rec = record(1, 10);
        assert_eq!(store.get(&rec.handle).expect("get"), None);
        assert!(matches!(
            store.record_host(&rec.handle, "127.0.0.1:7001", HostReport::Pending),
            Err(StoreError::UnknownHandle(h)) if h == rec.handle
        ));
        assert!(matches!(
            store.finish(&rec.handle, 5),
            Err(StoreError::UnknownHandle(_))
        ));
        // A refused record_host must not leave orphan host rows behind.
        assert_eq!(store.host_row_count(), 0);

        store.insert(&rec).expect("insert");
        let mut again = rec.clone();
        again.coordinator = "127.0.0.9:1".into();
        assert!(matches!(
            store.insert(&again),
            Err(StoreError::DuplicateHandle(_))
        ));
        assert_eq!(store.get(&rec.handle).expect("get"), Some(rec));
    }

    #[test]
    fn counter_is_monotonic_and_survives_reopen() {
        let dir = TempDir::new();
        {
            let store = Store::open(&dir.file(), StoreLimits::default()).expect("open");
            assert_eq!(store.next_counter().expect("counter"), 1);
            assert_eq!(store.next_counter().expect("counter"), 2);
            assert_eq!(store.next_counter().expect("counter"), 3);
        }
        let store = Store::open(&dir.file(), StoreLimits::default()).expect("reopen");
        assert_eq!(store.next_counter().expect("counter"), 4);
    }

    #[test]
    fn concurrent_callers_never_get_the_same_counter() {
        let dir = TempDir::new();
        let store = Store::open(&dir.file(), StoreLimits::default()).expect("open");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .map(|_| store.next_counter().expect("counter"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=40).collect::<Vec<_>>());
    }

    #[test]
    fn records_survive_a_coordinator_restart() {
        let dir = TempDir::new();
        let running = record(1, 100);
        let done = record(2, 200);
        {
            let store = Store::open(&dir.file(), StoreLimits::default()).expect("open");
            store.insert(&running).expect("insert");
            store.insert(&done).expect("insert");
            store
                .record_host(&running.handle, "127.0.0.1:7001", answered())
                .expect("record");
            store.finish(&done.handle, 900).expect("finish");
            // Dropping the store without any shutdown step stands in for the restart.
        }
        let store = Store::open(&dir.file(), StoreLimits::default()).expect("reopen");
        let got = store.get(&running.handle).expect("get").expect("present");
        assert_eq!(got.hosts.get("127.0.0.1:7001"), Some(&answered()));
        assert_eq!(got.ended_unix_ms, None);
        assert_eq!(
            store
                .get(&done.handle)
                .expect("get")
                .and_then(|r| r.ended_unix_ms),
            Some(900)
        );

        let unfinished = store.unfinished().expect("unfinished");
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished.first().map(|r| &r.handle), Some(&running.handle));

        store.finish(&running.handle, 1_000).expect("finish");
        assert!(store.unfinished().expect("unfinished").is_empty());
    }

    #[test]
    fn expire_drops_records_older_than_the_ttl_with_their_hosts() {
        let dir = TempDir::new();
        let store = Store::open(&dir.file(), limits(1_000, 100)).expect("open");
        let old = record(1, 0);
        let older_than_ttl = record(2, 500);
        let young = record(3, 2_000);
        for rec in [&old, &older_than_ttl, &young] {
            store.insert(rec).expect("insert");
        }
        assert_eq!(store.host_row_count(), 9);

        // At t=1500 only the record from t=0 is more than 1000 ms old.
        assert_eq!(store.expire(1_500).expect("expire"), 1);
        assert_eq!(store.get(&old.handle).expect("get"), None);
        assert!(store.get(&older_than_ttl.handle).expect("get").is_some());

        assert_eq!(store.expire(2_600).expect("expire"), 1);
        assert_eq!(store.get(&older_than_ttl.handle).expect("get"), None);
        assert_eq!(store.get(&young.handle).expect("get"), Some(young.clone()));
        assert_eq!(store.host_row_count(), 3);
        // Expired records are no longer reported as unfinished either.
        let unfinished = store.unfinished().expect("unfinished");
        assert_eq!(
            unfinished.iter().map(|r| &r.handle).collect::<Vec<_>>(),
            [&young.handle]
        );

        // Nothing left to drop: the call is a no-op.
        assert_eq!(store.expire(2_600).expect("expire"), 0);
    }

    #[test]
    fn insert_keeps_the_count_bounded_dropping_the_oldest() {
        let dir = TempDir::new();
        let store = Store::open(&dir.file(), limits(u64::MAX, 3)).expect("open");
        // Inserted out of submission order: eviction follows submission time.
        let submitted = [50, 10, 40, 20, 30];
        let records: Vec<_> = (1..).zip(submitted).map(|(c, t)| record(c, t)).collect();
        for rec in &records {
            store.insert(rec).expect("insert");
        }
        let kept: Vec<u64> = records
            .iter()
            .filter(|rec| store.get(&rec.handle).expect("get").is_some())
            .map(|rec| rec.submitted_unix_ms)
            .collect();
        // After the 4th insert (t=20) the oldest (t=10) went; after the 5th (t=30), t=20 did.
        assert_eq!(kept, [50, 40, 30]);
        assert_eq!(store.host_row_count(), 9);
    }

    #[test]
    fn expire_enforces_a_lowered_max_records() {
        let dir = TempDir::new();
        let records: Vec<_> = (1..=5).map(|c| record(c, c * 100)).collect();
        {
            let store = Store::open(&dir.file(), limits(u64::MAX, 10)).expect("open");
            for rec in &records {
                store.insert(rec).expect("insert");
            }
        }
        let store = Store::open(&dir.file(), limits(u64::MAX, 2)).expect("reopen");
        assert_eq!(store.expire(1_000).expect("expire"), 3);
        let kept: Vec<u64> = records
            .iter()
            .filter(|rec| store.get(&rec.handle).expect("get").is_some())
            .map(|rec| rec.submitted_unix_ms)
            .collect();
        assert_eq!(kept, [400, 500]);
        assert_eq!(store.host_row_count(), 6);
    }

    #[test]
    fn store_and_errors_can_cross_threads_and_tasks() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Store>();
        assert_send_sync::<StoreError>();
    }

    #[test]
    fn zero_max_records_is_refused() {
        let dir = TempDir::new();
        let err = Store::open(&dir.file(), limits(1, 0)).expect_err("invalid");
        assert!(matches!(err, StoreError::InvalidLimits(_)), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_gives_a_clear_error() {
        let dir = TempDir::new();
        let path = dir.0.join("operations.redb");
        let long_text = b"this is not a redb file, it is plain text ".repeat(200);
        for content in [long_text.as_slice(), b"short".as_slice()] {
            std::fs::write(&path, content).expect("write");
            let err = Store::open(&path, StoreLimits::default()).expect_err("garbage");
            let message = err.to_string();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("move it away"), "{message}");
        }
    }

    #[test]
    fn a_damaged_store_gives_a_clear_error() {
        let dir = TempDir::new();
        let path = dir.file();
        {
            let store = Store::open(&path, StoreLimits::default()).expect("open");
            store.insert(&record(1, 1)).expect("insert");
        }
        // Overwrite everything after redb's header with noise.
        let mut bytes = std::fs::read(&path).expect("read");
        for (i, byte) in bytes.iter_mut().enumerate().skip(4096) {
            *byte = (i % 251) as u8;
        }
        std::fs::write(&path, &bytes).expect("write");
        let err = Store::open(&path, StoreLimits::default()).expect_err("damaged");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn a_redb_file_of_another_program_is_not_adopted() {
        let dir = TempDir::new();
        let path = dir.0.join("other.redb");
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("write");
            {
                let mut table = txn
                    .open_table(TableDefinition::<&str, &str>::new("settings"))
                    .expect("table");
                table.insert("colour", "blue").expect("insert");
            }
            txn.commit().expect("commit");
        }
        let err = Store::open(&path, StoreLimits::default()).expect_err("foreign");
        let message = err.to_string();
        assert!(matches!(err, StoreError::Foreign { .. }), "{message}");
        assert!(message.contains("settings"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn a_store_cannot_be_opened_twice() {
        let dir = TempDir::new();
        let _first = Store::open(&dir.file(), StoreLimits::default()).expect("open");
        let err = Store::open(&dir.file(), StoreLimits::default()).expect_err("second");
        assert!(matches!(err, StoreError::AlreadyOpen { .. }), "{err}");
    }

    #[test]
    fn an_undecodable_record_is_reported_not_panicked_on() {
        let dir = TempDir::new();
        let store = Store::open(&dir.file(), StoreLimits::default()).expect("open");
        let rec = record(1, 1);
        store.insert(&rec).expect("insert");
        store.damage_record(&rec.handle);
        let err = store.get(&rec.handle).expect_err("undecodable");
        assert!(
            matches!(&err, StoreError::Decode { key, .. } if key == rec.handle.as_str()),
            "{err}"
        );
        assert!(store.unfinished().is_err());
        assert!(matches!(
            store.finish(&rec.handle, 2),
            Err(StoreError::Decode { .. })
        ));
        // Expiry does not need to decode, so the damaged record can still be dropped.
        assert_eq!(store.expire(u64::MAX).expect("expire"), 1);
        assert_eq!(store.get(&rec.handle).expect("get"), None);
    }
}
