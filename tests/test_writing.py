"""`yaml_text` writes what PyYAML's block style writes, byte for byte, and reads back as
the same data, whatever the data."""

import enum
import math

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from netmodel.writing import yaml_text

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_NAMES = st.from_regex(r"[a-z0-9][a-z0-9./_-]{0,20}", fullmatch=True)
_TEXT = st.one_of(_NAMES, st.sampled_from(["true", "no", "null", "~", "80", "0755", "1.5", "1e3",
                                           "10.0.0.1", "-x", "a: b", "# c", "x y", "'q'", "é"]),
                  st.text(max_size=30), st.text(alphabet="ab -", min_size=90, max_size=140))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), _TEXT,
                     st.floats(allow_nan=False), st.builds(dict), st.builds(list))
_DATA = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)), max_leaves=25)


def _pyyaml(data) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)


@settings(max_examples=400, deadline=None)
@given(data=_DATA)
def test_reads_back_as_the_same_data(data):
    assert yaml.safe_load(yaml_text(data)) == data


@settings(max_examples=400, deadline=None)
@given(data=st.dictionaries(_NAMES, _DATA, min_size=1, max_size=5))
def test_writes_what_pyyaml_writes_where_no_text_folds(data):
    text = yaml_text(data)
    if all(len(line) <= 100 for line in _pyyaml(data).splitlines()):
        assert text == _pyyaml(data)


def test_an_inventory_is_written_bare_and_the_odd_value_by_pyyaml():
    data = {"name": "x", "inventory": {"services": [
        {"name": "svc-0", "cluster_ip": "10.96.0.1", "ports": [{"port": 80, "name": "true"}],
         "selector": {"app.kubernetes.io/name": "web"}, "endpoints": [], "weight": 0.5,
         "headless": False, "note": None, "nested": [[1, 2], [{"a": math.inf}]]}]}}
    assert yaml_text(data) == _pyyaml(data)
    assert "name: 'true'" in yaml_text(data)


def test_what_pyyaml_refuses_it_still_refuses():
    class Port(enum.IntEnum):
        HTTP = 80

    with pytest.raises(yaml.representer.RepresenterError):
        yaml_text({"ports": [Port.HTTP]})
