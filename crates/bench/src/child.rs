//! Child processes: the real `verdict serve` and the peers, on loopback ports picked here.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::body::SECRET;

/// A free loopback port (bound, then released: the child binds it a moment later).
pub(crate) fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The `verdict` binary next to this one, built first with the same profile so it is never
/// stale (`cargo run` sets `CARGO`; without it the binary must already exist).
pub(crate) fn verdict_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me.parent().context("the bench binary has a directory")?;
    let release = dir.file_name().is_some_and(|n| n == "release");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "verdict", "--bin", "verdict"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().context("run cargo build for verdict")?;
        if !status.success() {
            bail!("building the verdict binary failed");
        }
    }
    let path = dir.join("verdict");
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p verdict`",
            path.display()
        );
    }
    Ok(path)
}

/// How to start one Verdict.
#[derive(Debug, Clone)]
pub(crate) struct ServiceSpec {
    pub(crate) binary: PathBuf,
    pub(crate) database_url: String,
    pub(crate) redis: Option<(String, String)>,
    pub(crate) log: PathBuf,
}

/// A running child process, killed when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    /// Its HTTP address.
    pub(crate) http: SocketAddr,
    /// Its gRPC address.
    pub(crate) grpc: SocketAddr,
}

impl Proc {
    /// The process id, for CPU and memory readings.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `verdict serve` and waits until `/readyz` answers 200.
    pub(crate) async fn service(spec: &ServiceSpec) -> anyhow::Result<Self> {
        let (http, grpc) = (free_addr()?, free_addr()?);
        let log = std::fs::File::create(&spec.log)?;
        // A profiler in front of the service, e.g. `valgrind --tool=callgrind`.
        let wrapper = std::env::var("VERDICT_BENCH_SERVICE_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(&spec.binary);
                cmd
            }
            None => Command::new(&spec.binary),
        };
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VERDICT_HTTP_ADDR", http.to_string())
            .env("VERDICT_GRPC_ADDR", grpc.to_string())
            // Metrics are not scraped here; port 0 keeps parallel services apart.
            .env("VERDICT_ADMIN_ADDR", "127.0.0.1:0")
            .env("VERDICT_DATABASE_URL", &spec.database_url)
            .env("VERDICT_WEBHOOK_SECRET", SECRET)
            .env("VERDICT_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some((url, channel)) = &spec.redis {
            cmd.env("VERDICT_REDIS_URL", url)
                .env("VERDICT_REDIS_CHANNEL", channel);
        }
        let child = cmd.spawn().context("spawn verdict serve")?;
        let mut proc = Self { child, http, grpc };
        proc.wait_ready("/readyz").await?;
        Ok(proc)
    }

    /// Starts this binary as a peer (`http` or `grpc`) and waits until it accepts connections.
    pub(crate) async fn peer(kind: &str) -> anyhow::Result<Self> {
        let (http, grpc) = (free_addr()?, free_addr()?);
        let child = Command::new(std::env::current_exe()?)
            .args(["--peer", kind, &http.to_string(), &grpc.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("spawn a peer")?;
        let mut proc = Self { child, http, grpc };
        proc.wait_ready("/ready").await?;
        Ok(proc)
    }

    async fn wait_ready(&mut self, path: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("child exited before it was ready: {status}");
            }
            if crate::http_load::get_status(self.http, path).await == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("child not ready after 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 10 s.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
