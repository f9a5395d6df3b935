"""What scripts/outage and scripts/crash share: a private PostgreSQL cluster, the service as a
subprocess, and its set-up through the public API.

The cluster is a fresh `initdb` in a temporary directory, on a free port of 127.0.0.1: the
scripts stop, kill and restart it at will, and never touch any other PostgreSQL server.
"""

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PG_BIN_DIRS = (Path("/usr/local/bin"), Path("/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    sys.exit(f"{name} not found (install PostgreSQL's server binaries)")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Cluster:
    """A throw-away PostgreSQL cluster (trust auth, loopback only) owned by this process."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/attune"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/attune"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # initdb and postgres refuse to run as root: run them as the postgres user then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *args], check=check, capture_output=True, text=True, cwd=self.root
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(
            _pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start()
        self._run(
            _pg_tool("psql"),
            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c",
            "CREATE DATABASE attune",
        )  # fmt: skip

    def clone_as_standby(self, primary: "Cluster") -> None:
        """This cluster's data directory as a streaming standby of ``primary`` (running), via
        pg_basebackup (-R writes standby.signal and primary_conninfo); then `start` it."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(
            _pg_tool("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "--no-sync",
            "--checkpoint=fast",  # a spread checkpoint waits minutes
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
            "-c max_connections=100 -c shared_buffers=32MB"
        )
        self._run(
            _pg_tool("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str) -> None:
        self._run(_pg_tool("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def processes(self) -> list[int]:
        """The postmaster and its children (backends, background workers)."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        postmaster = int(pid_file.read_text().split()[0])
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parent = int(stat.rsplit(")", 1)[1].split()[1])
                if parent == postmaster:
                    children.append(int(entry.name))
        return [postmaster, *children]

    def signal_all(self, sig: signal.Signals) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.signal_all(signal.SIGCONT)
            self._run(
                _pg_tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", check=False
            )
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="attune-pg-")))
    log(f"private PostgreSQL cluster in {cluster.root} on port {cluster.port}")
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Service:
    """`attune serve` as a subprocess against `database_url`."""

    database_url: str
    log_path: Path
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    bootstrap_key: str = field(default_factory=lambda: "att_" + secrets.token_urlsafe(32))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ATTUNE_ENVIRONMENT": "production",
            "ATTUNE_DATABASE_URL": self.database_url,
            "ATTUNE_SECRET_KEY": self.secret_key,
            "ATTUNE_BOOTSTRAP_KEY": self.bootstrap_key,
            "ATTUNE_HOST": "127.0.0.1",
            "ATTUNE_PORT": str(self.port),
            "ATTUNE_LOG_LEVEL": "WARNING",
            **self.settings,
        }

    def migrate(self) -> None:
        subprocess.run([str(VENV_BIN / "attune"), "migrate"], env=self.env(), check=True)

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "attune"), "serve"], env=self.env(), stdout=out, stderr=out
            )

    def kill(self) -> None:
        """SIGKILL, no chance to clean up: what a crash or an OOM kill does."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    async def wait_ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"the service exited; see {self.log_path}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the service was not ready within {within} s; see {self.log_path}")


async def _created(client: httpx.AsyncClient, path: str, key: str, body: dict[str, Any]) -> Any:
    response = await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
    if response.status_code != 201:
        raise RuntimeError(f"POST {path} -> {response.status_code}: {response.text[:300]}")
    return response.json()


async def seed(service: Service, episodes: int) -> tuple[str, list[str]]:
    """An organization, its admin key and `episodes` episodes, through the API."""
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
        org = await _created(
            client, "/v1/organizations", service.bootstrap_key,
            {"name": "Harness", "slug": f"harness-{secrets.token_hex(4)}"},
        )  # fmt: skip
        created = await _created(
            client, f"/v1/organizations/{org['id']}/api-keys", service.bootstrap_key,
            {"name": "harness", "scopes": ["admin"]},
        )  # fmt: skip
        key: str = created["key"]
        clinician = await _created(client, "/v1/clinicians", key, {"display_name": "Dr Harness"})
        ids = []
        for i in range(episodes):
            person = await _created(client, "/v1/clients", key, {"external_id": f"harness-{i}"})
            episode = await _created(
                client, "/v1/episodes", key,
                {"client_id": person["id"], "clinician_id": clinician["id"]},
            )  # fmt: skip
            ids.append(episode["id"])
        return key, ids


def srs_answers(rng: Any) -> dict[str, float]:
    """SRS answers; about one in four low enough to raise an alliance alert."""
    low = rng.random() < 0.25
    return {
        item: round(rng.uniform(3, 7) if low else rng.uniform(8.5, 10), 1)
        for item in ("relationship", "goals_topics", "approach_method", "overall")
    }
