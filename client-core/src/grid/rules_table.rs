//! The coverage rules as data, for programs that cannot call `coverage` (the field web app reads this as JSON),
//! with the names of the urgent tasks' enumerations and the grid document's constants a writer needs.
//!
//! The table is computed from `coverage` by evaluating its rules on every input they can receive: each place
//! kind in a rural and an urban setting, and each of the 32 combinations of deliveries. It is therefore exact
//! for any rule written there, and nothing in it is written by hand.

use crate::grid::coverage::{EXCLUDING_OUTCOMES, INDICATORS, REVISIT_OUTCOMES};
use crate::grid::doc::{corrections_upgrade, visit_field};
use crate::grid::model::{Deliveries, Outcome, PlaceKind, MAX_TEXT_BYTES};
use crate::task::model::{ContactMethod, FraudType, Priority};
use serde::Serialize;

/// Visit fields of the deliveries, in the bit order of the masks below (bit 0 is the first).
pub const DELIVERY_FIELDS: [&str; 5] =
    [visit_field::HANDBOOK, visit_field::BRIEFED, visit_field::POSTER, visit_field::BANNER, visit_field::LED_PLAYING];

impl Deliveries {
    /// The deliveries whose bits are set in `mask` (bit order of `DELIVERY_FIELDS`).
    pub fn from_mask(mask: u8) -> Deliveries {
        let bit = |i: u8| mask & (1 << i) != 0;
        Deliveries { handbook: bit(0), briefed: bit(1), poster: bit(2), banner: bit(3), led_playing: bit(4) }
    }

    pub fn mask(&self) -> u8 {
        [self.handbook, self.briefed, self.poster, self.banner, self.led_playing]
            .iter()
            .enumerate()
            .fold(0, |m, (i, on)| m | (u8::from(*on) << i))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesTable {
    /// Visit fields of the deliveries; bit `i` of a mask is `delivery_fields[i]`.
    pub delivery_fields: Vec<&'static str>,
    pub place_kinds: Vec<Named>,
    pub outcomes: Vec<Named>,
    /// The last visit's outcome takes the place out of the denominator.
    pub excluding_outcomes: Vec<&'static str>,
    /// The last visit's outcome asks for a revisit while something is missing.
    pub revisit_outcomes: Vec<&'static str>,
    pub indicators: Vec<IndicatorRule>,
    /// Names of the urgent tasks' fraud types, priorities (most urgent first) and contact methods.
    pub fraud_types: Vec<Named>,
    pub priorities: Vec<Named>,
    pub contact_methods: Vec<Named>,
    /// Longest label or address of a place, or text of a correction, in UTF-8 bytes (notes may be longer).
    pub max_text_bytes: usize,
    /// The constant change (hex) that creates the `corrections` map of a grid created before it: a writer
    /// applies it before the first correction on such a grid (`GridDoc::ensure_corrections`).
    pub corrections_upgrade: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Named {
    pub id: &'static str,
    pub zh: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorRule {
    pub id: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    /// Place kinds counted in a village (rural).
    pub eligible_rural: Vec<&'static str>,
    /// Place kinds counted in an urban community.
    pub eligible_urban: Vec<&'static str>,
    /// Every delivery mask that reaches the indicator.
    pub reached_by: Vec<u8>,
}

pub fn rules_table() -> RulesTable {
    let kinds = |ind: &crate::grid::coverage::Indicator, rural: bool| {
        PlaceKind::ALL.iter().filter(|k| ind.is_eligible(**k, rural)).map(|k| k.id()).collect()
    };
    let ids = |outcomes: &[Outcome]| outcomes.iter().map(|o| o.id()).collect();
    RulesTable {
        delivery_fields: DELIVERY_FIELDS.to_vec(),
        place_kinds: PlaceKind::ALL.iter().map(|k| Named { id: k.id(), zh: k.zh() }).collect(),
        outcomes: Outcome::ALL.iter().map(|o| Named { id: o.id(), zh: o.zh() }).collect(),
        excluding_outcomes: ids(EXCLUDING_OUTCOMES),
        revisit_outcomes: ids(REVISIT_OUTCOMES),
        indicators: INDICATORS
            .iter()
            .map(|ind| IndicatorRule {
                id: ind.id,
                name_zh: ind.name_zh,
                name_en: ind.name_en,
                eligible_rural: kinds(ind, true),
                eligible_urban: kinds(ind, false),
                reached_by: (0..32u8).filter(|m| ind.is_reached_by(&Deliveries::from_mask(*m))).collect(),
            })
            .collect(),
        fraud_types: FraudType::ALL.iter().map(|k| Named { id: k.id(), zh: k.zh() }).collect(),
        priorities: Priority::ALL.iter().map(|k| Named { id: k.id(), zh: k.zh() }).collect(),
        contact_methods: ContactMethod::ALL.iter().map(|k| Named { id: k.id(), zh: k.zh() }).collect(),
        max_text_bytes: MAX_TEXT_BYTES,
        corrections_upgrade: hex::encode(corrections_upgrade().raw_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::coverage::indicator;

    #[test]
    fn masks_round_trip() {
        for m in 0..32u8 {
            assert_eq!(Deliveries::from_mask(m).mask(), m);
        }
        assert_eq!(Deliveries { poster: true, ..Default::default() }.mask(), 0b100);
    }

    #[test]
    fn the_table_answers_exactly_as_the_rules() {
        let table = rules_table();
        assert_eq!(table.indicators.len(), INDICATORS.len());
        for rule in &table.indicators {
            let ind = indicator(rule.id).unwrap();
            for kind in PlaceKind::ALL {
                assert_eq!(rule.eligible_rural.contains(&kind.id()), ind.is_eligible(*kind, true), "{kind}");
                assert_eq!(rule.eligible_urban.contains(&kind.id()), ind.is_eligible(*kind, false), "{kind}");
            }
            for m in 0..32u8 {
                assert_eq!(rule.reached_by.contains(&m), ind.is_reached_by(&Deliveries::from_mask(m)), "{m}");
            }
        }
        let poster = table.indicators.iter().find(|r| r.id == "poster").unwrap();
        assert!(poster.eligible_rural.contains(&"household") && !poster.eligible_urban.contains(&"household"));
        assert_eq!(table.excluding_outcomes, ["gone"]);
        assert_eq!(table.revisit_outcomes, ["nobody-home", "refused"]);
    }
}
