"""Write valid-pairs.csv, the pairs file the reader's property tests mutate
(tests/test_results_properties.py): two sides (A, an interpreter, and B, a nightly build),
two cells, three rounds each, and a cell that failed its checks on side B.
valid-results.csv is a copy of tests/data/compare/small-v4.csv (four cells of schema 4, one
of them failed).

Run it with the project's Python (``python tests/data/results/make_fixtures.py``); it
replaces valid-pairs.csv next to it.
"""

from __future__ import annotations

from pathlib import Path

from linfit.results.pairs import PairsWriter

HERE = Path(__file__).parent


def main() -> None:
    target = HERE / "valid-pairs.csv"
    target.unlink(missing_ok=True)
    writer = PairsWriter(target)
    common = {"session_id": "20240601T120000Z-build-7-abc1234", "backend": "tensorflow",
              "device": "CPU:0", "n_examples": 1000, "dtype": "float32",
              "calls_per_sample": 2, "python_version": "3.11.7", "host": "build-7",
              "git_commit": "abc1234", "device_name": "Intel(R) Xeon(R)",
              "backend_version": "2.21.0",
              # The session's settings, as --resume reads them (pairs schema 3).
              "part": 0, "part_start_unix_ns": 1717243190 * 10**9, "seed": 0,
              "threshold": 0.05, "alpha": 0.01, "min_pairs": 10, "max_pairs": 200,
              "cell_options": "--backends tensorflow --sizes 1e3",
              # The machine both sides ran on (pairs schema 3).
              "keras_version": "3.11.3", "cpu_model": "Intel(R) Xeon(R)", "logical_cores": 2,
              "physical_cores": 1, "memory_bytes": 25276071936, "cpu_affinity": "0-1",
              "cpu_frequency_mhz": 2596.1, "cpu_governor": "", "virtual_machine": "kvm",
              "container": "none"}
    # Side B names a nightly build (pairs schema 3); side A is an interpreter with 2.21.0.
    sides = ({"side_label": "A", "python": "/usr/bin/python3", "env_settings": "",
              "side_python": "/usr/bin/python3", "env_flags": "",
              "tensorflow_git_version": "v2.21.0-rc1-5-ga481b10260d",
              "tensorflow_commit": "a481b10260d"},
             {"side_label": "B", "python": "/opt/py/bin/python3",
              "env_settings": "TF_ENABLE_ONEDNN_OPTS=0", "side_python": "/opt/py/bin/python3",
              "env_flags": "TF_ENABLE_ONEDNN_OPTS=0",
              "build": "tf-nightly==2.23.0.dev20261026",
              "tensorflow_git_version": "v1.12.1-148158-gef696751006",
              "tensorflow_commit": "ef696751006"})
    sequence = 0
    for round_index in range(3):
        for variant, steps in (("xla-loop", 100), ("eager", 1)):
            order = (0, 1) if (round_index + steps) % 2 else (1, 0)
            for position, side in enumerate(order):
                writer.append({**common, **sides[side], "variant": variant,
                               "steps_per_call": steps, "side_index": side,
                               "round": round_index, "order_position": position,
                               "sequence": sequence,
                               "start_unix_ns": 1717243200 * 10**9 + sequence * 10**7,
                               "call_ns": [1000 + 10 * side + c for c in range(4)],
                               "status": "ok", "convention": "args" * (steps == 100),
                               "load_average": 0.5 + 0.25 * round_index,
                               "peak_rss_bytes": 1_048_576 * (1 + side)})
                sequence += 1
    writer.append({**common, **sides[1], "variant": "xla", "steps_per_call": 1,
                   "side_index": 1, "round": -1, "status": "failed", "convention": "args",
                   "message": "retraced 2 times"})
    writer.finish()


if __name__ == "__main__":
    main()
