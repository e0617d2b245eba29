"""The `sieve` command: `up` runs everything on one machine; `api` and `worker` run one process each;
`simulate` replays active learning on a labeled data set; `load` streams a file of items into a pool."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from sieve.limits import MAX_ITEMS_PER_CALL
from sieve.load import FORMAT_NAMES
from sieve.settings import Settings


@click.group()
@click.version_option(package_name="sieve-al", prog_name="sieve")
def main():
    """Sieve: tells a labeling team which items to label next."""


def _fail(message: str) -> click.ClickException:
    """A start-up error as click shows it: one line on stderr (`Error: ...`), exit status 1, no traceback."""
    return click.ClickException(" ".join(message.split()))


def _settings(*, secret: bool = False, redis: bool = False) -> Settings:
    """The settings, or a one-line error naming the variable at fault; `secret`: a signing key is needed;
    `redis`: REDIS_URL is needed (only `sieve up` starts a Redis of its own)."""
    try:
        settings = Settings.from_env()
        if secret:
            settings.require_secret_key()
    except ValueError as error:
        raise _fail(str(error)) from None
    if redis and not settings.redis_url:
        raise _fail(
            "REDIS_URL is not set: set it to the Redis every API and worker process shares "
            "(e.g. redis://localhost:6379/0), or run `sieve up`, which starts one of its own"
        )
    return settings


def _redis(url: str, where: str = "REDIS_URL"):
    """A client of the Redis that `where` names, which answered a PING; else a one-line error."""
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(url)
    except ValueError as error:
        raise _fail(f"{where} is not a Redis URL: {error}") from None
    try:
        client.ping()
    except RedisError as error:
        raise _fail(f"cannot use the Redis named by {where}: {error} (start that Redis, or correct the URL)") from None
    return client


def _check_cors(settings: Settings, keys_required: bool) -> None:
    """`*` lets any web page call the API from its visitors' browsers: only an API key then keeps it out."""
    if settings.cors_origins == ("*",) and not keys_required:
        raise _fail(
            "SIEVE_CORS_ORIGINS is '*' but no API key exists (auth is off), so every web page a visitor of "
            "this API opens could use every pool: create a key (`sieve keys create --tenant NAME`), or list "
            "the front ends' origins in SIEVE_CORS_ORIGINS"
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the API listens on.")
@click.option("--port", default=8000, show_default=True, help="Port the API listens on.")
@click.option("--workers", default=2, show_default=True, help="RQ worker processes to start.")
@click.option("--api-processes", default=2, show_default=True, help="gunicorn worker processes.")
def up(host, port, workers, api_processes):
    """Start the whole service: Redis (embedded unless REDIS_URL is set), workers and the API."""
    from sieve.datafolder import DataFolder, FolderInUse
    from sieve.supervisor import Supervisor

    settings = _settings()
    if settings.secret_key:
        _settings(secret=True)  # given, it must be long enough; unset, the data folder keeps one
    env = dict(os.environ)
    folder = DataFolder(settings.data_dir)
    supervisor = Supervisor(say=click.echo)
    redis_server = None
    stopping = []

    def stop(*_):
        stopping.append(True)

    if not settings.redis_url:
        try:
            # Two Redis servers appending to one AOF would corrupt it: one `sieve up` per folder.
            lock = folder.lock()
        except FolderInUse as error:
            raise _fail(str(error)) from None
        except OSError as error:
            raise _fail(
                f"cannot use the data folder {folder.path}: {error.strerror}; "
                "set SIEVE_DATA_DIR to a folder you can write"
            ) from None
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not settings.redis_url:
            from sieve.embedded import EmbeddedRedis

            redis_server = EmbeddedRedis(
                folder.path / "redis", password=folder.token("redis.password"), pass_fds=(lock,)
            )

            def start_redis():
                process = redis_server.start().process
                folder.note_holder(f"`sieve up` (pid {os.getpid()}) and its Redis (pid {process.pid})")
                return process

            try:
                supervisor.add("redis", start_redis)
            except RuntimeError as error:
                raise click.ClickException(str(error)) from None
            env["REDIS_URL"] = redis_server.url
            folder.write_private(_embedded_url_file(folder.path).name, redis_server.url)
            click.echo(
                f"embedded Redis on {redis_server.address} (its password is in "
                f"{folder.path / 'redis.password'}), AOF in {redis_server.data_dir}"
            )
        keys_required = _api_keys(env["REDIS_URL"]).required()
        _check_cors(settings, keys_required)
        if not keys_required:
            if host not in ("127.0.0.1", "localhost", "::1"):
                click.echo(
                    f"no API keys exist, so auth is off: listening on 127.0.0.1, not {host} "
                    "(create one with `sieve keys create --tenant NAME`)"
                )
            else:
                click.echo("no API keys exist, so auth is off; `sieve keys create --tenant NAME` turns it on")
            host = "127.0.0.1"
        _require_port(host, port)
        if not settings.secret_key:
            # The embedded setup's signing key: made once, kept beside the data it protects, mode 0600.
            env["SIEVE_SECRET_KEY"] = folder.token("secret.key")
        for n in range(1, workers + 1):
            supervisor.add(
                f"worker {n}", lambda: subprocess.Popen([sys.executable, "-m", "sieve.cli", "worker"], env=env)
            )
        api = supervisor.add(
            "api",
            lambda: subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sieve.cli",
                    "api",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--processes",
                    str(api_processes),
                ],
                env=env,
            ),
        )
        if not _wait_for_api(api.process, host, port, stopping):
            if stopping:
                return
            raise click.ClickException(
                f"the API did not start (it exited with {api.process.returncode}; its messages are above)"
            )
        click.echo(f"Sieve on http://{host}:{port} with {workers} workers; Ctrl-C stops it")
        while not stopping:
            time.sleep(0.5)
            if not stopping:
                # A supervisor's job: whatever killed a process, the service keeps its shape.
                supervisor.check()
    finally:
        supervisor.stop([program for program in supervisor.programs if program.name != "redis"])
        if redis_server:
            redis_server.stop()  # last: the others flush what they were writing first
        folder.unlock()
        click.echo("Sieve stopped")


def _require_port(host: str, port: int) -> None:
    if not _can_listen(host, port):
        raise _fail(f"port {port} on {host} is in use: stop what holds it, or choose another with --port")


def _can_listen(host: str, port: int) -> bool:
    """Whether the API could bind host:port now (as gunicorn does, with SO_REUSEADDR)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        return True  # gunicorn says what is wrong with the address
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def _wait_for_api(process: subprocess.Popen, host: str, port: int, stopping: list) -> bool:
    """Waits until the API answers /healthz; False if it exited first (or `sieve up` is stopping)."""
    import urllib.error
    import urllib.request

    local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    url = f"http://{f'[{local}]' if ':' in local else local}:{port}/healthz"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no HTTP proxy of the shell's
    while not stopping and process.poll() is None:
        try:
            with direct.open(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            time.sleep(0.2)
    return False


def _embedded_url_file(data_dir: Path) -> Path:
    """Where `sieve up` notes its embedded Redis's address and password (mode 0600), for `sieve keys`."""
    return data_dir / "redis.url"


def _api_keys(redis_url: str | None = None):
    from sieve.storage.api_keys import ApiKeys

    settings = _settings()
    url = redis_url or settings.redis_url
    noted = _embedded_url_file(Path(settings.data_dir))
    where = "REDIS_URL"
    if not url and noted.exists():
        url, where = noted.read_text().strip(), f"{noted} (is `sieve up` running with this data folder?)"
    if not url:
        raise _fail("set REDIS_URL, or run `sieve up` first from this folder")
    return ApiKeys(_redis(url, where))


@main.group()
def keys():
    """Manage API keys (`Authorization: Bearer <key>`); the first one created turns auth on."""


@keys.command("create")
@click.option("--tenant", required=True, help="Who the key acts for: it sees only this tenant's pools.")
@click.option("--name", default="", help="A note to tell keys apart.")
@click.option(
    "--adopt-unowned",
    is_flag=True,
    help="Give this tenant every pool made while auth was off, which no key reaches otherwise.",
)
def keys_create(tenant, name, adopt_unowned):
    """Create a key; it is shown once, and Redis keeps only its digest."""
    if adopt_unowned and not tenant:
        raise click.ClickException("--adopt-unowned needs a non-empty --tenant")
    api_keys = _api_keys()
    key, token = api_keys.create(tenant, name)
    click.echo(f"key {key.key_id} for tenant {tenant!r}: {token}")
    if adopt_unowned:
        from sieve.storage.scripts import Scripts
        from sieve.storage.tenant_index import adopt_unowned as adopt

        click.echo(
            f"adopted {adopt(api_keys.redis, Scripts.register(api_keys.redis), tenant)} pools "
            f"made while auth was off into tenant {tenant!r}"
        )


@keys.command("list")
def keys_list():
    """List keys (their ids and tenants, never the secrets)."""
    listed = _api_keys().list()
    if not listed:
        click.echo("no API keys: auth is off; `sieve keys create --tenant NAME` turns it on")
    for key in listed:
        click.echo(f"{key.key_id}  tenant={key.tenant}  name={key.name}  created={time.ctime(key.created_at)}")


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id):
    """Revoke a key at once. Revoking every key keeps auth on: nobody gets in without a new one."""
    if not _api_keys().revoke(key_id):
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"revoked {key_id}")


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the API listens on; one that is not loopback needs API keys to exist, or --allow-anonymous.",
)
@click.option("--port", default=8000, show_default=True)
@click.option("--processes", default=2, show_default=True, help="gunicorn worker processes.")
@click.option(
    "--connections",
    default=1000,
    show_default=True,
    help="Open connections per process (each a greenlet: idle, slow or waiting clients hold no thread).",
)
@click.option(
    "--allow-anonymous",
    is_flag=True,
    help="Listen on a non-loopback address even while no API key "
    "exists, so that anyone who reaches it may use every pool (e.g. in a container whose port only "
    "the host's loopback publishes).",
)
def api(host, port, processes, connections, allow_anonymous):
    """Run the HTTP API under gunicorn with gevent workers (one container's worth)."""
    # First, before redis-py, ssl, time or threading are imported: everything the API does, from reading a
    # request to waiting on Redis or sleeping in a long poll, then yields to the other connections.
    from gevent import monkey

    monkey.patch_all()
    # Everything that would stop the API is checked here, before gunicorn forks: a missing key would
    # otherwise surface as a 500 on the first /predict, an unreachable Redis as 503s.
    settings = _settings(secret=True, redis=True)
    keys_required = _api_keys(settings.redis_url).required()
    _check_cors(settings, keys_required)
    if not allow_anonymous and not _loopback(host) and not keys_required:
        raise _fail(
            f"no API keys exist, so auth is off: refusing to listen on {host}, where anyone who reaches it "
            "could read and change every pool. Create a key (`sieve keys create --tenant NAME`), listen on "
            "127.0.0.1, or pass --allow-anonymous if something else keeps strangers out."
        )
    _require_port(host, port)
    made = _metrics_directory()  # before prometheus-client is imported: it picks its mode at import
    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger
    from prometheus_client import multiprocess

    from sieve import logs
    from sieve.service.app import create_app, request_context
    from sieve.service.server import ProblemWorker

    class JsonLogger(Logger):
        """gunicorn's own lines (start, stop, worker deaths) as JSON too."""

        def setup(self, cfg):
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(logs.formatter("api"))

    class Server(BaseApplication):
        def load_config(self):
            for name, value in {
                "bind": f"{host}:{port}",
                "workers": processes,
                "worker_class": ProblemWorker,
                "worker_connections": connections,
                # Also how long a request head may take to arrive (see sieve/server.py).
                "keepalive": 30,
                "timeout": 120,
                "accesslog": None,
                "graceful_timeout": 10,
                "logger_class": JsonLogger,
                # gunicorn's control socket (one path in the home folder for every
                # instance) is not used: nothing to listen for.
                "control_socket_disable": True,
                # A dead process's request counts stay summed; its live gauges go.
                "child_exit": lambda _server, worker: multiprocess.mark_process_dead(worker.pid),
            }.items():
                self.cfg.set(name, value)

        def load(self):
            logs.configure("api", context=request_context)
            return create_app(settings)

    try:
        Server().run()
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _metrics_directory() -> str | None:
    """Points prometheus-client's multiprocess mode at an empty folder shared by gunicorn's processes.

    An operator's PROMETHEUS_MULTIPROC_DIR is emptied of the last run's files; without one, a fresh
    temporary folder is made, and returned so that it is removed when the API stops.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
        return None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sieve-metrics-")
    return os.environ["PROMETHEUS_MULTIPROC_DIR"]


@main.command()
@click.option("--burst", is_flag=True, help="Quit once the queue is empty.")
def worker(burst):
    """Run one RQ worker that retrains models and rewrites rankings (on one core: add workers to scale)."""
    # One BLAS thread per worker: on a busy machine several threads per fit make it many times slower,
    # and parallelism comes from running more workers. Set before numpy loads; explicit values win.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    settings = _settings(secret=True, redis=True)
    _redis(settings.redis_url)
    from sieve.workers.worker import run_worker

    run_worker(settings, burst=burst)


@main.command()
@click.option(
    "--dataset", required=True, help="digits, breast_cancer, wine, iris, seed, synth20k, or a PATH.csv / PATH.npz file."
)
@click.option(
    "--label-column", default=None, help="The label's CSV column (default: the last) or NPZ array (default: y)."
)
@click.option(
    "--strategies",
    default=None,
    help="Comma-separated; default: every strategy. random is always run, as the baseline.",
)
@click.option("--batch-size", default=10, show_default=True, help="Labels added per round.")
@click.option("--budget", default=500, show_default=True, help="Total labels, initial ones included.")
@click.option("--init-per-class", default=2, show_default=True, help="Initial labels per class.")
@click.option("--seeds", default=10, show_default=True, help="Seeds 0..N-1: one split and start per seed.")
@click.option("--model", default="logistic_regression", show_default=True, help="A pool model type.")
@click.option(
    "--model-params",
    default=None,
    help='JSON params of the model (default for logistic regression: {"max_iter": 1000}).',
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder for results.json and learning_curves.png."
)
@click.option("--url", default=None, help="Run against this live Sieve instead of in process.")
@click.option("--api-key", envvar="SIEVE_API_KEY", default=None, help="Bearer key for --url (or SIEVE_API_KEY).")
@click.option("--jobs", default=-1, show_default=True, help="Parallel runs; -1: one per core.")
@click.option(
    "--audit",
    default=None,
    help="Comma-separated audit rates (e.g. 0.05,0.1): each strategy but random also runs with audit items "
    "at each, and the accuracy estimate, its interval and the target rule are measured (in process only).",
)
@click.option(
    "--test-share", default=None, type=float, help="Share of each data set held out as the test set (default 0.2)."
)
@click.option(
    "--target", default=None, type=float, help="The target rule's accuracy (default: 0.9 of full-pool accuracy)."
)
def simulate(**options):
    """Replay active learning on a labeled data set: what each strategy would save over random picks."""
    from sieve.simulate.command import run_command

    run_command(**options)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The Sieve API to load into.")
@click.option("--api-key", envvar="SIEVE_API_KEY", default=None, help="Bearer key (or SIEVE_API_KEY).")
@click.option("--pool", "pool_id", default=None, help="The pool to add the items to.")
@click.option("--name", default=None, help="The pool of this name; made (with the options below) if none exists.")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(FORMAT_NAMES),
    default=None,
    help="The file's format; by default, told by its name's ending.",
)
@click.option(
    "--ids",
    "ids_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="For a .npy matrix: a file of one id per line, in row order (default: 0, 1, 2... as strings).",
)
@click.option(
    "--batch-items",
    type=click.IntRange(1, MAX_ITEMS_PER_CALL),
    default=None,
    help="Items per call (default: about 24 MB per call, at most the API's limit per call).",
)
@click.option("--model", default=None, help='A new pool\'s model, as JSON: {"type": ..., "params": {...}}.')
@click.option("--strategy", default=None, help="A new pool's default strategy.")
@click.option("--featurizer", default=None, help="A new text pool's featurizer, as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def load(file, url, api_key, pool_id, name, file_format, ids_file, batch_items, model, strategy, featurizer, quiet):
    """Stream a local file of items (Parquet, Arrow, .npy, CSV, JSON Lines) into a pool, resumably.

    Run it again after an interruption: items already in the pool are skipped, none is sent twice."""
    from sieve.load.command import run_load

    run_load(
        file,
        url=url,
        api_key=api_key,
        pool_id=pool_id,
        name=name,
        file_format=file_format,
        ids_file=ids_file,
        batch_items=batch_items,
        model=model,
        strategy=strategy,
        featurizer=featurizer,
        quiet=quiet,
    )


@main.command()
def openapi():
    """Print the API's OpenAPI document (the committed openapi.yaml is this output)."""
    from sieve.service.app import create_app
    from sieve.service.state import state_of

    settings = Settings.from_env()
    # Building the document contacts no Redis; a placeholder URL is enough when none is set.
    app = create_app(settings.with_overrides(redis_url=settings.redis_url or "redis://127.0.0.1:6379/0"))
    click.echo(state_of(app).openapi_yaml(), nl=False)


if __name__ == "__main__":
    main()
