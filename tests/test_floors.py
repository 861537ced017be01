"""Floors: the row columns on known numbers, measuring with a fake clock, the cache, the command."""

import json
from types import MappingProxyType

import pytest

from linfit._errors import DeviceError, LinfitError
from linfit.backends.base import Backend, Device
from linfit.cli import main
from linfit.floors import (
    FLOORS_FORMAT_VERSION,
    DeviceFloors,
    Floors,
    FloorsFileError,
    ProbeMeasurement,
    cache_dir_problem,
    cache_file_name,
    floor_columns,
    floors_json,
    load_or_measure,
    measure_floors,
    read_floors,
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
    assert (path, cached, fake.probes_made) == (tmp_path / "c.json", False, 3)
    second, _, cached = load_or_measure([fake], cache=tmp_path / "c.json", **settings)
    assert cached and second == first and fake.probes_made == 3


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


def test_floors_command_bad_cache_is_one_line_and_exit_2(tf_backend, tmp_path, capsys):
    cache = tmp_path / "floors.json"
    cache.write_text(json.dumps({"format_version": 99}))
    assert main(["floors", *TINY, "--cache", str(cache)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "format_version 99" in err
