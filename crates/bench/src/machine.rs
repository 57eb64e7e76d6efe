//! The machine: its fingerprint, per-process CPU and memory from `/proc`, and the interference
//! sampler that marks a run dirty when foreign processes compete for the CPU.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` times (100 on every Linux we run on).
const TICKS_PER_SECOND: u64 = 100;

/// What the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Fingerprint {
    pub(crate) cpu_model: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
    pub(crate) memory_gib: f64,
    pub(crate) git_revision: String,
}

impl Fingerprint {
    /// Reads `/proc` and asks git for the revision (`-dirty` when the tree has changes).
    pub(crate) fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .unwrap_or_default();
        Self {
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel,
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            git_revision: git_revision(),
        }
    }
}

fn git_revision() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(rev) = run(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    match run(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if !s.is_empty() => format!("{rev}-dirty"),
        _ => rev,
    }
}

/// CPU time (user + system) a process has used so far, in microseconds.
pub(crate) fn cpu_us(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_ticks(&s))
        .map_or(0, |t| t * 1_000_000 / TICKS_PER_SECOND)
}

/// CPU time a process uses between `from` and `until` (the measurement window of a load run),
/// in microseconds; waits until `until`.
pub(crate) async fn cpu_us_during(pid: u32, from: Instant, until: Instant) -> u64 {
    tokio::time::sleep_until(from.into()).await;
    let start = cpu_us(pid);
    tokio::time::sleep_until(until.into()).await;
    cpu_us(pid).saturating_sub(start)
}

/// Resident memory of a process in bytes.
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// utime + stime from a `/proc/<pid>/stat` line (fields 14 and 15, after the `(comm)`).
fn stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn stat_comm_ppid(stat: &str) -> Option<(String, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let ppid = stat[close + 2..].split(' ').nth(1)?.parse().ok()?;
    Some((comm, ppid))
}

/// What the sampler saw.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Interference {
    /// True when any sample saw a foreign process use ≥ 20 % of a core.
    pub(crate) dirty: bool,
    pub(crate) samples: u64,
    pub(crate) dirty_samples: u64,
    pub(crate) max_load1: f64,
    /// Names of the foreign processes seen using the CPU, with their dirty sample counts.
    pub(crate) foreign: HashMap<String, u64>,
}

/// Samples every 0.5 s until dropped.
#[derive(Debug)]
pub(crate) struct Sampler {
    state: Arc<Mutex<Interference>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Processes that are part of the measurement, not interference: our own tree and the
/// database and Redis servers the scenarios use.
fn ours(pid: u32, comm: &str, ppid: u32, me: u32, tree: &HashSet<u32>) -> bool {
    pid == me
        || ppid == me
        || tree.contains(&ppid)
        || comm == "postgres"
        || comm.starts_with("redis-server")
        || comm.starts_with("verdict")
}

impl Sampler {
    /// Starts sampling on a plain thread (the runtime is busy with the load).
    pub(crate) fn start() -> Self {
        let state = Arc::new(Mutex::new(Interference::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let me = std::process::id();
            let mut last: HashMap<u32, u64> = HashMap::new();
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                let mut now: HashMap<u32, u64> = HashMap::new();
                let mut tree = HashSet::new();
                let mut foreign = Vec::new();
                let mut procs = Vec::new();
                for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                    let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                        continue;
                    };
                    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                        continue;
                    };
                    let (Some(ticks), Some((comm, ppid))) =
                        (stat_ticks(&stat), stat_comm_ppid(&stat))
                    else {
                        continue;
                    };
                    if ppid == me {
                        tree.insert(pid);
                    }
                    now.insert(pid, ticks);
                    procs.push((pid, comm, ppid, ticks));
                }
                for (pid, comm, ppid, ticks) in procs {
                    let used = ticks.saturating_sub(last.get(&pid).copied().unwrap_or(ticks));
                    // 10 ticks in 0.5 s = 20 % of a core.
                    if used >= 10 && !ours(pid, &comm, ppid, me, &tree) {
                        foreign.push(comm);
                    }
                }
                let load1 = std::fs::read_to_string("/proc/loadavg")
                    .ok()
                    .and_then(|l| l.split(' ').next().and_then(|v| v.parse().ok()))
                    .unwrap_or(0.0);
                if let Ok(mut i) = s.lock() {
                    i.samples += 1;
                    i.max_load1 = f64::max(i.max_load1, load1);
                    if !last.is_empty() && !foreign.is_empty() {
                        i.dirty = true;
                        i.dirty_samples += 1;
                        for comm in foreign {
                            *i.foreign.entry(comm).or_default() += 1;
                        }
                    }
                }
                last = now;
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Self { state, stop }
    }

    /// What was seen so far.
    pub(crate) fn snapshot(&self) -> Interference {
        self.state.lock().map(|i| i.clone()).unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name_parses() {
        let line = "42 (tokio rt worker) S 1 42 42 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 1 0 1 1 1";
        assert_eq!(stat_ticks(line), Some(10));
        assert_eq!(
            stat_comm_ppid(line),
            Some(("tokio rt worker".to_owned(), 1))
        );
    }
}
