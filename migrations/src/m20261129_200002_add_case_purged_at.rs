//! `cases.purged_at`: when a purge erased the case's personal data (DESIGN.md section 11).
//!
//! NULL for every existing case: nothing was purged before this release. The index serves the
//! retention pass, which looks for cases not purged yet (`purged_at IS NULL`) that became final
//! before a cutoff (`finalized_at <`), oldest first: purged cases, however many accumulate,
//! are never scanned again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Cases {
    Table,
    PurgedAt,
    FinalizedAt,
}

const RETENTION_INDEX: &str = "idx_cases_purged_at_finalized_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .add_column(timestamp_with_time_zone_null(Cases::PurgedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(RETENTION_INDEX)
                    .table(Cases::Table)
                    .col(Cases::PurgedAt)
                    .col(Cases::FinalizedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(RETENTION_INDEX)
                    .table(Cases::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .drop_column(Cases::PurgedAt)
                    .to_owned(),
            )
            .await
    }
}
