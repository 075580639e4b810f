//! The controller's durable state in one RocksDB database, and raft-rs's [`Storage`] over it.
//!
//! Column family `raft` holds the Raft log (`e` + index, big-endian, to an encoded `Entry`), the
//! hard state (`hs`), the conf state (`cs`) and the index and term of the last entry compacted away
//! (`trunc`). Column family `state` holds the metadata state machine (see `state_store.rs`)
//! with the index it was applied up to. Log appends are synced before Raft is told they are
//! stable; state machine writes share the same write-ahead log, so after a crash the state is never
//! ahead of the log, and entries after its applied index are simply applied again.
//!
//! The entries between the last compaction and the end of the log are mirrored in memory (the log
//! is compacted every `snapshot_entries` applied entries, so this stays small) and served from
//! there. A snapshot is the encoded state machine at its applied index; the node compacts the log
//! up to that index, and a follower too far behind receives the snapshot instead of entries.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};

use vltava_metadata::error::MetadataError;
use vltava_metadata::state::{Delta, MetadataState};

use crate::state_store;

const CF_RAFT: &str = "raft";
/// Column family of the state machine.
const CF_STATE: &str = "state";
const HARD_STATE: &[u8] = b"hs";
const CONF_STATE: &[u8] = b"cs";
const TRUNCATED: &[u8] = b"trunc";

fn entry_key(index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// What the state machine has applied, shared with [`RaftStore`] so snapshots can be built.
#[derive(Debug, Default)]
pub struct Applied {
    /// The state machine.
    pub state: MetadataState,
    /// The last Raft index applied to it.
    pub index: u64,
    /// The configuration as of `index`.
    pub conf_state: ConfState,
}

struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    /// Index and term of the last entry compacted away (0, 0 for none).
    truncated: (u64, u64),
    /// Entries after `truncated.0`, in order.
    entries: VecDeque<Entry>,
}

impl Core {
    fn first_index(&self) -> u64 {
        self.truncated.0 + 1
    }

    fn last_index(&self) -> u64 {
        self.truncated.0 + self.entries.len() as u64
    }
}

struct Inner {
    db: DB,
    core: RwLock<Core>,
    applied: Arc<RwLock<Applied>>,
}

/// The controller's RocksDB store; cheap to clone (one database shared by every clone).
#[derive(Clone)]
pub struct RaftStore {
    inner: Arc<Inner>,
}

fn synced() -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(true);
    o
}

fn decode<M: protobuf::Message>(bytes: &[u8], what: &str) -> Result<M, MetadataError> {
    M::parse_from_bytes(bytes).map_err(|e| MetadataError::Store(format!("corrupt raft {what}: {e}")))
}

fn encode<M: protobuf::Message>(m: &M) -> Vec<u8> {
    m.write_to_bytes().expect("raft messages always encode")
}

fn store_err(e: impl std::fmt::Display) -> raft::Error {
    raft::Error::Store(StorageError::Other(e.to_string().into()))
}

impl RaftStore {
    /// Opens (or creates) the store in `dir` and loads the Raft log and the state machine.
    pub fn open(dir: &Path) -> Result<Self, MetadataError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = [CF_RAFT, CF_STATE].map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(crate::store_error)?;
        let raft_cf = db.cf_handle(CF_RAFT).expect("column family created at open");
        let hard_state = match db.get_cf(raft_cf, HARD_STATE).map_err(crate::store_error)? {
            Some(b) => decode(&b, "hard state")?,
            None => HardState::default(),
        };
        let conf_state = match db.get_cf(raft_cf, CONF_STATE).map_err(crate::store_error)? {
            Some(b) => decode(&b, "conf state")?,
            None => ConfState::default(),
        };
        let truncated = match db.get_cf(raft_cf, TRUNCATED).map_err(crate::store_error)? {
            Some(b) if b.len() == 16 => (
                u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
                u64::from_be_bytes(b[8..].try_into().expect("8 bytes")),
            ),
            Some(_) => return Err(MetadataError::Store("corrupt raft truncation marker".into())),
            None => (0, 0),
        };
        let mut entries = VecDeque::new();
        let iter = db.iterator_cf(raft_cf, rocksdb::IteratorMode::From(&entry_key(0), rocksdb::Direction::Forward));
        for item in iter {
            let (key, value) = item.map_err(crate::store_error)?;
            if key.first() != Some(&b'e') {
                break;
            }
            let e: Entry = decode(&value, "entry")?;
            let expected = truncated.0 + 1 + entries.len() as u64;
            if e.index != expected {
                return Err(MetadataError::Store(format!(
                    "raft log has a gap: expected {expected}, found {}",
                    e.index
                )));
            }
            entries.push_back(e);
        }
        let (state, index) = state_store::load(&db, db.cf_handle(CF_STATE).expect("column family created at open"))?;
        let applied = Applied { state, index, conf_state: conf_state.clone() };
        Ok(Self {
            inner: Arc::new(Inner {
                core: RwLock::new(Core { hard_state, conf_state, truncated, entries }),
                applied: Arc::new(RwLock::new(applied)),
                db,
            }),
        })
    }

    fn state_cf(&self) -> &rocksdb::ColumnFamily {
        self.inner.db.cf_handle(CF_STATE).expect("column family created at open")
    }

    /// First start of a data directory: stores the cluster id and the initial controllers'
    /// addresses and, unless this node joins an existing quorum later (`initialize_voters` false),
    /// the initial voter configuration.
    pub fn bootstrap(
        &self,
        cluster_id: &str,
        controllers: &BTreeMap<u64, String>,
        initialize_voters: bool,
    ) -> Result<(), MetadataError> {
        let cf = self.state_cf();
        let mut batch = WriteBatch::default();
        state_store::put_cluster_id(cf, &mut batch, cluster_id);
        for (id, address) in controllers {
            state_store::put_controller(cf, &mut batch, *id, Some(address));
        }
        self.inner.db.write(batch).map_err(crate::store_error)?;
        {
            let mut applied = self.inner.applied.write();
            applied.state.image.cluster_id = cluster_id.to_string();
            applied.state.controllers = controllers.clone();
        }
        if initialize_voters {
            let voters: Vec<u64> = controllers.keys().copied().collect();
            self.initialize(&voters)?;
        }
        Ok(())
    }

    /// Persists what applying entries up to `index` changed, atomically with `index` itself:
    /// the metadata deltas and the controllers' address changes (`None` removes one).
    pub fn persist_applied<'a>(
        &self,
        deltas: impl IntoIterator<Item = &'a Delta>,
        controllers: &[(u64, Option<String>)],
        index: u64,
    ) -> Result<(), MetadataError> {
        let cf = self.state_cf();
        let mut batch = WriteBatch::default();
        for delta in deltas {
            state_store::put_delta(cf, &mut batch, delta);
        }
        for (id, address) in controllers {
            state_store::put_controller(cf, &mut batch, *id, address.as_deref());
        }
        state_store::put_applied(cf, &mut batch, index);
        self.inner.db.write(batch).map_err(crate::store_error)
    }

    /// The applied state machine, shared with the node.
    pub fn applied(&self) -> &Arc<RwLock<Applied>> {
        &self.inner.applied
    }

    /// Whether the store has never held any Raft state.
    pub fn is_empty(&self) -> bool {
        let core = self.inner.core.read();
        core.conf_state.voters.is_empty()
            && core.conf_state.learners.is_empty()
            && core.entries.is_empty()
            && core.truncated.0 == 0
            && core.hard_state.term == 0
    }

    /// Sets the initial configuration of a new quorum (every initial voter uses the same one).
    fn initialize(&self, voters: &[u64]) -> Result<(), MetadataError> {
        let cs = ConfState::from((voters.iter().copied(), std::iter::empty()));
        self.set_conf_state(cs.clone())?;
        self.inner.applied.write().conf_state = cs;
        Ok(())
    }

    fn cf(&self) -> &rocksdb::ColumnFamily {
        self.inner.db.cf_handle(CF_RAFT).expect("column family created at open")
    }

    /// Appends entries (replacing any conflicting suffix) and the new hard state, synced, in one batch.
    pub fn append(&self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<(), MetadataError> {
        let mut batch = WriteBatch::default();
        let cf = self.cf();
        let mut core = self.inner.core.write();
        if let Some(first) = entries.first() {
            if first.index < core.first_index() {
                return Err(MetadataError::Store(format!(
                    "append at {} before the first index {}",
                    first.index,
                    core.first_index()
                )));
            }
            let last = core.last_index();
            for index in first.index..=last {
                batch.delete_cf(cf, entry_key(index));
            }
            for e in entries {
                batch.put_cf(cf, entry_key(e.index), encode(e));
            }
        }
        if let Some(hs) = hard_state {
            batch.put_cf(cf, HARD_STATE, encode(hs));
        }
        self.inner.db.write_opt(batch, &synced()).map_err(crate::store_error)?;
        if let Some(first) = entries.first() {
            let keep = (first.index - core.first_index()) as usize;
            core.entries.truncate(keep);
            core.entries.extend(entries.iter().cloned());
        }
        if let Some(hs) = hard_state {
            core.hard_state = hs.clone();
        }
        Ok(())
    }

    /// Records a new commit index (from a light ready).
    pub fn set_commit(&self, commit: u64) -> Result<(), MetadataError> {
        let mut hs = self.inner.core.read().hard_state.clone();
        hs.commit = commit;
        self.append(&[], Some(&hs))
    }

    /// Persists a new configuration.
    pub fn set_conf_state(&self, cs: ConfState) -> Result<(), MetadataError> {
        self.inner.db.put_cf_opt(&self.cf(), CONF_STATE, encode(&cs), &synced()).map_err(crate::store_error)?;
        self.inner.core.write().conf_state = cs;
        Ok(())
    }

    /// The current configuration.
    pub fn conf_state(&self) -> ConfState {
        self.inner.core.read().conf_state.clone()
    }

    /// Installs a snapshot received from the leader: the log is emptied up to its index and the
    /// state machine replaced, atomically.
    pub fn apply_snapshot(&self, snapshot: &Snapshot, state: MetadataState) -> Result<(), MetadataError> {
        let meta = snapshot.get_metadata();
        let mut batch = WriteBatch::default();
        let cf = self.cf();
        let mut core = self.inner.core.write();
        for index in core.first_index()..=core.last_index() {
            batch.delete_cf(cf, entry_key(index));
        }
        let mut hs = core.hard_state.clone();
        hs.term = hs.term.max(meta.term);
        hs.commit = meta.index;
        batch.put_cf(cf, HARD_STATE, encode(&hs));
        batch.put_cf(cf, CONF_STATE, encode(meta.get_conf_state()));
        batch.put_cf(cf, TRUNCATED, truncated_value(meta.index, meta.term));
        state_store::replace_all(&self.inner.db, self.state_cf(), &mut batch, &state, meta.index)?;
        self.inner.db.write_opt(batch, &synced()).map_err(crate::store_error)?;
        core.entries.clear();
        core.truncated = (meta.index, meta.term);
        core.hard_state = hs;
        core.conf_state = meta.get_conf_state().clone();
        *self.inner.applied.write() = Applied { state, index: meta.index, conf_state: meta.get_conf_state().clone() };
        Ok(())
    }

    /// Discards the log up to and including `index` (which must be applied).
    pub fn compact(&self, index: u64) -> Result<(), MetadataError> {
        let mut core = self.inner.core.write();
        if index <= core.truncated.0 || index > core.last_index() {
            return Ok(());
        }
        let term = core.entries[(index - core.first_index()) as usize].term;
        let mut batch = WriteBatch::default();
        let cf = self.cf();
        batch.delete_range_cf(cf, entry_key(core.first_index()), entry_key(index + 1));
        batch.put_cf(cf, TRUNCATED, truncated_value(index, term));
        self.inner.db.write(batch).map_err(crate::store_error)?;
        let drop_count = (index - core.truncated.0) as usize;
        core.entries.drain(..drop_count);
        core.truncated = (index, term);
        Ok(())
    }

    /// Number of entries in the log (after the last compaction).
    pub fn log_len(&self) -> usize {
        self.inner.core.read().entries.len()
    }
}

fn truncated_value(index: u64, term: u64) -> Vec<u8> {
    let mut v = index.to_be_bytes().to_vec();
    v.extend_from_slice(&term.to_be_bytes());
    v
}

impl Storage for RaftStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let core = self.inner.core.read();
        Ok(RaftState::new(core.hard_state.clone(), core.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let core = self.inner.core.read();
        if low < core.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > core.last_index() + 1 {
            return Err(store_err(format!("entries up to {high} asked, last is {}", core.last_index())));
        }
        let max = max_size.into().unwrap_or(u64::MAX);
        let offset = core.first_index();
        let mut out = Vec::new();
        let mut size = 0u64;
        for index in low..high {
            let e = &core.entries[(index - offset) as usize];
            size += u64::from(e.compute_size());
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let core = self.inner.core.read();
        if idx == core.truncated.0 {
            return Ok(core.truncated.1);
        }
        if idx < core.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > core.last_index() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(core.entries[(idx - core.first_index()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.inner.core.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.inner.core.read().last_index())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let applied = self.inner.applied.read();
        if applied.index == 0 || applied.index < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        let mut snapshot = Snapshot { data: applied.state.encode().into(), ..Default::default() };
        let meta = snapshot.mut_metadata();
        meta.index = applied.index;
        meta.term = self.term(applied.index)?;
        meta.set_conf_state(applied.conf_state.clone());
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, data: format!("e{index}").into_bytes().into(), ..Default::default() }
    }

    #[test]
    fn log_hard_state_and_conf_state_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RaftStore::open(dir.path()).unwrap();
            assert!(s.is_empty());
            s.initialize(&[1, 2, 3]).unwrap();
            let hs = HardState { term: 2, vote: 1, commit: 2, ..Default::default() };
            s.append(&(1..=5).map(|i| entry(i, 1)).collect::<Vec<_>>(), Some(&hs)).unwrap();
            // A new leader overwrites the uncommitted suffix.
            s.append(&[entry(4, 2)], None).unwrap();
        }
        let s = RaftStore::open(dir.path()).unwrap();
        assert!(!s.is_empty());
        let st = s.initial_state().unwrap();
        assert_eq!((st.hard_state.term, st.hard_state.vote, st.hard_state.commit), (2, 1, 2));
        assert_eq!(st.conf_state.voters, vec![1, 2, 3]);
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 4));
        assert_eq!(s.term(4).unwrap(), 2);
        let got = s.entries(2, 5, None, GetEntriesContext::empty(false)).unwrap();
        assert_eq!(got.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(), vec![(2, 1), (3, 1), (4, 2)]);
        let one = s.entries(2, 5, Some(1), GetEntriesContext::empty(false)).unwrap();
        assert_eq!(one.len(), 1, "a size limit still returns one entry");
    }

    #[test]
    fn compaction_keeps_the_boundary_term_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RaftStore::open(dir.path()).unwrap();
            s.append(&(1..=10).map(|i| entry(i, 1 + i / 5)).collect::<Vec<_>>(), None).unwrap();
            s.compact(6).unwrap();
            assert_eq!(s.log_len(), 4);
        }
        let s = RaftStore::open(dir.path()).unwrap();
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (7, 10));
        assert_eq!(s.term(6).unwrap(), 2);
        assert!(matches!(s.term(5), Err(raft::Error::Store(StorageError::Compacted))));
        assert!(matches!(
            s.entries(5, 8, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        ));
    }

    #[test]
    fn an_installed_snapshot_replaces_log_and_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = MetadataState::default();
        state.image.cluster_id = "c1".into();
        state.image.version = 40;
        state.controllers.insert(1, "127.0.0.1:1".into());
        {
            let s = RaftStore::open(dir.path()).unwrap();
            s.append(&(1..=3).map(|i| entry(i, 1)).collect::<Vec<_>>(), None).unwrap();
            let mut snap = Snapshot::default();
            snap.mut_metadata().index = 42;
            snap.mut_metadata().term = 3;
            snap.mut_metadata().set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
            s.apply_snapshot(&snap, state.clone()).unwrap();
        }
        let s = RaftStore::open(dir.path()).unwrap();
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap(), s.term(42).unwrap()), (43, 42, 3));
        let applied = s.applied().read();
        assert_eq!(applied.index, 42);
        assert_eq!(applied.state.encode(), state.encode());
        assert_eq!(s.initial_state().unwrap().hard_state.commit, 42);
    }
}
