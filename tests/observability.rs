//! `deploy/observability/`: every alert rule and dashboard query parses as PromQL, and names
//! only metrics Verdict exports (as the Prometheus exposition spells them after one value was
//! recorded in every instrument, `_total`, `_bucket`, `_count` and `_sum` included); every
//! alert has a severity, a summary and a runbook entry in docs/operations.md.

use std::collections::BTreeSet;

use promql_parser::parser::{self, Expr};
use serde::Deserialize;
use verdict_telemetry::metrics::{metrics, render_prometheus};

const ALERTS: &str = include_str!("../deploy/observability/alerts.yaml");
const DASHBOARD: &str = include_str!("../deploy/observability/dashboard.json");
const OPERATIONS: &str = include_str!("../docs/operations.md");

/// The alerts the operator tooling issue asks for, by what they watch.
const REQUIRED_ALERTS: [&str; 8] = [
    "VerdictWebhook5xx",
    "VerdictWebhookSignatureFailures",
    "VerdictQuarantineGrowing",
    "VerdictPendingCasePastReconcileThreshold",
    "VerdictRedisSubscriptionDown",
    "VerdictResyncCatchingChanges",
    "VerdictStreamsNearLimit",
    "VerdictReconcileFailing",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for")]
    for_: String,
    labels: Labels,
    annotations: Annotations,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Labels {
    severity: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Annotations {
    summary: String,
    description: String,
    runbook_url: String,
}

/// Every metric name the service exports, as scraped.
fn exported() -> BTreeSet<String> {
    metrics().record_every_instrument();
    render_prometheus()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            line.split(['{', ' '])
                .next()
                .expect("a sample line starts with its name")
                .to_owned()
        })
        .collect()
}

/// The metric names a PromQL expression selects.
fn selected(expr: &Expr, names: &mut BTreeSet<String>) {
    match expr {
        Expr::VectorSelector(selector) => {
            names.extend(selector.name.clone());
            names.extend(
                selector
                    .matchers
                    .matchers
                    .iter()
                    .filter(|m| m.name == "__name__")
                    .map(|m| m.value.clone()),
            );
        }
        Expr::MatrixSelector(matrix) => {
            selected(&Expr::VectorSelector(matrix.vs.clone()), names);
        }
        Expr::Aggregate(aggregate) => {
            selected(&aggregate.expr, names);
            if let Some(param) = &aggregate.param {
                selected(param, names);
            }
        }
        Expr::Unary(unary) => selected(&unary.expr, names),
        Expr::Binary(binary) => {
            selected(&binary.lhs, names);
            selected(&binary.rhs, names);
        }
        Expr::Paren(paren) => selected(&paren.expr, names),
        Expr::Subquery(subquery) => selected(&subquery.expr, names),
        Expr::Call(call) => {
            for arg in &call.args.args {
                selected(arg, names);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Parses `expr` and checks every metric it names is exported; returns the names.
fn check_expression(what: &str, expr: &str, exported: &BTreeSet<String>) -> BTreeSet<String> {
    let parsed = parser::parse(expr).unwrap_or_else(|e| panic!("{what}: {e}\n{expr}"));
    let mut names = BTreeSet::new();
    selected(&parsed, &mut names);
    assert!(!names.is_empty(), "{what} names no metric: {expr}");
    for name in &names {
        assert!(
            exported.contains(name),
            "{what} names {name}, which Verdict does not export; exported: {exported:?}"
        );
    }
    names
}

/// The GitHub anchor of a markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_parses_names_exported_metrics_and_has_a_runbook() {
    let exported = exported();
    let rules: RuleFile = serde_yaml_ng::from_str(ALERTS).expect("a Prometheus rule file");
    let anchors: BTreeSet<String> = OPERATIONS
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(anchor)
        .collect();
    let mut alerts = BTreeSet::new();
    for group in &rules.groups {
        assert!(!group.name.is_empty());
        for rule in &group.rules {
            assert!(alerts.insert(rule.alert.clone()), "{} twice", rule.alert);
            check_expression(&rule.alert, &rule.expr, &exported);
            assert!(
                ["critical", "warning", "info"].contains(&rule.labels.severity.as_str()),
                "{}: severity {}",
                rule.alert,
                rule.labels.severity
            );
            assert!(
                !rule.annotations.summary.is_empty() && !rule.annotations.description.is_empty()
            );
            assert!(
                rule.for_.ends_with('m') || rule.for_.ends_with('s'),
                "{}: for {}",
                rule.alert,
                rule.for_
            );
            let runbook = rule
                .annotations
                .runbook_url
                .strip_prefix("docs/operations.md#")
                .unwrap_or_else(|| panic!("{}: runbook_url into docs/operations.md", rule.alert));
            assert_eq!(runbook, rule.alert.to_lowercase(), "{}", rule.alert);
            assert!(
                anchors.contains(runbook),
                "{}: no runbook heading `### {}` in docs/operations.md",
                rule.alert,
                rule.alert
            );
        }
    }
    for required in REQUIRED_ALERTS {
        assert!(alerts.contains(required), "{required} missing");
    }
}

#[test]
fn every_dashboard_query_parses_and_names_exported_metrics() {
    let exported = exported();
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("JSON");
    let mut named = BTreeSet::new();
    let mut titles = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("a title").to_owned();
        if panel["type"] == "row" {
            titles.push(title);
            continue;
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} queries nothing");
        for target in targets {
            // Grafana's own variable; any range stands in for it.
            let expr = target["expr"]
                .as_str()
                .expect("a PromQL target")
                .replace("$__rate_interval", "5m");
            named.extend(check_expression(&title, &expr, &exported));
        }
    }
    assert_eq!(
        titles,
        [
            "Ingest",
            "Decisions",
            "Streams",
            "Latency",
            "Reconciliation"
        ]
    );
    for covered in [
        "verdict_webhooks_total",
        "verdict_decisions_total",
        "verdict_watch_streams",
        "http_server_request_duration_seconds_bucket",
        "verdict_watch_delivery_duration_seconds_bucket",
        "verdict_reconcile_total",
        "verdict_oldest_pending_case_seconds",
    ] {
        assert!(named.contains(covered), "the dashboard shows no {covered}");
    }
}

/// The check itself: a name Verdict does not export is caught.
#[test]
fn a_metric_that_does_not_exist_is_caught() {
    let exported = exported();
    let caught = std::panic::catch_unwind(|| {
        check_expression("typo", "rate(verdict_webhook_total[5m]) > 0", &exported)
    });
    assert!(caught.is_err());
}
