"""`netmodel report DIR`: one self-contained HTML page that parses, leads with the decision
for a comparison, and holds every plot, the scenario, the profile's sources and the checks."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import netmodel
from netmodel.cli import main

SMALL = """\
name: small
cluster: {nodes: 4}
services: {count: 20, endpoints_per_service: 2}
run: {requests: 300}
sweep:
  axes:
    services.count: [10, 20]
"""


class Page(HTMLParser):
    """Every tag with its attributes, and whether each opened tag was closed in order."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.tags, self.stack, self.errors = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    scenario = base / "small.yaml"
    scenario.write_text(SMALL)
    loaded = netmodel.load(scenario)
    netmodel.sweep(loaded, base / "sweep")
    netmodel.compare(loaded, ["kube_proxy.mode=iptables,ebpf", "cluster.cni_datapath=vxlan,native"],
                     base / "compare")
    return base


def parsed(path: Path) -> tuple[str, Page]:
    text = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    page.close()
    return text, page


@pytest.mark.validation
def test_a_report_is_self_contained_and_parses(folders, capsys):
    assert main(["report", str(folders / "compare")]) == 0
    assert capsys.readouterr().out == f"wrote {folders / 'compare' / 'report.html'}\n"
    text, page = parsed(folders / "compare" / "report.html")
    assert page.errors == [] and page.stack == []
    assert not any(tag in ("script", "link", "iframe", "object") for tag, _ in page.tags)
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith(("data:image/png;base64,", "#")), (tag, attrs[name][:40])
    assert not re.search(r"url\(|@import|@font-face", text)
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    plots = sorted((folders / "compare" / "plots").glob("*.png"))
    assert len(images) >= len(plots) and len(plots) >= 4


@pytest.mark.validation
def test_a_comparison_report_leads_with_the_decision_and_holds_the_rest(folders):
    path = netmodel.report(folders / "compare")
    text, _ = parsed(path)
    order = [text.index(heading) for heading in (
        '<h2 id="decision">Decision: kube_proxy.mode', "<h3>Verdict", '<h2 id="checks">',
        '<h2 id="summary">', '<h2 id="plots">', '<h2 id="scenario">',
        '<h2 id="profile">Cost profile: default', '<h2 id="versions">')]
    assert order == sorted(order)
    assert "(baseline iptables; cluster.cni_datapath with it: vxlan, native)" in text
    assert "network programming p99" in text and "stale-endpoint failures" in text
    assert "every request accounted for" in text and "FAILED" not in text
    assert "DaoCloud" in text                                      # the profile's sources
    assert "endpoints_per_service: 2" in text                       # the scenario as run
    assert f"netmodel</td><td class=\"text\">{netmodel.__version__}" in text
    assert path.read_bytes() == netmodel.report(folders / "compare").read_bytes()  # same bytes


@pytest.mark.validation
def test_a_sweep_report_has_no_decision(folders):
    text, page = parsed(netmodel.report(folders / "sweep"))
    assert "Decision" not in text and "<h2 id=\"summary\">Summary</h2>" in text
    assert len([t for t, _ in page.tags if t == "img"]) == len(list((folders / "sweep" / "plots").glob("*.png")))


@pytest.mark.validation
def test_a_report_holds_the_validation_of_its_profile_and_what_fails_says_why(folders):
    text, _ = parsed(netmodel.report(folders / "sweep"))
    validation = text[text.index('id="validation"'):text.index('id="summary"')]
    passed, total = map(int, re.search(r"(\d+) of (\d+) checks pass", validation).groups())
    assert 0 < passed < total  # the known gaps of docs/validation.md stay in the table
    assert "IPVS client node CPU per new connection" in validation and "two machines in one profile" in validation
    text, _ = parsed(netmodel.report(folders / "sweep", validation=False))
    assert "Not run for this page" in text


def test_report_of_a_folder_without_results_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a results folder: no summary.parquet" in err
