"""The bisect's state folder (linfit/bisect/state.py): saved atomically, read back exactly,
refused when it is another bisect's or not a state at all, locked while in use."""

from __future__ import annotations

import json

import pytest

from linfit._errors import LinfitError
from linfit.bisect.state import STATE_FILE, BisectState, SessionRecord, locked

SETTINGS = {"good": "tf-nightly==1", "bad": "tf-nightly==9", "cell_options": {},
            "threshold": 0.05, "alpha": 0.01}


def _record(attempt: int = 0) -> SessionRecord:
    sides = ("tf-nightly==5", "tf-nightly==1", "tf-nightly==9")
    return SessionRecord(key=SessionRecord.make_key("cell-a", sides, attempt), cell="cell-a",
                         sides=sides, attempt=attempt, pairs="pairs/s.csv",
                         interrupted=True, failures=("side 5: crashed",))


def test_a_state_reads_back_what_was_saved(tmp_path):
    state = BisectState.open(tmp_path, SETTINGS)
    assert state.builds is None and not state.sessions
    state.set_builds(["tf-nightly==1", "tf-nightly==5", "tf-nightly==9"])
    state.add_session(_record())
    state.mark_unavailable("tf-nightly==3", "does not install")
    again = BisectState.open(tmp_path, SETTINGS)
    assert again.builds == ["tf-nightly==1", "tf-nightly==5", "tf-nightly==9"]
    assert again.sessions == [_record()]
    assert again.unavailable == {"tf-nightly==3": "does not install"}
    assert again.session(_record().key) == _record()
    assert again.session(_record(1).key) is None
    # Written by rename: no temporary file is left beside it.
    assert sorted(path.name for path in tmp_path.iterdir()) == [STATE_FILE]


def test_a_session_is_saved_once(tmp_path):
    state = BisectState.open(tmp_path, SETTINGS)
    state.add_session(_record())
    with pytest.raises(ValueError, match="saved already"):
        state.add_session(_record())


def test_other_settings_are_refused_naming_them(tmp_path):
    BisectState.open(tmp_path, SETTINGS).save()
    before = (tmp_path / STATE_FILE).read_bytes()
    with pytest.raises(LinfitError, match=r"other settings \(alpha, threshold\).*--state"):
        BisectState.open(tmp_path, {**SETTINGS, "threshold": 0.1, "alpha": 0.05})
    assert (tmp_path / STATE_FILE).read_bytes() == before


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not JSON"),
    ('{"kind": "something else"}', "not a linfit bisect state"),
    ('[1, 2]', "not a linfit bisect state"),
    (json.dumps({"kind": "linfit-bisect-state", "schema_version": 99}),
     "schema_version 99 is not one this linfit reads"),
])
def test_a_file_that_is_not_a_state_is_refused(tmp_path, text, message):
    (tmp_path / STATE_FILE).write_text(text)
    with pytest.raises(LinfitError, match=message):
        BisectState.open(tmp_path, SETTINGS)


@pytest.mark.parametrize("change", [
    {"key": "[]"},                       # a key that does not match its cell and sides
    {"pairs": "../elsewhere.csv"},       # a pairs file outside the folder
    {"pairs": "/tmp/elsewhere.csv"},
    {"sides": [1, 2]},                   # not text
    {"attempt": "first"},
])
def test_a_malformed_session_is_refused(tmp_path, change):
    state = BisectState.open(tmp_path, SETTINGS)
    state.add_session(_record())
    data = json.loads((tmp_path / STATE_FILE).read_text())
    data["sessions"][0].update(change)
    (tmp_path / STATE_FILE).write_text(json.dumps(data))
    with pytest.raises(LinfitError, match="malformed entry"):
        BisectState.open(tmp_path, SETTINGS)


def test_a_state_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "state").write_text("")
    with pytest.raises(LinfitError, match="bisect state folder"):
        BisectState.open(tmp_path / "state", SETTINGS)


def test_a_second_bisect_on_the_same_folder_is_refused(tmp_path):
    # flock belongs to an open file: a second open of the lock, even in this process,
    # is another bisect.
    refused = pytest.raises(LinfitError, match="another linfit bisect is using this state")
    with locked(tmp_path), refused, locked(tmp_path):
        pass
    with locked(tmp_path):  # free again
        pass
