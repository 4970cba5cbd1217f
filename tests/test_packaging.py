"""The lowest-versions environment of CI tests what requirements.txt promises: every lower bound
there is pinned, at that minor version, in .ci/constraints-lowest.txt."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def requirement_lines(path):
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def test_constraints_pin_every_lower_bound():
    lower = {}
    for line in requirement_lines(ROOT / "requirements.txt"):
        name = re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()
        bound = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", line)
        if bound:
            lower[name] = bound.group(1)
    pinned = {}
    for line in requirement_lines(ROOT / ".ci" / "constraints-lowest.txt"):
        name, version = line.split("==")
        pinned[name.strip().lower()] = version.strip()
    for name, bound in lower.items():
        assert name in pinned, f"{name}>={bound} has no pin in .ci/constraints-lowest.txt"
        # The pin is a release of the lowest allowed minor version (its newest patch release).
        assert pinned[name] == bound or pinned[name].startswith(bound + "."), (
            f"{name}: requirements.txt allows >={bound}, but CI's lowest environment pins "
            f"{pinned[name]}; keep the two in step")
    assert set(pinned) <= set(lower), f"pins without a bound: {sorted(set(pinned) - set(lower))}"
