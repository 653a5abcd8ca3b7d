"""Expected values for the statistics and tolerance tests, computed by real torch (run with torch 2.6:
`python3 make_expected.py <fixtures folder> <output folder>`; see README.md here).

tensor-statistics.json: for every tensor of every fixture file torch loads, the statistics computed the
obvious way in float64: isnan/isinf/==0 counts, then min/max/mean/std/norm over the finite values.
Complex tensors use |z| (complex32 through complex64), quantized tensors dequantize(), sparse tensors
their stored values, nested tensors their components in order, bits dtypes their unsigned codes.

allclose-reference.pt / allclose-difference.pt / allclose.json: pairs of tensors and torch.allclose's
answer (on the values in float64, complex128) for several (atol, rtol, equal_nan), with the largest
|a - b|, the largest |a - b| / |b| and the flat index of the largest difference.
"""
import json, math, os, sys
import torch

BITS = {"bits8": torch.uint8, "bits1x8": torch.uint8, "bits2x4": torch.uint8, "bits4x2": torch.uint8}


def values(t):
    if t.layout == torch.sparse_coo:
        return values(t._values())
    if t.layout in (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr, torch.sparse_bsc):
        return values(t.values())
    if t.is_nested:
        return torch.cat([values(x).reshape(-1) for x in t.unbind()])
    if t.is_quantized:
        return t.dequantize().double()
    if t.is_complex():
        wide = torch.complex128 if t.dtype == torch.complex128 else torch.complex64
        return t.to(wide).abs().double()
    name = str(t.dtype).replace("torch.", "")
    if name in BITS:
        return t.view(BITS[name]).double()
    if name == "bits16":
        return (t.view(torch.int16).int() & 0xFFFF).double()
    return t.double()


def fnum(x):
    return None if x is None else float(x)


def finite_json(x):
    """JSON has no infinity: +Inf is written as the string "inf"."""
    x = float(x)
    return "inf" if math.isinf(x) else x


def stats(t):
    x = values(t).reshape(-1)
    finite = x[torch.isfinite(x)]
    n = finite.numel()
    return {
        "count": x.numel(), "nan": int(torch.isnan(x).sum()), "inf": int(torch.isinf(x).sum()), "zero": int((x == 0).sum()),
        "finite": n,
        "min": fnum(finite.min()) if n else None, "max": fnum(finite.max()) if n else None,
        "mean": fnum(finite.mean()) if n else None, "std": fnum(finite.std()) if n >= 2 else None,
        "l2": float(finite.norm()) if n else 0.0,
    }


def find(root, path):
    o = root
    for p in path:
        if isinstance(o, dict):
            o = o[p]
        elif isinstance(o, (list, tuple)):
            o = o[p]
        else:
            o = getattr(o, p)
    return o


def statistics(fixtures):
    out = []
    for folder in sorted(os.listdir(fixtures)):
        mpath = os.path.join(fixtures, folder, "manifest.json")
        if folder in ("bad", "dcp") or not os.path.exists(mpath):
            continue
        manifest = json.load(open(mpath))
        for f in manifest["files"]:
            if not f.get("tensors"):
                continue
            calls = [c for c in f["load_calls"] if c["expect"].get("ok")]
            if not calls:  # refused by design (TorchScript archives, cuda-only files): nothing to measure
                continue
            weights_only = any(c["args"].get("weights_only") for c in calls)
            # weights_only is what TorchLoad is to use (the manifest's expectation); torch 2.6 refuses some
            # files 1.13 wrote (protocol 1, old sparse rebuilds), so a refusal is retried without it (trusted fixtures)
            root = None
            for wo in dict.fromkeys([weights_only, False]):
                try:
                    root = torch.load(os.path.join(fixtures, folder, f["file"]), weights_only=wo, map_location="cpu")
                    break
                except Exception as e:  # torch cannot read it (newer formats than this torch, policy cases)
                    error = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
            if root is None:
                print(f"skip {folder}/{f['file']}: {error}", file=sys.stderr)
                continue
            rows = []
            for entry in f["tensors"]:
                try:
                    t = find(root, entry["path"])
                except Exception:
                    continue
                if not isinstance(t, torch.Tensor) or t.is_meta:
                    continue
                if "torch itself does not swap" in entry.get("byteorder_note", "") and t.element_size() > 1:
                    # a v3 dtype in a big-endian file: torch leaves its bytes as stored, TorchLoad swaps them by
                    # the dtype (the manifest's logical values); measure those
                    t = t.contiguous().view(torch.uint8).reshape(-1, t.element_size()).flip(1).reshape(-1).view(t.dtype).reshape(t.shape)
                try:
                    rows.append({"name": ".".join(str(p) for p in entry["path"]), "dtype": str(t.dtype).replace("torch.", ""), **stats(t)})
                except Exception as e:
                    print(f"skip {folder}/{f['file']}:{entry['path_str']}: {type(e).__name__}: {str(e).splitlines()[0][:100]}", file=sys.stderr)
            if rows:
                out.append({"file": f"{folder}/{f['file']}", "weights_only": weights_only, "tensors": rows})
    return out


def pairs():
    g = torch.Generator().manual_seed(14)
    ref, dif = {}, {}

    def add(name, a, b):
        ref[name], dif[name] = a, b

    base = torch.randn(64, 32, generator=g)
    add("f32_equal", base.clone(), base.clone())
    add("f32_tiny", base.clone(), base + 1e-7 * torch.randn(64, 32, generator=g))
    add("f32_small", base.clone(), base + 5e-4 * torch.randn(64, 32, generator=g))
    add("f32_large", base.clone(), base + 1e-2 * torch.randn(64, 32, generator=g))
    one = base.clone(); one[7, 3] += 0.25
    add("f32_one_element", base.clone(), one)
    add("f32_relative", base.clone() * 1000, base * 1000 * (1 + 3e-6))
    d = torch.randn(1000, dtype=torch.float64, generator=g)
    add("f64_small", d.clone(), d + 1e-9)
    add("f16", base.half(), (base + 2e-3).half())
    add("bf16", base.bfloat16(), (base * 1.004).bfloat16())
    nan = base.clone(); nan[0, 0] = float("nan"); nan[5, 5] = float("inf")
    add("f32_nan_both", nan.clone(), nan.clone())
    other = nan.clone(); other[1, 1] = float("nan")
    add("f32_nan_one_side", nan.clone(), other)
    inf = nan.clone(); inf[5, 5] = float("-inf")
    add("f32_inf_sign", nan.clone(), inf)
    zero = torch.zeros(10); zero_b = zero.clone(); zero_b[3] = 1e-9
    add("f32_zero_reference", zero, zero_b)
    i = torch.randint(-1000, 1000, (100,), generator=g)
    ib = i.clone(); ib[10] += 1
    add("i64_off_by_one", i, ib)
    c = torch.randn(50, dtype=torch.complex64, generator=g)
    add("c64_small", c.clone(), c + 1e-4j)
    add("shape_differs", base.clone(), base.reshape(32, 64).clone())
    add("dtype_differs", base.clone(), base.double())
    cases = [(0.0, 0.0, False), (1e-8, 1e-5, False), (1e-3, 0.0, False), (0.0, 1e-5, False), (1e-3, 1e-3, True), (0.1, 0.0, True)]
    results = []
    for name in ref:
        a, b = ref[name], dif[name]
        row = {"name": name, "dtype_or_shape_differs": a.dtype != b.dtype or a.shape != b.shape, "cases": []}
        if a.shape == b.shape:
            wide = torch.complex128 if a.is_complex() or b.is_complex() else torch.float64
            x, y = a.to(wide).reshape(-1), b.to(wide).reshape(-1)
            diff = (x - y).abs()
            same = (x == y) | (torch.isnan(x) & torch.isnan(y))
            diff = torch.where(same, torch.zeros_like(diff), diff)
            diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, math.inf))
            ordinary = torch.isfinite(y.abs()) & (y.abs() != 0)
            rel = torch.where(same, torch.zeros_like(diff), torch.where(ordinary, diff / torch.where(ordinary, y.abs(), torch.ones_like(diff)), torch.full_like(diff, math.inf)))
            if not bool(same.all()):
                row["max_abs_diff"] = finite_json(diff.max())
                row["max_rel_diff"] = finite_json(rel.max())
                row["max_diff_index"] = int(diff.argmax())
            for atol, rtol, equal_nan in cases:
                close = torch.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
                row["cases"].append({"atol": atol, "rtol": rtol, "equal_nan": equal_nan,
                                     "allclose": bool(torch.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)),
                                     "mismatches": int((~close).sum())})
        results.append(row)
    return ref, dif, results


def reprs():
    """Tensors and torch's repr of each (default printoptions)."""
    g = torch.Generator().manual_seed(3)
    cases = {
        "f32_small": torch.randn(2, 3, generator=g),
        "f32_vector_wraps": torch.randn(30, generator=g),
        "f32_summarized_2d": torch.randn(40, 50, generator=g),
        "f32_summarized_3d": torch.randn(11, 12, 13, generator=g),
        "f32_summarized_1d": torch.arange(2000, dtype=torch.float32) / 7,
        "f32_scientific": torch.tensor([1e-6, 2.5, 300000.0]),
        "f32_int_mode": torch.tensor([[1.0, -2.0], [300.0, 4.0]]),
        "f32_int_mode_sci": torch.tensor([1.0, 1e9]),
        "f32_nonfinite": torch.tensor([float("nan"), 1.5, float("inf"), -float("inf"), 0.0]),
        "f32_zeros": torch.zeros(2, 2),
        "f32_scalar": torch.tensor(3.25),
        "f32_empty": torch.zeros(0, 3),
        "f32_empty_1d": torch.zeros(0),
        "f64": torch.randn(4, dtype=torch.float64, generator=g),
        "f16": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(5, generator=g).bfloat16(),
        "i64": torch.arange(-5, 5),
        "i64_summarized": torch.arange(5000).reshape(50, 100),
        "i32": torch.tensor([1, -200, 30], dtype=torch.int32),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "c64": torch.tensor([1.5 - 2j, -0.25 + 8j]),
        "c128": torch.randn(3, dtype=torch.complex128, generator=g),
        "transposed": torch.randn(3, 4, generator=g).t(),
        "q_per_tensor": torch.quantize_per_tensor(torch.tensor([-1.0, 0.0, 1.0, 2.0]), 0.1, 10, torch.quint8),
        "requires_grad": torch.randn(3, generator=g).requires_grad_(),
    }
    return cases, {name: repr(t) for name, t in cases.items()}


if __name__ == "__main__":
    fixtures, out = sys.argv[1], sys.argv[2]
    meta = {"generated_by": f"torch {torch.__version__}", "script": "tests/TorchLoad.Tests/Data/make_expected.py"}
    with open(os.path.join(out, "tensor-statistics.json"), "w") as f:
        json.dump({**meta, "files": statistics(fixtures)}, f, indent=1)
    ref, dif, results = pairs()
    torch.save(ref, os.path.join(out, "allclose-reference.pt"))
    torch.save(dif, os.path.join(out, "allclose-difference.pt"))
    with open(os.path.join(out, "allclose.json"), "w") as f:
        json.dump({**meta, "pairs": results}, f, indent=1)
    tensors, texts = reprs()
    torch.save(tensors, os.path.join(out, "repr-cases.pt"))
    with open(os.path.join(out, "repr.json"), "w") as f:
        json.dump({**meta, "reprs": texts}, f, indent=1)
