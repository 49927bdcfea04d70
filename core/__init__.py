"""The run core: what every command stands on, between the networks and the command line.

    config.py     RunConfig, the one schema of run settings, and the one YAML reader
    errors.py     the project's input errors (one line, exit status 2)
    files.py      atomic writes (a later failure never truncates a result)
    run_dir.py    run folders: unique when unnamed, locked while training, bound to their config
    train.py      one run: DataModule, system, loggers, checkpoints, then the test per length
    evaluate.py   test rows per shape; a system rebuilt from a checkpoint
    footprint.py  the memory a run needs, checked before anything is allocated
    workers.py    what a spawned trainer process sets first (threads, W&B service, allocator)
    allocator.py  glibc's malloc kept from returning freed BPTT blocks
    tables.py     markdown tables

Imports flow one way: datamodules/ -> models/ -> core/ -> sweeps/, reports/ -> bench/ (the
command line). tests/test_layers.py checks it.
"""
