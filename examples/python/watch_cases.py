"""Follow the decisions of your own clients, resuming where you stopped, the way an account
service would: list-then-watch on the first run, then resume from a bookmark kept in a file.

Generate the stubs once (from the repository root):
    python -m grpc_tools.protoc -I proto --python_out=examples/python \
        --grpc_python_out=examples/python proto/verdict/v1/case_service.proto
Then:
    python examples/python/watch_cases.py --client-id user-42 --final-only
    python examples/python/watch_cases.py --decision DECISION_DENIED --bookmark-file denied.cursor

How it never misses a change:
  * First run (no bookmark file): ListCases gives every case as it is now, and its first page a
    watch_cursor taken before the listing; WatchCases from that cursor brings every change made
    since. A change can come twice (in the listing and on the stream): keep the higher revision.
  * Every change and every heartbeat carries a cursor; after handling a change (or receiving a
    heartbeat's bookmark, which moves even while the filters match nothing) it is written to the
    bookmark file. Restarting resumes exactly after it: nothing skipped, nothing repeated.
  * UNAVAILABLE (a replica shutting down, a stream's maximum age): reconnect from the bookmark.
  * OUT_OF_RANGE (the bookmark is ahead of the feed: the database was restored from a backup):
    the bookmark means nothing there any more, so drop it and list again.
"""

import argparse
import os
import time

import grpc

from verdict.v1 import case_service_pb2 as pb
from verdict.v1 import case_service_pb2_grpc as rpc


class Bookmark:
    """The last cursor handled, kept in a file that is replaced atomically."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> str | None:
        try:
            with open(self.path, encoding="ascii") as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def save(self, cursor: str) -> None:
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="ascii") as f:
            f.write(cursor)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)

    def forget(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass


class Consumer:
    def __init__(self, cases: rpc.CaseServiceStub, args: argparse.Namespace) -> None:
        self.cases = cases
        self.args = args
        self.bookmark = Bookmark(args.bookmark_file)
        # The highest revision handled per case: a change seen in the listing and again on the
        # stream is handled once. (Kept in memory: a restart resumes after the bookmark, where
        # nothing repeats.)
        self.revisions: dict[str, int] = {}

    def wanted(self, case: pb.Case) -> bool:
        """The stream's filters, applied to the listing (ListCases filters one client only)."""
        return (
            (not self.args.client_id or case.client_id in self.args.client_id)
            and (not self.args.decision or pb.Decision.Name(case.decision) in self.args.decision)
            and (not self.args.final_only or case.final)
        )

    def handle(self, case: pb.Case, source: str) -> None:
        if self.revisions.get(case.scan_ref, 0) >= case.revision:
            return  # seen already (list-then-watch overlap)
        self.revisions[case.scan_ref] = case.revision
        # Your work goes here (update your accounts, notify someone, ...).
        print(
            f"{source}: {case.scan_ref} client={case.client_id} revision={case.revision} "
            f"{pb.Decision.Name(case.decision)} final={case.final}",
            flush=True,
        )

    def list_then_cursor(self) -> str:
        """Every wanted case as it is now, and the cursor to watch from afterwards."""
        watch_cursor = None
        # One listing per client (ListCases takes one), or one of everything.
        for client_id in self.args.client_id or [""]:
            page_token = ""
            while True:
                page = self.cases.ListCases(
                    pb.ListCasesRequest(client_id=client_id, page_size=500, page_token=page_token)
                )
                # The first page's cursor of the first listing: taken before anything was read.
                if watch_cursor is None:
                    watch_cursor = page.watch_cursor
                for case in page.cases:
                    if self.wanted(case):
                        self.handle(case, "listed")
                if not page.next_page_token:
                    break
                page_token = page.next_page_token
        return watch_cursor or ""

    def run(self) -> None:
        cursor = self.bookmark.load()
        if cursor is None:
            cursor = self.list_then_cursor()
            self.bookmark.save(cursor)
        print(f"watching from {cursor!r}", flush=True)
        while True:
            request = pb.WatchCasesRequest(
                cursor=cursor,
                client_ids=self.args.client_id,
                decisions=[pb.Decision.Value(d) for d in self.args.decision],
                final_only=self.args.final_only,
            )
            try:
                for message in self.cases.WatchCases(request):
                    if message.WhichOneof("event") == "change":
                        self.handle(message.change.case, "changed")
                        cursor = message.change.cursor
                    elif message.heartbeat.cursor:
                        cursor = message.heartbeat.cursor  # a bookmark
                    else:
                        continue
                    # Saved after handling: a crash in between handles the change again
                    # (at least once), never loses it.
                    self.bookmark.save(cursor)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    print(f"stream interrupted ({e.details()}); resuming from {cursor}", flush=True)
                    time.sleep(1)
                elif e.code() == grpc.StatusCode.OUT_OF_RANGE:
                    print(f"bookmark no longer valid ({e.details()}); listing again", flush=True)
                    self.bookmark.forget()
                    cursor = self.list_then_cursor()
                    self.bookmark.save(cursor)
                else:
                    raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--address", default="127.0.0.1:50051", help="Verdict's gRPC address")
    parser.add_argument("--client-id", action="append", default=[], help="repeatable")
    parser.add_argument(
        "--decision",
        action="append",
        default=[],
        choices=[name for name in pb.Decision.keys() if name != "DECISION_UNSPECIFIED"],
        help="repeatable",
    )
    parser.add_argument("--final-only", action="store_true")
    parser.add_argument("--bookmark-file", default="verdict-watch.cursor")
    args = parser.parse_args()
    with grpc.insecure_channel(args.address) as channel:
        Consumer(rpc.CaseServiceStub(channel), args).run()


if __name__ == "__main__":
    main()
