"""The machine's state, recorded with every result as pyperf records it with every run, and
the warnings linfit gives when a run's machine was busy or two runs' machines differ.

What is read (every reader returns None or '' where its source is missing or unreadable,
never raises): logical cores (``os.cpu_count``), physical cores (distinct ``physical id`` /
``core id`` pairs of /proc/cpuinfo, else the distinct core sibling lists of sysfs), memory
(``MemTotal`` of /proc/meminfo), the CPUs this process may run on
(``os.sched_getaffinity``), the 1-minute load average (``os.getloadavg``), the mean current
frequency and the scaling governors of those CPUs (sysfs ``cpufreq``, else the ``cpu MHz``
lines of /proc/cpuinfo), and whether this is a virtual machine or a container
(``systemd-detect-virt`` where installed, else the ``hypervisor`` CPU flag and the DMI
vendor for a VM, and /.dockerenv, /run/.containerenv and /proc/1/cgroup for a container).

The paths are module constants so that the tests can point them at files of their own.
Nothing here imports linfit.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DETECT_VIRT_TIMEOUT_SECONDS",
    "MACHINE_COLUMNS",
    "MEMORY_TOLERANCE",
    "NO_VIRTUALISATION",
    "available_cpus",
    "container",
    "cpu_affinity",
    "cpu_frequency_mhz",
    "cpu_governor",
    "format_cpu_list",
    "load_average",
    "load_warning",
    "machine_differences",
    "machine_state",
    "memory_bytes",
    "parse_cpu_list",
    "physical_cores",
    "virtual_machine",
]

# The state machine_state() returns, as result columns (the load averages are the harness's:
# at the start and the end of a run).
MACHINE_COLUMNS = ("logical_cores", "physical_cores", "memory_bytes", "cpu_affinity",
                   "cpu_frequency_mhz", "cpu_governor", "virtual_machine", "container")

# What the readers read; tests point these elsewhere.
PROC_CPUINFO = Path("/proc/cpuinfo")
PROC_MEMINFO = Path("/proc/meminfo")
PROC_1_CGROUP = Path("/proc/1/cgroup")
SYS_CPU = Path("/sys/devices/system/cpu")
DMI_ID = Path("/sys/class/dmi/id")
DOCKERENV = Path("/.dockerenv")
CONTAINERENV = Path("/run/.containerenv")  # podman's marker
DETECT_VIRT = "systemd-detect-virt"
# systemd-detect-virt answers in milliseconds; a hung one must not hold a run up.
DETECT_VIRT_TIMEOUT_SECONDS = 2.0

# The word for "detectably neither a VM nor a container" (systemd-detect-virt's own).
NO_VIRTUALISATION = "none"
# Words of /proc/1/cgroup that name a container manager, in the order they are looked for.
_CGROUP_CONTAINERS = ("kubepods", "docker", "containerd", "lxc", "libpod")
# DMI vendors and products of common hypervisors (lower case) -> the name recorded.
_DMI_HYPERVISORS = (("qemu", "qemu"), ("kvm", "kvm"), ("vmware", "vmware"),
                    ("virtualbox", "oracle"), ("xen", "xen"), ("microsoft", "microsoft"),
                    ("amazon ec2", "amazon"), ("google compute engine", "google"))
# Two machines' memory counts as the same within this fraction: kernels of different
# versions reserve different amounts of the same RAM (tens of MB of 24 GiB here).
MEMORY_TOLERANCE = 0.02
_GIB = 2**30


def _read(path: Path) -> str | None:
    """A text file's content; None where it cannot be read."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _cpuinfo_blocks() -> list[dict[str, str]]:
    """One dict per processor block of /proc/cpuinfo (empty where unreadable)."""
    text = _read(PROC_CPUINFO) or ""
    blocks = []
    for block in re.split(r"\n\s*\n", text):
        fields = {}
        for line in block.splitlines():
            name, colon, value = line.partition(":")
            if colon:
                fields[name.strip()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """``0-3,6`` (the kernel's CPU list format) -> (0, 1, 2, 3, 6); () for '' or bad text."""
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            return ()
        cpus.update(range(int(low), int(high if dash else low) + 1))
    return tuple(sorted(cpus))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """(0, 1, 2, 3, 6) -> ``0-3,6``."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = previous = None
    for cpu in [*ordered, None]:
        if previous is not None and cpu == previous + 1:
            previous = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = cpu
    return ",".join(parts)


def cpu_affinity() -> str:
    """The CPUs this process may run on, as a CPU list (``0-1``); '' where unknown."""
    try:
        return format_cpu_list(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return ""


def physical_cores() -> int | None:
    """Physical cores: distinct (physical id, core id) of /proc/cpuinfo, else distinct core
    sibling lists in sysfs; None where neither says."""
    pairs = {(block.get("physical id", "0"), block["core id"])
             for block in _cpuinfo_blocks() if "core id" in block}
    if pairs:
        return len(pairs)
    siblings = set()
    for cpu in SYS_CPU.glob("cpu[0-9]*"):
        text = (_read(cpu / "topology" / "core_cpus_list")
                or _read(cpu / "topology" / "thread_siblings_list"))
        if text:
            siblings.add(text.strip())
    return len(siblings) or None


def memory_bytes() -> int | None:
    """Physical memory (MemTotal of /proc/meminfo), bytes; None where unreadable."""
    match = re.search(r"^MemTotal:\s*([0-9]+)\s*kB", _read(PROC_MEMINFO) or "", re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def load_average() -> float | None:
    """The 1-minute load average now; None where the system has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def _my_cpus() -> tuple[int, ...]:
    return parse_cpu_list(cpu_affinity())


def cpu_frequency_mhz() -> float | None:
    """The mean current frequency of the CPUs this process may run on, MHz (sysfs
    ``scaling_cur_freq``, else /proc/cpuinfo's ``cpu MHz``); None where neither is there."""
    cpus = _my_cpus()
    khz = [_read(SYS_CPU / f"cpu{cpu}" / "cpufreq" / "scaling_cur_freq") for cpu in cpus]
    values = [int(text) / 1000 for text in khz if text and text.strip().isdigit()]
    if not values:
        wanted = set(cpus)
        for block in _cpuinfo_blocks():
            try:
                if not wanted or int(block.get("processor", "-1")) in wanted:
                    values.append(float(block["cpu MHz"]))
            except (KeyError, ValueError):
                continue
    return round(sum(values) / len(values), 1) if values else None


def cpu_governor() -> str:
    """The scaling governors of the CPUs this process may run on, distinct, comma-separated
    (``performance``); '' where not readable (no cpufreq in a VM, for one)."""
    texts = (_read(SYS_CPU / f"cpu{cpu}" / "cpufreq" / "scaling_governor") for cpu in _my_cpus())
    return ",".join(sorted({text.strip() for text in texts if text and text.strip()}))


def _detect_virt(flag: str) -> str | None:
    """systemd-detect-virt's answer for ``--vm`` or ``--container`` (it prints ``none`` and
    exits 1 where there is none); None where it is not installed or does not answer."""
    try:
        done = subprocess.run([DETECT_VIRT, flag], capture_output=True, text=True,
                              timeout=DETECT_VIRT_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    answer = done.stdout.strip()
    return answer if done.returncode in (0, 1) and answer else None


def virtual_machine() -> str:
    """The hypervisor this runs under (``kvm``, ``qemu``, ...), ``none`` on bare metal, ''
    where it cannot be told (no systemd-detect-virt, no CPU flags to read)."""
    answer = _detect_virt("--vm")
    if answer:
        return answer
    blocks = _cpuinfo_blocks()
    flags = next((block["flags"].split() for block in blocks if "flags" in block), None)
    dmi = " ".join(filter(None, (_read(DMI_ID / name) for name in ("sys_vendor",
                                                                  "product_name")))).lower()
    named = next((name for word, name in _DMI_HYPERVISORS if word in dmi), "")
    if flags is not None and "hypervisor" in flags:
        return named or "hypervisor"
    if named:
        return named
    # The flag is x86's: without any flags line (another architecture) nothing is known.
    return NO_VIRTUALISATION if flags is not None else ""


def container() -> str:
    """The container this runs in (``docker``, ``podman``, ...), ``none`` where there is
    detectably none, '' where it cannot be told."""
    answer = _detect_virt("--container")
    if answer:
        return answer
    if DOCKERENV.exists():
        return "docker"
    if CONTAINERENV.exists():
        return "podman"
    cgroup = _read(PROC_1_CGROUP)
    if cgroup is None:
        return ""
    return next((word for word in _CGROUP_CONTAINERS if word in cgroup), NO_VIRTUALISATION)


def machine_state() -> dict[str, Any]:
    """:data:`MACHINE_COLUMNS` as now: None or '' where a figure cannot be read."""
    return {"logical_cores": os.cpu_count(), "physical_cores": physical_cores(),
            "memory_bytes": memory_bytes(), "cpu_affinity": cpu_affinity(),
            "cpu_frequency_mhz": cpu_frequency_mhz(), "cpu_governor": cpu_governor(),
            "virtual_machine": virtual_machine(), "container": container()}


# --- warnings --------------------------------------------------------------------------


def _known(value: Any) -> Any:
    """A recorded value, or None where it is missing: None, '', NaN, or a negative number
    (no count, size or load is negative; -1 is pandas frames' usual "no integer")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return None
    return value


def available_cpus(facts: Mapping[str, Any]) -> int | None:
    """The CPUs a run could use: its affinity list's length, else its logical cores."""
    affinity = _known(facts.get("cpu_affinity"))
    cpus = parse_cpu_list(str(affinity)) if affinity is not None else ()
    if cpus:
        return len(cpus)
    cores = _known(facts.get("logical_cores"))
    return int(cores) if cores is not None else None


def load_warning(facts: Mapping[str, Any], loads: Iterable[Any] = ()) -> str | None:
    """Why a run's machine was busier than it had CPUs, or None.

    The 1-minute load average counts runnable threads, the benchmark's own among them; above
    the CPUs the run could use, threads waited for a CPU while it was timed (pyperf's
    ``system show`` flags a loaded machine the same way).

    Args:
        facts: the run's facts (``load_average_start``, ``load_average_end``,
            ``cpu_affinity``, ``logical_cores``).
        loads: further load averages taken during the run (a pairs file's bursts).

    Returns:
        One line without a prefix, or None when the load stayed within the CPUs or is not
        known.
    """
    cpus = available_cpus(facts)
    values = [float(v) for v in (facts.get("load_average_start"),
                                 facts.get("load_average_end"), *loads) if _known(v) is not None]
    if cpus is None or not values or max(values) <= cpus:
        return None
    return (f"the load average reached {max(values):.2f} with {cpus} CPU(s) available: "
            "threads waited for a CPU during the run (other work, or more framework threads "
            "than CPUs), so its times may be inflated")


def _is_virtual(value: Any) -> bool | None:
    known = _known(value)
    return None if known is None else str(known) != NO_VIRTUALISATION


def _memory(value: Any) -> str:
    return f"{float(value) / _GIB:.1f} GiB"


def machine_differences(base: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """How two runs' machines differ in what changes a time: cores (logical, physical and
    available), memory (beyond :data:`MEMORY_TOLERANCE`), CPU model, and whether each is a
    VM and a container. A figure unknown on either side is not compared.

    Returns:
        One phrase per difference (``logical cores 2 vs 4``), base first; empty when the
        machines agree in everything known.
    """
    out = []
    for column, what in (("logical_cores", "logical cores"),
                         ("physical_cores", "physical cores")):
        a, b = _known(base.get(column)), _known(new.get(column))
        if a is not None and b is not None and int(a) != int(b):
            out.append(f"{what} {int(a)} vs {int(b)}")
    a_cpus, b_cpus = available_cpus(base), available_cpus(new)
    if a_cpus is not None and b_cpus is not None and a_cpus != b_cpus:
        out.append(f"available CPUs {a_cpus} vs {b_cpus}")
    a, b = _known(base.get("memory_bytes")), _known(new.get("memory_bytes"))
    if a is not None and b is not None and abs(float(a) - float(b)) > MEMORY_TOLERANCE * max(
            float(a), float(b)):
        out.append(f"memory {_memory(a)} vs {_memory(b)}")
    a, b = _known(base.get("cpu_model")), _known(new.get("cpu_model"))
    if a is not None and b is not None and a != b:
        out.append(f"CPU {a!r} vs {b!r}")
    for column, what in (("virtual_machine", "VM"), ("container", "container")):
        a, b = _is_virtual(base.get(column)), _is_virtual(new.get(column))
        if a is not None and b is not None and a != b:
            out.append(f"{what}: {base[column]} vs {new[column]}")
    return out
