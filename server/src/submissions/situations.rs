//! Major or urgent situation reports (重大紧急情况随时报告): a cadre files one for their own area at any time; it
//! appears at once in the office's list, the newest first, counted as unread until someone of the office opens it.

use crate::refusal::Refusal;
use crate::reports::time::time_text;
use crate::store::db::now_ms;
use crate::store::submissions::{self as stored, SituationRecord};
use crate::submissions::{text_field, Actor, Areas};
use crate::AppState;
use chrono::FixedOffset;
use serde::{Deserialize, Serialize};

/// How urgent a report is: `urgent` (紧急: act now) or `major` (重大: serious, to know at once).
pub const URGENCIES: [&str; 2] = ["urgent", "major"];

/// A report as a cadre files it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewSituation {
    pub title: String,
    pub body: String,
    pub urgency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Situation {
    pub report_id: String,
    pub area: String,
    pub area_name: String,
    pub title: String,
    pub body: String,
    pub urgency: String,
    pub filed_at: String,
    pub filed_by: String,
    pub read: bool,
    pub read_at: Option<String>,
    pub read_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Situations {
    /// The area a cadre files for (their own); none for the office.
    pub own_area: Option<String>,
    /// Reports nobody of the office has opened yet.
    pub unread: u64,
    /// The newest first.
    pub reports: Vec<Situation>,
}

fn shown(r: SituationRecord, areas: &Areas, offset: FixedOffset) -> Situation {
    Situation {
        area_name: areas.get(&r.area_code).map(|a| a.name.clone()).unwrap_or_default(),
        report_id: r.report_id,
        area: r.area_code,
        title: r.title,
        body: r.body,
        urgency: r.urgency,
        filed_at: time_text(r.filed_at, offset),
        filed_by: r.filed_by,
        read: r.read_at.is_some(),
        read_at: r.read_at.map(|t| time_text(t, offset)),
        read_by: r.read_by,
    }
}

/// Whether the actor may file a report for `area`: a cadre, for their own area. Decided from the session alone,
/// so that the caller can refuse before reading a request's body.
pub fn may_file(actor: &Actor, area: &str) -> Result<(), Refusal> {
    match actor {
        Actor::Cadre { area: own, .. } if own == area => Ok(()),
        Actor::Cadre { area: own, .. } => {
            Err(Refusal::forbidden(format!("you report for your own area ({own}) only, not for {area}")))
        }
        Actor::Office { .. } => {
            Err(Refusal::forbidden("situation reports are filed by a village's or community's cadre"))
        }
    }
}

/// Files a report: a cadre, for their own area.
pub async fn file(
    state: &AppState,
    actor: &Actor,
    area: &str,
    new: &NewSituation,
    offset: FixedOffset,
) -> Result<Situation, Refusal> {
    may_file(actor, area)?;
    if !URGENCIES.contains(&new.urgency.as_str()) {
        return Err(Refusal::invalid(format!("urgency {:?} is not one of urgent (紧急) or major (重大)", new.urgency)));
    }
    let areas = Areas::read(state).await?;
    areas.known(area)?;
    let record = SituationRecord {
        report_id: uuid::Uuid::now_v7().to_string(),
        area_code: area.to_string(),
        title: text_field("title", &new.title, 100, true)?,
        body: text_field("body", &new.body, 5000, true)?,
        urgency: new.urgency.clone(),
        filed_at: now_ms(),
        filed_by: actor.username().to_string(),
        read_at: None,
        read_by: None,
    };
    stored::insert_situation(&state.db, &record).await?;
    Ok(shown(record, &areas, offset))
}

/// The reports the actor may read (the office: all; a cadre: their own subtree's), the newest first.
pub async fn list(state: &AppState, actor: &Actor, offset: FixedOffset) -> Result<Situations, Refusal> {
    let areas = Areas::read(state).await?;
    let reports: Vec<Situation> = stored::situations(&state.db)
        .await?
        .into_iter()
        .filter(|r| areas.visible(actor, &r.area_code))
        .map(|r| shown(r, &areas, offset))
        .collect();
    let own_area = match actor {
        Actor::Cadre { area, .. } => Some(area.clone()),
        Actor::Office { .. } => None,
    };
    Ok(Situations { own_area, unread: reports.iter().filter(|r| !r.read).count() as u64, reports })
}

/// The office opens a report: marked read by the first who does. Returns it, and whether it was unread.
pub async fn mark_read(
    state: &AppState,
    actor: &Actor,
    id: &str,
    offset: FixedOffset,
) -> Result<(Situation, bool), Refusal> {
    if !matches!(actor, Actor::Office { .. }) {
        return Err(Refusal::forbidden("only the office marks situation reports read"));
    }
    if stored::situation(&state.db, id).await?.is_none() {
        return Err(Refusal::not_found(format!("no situation report {id:?}")));
    }
    let first = stored::mark_situation_read(&state.db, id, actor.username(), now_ms()).await?;
    let record = stored::situation(&state.db, id)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no situation report {id:?}")))?;
    let areas = Areas::read(state).await?;
    Ok((shown(record, &areas, offset), first))
}
