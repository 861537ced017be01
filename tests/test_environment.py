"""linfit.environment: boolean variables, and the environment children get from linfit."""

from __future__ import annotations

import pytest

from linfit._errors import LinfitError
from linfit.environment import env_flag, quiet_framework_env


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "Yes", "on", " on "])
def test_true_spellings(value):
    assert env_flag("LINFIT_NO_PLOTS", {"LINFIT_NO_PLOTS": value}) is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "OFF", "", "  "])
def test_false_spellings(value):
    assert env_flag("LINFIT_NO_PLOTS", {"LINFIT_NO_PLOTS": value}) is False


def test_unset_is_false():
    assert env_flag("LINFIT_NO_PLOTS", {}) is False


@pytest.mark.parametrize("value", ["2", "maybe", "y", "tru"])
def test_anything_else_is_refused_naming_the_variable_and_the_valid_values(value):
    with pytest.raises(LinfitError) as raised:
        env_flag("LINFIT_NO_PLOTS", {"LINFIT_NO_PLOTS": value})
    assert str(raised.value) == (f"LINFIT_NO_PLOTS={value!r} is not a boolean; use one of "
                                 "1, true, yes, on or 0, false, no, off")


def test_reads_this_process_by_default(monkeypatch):
    monkeypatch.setenv("LINFIT_TEST_FLAG", "yes")
    assert env_flag("LINFIT_TEST_FLAG") is True


def test_children_get_tensorflow_quiet_unless_the_user_chose():
    base = {"PATH": "/bin"}
    assert quiet_framework_env(base) == {"PATH": "/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert base == {"PATH": "/bin"}  # a copy: the caller's mapping is left alone
    assert quiet_framework_env({"TF_CPP_MIN_LOG_LEVEL": "0"})["TF_CPP_MIN_LOG_LEVEL"] == "0"
    # oneDNN is never switched off: that would change the kernels being measured.
    assert "TF_ENABLE_ONEDNN_OPTS" not in quiet_framework_env({})
