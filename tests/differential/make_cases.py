#!/usr/bin/python3
"""Differential test-case generator for TorchLoad.

Generates N random PyTorch checkpoints with a fixed seed and writes expected.json,
which records what real torch.load returns for each file.  Runs with Debian's python3-torch:
torch 1.13 (Debian 12, the host) or torch 2.6 (Debian 13, in a chroot); with 2.x it adds what 2.x
writes and 1.13 cannot (v3 dtypes, float8, bits, complex32, conj/neg, nested, CSC/BSR/BSC, attributes).
Invoke-Differential.ps1 runs it for both and compares (build.ps1 -Task Differential).

    /usr/bin/python3 tests/differential/make_cases.py --out /tmp/diff-cases [--n 150] [--seed 1234]
    ... make_cases.py --regressions DIR     (the regression fixtures instead, regressions.py)

expected.json schema (one entry per file under "cases"):
  file, format ("zip"|"bytesio"|"legacy"), protocol, kind, variant ("std"|"odict_lists"|"stop_extra": the pickler),
  wo_ok / wo_err      : whether torch.load(weights_only=True) accepted the file
  tree                : the object tree returned by torch.load(weights_only=False)

Tree nodes ("t" = node type):
  none | bool{v} | int{v: decimal string} | float{v: repr, bits: 16 hex digits of the IEEE-754 int64}
  str{v, [u16: UTF-16LE hex when v has lone surrogates]} | bytes{hex} | complex{re,im (float nodes)} | set{items (sorted leaves)}
  dtype{v} | device{v} | layout{v} | memory_format{v} | size{v: [ints]}
  list{id, items} | tuple{items} | dict{id, kind, keys, values}
  tensor{id, dtype, shape, stride, offset, rg, param, layout, numel, sha, sg (storage group),
         [qscheme, qscale, qzp | qscales{...}, qzps{...}, qaxis], [conj], [neg], [pystate (Python attributes)],
         [sha_nan: a neg/conj view holding NaN: sha with NaNs canonical, see nan_canonical],
         [parts{indices, values | crow_indices, col_indices, values | ccol_indices, row_indices, values}, coalesced (COO)],
         nested tensors: nested, shape [components], parts{values, nested_sizes, nested_strides, nested_offsets}
         (component nodes: dtype, shape, sha)}
  storage{id, dtype, size, sha, sg}
  object{class, [state]}    (something safe mode must refuse; permissive mode: ClassName and, for plain
                            classes, State against the instance __dict__)
  tensor and storage nodes also carry storage{dtype, size, nbytes, sha of all its bytes, location}
  ref{id}                   (the same object as the earlier node with that id: reference identity)
The sha is sha256 of the logical values as contiguous little-endian bytes, gathered from the storage bytes
(quantized: the integer codes; conj/neg resolved; complex interleaved real/imag).
"""
import argparse
import collections
import hashlib
import io
import json
import math
import os
import pickle
import random
import re
import struct
import sys
import types
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

TORCH_VERSION = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", torch.__version__).groups())
TORCH2 = TORCH_VERSION >= (2, 0)

FLOAT_DT = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INT_DT = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]
CPLX_DT = [torch.complex64, torch.complex128]
# torch 2.x only: saved as UntypedStorage + _rebuild_tensor_v3 (storage_info: dtype uint8, size in bytes)
UINT_V3 = [torch.uint16, torch.uint32, torch.uint64] if TORCH2 else []
FLOAT8_DT = [torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz] if TORCH2 else []
BITS_DT = [torch.bits8, torch.bits16, torch.bits1x8, torch.bits2x4, torch.bits4x2] if TORCH2 else []
CHALF_DT = [torch.complex32] if TORCH2 else []
V3_DT = UINT_V3 + FLOAT8_DT + BITS_DT + CHALF_DT
ALL_DT = FLOAT_DT + INT_DT + [torch.bool] + CPLX_DT + V3_DT
Q_DT = [torch.qint8, torch.quint8, torch.qint32]
# the integer dtype of the same width that a v3 dtype's random bits are made in (then .view(dt))
_SAME_WIDTH_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}

UNICODE_KEYS = ["weight", "bias", "ключ", "键", "🔑key", "naïve", "a b", "", "tab\tkey", "nul\x00in",
                "ünïcödé", "日本語", "emoji😀😀", "x" * 300, "ζ", "'quote\"", "line\nbreak"]


def dtname(dt):
    return str(dt).replace("torch.", "")


# ---------------------------------------------------------------- value generation
class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.g = torch.Generator().manual_seed(seed)
        self.pool = []  # previously generated containers/tensors to reuse (memo/identity)

    def randn(self, shape):
        return torch.randn(shape, generator=self.g)

    def rand_shape(self, maxdim=4, maxlen=6, allow_empty=True):
        nd = self.r.choice([0, 1, 1, 2, 2, 3, 4][: maxdim + 3])
        nd = min(nd, maxdim)
        shape = [self.r.randint(1, maxlen) for _ in range(nd)]
        if allow_empty and nd and self.r.random() < 0.08:
            shape[self.r.randrange(nd)] = 0
        return shape

    def values(self, dt, shape):
        r = self.r
        if dt in V3_DT:
            return self.v3_values(dt, shape)
        if dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            t = self.randn(shape) * r.choice([1.0, 100.0, 1e-3])
            if t.numel() and r.random() < 0.3:
                flat = t.view(-1)
                specials = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0]
                for _ in range(min(3, flat.numel())):
                    flat[r.randrange(flat.numel())] = r.choice(specials)
            return t.to(dt)
        if dt == torch.bool:
            return torch.randint(0, 2, shape, generator=self.g).bool()
        if dt == torch.uint8:
            return torch.randint(0, 256, shape, generator=self.g, dtype=torch.uint8)
        if dt in INT_DT:
            info = torch.iinfo(dt)
            lo, hi = max(info.min, -2 ** 62), min(info.max, 2 ** 62)
            t = torch.randint(lo, hi, shape, generator=self.g, dtype=torch.int64)
            if t.numel() and r.random() < 0.3:
                t.view(-1)[0] = info.min
                t.view(-1)[-1] = info.max
            return t.to(dt)
        if dt in CPLX_DT:
            return torch.complex(self.randn(shape), self.randn(shape)).to(dt)
        raise ValueError(dt)

    def v3_values(self, dt, shape):
        """torch 2.x dtypes: float8 and complex32 converted from random floats, the rest random bits viewed as dt."""
        r = self.r
        if dt in FLOAT8_DT:
            t = self.randn(shape) * r.choice([1.0, 10.0, 1e-2])
            if t.numel() and r.random() < 0.3:
                flat = t.view(-1)
                for _ in range(min(3, flat.numel())):
                    flat[r.randrange(flat.numel())] = r.choice([float("nan"), float("inf"), float("-inf"), -0.0, 1e6])
            return t.to(dt)
        if dt == torch.complex32:
            return torch.complex(self.randn(shape), self.randn(shape)).to(dt)
        base = _SAME_WIDTH_INT[torch.empty(0, dtype=dt).element_size()]
        if base == torch.uint8:
            bits = torch.randint(0, 256, shape, generator=self.g, dtype=torch.uint8)
        else:
            info = torch.iinfo(base)
            bits = torch.randint(max(info.min, -2 ** 62), min(info.max, 2 ** 62), shape, generator=self.g, dtype=torch.int64)
            if bits.numel() and r.random() < 0.4:  # 0, all ones (unsigned max), the sign bit alone
                for v in (0, -1, info.min, info.max)[: bits.numel()]:
                    bits.view(-1)[r.randrange(bits.numel())] = v
            bits = bits.to(base)
        return bits.view(dt)

    def view_of(self, t):
        """Return a (possibly) non-trivial view of t (shares its storage)."""
        r = self.r
        ops = []
        if t.dim() >= 2:
            ops += ["transpose", "permute", "narrow", "step"]
        if t.dim() >= 1:
            ops += ["step", "narrow", "unsqueeze", "expand_dim", "select"]
        if t.dim() == 0:
            ops += ["expand0"]
        if not ops:
            return t
        op = r.choice(ops)
        try:
            if op == "transpose":
                return t.transpose(0, t.dim() - 1)
            if op == "permute":
                p = list(range(t.dim()))
                r.shuffle(p)
                return t.permute(*p)
            if op == "narrow":
                d = r.randrange(t.dim())
                n = t.shape[d]
                if n == 0:
                    return t
                s = r.randrange(n)
                return t.narrow(d, s, r.randint(0, n - s))
            if op == "step":
                d = r.randrange(t.dim())
                st = r.randint(2, 3)
                idx = [slice(None)] * t.dim()
                idx[d] = slice(r.randint(0, 1), None, st)
                return t[tuple(idx)]
            if op == "unsqueeze":
                return t.unsqueeze(r.randint(0, t.dim()))
            if op == "select":
                d = r.randrange(t.dim())
                if t.shape[d] == 0:
                    return t
                return t.select(d, r.randrange(t.shape[d]))
            if op == "expand_dim":
                d = r.randint(0, t.dim())
                u = t.unsqueeze(d)
                shp = list(u.shape)
                shp[d] = r.randint(2, 4)
                return u.expand(*shp)
            if op == "expand0":
                return t.expand(r.randint(1, 3), r.randint(0, 3))
        except Exception:
            return t
        return t

    def tensor(self, dt=None, big=False, view=None):
        r = self.r
        dt = dt or r.choice(ALL_DT)
        if big:
            n = r.choice([64 * 1024, 200 * 1024, 1024 * 1024]) // max(1, torch.empty(0, dtype=dt).element_size())
            shape = [n // 256, 256]
        else:
            shape = self.rand_shape()
        t = self.values(dt, shape)
        if r.random() < 0.15 and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        if (view if view is not None else r.random() < 0.4):
            t = self.view_of(t)
            if r.random() < 0.3:
                t = self.view_of(t)
        if dt in CPLX_DT and r.random() < 0.25:
            t = t.conj()  # lazy: the conj bit is set, the stored values are not conjugated
        elif dt in FLOAT_DT + [torch.int64, torch.int32] and r.random() < 0.1:
            t = t._neg_view()  # lazy negation (the neg bit)
        if dt in V3_DT:
            return t  # no autograd for these
        if dt.is_floating_point or dt.is_complex:
            if r.random() < 0.1:
                t = nn.Parameter(t, requires_grad=r.random() < 0.7)
            elif r.random() < 0.1 and t.is_contiguous() or r.random() < 0.05:
                t = t.detach().clone() if not t.is_contiguous() else t
                t.requires_grad_(True)
        elif r.random() < 0.05:
            t = nn.Parameter(t, requires_grad=False)
        if TORCH2 and r.random() < 0.06:  # Python attributes: 2.x saves them (_rebuild_from_type_v2 / _rebuild_parameter_with_state)
            t.note = r.choice([1, "tag", [1.5, None], {"k": 2 ** 70}])
        return t

    def qtensor(self):
        r = self.r
        qdt = r.choice(Q_DT)
        shape = [r.randint(1, 5) for _ in range(r.randint(1, 3))]
        x = self.randn(shape) * 3
        if r.random() < 0.5 or len(shape) == 0:
            zp = 0 if qdt == torch.qint32 else (r.randint(-10, 10) if qdt == torch.qint8 else r.randint(0, 255))
            q = torch.quantize_per_tensor(x, r.choice([0.1, 0.05, 1.0 / 3, 2.5]), zp, qdt)
        else:
            axis = r.randrange(len(shape))
            n = shape[axis]
            scales = torch.rand(n, generator=self.g, dtype=torch.float64) + 0.01
            if qdt == torch.quint8 and r.random() < 0.35:
                # float zero points: torch makes it per_channel_affine_float_qparams (embedding-bag style)
                zps = torch.randn(n, generator=self.g) * 4
            elif qdt == torch.quint8:
                zps = torch.randint(0, 255, (n,), generator=self.g)
            elif qdt == torch.qint8:
                zps = torch.randint(-10, 10, (n,), generator=self.g)
            else:
                zps = torch.zeros(n, dtype=torch.int64)
            q = torch.quantize_per_channel(x, scales, zps, axis, qdt)
        if r.random() < 0.3 and q.dim() >= 2 and q.qscheme() == torch.per_tensor_affine:
            q = q.transpose(0, 1)
        return q

    def sparse(self):
        r = self.r
        kind = r.choice(["coo", "coo", "csr"] + (["csc", "bsr", "bsc"] if TORCH2 else []))
        dt = r.choice([torch.float32, torch.float64, torch.int64, torch.complex64, torch.float16, torch.bool, torch.int32])
        if kind == "coo":
            nd = r.randint(1, 3)
            size = [r.randint(1, 6) for _ in range(nd)]
            dense_dims = r.choice([0, 0, 1])
            nnz = r.randint(0, 8)
            idx = torch.stack([torch.randint(0, s, (nnz,), generator=self.g) for s in size]) if nnz else torch.zeros(nd, 0, dtype=torch.int64)
            vshape = [nnz] + ([r.randint(1, 3)] if dense_dims else [])
            vals = self.values(dt, vshape)
            t = torch.sparse_coo_tensor(idx, vals, size + vshape[1:])
            if r.random() < 0.5:
                t = t.coalesce()
            return t
        blocked = kind in ("bsr", "bsc")
        bh, bw = (r.randint(1, 3), r.randint(1, 3)) if blocked else (1, 1)
        d = self.values(dt, [bh * r.randint(1, 4), bw * r.randint(1, 4)])
        mask = torch.rand(d.shape, generator=self.g) < 0.5
        d = d * mask.to(d.dtype) if dt != torch.bool else (d & mask)
        if kind == "csr":
            return d.to_sparse_csr()
        if kind == "csc":
            return d.to_sparse_csc()
        return d.to_sparse_bsr((bh, bw)) if kind == "bsr" else d.to_sparse_bsc((bh, bw))

    def nested(self):
        """A (strided-layout) nested tensor: components of one trailing size, saved via _rebuild_nested_tensor."""
        r = self.r
        dt = r.choice([torch.float32, torch.float64, torch.int64, torch.float16, torch.bfloat16])
        tail = [r.randint(1, 4) for _ in range(r.randint(0, 2))]
        parts = [self.values(dt, [r.randint(0, 4)] + tail) for _ in range(r.randint(1, 4))]
        return torch.nested.nested_tensor(parts)

    def leaf(self):
        r = self.r
        k = r.random()
        if k < 0.12:
            return r.choice([0, 1, -1, 7, 255, 256, -129, 2 ** 31, -2 ** 31 - 1, 2 ** 63 - 1, -2 ** 63,
                             2 ** 63, -2 ** 63 - 1, 2 ** 64, 2 ** 100, -(2 ** 200), 10 ** 30 + 7, r.randint(-10 ** 6, 10 ** 6),
                             r.randint(-2 ** 70, 2 ** 70)])
        if k < 0.24:
            return r.choice([0.0, -0.0, 1.5, -2.25, float("inf"), float("-inf"), float("nan"), 5e-324, 1.7976931348623157e308,
                             0.1, 1e-300, r.uniform(-1e9, 1e9), 2.0 ** 53 + 2, r.random()])
        if k < 0.34:
            return r.choice(UNICODE_KEYS + ["hello", "a" * 70000 if r.random() < 0.1 else "short", "\u00e9\u0301", "\U0010ffff"])
        if k < 0.40:
            return r.choice([True, False])
        if k < 0.46:
            return None
        if k < 0.50:
            return bytes(r.randrange(256) for _ in range(r.choice([0, 1, 5, 300])))
        if k < 0.52:
            return bytearray(b"\x00\xffba")
        if k < 0.54:
            return complex(r.uniform(-5, 5), r.choice([0.0, -0.0, 1.5, float("inf")]))
        if k < 0.56:
            return set(r.sample(range(-50, 50), r.randint(0, 5)))
        if k < 0.58:
            return r.choice([torch.float32, torch.bfloat16, torch.int64, torch.bool, torch.complex128, torch.quint8])
        if k < 0.60:
            return torch.Size([r.randint(0, 9) for _ in range(r.randint(0, 3))])
        if k < 0.61:
            if TORCH2 and r.random() < 0.5:  # a memory_format pickles as getattr(torch, 'channels_last') in 2.x
                return r.choice([torch.strided, torch.sparse_coo, torch.sparse_csr, torch.channels_last, torch.contiguous_format, torch.preserve_format])
            return torch.device(r.choice(["cpu"]))
        if k < 0.66 and self.pool:
            return r.choice(self.pool)
        if k < 0.70:
            c = r.random()
            if TORCH2 and c < 0.1:
                return self.nested()
            return self.sparse() if c < 0.35 else self.qtensor()
        return self.tensor()

    def key(self):
        r = self.r
        k = r.random()
        if k < 0.7:
            return r.choice(UNICODE_KEYS) + ("" if r.random() < 0.5 else str(r.randint(0, 99)))
        if k < 0.9:
            return r.choice([0, 1, -5, 2 ** 40, 2 ** 70, r.randint(0, 100)])
        if k < 0.95:
            return (r.randint(0, 3), "t")
        return None

    def tree(self, depth, maxdepth):
        r = self.r
        if depth >= maxdepth or (depth > 0 and r.random() < 0.35):
            return self.leaf()
        kind = r.choice(["dict", "odict", "list", "tuple"])
        n = r.randint(0, 5)
        if kind in ("dict", "odict"):
            d = {} if kind == "dict" else collections.OrderedDict()
            for _ in range(n):
                d[self.key()] = self.tree(depth + 1, maxdepth)
            out = d
        else:
            items = [self.tree(depth + 1, maxdepth) for _ in range(n)]
            out = items if kind == "list" else tuple(items)
        if kind != "tuple" and r.random() < 0.3:
            self.pool.append(out)
        return out


# ---------------------------------------------------------------- case kinds
def tiny_module(gen):
    r = gen.r
    torch.manual_seed(r.randint(0, 10 ** 6))
    choice = r.choice(["linear", "conv", "bn", "lstm", "emb", "trans", "seq"])
    if choice == "linear":
        m, x = nn.Linear(r.randint(1, 8), r.randint(1, 8), bias=r.random() < 0.7), None
    elif choice == "conv":
        m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    elif choice == "bn":
        m = nn.BatchNorm1d(r.randint(1, 6), affine=r.random() < 0.7, track_running_stats=r.random() < 0.8)
    elif choice == "lstm":
        m = nn.LSTM(4, 5, num_layers=r.randint(1, 2), bidirectional=r.random() < 0.5)
    elif choice == "emb":
        m = nn.Embedding(r.randint(2, 30), r.randint(1, 8), padding_idx=r.choice([None, 0]))
    elif choice == "trans":
        m = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    else:
        m = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 2))
    return m, choice


def run_step(m, choice, opt):
    if choice == "linear":
        y = m(torch.randn(3, m.in_features))
    elif choice == "conv":
        y = m(torch.randn(2, 3, 5, 5))
    elif choice == "bn":
        y = m(torch.randn(4, m.num_features))
    elif choice == "lstm":
        y = m(torch.randn(3, 2, 4))[0]
    elif choice == "emb":
        y = m(torch.randint(0, m.num_embeddings, (5,)))
    elif choice == "trans":
        y = m(torch.randn(3, 2, 8))
    else:
        y = m(torch.randn(3, 4))
    if opt is not None:
        opt.zero_grad()
    if y.requires_grad:
        y.float().pow(2).sum().backward()
    if opt is not None:
        opt.step()


def edge_case(gen, j):
    """Hand-picked pickle/serialization corners, chosen by j (0..11)."""
    r = gen.r
    if j == 0:  # memo beyond 256 entries (LONG_BINPUT/LONG_BINGET), APPENDS/SETITEMS batches of 1000
        strs = ["s%d-%s" % (k, "é" * (k % 3)) for k in range(700)]
        t = gen.values(torch.float32, [3])
        return {"strs": strs, "again": strs[::-1], "ints": list(range(-1200, 1300)),
                "d": {("k%d" % k): k * 1.5 for k in range(1500)}, "t": [t] * 300, "tail": strs}
    if j == 1:  # deep nesting
        o = [1]
        for k in range(150):
            o = [o] if k % 2 else {"d%d" % k: o}
        return {"deep": o, "deep_tuple": functools_reduce_tuple(60)}
    if j == 2:  # integers around every pickle opcode boundary
        vals = []
        for b in [7, 8, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 1000, 2040, 2048, 3000]:
            vals += [2 ** b - 1, 2 ** b, -(2 ** b), -(2 ** b) - 1]
        return {"ints": vals, "huge": 2 ** 3000 + 12345, "neg_huge": -(2 ** 2048), "tuple": tuple(vals[:9])}
    if j == 3:  # odd dict keys
        return collections.OrderedDict([(1.5, "float key"), (-0.0, "neg zero key"), (float("inf"), 1), (None, "none key"),
                                        (True, "bool key"), (b"\x00by", "bytes key"), ((1, (2, "x")), "tuple key"),
                                        (2 ** 80, "big key"), ("", "empty key"), (-7, "neg int")])
    if j == 4:  # strings: lone surrogates, NUL, astral, long
        return ["a\ud800b", "\udfff", "\U0001F600" * 3, "\x00", "x" * 100000, "\u2028\u2029", "é" * 300]
    if j == 5:  # empty and odd-rank tensors
        return {"e0": torch.empty(0, 5).t(), "e1": torch.zeros(3, 0, 2).permute(2, 0, 1), "rank30": torch.ones([1] * 30),
                "rank20": gen.values(torch.int16, [1, 2] * 10), "zerod_c": torch.tensor(1 + 2j), "zerod_b": torch.tensor(True),
                "zerod_bf": torch.tensor(-0.0, dtype=torch.bfloat16), "scalar_expand": torch.tensor(3.5).expand(4, 0, 2)}
    if j == 6:  # one storage, many dtypes' worth of views and offsets near the end
        big = gen.values(torch.float64, [100000])
        return {"tail": big[-3:], "step": big[5::997], "mid": big.narrow(0, 50000, 7).view(7, 1).expand(7, 3),
                "as": big.as_strided((4, 4), (1, 4), 99980), "storage": big.storage()}
    if j == 7:  # the same Parameter in two places, and in a list and a tuple
        p = nn.Parameter(gen.values(torch.bfloat16, [3, 2]))
        q = nn.Parameter(gen.values(torch.float16, [2]), requires_grad=False)
        return {"a": p, "b": [p, q], "c": (p, q, p), "d": collections.OrderedDict(x=q)}
    if j == 8:  # empty containers and a Counter
        return {"l": [], "d": {}, "t": (), "od": collections.OrderedDict(), "set": set(), "c": collections.Counter("abracadabra"),
                "nested_empty": [[], [[]], {"": {}}]}
    if j == 9:  # bytes/bytearray of many sizes (protocol 2 encodes them via _codecs.encode or bytes())
        return [b"", b"\x00", bytes(range(256)), bytes(300), bytearray(), bytearray(b"\xff" * 70), b"\x80abc\xc3"]
    if j == 10:  # floats: every special and subnormal
        return [0.0, -0.0, float("inf"), -float("inf"), float("nan"), -float("nan"), 5e-324, -5e-324, 2.2250738585072014e-308,
                1.7976931348623157e308, 0.1, 1 / 3, 1e16, 123456789.123456789]
    return {"optim_like": {"state": {0: {"step": 3, "exp_avg": gen.values(torch.float32, [2, 2])}, 7: {}},
                           "param_groups": [{"lr": 0.1, "params": [0, 7], "betas": (0.9, 0.999), "foreach": None}]}}


def functools_reduce_tuple(n):
    o = ()
    for k in range(n):
        o = (o, k)
    return o


def make_obj(gen, i):
    r = gen.r
    gen.pool = []
    kinds = ["nested", "nested", "tensors", "views_shared", "module_sd", "optim_sd", "training",
             "quantized", "sparse", "single", "big", "nested", "edge"] + (["dtypes2"] if TORCH2 else [])
    kind = kinds[i % len(kinds)]
    if i % 37 == 36:
        kind = "module_object"
    if kind == "nested":
        return kind, gen.tree(0, r.randint(1, 4))
    if kind == "tensors":
        d = collections.OrderedDict()
        for dt in r.sample(ALL_DT, r.randint(3, len(ALL_DT))):
            d[dtname(dt) + "_" + str(len(d))] = gen.tensor(dt)
        if r.random() < 0.5:
            d["zero_d"] = gen.values(r.choice(ALL_DT), [])
        if r.random() < 0.5:
            d["empty"] = gen.values(r.choice(ALL_DT), [0, r.randint(0, 3)])
        return kind, d
    if kind == "views_shared":
        dt = r.choice(ALL_DT)
        base = gen.values(dt, [r.randint(2, 6), r.randint(2, 6), r.randint(1, 4), r.randint(2, 5)])
        if r.random() < 0.3:
            base = base.contiguous(memory_format=torch.channels_last)
        out = {"base": base} if r.random() < 0.5 else {}
        for j in range(r.randint(2, 6)):
            v = gen.view_of(base)
            if r.random() < 0.5:
                v = gen.view_of(v)
            out["v%d" % j] = v
        flat = base.as_strided((base.numel(),), (1,), 0)  # works for channels_last bases too
        out["narrow"] = flat.narrow(0, r.randint(0, 5), r.randint(0, 3))
        out["expand"] = flat[3:4].expand(r.randint(1, 5), 4)
        out["again"] = out["narrow"]  # same tensor object twice
        other = gen.values(r.choice(ALL_DT), [5])
        out["other_a"] = other[1:]
        out["other_b"] = other[::2]
        if r.random() < 0.5:
            out["as_list"] = [out["narrow"], other]
        if r.random() < 0.4 and dt not in V3_DT:  # torch 2.x cannot save a TypedStorage of a v3 dtype
            out["storage"] = base.storage()
        if r.random() < 0.3 and dt.is_floating_point:
            out["param_view"] = nn.Parameter(base[1], requires_grad=True)
        return kind, out
    if kind == "module_sd":
        m, choice = tiny_module(gen)
        if r.random() < 0.5:
            run_step(m, choice, None)
        if r.random() < 0.3:
            m = m.to(r.choice([torch.float64, torch.float16, torch.bfloat16]))
        return kind + ":" + choice, m.state_dict(keep_vars=r.random() < 0.3)
    if kind in ("optim_sd", "training"):
        m, choice = tiny_module(gen)
        while not list(m.parameters()):
            m, choice = tiny_module(gen)
        oname = r.choice(["sgd", "adam", "adamw"])
        if oname == "sgd":
            opt = torch.optim.SGD(m.parameters(), lr=r.choice([0.1, 0.01]), momentum=r.choice([0.0, 0.9]),
                                  nesterov=False, weight_decay=r.choice([0, 1e-4]))
        elif oname == "adam":
            opt = torch.optim.Adam(m.parameters(), lr=1e-3, amsgrad=r.random() < 0.3)
        else:
            opt = torch.optim.AdamW(m.parameters(), lr=3e-4, betas=(0.85, 0.995))
        for _ in range(r.randint(0, 2)):
            run_step(m, choice, opt)
        if kind == "optim_sd":
            return kind + ":" + oname, opt.state_dict()
        ck = {"epoch": r.randint(0, 500), "global_step": 2 ** 33 + r.randint(0, 9), "model_state_dict": m.state_dict(),
              "optimizer_state_dict": opt.state_dict(), "loss": r.random(), "best_acc": float("nan") if r.random() < 0.2 else 0.875,
              "args": {"lr": 0.001, "name": "run-é", "layers": [1, 2, 3], "flag": True, "none": None},
              "rng_state": torch.get_rng_state()}
        if r.random() < 0.5:
            ck["scheduler"] = {"last_epoch": 3, "base_lrs": [0.1], "_step_count": 4, "verbose": False, "_get_lr_called_within_step": False}
        return kind + ":" + oname, ck
    if kind == "dtypes2":  # every torch-2.x-only dtype, views of one shared base, conj/neg views
        d = collections.OrderedDict()
        for dt in r.sample(V3_DT, r.randint(3, len(V3_DT))):
            d[dtname(dt) + "_" + str(len(d))] = gen.tensor(dt)
        base = gen.values(r.choice(V3_DT), [r.randint(1, 5), r.randint(1, 5)])
        d["base"] = base
        for j in range(r.randint(1, 3)):
            d["view%d" % j] = gen.view_of(base)
        c = gen.values(r.choice(CPLX_DT), [r.randint(1, 4), 3])
        d["conj"] = c.conj()
        d["conj_t"] = d["conj"].transpose(0, 1)
        d["neg"] = gen.values(torch.float32, [4])._neg_view()
        if r.random() < 0.3:
            d["untyped"] = gen.values(r.choice(ALL_DT), [r.randint(0, 5)]).untyped_storage()
        return kind, d
    if kind == "quantized":
        return kind, {"q%d" % j: gen.qtensor() for j in range(r.randint(1, 5))}
    if kind == "sparse":
        out = {"s%d" % j: gen.sparse() for j in range(r.randint(1, 4))}
        if TORCH2 and r.random() < 0.4:
            out["nested"] = gen.nested()
        out["dense"] = gen.tensor()
        return kind, out
    if kind == "single":
        c = r.random()
        if c < 0.6:
            return kind, gen.tensor(view=r.random() < 0.5)
        if c < 0.75:
            return kind, [gen.tensor() for _ in range(3)]
        if c < 0.9:
            return kind, gen.values(r.choice([d for d in ALL_DT if d not in V3_DT]), []).storage()  # 2.x cannot save v3 TypedStorages
        return kind, gen.leaf()
    if kind == "big":
        return kind, {"big": gen.tensor(r.choice([torch.float32, torch.float64, torch.int16, torch.uint8, torch.complex64, torch.bfloat16] + V3_DT[:6]), big=True, view=r.random() < 0.5),
                      "small": gen.tensor()}
    if kind == "edge":
        return "edge:%d" % (i // len(kinds) % 12), edge_case(gen, i // len(kinds) % 12)
    if kind == "module_object":
        c = (i // 37) % 3
        if c == 0:
            return kind, nn.Linear(2, 2)
        if c == 1:
            import argparse
            return kind, {"args": argparse.Namespace(lr=0.1, layers=[1, 2], name="x", nested={"a": None}), "w": gen.tensor()}
        return kind, nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    raise ValueError(kind)


# ---------------------------------------------------------------- expected tree
def untyped(st):
    """The UntypedStorage behind a tensor or a TypedStorage."""
    if isinstance(st, torch.Tensor):
        return st.untyped_storage() if TORCH2 else st.storage()._storage
    if TORCH2 and isinstance(st, torch.UntypedStorage):
        return st
    u = getattr(st, "_untyped_storage", None)  # (not `or`: an empty storage is falsy)
    return u if u is not None else st._storage


def storage_bytes(u):
    if u.nbytes() == 0:
        return b""
    if not TORCH2:
        u = torch.storage.TypedStorage(wrap_storage=u, dtype=torch.uint8)
    return torch.empty(0, dtype=torch.uint8).set_(u).numpy().tobytes()


def tbytes(t):
    """The logical values as contiguous little-endian bytes: gathered from the storage's raw bytes with the
    tensor's geometry (so every dtype works, float8/bits/complex32 included); conj/neg resolved first;
    quantized tensors give their integer codes (the storage bytes)."""
    t = t.detach()
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    if t.numel() == 0:
        return b""
    es = t.element_size()
    raw = np.frombuffer(storage_bytes(untyped(t)), dtype=np.uint8)
    elems = raw[: len(raw) // es * es].view(np.dtype((np.void, es)))
    v = np.lib.stride_tricks.as_strided(elems[t.storage_offset():], shape=tuple(t.shape), strides=tuple(x * es for x in t.stride()))
    return np.ascontiguousarray(v).tobytes()


# NaN canonicalization per float part: (part bytes, exponent mask, mantissa mask, canonical quiet NaN)
_NAN_PARTS = {"float16": (2, 0x7C00, 0x03FF, 0x7E00), "bfloat16": (2, 0x7F80, 0x007F, 0x7FC0),
              "float32": (4, 0x7F800000, 0x007FFFFF, 0x7FC00000), "float64": (8, 0x7FF0000000000000, 0x000FFFFFFFFFFFFF, 0x7FF8000000000000)}
_NAN_PARTS.update(complex32=_NAN_PARTS["float16"], complex64=_NAN_PARTS["float32"], complex128=_NAN_PARTS["float64"])


def nan_canonical(b, dt):
    """The bytes with every NaN (either sign, any payload) replaced by the dtype's canonical quiet NaN, or None
    when there is none. torch materializes a neg/conj view through float conversions whose NaN bits depend on
    the kernel (bfloat16 NaN came back as 0x7FC0, sign dropped); TorchLoad flips the sign bit: both are NaN."""
    part = _NAN_PARTS.get(dtname(dt))
    if part is None or not b:
        return None
    size, exp, mant, canon = part
    a = np.frombuffer(b, dtype={2: "<u2", 4: "<u4", 8: "<u8"}[size]).copy()
    nan = ((a & np.array(exp, a.dtype)) == exp) & ((a & np.array(mant, a.dtype)) != 0)
    if not nan.any():
        return None
    a[nan] = canon
    return a.tobytes()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def float_node(v):
    return {"t": "float", "v": repr(v), "bits": "%016x" % struct.unpack("<Q", struct.pack("<d", v))[0]}


class Walker:
    def __init__(self):
        self.ids = {}
        self.next = 0
        self.storages = {}

    def sg(self, t):
        try:
            key = untyped(t)._cdata
        except Exception:
            return None
        if key not in self.storages:
            self.storages[key] = len(self.storages)
        return self.storages[key]

    def storage_info(self, u, dt):
        """dtype, element count, byte length and sha256 of all the storage's bytes (not just the viewed part).
        torch 2.x keeps the v3 dtypes' storages untyped: uint8, one element per byte."""
        if dt in V3_DT:
            dt = torch.uint8
        es = torch.empty(0, dtype=dt).element_size()
        return {"dtype": dtname(dt), "size": u.nbytes() // es, "nbytes": u.nbytes(), "sha": sha(storage_bytes(u)), "location": u.device.type}

    def comp(self, t):
        return {"dtype": dtname(t.dtype), "shape": list(t.shape), "sha": sha(tbytes(t))}

    def walk(self, o):
        if o is None:
            return {"t": "none"}
        if isinstance(o, bool):
            return {"t": "bool", "v": o}
        if isinstance(o, int):
            return {"t": "int", "v": str(o)}
        if isinstance(o, float):
            return float_node(o)
        if isinstance(o, complex):
            return {"t": "complex", "re": float_node(o.real), "im": float_node(o.imag)}
        if isinstance(o, str):
            n = {"t": "str", "v": o}
            if any(0xD800 <= ord(c) <= 0xDFFF for c in o):  # JSON readers turn lone surrogates into U+FFFD
                n["u16"] = o.encode("utf-16-le", "surrogatepass").hex()
            return n
        if isinstance(o, (bytes, bytearray)):
            return {"t": "bytes", "hex": bytes(o).hex()}
        if isinstance(o, (set, frozenset)):
            return {"t": "set", "items": [self.walk(x) for x in sorted(o)]}
        if isinstance(o, torch.dtype):
            return {"t": "dtype", "v": dtname(o)}
        if isinstance(o, torch.device):
            return {"t": "device", "v": str(o)}
        if isinstance(o, torch.Size):
            return {"t": "size", "v": list(o)}
        if isinstance(o, torch.layout):
            return {"t": "layout", "v": str(o).replace("torch.", "")}
        if isinstance(o, torch.memory_format):
            return {"t": "memory_format", "v": str(o).replace("torch.", "")}
        if id(o) in self.ids and not isinstance(o, tuple):
            return {"t": "ref", "id": self.ids[id(o)]}
        nid = self.next
        self.next += 1
        self.ids[id(o)] = nid
        if isinstance(o, torch.Tensor):
            n = {"t": "tensor", "id": nid, "dtype": dtname(o.dtype), "rg": bool(o.requires_grad),
                 "param": isinstance(o, nn.Parameter), "layout": str(o.layout).replace("torch.", "")}
            if o.is_nested:  # torch: size() raises; the outer dimension, and the buffer + size/stride/offset tensors
                n["shape"] = [o.size(0)]
                n["nested"] = True
                n["parts"] = {"values": self.comp(o.values()), "nested_sizes": self.comp(o._nested_tensor_size()),
                              "nested_strides": self.comp(o._nested_tensor_strides()),
                              "nested_offsets": self.comp(o._nested_tensor_storage_offsets())}
                return n
            n["shape"] = list(o.shape)
            if getattr(o, "__dict__", None):  # Python attributes torch restored on the tensor / Parameter
                n["pystate"] = self.walk(dict(o.__dict__))
            if o.is_conj():
                n["conj"] = True
            if o.is_neg():
                n["neg"] = True
            if o.layout == torch.strided:
                n.update(stride=list(o.stride()), offset=o.storage_offset(), numel=o.numel(), sha=sha(tbytes(o)), sg=self.sg(o))
                if o.is_conj() or o.is_neg():
                    canon = nan_canonical(tbytes(o), o.dtype)
                    if canon is not None:
                        n["sha_nan"] = sha(canon)
                n["storage"] = self.storage_info(untyped(o), o.dtype)
                if o.is_quantized:
                    qs = str(o.qscheme()).replace("torch.", "")
                    n["qscheme"] = qs
                    if qs == "per_tensor_affine":
                        n["qscale"] = float_node(o.q_scale())
                        n["qzp"] = o.q_zero_point()
                    else:
                        n["qscales"] = self.comp(o.q_per_channel_scales())
                        n["qzps"] = self.comp(o.q_per_channel_zero_points())
                        n["qaxis"] = o.q_per_channel_axis()
            elif o.layout == torch.sparse_coo:
                n["parts"] = {"indices": self.comp(o._indices()), "values": self.comp(o._values())}
                n["coalesced"] = o.is_coalesced()
            elif o.layout in (torch.sparse_csr, torch.sparse_bsr):
                n["parts"] = {"crow_indices": self.comp(o.crow_indices()), "col_indices": self.comp(o.col_indices()),
                              "values": self.comp(o.values())}
            elif o.layout in (torch.sparse_csc, torch.sparse_bsc):
                n["parts"] = {"ccol_indices": self.comp(o.ccol_indices()), "row_indices": self.comp(o.row_indices()),
                              "values": self.comp(o.values())}
            return n
        if TORCH2 and isinstance(o, torch.UntypedStorage):  # saved bare: loads as an UntypedStorage (bytes)
            return {"t": "storage", "id": nid, "dtype": "uint8", "size": o.nbytes(), "sha": sha(storage_bytes(o)),
                    "sg": self.storages.setdefault(o._cdata, len(self.storages)), "storage": self.storage_info(o, torch.uint8)}
        if isinstance(o, torch.storage.TypedStorage):
            u = untyped(o)
            return {"t": "storage", "id": nid, "dtype": dtname(o.dtype), "size": o.size(), "sha": sha(storage_bytes(u)),
                    "sg": self.storages.setdefault(u._cdata, len(self.storages)), "storage": self.storage_info(u, o.dtype)}
        if isinstance(o, dict):
            keys = list(o.keys())
            return {"t": "dict", "id": nid, "kind": type(o).__name__, "keys": [self.walk(k) for k in keys],
                    "values": [self.walk(o[k]) for k in keys]}
        if isinstance(o, list):
            return {"t": "list", "id": nid, "items": [self.walk(x) for x in o]}
        if isinstance(o, tuple):
            return {"t": "tuple", "id": nid, "items": [self.walk(x) for x in o]}
        n = {"t": "object", "id": nid, "class": type(o).__module__ + "." + type(o).__qualname__}
        if type(o).__reduce_ex__ is object.__reduce_ex__ and hasattr(o, "__dict__"):
            n["state"] = self.walk(dict(o.__dict__))  # what BUILD sets for a plain class pickled with protocol >= 2
        return n


# ---------------------------------------------------------------- saving
class _OdictListsPickler(pickle._Pickler):
    """Reduces every OrderedDict as OrderedDict([[key, value], ...]) (the way Python 2 pickled it, so old
    checkpoints hold it): REDUCE with a list of two-item lists, the attributes (state_dict _metadata) by BUILD."""

    def reducer_override(self, obj):
        if type(obj) is not collections.OrderedDict:
            return NotImplemented
        items = [[k, v] for k, v in obj.items()]
        state = dict(vars(obj))
        return (collections.OrderedDict, (items,), state) if state else (collections.OrderedDict, (items,))


class _StopExtraPickler(pickle._Pickler):
    """Leaves extra values on the stack under the object: STOP must return the top one only (pickle does)."""

    def dump(self, obj):
        if self.proto >= 2:
            self.write(pickle.PROTO + struct.pack("<B", self.proto))
        if self.proto >= 4:
            self.framer.start_framing()
        self.write(pickle.NONE + pickle.BININT1 + b"\x07")
        self.save(obj)
        self.write(pickle.STOP)
        self.framer.end_framing()


def pickle_module(pickler):
    """A pickle module for torch.save whose Pickler is the given class (dump/load stay pickle's)."""
    m = types.ModuleType("torchload_diff_pickle")
    m.Pickler, m.Unpickler, m.dump, m.dumps, m.load, m.loads = pickler, pickle.Unpickler, pickle.dump, pickle.dumps, pickle.load, pickle.loads
    m.HIGHEST_PROTOCOL, m.DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL, pickle.DEFAULT_PROTOCOL
    return m


PICKLERS = {"odict_lists": _OdictListsPickler, "stop_extra": _StopExtraPickler}


def save(obj, path, fmt, proto, variant="std"):
    """torch.save in one of the formats: "zip" (file path, record prefix = file stem), "bytesio" (saved to a
    BytesIO: record prefix archive/), "legacy" (_use_new_zipfile_serialization=False)."""
    kw = {"pickle_protocol": proto}
    if fmt == "legacy":
        kw["_use_new_zipfile_serialization"] = False
    if variant in PICKLERS:
        kw["pickle_module"] = pickle_module(PICKLERS[variant])
    if fmt == "bytesio":
        buf = io.BytesIO()
        torch.save(obj, buf, **kw)
        with open(path, "wb") as f:
            f.write(buf.getvalue())
    else:
        torch.save(obj, path, **kw)


def torch_load(path, weights_only):
    stale = getattr(torch._utils, "_sparse_tensors_to_validate", None)
    if stale is not None:  # a failed weights_only load leaves entries behind in torch 1.13
        stale.clear()
    try:
        return torch.load(path, weights_only=weights_only)
    finally:
        if stale is not None:
            stale.clear()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/diff-cases")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--protocols", default="", help="comma list overriding the pickle protocols, e.g. 1 (not in the default mix)")
    ap.add_argument("--regressions", default="", help="instead: write the regression fixtures (and manifest.json) to this folder")
    a = ap.parse_args()
    if a.regressions:
        import regressions
        regressions.write_all(a.regressions, sys.modules[__name__])
        return
    override = [int(x) for x in a.protocols.split(",") if x.strip()]
    os.makedirs(a.out, exist_ok=True)
    gen = Gen(a.seed)
    torch.manual_seed(a.seed)
    cases = []
    for i in range(a.n):
        try:
            kind, obj = make_obj(gen, i)
        except Exception as e:  # a generator bug must not stop the run; deterministic anyway
            print("skip case %d: generation failed: %r" % (i, e), file=sys.stderr)
            continue
        c = gen.r.random()
        fmt = "legacy" if c < 0.25 else "bytesio" if c < 0.35 else "zip"
        proto = gen.r.choice([2, 2, 3, 4, 5])
        if override:
            proto = gen.r.choice(override)
        c = gen.r.random()
        variant = "odict_lists" if c < 0.06 else "stop_extra" if c < 0.12 else "std"
        fname = "case_%03d_%s_p%d%s.pt" % (i, fmt, proto, "" if variant == "std" else "_" + variant)
        path = os.path.join(a.out, fname)
        try:
            save(obj, path, fmt, proto, variant)
        except Exception as e:
            print("skip %s (%s): save failed: %s" % (fname, kind, e), file=sys.stderr)
            continue
        loaded, err = None, None
        try:
            loaded = torch_load(path, False)
        except Exception as e:
            err = e
        if err is not None and fmt == "legacy":  # torch 2.x cannot read its own legacy files with v3 dtypes or nested tensors: zip instead
            os.remove(path)
            fmt, fname = "zip", fname.replace("_legacy_", "_zip_")
            path = os.path.join(a.out, fname)
            save(obj, path, fmt, proto, variant)
            try:
                loaded, err = torch_load(path, False), None
            except Exception as e:
                err = e
        if err is not None:  # torch cannot read back what it wrote: not a TorchLoad question
            print("skip %s (%s): torch.load failed: %s" % (fname, kind, str(err).splitlines()[-1] if str(err) else type(err).__name__), file=sys.stderr)
            os.remove(path)
            continue
        try:
            tree = Walker().walk(loaded)
        except Exception as e:  # a walker bug: say so, keep the other cases
            print("skip %s (%s): walking torch's result failed: %r" % (fname, kind, e), file=sys.stderr)
            os.remove(path)
            continue
        case = {"file": fname, "format": fmt, "protocol": proto, "kind": kind, "variant": variant, "tree": tree}
        try:
            torch_load(path, True)
            case["wo_ok"] = True
        except Exception as e:
            case["wo_ok"] = False
            lines = str(e).splitlines() or [type(e).__name__]
            why = [x for x in lines if "WeightsUnpickler error" in x]  # torch 2.x: the reason is on that line
            case["wo_err"] = (why or lines[-1:])[0][:300]
        cases.append(case)
    with open(os.path.join(a.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"torch": torch.__version__, "seed": a.seed, "cases": cases}, f, ensure_ascii=True, indent=0)
    print("wrote %d cases to %s (torch %s, seed %d)" % (len(cases), a.out, torch.__version__, a.seed))


if __name__ == "__main__":
    main()
