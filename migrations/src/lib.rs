//! The database schema of Verdict, as sea-orm-migration migrations.
//!
//! Every migration is a frozen snapshot: it names its tables and columns itself (never the
//! entities of `verdict-store`, which follow the current code), uses only portable column types,
//! and runs unchanged on SQLite and PostgreSQL. A migration is never edited after it lands; a
//! change is a new migration.

// `MigrationTrait` declares `&SchemaManager` with an elided lifetime, and `async_trait` needs the
// impls to spell it the same way (`<'_>` makes it early-bound and no longer matches).
#![allow(elided_lifetimes_in_paths)]

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_cases;
mod m20261126_000002_create_case_persons;
mod m20261126_000003_create_deliveries;
mod m20261126_000004_create_case_changes;
mod m20261126_000005_create_feed_counter;
mod m20261126_000006_create_quarantine;
mod m20261129_000001_add_delivery_content_hash;
mod m20261129_000002_add_quarantine_fingerprint;
mod m20261129_000003_add_case_decisive_at;
mod m20261129_100001_add_case_changes_filter_columns;
mod m20261129_200001_add_quarantine_scan_ref;
mod m20261129_200002_add_case_purged_at;
mod m20261129_300001_create_reconcile_claims;
mod m20261129_300002_add_backlog_indexes;

mod fingerprint_2026_11;
mod scan_ref_2026_11;

/// Applies and rolls back Verdict's migrations (`Migrator::up(&db, None)`).
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_cases::Migration),
            Box::new(m20261126_000002_create_case_persons::Migration),
            Box::new(m20261126_000003_create_deliveries::Migration),
            Box::new(m20261126_000004_create_case_changes::Migration),
            Box::new(m20261126_000005_create_feed_counter::Migration),
            Box::new(m20261126_000006_create_quarantine::Migration),
            Box::new(m20261129_000001_add_delivery_content_hash::Migration),
            Box::new(m20261129_000002_add_quarantine_fingerprint::Migration),
            Box::new(m20261129_000003_add_case_decisive_at::Migration),
            Box::new(m20261129_100001_add_case_changes_filter_columns::Migration),
            Box::new(m20261129_200001_add_quarantine_scan_ref::Migration),
            Box::new(m20261129_200002_add_case_purged_at::Migration),
            Box::new(m20261129_300001_create_reconcile_claims::Migration),
            Box::new(m20261129_300002_add_backlog_indexes::Migration),
        ]
    }
}

impl Migrator {
    /// How many steps `Migrator::down` takes to undo the migration `name` and every one after
    /// it; `None` for an unknown name. Lets a test (or an operator) re-apply one migration over
    /// rows written before it, however many migrations have landed since.
    pub fn steps_back_to(name: &str) -> Option<u32> {
        let migrations = Self::migrations();
        let index = migrations.iter().position(|m| m.name() == name)?;
        <u32 as TryFrom<usize>>::try_from(migrations.len() - index).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_back_count_the_named_migration_and_those_after_it() {
        let newest = Migrator::migrations().pop().unwrap();
        assert_eq!(Migrator::steps_back_to(newest.name()), Some(1));
        let first = "m20261126_000001_create_cases";
        assert_eq!(
            Migrator::steps_back_to(first),
            Some(Migrator::migrations().len() as u32)
        );
        assert_eq!(Migrator::steps_back_to("m20990101_000001_nothing"), None);
    }
}
