//! Doorstep's shared core: the grid and urgent-task document models, the coverage rules, change validation, the
//! sync engine (no IO) and the device's offline store. Used by the field client and by the server alike.

pub mod coverage;
pub mod doc;
pub mod found;
pub mod grid_sync;
pub mod hub_certs;
pub mod limits;
pub mod model;
pub mod private_files;
pub mod protocol;
pub mod roster;
pub mod rules_table;
pub mod sign;
pub mod store;
pub mod sync;
pub mod task_doc;
pub mod task_model;
pub mod task_store;
pub mod task_sync;
pub mod task_validate;
pub mod validate;

pub use doc::GridDoc;
