"""Values that do not cross: a pack's own objects stay in its host as HostValues (round trip, release, refusal in
another pack's host, gone after a restart); Hearth's values of kinds the ExportPolicy names are lent to the host,
which may call the allowed methods (run here, during the call, nested) and gets TrustRequired for the others."""

from __future__ import annotations

import gc

import pytest

from hearth.sandbox.host import HostValue, PackHostError, TrustRequired


def test_a_pack_value_stays_in_the_host_and_comes_back_as_the_original(shared_host):
    (thing,) = shared_host.call("make_thing", "run", {"x": [1, "two"]})
    assert isinstance(thing, HostValue) and thing.pack == "shared" and thing.type_name == "Thing"
    value, type_name, live = shared_host.call("thing_value", "run", {"x": thing})
    assert value == [1, "two"] and type_name == "Thing" and live >= 1
    # inside containers too
    (back,) = shared_host.call("echo", "run", {"x": {"k": [thing]}})
    assert back["k"][0].id == thing.id


def test_the_host_lets_go_of_a_value_when_its_host_value_is_collected(shared_host):
    (baseline,) = shared_host.call("count_things", "run", {})
    things = [shared_host.call("make_thing", "run", {"x": i})[0] for i in range(3)]
    assert shared_host.call("count_things", "run", {}) == (baseline + 3,)
    del things
    gc.collect()
    assert shared_host.call("count_things", "run", {}) == (baseline,)


def test_a_host_value_given_to_another_pack_is_refused_naming_both(make_host):
    one, other = make_host("one"), make_host("other")
    (thing,) = one.call("make_thing", "run", {"x": 1})
    with pytest.raises(PackHostError) as caught:
        other.call("thing_value", "run", {"x": thing})
    assert str(caught.value) == ("pack 'other': thing_value's inputs cannot cross: a Thing made by pack 'one' cannot "
                                 "be given to pack 'other': a pack's own values stay in its host")


def test_a_host_value_from_a_host_that_has_restarted_is_gone(make_host):
    host = make_host("restarts")
    (thing,) = host.call("make_thing", "run", {"x": 1})
    with pytest.raises(PackHostError):
        host.call("exit_now", "run", {"x": 0})
    with pytest.raises(PackHostError, match="earlier host, which has since stopped, is gone"):
        host.call("thing_value", "run", {"x": thing})


class Model:
    """A value of Hearth's process (what a MODEL would be): the policy decides what a host may call."""

    def __init__(self, patches=None):
        self._patches = dict(patches or {})

    def clone(self):
        return Model(self._patches)

    def add_patch(self, key, strength):
        self._patches[key] = strength

    def patches(self):
        return dict(self._patches)

    def merge(self, other):
        assert isinstance(other, Model)  # the parent's own object, not a proxy or a copy
        return Model({**self._patches, **other._patches})

    def secret(self):
        return "the host must never get this"


class Policy:
    def kind_of(self, value):
        return "MODEL" if isinstance(value, Model) else None

    def allowed(self, kind, method):
        return kind == "MODEL" and method in ("clone", "add_patch", "patches", "merge")


def test_allowed_methods_of_a_lent_value_run_in_the_parent_and_nest(make_host):
    host = make_host("lender", exports=Policy())
    model = Model({"a": 1.0})
    clone, patches = host.call("use_model", "run", {"x": (model, "clone-patch")})
    assert isinstance(clone, Model) and clone is not model  # the parent's own clone came back, not a copy
    assert patches == {"a": 1.0, "k": 2.0} and clone.patches() == patches and model.patches() == {"a": 1.0}
    (same,) = host.call("use_model", "run", {"x": (model, "keep")})
    assert same is model  # the proxy passed back is the original object


def test_a_proxy_passed_as_an_argument_arrives_as_the_parents_own_object(make_host):
    host = make_host("lender", exports=Policy())
    merged, patches = host.call("use_model", "run", {"x": (Model({"a": 1}), "merge", Model({"b": 2}))})
    assert isinstance(merged, Model) and patches == {"a": 1, "b": 2}


def test_a_method_the_policy_does_not_allow_is_trust_required(make_host):
    host = make_host("lender", exports=Policy())
    with pytest.raises(TrustRequired) as caught:
        host.call("use_model", "run", {"x": (Model(), "secret")})
    assert str(caught.value) == "pack 'lender' must be trusted to run: it uses MODEL.secret"
    assert host.call("echo", "run", {"x": 1}) == (1,)


def test_without_a_policy_parent_objects_do_not_cross(make_host):
    host = make_host("nolender")
    with pytest.raises(PackHostError, match="a Model cannot cross to a pack host"):
        host.call("use_model", "run", {"x": (Model(), "clone")})
