//! The task part of a sync: inside the sync's transaction, check and store what a device pushes for the tasks it
//! holds (its own sign-fors and outcomes, and those of team-mates it relays with their signatures), send it its
//! team's open tasks it lacks, tell it which tasks are closed (so it deletes them), and note which closed tasks it
//! no longer holds. Clients that do not send the request's `tasks` key get no tasks.
//!
//! Every reply but `resend_all` carries the server's signed statement of what it holds of the task: its heads,
//! or, for a closed task, every change, so that a device told of the closing by a hub can check that nothing it
//! holds is missing here before it deletes the task.

use crate::refusal::Refusal;
use crate::store::tasks as stored;
use crate::sync::documents::{sync_kind, Context, Shelf};
use crate::tasks::{self, status};
use automerge::ChangeHash;
use client_core::limits::SyncBudget;
use client_core::protocol::{TaskPush, TaskReply};
use client_core::task::doc::TaskDoc;
use client_core::task::validate::NewEntries;
use sqlx::{Any, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};

type Tx = Transaction<'static, Any>;

/// What the task part of a sync did.
#[derive(Default)]
pub struct TaskSync {
    pub replies: Vec<TaskReply>,
    /// Team-mates' changes the device relayed.
    pub relayed: usize,
}

/// Runs within the sync's write transaction, through the one receiving loop (`documents::sync_kind`): a refused
/// push fails the whole sync, and nothing is stored. Entries of `quarantined` devices (revoked, or their account
/// disabled) relayed by a team-mate are stored in the document but not recorded.
pub async fn sync_tasks(
    tx: &mut Tx,
    ctx: &Context<'_>,
    user_id: &str,
    quarantined: &HashSet<String>,
    pushes: Option<&[TaskPush]>,
) -> Result<TaskSync, Refusal> {
    // A client that does not handle tasks gets none: their personal data would stay where nothing deletes it.
    let Some(pushes) = pushes else { return Ok(TaskSync::default()) };
    let shelf = TaskShelf { user_id, quarantined };
    // Task changes are bounded over the request before any is read (`limits::check_task_changes`).
    let (replies, relayed) = sync_kind(&shelf, tx, ctx, pushes, &mut SyncBudget::default()).await?;
    Ok(TaskSync { replies, relayed })
}

/// Urgent tasks in the task tables: meant for the team they are issued to while open; `closed` once closed or
/// no longer the device's team's.
struct TaskShelf<'a> {
    user_id: &'a str,
    quarantined: &'a HashSet<String>,
}

impl Shelf<TaskDoc> for TaskShelf<'_> {
    async fn meant(&self, tx: &mut Tx, ctx: &Context<'_>) -> Result<BTreeSet<String>, Refusal> {
        Ok(match ctx.team {
            Some(team) => stored::ids_of_team_but(tx, team, status::CLOSED).await?.into_iter().collect(),
            None => BTreeSet::new(),
        })
    }
    async fn held(&self, tx: &mut Tx, ctx: &Context<'_>) -> Result<HashMap<String, Option<i64>>, Refusal> {
        Ok(stored::held_by_device(tx, ctx.device_id).await?.into_iter().collect())
    }
    async fn gone(
        &self,
        tx: &mut Tx,
        ctx: &Context<'_>,
        id: &str,
        _meant: bool,
        held: &HashMap<String, Option<i64>>,
    ) -> Result<bool, Refusal> {
        let (task_team, task_status) = stored::team_and_status(tx, id)
            .await?
            .ok_or_else(|| Refusal::not_found(format!("task {id} does not exist on this server")))?;
        let theirs = ctx.team == Some(task_team.as_str());
        // A device that received a task (or another enrolment of the same user) may still deliver what it
        // recorded, even if its user changed teams meanwhile.
        if !theirs && !held.contains_key(id) && !stored::received_by_user(tx, id, self.user_id).await? {
            return Err(Refusal::forbidden(format!("task {id} is not issued to your team")));
        }
        Ok(task_status == status::CLOSED || !theirs)
    }
    async fn load(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str, lock: bool) -> Result<(TaskDoc, i64), Refusal> {
        if lock {
            tasks::lock(tx, ctx.backend, id).await?;
        }
        tasks::load_doc(tx, id).await?.ok_or_else(|| Refusal::internal(format!("task {id} has no document")))
    }
    async fn save(&self, tx: &mut Tx, id: &str, doc: &TaskDoc, version: i64) -> Result<(), Refusal> {
        Ok(tasks::save_doc(tx, id, doc, version).await?)
    }
    async fn record(&self, tx: &mut Tx, _ctx: &Context<'_>, id: &str, records: &NewEntries) -> Result<(), Refusal> {
        let counted = NewEntries {
            signs: records.signs.iter().filter(|s| !self.quarantined.contains(&s.device)).cloned().collect(),
            outcomes: records.outcomes.iter().filter(|o| !self.quarantined.contains(&o.device)).cloned().collect(),
        };
        Ok(tasks::record_entries(tx, id, &counted).await?)
    }
    async fn note_held(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str) -> Result<(), Refusal> {
        Ok(stored::note_delivered(tx, ctx.device_id, id, ctx.now).await?)
    }
    /// Once closed, a task the device no longer pushes is the device's word that it deleted it.
    async fn note_deleted(&self, tx: &mut Tx, ctx: &Context<'_>, id: &str) -> Result<(), Refusal> {
        Ok(stored::note_purged_if(tx, ctx.device_id, id, status::CLOSED, ctx.now).await?)
    }
    /// A device told a task is closed gets every change of it listed, so that it can check, even when a hub tells
    /// it, that nothing it holds is missing here before it deletes the task.
    fn attested(&self, doc: &TaskDoc, gone: bool) -> Vec<ChangeHash> {
        match gone {
            true => doc.changes_since(&[]).iter().map(|c| c.hash()).collect(),
            false => doc.heads(),
        }
    }
}
