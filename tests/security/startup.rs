//! Settings that would leave Verdict open, or that cannot be used, stop `verdict serve` at once
//! with a message that says what to do; `--help` shows no secret from the environment.

use std::io::Write as _;
use std::process::{Command, Output};

/// Runs `verdict serve` with `args` and `env` on top of a clean environment (every `VERDICT_*`
/// of the test's own environment removed) and an in-memory database.
fn serve(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_verdict"));
    command.arg("serve");
    for (key, _) in std::env::vars() {
        if key.starts_with("VERDICT_") {
            command.env_remove(key);
        }
    }
    command
        .env("VERDICT_DATABASE_URL", "sqlite::memory:")
        .env("VERDICT_WEBHOOK_SECRET", "k")
        .env("VERDICT_HTTP_ADDR", "127.0.0.1:0")
        .env("VERDICT_GRPC_ADDR", "127.0.0.1:0")
        .env("VERDICT_ADMIN_ADDR", "127.0.0.1:0")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run the verdict binary")
}

/// Asserts the start was refused with a message containing every one of `says`.
fn refused(output: &Output, says: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "it started: {stderr}");
    for word in says {
        assert!(stderr.contains(word), "{word:?} not in: {stderr}");
    }
    stderr
}

#[test]
fn grpc_on_the_network_without_tls_or_tokens_is_refused_as_insecure() {
    let output = serve(&["--grpc-addr", "0.0.0.0:0"], &[]);
    refused(
        &output,
        &[
            "insecure",
            "VERDICT_GRPC_TLS_CERT",
            "VERDICT_GRPC_TOKEN",
            "--grpc-insecure",
        ],
    );
}

#[test]
fn a_token_setting_that_yields_no_token_is_refused() {
    for blank in [",", " , ", ",,"] {
        let output = serve(&[], &[("VERDICT_GRPC_TOKEN", blank)]);
        refused(&output, &["VERDICT_GRPC_TOKEN", "holds no token"]);
    }
    let output = serve(
        &[],
        &[
            ("VERDICT_WEBHOOK_SECRET", ","),
            ("VERDICT_ALLOW_UNSIGNED", "true"),
        ],
    );
    refused(&output, &["VERDICT_WEBHOOK_SECRET", "holds no key"]);
}

#[test]
fn unreadable_tls_files_are_refused_by_name() {
    let output = serve(
        &[],
        &[
            ("VERDICT_GRPC_TLS_CERT", "/nonexistent/verdict/cert.pem"),
            ("VERDICT_GRPC_TLS_KEY", "/nonexistent/verdict/key.pem"),
        ],
    );
    refused(
        &output,
        &["VERDICT_GRPC_TLS_CERT", "/nonexistent/verdict/cert.pem"],
    );

    let output = serve(
        &[],
        &[("VERDICT_GRPC_TLS_CERT", "/nonexistent/verdict/cert.pem")],
    );
    refused(&output, &["VERDICT_GRPC_TLS_KEY", "set both"]);

    let garbage = tempfile::NamedTempFile::new().unwrap();
    let path = garbage.path().to_str().unwrap();
    let output = serve(
        &[],
        &[
            ("VERDICT_GRPC_TLS_CERT", path),
            ("VERDICT_GRPC_TLS_KEY", path),
        ],
    );
    refused(&output, &["TLS"]);
}

#[test]
fn unusable_tokens_files_are_refused() {
    let output = serve(
        &[],
        &[("VERDICT_GRPC_TOKENS_FILE", "/nonexistent/tokens.toml")],
    );
    refused(&output, &["tokens file", "/nonexistent/tokens.toml"]);

    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"[[token]]\nname = \"ui\"\nscopes = [\"cases:read\"]\ntoken = \"\"\n")
        .unwrap();
    let path = file.path().to_str().unwrap();
    let output = serve(&[], &[("VERDICT_GRPC_TOKENS_FILE", path)]);
    refused(&output, &["empty token"]);
}

#[test]
fn help_shows_no_secret_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["serve", "--help"])
        .env(
            "VERDICT_DATABASE_URL",
            "postgres://verdict:db-hunter2@db.internal/verdict",
        )
        .env(
            "VERDICT_REDIS_URL",
            "rediss://:redis-hunter2@cache.internal:6380",
        )
        .env("VERDICT_WEBHOOK_SECRET", "webhook-hunter2")
        .env("VERDICT_GRPC_TOKEN", "token-hunter2")
        .output()
        .expect("run verdict serve --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "VERDICT_DATABASE_URL",
        "VERDICT_REDIS_URL",
        "VERDICT_GRPC_TLS_CERT",
        "VERDICT_GRPC_TOKENS_FILE",
        "VERDICT_ADMIN_ADDR",
        "VERDICT_WEBHOOK_ALLOW_CIDRS",
    ] {
        assert!(help.contains(variable), "{variable} is documented");
    }
    assert!(!help.contains("hunter2"), "{help}");
}
