"""Pack manifests: fields read from pyproject.toml, errors naming file and field, semver order and PEP 440 form."""

from pathlib import Path

import pytest

from hearth.registry.manifest import (
    ManifestError,
    load_manifest,
    map_classifiers,
    parse_manifest,
    semver_key,
    semver_to_pep440,
)
from tests.harness.packs import make_pack, pyproject


def test_reads_project_and_tool_comfy(tmp_path: Path):
    pack = make_pack(tmp_path, "cool-nodes", "1.2.3", dependencies=["tqdm>=4", "other-pack"])
    m = load_manifest(pack)
    assert (m.name, m.version, m.publisher) == ("cool-nodes", "1.2.3", "acme")
    assert m.license == "MIT"
    assert m.dependencies == ["tqdm>=4", "other-pack"]
    assert m.repository == "https://example.com/acme/cool-nodes"
    assert m.supported_os == ["Windows", "macOS", "Linux"]
    assert m.supported_accelerators == ["CUDA"]
    assert m.requires_python == ">=3.9"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (pyproject("bad name!"), "project.name"),
        (pyproject("ok", version="1.0"), "project.version"),
        (pyproject("ok", publisher="Acme"), "tool.comfy.PublisherId"),
        (pyproject("ok", dependencies=["not a req ==="]), "project.dependencies"),
        ("[project]\nname='x'\nversion='1.0.0'\n", "tool.comfy"),
        ("[tool.comfy]\nPublisherId='a'\n", "project"),
        (pyproject("ok", extra_project='requires-python = 3'), "file"),
    ],
)
def test_bad_manifest_names_file_and_field(tmp_path: Path, text: str, field: str):
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ManifestError) as err:
        load_manifest(tmp_path)
    assert err.value.field == field
    assert str(tmp_path / "pyproject.toml") in str(err.value)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path)


def test_pack_id_length_limit():
    with pytest.raises(ManifestError, match="not a valid pack id"):
        parse_manifest({"project": {"name": "a" * 101, "version": "1.0.0"}, "tool": {"comfy": {"PublisherId": "p"}}})


def test_classifier_mapping_is_ordered_and_unique():
    oses, accs = map_classifiers(["Operating System :: POSIX :: Linux", "Operating System :: POSIX",
                                  "Environment :: GPU :: AMD ROCm", "Environment :: GPU :: AMD ROCm"])
    assert oses == ["Linux", "macOS"]
    assert accs == ["ROCm"]


def test_semver_precedence():
    versions = ["1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.1", "0.9.9", "1.10.0", "1.2.0"]
    assert sorted(versions, key=semver_key) == [
        "0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0"]


@pytest.mark.parametrize(("semver", "pep440"), [
    ("1.2.3", "1.2.3"), ("1.0.0-alpha.2", "1.0.0a2"), ("1.0.0-rc.1", "1.0.0rc1"), ("2.0.0-beta", "2.0.0b0"),
    ("1.0.0-nightly.20240101", "1.0.0.dev20240101"), ("1.0.0+build.5", "1.0.0+build.5"),
])
def test_semver_to_pep440(semver: str, pep440: str):
    assert semver_to_pep440(semver) == pep440
