"""Locks and uv's resolver explanations, as data: parse_lock, lock_text and conflict_message on fixed texts."""

from __future__ import annotations

import pytest

from hearth.registry.lock import LockError, conflict_message, lock_text, parse_lock

BASE = {"torch": "2.13.0+cpu", "numpy": "2.4.6", "comfy-hearth": "0.1.0"}

OLD_TORCH = """error: No solution found when resolving dependencies
  cause: Because only torch>=2 is available and all versions of pack-a depend on torch<2, we can conclude that \
all versions of pack-a cannot be used.
         And because you require pack-a, we can conclude that your requirements are unsatisfiable."""

OLD_TORCH_RANGE = """error: No solution found when resolving dependencies
  cause: Because only torch>=2 is available and pack-c>=2.0 depends on torch<2, we can conclude that pack-c>=2.0 \
cannot be used.
         And because you require pack-c==2.0, we can conclude that your requirements are unsatisfiable."""

TWO_PACKS = """error: No solution found when resolving dependencies
  cause: Because pack-d==1.0 depends on depx>=1.2,<2 and pack-c==1.0 depends on depx<1.1, we can conclude that \
pack-c==1.0 and pack-d==1.0 are incompatible.
         And because you require pack-c==1.0 and pack-d, we can conclude that your requirements are unsatisfiable."""

MISSING = """error: No solution found when resolving dependencies
  cause: Because missingdep was not found in the package registry and all versions of pack-e depend on \
missingdep, we can conclude that all versions of pack-e cannot be used."""

NO_VERSION = """error: No solution found when resolving dependencies
  cause: Because there is no version of depx==9 and all versions of pack-f depend on depx==9, we can conclude \
that all versions of pack-f cannot be used."""


def test_a_base_conflict_names_the_pack_its_requirement_and_the_base_version():
    assert conflict_message(OLD_TORCH, BASE) == \
        "conflict: pack-a needs torch<2 but the environment's base has torch 2.13.0+cpu"
    assert conflict_message(OLD_TORCH_RANGE, BASE) == \
        "conflict: pack-c>=2.0 needs torch<2 but the environment's base has torch 2.13.0+cpu"


def test_versions_known_from_the_index_replace_all_versions():
    assert conflict_message(OLD_TORCH, BASE, {"pack-a": ["1.2"]}) == \
        "conflict: pack-a 1.2 needs torch<2 but the environment's base has torch 2.13.0+cpu"
    assert conflict_message(OLD_TORCH, BASE, {"pack-a": ["1.0", "1.2"]}).startswith(
        "conflict: every version of pack-a (1.0 to 1.2) needs torch<2")


CHAIN = """error: No solution found when resolving dependencies
  cause: Because only torch>=2 is available and all versions of pack-a depend on torch<2, we can conclude that \
all versions of pack-a cannot be used.
         And because all versions of pack-top depend on pack-a and you require pack-top, we can conclude that your \
requirements are unsatisfiable."""


def test_a_base_conflict_deep_in_the_packs_says_which_pack_pulled_it_in():
    assert conflict_message(CHAIN, BASE) == ("conflict: pack-a needs torch<2 but the environment's base has torch "
                                             "2.13.0+cpu (pack-a is needed by pack-top)")


def test_two_packs_that_disagree_are_both_named():
    assert conflict_message(TWO_PACKS, BASE) == \
        "conflict: pack-d 1.0 needs depx>=1.2,<2 but pack-c 1.0 needs depx<1.1"


def test_missing_and_unavailable_dependencies_say_who_needs_them():
    assert conflict_message(MISSING, BASE) == \
        "conflict: missingdep was not found on any configured registry or index (needed by pack-e)"
    assert conflict_message(NO_VERSION, BASE) == \
        "conflict: no version of depx==9 is available (needed by pack-f)"


def test_an_unknown_explanation_is_kept_on_one_line():
    text = "error: something new\n  cause: the resolver\n  changed its wording"
    message = conflict_message(text, BASE)
    assert "\n" not in message and "something new" in message and "changed its wording" in message


def test_lock_round_trip_and_local_paths():
    text = lock_text([])
    assert parse_lock(text).packages == []
    uv_lock = '''lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "Tiny_Dep"
version = "1.5"
wheels = [{ url = "http://r/files/aa/tiny_dep-1.5-py3-none-any.whl", hashes = { sha256 = "%s" } }]
''' % ("a" * 64)
    lock = parse_lock(uv_lock)
    [p] = lock.packages
    assert (p.name, p.version, p.artifact.filename, p.artifact.sha256) == \
        ("tiny-dep", "1.5", "tiny_dep-1.5-py3-none-any.whl", "a" * 64)
    local = parse_lock(lock_text(lock.packages, paths={"tiny-dep": "/cache/tiny_dep-1.5-py3-none-any.whl"}))
    assert local.packages[0].artifact.url == "file:///cache/tiny_dep-1.5-py3-none-any.whl"
    assert local.packages[0].artifact.sha256 == "a" * 64


@pytest.mark.parametrize("text, words", [
    ("lock-version = 1.0\n[[packages]\n", "not valid TOML"),
    ('lock-version = "2.0"\n', "not supported"),
    ('lock-version = "1.0"\n[[packages]]\nname = "x"\nversion = "1"\n', "no wheel or sdist"),
    ('lock-version = "1.0"\n[[packages]]\nname = "x"\nversion = "1"\nwheels = [{ url = "http://r/x.whl" }]\n',
     "sha256"),
])
def test_bad_locks_are_named(text: str, words: str):
    with pytest.raises(LockError, match=words):
        parse_lock(text, "my.toml")


def test_the_wheel_that_fits_this_interpreter_is_chosen():
    sha = "b" * 64
    text = f'''lock-version = "1.0"
[[packages]]
name = "fast"
version = "1.0"
sdist = {{ url = "http://r/fast-1.0.tar.gz", hashes = {{ sha256 = "{"c" * 64}" }} }}
wheels = [
  {{ url = "http://r/fast-1.0-cp311-cp311-win_amd64.whl", hashes = {{ sha256 = "{"d" * 64}" }} }},
  {{ url = "http://r/fast-1.0-py3-none-any.whl", hashes = {{ sha256 = "{sha}" }} }},
]
[[packages]]
name = "odd"
version = "1.0"
sdist = {{ url = "http://r/odd-1.0.tar.gz", hashes = {{ sha256 = "{"e" * 64}" }} }}
wheels = [
  {{ url = "http://r/odd-1.0-cp27-cp27m-win32.whl", hashes = {{ sha256 = "{"f" * 64}" }} }},
  {{ url = "http://r/odd-1.0-cp26-cp26m-win32.whl", hashes = {{ sha256 = "{"f" * 64}" }} }},
]
'''
    lock = parse_lock(text).by_name()
    assert lock["fast"].artifact.sha256 == sha
    assert lock["odd"].artifact.filename == "odd-1.0.tar.gz"  # no wheel fits: the sdist


def test_packages_locked_for_another_platform_are_skipped():
    text = f'''lock-version = "1.0"
[[packages]]
name = "winonly"
version = "1.0"
marker = "sys_platform == 'win32' and sys_platform != 'linux' and sys_platform != 'darwin'"
wheels = [{{ url = "http://r/winonly-1.0-py3-none-any.whl", hashes = {{ sha256 = "{"a" * 64}" }} }}]
[[packages]]
name = "everywhere"
version = "1.0"
marker = "python_version >= '3'"
wheels = [{{ url = "http://r/everywhere-1.0-py3-none-any.whl", hashes = {{ sha256 = "{"a" * 64}" }} }}]
'''
    assert [p.name for p in parse_lock(text).packages] == ["everywhere"]
