//! The device's urgent tasks: one document per task in its own folder, kept with the grid store's crash-safe
//! files (snapshot + fsynced append-only log + sync mark per task), and deleted file by file once closed.

use crate::store::{GridStore, StoreError, SyncMark};
use crate::task_doc::TaskDoc;
use automerge::Change;
use std::path::Path;

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The tasks folder of a profile, held under an exclusive lock for as long as the value lives.
#[derive(Debug)]
pub struct TaskStore {
    files: GridStore,
}

impl TaskStore {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(TaskStore { files: GridStore::open(dir)? })
    }

    /// Ids of the tasks held, sorted.
    pub fn tasks(&self) -> Result<Vec<String>> {
        self.files.grids()
    }

    pub fn load(&self, task: &str) -> Result<TaskDoc> {
        self.files.load_doc(task)
    }

    /// Makes changes durable: returns only after they are on disk.
    pub fn append(&self, task: &str, changes: &[Change]) -> Result<()> {
        self.files.append(task, changes)
    }

    pub fn replace(&self, task: &str, doc: &TaskDoc) -> Result<()> {
        self.files.replace_doc(task, doc)
    }

    pub fn mark(&self, task: &str) -> Result<SyncMark> {
        self.files.mark(task)
    }

    pub fn set_mark(&self, task: &str, mark: &SyncMark) -> Result<()> {
        self.files.set_mark(task, mark)
    }

    /// The files underneath, for what a task keeps exactly like a grid: the writers' signatures of changes to pass
    /// on (`<id>.sigs`) and the server's latest attestation (`<id>.attest`). `remove` deletes those too.
    pub fn files(&self) -> &GridStore {
        &self.files
    }

    /// Deletes every file of the task (snapshot, log, sync mark, leftovers of interrupted writes) and syncs the
    /// folder, so that neither the task nor any of its history remains in the profile.
    pub fn remove(&self, task: &str) -> Result<()> {
        self.files.remove(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_doc::tests::sample_task;
    use crate::task_model::{Sign, SignKind};
    use automerge::ActorId;

    #[test]
    fn a_removed_task_leaves_no_file_holding_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = TaskStore::open(dir.path()).unwrap();
        let info = sample_task();
        let id = info.id.to_string();
        let mut doc = TaskDoc::create(ActorId::random(), &info).unwrap();
        store.replace(&id, &doc).unwrap();
        let sign = Sign {
            id: uuid::Uuid::now_v7(),
            kind: SignKind::Opened,
            volunteer: "amy".into(),
            device: "d".into(),
            at: info.created_at,
        };
        store.append(&id, &[doc.add_sign(&sign).unwrap()]).unwrap();
        store.set_mark(&id, &SyncMark::default()).unwrap();
        // Leftover of an atomic write interrupted by a crash.
        std::fs::write(dir.path().join(format!(".{id}.snapshot.tmp")), doc.save()).unwrap();
        assert_eq!(store.load(&id).unwrap().signs().unwrap().len(), 1);
        assert_eq!(store.tasks().unwrap(), std::slice::from_ref(&id));

        store.remove(&id).unwrap();
        assert!(store.tasks().unwrap().is_empty());
        let phone = info.target.phone.unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            assert!(!path.to_string_lossy().contains(&id), "{} remains", path.display());
            assert!(!bytes.windows(phone.len()).any(|w| w == phone.as_bytes()), "{} holds the phone", path.display());
        }
    }
}
