//! Demo town.
