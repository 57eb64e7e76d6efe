//! The plumbing shared by `WatchCase` and `WatchCases`: the limits every stream is admitted
//! under, a producer handing items one at a time to the response stream that runs it, the response stream that ends it
//! on shutdown or at its maximum age, and the heartbeat pacing.
//!
//! A slow reader costs O(1): the producer waits with one item in hand while the hub's `watch`
//! conflates changes meanwhile, and the next database read picks up the latest state.
//!
//! Streams never poll the database on their own timers: a lost notification is caught once per
//! process by the batched `Resync`, which wakes the hub's watchers like any notification.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll, Waker},
    time::Duration,
};

use chrono::Utc;
use futures::{FutureExt as _, Stream};
use rand::Rng as _;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep, sleep_until},
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;
use tracing::{Instrument, Span, error};
use verdict_domain::{Cursor, ErrorKind};
use verdict_proto::verdict::v1 as pb;
use verdict_telemetry::metrics::metrics;

use crate::{convert, status};

/// The boxed stream type the tonic trait wants for both streaming methods.
pub(crate) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How many streams may be open at once on this server, how long each may live, and the token
/// that ends them all at shutdown.
#[derive(Debug, Clone)]
pub(crate) struct StreamLimits {
    permits: Arc<Semaphore>,
    max_streams: usize,
    max_age: Duration,
    shutdown: CancellationToken,
}

impl StreamLimits {
    /// At most `max_streams` streams, each ending UNAVAILABLE after about `max_age`, all ending
    /// when `shutdown` is cancelled.
    pub(crate) fn new(max_streams: usize, max_age: Duration, shutdown: CancellationToken) -> Self {
        let max_streams = max_streams.min(Semaphore::MAX_PERMITS);
        Self {
            permits: Arc::new(Semaphore::new(max_streams)),
            max_streams,
            max_age,
            shutdown,
        }
    }

    /// The token that ends every stream at shutdown, for work that lives as long as they do.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Admits one more stream, or answers RESOURCE_EXHAUSTED before the stream starts. The
    /// slot is freed when the stream's producer ends, however it ends.
    pub(crate) fn admit(&self) -> Result<Ticket, Status> {
        let permit = Arc::clone(&self.permits)
            .try_acquire_owned()
            // Refusals show in `rpc.server.call.duration{rpc.response.status_code}`.
            .map_err(|_| {
                status::status(
                    ErrorKind::ResourceExhausted,
                    format!(
                        "this server already has {} open watch streams, its limit: retry later",
                        self.max_streams
                    ),
                )
            })?;
        Ok(Ticket {
            permit,
            deadline: deadline(self.max_age),
            shutdown: self.shutdown.clone(),
        })
    }
}

/// The end of a stream admitted now: `max_age` less up to a tenth, so streams opened together
/// (after a deploy) do not all reconnect together.
fn deadline(max_age: Duration) -> Instant {
    let jitter = rand::rng().random_range(0..=max_age.as_millis() / 10);
    let age = max_age.saturating_sub(Duration::from_millis(
        u64::try_from(jitter).unwrap_or(u64::MAX),
    ));
    let now = Instant::now();
    // A year stands for "never" where the configured age overflows the clock.
    now.checked_add(age)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// One admitted stream: its slot, its deadline and the shutdown token.
#[derive(Debug)]
pub(crate) struct Ticket {
    permit: OwnedSemaphorePermit,
    deadline: Instant,
    shutdown: CancellationToken,
}

/// Where a producer writes its items: a one-item cell that the response stream empties.
#[derive(Debug)]
pub(crate) struct Sink<T> {
    cell: Arc<Mutex<Option<T>>>,
}

impl<T> Sink<T> {
    /// Hands `item` to the stream, waiting while the previous one has not been taken.
    ///
    /// The wait registers no waker, and needs none: the producer runs only inside
    /// [`Producing::poll_next`], which takes the item out of the cell every time after polling
    /// the producer, so a producer waiting here is polled again as soon as the stream is.
    pub(crate) async fn send(&self, item: T) {
        let mut item = Some(item);
        std::future::poll_fn(|_| {
            let mut cell = lock(&self.cell);
            if cell.is_some() {
                return Poll::Pending;
            }
            *cell = item.take();
            Poll::Ready(())
        })
        .await;
    }
}

fn lock<T>(cell: &Mutex<Option<T>>) -> MutexGuard<'_, Option<T>> {
    // An `Option` swapped in and out stays consistent even if a holder panicked.
    cell.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Returns the response stream `producer` feeds, running the producer inside it, in the current
/// span: no task and no channel of its own, so an idle stream costs the producer's state and
/// one item's room. The producer runs whenever the transport polls the stream for more, which
/// it stops doing while the client's flow-control window is full: that is the slow-reader
/// back-pressure, and the producer then re-reads the latest state instead of queueing history.
///
/// The stream ends OK when the producer returns `Ok`, with its status when it fails (INTERNAL if
/// it panics), with UNAVAILABLE "server shutting down" as soon as the ticket's shutdown token is
/// cancelled, and with UNAVAILABLE at the ticket's deadline (the client resumes, perhaps on
/// another replica). Dropping the stream (the client went away) drops the producer. Until the
/// stream ends, it holds the ticket's slot and counts in `verdict.watch.streams{kind}`.
pub(crate) fn open<T, F, Fut>(kind: &'static str, ticket: Ticket, producer: F) -> ResponseStream<T>
where
    T: Send + Unpin + 'static,
    F: FnOnce(Sink<T>) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let cell = Arc::new(Mutex::new(None));
    let work = AssertUnwindSafe(
        producer(Sink {
            cell: Arc::clone(&cell),
        })
        .instrument(Span::current()),
    )
    .catch_unwind();
    let Ticket {
        permit,
        deadline,
        shutdown,
    } = ticket;
    Box::pin(Producing {
        work: Some(Box::pin(work)),
        cell,
        ended: None,
        done: false,
        shutdown_signal: Box::pin(shutdown.clone().cancelled_owned()),
        shutdown,
        expiry: Box::pin(sleep_until(deadline)),
        armed: None,
        _slot: permit,
        _open: OpenStream::count(kind),
    })
}

/// A running producer: how it ended, or the payload of its panic.
type Producer = Pin<Box<dyn Future<Output = std::thread::Result<Result<(), Status>>> + Send>>;

/// The response stream of [`open`].
struct Producing<T> {
    /// `None` once the producer returned.
    work: Option<Producer>,
    cell: Arc<Mutex<Option<T>>>,
    /// How the producer ended, sent once its last item is out.
    ended: Option<Result<(), Status>>,
    /// Nothing more to send.
    done: bool,
    shutdown: CancellationToken,
    /// Wakes the stream when `shutdown` is cancelled, once polled.
    shutdown_signal: Pin<Box<WaitForCancellationFutureOwned>>,
    /// One timer for the stream's life, not one per item.
    expiry: Pin<Box<Sleep>>,
    /// The waker `shutdown_signal` and `expiry` were last polled with. While the stream is
    /// polled with the same one (its task's: always, under hyper), they need not be polled
    /// again: they will wake it, and whether they are due is an atomic load and a clock read.
    /// Polling them takes the shutdown token's lock and re-registers with the timer; in a
    /// fan-out to 10 000 streams that was about 4 % of the service's CPU samples (perf).
    armed: Option<Waker>,
    _slot: OwnedSemaphorePermit,
    _open: OpenStream,
}

impl<T: Unpin> Stream for Producing<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let (shut, expired) = if this
            .armed
            .as_ref()
            .is_some_and(|armed| armed.will_wake(cx.waker()))
        {
            (
                this.shutdown.is_cancelled(),
                Instant::now() >= this.expiry.deadline(),
            )
        } else {
            this.armed = Some(cx.waker().clone());
            (
                this.shutdown_signal.as_mut().poll(cx).is_ready(),
                this.expiry.as_mut().poll(cx).is_ready(),
            )
        };
        if shut {
            return this.end(Err(status::shutting_down()));
        }
        if expired {
            return this.end(Err(status::status(
                ErrorKind::Unavailable,
                "stream reached its maximum age: resume from the last item received",
            )));
        }
        if let Some(item) = lock(&this.cell).take() {
            return Poll::Ready(Some(Ok(item)));
        }
        if let Some(work) = &mut this.work
            && let Poll::Ready(outcome) = work.as_mut().poll(cx)
        {
            this.work = None;
            this.ended = Some(outcome.unwrap_or_else(|panic| {
                error!(panic = panic_message(&*panic), "stream producer panicked");
                Err(status::status(ErrorKind::Internal, "internal error"))
            }));
        }
        // What the producer just sent (it may be waiting for this to be taken).
        if let Some(item) = lock(&this.cell).take() {
            return Poll::Ready(Some(Ok(item)));
        }
        match this.ended.take() {
            Some(ended) => this.end(ended),
            None => Poll::Pending,
        }
    }
}

impl<T> Producing<T> {
    /// The last item: `Err(status)`, or the end of the stream for `Ok`.
    fn end(&mut self, ended: Result<(), Status>) -> Poll<Option<Result<T, Status>>> {
        self.done = true;
        self.work = None;
        Poll::Ready(ended.err().map(Err))
    }
}

/// The text of a panic payload, for the log.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload")
}

/// One open stream in `verdict.watch.streams`, until dropped (the producer ended or was
/// aborted).
#[derive(Debug)]
struct OpenStream(&'static str);

impl OpenStream {
    fn count(kind: &'static str) -> Self {
        metrics().watch_streams(1, kind);
        Self(kind)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics().watch_streams(-1, self.0);
    }
}

/// What woke a waiting producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The hub says something may have changed: re-read.
    Changed,
    /// Nothing was sent for a heartbeat interval: send a heartbeat.
    Heartbeat,
}

/// The one timer of a stream: a heartbeat after idleness.
#[derive(Debug)]
pub(crate) struct Pace {
    heartbeat_every: Duration,
    next_heartbeat: Instant,
}

impl Pace {
    /// The timer starts now.
    pub(crate) fn new(heartbeat_every: Duration) -> Self {
        Self {
            heartbeat_every,
            next_heartbeat: Instant::now() + heartbeat_every,
        }
    }

    /// Something was sent: the stream is not idle.
    pub(crate) fn sent(&mut self) {
        self.next_heartbeat = Instant::now() + self.heartbeat_every;
    }

    /// Something is worth sending by `deadline` even if the stream is not idle: the next
    /// heartbeat comes no later.
    pub(crate) fn heartbeat_by(&mut self, deadline: Instant) {
        self.next_heartbeat = self.next_heartbeat.min(deadline);
    }

    /// Waits for `changed` or the heartbeat deadline, whichever comes first. `changed` must be
    /// cancel-safe (the hub's watches are).
    pub(crate) async fn wait(&self, changed: impl Future) -> Wake {
        tokio::select! {
            biased;
            _ = changed => Wake::Changed,
            () = sleep_until(self.next_heartbeat) => Wake::Heartbeat,
        }
    }
}

/// A heartbeat stamped now.
pub(crate) fn heartbeat() -> pb::Heartbeat {
    pb::Heartbeat {
        at: Some(convert::timestamp(Utc::now())),
        cursor: String::new(),
    }
}

/// A heartbeat stamped now that carries a `WatchCases` bookmark: the position examined so far.
pub(crate) fn bookmark(examined: Cursor) -> pb::Heartbeat {
    pb::Heartbeat {
        cursor: examined.encode(),
        ..heartbeat()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::Wake;

    use futures::StreamExt as _;
    use tokio::sync::Notify;
    use tonic::Code;

    use super::*;

    /// A stream whose producer never sends nor ends, admitted under `limits`.
    fn idle(limits: &StreamLimits) -> ResponseStream<u8> {
        let ticket = limits.admit().expect("admitted");
        open("case", ticket, |_sink| std::future::pending())
    }

    /// A task's waker that says when it is woken.
    #[derive(Default)]
    struct Woken(Notify);

    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.notify_one();
        }
    }

    /// Polls `stream` once as a task would, expecting nothing yet; returns the task's waker.
    fn poll_pending(stream: &mut ResponseStream<u8>) -> Arc<Woken> {
        let woken = Arc::new(Woken::default());
        let waker = Waker::from(Arc::clone(&woken));
        let polled = stream.as_mut().poll_next(&mut Context::from_waker(&waker));
        assert!(polled.is_pending());
        woken
    }

    /// Waits until the task is woken, then polls the stream for its status and end.
    async fn woken_to_end(woken: &Woken, mut stream: ResponseStream<u8>) -> Status {
        tokio::time::timeout(Duration::from_secs(10), woken.0.notified())
            .await
            .expect("the stream's task is woken");
        let ended = futures::poll!(stream.next());
        let Poll::Ready(Some(Err(ended))) = ended else {
            panic!("expected the stream's status, got {ended:?}");
        };
        assert!(stream.next().await.is_none(), "nothing after the status");
        ended
    }

    #[tokio::test]
    async fn an_idle_stream_is_woken_and_ends_at_its_maximum_age() {
        let limits = StreamLimits::new(8, Duration::from_millis(50), CancellationToken::new());
        let mut stream = idle(&limits);
        let woken = poll_pending(&mut stream);
        let ended = woken_to_end(&woken, stream).await;
        assert_eq!(ended.code(), Code::Unavailable);
        assert!(ended.message().contains("maximum age"), "{ended:?}");
    }

    #[tokio::test]
    async fn an_idle_stream_is_woken_and_ends_at_shutdown() {
        let shutdown = CancellationToken::new();
        let limits = StreamLimits::new(8, Duration::from_secs(3600), shutdown.clone());
        let mut stream = idle(&limits);
        let woken = poll_pending(&mut stream);
        shutdown.cancel();
        let ended = woken_to_end(&woken, stream).await;
        assert_eq!(ended.code(), Code::Unavailable);
        assert_eq!(ended.message(), "server shutting down");
    }
}
