"""verify() end to end, as the registry calls it, and the first-party packs, which must scan clean."""

from __future__ import annotations

import json
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from hearth.sandbox import Suppression, verify

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
IMPORTS = HERE / "corpus" / "import"
STATIC = HERE / "corpus" / "static"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="isolation needs Linux namespaces")


def zip_folder(folder: Path, archive: Path, prefix: str, extra: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
        for name, mode in (extra or {}).items():
            info = zipfile.ZipInfo(f"{prefix}/{name}")
            info.create_system, info.external_attr = 3, mode << 16
            zf.writestr(info, "/etc/passwd")
    return archive


@linux_only
def test_a_clean_archive_passes_with_its_nodes(tmp_path):
    archive = zip_folder(IMPORTS / "benign_comfy", tmp_path / "benign_comfy-1.0.0.zip", "benign_comfy-1.0.0")
    report = verify(archive)
    assert report.verdict == "pass" and report.import_ok, report.findings
    assert sorted(n["name"] for n in report.nodes) == ["SampleBlend", "SampleCaption"]
    assert report.stats["format"] == "zip" and report.stats["files"] == 2
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) >= {"verdict", "findings", "nodes", "import_ok"}
    assert set(data["nodes"][0]) >= {"name", "category", "inputs", "outputs", "kind"}


def test_an_unsafe_archive_is_rejected_before_anything_is_unpacked_or_imported(tmp_path):
    archive = zip_folder(IMPORTS / "benign_comfy", tmp_path / "p.zip", "p", extra={"evil": stat.S_IFLNK | 0o777})
    report = verify(archive)
    assert report.verdict == "reject"
    assert {f.rule for f in report.findings} == {"archive.link"}
    assert report.nodes == [] and not report.import_ok and report.isolation == {}


def test_static_findings_flag_and_an_admin_suppression_clears_them():
    pack = STATIC / "deps.vcs.fires"
    report = verify(pack, isolate_import=False)
    assert report.verdict == "flag" and [f.rule for f in report.findings] == ["deps.vcs"]
    assert report.isolation == {"skipped": True} and not report.import_ok
    admin = Suppression("deps.vcs", "requirements.txt", 1, by="admin@registry", reason="mirror of a vetted fork")
    cleared = verify(pack, isolate_import=False, suppressions=[admin])
    assert cleared.verdict == "pass" and cleared.suppressed[0][1] is admin


def test_first_party_packs_scan_clean():
    builtin = ROOT / "hearth" / "core" / "builtin_nodes"
    if not (builtin / "__init__.py").exists():
        pytest.skip("hearth/core/builtin_nodes does not exist yet")
    packs = [builtin] + sorted(p for p in (ROOT / "plugins").glob("*") if (p / "pyproject.toml").exists())
    isolate = sys.platform.startswith("linux")
    for pack in packs:
        report = verify(pack, isolate_import=isolate)
        assert report.verdict == "pass", f"{pack.relative_to(ROOT)}: {[f.to_dict() for f in report.findings]}"
        assert not [f for f in report.findings if f.severity != "low"], pack
        if pack == builtin and isolate:
            assert report.import_ok and len(report.nodes) > 10, "the builtin nodes must be listed"
            assert {n["kind"] for n in report.nodes} == {"hearth"}


def test_pack_code_runs_only_inside_the_sandbox(tmp_path):
    # The pack leaves a marker wherever its code runs with access to the test's folder: it never should.
    marker = tmp_path / "ran-here"
    pack = tmp_path / "marker_pack"
    pack.mkdir()
    for name in ("__init__.py", "setup.py", "install.py"):
        (pack / name).write_text(f"open({str(marker)!r}, 'w').write('pack code ran outside the sandbox')\n")
    (pack / "pyproject.toml").write_text('[project]\nname = "marker-pack"\nversion = "0.1.0"\n'
                                         '[project.entry-points.hearth]\nmarker = "setup"\n')
    verify(pack, isolate_import=False)
    assert not marker.exists()
    if sys.platform.startswith("linux"):
        report = verify(pack)
        assert not marker.exists()
        assert "import.isolation-unavailable" in {f.rule for f in report.findings} or report.isolation["available"]
