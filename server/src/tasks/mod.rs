//! Urgent dissuasion tasks on the server: creating one (its document and its SQL record), storing task documents,
//! recording what devices report (sign-for entries, outcomes) and the office's evaluation.
//!
//! The SQL record (`tasks`) is what the office, the dashboard and the reports read; the document (`task_docs`)
//! is what travels to the devices of the team. Both change in the same transaction.

pub mod read;

use crate::accounts::audit;
use crate::refusal::Refusal;
use crate::store::db::now_ms;
use crate::store::tasks::{EvaluationRow, NewTaskRow};
use crate::store::{areas, places, tasks as stored};
use crate::AppState;
use chrono::{DateTime, Utc};
use client_core::task::doc::TaskDoc;
use client_core::task::model::{Evaluation, FraudType, Priority, Target, TaskInfo};
use serde::Deserialize;

/// Storing task documents and what devices report, shared with the task part of a sync.
pub(crate) use crate::store::tasks::{load_doc, lock, record_entries, save_doc};

/// Task states in SQL. `open`: waiting for the person to be reached; `done`: reached, waiting for the office's
/// evaluation; `follow_up`: the office sent it back; `closed`: evaluated effective or ineffective (devices delete
/// it at their next sync).
pub mod status {
    pub const OPEN: &str = "open";
    pub const DONE: &str = "done";
    pub const FOLLOW_UP: &str = "follow_up";
    pub const CLOSED: &str = "closed";
}

/// What the office sends to create a task.
#[derive(Debug, Deserialize)]
pub struct NewTask {
    /// A place of the registry, or none for a person outside it (then `address` is required).
    #[serde(default)]
    pub place_id: Option<String>,
    /// The grid where the person lives (implied by `place_id`).
    #[serde(default)]
    pub grid: Option<String>,
    /// The team to act; by default the team the grid is assigned to.
    #[serde(default)]
    pub team: Option<String>,
    pub person: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    pub fraud_type: FraudType,
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// RFC 3339.
    pub deadline: String,
    #[serde(default)]
    pub instructions: String,
}

fn default_priority() -> Priority {
    Priority::Urgent
}

/// Where the target lies in the area tree, and which team acts.
struct Placement {
    grid: Option<String>,
    village: Option<String>,
    town: Option<String>,
    address: Option<String>,
    team: String,
}

async fn placement(state: &AppState, t: &NewTask) -> Result<Placement, Refusal> {
    let db = &state.db;
    let (grid, village, town, place_address) = match &t.place_id {
        Some(place) => {
            let (g, v, tw, a) = places::areas_and_address(db, place).await?.ok_or_else(|| {
                Refusal::not_found(format!("no place {place:?}; check the id, or give an address instead"))
            })?;
            if t.grid.as_ref().is_some_and(|given| given != &g) {
                return Err(Refusal::invalid(format!(
                    "place {place} is in grid {g}, not {}",
                    t.grid.as_ref().unwrap()
                )));
            }
            (Some(g), Some(v), Some(tw), a)
        }
        None => match &t.grid {
            Some(g) => {
                let village = areas::village_of_grid(db, g)
                    .await?
                    .ok_or_else(|| Refusal::not_found(format!("no grid with code {g:?}")))?;
                let town = match &village {
                    Some(v) => areas::parent_of(db, v).await?,
                    None => None,
                };
                (Some(g.clone()), village, town, None)
            }
            None => (None, None, None, None),
        },
    };
    let team = match (&t.team, &grid) {
        (Some(team), _) => {
            crate::accounts::people::team_must_exist(&state.db, team).await?;
            team.clone()
        }
        (None, Some(g)) => areas::team_of_grid(db, g).await?.ok_or_else(|| {
            Refusal::invalid(format!("grid {g} is not assigned to a team; assign it, or choose a team"))
        })?,
        (None, None) => {
            return Err(Refusal::invalid("say who acts: give a place, a grid assigned to a team, or a team"))
        }
    };
    let address = t.address.clone().filter(|a| !a.trim().is_empty()).or(place_address);
    Ok(Placement { grid, village, town, address, team })
}

/// Creates a task: its document and its record, in one transaction. Returns the task id.
pub async fn create(state: &AppState, t: NewTask, by: &str) -> Result<String, Refusal> {
    create_at(state, t, by, now_ms()).await
}

/// `create` as if at `created_ms` (the demo town back-dates some tasks).
pub(crate) async fn create_at(state: &AppState, t: NewTask, by: &str, created_ms: i64) -> Result<String, Refusal> {
    let deadline = DateTime::parse_from_rfc3339(&t.deadline)
        .map_err(|_| {
            Refusal::invalid(format!(
                "deadline {:?} is not an RFC 3339 time such as 2026-11-27T18:00:00+08:00",
                t.deadline
            ))
        })?
        .with_timezone(&Utc);
    let p = placement(state, &t).await?;
    let now = client_core::grid::doc::millis_to_time(created_ms);
    let info = TaskInfo {
        id: uuid::Uuid::now_v7(),
        fraud_type: t.fraud_type,
        priority: t.priority,
        created_at: now,
        deadline,
        instructions: t.instructions.trim().to_string(),
        target: Target {
            label: t.person.trim().to_string(),
            place_id: t.place_id.clone(),
            grid: p.grid.clone(),
            address: p.address.clone(),
            phone: t.phone.clone().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
        },
        follow_up: None,
    };
    info.check().map_err(Refusal::invalid)?;
    let doc = TaskDoc::create(state.grids.actor().clone(), &info)?;
    let id = info.id.to_string();
    let (_gate, mut tx) = state.db.begin_write().await?;
    let record = NewTaskRow {
        task_id: &id,
        team: &p.team,
        grid: p.grid.as_deref(),
        village: p.village.as_deref(),
        town: p.town.as_deref(),
        place_id: info.target.place_id.as_deref(),
        target_label: &info.target.label,
        target_address: info.target.address.as_deref(),
        target_phone: info.target.phone.as_deref(),
        fraud_type: info.fraud_type.id(),
        priority: info.priority.id(),
        instructions: &info.instructions,
        deadline: deadline.timestamp_millis(),
        created_by: by,
        created_at: now.timestamp_millis(),
        status: status::OPEN,
    };
    stored::insert_task(&mut tx, record, doc.save()).await?;
    tx.commit().await?;
    // Personal data (who, where, phone) stays out of the audit log.
    let detail = format!(
        "task {id} for team {}: {} {}, deadline {}",
        p.team,
        info.priority.id(),
        info.fraud_type.id(),
        deadline.to_rfc3339()
    );
    audit::record(&state.db, Some(by), "task.create", &detail).await;
    Ok(id)
}

#[derive(Debug, Deserialize)]
pub struct NewEvaluation {
    pub result: Evaluation,
    #[serde(default)]
    pub comment: String,
    /// For a follow-up: a new deadline (RFC 3339); the old one stays otherwise.
    #[serde(default)]
    pub deadline: Option<String>,
}

/// The office's evaluation (评价). `effective`/`ineffective` close the task; `follow-up` sends it back to the
/// team's devices with the comment (and a new deadline if given).
pub async fn evaluate(state: &AppState, id: &str, e: NewEvaluation, by: &str) -> Result<(), Refusal> {
    if e.comment.len() > client_core::grid::model::MAX_NOTE_BYTES {
        return Err(Refusal::invalid("the comment is longer than 2000 bytes"));
    }
    let deadline = e
        .deadline
        .as_deref()
        .map(|d| {
            DateTime::parse_from_rfc3339(d)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| Refusal::invalid(format!("deadline {d:?} is not an RFC 3339 time")))
        })
        .transpose()?;
    if deadline.is_some() && e.result.closes() {
        return Err(Refusal::invalid("a new deadline goes with a follow-up only"));
    }
    let now = now_ms();
    if deadline.is_some_and(|d| d.timestamp_millis() <= now) {
        return Err(Refusal::invalid("the new deadline must be in the future"));
    }
    let (_gate, mut tx) = state.db.begin_write().await?;
    lock(&mut tx, state.db.backend, id).await?;
    let (current, outcomes) = stored::status_and_outcome_count(&mut tx, id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no task {id}")))?;
    if current == status::CLOSED {
        return Err(Refusal::conflict(format!("task {id} is already closed")));
    }
    if outcomes == 0 {
        return Err(Refusal::conflict(format!(
            "task {id} has no outcome yet: the team has not reported back; evaluate it once they have"
        )));
    }
    let new_status = if e.result.closes() { status::CLOSED } else { status::FOLLOW_UP };
    let evaluation = EvaluationRow {
        task_id: id,
        new_status,
        result: e.result.id(),
        comment: &e.comment,
        by,
        at: now,
        closed_at: e.result.closes().then_some(now),
        deadline: deadline.map(|d| d.timestamp_millis()),
    };
    stored::record_evaluation(&mut tx, evaluation).await?;
    if !e.result.closes() {
        let (mut doc, version) =
            load_doc(&mut tx, id).await?.ok_or_else(|| Refusal::internal(format!("task {id} has no document")))?;
        doc.set_actor(state.grids.actor().clone());
        doc.request_follow_up(client_core::grid::doc::millis_to_time(now), &e.comment, deadline)?;
        save_doc(&mut tx, id, &doc, version).await?;
    }
    tx.commit().await?;
    audit::record(&state.db, Some(by), "task.evaluate", &format!("task {id}: {}", e.result.id())).await;
    Ok(())
}
