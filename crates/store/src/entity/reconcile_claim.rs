//! `reconcile_claims`: when each open case may next be looked up at iDenfy.

use sea_orm::entity::prelude::*;

/// One claim; see `reconcile` for how rows are claimed and settled.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reconcile_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub scan_ref: String,
    /// The case's revision when it was last claimed.
    pub revision: i64,
    /// Lookups since that revision that told nothing new.
    pub attempts: i32,
    /// Not claimable before this.
    pub next_at: DateTimeUtc,
    pub claimed_at: DateTimeUtc,
    /// How the last lookup ended.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_result: Option<String>,
}

/// No relations are navigated through SeaORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
