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
