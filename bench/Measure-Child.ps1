#requires -Version 7.4
<#
.SYNOPSIS
    One measurement, in its own process; started by bench/Invoke-Benchmark.ps1 as
    pwsh -NoProfile -NonInteractive -File Measure-Child.ps1 ... Prints one JSON line.

.DESCRIPTION
    Eager, Mmap, Storage:
        Import-Module <ModulePath>; run the same call once on <WarmupPath> (a 4-tensor file), untimed, so
        that loading TorchLoad's assemblies, JIT-compiling the module's code paths and PowerShell's command
        discovery/parameter binding are not timed; full GC; reset the peak-RSS counter (write "5" to
        /proc/self/clear_refs: VmHWM becomes the current RSS); read VmRSS (baseline); then a Stopwatch around
        the call only:
            Eager    $r = Import-TorchCheckpoint -LiteralPath <Path>
            Mmap     $r = Import-TorchCheckpoint -LiteralPath <Path> -Mmap
            Storage  $r = Get-TorchStorage -LiteralPath <Path>
            List     $r = Get-TorchTensor -LiteralPath <Path>   (no -Hash: a DCP folder's .metadata only)
            Stats    $r = Measure-TorchTensor -LiteralPath <Path>          (load included)
            StatsLoaded  the file imported first (untimed), then $r = Measure-TorchTensor -InputObject $loaded
        then VmHWM. Nothing in the result is touched before VmHWM is read; afterwards only its Count is
        taken, as a sanity check (items).
    Memcpy:
        Compiles a tiny C# helper (untimed) that allocates two 1 GiB NativeMemory buffers, touches every page
        of both (NativeMemory.Fill), and times Buffer.MemoryCopy of 1 GiB between them with a Stopwatch.
    MemcpyFresh:
        The same copy into a destination allocated inside the timed region and never touched before: what a
        program pays to copy 1 GiB into new memory (the kernel faults in and zeroes every page), as a load must.

    Output: {"seconds", "peak_bytes_above_baseline", "baseline_bytes", "hwm_reset", "items"}
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][ValidateSet('Eager', 'Mmap', 'Storage', 'List', 'Stats', 'StatsLoaded', 'Memcpy', 'MemcpyFresh')][string]$Method,
    [string]$ModulePath,
    [string]$Path,
    [string]$WarmupPath,
    [long]$MemcpyBytes = 1GB
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Get-StatusKiB([string]$Field) {
    foreach ($line in [IO.File]::ReadAllLines('/proc/self/status')) {
        if ($line.StartsWith("${Field}:")) { return [long]($line.Substring($Field.Length + 1).Trim() -split '\s+')[0] }
    }
    throw "$Field not found in /proc/self/status"
}

function Reset-PeakRss {
    try { [IO.File]::WriteAllText('/proc/self/clear_refs', '5'); $true } catch { $false }
}

if ($Method -in 'Memcpy', 'MemcpyFresh') {
    Add-Type -CompilerOptions '-unsafe' -TypeDefinition @'
using System; using System.Diagnostics; using System.Runtime.InteropServices;
public static unsafe class TorchLoadBenchMemcpy {
    public static double Run(long n, bool freshDestination) {
        byte* src = (byte*)NativeMemory.Alloc((nuint)n), dst = null;
        try {
            NativeMemory.Fill(src, (nuint)n, 1);    // touch every page of the source first
            if (!freshDestination) { dst = (byte*)NativeMemory.Alloc((nuint)n); NativeMemory.Fill(dst, (nuint)n, 0); }
            var sw = Stopwatch.StartNew();
            if (freshDestination) dst = (byte*)NativeMemory.Alloc((nuint)n);
            Buffer.MemoryCopy(src, dst, n, n);
            sw.Stop();
            if (dst[n - 1] != 1) throw new InvalidOperationException("copy check failed");
            return sw.Elapsed.TotalSeconds;
        } finally { NativeMemory.Free(src); NativeMemory.Free(dst); }
    }
}
'@
    $seconds = [TorchLoadBenchMemcpy]::Run($MemcpyBytes, $Method -eq 'MemcpyFresh')
    [ordered]@{ seconds = $seconds; peak_bytes_above_baseline = $null; baseline_bytes = $null; hwm_reset = $null; items = $MemcpyBytes } |
        ConvertTo-Json -Compress
    return
}

Import-Module $ModulePath

# Untimed warm-up: the same call on a small file.
$null = switch ($Method) {
    'Eager'   { Import-TorchCheckpoint -LiteralPath $WarmupPath }
    'Mmap'    { Import-TorchCheckpoint -LiteralPath $WarmupPath -Mmap }
    'Storage' { Get-TorchStorage -LiteralPath $WarmupPath }
    'List'    { Get-TorchTensor -LiteralPath $WarmupPath }
    'Stats'   { Measure-TorchTensor -LiteralPath $WarmupPath }
    'StatsLoaded' { Import-TorchCheckpoint -LiteralPath $WarmupPath | Measure-TorchTensor }
}
$loaded = if ($Method -eq 'StatsLoaded') { Import-TorchCheckpoint -LiteralPath $Path }
[GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()

$reset = Reset-PeakRss
$baseKiB = Get-StatusKiB 'VmRSS'
$sw = [Diagnostics.Stopwatch]::new()
switch ($Method) {
    'Eager'   { $sw.Start(); $r = Import-TorchCheckpoint -LiteralPath $Path; $sw.Stop() }
    'Mmap'    { $sw.Start(); $r = Import-TorchCheckpoint -LiteralPath $Path -Mmap; $sw.Stop() }
    'Storage' { $sw.Start(); $r = Get-TorchStorage -LiteralPath $Path; $sw.Stop() }
    'List'    { $sw.Start(); $r = Get-TorchTensor -LiteralPath $Path; $sw.Stop() }
    'Stats'   { $sw.Start(); $r = Measure-TorchTensor -LiteralPath $Path; $sw.Stop() }
    'StatsLoaded' { $sw.Start(); $r = Measure-TorchTensor -InputObject $loaded; $sw.Stop() }
}
$hwmKiB = Get-StatusKiB 'VmHWM'
$items = if ($r -is [Collections.ICollection]) { $r.Count } else { @($r).Count }   # dictionary keys / storages / rows

[ordered]@{
    seconds                   = $sw.Elapsed.TotalSeconds
    peak_bytes_above_baseline = [Math]::Max(0, $hwmKiB - $baseKiB) * 1024
    baseline_bytes            = $baseKiB * 1024
    hwm_reset                 = $reset
    items                     = $items
} | ConvertTo-Json -Compress
