//! Grids as a kind of synced document: a grid's places and the visits, found places and corrections devices add
//! to it (`doc`, `model`, `found`), what a device may write (`validate`), the kind's place in the sync engine
//! (`sync`), and the coverage rules that count visits toward the campaign's targets (`coverage`, `rules_table`).

pub mod coverage;
pub mod doc;
pub mod found;
pub mod model;
pub mod rules_table;
pub mod sync;
pub mod validate;
