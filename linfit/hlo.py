"""An account of a compiled step from its optimized HLO text: kernels, loops, bytes moved.

Pure text processing: no framework is imported, so an HLO text saved from any environment
(``linfit explain --hlo``, the HLO files ``linfit ab`` keeps beside a pairs file) reads
anywhere. The backends hand over the text the cell really runs
(:meth:`linfit.backends.base.Trainer.compiled_hlo`) as an :class:`HloProgram`;
:func:`account` turns it into an :class:`HloAccount`; :func:`diff_accounts` says what came
and went between two programs.

What is counted (docs/hlo.md):

- **A kernel** is one launch of work in a computation that runs as a sequence (the entry,
  a while loop's body and condition, a branch of a conditional, a ``call``'s target): a
  fusion, a custom call, or an unfused op. Free, and not counted: :data:`FREE_OPCODES`
  (parameters, constants, tuples, get-tuple-element, bitcasts: no data moves), and the
  control ops of :data:`CONTROL_OPCODES`, whose called computations are counted instead.
  A fusion is one kernel, whatever it fuses.
- **Bytes:** each kernel reads each distinct operand whole and writes its output whole
  (the issue's rule; a kernel that reads part of an operand, or writes in place, is
  counted whole: an upper bound of the traffic, exact for the step's elementwise and
  reduction kernels).
- **Per step:** a while loop's body runs once per trip and its condition once more; the
  whole execution is divided by the training steps it runs
  (:attr:`HloProgram.steps_per_execution`). A loop body that is one training step
  therefore counts once per step.
- **The read floor:** reading x and y once, ``2 * n * itemsize`` bytes (8n in float32),
  the floors' ``bytes_min``; :attr:`HloAccount.bytes_ratio` is the step's bytes over it.
"""

from __future__ import annotations

import collections
import difflib
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from linfit._errors import LinfitError

__all__ = [
    "CONTROL_OPCODES",
    "ELEMENT_BYTES",
    "FREE_OPCODES",
    "LOOP_COUNT_SIGN",
    "HloAccount",
    "HloComputation",
    "HloInstruction",
    "HloModule",
    "HloParseError",
    "HloProgram",
    "Kernel",
    "Loop",
    "account",
    "diff_accounts",
    "normalized_text",
    "parse_module",
    "shape_bytes",
]

# Bytes per element of each HLO element type (xla/primitive_util). The 4-bit types pack two
# to a byte; token and opaque values hold no data.
ELEMENT_BYTES: Mapping[str, float] = MappingProxyType({
    "pred": 1, "s2": 0.25, "u2": 0.25, "s4": 0.5, "u4": 0.5, "s8": 1, "u8": 1,
    "s16": 2, "u16": 2, "s32": 4, "u32": 4, "s64": 8, "u64": 8,
    "f4e2m1fn": 0.5, "f8e3m4": 1, "f8e4m3": 1, "f8e4m3fn": 1, "f8e4m3b11fnuz": 1,
    "f8e4m3fnuz": 1, "f8e5m2": 1, "f8e5m2fnuz": 1, "f8e8m0fnu": 1,
    "f16": 2, "bf16": 2, "f32": 4, "f64": 8, "c64": 8, "c128": 16,
    "token": 0, "opaque": 0,
})
# Instructions that move no data and launch nothing: names for values other kernels made.
FREE_OPCODES = frozenset({
    "parameter", "constant", "tuple", "get-tuple-element", "bitcast", "after-all",
    "add-dependency", "opt-barrier", "domain",
})
# Instructions whose work is in the computations they call, counted there (a while loop's
# body and condition, a conditional's branches, a call's target, an async op's wrapped
# computation); the op itself launches nothing.
CONTROL_OPCODES = frozenset({
    "while", "conditional", "call", "async-start", "async-update", "async-done",
})
# Where the instructions' attributes name the computations that run as sequences.
_SEQUENCE_ATTRIBUTES = ("body", "condition", "to_apply", "calls", "true_computation",
                        "false_computation")

_ARRAY_SHAPE = re.compile(r"\b([a-z][a-z0-9]*)\[([^\]]*)\]")
_COMPUTATION_HEADER = re.compile(
    r"^(?P<entry>ENTRY\s+)?%?(?P<name>[^\s(]+)\s*\((?P<params>.*)\)\s*->\s*(?P<result>.*?)"
    r"\s*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?P<root>ROOT\s+)?%?(?P<name>[^\s=]+)\s*=\s*(?P<rest>.*)$")
_OPCODE = re.compile(r"\s*(?P<opcode>[a-z][a-z0-9\-_]*)\(")
_COMMENT = re.compile(r"/\*.*?\*/")
_TRIP_COUNT = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"?(\d+)"?')
_FUSION_CONFIG_KIND = re.compile(r'"fusion_config"\s*:\s*\{\s*"kind"\s*:\s*"([^"]+)"')
_CUSTOM_CALL_TARGET = re.compile(r'custom_call_target="([^"]*)"')
# Attributes whose text is provenance (source lines, op names, sharding annotations of the
# frontend), dropped where two programs are compared.
_PROVENANCE_ATTRIBUTES = ("metadata", "frontend_attributes", "statistics", "origin")
# Numeric and cloning suffixes XLA's passes append to names (``%fusion.12``,
# ``%body.clone.sunk``): they change with every unrelated edit of a program.
# Between ``while`` and a loop count in :attr:`HloAccount.loops_text` (the multiplication
# sign, as the issue writes loop counts).
LOOP_COUNT_SIGN = "\N{MULTIPLICATION SIGN}"
_NAME_SUFFIX = re.compile(r"\b([A-Za-z_][\w\-]*?)(?:\.(?:\d+|clone|sunk))+\b")
_MODULE_NAME = re.compile(r"^HloModule\s+[^\s,]+")


class HloParseError(LinfitError):
    """Raised by :func:`parse_module` for text that is not an HLO module: no ENTRY
    computation, a computation that never closes, an instruction it cannot read. The
    message names the line."""


@dataclass(frozen=True)
class HloProgram:
    """The optimized HLO of one compiled execution, and how it maps to training steps.

    Attributes:
        text: the optimized HLO module as XLA prints it.
        steps_per_execution: training steps one execution of the program runs: 1 for a
            step (and for a Keras step, which Keras' own loop calls k times), k for a loop
            variant's call.
        loop_trip_count: trips of the program's one top-level while loop where the HLO
            does not give them (the trip count is a runtime argument): k - 1 for linfit's
            loops, whose first step runs before the loop. None: no such loop.
        source: how the text was obtained, in a few words.
    """

    text: str
    steps_per_execution: int = 1
    loop_trip_count: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.steps_per_execution < 1:
            raise ValueError(f"steps_per_execution must be >= 1, got {self.steps_per_execution}")
        if self.loop_trip_count is not None and self.loop_trip_count < 0:
            raise ValueError(f"loop_trip_count must be >= 0, got {self.loop_trip_count}")


@dataclass(frozen=True)
class HloInstruction:
    """One instruction of a computation.

    Attributes:
        name: its name, without ``%``.
        shape: its shape text (``f32[100000]{0}``, a tuple ``(s32[], f32[])``).
        opcode: ``fusion``, ``add``, ``while``, ...
        operands: the names of the instructions it reads, in order.
        attributes: the text after the operands (``kind=kLoop, calls=...``), provenance
            (``metadata``) removed.
        root: whether it is its computation's result.
    """

    name: str
    shape: str
    opcode: str
    operands: tuple[str, ...]
    attributes: str
    root: bool = False

    @property
    def bytes(self) -> int:
        """The bytes of its value: :func:`shape_bytes` of :attr:`shape`."""
        return shape_bytes(self.shape)

    def called(self, attribute: str) -> str | None:
        """The computation an attribute names (``body=%b`` -> ``b``), or None."""
        match = re.search(rf"(?:^|[\s,]){attribute}=%?([^\s,{{}}]+)", self.attributes)
        return match.group(1) if match else None

    @property
    def branches(self) -> tuple[str, ...]:
        """A conditional's branch computations, in order."""
        match = re.search(r"branch_computations=\{([^}]*)\}", self.attributes)
        if match:
            return tuple(name.strip().lstrip("%") for name in match.group(1).split(",")
                         if name.strip())
        return tuple(name for name in (self.called("true_computation"),
                                       self.called("false_computation")) if name)


@dataclass(frozen=True)
class HloComputation:
    """A computation: its name and instructions, in the text's order."""

    name: str
    instructions: tuple[HloInstruction, ...]
    entry: bool = False

    @property
    def by_name(self) -> Mapping[str, HloInstruction]:
        """Its instructions by name."""
        return {instruction.name: instruction for instruction in self.instructions}


@dataclass(frozen=True)
class HloModule:
    """A parsed HLO module: its name and computations; :attr:`entry` names the ENTRY one."""

    name: str
    computations: Mapping[str, HloComputation]
    entry: str


@dataclass(frozen=True)
class Kernel:
    """One kernel of the program: an instruction that launches work.

    Attributes:
        computation: the computation it is in.
        name: the instruction's name.
        label: what kind of kernel: ``fusion[kLoop]``, ``fusion[kCustom:__ynn_fusion]``,
            ``custom-call[target]``, or the opcode of an unfused op (``copy``).
        ops: the distinct opcodes a fusion computes (free ones left out), sorted; the
            opcode alone for an unfused op.
        bytes_read: the bytes of its distinct operands.
        bytes_written: the bytes of its output.
        executions: how many times one execution of the program runs it.
        loop_depth: how many while loops it is nested in (0: outside any).
    """

    computation: str
    name: str
    label: str
    ops: tuple[str, ...]
    bytes_read: int
    bytes_written: int
    executions: float
    loop_depth: int

    @property
    def signature(self) -> str:
        """The label and the ops it computes: ``fusion[kLoop](reduce-window)``; what two
        programs' kernels are matched by."""
        if self.ops == (self.label,):
            return self.label
        return f"{self.label}({', '.join(self.ops)})"


@dataclass(frozen=True)
class Loop:
    """A while loop of the program.

    Attributes:
        computation: the computation that holds the while instruction.
        name: the while instruction's name.
        body, condition: its computations.
        trip_count: the trips per run of the loop, where known.
        trip_source: where the trip count came from: ``known_trip_count`` (XLA's
            backend config), ``cell`` (:attr:`HloProgram.loop_trip_count`) or ``unknown``
            (then the body is counted once per run).
        depth: 0 for a loop outside any other, 1 inside one, ...
        executions: how many times one execution of the program runs the loop.
        parent: the name of the while loop it is nested in ('' for none).
    """

    computation: str
    name: str
    body: str
    condition: str
    trip_count: int | None
    trip_source: str
    depth: int
    executions: float
    parent: str = ""


@dataclass(frozen=True)
class HloAccount:
    """What one compiled program does per training step, by its optimized HLO.

    Attributes:
        module: the HLO module's name.
        steps_per_execution: training steps one execution runs.
        read_floor_bytes: reading x and y once (the floors' ``bytes_min``).
        kernels: every kernel, in the order of the walk (entry first, loop bodies where
            their while is).
        loops: every while loop, outer ones first.
        notes: what the account had to assume (a conditional counted by its largest
            branch, a loop whose trip count is unknown).
    """

    module: str
    steps_per_execution: int
    read_floor_bytes: int
    kernels: tuple[Kernel, ...]
    loops: tuple[Loop, ...]
    notes: tuple[str, ...] = ()

    def _per_step(self, values: Iterator[float]) -> float:
        return sum(values) / self.steps_per_execution

    @property
    def kernels_per_step(self) -> float:
        """Kernel launches per training step."""
        return self._per_step(kernel.executions for kernel in self.kernels)

    @property
    def bytes_read_per_step(self) -> float:
        """Bytes the kernels read per training step."""
        return self._per_step(k.bytes_read * k.executions for k in self.kernels)

    @property
    def bytes_written_per_step(self) -> float:
        """Bytes the kernels write per training step."""
        return self._per_step(k.bytes_written * k.executions for k in self.kernels)

    @property
    def bytes_per_step(self) -> float:
        """Bytes read and written per training step."""
        return self.bytes_read_per_step + self.bytes_written_per_step

    @property
    def bytes_ratio(self) -> float:
        """:attr:`bytes_per_step` over the read floor (1.0: x and y read once, nothing
        else); NaN where the floor is 0."""
        if self.read_floor_bytes <= 0:
            return math.nan
        return self.bytes_per_step / self.read_floor_bytes

    @property
    def loops_text(self) -> str:
        """The loop structure in a few words: ``none``, or each group of loops as
        ``while``, the multiplication sign, the count and ``(trip 99)``, nested loops inside
        their parent's parentheses (``trip 99: while...(trip 4)``), ``trip ?`` where the
        trip count is unknown."""
        return _loops_text(self.loops, "") or "none"


def shape_bytes(shape: str) -> int:
    """The bytes of a value of ``shape``: every array in it (a tuple's elements, nested
    tuples too), elements times their size; a dimension given as a bound (``<=8``) counts
    at the bound.

    Raises:
        HloParseError: for an element type :data:`ELEMENT_BYTES` does not know.
    """
    total = 0.0
    for element_type, dims in _ARRAY_SHAPE.findall(_COMMENT.sub("", shape)):
        if element_type not in ELEMENT_BYTES:
            raise HloParseError(f"shape {shape!r}: unknown element type {element_type!r}; "
                                f"known: {', '.join(ELEMENT_BYTES)}")
        elements = 1
        for dim in filter(None, (d.strip().removeprefix("<=") for d in dims.split(","))):
            if not dim.isdigit():
                raise HloParseError(f"shape {shape!r}: dimension {dim!r} is not a size")
            elements *= int(dim)
        total += elements * ELEMENT_BYTES[element_type]
    return math.ceil(total)


# --- parsing ------------------------------------------------------------------------------


def _closing(text: str, start: int, opening: str = "(", closing: str = ")") -> int:
    """The index of the bracket that closes the one at ``start``, skipping quoted text."""
    depth = 0
    quoted = False
    index = start
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"no closing {closing!r}")


def _split_top_level(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, char in enumerate(text):
        if quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts if part.strip()]


def _without_attributes(text: str, names: Sequence[str]) -> str:
    """``text`` without the attributes ``name={...}`` or ``name="..."`` of ``names``."""
    for name in names:
        while True:
            match = re.search(rf",?\s*\b{name}=", text)
            if match is None:
                break
            value = match.end()
            try:
                if value < len(text) and text[value] == "{":
                    end = _closing(text, value, "{", "}") + 1
                elif value < len(text) and text[value] == '"':
                    end = text.index('"', value + 1) + 1
                else:
                    end = value + len(re.match(r"[^,\s]*", text[value:]).group(0))  # type: ignore[union-attr]
            except ValueError:
                end = len(text)
            text = text[:match.start()] + text[end:]
    return text


def _instruction(line: str, number: int) -> HloInstruction:
    """One instruction line, read.

    Raises:
        HloParseError: naming the line, where it is not ``name = shape opcode(...)``.
    """
    match = _INSTRUCTION.match(line)
    if match is None:
        raise HloParseError(f"line {number}: not an HLO instruction: {line.strip()[:80]!r}")
    rest = match.group("rest")
    try:
        end = _closing(rest, 0) + 1 if rest.startswith("(") else len(rest.split(None, 1)[0])
        shape, rest = rest[:end], rest[end:]
        opcode_match = _OPCODE.match(rest)
        if opcode_match is None:
            raise ValueError("no opcode")
        open_paren = opcode_match.end() - 1
        close_paren = _closing(rest, open_paren)
    except (ValueError, IndexError):
        raise HloParseError(f"line {number}: cannot read the shape, opcode and operands of "
                            f"{line.strip()[:80]!r}") from None
    opcode = opcode_match.group("opcode")
    operand_text = _COMMENT.sub("", rest[open_paren + 1:close_paren])
    operands: tuple[str, ...] = ()
    if opcode not in ("constant", "parameter", "iota", "rng-get-and-update-state"):
        # An operand is ``%name`` (or ``f32[] %name`` in older printers): its last word.
        operands = tuple(part.split()[-1].lstrip("%") for part in _split_top_level(operand_text))
    attributes = _without_attributes(rest[close_paren + 1:], _PROVENANCE_ATTRIBUTES)
    return HloInstruction(match.group("name"), shape, opcode, operands,
                          attributes.strip().lstrip(",").strip(), bool(match.group("root")))


def parse_module(text: str) -> HloModule:
    """Read an HLO module as XLA prints it (``HloModule ...``, computations, ``ENTRY``).

    Lines outside computations that are not a computation's header (the module's header
    and its attribute blocks) are skipped.

    Raises:
        HloParseError: naming the line, for a computation that never closes, an
            instruction that cannot be read, or a module without an ENTRY computation.
    """
    lines = text.splitlines()
    module_match = _MODULE_NAME.match(lines[0].strip()) if lines else None
    module = module_match.group(0).split()[1] if module_match else ""
    computations: dict[str, HloComputation] = {}
    entry = ""
    current: tuple[str, bool, int] | None = None
    instructions: list[HloInstruction] = []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if current is None:
            header = _COMPUTATION_HEADER.match(stripped)
            if header and not stripped.startswith("HloModule"):
                current = (header.group("name"), bool(header.group("entry")), number)
                instructions = []
            continue
        if stripped == "}":
            name, is_entry, _ = current
            computations[name] = HloComputation(name, tuple(instructions), is_entry)
            if is_entry:
                entry = name
            current = None
        elif stripped:
            instructions.append(_instruction(line, number))
    if current is not None:
        raise HloParseError(f"line {current[2]}: computation {current[0]!r} never closes")
    if not entry:
        raise HloParseError("no ENTRY computation: not an HLO module"
                            + ("" if module else " (no 'HloModule' header either)"))
    return HloModule(module, MappingProxyType(computations), entry)


# --- the account --------------------------------------------------------------------------


def _fused_ops(module: HloModule, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The non-free opcodes a fused computation computes, nested fusions included."""
    computation = module.computations.get(name)
    if computation is None or name in seen:
        return set()
    ops = set()
    for instruction in computation.instructions:
        if instruction.opcode == "fusion":
            ops |= _fused_ops(module, instruction.called("calls") or "", seen | {name})
        elif instruction.opcode not in FREE_OPCODES:
            ops.add(instruction.opcode)
    return ops


def _kernel_label(instruction: HloInstruction) -> str:
    if instruction.opcode == "fusion":
        kind = re.search(r"(?:^|[\s,])kind=(\w+)", instruction.attributes)
        label = kind.group(1) if kind else "?"
        custom = _FUSION_CONFIG_KIND.search(instruction.attributes)
        if custom:
            label += f":{custom.group(1)}"
        return f"fusion[{label}]"
    if instruction.opcode == "custom-call":
        target = _CUSTOM_CALL_TARGET.search(instruction.attributes)
        return f"custom-call[{target.group(1) if target else '?'}]"
    return instruction.opcode


@dataclass(frozen=True)
class _Place:
    """Where the walk is: runs per execution of the program, loop depth, the enclosing
    while loop ('' outside any), and the computations on the way (to refuse a cycle)."""

    executions: float
    depth: int = 0
    loop: str = ""
    stack: tuple[str, ...] = ()


@dataclass
class _Walk:
    """The state of one walk over a module's sequenced computations."""

    module: HloModule
    loop_trip_count: int | None
    kernels: list[Kernel] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def computation(self, name: str, place: _Place) -> None:
        if name in place.stack:
            raise HloParseError(f"computation {name!r} calls itself")
        computation = self.module.computations.get(name)
        if computation is None:
            raise HloParseError(f"computation {name!r} is called but not defined")
        inside = replace(place, stack=(*place.stack, name))
        values = computation.by_name
        for instruction in computation.instructions:
            opcode = instruction.opcode
            if opcode in FREE_OPCODES or opcode in ("async-update", "async-done"):
                continue
            if opcode == "while":
                self.loop(name, instruction, inside)
            elif opcode == "conditional":
                self.conditional(instruction, inside)
            elif opcode in CONTROL_OPCODES:
                called = instruction.called("to_apply") or instruction.called("calls")
                if called:
                    self.computation(called, inside)
            else:
                operands = dict.fromkeys(instruction.operands)
                read = sum(values[o].bytes for o in operands if o in values)
                label = _kernel_label(instruction)
                ops = (tuple(sorted(_fused_ops(self.module, instruction.called("calls") or "")))
                       if opcode == "fusion" else (label,))
                self.kernels.append(Kernel(name, instruction.name, label, ops, read,
                                           instruction.bytes, place.executions, place.depth))

    def loop(self, computation: str, instruction: HloInstruction, place: _Place) -> None:
        body, condition = instruction.called("body"), instruction.called("condition")
        if not body or not condition:
            raise HloParseError(f"while {instruction.name!r} names no body or condition")
        known = _TRIP_COUNT.search(instruction.attributes)
        trips: int | None = None
        if known:
            trips, source = int(known.group(1)), "known_trip_count"
        elif (place.depth == 0 and self.loop_trip_count is not None
              and _unknown_top_level_loops(self.module) == 1):
            trips, source = self.loop_trip_count, "cell"
        else:
            source = "unknown"
            self.notes.append(f"while {instruction.name}: trip count unknown; its body is "
                              "counted once per run of the loop")
        self.loops.append(Loop(computation, instruction.name, body, condition, trips, source,
                               place.depth, place.executions, place.loop))
        runs = 1 if trips is None else trips
        nested = replace(place, depth=place.depth + 1, loop=instruction.name)
        self.computation(condition, replace(nested, executions=place.executions * (runs + 1)))
        self.computation(body, replace(nested, executions=place.executions * runs))

    def conditional(self, instruction: HloInstruction, place: _Place) -> None:
        """The largest branch by bytes (which one runs is data): an upper bound."""
        best: tuple[float, list[Kernel], list[Loop]] | None = None
        for branch in instruction.branches:
            kernels, loops = self.kernels, self.loops
            self.kernels, self.loops = [], []
            self.computation(branch, place)
            moved = sum((k.bytes_read + k.bytes_written) * k.executions for k in self.kernels)
            if best is None or moved > best[0]:
                best = (moved, self.kernels, self.loops)
            self.kernels, self.loops = kernels, loops
        if best is not None:
            self.kernels += best[1]
            self.loops += best[2]
            if len(instruction.branches) > 1:
                self.notes.append(f"conditional {instruction.name}: counted by its largest "
                                  f"of {len(instruction.branches)} branches")


def _unknown_top_level_loops(module: HloModule) -> int:
    """While loops without a known trip count in the entry computation itself."""
    return sum(1 for instruction in module.computations[module.entry].instructions
               if instruction.opcode == "while"
               and not _TRIP_COUNT.search(instruction.attributes))


def account(program: HloProgram, read_floor_bytes: int) -> HloAccount:
    """The account of one compiled program (see the module docstring for what counts).

    Args:
        program: the optimized HLO and how many training steps one execution runs.
        read_floor_bytes: the bytes of x and y (2 * n * itemsize of the cell's dtype).

    Returns:
        The kernels, loops and bytes per step.

    Raises:
        HloParseError: for text that is not an HLO module (:func:`parse_module`).
    """
    module = parse_module(program.text)
    walk = _Walk(module, program.loop_trip_count)
    unknown = _unknown_top_level_loops(module)
    if program.loop_trip_count is not None and unknown > 1:
        walk.notes.append(f"{unknown} top-level loops without a trip count: the cell's trip "
                          "count is given to none of them")
    walk.computation(module.entry, _Place(1.0))
    return HloAccount(module.name, program.steps_per_execution, read_floor_bytes,
                      tuple(walk.kernels), tuple(walk.loops), tuple(walk.notes))


def _loops_text(loops: Sequence[Loop], parent: str) -> str:
    """The loops nested directly in ``parent`` ('' for the top level), grouped by trip
    count and what they hold."""
    groups: collections.Counter[str] = collections.Counter()
    for loop in loops:
        if loop.parent != parent:
            continue
        trip = "?" if loop.trip_count is None else str(loop.trip_count)
        inner = _loops_text(loops, loop.name)
        groups[f"trip {trip}" + (f": {inner}" if inner else "")] += 1
    return ", ".join(f"while{LOOP_COUNT_SIGN}{count}({text})" for text, count in groups.items())


# --- comparing two programs ---------------------------------------------------------------


def normalized_text(text: str) -> str:
    """An HLO text as two programs are compared: the module's header line and its
    computations only (not the stack-frame tables some printers add between them),
    provenance attributes (``metadata``, ``frontend_attributes``) and ``/*index=N*/``
    comments dropped, the numeric and cloning suffixes of names (``.12``, ``.clone``)
    removed, blank lines dropped."""
    out = []
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if not inside:
            if stripped.startswith("HloModule"):
                line = _MODULE_NAME.sub("HloModule", stripped)
            elif _COMPUTATION_HEADER.match(stripped):
                inside = True
            else:
                continue
        elif stripped == "}":
            inside = False
        if not stripped:
            continue
        line = _COMMENT.sub("", _without_attributes(line.rstrip(), _PROVENANCE_ATTRIBUTES))
        out.append(_NAME_SUFFIX.sub(r"\1", line))
    return "\n".join(out) + "\n"


def _site_counts(result: HloAccount) -> collections.Counter[str]:
    """Kernels by signature and place (in a loop body, or outside any loop)."""
    return collections.Counter(
        f"{kernel.signature}  [{'loop body' if kernel.loop_depth else 'outside loops'}]"
        for kernel in result.kernels)


def _op_counts(module: HloModule) -> collections.Counter[str]:
    """Every instruction's opcode in every computation (fused ones too), free ones left
    out."""
    return collections.Counter(instruction.opcode for computation in
                               module.computations.values()
                               for instruction in computation.instructions
                               if instruction.opcode not in FREE_OPCODES)


def _counted_diff(before: collections.Counter[str],
                  after: collections.Counter[str]) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(after)):
        change = after[key] - before[key]
        if change:
            lines.append(f"  {change:+d}  {key}  ({before[key]} -> {after[key]})")
    return lines or ["  (none)"]


def _figures(result: HloAccount) -> dict[str, str]:
    return {"kernels per step": f"{result.kernels_per_step:.4g}",
            "bytes per step": f"{result.bytes_per_step:.6g}",
            "  read": f"{result.bytes_read_per_step:.6g}",
            "  written": f"{result.bytes_written_per_step:.6g}",
            "loops": result.loops_text}


def diff_accounts(a_text: str, b_text: str, a_label: str = "A", b_label: str = "B",
                  steps_per_execution: int = 1, loop_trip_count: int | None = None) -> str:
    """A readable diff of two optimized HLO programs of the same cell: their figures, the
    kernels that came and went (a counted multiset of signatures, by place), the ops that
    came and went (every computation, fused ones included), and a unified diff of their
    :func:`normalized_text`.

    Args:
        a_text, b_text: the two HLO texts (A the base).
        a_label, b_label: how the two are named (the sides' labels).
        steps_per_execution, loop_trip_count: as :class:`HloProgram`'s, the same for both
            (the cell is the same).

    Raises:
        HloParseError: where a text is not an HLO module.
    """
    results = [account(HloProgram(text, steps_per_execution, loop_trip_count), 0)
               for text in (a_text, b_text)]
    modules = [parse_module(text) for text in (a_text, b_text)]
    figures = [_figures(result) for result in results]
    width = max(len(a_label), 24)
    lines = [f"HLO of {a_label} (A) and {b_label} (B)", "",
             f"  {'':<18}{a_label:<{width}}  {b_label}"]
    for key in figures[0]:
        lines.append(f"  {key:<18}{figures[0][key]:<{width}}  {figures[1][key]}")
    lines += ["", f"kernels that came (+) and went (-), from {a_label} to {b_label}:"]
    lines += _counted_diff(_site_counts(results[0]), _site_counts(results[1]))
    lines += ["", "ops that came (+) and went (-), in every computation:"]
    lines += _counted_diff(_op_counts(modules[0]), _op_counts(modules[1]))
    lines += ["", "unified diff of the normalized text (metadata and name suffixes dropped):"]
    unified = difflib.unified_diff(normalized_text(a_text).splitlines(),
                                   normalized_text(b_text).splitlines(),
                                   fromfile=a_label, tofile=b_label, lineterm="", n=2)
    lines += list(unified) or ["  (identical)"]
    return "\n".join(lines) + "\n"

