//! TLS for team hubs: the Doorstep certificate authority that issues hub certificates, and the records of
//! the certificates it issued and the addresses each team's hubs hold.

pub mod ca;
pub mod hubs;
