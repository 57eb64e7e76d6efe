//! `cases`: the current state of one verification case.

use sea_orm::entity::prelude::*;

/// One row of `cases`. A row with revision 0 exists only inside the transaction that creates
/// the case (see `record`), never after a commit.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub scan_ref: String,
    #[sea_orm(column_type = "Text")]
    pub client_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub external_ref: Option<String>,
    /// `Decision::as_str`.
    #[sea_orm(column_type = "Text")]
    pub decision: String,
    pub is_final: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub overall_status: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub last_event_type: String,
    pub revision: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub auto_document: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub auto_face: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub manual_document: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub manual_face: Option<String>,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub fraud_tags: String,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub mismatch_tags: String,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub suspicion_reasons: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finalized_at: Option<DateTimeUtc>,
    /// Feed position of the last applied change.
    pub last_position: i64,
    /// When the delivery that last decided or reopened the case arrived (`Prior::decisive_at`);
    /// bookkeeping of the state machine, not part of the case callers see.
    pub decisive_at: Option<DateTimeUtc>,
    /// When a purge erased the case's personal data (`Case::purged_at`).
    pub purged_at: Option<DateTimeUtc>,
}

/// No relations are navigated through SeaORM; the store joins by hand where it needs to.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
