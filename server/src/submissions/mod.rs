//! What villages and communities report to the office (seed plan, section 六(六)): the liaison roster
//! (`roster.rs`: 分管领导 and 联络员 with their phones, a deadline, the XLSX list), the monthly written submission
//! before the 20th (`monthly.rs`) and major or urgent situation reports at any time (`situations.rs`).
//!
//! Who may do what is decided here, once: the office reads everything and writes the roster of any area; a
//! village cadre is a viewer account scoped to their village or community, who reads their own subtree and writes
//! their own area's roster, submission and situation reports. Phone numbers are shown in full only to the office
//! and to the cadre of the entry's own area.

pub mod monthly;
pub mod roster;
pub mod situations;

use crate::refusal::Refusal;
use crate::store::liaisons;
use crate::AppState;
use std::collections::BTreeMap;

/// Who is asking, as far as these records care. Other roles (volunteers, team leads) are refused before this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Office {
        username: String,
    },
    /// A viewer account and the area it is scoped to (a village cadre: a village or community).
    Cadre {
        username: String,
        area: String,
    },
}

impl Actor {
    pub fn username(&self) -> &str {
        match self {
            Actor::Office { username } | Actor::Cadre { username, .. } => username,
        }
    }

    /// Whether the actor writes `area`'s own records: the office any area, a cadre their own area only.
    pub fn owns(&self, area: &str) -> bool {
        match self {
            Actor::Office { .. } => true,
            Actor::Cadre { area: own, .. } => own == area,
        }
    }

    /// Whether the actor sees an entry's phone in full: the office, or the cadre of the entry's own area.
    pub fn sees_phone_of(&self, area: &str) -> bool {
        self.owns(area)
    }
}

/// Kinds of area that name a roster and submit monthly (the monthly ranking's units).
pub const UNIT_KINDS: [&str; 2] = ["village", "community"];

/// One area as the tree holds it.
#[derive(Debug, Clone)]
pub struct AreaInfo {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent: Option<String>,
}

/// The area tree, read once per request.
pub struct Areas(BTreeMap<String, AreaInfo>);

impl Areas {
    pub async fn read(state: &AppState) -> Result<Areas, Refusal> {
        let rows = liaisons::area_tree(&state.db).await?;
        Ok(Areas(
            rows.into_iter()
                .map(|(code, name, kind, parent)| (code.clone(), AreaInfo { code, name, kind, parent }))
                .collect(),
        ))
    }

    pub fn get(&self, code: &str) -> Option<&AreaInfo> {
        self.0.get(code)
    }

    /// An area that exists, or a refusal naming the code.
    pub fn known(&self, code: &str) -> Result<&AreaInfo, Refusal> {
        self.get(code).ok_or_else(|| Refusal::not_found(format!("no area with code {code:?}")))
    }

    /// Whether `code` is `root` or lies below it.
    pub fn within(&self, code: &str, root: &str) -> bool {
        let mut cursor = Some(code);
        // The tree comes from imports that never make a cycle; the bound keeps a corrupt one from looping.
        for _ in 0..64 {
            match cursor {
                Some(c) if c == root => return true,
                Some(c) => cursor = self.get(c).and_then(|a| a.parent.as_deref()),
                None => return false,
            }
        }
        false
    }

    /// Whether the actor may read `code`'s records: the office everything, a cadre their own subtree.
    pub fn visible(&self, actor: &Actor, code: &str) -> bool {
        match actor {
            Actor::Office { .. } => true,
            Actor::Cadre { area, .. } => self.within(code, area),
        }
    }

    /// Refuses unless the actor may read `code`'s records.
    pub fn check_visible(&self, actor: &Actor, code: &str) -> Result<&AreaInfo, Refusal> {
        let info = self.known(code)?;
        if !self.visible(actor, code) {
            if let Actor::Cadre { area, .. } = actor {
                return Err(Refusal::forbidden(format!("area {code} is outside your area {area}")));
            }
        }
        Ok(info)
    }

    /// Villages and communities the actor may read, in code order.
    pub fn visible_units(&self, actor: &Actor) -> Vec<&AreaInfo> {
        self.0.values().filter(|a| UNIT_KINDS.contains(&a.kind.as_str()) && self.visible(actor, &a.code)).collect()
    }

    /// The town an area lies in (its nearest ancestor of kind town), if any.
    pub fn town_of(&self, code: &str) -> Option<&AreaInfo> {
        let mut cursor = self.get(code)?.parent.as_deref();
        for _ in 0..64 {
            let a = self.get(cursor?)?;
            if a.kind == "town" {
                return Some(a);
            }
            cursor = a.parent.as_deref();
        }
        None
    }
}

/// A phone number as someone without the right to it sees it: the first three and last four digits of a
/// mobile number (138****1234), otherwise only the last two characters.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() >= 8 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if chars.len() > 2 {
        format!("****{}", chars[chars.len() - 2..].iter().collect::<String>())
    } else {
        "****".into()
    }
}

/// Checks a free-text field: trimmed, at most `max` characters, and present when `required`.
pub(crate) fn text_field(what: &str, value: &str, max: usize, required: bool) -> Result<String, Refusal> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(Refusal::invalid(format!("{what} is required")));
    }
    let n = v.chars().count();
    if n > max {
        return Err(Refusal::invalid(format!("{what} is {n} characters long; at most {max} are kept")));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_ends_of_a_number_only() {
        assert_eq!(mask_phone("13812341234"), "138****1234");
        assert_eq!(mask_phone("0571-8888-6666"), "057****6666");
        assert_eq!(mask_phone("110"), "****10");
        assert_eq!(mask_phone("1"), "****");
    }

    fn tree() -> Areas {
        let a = |code: &str, kind: &str, parent: Option<&str>| {
            (
                code.to_string(),
                AreaInfo {
                    code: code.into(),
                    name: code.into(),
                    kind: kind.into(),
                    parent: parent.map(str::to_string),
                },
            )
        };
        Areas(
            [
                a("T1", "town", None),
                a("V1", "village", Some("T1")),
                a("G1", "grid", Some("V1")),
                a("C1", "community", Some("T1")),
            ]
            .into_iter()
            .collect(),
        )
    }

    #[test]
    fn a_cadre_sees_their_subtree_and_owns_their_area_only() {
        let areas = tree();
        let cadre = Actor::Cadre { username: "c".into(), area: "V1".into() };
        assert!(areas.visible(&cadre, "G1") && areas.visible(&cadre, "V1"));
        assert!(!areas.visible(&cadre, "C1") && !areas.visible(&cadre, "T1"));
        assert!(cadre.owns("V1") && !cadre.owns("G1") && !cadre.owns("C1"));
        let town = Actor::Cadre { username: "t".into(), area: "T1".into() };
        assert!(areas.visible(&town, "C1") && !town.sees_phone_of("C1"));
        assert!(Actor::Office { username: "o".into() }.sees_phone_of("C1"));
        assert_eq!(areas.town_of("G1").map(|t| t.code.as_str()), Some("T1"));
    }
}
