//! The device's urgent tasks: one document per task in its own folder, kept in the store every document kind uses
//! (snapshot + fsynced append-only log + sync mark per task, `store`), and deleted file by file once closed.

use crate::store::{DocStore, StoreError};
use crate::task::doc::TaskDoc;

/// The tasks folder of a profile.
pub type TaskStore = DocStore<TaskDoc>;

impl TaskStore {
    /// Ids of the tasks held, sorted.
    pub fn tasks(&self) -> Result<Vec<String>, StoreError> {
        self.ids()
    }

    /// The store itself: a task keeps the same files as a grid (signatures to pass on, the server's latest
    /// attestation). Kept for callers written when the task store wrapped the grid store.
    pub fn files(&self) -> &Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SyncMark;
    use crate::task::doc::tests::sample_task;
    use crate::task::model::{Sign, SignKind};
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
