//! `deliveries`: every signed, parsed webhook delivery with its outcome, the case history.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    ScanRef,
    EventType,
    Body,
    BodySha256,
    Outcome,
    IsFinal,
    Revision,
    OverallStatus,
    ReceivedAt,
    Traceparent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(big_pk_auto(Deliveries::Id))
                    .col(text(Deliveries::ScanRef))
                    .col(text(Deliveries::EventType))
                    .col(blob(Deliveries::Body))
                    .col(text(Deliveries::BodySha256))
                    .col(text(Deliveries::Outcome))
                    .col(boolean(Deliveries::IsFinal))
                    .col(big_integer(Deliveries::Revision))
                    .col(text_null(Deliveries::OverallStatus))
                    .col(timestamp_with_time_zone(Deliveries::ReceivedAt))
                    .col(text_null(Deliveries::Traceparent))
                    .to_owned(),
            )
            .await?;
        // The duplicate check's lookup; its leading scan_ref also serves the history query,
        // so no separate scan_ref index is needed.
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_scan_ref_event_type_body_sha256")
                    .table(Deliveries::Table)
                    .col(Deliveries::ScanRef)
                    .col(Deliveries::EventType)
                    .col(Deliveries::BodySha256)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Deliveries::Table).to_owned())
            .await
    }
}
