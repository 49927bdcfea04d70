"""One run of a plan in a process of its own: `python -m bench.run_one CONFIG_JSON GROUP`.

`ntmbench reproduce` trains a run on several devices (`--devices N`, DDP) this way. Lightning
starts the other ranks by running the command line of the process that calls `fit` once more, so
that command line must be this one run, not the whole plan: under `ntmbench reproduce` every
extra rank would go through the plan's loop and write the report too.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Sequence

from core.config import RunConfig
from core.errors import RunError
from core.workers import start_worker

from .reproduce import train_timed


def main(argv: Sequence[str] | None = None) -> int:
    config_json, group = sys.argv[1:] if argv is None else argv
    # the parent stops this run with SIGINT (`reproduce.train_in_child`): take it even where this
    # process was started with SIGINT ignored (a background job of a shell script)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    start_worker(1)  # as a worker of `--jobs`: its own W&B service, the allocator setting
    try:
        train_timed(RunConfig.from_dict(json.loads(config_json)), group)
    except RunError as error:
        print(f"ntmbench: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
