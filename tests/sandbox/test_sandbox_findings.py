"""The verdict rule and admin suppressions: what the registry stores and shows."""

from __future__ import annotations

import json

import pytest

from hearth.sandbox.findings import Finding, Report, Suppression, verdict_of


def make(rule: str, severity: str, path: str = "nodes.py", line: int = 3) -> Finding:
    return Finding(rule, severity, path, line, "snippet", "Why it matters.")


def test_verdict_is_reject_for_any_archive_finding_flag_from_medium_and_pass_otherwise():
    assert verdict_of([]) == "pass"
    assert verdict_of([make("obfuscation.computed-import", "low")]) == "pass"
    assert verdict_of([make("process.spawn", "medium")]) == "flag"
    assert verdict_of([make("process.spawn", "medium"), make("archive.link", "critical")]) == "reject"


def test_findings_are_sorted_most_severe_first():
    report = Report(findings=[make("a.low", "low"), make("b.crit", "critical"), make("c.med", "medium")])
    assert [f.severity for f in report.findings] == ["critical", "medium", "low"]


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError, match="severity"):
        make("x", "severe")


def test_suppression_hides_matching_findings_and_recomputes_the_verdict():
    report = Report(findings=[make("process.spawn", "medium", line=3), make("process.spawn", "medium", line=9)])
    assert report.verdict == "flag"
    hidden = report.suppress("process.spawn", "nodes.py", 3, by="admin@example", reason="runs ffmpeg, reviewed")
    assert hidden == 1 and report.verdict == "flag"
    report.suppress("process.spawn", "nodes.py", None, by="admin@example", reason="all calls reviewed")
    assert report.verdict == "pass" and not report.findings
    assert [s.by for _, s in report.suppressed] == ["admin@example", "admin@example"]


def test_suppression_needs_an_author_and_a_reason_and_never_covers_archive_findings():
    with pytest.raises(ValueError, match="reason"):
        Suppression("process.spawn", "*", None, by="admin", reason=" ")
    with pytest.raises(ValueError, match="cannot be suppressed"):
        Suppression("archive.traversal", "*", None, by="admin", reason="trust me")


def test_report_round_trips_through_json_and_the_stored_verdict_is_not_trusted():
    report = Report(findings=[make("process.spawn", "medium"), make("exec.dynamic", "high", line=5)],
                    nodes=[{"name": "N", "category": "c", "inputs": {}, "outputs": [], "kind": "comfyui"}],
                    import_ok=True)
    report.suppress("exec.dynamic", "*", 5, by="admin", reason="literal after all")
    data = json.loads(json.dumps(report.to_dict()))
    data["verdict"] = "pass"  # tampered in storage
    again = Report.from_dict(data)
    assert again.verdict == "flag"
    assert again.to_dict()["findings"] == report.to_dict()["findings"]
    assert again.suppressed[0][1].reason == "literal after all"
