//! What the in-process tests share: a real Doorstep server (SQLite in a temporary data dir) serving on a loopback
//! port inside the test's own runtime, its accounts made through the server's own account functions, and field
//! profiles beside it.
#![allow(dead_code)]

use field::profile::Profile;
use server::accounts::people::{self, NewUser};
use server::accounts::tokens::Role;
use server::reports::GroupBy;
use server::sync::documents::ServerKinds;
use server::{AppState, ServerConfig};

pub const PASSWORD: &str = "correct horse battery";

/// Two grids of team east's, and one of nobody's.
pub const TERRITORY: &str =
    "place_id,kind,label,grid_code,grid_name,village_code,village_name,village_kind,town_code,town_name\n\
H1,household,1号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H2,household,2号,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
S1,shop,小卖部,G1,一网格,V1,龙凤村,village,T1,太安镇\n\
H4,household,4号,G2,二网格,V1,龙凤村,village,T1,太安镇\n\
M3,market,三号市场,G3,三网格,V1,龙凤村,village,T1,太安镇\n";

/// A server started in this process, and the temporary folder its data dir and the test's profiles are in.
pub struct Installation {
    pub tmp: tempfile::TempDir,
    pub state: AppState,
    pub url: String,
}

impl Installation {
    /// The territory imported, team east (lead `lead`, volunteers `v1` and `v2`) holding grids G1 and G2, and the
    /// server listening on a loopback port until the test's runtime ends.
    pub async fn start() -> Installation {
        Self::start_with(ServerKinds::of_doorstep()).await
    }

    /// `start`, the server syncing `kinds` besides grids and tasks.
    pub async fn start_with(kinds: ServerKinds) -> Installation {
        let tmp = tempfile::tempdir().unwrap();
        let config = ServerConfig::with_defaults(tmp.path().join("data"), None);
        let mut state = AppState::open(&config).await.unwrap();
        state.kinds = std::sync::Arc::new(kinds);
        server::territory::import(&state, TERRITORY.as_bytes(), false, "test")
            .await
            .map_err(|e| e.to_string())
            .unwrap();
        add_user(&state, "lead", Role::Lead, None).await;
        people::create_team(&state.db, "east", Some("lead")).await.map_err(|e| e.to_string()).unwrap();
        for volunteer in ["v1", "v2"] {
            add_user(&state, volunteer, Role::Volunteer, Some("east")).await;
        }
        for grid in ["G1", "G2"] {
            people::assign_grid(&state.db, grid, "east").await.map_err(|e| e.to_string()).unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serving = server::serve(state.clone(), listener, None, Default::default(), std::future::pending());
        tokio::spawn(async move { serving.await.expect("the server stopped") });
        Installation { tmp, state, url }
    }

    /// A field profile enrolled for `username` and synced with the server.
    pub async fn enrolled(&self, username: &str) -> Profile {
        let profile = Profile::new(self.tmp.path().join(username));
        field::device::login(
            &profile,
            &self.url,
            field::device::Enrolment::Password { username, password: PASSWORD },
            "test phone",
        )
        .await
        .unwrap();
        field::device::sync(&profile, None, &Default::default()).await.unwrap();
        profile
    }

    /// The indicators the server counts as reached in `grid`, over all of them: what its coverage report shows.
    pub async fn reached_in(&self, grid: &str) -> u64 {
        let rows = server::reports::coverage(&self.state, GroupBy::Grid, None, None).await.map_err(|e| e.to_string());
        rows.unwrap().iter().filter(|row| row.area == grid).map(|row| row.reached).sum()
    }

    /// The visits the server holds: (place, device that recorded it).
    pub async fn visits(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT place_id, device_id FROM visits ORDER BY place_id")
            .fetch_all(&self.state.db.pool)
            .await
            .unwrap()
    }
}

async fn add_user(state: &AppState, username: &str, role: Role, team: Option<&str>) {
    let user =
        NewUser { username: username.into(), password: PASSWORD.into(), role, team: team.map(Into::into), area: None };
    people::create_user(&state.db, user).await.map_err(|e| e.to_string()).unwrap();
}

/// A visit to `place` that handed out the handbook, recorded offline on the profile's device.
pub fn visit(profile: &Profile, place: &str) {
    let input = field::device::VisitInput {
        place_id: place.into(),
        deliveries: client_core::grid::model::Deliveries::of(["handbook"]),
        outcome: Some(client_core::grid::model::Outcome::Completed),
        note: None,
        at: None,
        gps: None,
        photos: Vec::new(),
    };
    field::device::visit(profile, input).unwrap();
}

/// The device id a profile was enrolled under.
pub fn device_id(profile: &Profile) -> String {
    profile.device().unwrap().device_id
}

/// Serves `router` on a loopback port until the test's runtime ends; returns its URL.
pub async fn serve_on_loopback(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.expect("the hub stopped") });
    url
}
