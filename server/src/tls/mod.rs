//! TLS for team hubs: the Doorstep certificate authority that issues hub certificates.

pub mod ca;
