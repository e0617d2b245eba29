"""Many annotators on one pool at once: throughput, latency, and three counts that must stay zero.

Starts its own stack like `sieve up` (embedded Redis in a temp dir, `--workers` RQ workers, the API under
gunicorn with `--api-processes` gevent processes on a free port), registers one synthetic pool of
`--items` x `--features` and teaches 20 labels of three classes, so that a model and a ranking exist.
Then `--annotators` threads, each on one keep-alive connection of the stdlib's http.client (requests
alone costs ~2 ms of CPU per call on a 2-core machine), loop for `--seconds`:

    GET  /v1/pools/{id}/query?k=5&annotator=<name>     (leased to <name>, server's default lease)
    POST /v1/pools/{id}/teach                          (the true labels of the items it got)

No annotator starts a query after the deadline; a pair already under way is finished.

It prints requests and query+teach pairs per second, p50/p99 latency per endpoint, and three counts
that must be zero:

1. answers with a 5xx status (connection failures and other unexpected answers are shown too);
2. items handed out when they must not be: to a second annotator while an earlier lease on them was
   still live (its `expires_at` after the second answer arrived) and not ended by a teach of that item;
   or at all after a teach of that item was acknowledged (202) -- a handout that overlaps such a teach is
   attributed to the teach, since either order breaks a rule;
3. acknowledged labels missing from the label log: every (id, label) of every teach answered with a 202
   must appear in the stream `sieve:{<pool>}:log`, read directly from Redis at the end.

Because the client shares the machine's CPUs with the server, it also prints the client's own CPU share
(time.process_time over wall time), and the CPU every part of the stack used during the run.

Goal: at least 400 query+teach pairs per second with all three counts zero.

    pip install -e '.[bench]'
    python bench/annotators.py [--items 100000] [--seconds 60] [--annotators 50]
                               [--api-processes 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import numpy as np
import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _stack import Stack, build_pools, percentile, pool_arguments, report, run  # noqa: E402

from sieve.storage.keys import PoolKeys  # noqa: E402

K = 5
PAIRS_GOAL = 400.0
REQUEST_TIMEOUT = 60.0
"""Seconds one call may take before the annotator gives up on it (counted as a failed call)."""
BACKOFF_SECONDS = 0.05
"""Pause of an annotator after a failed call, so that a failing server is not hammered in a loop."""
BARE_FLASK_RPS = 3300
"""A bare Flask + Redis handler at 64 connections on the 2-core reference machine, for comparison."""


# -- one annotator ---------------------------------------------------------------------------------


@dataclass
class Log:
    """What one annotator saw; each thread writes only its own, merged after the run."""

    latencies: dict = field(default_factory=lambda: {"query": [], "teach": []})
    statuses: Counter = field(default_factory=Counter)
    """(endpoint, status) -> answers; status 0 = no answer (connection error or timeout)."""
    handouts: list = field(default_factory=list)
    """(ids, sent, received, lease expires_at or None) per query answer; times from time.time()."""
    teaches: list = field(default_factory=list)
    """(ids, labels, sent, received, status) per teach call."""
    versions: list = field(default_factory=list)
    """(labels_version, ranked_labels_version) per query answer: how far behind the ranking was."""
    pairs: int = 0
    short_answers: int = 0
    """Query answers with fewer than K items."""
    exhausted: bool = False


class Annotator(threading.Thread):
    def __init__(self, name: str, base_url: str, pool, deadline: list, start: threading.Barrier):
        super().__init__(name=name, daemon=True)
        address = urlsplit(base_url)
        self.host, self.port = address.hostname, address.port
        self.pool = pool
        self.deadline = deadline  # [monotonic deadline], set by the main thread when the barrier opens
        self.start_barrier = start
        self.query_path = f"/v1/pools/{pool.pool_id}/query?k={K}&annotator={quote(name)}"
        self.teach_path = f"/v1/pools/{pool.pool_id}/teach"
        self.log = Log()
        self.connection: http.client.HTTPConnection | None = None
        self.failure: BaseException | None = None

    def _call(self, endpoint: str, method: str, path: str, body: bytes | None = None):
        """(status, body, wall time sent, wall time received); status 0 when no answer came."""
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        sent = time.time()
        start = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=headers)
            answer = self.connection.getresponse()
            data = answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            status, data = 0, b""
        elapsed_ms = (time.perf_counter() - start) * 1000
        received = time.time()
        self.log.statuses[endpoint, status] += 1
        if status:
            self.log.latencies[endpoint].append(elapsed_ms)
        return status, data, sent, received

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.failure = error
        finally:
            if self.connection is not None:
                self.connection.close()

    def _run(self) -> None:
        y, log = self.pool.y, self.log
        self.start_barrier.wait()
        deadline = self.deadline[0]
        while time.monotonic() < deadline:
            status, data, sent, received = self._call("query", "GET", self.query_path)
            if status != 200:
                time.sleep(BACKOFF_SECONDS)
                continue
            answer = json.loads(data)
            ids = [item["id"] for item in answer["items"]]
            lease = answer.get("lease")
            log.handouts.append((ids, sent, received, lease["expires_at"] if lease else None))
            log.versions.append((answer["labels_version"], answer["ranked_labels_version"]))
            if len(ids) < K:
                log.short_answers += 1
            if not ids:
                log.exhausted = True  # nothing left to label
                return
            labels = [int(y[self.pool.row_of(i)]) for i in ids]
            body = json.dumps(
                {"labels": [{"id": i, "label": label} for i, label in zip(ids, labels)]}, separators=(",", ":")
            ).encode()
            status, _, sent, received = self._call("teach", "POST", self.teach_path, body)
            log.teaches.append((ids, labels, sent, received, status))
            if status == 202:
                log.pairs += 1
            else:
                time.sleep(BACKOFF_SECONDS)


# -- the checks ------------------------------------------------------------------------------------
def supplied_rate(outcome: Run) -> tuple[float, float]:
    """Pairs acknowledged per second while the pool still had a full batch for everyone, and that window
    in seconds: once the pool runs short, annotators stop and the rate would measure the pool's size."""
    logs = outcome.logs.values()
    short = [received for log in logs for ids, _, received, _ in log.handouts if len(ids) < K]
    end = min(short) if short else outcome.started_at + outcome.wall
    pairs = sum(1 for log in logs for *_, received, status in log.teaches if status == 202 and received <= end)
    window = max(end - outcome.started_at, 1e-9)
    return pairs / window, window


def handout_violations(logs: dict[str, Log], labeled_before: list[str]) -> tuple[int, int, list[str]]:
    """(handed to a second annotator under a live lease, handed out after being taught, examples).

    Per item, every handout is compared with every earlier event on it:
    - a teach of the item acknowledged with 202 and *sent* before this handout was received: the item
      may then already be labeled, and a labeled item must never be handed out again (if the server
      served this query first instead, it broke the teacher's lease: a violation either way);
    - another annotator's handout whose lease `expires_at` is after this handout was received, i.e.
      certainly still live when the server served it, and that no such teach ended.
    """
    handouts = defaultdict(list)  # item -> [(received, sent, annotator, expires_at)]
    taught = defaultdict(list)  # item -> [(sent, annotator)] of teach calls answered 202
    for item in labeled_before:
        taught[item].append((0.0, "the setup"))
    for name, log in logs.items():
        for ids, sent, received, expires in log.handouts:
            for item in ids:
                handouts[item].append((received, sent, name, expires))
        for ids, _, sent, _, status in log.teaches:
            if status == 202:
                for item in ids:
                    taught[item].append((sent, name))
    under_lease = after_teach = 0
    examples = []
    for item, events in handouts.items():
        events.sort()
        teach_times = sorted(taught.get(item, ()))
        for n, (received, _sent, name, _expires) in enumerate(events):
            teachers = [who for when, who in teach_times if when < received]
            if teachers:
                after_teach += 1
                if len(examples) < 5:
                    examples.append(f"{item}: handed to {name} at {received:.3f} after {teachers[0]} taught it")
                continue
            rivals = [
                other
                for _, _, other, other_expires in events[:n]
                if other != name and other_expires is not None and other_expires > received
            ]
            if rivals:
                under_lease += 1
                if len(examples) < 5:
                    examples.append(f"{item}: handed to {name} at {received:.3f} under {rivals[0]}'s live lease")
    return under_lease, after_teach, examples


def missing_from_log(redis_url: str, pool_id: str, logs: dict[str, Log]) -> tuple[int, int, int]:
    """(acknowledged (id, label) pairs, how many are not in the label log, log entries read)."""
    acknowledged = {
        (item, label)
        for log in logs.values()
        for ids, labels, _, _, status in log.teaches
        if status == 202
        for item, label in zip(ids, labels)
    }
    logged = set()
    entries = 0
    client = redis.Redis.from_url(redis_url)
    try:
        stream = PoolKeys(pool_id).log
        last = "-"
        while True:
            batch = client.xrange(stream, min=last, max="+", count=10_000)
            if last != "-":
                batch = batch[1:]  # the entry `last` itself was read by the previous batch
            if not batch:
                break
            for _entry_id, fields in batch:
                entries += 1
                ids = json.loads(fields[b"ids"])
                labels = json.loads(fields[b"labels"])
                logged.update(zip(ids, labels))
            last = batch[-1][0].decode()
    finally:
        client.close()
    return len(acknowledged), len(acknowledged - logged), entries


# -- where the CPU went ----------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of user + system) of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def cpu_by_part(stack: Stack) -> dict[str, float] | None:
    """CPU seconds so far of each part of the stack (a child together with whatever it forked)."""
    if not os.path.isdir("/proc"):
        return None
    parents, cpu = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                parents[int(entry)], cpu[int(entry)] = stat
    roots = {process.pid: name for name, process in stack.children}
    for server in stack.redis_servers:
        if server.process is not None:
            roots[server.process.pid] = "redis"
    totals = dict.fromkeys(roots.values(), 0.0)
    for pid, seconds in cpu.items():
        walk, seen = pid, 0
        while walk in parents and walk not in roots and seen < 10:
            walk, seen = parents[walk], seen + 1
        if walk in roots:
            totals[roots[walk]] += seconds
    return totals


def machine_busy() -> float | None:
    """CPU seconds every process on the machine has used since boot (all of /proc/stat's `cpu` line
    but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def commandstats(redis_url: str) -> dict[str, tuple[int, float]]:
    """Redis's INFO commandstats: command -> (calls, total microseconds)."""
    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"])) for name, v in stats.items()}


# -- one run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything one run measured, before any figure is derived."""

    logs: dict[str, Log]
    labeled_before: list[str]
    wall: float
    started_at: float
    """time.time() when the annotators started."""
    client_cpu: float
    cpu: dict[str, float] | None
    """CPU seconds per part of the stack during the run (plus the client and everything else)."""
    redis_commands: list[tuple[str, int, float]]
    """(command, calls, microseconds) during the run, most time first."""
    load: tuple[float, float]
    last_retrain_s: float | None
    acknowledged: int
    missing: int
    log_entries: int


def run_annotators(stack: Stack, pool, n_annotators: int, seconds: float) -> Run:
    """Lets n_annotators work on the pool for `seconds`, then reads the label log back from Redis."""
    start = threading.Barrier(n_annotators + 1)
    deadline = [0.0]
    annotators = [Annotator(f"annotator-{i:02d}", stack.base_url, pool, deadline, start) for i in range(n_annotators)]
    for annotator in annotators:
        annotator.start()
    cpu_before, stats_before, busy_before = cpu_by_part(stack), commandstats(stack.redis_url), machine_busy()
    load_before = os.getloadavg()[0]
    deadline[0] = time.monotonic() + seconds
    wall_start, client_cpu_start, started_at = time.perf_counter(), time.process_time(), time.time()
    start.wait()
    for annotator in annotators:
        annotator.join(seconds + 2 * REQUEST_TIMEOUT + 10)
    wall = time.perf_counter() - wall_start
    client_cpu = time.process_time() - client_cpu_start
    busy_after, cpu_after, stats_after = machine_busy(), cpu_by_part(stack), commandstats(stack.redis_url)
    load_after = os.getloadavg()[0]
    stuck = [a.name for a in annotators if a.is_alive()]
    failures = [(a.name, a.failure) for a in annotators if a.failure is not None]
    if stuck or failures:
        raise RuntimeError(f"annotators stuck: {stuck}; failed: {failures}")

    cpu = None
    if cpu_before is not None and cpu_after is not None:
        cpu = {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0) for name in cpu_after}
        cpu["client (this script)"] = client_cpu
        if busy_before is not None and busy_after is not None:
            cpu["everything else"] = max(0.0, busy_after - busy_before - sum(cpu.values()))
    redis_commands = sorted(
        (
            (name, calls - stats_before.get(name, (0, 0.0))[0], usec - stats_before.get(name, (0, 0.0))[1])
            for name, (calls, usec) in stats_after.items()
        ),
        key=lambda row: -row[2],
    )
    logs = {a.name: a.log for a in annotators}
    status = stack.client(timeout=300).status(pool.pool_id)
    acknowledged, missing, log_entries = missing_from_log(stack.redis_url, pool.pool_id, logs)
    return Run(
        logs=logs,
        labeled_before=[pool.ids[r] for r in pool.labeled],
        wall=wall,
        started_at=started_at,
        client_cpu=client_cpu,
        cpu=cpu,
        redis_commands=redis_commands,
        load=(load_before, load_after),
        last_retrain_s=status["retrain"]["last_duration_s"],
        acknowledged=acknowledged,
        missing=missing,
        log_entries=log_entries,
    )


# -- main ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    pool_arguments(parser, single_size=100_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the annotators work (default 60)")
    parser.add_argument("--annotators", type=int, default=50, help="simulated annotators (default 50)")
    parser.add_argument("--api-processes", type=int, default=2, help="gunicorn processes (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes (default 2)")
    args = parser.parse_args(argv)
    for name in ("seconds", "annotators", "api_processes", "workers"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")

    with Stack(api_processes=args.api_processes, workers=args.workers) as stack:
        ((_, pool),) = build_pools(stack.client(timeout=300), [args.items], args.features)
        outcome = run_annotators(stack, pool, args.annotators, args.seconds)
    return print_report(outcome, args)


def print_report(outcome: Run, args) -> int:
    """Prints the figures, the counts and the verdict; 0 if the goal is met."""
    logs, wall, client_cpu = outcome.logs, outcome.wall, outcome.client_cpu
    statuses = Counter()
    for log in logs.values():
        statuses.update(log.statuses)
    latencies = {
        endpoint: np.concatenate([np.asarray(log.latencies[endpoint]) for log in logs.values()])
        for endpoint in ("query", "teach")
    }
    requests_total = sum(statuses.values())
    pairs = sum(log.pairs for log in logs.values())
    server_errors = sum(n for (_, status), n in statuses.items() if status >= 500)
    no_answer = sum(n for (_, status), n in statuses.items() if status == 0)
    other = sum(
        n
        for (endpoint, status), n in statuses.items()
        if 0 < status < 500 and status != {"query": 200, "teach": 202}[endpoint]
    )
    under_lease, after_teach, examples = handout_violations(logs, outcome.labeled_before)
    handed = sum(len(ids) for log in logs.values() for ids, *_ in log.handouts)
    short = sum(log.short_answers for log in logs.values())
    exhausted = sum(log.exhausted for log in logs.values())
    rankings_seen = len({r for log in logs.values() for _, r in log.versions})
    lag = np.asarray([lv - rlv for log in logs.values() for lv, rlv in log.versions], dtype=np.float64)

    print()
    print(
        f"{args.annotators} annotators x (GET query?k={K}&annotator=<name> -> POST teach of those {K}) for "
        f"{args.seconds:g} s on a pool of {args.items:,} x {args.features}, 3 classes; API {args.api_processes} "
        f"gevent processes, {args.workers} RQ workers, embedded Redis; "
        f"{os.cpu_count()} CPUs, load average {outcome.load[0]:.2f} before and {outcome.load[1]:.2f} after"
    )
    print(f"measured wall time {wall:.2f} s (the deadline, plus the pairs under way at it)")
    rate, window = supplied_rate(outcome)
    if window < wall:
        print(
            f"the pool ran short of unlabeled items after {window:.2f} s: the pair rate counts the pairs "
            "acknowledged until then, when every annotator still got a full batch"
        )
    print()
    header = f"{'figure':<56} | {'value':>12}"
    print(header)
    print("-" * len(header))
    rows = [
        ("requests per second (query + teach, every answer)", f"{requests_total / wall:,.1f}"),
        ("query+teach pairs per second (teach answered 202)", f"{rate:,.1f}"),
        ("pairs completed", f"{pairs:,}"),
    ]
    if outcome.cpu is not None:
        # What the stack and this client spent, whatever else the machine ran: comparable across runs on a
        # busy machine; times the CPU count, roughly what an otherwise idle machine could sustain.
        own = sum(seconds for name, seconds in outcome.cpu.items() if name != "everything else")
        rows.append(("pairs per CPU-second of stack + client", f"{pairs / max(own, 1e-9):,.1f}"))
    rows += [
        ("items handed out / labels acknowledged", f"{handed:,} / {outcome.acknowledged:,}"),
    ]
    for endpoint in ("query", "teach"):
        values = latencies[endpoint]
        if len(values):
            rows.append(
                (
                    f"{endpoint} latency p50 / p99 / max (ms)",
                    f"{percentile(values, 50):.1f} / {percentile(values, 99):.1f} / {values.max():.0f}",
                )
            )
    rows += [
        ("client CPU share (process_time / wall, of one CPU)", f"{100 * client_cpu / wall:.0f} %"),
        ("client CPU per request (ms)", f"{1000 * client_cpu / max(requests_total, 1):.3f}"),
        (
            "ranking behind, in teach calls, at query: median / max",
            f"{np.median(lag):.0f} / {lag.max():.0f}" if len(lag) else "-",
        ),
        ("distinct rankings seen by queries (retrains published)", f"{rankings_seen}"),
        ("last retrain duration (s)", f"{outcome.last_retrain_s or float('nan'):.2f}"),
        ("answers with < 5 items / annotators out of items", f"{short} / {exhausted}"),
        ("no answer (connection error, timeout)", f"{no_answer}"),
        ("other unexpected answers (4xx)", f"{other}"),
    ]
    for name, value in rows:
        print(f"{name:<56} | {value:>12}")
    print("-" * len(header))
    counts = [
        ("(1) 5xx answers", server_errors),
        ("(2a) items handed to a 2nd annotator under a live lease", under_lease),
        ("(2b) items handed out again after a 202 teach of them", after_teach),
        ("(3) acknowledged labels missing from the label log", outcome.missing),
    ]
    for name, value in counts:
        print(f"{name:<56} | {value:>12,}")
    status_text = ", ".join(f"{e} {s or 'no answer'}: {n:,}" for (e, s), n in sorted(statuses.items()))
    print(f"(status counts: {status_text}; label log entries read: {outcome.log_entries:,})")
    for example in examples:
        print(f"  e.g. {example}")

    if outcome.cpu is not None:
        print()
        print(f"CPU used during the run, in CPU-seconds per wall second (this machine has {os.cpu_count()}):")
        for name, seconds in outcome.cpu.items():
            print(f"  {name:<22} {seconds / wall:>5.2f}")
        print(f"  {'total':<22} {sum(outcome.cpu.values()) / wall:>5.2f}")
    print(
        "Redis time by command during the run (INFO commandstats, Redis's own clock; a script's inner calls "
        "count twice):"
    )
    for name, calls, usec in outcome.redis_commands[:6]:
        print(f"  {name:<12} {calls:>9,} calls  {usec / 1e6 / wall:>5.2f} s/s  {usec / max(calls, 1):>8.1f} us/call")

    print()
    verdicts = [(f"query+teach pairs per second = {rate:,.1f} >= {PAIRS_GOAL:g}", rate >= PAIRS_GOAL)]
    verdicts += [(f"{name.split(') ', 1)[1]} = {value}", value == 0) for name, value in counts]
    return report(
        verdicts,
        (
            f"(reference: a bare Flask + Redis handler serves about {BARE_FLASK_RPS:,} "
            f"requests/s at 64 connections on this machine; here {requests_total / wall:,.0f} "
            "requests/s)",
        ),
    )


if __name__ == "__main__":
    run(main)
