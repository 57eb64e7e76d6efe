//! `case_changes` gains `client_id` and `decision`, copied from each change's snapshot, so a
//! filtered `WatchCases` catching up from an old cursor filters in SQL instead of decoding every
//! snapshot; and indexes that serve its `client_ids` and `scan_refs` filters in feed order.
//!
//! The columns are nullable: a replica of the previous release, still running during a rolling
//! upgrade, inserts changes without them, and readers treat NULL as "check the snapshot". Rows
//! written before this migration are filled from their JSON snapshot (`json_extract` on SQLite,
//! `->>` on PostgreSQL).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum CaseChanges {
    Table,
    Position,
    ScanRef,
    ClientId,
    Decision,
}

const CLIENT_ID_INDEX: &str = "idx_case_changes_client_id_position";
const SCAN_REF_INDEX: &str = "idx_case_changes_scan_ref_position";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite cannot add several in one ALTER TABLE.
        for column in [CaseChanges::ClientId, CaseChanges::Decision] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CaseChanges::Table)
                        .add_column(text_null(column))
                        .to_owned(),
                )
                .await?;
        }
        let backfill = match manager.get_database_backend() {
            DbBackend::Sqlite => {
                "UPDATE case_changes SET client_id = json_extract(snapshot, '$.client_id'), \
                 decision = json_extract(snapshot, '$.decision')"
            }
            DbBackend::Postgres => {
                "UPDATE case_changes SET client_id = snapshot::jsonb ->> 'client_id', \
                 decision = snapshot::jsonb ->> 'decision'"
            }
            other => {
                return Err(DbErr::Migration(format!(
                    "case_changes backfill: {other:?} is not supported"
                )));
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        for (name, key) in [
            (CLIENT_ID_INDEX, CaseChanges::ClientId),
            (SCAN_REF_INDEX, CaseChanges::ScanRef),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(CaseChanges::Table)
                        .col(key)
                        .col(CaseChanges::Position)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [CLIENT_ID_INDEX, SCAN_REF_INDEX] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(CaseChanges::Table)
                        .to_owned(),
                )
                .await?;
        }
        for column in [CaseChanges::Decision, CaseChanges::ClientId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(CaseChanges::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
