//! The rules as data, for programs that cannot call `coverage` (the field web app reads this as JSON): the
//! campaign in force (its kinds, deliveries and indicators, each indicator's kinds per setting worked out), the
//! outcomes' rules, the names of the urgent tasks' enumerations and the grid document's constants a writer needs.
//! Nothing in it is written by hand: it is computed from the campaign and `coverage`.

use crate::campaign::{Campaign, Reach};
use crate::grid::coverage::{EXCLUDING_OUTCOMES, REVISIT_OUTCOMES};
use crate::grid::doc::corrections_upgrade;
use crate::grid::model::{Outcome, PlaceKind, ALWAYS_RECORDED, MAX_TEXT_BYTES};
use crate::task::model::{ContactMethod, FraudType, Priority};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesTable {
    /// The version of the campaign these rules come from (0: the default campaign, never changed).
    pub campaign_version: i64,
    /// What a visit can deliver, in the campaign's order; a visit records each as a boolean field named by its id.
    pub deliveries: Vec<Term>,
    /// Deliveries every visit records, `false` when not delivered; further ones are recorded only when delivered.
    pub always_recorded: Vec<&'static str>,
    pub place_kinds: Vec<Term>,
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

/// A campaign's kind or delivery with its names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Term {
    pub id: String,
    pub zh: String,
    pub en: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorRule {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    /// Place kinds counted in a village (rural).
    pub eligible_rural: Vec<String>,
    /// Place kinds counted in an urban community.
    pub eligible_urban: Vec<String>,
    /// `{"any_of": [...]}` or `{"all_of": [...]}`: the deliveries that reach the indicator.
    pub reached_by: Reach,
    /// Share of eligible places to reach, in percent.
    pub target: u32,
    pub photo_required: bool,
}

pub fn rules_table(campaign: &Campaign, campaign_version: i64) -> RulesTable {
    let kinds = |ind, rural| {
        campaign
            .place_kinds
            .iter()
            .filter(|k| Campaign::is_eligible(ind, PlaceKind::of(&k.id), rural))
            .map(|k| k.id.clone())
            .collect()
    };
    let ids = |outcomes: &[Outcome]| outcomes.iter().map(|o| o.id()).collect();
    let term = |id: &str, zh: &str, en: &str| Term { id: id.into(), zh: zh.into(), en: en.into() };
    RulesTable {
        campaign_version,
        deliveries: campaign.deliveries.iter().map(|d| term(&d.id, &d.zh, &d.en)).collect(),
        always_recorded: ALWAYS_RECORDED.to_vec(),
        place_kinds: campaign.place_kinds.iter().map(|k| term(&k.id, &k.zh, &k.en)).collect(),
        outcomes: Outcome::ALL.iter().map(|o| Named { id: o.id(), zh: o.zh() }).collect(),
        excluding_outcomes: ids(EXCLUDING_OUTCOMES),
        revisit_outcomes: ids(REVISIT_OUTCOMES),
        indicators: campaign
            .indicators
            .iter()
            .map(|ind| IndicatorRule {
                id: ind.id.clone(),
                name_zh: ind.zh.clone(),
                name_en: ind.en.clone(),
                eligible_rural: kinds(ind, true),
                eligible_urban: kinds(ind, false),
                reached_by: ind.reached_by.clone(),
                target: ind.target,
                photo_required: ind.photo_required,
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
    use crate::grid::model::Deliveries;

    #[test]
    fn the_table_answers_exactly_as_the_rules() {
        let c = Campaign::default_campaign();
        let table = rules_table(c, 0);
        assert_eq!(table.indicators.len(), c.indicators.len());
        for (rule, ind) in table.indicators.iter().zip(&c.indicators) {
            for kind in PlaceKind::ALL {
                let id = kind.id().to_string();
                assert_eq!(rule.eligible_rural.contains(&id), Campaign::is_eligible(ind, *kind, true), "{kind}");
                assert_eq!(rule.eligible_urban.contains(&id), Campaign::is_eligible(ind, *kind, false), "{kind}");
            }
            for d in &c.deliveries {
                let one = Deliveries::of([d.id.as_str()]);
                assert_eq!(rule.reached_by.ids().contains(&d.id), Campaign::is_reached_by(ind, &one), "{}", d.id);
            }
        }
        let poster = table.indicators.iter().find(|r| r.id == "poster").unwrap();
        assert!(poster.eligible_rural.contains(&"household".into()));
        assert!(!poster.eligible_urban.contains(&"household".into()));
        assert_eq!(table.excluding_outcomes, ["gone"]);
        assert_eq!(table.revisit_outcomes, ["nobody-home", "refused"]);
        let json = serde_json::to_string(&table).unwrap();
        assert!(json.contains(r#""reached_by":{"any_of":["poster"]}"#), "{json}");
        assert!(json.contains(r#""always_recorded":["handbook","briefed","poster","banner","led_playing"]"#));
    }
}
