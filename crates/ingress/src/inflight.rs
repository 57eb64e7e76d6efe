//! The bound on webhooks being handled at once: past it, 503 + Retry-After at once, before the
//! body is read, rather than a queue that grows until the write deadline answers 503 anyway.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use tokio::sync::Semaphore;

use crate::Error;

/// The slots of the webhook route.
#[derive(Debug, Clone)]
pub(crate) struct Inflight {
    slots: Arc<Semaphore>,
    limit: usize,
}

impl Inflight {
    pub(crate) fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

/// The middleware: holds a slot until the answer is ready.
pub(crate) async fn bound(
    State(inflight): State<Inflight>,
    request: Request,
    next: Next,
) -> Response {
    match inflight.slots.try_acquire() {
        Ok(_slot) => next.run(request).await,
        Err(_) => {
            tracing::warn!(
                limit = inflight.limit,
                "webhook refused: too many in flight"
            );
            Error::Overloaded {
                limit: inflight.limit,
            }
            .into_response()
        }
    }
}
