//! Counting visits toward a campaign's indicators: which indicators a place counts toward, which of them its
//! visits reached, and when a place is excluded.
//!
//! What counts is the campaign definition's (`crate::campaign`); how a place's visits add up is written once,
//! here. The server projects it into SQL rows and only aggregates; the device uses it to list what is left.

use crate::campaign::{Campaign, IndicatorDef, Reach};
use crate::grid::model::{Deliveries, Outcome, PlaceKind, Visit};
use serde::Serialize;

impl Campaign {
    /// Whether a place of this kind counts toward `indicator`; `rural` is true for places in a village (as
    /// opposed to an urban community).
    pub fn is_eligible(indicator: &IndicatorDef, kind: PlaceKind, rural: bool) -> bool {
        indicator.counts.iter().any(|c| c.setting.admits(rural) && c.kinds.iter().any(|k| k == kind.id()))
    }

    /// Whether a visit that delivered these things reaches `indicator`.
    pub fn is_reached_by(indicator: &IndicatorDef, deliveries: &Deliveries) -> bool {
        match &indicator.reached_by {
            Reach::AnyOf(ids) => ids.iter().any(|d| deliveries.contains(d)),
            Reach::AllOf(ids) => ids.iter().all(|d| deliveries.contains(d)),
        }
    }

    /// Whether `visit` reaches `indicator`: it delivered what reaches it and, where the indicator asks for a
    /// photo, one of the visit's photos stands (none the office rejected).
    pub fn is_reached_by_visit(indicator: &IndicatorDef, visit: &Visit) -> bool {
        Campaign::is_reached_by(indicator, &visit.deliveries)
            && (!indicator.photo_required || visit.has_accepted_photo())
    }

    /// Indicators a place of this kind and setting counts toward, in report order.
    pub fn eligible_indicators(&self, kind: PlaceKind, rural: bool) -> impl Iterator<Item = &IndicatorDef> {
        self.indicators.iter().filter(move |i| Campaign::is_eligible(i, kind, rural))
    }

    /// The state of one place given all its visits.
    pub fn place_coverage<'a>(
        &self,
        kind: PlaceKind,
        rural: bool,
        visits: impl IntoIterator<Item = &'a Visit>,
    ) -> PlaceCoverage {
        let visits: Vec<&Visit> = visits.into_iter().collect();
        let last = visits.iter().copied().reduce(later_visit);
        let excluded = last.is_some_and(|v| EXCLUDING_OUTCOMES.contains(&v.outcome));
        let (reached, missing): (Vec<_>, Vec<_>) = self
            .eligible_indicators(kind, rural)
            .partition(|ind| visits.iter().any(|v| Campaign::is_reached_by_visit(ind, v)));
        let needs_revisit =
            !excluded && !missing.is_empty() && last.is_some_and(|v| REVISIT_OUTCOMES.contains(&v.outcome));
        PlaceCoverage {
            reached: reached.iter().map(|i| i.id.clone()).collect(),
            missing: missing.iter().map(|i| i.id.clone()).collect(),
            excluded,
            needs_revisit,
            visit_count: visits.len(),
        }
    }

    /// Adds places up into per-indicator figures, in indicator order, leaving out indicators no place counts for.
    pub fn summarize<'a>(&self, places: impl IntoIterator<Item = (PlaceKind, bool, &'a PlaceCoverage)>) -> Vec<Figure> {
        let mut figures: Vec<Figure> = self
            .indicators
            .iter()
            .map(|i| Figure { indicator: i.id.clone(), eligible: 0, reached: 0, excluded: 0 })
            .collect();
        for (kind, rural, cov) in places {
            for (ind, fig) in self.indicators.iter().zip(figures.iter_mut()) {
                if !Campaign::is_eligible(ind, kind, rural) {
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
    pub reached: Vec<String>,
    /// Eligible indicators not yet reached.
    pub missing: Vec<String>,
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

/// Coverage of one indicator over a set of places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Figure {
    pub indicator: String,
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use PlaceKind as K;

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
            photos: Vec::new(),
        }
    }

    /// An indicator that asks for a photo is reached by a delivery with a photo that stands, not by one without.
    #[test]
    fn a_photo_required_indicator_needs_a_photo_the_office_did_not_reject() {
        use crate::grid::model::{PhotoRef, PhotoRejection};
        let mut campaign = Campaign::default_campaign().clone();
        campaign.indicators.iter_mut().find(|i| i.id == "poster").unwrap().photo_required = true;
        let without = visit(10, Outcome::Completed, Deliveries::of(["poster"]));
        assert!(campaign.place_coverage(K::Building, false, [&without]).reached.is_empty());
        let photo = PhotoRef {
            sha256: "ab".repeat(32),
            size: 1000,
            media_type: "image/jpeg".into(),
            taken_at: Utc.timestamp_opt(10, 0).unwrap(),
            rejected: None,
        };
        let with = Visit { photos: vec![photo.clone()], ..without.clone() };
        assert_eq!(campaign.place_coverage(K::Building, false, [&without, &with]).reached, ["poster"]);
        let rejection = PhotoRejection { sha256: photo.sha256.clone(), reason: "no poster".into(), at: with.at };
        let rejected = Visit { photos: vec![PhotoRef { rejected: Some(rejection), ..photo }], ..with.clone() };
        let cov = campaign.place_coverage(K::Building, false, [&without, &rejected]);
        assert!(cov.reached.is_empty() && cov.missing == ["poster"], "back on the gap list: {cov:?}");
        // Where no photo is asked for, a delivery reaches as before, photo or not.
        assert_eq!(Campaign::default_campaign().place_coverage(K::Building, false, [&without]).reached, ["poster"]);
    }

    #[test]
    fn poster_eligibility_depends_on_rural_households() {
        let c = Campaign::default_campaign();
        let ids = |k, r| c.eligible_indicators(k, r).map(|i| i.id.as_str()).collect::<Vec<_>>();
        assert_eq!(ids(K::Household, true), ["handbook", "awareness", "poster"]);
        assert_eq!(ids(K::Household, false), ["handbook", "awareness"]);
        assert_eq!(ids(K::Shop, true), ["handbook", "awareness"]);
        assert_eq!(ids(K::Building, false), ["poster"]);
        assert_eq!(ids(K::Market, false), ["banner"]);
        assert_eq!(ids(K::LedScreen, true), ["led"]);
    }

    #[test]
    fn reach_is_monotonic_and_gone_excludes_until_contradicted() {
        let handbook = Deliveries::of(["handbook"]);
        let delivered = visit(10, Outcome::Completed, handbook);
        let nobody = visit(20, Outcome::NobodyHome, Deliveries::default());
        let cov = Campaign::default_campaign().place_coverage(K::Household, false, [&delivered, &nobody]);
        assert_eq!(cov.reached, ["handbook"]);
        assert!(!cov.excluded);
        assert!(cov.needs_revisit, "awareness still missing and nobody was home");

        let gone = visit(30, Outcome::Gone, Deliveries::default());
        assert!(Campaign::default_campaign().place_coverage(K::Household, false, [&delivered, &gone]).excluded);
        let back = visit(40, Outcome::Refused, Deliveries::default());
        assert!(
            !Campaign::default_campaign().place_coverage(K::Household, false, [&gone, &back]).excluded,
            "a later visit contradicts"
        );
    }

    #[test]
    fn summarize_counts_excluded_outside_the_denominator() {
        let gone = Campaign::default_campaign().place_coverage(
            K::Shop,
            false,
            [&visit(1, Outcome::Gone, Deliveries::default())],
        );
        let done = Campaign::default_campaign().place_coverage(
            K::Shop,
            false,
            [&visit(1, Outcome::Completed, Deliveries::of(["handbook"]))],
        );
        let fresh = Campaign::default_campaign().place_coverage(K::Shop, false, []);
        let figs = Campaign::default_campaign().summarize([
            (K::Shop, false, &gone),
            (K::Shop, false, &done),
            (K::Shop, false, &fresh),
        ]);
        assert_eq!(figs[0], Figure { indicator: "handbook".into(), eligible: 2, reached: 1, excluded: 1 });
        assert_eq!(figs[0].rate(), 0.5);
        assert_eq!(figs[1], Figure { indicator: "awareness".into(), eligible: 2, reached: 0, excluded: 1 });
        assert_eq!(figs.len(), 2);
    }
}
