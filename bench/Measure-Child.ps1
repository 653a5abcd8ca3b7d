#requires -Version 7.4
<#
.SYNOPSIS
    One measurement, in its own process; started by bench/Invoke-Benchmark.ps1 as
    pwsh -NoProfile -NonInteractive -File Measure-Child.ps1 ... Prints one JSON line.

.DESCRIPTION
    Eager, Mmap, Storage, List, Hash, Test, Stats, StatsLoaded, Export, and the many-file methods:
        Import-Module <ModulePath>; then a loop of two passes through the SAME statements: pass 0 makes the
        call on the warm-up input (untimed: loading TorchLoad's assemblies, JIT-compiling the module's code
        paths, PowerShell compiling the statement and caching its command lookup and parameter binding), pass
        1 the same call on the measured input. Each pass: full GC; with -DropCaches `sync` and "3" written to
        /proc/sys/vm/drop_caches; reset the peak-RSS counter (write "5" to /proc/self/clear_refs: VmHWM
        becomes the current RSS); read VmRSS (baseline); then a Stopwatch around the call only:
            Eager    $r = Import-TorchCheckpoint -LiteralPath <Path>
            Mmap     $r = Import-TorchCheckpoint -LiteralPath <Path> -Mmap
            Storage  $r = Get-TorchStorage -LiteralPath <Path>
            List     $r = Get-TorchTensor -LiteralPath <Path>          (no -Hash: metadata only)
            Hash     $r = Get-TorchTensor -LiteralPath <Path> -Hash    (SHA-256 of every tensor's bytes)
            Test     $r = Test-TorchCheckpoint -LiteralPath <Path>     (CRC-32 of every record checked)
            Stats    $r = Measure-TorchTensor -LiteralPath <Path>          (load included)
            StatsLoaded  both files imported first (untimed), then $r = Measure-TorchTensor -InputObject $loaded
            Export   $r = Export-TorchSafetensors -LiteralPath <Path> -Destination <OutPath> -Force
        Many small files (<Path> a folder of *.pt; the file list, sorted, is made before the timer; the warm-up
        is the same call on its first 20 files):
            TestFiles         $r = Test-TorchCheckpoint -LiteralPath $files
            TestFilesSkipCrc  $r = Test-TorchCheckpoint -LiteralPath $files -SkipCrc
            ImportFiles       $r = Import-TorchCheckpoint -LiteralPath $files
            TestDir           $r = Get-ChildItem -LiteralPath <Path> -Filter *.pt | Test-TorchCheckpoint
            TestDirArray      $r = Test-TorchCheckpoint -LiteralPath (Get-ChildItem -LiteralPath <Path> -Filter *.pt).FullName
                              (the whole pipeline timed; <WarmupPath> a folder with 20 of the files)
        then VmHWM. Nothing in the result is touched before VmHWM is read; afterwards only its Count is
        taken, as a sanity check (items), and an audit that is not Safe fails the measurement.
    ImportModule:
        A fresh process times `Import-Module <ModulePath>` with a Stopwatch (nothing imported before).
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
    [Parameter(Mandatory)][ValidateSet('Eager', 'Mmap', 'Storage', 'List', 'Hash', 'Test', 'Stats', 'StatsLoaded',
        'TestFiles', 'TestFilesSkipCrc', 'ImportFiles', 'TestDir', 'TestDirArray', 'Export', 'ImportModule', 'Memcpy', 'MemcpyFresh')][string]$Method,
    [string]$ModulePath,
    [string]$Path,
    [string]$WarmupPath,
    # Export: the .safetensors to write (the warm-up writes "$OutPath.warmup" and deletes it)
    [string]$OutPath,
    # Cold-cache cases (root): sync and drop the page cache before each pass, i.e. after the warm-up call too
    [switch]$DropCaches,
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

if ($Method -eq 'ImportModule') {
    # A fresh process: Import-Module alone, with a Stopwatch (the issue's "Import-Module <= 100 ms").
    $sw = [Diagnostics.Stopwatch]::StartNew()
    Import-Module $ModulePath
    $sw.Stop()
    [ordered]@{ seconds = $sw.Elapsed.TotalSeconds; peak_bytes_above_baseline = $null; baseline_bytes = $null; hwm_reset = $null
        items = @(Get-Command -Module TorchLoad).Count } | ConvertTo-Json -Compress
    return
}

Import-Module $ModulePath

function Clear-PageCache {
    # the cold-cache cases (root): what the driver's `sync; echo 3 > /proc/sys/vm/drop_caches` does
    & sync
    if ($LASTEXITCODE) { throw "sync failed with exit code $LASTEXITCODE" }
    [IO.File]::WriteAllText('/proc/sys/vm/drop_caches', '3')
}

# What the call gets: index 0 for the untimed warm-up, index 1 for the timed call. Built before any timing.
$inputs = switch ($Method) {
    { $_ -in 'TestFiles', 'TestFilesSkipCrc', 'ImportFiles' } {
        # -Path is a folder of *.pt; the warm-up is the same call on its first 20 files
        $all = [string[]]@([IO.Directory]::GetFiles($Path, '*.pt') | Sort-Object)
        if ($all.Length -lt 20) { throw "$Path holds $($all.Length) *.pt files, expected at least 20" }
        , [string[]]$all[0..19]
        , $all
    }
    'StatsLoaded' { , (Import-TorchCheckpoint -LiteralPath $WarmupPath); , (Import-TorchCheckpoint -LiteralPath $Path) }
    default { $WarmupPath; $Path }   # TestDir: two folders (-WarmupPath holds 20 of the files)
}
$outputs = if ($Method -eq 'Export') { "$OutPath.warmup"; $OutPath }

# The warm-up and the timed call run through the SAME statements (a loop of two passes, only the second
# pass's Stopwatch reading is kept): PowerShell compiles a statement, binds its command and caches its
# parameter binding the first time it runs (about 1-5 ms each), which a separate warm-up statement would
# leave inside the timed call.
$sw = [Diagnostics.Stopwatch]::new()
$reset = $false; $baseKiB = 0
for ($pass = 0; $pass -lt 2; $pass++) {
    $p = $inputs[$pass]
    $r = $null
    [GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
    if ($DropCaches) { Clear-PageCache }
    $reset = Reset-PeakRss
    $baseKiB = Get-StatusKiB 'VmRSS'
    switch ($Method) {
        'Eager'   { $sw.Restart(); $r = Import-TorchCheckpoint -LiteralPath $p; $sw.Stop() }
        'Mmap'    { $sw.Restart(); $r = Import-TorchCheckpoint -LiteralPath $p -Mmap; $sw.Stop() }
        'Storage' { $sw.Restart(); $r = Get-TorchStorage -LiteralPath $p; $sw.Stop() }
        'List'    { $sw.Restart(); $r = Get-TorchTensor -LiteralPath $p; $sw.Stop() }
        'Hash'    { $sw.Restart(); $r = Get-TorchTensor -LiteralPath $p -Hash; $sw.Stop() }
        'Test'    { $sw.Restart(); $r = Test-TorchCheckpoint -LiteralPath $p; $sw.Stop() }
        'Stats'   { $sw.Restart(); $r = Measure-TorchTensor -LiteralPath $p; $sw.Stop() }
        'StatsLoaded' { $sw.Restart(); $r = Measure-TorchTensor -InputObject $p; $sw.Stop() }
        'TestFiles'        { $sw.Restart(); $r = Test-TorchCheckpoint -LiteralPath $p; $sw.Stop() }
        'TestFilesSkipCrc' { $sw.Restart(); $r = Test-TorchCheckpoint -LiteralPath $p -SkipCrc; $sw.Stop() }
        'ImportFiles'      { $sw.Restart(); $r = Import-TorchCheckpoint -LiteralPath $p; $sw.Stop() }
        'TestDir'          { $sw.Restart(); $r = Get-ChildItem -LiteralPath $p -Filter *.pt | Test-TorchCheckpoint; $sw.Stop() }
        'TestDirArray'     { $sw.Restart(); $r = Test-TorchCheckpoint -LiteralPath (Get-ChildItem -LiteralPath $p -Filter *.pt).FullName; $sw.Stop() }
        'Export'  { $sw.Restart(); $r = Export-TorchSafetensors -LiteralPath $p -Destination $outputs[$pass] -Force; $sw.Stop() }
    }
}
$hwmKiB = Get-StatusKiB 'VmHWM'
$items = if ($r -is [Collections.ICollection]) { $r.Count } else { @($r).Count }   # dictionary keys / storages / rows / files
if ($Method -eq 'Export') { Remove-Item -LiteralPath $outputs[0] -Force }
if ($Method -in 'Test', 'TestFiles', 'TestFilesSkipCrc', 'TestDir', 'TestDirArray') {
    # every file must pass the audit, or the figure is not the figure of a clean read
    $bad = @($r | Where-Object { -not $_.IsSafe })
    if ($bad) { throw "$($bad.Count) of $items audited file(s) are not Safe: $($bad[0].Verdict) $($bad[0].Path) $($bad[0].Findings -join '; ')" }
}

[ordered]@{
    seconds                   = $sw.Elapsed.TotalSeconds
    peak_bytes_above_baseline = [Math]::Max(0, $hwmKiB - $baseKiB) * 1024
    baseline_bytes            = $baseKiB * 1024
    hwm_reset                 = $reset
    items                     = $items
} | ConvertTo-Json -Compress
