//! The office console's people, teams and grids: the lists the office (everything) and a team lead (their own
//! team) read, and the changes: a user's role, team and area, enabling an account, a new password (which ends
//! the user's sessions), a team's lead, and grids assigned to a team in bulk or unassigned. Each change is
//! checked whole and written in one transaction, so a refused one changes nothing.
//!
//! A grid's team is only its row in `assignments`: the sync reads it (and the syncing user's team) from the
//! database at every sync, so a device whose team lost a grid is told so at its next sync
//! (`sync::reassigned`), and a volunteer moved to another team gets that team's grids there.

use crate::accounts::tokens::{check_password_rules, hash_password, Role};
use crate::refusal::Refusal;
use crate::store::db::{now_ms, Db};
use crate::store::directory::{self as stored, GridFilter, UserFilter};
use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeSet;

/// What the caller may see and act on: everything (the office) or one team (its lead).
#[derive(Debug, Clone)]
pub enum Scope {
    Everything,
    Team(String),
}

impl Scope {
    fn team(&self) -> Option<&str> {
        match self {
            Scope::Everything => None,
            Scope::Team(team) => Some(team),
        }
    }
}

/// The most rows one page of users or grids holds, and the default.
pub const MAX_PAGE: i64 = 1000;
pub const DEFAULT_USER_PAGE: i64 = 200;

fn page_size(limit: Option<i64>, default: i64) -> Result<i64, Refusal> {
    match limit.unwrap_or(default) {
        n if (1..=MAX_PAGE).contains(&n) => Ok(n),
        n => Err(Refusal::invalid(format!("limit={n}: give a number from 1 to {MAX_PAGE}"))),
    }
}

fn text(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// What `GET /api/v1/users` selects.
#[derive(Debug, Default, Deserialize)]
pub struct UserQuery {
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    /// A part of the username, in any case.
    #[serde(default)]
    pub q: Option<String>,
    /// The cursor: the `next` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserInfo {
    pub username: String,
    pub role: String,
    pub team: Option<String>,
    /// A viewer's area (code) and its name.
    pub area: Option<String>,
    pub area_name: Option<String>,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// Devices enrolled and not revoked.
    pub active_devices: i64,
    /// The last sync of any of the user's devices.
    pub last_sync_at: Option<i64>,
    /// Whether the office lets the account publish bulletins (the office always may).
    #[serde(default)]
    pub may_publish: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UserPage {
    pub users: Vec<UserInfo>,
    /// How many users the filter selects, over every page.
    pub total: i64,
    /// The cursor of the next page (`after=`), if there is one.
    pub next: Option<String>,
}

/// A page of users, in username order. A lead reads their own team only.
pub async fn list_users(db: &Db, scope: &Scope, q: UserQuery) -> Result<UserPage, Refusal> {
    let mut team = text(q.team);
    if let Scope::Team(own) = scope {
        match &team {
            Some(asked) if asked != own => {
                return Err(Refusal::forbidden(format!("a lead sees only their own team ({own}), not {asked}")))
            }
            _ => team = Some(own.clone()),
        }
    }
    let role = text(q.role);
    if let Some(role) = &role {
        role.parse::<Role>().map_err(|e| Refusal::invalid(format!("role={role:?}: {e}")))?;
    }
    let limit = page_size(q.limit, DEFAULT_USER_PAGE)?;
    let filter = UserFilter { team, role, q: text(q.q).map(|q| q.to_lowercase()), after: text(q.after), limit };
    let (rows, total) = stored::users_page(db, &filter).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|u| u.username.clone())).flatten();
    let users = rows
        .into_iter()
        .map(|u| UserInfo {
            username: u.username,
            role: u.role,
            team: u.team,
            area: u.area,
            area_name: u.area_name,
            created_at: u.created_at,
            disabled_at: u.disabled_at,
            active_devices: u.active_devices,
            last_sync_at: u.last_sync_at,
            may_publish: u.may_publish.is_some(),
        })
        .collect();
    Ok(UserPage { users, total, next })
}

/// Reads a field that may be absent (no change), null (clear it) or a value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /api/v1/users/{username}`: each field absent (unchanged), null (cleared) or a new value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEdit {
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "present")]
    pub team: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub area: Option<Option<String>>,
    /// Lets the account publish bulletins, or no longer.
    #[serde(default)]
    pub may_publish: Option<bool>,
}

/// A user's role, team and area after a change.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserEdited {
    pub username: String,
    pub role: Role,
    pub team: Option<String>,
    pub area: Option<String>,
    pub may_publish: bool,
    /// What changed, as the audit log says it (empty: nothing).
    pub changed: String,
}

fn shown(v: Option<&str>) -> &str {
    v.unwrap_or("none")
}

/// Changes a user's role, team and area (office only; `by` is the office's username). A viewer has an area and
/// no team; a lead has a team; only viewers have an area. A team whose named lead stops leading it has none
/// named; a new lead of a team with none named becomes its named lead.
pub async fn edit_user(db: &Db, by: &str, username: &str, edit: UserEdit) -> Result<UserEdited, Refusal> {
    let (_gate, mut tx) = db.begin_write().await?;
    let user = stored::user_state(&mut tx, username).await?.ok_or_else(|| Refusal::not_found(no_user(username)))?;
    let was: Role = user.role.parse().map_err(Refusal::internal)?;
    let role = edit.role.unwrap_or(was);
    if username == by && role != was {
        return Err(Refusal::invalid("you cannot change your own role; ask another office account"));
    }
    let team = match edit.team {
        Some(team) => text(team),
        None => user.team.clone(),
    };
    let area = match edit.area {
        Some(Some(area)) if role != Role::Viewer && !area.trim().is_empty() => {
            return Err(Refusal::invalid(format!(
                "only viewers have an area; {username} would be a {}: leave area out or send null",
                role.as_str()
            )))
        }
        Some(area) => text(area),
        // An account that stops being a viewer loses the area it read.
        None if role != Role::Viewer => None,
        None => user.area.clone(),
    };
    match role {
        Role::Viewer if area.is_none() => {
            return Err(Refusal::invalid(format!(
                "a viewer needs an area: give \"area\" the code of the village, community or town {username} may read"
            )))
        }
        Role::Viewer if team.is_some() => {
            return Err(Refusal::invalid(format!(
                "a viewer is in no team: send \"team\": null with role viewer ({username} is in {})",
                shown(team.as_deref())
            )))
        }
        Role::Lead if team.is_none() => {
            return Err(Refusal::invalid(format!("a lead needs a team: give \"team\" for {username}")))
        }
        _ => {}
    }
    if let Some(team) = &team {
        if !stored::team_exists(&mut tx, team).await? {
            return Err(Refusal::not_found(format!("no team named {team:?}; create it first")));
        }
    }
    if let Some(area) = &area {
        if stored::area_kind(&mut tx, area).await?.is_none() {
            return Err(Refusal::not_found(format!("no area with code {area:?}; import the territory first")));
        }
    }
    let mut changes = Vec::new();
    if role != was {
        changes.push(format!("role {} -> {}", was.as_str(), role.as_str()));
    }
    if team != user.team {
        changes.push(format!("team {} -> {}", shown(user.team.as_deref()), shown(team.as_deref())));
    }
    if area != user.area {
        changes.push(format!("area {} -> {}", shown(user.area.as_deref()), shown(area.as_deref())));
    }
    let may_publish = edit.may_publish.unwrap_or(user.may_publish.is_some());
    if may_publish != user.may_publish.is_some() {
        changes.push(format!("may publish bulletins {} -> {may_publish}", user.may_publish.is_some()));
        stored::set_may_publish(&mut tx, &user.id, may_publish.then(now_ms)).await?;
    }
    if !changes.is_empty() {
        stored::set_role_team_area(&mut tx, &user.id, role.as_str(), team.as_deref(), area.as_deref()).await?;
        keep_named_leads(&mut tx, username, role, team.as_deref()).await?;
        tx.commit().await?;
    }
    Ok(UserEdited { username: username.into(), role, team, area, may_publish, changed: changes.join(", ") })
}

/// Keeps `teams.lead` true to the user's new role and team: cleared where they no longer lead, set where they
/// lead a team with no named lead.
async fn keep_named_leads(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    username: &str,
    role: Role,
    team: Option<&str>,
) -> Result<(), Refusal> {
    for led in stored::team_led_by(tx, username).await? {
        if role != Role::Lead || team != Some(led.as_str()) {
            stored::set_team_lead(tx, &led, None).await?;
        }
    }
    if let (Role::Lead, Some(team)) = (role, team) {
        if stored::lead_of_team(tx, team).await? == Some(None) {
            stored::set_team_lead(tx, team, Some(username)).await?;
        }
    }
    Ok(())
}

fn no_user(username: &str) -> String {
    format!("no user named {username:?}")
}

/// Lifts an account's disabling (office only): it may log in again. The devices revoked when it was disabled
/// stay revoked; its phones enrol again (what they had not synced is carried over).
pub async fn enable_user(db: &Db, username: &str) -> Result<(), Refusal> {
    let (_gate, mut tx) = db.begin_write().await?;
    let user = stored::user_state(&mut tx, username).await?.ok_or_else(|| Refusal::not_found(no_user(username)))?;
    if !stored::enable(&mut tx, &user.id).await? {
        return Err(Refusal::conflict(format!("{username} is not disabled; nothing to enable")));
    }
    tx.commit().await?;
    Ok(())
}

/// A new password, returned once when the server chose it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PasswordReset {
    pub username: String,
    /// The password the server chose (absent when the caller gave one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Letters and digits that cannot be mistaken for one another when read out or copied from a screen.
const PASSWORD_CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";

fn new_password() -> String {
    let mut rng = rand::rngs::OsRng;
    (0..12).map(|_| PASSWORD_CHARS[rng.gen_range(0..PASSWORD_CHARS.len())] as char).collect()
}

/// Refuses a lead's reset of anyone but a volunteer of their own team.
fn may_reset(scope: &Scope, user: &stored::UserState) -> Result<(), Refusal> {
    match scope {
        Scope::Team(own) if user.role != "volunteer" || user.team.as_deref() != Some(own.as_str()) => {
            Err(Refusal::forbidden(format!(
                "a lead may reset the passwords of their own team's volunteers only ({} is a {} of {})",
                user.username,
                user.role,
                shown(user.team.as_deref())
            )))
        }
        _ => Ok(()),
    }
}

/// Gives a user a new password (`password`, or one the server chooses and returns once), hashed with argon2 as
/// at creation, and ends their sessions: refresh tokens revoked, session tokens issued before now refused. Their
/// devices keep syncing.
pub async fn reset_password(
    db: &Db,
    scope: &Scope,
    username: &str,
    password: Option<String>,
) -> Result<PasswordReset, Refusal> {
    let read = |user: Option<stored::UserState>| {
        let user = match (user, scope) {
            (Some(user), _) => user,
            // A lead learns no more of accounts outside their team than that they may not reset them.
            (None, Scope::Team(_)) => {
                return Err(Refusal::forbidden(format!(
                    "a lead may reset the passwords of their own team's volunteers only ({username} is not one)"
                )))
            }
            (None, Scope::Everything) => return Err(Refusal::not_found(no_user(username))),
        };
        may_reset(scope, &user)?;
        Ok::<_, Refusal>(user)
    };
    {
        // Checked before the (slow) hashing, and again in the transaction that writes.
        let mut tx = db.pool.begin().await?;
        read(stored::user_state(&mut tx, username).await?)?;
        tx.rollback().await?;
    }
    let chosen = password.is_none();
    let password = password.unwrap_or_else(new_password);
    check_password_rules(&password).map_err(Refusal::invalid)?;
    let hash = hash_password(password.clone()).await.map_err(Refusal::internal)?;
    let (_gate, mut tx) = db.begin_write().await?;
    let user = read(stored::user_state(&mut tx, username).await?)?;
    stored::set_password_ending_sessions(&mut tx, &user.id, &hash, now_ms()).await?;
    tx.commit().await?;
    Ok(PasswordReset { username: username.into(), password: chosen.then_some(password) })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TeamInfo {
    pub name: String,
    /// The named lead, else the team's first member with the lead role.
    pub lead: Option<String>,
    pub created_at: i64,
    /// Members whose accounts are not disabled, and how many of them are volunteers.
    pub members: i64,
    pub volunteers: i64,
    /// Grids assigned to the team.
    pub grids: i64,
}

/// Every team (the office) or the lead's own.
pub async fn list_teams(db: &Db, scope: &Scope) -> Result<Vec<TeamInfo>, Refusal> {
    let rows = stored::teams(db, scope.team()).await?;
    Ok(rows
        .into_iter()
        .map(|t| TeamInfo {
            name: t.name,
            lead: t.lead,
            created_at: t.created_at,
            members: t.members,
            volunteers: t.volunteers,
            grids: t.grids,
        })
        .collect())
}

/// `PATCH /api/v1/teams/{name}`: the team's new lead (null: none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamEdit {
    #[serde(deserialize_with = "present")]
    pub lead: Option<Option<String>>,
}

/// Names a team's lead (office only): the new lead joins the team with the lead role (an office account keeps
/// its role), and the team's other leads become its volunteers. Returns what changed, for the audit log.
pub async fn change_lead(db: &Db, team: &str, lead: Option<&str>) -> Result<String, Refusal> {
    let (_gate, mut tx) = db.begin_write().await?;
    let before = stored::lead_of_team(&mut tx, team)
        .await?
        .ok_or_else(|| Refusal::not_found(format!("no team named {team:?}")))?;
    let mut detail = format!("team {team}: lead {} -> {}", shown(before.as_deref()), shown(lead));
    if let Some(lead) = lead {
        let user = stored::user_state(&mut tx, lead).await?.ok_or_else(|| Refusal::not_found(no_user(lead)))?;
        if user.disabled_at.is_some() {
            return Err(Refusal::invalid(format!("{lead} is disabled; enable the account first")));
        }
        let role: Role = user.role.parse().map_err(Refusal::internal)?;
        let role = match role {
            Role::Viewer => return Err(Refusal::invalid(format!("{lead} is a viewer; a viewer cannot lead a team"))),
            Role::Office => Role::Office,
            Role::Lead | Role::Volunteer => Role::Lead,
        };
        for led in stored::team_led_by(&mut tx, lead).await? {
            stored::set_team_lead(&mut tx, &led, None).await?;
        }
        stored::set_role_team_area(&mut tx, &user.id, role.as_str(), Some(team), None).await?;
        if user.team.as_deref() != Some(team) {
            detail.push_str(&format!(" ({lead} moved from team {})", shown(user.team.as_deref())));
        }
    }
    let former = stored::other_leads_of_team(&mut tx, team, lead).await?;
    stored::make_volunteers(&mut tx, &former).await?;
    if !former.is_empty() {
        detail.push_str(&format!("; now volunteers: {}", former.join(", ")));
    }
    stored::set_team_lead(&mut tx, team, lead).await?;
    tx.commit().await?;
    Ok(detail)
}

/// What `GET /api/v1/grids` selects.
#[derive(Debug, Default, Deserialize)]
pub struct GridQuery {
    #[serde(default)]
    pub village: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub unassigned: Option<bool>,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GridInfo {
    pub code: String,
    pub name: String,
    pub village: Option<String>,
    pub village_name: Option<String>,
    pub town: Option<String>,
    pub town_name: Option<String>,
    /// The team the grid is assigned to; none: unassigned.
    pub team: Option<String>,
    pub places: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GridPage {
    pub grids: Vec<GridInfo>,
    /// How many grids the filter selects, over every page.
    pub total: i64,
    /// How many grids (of the village asked for, else of the territory) have no team; absent for a lead.
    pub unassigned: Option<i64>,
    pub next: Option<String>,
}

/// A page of grids, in code order. A lead reads their own team's grids only.
pub async fn list_grids(db: &Db, scope: &Scope, q: GridQuery) -> Result<GridPage, Refusal> {
    let mut team = text(q.team);
    let unassigned = q.unassigned.unwrap_or(false);
    if let Scope::Team(own) = scope {
        match &team {
            Some(asked) if asked != own => {
                return Err(Refusal::forbidden(format!("a lead sees only their own team's grids ({own}), not {asked}")))
            }
            _ if unassigned => return Err(Refusal::forbidden("a lead sees only their own team's grids")),
            _ => team = Some(own.clone()),
        }
    }
    if unassigned && team.is_some() {
        return Err(Refusal::invalid("unassigned=true and team= exclude each other: choose one"));
    }
    let limit = page_size(q.limit, MAX_PAGE)?;
    let filter = GridFilter { village: text(q.village), team, unassigned, after: text(q.after), limit };
    let (rows, total, unassigned_count) = stored::grids_page(db, &filter).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|g| g.code.clone())).flatten();
    let grids = rows
        .into_iter()
        .map(|g| GridInfo {
            code: g.code,
            name: g.name,
            village: g.village,
            village_name: g.village_name,
            town: g.town,
            town_name: g.town_name,
            team: g.team,
            places: g.places,
        })
        .collect();
    let unassigned = matches!(scope, Scope::Everything).then_some(unassigned_count);
    Ok(GridPage { grids, total, unassigned, next })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VillageInfo {
    pub code: String,
    pub name: String,
    /// village or community.
    pub kind: String,
    pub town: Option<String>,
    pub town_name: Option<String>,
    /// Its grids (a lead: of their team), and how many of them have no team.
    pub grids: i64,
    pub unassigned: i64,
}

/// The villages and communities with grids (a lead: with grids of their team).
pub async fn list_villages(db: &Db, scope: &Scope) -> Result<Vec<VillageInfo>, Refusal> {
    let rows = stored::villages(db, scope.team()).await?;
    Ok(rows
        .into_iter()
        .map(|v| VillageInfo {
            code: v.code,
            name: v.name,
            kind: v.kind,
            town: v.town,
            town_name: v.town_name,
            grids: v.grids,
            unassigned: v.unassigned,
        })
        .collect())
}

/// `PUT /api/v1/assignments`: a team and either a village (every grid of it) or a list of grids.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkAssignment {
    pub team: String,
    #[serde(default)]
    pub village: Option<String>,
    #[serde(default)]
    pub grids: Option<Vec<String>>,
}

/// What a bulk assignment did.
#[derive(Debug, Serialize, Deserialize)]
pub struct Assigned {
    pub team: String,
    /// Every grid now the team's.
    pub grids: Vec<String>,
    /// Those of them that were not the team's before.
    pub changed: Vec<String>,
    /// What changed, as the audit log says it.
    pub detail: String,
}

/// The most grids one assignment names.
pub const MAX_GRIDS_ASSIGNED: usize = 10_000;

/// Assigns every grid of a village, or the grids listed, to a team, in one transaction: an unknown team,
/// village or grid refuses the whole request and nothing changes. Devices whose team lost a grid are told so at
/// their next sync, as with one grid's assignment (`sync::reassigned`).
pub async fn assign(db: &Db, a: BulkAssignment) -> Result<Assigned, Refusal> {
    let team = a.team.trim().to_string();
    let (_gate, mut tx) = db.begin_write().await?;
    if !stored::team_exists(&mut tx, &team).await? {
        return Err(Refusal::not_found(format!("no team named {team:?}; nothing was assigned")));
    }
    let (what, grids) = match (text(a.village), a.grids) {
        (Some(village), None) => {
            match stored::area_kind(&mut tx, &village).await?.as_deref() {
                Some("village" | "community") => {}
                Some(kind) => {
                    return Err(Refusal::invalid(format!(
                        "{village} is a {kind}; give the code of a village or community, or list grids"
                    )))
                }
                None => {
                    return Err(Refusal::not_found(format!(
                        "no village or community with code {village:?}; nothing was assigned"
                    )))
                }
            }
            let grids = stored::grids_of_village(&mut tx, &village).await?;
            if grids.is_empty() {
                return Err(Refusal::invalid(format!("{village} has no grids; nothing was assigned")));
            }
            (format!("village {village}"), grids)
        }
        (None, Some(list)) => {
            let grids: Vec<String> = list
                .iter()
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if grids.is_empty() {
                return Err(Refusal::invalid("\"grids\" is empty: list the grid codes to assign"));
            }
            if grids.len() > MAX_GRIDS_ASSIGNED {
                return Err(Refusal::invalid(format!(
                    "{} grids in one assignment; at most {MAX_GRIDS_ASSIGNED}",
                    grids.len()
                )));
            }
            ("grids".to_string(), grids)
        }
        _ => {
            return Err(Refusal::invalid("give either \"village\" (a village or community code) or \"grids\" (a list)"))
        }
    };
    let before = stored::grids_and_teams(&mut tx, &grids).await?;
    let unknown: Vec<&str> = grids.iter().filter(|g| !before.contains_key(*g)).map(String::as_str).collect();
    if !unknown.is_empty() {
        let shown: Vec<&str> = unknown.iter().take(20).copied().collect();
        return Err(Refusal::not_found(format!(
            "no grid with code {}{}; nothing was assigned",
            shown.join(", "),
            if unknown.len() > shown.len() {
                format!(" and {} more", unknown.len() - shown.len())
            } else {
                String::new()
            }
        )));
    }
    stored::assign_grids(&mut tx, &grids, &team, now_ms()).await?;
    tx.commit().await?;
    let changed: Vec<String> =
        grids.iter().filter(|g| before.get(*g).and_then(|t| t.as_deref()) != Some(team.as_str())).cloned().collect();
    let mut listed: Vec<String> = changed
        .iter()
        .take(50)
        .map(|g| format!("{g} (was {})", shown(before.get(g).and_then(|t| t.as_deref()))))
        .collect();
    if changed.len() > listed.len() {
        listed.push(format!("and {} more", changed.len() - listed.len()));
    }
    let detail = format!(
        "{what}: {} grids -> {team}; {} changed{}{}",
        grids.len(),
        changed.len(),
        if listed.is_empty() { "" } else { ": " },
        listed.join(", ")
    );
    Ok(Assigned { team, grids, changed, detail })
}

/// Takes a grid from its team (office only); returns the team it had. Devices that held it are told at their next
/// sync.
pub async fn unassign(db: &Db, grid: &str) -> Result<String, Refusal> {
    let (_gate, mut tx) = db.begin_write().await?;
    if !stored::grid_exists(&mut tx, grid).await? {
        return Err(Refusal::not_found(format!("no grid with code {grid:?}")));
    }
    let team = stored::unassign_grid(&mut tx, grid)
        .await?
        .ok_or_else(|| Refusal::conflict(format!("grid {grid} has no team")))?;
    tx.commit().await?;
    Ok(team)
}

/// An account as every request checks it (`http::auth`).
pub struct AccountNow {
    pub disabled_at: Option<i64>,
    pub role: Role,
    pub team: Option<String>,
    /// Session tokens issued in a second before this time (ms) no longer count: the password was reset.
    pub sessions_valid_after: Option<i64>,
}

/// The account as stored now; `None` if there is no such user.
pub async fn account_now(db: &Db, user_id: &str) -> Result<Option<AccountNow>, Refusal> {
    crate::store::people::account_now(db, user_id)
        .await?
        .map(|(disabled_at, role, team, sessions_valid_after)| {
            Ok(AccountNow { disabled_at, role: role.parse().map_err(Refusal::internal)?, team, sessions_valid_after })
        })
        .transpose()
}
