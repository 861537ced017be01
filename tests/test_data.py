import numpy as np
import pytest

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
