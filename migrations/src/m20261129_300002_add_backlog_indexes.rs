//! Indexes for what is waiting: open cases by their last change, and unreleased quarantine
//! items.
//!
//! The reconciler looks for the open case that has gone longest without a change, and the
//! `verdict_oldest_pending_case_seconds` gauge reads the oldest such change: both are a range
//! of `(is_final, updated_at)`. `verdict_quarantine_depth` counts the items whose
//! `released_at` is NULL, which `verdict quarantine list` also reads in id order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Cases {
    Table,
    IsFinal,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Quarantine {
    Table,
    ReleasedAt,
    Id,
}

const OPEN_CASES: &str = "idx_cases_is_final_updated_at";
const WAITING_QUARANTINE: &str = "idx_quarantine_released_at_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(OPEN_CASES)
                    .table(Cases::Table)
                    .col(Cases::IsFinal)
                    .col(Cases::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(WAITING_QUARANTINE)
                    .table(Quarantine::Table)
                    .col(Quarantine::ReleasedAt)
                    .col(Quarantine::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(WAITING_QUARANTINE)
                    .table(Quarantine::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OPEN_CASES)
                    .table(Cases::Table)
                    .to_owned(),
            )
            .await
    }
}
