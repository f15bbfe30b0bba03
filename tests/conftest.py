import pytest
from hypothesis import settings

from netmodel.connections.records import Records
from netmodel.connections.replication import Replication, describe
from netmodel.costs.profile import load_profile
from netmodel.engines import ENGINES
from netmodel.scenario.loader import validate_scenario
from netmodel.scenario.schema import Scenario


@pytest.fixture(scope="session")
def profile():
    return load_profile("default")


def make_scenario(**sections) -> Scenario:
    """A small valid scenario with `sections` merged over the defaults, validated and checked
    as a scenario file is."""
    doc = {"name": "t", "run": {"requests": 2000, "seed": 3}}
    for key, value in sections.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    return validate_scenario(doc)


def walked(scenario: Scenario, profile, replication: int = 0,
           engine: str = "simpy") -> tuple[Replication, Records]:
    """Replication `replication` described, and its records as `engine` walks it."""
    rep = describe(scenario, profile, replication)
    return rep, ENGINES[engine].run(rep)


# Hypothesis profiles: `ci` (the default) keeps every property test's example count bounded
# so the suite stays within CI's time; `pytest --hypothesis-profile=long` runs many more
# examples locally (the fuzz suite in test_fuzz.py especially).
settings.register_profile("ci", max_examples=40, deadline=None)
settings.register_profile("long", max_examples=2000, deadline=None)
settings.load_profile("ci")
