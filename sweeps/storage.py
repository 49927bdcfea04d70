"""Where a study lives: any SQLAlchemy URL, an embedded SQLite file by default.

    sqlite:///runs/sweeps/studies.db                        the default (one file, every study)
    postgresql+psycopg2://USER:PASS@HOST:5432/DB             several machines sharing one study

Errors are one line with the password hidden; nothing is created until the URL is known good.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from core.config import ConfigError

DB_FILE = "studies.db"
HEARTBEAT_S = 20  # a running trial records a heartbeat this often ...
GRACE_S = 120  # ... and one silent for this long is failed as interrupted (its worker died)
EXAMPLES = "e.g. sqlite:///runs/sweeps/studies.db or postgresql+psycopg2://USER:PASS@HOST:5432/DB"


def default_url(out: str | Path) -> str:
    return f"sqlite:///{Path(out) / DB_FILE}"


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def check_url(url: str) -> sqlalchemy.URL:
    """The parsed URL, once its scheme and driver are known to be usable (no connection yet)."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"storage {url!r} is not a SQLAlchemy URL ({EXAMPLES})") from None
    try:
        dialect = parsed.get_dialect()
    except Exception:
        raise ConfigError(f"unknown storage scheme {parsed.drivername!r} ({EXAMPLES})") from None
    try:
        dialect.import_dbapi()
    except ImportError as error:
        raise ConfigError(f"storage scheme {parsed.drivername!r} needs a driver that is not "
                          f"installed ({error}); postgresql+psycopg2 comes installed") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError("in-memory SQLite cannot be shared by workers nor resumed; give a file, "
                          "e.g. sqlite:///runs/sweeps/studies.db")
    return parsed


def open_storage(url: str, *, create: bool) -> optuna.storages.RDBStorage:
    """Connect (creating Optuna's tables when `create`); heartbeats are on, so trials whose worker
    died are found. A study that does not exist yet is not created here."""
    parsed = check_url(url)
    shown = redact(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database)
        if not create and not path.is_file():
            raise ConfigError(f"no sweep storage at {path}; start one with `ntmbench sweep`")
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}  # workers wait for each other's writes
    else:
        engine_kwargs = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "postgresql":
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S, skip_table_creation=not create,
                )
        except sqlalchemy.exc.SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            # two machines creating Optuna's tables in one fresh database at once: one loses
            if create and attempt < 2 and ("already exists" in reason or "duplicate key" in reason):
                continue
            raise ConfigError(f"cannot reach storage {shown}: {reason}") from None
    raise AssertionError("unreachable")
