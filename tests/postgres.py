"""A throwaway PostgreSQL database on 127.0.0.1 for the sweep storage test.

.ci/run installs Debian's `postgresql` and starts its cluster; here, where the server is installed
but down and we are root (as in CI), it is started too, and the role `ntmbench` is created. Each
use gets a fresh database, dropped afterwards. `NTMBENCH_TEST_PG=postgresql+psycopg2://...` names
another server (a role that may create databases). `unavailable()` says why none can be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy.engine import make_url

ROLE = PASSWORD = "ntmbench"
ADMIN_URL = os.environ.get(
    "NTMBENCH_TEST_PG", f"postgresql+psycopg2://{ROLE}:{PASSWORD}@127.0.0.1:5432/postgres"
)


def _connect(url: str = ADMIN_URL):
    import psycopg2

    u = make_url(url)
    return psycopg2.connect(host=u.host, port=u.port or 5432, user=u.username,
                            password=u.password, dbname=u.database, connect_timeout=5)


def _run(*command: str) -> str:
    """Run a command; '' on success, else its last line of output."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    output = (proc.stderr or proc.stdout).strip()
    return "" if proc.returncode == 0 else (output.splitlines() or [f"exit {proc.returncode}"])[-1]


def _start_local_cluster() -> str:
    """Start the first local cluster (Debian's pg_ctlcluster); '' on success, else why not."""
    if not shutil.which("pg_lsclusters"):
        return "PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does this)"
    if os.geteuid() != 0:
        return "its cluster is down and starting it needs root (pg_ctlcluster VERSION main start)"
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.split()
    if len(listing) < 4:
        return "no PostgreSQL cluster exists (pg_createcluster VERSION main)"
    version, name, status = listing[0], listing[1], listing[3]
    if status != "online":
        error = _run("pg_ctlcluster", version, name, "start")
        if error:
            return f"pg_ctlcluster {version} {name} start failed: {error}"
    return ""


def _create_role() -> str:
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return f"role {ROLE} is missing and creating it needs root"
    sql = f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'"
    error = _run("runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-c", sql)
    return "" if not error or "already exists" in error else f"cannot create role {ROLE}: {error}"


def unavailable() -> str:
    """'' when ADMIN_URL accepts connections (after starting the server if need be), else why not."""
    import psycopg2

    for attempt in range(3):
        try:
            _connect().close()
            return ""
        except psycopg2.OperationalError as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else "refused"
        if "NTMBENCH_TEST_PG" in os.environ or attempt == 2:
            return f"cannot connect to {make_url(ADMIN_URL).render_as_string()}: {message}"
        if "password authentication failed" in message or "does not exist" in message:
            problem = _create_role()
        else:
            problem = _start_local_cluster()
        if problem:
            return problem
    return "unreachable"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database; yields its SQLAlchemy URL and drops it afterwards."""
    name = f"ntmbench_test_{uuid.uuid4().hex[:10]}"
    admin = _connect()
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
