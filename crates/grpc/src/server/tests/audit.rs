//! The audit trail: one `verdict::audit` event per response carrying personal data, as JSON, with
//! who, what and how many, and never the data itself.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// JSON log lines written on this thread while the capture lives.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Lines {
    fn audit_events(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|event| event["target"] == crate::AUDIT_TARGET)
            .collect()
    }
}

#[tokio::test]
async fn personal_data_served_is_audited_once_per_response_without_the_data() {
    let lines = Lines::default();
    let _capture = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .json()
            .with_writer(lines.clone())
            .finish(),
    );
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    server.commit(pending("scan-2", 1));
    let mut client = server.client().await;

    for view in [pb::CaseView::Basic, pb::CaseView::Full] {
        client
            .get_case(pb::GetCaseRequest {
                key: Some(Key::ScanRef("scan-1".into())),
                view: view.into(),
                include_history: false,
            })
            .await
            .unwrap();
        client
            .list_cases(pb::ListCasesRequest {
                view: view.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut watch = client
            .watch_case(pb::WatchCaseRequest {
                view: view.into(),
                ..watch_req("scan-1", 0, false)
            })
            .await
            .unwrap()
            .into_inner();
        next_case(&mut watch).await;
        let mut feed = client
            .watch_cases(pb::WatchCasesRequest {
                view: view.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        next_change(&mut feed).await;
        next_change(&mut feed).await;
    }
    server.stop().await;

    let events = lines.audit_events();
    let summary: Vec<(String, u64, String)> = events
        .iter()
        .map(|event| {
            let fields = &event["fields"];
            assert_eq!(fields["caller"], "anonymous");
            assert_eq!(fields["view"], "FULL");
            assert_eq!(event["level"], "INFO");
            (
                fields["method"].as_str().unwrap().to_owned(),
                fields["count"].as_u64().unwrap(),
                fields["scan_refs"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let method = |name: &str| format!("verdict.v1.CaseService/{name}");
    assert_eq!(
        summary,
        [
            (method("GetCase"), 1, "scan-1".into()),
            (method("ListCases"), 2, "scan-2,scan-1".into()),
            (method("WatchCase"), 1, "scan-1".into()),
            (method("WatchCases"), 1, "scan-1".into()),
            (method("WatchCases"), 1, "scan-2".into()),
        ],
        "BASIC calls are not audited, FULL ones once per case sent"
    );
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("Jonas"),
        "audit events carry no personal data"
    );
}

#[tokio::test]
async fn an_erasure_is_audited_naming_who_erased_which_case() {
    let lines = Lines::default();
    let _capture = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .json()
            .with_writer(lines.clone())
            .finish(),
    );
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    let mut admin = verdict_proto::verdict::v1::admin_service_client::AdminServiceClient::new(
        server.channel().await,
    );
    for _ in 0..2 {
        admin
            .purge_case(pb::PurgeCaseRequest {
                scan_ref: "scan-1".into(),
            })
            .await
            .unwrap();
    }
    server.stop().await;

    let erasures: Vec<(String, String, u64, bool)> = lines
        .audit_events()
        .iter()
        .map(|event| {
            let fields = &event["fields"];
            assert_eq!(fields["message"], "personal data erased");
            assert_eq!(fields["method"], "verdict.v1.AdminService/PurgeCase");
            (
                fields["caller"].as_str().unwrap().to_owned(),
                fields["scan_refs"].as_str().unwrap().to_owned(),
                fields["revision"].as_u64().unwrap(),
                fields["erased"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        erasures,
        [
            ("anonymous".into(), "scan-1".into(), 2, true),
            ("anonymous".into(), "scan-1".into(), 2, false),
        ],
        "every request is audited, also one that found nothing left"
    );
}
