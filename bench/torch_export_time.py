"""Times torch.load plus safetensors.torch.save_file in this process; prints one JSON line. Used by
bench/Invoke-Benchmark.ps1 (the 'Export' case, for information: Export-TorchSafetensors against torch 2.6).

    chroot /srv/trixie python3 <inside path>/torch_export_time.py <file.pt> <out.safetensors> <warmup.pt> <warm-out>

The call timed is safetensors.torch.save_file(torch.load(<file.pt>, map_location="cpu"), <out>) (torch.load
with its default weights_only). The same call runs first on <warmup.pt> into <warm-out>, untimed; then
gc.collect(), the peak-RSS counter is reset as in torch_load_time.py, and time.perf_counter runs around the
call. The output is written through the page cache (no fsync), as Export-TorchSafetensors writes it; the
driver deletes it afterwards.

Output: {"seconds": s, "peak_bytes_above_baseline": b, "baseline_bytes": b, "hwm_reset": bool, "items": tensors,
         "bytes_written": n, "torch": version}
"""
import gc
import json
import os
import sys
import time

import torch

from bench_measure import measure
from safetensors.torch import save_file


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: python3 torch_export_time.py <file.pt> <out.safetensors> <warmup.pt> <warm-out>")
    path, out, warm, warm_out = sys.argv[1:]

    def export(src, dst):
        sd = torch.load(src, map_location="cpu")
        save_file(sd, dst)
        return sd

    sd = None
    for src, dst in ((warm, warm_out), (path, out)):
        sd = None  # the warm-up's state dict is freed before the timed pass
        sd, record = measure(lambda: export(src, dst))
    print(json.dumps({
        **record,
        "items": len(sd),
        "bytes_written": os.path.getsize(out),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
