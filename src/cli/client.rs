//! `verdict get` and `verdict watch`: small gRPC clients printing JSON lines, for operators and
//! scripts.

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tonic::transport::Channel;
use verdict_proto::verdict::v1::{
    CaseView, GetCaseRequest, WatchCaseRequest, WatchCasesRequest,
    case_service_client::CaseServiceClient, get_case_request::Key, watch_case_response,
    watch_cases_response,
};

use super::json;

/// Where the gRPC server is.
#[derive(Debug, Args)]
pub struct Endpoint {
    /// URL of a running Verdict's gRPC listener.
    #[arg(
        long,
        env = "VERDICT_GRPC_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub grpc_url: String,

    /// Bearer token, when the server requires one (the first of a comma-separated list).
    #[arg(long = "token", env = "VERDICT_GRPC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl Endpoint {
    /// Wraps `message` in a request carrying the bearer token, if any.
    fn request<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        let token = self
            .token
            .as_deref()
            .and_then(|t| t.split(',').map(str::trim).find(|t| !t.is_empty()));
        if let Some(token) = token {
            let value = format!("Bearer {token}")
                .parse()
                .context("the token is not valid in a gRPC header")?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// Arguments of `verdict get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The iDenfy scanRef.
    #[arg(required_unless_present = "client_id", conflicts_with = "client_id")]
    pub scan_ref: Option<String>,
    /// Instead of a scanRef: the most recently updated case of this clientId.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Include personal data (CASE_VIEW_FULL).
    #[arg(long)]
    pub full: bool,
    /// Include every stored delivery.
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub endpoint: Endpoint,
}

/// Arguments of `verdict watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The scanRef to watch; leave out and pass --all for every change of every case.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub scan_ref: Option<String>,
    /// Watch every change (WatchCases).
    #[arg(long)]
    pub all: bool,
    /// Only revisions above this one (WatchCase).
    #[arg(long, default_value_t = 0)]
    pub from_revision: u64,
    /// Stop after the final decision (WatchCase).
    #[arg(long)]
    pub until_final: bool,
    /// Resume after this cursor (WatchCases).
    #[arg(long, default_value = "")]
    pub cursor: String,
    /// Only changes that leave a case final (WatchCases).
    #[arg(long)]
    pub final_only: bool,
    /// Include personal data (CASE_VIEW_FULL).
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub endpoint: Endpoint,
}

async fn connect(endpoint: &Endpoint) -> anyhow::Result<CaseServiceClient<Channel>> {
    CaseServiceClient::connect(endpoint.grpc_url.clone())
        .await
        .with_context(|| format!("could not connect to {}", endpoint.grpc_url))
}

fn view(full: bool) -> i32 {
    if full {
        CaseView::Full
    } else {
        CaseView::Basic
    }
    .into()
}

/// Prints one case.
pub(super) async fn get(args: GetArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.endpoint).await?;
    let key = match (args.scan_ref, args.client_id) {
        (Some(scan_ref), _) => Key::ScanRef(scan_ref),
        (None, Some(client_id)) => Key::ClientId(client_id),
        (None, None) => anyhow::bail!("give a scanRef or --client-id"),
    };
    let response = client
        .get_case(args.endpoint.request(GetCaseRequest {
            key: Some(key),
            view: view(args.full),
            include_history: args.history,
        })?)
        .await
        .map_err(status_error)?;
    let case = response
        .into_inner()
        .case
        .context("the server sent no case")?;
    println!("{}", json::case(&case));
    Ok(())
}

/// Prints every update as one JSON line until the stream ends.
pub(super) async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.endpoint).await?;
    match args.scan_ref {
        Some(scan_ref) => {
            let mut stream = client
                .watch_case(args.endpoint.request(WatchCaseRequest {
                    scan_ref,
                    from_revision: args.from_revision,
                    until_final: args.until_final,
                    view: view(args.full),
                })?)
                .await
                .map_err(status_error)?
                .into_inner();
            while let Some(message) = stream.message().await.map_err(status_error)? {
                match message.event {
                    Some(watch_case_response::Event::Case(case)) => {
                        println!("{}", json::case(&case))
                    }
                    Some(watch_case_response::Event::Heartbeat(_)) | None => {}
                }
            }
        }
        None => {
            let mut stream = client
                .watch_cases(args.endpoint.request(WatchCasesRequest {
                    cursor: args.cursor,
                    final_only: args.final_only,
                    view: view(args.full),
                    ..WatchCasesRequest::default()
                })?)
                .await
                .map_err(status_error)?
                .into_inner();
            while let Some(message) = stream.message().await.map_err(status_error)? {
                match message.event {
                    Some(watch_cases_response::Event::Change(change)) => {
                        let case = change.case.as_ref().map(json::case);
                        println!("{}", json!({"cursor": change.cursor, "case": case}));
                    }
                    Some(watch_cases_response::Event::Heartbeat(_)) | None => {}
                }
            }
        }
    }
    Ok(())
}

fn status_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}
