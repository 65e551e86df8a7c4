//! The villages' monthly submissions (`monthly_submissions`) and their major or urgent situation reports
//! (`situation_reports`) as stored.

use crate::store::db::Db;
use crate::store::StoreResult;

/// One stored monthly submission; `figures` is JSON text.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubmissionRecord {
    pub area_code: String,
    pub month: String,
    pub figures: String,
    pub work_done: String,
    pub problems: String,
    pub plans: String,
    pub state: String,
    pub submitted_at: Option<i64>,
    pub submitted_by: Option<String>,
    pub updated_by: String,
    pub updated_at: i64,
}

const SUBMISSION_COLUMNS: &str =
    "area_code, month, figures, work_done, problems, plans, state, submitted_at, submitted_by, updated_by, updated_at";

/// An area's submission of a month, if it was ever saved.
pub async fn submission(db: &Db, area: &str, month: &str) -> StoreResult<Option<SubmissionRecord>> {
    let sql = format!("SELECT {SUBMISSION_COLUMNS} FROM monthly_submissions WHERE area_code = $1 AND month = $2");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(area).bind(month).fetch_optional(&db.pool).await?)
}

/// Every area's submission of a month (figures left out: the list does not need them).
pub async fn submissions_of_month(db: &Db, month: &str) -> StoreResult<Vec<SubmissionRecord>> {
    let sql = "SELECT area_code, month, '' AS figures, '' AS work_done, '' AS problems, '' AS plans, state, \
               submitted_at, submitted_by, updated_by, updated_at FROM monthly_submissions WHERE month = $1 \
               ORDER BY area_code";
    Ok(sqlx::query_as(sql).bind(month).fetch_all(&db.pool).await?)
}

/// Saves a submission unless the stored one is already submitted; whether it was saved.
pub async fn save_unless_submitted(db: &Db, s: &SubmissionRecord) -> StoreResult<bool> {
    let sql = format!(
        "INSERT INTO monthly_submissions ({SUBMISSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (area_code, month) DO UPDATE SET figures = excluded.figures, work_done = excluded.work_done, \
         problems = excluded.problems, plans = excluded.plans, state = excluded.state, \
         submitted_at = excluded.submitted_at, submitted_by = excluded.submitted_by, \
         updated_by = excluded.updated_by, updated_at = excluded.updated_at \
         WHERE monthly_submissions.state <> 'submitted'"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&s.area_code)
        .bind(&s.month)
        .bind(&s.figures)
        .bind(&s.work_done)
        .bind(&s.problems)
        .bind(&s.plans)
        .bind(&s.state)
        .bind(s.submitted_at)
        .bind(&s.submitted_by)
        .bind(&s.updated_by)
        .bind(s.updated_at)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One stored situation report.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SituationRecord {
    pub report_id: String,
    pub area_code: String,
    pub title: String,
    pub body: String,
    pub urgency: String,
    pub filed_at: i64,
    pub filed_by: String,
    pub read_at: Option<i64>,
    pub read_by: Option<String>,
}

const SITUATION_COLUMNS: &str = "report_id, area_code, title, body, urgency, filed_at, filed_by, read_at, read_by";

/// Files a situation report.
pub async fn insert_situation(db: &Db, r: &SituationRecord) -> StoreResult<()> {
    let sql =
        format!("INSERT INTO situation_reports ({SITUATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&r.report_id)
        .bind(&r.area_code)
        .bind(&r.title)
        .bind(&r.body)
        .bind(&r.urgency)
        .bind(r.filed_at)
        .bind(&r.filed_by)
        .bind(r.read_at)
        .bind(&r.read_by)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Every situation report, the newest first.
pub async fn situations(db: &Db) -> StoreResult<Vec<SituationRecord>> {
    let sql = format!("SELECT {SITUATION_COLUMNS} FROM situation_reports ORDER BY filed_at DESC, report_id DESC");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&db.pool).await?)
}

/// One situation report, if there is one with this id.
pub async fn situation(db: &Db, id: &str) -> StoreResult<Option<SituationRecord>> {
    let sql = format!("SELECT {SITUATION_COLUMNS} FROM situation_reports WHERE report_id = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&db.pool).await?)
}

/// Marks a report read, unless it already was (the first reader and time are kept); whether it was unread.
pub async fn mark_situation_read(db: &Db, id: &str, by: &str, at: i64) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE situation_reports SET read_at = $1, read_by = $2 WHERE report_id = $3 AND read_at IS NULL")
            .bind(at)
            .bind(by)
            .bind(id)
            .execute(&db.pool)
            .await?;
    Ok(done.rows_affected() > 0)
}
