"""Times a loop over many small checkpoints in ONE process; prints one JSON line. Used by
bench/Invoke-Benchmark.ps1 (the 'Files' cases, issue 15).

    chroot /srv/trixie python3 <inside path>/torch_files_time.py <dir> <mode>     (torch 2.6)
    /usr/bin/python3 bench/torch_files_time.py <dir> load                         (torch 1.13)

<dir> holds the *.pt files (bench/make_small_files.py: 1000 checkpoints of 6.4 KB). Modes:

    unsafe   [torch.serialization.get_unsafe_globals_in_checkpoint(f) for f in files]   (torch >= 2.5)
    load     [torch.load(f, weights_only=False) for f in files]
    default  [torch.load(f) for f in files]            (torch 2.6's default, weights_only=True)

The file list (sorted names) is made before the clock. The same loop runs first on the first 20 files,
untimed (lazy imports, the first torch.load's set-up), then gc.collect(), the peak-RSS counter is reset as in
torch_load_time.py, and time.perf_counter runs around the loop over all files.

Output: {"seconds": s, "peak_bytes_above_baseline": b, "baseline_bytes": b, "hwm_reset": bool,
         "items": number of results, "files": number of files, "mode": mode, "torch": version}
"""
import gc
import glob
import json
import os
import sys
import time

import torch

from bench_measure import measure


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("unsafe", "load", "default"):
        sys.exit("usage: python3 torch_files_time.py <dir> unsafe|load|default")
    folder, mode = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(folder, "*.pt")))
    if len(files) < 20:
        sys.exit(f"{folder}: {len(files)} *.pt files, expected at least 20")
    warm = files[:20]

    if mode == "unsafe":
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint

        def run(fs):
            return [unsafe(f) for f in fs]
    elif mode == "load":
        def run(fs):
            return [torch.load(f, weights_only=False) for f in fs]
    else:
        def run(fs):
            return [torch.load(f) for f in fs]

    run(warm)
    result, record = measure(lambda: run(files))
    print(json.dumps({
        **record,
        "items": len(result),
        "files": len(files),
        "mode": mode,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
