//! `quarantine`: signed deliveries that could not be used (unparseable body, unknown event
//! type), kept with the reason until they are reprocessed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Quarantine {
    Table,
    Id,
    EventType,
    Body,
    Reason,
    ReceivedAt,
    Traceparent,
    ReleasedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Quarantine::Table)
                    .col(big_pk_auto(Quarantine::Id))
                    .col(text_null(Quarantine::EventType))
                    .col(blob(Quarantine::Body))
                    .col(text(Quarantine::Reason))
                    .col(timestamp_with_time_zone(Quarantine::ReceivedAt))
                    .col(text_null(Quarantine::Traceparent))
                    .col(timestamp_with_time_zone_null(Quarantine::ReleasedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Quarantine::Table).to_owned())
            .await
    }
}
