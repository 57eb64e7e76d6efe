//! `deliveries`: every recorded webhook delivery, the case history.

use std::fmt;

use sea_orm::entity::prelude::*;

/// One row of `deliveries`. Its `Debug` leaves the raw body out (personal data).
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text")]
    pub scan_ref: String,
    /// `EventType::as_str`.
    #[sea_orm(column_type = "Text")]
    pub event_type: String,
    /// The raw body exactly as received.
    #[sea_orm(column_type = "Blob")]
    pub body: Vec<u8>,
    /// Lowercase hex SHA-256 of `body`: rule 1a of the duplicate check compares this.
    #[sea_orm(column_type = "Text")]
    pub body_sha256: String,
    /// `Fingerprint::content_sha256` of `body`: rule 1b compares this. `None` only for a row an
    /// older version inserted during an upgrade.
    #[sea_orm(column_type = "Text", nullable)]
    pub content_sha256: Option<String>,
    /// `Outcome::as_str`.
    #[sea_orm(column_type = "Text")]
    pub outcome: String,
    /// Whether the delivery itself was final.
    pub is_final: bool,
    /// The case revision after this delivery.
    pub revision: i64,
    /// The delivery's `status.overall`.
    #[sea_orm(column_type = "Text", nullable)]
    pub overall_status: Option<String>,
    pub received_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub traceparent: Option<String>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("scan_ref", &self.scan_ref)
            .field("event_type", &self.event_type)
            .field("outcome", &self.outcome)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// No relations are navigated through SeaORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
