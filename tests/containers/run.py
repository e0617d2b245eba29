"""Builds Sieve's images and runs docker-compose.yml for real, with Debian's podman, then removes it all.

    sudo python tests/containers/run.py        # or tests/containers/run.sh, which installs podman first

Needs root, podman, podman-compose, runc and debootstrap, and the network (Debian's archive; PyPI, or
pip's configured indexes, the first time). No registry is used: the base image is made with debootstrap
and stands in for python:3.11-slim; redis:7 and nginx:stable are stood in for by images built from it with
Debian's packages (only if no image of that name exists). What is slow to make is cached between runs
under SIEVE_CONTAINER_CACHE (/var/cache/sieve-containers): the base image (a tar, and the image itself in
podman's storage) and the wheelhouse of the dependencies (keyed by constraints.txt and pyproject.toml).

The run: the Sieve image is built from a wheelhouse made on the host (pip inside a build cannot be
assumed to reach an index), the compose stack comes up (Redis, nginx over two API replicas, two workers),
the README's curl loop is played through the proxy, every healthcheck must pass, a worker is killed with
SIGKILL and must come back and keep doing jobs. Then every container, volume, network and image the run
made goes, and the host's ip_forward and firewall rules are put back as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SIEVE_CONTAINER_CACHE", "/var/cache/sieve-containers"))
BASE = "localhost/debian-python:bookworm"
BASE_VERSION = "1"  # bump to rebuild the cached base after changing what it holds
MIRROR = os.environ.get("SIEVE_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SKIPPED = 77  # the exit status of a test that could not run here (automake's convention)
CACHED_LABEL = "org.sieve.test-cache=1"  # what purge() may remove: the images this script keeps between runs
DEPENDENCIES = "localhost/sieve-test-dependencies"
STAND_INS = {"localhost/redis:7": "redis.Containerfile", "localhost/nginx:stable": "nginx.Containerfile"}
# What the Dockerfile copies: the build context is made of these and the wheelhouse only.
CONTEXT = [
    "Dockerfile",
    ".dockerignore",
    "constraints.txt",
    "pyproject.toml",
    "README.md",
    "openapi.yaml",
    "sieve",
    "service",
    "workers",
]
CONTAINERS_CONF = """\
# Root here may lack CAP_SYS_RESOURCE (podman's default ulimits fail) and crun refuses hybrid cgroups.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""

started = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {message}", flush=True)


def run(*args, check=True, capture=False, quiet=False, **kwargs) -> subprocess.CompletedProcess:
    """A command; `capture` keeps its output, `quiet` neither logs it nor shows what it prints."""
    if not quiet:
        log("$ " + " ".join(str(arg) for arg in args))
    if capture:
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
    elif quiet:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.run([str(arg) for arg in args], check=check, text=True, **kwargs)


def output(*args, **kwargs) -> str:
    return run(*args, capture=True, quiet=True, **kwargs).stdout


# --- the host: what podman's networking changes, to put back -------------------------------------------


class HostState:
    """ip_forward and the iptables/nftables rules as they were, restored after the stack is gone."""

    TABLES = ("filter", "nat", "mangle", "raw")

    def __init__(self):
        self.ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        self.iptables = {tool: self._rules(tool) for tool in ("iptables", "ip6tables") if shutil.which(tool)}
        self.nft_tables = self._nft_tables()

    @staticmethod
    def _rules(tool: str) -> dict[str, list[str]]:
        rules = {}
        for table in HostState.TABLES:
            listed = run(tool, "-t", table, "-S", capture=True, quiet=True, check=False)
            rules[table] = listed.stdout.splitlines() if listed.returncode == 0 else []
        return rules

    @staticmethod
    def _nft_tables() -> set[str]:
        if not shutil.which("nft"):
            return set()
        listed = run("nft", "list", "tables", capture=True, quiet=True, check=False)
        return set(listed.stdout.splitlines()) if listed.returncode == 0 else set()

    def restore(self) -> list[str]:
        """Undoes what changed since __init__; returns what it undid."""
        undone = []
        if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != self.ip_forward:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self.ip_forward)
            undone.append(f"net.ipv4.ip_forward back to {self.ip_forward}")
        for tool, before in self.iptables.items():
            now = self._rules(tool)
            for table in self.TABLES:
                added = [rule for rule in now[table] if rule not in before[table]]
                # Rules first (they may jump to the added chains), then the chains themselves.
                for rule in (rule for rule in reversed(added) if rule.startswith("-A ")):
                    run(tool, "-t", table, "-D", *shlex.split(rule[3:]), check=False, quiet=True)
                    undone.append(f"{tool} -t {table} {rule}")
                for rule in (rule for rule in added if rule.startswith("-N ")):
                    chain = rule.split()[1]
                    run(tool, "-t", table, "-F", chain, check=False, quiet=True)
                    run(tool, "-t", table, "-X", chain, check=False, quiet=True)
                    undone.append(f"{tool} -t {table} chain {chain}")
        for table in sorted(self._nft_tables() - self.nft_tables):
            run("nft", "delete", *table.split(), check=False, quiet=True)  # "table <family> <name>"
            undone.append(f"nft {table}")
        return undone


# --- images ------------------------------------------------------------------------------------------------


def podman_env() -> dict[str, str]:
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def image_exists(name: str, env) -> bool:
    return run("podman", "image", "exists", name, check=False, quiet=True, env=env).returncode == 0


def ensure_base(env) -> None:
    """The debootstrap image standing in for python:3.11-slim, from the cache when it is there."""
    if image_exists(BASE, env):
        log(f"base image {BASE}: cached in podman's storage")
        return
    tar = CACHE / f"debian-python-bookworm-v{BASE_VERSION}.tar"
    if not tar.exists():
        log("base image: debootstrap (about a minute)")
        with tempfile.TemporaryDirectory(prefix="sieve-rootfs-", dir=CACHE) as rootfs:
            run(
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,python3-pip,ca-certificates",
                "bookworm",
                rootfs,
                MIRROR,
                stdout=subprocess.DEVNULL,
            )
            root = Path(rootfs)
            for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
                marker.unlink()  # the image's pip installs into the system Python, as python:3.11-slim's does
            (root / "usr/bin/python").symlink_to("python3")
            run("chroot", rootfs, "apt-get", "clean", quiet=True)
            shutil.rmtree(root / "var/lib/apt/lists")
            (root / "var/lib/apt/lists/partial").mkdir(parents=True)
            for runtime_file in ("etc/resolv.conf", "etc/hosts"):  # podman provides its own
                (root / runtime_file).unlink(missing_ok=True)
            partial = tar.with_suffix(".partial")
            run("tar", "--numeric-owner", "-C", rootfs, "-cf", partial, ".")
            partial.rename(tar)
    run("podman", "import", "--change", 'CMD ["python3"]', tar, BASE, env=env, stdout=subprocess.DEVNULL)


def dependency_key() -> str:
    digest = hashlib.sha256()
    for name in ("constraints.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def wheelhouse(context: Path, env) -> None:
    """context/wheelhouse: every wheel the image's `pip install .` needs, from the cache (made on a miss)."""
    cached = CACHE / f"wheels-{dependency_key()}"
    if not cached.exists():
        log("wheelhouse: pip wheel of the dependencies (cached afterwards)")
        partial = Path(tempfile.mkdtemp(prefix="wheels-", dir=CACHE))
        pip = [sys.executable, "-m", "pip"]
        run(*pip, "wheel", "-q", "--wheel-dir", partial, "-c", ROOT / "constraints.txt", context)
        # What building the project in the image needs (pyproject's build-system), offline there.
        run(*pip, "wheel", "-q", "--wheel-dir", partial, "setuptools>=68")
        for wheel in partial.glob("sieve_al-*.whl"):
            wheel.unlink()
        image_python = output("podman", "run", "--rm", "--network=none", BASE, "python3", "-c",
                              "import platform; print(platform.python_version())", env=env).strip()  # fmt: skip
        while missing := unmet(partial, image_python):
            log(f"wheelhouse: {', '.join(missing)} for the image's Python {image_python}")
            run(*pip, "download", "-q", "--no-deps", "--dest", partial, "-c", ROOT / "constraints.txt", *missing)
        partial.rename(cached)
        for stale in CACHE.glob("wheels-*"):
            if stale != cached:
                shutil.rmtree(stale, ignore_errors=True)
    shutil.copytree(cached, context / "wheelhouse", copy_function=os.link)


def unmet(folder: Path, python_version: str) -> list[str]:
    """Requirements of the wheels in folder that no wheel there meets, under the image's Python.

    pip on the host evaluates markers with the host's Python: the image's may need more (a backport
    required below some 3.11.x, say).
    """
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename

    environment = {**default_environment(), "python_full_version": python_version,
                   "python_version": ".".join(python_version.split(".")[:2])}  # fmt: skip
    wheels = {parse_wheel_filename(wheel.name)[0]: wheel for wheel in folder.glob("*.whl")}
    missing = set()
    for wheel in wheels.values():
        with zipfile.ZipFile(wheel) as archive:
            meta = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
            lines = archive.read(meta).decode().splitlines()
        for line in lines:
            if not line.startswith("Requires-Dist:"):
                continue
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker and not requirement.marker.evaluate({**environment, "extra": ""}):
                continue  # extras' requirements: the project's own extras are in the wheelhouse already
            if canonicalize_name(requirement.name) not in wheels:
                missing.add(str(requirement).split(";")[0].strip())
    return sorted(missing)


def build_context(folder: Path, env) -> Path:
    context = folder / "context"
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=ignore)
        else:
            shutil.copy2(source, context / name)
    wheelhouse(context, env)
    return context


# --- the stack ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    def __init__(self, project: str, env: dict[str, str], port: int):
        self.project, self.env, self.url = project, env, f"http://127.0.0.1:{port}"

    def compose(self, *args, **kwargs):
        return run(
            "podman-compose", "-p", self.project, "-f", ROOT / "docker-compose.yml", *args, env=self.env, **kwargs
        )

    def containers(self, service: str | None = None) -> list[str]:
        label = f"io.podman.compose.project={self.project}"
        names = output("podman", "ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}", env=self.env)
        return sorted(
            name for name in names.split() if service is None or name.startswith(f"{self.project}_{service}_")
        )

    def inspect(self, container: str) -> dict:
        return json.loads(output("podman", "inspect", container, env=self.env))[0]

    def healthcheck(self, container: str) -> bool:
        return run("podman", "healthcheck", "run", container, check=False, quiet=True, env=self.env).returncode == 0

    def health_log(self, container: str) -> str:
        """What the last healthchecks printed, to say why one fails."""
        state = self.inspect(container)["State"]
        health = state.get("Health") or state.get("Healthcheck") or {}
        return "\n".join(
            f"exit {entry.get('ExitCode')}: {entry.get('Output', '').strip()}" for entry in health.get("Log") or []
        )

    def http(self, method: str, path: str, body_file: Path | None = None) -> tuple[int, dict]:
        """One request with curl, as the README's loop makes them; the status and the JSON answer."""
        args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, self.url + path]
        if body_file is not None:
            args += ["-H", "Content-Type: application/json", "-d", f"@{body_file}"]
        answer = run(*args, capture=True, quiet=True, check=False)
        body, _, status = answer.stdout.rpartition("\n")
        if not status.isdigit():
            return 0, {}
        try:
            return int(status), json.loads(body) if body else {}
        except json.JSONDecodeError:
            return int(status), {"raw": body}


def wait_for(what: str, check, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def seed(*args: str, into: Path) -> Path:
    """examples/seed_experiment.py's output, as the README makes pool.json and labels.json."""
    with into.open("w") as file:
        run(sys.executable, ROOT / "examples/seed_experiment.py", *args, stdout=file, quiet=True, cwd=ROOT)
    return into


def play_the_loop(stack: Stack, folder: Path) -> str:
    status, created = stack.http("POST", "/v1/pools", seed("pool", into=folder / "pool.json"))
    assert status == 201 and created["n_items"] == 800 and created["n_labeled"] == 40, (status, created)
    pool = created["pool_id"]
    status, first = stack.http("GET", f"/v1/pools/{pool}/query?k=20&strategy=least_confidence&wait=10")
    assert status == 200 and len(first["items"]) == 20 and first["model_version"] >= 1, (status, first)
    log(f"pool {pool}: first query answered by model version {first['model_version']}")
    teach(stack, pool, first, folder)
    status, second = stack.http("GET", f"/v1/pools/{pool}/query?k=20&wait=10")
    assert status == 200 and second["model_version"] > first["model_version"], (status, second)
    assert second["ranked_labels_version"] == second["labels_version"] == 2, second
    log(f"after teaching: model version {second['model_version']}, labels version {second['labels_version']}")
    status, predicted = stack.http(
        "POST", f"/v1/pools/{pool}/predict", write(folder / "ids.json", {"ids": ["x1", "x2"]})
    )
    assert status == 200 and len(predicted["predictions"]) == 2, (status, predicted)
    return pool


def teach(stack: Stack, pool: str, query: dict, folder: Path) -> dict:
    labels = seed("labels", *(item["id"] for item in query["items"]), into=folder / "labels.json")
    status, taught = stack.http("POST", f"/v1/pools/{pool}/teach", labels)
    assert status == 202 and taught["accepted"] == len(query["items"]), (status, taught)
    return taught


def write(path: Path, body: dict) -> Path:
    path.write_text(json.dumps(body))
    return path


def every_replica_served(stack: Stack) -> None:
    """nginx balanced the requests: each API replica's access log has some (SIEVE_ACCESS_LOG=1)."""
    for _ in range(20):
        assert stack.http("GET", "/healthz")[0] == 200
    for container in stack.containers("api"):
        lines = output("podman", "logs", container, env=stack.env, stderr=subprocess.STDOUT).splitlines()
        served = sum(" /healthz 200" in line or " /v1/pools" in line for line in lines)
        assert served > 0, f"{container} served no request through the proxy"
        log(f"{container} served {served} requests")


def all_healthy(stack: Stack) -> None:
    for container in stack.containers():
        wait_for(f"{container}'s healthcheck", lambda c=container: stack.healthcheck(c), timeout=60)
    log(f"every healthcheck passes ({len(stack.containers())} containers)")


def kill_a_worker(stack: Stack, pool: str, folder: Path) -> None:
    victim = stack.containers("worker")[0]
    before = stack.inspect(victim)
    pid, restarts = before["State"]["Pid"], before.get("RestartCount", 0)
    status, query = stack.http("GET", f"/v1/pools/{pool}/query?k=20&wait=10")
    assert status == 200, (status, query)
    os.kill(pid, signal.SIGKILL)
    log(f"SIGKILL to {victim}'s process {pid}")
    teach(stack, pool, query, folder)  # a refresh to do while one worker is down

    def restarted():
        state = stack.inspect(victim)
        return state["State"]["Running"] and state["State"]["Pid"] not in (0, pid) and state

    state = wait_for(f"{victim} to be restarted", restarted, timeout=60, interval=0.5)
    log(f"{victim} restarted (restart count {state.get('RestartCount', 0)}, was {restarts})")
    wait_for(f"{victim}'s healthcheck after the restart", lambda: stack.healthcheck(victim), timeout=60)
    status, after = stack.http("GET", f"/v1/pools/{pool}/query?k=20&wait=30")
    assert status == 200 and after["ranked_labels_version"] == after["labels_version"] == 3, (status, after)
    log(f"the refresh taught during the kill is done: model version {after['model_version']}")
    wait_for("both workers registered", lambda: stack.http("GET", "/readyz")[1].get("workers", 0) >= 2, 30)


def purge() -> int:
    """Removes what runs keep: the base and stand-in images, the wheelhouse and the base's tar."""
    env = podman_env()
    for name in output("podman", "images", "--format", "{{.Repository}}:{{.Tag}}", DEPENDENCIES, env=env).split():
        run("podman", "rmi", "-f", name, check=False, env=env)
    for name in [BASE, *STAND_INS]:
        labels = output("podman", "image", "inspect", "--format", "{{json .Labels}}", name, env=env, check=False)
        if name == BASE or CACHED_LABEL.split("=")[0] in labels:
            run("podman", "rmi", "-f", name, check=False, env=env)
    shutil.rmtree(CACHE, ignore_errors=True)
    return 0


def main() -> int:
    if sys.argv[1:] == ["--purge"]:
        return purge()
    if os.geteuid() != 0:
        print("container test skipped: needs root (podman's networking, debootstrap)", file=sys.stderr)
        return SKIPPED
    env = podman_env()
    if run("podman", "info", check=False, quiet=True, env=env).returncode != 0:
        print("container test skipped: podman does not work here", file=sys.stderr)
        return SKIPPED
    project = f"sievetest{os.getpid()}"
    image = f"localhost/sieve:{project}"
    built: list[str] = []
    host = HostState()
    folder = Path(tempfile.mkdtemp(prefix="sieve-containers-"))
    port = free_port()
    (folder / "sieve.env").write_text(
        f"SIEVE_SECRET_KEY={secrets.token_urlsafe(24)}\nSIEVE_ACCESS_LOG=1\nSIEVE_FIRST_RANKING_WAIT=10\n"
    )
    stack_env = {
        **env,
        "SIEVE_IMAGE": image,
        "SIEVE_ENV_FILE": str(folder / "sieve.env"),
        "SIEVE_PUBLISH_PORT": str(port),
        "SIEVE_PUBLISH_ADDRESS": "127.0.0.1",
    }
    stack = Stack(project, stack_env, port)
    ok = False
    try:
        ensure_base(env)
        for name, containerfile in STAND_INS.items():
            if not image_exists(name, env):  # kept, like the base: only Debian's packages, slow to fetch
                run("podman", "build", "-q", "--pull=never", "--layers=false", "--label", CACHED_LABEL, "-t", name,
                    "-f", HERE / containerfile, HERE, env=env)  # fmt: skip
        context = build_context(folder, env)
        # The dependencies' stage is kept, tagged by what it installs: a warm run rebuilds only Sieve's layer.
        dependencies = f"{DEPENDENCIES}:{dependency_key()}"
        build = ["podman", "build", "-q", "--pull=never", "--layers", "--from", BASE, "--build-arg", "PIP_NO_INDEX=1"]
        if not image_exists(dependencies, env):
            for stale in output(
                "podman", "images", "--format", "{{.Repository}}:{{.Tag}}", DEPENDENCIES, env=env
            ).split():
                run("podman", "rmi", "-f", stale, check=False, quiet=True, env=env)
            run(*build, "--target", "dependencies", "-t", dependencies, context, env=env)
        built.append(image)
        run(*build, "-t", image, context, env=env)
        log("images built")
        stack.compose("up", "-d", stdout=subprocess.DEVNULL)
        log(f"containers: {', '.join(stack.containers())}")
        wait_for(
            "the API through the proxy, with two workers",
            lambda: stack.http("GET", "/readyz")[1].get("workers", 0) >= 2,
            timeout=90,
        )
        log("ready")
        pool = play_the_loop(stack, folder)
        every_replica_served(stack)
        all_healthy(stack)
        kill_a_worker(stack, pool, folder)
        assert stack.http("DELETE", f"/v1/pools/{pool}")[0] == 204
        ok = True
    except (AssertionError, subprocess.CalledProcessError) as error:
        log(f"FAILED: {error}")
        for container in stack.containers():
            print(f"--- {container}: healthchecks\n{stack.health_log(container)}\n--- last lines", flush=True)
            run("podman", "logs", "--tail", "15", container, check=False, env=env)
    finally:
        teardown(stack, built, env)
        shutil.rmtree(folder, ignore_errors=True)
        restore(host, stack)
    log("PASSED" if ok else "FAILED")
    return 0 if ok else 1


def restore(host: HostState, stack: Stack) -> None:
    """Puts the host back once podman's last cleanup of the stack has run.

    conmon runs `podman container cleanup` after a container is gone, and netavark's teardown there
    recreates its base chains (and ip_forward): wait for those, then undo until nothing changes.
    """
    with contextlib.suppress(AssertionError):
        wait_for(
            "podman's cleanup of the stack",
            lambda: run("pgrep", "-f", f"conmon .*-n {stack.project}_", check=False, quiet=True).returncode != 0,
            timeout=30,
        )
    for _ in range(5):
        undone = host.restore()
        for change in undone:
            log(f"restored: {change}")
        if not undone:
            return
        time.sleep(2)
    raise AssertionError("the host's network settings keep changing after the stack was removed")


def teardown(stack: Stack, built: list[str], env) -> None:
    # Killed, not stopped: nothing of a test stack needs a graceful end, and one command does them all.
    if containers := stack.containers():
        run("podman", "rm", "-f", "-t", "0", *containers, check=False, quiet=True, env=env)
    label = f"label=io.podman.compose.project={stack.project}"
    for volume in output("podman", "volume", "ls", "-q", "--filter", label, env=env).split():
        run("podman", "volume", "rm", "-f", volume, check=False, quiet=True, env=env)
    for network in output("podman", "network", "ls", "-q", "--filter", f"name={stack.project}", env=env).split():
        run("podman", "network", "rm", "-f", network, check=False, quiet=True, env=env)
    for name in built:
        run("podman", "rmi", "-f", name, check=False, quiet=True, env=env)
    log(f"removed the stack {stack.project} and the images {', '.join(built) or '(none)'}")


if __name__ == "__main__":
    sys.exit(main())
