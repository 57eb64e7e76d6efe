//! The `Idenfy-Event-Type` header, an open string on the wire and a closed enum here.

use std::fmt;

/// The kinds of KYC webhook iDenfy sends. All share one body; they differ in what they mean for
/// the case lifecycle (see [`crate::machine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The automatic check finished; a manual review may still follow (`final` tells).
    AutoFinished,
    /// A human reviewer decided: always final.
    ManualFinished,
    /// The reviewer asked the user for more information: the case reopens for a new round.
    Resubmitted,
    /// The user or the operator cancelled the verification: always final.
    Cancelled,
    /// The verification token expired unused: always final.
    Expired,
    /// Deliveries from before event types existed (no header, or `IDENTIFICATION`).
    Legacy,
}

/// An `Idenfy-Event-Type` value Verdict does not know. Such deliveries are quarantined rather
/// than rejected, so a new vendor event never loses data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl EventType {
    /// Parses the header value; a missing header means a legacy delivery.
    pub fn from_header(value: Option<&str>) -> Result<Self, UnknownEventType> {
        let Some(raw) = value else {
            return Ok(Self::Legacy);
        };
        match raw.trim() {
            "" | "IDENTIFICATION" => Ok(Self::Legacy),
            "IDENTIFICATION_AUTO_FINISHED" => Ok(Self::AutoFinished),
            "IDENTIFICATION_MANUAL_FINISHED" => Ok(Self::ManualFinished),
            "IDENTIFICATION_RESUBMITTED" => Ok(Self::Resubmitted),
            // iDenfy's documentation spells it both ways.
            "IDENTIFICATION_CANCELLED" | "IDENTIFICATION_CANCELED" => Ok(Self::Cancelled),
            "IDENTIFICATION_EXPIRED" => Ok(Self::Expired),
            other => Err(UnknownEventType(other.to_owned())),
        }
    }

    /// The canonical header spelling, as stored and shown in `last_event_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoFinished => "IDENTIFICATION_AUTO_FINISHED",
            Self::ManualFinished => "IDENTIFICATION_MANUAL_FINISHED",
            Self::Resubmitted => "IDENTIFICATION_RESUBMITTED",
            Self::Cancelled => "IDENTIFICATION_CANCELLED",
            Self::Expired => "IDENTIFICATION_EXPIRED",
            Self::Legacy => "IDENTIFICATION",
        }
    }

    /// Every event type, for exhaustive tests and property generators.
    pub const ALL: [EventType; 6] = [
        Self::AutoFinished,
        Self::ManualFinished,
        Self::Resubmitted,
        Self::Cancelled,
        Self::Expired,
        Self::Legacy,
    ];
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
