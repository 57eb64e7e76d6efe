//! `quarantine.body_sha256`, `quarantine.content_sha256` and `quarantine.reason_kind`.
//!
//! A delivery set aside in the quarantine was still delivered: its bytes must not become a new
//! event when replayed under another header (rule 1a), nor a resend of it a new delivery of the
//! same event type (rule 1b). So the quarantine keeps the same two hashes as `deliveries`, and
//! the record path looks them up by either. `reason_kind` is the fixed identifier of the reason
//! (`unknown_event_type`, `header_body_mismatch`, ...), next to its wording in `reason`.
//!
//! Existing rows are backfilled: hashes from their bodies with the frozen copy of the hashing
//! ([`crate::fingerprint_2026_11`]), the kind from the wording the first release wrote. The
//! columns stay nullable for rows a previous version may still insert during an upgrade.

use sea_orm_migration::{prelude::*, schema::*};

use crate::fingerprint_2026_11;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Quarantine {
    Table,
    Id,
    Body,
    Reason,
    BodySha256,
    ContentSha256,
    ReasonKind,
}

const BODY_INDEX: &str = "idx_quarantine_body_sha256";
const CONTENT_INDEX: &str = "idx_quarantine_content_sha256";

/// How the first release worded each reason it quarantined for.
const FIRST_RELEASE_REASONS: [(&str, &str); 3] = [
    ("unknown_event_type", "unknown event type %"),
    ("unparseable", "body is not a JSON object%"),
    ("missing_scan_ref", "body has no scanRef%"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            Quarantine::BodySha256,
            Quarantine::ContentSha256,
            Quarantine::ReasonKind,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Quarantine::Table)
                        .add_column(text_null(column))
                        .to_owned(),
                )
                .await?;
        }
        fingerprint_2026_11::backfill(
            manager,
            [Quarantine::Table, Quarantine::Id, Quarantine::Body],
            Some(Quarantine::BodySha256),
            Quarantine::ContentSha256,
        )
        .await?;
        let db = manager.get_connection();
        for (kind, wording) in FIRST_RELEASE_REASONS {
            db.execute(
                &Query::update()
                    .table(Quarantine::Table)
                    .value(Quarantine::ReasonKind, kind)
                    .and_where(Expr::col(Quarantine::Reason).like(wording))
                    .and_where(Expr::col(Quarantine::ReasonKind).is_null())
                    .to_owned(),
            )
            .await?;
        }
        for (name, column) in [
            (BODY_INDEX, Quarantine::BodySha256),
            (CONTENT_INDEX, Quarantine::ContentSha256),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Quarantine::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [CONTENT_INDEX, BODY_INDEX] {
            manager
                .drop_index(Index::drop().name(name).table(Quarantine::Table).to_owned())
                .await?;
        }
        for column in [
            Quarantine::ReasonKind,
            Quarantine::ContentSha256,
            Quarantine::BodySha256,
        ] {
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
