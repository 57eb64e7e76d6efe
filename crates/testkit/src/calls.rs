//! Posting webhooks and reading cases back, as the end-to-end tests do it.

use serde_json::Value;
use verdict_proto::verdict::v1::{Case, CaseView, GetCaseRequest, get_case_request::Key};

use crate::{TestApp, within};

impl TestApp {
    /// Posts a correctly signed webhook; the status and the JSON answer (`null` if none).
    pub async fn post_json(&self, event_type: Option<&str>, body: &[u8]) -> (u16, Value) {
        let response = self.post_webhook(event_type, body).await;
        let status = response.status().as_u16();
        let json = within("the webhook body", response.json::<Value>())
            .await
            .unwrap_or(Value::Null);
        (status, json)
    }

    /// `GetCase` by scanRef.
    pub async fn get_case(
        &self,
        scan_ref: &str,
        view: CaseView,
        include_history: bool,
    ) -> Result<Case, tonic::Status> {
        let mut client = self.grpc().await;
        let request = GetCaseRequest {
            key: Some(Key::ScanRef(scan_ref.to_owned())),
            view: view.into(),
            include_history,
        };
        let response = within("GetCase", client.get_case(request)).await?;
        Ok(response.into_inner().case.expect("GetCase returns a case"))
    }
}
