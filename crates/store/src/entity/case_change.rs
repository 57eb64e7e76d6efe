//! `case_changes`: the commit-ordered feed behind WatchCases.

use sea_orm::entity::prelude::*;

/// One applied change. `position` comes from `feed_counter`, never from a sequence.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i64,
    #[sea_orm(column_type = "Text")]
    pub scan_ref: String,
    pub revision: i64,
    pub is_final: bool,
    /// The case's client as of this change; NULL only in rows written by a release before
    /// the feed filters (read the snapshot then).
    #[sea_orm(column_type = "Text", nullable)]
    pub client_id: Option<String>,
    /// `Decision::as_str` as of this change; NULL like `client_id`.
    #[sea_orm(column_type = "Text", nullable)]
    pub decision: Option<String>,
    /// JSON of the domain `Case` as of this change, without the person.
    #[sea_orm(column_type = "Text")]
    pub snapshot: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub traceparent: Option<String>,
    pub committed_at: DateTimeUtc,
}

/// No relations are navigated through SeaORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
