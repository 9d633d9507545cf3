"""The trust policy: where each pack runs and why, for every mode and reason; and the plugin manager's refusal of
untrusted Hearth-format packs, which cannot run in a pack host yet."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hearth.core.plugins import PluginManager
from hearth.core.runtime import Runtime, RuntimeOptions
from hearth.core.trust import (
    MODES,
    Placement,
    TrustModeError,
    TrustPolicy,
    canonical_pack_name,
    hearth_format_refusal,
    isolation_refusal,
)
from tests.harness.packs import installed_distribution


def test_canonical_names_make_case_dash_underscore_and_dot_equal() -> None:
    assert canonical_pack_name("ComfyUI_Evil.Pack") == "comfyui-evil-pack"
    assert canonical_pack_name(" my--pack ") == "my-pack"
    policy = TrustPolicy(mode="untrusted", trusted=frozenset({"ComfyUI_Evil.Pack"}), network=frozenset({"API_Nodes"}))
    assert policy.trusted == {"comfyui-evil-pack"} and policy.network == {"api-nodes"}
    assert policy.placement("comfyui-evil_pack") == Placement(False, "trusted by you (comfy trust)")
    assert policy.placement("api.nodes").network is True


def test_the_library_default_runs_everything_in_process() -> None:
    assert TrustPolicy().mode == "off" and RuntimeOptions().trust == TrustPolicy()
    assert TrustPolicy().placement("anything") == Placement(False, "--isolation off")
    assert not TrustPolicy().isolates


@pytest.mark.parametrize("mode", MODES)
def test_first_party_plugins_run_in_process_in_every_mode(mode: str) -> None:
    placement = TrustPolicy(mode=mode).placement("sd", first_party=True)
    assert placement == Placement(False, "first-party plugin") and placement.where == "in-process"


@pytest.mark.parametrize("mode", MODES)
def test_a_pack_with_its_own_layer_runs_in_a_host_in_every_mode_even_trusted(mode: str) -> None:
    policy = TrustPolicy(mode=mode, trusted=frozenset({"numpy-one"}))
    placement = policy.placement("numpy-one", own_layer=True)
    assert placement == Placement(True, "has its own dependency layer") and placement.where == "pack host"


def test_untrusted_mode_isolates_only_what_the_user_does_not_trust() -> None:
    policy = TrustPolicy(mode="untrusted", trusted=frozenset({"mine"}))
    assert policy.placement("mine") == Placement(False, "trusted by you (comfy trust)")
    assert policy.placement("theirs") == Placement(True, "not trusted")


def test_all_mode_isolates_even_trusted_packs_and_off_mode_runs_untrusted_ones_in_process() -> None:
    trusted = frozenset({"mine"})
    assert TrustPolicy(mode="all", trusted=trusted).placement("mine") == Placement(True, "--isolation all")
    assert TrustPolicy(mode="all").placement("theirs") == Placement(True, "--isolation all")
    assert TrustPolicy(mode="off").placement("theirs") == Placement(False, "--isolation off")


def test_network_is_allowed_by_name_only_and_does_not_mean_trust() -> None:
    policy = TrustPolicy(mode="untrusted", network=frozenset({"api-nodes"}))
    assert policy.placement("api-nodes") == Placement(True, "not trusted", network=True)
    assert policy.placement("other").network is False
    assert TrustPolicy(mode="all", network=frozenset({"api-nodes"})).placement("api-nodes").network is True


def test_publisher_trust_recorded_at_install_counts_under_untrusted_only() -> None:
    registry = "http://hub.example"
    policy = TrustPolicy(mode="untrusted", publisher_packs=frozenset({("Acme_Nodes", "acme", registry)}))
    assert policy.placement("acme-nodes") == Placement(False, f"publisher trusted by {registry}")
    assert policy.placement("other-nodes") == Placement(True, "not trusted")
    assert TrustPolicy(mode="all", publisher_packs=policy.publisher_packs).placement("acme-nodes").isolated
    # A caller that knows the publisher (and a policy naming it trusted on a registry) gets the same answer.
    by_publisher = TrustPolicy(mode="untrusted", trusted_publishers=frozenset({("acme", registry)}))
    assert by_publisher.placement("x", publisher="acme") == Placement(False, f"publisher trusted by {registry}")
    assert by_publisher.placement("x", publisher="mallory").isolated
    # The user's own trust is named before the registry's.
    both = TrustPolicy(mode="untrusted", trusted=frozenset({"acme-nodes"}), publisher_packs=policy.publisher_packs)
    assert both.placement("acme-nodes").why == "trusted by you (comfy trust)"


def test_a_bad_mode_is_named() -> None:
    with pytest.raises(TrustModeError, match=r"'sometimes' is not an isolation mode; use one of untrusted, all, off"):
        TrustPolicy(mode="sometimes")
    assert TrustPolicy(mode=" ALL ").mode == "all"


def test_refusal_texts_name_the_pack_and_the_way_out() -> None:
    text = isolation_refusal("evil", "user namespaces are disabled")
    assert text.startswith("pack 'evil' must run in a pack host but this machine cannot isolate it "
                           "(user namespaces are disabled)")
    assert text.endswith("; run it unisolated at your own risk with --isolation off (or comfy trust evil)")
    assert hearth_format_refusal("acme-nodes") == ("Hearth-format pack acme-nodes runs only in-process: trust it "
                                                   "with `comfy trust acme-nodes` or use --isolation off")


def test_runtime_options_carry_the_policy() -> None:
    policy = TrustPolicy(mode="untrusted", trusted=frozenset({"a"}))
    options = RuntimeOptions.of(trust=policy)
    assert options.trust is policy and RuntimeOptions.of().trust == TrustPolicy()
    assert Runtime.build(trust=policy).options.trust is policy
    hash(options)  # still usable as a key


# -- Hearth-format packs through the plugin manager --------------------------------------------------------------

def _third_party(tmp_path: Path) -> tuple[Path, str, str]:
    tag = tmp_path.name.replace("-", "_").lower()[-24:]
    module, node = f"trust_probe_{tag}", f"TrustProbe{tag.title().replace('_', '')}"
    installed_distribution(tmp_path / "site", f"probe-{tag.replace('_', '-')}", module, node, entry_point="probe")
    return tmp_path / "site", module, node


def _load(site: Path, policy: TrustPolicy) -> PluginManager:
    return PluginManager().load(site_packages=[site], environ={}, trust=policy)


def test_an_untrusted_hearth_format_pack_is_not_imported_and_says_how_to_trust_it(tmp_path: Path) -> None:
    site, module, node = _third_party(tmp_path)
    dist = f"probe-{tmp_path.name.replace('-', '_').lower()[-24:].replace('_', '-')}"
    for mode, why in (("untrusted", "not trusted"), ("all", "--isolation all")):
        manager = _load(site, TrustPolicy(mode=mode))
        record = manager.records["probe"]
        assert record.error == (f"Hearth-format pack {dist} runs only in-process: trust it with "
                                f"`comfy trust {dist}` or use --isolation off")
        assert (record.placement, record.placement_why) == ("", why)
        assert module not in sys.modules and node not in manager.nodes()
    # The builtin nodes still load: one refused pack never stops the rest.
    assert manager.records["builtin_nodes"].error is None
    assert (manager.records["builtin_nodes"].placement, manager.records["builtin_nodes"].placement_why) == \
        ("in-process", "first-party plugin")


@pytest.mark.parametrize("trusted_as", ["probe", "distribution"])
def test_a_trusted_hearth_format_pack_loads_in_process(tmp_path: Path, trusted_as: str) -> None:
    site, module, node = _third_party(tmp_path)
    dist = f"probe-{tmp_path.name.replace('-', '_').lower()[-24:].replace('_', '-')}"
    name = "probe" if trusted_as == "probe" else dist.upper().replace("-", "_")
    manager = _load(site, TrustPolicy(mode="untrusted", trusted=frozenset({name}), network=frozenset({dist})))
    record = manager.records["probe"]
    assert record.error is None and node in manager.nodes()
    assert record.as_dict()["placement"] == "in-process"
    assert record.as_dict()["placement_why"] == "trusted by you (comfy trust)"
    assert record.as_dict()["network"] is True


def test_isolation_off_loads_a_hearth_format_pack_and_says_so(tmp_path: Path) -> None:
    site, _, node = _third_party(tmp_path)
    manager = _load(site, TrustPolicy(mode="off"))
    assert node in manager.nodes()
    assert (manager.records["probe"].placement, manager.records["probe"].placement_why) == \
        ("in-process", "--isolation off")


def test_first_party_plugins_load_under_isolation_all(make_runtime) -> None:  # noqa: ANN001
    runtime = make_runtime(trust=TrustPolicy(mode="all"))
    with runtime.activate():
        records = runtime.plugins.records
    for name in ("sd", "samplers", "lora", "video", "dit", "upscale", "audio", "comfy_compat"):
        assert records[name].error is None, records[name].error
        assert (records[name].placement, records[name].placement_why) == ("in-process", "first-party plugin")


def test_the_suite_runs_with_isolation_off_unless_a_test_opts_in() -> None:
    assert os.environ["HEARTH_ISOLATION"] == "off"


@pytest.mark.isolation("all")
def test_the_isolation_marker_takes_a_mode() -> None:
    assert os.environ["HEARTH_ISOLATION"] == "all"


def test_the_isolation_fixture_sets_the_cli_default(isolation: str) -> None:
    assert os.environ["HEARTH_ISOLATION"] == isolation == "untrusted"


def test_a_third_party_default_tier_entry_point_is_refused_too(tmp_path: Path) -> None:
    """Declaring the default tier gains a third-party distribution nothing: it is placed like any other pack."""
    tag = tmp_path.name.replace("-", "_").lower()[-24:]
    module, node = f"default_probe_{tag}", f"DefaultProbe{tag.title().replace('_', '')}"
    installed_distribution(tmp_path / "site", f"sneaky-{tag.replace('_', '-')}", module, node, entry_point="sneaky")
    info = next((tmp_path / "site").glob("*.dist-info"))
    (info / "entry_points.txt").write_text(f"[hearth.default]\nsneaky = {module}\n")
    manager = _load(tmp_path / "site", TrustPolicy(mode="untrusted"))
    assert manager.records["sneaky"].error.startswith("Hearth-format pack sneaky-")
    assert module not in sys.modules and node not in manager.nodes()


def test_a_layered_packs_refusal_does_not_offer_the_unisolated_way_it_cannot_take():
    text = isolation_refusal("numpy-one", "user namespaces are disabled", own_layer=True)
    assert "own dependency layer, which only a pack host can run" in text and "--isolation off" not in text
