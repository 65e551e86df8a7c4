//! The campaign in force on this server: which version of the office's definition counts, loaded at start and
//! replaced when the office applies a new one; and what applying one would change (the dry run), then applying
//! it: the new version stored, published to every device as a document (`client_core::campaign::doc`) and every
//! place whose eligibility changes recounted, in one transaction.

use crate::refusal::Refusal;
use crate::store::{campaigns as stored, documents, projection, StoreError};
use crate::AppState;
use client_core::campaign::doc::CampaignDoc;
use client_core::campaign::{self, Campaign, Changes};
use client_core::grid::model::PlaceKind;
use client_core::store::StoredDoc;
use client_core::sync::DocKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One version of the campaign, as applied.
#[derive(Debug, Clone)]
pub struct InForce {
    /// 0 for the default campaign, which was never applied.
    pub version: i64,
    pub campaign: Arc<Campaign>,
    /// The definition file as applied.
    pub definition: String,
    pub applied_at: i64,
    pub applied_by: String,
    /// The field app's rules for this version (`http::field_app`), made once.
    pub rules_json: Arc<Vec<u8>>,
}

impl InForce {
    fn new(version: i64, campaign: Campaign, definition: String, applied_at: i64, applied_by: String) -> InForce {
        let rules = client_core::grid::rules_table::rules_table(&campaign, version);
        let rules_json = Arc::new(serde_json::to_vec(&rules).expect("rules serialize"));
        campaign::know(&campaign);
        InForce { version, campaign: Arc::new(campaign), definition, applied_at, applied_by, rules_json }
    }

    fn default_campaign() -> InForce {
        InForce::new(0, Campaign::default_campaign().clone(), campaign::DEFAULT_TOML.to_string(), 0, String::new())
    }

    fn from_row((version, definition, applied_at, applied_by): stored::Version) -> Result<InForce, StoreError> {
        let campaign = campaign::parse(&definition)
            .map_err(|e| StoreError::internal(format!("stored campaign version {version} no longer reads: {e}")))?;
        Ok(InForce::new(version, campaign, definition, applied_at, applied_by))
    }
}

/// The campaign in force, shared by every request.
pub struct Campaigns {
    current: RwLock<Arc<InForce>>,
}

impl Campaigns {
    /// Loads the newest version; every older one's kinds and deliveries become known to the sync engine
    /// (`client_core::campaign::know`), as devices that hold them may still send them.
    pub async fn load(db: &crate::store::db::Db) -> Result<Campaigns, StoreError> {
        for definition in stored::definitions(db).await? {
            if let Ok(c) = campaign::parse(&definition) {
                campaign::know(&c);
            }
        }
        let current = match stored::newest(db).await? {
            Some(row) => InForce::from_row(row)?,
            None => InForce::default_campaign(),
        };
        Ok(Campaigns { current: RwLock::new(Arc::new(current)) })
    }

    pub fn current(&self) -> Arc<InForce> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn replace(&self, next: InForce) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }

    /// The version in force for a transaction that holds grid locks (a sync's, an import's), read through it. On
    /// PostgreSQL another instance may have applied a version that [`follow`] has not put in force here yet; an
    /// apply and every chunk of its recount hold every grid lock, so a version read here stays the newest until
    /// the transaction commits, and what it projects is never left counted by the older rules. On SQLite one
    /// process owns the database, and `apply` puts a version in force before it recounts.
    pub async fn for_locked(
        &self,
        db: &crate::store::db::Db,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<Arc<InForce>, StoreError> {
        let current = self.current();
        if db.backend == crate::store::db::Backend::Postgres && stored::newest_version(conn).await? > current.version {
            self.refresh(db).await?;
            return Ok(self.current());
        }
        Ok(current)
    }

    /// Puts in force a newer version another server instance on the same database applied, if there is one.
    pub async fn refresh(&self, db: &crate::store::db::Db) -> Result<(), StoreError> {
        if let Some(row) = stored::newest(db).await?.filter(|row| row.0 > self.current().version) {
            self.replace(InForce::from_row(row)?);
        }
        Ok(())
    }
}

/// How often a server sharing its database with other instances (PostgreSQL) looks for a version one of them
/// applied.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Keeps the campaign in force in step with the database while the server runs (`serve` starts it on
/// PostgreSQL, where several instances may share the database; on SQLite one process owns it).
pub async fn follow(state: AppState) {
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        if let Err(e) = state.campaigns.refresh(&state.db).await {
            tracing::warn!("cannot read the campaign in force: {e}");
        }
    }
}

/// The version in force at `at_ms` (the default campaign before any was applied).
pub async fn in_force_at(state: &AppState, at_ms: i64) -> Result<InForce, Refusal> {
    Ok(match stored::in_force_at(&state.db, at_ms).await? {
        Some(row) => InForce::from_row(row)?,
        None => InForce::default_campaign(),
    })
}

/// What applying a definition would change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub from_version: i64,
    pub to_version: i64,
    pub indicators_added: Vec<String>,
    pub indicators_removed: Vec<String>,
    pub indicators_changed: Vec<String>,
    pub kinds_added: Vec<String>,
    pub kinds_removed: Vec<String>,
    pub deliveries_added: Vec<String>,
    pub deliveries_removed: Vec<String>,
    /// Per village or community, the places whose eligible indicators change.
    pub villages: Vec<VillageChange>,
    /// Places whose eligible indicators change, in all.
    pub places_changing: u64,
    /// Nothing changes but names (or nothing at all).
    pub only_names: bool,
    /// The names the definition gives what it adds, by list (`indicators`, `place_kinds`, `deliveries`) and id.
    #[serde(default)]
    pub names: BTreeMap<String, BTreeMap<String, Name>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Name {
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VillageChange {
    pub village: String,
    /// Places whose eligibility changes, per kind.
    pub places: BTreeMap<String, u64>,
}

/// Works out what applying `definition` would change, refusing a definition that does not read or that removes
/// a kind places still have.
pub async fn plan(state: &AppState, definition: &str) -> Result<(Plan, Campaign, Changes), Refusal> {
    let next = campaign::parse(definition).map_err(|e| Refusal::invalid(e.to_string()))?;
    let current = state.campaigns.current();
    let changes = current.campaign.changes_to(&next);
    let kinds: Vec<String> = changes
        .recount
        .keys()
        .map(|(k, _)| k.clone())
        .chain(changes.kinds_removed.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let counts = stored::places_by_village_and_kind(&state.db, &kinds).await?;
    let still_used: BTreeSet<&str> = counts
        .iter()
        .filter(|(_, kind, _, n)| *n > 0 && changes.kinds_removed.contains(kind))
        .map(|(_, kind, _, _)| kind.as_str())
        .collect();
    if !still_used.is_empty() {
        let list = still_used.into_iter().collect::<Vec<_>>().join(", ");
        return Err(Refusal::invalid(format!(
            "the definition removes place kinds that places still have: {list}; re-import or reject those places \
             first, or keep the kinds"
        )));
    }
    let mut villages: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut places_changing = 0;
    for (village, kind, rural, n) in counts {
        if changes.recount.contains_key(&(kind.clone(), rural != 0)) {
            *villages.entry(village).or_default().entry(kind).or_default() += n as u64;
            places_changing += n as u64;
        }
    }
    let plan = Plan {
        from_version: current.version,
        to_version: current.version + 1,
        only_names: changes.is_empty(),
        indicators_added: changes.indicators_added.clone(),
        indicators_removed: changes.indicators_removed.clone(),
        indicators_changed: changes.indicators_changed.clone(),
        kinds_added: changes.kinds_added.clone(),
        kinds_removed: changes.kinds_removed.clone(),
        deliveries_added: changes.deliveries_added.clone(),
        deliveries_removed: changes.deliveries_removed.clone(),
        villages: villages.into_iter().map(|(village, places)| VillageChange { village, places }).collect(),
        places_changing,
        names: added_names(&next, &changes),
    };
    Ok((plan, next, changes))
}

/// How long a recount chunk should hold the grid locks and the write gate, so that syncs go on between chunks:
/// each chunk after the first is sized from the time the one before took, within `RECOUNT_CHUNK`'s bounds.
pub const RECOUNT_HOLD: Duration = Duration::from_millis(300);

/// Places recounted per transaction: the first chunk's size, and the least and most any chunk takes.
pub const RECOUNT_CHUNK: (usize, usize, usize) = (2_000, 500, 20_000);

/// The longest a recount chunk held the grid locks and the write gate in this process, in microseconds: the
/// figure `benches/reports.rs` reports beside an apply's time.
pub static LONGEST_RECOUNT_CHUNK_US: AtomicU64 = AtomicU64::new(0);

fn added_names(next: &Campaign, changes: &Changes) -> BTreeMap<String, BTreeMap<String, Name>> {
    let name = |zh: &str, en: &str| Name { zh: zh.to_string(), en: en.to_string() };
    let pick = |added: &[String], all: Vec<(&String, Name)>| -> BTreeMap<String, Name> {
        all.into_iter().filter(|(id, _)| added.contains(id)).map(|(id, n)| (id.clone(), n)).collect()
    };
    BTreeMap::from([
        (
            "indicators".to_string(),
            pick(&changes.indicators_added, next.indicators.iter().map(|i| (&i.id, name(&i.zh, &i.en))).collect()),
        ),
        (
            "place_kinds".to_string(),
            pick(&changes.kinds_added, next.place_kinds.iter().map(|k| (&k.id, name(&k.zh, &k.en))).collect()),
        ),
        (
            "deliveries".to_string(),
            pick(&changes.deliveries_added, next.deliveries.iter().map(|d| (&d.id, name(&d.zh, &d.en))).collect()),
        ),
    ])
}

/// Applies `definition` as the next version: stores it and publishes it to every device (one transaction), puts
/// it in force, then recounts every place whose eligible indicators change, a chunk per transaction. A server
/// stopped before the recount is done finishes it when it starts (`finish_recount`).
pub async fn apply(state: &AppState, definition: &str, by: &str) -> Result<Plan, Refusal> {
    let (plan, next, changes) = plan(state, definition).await?;
    let now = crate::store::db::now_ms();
    let grids = crate::store::areas::grid_codes(&state.db).await?;
    let version = {
        // Every grid is locked, as for a territory import: syncs plan their visits' projection under their
        // grids' locks.
        let (_locks, _gate, mut tx) = state.grids.begin_import(&grids).await?;
        let version = stored::newest_version(&mut tx).await? + 1;
        if version != plan.to_version {
            return Err(Refusal::conflict("another campaign version was applied meanwhile; check again and retry"));
        }
        stored::insert(&mut tx, version, definition, now, by).await?;
        // Every device receives the new version at its next sync, directly or through its team's hub, and
        // deletes the one before.
        let doc = CampaignDoc::new(version, definition);
        let id = CampaignDoc::id(version);
        let heads = doc.automerge().get_heads();
        documents::create(&mut tx, CampaignDoc::NOUN, &id, &doc.save(), &heads, &[documents::EVERYONE]).await?;
        if version > 1 {
            documents::withdraw(&mut tx, CampaignDoc::NOUN, &CampaignDoc::id(version - 1)).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        version
    };
    let in_force = InForce::new(version, next, definition.to_string(), now, by.to_string());
    let campaign = in_force.campaign.clone();
    state.campaigns.replace(in_force);
    recount(state, &campaign, &changes, &grids).await?;
    stored::mark_recounted(&state.db, version).await?;
    Ok(plan)
}

/// Recounts the places whose eligible indicators `changes` changes, under `campaign`. Recounting a place twice
/// changes nothing, so an interrupted recount is simply done again.
async fn recount(state: &AppState, campaign: &Campaign, changes: &Changes, grids: &[String]) -> Result<(), Refusal> {
    for ((kind, rural), indicators) in &changes.recount {
        let ids = stored::place_ids_of(&state.db, kind, *rural).await?;
        // Consecutive ranges of ids: a place imported meanwhile falls in one and is recounted too, which is
        // harmless (it was counted with this version already).
        let (mut size, least, most) = RECOUNT_CHUNK;
        let mut at = 0;
        while at < ids.len() {
            let chunk = &ids[at..(at + size).min(ids.len())];
            at += chunk.len();
            let range = (chunk[0].as_str(), chunk[chunk.len() - 1].as_str());
            let (_locks, _gate, mut tx) = state.grids.begin_import(grids).await?;
            let started = Instant::now();
            let mut deltas = projection::AreaDeltas::default();
            let places = projection::Recount { kind: PlaceKind::of(kind), rural: *rural, indicators };
            projection::recount_range(&mut tx, campaign, range, &places, &mut deltas).await?;
            deltas.flush(&mut tx).await?;
            tx.commit().await.map_err(StoreError::from)?;
            let held = started.elapsed();
            LONGEST_RECOUNT_CHUNK_US.fetch_max(u64::try_from(held.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
            let scaled = size as f64 * RECOUNT_HOLD.as_secs_f64() / held.as_secs_f64().max(1e-3);
            size = (scaled as usize).clamp(least, most);
        }
    }
    Ok(())
}

/// Finishes the recount of a version whose apply was interrupted (the server stopped), before serving.
pub async fn finish_recount(state: &AppState) -> Result<(), Refusal> {
    let Some(version) = stored::not_recounted(&state.db).await? else { return Ok(()) };
    let previous = match stored::definition_of(&state.db, version - 1).await? {
        Some(d) => campaign::parse(&d).map_err(|e| Refusal::internal(format!("version {}: {e}", version - 1)))?,
        None => Campaign::default_campaign().clone(),
    };
    let current = state.campaigns.current();
    tracing::warn!(version, "finishing the recount of campaign version {version}, interrupted when it was applied");
    let grids = crate::store::areas::grid_codes(&state.db).await?;
    recount(state, &current.campaign, &previous.changes_to(&current.campaign), &grids).await?;
    stored::mark_recounted(&state.db, version).await?;
    Ok(())
}

// A recount chunk's statements bind the ids of its places a visit found gone, after four values of their own.
const _: () = assert!(RECOUNT_CHUNK.2 + 4 <= crate::store::db::MAX_BINDS);
