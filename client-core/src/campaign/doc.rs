//! The campaign definition as a synced document: the server writes one per applied version (`v<N>`, meant for
//! every device) and withdraws the one before; devices and hubs hold it, count with it offline, and write
//! nothing into it. Its definition is the file as the office applied it.

use crate::campaign::{self, Campaign};
use crate::grid::doc::DocError;
use crate::limits::Budget;
use crate::protocol::{DocPush, DocReply};
use crate::store::{DocStore, StoredDoc};
use crate::sync::{Author, DocKind, Violation};
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc, ScalarValue, Value, ROOT};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct CampaignDoc(Automerge);

impl CampaignDoc {
    /// Version `version` with its definition file. The same bytes on every replica that makes it.
    pub fn new(version: i64, definition: &str) -> CampaignDoc {
        let actor = ActorId::from(format!("campaign-v{version}").as_bytes());
        let mut doc = Automerge::new().with_actor(actor);
        let mut tx = doc.transaction();
        tx.put(ROOT, "version", version).expect("a fresh document takes a field");
        tx.put(ROOT, "definition", definition).expect("a fresh document takes a field");
        tx.commit_with(CommitOptions::default().with_time(0));
        CampaignDoc(doc)
    }

    /// The document's id for a version.
    pub fn id(version: i64) -> String {
        format!("v{version}")
    }

    pub fn version(&self) -> Option<i64> {
        match self.0.get(ROOT, "version").ok()??.0 {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Int(v) => Some(*v),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn definition(&self) -> Option<String> {
        match self.0.get(ROOT, "definition").ok()??.0 {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(t) => Some(t.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The campaign it defines, checked.
    pub fn campaign(&self) -> Option<(i64, Campaign)> {
        Some((self.version()?, campaign::parse(&self.definition()?).ok()?))
    }
}

/// The newest campaign held in a device's or hub's documents folder (`dir`), with its version; the default
/// campaign (version 0) when it holds none. Its kinds and deliveries become known to the sync engine. Waits while
/// a sync holds the folder's store.
pub fn held(dir: &Path) -> (i64, Campaign) {
    let newest = DocStore::<CampaignDoc>::open(&dir.join(<CampaignDoc as DocKind>::NOUN)).ok().and_then(|store| {
        let ids = store.ids().ok()?;
        ids.iter().filter_map(|id| store.load(id).ok()?.campaign()).max_by_key(|(v, _)| *v)
    });
    match newest {
        Some((version, c)) => {
            campaign::know(&c);
            (version, c)
        }
        None => (0, Campaign::default_campaign().clone()),
    }
}

impl StoredDoc for CampaignDoc {
    fn load(bytes: &[u8]) -> Result<Self, DocError> {
        Ok(CampaignDoc(Automerge::load(bytes)?))
    }
    fn apply_changes(&mut self, changes: Vec<Change>) -> Result<(), DocError> {
        Ok(self.0.apply_changes(changes)?)
    }
    fn save(&self) -> Vec<u8> {
        self.0.save()
    }
}

impl DocKind for CampaignDoc {
    type Push = DocPush;
    type Reply = DocReply;
    type Keys = ();
    type Records = ();
    const NOUN: &'static str = "campaign";
    const BUDGET: Budget = Budget::SyncNewChanges;

    fn subject(id: &str) -> String {
        format!("campaign/{id}")
    }
    fn automerge(&self) -> &Automerge {
        &self.0
    }
    fn set_actor(&mut self, actor: ActorId) {
        self.0.set_actor(actor);
    }
    fn changes_since(&self, have: &[ChangeHash]) -> Vec<Change> {
        self.0.get_changes(have)
    }
    /// Only the office changes what counts, through the server.
    fn check_ops(&self, change: &Change, _author: &Author) -> Result<(), Violation> {
        Err(Violation(format!("change {}: devices write nothing into a campaign definition", change.hash())))
    }
    fn check_added(&self, _keys: &(), _author: &Author, _records: &mut ()) -> Result<(), Violation> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_reads_back_and_every_replica_makes_the_same_document() {
        let doc = CampaignDoc::new(3, campaign::DEFAULT_TOML);
        assert_eq!(doc.campaign(), Some((3, Campaign::default_campaign().clone())));
        assert_eq!(doc.0.get_heads(), CampaignDoc::new(3, campaign::DEFAULT_TOML).0.get_heads());
        assert_ne!(doc.0.get_heads(), CampaignDoc::new(4, campaign::DEFAULT_TOML).0.get_heads());
        let author = Author { actor: ActorId::random(), username: "v".into(), device: "d".into() };
        let mut written = doc.clone();
        written.0.set_actor(author.actor.clone());
        let mut tx = written.0.transaction();
        tx.put(ROOT, "version", 99).unwrap();
        tx.commit();
        let change = written.0.get_last_local_change().unwrap().clone();
        assert!(doc.check_ops(&change, &author).is_err());
    }

    #[test]
    fn a_device_holds_the_default_until_it_receives_a_version() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(held(dir.path()), (0, Campaign::default_campaign().clone()));
        let two_cards = include_str!("../../../docs/campaigns/two-cards.toml");
        {
            // The store is one process's at a time: closed before `held` opens it.
            let store = DocStore::<CampaignDoc>::open(&dir.path().join("campaign")).unwrap();
            for (v, text) in [(1, campaign::DEFAULT_TOML), (2, two_cards)] {
                store.replace(&CampaignDoc::id(v), &CampaignDoc::new(v, text)).unwrap();
            }
        }
        let (version, c) = held(dir.path());
        assert_eq!(version, 2);
        assert!(c.indicator("two_cards").is_some());
        assert!(campaign::is_known_delivery("two_cards_notice"));
    }
}
