//! HTTP/1.1 load: one keep-alive hyper connection per concurrent sender, closed loop (each
//! sender waits for its answer) or paced (open loop at a fixed rate).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::{Bodies, Signed};

/// The webhook route of the service (the HMAC peer serves the same path).
pub(crate) const WEBHOOK_PATH: &str = "/webhooks/idenfy";

/// A keep-alive HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct Conn {
    addr: SocketAddr,
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connects (TCP_NODELAY, as any serious client).
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(Self { addr, send })
    }

    /// Posts a webhook; returns the status once the whole answer is read.
    pub(crate) async fn post(
        &mut self,
        signed: &Signed,
        event: &str,
    ) -> anyhow::Result<StatusCode> {
        let request = Request::post(WEBHOOK_PATH)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .header("idenfy-signature", signed.signature.as_str())
            .header("idenfy-event-type", event)
            .body(Full::new(signed.body.clone()))?;
        self.send.ready().await?;
        let response = self.send.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok(status)
    }

    /// Posts an empty body to `path` (the peers' control routes).
    pub(crate) async fn post_empty(&mut self, path: &str) -> anyhow::Result<StatusCode> {
        let request = Request::post(path)
            .header("host", self.addr.to_string())
            .body(Full::new(Bytes::new()))?;
        self.send.ready().await?;
        let response = self.send.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok(status)
    }
}

/// The status of `GET path`, or `None` when nothing answers.
pub(crate) async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let go = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let (mut send, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
            .await
            .ok()?;
        tokio::spawn(conn);
        let request = Request::get(path)
            .header("host", addr.to_string())
            .body(Empty::new())
            .ok()?;
        let response = send.send_request(request).await.ok()?;
        Some(response.status().as_u16())
    };
    tokio::time::timeout(Duration::from_secs(2), go)
        .await
        .ok()
        .flatten()
}

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A correctly signed, unique webhook.
    Valid,
    /// A unique body with a signature made with the wrong key.
    BadSignature,
}

/// A load run's outcome.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Requests answered 2xx over the whole run (warm-up included).
    pub(crate) ok: u64,
    /// Requests answered 401 over the whole run.
    pub(crate) unauthorized: u64,
    /// Any other answer or transport error.
    pub(crate) other: u64,
    /// Latencies of the requests completed inside the measuring window.
    pub(crate) latencies: Vec<Duration>,
    /// The measuring window's real length.
    pub(crate) window: Duration,
    /// CPU microseconds the measured process used inside the window.
    pub(crate) cpu_us: u64,
}

impl Outcome {
    /// Completed requests per second inside the window.
    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }
}

/// Closed-loop load at `concurrency` against `addr`: `warmup`, then `measure`; CPU of `pid`
/// is read at the window's edges.
pub(crate) async fn closed_loop(
    addr: SocketAddr,
    bodies: Arc<Bodies>,
    kind: Kind,
    concurrency: usize,
    warmup: Duration,
    measure: Duration,
    pid: u32,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let from = start + warmup;
    let until = from + measure;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let bodies = bodies.clone();
        let mut conn = Conn::open(addr).await.context("connect")?;
        workers.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            loop {
                let now = Instant::now();
                if now >= until {
                    break;
                }
                let signed = make(&bodies, kind);
                let sent = Instant::now();
                match conn.post(&signed, "IDENTIFICATION_AUTO_FINISHED").await {
                    Ok(s) if s.is_success() => out.ok += 1,
                    Ok(StatusCode::UNAUTHORIZED) => out.unauthorized += 1,
                    Ok(_) | Err(_) => {
                        out.other += 1;
                        // A broken connection cannot be reused.
                        match Conn::open(addr).await {
                            Ok(c) => conn = c,
                            Err(_) => break,
                        }
                    }
                }
                let done = Instant::now();
                if sent >= from && done <= until {
                    out.latencies.push(done - sent);
                }
            }
            out
        }));
    }
    let mut total = Outcome {
        window: measure,
        cpu_us: crate::machine::cpu_us_during(pid, from, until).await,
        ..Outcome::default()
    };
    for w in workers {
        let out = w.await?;
        total.ok += out.ok;
        total.unauthorized += out.unauthorized;
        total.other += out.other;
        total.latencies.extend(out.latencies);
    }
    Ok(total)
}

/// Open-loop background load: `rate` webhooks per second over `senders` connections until
/// `until`; returns how many were acknowledged and how many were not.
pub(crate) async fn paced(
    addr: SocketAddr,
    bodies: Arc<Bodies>,
    rate: f64,
    senders: usize,
    until: Instant,
) -> anyhow::Result<(u64, u64)> {
    let every = Duration::from_secs_f64(senders as f64 / rate.max(1.0));
    let mut workers = Vec::new();
    for _ in 0..senders {
        let bodies = bodies.clone();
        let mut conn = Conn::open(addr).await?;
        workers.push(tokio::spawn(async move {
            let (mut ok, mut bad) = (0u64, 0u64);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < until {
                tick.tick().await;
                let signed = bodies.next_signed('h');
                match conn.post(&signed, "IDENTIFICATION_AUTO_FINISHED").await {
                    Ok(s) if s.is_success() => ok += 1,
                    _ => bad += 1,
                }
            }
            (ok, bad)
        }));
    }
    let (mut ok, mut bad) = (0, 0);
    for w in workers {
        let (o, b) = w.await?;
        ok += o;
        bad += b;
    }
    Ok((ok, bad))
}

fn make(bodies: &Bodies, kind: Kind) -> Signed {
    match kind {
        Kind::Valid => bodies.next_signed('i'),
        Kind::BadSignature => {
            let mut signed = bodies.next_signed('x');
            // Same length and form as a real signature, made with another key.
            signed.signature = verdict_domain::sign(b"not-the-key", &signed.body);
            signed
        }
    }
}
