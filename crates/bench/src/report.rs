//! The report: one row per scenario and parameter set, a table on stdout and
//! `target/bench/report.json`.

use std::path::Path;

use serde::Serialize;

use crate::machine::{Fingerprint, Interference};
use crate::stats::median;

/// One measured figure, its peer's, and whether the run was verified correct.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) params: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
    pub(crate) peer: Option<String>,
    pub(crate) peer_value: Option<f64>,
    /// value ÷ peer_value (for times, lower is better; see `unit`).
    pub(crate) ratio: Option<f64>,
    pub(crate) p50_ms: Option<f64>,
    pub(crate) p99_ms: Option<f64>,
    pub(crate) cpu_us_per_op: Option<f64>,
    pub(crate) verified: bool,
}

impl Row {
    /// A row without a peer.
    pub(crate) fn new(name: &str, params: impl Into<String>, value: f64, unit: &str) -> Self {
        Self {
            name: name.to_owned(),
            params: params.into(),
            value,
            unit: unit.to_owned(),
            peer: None,
            peer_value: None,
            ratio: None,
            p50_ms: None,
            p99_ms: None,
            cpu_us_per_op: None,
            verified: false,
        }
    }

    /// Sets the peer and the ratio value ÷ peer.
    pub(crate) fn peer(mut self, peer: &str, peer_value: f64) -> Self {
        self.peer = Some(peer.to_owned());
        self.peer_value = Some(peer_value);
        self.ratio = (peer_value > 0.0).then(|| self.value / peer_value);
        self
    }

    /// The median of each figure over repeats of the same row; verified only if all were.
    /// The ratio is the median of the per-repeat ratios (each measured side by side).
    pub(crate) fn median_of(rows: Vec<Row>) -> Row {
        let first = rows[0].clone();
        let pick = |f: &dyn Fn(&Row) -> Option<f64>| median(rows.iter().filter_map(f).collect());
        Row {
            value: pick(&|r| Some(r.value)).unwrap_or(first.value),
            peer_value: pick(&|r| r.peer_value),
            ratio: pick(&|r| r.ratio),
            p50_ms: pick(&|r| r.p50_ms),
            p99_ms: pick(&|r| r.p99_ms),
            cpu_us_per_op: pick(&|r| r.cpu_us_per_op),
            verified: rows.iter().all(|r| r.verified),
            ..first
        }
    }
}

/// The whole report.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: Fingerprint,
    pub(crate) command: String,
    pub(crate) mode: String,
    /// Each row is the median of this many repeats.
    pub(crate) repeats: usize,
    pub(crate) started_at: String,
    pub(crate) duration_s: f64,
    pub(crate) interference: Interference,
    pub(crate) rows: Vec<Row>,
}

impl Report {
    /// Writes the JSON report.
    pub(crate) fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    /// The table, ratios first, as Markdown (readable on a terminal and pasteable into the README).
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        out.push_str(&format!(
            "machine: {} × {} cores, {} GiB, Linux {}, git {}\n",
            m.cpu_model, m.cores, m.memory_gib, m.kernel, m.git_revision
        ));
        let i = &self.interference;
        out.push_str(&format!(
            "mode: {}, median of {} repeat(s), {:.0} s; interference: {} ({} of {} samples dirty, max load1 {:.2}{})\n\n",
            self.mode,
            self.repeats,
            self.duration_s,
            if i.dirty { "DIRTY" } else { "clean" },
            i.dirty_samples,
            i.samples,
            i.max_load1,
            if i.foreign.is_empty() {
                String::new()
            } else {
                format!(", foreign: {:?}", i.foreign)
            }
        ));
        out.push_str(
            "| scenario | params | ratio | value | peer value | peer | p50 ms | p99 ms | CPU µs/op | verified |\n",
        );
        out.push_str("|---|---|---:|---:|---:|---|---:|---:|---:|---|\n");
        let num =
            |v: Option<f64>, digits: usize| v.map_or("—".to_owned(), |v| format!("{v:.digits$}"));
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} {} | {} | {} | {} | {} | {} | {} |\n",
                r.name,
                r.params,
                num(r.ratio, 2),
                fmt_value(r.value),
                r.unit,
                num(r.peer_value.map(round_sig), 1),
                r.peer.as_deref().unwrap_or("—"),
                num(r.p50_ms, 2),
                num(r.p99_ms, 2),
                num(r.cpu_us_per_op, 0),
                if r.verified { "yes" } else { "NO" },
            ));
        }
        out
    }
}

fn round_sig(v: f64) -> f64 {
    if v >= 100.0 {
        v.round()
    } else {
        (v * 10.0).round() / 10.0
    }
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
