//! The peers, each run as a child process of the bench (`--peer http|grpc <http> <grpc>`) so
//! that they have their own runtime and CPU account, like the service:
//!
//! - `http`: a minimal axum server doing only what must happen before any parsing — read the
//!   body, check its HMAC with the domain's own verifier — and answering 200 or 401;
//! - `grpc`: a minimal tonic `CaseService` answering `GetCase` from a map and streaming
//!   `WatchCase` from one broadcast channel, with an HTTP side to put cases and publish decisions.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use verdict_domain::{SignatureVerifier, UnverifiedWebhook};

use crate::body::SECRET;

mod grpc;

/// Runs a peer process until its stdin closes (the bench went away) or it is killed.
pub(crate) fn run_process(args: &[String]) -> anyhow::Result<()> {
    let [kind, http, grpc] = args else {
        anyhow::bail!("usage: --peer http|grpc <http addr> <grpc addr>");
    };
    let http: SocketAddr = http.parse().context("http address")?;
    let grpc: SocketAddr = grpc.parse().context("grpc address")?;
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match kind.as_str() {
            "http" => serve_http(http).await,
            "grpc" => grpc::serve(http, grpc).await,
            other => anyhow::bail!("unknown peer {other}"),
        }
    })
}

async fn serve_http(addr: SocketAddr) -> anyhow::Result<()> {
    let verifier = Arc::new(SignatureVerifier::new(&[SECRET.as_bytes().to_vec()]));
    let app = Router::new()
        .route("/ready", get(|| async { StatusCode::OK }))
        .route("/webhooks/idenfy", post(hmac_only))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn hmac_only(
    State(verifier): State<Arc<SignatureVerifier>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let text = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let webhook = UnverifiedWebhook {
        body,
        signature: text("idenfy-signature"),
        event_type: text("idenfy-event-type"),
    };
    match verifier.verify(webhook) {
        Ok(_) => (StatusCode::OK, r#"{"outcome":"applied"}"#),
        Err(_) => (StatusCode::UNAUTHORIZED, r#"{"error":"bad signature"}"#),
    }
}
