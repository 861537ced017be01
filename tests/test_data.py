import numpy as np
import pytest

from linfit import data
from linfit._errors import LinfitError
from linfit.data import DTYPES, TRUE_B, TRUE_W, make_dataset


def test_same_seed_gives_byte_identical_data():
    first = make_dataset(500, "float32", seed=3)
    make_dataset.cache_clear()
    second = make_dataset(500, "float32", seed=3)
    assert first is not second
    assert first.x.tobytes() == second.x.tobytes()
    assert first.y.tobytes() == second.y.tobytes()


def test_other_seed_gives_other_data():
    assert not np.array_equal(make_dataset(100, seed=0).x, make_dataset(100, seed=1).x)


def test_data_is_read_only():
    data = make_dataset(10)
    with pytest.raises(ValueError):
        data.x[0] = 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_and_ols_against_lstsq(dtype):
    data = make_dataset(2000, dtype)
    assert data.dtype == dtype
    assert str(data.x.dtype) == dtype
    x = data.x.astype(np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    (w, b), *_ = np.linalg.lstsq(design, data.y.astype(np.float64), rcond=None)
    assert data.w_ols == pytest.approx(w, rel=1e-10)
    assert data.b_ols == pytest.approx(b, rel=1e-10)
    # The noise is N(0, 1), so with 2000 examples OLS lands near the true line.
    assert abs(data.w_ols - TRUE_W) < 0.1
    assert abs(data.b_ols - TRUE_B) < 0.1


def test_nbytes_counts_x_and_y():
    assert make_dataset(1000, "float32").nbytes == 8000
    assert make_dataset(1000, "float64").nbytes == 16000


def test_bad_arguments():
    with pytest.raises(LinfitError, match="at least 2"):
        make_dataset(1)
    with pytest.raises(LinfitError, match="valid: float32"):
        make_dataset(10, "int8")


def _no_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if NumPy is asked to draw the data: a refusal must come first."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data were about to be allocated")

    monkeypatch.setattr(data.np.random, "default_rng", refuse)


def test_a_data_set_too_big_for_memory_is_refused_before_it_is_allocated(monkeypatch):
    _no_allocation(monkeypatch)
    monkeypatch.setattr(data, "available_memory_bytes", lambda: 8 * 2**30)
    make_dataset.cache_clear()
    with pytest.raises(LinfitError) as raised:
        make_dataset(10**11, "float32")
    message = str(raised.value)
    assert message.startswith("n=1e+11 float32 needs about 2,980.2 GiB of memory")
    assert message.endswith("; 8.0 GiB is available")


def test_memory_estimate_is_the_larger_of_training_and_generating():
    # float32: 4 x (x and y) = 32 bytes per example, as three float64 draws + x and y.
    assert data.memory_needed_bytes(1000, "float32") == 32_000
    # float16: generating (3 x 8 + 2 x 2 bytes) is more than 4 x (2 x 2) bytes.
    assert data.memory_needed_bytes(1000, "float16") == 28_000
    assert data.memory_needed_bytes(1000, "float64") == 64_000


@pytest.mark.parametrize(("available", "fits"), [(32_000, True), (31_999, False), (None, True)])
def test_memory_problem_names_needed_against_available(available, fits):
    problem = data.memory_problem(1000, "float32", available)
    assert (problem == "") is fits
    if not fits:
        assert "needs about 0.0 GiB" in problem and "0.0 GiB is available" in problem


def test_a_negative_seed_is_refused():
    with pytest.raises(LinfitError, match=r"^the seed must be an integer >= 0, got -1$"):
        make_dataset(100, seed=-1)
