"""Writing results so that a later failure never truncates what is already there."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call `write(file)` on a temporary file beside `path`, then rename it into place. The file
    gets the mode any new file gets under the user's umask (0644 by default), as Lightning's own
    files do (tempfile.mkstemp would make it 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda f: frame.to_csv(f, index=False))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))
