"""Process-wide allocator setting for `ntmbench` (a program's decision, so not made by models/).

Backpropagation through time keeps every time step's memory alive until the backward pass, then
frees it all at once. glibc's malloc hands such large freed blocks back to the OS and the next
batch faults them in again. Telling it to keep them made the compiled paper NTM step at batch 32
about 8% faster on this project's 2-core machines (33 vs 36 ms, paired runs in separate processes),
at the cost of the process keeping its peak heap. Elsewhere than Linux with glibc, nothing happens.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>


def keep_freed_memory() -> bool:
    """Serve blocks up to 32 MiB from the heap and keep up to 1 GiB free at its top.
    -> whether glibc took the setting."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False
