//! Users, teams, grid assignments and device enrolment: the organisation behind the field work.

use crate::accounts::tokens::{check_password_rules, hash_password, Role};
use crate::refusal::Refusal;
use crate::store::db::{now_ms, Db};
use crate::store::{areas, devices, enrolment_codes, people, StoreResult};
use serde::{Deserialize, Serialize};

pub use crate::store::devices::TeamDevice;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub team: Option<String>,
    /// For viewers: the area (and its subtree) they may read.
    #[serde(default)]
    pub area: Option<String>,
}

/// Usernames are short identifiers: they appear in reports, files and URLs.
pub fn check_name(what: &str, name: &str) -> Result<(), Refusal> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Refusal::invalid(format!("{what} {name:?} is not valid: use 1-64 letters, digits, '-', '_' or '.'")))
    }
}

pub async fn create_user(db: &Db, u: NewUser) -> Result<String, Refusal> {
    check_name("username", &u.username)?;
    check_password_rules(&u.password).map_err(Refusal::invalid)?;
    if let Some(team) = &u.team {
        team_must_exist(db, team).await?;
    }
    if let Some(area) = &u.area {
        if !areas::area_exists(db, area).await? {
            return Err(Refusal::not_found(format!("no area with code {area:?}; import the territory first")));
        }
    }
    let hash = hash_password(u.password).await.map_err(Refusal::internal)?;
    let id = uuid::Uuid::now_v7().to_string();
    let row = people::UserRow {
        id: &id,
        username: &u.username,
        password_hash: hash,
        role: u.role.as_str(),
        team: u.team.as_deref(),
        area: u.area.as_deref(),
        created_at: now_ms(),
    };
    if !people::insert_user(db, row).await? {
        return Err(Refusal::conflict(format!("user {:?} already exists", u.username)));
    }
    Ok(id)
}

pub async fn team_must_exist(db: &Db, team: &str) -> Result<(), Refusal> {
    if people::team_exists(db, team).await? {
        Ok(())
    } else {
        Err(Refusal::not_found(format!("no team named {team:?}; create it with `doorstep team create`")))
    }
}

pub async fn create_team(db: &Db, name: &str, lead: Option<&str>) -> Result<(), Refusal> {
    check_name("team name", name)?;
    if let Some(lead) = lead {
        if !people::user_exists(db, lead).await? {
            return Err(Refusal::not_found(format!("no user named {lead:?}")));
        }
    }
    let (_gate, mut tx) = db.begin_write().await?;
    if !people::insert_team(&mut tx, name, lead, now_ms()).await? {
        return Err(Refusal::conflict(format!("team {name:?} already exists")));
    }
    if let Some(lead) = lead {
        // The lead joins the team unless already in another one.
        people::join_team_if_teamless(&mut tx, name, lead).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn assign_grid(db: &Db, grid: &str, team: &str) -> Result<(), Refusal> {
    team_must_exist(db, team).await?;
    if !areas::grid_exists(db, grid).await? {
        return Err(Refusal::not_found(format!("no grid with code {grid:?}; import the territory first")));
    }
    areas::assign_grid(db, grid, team, now_ms()).await?;
    Ok(())
}

/// A user's stored record, for logins.
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub team: Option<String>,
    pub disabled: bool,
}

pub async fn find_user(db: &Db, username: &str) -> Result<Option<UserRecord>, Refusal> {
    people::user_by_name(db, username)
        .await?
        .map(|(id, username, password_hash, role, team, disabled)| {
            Ok(UserRecord {
                id,
                username,
                password_hash,
                role: role.parse().map_err(Refusal::internal)?,
                team,
                disabled: disabled.is_some(),
            })
        })
        .transpose()
}

/// Registers a device and gives it a fresh automerge actor id, returned as hex. `public_key` verifies the
/// signatures of the changes it writes (devices enrolled without one cannot sync through a hub).
pub async fn enrol_device(
    db: &Db,
    user_id: &str,
    name: &str,
    public_key: Option<&client_core::sign::PublicKey>,
) -> Result<(String, String), Refusal> {
    let enrolled = enrol_device_claiming(db, user_id, name, public_key, None).await?;
    Ok(enrolled.expect("nothing to claim"))
}

/// Registers a device as `enrol_device` does, claiming the one-time enrolment code `code_id` (if any) in the same
/// transaction: `None`, and no device, if the code was used, revoked or expired meanwhile.
pub async fn enrol_device_claiming(
    db: &Db,
    user_id: &str,
    name: &str,
    public_key: Option<&client_core::sign::PublicKey>,
    code_id: Option<&str>,
) -> Result<Option<(String, String)>, Refusal> {
    let device_id = uuid::Uuid::now_v7().to_string();
    let actor = automerge::ActorId::from(uuid::Uuid::new_v4().as_bytes().as_slice()).to_hex_string();
    let now = now_ms();
    let (_gate, mut tx) = db.begin_write().await?;
    if let Some(code_id) = code_id {
        if !enrolment_codes::claim(&mut tx, code_id, &device_id, now).await? {
            return Ok(None);
        }
    }
    devices::insert(&mut tx, &device_id, user_id, &actor, name, now, public_key.map(|k| k.to_hex())).await?;
    tx.commit().await?;
    Ok(Some((device_id, actor)))
}

/// A user's team as stored now (it may have changed since their token was issued). Fails if there is no such user.
pub async fn team_of(db: &Db, user_id: &str) -> StoreResult<Option<String>> {
    people::team_of(db, user_id).await
}

/// A user's role (as stored) and team, as they are now. Fails if there is no such user.
pub async fn role_and_team(db: &Db, user_id: &str) -> StoreResult<(String, Option<String>)> {
    people::role_and_team(db, user_id).await
}

/// A user's area (viewers read only it and what lies below it). Fails if there is no such user.
pub async fn area_of(db: &Db, user_id: &str) -> StoreResult<Option<String>> {
    people::area_of(db, user_id).await
}

/// The area an area lies in, if any (none for a town, or an unknown code).
pub async fn parent_area(db: &Db, code: &str) -> StoreResult<Option<String>> {
    areas::parent_of(db, code).await
}

/// A user's role as stored now. Fails if there is no such user.
pub async fn role_of(db: &Db, user_id: &str) -> StoreResult<String> {
    people::role_of(db, user_id).await
}

/// Whether a user exists and, if so, when they were disabled (`Some(None)`: an active account).
pub async fn disabled_at(db: &Db, user_id: &str) -> StoreResult<Option<Option<i64>>> {
    people::disabled_at(db, user_id).await
}

/// A user's enrolled device: its actor (hex) and when it was revoked, if it was.
pub async fn device_of(db: &Db, device_id: &str, user_id: &str) -> StoreResult<Option<(String, Option<i64>)>> {
    devices::actor_and_revocation(db, device_id, user_id).await
}

/// A team's devices that can sign changes, oldest enrolment first (see `TeamDevice`).
pub async fn team_devices(db: &Db, team: &str) -> StoreResult<Vec<TeamDevice>> {
    devices::signing_devices_of_team(db, team).await
}

/// Disables an account and, in the same transaction, revokes every device it enrolled and its refresh tokens,
/// so that no part of its access outlives the others.
pub async fn disable_user(db: &Db, user_id: &str, now_ms: i64) -> StoreResult<()> {
    people::disable_with_devices_and_tokens(db, user_id, now_ms).await
}
