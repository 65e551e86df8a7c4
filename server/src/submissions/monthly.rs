//! The monthly written submission (每月20日前书面报送): from the 1st of a month a village's or community's cadre
//! opens the month's submission, pre-filled with the figures the monthly report counts for the area (coverage per
//! indicator, the month's visits, its urgent tasks and their outcomes), adds the work done, problems and plans,
//! saves drafts and submits. Due by the end of the 20th (local time); a later submission is accepted and marked
//! late. The office lists every unit's state for a month and reads each submission.

use crate::refusal::Refusal;
use crate::reports::monthly::{self as ranking, MonthlyIndicator, MonthlyParams, DEFAULT_THRESHOLD};
use crate::reports::time::{day_start_ms, next_month, parse_month, time_text, today};
use crate::store::db::now_ms;
use crate::store::submissions::{self as stored, SubmissionRecord};
use crate::store::tasks as stored_tasks;
use crate::submissions::{text_field, Actor, Areas, UNIT_KINDS};
use crate::tasks::read::TaskFigures;
use crate::AppState;
use chrono::{Datelike, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

/// The day of the month by whose end a submission is due.
pub const DUE_DAY: u32 = 20;
/// The longest text each of work done, problems and plans may hold.
pub const MAX_TEXT: usize = 5000;

/// One of the month's urgent tasks in the area, without the person it names (tasks name people at risk; the
/// submission is read more widely than the task list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskLine {
    pub task_id: String,
    pub fraud_type: String,
    pub priority: String,
    pub status: String,
    pub created_at: String,
    /// The person was reached, and when.
    pub reached_at: Option<String>,
    /// Reached after the deadline, or not reached and the deadline passed.
    pub late: bool,
    pub evaluation: Option<String>,
}

/// What the submission is pre-filled with: the area's row of the monthly report, as it stood when last saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// When these were counted.
    pub counted_at: String,
    pub visits: u64,
    pub places_visited: u64,
    pub score: f64,
    pub previous_score: f64,
    pub score_change: f64,
    pub indicators: Vec<MonthlyIndicator>,
    pub tasks: TaskFigures,
    pub task_list: Vec<TaskLine>,
}

/// A submission as read (or, not yet saved, as it would be opened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub area: String,
    pub name: String,
    pub kind: String,
    pub town_name: Option<String>,
    pub month: String,
    /// `new` (never saved), `draft` or `submitted`.
    pub state: String,
    /// `on_time`, `late` or `not_yet`.
    pub status: String,
    /// Not submitted and the due time has passed.
    pub overdue: bool,
    pub due_at: String,
    pub submitted_at: Option<String>,
    pub submitted_by: Option<String>,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
    /// Whether the reader may save and submit it (its own area's cadre, before it is submitted).
    pub writable: bool,
    pub work_done: String,
    pub problems: String,
    pub plans: String,
    pub figures: Figures,
}

/// One unit's line in the office's list of a month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRow {
    pub area: String,
    pub name: String,
    pub kind: String,
    pub town: Option<String>,
    pub town_name: Option<String>,
    pub month: String,
    /// `none`, `draft` or `submitted`.
    pub state: String,
    /// `on_time`, `late` or `not_yet`.
    pub status: String,
    pub overdue: bool,
    pub due_at: String,
    pub submitted_at: Option<String>,
    pub submitted_by: Option<String>,
}

/// When a month's submission is due: the start of the day after the 20th, local time.
pub fn due_ms(first: NaiveDate, offset: FixedOffset) -> i64 {
    day_start_ms(first.with_day(DUE_DAY + 1).expect("every month has a 21st"), offset)
}

/// On time, late or not yet, and whether it is overdue: from the submission time (if submitted) and now.
pub fn timeliness(due: i64, submitted_at: Option<i64>, now: i64) -> (&'static str, bool) {
    match submitted_at {
        Some(at) if at < due => ("on_time", false),
        Some(_) => ("late", false),
        None => ("not_yet", now >= due),
    }
}

/// Refuses a month that has not begun: a month's submission opens on its 1st.
fn check_begun(month: &str, first: NaiveDate, offset: FixedOffset) -> Result<(), Refusal> {
    let today = today(offset);
    if first > today {
        return Err(Refusal::invalid(format!(
            "{month} has not begun; a month's submission opens on its 1st (today is {today})"
        )));
    }
    Ok(())
}

/// A village or community the actor may read, or a refusal saying why not.
fn unit<'a>(areas: &'a Areas, actor: &Actor, area: &str) -> Result<&'a crate::submissions::AreaInfo, Refusal> {
    let info = areas.check_visible(actor, area)?;
    if !UNIT_KINDS.contains(&info.kind.as_str()) {
        return Err(Refusal::invalid(format!(
            "{area} is a {}; monthly submissions are made by villages and communities",
            info.kind
        )));
    }
    Ok(info)
}

/// The area's figures of the month as the monthly report counts them now.
pub async fn figures(state: &AppState, area: &str, month: &str, offset: FixedOffset) -> Result<Figures, Refusal> {
    let first = parse_month(month)?;
    let report = ranking::monthly(
        state,
        MonthlyParams { month, offset, threshold: DEFAULT_THRESHOLD, area: Some(area), team: None },
    )
    .await?;
    let row = report.rows.into_iter().find(|r| r.area == area);
    let (start, end) = (day_start_ms(first, offset), day_start_ms(next_month(first), offset));
    let now = now_ms();
    let task_list = stored_tasks::records(&state.db, "")
        .await?
        .into_iter()
        .filter(|t| t.village_code.as_deref() == Some(area) && (start..end).contains(&t.created_at))
        .map(|t| TaskLine {
            late: match t.reached_at {
                Some(r) => r > t.deadline,
                None => t.deadline < now,
            },
            created_at: time_text(t.created_at, offset),
            reached_at: t.reached_at.map(|r| time_text(r, offset)),
            task_id: t.task_id,
            fraud_type: t.fraud_type,
            priority: t.priority,
            status: t.status,
            evaluation: t.evaluation,
        })
        .collect();
    let counted_at = time_text(now, offset);
    Ok(match row {
        Some(r) => Figures {
            counted_at,
            visits: r.visits,
            places_visited: r.places_visited,
            score: r.score,
            previous_score: r.previous_score,
            score_change: r.score_change,
            indicators: r.indicators,
            tasks: r.tasks,
            task_list,
        },
        // An area with no places yet: nothing counted, but its tasks still listed.
        None => Figures {
            counted_at,
            visits: 0,
            places_visited: 0,
            score: 0.0,
            previous_score: 0.0,
            score_change: 0.0,
            indicators: Vec::new(),
            tasks: TaskFigures::default(),
            task_list,
        },
    })
}

/// An area's submission of a month, as stored, or as it opens (pre-filled) if never saved.
pub async fn open(
    state: &AppState,
    actor: &Actor,
    area: &str,
    month: &str,
    offset: FixedOffset,
) -> Result<Submission, Refusal> {
    let first = parse_month(month)?;
    check_begun(month, first, offset)?;
    let areas = Areas::read(state).await?;
    let info = unit(&areas, actor, area)?;
    let due = due_ms(first, offset);
    let stored = stored::submission(&state.db, area, month).await?;
    let cadre = matches!(actor, Actor::Cadre { area: own, .. } if own == area);
    let text = |ms: i64| time_text(ms, offset);
    let (status, overdue) = timeliness(due, stored.as_ref().and_then(|s| s.submitted_at), now_ms());
    let mut out = Submission {
        area: area.to_string(),
        name: info.name.clone(),
        kind: info.kind.clone(),
        town_name: areas.town_of(area).map(|t| t.name.clone()),
        month: month.to_string(),
        state: "new".into(),
        status: status.into(),
        overdue,
        due_at: text(due),
        submitted_at: None,
        submitted_by: None,
        updated_at: None,
        updated_by: None,
        writable: cadre,
        work_done: String::new(),
        problems: String::new(),
        plans: String::new(),
        figures: match &stored {
            Some(s) => serde_json::from_str(&s.figures)
                .map_err(|e| Refusal::internal(format!("stored figures of {area} {month} do not read: {e}")))?,
            None => figures(state, area, month, offset).await?,
        },
    };
    if let Some(s) = stored {
        out.writable = cadre && s.state != "submitted";
        out.state = s.state;
        out.submitted_at = s.submitted_at.map(text);
        out.submitted_by = s.submitted_by;
        out.updated_at = Some(text(s.updated_at));
        out.updated_by = Some(s.updated_by);
        out.work_done = s.work_done;
        out.problems = s.problems;
        out.plans = s.plans;
    }
    Ok(out)
}

/// What a cadre writes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Texts {
    #[serde(default)]
    pub work_done: String,
    #[serde(default)]
    pub problems: String,
    #[serde(default)]
    pub plans: String,
}

/// Whether the actor may write `area`'s submissions: its own cadre only. Decided from the session alone, so that
/// the caller can refuse before reading a request's body.
pub fn may_write(actor: &Actor, area: &str) -> Result<(), Refusal> {
    match actor {
        Actor::Cadre { area: own, .. } if own == area => Ok(()),
        Actor::Cadre { area: own, .. } => {
            Err(Refusal::forbidden(format!("you write the submission of your own area ({own}) only, not of {area}")))
        }
        Actor::Office { .. } => {
            Err(Refusal::forbidden(format!("the submission of {area} is written by its cadre; the office reads it")))
        }
    }
}

/// Saves the area's submission of the month as a draft, or submits it: its own cadre only, until it is
/// submitted. The figures are counted again at every save, so a submission carries them as they stood when it
/// was submitted.
pub async fn save(
    state: &AppState,
    actor: &Actor,
    area: &str,
    month: &str,
    texts: &Texts,
    submit: bool,
    offset: FixedOffset,
) -> Result<Submission, Refusal> {
    let first = parse_month(month)?;
    let areas = Areas::read(state).await?;
    may_write(actor, area)?;
    unit(&areas, actor, area)?;
    check_begun(month, first, offset)?;
    let work_done = text_field("work_done", &texts.work_done, MAX_TEXT, submit)?;
    let problems = text_field("problems", &texts.problems, MAX_TEXT, false)?;
    let plans = text_field("plans", &texts.plans, MAX_TEXT, false)?;
    if let Some(s) = stored::submission(&state.db, area, month).await? {
        if s.state == "submitted" {
            return Err(submitted_already(area, month, &s, offset));
        }
    }
    let now = now_ms();
    let figures = figures(state, area, month, offset).await?;
    let record = SubmissionRecord {
        area_code: area.to_string(),
        month: month.to_string(),
        figures: serde_json::to_string(&figures).map_err(Refusal::internal)?,
        work_done,
        problems,
        plans,
        state: if submit { "submitted" } else { "draft" }.into(),
        submitted_at: submit.then_some(now),
        submitted_by: submit.then(|| actor.username().to_string()),
        updated_by: actor.username().to_string(),
        updated_at: now,
    };
    if !stored::save_unless_submitted(&state.db, &record).await? {
        // Submitted meanwhile (from another window): that one stands.
        let s = stored::submission(&state.db, area, month).await?.ok_or_else(|| Refusal::internal("vanished"))?;
        return Err(submitted_already(area, month, &s, offset));
    }
    open(state, actor, area, month, offset).await
}

fn submitted_already(area: &str, month: &str, s: &SubmissionRecord, offset: FixedOffset) -> Refusal {
    Refusal::conflict(format!(
        "the {month} submission of {area} was submitted{} and can no longer be changed",
        s.submitted_at.map(|t| format!(" at {}", time_text(t, offset))).unwrap_or_default()
    ))
}

/// Every village and community the actor may read, with its submission's state for the month.
pub async fn list(
    state: &AppState,
    actor: &Actor,
    month: &str,
    offset: FixedOffset,
) -> Result<Vec<StatusRow>, Refusal> {
    let first = parse_month(month)?;
    let areas = Areas::read(state).await?;
    let due = due_ms(first, offset);
    let now = now_ms();
    let mut stored: std::collections::HashMap<String, SubmissionRecord> =
        stored::submissions_of_month(&state.db, month).await?.into_iter().map(|s| (s.area_code.clone(), s)).collect();
    Ok(areas
        .visible_units(actor)
        .into_iter()
        .map(|a| {
            let s = stored.remove(&a.code);
            let submitted_at = s.as_ref().and_then(|s| s.submitted_at);
            // A month not begun has nothing due yet.
            let (status, overdue) = timeliness(due, submitted_at, now);
            let town = areas.town_of(&a.code);
            StatusRow {
                area: a.code.clone(),
                name: a.name.clone(),
                kind: a.kind.clone(),
                town: town.map(|t| t.code.clone()),
                town_name: town.map(|t| t.name.clone()),
                month: month.to_string(),
                state: s.as_ref().map(|s| s.state.clone()).unwrap_or_else(|| "none".into()),
                status: status.into(),
                overdue,
                due_at: time_text(due, offset),
                submitted_at: submitted_at.map(|t| time_text(t, offset)),
                submitted_by: s.and_then(|s| s.submitted_by),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::time::parse_offset;

    fn ms(rfc: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc).unwrap().timestamp_millis()
    }

    #[test]
    fn due_by_the_end_of_the_20th_local_time() {
        let offset = parse_offset(None).unwrap();
        let due = due_ms(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), offset);
        assert_eq!(due, ms("2026-11-21T00:00:00+08:00"));
        // February too.
        let feb = due_ms(NaiveDate::from_ymd_opt(2027, 2, 1).unwrap(), offset);
        assert_eq!(feb, ms("2027-02-21T00:00:00+08:00"));
    }

    #[test]
    fn on_time_late_and_not_yet() {
        let due = ms("2026-11-21T00:00:00+08:00");
        let last_minute = ms("2026-11-20T23:59:59+08:00");
        assert_eq!(timeliness(due, Some(last_minute), due + 10), ("on_time", false));
        assert_eq!(timeliness(due, Some(due), due + 10), ("late", false));
        assert_eq!(timeliness(due, None, last_minute), ("not_yet", false));
        assert_eq!(timeliness(due, None, due), ("not_yet", true));
    }
}
