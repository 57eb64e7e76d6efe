//! `case_persons`: the identity read from the document, kept apart from `cases` so it can be
//! purged without touching the case record.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum CasePersons {
    Table,
    ScanRef,
    FirstName,
    LastName,
    DateOfBirth,
    Nationality,
    Sex,
    DocumentType,
    DocumentNumber,
    DocumentExpiry,
    IssuingCountry,
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    ScanRef,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CasePersons::Table)
                    .col(text(CasePersons::ScanRef).primary_key())
                    .col(text_null(CasePersons::FirstName))
                    .col(text_null(CasePersons::LastName))
                    .col(text_null(CasePersons::DateOfBirth))
                    .col(text_null(CasePersons::Nationality))
                    .col(text_null(CasePersons::Sex))
                    .col(text_null(CasePersons::DocumentType))
                    .col(text_null(CasePersons::DocumentNumber))
                    .col(text_null(CasePersons::DocumentExpiry))
                    .col(text_null(CasePersons::IssuingCountry))
                    // Inline in CREATE TABLE: SQLite cannot add a foreign key afterwards.
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_case_persons_scan_ref")
                            .from(CasePersons::Table, CasePersons::ScanRef)
                            .to(Cases::Table, Cases::ScanRef)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CasePersons::Table).to_owned())
            .await
    }
}
