//! People and their access: users, teams and grid assignments, passwords and tokens, the login limits and the
//! audit log.

pub mod audit;
pub mod devices;
pub mod directory;
pub mod enrolment;
pub mod people;
pub mod sessions;
pub mod throttle;
pub mod tokens;
