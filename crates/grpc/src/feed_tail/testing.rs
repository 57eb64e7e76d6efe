//! Feed changes for the tail's tests.

use chrono::{DateTime, Utc};
use verdict_domain::{Case, Cursor, Decision, FeedChange};

/// The change at `position`: a new pending case `scan-{position}` of `client_id`.
pub(super) fn change(position: u64, client_id: &str) -> FeedChange {
    FeedChange {
        position: Cursor(position),
        case: Case {
            scan_ref: format!("scan-{position}"),
            client_id: client_id.into(),
            external_ref: None,
            decision: Decision::Pending,
            is_final: false,
            overall_status: None,
            last_event_type: "IDENTIFICATION".into(),
            revision: 1,
            auto_document: None,
            auto_face: None,
            manual_document: None,
            manual_face: None,
            fraud_tags: vec![],
            mismatch_tags: vec![],
            suspicion_reasons: vec![],
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            finalized_at: None,
            purged_at: None,
            person: None,
        },
        traceparent: None,
    }
}
