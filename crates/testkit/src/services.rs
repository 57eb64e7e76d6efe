//! Reachability policy shared by the database and Redis fixtures.

/// Whether we run in CI, where a missing service is a failure rather than a skip.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Called when a service a test needs cannot be reached: panics in CI, warns loudly otherwise.
pub(crate) fn unreachable(service: &str, url: &str, error: &dyn std::fmt::Display) {
    let message = format!("{service} at {url} is unreachable ({error})");
    if in_ci() {
        panic!("{message}; CI=true, so this test fails instead of skipping");
    }
    eprintln!();
    eprintln!("!!! SKIPPING: {message}");
    eprintln!("!!! start it (see README, Development) to run this test");
    eprintln!();
}
