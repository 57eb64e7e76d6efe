//! `cases`: the current state of every verification case, one row per scanRef.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Cases {
    Table,
    ScanRef,
    ClientId,
    ExternalRef,
    Decision,
    IsFinal,
    OverallStatus,
    LastEventType,
    Revision,
    AutoDocument,
    AutoFace,
    ManualDocument,
    ManualFace,
    FraudTags,
    MismatchTags,
    SuspicionReasons,
    CreatedAt,
    UpdatedAt,
    FinalizedAt,
    LastPosition,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Cases::Table)
                    .col(text(Cases::ScanRef).primary_key())
                    .col(text(Cases::ClientId))
                    .col(text_null(Cases::ExternalRef))
                    .col(text(Cases::Decision))
                    .col(boolean(Cases::IsFinal))
                    .col(text_null(Cases::OverallStatus))
                    .col(text(Cases::LastEventType))
                    .col(big_integer(Cases::Revision))
                    .col(text_null(Cases::AutoDocument))
                    .col(text_null(Cases::AutoFace))
                    .col(text_null(Cases::ManualDocument))
                    .col(text_null(Cases::ManualFace))
                    // JSON arrays of strings, as text: portable, and never queried inside.
                    .col(text(Cases::FraudTags))
                    .col(text(Cases::MismatchTags))
                    .col(text(Cases::SuspicionReasons))
                    .col(timestamp_with_time_zone(Cases::CreatedAt))
                    .col(timestamp_with_time_zone(Cases::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Cases::FinalizedAt))
                    // Feed position of the case's last applied change: orders ListCases.
                    .col(big_integer(Cases::LastPosition))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_cases_last_position")
                    .table(Cases::Table)
                    .col(Cases::LastPosition)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_cases_client_id_last_position")
                    .table(Cases::Table)
                    .col(Cases::ClientId)
                    .col(Cases::LastPosition)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Cases::Table).to_owned())
            .await
    }
}
