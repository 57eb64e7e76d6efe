//! Reading `WatchCase` / `WatchCases` streams in tests: past heartbeats, every await bounded.

use tonic::Streaming;
use verdict_proto::verdict::v1::{
    Case, CaseChange, CaseView, WatchCaseRequest, WatchCaseResponse, WatchCasesRequest,
    WatchCasesResponse, watch_case_response, watch_cases_response,
};

use crate::{TestApp, within};

impl TestApp {
    /// Opens a `WatchCase` stream (basic view) on a fresh connection.
    pub async fn watch_case(
        &self,
        scan_ref: &str,
        from_revision: u64,
        until_final: bool,
    ) -> Streaming<WatchCaseResponse> {
        let request = WatchCaseRequest {
            scan_ref: scan_ref.to_owned(),
            from_revision,
            until_final,
            view: CaseView::Basic.into(),
        };
        within("WatchCase", self.grpc().await.watch_case(request))
            .await
            .expect("WatchCase opens")
            .into_inner()
    }

    /// Opens a `WatchCases` stream (basic view) on a fresh connection.
    pub async fn watch_cases(
        &self,
        cursor: &str,
        final_only: bool,
    ) -> Streaming<WatchCasesResponse> {
        self.watch_cases_with(WatchCasesRequest {
            cursor: cursor.to_owned(),
            final_only,
            view: CaseView::Basic.into(),
            ..WatchCasesRequest::default()
        })
        .await
    }

    /// Opens a `WatchCases` stream with any request (filters, `from_now`) on a fresh connection.
    pub async fn watch_cases_with(
        &self,
        request: WatchCasesRequest,
    ) -> Streaming<WatchCasesResponse> {
        within("WatchCases", self.grpc().await.watch_cases(request))
            .await
            .expect("WatchCases opens")
            .into_inner()
    }
}

/// The next case on a `WatchCase` stream, skipping heartbeats; `None` when it ended OK.
pub async fn next_case(stream: &mut Streaming<WatchCaseResponse>) -> Option<Case> {
    loop {
        let message = within("the next WatchCase message", stream.message())
            .await
            .expect("the stream does not fail")?;
        match message.event {
            Some(watch_case_response::Event::Case(case)) => return Some(case),
            Some(watch_case_response::Event::Heartbeat(_)) => continue,
            None => panic!("empty WatchCase message"),
        }
    }
}

/// The next change on a `WatchCases` stream, skipping heartbeats.
pub async fn next_change(stream: &mut Streaming<WatchCasesResponse>) -> CaseChange {
    loop {
        let message = within("the next WatchCases message", stream.message())
            .await
            .expect("the stream does not fail")
            .expect("WatchCases does not end by itself");
        match message.event {
            Some(watch_cases_response::Event::Change(change)) => return change,
            Some(watch_cases_response::Event::Heartbeat(_)) => continue,
            None => panic!("empty WatchCases message"),
        }
    }
}

/// What a `WatchCases` stream says: a change, or a heartbeat's bookmark.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Change(Box<CaseChange>),
    /// The cursor a heartbeat carried: everything up to it has been examined.
    Bookmark(String),
}

/// The next change or bookmark on a `WatchCases` stream.
pub async fn next_feed_event(stream: &mut Streaming<WatchCasesResponse>) -> FeedEvent {
    let message = within("the next WatchCases message", stream.message())
        .await
        .expect("the stream does not fail")
        .expect("WatchCases does not end by itself");
    match message.event {
        Some(watch_cases_response::Event::Change(change)) => FeedEvent::Change(Box::new(change)),
        Some(watch_cases_response::Event::Heartbeat(heartbeat)) => {
            assert!(
                !heartbeat.cursor.is_empty(),
                "every WatchCases heartbeat carries a bookmark"
            );
            FeedEvent::Bookmark(heartbeat.cursor)
        }
        None => panic!("empty WatchCases message"),
    }
}
