"""The status table: one in C++, one in Python; they must agree."""
import numpy as np

import lawfit
from lawfit import _core
from lawfit._status import messages


def test_python_table_matches_cpp():
    cpp = {code: (name, msg) for code, name, msg in _core.status_table() if name != "NOT_RUN"}
    py = {int(s): (s.name, s.message) for s in lawfit.Status}
    assert cpp == py


def test_success_is_status_positive():
    for s in lawfit.Status:
        assert s.success == (s.value > 0)


def test_messages_vectorised_and_unknown_code():
    out = messages(np.array([1, -2, 0, 77]))
    assert out[0] == lawfit.Status.GTOL.message
    assert out[1] == lawfit.Status.NONFINITE_DATA.message
    assert "Unknown status 77" in out[3]
