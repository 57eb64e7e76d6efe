//! `cases.decisive_at`: when the delivery that last decided or reopened the case arrived.
//!
//! The state machine judges a delivery as of its arrival: one that arrived before the case's
//! last final result or resubmission is stale (DESIGN.md section 9), which is what keeps a
//! delivery reprocessed from the quarantine from overriding a newer decision. Existing cases are
//! backfilled from their history: the latest arrival among applied deliveries that were final or
//! resubmissions; a case with none keeps NULL (nothing decided or reopened yet).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Cases {
    Table,
    DecisiveAt,
}

/// Portable SQL: a boolean column is a condition on PostgreSQL and an integer one on SQLite,
/// and SQLite's stored timestamps compare in time order as text.
const BACKFILL: &str = "UPDATE cases SET decisive_at = (\
    SELECT MAX(d.received_at) FROM deliveries d \
    WHERE d.scan_ref = cases.scan_ref AND d.outcome = 'applied' \
    AND (d.is_final OR d.event_type = 'IDENTIFICATION_RESUBMITTED'))";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .add_column(timestamp_with_time_zone_null(Cases::DecisiveAt))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .drop_column(Cases::DecisiveAt)
                    .to_owned(),
            )
            .await
    }
}
