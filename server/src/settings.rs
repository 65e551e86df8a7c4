//! Server-wide settings chosen by the office, with their allowed values and defaults (stored by
//! `store::settings`).

use crate::store::db::{now_ms, Db};
use crate::store::{settings, StoreResult};

/// Whether household contact names and phones are sent to the devices of the team holding the grid.
pub const SHARE_CONTACTS: &str = "share_contacts";

/// Known settings: name, allowed values, default.
pub const KNOWN: &[(&str, &[&str], &str)] = &[(SHARE_CONTACTS, &["on", "off"], "off")];

/// A setting's stored value, or its default.
pub async fn get_value(db: &Db, name: &str) -> StoreResult<String> {
    let default = KNOWN.iter().find(|k| k.0 == name).map(|k| k.2).unwrap_or_default();
    Ok(settings::stored_value(db, name).await?.unwrap_or_else(|| default.to_string()))
}

/// Stores a setting's value; the caller has checked it is one of the allowed values.
pub async fn set_value(db: &Db, name: &str, value: &str) -> StoreResult<()> {
    settings::store_value(db, name, value, now_ms()).await
}
