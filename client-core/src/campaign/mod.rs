//! A campaign definition as data: its place kinds, what a visit can deliver, and its indicators (which places
//! count, what reaches them, the target). The office writes it as a TOML file (`file`, format in
//! docs/campaigns.md); the default campaign (`default.toml`) is the town's anti-fraud outreach.

pub mod doc;
pub mod file;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

pub use file::{parse, Problem, Problems};

/// The default campaign's file, as shipped.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

static DEFAULT: LazyLock<Campaign> =
    LazyLock::new(|| parse(DEFAULT_TOML).expect("the default campaign file is valid (tested)"));

/// Every place kind and delivery id this process knows from a campaign: the default campaign's, and those of
/// every campaign it loaded (`know`). A change naming any other is refused by the sync engine, so that what one
/// receiver stores every other receiver of it can read; a device holding an older version may still send ids
/// that version named, as ids are never reused with another meaning.
static KNOWN: LazyLock<std::sync::RwLock<(BTreeSet<String>, BTreeSet<String>)>> = LazyLock::new(|| {
    let c = Campaign::default_campaign();
    let kinds = c.place_kinds.iter().map(|k| k.id.clone()).collect();
    let deliveries = c.deliveries.iter().map(|d| d.id.clone()).collect();
    std::sync::RwLock::new((kinds, deliveries))
});

/// Adds a campaign's kinds and deliveries to those this process knows.
pub fn know(campaign: &Campaign) {
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    known.0.extend(campaign.place_kinds.iter().map(|k| k.id.clone()));
    known.1.extend(campaign.deliveries.iter().map(|d| d.id.clone()));
}

/// Whether a campaign this process knows has a place kind with this id.
pub fn is_known_kind(id: &str) -> bool {
    KNOWN.read().unwrap_or_else(|e| e.into_inner()).0.contains(id)
}

/// Whether a campaign this process knows has a delivery with this id.
pub fn is_known_delivery(id: &str) -> bool {
    KNOWN.read().unwrap_or_else(|e| e.into_inner()).1.contains(id)
}

/// Whether `s` is an id of a kind, delivery or indicator: 1 to 40 lowercase ASCII letters, digits and `_`,
/// starting with a letter.
pub fn is_id(s: &str) -> bool {
    s.len() <= 40
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A checked campaign definition. Its order is the report order of indicators and the display order of kinds
/// and deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub name_zh: String,
    pub name_en: String,
    pub place_kinds: Vec<PlaceKindDef>,
    pub deliveries: Vec<DeliveryDef>,
    pub indicators: Vec<IndicatorDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceKindDef {
    pub id: String,
    pub zh: String,
    pub en: String,
    /// Further words accepted for this kind in territory files (its id and Chinese name always are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryDef {
    pub id: String,
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorDef {
    pub id: String,
    pub zh: String,
    pub en: String,
    /// The places in the denominator: any place matching one of these.
    pub counts: Vec<Count>,
    pub reached_by: Reach,
    /// The share of eligible places to reach, in percent.
    pub target: u32,
    /// Whether a delivery reaches the indicator only with a photo of it: a visit that delivered it without one,
    /// or whose every photo the office rejected, does not reach it.
    pub photo_required: bool,
}

/// Places of these kinds, in this setting, count toward an indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub kinds: Vec<String>,
    pub setting: Setting,
}

/// Where a place lies: a village (rural) or an urban community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    Any,
    Village,
    Community,
}

impl Setting {
    pub(crate) fn admits(self, rural: bool) -> bool {
        match self {
            Setting::Any => true,
            Setting::Village => rural,
            Setting::Community => !rural,
        }
    }
}

/// Which deliveries reach an indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    AnyOf(Vec<String>),
    AllOf(Vec<String>),
}

impl Reach {
    pub fn ids(&self) -> &[String] {
        match self {
            Reach::AnyOf(ids) | Reach::AllOf(ids) => ids,
        }
    }
}

impl Campaign {
    /// The default campaign (the town's anti-fraud outreach).
    pub fn default_campaign() -> &'static Campaign {
        &DEFAULT
    }

    /// The kind a territory file's word names: its id (any case), its Chinese name or one of its words.
    pub fn kind_named(&self, word: &str) -> Option<&PlaceKindDef> {
        let word = word.trim();
        self.place_kinds.iter().find(|k| {
            k.id.eq_ignore_ascii_case(word) || k.zh == word || k.words.iter().any(|w| w.eq_ignore_ascii_case(word))
        })
    }

    pub fn indicator(&self, id: &str) -> Option<&IndicatorDef> {
        self.indicators.iter().find(|i| i.id == id)
    }

    /// What changes from `self` to `next`, by id; and for every kind and setting whose eligible indicators
    /// change, which ones before and after.
    pub fn changes_to(&self, next: &Campaign) -> Changes {
        let ids = |c: &Campaign| c.indicators.iter().map(|i| i.id.clone()).collect::<BTreeSet<_>>();
        let kinds = |c: &Campaign| c.place_kinds.iter().map(|k| k.id.clone()).collect::<BTreeSet<_>>();
        let deliveries = |c: &Campaign| c.deliveries.iter().map(|d| d.id.clone()).collect::<BTreeSet<_>>();
        let (before, after) = (ids(self), ids(next));
        let changed = before
            .intersection(&after)
            .filter(|id| {
                let (a, b) = (self.indicator(id), next.indicator(id));
                a.map(|a| (&a.counts, &a.reached_by, a.target, a.photo_required))
                    != b.map(|b| (&b.counts, &b.reached_by, b.target, b.photo_required))
            })
            .cloned()
            .collect();
        let changed: BTreeSet<String> = changed;
        let reach_changed: BTreeSet<&String> = changed
            .iter()
            .filter(|id| self.indicator(id).map(|i| &i.reached_by) != next.indicator(id).map(|i| &i.reached_by))
            .collect();
        let mut recount = BTreeMap::new();
        for kind in kinds(self).union(&kinds(next)) {
            for rural in [true, false] {
                let of = |c: &Campaign| {
                    c.eligible_indicators(crate::grid::model::PlaceKind::of(kind), rural)
                        .map(|i| i.id.clone())
                        .collect::<BTreeSet<_>>()
                };
                let (was, is) = (of(self), of(next));
                // Indicators a place of this kind and setting leaves or joins, and those it stays in whose reach
                // changed: their rows are recomputed from its visits.
                let stays = was.intersection(&is).filter(|i| reach_changed.contains(i));
                let redo: BTreeSet<String> = was.symmetric_difference(&is).chain(stays).cloned().collect();
                if !redo.is_empty() {
                    recount.insert((kind.clone(), rural), redo);
                }
            }
        }
        Changes {
            indicators_added: after.difference(&before).cloned().collect(),
            indicators_removed: before.difference(&after).cloned().collect(),
            indicators_changed: changed.into_iter().collect(),
            kinds_added: kinds(next).difference(&kinds(self)).cloned().collect(),
            kinds_removed: kinds(self).difference(&kinds(next)).cloned().collect(),
            deliveries_added: deliveries(next).difference(&deliveries(self)).cloned().collect(),
            deliveries_removed: deliveries(self).difference(&deliveries(next)).cloned().collect(),
            recount,
        }
    }
}

/// The difference between two campaign definitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Changes {
    pub indicators_added: Vec<String>,
    pub indicators_removed: Vec<String>,
    /// Indicators kept whose places, reach, target or photo rule changed.
    pub indicators_changed: Vec<String>,
    pub kinds_added: Vec<String>,
    pub kinds_removed: Vec<String>,
    pub deliveries_added: Vec<String>,
    pub deliveries_removed: Vec<String>,
    /// (kind, rural) → the indicators whose rows places of that kind and setting need recomputed: those they
    /// leave or join, and those whose reach or target changed. Only where there are some.
    pub recount: BTreeMap<(String, bool), BTreeSet<String>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }

    /// The indicators both versions have whose places or reach differ for some kind and setting (so their
    /// figures differ), and those only one of them has.
    pub fn recounted_indicators(&self) -> BTreeSet<String> {
        self.recount.values().flatten().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
