"""The runtime without a model stays small: its size is part of every packaged module."""

from __future__ import annotations

from wasmexport.abi_runtime import build

# The core runtimes (what neural networks are packaged into) stay under 300 KB; the runtimes
# with every op have a looser bound that still catches an op file built for speed by mistake.
SIZE_LIMITS = {None: 440 * 1024, "core": 300 * 1024}


def test_runtime_size_under_limit():
    for name, variant in build.VARIANTS.items():
        size = (build.HERE / name).stat().st_size
        limit = SIZE_LIMITS[variant.subset]
        assert size < limit, (
            f"{name} is {size / 1024:.0f} KB, above the limit of {limit // 1024} KB: "
            "build new op files for size (the default in abi_runtime/build.py), keep rare "
            "ops out of CORE_OPS, and look for what grew with a build that keeps the name "
            "section"
        )
