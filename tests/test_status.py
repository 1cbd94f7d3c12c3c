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


def _header_table():
    """(code name, message) of each entry of kStatusTable in cpp/include/lawfit/status.h, read
    from the source (adjacent string literals joined, as the compiler joins them)."""
    import re
    from pathlib import Path

    src = (Path(__file__).resolve().parents[1] / "cpp" / "include" / "lawfit" /
           "status.h").read_text()
    table = src[src.index("kStatusTable[]"):]
    table = table[:table.index("};")]
    out = {}
    for name, body in re.findall(r'\{k\w+,\s*"(\w+)",\s*((?:"(?:[^"\\]|\\.)*"\s*)+)\}', table):
        out[name] = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body))
    return out


def test_python_table_matches_the_header_source():
    """The Python messages agree with status.h as written (the compiled table follows it at
    the next build; test_python_table_matches_cpp checks that one)."""
    header = _header_table()
    assert header.pop("NOT_RUN")
    assert header == {s.name: s.message for s in lawfit.Status}


def test_nonfinite_data_message_names_x():
    """x <= 0 for a power law is NONFINITE_DATA, and its message says so."""
    x = np.geomspace(1e6, 1e10, 8)
    x[2] = -1.0
    r = lawfit.fit("saturating_power_law", [x], [1.8 + 600 * np.abs(x) ** -0.34],
                   p0=[1.8, 600, 0.34], backend="cpu")
    assert r.status[0] == lawfit.Status.NONFINITE_DATA
    assert "x <= 0" in r.message[0]
