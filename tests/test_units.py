"""Units at the edges: YAML text in, SI floats out."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netmodel.units import format_quantity, parse_quantity


@pytest.mark.parametrize(("text", "dimension", "si"), [
    ("1.5ms", "time", 1.5e-3),
    ("250ns", "time", 250e-9),
    ("40µs", "time", 40e-6),
    ("10s", "time", 10.0),
    ("2 min", "time", 120.0),
    ("1h", "time", 3600.0),
    (".5s", "time", 0.5),
    ("1500B", "size", 1500.0),
    ("64KiB", "size", 65536.0),
    ("2MiB", "size", 2 * 1024.0**2),
    ("1.5GB", "size", 1.5e9),
    ("25Gbps", "bitrate", 25e9),
    ("100Mbps", "bitrate", 100e6),
    ("1Tbps", "bitrate", 1e12),
    ("1000/s", "rate", 1000.0),
    ("2k/s", "rate", 2000.0),
    ("5krps", "rate", 5000.0),
    ("3/ms", "rate", 3000.0),
    ("1_000rps", "rate", 1000.0),
    ("7", "count", 7.0),
])
def test_unit_strings_give_si_values(text, dimension, si):
    assert parse_quantity(text, dimension) == pytest.approx(si, rel=1e-12)


@pytest.mark.parametrize(("value", "dimension", "si"), [
    (0.002, "time", 0.002), (1500, "size", 1500.0), (10**10, "bitrate", 1e10),
    ("1e-4", "time", 1e-4),  # YAML 1.1 reads 1e-4 (no dot) as text: still a bare number
    ("42", "rate", 42.0),
])
def test_bare_numbers_are_in_the_si_base_unit(value, dimension, si):
    assert parse_quantity(value, dimension) == si


def test_unknown_unit_names_the_accepted_ones():
    with pytest.raises(ValueError) as err:
        parse_quantity("10Gbs", "bitrate")
    assert str(err.value) == "unknown bitrate unit 'Gbs' in '10Gbs' (accepted: bps, Kbps, Mbps, Gbps, Tbps)"


def test_unit_of_another_dimension_is_refused():
    with pytest.raises(ValueError, match=r"^unknown size unit 'Gbps' in '25Gbps' \(accepted: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB\)$"):
        parse_quantity("25Gbps", "size")


@pytest.mark.parametrize("bad", ["abc", "ms", "", "fast"])
def test_text_without_a_number_is_refused(bad):
    with pytest.raises(ValueError) as err:
        parse_quantity(bad, "time")
    assert str(err.value) == f"expected a time such as '1.5ms', got {bad!r}"


@pytest.mark.parametrize("bad", [True, False, None, [1], {"ms": 1}])
def test_non_numbers_and_booleans_are_refused(bad):
    with pytest.raises(ValueError) as err:
        parse_quantity(bad, "size")
    assert str(err.value) == f"expected a size such as '64KiB', got {bad!r}"


def test_count_takes_no_unit():
    with pytest.raises(ValueError, match=r"unknown count unit 'k' in '10k' \(accepted: a plain number\)"):
        parse_quantity("10k", "count")


@given(st.floats(min_value=-86_400e6, max_value=86_400e6, allow_nan=False, allow_infinity=False))
def test_microseconds_round_trip(x):
    assert parse_quantity(f"{x}us", "time") == x * 1e-6


@given(st.integers(min_value=0, max_value=931), st.sampled_from(["KiB", "MiB", "GiB"]))
def test_binary_sizes_are_exact(n, unit):
    factor = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    assert parse_quantity(f"{n}{unit}", "size") == n * factor


@pytest.mark.parametrize(("si", "dimension", "text"), [
    (0.0015, "time", "1.5ms"), (200e-6, "time", "200us"), (25e9, "bitrate", "25Gbps"),
    (1500.0, "size", "1.5KB"), (1000.0, "rate", "1000/s"), (3.0, "count", "3"),
])
def test_format_quantity(si, dimension, text):
    assert format_quantity(si, dimension) == text


@pytest.mark.parametrize(("value", "dimension", "message"), [
    (float("inf"), "size", "expected a finite size, got inf"),
    (float("nan"), "rate", "expected a finite rate, got nan"),
    ("1e400us", "time", "expected a finite time, got '1e400us'"),
    (10**400, "time", "expected a finite time, got " + repr(10**400)[:57] + "..."),
    ("25h", "time", "expected a time of at most 24h, got '25h'"),
    ("2TB", "size", "expected a size of at most 1TB, got '2TB'"),
    ("10bps", "bitrate", "expected a bitrate of 1Kbps to 1000Tbps, got '10bps'"),
    ("2e9/s", "rate", "expected a rate of at most 1e+09/s, got '2e9/s'"),
])
def test_infinite_and_unphysical_quantities_are_refused(value, dimension, message):
    with pytest.raises(ValueError) as err:
        parse_quantity(value, dimension)
    assert str(err.value) == message


@pytest.mark.parametrize(("value", "dimension"), [(0, "bitrate"), ("-5s", "time"), ("24h", "time"),
                                                  ("1TB", "size"), ("1e-300/s", "rate")])
def test_zero_signs_and_the_range_ends_are_the_fields_to_check(value, dimension):
    parse_quantity(value, dimension)
