//! `WatchCases`: every applied change of every case, in commit order, resumable by cursor.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::Status;
use tracing::{Instrument as _, warn};
use verdict_bus::FeedWatch;
use verdict_domain::{CaseStore, Cursor, FeedFilter, FeedQuery};
use verdict_proto::verdict::v1::{self as pb, watch_cases_response::Event};

use super::{CaseApi, view};
use crate::{
    convert, deliver, status,
    stream::{self, Pace, ResponseStream, Sink, Stop, Wake},
};

/// Changes read per query: large enough to catch up fast, small enough to bound memory.
const BATCH: u32 = 256;

/// Validates the request, subscribes to the feed, then hands the rest to a producer task.
#[tracing::instrument(
    name = "watch_cases",
    skip_all,
    fields(cursor = %req.cursor, final_only = req.final_only)
)]
pub(super) fn watch_cases(
    api: &CaseApi,
    req: pb::WatchCasesRequest,
) -> Result<ResponseStream<pb::WatchCasesResponse>, Status> {
    let after = Cursor::decode(&req.cursor).map_err(status::from_domain)?;
    let view = view(req.view)?;
    // Subscribe before the first read, like WatchCase.
    let feed = api.hub.watch_feed();
    let reader = FeedReader {
        store: Arc::clone(&api.store),
        after,
        final_only: req.final_only,
        view,
        pace: api.pace(),
        opened_at: Utc::now(),
    };
    Ok(stream::spawn("feed", api.streams.clone(), move |sink| {
        reader.run(feed, sink)
    }))
}

/// The state of one `WatchCases` stream.
#[derive(Debug)]
struct FeedReader {
    store: Arc<dyn CaseStore>,
    /// Everything at or below this position has been sent.
    after: Cursor,
    final_only: bool,
    view: pb::CaseView,
    pace: Pace,
    /// Changes received before this are not live: no latency is recorded for them.
    opened_at: DateTime<Utc>,
}

impl FeedReader {
    /// Reads batches until one is short, then waits for the feed to move; never ends by itself.
    async fn run(
        mut self,
        mut feed: FeedWatch,
        sink: Sink<pb::WatchCasesResponse>,
    ) -> Result<(), Stop> {
        loop {
            let batch = self
                .store
                .changes_after(&FeedQuery {
                    filter: FeedFilter::new(vec![], vec![], vec![], self.final_only)
                        .map_err(status::from_domain)?,
                    with_person: self.view == pb::CaseView::Full,
                    ..FeedQuery::after(self.after, BATCH)
                })
                .await
                .map_err(status::stream_interrupted)?;
            self.pace.read();
            let caught_up = batch.len() < BATCH as usize;
            for change in batch {
                if change.position <= self.after {
                    // The store broke its contract; sending it would repeat a change.
                    warn!(
                        position = change.position.0,
                        after = self.after.0,
                        "feed went backwards, change skipped"
                    );
                    continue;
                }
                self.after = change.position;
                // The traceparent stored with the change: the webhook that made it.
                let span = deliver::span("WatchCases", &change.case, change.traceparent.as_deref());
                let changed_at = change.case.updated_at;
                let change = pb::CaseChange {
                    case: Some(convert::case_to_proto(change.case, self.view)),
                    cursor: change.position.encode(),
                };
                sink.send(pb::WatchCasesResponse {
                    event: Some(Event::Change(change)),
                })
                .instrument(span)
                .await?;
                deliver::record_latency(changed_at, self.opened_at);
                self.pace.sent();
            }
            if !caught_up {
                continue;
            }
            loop {
                match self.pace.wait(feed.changed()).await {
                    Wake::Changed | Wake::Poll => break,
                    Wake::Heartbeat => {
                        sink.send(pb::WatchCasesResponse {
                            event: Some(Event::Heartbeat(stream::heartbeat())),
                        })
                        .await?;
                        self.pace.sent();
                    }
                }
            }
        }
    }
}
