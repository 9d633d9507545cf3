"""The static scan against the corpus: every rule fires on its sample and stays quiet on its look-alike.

Samples are parsed, never run. Binary samples (fake executables, bytecode, archives) are written at test time
so the repository holds no binary files; they are a few header bytes, not programs.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import pytest

from hearth.sandbox.findings import SEVERITIES
from hearth.sandbox.pycode import scan_python
from hearth.sandbox.rules import RULES
from hearth.sandbox.static import MAX_FINDINGS_PER_RULE_AND_FILE, scan_folder

STATIC = Path(__file__).parent / "corpus" / "static"
STATIC_RULES = sorted(rule for rule in RULES if not rule.startswith(("import.", "archive.")))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("inner/readme.txt", "inert")
    return buffer.getvalue()


def _fake_pe() -> bytes:
    head = bytearray(b"MZ" + b"\x00" * 0x3E)
    struct.pack_into("<I", head, 0x3C, 0x40)
    return bytes(head) + b"PE\x00\x00" + b"\x00" * 16


# Generated samples, binary or large: {rule: (files that fire, files of the look-alike)}, paths in a pack.
GENERATED = {
    "binary.compiled": (
        {"lib/helper.so": b"\x7fELF\x02\x01\x01" + b"\x00" * 57, "tool.dat": _fake_pe(),
         "ext/fast.pyd": b"no known header, but named as a native extension"},
        {"notes.txt": b"MZ is how the notes start, with no PE header after it." + b" " * 64, "icon.png": PNG},
    ),
    "binary.pyc": (
        # __pycache__ is what `comfy node publish` leaves out (and an archive holding it is rejected), so a
        # folder's own cache is not read; bytecode anywhere else is.
        {"lib/hidden.cpython-311.pyc": b"\xa7\r\r\n" + b"\x00" * 12, "loose.pyc": b"\xa7\r\r\n"},
        {"nodes.py": b"X = 1\n", "__pycache__/nodes.cpython-311.pyc": b"\xa7\r\r\n" + b"\x00" * 12},
    ),
    "code.unparsable": ({"broken.py": b"def broken(:\n"}, {"soft_keywords.py": b"match = 1\ntype = 2\n"}),
    "obfuscation.deep-nesting": (
        {"deep.py": b"x = " + b"+".join([b"1"] * 20000) + b"\n"},
        {"long_sum.py": b"x = " + b"+".join([b"1"] * 900) + b"\n"},
    ),
    "binary.nested-archive": (
        {"assets/extra.zip": _zip_bytes(), "weights.bin": _zip_bytes()},
        {"vocab.txt.gz": gzip.compress(b"hello world\n" * 100), "preview.png": PNG},
    ),
}


def corpus_cases(rule: str, kind: str) -> list[Path]:
    return sorted(STATIC.glob(f"{rule}.{kind}*"))


def findings_for(case: Path) -> list:
    if case.is_dir():
        return scan_folder(case).findings
    return scan_python(case.name, case.read_bytes())


def write_pack(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_every_static_rule_has_a_sample_that_fires_and_a_look_alike():
    missing = [rule for rule in STATIC_RULES if rule not in GENERATED
               and not (corpus_cases(rule, "fires") and corpus_cases(rule, "quiet"))]
    assert not missing, f"rules without corpus cases: {missing}"


def test_every_rule_has_a_valid_severity_and_a_one_sentence_explanation():
    for rule, (severity, message) in RULES.items():
        assert severity in SEVERITIES, rule
        assert message.endswith(".") and message.count(". ") == 0, rule


@pytest.mark.parametrize("rule", [r for r in STATIC_RULES if r not in GENERATED])
def test_rule_fires_on_its_sample(rule):
    for case in corpus_cases(rule, "fires"):
        hits = [f for f in findings_for(case) if f.rule == rule]
        assert hits, f"{case.name} should fire {rule}"
        assert all(f.line > 0 for f in hits), f"{rule} findings need a line"
        assert all(f.severity == RULES[rule][0] and f.message and f.path for f in hits)


@pytest.mark.parametrize("rule", [r for r in STATIC_RULES if r not in GENERATED])
def test_rule_stays_quiet_on_its_look_alike(rule):
    for case in corpus_cases(rule, "quiet"):
        hits = [f for f in findings_for(case) if f.rule == rule]
        assert not hits, f"{case.name} should not fire {rule}: {hits}"


@pytest.mark.parametrize("rule", sorted(GENERATED))
def test_generated_samples_fire_and_their_look_alikes_stay_quiet(rule, tmp_path):
    fires, quiet = GENERATED[rule]
    found = scan_folder(write_pack(tmp_path / "fires", fires)).findings
    assert {f.path for f in found if f.rule == rule} == set(fires)
    found = scan_folder(write_pack(tmp_path / "quiet", quiet)).findings
    assert not [f for f in found if f.rule == rule]


def test_findings_point_at_file_line_and_offending_text():
    case = STATIC / "exec.dynamic.fires.py"
    (hit,) = [f for f in findings_for(case) if f.rule == "exec.dynamic"]
    assert hit.path == case.name and hit.line == 4 and hit.snippet == "return eval(user_text)"


def test_renamed_imports_do_not_hide_calls():
    source = b"from subprocess import Popen as launch\nimport os as o\nlaunch(['x'])\n__import__('os').system('x')\n"
    rules = [(f.rule, f.line) for f in scan_python("n.py", source)]
    assert ("process.spawn", 3) in rules and ("process.spawn", 4) in rules


def test_docstrings_are_not_scanned_as_payloads():
    source = b'"""Posts results to https://discord.com/api/webhooks/1/x when asked."""\n'
    assert scan_python("n.py", source) == []


def test_repeated_findings_in_one_file_are_capped(tmp_path):
    body = "".join(f"eval(x{i})\n" for i in range(MAX_FINDINGS_PER_RULE_AND_FILE + 10))
    write_pack(tmp_path, {"many.py": body.encode()})
    result = scan_folder(tmp_path)
    assert len(result.findings) == MAX_FINDINGS_PER_RULE_AND_FILE
    assert result.files == 1 and result.python_files == 1


@pytest.mark.parametrize(("source", "rule"), [
    ("import subprocess\n_r = subprocess.run\ndef f():\n    _r(['x'])\n", "process.spawn"),
    ("import subprocess\n_r = getattr(subprocess, 'run')\n_r(['x'])\n", "process.spawn"),
    ("import subprocess as sp\nclass A:\n    def __init__(self):\n        self.go = sp.Popen\n"
     "    def run(self):\n        self.go(['x'])\n", "process.spawn"),
    ("import importlib\nm = importlib.import_module('subprocess')\nm.run(['x'])\n", "process.spawn"),
    ("import builtins, base64\ngetattr(builtins, 'exec')(base64.b64decode('cHJpbnQoMSk='))\n", "exec.decoded"),
    ("e = getattr(__builtins__, 'exec')\ne(x)\n", "exec.dynamic"),
    ("b = __import__('builtins')\nb.exec(x)\n", "exec.dynamic"),
    ("import os\np = os.path.join(os.environ['HOME'], '.ss' + 'h', 'id_' 'rsa')\n", "credentials.path"),
    ("import os\nh = os.path.expanduser('~')\np = h + '/.' + 'ssh'\n", "credentials.path"),
    ("A = '.'\nB = 'ssh'\np = A + B\n", "credentials.path"),
    ("p = ''.join(['.', 's', 's', 'h'])\n", "credentials.path"),
    ("u = 'https://discord.com/api/' + 'webhooks/1/x'\n", "network.webhook"),
    ("import requests\ndef f():\n    s = requests.Session()\n    s.post('u')\n", "network.call"),
    ("import os\nif os.getenv('GITHUB_ACTIONS'):\n    pass\n", "evasion.sandbox-probe"),
    ("status = open('/proc/self/' + 'status').read()\n", "evasion.sandbox-probe"),
])
def test_names_and_strings_are_followed(source, rule):
    assert rule in {f.rule for f in scan_python("n.py", source.encode())}
