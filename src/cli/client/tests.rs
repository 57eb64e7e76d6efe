use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Wrapper {
    #[command(flatten)]
    watch: WatchArgs,
}

fn parse(args: &[&str]) -> Result<WatchArgs, clap::Error> {
    Wrapper::try_parse_from(std::iter::once("watch").chain(args.iter().copied())).map(|w| w.watch)
}

#[test]
fn watch_all_takes_repeated_filters_and_from_now() {
    let args = parse(&[
        "--all",
        "--client-id",
        "user-1",
        "--client-id",
        "user-2",
        "--decision",
        "approved",
        "--decision",
        "DECISION_DENIED",
        "--from-now",
    ])
    .unwrap();
    assert_eq!(args.client_ids, ["user-1", "user-2"]);
    assert_eq!(args.decisions, [Decision::Approved, Decision::Denied]);
    assert!(args.from_now);
}

#[test]
fn decisions_are_spelled_as_users_type_them_and_unspecified_is_refused() {
    for (raw, decision) in [
        ("pending", Decision::Pending),
        ("Suspected", Decision::Suspected),
        ("CANCELLED", Decision::Cancelled),
        ("decision_expired", Decision::Expired),
    ] {
        assert_eq!(super::decision(raw).unwrap(), decision, "{raw}");
    }
    for bad in ["unspecified", "DECISION_UNSPECIFIED", "ok", ""] {
        assert!(super::decision(bad).is_err(), "{bad}");
    }
}

#[test]
fn feed_options_need_all_and_a_cursor_excludes_from_now() {
    for args in [
        &["scan-1", "--client-id", "user-1"][..],
        &["scan-1", "--decision", "approved"],
        &["scan-1", "--from-now"],
        &["--all", "--from-now", "--cursor", "v1.1"],
    ] {
        assert!(parse(args).is_err(), "{args:?}");
    }
}
