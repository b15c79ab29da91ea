"""benchmarks/targets.py: each target row compares what the run measured with its bound."""

from __future__ import annotations

from benchmarks import targets


def run(web_ms=10.0, plain_ms=9.0, relaxed_ms=7.0, peak=5_000_000, json_ms=17.0,
        raw_ms=9.5, package_s=1.5):  # fmt: skip
    """infos and results shaped as benchmarks/run.py writes them, for superres and resnet."""
    infos = {
        "superres": {"weight_bytes": 1_000_000, "live_bytes": 1_500_000, "runtime": "core"},
        "resnet18w48": {"weight_bytes": 1, "live_bytes": 1, "runtime": "core",
                        "package_s": package_s},  # fmt: skip
    }
    results = {
        "superres": {
            "ours": {"infer": [plain_ms + 1, plain_ms], "json": [json_ms], "raw": [raw_ms],
                     "peak_memory": peak, "base_memory": 1_000_000},  # fmt: skip
            "ours_relaxed": {"infer": [relaxed_ms]},
            "ort_web": {"infer": [web_ms, web_ms + 2]},
        },
        "resnet18w48": {},
    }
    return infos, results


def by_target(rows):
    return {(r.target, r.model): r for r in rows}


def test_every_target_of_a_good_run_is_met_except_relaxed_above_its_bound():
    rows = by_target(targets.check(*run(), {"core": 290 * 1024}))
    plain = rows["plain SIMD128 inference x ort-web", "superres"]
    assert (plain.measured, plain.met) == ("0.90", True)  # min over min: 9 / 10
    relaxed = rows["relaxed SIMD inference x ort-web", "superres"]
    assert (relaxed.measured, relaxed.met) == ("0.70", False)  # 0.7 > 0.6
    memory = rows["linear memory above the runtime's own", "superres"]
    assert (memory.measured, memory.met) == ("4.00 MB", True)  # 5 - 1 <= 1 + 2 * 1.5
    assert rows["runtime .wasm without the plan (core)", "superres, resnet18w48"].met
    assert rows["packaging CPU time", "resnet18w48"].met
    assert rows["json pred() / inference", "superres"].measured == "1.89x"
    assert rows["raw pred() / inference", "superres"].met  # 9.5 / 9 <= 1.1


def test_targets_missed_by_a_slow_run_say_no():
    # 10.5 / 10 > 1.0; 4.000001 MB > 4 MB; 21 / 10.5 = 2 is not < 2; 11.6 / 10.5 > 1.1
    infos, results = run(plain_ms=10.5, peak=4_000_001 + 1_000_000, json_ms=21.0, raw_ms=11.6,
                         package_s=2.0)  # fmt: skip
    rows = targets.check(infos, results, {"core": 300 * 1024})
    missed = {(r.target, r.model) for r in rows if not r.met}
    assert missed == {
        ("plain SIMD128 inference x ort-web", "superres"),
        ("relaxed SIMD inference x ort-web", "superres"),
        ("linear memory above the runtime's own", "superres"),
        ("runtime .wasm without the plan (core)", "superres, resnet18w48"),
        ("packaging CPU time", "resnet18w48"),
        ("json pred() / inference", "superres"),
        ("raw pred() / inference", "superres"),
    }
    assert targets.table(rows).endswith("0 of 7 targets met.")


def test_models_or_engines_missing_from_the_run_give_no_rows():
    infos, results = run()
    del results["superres"]["ort_web"]
    rows = by_target(targets.check(infos, results, {}))
    assert not any("x ort-web" in target for target, _ in rows)
    assert ("linear memory above the runtime's own", "superres") in rows
