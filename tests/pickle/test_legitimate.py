"""Pickles of real library objects raise no CRITICAL (and the common ones no WARNING)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import dill
import pytest

from tests.pickle._pickle_corpus import critical, scan, warnings_of

#: Objects whose pickles reference names outside the everyday safe list are still allowed a
#: WARNING; none of the ones below are.
_MAY_WARN: frozenset[str] = frozenset()


def test_corpus_size(legit_objects: list[tuple[str, Any]]) -> None:
    assert len(legit_objects) >= 25


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_dumps_is_clean(legit_objects: list[tuple[str, Any]], protocol: int) -> None:
    problems = {}
    for name, obj in legit_objects:
        result, info = scan(pickle.dumps(obj, protocol=protocol))
        bad = critical(result) + ([] if name in _MAY_WARN else warnings_of(result))
        if bad or not info.complete or not result.success:
            problems[name] = (bad, result.status_reason)
    assert not problems


@pytest.mark.parametrize("protocol", [2, 4])
def test_dill_dumps_is_clean(legit_objects: list[tuple[str, Any]], protocol: int) -> None:
    problems = {}
    for name, obj in legit_objects:
        result, info = scan(dill.dumps(obj, protocol=protocol))
        if critical(result) or warnings_of(result) or not info.complete:
            problems[name] = (critical(result), warnings_of(result), result.status_reason)
    assert not problems


def test_torch_tensor_nested_bytes_are_scanned(legit_objects: list[tuple[str, Any]]) -> None:
    tensor = dict(legit_objects)["torch-tensor"]
    data = pickle.dumps(tensor)
    assert b"_load_from_bytes" in data
    result, info = scan(data)
    assert info.complete and not result.issues


def test_globals_are_listed(legit_objects: list[tuple[str, Any]]) -> None:
    _, info = scan(pickle.dumps(dict(legit_objects)["ordereddict"], protocol=4))
    assert info.globals == ["collections.OrderedDict"]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_uninitialised_lazy_modules_are_clean(protocol: int) -> None:
    """torch.save of a model before its first forward: a lazy module keeps its bound
    `_lazy_load_hook` among the load-state hooks (pickled as a getattr on the class)."""
    import torch

    modules = [torch.nn.LazyLinear(3), torch.nn.LazyBatchNorm1d(), torch.nn.LazyConv2d(3, 2)]
    result, info = scan(pickle.dumps(modules, protocol=protocol))
    assert not critical(result), critical(result)
    assert not warnings_of(result), warnings_of(result)
    assert info.complete


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_generators_and_data_loaders_are_clean(protocol: int) -> None:
    """A sampler keeps a torch.Generator (pickled as torch._C.Generator(device) and its
    state); a DataLoader names the default collate function."""
    import torch

    data = torch.utils.data.TensorDataset(torch.ones(4, 2))
    gen = torch.Generator().manual_seed(1)
    loader = torch.utils.data.DataLoader(data, batch_size=2, shuffle=True, generator=gen)
    objs = [gen, torch.utils.data.RandomSampler(data, generator=gen), loader]
    result, info = scan(pickle.dumps(objs, protocol=protocol))
    assert not critical(result), critical(result)
    assert not warnings_of(result), warnings_of(result)
    assert info.complete


def test_distributed_checkpoint_metadata_is_clean(tmp_path: Path) -> None:
    """`torch.distributed.checkpoint.save` (one process) pickles its plan into `.metadata`,
    which its reader pickle.loads: dataclasses of torch.distributed.checkpoint, an Enum."""
    import warnings

    import torch
    from torch.distributed.checkpoint.state_dict_saver import save

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = {"model": torch.nn.Linear(4, 2).state_dict(), "extra": {"step": 3}}
        save(state, checkpoint_id=str(tmp_path / "ckpt"))
    result, info = scan((tmp_path / "ckpt" / ".metadata").read_bytes())
    assert "torch.distributed.checkpoint.metadata.Metadata" in info.globals
    assert not critical(result), critical(result)
    assert not warnings_of(result), warnings_of(result)
    assert info.complete
    # the rest of torch.distributed stays denied
    rpc = pickle.dumps(torch.distributed.checkpoint.metadata.Metadata({}), protocol=2).replace(
        b"torch.distributed.checkpoint.metadata\nMetadata", b"torch.distributed.rpc\nrpc_sync"
    )
    assert critical(scan(rpc)[0])


@pytest.mark.parametrize("protocol", [2, 4])
def test_omegaconf_configs_are_clean(protocol: int) -> None:
    """Lightning's `hyper_parameters` from a Hydra/OmegaConf config (what torch.save writes
    into every such checkpoint): DictConfig, ListConfig, their metadata, nodes, typing.Any."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {"model": {"hidden": 8, "layers": [1, 2], "act": "gelu", "p": 0.1, "bias": True}}
    )
    result, info = scan(pickle.dumps({"hyper_parameters": {"cfg": cfg}}, protocol=protocol))
    assert "omegaconf.dictconfig.DictConfig" in info.globals
    assert not critical(result), critical(result)
    assert not warnings_of(result), warnings_of(result)
    assert info.complete
    # OmegaConf's own static methods (load, save) are still unknown names
    loader = pickle.dumps(cfg, protocol=2).replace(
        b"omegaconf.dictconfig\nDictConfig", b"omegaconf.omegaconf\nOmegaConf"
    )
    assert warnings_of(scan(loader)[0]) or critical(scan(loader)[0])
