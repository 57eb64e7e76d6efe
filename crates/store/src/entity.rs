//! SeaORM entities of the tables created by `verdict-migration`. They follow the current code;
//! the migrations stay frozen snapshots and never import them.

pub mod case;
pub mod case_change;
pub mod case_person;
pub mod delivery;
pub mod feed_counter;
pub mod quarantine;
pub mod reconcile_claim;
