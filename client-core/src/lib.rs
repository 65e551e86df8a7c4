//! Doorstep's shared core: the sync engine (no IO) and the device's offline store, for every kind of synced
//! document, and the two kinds: grids (places, visits, the coverage rules) and urgent tasks. Used by the field
//! client, the hub and the server alike.

pub mod bulletin;
pub mod campaign;
pub mod docs;
pub mod grid;
pub mod hub_certs;
pub mod limits;
pub mod private_files;
pub mod protocol;
pub mod roster;
pub mod sign;
pub mod store;
pub mod sync;
pub mod task;

pub use grid::doc::GridDoc;
