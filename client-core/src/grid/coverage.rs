//! The coverage rules: which places each indicator counts, what reaches it, and when a place is excluded.
//!
//! These rules are written once, here. The server projects them into SQL rows (which indicators a place is
//! eligible for, which a visit reaches) and only aggregates; the device uses them to list what is left.

use crate::grid::model::{Deliveries, Outcome, PlaceKind, Visit};
use serde::Serialize;

/// One of the campaign's 100% targets.
#[derive(Debug)]
pub struct Indicator {
    /// Stable id used in reports and files.
    pub id: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    eligible: fn(PlaceKind, bool) -> bool,
    reached_by: fn(&Deliveries) -> bool,
}

impl Indicator {
    /// Whether a place of this kind counts in the denominator. `rural` is true for places in a village
    /// (as opposed to an urban community).
    pub fn is_eligible(&self, kind: PlaceKind, rural: bool) -> bool {
        (self.eligible)(kind, rural)
    }

    /// Whether a visit that delivered these things reaches this indicator.
    pub fn is_reached_by(&self, deliveries: &Deliveries) -> bool {
        (self.reached_by)(deliveries)
    }
}

use PlaceKind as K;

/// The default campaign's indicators, in report order.
pub static INDICATORS: &[Indicator] = &[
    Indicator {
        id: "handbook",
        name_zh: "宣传手册发放",
        name_en: "Handbook delivered",
        eligible: |k, _| matches!(k, K::Household | K::Shop),
        reached_by: |d| d.handbook,
    },
    Indicator {
        id: "awareness",
        name_zh: "知晓率",
        name_en: "Residents briefed",
        eligible: |k, _| matches!(k, K::Household | K::Shop),
        reached_by: |d| d.briefed,
    },
    Indicator {
        id: "poster",
        name_zh: "海报张贴",
        name_en: "Poster posted",
        eligible: |k, rural| matches!(k, K::Building | K::StreetBlock) || (k == K::Household && rural),
        reached_by: |d| d.poster,
    },
    Indicator {
        id: "banner",
        name_zh: "横幅悬挂",
        name_en: "Banner hung",
        eligible: |k, _| matches!(k, K::Market | K::PedestrianStreet | K::ScenicSpot | K::ResidentialComplex),
        reached_by: |d| d.banner,
    },
    Indicator {
        id: "led",
        name_zh: "LED屏播放",
        name_en: "LED screen playing",
        eligible: |k, _| k == K::LedScreen,
        reached_by: |d| d.led_playing,
    },
];

pub fn indicator(id: &str) -> Option<&'static Indicator> {
    INDICATORS.iter().find(|i| i.id == id)
}

/// Indicators a place of this kind and setting counts toward.
pub fn eligible_indicators(kind: PlaceKind, rural: bool) -> impl Iterator<Item = &'static Indicator> {
    INDICATORS.iter().filter(move |i| i.is_eligible(kind, rural))
}

/// Orders visits for "which came last": by time, then by id (UUID v7, so roughly creation order) to break
/// ties deterministically on every replica.
pub fn later_visit<'a>(a: &'a Visit, b: &'a Visit) -> &'a Visit {
    if (b.at, b.id) > (a.at, a.id) {
        b
    } else {
        a
    }
}

/// The state of one place given all its visits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaceCoverage {
    /// Eligible indicators already reached (reach is monotonic: later visits never undo it).
    pub reached: Vec<&'static str>,
    /// Eligible indicators not yet reached.
    pub missing: Vec<&'static str>,
    /// The last visit found the place gone (demolished, vacant, closed) and nothing later contradicts it.
    pub excluded: bool,
    /// The last visit found nobody home or was refused and something is still missing.
    pub needs_revisit: bool,
    pub visit_count: usize,
}

impl PlaceCoverage {
    pub fn is_done(&self) -> bool {
        self.excluded || self.missing.is_empty()
    }
}

/// Outcomes that take a place out of the denominator when they are its last visit.
pub const EXCLUDING_OUTCOMES: &[Outcome] = &[Outcome::Gone];
/// Outcomes that call for another visit when they are the last one and something is still missing.
pub const REVISIT_OUTCOMES: &[Outcome] = &[Outcome::NobodyHome, Outcome::Refused];

pub fn place_coverage<'a>(kind: PlaceKind, rural: bool, visits: impl IntoIterator<Item = &'a Visit>) -> PlaceCoverage {
    let visits: Vec<&Visit> = visits.into_iter().collect();
    let last = visits.iter().copied().reduce(later_visit);
    let excluded = last.is_some_and(|v| EXCLUDING_OUTCOMES.contains(&v.outcome));
    let (reached, missing): (Vec<_>, Vec<_>) =
        eligible_indicators(kind, rural).partition(|ind| visits.iter().any(|v| ind.is_reached_by(&v.deliveries)));
    let needs_revisit = !excluded && !missing.is_empty() && last.is_some_and(|v| REVISIT_OUTCOMES.contains(&v.outcome));
    PlaceCoverage {
        reached: reached.iter().map(|i| i.id).collect(),
        missing: missing.iter().map(|i| i.id).collect(),
        excluded,
        needs_revisit,
        visit_count: visits.len(),
    }
}

/// Coverage of one indicator over a set of places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figure {
    pub indicator: &'static str,
    /// Eligible places still in the denominator (excluded places are not counted here).
    pub eligible: u64,
    pub reached: u64,
    pub excluded: u64,
}

impl Figure {
    /// Reached over eligible; 1.0 when nothing is left in the denominator (there is nothing left to do).
    pub fn rate(&self) -> f64 {
        if self.eligible == 0 {
            1.0
        } else {
            self.reached as f64 / self.eligible as f64
        }
    }
}

/// Adds places up into per-indicator figures, in indicator order, leaving out indicators no place counts for.
pub fn summarize<'a>(places: impl IntoIterator<Item = (PlaceKind, bool, &'a PlaceCoverage)>) -> Vec<Figure> {
    let mut figures: Vec<Figure> =
        INDICATORS.iter().map(|i| Figure { indicator: i.id, eligible: 0, reached: 0, excluded: 0 }).collect();
    for (kind, rural, cov) in places {
        for (ind, fig) in INDICATORS.iter().zip(figures.iter_mut()) {
            if !ind.is_eligible(kind, rural) {
                continue;
            }
            if cov.excluded {
                fig.excluded += 1;
            } else {
                fig.eligible += 1;
                fig.reached += u64::from(cov.reached.contains(&ind.id));
            }
        }
    }
    figures.retain(|f| f.eligible + f.excluded > 0);
    figures
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn visit(secs: i64, outcome: Outcome, deliveries: Deliveries) -> Visit {
        Visit {
            id: uuid::Uuid::now_v7(),
            place_id: "P".into(),
            volunteer: "v".into(),
            device: "d".into(),
            at: Utc.timestamp_opt(secs, 0).unwrap(),
            outcome,
            deliveries,
            note: None,
            gps: None,
        }
    }

    #[test]
    fn poster_eligibility_depends_on_rural_households() {
        let ids = |k, r| eligible_indicators(k, r).map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(K::Household, true), ["handbook", "awareness", "poster"]);
        assert_eq!(ids(K::Household, false), ["handbook", "awareness"]);
        assert_eq!(ids(K::Shop, true), ["handbook", "awareness"]);
        assert_eq!(ids(K::Building, false), ["poster"]);
        assert_eq!(ids(K::Market, false), ["banner"]);
        assert_eq!(ids(K::LedScreen, true), ["led"]);
    }

    #[test]
    fn reach_is_monotonic_and_gone_excludes_until_contradicted() {
        let handbook = Deliveries { handbook: true, ..Default::default() };
        let delivered = visit(10, Outcome::Completed, handbook);
        let nobody = visit(20, Outcome::NobodyHome, Deliveries::default());
        let cov = place_coverage(K::Household, false, [&delivered, &nobody]);
        assert_eq!(cov.reached, ["handbook"]);
        assert!(!cov.excluded);
        assert!(cov.needs_revisit, "awareness still missing and nobody was home");

        let gone = visit(30, Outcome::Gone, Deliveries::default());
        assert!(place_coverage(K::Household, false, [&delivered, &gone]).excluded);
        let back = visit(40, Outcome::Refused, Deliveries::default());
        assert!(!place_coverage(K::Household, false, [&gone, &back]).excluded, "a later visit contradicts");
    }

    #[test]
    fn summarize_counts_excluded_outside_the_denominator() {
        let gone = place_coverage(K::Shop, false, [&visit(1, Outcome::Gone, Deliveries::default())]);
        let done = place_coverage(
            K::Shop,
            false,
            [&visit(1, Outcome::Completed, Deliveries { handbook: true, ..Default::default() })],
        );
        let fresh = place_coverage(K::Shop, false, []);
        let figs = summarize([(K::Shop, false, &gone), (K::Shop, false, &done), (K::Shop, false, &fresh)]);
        assert_eq!(figs[0], Figure { indicator: "handbook", eligible: 2, reached: 1, excluded: 1 });
        assert_eq!(figs[0].rate(), 0.5);
        assert_eq!(figs[1], Figure { indicator: "awareness", eligible: 2, reached: 0, excluded: 1 });
        assert_eq!(figs.len(), 2);
    }
}
