//! The change bus of a single replica (no Redis configured).

use std::sync::Arc;

use async_trait::async_trait;
use verdict_domain::{ChangeBus, Notification};

use crate::{Hub, trace};

/// [`ChangeBus`] for a single process: publishing is [`Hub::notify`], so it cannot fail.
#[derive(Debug, Clone)]
pub struct LocalBus {
    hub: Arc<Hub>,
}

impl LocalBus {
    /// A bus delivering to the watchers of `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

#[async_trait]
impl ChangeBus for LocalBus {
    /// In a PRODUCER span `send hub`; the watchers get the span's context.
    async fn publish(&self, notification: Notification) -> Result<(), verdict_domain::Error> {
        let span = trace::producer(trace::HUB_SYSTEM, trace::HUB_DESTINATION, &notification);
        self.hub.notify(&trace::carried_by(&span, &notification));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use verdict_domain::Cursor;

    use super::*;

    #[tokio::test]
    async fn publish_wakes_local_watchers() {
        let hub = Hub::new();
        let bus = LocalBus::new(Arc::clone(&hub));
        let mut watch = hub.watch_case("scan-1");
        let mut feed = hub.watch_feed();
        let notification = Notification {
            scan_ref: "scan-1".to_owned(),
            revision: 2,
            position: Cursor(7),
            traceparent: None,
            committed: None,
        };
        bus.publish(notification)
            .await
            .expect("local publish never fails");

        let wait = Duration::from_secs(5);
        let signal = tokio::time::timeout(wait, watch.changed())
            .await
            .expect("case wake");
        assert_eq!(signal.revision, 2);
        assert_eq!(
            tokio::time::timeout(wait, feed.changed())
                .await
                .expect("feed wake"),
            7
        );
    }
}
