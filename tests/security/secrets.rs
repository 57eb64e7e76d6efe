//! The SQLite file, its WAL and shared-memory files are readable by their owner only.

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_are_created_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;

    use verdict_testkit::{Backend, TestApp};

    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    // A write, so the WAL and shared-memory files exist.
    super::new_case(&app).await;
    let url = app.database().url();
    let path = url
        .strip_prefix("sqlite://")
        .and_then(|rest| rest.split('?').next())
        .expect("a sqlite file URL");
    for file in [
        path.to_owned(),
        format!("{path}-wal"),
        format!("{path}-shm"),
    ] {
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}

/// `verdict serve` with these variables (and nothing else from the test's environment), debug
/// logs on.
fn serve(env: &[(&str, &str)]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "debug")
        .env("VERDICT_WEBHOOK_SECRET", "k")
        .env("VERDICT_HTTP_ADDR", "127.0.0.1:0")
        .env("VERDICT_GRPC_ADDR", "127.0.0.1:0")
        .env("VERDICT_ADMIN_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied());
    command
}

#[test]
fn a_database_password_stays_out_of_logs_and_errors() {
    // Nothing listens on port 1: the start fails after the pool's timeout.
    let output = serve(&[(
        "VERDICT_DATABASE_URL",
        "postgres://verdict:db-hunter2@127.0.0.1:1/verdict",
    )])
    .output()
    .expect("run verdict serve");
    assert!(!output.status.success());
    let all = [output.stdout, output.stderr].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("could not open the database"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn a_redis_password_stays_out_of_logs() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let mut child = serve(&[
        ("VERDICT_DATABASE_URL", "sqlite::memory:"),
        ("VERDICT_REDIS_URL", "redis://:redis-hunter2@127.0.0.1:1"),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("start verdict serve");
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let failed = line.contains("redis subscription failed");
        seen.push(line);
        if failed {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = seen.join("\n");
    assert!(text.contains("redis subscription failed"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
