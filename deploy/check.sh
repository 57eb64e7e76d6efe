#!/usr/bin/env bash
# Offline checks of deploy/: renders the kustomize overlays and lints the YAML and the
# Dockerfile with whatever tools are installed. Needs no cluster and no Docker engine.
#
#   deploy/check.sh            # from anywhere; exits non-zero on any failure
#
# kubectl  -> `kubectl kustomize` of base, overlays/dev, overlays/prod (failure = exit 1)
# yamllint -> deploy/.yamllint.yaml (relaxed, 120 columns)            (errors = exit 1)
# kubernetes-validate (pip), hadolint -> run too when on PATH          (errors = exit 1)
# python3 -> deploy/observability/dashboard.json parses; promtool -> the alert rules (if present)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.." || exit 2

failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }
skip() { echo "skip: $*"; }

render_dir="$(mktemp -d)"
trap 'rm -rf "$render_dir"' EXIT

if command -v kubectl >/dev/null 2>&1; then
  for target in base overlays/dev overlays/prod; do
    out="$render_dir/${target//\//-}.yaml"
    if kubectl kustomize "deploy/k8s/$target" >"$out" 2>"$out.err"; then
      kinds="$(grep -E '^kind: ' "$out" | awk '{print $2}' | sort | tr '\n' ' ')"
      echo "ok:   kubectl kustomize deploy/k8s/$target -> $kinds"
      # Secrets are created out of band; a rendered Secret means one slipped into a kustomization.
      if grep -qE '^kind: Secret$' "$out"; then
        fail "deploy/k8s/$target renders a Secret; keep secrets out of the kustomizations"
      fi
    else
      cat "$out.err" >&2
      fail "kubectl kustomize deploy/k8s/$target"
    fi
  done
  if command -v kubernetes-validate >/dev/null 2>&1; then
    if kubernetes-validate --strict --quiet "$render_dir"/overlays-*.yaml; then
      echo "ok:   kubernetes-validate --strict (rendered overlays)"
    else
      fail "kubernetes-validate"
    fi
  else
    skip "kubernetes-validate not installed (pip install kubernetes-validate)"
  fi
else
  skip "kubectl not installed: overlays not rendered"
fi

if command -v yamllint >/dev/null 2>&1; then
  if yamllint -c deploy/.yamllint.yaml deploy; then
    echo "ok:   yamllint deploy"
  else
    fail "yamllint deploy"
  fi
else
  skip "yamllint not installed (apt-get install -y yamllint)"
fi

# deploy/observability: the rules' PromQL and the dashboard's queries are checked against the
# metrics Verdict exports by `cargo test --test observability`; here only their syntax.
if command -v python3 >/dev/null 2>&1; then
  if python3 -m json.tool deploy/observability/dashboard.json >/dev/null; then
    echo "ok:   deploy/observability/dashboard.json is JSON"
  else
    fail "deploy/observability/dashboard.json is not JSON"
  fi
else
  skip "python3 not installed: dashboard JSON not parsed"
fi
if command -v promtool >/dev/null 2>&1; then
  if promtool check rules deploy/observability/alerts.yaml; then
    echo "ok:   promtool check rules deploy/observability/alerts.yaml"
  else
    fail "promtool check rules"
  fi
else
  skip "promtool not installed (the alert rules are parsed by the Rust test instead)"
fi

if command -v hadolint >/dev/null 2>&1; then
  if hadolint deploy/Dockerfile; then
    echo "ok:   hadolint deploy/Dockerfile"
  else
    fail "hadolint deploy/Dockerfile"
  fi
else
  skip "hadolint not installed"
fi

exit "$failed"
