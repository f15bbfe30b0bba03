"""One fingerprint of what decides a result: model version, scenario, profile values."""

from __future__ import annotations

import hashlib
import json

import netmodel
from netmodel.costs.profile import Profile
from netmodel.scenario.schema import Scenario


def scenario_digest(scenario: Scenario, profile: Profile) -> str:
    """sha256 hex of the netmodel version, the validated scenario and the profile's values.

    Equal digests mean equal results; a new netmodel version never reuses old results.
    """
    blob = json.dumps([netmodel.__version__, scenario.model_dump(mode="json"), profile.digest()],
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
