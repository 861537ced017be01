"""linfit.hlo on small hand-written HLO texts whose kernels and bytes are known: a fusion,
a while loop with a known trip count, a trip count from the cell, nested loops, tuples,
bf16, a conditional, the parse errors, and the diff of two programs."""

from __future__ import annotations

import math

import pytest

from linfit.hlo import (
    FREE_OPCODES,
    LOOP_COUNT_SIGN,
    HloParseError,
    HloProgram,
    account,
    diff_accounts,
    normalized_text,
    parse_module,
    shape_bytes,
)

WHILE = f"while{LOOP_COUNT_SIGN}"

# One fused kernel: reads x and y (2 x 100 float32 = 800 bytes), writes a scalar (4).
FUSION = """\
HloModule dot, entry_computation_layout={(f32[100]{0}, f32[100]{0})->f32[]}

%add_computation (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %add = f32[] add(%a, %b)
}

%fused_computation (p0: f32[100], p1: f32[100]) -> f32[] {
  %p0 = f32[100]{0} parameter(0)
  %p1 = f32[100]{0} parameter(1)
  %mul = f32[100]{0} multiply(%p0, %p1), metadata={op_name="mul" source_file="a.py"}
  %zero = f32[] constant(0)
  ROOT %sum = f32[] reduce(%mul, %zero), dimensions={0}, to_apply=%add_computation
}

ENTRY %main (x: f32[100], y: f32[100]) -> f32[] {
  %x = f32[100]{0} parameter(0)
  %y = f32[100]{0} parameter(1)
  ROOT %fusion = f32[] fusion(%x, %y), kind=kInput, calls=%fused_computation
}
"""

# A while loop of 10 trips over a (s32[], bf16[64]) tuple. Each trip: the body's two
# unfused adds (s32: reads i and the constant 1, 8 bytes, writes 4; bf16: reads v once,
# 128 bytes, writes 128) and the condition's compare (reads 8, writes a 1-byte pred) once
# more than the body. Tuples, get-tuple-element, constants and parameters are free.
LOOP = """\
HloModule loop

%body (state: (s32[], bf16[64])) -> (s32[], bf16[64]) {
  %state = (s32[], bf16[64]{0}) parameter(0)
  %i = s32[] get-tuple-element(%state), index=0
  %v = bf16[64]{0} get-tuple-element(%state), index=1
  %one = s32[] constant(1)
  %next = s32[] add(%i, %one)
  %doubled = bf16[64]{0} add(%v, %v)
  ROOT %out = (s32[], /*index=1*/bf16[64]{0}) tuple(%next, %doubled)
}

%cond (state: (s32[], bf16[64])) -> pred[] {
  %state = (s32[], bf16[64]{0}) parameter(0)
  %i = s32[] get-tuple-element(%state), index=0
  %limit = s32[] constant(10)
  ROOT %lt = pred[] compare(%i, %limit), direction=LT
}

ENTRY %main (v: bf16[64]) -> (s32[], bf16[64]) {
  %v = bf16[64]{0} parameter(0)
  %zero = s32[] constant(0)
  %init = (s32[], bf16[64]{0}) tuple(%zero, %v)
  ROOT %loop = (s32[], bf16[64]{0}) while(%init), condition=%cond, body=%body, \
backend_config={"known_trip_count":{"n":"10"}}
}
"""
BODY_BYTES = (8 + 4) + (128 + 128)
COND_BYTES = 8 + 1


def test_a_fusion_is_one_kernel_that_reads_its_operands_and_writes_its_output():
    result = account(HloProgram(FUSION), read_floor_bytes=800)
    [kernel] = result.kernels
    assert (kernel.label, kernel.ops) == ("fusion[kInput]", ("multiply", "reduce"))
    assert (kernel.bytes_read, kernel.bytes_written, kernel.executions) == (800, 4, 1.0)
    assert (result.kernels_per_step, result.bytes_per_step) == (1.0, 804.0)
    assert result.bytes_ratio == pytest.approx(804 / 800)
    assert result.loops_text == "none" and result.module == "dot"


def test_a_loop_body_counts_once_a_trip_and_the_condition_once_more():
    result = account(HloProgram(LOOP, steps_per_execution=10), read_floor_bytes=2 * 64 * 2)
    [loop] = result.loops
    assert (loop.trip_count, loop.trip_source, loop.depth) == (10, "known_trip_count", 0)
    assert result.loops_text == f"{WHILE}1(trip 10)"
    assert sorted(k.label for k in result.kernels) == ["add", "add", "compare"]
    per_execution = 10 * BODY_BYTES + 11 * COND_BYTES
    assert result.bytes_per_step == pytest.approx(per_execution / 10)
    assert result.bytes_read_per_step == pytest.approx((10 * (8 + 128) + 11 * 8) / 10)
    assert result.kernels_per_step == pytest.approx((10 * 2 + 11) / 10)
    assert result.bytes_ratio == pytest.approx(per_execution / 10 / 256)
    assert all(k.loop_depth == 1 for k in result.kernels)


def test_a_trip_count_the_hlo_does_not_give_comes_from_the_cell_or_stays_unknown():
    dynamic = LOOP.replace(', backend_config={"known_trip_count":{"n":"10"}}', "")
    from_cell = account(HloProgram(dynamic, steps_per_execution=5, loop_trip_count=4), 256)
    assert (from_cell.loops[0].trip_count, from_cell.loops[0].trip_source) == (4, "cell")
    assert from_cell.bytes_per_step == pytest.approx((4 * BODY_BYTES + 5 * COND_BYTES) / 5)
    assert from_cell.notes == ()
    unknown = account(HloProgram(dynamic), 256)
    assert unknown.loops_text == f"{WHILE}1(trip ?)" and unknown.loops[0].trip_source == "unknown"
    assert unknown.bytes_per_step == BODY_BYTES + 2 * COND_BYTES
    assert "trip count unknown" in unknown.notes[0]


def test_nested_loops_multiply_and_read_inside_their_parent():
    inner_body = LOOP.split("ENTRY")[0]
    nested = inner_body.replace("%body (", "%inner_body (").replace("%cond (", "%inner_cond (")
    nested += """
%outer_body (state: (s32[], bf16[64])) -> (s32[], bf16[64]) {
  %state = (s32[], bf16[64]{0}) parameter(0)
  ROOT %inner = (s32[], bf16[64]{0}) while(%state), condition=%inner_cond, \
body=%inner_body, backend_config={"known_trip_count":{"n":"10"}}
}

ENTRY %main (v: bf16[64]) -> (s32[], bf16[64]) {
  %v = bf16[64]{0} parameter(0)
  %zero = s32[] constant(0)
  %init = (s32[], bf16[64]{0}) tuple(%zero, %v)
  ROOT %outer = (s32[], bf16[64]{0}) while(%init), condition=%inner_cond, body=%outer_body, \
backend_config={"known_trip_count":{"n":"3"}}
}
"""
    result = account(HloProgram(nested, steps_per_execution=30), 256)
    assert result.loops_text == f"{WHILE}1(trip 3: {WHILE}1(trip 10))"
    assert [(loop.depth, loop.parent) for loop in result.loops] == [(0, ""), (1, "outer")]
    # The outer condition runs 4 times; each of 3 outer trips runs the inner loop whole.
    per_execution = 4 * COND_BYTES + 3 * (10 * BODY_BYTES + 11 * COND_BYTES)
    assert result.bytes_per_step == pytest.approx(per_execution / 30)


def test_a_conditional_counts_its_largest_branch_and_says_so():
    text = """\
HloModule branches

%small (p: f32[8]) -> f32[8] {
  %p = f32[8]{0} parameter(0)
  ROOT %neg = f32[8]{0} negate(%p)
}

%large (p: f32[8]) -> f32[8] {
  %p = f32[8]{0} parameter(0)
  %e = f32[8]{0} exponential(%p)
  ROOT %l = f32[8]{0} log(%e)
}

ENTRY %main (which: s32[], x: f32[8]) -> f32[8] {
  %which = s32[] parameter(0)
  %x = f32[8]{0} parameter(1)
  ROOT %c = f32[8]{0} conditional(%which, %x, %x), branch_computations={%small, %large}
}
"""
    result = account(HloProgram(text), 64)
    assert sorted(k.label for k in result.kernels) == ["exponential", "log"]
    assert result.bytes_per_step == 4 * 32
    assert "largest of 2 branches" in result.notes[0]


def test_free_ops_launch_nothing_and_a_custom_call_is_a_kernel():
    text = """\
HloModule free

ENTRY %main (x: f32[16]) -> (f32[16], f32[4,4]) {
  %x = f32[16]{0} parameter(0)
  %c = f32[] constant(2)
  %b = f32[4,4]{1,0} bitcast(%x)
  %t = (f32[16]{0}) tuple(%x)
  %g = f32[16]{0} get-tuple-element(%t), index=0
  %call = f32[16]{0} custom-call(%g, %c), custom_call_target="my_kernel"
  ROOT %out = (f32[16]{0}, f32[4,4]{1,0}) tuple(%call, %b)
}
"""
    result = account(HloProgram(text), 128)
    [kernel] = result.kernels
    assert kernel.label == "custom-call[my_kernel]" and kernel.signature == kernel.label
    assert (kernel.bytes_read, kernel.bytes_written) == (64 + 4, 64)
    assert {"parameter", "constant", "bitcast", "tuple", "get-tuple-element"} <= FREE_OPCODES


@pytest.mark.parametrize(("shape", "expected"), [
    ("f32[100000]{0}", 400_000),
    ("f32[]", 4),
    ("bf16[64]{0}", 128),
    ("f16[3,5]{1,0}", 30),
    ("f64[10]", 80),
    ("pred[7]", 7),
    ("s4[3]", 2),
    ("f32[<=8]", 32),
    ("(s32[], f32[100000]{0}, /*index=2*/(bf16[2], f64[]))", 4 + 400_000 + 4 + 8),
    ("token[]", 0),
])
def test_shape_bytes(shape, expected):
    assert shape_bytes(shape) == expected


def test_shape_bytes_refuses_an_unknown_element_type():
    with pytest.raises(HloParseError, match="unknown element type 'q7'"):
        shape_bytes("q7[4]")


@pytest.mark.parametrize(("text", "message"), [
    ("", "no ENTRY computation"),
    ("hello world\n", "no ENTRY computation"),
    ("HloModule m\n\nENTRY %main () -> f32[] {\n  %c = f32[] constant(1)\n", "never closes"),
    ("HloModule m\n\nENTRY %main () -> f32[] {\n  what is this\n}\n", "line 4: not an HLO"),
    ("HloModule m\n\nENTRY %main () -> f32[] {\n  %c = f32[] (\n}\n", "line 4: cannot read"),
])
def test_text_that_is_not_hlo_is_refused_naming_the_line(text, message):
    with pytest.raises(HloParseError, match=message):
        parse_module(text)


def test_a_called_computation_that_is_missing_is_refused():
    broken = LOOP.replace("body=%body", "body=%nowhere")
    with pytest.raises(HloParseError, match="'nowhere' is called but not defined"):
        account(HloProgram(broken), 1)


def test_the_parser_reads_operands_shapes_and_attributes_without_provenance():
    module = parse_module(FUSION)
    assert module.entry == "main" and set(module.computations) == {
        "add_computation", "fused_computation", "main"}
    mul = module.computations["fused_computation"].by_name["mul"]
    assert (mul.opcode, mul.operands, mul.shape, mul.attributes) == (
        "multiply", ("p0", "p1"), "f32[100]{0}", "")
    fusion = module.computations["main"].by_name["fusion"]
    assert fusion.root and fusion.called("calls") == "fused_computation"


def test_a_program_needs_a_step():
    with pytest.raises(ValueError, match="steps_per_execution"):
        HloProgram(FUSION, steps_per_execution=0)


def test_a_zero_floor_gives_no_ratio():
    assert math.isnan(account(HloProgram(FUSION), 0).bytes_ratio)


def test_normalized_text_drops_provenance_and_name_suffixes():
    text = FUSION.replace("%mul", "%mul.12").replace("%fused_computation",
                                                     "%fused_computation.3.clone")
    normal = normalized_text(text)
    assert "metadata" not in normal and "source_file" not in normal
    assert ".12" not in normal and ".clone" not in normal
    assert normal == normalized_text(FUSION)
    assert normal.splitlines()[0].startswith("HloModule, entry_computation_layout")


# The fusion of FUSION split in two: an unfused multiply writes the product (400 bytes)
# and a reduce fusion reads it back.
FUSED_ROOT = "  ROOT %fusion = f32[] fusion(%x, %y), kind=kInput, calls=%fused_computation\n"
SPLIT = FUSION.replace(FUSED_ROOT, """  %product = f32[100]{0} multiply(%x, %y)
  ROOT %fusion = f32[] fusion(%product), kind=kInput, calls=%reduce_only
""").replace("ENTRY", """%reduce_only (p0: f32[100]) -> f32[] {
  %p0 = f32[100]{0} parameter(0)
  %zero = f32[] constant(0)
  ROOT %sum = f32[] reduce(%p0, %zero), dimensions={0}, to_apply=%add_computation
}

ENTRY""")


def test_the_diff_counts_the_kernels_and_ops_that_came_and_went():
    diff = diff_accounts(FUSION, SPLIT, "before", "after")
    lines = diff.splitlines()
    assert lines[0] == "HLO of before (A) and after (B)"
    assert any(line.split() == ["kernels", "per", "step", "1", "2"] for line in lines)
    assert any(line.split() == ["bytes", "per", "step", "804", "1604"] for line in lines)
    assert "  -1  fusion[kInput](multiply, reduce)  [outside loops]  (1 -> 0)" in lines
    assert "  +1  fusion[kInput](reduce)  [outside loops]  (0 -> 1)" in lines
    assert "  +1  multiply  [outside loops]  (0 -> 1)" in lines
    # Ops in every computation: one more multiply, one more reduce (the new fused one).
    assert "  +1  multiply  (1 -> 2)" in lines and "  +1  reduce  (1 -> 2)" in lines
    assert "--- before" in lines and "+++ after" in lines
    assert "+  %product = f32[100]{0} multiply(%x, %y)" in lines


def test_the_diff_of_a_program_with_itself_is_empty():
    diff = diff_accounts(LOOP, LOOP, steps_per_execution=10)
    assert diff.count("  (none)") == 2 and "  (identical)" in diff
    assert f"{WHILE}1(trip 10)" in diff
