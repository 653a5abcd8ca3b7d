"""What every timing script of bench/ shares: peak-memory counters and the page-cache drop (Linux /proc).

Imported by torch_load_time.py, torch_files_time.py, torch_stats_time.py and torch_export_time.py, which the
driver copies together (all of bench/*.py) wherever they run, inside the Debian 13 root too.
"""
import os


def status_kib(field):
    """A /proc/self/status field in KiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_hwm():
    """Sets VmHWM to the current RSS ("5" to /proc/self/clear_refs); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def drop_caches():
    """Empties the page cache (root): the next read of a file comes from the disk."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3")


def measure(call, drop=False):
    """Runs call() once, timed alone: a full GC, the page cache dropped if asked, VmHWM reset and VmRSS read as
    the baseline, then time.perf_counter around the call. Returns (result, record): record holds seconds,
    peak_bytes_above_baseline (VmHWM after - VmRSS before), baseline_bytes and hwm_reset, for the JSON line."""
    import gc
    import time
    gc.collect()
    if drop:
        drop_caches()
    reset = reset_hwm()
    base = status_kib("VmRSS")
    t0 = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - t0
    hwm = status_kib("VmHWM")
    return result, {
        "seconds": seconds,
        "peak_bytes_above_baseline": max(0, hwm - base) * 1024,
        "baseline_bytes": base * 1024,
        "hwm_reset": reset,
    }
