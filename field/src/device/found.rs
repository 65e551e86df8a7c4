//! `doorstep field add-place` and `doorstep field correct`: places found in the field and corrections of a
//! place's label or address, recorded offline like visits and reviewed by the office once synced.

use crate::device::{check_gps, load};
use crate::profile::Profile;
use anyhow::{bail, Result};
use client_core::grid::found::{new_found_place_id, Correction, FoundPlace};
use client_core::grid::model::{Place, PlaceKind, MAX_TEXT_BYTES};

/// A place the volunteer found that the registry lacks.
pub struct NewPlace {
    pub grid: String,
    /// A word for one of the held campaign's place kinds (its id, Chinese name or another of its words).
    pub kind: String,
    pub label: String,
    pub address: Option<String>,
    pub gps: Option<(f64, f64)>,
}

fn check_text(what: &str, text: &str) -> Result<()> {
    if text.trim().is_empty() {
        bail!("{what} is empty");
    }
    if text.len() > MAX_TEXT_BYTES {
        bail!("{what} is {} bytes; the limit is {MAX_TEXT_BYTES}", text.len());
    }
    Ok(())
}

/// Records the place (durably, before its id is printed); it counts in coverage once synced.
pub fn add_place(profile: &Profile, input: NewPlace) -> Result<()> {
    let device = profile.device()?;
    let kind = PlaceKind::named(&super::held_campaign(profile)?, &input.kind)?;
    check_text("--label", &input.label)?;
    if let Some(address) = &input.address {
        check_text("--address", address)?;
    }
    if let Some((lat, lon)) = input.gps {
        check_gps(lat, lon)?;
    }
    let store = profile.grids()?;
    let grids = store.grids()?;
    if !grids.contains(&input.grid) {
        if grids.is_empty() {
            bail!("no grids on this device yet; run `doorstep field sync` while connected");
        }
        bail!("grid {} is not on this device; its grids are: {}", input.grid, grids.join(", "));
    }
    let mut doc = load(&store, &device, &input.grid)?;
    let found = FoundPlace {
        place: Place {
            id: new_found_place_id(),
            kind,
            label: input.label.trim().to_string(),
            address: input.address.map(|a| a.trim().to_string()),
            lat: input.gps.map(|g| g.0),
            lon: input.gps.map(|g| g.1),
        },
        added_by: device.username.clone(),
        device: device.device_id.clone(),
        added_at: chrono::Utc::now(),
        review: None,
    };
    let change = doc.add_found_place(&found)?;
    store.append(&input.grid, &[change])?;
    println!("{}", found.place.id);
    eprintln!("place recorded; it counts once synced and awaits the office's review");
    Ok(())
}

/// Records a proposed new label and/or address for a place; the office confirms or rejects it.
pub fn correct(profile: &Profile, place_id: &str, label: Option<String>, address: Option<String>) -> Result<()> {
    let device = profile.device()?;
    if label.is_none() && address.is_none() {
        bail!("give the corrected --label, --address or both");
    }
    for (what, text) in [("--label", &label), ("--address", &address)] {
        if let Some(text) = text {
            check_text(what, text)?;
        }
    }
    let store = profile.grids()?;
    let grids = store.grids()?;
    for grid in &grids {
        let mut doc = load(&store, &device, grid)?;
        if doc.place(place_id)?.is_none() {
            continue;
        }
        let correction = Correction {
            id: uuid::Uuid::now_v7(),
            place_id: place_id.to_string(),
            label: label.map(|l| l.trim().to_string()),
            address: address.map(|a| a.trim().to_string()),
            volunteer: device.username.clone(),
            device: device.device_id.clone(),
            at: chrono::Utc::now(),
            review: None,
        };
        let changes = doc.add_correction(&correction)?;
        store.append(grid, &changes)?;
        println!("{}", correction.id);
        eprintln!("correction recorded; the office reviews it once synced");
        return Ok(());
    }
    bail!(
        "place {place_id} is not in this device's grids ({}); check the id with `doorstep field places`",
        grids.join(", ")
    )
}
