//! Bulletins (通报): the office (or an account it allows) publishes, corrects and withdraws them; each is a synced
//! document of kind `bulletin` (`client_core::bulletin::doc`), meant for the teams its audience names, delivered
//! by the one document engine; its row and attachments sit beside it for the dashboard, and the receipts phones
//! send back are the document's entries. Who has read what is worked out here, per team and per village.

use crate::refusal::Refusal;
use crate::store::bulletins::{self as stored, BulletinRow};
use crate::store::db::now_ms;
use crate::store::documents::{self, EVERYONE};
use crate::AppState;
use client_core::bulletin::doc::BulletinDoc;
use client_core::bulletin::{Attachment, BulletinKind, BulletinPriority, Notice};
use client_core::store::StoredDoc;
use client_core::sync::DocKind;
use client_core::task::model::FraudType;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

const NOUN: &str = <BulletinDoc as DocKind>::NOUN;

/// Whom a bulletin is for: everyone, or the teams working in chosen towns and villages, and chosen teams.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audience {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everyone: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub towns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub villages: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
}

/// A file of the store to attach, with the name phones show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    pub sha256: String,
    pub name: String,
}

/// What the publisher writes (`POST /api/v1/bulletins`, and each correction).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    pub title: String,
    pub body: String,
    pub kind: String,
    #[serde(default)]
    pub fraud_type: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    pub audience: Audience,
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
}

/// A bulletin as the dashboard and the CLI show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bulletin {
    pub id: String,
    pub edition: i64,
    pub title: String,
    pub body: String,
    pub kind: String,
    pub fraud_type: Option<String>,
    pub priority: String,
    pub audience: Audience,
    /// The teams the audience resolved to (`*`: every device).
    pub audience_teams: Vec<String>,
    pub expires_at: Option<i64>,
    pub published_at: i64,
    pub published_by: String,
    pub updated_at: i64,
    pub withdrawn_at: Option<i64>,
    pub attachments: Vec<Attachment>,
    /// Expected readers who read the current edition, and how many are expected.
    pub read: usize,
    pub expected: usize,
}

/// The checked contents of an edition, and the teams it is for.
struct Checked {
    notice: Notice,
    teams: Vec<String>,
    audience: Audience,
}

fn text_list(list: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = list.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    set.into_iter().collect()
}

/// The teams an audience names, checked against the territory and the teams: `[*]` for everyone.
pub async fn resolve_audience(state: &AppState, audience: &Audience) -> Result<(Audience, Vec<String>), Refusal> {
    let audience = Audience {
        everyone: audience.everyone,
        towns: text_list(&audience.towns),
        villages: text_list(&audience.villages),
        teams: text_list(&audience.teams),
    };
    let chosen = !(audience.towns.is_empty() && audience.villages.is_empty() && audience.teams.is_empty());
    match (audience.everyone, chosen) {
        (true, true) => {
            return Err(Refusal::invalid(
                "the audience is either everyone or chosen towns, villages and teams, not both",
            ))
        }
        (true, false) => return Ok((audience, vec![EVERYONE.to_string()])),
        (false, false) => {
            return Err(Refusal::invalid("choose the audience: everyone, or at least one town, village or team"))
        }
        (false, true) => {}
    }
    let mut teams = BTreeSet::new();
    let one = |found: Vec<(String, String, String)>, what: &str, name: &str| match found.as_slice() {
        [] => Err(Refusal::not_found(format!("no {what} named {name:?} in the territory"))),
        [(code, _, _)] => Ok(code.clone()),
        _ => Err(Refusal::invalid(format!(
            "several {what}s are named {name:?} ({}); give the code instead",
            found.iter().map(|(c, _, _)| c.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    };
    for town in &audience.towns {
        let code = one(stored::areas_named(&state.db, town, &["town"]).await?, "town", town)?;
        teams.extend(stored::teams_of_town(&state.db, &code).await?);
    }
    for village in &audience.villages {
        let found = stored::areas_named(&state.db, village, &["village", "community"]).await?;
        let code = one(found, "village or community", village)?;
        teams.extend(stored::teams_of_village(&state.db, &code).await?);
    }
    for team in &audience.teams {
        if !stored::team_exists(&state.db, team).await? {
            return Err(Refusal::not_found(format!("no team named {team:?}")));
        }
        teams.insert(team.clone());
    }
    if teams.is_empty() {
        return Err(Refusal::invalid(
            "no team works in the chosen towns and villages yet: assign their grids to teams, or choose teams",
        ));
    }
    Ok((audience, teams.into_iter().collect()))
}

/// Checks a draft as edition `edition` first published at `published_at`.
async fn check(state: &AppState, draft: &Draft, edition: i64, published_at: i64) -> Result<Checked, Refusal> {
    let kind: BulletinKind = draft.kind.parse().map_err(|e| Refusal::invalid(format!("kind: {e}")))?;
    let fraud_type = match draft.fraud_type.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(t.parse::<FraudType>().map_err(|e| Refusal::invalid(format!("fraud_type: {e}")))?),
    };
    let priority = match draft.priority.as_deref().map(str::trim) {
        None | Some("") => BulletinPriority::Normal,
        Some(p) => p.parse().map_err(|e| Refusal::invalid(format!("priority: {e}")))?,
    };
    if draft.attachments.len() > client_core::bulletin::MAX_ATTACHMENTS {
        return Err(Refusal::invalid(format!(
            "at most {} attachments per bulletin",
            client_core::bulletin::MAX_ATTACHMENTS
        )));
    }
    let mut attachments = Vec::new();
    for a in &draft.attachments {
        let sha256 = a.sha256.trim().to_ascii_lowercase();
        let Some(blob) = state.blobs.row(&sha256).await? else {
            return Err(Refusal::invalid(format!(
                "attachment {:?} ({sha256}) is not in the store: upload the file first (POST /api/v1/blobs)",
                a.name
            )));
        };
        attachments.push(Attachment {
            sha256,
            name: a.name.trim().to_string(),
            content_type: blob.content_type,
            size: blob.size,
        });
    }
    let notice = Notice {
        title: draft.title.trim().to_string(),
        body: draft.body.replace("\r\n", "\n").trim_end().to_string(),
        kind,
        fraud_type,
        priority,
        edition,
        published_at,
        expires_at: draft.expires_at,
        attachments,
    };
    if notice.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(Refusal::invalid("the expiry is in the past; leave it out or choose a later date"));
    }
    notice.check().map_err(Refusal::invalid)?;
    let (audience, teams) = resolve_audience(state, &draft.audience).await?;
    Ok(Checked { notice, teams, audience })
}

fn row_of(id: &str, c: &Checked, published_by: &str, now: i64) -> Result<BulletinRow, Refusal> {
    Ok(BulletinRow {
        id: id.to_string(),
        edition: c.notice.edition,
        title: c.notice.title.clone(),
        body: c.notice.body.clone(),
        kind: c.notice.kind.id().to_string(),
        fraud_type: c.notice.fraud_type.map_or(String::new(), |t| t.id().to_string()),
        priority: c.notice.priority.id().to_string(),
        audience: serde_json::to_string(&c.audience).map_err(Refusal::internal)?,
        expires_at: c.notice.expires_at,
        published_at: c.notice.published_at,
        published_by: published_by.to_string(),
        updated_at: now,
        withdrawn_at: None,
    })
}

/// Publishes a bulletin: its document (meant for its teams, delivered at their next sync) and its row, in one
/// transaction.
pub async fn publish(state: &AppState, draft: &Draft, by: &str) -> Result<Bulletin, Refusal> {
    let now = now_ms();
    let checked = check(state, draft, 1, now).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let doc = BulletinDoc::new(&id, &checked.notice);
    let teams: Vec<&str> = checked.teams.iter().map(String::as_str).collect();
    let row = row_of(&id, &checked, by, now)?;
    let (_gate, mut tx) = state.db.begin_write().await?;
    documents::create(&mut tx, NOUN, &id, &doc.save(), &doc.automerge().get_heads(), &teams).await?;
    stored::put(&mut tx, &row, &checked.notice.attachments).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    get(state, &id).await
}

/// Publishes a corrected edition: phones replace what they show at their next sync, and a volunteer who read an
/// earlier edition is asked to read again.
pub async fn correct(state: &AppState, id: &str, draft: &Draft) -> Result<Bulletin, Refusal> {
    let now = now_ms();
    let was = live(state, id).await?;
    let checked = check(state, draft, was.edition + 1, was.published_at).await?;
    let teams: Vec<&str> = checked.teams.iter().map(String::as_str).collect();
    let row = row_of(id, &checked, &was.published_by, now)?;
    let (_gate, mut tx) = state.db.begin_write().await?;
    documents::lock(&mut tx, state.db.backend, NOUN, id).await?;
    let stored_doc = documents::load(&mut tx, NOUN, id)
        .await?
        .ok_or_else(|| Refusal::internal(format!("bulletin {id} has a row but no document")))?;
    if stored_doc.withdrawn {
        return Err(Refusal::conflict(format!("bulletin {id} was withdrawn meanwhile")));
    }
    let mut doc = BulletinDoc::load(&stored_doc.bytes).map_err(|e| Refusal::internal(format!("bulletin {id}: {e}")))?;
    doc.correct(id, &checked.notice);
    documents::save(&mut tx, NOUN, id, &doc.save(), &doc.automerge().get_heads(), stored_doc.version).await?;
    documents::set_audience(&mut tx, NOUN, id, &teams).await?;
    stored::put(&mut tx, &row, &checked.notice.attachments).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    get(state, id).await
}

/// Withdraws a bulletin: phones delete it at their next sync (once their receipts of it are delivered).
pub async fn withdraw(state: &AppState, id: &str) -> Result<Bulletin, Refusal> {
    live(state, id).await?;
    let (_gate, mut tx) = state.db.begin_write().await?;
    documents::withdraw(&mut tx, NOUN, id).await?;
    stored::set_withdrawn(&mut tx, id, now_ms()).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    get(state, id).await
}

/// Withdraws every bulletin past its expiry; returns their ids.
pub async fn withdraw_expired(state: &AppState) -> Result<Vec<String>, Refusal> {
    let ids = stored::expired(&state.db, now_ms()).await?;
    for id in &ids {
        withdraw(state, id).await?;
        crate::accounts::audit::record(&state.db, None, "bulletin.expire", &format!("bulletin {id} expired")).await;
    }
    Ok(ids)
}

/// Withdraws expired bulletins once a minute, for as long as the server runs (`AppState::open` did it once).
pub async fn follow_expiry(state: AppState) {
    let every = std::time::Duration::from_secs(60);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        if let Err(e) = withdraw_expired(&state).await {
            tracing::warn!(error = %e, "could not withdraw expired bulletins; trying again in a minute");
        }
    }
}

async fn live(state: &AppState, id: &str) -> Result<BulletinRow, Refusal> {
    let row = stored::get(&state.db, id).await?.ok_or_else(|| Refusal::not_found(format!("no bulletin {id}")))?;
    if row.withdrawn_at.is_some() {
        return Err(Refusal::conflict(format!("bulletin {id} is withdrawn; publish a new one instead")));
    }
    Ok(row)
}

/// Who read which edition: each reader's newest receipt.
fn newest_reads(receipts: &[stored::ReceiptRow]) -> BTreeMap<String, (i64, i64, String)> {
    let mut out: BTreeMap<String, (i64, i64, String)> = BTreeMap::new();
    for r in receipts {
        let edition = serde_json::from_str::<serde_json::Value>(&r.detail)
            .ok()
            .and_then(|d| d.get("edition")?.as_i64())
            .unwrap_or(0);
        let newer = out.get(&r.username).is_none_or(|(e, at, _)| (edition, r.at) > (*e, *at));
        if newer {
            out.insert(r.username.clone(), (edition, r.at, r.device_id.clone()));
        }
    }
    out
}

/// How many expected readers each team has (active volunteers and leads), read once for any number of bulletins.
async fn team_sizes(state: &AppState) -> Result<BTreeMap<String, usize>, Refusal> {
    let mut sizes = BTreeMap::new();
    for r in stored::readers_of(&state.db, &[], true).await? {
        *sizes.entry(r.team).or_insert(0) += 1;
    }
    Ok(sizes)
}

/// A bulletin with its read count: the expected readers who read its current edition, counted in SQL (a list of
/// bulletins reads no receipt rows).
async fn view(state: &AppState, row: BulletinRow, sizes: &BTreeMap<String, usize>) -> Result<Bulletin, Refusal> {
    let attachments = stored::attachments(&state.db, &row.id).await?;
    let teams = stored::audience_teams(&state.db, &row.id).await?;
    let expected = match teams.iter().any(|t| t == EVERYONE) {
        true => sizes.values().sum(),
        false => teams.iter().filter_map(|t| sizes.get(t)).sum(),
    };
    let read = stored::readers_of_edition(&state.db, &row.id, row.edition, &teams).await?;
    Ok(Bulletin {
        audience: serde_json::from_str(&row.audience).unwrap_or_default(),
        audience_teams: teams,
        fraud_type: (!row.fraud_type.is_empty()).then_some(row.fraud_type),
        id: row.id,
        edition: row.edition,
        title: row.title,
        body: row.body,
        kind: row.kind,
        priority: row.priority,
        expires_at: row.expires_at,
        published_at: row.published_at,
        published_by: row.published_by,
        updated_at: row.updated_at,
        withdrawn_at: row.withdrawn_at,
        attachments,
        read,
        expected,
    })
}

pub async fn get(state: &AppState, id: &str) -> Result<Bulletin, Refusal> {
    let row = stored::get(&state.db, id).await?.ok_or_else(|| Refusal::not_found(format!("no bulletin {id}")))?;
    view(state, row, &team_sizes(state).await?).await
}

/// Every bulletin, newest first; a lead's list holds those meant for their team.
pub async fn list(state: &AppState, team: Option<&str>) -> Result<Vec<Bulletin>, Refusal> {
    let mut out = Vec::new();
    let sizes = team_sizes(state).await?;
    for row in stored::list(&state.db).await? {
        let b = view(state, row, &sizes).await?;
        if team.is_none_or(|t| b.audience_teams.iter().any(|a| a == t || a == EVERYONE)) {
            out.push(b);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tally {
    pub read: usize,
    pub expected: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamTally {
    pub team: String,
    pub read: usize,
    pub expected: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VillageTally {
    pub town: String,
    pub village: String,
    pub village_code: String,
    pub read: usize,
    pub expected: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reader {
    pub username: String,
    pub team: String,
    pub read_at: i64,
    pub edition: i64,
    pub device: String,
    /// Read the current edition (not only an earlier one).
    pub current: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unread {
    pub username: String,
    pub team: String,
    /// More than `days` days since publication.
    pub overdue: bool,
    /// The edition they read, if only an earlier one.
    pub read_edition: Option<i64>,
}

/// Who has read a bulletin, per team and village, and who has not after `days` days.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Receipts {
    pub bulletin: Bulletin,
    pub days: i64,
    pub by_team: Vec<TeamTally>,
    pub by_village: Vec<VillageTally>,
    pub readers: Vec<Reader>,
    pub unread: Vec<Unread>,
}

/// Default of `days`: a volunteer who has not read a bulletin three days after it was published is overdue.
pub const DEFAULT_OVERDUE_DAYS: i64 = 3;

/// The receipts of bulletin `id`; with `team`, that team's part only (a lead's view).
pub async fn receipts(state: &AppState, id: &str, days: i64, team: Option<&str>) -> Result<Receipts, Refusal> {
    if !(0..=366).contains(&days) {
        return Err(Refusal::invalid("days is a number of days from 0 to 366"));
    }
    let bulletin = get(state, id).await?;
    if team.is_some_and(|t| !bulletin.audience_teams.iter().any(|a| a == t || a == EVERYONE)) {
        return Err(Refusal::not_found(format!("no bulletin {id} for your team")));
    }
    let everyone = bulletin.audience_teams.iter().any(|t| t == EVERYONE);
    let readers: Vec<_> = stored::readers_of(&state.db, &bulletin.audience_teams, everyone)
        .await?
        .into_iter()
        .filter(|r| team.is_none_or(|t| r.team == t))
        .collect();
    let reads = newest_reads(&stored::receipts(&state.db, id).await?);
    let overdue = now_ms() - bulletin.published_at > days * 86_400_000;
    let current = |username: &str| reads.get(username).is_some_and(|(e, _, _)| *e >= bulletin.edition);
    let mut by_team: BTreeMap<String, Tally> = BTreeMap::new();
    let (mut read_list, mut unread) = (Vec::new(), Vec::new());
    for r in &readers {
        let tally = by_team.entry(r.team.clone()).or_insert(Tally { read: 0, expected: 0 });
        tally.expected += 1;
        match reads.get(&r.username) {
            Some((edition, at, device)) => {
                read_list.push(Reader {
                    username: r.username.clone(),
                    team: r.team.clone(),
                    read_at: *at,
                    edition: *edition,
                    device: device.clone(),
                    current: current(&r.username),
                });
                if current(&r.username) {
                    tally.read += 1;
                } else {
                    unread.push(Unread {
                        username: r.username.clone(),
                        team: r.team.clone(),
                        overdue,
                        read_edition: Some(*edition),
                    });
                }
            }
            None => {
                unread.push(Unread { username: r.username.clone(), team: r.team.clone(), overdue, read_edition: None })
            }
        }
    }
    let mut by_village: BTreeMap<String, VillageTally> = BTreeMap::new();
    for (t, town, code, name) in stored::villages_of_teams(&state.db).await? {
        let Some(tally) = by_team.get(&t) else { continue };
        let v = by_village.entry(code.clone()).or_insert(VillageTally {
            town,
            village: name,
            village_code: code,
            read: 0,
            expected: 0,
        });
        v.read += tally.read;
        v.expected += tally.expected;
    }
    read_list.sort_by(|a, b| (a.read_at, &a.username).cmp(&(b.read_at, &b.username)));
    let mut by_village: Vec<VillageTally> = by_village.into_values().collect();
    by_village.sort_by(|a, b| (&a.town, &a.village).cmp(&(&b.town, &b.village)));
    Ok(Receipts {
        bulletin,
        days,
        by_team: by_team.into_iter().map(|(team, t)| TeamTally { team, read: t.read, expected: t.expected }).collect(),
        by_village,
        readers: read_list,
        unread,
    })
}

/// Each village's read rate of the bulletins published in `[from, to)`: for every such bulletin, the expected
/// readers of the teams working in the village and how many read its current edition; summed over the bulletins.
pub async fn village_read_rates(state: &AppState, from: i64, to: i64) -> Result<BTreeMap<String, Tally>, Refusal> {
    let mut out: BTreeMap<String, Tally> = BTreeMap::new();
    let bulletins = stored::published_between(&state.db, from, to).await?;
    if bulletins.is_empty() {
        return Ok(out);
    }
    for row in bulletins {
        let r = receipts(state, &row.id, DEFAULT_OVERDUE_DAYS, None).await?;
        for v in r.by_village {
            let tally = out.entry(v.village_code).or_insert(Tally { read: 0, expected: 0 });
            tally.read += v.read;
            tally.expected += v.expected;
        }
    }
    // A village with no bulletin meant for its teams this month has no entry: nothing to read.
    Ok(out)
}
