//! `GetCase`: one case by scanRef, or the latest case of a clientId.

use tonic::Status;
use tracing::{Span, field};
use verdict_proto::verdict::v1::{self as pb, get_case_request::Key};

use super::{CaseApi, MAX_HISTORY, authorize, check_key, view};
use crate::{audit::Audit, auth::Caller, convert, status};

/// `rpc.method` of this call, as audit events name it.
const METHOD: &str = "verdict.v1.CaseService/GetCase";

/// Looks the case up by the key given. The clientId is the caller's own user id, so it stays out
/// of spans and error messages; scanRefs are iDenfy's opaque ids and may appear. History holds
/// the newest [`MAX_HISTORY`] deliveries. The BASIC view by scanRef comes through the
/// [`CaseCache`](crate::case_cache::CaseCache), exact as of a check made after the call began.
#[tracing::instrument(name = "get_case", skip_all, fields(key = field::Empty, scan_ref = field::Empty))]
pub(super) async fn get_case(
    api: &CaseApi,
    caller: Caller,
    req: pb::GetCaseRequest,
) -> Result<pb::GetCaseResponse, Status> {
    let view = view(req.view)?;
    authorize(&caller, view)?;
    let with_person = view == pb::CaseView::Full;
    let span = Span::current();
    let mut case = match req.key {
        None => {
            return Err(status::invalid_argument(
                "a key is required: set scan_ref or client_id",
            ));
        }
        Some(Key::ScanRef(scan_ref)) => {
            span.record("key", "scan_ref");
            check_key("scan_ref", &scan_ref)?;
            let case = if view == pb::CaseView::Basic {
                api.cases.basic_case(&scan_ref).await
            } else {
                api.store
                    .case(&scan_ref, with_person)
                    .await
                    .map(|case| case.map(|case| convert::case_to_proto(&case, view)))
            };
            case.map_err(status::from_domain)?
                .ok_or_else(|| status::not_found(format!("no case with scan_ref {scan_ref:?}")))?
        }
        Some(Key::ClientId(client_id)) => {
            span.record("key", "client_id");
            check_key("client_id", &client_id)?;
            let case = api
                .store
                .latest_case_of_client(&client_id, with_person)
                .await
                .map_err(status::from_domain)?
                .ok_or_else(|| status::not_found("no case for this client_id"))?;
            convert::case_to_proto(&case, view)
        }
    };
    span.record("scan_ref", case.scan_ref.as_str());

    if req.include_history {
        case.history = api
            .store
            .history(&case.scan_ref, MAX_HISTORY)
            .await
            .map_err(status::from_domain)?
            .into_iter()
            .map(convert::case_event_to_proto)
            .collect();
    }
    if let Some(audit) = Audit::of(&caller, METHOD, view) {
        audit.served([case.scan_ref.as_str()]);
    }
    Ok(pb::GetCaseResponse { case: Some(case) })
}
