"""Regression fixtures for disagreements the differential run found (make_cases.py --regressions DIR).

Each case is the minimal checkpoint that showed a disagreement between TorchLoad and torch.load, saved by the
real torch running this script, plus a manifest.json in the shared fixture schema (torch-load-fixtures/1, see
shared/fixtures/README.md), so the conformance checkers pick the folder up:

    chroot /srv/trixie python3 make_cases.py --regressions /var/tmp/out     (torch 2.6; any torch works)

A case = name, what it guards, how it is saved (format, protocol, pickler variant) and the object. The
expected tree is what this torch's torch.load returns, with the storage keys the file really holds (read
back through a pickle module that records every persistent id), so nothing in the manifest is hand-written.
"""
import collections
import hashlib
import json
import math
import os
import pickle
import sys
import types

import torch
import torch.nn as nn


def _cases(mc):
    """(file stem, description, features, format, protocol, pickler variant, make the object)."""
    g = torch.Generator().manual_seed(11)

    def qpc_float(axis):
        x = torch.randn(4, 3, generator=g) * 3
        n = x.shape[axis]
        scales = torch.tensor([0.5, 0.25, 0.125, 0.0625][:n], dtype=torch.float64)
        zps = torch.tensor([-1.5, 0.0, 2.25, 7.0][:n], dtype=torch.float32)
        return torch.quantize_per_channel(x, scales, zps, axis, torch.quint8)

    def state_dict():
        torch.manual_seed(5)
        return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).state_dict()

    def nested_odicts():
        return collections.OrderedDict([("a", collections.OrderedDict([("w", torch.arange(6.0).view(2, 3)), ("n", 3)])),
                                        ("b", collections.OrderedDict()), ("c", [collections.OrderedDict([(1, "one")])])])

    qpc_desc = ("quint8 tensor quantized per channel with FLOAT zero points ({}): torch rebuilds it as "
                "per_channel_affine_float_qparams (the pickle says per_channel_affine_float_qparams; zero points float32)")
    odict_desc = ("every OrderedDict reduced as OrderedDict([[key, value], ...]) (REDUCE with a list of two-item lists, "
                  "as Python 2 pickled it){}: torch.load accepts the lists as pairs")
    stop_desc = "the pickle leaves None and 7 under the object on the stack at STOP ({}): torch.load returns the top value"
    return [
        ("qpc_float_zero_points", qpc_desc.format("zip, axis 0 and 1"), ["quantized:per_channel_affine_float_qparams", "format:zip"],
         "zip", 2, "std", lambda: {"axis0": qpc_float(0), "axis1": qpc_float(1)}),
        ("qpc_float_zero_points_legacy", qpc_desc.format("legacy, protocol 4"), ["quantized:per_channel_affine_float_qparams", "format:legacy", "proto:4"],
         "legacy", 4, "std", lambda: [qpc_float(0)]),
        ("odict_lists_state_dict", odict_desc.format(", a state_dict with _metadata set by BUILD"), ["pickle:odict_list_pairs", "format:zip"],
         "zip", 2, "odict_lists", state_dict),
        ("odict_lists_nested_legacy", odict_desc.format(", nested and empty, legacy format, protocol 2"), ["pickle:odict_list_pairs", "format:legacy"],
         "legacy", 2, "odict_lists", nested_odicts),
        ("stop_extra_values_zip", stop_desc.format("zip, protocol 2"), ["pickle:stop_extra_stack", "format:zip"],
         "zip", 2, "stop_extra", lambda: {"t": torch.arange(4, dtype=torch.int16), "x": 1.5}),
        ("stop_extra_values_legacy", stop_desc.format("legacy, protocol 4, framed"), ["pickle:stop_extra_stack", "format:legacy", "proto:4"],
         "legacy", 4, "stop_extra", lambda: [torch.ones(2, 2), "s"]),
    ]


# ---------------------------------------------------------------- loading with the storage keys
class _KeyRecorder:
    """A pickle module for torch.load: its (pure-Python) Unpickler wraps the persistent_load torch sets, so
    every storage torch rebuilds is tied to the key the file gives it."""

    def __init__(self, mc):
        self.keys = {}  # untyped storage _cdata -> key
        rec = self

        class Unpickler(pickle._Unpickler):
            _torchload_mc = mc

            @property
            def persistent_load(self):
                return self._torchload_pl

            @persistent_load.setter
            def persistent_load(self, fn):
                def wrapped(pid):
                    obj = fn(pid)
                    if isinstance(pid, tuple) and len(pid) > 2 and pid[0] == "storage":
                        rec.keys.setdefault(self._torchload_mc.untyped(obj)._cdata, str(pid[2]))
                    return obj
                self._torchload_pl = wrapped

        m = types.ModuleType("torchload_keyed_pickle")
        m.Unpickler, m.load, m.loads, m.Pickler, m.dump = Unpickler, pickle.load, pickle.loads, pickle.Pickler, pickle.dump
        m.__name__ = "pickle"
        self.module = m


def _num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


class _FixtureWalker:
    """torch.load's object as a fixture-schema tree (shared/fixtures/README.md: root nodes)."""

    def __init__(self, mc, keys):
        self.mc, self.keys = mc, keys
        self.seen = {}
        self.tensors = []

    def tensor(self, t, path):
        mc = self.mc
        n = {"type": "tensor", "path": path, "path_str": ".".join(str(p) for p in path),
             "class": type(t).__module__ + "." + type(t).__qualname__ if isinstance(t, nn.Parameter) else "torch.Tensor",
             "is_parameter": isinstance(t, nn.Parameter), "dtype": mc.dtname(t.dtype),
             "layout": str(t.layout).replace("torch.", ""), "device": t.device.type, "requires_grad": bool(t.requires_grad)}
        if t.layout != torch.strided:
            raise ValueError("sparse regression cases: add components here")
        u = mc.untyped(t)
        info = mc.Walker().storage_info(u, t.dtype)
        n.update(shape=list(t.shape), numel=t.numel(), stride=list(t.stride()), storage_offset=t.storage_offset(),
                 is_contiguous=t.is_contiguous(),
                 storage={"key": self.keys.get(u._cdata), "location": info["location"], "dtype": info["dtype"],
                          "size": info["size"], "nbytes": info["nbytes"]},
                 sha256=mc.sha(mc.tbytes(t)))
        if t.is_quantized:
            qs = str(t.qscheme()).replace("torch.", "")
            q = {"qscheme": qs}
            if qs == "per_tensor_affine":
                q.update(scale=t.q_scale(), zero_point=t.q_zero_point())
            else:
                q.update(axis=t.q_per_channel_axis(), scales=[_num(float(x)) for x in t.q_per_channel_scales()],
                         scales_dtype=mc.dtname(t.q_per_channel_scales().dtype),
                         zero_points=[_num(x.item()) for x in t.q_per_channel_zero_points()],
                         zero_points_dtype=mc.dtname(t.q_per_channel_zero_points().dtype))
            n["quantization"] = q
            n["sha256_of"] = "int_repr"
        self.tensors.append(n)
        return n

    def walk(self, o, path):
        if o is None:
            return {"type": "None"}
        if isinstance(o, bool):
            return {"type": "bool", "value": o}
        if isinstance(o, int):
            return {"type": "int", "value": o}
        if isinstance(o, float):
            return {"type": "float", "value": _num(o), "hex": o.hex()}
        if isinstance(o, str):
            return {"type": "str", "value": o}
        if isinstance(o, (bytes, bytearray)):
            return {"type": type(o).__name__, "hex": bytes(o).hex()}
        if id(o) in self.seen and not isinstance(o, tuple):
            return {"type": "ref", "same_object_as": self.seen[id(o)]}
        self.seen[id(o)] = path
        if isinstance(o, torch.Tensor):
            return self.tensor(o, path)
        if isinstance(o, dict):
            items = []
            for k, v in o.items():
                items.append({"key": self.walk(k, path + [{"item": len(items), "is_key": True}]),
                              "value": self.walk(v, path + [k if isinstance(k, (str, int)) else {"item": len(items)}])})
            n = {"type": type(o).__name__ if type(o).__name__ in ("dict", "OrderedDict", "Counter") else "dict", "items": items}
            if vars(o) if hasattr(o, "__dict__") else None:
                n["attributes"] = {k: repr(v) for k, v in vars(o).items()}
            return n
        if isinstance(o, (list, tuple)):
            return {"type": type(o).__name__, "items": [self.walk(x, path + [i]) for i, x in enumerate(o)]}
        raise ValueError("regression cases hold plain values only, not %r" % type(o))


def _observe(path, weights_only):
    try:
        r = torch.load(path, weights_only=weights_only)
        return {"ok": True, "result_type": type(r).__module__ + "." + type(r).__qualname__}
    except Exception as e:
        lines = str(e).splitlines() or [type(e).__name__]
        return {"ok": False, "exception": type(e).__name__, "message": lines[0][:300]}


def write_all(out, mc):
    os.makedirs(out, exist_ok=True)
    saved_with = {"torch": torch.__version__, "python": "%d.%d.%d" % sys.version_info[:3]}
    files = []
    for stem, desc, features, fmt, proto, variant, make in _cases(mc):
        fname = stem + ".pt"
        path = os.path.join(out, fname)
        mc.save(make(), path, fmt, proto, variant)
        rec = _KeyRecorder(mc)
        loaded = torch.load(path, weights_only=False, pickle_module=rec.module)
        walker = _FixtureWalker(mc, rec.keys)
        root = walker.walk(loaded, [])
        data = open(path, "rb").read()
        calls = []
        for wo in (True, False):
            seen = _observe(path, wo)
            # TorchLoad's policy for these plain-data files: load in both modes, like torch.load(weights_only=False)
            calls.append({"args": {"weights_only": wo}, "expect": {"ok": True},
                          "expect_torch": {"ok": seen["ok"]}, "observed_torch": seen})
        files.append({"file": fname, "description": desc, "features": features,
                      "saved_with": dict(saved_with, pickle_protocol=proto, _use_new_zipfile_serialization=fmt != "legacy",
                                         saved_to="BytesIO" if fmt == "bytesio" else "file path", pickler=variant),
                      "format": "legacy" if fmt == "legacy" else "zip",
                      "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                      "load_calls": calls, "object_classes": [], "root": root, "tensors": walker.tensors})
    manifest = {
        "schema": "torch-load-fixtures/1", "set": "differential-regressions",
        "summary": {"files": len(files), "tensors": sum(len(f["tensors"]) for f in files)},
        "generator": "tests/differential/make_cases.py --regressions (tests/differential/regressions.py)",
        "torch_version": torch.__version__, "saved_with": saved_with,
        "note": ("Minimal cases for disagreements between TorchLoad and torch.load found by the differential run "
                 "(build.ps1 -Task Differential). `expect` is TorchLoad's policy (these files hold plain data: load in "
                 "both modes); `observed_torch` is what this torch did; the tree is torch.load's result, with the "
                 "storage keys the file holds."),
        "files": files,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=True, indent=1)
    print("wrote %d regression fixtures and manifest.json to %s (torch %s)" % (len(files), out, torch.__version__))
