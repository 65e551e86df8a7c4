//! Reading urgent tasks from SQL: the office's list and detail views (with response times), and the figures the
//! monthly report prints (created, completed, overdue, median response time).

use crate::refusal::Refusal;
use crate::reports::time::time_text;
use crate::store::db::now_ms;
use crate::store::tasks::{self as stored, TaskRecord};
use crate::tasks::status;
use crate::AppState;
use chrono::FixedOffset;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MINUTE_MS: f64 = 60_000.0;

/// Minutes from `from` to `to`, to a tenth; never negative (a device clock behind the server's reads as 0).
fn minutes(from: i64, to: Option<i64>) -> Option<f64> {
    to.map(|t| (((t - from).max(0) as f64 / MINUTE_MS) * 10.0).round() / 10.0)
}

/// One task in the office's list: the public JSON row of `doorstep task list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub task_id: String,
    pub team: String,
    pub grid: Option<String>,
    pub village: Option<String>,
    pub place_id: Option<String>,
    pub person: String,
    pub fraud_type: String,
    pub priority: String,
    /// `open`, `done`, `follow_up` or `closed`.
    pub status: String,
    /// Not closed, the person not (again) reached, and the deadline passed.
    pub overdue: bool,
    /// The person was first reached after the deadline.
    pub late: bool,
    pub created_at: String,
    pub deadline: String,
    /// First time a device of the team received the task (签收), by the device's clock.
    pub received_at: Option<String>,
    pub opened_at: Option<String>,
    pub first_action_at: Option<String>,
    pub reached_at: Option<String>,
    /// Minutes from creation to the first receipt, the first action (response time) and the person reached.
    pub sign_minutes: Option<f64>,
    pub response_minutes: Option<f64>,
    pub reach_minutes: Option<f64>,
    pub evaluation: Option<String>,
    pub closed_at: Option<String>,
}

fn to_row(r: TaskRecord, now: i64, offset: FixedOffset) -> TaskRow {
    let text = |ms: Option<i64>| ms.map(|m| time_text(m, offset));
    let waiting = r.status == status::OPEN || r.status == status::FOLLOW_UP;
    TaskRow {
        overdue: waiting && r.deadline < now,
        late: r.reached_at.is_some_and(|t| t > r.deadline),
        created_at: time_text(r.created_at, offset),
        deadline: time_text(r.deadline, offset),
        received_at: text(r.received_at),
        opened_at: text(r.opened_at),
        first_action_at: text(r.first_action_at),
        reached_at: text(r.reached_at),
        sign_minutes: minutes(r.created_at, r.received_at),
        response_minutes: minutes(r.created_at, r.first_action_at),
        reach_minutes: minutes(r.created_at, r.reached_at),
        closed_at: text(r.closed_at),
        task_id: r.task_id,
        team: r.team,
        grid: r.grid_code,
        village: r.village_code,
        place_id: r.place_id,
        person: r.target_label,
        fraud_type: r.fraud_type,
        priority: r.priority,
        status: r.status,
        evaluation: r.evaluation,
    }
}

/// Which tasks a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusFilter {
    /// Everything not closed.
    #[default]
    Active,
    Open,
    Overdue,
    Done,
    FollowUp,
    Closed,
    All,
}

/// Tasks, most urgent first: active before closed, then by priority and deadline. `team`: a lead's own team.
pub async fn list(
    state: &AppState,
    filter: StatusFilter,
    team: Option<&str>,
    offset: FixedOffset,
) -> Result<Vec<TaskRow>, Refusal> {
    let rows = stored::records(&state.db, team.unwrap_or("")).await?;
    let now = now_ms();
    Ok(rows
        .into_iter()
        .map(|r| to_row(r, now, offset))
        .filter(|r| match filter {
            StatusFilter::Active => r.status != status::CLOSED,
            StatusFilter::Open => r.status == status::OPEN,
            StatusFilter::Overdue => r.overdue,
            StatusFilter::Done => r.status == status::DONE,
            StatusFilter::FollowUp => r.status == status::FOLLOW_UP,
            StatusFilter::Closed => r.status == status::CLOSED,
            StatusFilter::All => true,
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignRow {
    pub kind: String,
    pub volunteer: String,
    pub device_id: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRow {
    pub outcome_id: String,
    pub volunteer: String,
    pub device_id: String,
    pub at: String,
    pub method: String,
    pub reached: bool,
    pub dissuaded: bool,
    pub money_lost: bool,
    pub amount_fen: Option<i64>,
    pub feedback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRow {
    pub at: String,
    pub result: String,
    pub comment: String,
    pub evaluated_by: String,
}

/// A device that received the task; `purged_at` is when it showed it no longer held the closed task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceTaskRow {
    pub device_id: String,
    pub username: String,
    pub delivered_at: String,
    pub purged_at: Option<String>,
}

/// Everything about one task: `doorstep task show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub row: TaskRow,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub instructions: String,
    pub evaluation_comment: Option<String>,
    pub signs: Vec<SignRow>,
    pub outcomes: Vec<OutcomeRow>,
    pub evaluations: Vec<EvaluationRow>,
    pub devices: Vec<DeviceTaskRow>,
}

pub async fn detail(state: &AppState, id: &str, offset: FixedOffset) -> Result<Option<TaskDetail>, Refusal> {
    let db = &state.db;
    let Some(raw) = stored::record(db, id).await? else {
        return Ok(None);
    };
    let row = to_row(raw, now_ms(), offset);
    let (address, phone, instructions, evaluation_comment) = stored::particulars(db, id).await?;
    let signs = stored::signs(db, id).await?;
    let outcomes = stored::outcomes(db, id).await?;
    let evaluations = stored::evaluations(db, id).await?;
    let devices = stored::deliveries(db, id).await?;
    Ok(Some(TaskDetail {
        row,
        address,
        phone,
        instructions,
        evaluation_comment,
        signs: signs
            .into_iter()
            .map(|(kind, volunteer, device_id, at)| SignRow { kind, volunteer, device_id, at: time_text(at, offset) })
            .collect(),
        outcomes: outcomes
            .into_iter()
            .map(|(outcome_id, volunteer, device_id, at, method, reached, dissuaded, lost, amount_fen, feedback)| {
                OutcomeRow {
                    outcome_id,
                    volunteer,
                    device_id,
                    at: time_text(at, offset),
                    method,
                    reached: reached != 0,
                    dissuaded: dissuaded != 0,
                    money_lost: lost != 0,
                    amount_fen,
                    feedback,
                }
            })
            .collect(),
        evaluations: evaluations
            .into_iter()
            .map(|(at, result, comment, evaluated_by)| EvaluationRow {
                at: time_text(at, offset),
                result,
                comment,
                evaluated_by,
            })
            .collect(),
        devices: devices
            .into_iter()
            .map(|(device_id, username, delivered, purged)| DeviceTaskRow {
                device_id,
                username: username.unwrap_or_default(),
                delivered_at: time_text(delivered, offset),
                purged_at: purged.map(|p| time_text(p, offset)),
            })
            .collect(),
    }))
}

/// Task figures of a period (the monthly report's): tasks created in it, and how they went by its end.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskFigures {
    pub created: u64,
    /// The person was reached before the period's end.
    pub completed: u64,
    /// The deadline passed (before the period's end, or now) without the person reached by then.
    pub overdue: u64,
    /// Evaluated as effective before the period's end.
    pub effective: u64,
    /// Median minutes from creation to the first action (a call, a message or a visit), over tasks with one.
    pub median_response_minutes: Option<f64>,
    /// Median minutes from creation to the person reached, over completed tasks.
    pub median_reach_minutes: Option<f64>,
}

/// The times of one task that the figures need.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskTimes {
    pub created_at: i64,
    pub deadline: i64,
    pub first_action_at: Option<i64>,
    pub reached_at: Option<i64>,
    pub effective_at: Option<i64>,
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let m = if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 };
    Some((m * 10.0).round() / 10.0)
}

/// Figures as they stood at `end` (exclusive); `now` caps what can be overdue yet.
pub fn figures(tasks: &[TaskTimes], end: i64, now: i64) -> TaskFigures {
    let by = |t: Option<i64>| t.filter(|&t| t < end);
    let cutoff = end.min(now);
    TaskFigures {
        created: tasks.len() as u64,
        completed: tasks.iter().filter(|t| by(t.reached_at).is_some()).count() as u64,
        overdue: tasks.iter().filter(|t| t.deadline < cutoff && t.reached_at.is_none_or(|r| r > t.deadline)).count()
            as u64,
        effective: tasks.iter().filter(|t| by(t.effective_at).is_some()).count() as u64,
        median_response_minutes: median(
            tasks.iter().filter_map(|t| minutes(t.created_at, by(t.first_action_at))).collect(),
        ),
        median_reach_minutes: median(tasks.iter().filter_map(|t| minutes(t.created_at, by(t.reached_at))).collect()),
    }
}

/// Figures of the tasks created in `[start, end)` within an area's subtree and a team, per village (tasks with no
/// village are only in the total) and in total.
pub async fn monthly_figures(
    state: &AppState,
    (start, end): (i64, i64),
    area: &str,
    team: &str,
) -> Result<(BTreeMap<String, TaskFigures>, TaskFigures), Refusal> {
    let rows = stored::times_created_between(&state.db, (start, end), area, team).await?;
    let mut per_village: BTreeMap<String, Vec<TaskTimes>> = BTreeMap::new();
    let mut all = Vec::new();
    for (village, created_at, deadline, first_action_at, reached_at, evaluation, evaluated_at) in rows {
        let effective_at = evaluated_at.filter(|_| evaluation.as_deref() == Some("effective"));
        let t = TaskTimes { created_at, deadline, first_action_at, reached_at, effective_at };
        if let Some(v) = village {
            per_village.entry(v).or_default().push(t);
        }
        all.push(t);
    }
    let now = now_ms();
    Ok((per_village.into_iter().map(|(v, ts)| (v, figures(&ts, end, now))).collect(), figures(&all, end, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn figures_count_overdue_completion_and_medians() {
        let t = |created: i64, deadline_min: i64, action: Option<i64>, reached: Option<i64>| TaskTimes {
            created_at: created,
            deadline: created + deadline_min * MIN,
            first_action_at: action.map(|a| created + a * MIN),
            reached_at: reached.map(|r| created + r * MIN),
            effective_at: None,
        };
        let tasks = [
            t(0, 120, Some(10), Some(30)), // on time
            t(0, 60, Some(20), Some(90)),  // reached after the deadline: overdue
            t(0, 60, Some(40), None),      // tried, never reached: overdue
            t(0, 10_000, None, None),      // deadline not yet passed
        ];
        let f = figures(&tasks, 1_000 * MIN, 2_000 * MIN);
        assert_eq!((f.created, f.completed, f.overdue), (4, 2, 2));
        assert_eq!(f.median_response_minutes, Some(20.0));
        assert_eq!(f.median_reach_minutes, Some(60.0));
        // At an earlier end, the late reach has not happened yet and the open deadline still is in the future.
        let f = figures(&tasks, 70 * MIN, 2_000 * MIN);
        assert_eq!((f.completed, f.overdue), (1, 2));
        assert_eq!(median(vec![]), None);
    }
}
