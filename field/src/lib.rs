//! Doorstep's field client and team hub, as a library the `doorstep` binary calls and tests drive in-process.
//!
//! `device` is a volunteer's device: enrolment, offline visits, found places, urgent tasks, and the sync with the
//! server or a hub. `hub` is a team lead's profile serving that sync to the team at base, and forwarding it
//! upstream. Both keep their files in a `profile` and talk to a Doorstep server through `api`; `relay` is what
//! lets changes travel through a hub with their writers' signatures.

pub mod api;
pub mod device;
pub mod hub;
pub mod profile;
pub mod relay;
