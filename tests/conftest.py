import pytest

from netmodel.costs.profile import load_profile
from netmodel.scenario.schema import Scenario


@pytest.fixture(scope="session")
def profile():
    return load_profile("default")


def make_scenario(**sections) -> Scenario:
    """A small valid scenario with `sections` merged over the defaults."""
    doc = {"name": "t", "run": {"requests": 2000, "seed": 3}}
    for key, value in sections.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    return Scenario.model_validate(doc)
