//! `WatchCase`: one case's snapshot, then every newer revision, until final or shutdown.

use chrono::{DateTime, Utc};
use tonic::Status;
use tracing::{Instrument as _, debug};
use verdict_bus::CaseWatch;
use verdict_domain::Case;
use verdict_proto::verdict::v1::{self as pb, watch_case_response::Event};

use super::{CaseApi, authorize, check_key, view};
use crate::{
    audit::Audit,
    auth::Caller,
    convert, deliver,
    shared_read::CaseReader,
    status,
    stream::{self, Pace, ResponseStream, Sink, Wake},
};

/// `rpc.method` of this call, as audit events name it.
const METHOD: &str = "verdict.v1.CaseService/WatchCase";

/// Validates and authorises the request and admits the stream (all answered before the stream
/// starts), subscribes to the hub, then hands the rest to the stream's producer.
#[tracing::instrument(
    name = "watch_case",
    skip_all,
    fields(scan_ref = %req.scan_ref, from_revision = req.from_revision, until_final = req.until_final)
)]
pub(super) fn watch_case(
    api: &CaseApi,
    caller: Caller,
    req: pb::WatchCaseRequest,
) -> Result<ResponseStream<pb::WatchCaseResponse>, Status> {
    let view = view(req.view)?;
    authorize(&caller, view)?;
    check_key("scan_ref", &req.scan_ref)?;
    let ticket = api.streams.admit()?;
    // Subscribe before the first read: a change committed after that read always wakes us
    // (perhaps spuriously, never too late).
    let watch = api.hub.watch_case(&req.scan_ref);
    let follower = Follower {
        reader: api.reads.reader(&req.scan_ref, view == pb::CaseView::Full),
        view,
        audit: Audit::of(&caller, METHOD, view),
        sent: req.from_revision,
        until_final: req.until_final,
        pace: api.pace(),
        opened_at: Utc::now(),
    };
    Ok(stream::open("case", ticket, move |sink| {
        follower.run(watch, sink)
    }))
}

/// The state of one `WatchCase` stream.
#[derive(Debug)]
struct Follower {
    /// Reads of this case, shared with the other streams watching it.
    reader: CaseReader,
    view: pb::CaseView,
    /// Set for the FULL view: every case sent is audited.
    audit: Option<Audit>,
    /// The highest revision the client has: only newer ones are sent.
    sent: u64,
    until_final: bool,
    pace: Pace,
    /// Changes received before this are not live: no latency is recorded for them.
    opened_at: DateTime<Utc>,
}

impl Follower {
    /// Reads, sends what is new, waits; again. Returns `Ok` only for `until_final`.
    ///
    /// The catching up (with the case it reads) and the heartbeat send run in boxes of their
    /// own: this future lives as long as the stream, and its size is that of its largest await
    /// plus every local in scope across an await, even one moved out before it. Unboxed it was
    /// 3.7 KB per idle stream; with the read and the delivery boxed but the case read still a
    /// local here, 1.5 KB; now 0.9 KB, most of it the wait (the hub's `changed` and the
    /// heartbeat timer, 432 bytes) and the stream's own state.
    async fn run(
        mut self,
        mut watch: CaseWatch,
        sink: Sink<pb::WatchCaseResponse>,
    ) -> Result<(), Status> {
        loop {
            if Box::pin(self.catch_up(&watch, &sink)).await? {
                return Ok(());
            }
            loop {
                match self.pace.wait(watch.changed()).await {
                    Wake::Changed => break,
                    Wake::Heartbeat => {
                        let heartbeat = pb::WatchCaseResponse {
                            event: Some(Event::Heartbeat(stream::heartbeat())),
                        };
                        Box::pin(sink.send(heartbeat)).await;
                        self.pace.sent();
                    }
                }
            }
        }
    }

    /// Reads the case as of everything the watch was told of (at subscription, or at the latest
    /// wake-up; the read is shared with the other watchers of the case where possible) and
    /// sends it if it is newer than what the client has. True when the stream is done: the
    /// case is final and the client asked to stop there. A case that does not exist yet is
    /// simply waited for.
    async fn catch_up(
        &mut self,
        watch: &CaseWatch,
        sink: &Sink<pb::WatchCaseResponse>,
    ) -> Result<bool, Status> {
        let Some(case) = self
            .reader
            .read(watch)
            .await
            .map_err(status::stream_interrupted)?
        else {
            return Ok(false);
        };
        let is_final = case.is_final;
        if case.revision > self.sent {
            self.deliver(&case, watch, sink).await;
        }
        Ok(is_final && self.until_final)
    }

    /// Sends `case`, newer than what the client has, in its delivery span.
    async fn deliver(
        &mut self,
        case: &Case,
        watch: &CaseWatch,
        sink: &Sink<pb::WatchCaseResponse>,
    ) {
        self.sent = case.revision;
        let is_final = case.is_final;
        // The hub's traceparent belongs to its revision only.
        let signal = watch.current();
        let traceparent = signal
            .traceparent
            .filter(|_| signal.revision == case.revision);
        let span = deliver::span(deliver::Method::WatchCase, case, traceparent.as_deref());
        let changed_at = case.updated_at;
        if let Some(audit) = &self.audit {
            audit.served([case.scan_ref.as_str()]);
        }
        let case = convert::case_to_proto(case, self.view);
        async {
            debug!(is_final, "sending case");
            sink.send(pb::WatchCaseResponse {
                event: Some(Event::Case(case)),
            })
            .await
        }
        .instrument(span)
        .await;
        deliver::record_latency(changed_at, self.opened_at);
        self.pace.sent();
    }
}
