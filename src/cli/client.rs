//! `verdict get` and `verdict watch`: small gRPC clients printing JSON lines, for operators and
//! scripts.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use verdict_proto::verdict::v1::{
    CaseView, Decision, GetCaseRequest, WatchCaseRequest, WatchCasesRequest,
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

    /// PEM CA certificate to verify the server with (`https://` URLs); without it, the system's
    /// roots.
    #[arg(long, env = "VERDICT_GRPC_CA")]
    pub ca: Option<PathBuf>,

    /// PEM client certificate, for servers that require mutual TLS (with --key).
    #[arg(long, env = "VERDICT_GRPC_CERT", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key of --cert.
    #[arg(long, env = "VERDICT_GRPC_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
}

impl Endpoint {
    /// A channel to the server: TLS for `https://` URLs (or whenever a CA or client certificate
    /// is given), plaintext h2c otherwise.
    async fn channel(&self) -> anyhow::Result<Channel> {
        let mut endpoint = Channel::from_shared(self.grpc_url.clone())
            .with_context(|| format!("{:?} is not a valid URL", self.grpc_url))?;
        let wants_tls =
            self.grpc_url.starts_with("https://") || self.ca.is_some() || self.cert.is_some();
        if wants_tls {
            let mut tls = ClientTlsConfig::new();
            tls = match &self.ca {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca, "--ca")?)),
                None => tls.with_native_roots(),
            };
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "--cert")?,
                    read(key, "--key")?,
                ));
            }
            endpoint = endpoint
                .tls_config(tls)
                .context("the TLS settings cannot be used")?;
        }
        endpoint
            .connect()
            .await
            .with_context(|| format!("could not connect to {}", self.grpc_url))
    }

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
    /// Resume after this cursor: a change's or a bookmark's (WatchCases).
    #[arg(long, default_value = "", conflicts_with = "from_now")]
    pub cursor: String,
    /// Start at the feed's current head: only changes from now on (WatchCases).
    #[arg(long, conflicts_with = "scan_ref")]
    pub from_now: bool,
    /// Only changes that leave a case final (WatchCases).
    #[arg(long, conflicts_with = "scan_ref")]
    pub final_only: bool,
    /// Only changes of cases of this clientId; repeat for several (WatchCases).
    #[arg(
        long = "client-id",
        value_name = "CLIENT_ID",
        conflicts_with = "scan_ref"
    )]
    pub client_ids: Vec<String>,
    /// Only changes that leave a case with this decision: pending, approved, denied,
    /// suspected, expired or cancelled; repeat for several (WatchCases).
    #[arg(long = "decision", value_name = "DECISION", value_parser = decision, conflicts_with = "scan_ref")]
    pub decisions: Vec<Decision>,
    /// Include personal data (CASE_VIEW_FULL).
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub endpoint: Endpoint,
}

async fn connect(endpoint: &Endpoint) -> anyhow::Result<CaseServiceClient<Channel>> {
    Ok(CaseServiceClient::new(endpoint.channel().await?))
}

fn read(path: &PathBuf, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("could not read {flag} {}", path.display()))
}

/// A decision as a user types it: `approved`, `APPROVED` or `DECISION_APPROVED`.
fn decision(raw: &str) -> Result<Decision, String> {
    let upper = raw.to_ascii_uppercase();
    let name = match upper.starts_with("DECISION_") {
        true => upper,
        false => format!("DECISION_{upper}"),
    };
    Decision::from_str_name(&name)
        .filter(|d| *d != Decision::Unspecified)
        .ok_or_else(|| {
            "expected pending, approved, denied, suspected, expired or cancelled".to_owned()
        })
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
                    cursor: args.cursor.clone(),
                    final_only: args.final_only,
                    view: view(args.full),
                    client_ids: args.client_ids,
                    decisions: args.decisions.into_iter().map(i32::from).collect(),
                    scan_refs: Vec::new(),
                    from_now: args.from_now,
                })?)
                .await
                .map_err(status_error)?
                .into_inner();
            // A shell consumer resumes with `--cursor` set to the last `cursor` or `bookmark`
            // printed; a bookmark is printed only when it moves past what was printed before.
            let mut printed = args.cursor;
            while let Some(message) = stream.message().await.map_err(status_error)? {
                match message.event {
                    Some(watch_cases_response::Event::Change(change)) => {
                        let case = change.case.as_ref().map(json::case);
                        println!("{}", json!({"cursor": change.cursor, "case": case}));
                        printed = change.cursor;
                    }
                    Some(watch_cases_response::Event::Heartbeat(heartbeat))
                        if !heartbeat.cursor.is_empty() && heartbeat.cursor != printed =>
                    {
                        println!("{}", json!({"bookmark": heartbeat.cursor}));
                        printed = heartbeat.cursor;
                    }
                    Some(watch_cases_response::Event::Heartbeat(_)) | None => {}
                }
            }
        }
    }
    Ok(())
}

/// The code and message, and for a failed connection its cause (a refused client certificate
/// shows only there).
fn status_error(status: tonic::Status) -> anyhow::Error {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(&status);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    anyhow::anyhow!(text)
}

#[cfg(test)]
mod tests;
