"""Floors: the row columns on known numbers, probe rounds and their spread, measuring with a
fake clock, the cache and its rounds, the command."""

import json
from types import MappingProxyType

import pytest

from linfit._errors import DeviceError, LinfitError
from linfit.backends.base import Backend, Device
from linfit.cli import main
from linfit.floors import (
    FLOORS_FORMAT_VERSION,
    MAX_CACHED_ROUNDS,
    DeviceFloors,
    Floors,
    FloorsFileError,
    ProbeMeasurement,
    cache_dir_problem,
    cache_file_name,
    cell_round_floors,
    floor_columns,
    floors_json,
    latest_rounds,
    load_or_measure,
    measure_floors,
    merge_rounds,
    read_floors,
    rounds_summary,
    spread,
    update_cache,
    write_floors,
)

KEY = (("cpu_model", "Test CPU"), ("host", "testhost"))


def _floors() -> Floors:
    """CPU:0 reads 10 GB/s with tensorflow, 20 GB/s with numpy; dispatch 20 us (tf), 5 us (jax)."""
    measurements = (
        ProbeMeasurement("read", "tensorflow", 10**9, 1, (0.1, 0.1, 0.3)),
        ProbeMeasurement("read", "numpy", 10**9, 1, (0.06, 0.05, 0.04)),
        ProbeMeasurement("copy", "tensorflow", 2 * 10**9, 1, (0.5, 0.4, 0.4)),
        ProbeMeasurement("dispatch", "tensorflow", 0, 100, (1e-5, 2e-5, 3e-5)),
        ProbeMeasurement("dispatch", "jax", 0, 100, (5e-6, 5e-6, 9e-6)),
    )
    return Floors(KEY, "2026-11-27T00:00:00+00:00",
                  (DeviceFloors("CPU:0", "CPU", "Test CPU", 1000, 3, measurements),))


def _rounds() -> Floors:
    """Three rounds on CPU:0: (read seconds for 1e9 bytes, tensorflow dispatch seconds)
    = (0.1, 4e-5), (0.05, 8e-5), (0.08, 2e-5): round 1 reads fastest, round 2 dispatches
    fastest."""
    measurements = tuple(
        m for index, (read, dispatch) in enumerate([(0.1, 4e-5), (0.05, 8e-5), (0.08, 2e-5)])
        for m in (
            ProbeMeasurement("read", "tensorflow", 10**9, 1, (read,) * 3, index,
                             f"2026-11-27T00:0{index}:00+00:00"),
            ProbeMeasurement("dispatch", "tensorflow", 0, 100, (dispatch,) * 3, index,
                             f"2026-11-27T00:0{index}:00+00:00"),
        ))
    return Floors(KEY, "2026-11-27T00:00:00+00:00",
                  (DeviceFloors("CPU:0", "CPU", "Test CPU", 1000, 3, measurements),))


def test_a_cell_floor_is_the_best_round_and_keeps_the_spread_of_the_rounds():
    floors = _rounds()
    assert floors.rounds == 3
    # n=1e8 float32: 8e8 bytes, read-bound in every round: 0.08, 0.04 and 0.064 s.
    read_bound = floor_columns(floors, "tensorflow", "CPU:0", 10**8, "float32", 1, 0.16)
    assert [r.floor_seconds for r in cell_round_floors(
        floors, "tensorflow", "CPU:0", 10**8, "float32", 1)] == pytest.approx([0.08, 0.04, 0.064])
    assert read_bound["floor_seconds"] == pytest.approx(0.04)
    assert read_bound["read_bandwidth_bytes_per_second"] == pytest.approx(2e10)  # round 1's
    assert read_bound["dispatch_floor_seconds"] == pytest.approx(8e-5)  # round 1's too
    assert read_bound["floor_rounds"] == 3
    assert read_bound["floor_spread"] == pytest.approx(0.08 / 0.04)
    assert read_bound["efficiency"] == pytest.approx(0.25)
    # n=1000: 8000 bytes take under a microsecond; dispatch-bound: 4e-5, 8e-5, 2e-5 s.
    dispatch_bound = floor_columns(floors, "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4)
    assert dispatch_bound["floor_seconds"] == pytest.approx(2e-5)  # round 2's
    assert dispatch_bound["read_bandwidth_bytes_per_second"] == pytest.approx(1.25e10)
    assert dispatch_bound["floor_spread"] == pytest.approx(4.0)
    # Within a row the floor stays max(bytes_min / bandwidth, dispatch / k).
    for columns, k in ((read_bound, 1), (dispatch_bound, 1)):
        assert columns["floor_seconds"] == pytest.approx(max(
            columns["bytes_min"] / columns["read_bandwidth_bytes_per_second"],
            columns["dispatch_floor_seconds"] / k))


def test_one_round_has_no_spread_and_the_device_figures_are_the_best_of_the_rounds():
    single = floor_columns(_floors(), "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4)
    assert (single["floor_rounds"], single["floor_spread"]) == (1, 1.0)
    device = _rounds().device("CPU:0")
    assert device.rounds == (0, 1, 2)
    assert device.read_bandwidth_bytes_per_second == pytest.approx(2e10)
    assert device.dispatch_floor_seconds == pytest.approx({"tensorflow": 2e-5})
    assert device.read_spread == pytest.approx(2.0)
    assert device.dispatch_spread == pytest.approx({"tensorflow": 4.0})
    assert rounds_summary(_rounds(), cached_rounds=2) == (
        "3 rounds (2 cached), read floor spread 2.00x, dispatch spread 4.00x")
    assert rounds_summary(_floors()) == (
        "1 round, read floor spread 1.00x, dispatch spread 1.00x")


def test_merge_and_latest_rounds_renumber_in_time_order():
    floors = _rounds()
    merged = merge_rounds(floors, latest_rounds(floors, 1))
    assert merged.rounds == 4 and merged.device("CPU:0").rounds == (0, 1, 2, 3)
    # The last round of the second part is round 3 now, with its figures.
    last = [m for m in merged.device("CPU:0").measurements if m.round_index == 3]
    assert [m.median_seconds for m in last] == pytest.approx([0.08, 2e-5])
    kept = latest_rounds(merged, 2)
    assert kept.device("CPU:0").rounds == (0, 1)
    assert kept.measured_utc == "2026-11-27T00:02:00+00:00"
    assert latest_rounds(floors, 10) == floors
    other = Floors((("host", "elsewhere"),), floors.measured_utc, floors.devices)
    with pytest.raises(ValueError, match="one key"):
        merge_rounds(floors, other)


def test_device_floors_take_the_best_probe_and_name_it():
    device = _floors().device("CPU:0")
    assert device.read_bandwidth_bytes_per_second == pytest.approx(2e10)
    assert device.read_probe == "numpy"
    assert device.copy_bandwidth_bytes_per_second == pytest.approx(5e9)
    assert device.copy_probe == "tensorflow"
    assert device.dispatch_floor_seconds == pytest.approx({"tensorflow": 2e-5, "jax": 5e-6})


def test_floor_columns_at_large_n_is_the_read_floor():
    columns = floor_columns(_floors(), "tensorflow", "CPU:0", 10**6, "float32", 1, 8e-4)
    assert columns["bytes_min"] == 8 * 10**6
    assert columns["read_bandwidth_bytes_per_second"] == pytest.approx(2e10)
    assert columns["dispatch_floor_seconds"] == pytest.approx(2e-5)
    assert columns["floor_seconds"] == pytest.approx(4e-4)  # 8e6 B / 2e10 B/s
    assert columns["efficiency"] == pytest.approx(0.5)


def test_floor_columns_at_small_n_is_the_dispatch_floor_shared_by_the_loop():
    one_step = floor_columns(_floors(), "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4)
    assert one_step["floor_seconds"] == pytest.approx(2e-5)
    assert one_step["efficiency"] == pytest.approx(0.2)
    loop = floor_columns(_floors(), "jax", "CPU:0", 1000, "float32", 100, 1e-6)
    # 5e-6 s / 100 steps = 5e-8 s is below the read floor of 8000 B / 2e10 B/s = 4e-7 s.
    assert loop["floor_seconds"] == pytest.approx(4e-7)
    assert loop["efficiency"] == pytest.approx(0.4)


@pytest.mark.parametrize(("dtype", "bytes_per_example"),
                         [("float64", 16), ("float16", 4), ("bfloat16", 4)])
def test_bytes_min_counts_x_and_y_in_the_dtype(dtype, bytes_per_example):
    columns = floor_columns(_floors(), "tensorflow", "CPU:0", 1000, dtype, 1, 1.0)
    assert columns["bytes_min"] == 1000 * bytes_per_example


@pytest.mark.parametrize(("backend", "device", "median", "message"), [
    ("tensorflow", "GPU:0", 1.0, "no floors were measured for GPU:0; measured: CPU:0"),
    ("torch", "CPU:0", 1.0, "no torch dispatch floor was measured on CPU:0"),
    ("tensorflow", "CPU:0", 0.0, "median_seconds must be a finite number > 0"),
    ("tensorflow", "CPU:0", float("nan"), "median_seconds must be a finite number > 0"),
])
def test_floor_columns_refuses_what_it_cannot_compute(backend, device, median, message):
    with pytest.raises(LinfitError, match=message):
        floor_columns(_floors(), backend, device, 1000, "float32", 1, median)


def _poisoned(samples: tuple[float, ...], bytes_per_call: int = 10**9) -> Floors:
    """_rounds() with a round 3 whose read and dispatch figures are ``samples``."""
    rounds = _rounds()
    device = rounds.devices[0]
    bad = (ProbeMeasurement("read", "tensorflow", bytes_per_call, 1, samples, 3),
           ProbeMeasurement("dispatch", "tensorflow", 0, 100, samples, 3))
    return Floors(KEY, rounds.measured_utc,
                  (DeviceFloors("CPU:0", "CPU", "Test CPU", 1000, 3,
                                device.measurements + bad),))


@pytest.mark.parametrize("samples", [
    (float("nan"),) * 3, (float("inf"),) * 3, (0.0,) * 3, (-0.1,) * 3, (0.1, float("nan"), 0.1),
    (), (5e-324,) * 3])
def test_figures_that_are_not_finite_times_are_unknown_not_a_crash(samples):
    """Issue 20: a cache whose figures parse but are not finite times > 0 made every cell's
    spread divide by zero. Such a figure is left out of every floor, as if not measured."""
    floors = _poisoned(samples)
    device = floors.devices[0]
    subnormal = samples == (5e-324,) * 3
    # A read in a subnormal time is an infinite bandwidth: unknown. A dispatch in one is a
    # time > 0, but its spread against the others overflows: the summary leaves it out.
    assert len(device.unusable_measurements) == (1 if subnormal else 2)
    assert floor_columns(floors, "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4) == (
        floor_columns(_rounds(), "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4))
    assert rounds_summary(floors) == "4 rounds, read floor spread 2.00x" + (
        "" if subnormal else ", dispatch spread 4.00x")


def test_a_read_probe_of_no_bytes_is_unknown_and_only_unknown_figures_leave_no_floor():
    no_bytes = _poisoned((0.1,) * 3, bytes_per_call=0).devices[0]
    assert [(m.kind, m.round_index) for m in no_bytes.unusable_measurements] == [("read", 3)]
    only_bad = Floors(KEY, "", (DeviceFloors("CPU:0", "CPU", "Test CPU", 1000, 3, (
        ProbeMeasurement("read", "tensorflow", 10**9, 1, (0.0,) * 3),
        ProbeMeasurement("dispatch", "tensorflow", 0, 100, (float("nan"),) * 3))),))
    with pytest.raises(LinfitError, match="no tensorflow dispatch floor was measured"):
        floor_columns(only_bad, "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4)
    assert rounds_summary(only_bad) == "1 round"


@pytest.mark.parametrize("values", [[1.0, 0.0], [1.0, float("nan")], [float("inf"), 1.0],
                                    [-1.0, 2.0]])
def test_spread_refuses_figures_that_are_not_finite_and_positive(values):
    with pytest.raises(ValueError, match="finite figures > 0"):
        spread(values)
    with pytest.raises(ValueError, match="too large for a float"):
        spread([1e300, 1e-300])


class _FakeBackend(Backend):
    """A GPU whose probes advance a fake clock: reads take 10 ms, copies 40 ms, calls 7 us."""

    name = "fake"
    variants = MappingProxyType({})

    def __init__(self) -> None:
        self.now = 0.0
        self.probes_made = 0

    @property
    def version(self) -> str:
        return "1.0"

    def devices(self) -> list[Device]:
        return [Device(self.name, "GPU:0", "GPU", "Fake GPU", "driver=1")]

    def _make_trainer(self, variant, device, data, learning_rate, steps_per_call):
        raise NotImplementedError

    def _probe(self, seconds: float):
        self.probes_made += 1

        def call() -> None:
            self.now += seconds

        return call

    def read_probe(self, device, n_elements):
        return self._probe(0.01)

    def copy_probe(self, device, n_elements):
        return self._probe(0.04)

    def dispatch_probe(self, device):
        return self._probe(7e-6)

    def clock(self) -> float:
        return self.now


def test_measure_floors_medians_of_the_samples():
    fake = _FakeBackend()
    floors = measure_floors([fake], probe_elements=1000, repeats=3, dispatch_calls=5,
                            clock=fake.clock)
    device = floors.device("GPU:0")
    assert (device.device_kind, device.device_name, device.repeats) == ("GPU", "Fake GPU", 3)
    assert [(m.kind, m.probe) for m in device.measurements] == [
        ("read", "fake"), ("copy", "fake"), ("dispatch", "fake")]
    assert all(len(m.samples_seconds) == 3 for m in device.measurements)
    assert device.read_bandwidth_bytes_per_second == pytest.approx(4000 / 0.01)
    assert device.copy_bandwidth_bytes_per_second == pytest.approx(8000 / 0.04)
    assert device.dispatch_floor_seconds == pytest.approx({"fake": 7e-6})
    key = dict(floors.key)
    assert key["fake GPU:0"] == "Fake GPU driver=1"
    assert key["fake version"] == "1.0" and key["probe_elements"] == "1000"


def test_measure_floors_takes_rounds_back_to_back():
    fake = _FakeBackend()
    floors = measure_floors([fake], probe_elements=1000, repeats=2, dispatch_calls=1,
                            rounds=3, clock=fake.clock)
    device = floors.device("GPU:0")
    assert floors.rounds == 3 and fake.probes_made == 9
    assert [m.round_index for m in device.measurements] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert all(m.measured_utc.endswith("+00:00") for m in device.measurements)
    assert device.read_spread == pytest.approx(1.0)
    with pytest.raises(LinfitError, match="rounds must be an integer >= 1"):
        measure_floors([fake], probe_elements=10, repeats=1, rounds=0)


def test_measure_floors_refuses_unknown_devices_and_bad_settings():
    with pytest.raises(DeviceError, match="no backend has device 'TPU:0'; devices: GPU:0"):
        measure_floors([_FakeBackend()], ["TPU:0"], probe_elements=10, repeats=1)
    with pytest.raises(LinfitError, match="repeats must be an integer >= 1"):
        measure_floors([_FakeBackend()], probe_elements=10, repeats=0)


def test_cache_round_trip(tmp_path):
    floors = _floors()
    path = write_floors(floors, tmp_path / "floors.json")
    assert read_floors(path) == floors
    with pytest.raises(FileExistsError):
        write_floors(floors, path)


def test_load_or_measure_measures_once_then_reads_the_cache(tmp_path):
    fake = _FakeBackend()
    settings = {"probe_elements": 1000, "repeats": 3, "dispatch_calls": 2}
    first, path, cached = load_or_measure([fake], cache=tmp_path / "c.json", **settings)
    assert (path, cached, fake.probes_made) == (tmp_path / "c.json", 0, 3)
    second, _, cached = load_or_measure([fake], cache=tmp_path / "c.json", **settings)
    assert cached == 1 and second == first and fake.probes_made == 3


def test_the_cache_keeps_the_most_recent_rounds_and_each_call_can_add_one(tmp_path):
    fake = _FakeBackend()
    settings = {"probe_elements": 1000, "repeats": 1, "dispatch_calls": 1, "clock": fake.clock}
    cache = tmp_path / "c.json"
    for call in range(MAX_CACHED_ROUNDS + 2):
        floors, path, cached = load_or_measure([fake], cache=cache, measure_when_cached=True,
                                               **settings)
        assert path == cache and cached == min(call, MAX_CACHED_ROUNDS)
        # The floors of the call: every cached round and the new one.
        assert floors.rounds == cached + 1
        assert read_floors(cache).rounds == min(call + 1, MAX_CACHED_ROUNDS)
    assert list(tmp_path.iterdir()) == [cache]  # replaced atomically, no temporary left
    times = [m.measured_utc for m in read_floors(cache).devices[0].measurements]
    assert times == sorted(times)


def test_update_cache_replaces_the_file_and_says_when_it_cannot(tmp_path):
    cache = write_floors(_floors(), tmp_path / "c.json")
    assert update_cache(cache, _rounds()) == cache
    assert read_floors(cache) == _rounds()
    (tmp_path / "file").write_text("")
    assert update_cache(tmp_path / "file" / "c.json", _rounds()) is None


def test_a_version_1_file_reads_as_one_round(tmp_path):
    document = floors_json(_floors())
    document["format_version"] = 1
    for device in document["devices"]:
        for measurement in device["measurements"]:
            del measurement["round_index"], measurement["measured_utc"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(document))
    floors = read_floors(path)
    assert floors.rounds == 1
    assert {(m.round_index, m.measured_utc) for m in floors.devices[0].measurements} == {
        (0, "2026-11-27T00:00:00+00:00")}
    assert floor_columns(floors, "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4) == (
        floor_columns(_floors(), "tensorflow", "CPU:0", 1000, "float32", 1, 1e-4))


@pytest.mark.parametrize("variable", ["XDG_CACHE_HOME", "HOME"])
def test_an_unusable_default_cache_folder_measures_without_a_cache(tmp_path, monkeypatch,
                                                                  variable):
    # Issue 10: HOME or XDG_CACHE_HOME naming a file gave pytest bench/ an INTERNALERROR.
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(variable, str(blocker))
    if variable == "HOME":
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir_problem().startswith(f"{blocker} is not a directory")
    fake = _FakeBackend()
    _, path, cached = load_or_measure([fake], probe_elements=10, repeats=1, dispatch_calls=1)
    assert (path, cached, fake.probes_made) == (None, False, 3)
    assert blocker.read_text() == ""


def test_the_cache_refuses_another_machine(tmp_path):
    fake = _FakeBackend()
    floors, path, _ = load_or_measure([fake], cache=tmp_path / "c.json", probe_elements=10,
                                      repeats=1, dispatch_calls=1)
    document = json.loads(path.read_text())
    document["key"]["host"] = "elsewhere"
    path.write_text(json.dumps(document))
    with pytest.raises(FloorsFileError, match=r"another machine.*differs in: host"):
        load_or_measure([fake], cache=path, probe_elements=10, repeats=1, dispatch_calls=1)
    # Other probe settings are another measurement too.
    path.write_text(json.dumps(floors_json(floors)))
    with pytest.raises(FloorsFileError, match="differs in: probe_elements"):
        load_or_measure([fake], cache=path, probe_elements=20, repeats=1, dispatch_calls=1)
    # So is a cache made by older probes (issue 12 changed TensorFlow's dispatch probe).
    document["key"] = {**floors_json(floors)["key"], "probes_version": "1"}
    path.write_text(json.dumps(document))
    with pytest.raises(FloorsFileError, match="differs in: probes_version"):
        load_or_measure([fake], cache=path, probe_elements=10, repeats=1, dispatch_calls=1)


@pytest.mark.parametrize(("text", "message"), [
    (json.dumps({**floors_json(_floors()), "format_version": FLOORS_FORMAT_VERSION + 1}),
     f"format_version {FLOORS_FORMAT_VERSION + 1} is not one this linfit reads"),
    ("{not json", "not JSON"),
    (json.dumps({"devices": []}), "not a linfit floors file"),
    (json.dumps({"format_version": FLOORS_FORMAT_VERSION, "key": {}}), "missing or malformed"),
    (json.dumps({**floors_json(_floors()), "devices": [{
        **floors_json(_floors())["devices"][0],
        "measurements": [{**floors_json(_floors())["devices"][0]["measurements"][0],
                          "round_index": -1}]}]}), "round_index -1 is negative"),
])
def test_read_floors_refuses_unknown_versions_and_other_files(tmp_path, text, message):
    path = tmp_path / "floors.json"
    path.write_text(text)
    with pytest.raises(FloorsFileError, match=message) as error:
        read_floors(path)
    assert str(path) in str(error.value)


def test_cache_file_name_names_the_host_and_hashes_the_rest():
    key = dict(KEY)
    name = cache_file_name(key)
    assert name.startswith("floors-testhost-") and name.endswith(".json")
    assert cache_file_name(key) == name
    assert cache_file_name({**key, "cpu_model": "Other CPU"}) != name


TINY = ["--backend", "tensorflow", "--device", "CPU:0", "--probe-elements", "4096",
        "--repeats", "3", "--dispatch-calls", "5"]


def test_floors_command_on_cpu(tf_backend, tmp_path, capsys):
    cache = tmp_path / "floors.json"
    assert main(["floors", *TINY, "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[:3] for line in out.splitlines()]
    assert rows[0] == ["device", "kind", "probe"]
    assert ["CPU:0", "read", "tensorflow"] in rows and ["CPU:0", "read", "numpy"] in rows
    assert ["CPU:0", "copy", "numpy"] in rows and ["CPU:0", "dispatch", "tensorflow"] in rows
    assert "CPU:0: read floor" in out and f"written to {cache}" in out
    assert main(["floors", *TINY, "--cache", str(cache), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format_version"] == FLOORS_FORMAT_VERSION
    assert [d["device"] for d in document["devices"]] == ["CPU:0"]
    assert main(["floors", *TINY, "--cache", str(cache)]) == 0
    assert f"read from {cache}" in capsys.readouterr().out


def test_floors_command_rounds(tf_backend, tmp_path, capsys):
    cache = tmp_path / "floors.json"
    assert main(["floors", *TINY, "--cache", str(cache), "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["device", "kind", "probe", "best", "worst", "spread",
                                           "rate", "(best)"]
    assert "CPU:0: read floor" in out and "in the worst: spread" in out
    assert "CPU:0: tensorflow dispatch floor" in out
    assert "2 round(s) since" in out and "0 from the cache, 2 measured now" in out
    assert read_floors(cache).rounds == 2
    # Given with a cache, --rounds measures and adds them; --json holds every round.
    assert main(["floors", *TINY, "--cache", str(cache), "--rounds", "1", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {m["round_index"] for m in document["devices"][0]["measurements"]} == {0, 1, 2}
    assert read_floors(cache).rounds == 3
    assert main(["floors", *TINY, "--no-cache", "--rounds", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "linfit floors: error: argument --rounds: 0 must be an integer >= 1\n"


def test_floors_command_bad_cache_is_one_line_and_exit_2(tf_backend, tmp_path, capsys):
    cache = tmp_path / "floors.json"
    cache.write_text(json.dumps({"format_version": 99}))
    assert main(["floors", *TINY, "--cache", str(cache)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "format_version 99" in err
