"""Times torch computing Measure-TorchTensor's statistics of every tensor of a file, load included; prints
one JSON line. Used by bench/Invoke-Benchmark.ps1 (the 'torch statistics' row).

    python3 bench/torch_stats_time.py <file.pt> <warmup.pt>

The obvious way, per tensor, in float64: x = t.double(); isnan/isinf/==0 counts; then min, max, mean, std
and norm over x[isfinite(x)], each read back with .item(). Untimed warm-up on <warmup.pt> first (lazy
imports, allocator), then time.perf_counter around torch.load plus the statistics of every tensor.

Peak memory as in torch_load_time.py: VmHWM after the call minus VmRSS before it (VmHWM reset first).

Output: {"seconds": s, "load_seconds": s, "peak_bytes_above_baseline": b, "items": tensors, "torch": version}
"""
import json
import sys
import time

import torch

from bench_measure import status_kib, reset_hwm


def statistics(t):
    x = t.double()
    nan = int(torch.isnan(x).sum())
    inf = int(torch.isinf(x).sum())
    zero = int((x == 0).sum())
    f = x[torch.isfinite(x)]
    if f.numel() == 0:
        return nan, inf, zero, None, None, None, None, 0.0
    std = f.std().item() if f.numel() > 1 else None
    return nan, inf, zero, f.min().item(), f.max().item(), f.mean().item(), std, f.norm().item()


def run(path):
    sd = torch.load(path, map_location="cpu")
    loaded = time.perf_counter()
    rows = [statistics(t) for t in sd.values()]
    return rows, loaded


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python3 torch_stats_time.py <file.pt> <warmup.pt>")
    path, warmup = sys.argv[1:]
    run(warmup)
    reset = reset_hwm()
    base = status_kib("VmRSS")
    t0 = time.perf_counter()
    rows, loaded = run(path)
    seconds = time.perf_counter() - t0
    hwm = status_kib("VmHWM")
    print(json.dumps({"seconds": seconds, "load_seconds": loaded - t0, "peak_bytes_above_baseline": max(0, hwm - base) * 1024,
                      "hwm_reset": reset, "items": len(rows), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
