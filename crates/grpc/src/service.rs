//! `verdict.v1.CaseService` over the domain ports. Each method lives in its own module; this
//! file holds the shared state and the request parsing they have in common.

use std::sync::{Arc, Weak};

use tokio_util::task::AbortOnDropHandle;
use tonic::{Request, Response, Status};
use verdict_bus::Hub;
use verdict_domain::CaseStore;
use verdict_proto::verdict::v1::{self as pb, case_service_server::CaseService};

use crate::{
    GrpcOptions,
    auth::{Caller, Scope},
    case_cache::CaseCache,
    feed_tail::FeedTail,
    shared_read::SharedReads,
    status,
    stream::{Pace, ResponseStream, StreamLimits},
};

mod get;
mod list;
mod watch_case;
mod watch_cases;

/// The service implementation: cheap to share, holds only ports and settings.
#[derive(Debug)]
pub(crate) struct CaseApi {
    store: Arc<dyn CaseStore>,
    /// `GetCase`'s BASIC cases, checked against the feed on every call.
    cases: Arc<CaseCache>,
    /// The `WatchCase` reads, shared between the streams of one case.
    reads: Arc<SharedReads>,
    /// The feed's recent changes, read once for every `WatchCases` stream.
    tail: Arc<FeedTail>,
    /// The tail's reader; it stops with the streams, or when the service is dropped.
    _tail_reader: AbortOnDropHandle<()>,
    hub: Arc<Hub>,
    options: GrpcOptions,
    /// Admits streams and ends them (at shutdown, at their maximum age).
    streams: StreamLimits,
}

impl CaseApi {
    /// A service reading `store`, woken by `hub`, whose streams live under `streams`.
    pub(crate) fn new(
        store: Arc<dyn CaseStore>,
        hub: Arc<Hub>,
        options: GrpcOptions,
        streams: StreamLimits,
    ) -> Self {
        let tail = FeedTail::new(
            Arc::clone(&store),
            Arc::clone(&hub),
            options.poll_interval,
            options.feed_window,
        );
        let reader = tokio::spawn(Arc::clone(&tail).run(streams.shutdown().clone()));
        let cases = Arc::new(CaseCache::new(Arc::clone(&store)));
        let listener: Weak<CaseCache> = Arc::downgrade(&cases);
        hub.listen(listener);
        Self {
            reads: SharedReads::new(Arc::clone(&store)),
            cases,
            tail,
            _tail_reader: AbortOnDropHandle::new(reader),
            store,
            hub,
            options,
            streams,
        }
    }

    fn pace(&self) -> Pace {
        Pace::new(self.options.heartbeat_interval)
    }
}

#[tonic::async_trait]
impl CaseService for CaseApi {
    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::GetCaseResponse>, Status> {
        get::get_case(self, Caller::of(&request)?, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_cases(
        &self,
        request: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        list::list_cases(self, Caller::of(&request)?, request.into_inner())
            .await
            .map(Response::new)
    }

    type WatchCaseStream = ResponseStream<pb::WatchCaseResponse>;

    async fn watch_case(
        &self,
        request: Request<pb::WatchCaseRequest>,
    ) -> Result<Response<Self::WatchCaseStream>, Status> {
        watch_case::watch_case(self, Caller::of(&request)?, request.into_inner()).map(Response::new)
    }

    type WatchCasesStream = ResponseStream<pb::WatchCasesResponse>;

    async fn watch_cases(
        &self,
        request: Request<pb::WatchCasesRequest>,
    ) -> Result<Response<Self::WatchCasesStream>, Status> {
        watch_cases::watch_cases(self, Caller::of(&request)?, request.into_inner())
            .await
            .map(Response::new)
    }
}

/// The requested view. Unknown values are refused rather than guessed: a newer client asking
/// for a narrower view must not silently get more data.
fn view(raw: i32) -> Result<pb::CaseView, Status> {
    pb::CaseView::try_from(raw).map_err(|_| status::invalid_argument(format!("unknown view {raw}")))
}

/// `include_history` returns at most this many deliveries, the newest.
pub(crate) const MAX_HISTORY: u32 = 1000;

/// The one check of a `scan_ref` or `client_id` in any request: the domain's
/// [`check_key`](verdict_domain::key::check_key), as a status.
pub(crate) fn check_key(field: &str, value: &str) -> Result<(), Status> {
    verdict_domain::key::check_key(field, value).map_err(status::from_domain)
}

/// The scopes a call needs: `cases:read` for any `CaseService` call, `pii:read` as well for
/// the FULL view.
fn authorize(caller: &Caller, view: pb::CaseView) -> Result<(), Status> {
    caller.require(Scope::CasesRead)?;
    if view == pb::CaseView::Full {
        caller.require(Scope::PiiRead)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn a_refused_key_is_invalid_argument_naming_the_field() {
        assert!(check_key("scan_ref", "scan-1").is_ok());
        let status = check_key("scan_ref", "scan\0ref").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "scan_ref contains a NUL byte");
    }

    #[test]
    fn unspecified_view_is_accepted_and_unknown_refused() {
        assert_eq!(view(0).unwrap(), pb::CaseView::Unspecified);
        assert_eq!(view(2).unwrap(), pb::CaseView::Full);
        assert_eq!(view(7).unwrap_err().code(), Code::InvalidArgument);
    }
}
