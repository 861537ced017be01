"""linfit.machine: the machine's state on Linux, each figure absent (never an error) where its
file cannot be read, and the load and machine-difference warnings."""

from __future__ import annotations

import math
import os
import platform
import shutil
import stat
import sys
from pathlib import Path

import pytest

from linfit import machine
from linfit.machine import (
    MACHINE_COLUMNS,
    available_cpus,
    format_cpu_list,
    load_warning,
    machine_differences,
    machine_state,
    parse_cpu_list,
)

LINUX = sys.platform.startswith("linux")

# Two sockets of two cores with two threads each: 8 logical CPUs, 4 physical cores.
CPUINFO = "\n\n".join(
    f"processor\t: {cpu}\nmodel name\t: Test CPU\nphysical id\t: {cpu // 4}\n"
    f"core id\t\t: {cpu % 2}\ncpu MHz\t\t: {1000.0 + 100 * cpu}\n"
    "flags\t\t: fpu sse2 hypervisor" for cpu in range(8)) + "\n"


@pytest.fixture
def nowhere(tmp_path, monkeypatch) -> Path:
    """Every path linfit.machine reads points at something that cannot be read as a file
    (a folder, or nothing), and systemd-detect-virt is not installed."""
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for name in ("PROC_CPUINFO", "PROC_MEMINFO", "PROC_1_CGROUP"):
        monkeypatch.setattr(machine, name, folder)  # reading a folder raises OSError
    for name in ("SYS_CPU", "DMI_ID", "DOCKERENV", "CONTAINERENV"):
        monkeypatch.setattr(machine, name, tmp_path / "missing" / name)
    monkeypatch.setattr(machine, "DETECT_VIRT", str(tmp_path / "no-such-command"))
    return tmp_path


def _script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


# --- on this machine ------------------------------------------------------------------

@pytest.mark.skipif(not LINUX, reason="the figures are read from Linux's /proc and /sys")
def test_every_field_on_linux():
    state = machine_state()
    assert tuple(state) == MACHINE_COLUMNS
    assert state["logical_cores"] == os.cpu_count()
    assert 1 <= state["physical_cores"] <= state["logical_cores"]
    assert state["memory_bytes"] > 2**27  # more than 128 MiB
    assert parse_cpu_list(state["cpu_affinity"]) == tuple(sorted(os.sched_getaffinity(0)))
    assert state["cpu_frequency_mhz"] is None or state["cpu_frequency_mhz"] > 0
    assert isinstance(state["cpu_governor"], str)
    assert isinstance(state["virtual_machine"], str) and isinstance(state["container"], str)
    if platform.machine() == "x86_64" or shutil.which(machine.DETECT_VIRT):
        # The CPU flags (x86) or systemd-detect-virt tell a VM; /proc/1/cgroup a container.
        assert state["virtual_machine"] and state["container"]
    assert machine.load_average() >= 0


# --- absent where unreadable ----------------------------------------------------------

def test_nothing_readable_gives_empty_figures_not_an_error(nowhere, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", _raise(OSError("no load average")), raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    state = machine_state()
    assert state == {"logical_cores": os.cpu_count(), "physical_cores": None,
                     "memory_bytes": None, "cpu_affinity": "", "cpu_frequency_mhz": None,
                     "cpu_governor": "", "virtual_machine": "", "container": ""}
    assert machine.load_average() is None


def _raise(error: Exception):
    def fail(*args: object) -> None:
        raise error
    return fail


def test_cores_memory_and_frequency_from_the_files(nowhere, monkeypatch, tmp_path):
    cpuinfo, meminfo = tmp_path / "cpuinfo", tmp_path / "meminfo"
    cpuinfo.write_text(CPUINFO)
    meminfo.write_text("MemTotal:       24683664 kB\nMemFree:        20617864 kB\n")
    monkeypatch.setattr(machine, "PROC_CPUINFO", cpuinfo)
    monkeypatch.setattr(machine, "PROC_MEMINFO", meminfo)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 5}, raising=False)
    assert machine.physical_cores() == 4
    assert machine.memory_bytes() == 24683664 * 1024
    assert machine.cpu_affinity() == "0-2,5"
    # No cpufreq in sysfs: /proc/cpuinfo's MHz of the CPUs the process may use.
    assert machine.cpu_frequency_mhz() == pytest.approx((1000 + 1100 + 1200 + 1500) / 4)
    assert machine.cpu_governor() == ""


def test_frequency_and_governor_from_cpufreq(nowhere, monkeypatch, tmp_path):
    sys_cpu = tmp_path / "cpu"
    for cpu, (khz, governor) in enumerate([(2_000_000, "performance"), (3_000_000, "powersave"),
                                          (9_000_000, "ondemand")]):
        freq = sys_cpu / f"cpu{cpu}" / "cpufreq"
        freq.mkdir(parents=True)
        (freq / "scaling_cur_freq").write_text(f"{khz}\n")
        (freq / "scaling_governor").write_text(f"{governor}\n")
    monkeypatch.setattr(machine, "SYS_CPU", sys_cpu)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert machine.cpu_frequency_mhz() == 2500.0  # cpu2 is not ours
    assert machine.cpu_governor() == "performance,powersave"


def test_physical_cores_from_the_sysfs_topology_where_cpuinfo_has_no_core_ids(nowhere,
                                                                             monkeypatch,
                                                                             tmp_path):
    sys_cpu = tmp_path / "cpu"
    for cpu, siblings in enumerate(["0,2", "1,3", "0,2", "1,3"]):
        topology = sys_cpu / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "core_cpus_list").write_text(siblings + "\n")
    monkeypatch.setattr(machine, "SYS_CPU", sys_cpu)
    assert machine.physical_cores() == 2


# --- VM and container ------------------------------------------------------------------

@pytest.mark.parametrize(("body", "vm", "container"), [
    ('[ "$1" = --vm ] && echo kvm || echo docker', "kvm", "docker"),
    ("echo none; exit 1", "none", "none"),  # its answer where there is none
])
def test_systemd_detect_virt_is_asked_first(nowhere, monkeypatch, tmp_path, body, vm, container):
    monkeypatch.setattr(machine, "DETECT_VIRT", _script(tmp_path / "detect", body))
    assert (machine.virtual_machine(), machine.container()) == (vm, container)


def test_a_hung_systemd_detect_virt_is_given_up_on(nowhere, monkeypatch, tmp_path):
    monkeypatch.setattr(machine, "DETECT_VIRT", _script(tmp_path / "detect", "sleep 30"))
    monkeypatch.setattr(machine, "DETECT_VIRT_TIMEOUT_SECONDS", 0.2)
    assert (machine.virtual_machine(), machine.container()) == ("", "")


@pytest.mark.parametrize(("cpuinfo", "vendor", "expected"), [
    (CPUINFO, "QEMU\n", "qemu"),  # the flag, named by the DMI vendor
    (CPUINFO, None, "hypervisor"),  # the flag alone
    (CPUINFO.replace(" hypervisor", ""), None, "none"),  # flags without it: bare metal
    ("processor\t: 0\n", None, ""),  # no flags line (not x86): unknown
])
def test_a_vm_without_systemd_detect_virt(nowhere, monkeypatch, tmp_path, cpuinfo, vendor,
                                          expected):
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    monkeypatch.setattr(machine, "PROC_CPUINFO", tmp_path / "cpuinfo")
    if vendor is not None:
        (tmp_path / "dmi").mkdir()
        (tmp_path / "dmi" / "sys_vendor").write_text(vendor)
        monkeypatch.setattr(machine, "DMI_ID", tmp_path / "dmi")
    assert machine.virtual_machine() == expected


@pytest.mark.parametrize(("marker", "cgroup", "expected"), [
    ("DOCKERENV", None, "docker"),
    ("CONTAINERENV", None, "podman"),
    (None, "0::/kubepods/besteffort/pod1/abc\n", "kubepods"),
    (None, "0::/init.scope\n", "none"),
])
def test_a_container_without_systemd_detect_virt(nowhere, monkeypatch, tmp_path, marker, cgroup,
                                                 expected):
    if marker is not None:
        (tmp_path / "marker").write_text("")
        monkeypatch.setattr(machine, marker, tmp_path / "marker")
    if cgroup is not None:
        (tmp_path / "cgroup").write_text(cgroup)
        monkeypatch.setattr(machine, "PROC_1_CGROUP", tmp_path / "cgroup")
    assert machine.container() == expected


# --- CPU lists -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "cpus"), [("0-3,6", (0, 1, 2, 3, 6)), ("5", (5,)),
                                            ("", ()), ("0-1,x", ()), ("3-", ())])
def test_cpu_lists(text, cpus):
    assert parse_cpu_list(text) == cpus
    if cpus:
        assert format_cpu_list(reversed(cpus)) == text


# --- warnings --------------------------------------------------------------------------

TWO_CORES = {"cpu_affinity": "0-1", "logical_cores": 8, "physical_cores": 4,
             "memory_bytes": 24 * 2**30, "cpu_model": "AMD EPYC", "virtual_machine": "kvm",
             "container": "docker"}


def test_available_cpus_are_the_affinity_else_the_logical_cores():
    assert available_cpus(TWO_CORES) == 2
    assert available_cpus({**TWO_CORES, "cpu_affinity": ""}) == 8
    assert available_cpus({"logical_cores": -1}) is None  # a frame's "no integer"
    assert available_cpus({"logical_cores": math.nan, "cpu_affinity": ""}) is None


def test_a_load_above_the_available_cpus_is_a_warning():
    warning = load_warning({**TWO_CORES, "load_average_start": 0.4, "load_average_end": 3.1})
    assert warning is not None and warning.startswith(
        "the load average reached 3.10 with 2 CPU(s) available")
    assert load_warning({**TWO_CORES, "load_average_start": 0.4, "load_average_end": 2.0}) is None
    # A pairs file's bursts carry the load; NaN where one was not known.
    assert "reached 2.50" in load_warning(TWO_CORES, [1.0, math.nan, 2.5])
    assert load_warning({"load_average_start": 9.0}) is None  # CPUs unknown
    assert load_warning({**TWO_CORES, "load_average_start": None, "load_average_end": ""}) is None


def test_machine_differences_in_cores_memory_cpu_and_virtualisation():
    assert machine_differences(TWO_CORES, dict(TWO_CORES)) == []
    other = {**TWO_CORES, "cpu_affinity": "0-3", "logical_cores": 16,
             "memory_bytes": 64 * 2**30, "cpu_model": "Intel Xeon", "virtual_machine": "none"}
    assert machine_differences(TWO_CORES, other) == [
        "logical cores 8 vs 16", "available CPUs 2 vs 4", "memory 24.0 GiB vs 64.0 GiB",
        "CPU 'AMD EPYC' vs 'Intel Xeon'", "VM: kvm vs none"]
    # Kernels reserve different amounts of the same RAM: within 2% is the same memory.
    assert machine_differences(TWO_CORES, {**TWO_CORES, "memory_bytes": 24 * 2**30 - 2**28}) == []
    # Another hypervisor is still a VM; a figure unknown on one side is not compared.
    assert machine_differences(TWO_CORES, {**TWO_CORES, "virtual_machine": "qemu",
                                           "container": "", "logical_cores": math.nan,
                                           "physical_cores": -1, "cpu_model": None}) == []
