//! Urgent dissuasion tasks on the server: creating one (its document and its SQL record), storing task documents,
//! recording what devices report (sign-for entries, outcomes) and the office's evaluation.
//!
//! The SQL record (`tasks`) is what the office, the dashboard and the reports read; the document (`task_docs`)
//! is what travels to the devices of the team. Both change in the same transaction.

pub mod read;

use crate::accounts::audit;
use crate::http::error::ApiError;
use crate::store::db::{now_ms, Backend};
use crate::store::projection::NullableF64;
use crate::AppState;
use chrono::{DateTime, Utc};
use client_core::task::doc::TaskDoc;
use client_core::task::model::{Evaluation, FraudType, Priority, Target, TaskInfo};
use client_core::task::validate::NewEntries;
use serde::Deserialize;
use sqlx::{Any, AnyConnection, Transaction};

type Tx = Transaction<'static, Any>;

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

async fn placement(state: &AppState, t: &NewTask) -> Result<Placement, ApiError> {
    let pool = &state.db.pool;
    let (grid, village, town, place_address) = match &t.place_id {
        Some(place) => {
            let row: Option<(String, String, String, Option<String>)> =
                sqlx::query_as("SELECT grid_code, village_code, town_code, address FROM places WHERE place_id = $1")
                    .bind(place)
                    .fetch_optional(pool)
                    .await?;
            let (g, v, tw, a) = row.ok_or_else(|| {
                ApiError::not_found(format!("no place {place:?}; check the id, or give an address instead"))
            })?;
            if t.grid.as_ref().is_some_and(|given| given != &g) {
                return Err(ApiError::bad_request(format!(
                    "place {place} is in grid {g}, not {}",
                    t.grid.as_ref().unwrap()
                )));
            }
            (Some(g), Some(v), Some(tw), a)
        }
        None => match &t.grid {
            Some(g) => {
                let row: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT parent_code FROM areas WHERE code = $1 AND kind = 'grid'")
                        .bind(g)
                        .fetch_optional(pool)
                        .await?;
                let village = row.ok_or_else(|| ApiError::not_found(format!("no grid with code {g:?}")))?.0;
                let town = match &village {
                    Some(v) => sqlx::query_as::<_, (Option<String>,)>("SELECT parent_code FROM areas WHERE code = $1")
                        .bind(v)
                        .fetch_optional(pool)
                        .await?
                        .and_then(|r| r.0),
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
        (None, Some(g)) => {
            let row: Option<(String,)> = sqlx::query_as("SELECT team FROM assignments WHERE grid_code = $1")
                .bind(g)
                .fetch_optional(pool)
                .await?;
            row.ok_or_else(|| {
                ApiError::bad_request(format!("grid {g} is not assigned to a team; assign it, or choose a team"))
            })?
            .0
        }
        (None, None) => {
            return Err(ApiError::bad_request("say who acts: give a place, a grid assigned to a team, or a team"))
        }
    };
    let address = t.address.clone().filter(|a| !a.trim().is_empty()).or(place_address);
    Ok(Placement { grid, village, town, address, team })
}

/// Creates a task: its document and its record, in one transaction. Returns the task id.
pub async fn create(state: &AppState, t: NewTask, by: &str) -> Result<String, ApiError> {
    create_at(state, t, by, now_ms()).await
}

/// `create` as if at `created_ms` (the demo town back-dates some tasks).
pub(crate) async fn create_at(state: &AppState, t: NewTask, by: &str, created_ms: i64) -> Result<String, ApiError> {
    let deadline = DateTime::parse_from_rfc3339(&t.deadline)
        .map_err(|_| {
            ApiError::bad_request(format!(
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
    info.check().map_err(ApiError::bad_request)?;
    let doc = TaskDoc::create(state.grids.actor().clone(), &info)?;
    let id = info.id.to_string();
    let (_gate, mut tx) = state.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO tasks (task_id, team, grid_code, village_code, town_code, place_id, target_label, target_address, \
         target_phone, fraud_type, priority, instructions, deadline, created_by, created_at, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&id)
    .bind(&p.team)
    .bind(&p.grid)
    .bind(&p.village)
    .bind(&p.town)
    .bind(&info.target.place_id)
    .bind(&info.target.label)
    .bind(&info.target.address)
    .bind(&info.target.phone)
    .bind(info.fraud_type.id())
    .bind(info.priority.id())
    .bind(&info.instructions)
    .bind(deadline.timestamp_millis())
    .bind(by)
    .bind(now.timestamp_millis())
    .bind(status::OPEN)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO task_docs (task_id, doc, version, updated_at) VALUES ($1, $2, 1, $3)")
        .bind(&id)
        .bind(doc.save())
        .bind(now.timestamp_millis())
        .execute(&mut *tx)
        .await?;
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

/// Serialises writers of one task's document across server instances (PostgreSQL); on SQLite the write gate
/// already does.
pub(crate) async fn lock(tx: &mut Tx, backend: Backend, id: &str) -> Result<(), ApiError> {
    if backend == Backend::Postgres {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("doorstep-task:{id}").as_bytes());
        let key = i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A task's stored document and its version.
pub(crate) async fn load_doc(conn: &mut AnyConnection, id: &str) -> Result<Option<(TaskDoc, i64)>, ApiError> {
    let row: Option<(Vec<u8>, i64)> =
        sqlx::query_as("SELECT doc, version FROM task_docs WHERE task_id = $1").bind(id).fetch_optional(conn).await?;
    row.map(|(bytes, version)| Ok((TaskDoc::load(&bytes)?, version))).transpose()
}

/// Stores a new version of a task's document; refuses if another writer stored one meanwhile.
pub(crate) async fn save_doc(tx: &mut Tx, id: &str, doc: &TaskDoc, version: i64) -> Result<(), ApiError> {
    let updated =
        sqlx::query("UPDATE task_docs SET doc = $1, version = $2, updated_at = $3 WHERE task_id = $4 AND version = $5")
            .bind(doc.save())
            .bind(version + 1)
            .bind(now_ms())
            .bind(id)
            .bind(version)
            .execute(&mut **tx)
            .await?;
    if updated.rows_affected() != 1 {
        return Err(ApiError::conflict(format!("task {id} changed concurrently; retry")));
    }
    Ok(())
}

/// Records new sign-for entries and outcomes and brings the task's first times and state up to date.
/// Idempotent: entries already recorded change nothing.
pub(crate) async fn record_entries(tx: &mut Tx, id: &str, e: &NewEntries) -> Result<(), ApiError> {
    let now = now_ms();
    for s in &e.signs {
        sqlx::query(
            "INSERT INTO task_signs (sign_id, task_id, kind, volunteer, device_id, at, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sign_id) DO NOTHING",
        )
        .bind(s.id.to_string())
        .bind(id)
        .bind(s.kind.id())
        .bind(&s.volunteer)
        .bind(&s.device)
        .bind(s.at.timestamp_millis())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    for o in &e.outcomes {
        sqlx::query(
            "INSERT INTO task_outcomes (outcome_id, task_id, volunteer, device_id, at, method, reached, dissuaded, \
             money_lost, amount_fen, feedback, lat, lon, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (outcome_id) DO NOTHING",
        )
        .bind(o.id.to_string())
        .bind(id)
        .bind(&o.volunteer)
        .bind(&o.device)
        .bind(o.at.timestamp_millis())
        .bind(o.method.id())
        .bind(i64::from(o.reached))
        .bind(i64::from(o.dissuaded))
        .bind(i64::from(o.money_lost))
        .bind(o.amount_fen)
        .bind(&o.feedback)
        .bind(NullableF64(o.gps.map(|g| g.0)))
        .bind(NullableF64(o.gps.map(|g| g.1)))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    // A follow-up is answered by a reached outcome recorded after the office asked for it.
    sqlx::query(
        "UPDATE tasks SET \
           received_at = (SELECT MIN(at) FROM task_signs WHERE task_id = $1 AND kind = 'received'), \
           opened_at = (SELECT MIN(at) FROM task_signs WHERE task_id = $1 AND kind = 'opened'), \
           first_action_at = (SELECT MIN(at) FROM task_outcomes WHERE task_id = $1), \
           reached_at = (SELECT MIN(at) FROM task_outcomes WHERE task_id = $1 AND reached = 1), \
           status = CASE \
             WHEN status = 'open' AND EXISTS (SELECT 1 FROM task_outcomes WHERE task_id = $1 AND reached = 1) \
               THEN 'done' \
             WHEN status = 'follow_up' AND EXISTS (SELECT 1 FROM task_outcomes \
               WHERE task_id = $1 AND reached = 1 AND at > evaluated_at) THEN 'done' \
             ELSE status END \
         WHERE task_id = $1",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
pub async fn evaluate(state: &AppState, id: &str, e: NewEvaluation, by: &str) -> Result<(), ApiError> {
    if e.comment.len() > client_core::grid::model::MAX_NOTE_BYTES {
        return Err(ApiError::bad_request("the comment is longer than 2000 bytes"));
    }
    let deadline = e
        .deadline
        .as_deref()
        .map(|d| {
            DateTime::parse_from_rfc3339(d)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::bad_request(format!("deadline {d:?} is not an RFC 3339 time")))
        })
        .transpose()?;
    if deadline.is_some() && e.result.closes() {
        return Err(ApiError::bad_request("a new deadline goes with a follow-up only"));
    }
    let now = now_ms();
    if deadline.is_some_and(|d| d.timestamp_millis() <= now) {
        return Err(ApiError::bad_request("the new deadline must be in the future"));
    }
    let (_gate, mut tx) = state.db.begin_write().await?;
    lock(&mut tx, state.db.backend, id).await?;
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT status, (SELECT COUNT(*) FROM task_outcomes o WHERE o.task_id = t.task_id) FROM tasks t WHERE task_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let (current, outcomes) = row.ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    if current == status::CLOSED {
        return Err(ApiError::conflict(format!("task {id} is already closed")));
    }
    if outcomes == 0 {
        return Err(ApiError::conflict(format!(
            "task {id} has no outcome yet: the team has not reported back; evaluate it once they have"
        )));
    }
    let new_status = if e.result.closes() { status::CLOSED } else { status::FOLLOW_UP };
    sqlx::query(
        "UPDATE tasks SET status = $1, evaluation = $2, evaluation_comment = $3, evaluated_by = $4, evaluated_at = $5, \
         closed_at = $6, deadline = COALESCE($7, deadline) WHERE task_id = $8",
    )
    .bind(new_status)
    .bind(e.result.id())
    .bind(&e.comment)
    .bind(by)
    .bind(now)
    .bind(e.result.closes().then_some(now))
    .bind(deadline.map(|d| d.timestamp_millis()))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO task_evaluations (task_id, at, result, comment, evaluated_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(now)
    .bind(e.result.id())
    .bind(&e.comment)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    if !e.result.closes() {
        let (mut doc, version) =
            load_doc(&mut tx, id).await?.ok_or_else(|| ApiError::internal(format!("task {id} has no document")))?;
        doc.set_actor(state.grids.actor().clone());
        doc.request_follow_up(client_core::grid::doc::millis_to_time(now), &e.comment, deadline)?;
        save_doc(&mut tx, id, &doc, version).await?;
    }
    tx.commit().await?;
    audit::record(&state.db, Some(by), "task.evaluate", &format!("task {id}: {}", e.result.id())).await;
    Ok(())
}
