//! Urgent tasks as a kind of synced document: one document per task the office issues to a team (`doc`,
//! `model`), the sign-fors and outcomes a device may add (`validate`), the kind's place in the sync engine
//! (`sync`), and the device's folder of tasks (`store`).

pub mod doc;
pub mod model;
pub mod store;
pub mod sync;
pub mod validate;
