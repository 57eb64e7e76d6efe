//! `deliveries.content_sha256`: the hash that recognises a resend (DESIGN.md section 3, rule
//! 1b), and indexes for both duplicate lookups.
//!
//! Rule 1a (the same raw body under any event type) looks deliveries up by `(scan_ref,
//! body_sha256)`; rule 1b (the same event type and the same body apart from re-signed file
//! links) by `(scan_ref, event_type, content_sha256)`. The first release's index on `(scan_ref,
//! event_type, body_sha256)` served neither exactly and is replaced; `scan_ref` still leads both
//! new ones, so the history query keeps its index.
//!
//! Existing rows are backfilled here, from their stored bodies, with a frozen copy of the
//! hashing ([`crate::fingerprint_2026_11`]): every row then has its content hash before any
//! later purge empties bodies, so rule 1b holds for deliveries recorded before the upgrade too.
//! The column stays nullable so that a replica still running the previous version during a
//! rolling upgrade can keep inserting; such a row only misses rule 1b.

use sea_orm_migration::{prelude::*, schema::*};

use crate::fingerprint_2026_11;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Deliveries {
    Table,
    Id,
    ScanRef,
    EventType,
    Body,
    BodySha256,
    ContentSha256,
}

const OLD_INDEX: &str = "idx_deliveries_scan_ref_event_type_body_sha256";
const BODY_INDEX: &str = "idx_deliveries_scan_ref_body_sha256";
const CONTENT_INDEX: &str = "idx_deliveries_scan_ref_event_type_content_sha256";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .add_column(text_null(Deliveries::ContentSha256))
                    .to_owned(),
            )
            .await?;
        let rows = [Deliveries::Table, Deliveries::Id, Deliveries::Body];
        fingerprint_2026_11::backfill(manager, rows, None, Deliveries::ContentSha256).await?;
        manager
            .drop_index(
                Index::drop()
                    .name(OLD_INDEX)
                    .table(Deliveries::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(BODY_INDEX)
                    .table(Deliveries::Table)
                    .col(Deliveries::ScanRef)
                    .col(Deliveries::BodySha256)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CONTENT_INDEX)
                    .table(Deliveries::Table)
                    .col(Deliveries::ScanRef)
                    .col(Deliveries::EventType)
                    .col(Deliveries::ContentSha256)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [CONTENT_INDEX, BODY_INDEX] {
            manager
                .drop_index(Index::drop().name(name).table(Deliveries::Table).to_owned())
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(Deliveries::Table)
                    .col(Deliveries::ScanRef)
                    .col(Deliveries::EventType)
                    .col(Deliveries::BodySha256)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(Deliveries::ContentSha256)
                    .to_owned(),
            )
            .await
    }
}
