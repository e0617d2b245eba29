"""Redis clients built from settings."""

from __future__ import annotations

from redis import Redis
from redis._parsers import Encoder
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.retry import Retry

from sieve.settings import Settings


def connect(settings: Settings, retry_commands: bool = True, blocking: bool = False) -> Redis:
    """A client for settings.redis_url.

    The API passes retry_commands=False: a change whose reply was lost to a broken connection may have
    been applied, and sending it again could apply it twice. It answers 503 instead; the client retries,
    with an Idempotency-Key when it must be sure. Workers may retry: their writes are compare-and-set.

    Workers pass blocking=True: RQ waits for a job with a blocking pop of up to 405 s, and raises the
    client's read timeout above that only for connections made after the worker is built, while redis-py
    8 gives every connection a 5 s timeout. A connection the worker had already used (the sweeper's, the
    queues') then timed out every 5 s while idle, and RQ backed off for up to a minute before it looked
    at its queues again. A worker's connection waits without a timeout; TCP keepalive still notices a
    Redis that vanished.
    """
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set; `sieve up` starts an embedded Redis and sets it")
    options = {} if retry_commands else {"retry": Retry(NoBackoff(), 0)}
    if not settings.redis_url.startswith("unix:"):
        # TCP keepalive notices a peer that vanished without closing; a Unix socket has no such option.
        options["socket_keepalive"] = True
    if blocking:
        options["socket_timeout"] = None
    return Redis.from_url(settings.redis_url, health_check_interval=30, command_packer=HybridPacker(), **options)


class HybridPacker:
    """hiredis' packer of commands, which redis-py prefers when hiredis is installed, for all but the commands
    that carry bulk data: those go through redis-py's own.

    hiredis' copies every argument into one buffer, memoryviews turned into bytes first: a command that
    appends 150 MB of feature rows held three more copies of them. redis-py's own sends a large argument or
    a memoryview as it is, beside the rest (tests/integration/test_binary_ingest.py measures the API's
    peak memory), but costs Python calls per argument: packing a query's sixty-odd keys and arguments took
    43 µs that way, 12 µs with hiredis."""

    def __init__(self):
        self._python = PythonRespSerializer(
            _BUFFER_CUTOFF, Encoder(encoding="utf-8", encoding_errors="strict", decode_responses=False).encode
        )
        self._hiredis = HiredisRespSerializer()

    def pack(self, *args) -> list:
        kinds = set(map(type, args))
        if memoryview in kinds or (
            not kinds.isdisjoint(_BYTES) and max(len(a) for a in args if type(a) in _BYTES) > _BUFFER_CUTOFF
        ):
            return self._python.pack(*args)
        return self._hiredis.pack(*args)


_BYTES = frozenset({bytes, bytearray})
_BUFFER_CUTOFF = 6000
"""redis-py's own: arguments longer than this are sent apart rather than joined into the command's buffer."""
