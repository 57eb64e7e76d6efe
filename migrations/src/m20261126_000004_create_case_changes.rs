//! `case_changes`: the commit-ordered feed behind WatchCases. `position` is assigned from
//! `feed_counter` inside the writing transaction (not by a sequence, whose values are not
//! commit-ordered on PostgreSQL), so it is a plain primary key without auto-increment.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum CaseChanges {
    Table,
    Position,
    ScanRef,
    Revision,
    IsFinal,
    Snapshot,
    Traceparent,
    CommittedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CaseChanges::Table)
                    .col(big_integer(CaseChanges::Position).primary_key())
                    .col(text(CaseChanges::ScanRef))
                    .col(big_integer(CaseChanges::Revision))
                    .col(boolean(CaseChanges::IsFinal))
                    // JSON of the case as of this change, without personal data.
                    .col(text(CaseChanges::Snapshot))
                    .col(text_null(CaseChanges::Traceparent))
                    .col(timestamp_with_time_zone(CaseChanges::CommittedAt))
                    .to_owned(),
            )
            .await?;
        // For `final_only` readers, which skip most of the feed.
        manager
            .create_index(
                Index::create()
                    .name("idx_case_changes_is_final_position")
                    .table(CaseChanges::Table)
                    .col(CaseChanges::IsFinal)
                    .col(CaseChanges::Position)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CaseChanges::Table).to_owned())
            .await
    }
}
