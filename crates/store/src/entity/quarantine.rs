//! `quarantine`: signed deliveries that could not be used, kept for reprocessing.

use std::fmt;

use sea_orm::entity::prelude::*;

/// One quarantined delivery. Its `Debug` leaves the raw body out (personal data).
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quarantine")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub event_type: Option<String>,
    /// The case the body names (`named_scan_ref`), whose purge erases the body.
    #[sea_orm(column_type = "Text", nullable)]
    pub scan_ref: Option<String>,
    /// The raw body; empty once a purge erased it.
    #[sea_orm(column_type = "Blob")]
    pub body: Vec<u8>,
    /// `QuarantineReason`'s wording.
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// `QuarantineReason::kind`.
    #[sea_orm(column_type = "Text", nullable)]
    pub reason_kind: Option<String>,
    /// The body's `Fingerprint`, so a replay or a resend of it is a duplicate.
    #[sea_orm(column_type = "Text", nullable)]
    pub body_sha256: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub content_sha256: Option<String>,
    pub received_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub traceparent: Option<String>,
    /// Set once the delivery no longer waits — reprocessed, or its body erased by a purge;
    /// such rows are no longer offered.
    pub released_at: Option<DateTimeUtc>,
    /// When a purge erased the body.
    pub purged_at: Option<DateTimeUtc>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("scan_ref", &self.scan_ref)
            .field("reason", &self.reason)
            .field("reason_kind", &self.reason_kind)
            .field("released_at", &self.released_at)
            .field("purged_at", &self.purged_at)
            .finish_non_exhaustive()
    }
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
