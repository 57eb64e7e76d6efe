//! The heart of Verdict: what an iDenfy webhook says, how it changes a case, and the ports the
//! application needs from the outside world.
//!
//! Nothing here knows HTTP, gRPC, SQL or Redis: the adapters in the other crates translate to and
//! from these types, so every rule of the case lifecycle can be tested as a pure function.

pub mod case;
pub mod cursor;
pub mod error;
pub mod event;
pub mod feed_filter;
pub mod fingerprint;
pub mod key;
pub mod machine;
pub mod payload;
pub mod ports;
pub mod purge;
pub mod quarantine;
pub mod reconcile;
pub mod scan_ref;
pub mod signature;

pub use case::{Case, CaseEvent, Decision, Outcome, Person};
pub use cursor::Cursor;
pub use error::{Error, ErrorKind};
pub use event::EventType;
pub use feed_filter::FeedFilter;
pub use fingerprint::Fingerprint;
pub use machine::{Prior, Transition, apply};
pub use payload::{AnswerError, Payload, StatusAnswer, named_scan_ref};
pub use ports::{
    CasePage, CaseQuery, CaseStore, ChangeBus, ChangedCases, FeedChange, FeedQuery, NewDelivery,
    NewQuarantine, Notification, QuarantineItem, Recorded,
};
pub use purge::{ExpiredBatch, Purge, PurgeReason, PurgeStore};
pub use quarantine::QuarantineReason;
pub use reconcile::{Backlog, BacklogStore, Claim, DueQuery, NextLookup, ReconcileQueue};
pub use scan_ref::ScanRef;
pub use signature::{SignatureError, SignatureVerifier, UnverifiedWebhook, VerifiedWebhook, sign};
