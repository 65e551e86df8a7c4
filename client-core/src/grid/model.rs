//! Plain domain types shared by every part of Doorstep: place and area kinds, visits, outcomes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};
use uuid::Uuid;

/// Error for a value that is not one of the known names of an enumeration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of: {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: String,
}

/// Declares an enumeration whose values have a stable English id and a Chinese term,
/// both accepted when parsing (imports accept either).
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($variant:ident => ($id:literal, $zh:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.id()) }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Stable English id used in files, APIs and documents.
            pub fn id(self) -> &'static str { match self { $($name::$variant => $id),+ } }
            /// Chinese term used by the people in the field.
            pub fn zh(self) -> &'static str { match self { $($name::$variant => $zh),+ } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.id()) }
        }
        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                $(if s.eq_ignore_ascii_case($id) || s == $zh { return Ok($name::$variant); })+
                Err(UnknownName {
                    what: $what,
                    value: s.to_string(),
                    expected: [$(concat!($id, " (", $zh, ")")),+].join(", "),
                })
            }
        }
    };
}
pub(crate) use named_enum;

/// What kind of place a volunteer visits: the id of one of the campaign's place kinds (`crate::campaign`).
/// Interned, so that a kind is a copyable pointer; the default campaign's kinds have constants. Ids are interned
/// only from checked sources (a campaign, a document the server validated, the projected tables), so the set of
/// them stays as small as the campaigns' lists.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaceKind(&'static str);

#[allow(non_upper_case_globals)]
impl PlaceKind {
    pub const Household: PlaceKind = PlaceKind("household");
    pub const Shop: PlaceKind = PlaceKind("shop");
    pub const Building: PlaceKind = PlaceKind("building");
    pub const StreetBlock: PlaceKind = PlaceKind("street_block");
    pub const Market: PlaceKind = PlaceKind("market");
    pub const PedestrianStreet: PlaceKind = PlaceKind("pedestrian_street");
    pub const ScenicSpot: PlaceKind = PlaceKind("scenic_spot");
    pub const ResidentialComplex: PlaceKind = PlaceKind("residential_complex");
    pub const LedScreen: PlaceKind = PlaceKind("led_screen");
    /// The default campaign's kinds, in its order.
    pub const ALL: &'static [PlaceKind] = &[
        PlaceKind::Household,
        PlaceKind::Shop,
        PlaceKind::Building,
        PlaceKind::StreetBlock,
        PlaceKind::Market,
        PlaceKind::PedestrianStreet,
        PlaceKind::ScenicSpot,
        PlaceKind::ResidentialComplex,
        PlaceKind::LedScreen,
    ];

    /// The kind with this id (not checked against a campaign: see `Campaign::kind_named` for that).
    pub fn of(id: &str) -> PlaceKind {
        static INTERNED: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);
        if let Some(k) = PlaceKind::ALL.iter().find(|k| k.0 == id) {
            return *k;
        }
        let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = interned.get(id) {
            return PlaceKind(s);
        }
        let s: &'static str = Box::leak(id.to_string().into_boxed_str());
        interned.insert(s);
        PlaceKind(s)
    }

    /// Stable id used in files, APIs and documents.
    pub fn id(self) -> &'static str {
        self.0
    }

    /// The Chinese name the default campaign gives this kind (its id when it has none).
    pub fn zh(self) -> &'static str {
        crate::campaign::Campaign::default_campaign()
            .place_kinds
            .iter()
            .find(|k| k.id == self.0)
            .map_or(self.0, |k| k.zh.as_str())
    }

    /// The kind a word names in `campaign` (its id, Chinese name or one of its words).
    pub fn named(campaign: &crate::campaign::Campaign, word: &str) -> Result<PlaceKind, UnknownName> {
        campaign.kind_named(word).map(|k| PlaceKind::of(&k.id)).ok_or_else(|| UnknownName {
            what: "place kind",
            value: word.trim().to_string(),
            expected: campaign
                .place_kinds
                .iter()
                .map(|k| format!("{} ({})", k.id, k.zh))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

impl fmt::Debug for PlaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaceKind({})", self.0)
    }
}

impl fmt::Display for PlaceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Parses a word of the default campaign; territory files are read against the campaign in force instead.
impl FromStr for PlaceKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlaceKind::named(crate::campaign::Campaign::default_campaign(), s)
    }
}

impl Serialize for PlaceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// Any id reads as itself (a kind of a later campaign); the default campaign's other words read as its kinds.
impl<'de> Deserialize<'de> for PlaceKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if crate::campaign::is_id(&s) {
            Ok(PlaceKind::of(&s))
        } else {
            s.parse().map_err(serde::de::Error::custom)
        }
    }
}

named_enum!(
    /// Level of the area tree: district → town → village/community → grid.
    AreaKind, "area kind", {
    District => ("district", "区"),
    Town => ("town", "镇"),
    Village => ("village", "村"),
    Community => ("community", "社区"),
    Grid => ("grid", "网格"),
});

named_enum!(
    /// What happened at the door.
    Outcome, "outcome", {
    Completed => ("completed", "已完成"),
    NobodyHome => ("nobody-home", "无人在家"),
    Refused => ("refused", "拒绝"),
    Gone => ("gone", "已不存在"),
});

/// A place as the registry knows it. Contact details never live here: they stay on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub id: String,
    pub kind: PlaceKind,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
}

/// Where a grid sits in the area tree; stored in each grid document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridInfo {
    pub code: String,
    pub name: String,
    pub village_code: String,
    pub village_name: String,
    pub village_kind: AreaKind,
    pub town_code: String,
    pub town_name: String,
}

impl GridInfo {
    /// Rural grids (in a village, not an urban community) put posters on every household.
    pub fn is_rural(&self) -> bool {
        self.village_kind == AreaKind::Village
    }
}

/// What a visit delivered: ids of the campaign's deliveries (`crate::campaign`). A visit keeps them by id, so a
/// visit made under one version of the campaign counts under the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Deliveries(BTreeSet<String>);

/// The deliveries every visit records, delivered or not (the default campaign's, in its order); a visit's
/// further deliveries are recorded only when delivered.
pub const ALWAYS_RECORDED: [&str; 5] = ["handbook", "briefed", "poster", "banner", "led_playing"];

impl Deliveries {
    pub fn of<'a>(ids: impl IntoIterator<Item = &'a str>) -> Deliveries {
        Deliveries(ids.into_iter().map(str::to_string).collect())
    }

    /// The deliveries among `ALWAYS_RECORDED` whose flag is set, in its order.
    pub fn of_flags(flags: [bool; 5]) -> Deliveries {
        Deliveries::of(ALWAYS_RECORDED.iter().zip(flags).filter(|(_, on)| *on).map(|(id, _)| *id))
    }

    /// Whether each of `ALWAYS_RECORDED` was delivered, in its order.
    pub fn flags(&self) -> [bool; 5] {
        ALWAYS_RECORDED.map(|id| self.contains(id))
    }

    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }

    pub fn insert(&mut self, id: &str) {
        self.0.insert(id.to_string());
    }

    pub fn any(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// As a map of id → delivered: the deliveries every visit records, then the further ones delivered.
impl Serialize for Deliveries {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let further = self.0.iter().filter(|d| !ALWAYS_RECORDED.contains(&d.as_str()));
        let mut map = s.serialize_map(None)?;
        for id in ALWAYS_RECORDED {
            map.serialize_entry(id, &self.contains(id))?;
        }
        for id in further {
            map.serialize_entry(id, &true)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Deliveries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, bool>::deserialize(d)?;
        Ok(Deliveries(map.into_iter().filter(|(_, on)| *on).map(|(id, _)| id).collect()))
    }
}

/// One door-to-door visit. Keyed by a UUID v7 so that concurrent additions never collide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub id: Uuid,
    pub place_id: String,
    /// Username of the volunteer who recorded it.
    pub volunteer: String,
    /// Device id that recorded it (server-assigned at enrolment).
    pub device: String,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    pub deliveries: Deliveries,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<(f64, f64)>,
    /// The photos taken at this visit, by reference: their bytes travel apart from the documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<PhotoRef>,
}

impl Visit {
    /// Whether one of its photos still stands as evidence (none rejected by the office counts).
    pub fn has_accepted_photo(&self) -> bool {
        self.photos.iter().any(|p| p.rejected.is_none())
    }
}

/// A photo taken at a visit, named by the SHA-256 of the bytes the phone made of it (shrunk, without metadata).
/// The visit holds only this; the bytes are uploaded apart and checked against the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRef {
    pub sha256: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub media_type: String,
    pub taken_at: DateTime<Utc>,
    /// Set by the office when the photo does not show the delivery (the server writes it into the visit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<PhotoRejection>,
}

/// The office's decision that a photo does not show what the visit delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoRejection {
    pub sha256: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Most photos one visit may reference.
pub const MAX_PHOTOS_PER_VISIT: usize = 8;
/// Largest photo accepted, in bytes (a phone's shrunk photo is typically under 250 KB).
pub const MAX_PHOTO_BYTES: u64 = 4 * 1024 * 1024;
/// The types a photo may have.
pub const PHOTO_TYPES: &[&str] = &["image/jpeg", "image/webp"];
/// Longest reason the office may give for rejecting a photo, in bytes.
pub const MAX_REJECTION_REASON_BYTES: usize = 500;

/// Reads a visit's `photos` field (a JSON list of references, as every writer writes it), checked: at most
/// `MAX_PHOTOS_PER_VISIT`, each a SHA-256 in lowercase hex, of an accepted type and size, no hash twice.
pub fn parse_photo_refs(text: &str) -> Result<Vec<PhotoRef>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Written {
        sha256: String,
        size: u64,
        #[serde(rename = "type")]
        media_type: String,
        taken_at: DateTime<Utc>,
    }
    let written: Vec<Written> =
        serde_json::from_str(text).map_err(|e| format!("the visit's photos are not a list of references: {e}"))?;
    if written.len() > MAX_PHOTOS_PER_VISIT {
        return Err(format!("a visit references {} photos; at most {MAX_PHOTOS_PER_VISIT}", written.len()));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(written.len());
    for w in written {
        if !is_photo_hash(&w.sha256) {
            return Err(format!("photo hash {:?} is not a SHA-256 in lowercase hex", w.sha256));
        }
        if !seen.insert(w.sha256.clone()) {
            return Err(format!("photo {} is referenced twice by one visit", w.sha256));
        }
        if w.size == 0 || w.size > MAX_PHOTO_BYTES {
            return Err(format!("photo {} has size {}; a photo has 1 to {MAX_PHOTO_BYTES} bytes", w.sha256, w.size));
        }
        if !PHOTO_TYPES.contains(&w.media_type.as_str()) {
            return Err(format!(
                "photo {} has type {:?}; photos are {}",
                w.sha256,
                w.media_type,
                PHOTO_TYPES.join(" or ")
            ));
        }
        out.push(PhotoRef {
            sha256: w.sha256,
            size: w.size,
            media_type: w.media_type,
            taken_at: w.taken_at,
            rejected: None,
        });
    }
    Ok(out)
}

/// The `photos` field as written into a visit (the rejections are not: the server writes them apart).
pub fn write_photo_refs(photos: &[PhotoRef]) -> String {
    let written: Vec<serde_json::Value> = photos
        .iter()
        .map(|p| {
            serde_json::json!({
                "sha256": p.sha256,
                "size": p.size,
                "type": p.media_type,
                "taken_at": p.taken_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
        })
        .collect();
    serde_json::Value::Array(written).to_string()
}

/// Reads the office's rejections written into a visit (`photos_rejected`, a JSON list).
pub fn parse_photo_rejections(text: &str) -> Result<Vec<PhotoRejection>, String> {
    serde_json::from_str(text).map_err(|e| format!("the visit's photo rejections cannot be read: {e}"))
}

/// Whether `s` is a SHA-256 in lowercase hex, as photos are named.
pub fn is_photo_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Longest note accepted on a visit, in bytes; longer values are rejected, not truncated.
pub const MAX_NOTE_BYTES: usize = 2000;
/// Longest identifier or label accepted anywhere in a document, in bytes.
pub const MAX_TEXT_BYTES: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_english_or_chinese() {
        assert_eq!("household".parse::<PlaceKind>(), Ok(PlaceKind::Household));
        assert_eq!("户".parse::<PlaceKind>(), Ok(PlaceKind::Household));
        assert_eq!(" LED屏 ".parse::<PlaceKind>(), Ok(PlaceKind::LedScreen));
        assert_eq!("社区".parse::<AreaKind>(), Ok(AreaKind::Community));
        let err = "castle".parse::<PlaceKind>().unwrap_err();
        assert!(err.to_string().contains("unknown place kind \"castle\""), "{err}");
        assert!(err.to_string().contains("market (集贸市场)"), "{err}");
    }

    #[test]
    fn enums_serialize_as_their_ids() {
        assert_eq!(serde_json::to_string(&Outcome::NobodyHome).unwrap(), "\"nobody-home\"");
        assert_eq!(serde_json::from_str::<PlaceKind>("\"集贸市场\"").unwrap(), PlaceKind::Market);
    }
}
