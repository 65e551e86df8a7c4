//! Urgent tasks of the demo town, through the same paths real ones take: the office issues them (some back-dated,
//! so that one is overdue), a team-east device receives them at its sync, signs for them and reports outcomes,
//! and the office evaluates one.

use crate::tasks::{self, NewEvaluation, NewTask};
use crate::AppState;
use anyhow::{anyhow, Result};
use chrono::{Duration, Utc};
use client_core::protocol::{TaskPush, TaskReply, TaskReplyKind};
use client_core::sync::build_push;
use client_core::task::doc::TaskDoc;
use client_core::task::model::{ContactMethod, Evaluation, FraudType, Priority, Sign, SignKind, TaskOutcome};

struct DemoTask {
    person: &'static str,
    fraud: FraudType,
    priority: Priority,
    hours_ago: i64,
    hours_to_deadline: i64,
    /// Minutes from issue to the person reached, if the demo reaches them.
    reached_after: Option<i64>,
}

const fn demo(
    person: &'static str,
    fraud: FraudType,
    priority: Priority,
    ago: i64,
    within: i64,
    reached: Option<i64>,
) -> DemoTask {
    DemoTask { person, fraud, priority, hours_ago: ago, hours_to_deadline: within, reached_after: reached }
}

/// Closed, reached (late), overdue, and just issued.
const DEMO_TASKS: &[DemoTask] = &[
    demo("周某, 67", FraudType::Impersonation, Priority::Urgent, 30, 2, Some(25)),
    demo("吴某, 34", FraudType::Dating, Priority::High, 6, 4, Some(95)),
    demo("郑某, 52", FraudType::Investment, Priority::Urgent, 5, 2, None),
    demo("冯某, 23", FraudType::Gambling, Priority::Normal, 0, 24, None),
];

/// Issues the demo tasks to team-east (whose grids are the even ones). Returns their ids.
pub async fn issue(state: &AppState) -> Result<Vec<String>> {
    let places: Vec<(String,)> = sqlx::query_as(
        "SELECT p.place_id FROM places p JOIN assignments a ON a.grid_code = p.grid_code \
         WHERE a.team = 'team-east' AND p.kind = 'household' ORDER BY p.place_id LIMIT 4",
    )
    .fetch_all(&state.db.pool)
    .await?;
    let mut ids = Vec::new();
    for (d, (place,)) in DEMO_TASKS.iter().zip(places) {
        let created = Utc::now() - Duration::hours(d.hours_ago);
        let t = NewTask {
            place_id: Some(place),
            grid: None,
            team: None,
            person: d.person.to_string(),
            address: None,
            phone: Some("13800138000".into()),
            fraud_type: d.fraud,
            priority: d.priority,
            deadline: (created + Duration::hours(d.hours_to_deadline)).to_rfc3339(),
            instructions: "预警平台推送：请立即联系并劝阻".into(),
        };
        let id =
            tasks::create_at(state, t, "office", created.timestamp_millis()).await.map_err(|e| anyhow!(e.message))?;
        ids.push(id);
    }
    Ok(ids)
}

/// What the volunteer's device does with the tasks it just received: signs for them, and reports the outcomes
/// the demo table gives. Returns the pushes for the next sync.
pub fn act_on(
    replies: &[TaskReply],
    actor: &automerge::ActorId,
    volunteer: &str,
    device: &str,
) -> Result<Vec<TaskPush>> {
    let mut pushes = Vec::new();
    for reply in replies.iter().filter(|r| r.kind == TaskReplyKind::New) {
        let mut doc = TaskDoc::load(reply.snapshot.as_ref().ok_or_else(|| anyhow!("no snapshot"))?)?;
        let confirmed = doc.heads();
        doc.set_actor(actor.clone());
        let info = doc.info()?;
        let reached_after = DEMO_TASKS.iter().find(|d| d.person == info.target.label).and_then(|d| d.reached_after);
        let at = |minutes: i64| info.created_at + Duration::minutes(minutes);
        for (kind, minutes) in [(SignKind::Received, 3), (SignKind::Opened, 8)] {
            let id = uuid::Uuid::now_v7();
            doc.add_sign(&Sign { id, kind, volunteer: volunteer.into(), device: device.into(), at: at(minutes) })?;
        }
        if let Some(minutes) = reached_after {
            doc.add_outcome(&TaskOutcome {
                id: uuid::Uuid::now_v7(),
                volunteer: volunteer.into(),
                device: device.into(),
                at: at(minutes),
                method: ContactMethod::FaceToFace,
                reached: true,
                dissuaded: true,
                money_lost: false,
                amount_fen: None,
                feedback: Some("已上门劝阻，对方表示不再转账".into()),
                gps: None,
            })?;
        }
        pushes.push(build_push(&reply.task, &doc, Some(&confirmed)));
    }
    Ok(pushes)
}

/// The office evaluates the first demo task (reached long ago) as effective, which closes it.
pub async fn evaluate_first(state: &AppState, ids: &[String]) -> Result<()> {
    let Some(first) = ids.first() else { return Ok(()) };
    let e = NewEvaluation {
        result: Evaluation::Effective, comment: "及时劝阻，未造成损失".into(), deadline: None
    };
    tasks::evaluate(state, first, e, "office").await.map_err(|e| anyhow!(e.message))
}
