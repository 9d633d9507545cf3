"""What a verification produces: findings, the verdict they add up to, and admin suppressions.

A finding is one observation about a pack (rule id, severity, where, the offending text, one sentence on why it
matters). The verdict follows from the findings that are not suppressed:

* ``reject`` — any ``archive.*`` finding: the archive itself is unsafe to unpack, so nothing else can be trusted.
* ``flag`` — any other finding of severity ``medium`` or above: a registry admin must look before it goes live.
* ``pass`` — nothing, or only ``low`` findings (shown to the author, never blocking).

Suppression belongs to registry admins alone. The sandbox only applies the suppressions it is handed and keeps
them next to the findings they hide (who, why); the registry records each one in its audit log and never accepts
one from a pack's author. Archive findings cannot be suppressed: an archive that is unsafe to unpack stays
rejected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")
VERDICTS = ("pass", "flag", "reject")
REJECT_PREFIX = "archive."
_FLAG_FROM = SEVERITIES.index("medium")


@dataclass(frozen=True)
class Finding:
    """One observation about a pack: ``rule`` fired at ``path``:``line`` on ``snippet``, because ``message``."""

    rule: str
    severity: str
    path: str
    line: int
    snippet: str
    message: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"finding {self.rule}: unknown severity {self.severity!r}; expected one of {SEVERITIES}")

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(**{name: data[name] for name in ("rule", "severity", "path", "line", "snippet", "message")})


@dataclass(frozen=True)
class Suppression:
    """A registry admin's decision that a finding is a false positive.

    ``line`` of ``None`` (or 0) matches the rule anywhere in ``path``; ``path`` of ``"*"`` matches every file.
    """

    rule: str
    path: str
    line: int | None
    by: str
    reason: str

    def __post_init__(self) -> None:
        if not self.by.strip() or not self.reason.strip():
            raise ValueError("a suppression needs the admin who made it (by) and a reason")
        if self.rule.startswith(REJECT_PREFIX):
            raise ValueError(f"{self.rule}: archive findings cannot be suppressed; the archive is unsafe to unpack")

    def matches(self, finding: Finding) -> bool:
        return (finding.rule == self.rule
                and self.path in ("*", finding.path)
                and (not self.line or self.line == finding.line))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict_of(findings: list[Finding]) -> str:
    """The verdict that ``findings`` (already filtered of suppressed ones) add up to."""
    if any(f.rule.startswith(REJECT_PREFIX) for f in findings):
        return "reject"
    if any(SEVERITIES.index(f.severity) >= _FLAG_FROM for f in findings):
        return "flag"
    return "pass"


@dataclass
class Report:
    """The outcome of :func:`hearth.sandbox.verify` for one pack."""

    verdict: str = "pass"
    findings: list[Finding] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    import_ok: bool = False
    suppressed: list[tuple[Finding, Suppression]] = field(default_factory=list)
    # How the import was isolated (namespaces, limits) or why it was not; and how much was scanned.
    isolation: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.findings = sort_findings(self.findings)
        self.verdict = verdict_of(self.findings)

    def suppress(self, rule: str, path: str, line: int | None, by: str, reason: str) -> int:
        """Hide the findings an admin judged false positives; returns how many it hid and recomputes the verdict.

        The caller (the registry) must record ``by`` and ``reason`` in its audit log.
        """
        return self.apply([Suppression(rule, path, line, by, reason)])

    def apply(self, suppressions: list[Suppression]) -> int:
        hidden = 0
        for suppression in suppressions:
            keep = []
            for finding in self.findings:
                if suppression.matches(finding):
                    self.suppressed.append((finding, suppression))
                    hidden += 1
                else:
                    keep.append(finding)
            self.findings = keep
        self.verdict = verdict_of(self.findings)
        return hidden

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "import_ok": self.import_ok,
            "findings": [f.to_dict() for f in self.findings],
            "nodes": self.nodes,
            "suppressed": [{"finding": f.to_dict(), "suppression": s.to_dict()} for f, s in self.suppressed],
            "isolation": self.isolation,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report stored by the registry (the verdict is recomputed, never trusted from storage)."""
        report = cls(
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            nodes=list(data.get("nodes", [])),
            import_ok=bool(data.get("import_ok", False)),
            isolation=dict(data.get("isolation", {})),
            stats=dict(data.get("stats", {})),
        )
        report.suppressed = [(Finding.from_dict(item["finding"]), Suppression(**item["suppression"]))
                             for item in data.get("suppressed", [])]
        return report


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by place, so the table reads top-down and output is deterministic."""
    return sorted(findings, key=lambda f: (-SEVERITIES.index(f.severity), f.path, f.line, f.rule))
