"""Dependency checks: URLs, VCS links, extra indexes, and the known-bad and popular package lists."""

from __future__ import annotations

import re

import pytest

from hearth.sandbox.requirements import DATA, check_requirement, known_bad, normalize, one_typo_apart, popular


def rules(line: str) -> list[str]:
    return [f.rule for f in check_requirement(line, "requirements.txt", 1)]


@pytest.mark.parametrize(("line", "expected"), [
    ("numpy>=1.26", []),
    ("Pillow[avif] ; python_version >= '3.11'", []),
    ("torch==2.4.0  # pinned for CUDA 12", []),
    ("# https://example.invalid/a-comment.whl", []),
    ("openai @ https://example.invalid/openai-1.0-py3-none-any.whl", ["deps.url"]),
    ("https://example.invalid/pkg.tar.gz", ["deps.url"]),
    ("./wheels/local-1.0-py3-none-any.whl", ["deps.url"]),
    ("file:///tmp/pkg", ["deps.url"]),
    ("git+https://example.invalid/x.git#egg=x", ["deps.vcs"]),
    ("-e git+ssh://git@example.invalid/x.git#egg=x", ["deps.vcs"]),
    ("pkg @ git+https://example.invalid/x.git", ["deps.vcs"]),
    ("--extra-index-url https://example.invalid/simple", ["deps.index"]),
    ("--index-url=https://example.invalid/simple", ["deps.index"]),
    ("-i https://example.invalid/simple", ["deps.index"]),
    ("--find-links ./wheels", ["deps.index"]),
    ("--trusted-host example.invalid", ["deps.index"]),
    ("-r other-requirements.txt", []),
])
def test_requirement_lines(line, expected):
    assert rules(line) == expected


def test_known_malicious_names_and_pinned_versions():
    assert rules("torchtriton") == ["deps.malicious"]
    assert rules("Torch_Triton") == []  # a different normalized name
    assert rules("ultralytics==8.3.41") == ["deps.malicious"]
    assert rules("ultralytics==8.3.40") == [] and rules("ultralytics>=8.3") == []
    assert rules("colourama") == ["deps.typosquat"]
    finding = check_requirement("ctx", "requirements.txt", 4)[0]
    assert finding.line == 4 and "2022" in finding.message  # the source is shown


def test_typosquats_of_popular_packages():
    assert rules("reqeusts") == ["deps.typosquat"]  # swapped letters
    assert rules("numpyy") == ["deps.typosquat"]  # one letter added
    assert rules("transformer") == ["deps.typosquat"]  # one letter dropped
    assert "did you mean requests" in check_requirement("reqeusts", "r.txt", 1)[0].message
    for honest in ("requests", "opencv-python-headless", "torchsde", "timm", "tqdm", "httpx"):
        assert rules(honest) == [], honest


def test_one_typo_apart():
    assert one_typo_apart("requests", "reqeusts")
    assert one_typo_apart("numpy", "numpyy") and one_typo_apart("numpyy", "numpy")
    assert one_typo_apart("pillow", "pilloq")
    assert not one_typo_apart("numpy", "numpy")
    assert not one_typo_apart("numpy", "numba")  # two substitutions
    assert not one_typo_apart("torch", "torchsde")


def test_data_files_are_well_formed_and_every_entry_has_a_source():
    lines = [line for line in (DATA / "known_bad_packages.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    for line in lines:
        name, kind, source = line.split(None, 2)
        assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*(==[\w.]+)?", name), line
        assert kind in ("malicious", "typosquat") and len(source) > 10, line
    assert len(known_bad()) >= 20
    whole = {name for name, entries in known_bad().items() if any(e.version is None for e in entries)}
    assert not whole & popular(), "a popular package can be known-bad in some versions, never as a whole"
    assert all(name == normalize(name) for name in popular())
