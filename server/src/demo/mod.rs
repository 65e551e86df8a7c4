//! The demo town for `doorstep serve --demo`: a territory, two teams, accounts, some visits and urgent tasks,
//! created through the same import and sync paths real data takes.

pub mod tasks;

use crate::accounts::people::{self, NewUser};
use crate::accounts::tokens::Role;
use crate::{store, sync as sync_work, territory, AppState};
use anyhow::{anyhow, Result};
use client_core::grid::model::{Deliveries, Outcome, PlaceKind, Visit};
use client_core::protocol::{GridPush, ReplyKind, SyncRequest, PROTOCOL_VERSION};
use client_core::sync::build_push;
use client_core::GridDoc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write;

pub struct DemoAccount {
    pub username: String,
    pub password: String,
    pub role: &'static str,
}

const VILLAGES: &[(&str, &str, &str)] = &[
    ("V01", "龙凤村", "village"),
    ("V02", "石岭村", "village"),
    ("V03", "白鹤村", "village"),
    ("V04", "青山村", "village"),
    ("V05", "桂花村", "village"),
    ("V06", "新街社区", "community"),
    ("V07", "太安社区", "community"),
    ("V08", "滨江社区", "community"),
];

/// The demo territory as a CSV file in the public import format.
pub fn territory_csv() -> String {
    let mut rng = StdRng::seed_from_u64(2021);
    let mut csv = String::from(
        "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name,address,contact_name,contact_phone,lat,lon\n",
    );
    let mut n = 0;
    for (vi, (vcode, vname, vkind)) in VILLAGES.iter().enumerate() {
        let grids = if vi % 3 == 0 { 3 } else { 2 };
        for g in 1..=grids {
            let gcode = format!("{vcode}-G{g}");
            let gname = format!("{vname}第{g}网格");
            let rural = *vkind == "village";
            let mut kinds: Vec<PlaceKind> = Vec::new();
            let households = rng.gen_range(80..110);
            kinds.extend(std::iter::repeat_n(PlaceKind::Household, households));
            kinds.extend(std::iter::repeat_n(PlaceKind::Shop, rng.gen_range(3..10)));
            if rural {
                if g == 1 {
                    kinds.push(PlaceKind::Market);
                }
                if vi == 2 && g == 1 {
                    kinds.push(PlaceKind::ScenicSpot);
                }
            } else {
                kinds.extend(std::iter::repeat_n(PlaceKind::Building, rng.gen_range(5..12)));
                kinds.extend(std::iter::repeat_n(PlaceKind::StreetBlock, 2));
                kinds.push(PlaceKind::ResidentialComplex);
                if g == 1 {
                    kinds.push(PlaceKind::PedestrianStreet);
                    kinds.push(PlaceKind::LedScreen);
                }
            }
            if vi == 0 && g == 1 {
                kinds.push(PlaceKind::LedScreen);
            }
            for (i, kind) in kinds.iter().enumerate() {
                n += 1;
                let label = match *kind {
                    PlaceKind::Household => format!("{}组{}号", i / 20 + 1, i % 20 + 1),
                    other => format!("{}{}", other.zh(), i + 1),
                };
                let lat = 30.18 + rng.gen_range(-0.05..0.05);
                let lon = 105.83 + rng.gen_range(-0.05..0.05);
                let _ = writeln!(
                    csv,
                    "P{n:05},{},{label},{gcode},{gname},{vcode},{vname},{vkind},T01,太安镇,{vname}{label},,,{lat:.5},{lon:.5}",
                    kind.id()
                );
            }
        }
    }
    csv
}

fn password(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..12).map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char).collect()
}

/// Fills an empty database with the demo town. Returns the accounts created, or `None` if data exists.
pub async fn populate(state: &AppState) -> Result<Option<Vec<DemoAccount>>> {
    if store::areas::count_areas(&state.db).await? > 0 || store::people::count_users(&state.db).await? > 0 {
        return Ok(None);
    }
    let api = anyhow::Error::from;
    territory::import(state, territory_csv().as_bytes(), false, "demo").await.map_err(api)?;
    let mut rng = StdRng::from_entropy();
    let mut accounts = Vec::new();
    let mut add = |username: &str, role: &'static str, rng: &mut StdRng| {
        let pw = password(rng);
        accounts.push(DemoAccount { username: username.into(), password: pw.clone(), role });
        pw
    };
    let office_pw = add("office", "office", &mut rng);
    people::create_user(
        &state.db,
        NewUser { username: "office".into(), password: office_pw, role: Role::Office, team: None, area: None },
    )
    .await
    .map_err(api)?;
    let viewer_pw = add("viewer", "viewer", &mut rng);
    people::create_user(
        &state.db,
        NewUser {
            username: "viewer".into(),
            password: viewer_pw,
            role: Role::Viewer,
            team: None,
            area: Some("T01".into()),
        },
    )
    .await
    .map_err(api)?;
    let grids = store::areas::grid_codes(&state.db).await?;
    let mut volunteers = Vec::new();
    for (t, team) in ["east", "west"].iter().enumerate() {
        let team_name = format!("team-{team}");
        let lead = format!("lead-{team}");
        let pw = add(&lead, "lead", &mut rng);
        people::create_team(&state.db, &team_name, None).await.map_err(api)?;
        people::create_user(
            &state.db,
            NewUser {
                username: lead.clone(),
                password: pw,
                role: Role::Lead,
                team: Some(team_name.clone()),
                area: None,
            },
        )
        .await
        .map_err(api)?;
        for v in 1..=2 {
            let name = format!("vol-{team}-{v}");
            let pw = add(&name, "volunteer", &mut rng);
            people::create_user(
                &state.db,
                NewUser {
                    username: name.clone(),
                    password: pw,
                    role: Role::Volunteer,
                    team: Some(team_name.clone()),
                    area: None,
                },
            )
            .await
            .map_err(api)?;
            volunteers.push((name, team_name.clone()));
        }
        for (i, grid) in grids.iter().enumerate() {
            if i % 2 == t {
                people::assign_grid(&state.db, grid, &team_name).await.map_err(api)?;
            }
        }
    }
    let tasks = tasks::issue(state).await?;
    for (i, (name, _team)) in volunteers.iter().enumerate() {
        record_demo_visits(state, name, &mut StdRng::seed_from_u64(7919 * (i as u64 + 1))).await?;
    }
    tasks::evaluate_first(state, &tasks).await?;
    Ok(Some(accounts))
}

/// Enrols a device for the volunteer and syncs some visits through the real sync path.
async fn record_demo_visits(state: &AppState, username: &str, rng: &mut StdRng) -> Result<()> {
    let user = people::find_user(&state.db, username).await?.ok_or_else(|| anyhow!("demo user missing"))?;
    let (device_id, actor_hex) = people::enrol_device(&state.db, &user.id, "demo phone", None).await?;
    let actor = automerge::ActorId::try_from(actor_hex.as_str()).map_err(|_| anyhow!("bad actor"))?;
    let device = sync_work::Device {
        device_id: device_id.clone(),
        user_id: user.id.clone(),
        username: username.into(),
        actor: actor.clone(),
    };
    let first = sync_work::sync(
        state,
        &device,
        SyncRequest { protocol: PROTOCOL_VERSION, grids: vec![], tasks: Some(vec![]), docs: Default::default() },
    )
    .await?;
    let now = chrono::Utc::now();
    let mut pushes: Vec<GridPush> = Vec::new();
    for reply in first.grids.iter().filter(|r| r.kind == ReplyKind::New) {
        let mut doc = GridDoc::load(reply.snapshot.as_ref().ok_or_else(|| anyhow!("no snapshot"))?)?;
        let confirmed = doc.heads();
        doc.set_actor(actor.clone());
        for place in doc.places()? {
            if !rng.gen_bool(0.3) {
                continue;
            }
            let outcome = match rng.gen_range(0..20) {
                0..=2 => Outcome::NobodyHome,
                3 => Outcome::Refused,
                4 if place.kind == PlaceKind::Household => Outcome::Gone,
                _ => Outcome::Completed,
            };
            let done = outcome == Outcome::Completed;
            let visit = Visit {
                id: uuid::Uuid::now_v7(),
                place_id: place.id.clone(),
                volunteer: username.into(),
                device: device_id.clone(),
                at: now - chrono::Duration::minutes(rng.gen_range(10..60 * 24 * 45)),
                outcome,
                deliveries: Deliveries::of_flags([
                    done,
                    done && rng.gen_bool(0.8),
                    done && rng.gen_bool(0.7),
                    done,
                    done,
                ]),
                note: None,
                gps: None,
                photos: Vec::new(),
            };
            doc.add_visit(&visit)?;
        }
        pushes.push(build_push(&reply.grid, &doc, Some(&confirmed)));
    }
    // The first volunteer of a team acts on its urgent tasks; the others only receive them.
    let tasks =
        if username.ends_with("-1") { tasks::act_on(&first.tasks, &actor, username, &device_id)? } else { vec![] };
    sync_work::sync(
        state,
        &device,
        SyncRequest { protocol: PROTOCOL_VERSION, grids: pushes, tasks: Some(tasks), docs: Default::default() },
    )
    .await?;
    Ok(())
}
