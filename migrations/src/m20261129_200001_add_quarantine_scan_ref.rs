//! `quarantine.scan_ref` and `quarantine.purged_at`: the quarantine learns which case each item
//! belongs to, so that purging a case erases its quarantined bodies too (DESIGN.md section 11).
//!
//! `scan_ref` is the case the body names at its top level, whether or not the rest of it could
//! be used; NULL when it names none (such items are erased by age instead). `purged_at` is set
//! when a purge erased the item's body (the body is then empty, the hashes stay, and the item no
//! longer waits to be reprocessed).
//!
//! Existing rows are backfilled from their bodies with a frozen copy of the application's
//! reading ([`crate::scan_ref_2026_11`]). Both columns are nullable: a replica of the previous
//! release may still insert rows during a rolling upgrade (the application fills `scan_ref`
//! from then on; a row that misses it is erased by age).

use sea_orm_migration::{prelude::*, schema::*};

use crate::scan_ref_2026_11;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Quarantine {
    Table,
    Id,
    Body,
    ScanRef,
    PurgedAt,
}

const SCAN_REF_INDEX: &str = "idx_quarantine_scan_ref";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            text_null(Quarantine::ScanRef),
            timestamp_with_time_zone_null(Quarantine::PurgedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Quarantine::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        scan_ref_2026_11::backfill(
            manager,
            [
                Quarantine::Table,
                Quarantine::Id,
                Quarantine::Body,
                Quarantine::ScanRef,
            ],
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name(SCAN_REF_INDEX)
                    .table(Quarantine::Table)
                    .col(Quarantine::ScanRef)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(SCAN_REF_INDEX)
                    .table(Quarantine::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Quarantine::PurgedAt, Quarantine::ScanRef] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Quarantine::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
