//! Urgent tasks as stored: their SQL records (`tasks`, with what devices reported in `task_signs` and
//! `task_outcomes`, the office's `task_evaluations`, and who received them in `device_tasks`) and their
//! documents (`task_docs`, versioned).

use crate::store::db::{now_ms, Backend, Db};
use crate::store::projection::NullableF64;
use crate::store::{StoreError, StoreResult};
use client_core::task::doc::TaskDoc;
use client_core::task::validate::NewEntries;
use sqlx::{Any, AnyConnection, Transaction};

type Tx = Transaction<'static, Any>;

/// A new task's record.
pub struct NewTaskRow<'a> {
    pub task_id: &'a str,
    pub team: &'a str,
    pub grid: Option<&'a str>,
    pub village: Option<&'a str>,
    pub town: Option<&'a str>,
    pub place_id: Option<&'a str>,
    pub target_label: &'a str,
    pub target_address: Option<&'a str>,
    pub target_phone: Option<&'a str>,
    pub fraud_type: &'a str,
    pub priority: &'a str,
    pub instructions: &'a str,
    pub deadline: i64,
    pub created_by: &'a str,
    pub created_at: i64,
    pub status: &'a str,
}

/// Stores a new task's record and its first document version, in the caller's transaction.
pub async fn insert_task(tx: &mut Tx, t: NewTaskRow<'_>, doc: Vec<u8>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tasks (task_id, team, grid_code, village_code, town_code, place_id, target_label, target_address, \
         target_phone, fraud_type, priority, instructions, deadline, created_by, created_at, status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(t.task_id)
    .bind(t.team)
    .bind(t.grid)
    .bind(t.village)
    .bind(t.town)
    .bind(t.place_id)
    .bind(t.target_label)
    .bind(t.target_address)
    .bind(t.target_phone)
    .bind(t.fraud_type)
    .bind(t.priority)
    .bind(t.instructions)
    .bind(t.deadline)
    .bind(t.created_by)
    .bind(t.created_at)
    .bind(t.status)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO task_docs (task_id, doc, version, updated_at) VALUES ($1, $2, 1, $3)")
        .bind(t.task_id)
        .bind(doc)
        .bind(t.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Serialises writers of one task's document across server instances (PostgreSQL); on SQLite the write gate
/// already does.
pub async fn lock(tx: &mut Tx, backend: Backend, id: &str) -> StoreResult<()> {
    if backend == Backend::Postgres {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("doorstep-task:{id}").as_bytes());
        let key = i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

/// A task's stored document and its version.
pub async fn load_doc(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<(TaskDoc, i64)>> {
    let row: Option<(Vec<u8>, i64)> =
        sqlx::query_as("SELECT doc, version FROM task_docs WHERE task_id = $1").bind(id).fetch_optional(conn).await?;
    row.map(|(bytes, version)| Ok((TaskDoc::load(&bytes)?, version))).transpose()
}

/// Stores a new version of a task's document; refuses if another writer stored one meanwhile.
pub async fn save_doc(tx: &mut Tx, id: &str, doc: &TaskDoc, version: i64) -> StoreResult<()> {
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
        return Err(StoreError::conflict(format!("task {id} changed concurrently; retry")));
    }
    Ok(())
}

/// Records new sign-for entries and outcomes and brings the task's first times and state up to date.
/// Idempotent: entries already recorded change nothing.
pub async fn record_entries(tx: &mut Tx, id: &str, e: &NewEntries) -> StoreResult<()> {
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

/// A task's status and how many outcomes it has, in the caller's transaction; `None` if there is no such task.
pub async fn status_and_outcome_count(tx: &mut Tx, id: &str) -> StoreResult<Option<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT status, (SELECT COUNT(*) FROM task_outcomes o WHERE o.task_id = t.task_id) FROM tasks t WHERE task_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The office's evaluation of a task.
pub struct EvaluationRow<'a> {
    pub task_id: &'a str,
    pub new_status: &'a str,
    pub result: &'a str,
    pub comment: &'a str,
    pub by: &'a str,
    pub at: i64,
    pub closed_at: Option<i64>,
    /// A new deadline (ms), or `None` to keep the one stored.
    pub deadline: Option<i64>,
}

/// Stores an evaluation on the task and in its history, in the caller's transaction.
pub async fn record_evaluation(tx: &mut Tx, e: EvaluationRow<'_>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE tasks SET status = $1, evaluation = $2, evaluation_comment = $3, evaluated_by = $4, evaluated_at = $5, \
         closed_at = $6, deadline = COALESCE($7, deadline) WHERE task_id = $8",
    )
    .bind(e.new_status)
    .bind(e.result)
    .bind(e.comment)
    .bind(e.by)
    .bind(e.at)
    .bind(e.closed_at)
    .bind(e.deadline)
    .bind(e.task_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO task_evaluations (task_id, at, result, comment, evaluated_by) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(e.task_id)
    .bind(e.at)
    .bind(e.result)
    .bind(e.comment)
    .bind(e.by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const RECORD_COLUMNS: &str = "task_id, team, grid_code, village_code, place_id, target_label, fraud_type, priority, \
    status, created_at, deadline, received_at, opened_at, first_action_at, reached_at, evaluation, closed_at";

/// A task's record as lists show it.
#[derive(sqlx::FromRow)]
pub struct TaskRecord {
    pub task_id: String,
    pub team: String,
    pub grid_code: Option<String>,
    pub village_code: Option<String>,
    pub place_id: Option<String>,
    pub target_label: String,
    pub fraud_type: String,
    pub priority: String,
    pub status: String,
    pub created_at: i64,
    pub deadline: i64,
    pub received_at: Option<i64>,
    pub opened_at: Option<i64>,
    pub first_action_at: Option<i64>,
    pub reached_at: Option<i64>,
    pub evaluation: Option<String>,
    pub closed_at: Option<i64>,
}

/// Every task's record (or one team's, `team` not empty), most urgent first: active before closed, then by
/// priority and deadline.
pub async fn records(db: &Db, team: &str) -> StoreResult<Vec<TaskRecord>> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM tasks WHERE ($1 = '' OR team = $1) ORDER BY \
         CASE WHEN status = 'closed' THEN 1 ELSE 0 END, \
         CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, deadline, task_id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(team).fetch_all(&db.pool).await?)
}

/// One task's record, if there is such a task.
pub async fn record(db: &Db, id: &str) -> StoreResult<Option<TaskRecord>> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM tasks WHERE task_id = $1");
    Ok(sqlx::query_as::<_, TaskRecord>(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&db.pool).await?)
}

/// A task's target address, phone, instructions and evaluation comment. Fails if there is no such task.
pub async fn particulars(db: &Db, id: &str) -> StoreResult<(Option<String>, Option<String>, String, Option<String>)> {
    Ok(sqlx::query_as(
        "SELECT target_address, target_phone, instructions, evaluation_comment FROM tasks WHERE task_id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await?)
}

/// A task's sign-for entries in time order: kind, volunteer, device, at.
pub async fn signs(db: &Db, id: &str) -> StoreResult<Vec<(String, String, String, i64)>> {
    Ok(sqlx::query_as("SELECT kind, volunteer, device_id, at FROM task_signs WHERE task_id = $1 ORDER BY at, sign_id")
        .bind(id)
        .fetch_all(&db.pool)
        .await?)
}

/// An outcome: id, volunteer, device, at, method, reached, dissuaded, money lost (0 or 1), amount, feedback.
pub type OutcomeRecord = (String, String, String, i64, String, i64, i64, i64, Option<i64>, Option<String>);

/// A task's outcomes in time order.
pub async fn outcomes(db: &Db, id: &str) -> StoreResult<Vec<OutcomeRecord>> {
    Ok(sqlx::query_as(
        "SELECT outcome_id, volunteer, device_id, at, method, reached, dissuaded, money_lost, amount_fen, feedback \
         FROM task_outcomes WHERE task_id = $1 ORDER BY at, outcome_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}

/// A task's evaluations in time order: at, result, comment, by whom.
pub async fn evaluations(db: &Db, id: &str) -> StoreResult<Vec<(i64, String, String, String)>> {
    Ok(sqlx::query_as("SELECT at, result, comment, evaluated_by FROM task_evaluations WHERE task_id = $1 ORDER BY at")
        .bind(id)
        .fetch_all(&db.pool)
        .await?)
}

/// The devices that received a task, in delivery order: device, its user's name, delivered, purged.
pub async fn deliveries(db: &Db, id: &str) -> StoreResult<Vec<(String, Option<String>, i64, Option<i64>)>> {
    Ok(sqlx::query_as(
        "SELECT dt.device_id, u.username, dt.delivered_at, dt.purged_at FROM device_tasks dt \
         LEFT JOIN devices d ON d.device_id = dt.device_id LEFT JOIN users u ON u.id = d.user_id \
         WHERE dt.task_id = $1 ORDER BY dt.delivered_at, dt.device_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?)
}

/// A task's times for the figures: village, created, deadline, first action, reached, evaluation, evaluated.
pub type TaskTimesRecord = (Option<String>, i64, i64, Option<i64>, Option<i64>, Option<String>, Option<i64>);

/// The times of the tasks created in `[start, end)` within an area's subtree and a team (each may be empty).
pub async fn times_created_between(
    db: &Db,
    (start, end): (i64, i64),
    area: &str,
    team: &str,
) -> StoreResult<Vec<TaskTimesRecord>> {
    Ok(sqlx::query_as(
        "SELECT village_code, created_at, deadline, first_action_at, reached_at, evaluation, evaluated_at FROM tasks \
         WHERE created_at >= $3 AND created_at < $4 \
         AND ($1 = '' OR grid_code = $1 OR village_code = $1 OR town_code = $1) AND ($2 = '' OR team = $2)",
    )
    .bind(area)
    .bind(team)
    .bind(start)
    .bind(end)
    .fetch_all(&db.pool)
    .await?)
}

/// The tasks the device received, each with when it said it deleted it (if it did).
pub async fn held_by_device(tx: &mut Tx, device: &str) -> StoreResult<Vec<(String, Option<i64>)>> {
    Ok(sqlx::query_as::<_, (String, Option<i64>)>("SELECT task_id, purged_at FROM device_tasks WHERE device_id = $1")
        .bind(device)
        .fetch_all(&mut **tx)
        .await?)
}

/// Whether the device holds a task it has not deleted.
pub async fn device_holds_any(conn: &mut AnyConnection, device: &str) -> StoreResult<bool> {
    let held: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM device_tasks WHERE device_id = $1 AND purged_at IS NULL LIMIT 1")
            .bind(device)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(held.is_some())
}

/// Whether the team has a task whose status is not `closed`.
pub async fn team_has_any_but(conn: &mut AnyConnection, team: &str, closed: &str) -> StoreResult<bool> {
    let open: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM tasks WHERE team = $1 AND status <> $2 LIMIT 1")
        .bind(team)
        .bind(closed)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(open.is_some())
}

/// A task's team and status, if there is such a task.
pub async fn team_and_status(tx: &mut Tx, id: &str) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as("SELECT team, status FROM tasks WHERE task_id = $1").bind(id).fetch_optional(&mut **tx).await?)
}

/// The ids of the team's tasks whose status is not `closed`, in order.
pub async fn ids_of_team_but(tx: &mut Tx, team: &str, closed: &str) -> StoreResult<Vec<String>> {
    let ids: Vec<(String,)> =
        sqlx::query_as("SELECT task_id FROM tasks WHERE team = $1 AND status <> $2 ORDER BY task_id")
            .bind(team)
            .bind(closed)
            .fetch_all(&mut **tx)
            .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Whether a device of the user received the task.
pub async fn received_by_user(tx: &mut Tx, task: &str, user_id: &str) -> StoreResult<bool> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT dt.device_id FROM device_tasks dt JOIN devices d ON d.device_id = dt.device_id \
         WHERE dt.task_id = $1 AND d.user_id = $2",
    )
    .bind(task)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

/// Records that the device holds the task: when it first received it, and that it holds it again if it had
/// deleted it. A device that already holds it leaves its row unwritten.
pub async fn note_delivered(tx: &mut Tx, device: &str, task: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO device_tasks (device_id, task_id, delivered_at) VALUES ($1, $2, $3) \
         ON CONFLICT (device_id, task_id) DO UPDATE SET purged_at = NULL WHERE device_tasks.purged_at IS NOT NULL",
    )
    .bind(device)
    .bind(task)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that the device deleted the task at `now`, if the task's status is `closed`.
pub async fn note_purged_if(tx: &mut Tx, device: &str, task: &str, closed: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "UPDATE device_tasks SET purged_at = $1 WHERE device_id = $2 AND task_id = $3 \
         AND task_id IN (SELECT task_id FROM tasks WHERE status = $4)",
    )
    .bind(now)
    .bind(device)
    .bind(task)
    .bind(closed)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
