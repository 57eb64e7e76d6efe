//! The gRPC ceiling: `GetCase` from a map, `WatchCase` from one broadcast channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};
use verdict_proto::verdict::v1::{
    self as pb,
    case_service_server::{CaseService, CaseServiceServer},
    get_case_request::Key,
    watch_case_response::Event,
};

type Cases = Arc<RwLock<HashMap<String, Arc<pb::Case>>>>;

#[derive(Debug, Clone)]
struct Peer {
    cases: Cases,
    decisions: broadcast::Sender<Arc<pb::Case>>,
}

/// Serves the control routes on `http` and `CaseService` on `grpc`.
pub(super) async fn serve(http: SocketAddr, grpc: SocketAddr) -> anyhow::Result<()> {
    let (decisions, _) = broadcast::channel(1024);
    let peer = Peer {
        cases: Arc::default(),
        decisions,
    };
    let control = axum::Router::new()
        .route("/ready", get(|| async { StatusCode::OK }))
        .route("/put/{scan_ref}", post(put))
        .route("/publish/{scan_ref}", post(publish))
        .with_state(peer.clone());
    let listener = tokio::net::TcpListener::bind(http).await?;
    tokio::spawn(async move { axum::serve(listener, control).await });
    let incoming = tonic::transport::server::TcpIncoming::bind(grpc)?.with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(CaseServiceServer::new(peer))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

/// A case shaped like the service's answer for the bench body.
fn case(scan_ref: &str, is_final: bool) -> pb::Case {
    let now = prost_timestamp();
    pb::Case {
        scan_ref: scan_ref.to_owned(),
        client_id: "123".to_owned(),
        external_ref: "external-ref".to_owned(),
        decision: if is_final {
            pb::Decision::Approved
        } else {
            pb::Decision::Pending
        } as i32,
        r#final: is_final,
        overall_status: if is_final { "APPROVED" } else { "REVIEWING" }.to_owned(),
        last_event_type: "IDENTIFICATION_AUTO_FINISHED".to_owned(),
        revision: if is_final { 2 } else { 1 },
        auto_document: "DOC_VALIDATED".to_owned(),
        auto_face: "FACE_MATCH".to_owned(),
        manual_document: "DOC_VALIDATED".to_owned(),
        manual_face: "FACE_MATCH".to_owned(),
        created_at: Some(now),
        updated_at: Some(now),
        finalized_at: is_final.then_some(now),
        ..pb::Case::default()
    }
}

fn prost_timestamp() -> prost_types::Timestamp {
    let now = chrono::Utc::now();
    prost_types::Timestamp {
        seconds: now.timestamp(),
        nanos: now.timestamp_subsec_nanos() as i32,
    }
}

async fn put(State(peer): State<Peer>, Path(scan_ref): Path<String>) -> StatusCode {
    let c = Arc::new(case(&scan_ref, false));
    peer.cases
        .write()
        .expect("not poisoned")
        .insert(scan_ref, c);
    StatusCode::OK
}

async fn publish(State(peer): State<Peer>, Path(scan_ref): Path<String>) -> StatusCode {
    let c = Arc::new(case(&scan_ref, true));
    peer.cases
        .write()
        .expect("not poisoned")
        .insert(scan_ref, c.clone());
    let _ = peer.decisions.send(c);
    StatusCode::OK
}

type WatchStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<pb::WatchCaseResponse, Status>> + Send>>;

#[tonic::async_trait]
impl CaseService for Peer {
    async fn get_case(
        &self,
        request: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::GetCaseResponse>, Status> {
        let Some(Key::ScanRef(scan_ref)) = request.into_inner().key else {
            return Err(Status::invalid_argument("scan_ref"));
        };
        let case = self
            .cases
            .read()
            .expect("not poisoned")
            .get(&scan_ref)
            .cloned()
            .ok_or_else(|| Status::not_found("no such case"))?;
        Ok(Response::new(pb::GetCaseResponse {
            case: Some((*case).clone()),
        }))
    }

    async fn list_cases(
        &self,
        _: Request<pb::ListCasesRequest>,
    ) -> Result<Response<pb::ListCasesResponse>, Status> {
        Err(Status::unimplemented("not in the peer"))
    }

    type WatchCaseStream = WatchStream;

    async fn watch_case(
        &self,
        request: Request<pb::WatchCaseRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let scan_ref = request.into_inner().scan_ref;
        // Subscribe first, then the snapshot, as the service does.
        let updates = BroadcastStream::new(self.decisions.subscribe());
        let snapshot = self
            .cases
            .read()
            .expect("not poisoned")
            .get(&scan_ref)
            .cloned();
        let first = futures::stream::iter(snapshot.map(|c| Ok(response(&c))));
        let rest = updates
            .filter_map(move |m| {
                let hit = m.ok().filter(|c| c.scan_ref == scan_ref);
                async move { hit }
            })
            .take(1)
            .map(|c| Ok(response(&c)));
        Ok(Response::new(Box::pin(first.chain(rest))))
    }

    type WatchCasesStream = futures::stream::Empty<Result<pb::WatchCasesResponse, Status>>;

    async fn watch_cases(
        &self,
        _: Request<pb::WatchCasesRequest>,
    ) -> Result<Response<Self::WatchCasesStream>, Status> {
        Err(Status::unimplemented("not in the peer"))
    }
}

fn response(case: &pb::Case) -> pb::WatchCaseResponse {
    pb::WatchCaseResponse {
        event: Some(Event::Case(case.clone())),
    }
}
