//! The JSON carried on the Redis channel: a notification plus the replica that sent it.

use serde::{Deserialize, Serialize};
use verdict_domain::{Cursor, Notification};

/// One notification on the wire. Small on purpose: watchers re-read the database, so only the
/// hint travels, never case data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Message {
    pub(crate) scan_ref: String,
    pub(crate) revision: u64,
    pub(crate) position: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) traceparent: Option<String>,
    /// The replica that published it: that replica already notified its own hub, so it skips
    /// its echo instead of waking its feed watchers twice. Absent from foreign publishers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) origin: Option<String>,
}

impl Message {
    /// The wire form of `notification` sent by the replica `origin`.
    pub(crate) fn encode(notification: &Notification, origin: &str) -> serde_json::Result<String> {
        serde_json::to_string(&Message {
            scan_ref: notification.scan_ref.clone(),
            revision: notification.revision,
            position: notification.position.0,
            traceparent: notification.traceparent.clone(),
            origin: Some(origin.to_owned()),
        })
    }

    /// Parses a payload received from the channel.
    pub(crate) fn decode(payload: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(payload)
    }

    /// True when this replica published it.
    pub(crate) fn is_from(&self, origin: &str) -> bool {
        self.origin.as_deref() == Some(origin)
    }

    /// The notification to hand to the hub.
    pub(crate) fn into_notification(self) -> Notification {
        Notification {
            scan_ref: self.scan_ref,
            revision: self.revision,
            position: Cursor(self.position),
            traceparent: self.traceparent,
            committed: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification() -> Notification {
        Notification {
            scan_ref: "scan-1".to_owned(),
            revision: 3,
            position: Cursor(42),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            committed: None,
        }
    }

    #[test]
    fn round_trips_a_notification_and_knows_its_origin() {
        let wire = Message::encode(&notification(), "replica-a").unwrap();
        let message = Message::decode(wire.as_bytes()).unwrap();
        assert!(message.is_from("replica-a"));
        assert!(!message.is_from("replica-b"));
        assert_eq!(message.into_notification(), notification());
    }

    #[test]
    fn accepts_the_minimal_form_without_trace_or_origin() {
        let message = Message::decode(br#"{"scan_ref":"s","revision":1,"position":2}"#).unwrap();
        assert!(!message.is_from("replica-a"));
        assert_eq!(message.traceparent, None);
        assert_eq!(message.into_notification().position, Cursor(2));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Message::decode(b"not json").is_err());
        assert!(Message::decode(br#"{"scan_ref":"s","revision":-1,"position":2}"#).is_err());
    }
}
