"""The runtime without a model stays small: its size is part of every packaged module."""

from __future__ import annotations

from wasmexport.abi_runtime import build

# TODO: bring this to 300 KB (the runtime is ~320 KB with the cold sources built for size;
# the printf, strtod and sort of libc alone take ~25 KB of code)
RUNTIME_SIZE_LIMIT = 330 * 1024


def test_runtime_size_under_limit():
    for name in build.VARIANTS:
        size = (build.HERE / name).stat().st_size
        assert size < RUNTIME_SIZE_LIMIT, (
            f"{name} is {size / 1024:.0f} KB, above the limit of "
            f"{RUNTIME_SIZE_LIMIT // 1024} KB: "
            "build new op files for size (the default in abi_runtime/build.py) and look for "
            "what grew with a build that keeps the name section"
        )
