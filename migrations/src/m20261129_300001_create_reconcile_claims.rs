//! `reconcile_claims`: when each open case may next be looked up at iDenfy, so that of all
//! replicas only one asks about a case, and none asks more often than the interval allows
//! (DESIGN.md section 13).
//!
//! A row exists once a case was claimed for a lookup. A replica claims a case by moving its
//! `next_at` into the future in one conditional upsert (`… ON CONFLICT (scan_ref) DO UPDATE …
//! WHERE reconcile_claims.next_at <= now`): of replicas claiming at once, exactly one changes
//! the row. No foreign key to `cases`: the claim is bookkeeping of the reconciler, and a row
//! whose case is gone is simply never claimed again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ReconcileClaims {
    Table,
    ScanRef,
    /// The case's revision when it was claimed: a change since then resets `attempts`.
    Revision,
    /// Lookups since that revision that told nothing new: the back-off exponent.
    Attempts,
    /// Not claimable before this.
    NextAt,
    ClaimedAt,
    /// How the last lookup ended (`verdict_reconcile_total`'s `result`), for operators.
    LastResult,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ReconcileClaims::Table)
                    .col(text(ReconcileClaims::ScanRef).primary_key())
                    .col(big_integer(ReconcileClaims::Revision))
                    .col(integer(ReconcileClaims::Attempts))
                    .col(timestamp_with_time_zone(ReconcileClaims::NextAt))
                    .col(timestamp_with_time_zone(ReconcileClaims::ClaimedAt))
                    .col(text_null(ReconcileClaims::LastResult))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReconcileClaims::Table).to_owned())
            .await
    }
}
