//! `WatchCases`: the applied changes of every case that the stream's filters want, in commit
//! order, resumable by cursor, with bookmarks.
//!
//! A stream walks the process's shared [`FeedTail`](crate::feed_tail) while its position is in
//! the window, and reads the database itself while it is older (see the tail's docs). Either
//! way it keeps one position, `after`: every change up to it has been examined and the matching
//! ones sent. That position is what its heartbeats carry as a bookmark, so any cursor a stream
//! hands out — a change's or a heartbeat's — resumes without a gap and without a repeat.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tonic::Status;
use tracing::{Instrument as _, warn};
use verdict_domain::{CaseStore, Cursor, FeedChange, FeedFilter, FeedQuery};
use verdict_proto::verdict::v1::{self as pb, watch_cases_response::Event};

use super::{CaseApi, authorize, view};
use crate::{
    audit::Audit,
    auth::Caller,
    convert, deliver,
    feed_tail::{Follower, Progress, Walk},
    status,
    stream::{self, Pace, ResponseStream, Sink, Wake},
};

/// Changes sent per walk of the window or per database read: enough to catch up fast, few
/// enough to bound what a slow stream holds.
const BATCH: usize = 256;

/// `rpc.method` of this call, as audit events name it.
const METHOD: &str = "verdict.v1.CaseService/WatchCases";

/// A bookmark goes out once this many positions passed without the stream handing out a
/// cursor (a filter that matches little), so a consumer resumes near the head after a
/// reconnect instead of re-examining all of them...
const BOOKMARK_AFTER: u64 = 1024;

/// ...but at most this often, however fast the feed moves.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// Validates and authorises the request and admits the stream (all answered before the stream
/// starts), finds where to start, then hands the rest to the stream's producer.
#[tracing::instrument(
    name = "watch_cases",
    skip_all,
    fields(
        cursor = %req.cursor,
        from_now = req.from_now,
        final_only = req.final_only,
        client_ids = req.client_ids.len(),
        decisions = req.decisions.len(),
        scan_refs = req.scan_refs.len(),
    )
)]
pub(super) async fn watch_cases(
    api: &CaseApi,
    caller: Caller,
    req: pb::WatchCasesRequest,
) -> Result<ResponseStream<pb::WatchCasesResponse>, Status> {
    let view = view(req.view)?;
    authorize(&caller, view)?;
    // `from_now` ignores the cursor, as documented: it is not even parsed.
    let requested = match req.from_now {
        true => None,
        false => Some(Cursor::decode(&req.cursor).map_err(status::from_domain)?),
    };
    let filter = filter(
        req.client_ids,
        &req.decisions,
        req.scan_refs,
        req.final_only,
    )?;
    let ticket = api.streams.admit()?;

    let after = match requested {
        // Every change after the head read now reaches the stream: the tail reads whatever
        // commits after its own head, and the stream reads the database below the window.
        None => api.store.feed_head().await.map_err(status::from_domain)?,
        // Within the window, the cursor was handed out by this feed.
        Some(cursor) if cursor <= api.tail.head() => cursor,
        // Past it, the window may only be lagging: the database decides.
        Some(cursor) => {
            let head = api.store.feed_head().await.map_err(status::from_domain)?;
            cursor.within(head).map_err(status::from_domain)?
        }
    };
    let follower = api.tail.follow(after, filter.clone());
    let seen = follower.progress();
    let feed = FeedStream {
        store: Arc::clone(&api.store),
        follower,
        seen,
        query: FeedQuery {
            filter,
            with_person: view == pb::CaseView::Full,
            ..FeedQuery::default()
        },
        view,
        audit: Audit::of(&caller, METHOD, view),
        after,
        handed_out: after,
        last_bookmark: Instant::now(),
        pace: api.pace(),
        opened_at: Utc::now(),
    };
    // A from-now client has no cursor yet: the first message gives it one, so even a
    // disconnect before the first change resumes exactly where it started.
    let bookmark_first = req.from_now;
    Ok(stream::open("feed", ticket, move |sink| {
        feed.run(sink, bookmark_first)
    }))
}

/// The request's filters, validated (the domain bounds how many values each field takes).
fn filter(
    client_ids: Vec<String>,
    decisions: &[i32],
    scan_refs: Vec<String>,
    final_only: bool,
) -> Result<FeedFilter, Status> {
    let decisions = decisions
        .iter()
        .map(|&raw| {
            let decision = pb::Decision::try_from(raw)
                .map_err(|_| status::invalid_argument(format!("unknown decision {raw}")))?;
            convert::decision_from_proto(decision).ok_or_else(|| {
                status::invalid_argument("decisions must not contain DECISION_UNSPECIFIED")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    FeedFilter::new(client_ids, decisions, scan_refs, final_only).map_err(status::from_domain)
}

/// The state of one `WatchCases` stream.
#[derive(Debug)]
struct FeedStream {
    store: Arc<dyn CaseStore>,
    /// Its place among the tail's streams, and its wake-ups.
    follower: Follower,
    /// The tail's progress as last checked.
    seen: Progress,
    /// The database reads of this stream: its filter, view; range set per read.
    query: FeedQuery,
    view: pb::CaseView,
    /// Set for the FULL view: every change sent is audited.
    audit: Option<Audit>,
    /// Every change at or below this position has been examined, and sent if it matched.
    after: Cursor,
    /// The last cursor the client received (in a change or a heartbeat).
    handed_out: Cursor,
    last_bookmark: Instant,
    pace: Pace,
    /// Changes received before this are not live: no latency is recorded for them.
    opened_at: DateTime<Utc>,
}

impl FeedStream {
    /// Sends what is new, waits for the tail to move; never ends by itself.
    async fn run(
        mut self,
        sink: Sink<pb::WatchCasesResponse>,
        bookmark_first: bool,
    ) -> Result<(), Status> {
        match bookmark_first {
            true => self.bookmark(&sink).await,
            false => self.owe_bookmark(),
        }
        loop {
            let progress = self.follower.progress();
            self.check(progress)?;
            if self.step(&sink).await? {
                continue;
            }
            loop {
                match self.pace.wait(self.follower.changed()).await {
                    Wake::Changed => break,
                    Wake::Heartbeat => {
                        // The tail may have moved this stream past changes it did not want.
                        self.advance(self.follower.position());
                        self.bookmark(&sink).await;
                    }
                }
            }
        }
    }

    /// Ends the stream when the tail failed (UNAVAILABLE: resume) or the feed went back below
    /// this stream's position (OUT_OF_RANGE: list again).
    fn check(&mut self, progress: Progress) -> Result<(), Status> {
        if progress.failures != self.seen.failures {
            return Err(status::interrupted());
        }
        if progress.rewinds != self.seen.rewinds {
            self.after
                .within(progress.head)
                .map_err(status::from_domain)?;
        }
        self.seen = progress;
        Ok(())
    }

    /// Sends the next matching changes, from the window or the database; false when there is
    /// nothing new to examine.
    async fn step(&mut self, sink: &Sink<pb::WatchCasesResponse>) -> Result<bool, Status> {
        // The tail may have moved this stream past changes it did not want.
        self.advance(self.follower.position());
        let examined = match self.follower.walk(self.after, BATCH) {
            Walk::Ahead => return Ok(false),
            Walk::Walked { examined, .. } if examined == self.after => return Ok(false),
            Walk::Behind { floor } => self.send_from_database(sink, floor).await?,
            // Persons are never held in the shared window: read them with the changes.
            Walk::Walked { matches, examined } if self.query.with_person && !matches.is_empty() => {
                self.send_from_database(sink, examined).await?
            }
            Walk::Walked { matches, examined } => {
                for held in &matches {
                    self.send(sink, &held.change).await;
                }
                examined
            }
        };
        self.advance(examined);
        if self.after.0.saturating_sub(self.handed_out.0) >= BOOKMARK_AFTER {
            let allowed = self.last_bookmark + BOOKMARK_EVERY;
            match allowed <= Instant::now() {
                true => self.bookmark(sink).await,
                // Throttled: the next heartbeat, which carries the bookmark, comes no later,
                // and until then the tail need not wake the stream for it.
                false => {
                    self.pace.heartbeat_by(allowed);
                    self.follower.bookmark_at(None);
                }
            }
        }
        Ok(true)
    }

    /// Reads and sends the matching changes in `(after, until]`, at most a batch; returns the
    /// position examined.
    async fn send_from_database(
        &mut self,
        sink: &Sink<pb::WatchCasesResponse>,
        until: Cursor,
    ) -> Result<Cursor, Status> {
        self.query.after = self.after;
        self.query.until = Some(until);
        self.query.limit = BATCH as u32;
        let changes = self
            .store
            .changes_after(&self.query)
            .await
            .map_err(status::stream_interrupted)?;
        // A short answer means nothing else in the range matched.
        let examined = match changes.len() < BATCH {
            true => until,
            false => changes.last().map_or(until, |c| c.position),
        };
        for change in &changes {
            self.send(sink, change).await;
        }
        Ok(examined)
    }

    /// Converts and sends one change: only changes that are sent are ever converted.
    async fn send(&mut self, sink: &Sink<pb::WatchCasesResponse>, change: &FeedChange) {
        if change.position <= self.after {
            // The store broke its contract; sending it would repeat a change.
            warn!(
                position = change.position.0,
                after = self.after.0,
                "feed went backwards, change skipped"
            );
            return;
        }
        // The traceparent stored with the change: the webhook that made it.
        let span = deliver::span(
            deliver::Method::WatchCases,
            &change.case,
            change.traceparent.as_deref(),
        );
        if let Some(audit) = &self.audit {
            audit.served([change.case.scan_ref.as_str()]);
        }
        let message = pb::WatchCasesResponse {
            event: Some(Event::Change(pb::CaseChange {
                case: Some(convert::case_to_proto(&change.case, self.view)),
                cursor: change.position.encode(),
            })),
        };
        sink.send(message).instrument(span).await;
        deliver::record_latency(change.case.updated_at, self.opened_at);
        self.pace.sent();
        self.advance(change.position);
        self.handed_out = change.position;
        self.owe_bookmark();
    }

    /// A heartbeat carrying the position examined so far.
    async fn bookmark(&mut self, sink: &Sink<pb::WatchCasesResponse>) {
        sink.send(pb::WatchCasesResponse {
            event: Some(Event::Heartbeat(stream::bookmark(self.after))),
        })
        .await;
        self.pace.sent();
        self.handed_out = self.after;
        self.last_bookmark = Instant::now();
        self.owe_bookmark();
    }

    /// Tells the tail when this stream owes its client a bookmark: once the feed passed
    /// [`BOOKMARK_AFTER`] positions beyond the last cursor handed out.
    fn owe_bookmark(&self) {
        let at = self.handed_out.0.saturating_add(BOOKMARK_AFTER);
        self.follower.bookmark_at(Some(Cursor(at)));
    }

    fn advance(&mut self, examined: Cursor) {
        if examined > self.after {
            self.after = examined;
            self.follower.advance(examined);
        }
    }
}
