"""A throwaway PostgreSQL server on 127.0.0.1, started from Debian's binaries for the test session.

Set LOYALFLOW_TEST_POSTGRES_URL to use a server you already run instead. When no server binaries
exist the PostgreSQL tests skip, except where LOYALFLOW_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def _bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    datadir: Path
    port: int
    user: str
    run_as: str | None

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"),
                       capture_output=True, check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_postgres() -> PostgresServer | None:
    bindir = _bindir()
    if bindir is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="loyalflow-pg-"))
    datadir = root / "data"
    run_as = None
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.getuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
        run_as, user = "postgres", "postgres"
        os.chmod(root, 0o777)
    port = _free_port()
    server = PostgresServer(bindir, datadir, port, user, run_as)
    subprocess.run(server._cmd(str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", user,
                               "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"),
                   check=True, capture_output=True)
    opts = (f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections=100")
    subprocess.run(server._cmd(str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l",
                               str(root / "log"), "-w", "start"), check=True, capture_output=True)
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("PostgreSQL did not start listening on 127.0.0.1")
