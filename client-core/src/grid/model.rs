//! Plain domain types shared by every part of Doorstep: place and area kinds, visits, outcomes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
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

named_enum!(
    /// What kind of place a volunteer visits.
    PlaceKind, "place kind", {
    Household => ("household", "户"),
    Shop => ("shop", "门店"),
    Building => ("building", "楼栋"),
    StreetBlock => ("street_block", "街区"),
    Market => ("market", "集贸市场"),
    PedestrianStreet => ("pedestrian_street", "商业步行街"),
    ScenicSpot => ("scenic_spot", "景区"),
    ResidentialComplex => ("residential_complex", "居民小区"),
    LedScreen => ("led_screen", "LED屏"),
});

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

/// What a visit delivered. Each flag may reach one indicator (see `coverage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliveries {
    pub handbook: bool,
    pub briefed: bool,
    pub poster: bool,
    pub banner: bool,
    pub led_playing: bool,
}

impl Deliveries {
    pub fn any(&self) -> bool {
        self.handbook || self.briefed || self.poster || self.banner || self.led_playing
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
