"""How a run is laid out in its HDF5 files.

Format 2 (sealed, see files.py): the run file `<id>.h5` is a small index; the weights live in
immutable part files `<id>.parts/<step>-<token>.h5`, one per stored state (a checkpoint and/or the
resume state), each holding `step`, `model/<tensor>` and `optimizer/<tensor>/<buffer>`. The index
lists them in `/states` with each part's size and checksum, and is rewritten (small) last.
Format 1 (before the parts) held checkpoints and the resume state inline; it stays readable, and a
writer that continues such a run keeps its inline states and adds new ones as parts.

    /                      attrs: format, id, name, kind, status ("running" | "complete"),
                                  parent, config_json, created, updated
    /states                attrs: parts_json {step: {file, size, sha256}}, checkpoints_json [steps],
                                  resume (step, or -1 when there is none)        (format 2)
    /config/...            the configuration as typed attributes on nested groups (data, not prose)
    /environment           attrs: landscape version, git commit, torch, python, device, host...
    /curves/<split>/<m>    float64 arrays of equal length, one row per evaluation (NaN = not measured)
    /metrics               attrs: final and best figures, written with status "complete"
    /checkpoints/<step>/model/<tensor>                  weights and buffers at iteration <step>  (format 1)
    /checkpoints/<step>/optimizer/<tensor>/<buffer>     optimizer state for that tensor           (format 1)
    /resume                the latest resumable state (same layout as a checkpoint), removed at the end (format 1)
    /mask/<tensor>         the pruning mask the run trained under (bool), if any
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # h5py, numpy and torch load where they are used: `landscape ls` needs none of them
    import h5py
    import numpy as np
    import torch

FORMAT = 2


def write_attrs_tree(group: h5py.Group, data: dict[str, Any]) -> None:
    """Nested dicts become groups; leaves become typed attributes (None as an empty attribute)."""
    import h5py

    for key, value in data.items():
        if isinstance(value, dict):
            write_attrs_tree(group.require_group(key), value)
        elif value is None:
            group.attrs[key] = h5py.Empty("f")
        elif isinstance(value, (list, tuple)):
            group.attrs[key] = _list_attr(list(value))
        elif isinstance(value, str):
            group.attrs[key] = str(value)  # plain str: subclasses such as torch.__version__ do not convert
        else:
            group.attrs[key] = value


def _list_attr(values: list[Any]) -> Any:
    """Numbers as a numeric array, anything else as strings (nested items as JSON)."""
    import h5py
    import numpy as np

    if not values:
        return h5py.Empty(h5py.string_dtype())
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values)
    return np.array([v if isinstance(v, str) else json.dumps(v) for v in values], dtype=h5py.string_dtype())


def read_attrs(group: h5py.Group) -> dict[str, Any]:
    import h5py
    import numpy as np

    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if isinstance(value, h5py.Empty):
            out[key] = None
        elif isinstance(value, bytes):
            out[key] = value.decode()
        elif isinstance(value, np.generic):
            out[key] = value.item()
        elif isinstance(value, np.ndarray):  # lists are written as arrays; read them back as lists
            out[key] = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
        else:
            out[key] = value
    return out


def write_tensors(group: h5py.Group, tensors: dict[str, "torch.Tensor"]) -> None:
    for name, tensor in tensors.items():
        group.create_dataset(name, data=tensor.detach().cpu().numpy())


def read_tensors(group: h5py.Group) -> dict[str, "torch.Tensor"]:
    import numpy as np
    import torch

    return {name: torch.from_numpy(np.asarray(ds[()])) for name, ds in group.items()}


def write_state(group: h5py.Group, model: dict[str, "torch.Tensor"], optimizer: dict[str, dict[str, "torch.Tensor"]],
                step: int, mask: dict[str, "torch.Tensor"] | None = None) -> None:
    group.attrs["step"] = step
    if mask is not None:  # a mask that changes during training (gradual pruning) is state
        write_tensors(group.create_group("mask"), {k: v.bool() for k, v in mask.items()})
    write_tensors(group.create_group("model"), model)
    opt = group.create_group("optimizer")
    for name, buffers in optimizer.items():
        write_tensors(opt.create_group(name), buffers)


def read_state(group: h5py.Group) -> tuple[int, dict[str, "torch.Tensor"], dict[str, dict[str, "torch.Tensor"]]]:
    model = read_tensors(group["model"])
    optimizer = {name: read_tensors(sub) for name, sub in group["optimizer"].items()}
    return int(group.attrs["step"]), model, optimizer


def read_state_mask(group: h5py.Group) -> dict[str, torch.Tensor] | None:
    return read_tensors(group["mask"]) if "mask" in group else None


def write_curves(group: h5py.Group, curves: dict[str, list[float]]) -> None:
    import numpy as np

    for key in list(group.keys()):
        del group[key]
    for key, values in curves.items():
        group.create_dataset(key, data=np.asarray(values, dtype=np.float64))


def read_curves(group: h5py.Group) -> dict[str, np.ndarray]:
    import h5py
    import numpy as np

    out: dict[str, np.ndarray] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            out[name] = np.asarray(obj[()])

    group.visititems(visit)
    return out


def config_json(attrs: h5py.AttributeManager) -> dict[str, Any]:
    return json.loads(attrs["config_json"])
