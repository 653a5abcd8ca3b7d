#requires -Version 7.4
<#
.SYNOPSIS
    TorchLoad vs torch.load benchmark (issue 5). Called by build.ps1 -Task Bench as
    bench/Invoke-Benchmark.ps1 -ModulePath <repo>/module/TorchLoad.psd1 -WorkDir <repo>/bench-out

.DESCRIPTION
    1. Makes sure Debian's PyTorch is there: when /usr/bin/python3 cannot import torch, runs
       apt-get update and apt-get install -y python3-torch python3-numpy (as root, or through sudo -n).
       Only /usr/bin/python3 is used, never a python3 found on PATH.
    2. Makes the inputs in WorkDir if absent (bench/make_inputs.py): big.pt (64 float32 tensors of
       2048x2048, 1 GiB), many.pt (20,000 float32 tensors of shape (8,)), small.pt (warm-up file).
    3. Warms the page cache by reading big.pt and many.pt once, and reports the speed of a second read
       of big.pt (several GB/s means it is served from memory). All timings below are warm-cache timings.
    4. Runs WarmupRounds discarded rounds, then Rounds measured rounds. Each round runs every case once,
       each in its own fresh process, alternating, in a new seeded random order every round, with a
       short pause between processes:
         torch.load            /usr/bin/python3 bench/torch_load_time.py (weights_only=False, torch 1.13's
                               default; -TorchWeightsOnly adds a weights_only=True row for information)
         Import-TorchCheckpoint (eager), Import-TorchCheckpoint -Mmap, Get-TorchStorage -Path
                               pwsh -File bench/Measure-Child.ps1
         on big.pt and many.pt, plus memcpy: Buffer.MemoryCopy of 1 GiB between two touched NativeMemory
         buffers in a pwsh child (the target's reference), and the same copy into freshly allocated memory
         (for information: it pays the page faults a load pays).
       Every child first does the same call once on small.pt, untimed (module/assembly load, JIT, pickle
       and zip code paths, PowerShell command discovery; for Python the lazy imports of the first
       torch.load), then times the one call only with a Stopwatch / time.perf_counter, and measures peak
       memory as VmHWM minus VmRSS just before the call (VmHWM is reset with /proc/self/clear_refs first).
    5. Prints medians, min, max, ratios to torch.load (and eager 1 GiB to memcpy), PASS/MISS for the
       issue's targets, and writes everything, raw samples included, to WorkDir/bench-results.json.

    The targets are ratios of medians taken from this one run, so machine load (other builds) affects
    both sides; the load average before and after the run is printed and saved.

.EXAMPLE
    dotnet pwsh -NoProfile -File ./bench/Invoke-Benchmark.ps1 -ModulePath ./module/TorchLoad.psd1 -WorkDir ./bench-out
#>
[CmdletBinding()]
param(
    # The built module's manifest (./module/TorchLoad.psd1 after build.ps1 -Task Build).
    [Parameter(Mandatory)][string]$ModulePath,

    # Where the inputs and bench-results.json go (bench-out/ is git-ignored).
    [string]$WorkDir = (Join-Path $PSScriptRoot '../bench-out'),

    # Measured rounds; the issue asks for medians of at least 5.
    [ValidateRange(1, 1000)][int]$Rounds = 5,

    # Rounds run first and thrown away (cold disk caches for pwsh/torch binaries, CPU frequency).
    [ValidateRange(0, 100)][int]$WarmupRounds = 1,

    # Also time torch.load(weights_only=True) (informational; ratios stay against the default torch.load).
    [switch]$TorchWeightsOnly,

    # Exit code 1 when a target is missed (by default the benchmark only reports).
    [switch]$FailOnMiss,

    # Per-child deadline.
    [int]$ChildTimeoutSec = 300,

    # A Debian 13 root with python3-torch 2.6 (chroot): the DCP inputs (bench/make_dcp_inputs.py) are made
    # there, and the DCP cases run when it exists (DCP needs torch 2.x; Debian 12's torch is 1.13).
    [string]$TrixieRoot = '/srv/trixie',

    # Which cases: Load (torch.load against Import-TorchCheckpoint/-Mmap/Get-TorchStorage), Stats (torch's
    # statistics against Measure-TorchTensor on big.pt, issue 14) or All. memcpy runs with either.
    [ValidateSet('All', 'Load', 'Stats')][string]$Only = 'All',

    # A command line that runs a Python with another torch for the statistics comparison (e.g. 'chroot
    # /srv/trixie python3'); WorkDir must be visible to it at the same path. Default: the bench's python.
    [string]$StatsPython
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$PSStyle.OutputRendering = 'PlainText'

$python = '/usr/bin/python3'           # Debian's python with python3-torch; never a python3 on PATH
$pwsh = Join-Path $PSHOME 'pwsh'        # [Environment]::ProcessPath is the dotnet host under `dotnet pwsh`
$benchDir = $PSScriptRoot
$ModulePath = (Resolve-Path -LiteralPath $ModulePath).ProviderPath
$null = New-Item -ItemType Directory -Force -Path $WorkDir
$WorkDir = (Resolve-Path -LiteralPath $WorkDir).ProviderPath
foreach ($v in 'DOTNET_CLI_TELEMETRY_OPTOUT', 'POWERSHELL_TELEMETRY_OPTOUT', 'NO_COLOR', 'DOTNET_NOLOGO') { Set-Item "env:$v" '1' }
$env:POWERSHELL_UPDATECHECK = 'Off'

function Write-Step([string]$Text) { Write-Host "==> $Text" }

function Invoke-Process {
    # Runs a program with a deadline; returns stdout, stderr and the exit code (124 on timeout).
    param([string]$FilePath, [string[]]$ArgumentList, [int]$TimeoutSec = $ChildTimeoutSec)
    $psi = [System.Diagnostics.ProcessStartInfo]::new($FilePath)
    foreach ($a in $ArgumentList) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.WorkingDirectory = $WorkDir
    $proc = [System.Diagnostics.Process]::Start($psi)
    try {
        $out = $proc.StandardOutput.ReadToEndAsync()
        $err = $proc.StandardError.ReadToEndAsync()
        if (-not $proc.WaitForExit($TimeoutSec * 1000)) {
            $proc.Kill($true)
            $proc.WaitForExit()
            return [pscustomobject]@{ Stdout = $out.Result; Stderr = $err.Result; ExitCode = 124 }
        }
        $proc.WaitForExit()
        [pscustomobject]@{ Stdout = $out.Result; Stderr = $err.Result; ExitCode = $proc.ExitCode }
    } finally { $proc.Dispose() }
}

function Get-JsonLine([object]$Result, [string]$What) {
    # The measurement is the last line of stdout that is a JSON object.
    $line = ($Result.Stdout -split "`r?`n" | Where-Object { $_.StartsWith('{') } | Select-Object -Last 1)
    if ($Result.ExitCode -ne 0 -or -not $line) {
        throw "$What failed (exit $($Result.ExitCode)).`nstdout: $($Result.Stdout)`nstderr: $($Result.Stderr)"
    }
    $line | ConvertFrom-Json
}

function Get-Median([double[]]$Values) {
    $s = [double[]]($Values | Sort-Object)
    $n = $s.Length
    if ($n % 2) { $s[($n - 1) / 2] } else { ($s[$n / 2 - 1] + $s[$n / 2]) / 2 }
}

function Get-LoadAverage { ((Get-Content -Raw /proc/loadavg) -split ' ')[0..2] -join ' ' }

# --- 1. Debian's PyTorch ---------------------------------------------------------------------------------
& (Join-Path $PSScriptRoot '../build/Install-DebianTorch.ps1') -Python $python

# --- 2. Inputs -------------------------------------------------------------------------------------------
Write-Step "inputs in $WorkDir (bench/make_inputs.py with $python; written only if absent)"
$made = Get-JsonLine (Invoke-Process $python @((Join-Path $benchDir 'make_inputs.py'), $WorkDir) -TimeoutSec 900) 'make_inputs.py'
$torchVersion = $made.torch
$files = [ordered]@{
    big  = [ordered]@{ name = 'big.pt'; path = Join-Path $WorkDir 'big.pt'; label = '1 GiB (64 x 16 MiB)' }
    many = [ordered]@{ name = 'many.pt'; path = Join-Path $WorkDir 'many.pt'; label = '20,000 tensors' }
}
$small = Join-Path $WorkDir 'small.pt'
foreach ($f in $files.Values) { $f.bytes = (Get-Item -LiteralPath $f.path).Length }

# DCP inputs (issue 12): made with torch 2.6 inside the chroot, used where they lie
$dcp = $null
if (Test-Path -LiteralPath (Join-Path $TrixieRoot 'usr/bin/python3')) {
    $inside = '/tmp/torchload-bench-dcp'
    $outside = Join-Path $TrixieRoot $inside.TrimStart('/')
    $null = New-Item -ItemType Directory -Force -Path $outside
    Copy-Item -LiteralPath (Join-Path $benchDir 'make_dcp_inputs.py') -Destination $outside -Force
    Write-Step "DCP inputs in $outside/out (bench/make_dcp_inputs.py with torch 2.6 in $TrixieRoot; written only if absent)"
    $madeDcp = Get-JsonLine (Invoke-Process 'chroot' @($TrixieRoot, 'python3', "$inside/make_dcp_inputs.py", "$inside/out") -TimeoutSec 1800) 'make_dcp_inputs.py'
    $dcp = [ordered]@{ torch = $madeDcp.torch; dir = Join-Path $outside 'out' }
    $dcpFiles = [ordered]@{
        big26   = [ordered]@{ name = 'big26.pt'; path = Join-Path $dcp.dir 'big26.pt'; label = '1 GiB, torch 2.6 torch.save' }
        bigdcp  = [ordered]@{ name = 'big_dcp/'; path = Join-Path $dcp.dir 'big_dcp'; label = '1 GiB, DCP 2 ranks' }
        manydcp = [ordered]@{ name = 'many_dcp/'; path = Join-Path $dcp.dir 'many_dcp'; label = '10,000 keys, DCP' }
    }
    foreach ($f in $dcpFiles.Values) { $f.bytes = (Get-ChildItem -LiteralPath $f.path -File -Recurse -Force | Measure-Object Length -Sum).Sum }
} else {
    Write-Warning "No Debian 13 root with torch 2.6 at '$TrixieRoot': the DCP cases are skipped."
}

# --- 3. Page cache ---------------------------------------------------------------------------------------
function Read-Whole([string]$Path) {
    $buf = [byte[]]::new(16MB)
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $fs = [IO.File]::OpenRead($Path)
    try { while ($fs.Read($buf, 0, $buf.Length) -gt 0) { } } finally { $fs.Dispose() }
    $sw.Elapsed.TotalSeconds
}
foreach ($f in $files.Values) { $null = Read-Whole $f.path }
if ($dcp) { foreach ($f in $dcpFiles.Values) { Get-ChildItem -LiteralPath $f.path -File -Recurse -Force | ForEach-Object { $null = Read-Whole $_.FullName } } }
$reread = Read-Whole $files.big.path
$rereadGBps = $files.big.bytes / $reread / 1e9
$memAvailMiB = [long](((Get-Content /proc/meminfo | Where-Object { $_ -like 'MemAvailable:*' }) -split '\s+')[1]) / 1024
Write-Step ('page cache warmed: big.pt and many.pt read once; second read of big.pt {0:N2} GB/s; MemAvailable {1:N0} MiB' -f $rereadGBps, $memAvailMiB)
if ($rereadGBps -lt 1) { Write-Warning 'big.pt re-read slower than 1 GB/s: it may not fit in the page cache; torch.load and eager figures then include disk reads.' }

# --- 4. Rounds -------------------------------------------------------------------------------------------
$childScript = Join-Path $benchDir 'Measure-Child.ps1'
$timeScript = Join-Path $benchDir 'torch_load_time.py'
$statsScript = Join-Path $benchDir 'torch_stats_time.py'
$cases = [System.Collections.Generic.List[object]]::new()
function Add-Case([string]$Id, [string]$Method, [string]$FileKey, [string]$Label, [string]$Exe, [string[]]$ArgList) {
    $cases.Add([pscustomobject]@{ Id = $Id; Method = $Method; File = $FileKey; Label = $Label; Exe = $Exe; Args = $ArgList
        Seconds = [System.Collections.Generic.List[double]]::new(); Peak = [System.Collections.Generic.List[double]]::new(); Items = $null })
}
foreach ($k in $(if ($Only -ne 'Stats') { $files.Keys })) {
    $p = $files[$k].path
    Add-Case "torch.$k" 'torch' $k 'torch.load' $python @($timeScript, $p, $small)
    if ($TorchWeightsOnly) { Add-Case "torchwo.$k" 'torchwo' $k 'torch.load(weights_only=True)' $python @($timeScript, $p, $small, '--weights-only') }
    foreach ($m in @(@('eager', 'Eager', 'Import-TorchCheckpoint'), @('mmap', 'Mmap', 'Import-TorchCheckpoint -Mmap'), @('storage', 'Storage', 'Get-TorchStorage -Path'))) {
        Add-Case "$($m[0]).$k" $m[0] $k $m[2] $pwsh @('-NoProfile', '-NonInteractive', '-File', $childScript, '-Method', $m[1], '-ModulePath', $ModulePath, '-Path', $p, '-WarmupPath', $small)
    }
}
if ($dcp) {
    $smallDcp = Join-Path $dcp.dir 'small_dcp'
    $child = { param($m, $p, $w) @('-NoProfile', '-NonInteractive', '-File', $childScript, '-Method', $m, '-ModulePath', $ModulePath, '-Path', $p, '-WarmupPath', $w) }
    Add-Case 'eager.big26' 'eager' 'big26' 'Import-TorchCheckpoint' $pwsh (& $child 'Eager' $dcpFiles.big26.path $small)
    Add-Case 'eager.bigdcp' 'eager' 'bigdcp' 'Import-TorchCheckpoint' $pwsh (& $child 'Eager' $dcpFiles.bigdcp.path $smallDcp)
    Add-Case 'list.manydcp' 'list' 'manydcp' 'Get-TorchTensor (no -Hash)' $pwsh (& $child 'List' $dcpFiles.manydcp.path $smallDcp)
}
if ($Only -ne 'Load') {
    $p = $files.big.path
    $statsExe, $statsPre = if ($StatsPython) { $w = -split $StatsPython; $w[0], @($w | Select-Object -Skip 1) } else { $python, @() }
    Add-Case 'torchstats.big' 'torchstats' 'big' $(if ($StatsPython) { 'torch statistics, -StatsPython' } else { 'torch statistics' }) $statsExe (@($statsPre) + @($statsScript, $p, $small))
    if ($StatsPython) { Add-Case 'torchstats.default.big' 'torchstats.default' 'big' 'torch statistics, bench python' $python @($statsScript, $p, $small) }
    Add-Case 'stats.big' 'stats' 'big' 'Measure-TorchTensor -LiteralPath' $pwsh @('-NoProfile', '-NonInteractive', '-File', $childScript, '-Method', 'Stats', '-ModulePath', $ModulePath, '-Path', $p, '-WarmupPath', $small)
    Add-Case 'statsloaded.big' 'statsloaded' 'big' 'Measure-TorchTensor, loaded object' $pwsh @('-NoProfile', '-NonInteractive', '-File', $childScript, '-Method', 'StatsLoaded', '-ModulePath', $ModulePath, '-Path', $p, '-WarmupPath', $small)
}
Add-Case 'memcpy' 'memcpy' $null 'memcpy 1 GiB (Buffer.MemoryCopy)' $pwsh @('-NoProfile', '-NonInteractive', '-File', $childScript, '-Method', 'Memcpy')
Add-Case 'memcpy.fresh' 'memcpy' $null 'memcpy 1 GiB into new memory' $pwsh @('-NoProfile', '-NonInteractive', '-File', $childScript, '-Method', 'MemcpyFresh')

$loadBefore = Get-LoadAverage
Write-Step "$WarmupRounds warm-up round(s) (discarded), then $Rounds measured rounds of $($cases.Count) cases, one process each, alternating; load average $loadBefore"
if ($Rounds -lt 5) { Write-Warning "Fewer than 5 rounds: the issue's targets call for medians of at least 5." }
$started = [DateTime]::UtcNow
for ($round = 1 - $WarmupRounds; $round -le $Rounds; $round++) {
    # A new order every round (seeded, so runs repeat): no case always follows the same one. A case
    # right after a process that freed 1-2 GiB pays for the kernel reclaiming that memory; with a fixed
    # rotation that cost always landed on the same method.
    $order = @($cases | Get-Random -Shuffle -SetSeed (7919 * ($round + 100)))
    $parts = foreach ($c in $order) {
        Start-Sleep -Milliseconds 500   # let the previous process's memory settle
        $m = Get-JsonLine (Invoke-Process $c.Exe $c.Args) "$($c.Id) (round $round)"
        if ($round -ge 1) {
            $c.Seconds.Add([double]$m.seconds)
            if ($null -ne $m.peak_bytes_above_baseline) { $c.Peak.Add([double]$m.peak_bytes_above_baseline) }
            $c.Items = $m.items
            $expected = @{ big = 64; many = 20000; big26 = 64; bigdcp = 64; manydcp = 10000 }[$c.File]   # tensors, or statistics rows
            if ($expected -and $m.items -ne $expected) { Write-Warning "$($c.Id): $($m.items) items, expected $expected" }
        }
        '{0} {1:N1}' -f $c.Id, ([double]$m.seconds * 1000)
    }
    $tag = if ($round -ge 1) { "round $round/$Rounds" } else { 'warm-up round' }
    Write-Host ("  {0} (ms): {1}" -f $tag, ($parts -join ' | '))
}
$loadAfter = Get-LoadAverage
$elapsed = ([DateTime]::UtcNow - $started).TotalSeconds

# --- 5. Report -------------------------------------------------------------------------------------------
foreach ($c in $cases) {
    $c | Add-Member -NotePropertyMembers @{
        Median = Get-Median $c.Seconds; Min = ($c.Seconds | Measure-Object -Minimum).Minimum; Max = ($c.Seconds | Measure-Object -Maximum).Maximum
        PeakMedian = if ($c.Peak.Count) { Get-Median $c.Peak } else { $null }
        PeakMax = if ($c.Peak.Count) { ($c.Peak | Measure-Object -Maximum).Maximum } else { $null }
    }
}
$byId = @{}; foreach ($c in $cases) { $byId[$c.Id] = $c }
foreach ($c in $cases) {
    $ref = if ($c.Method -in 'stats', 'statsloaded') { $byId['torchstats.big'] } elseif ($c.File) { $byId["torch.$($c.File)"] } else { $null }
    $c | Add-Member -NotePropertyName RatioToTorch -NotePropertyValue ($ref ? $c.Median / $ref.Median : $null)
    $c | Add-Member -NotePropertyName PeakRatioToTorch -NotePropertyValue (($ref -and $null -ne $c.PeakMedian -and $ref.PeakMedian) ? $c.PeakMedian / $ref.PeakMedian : $null)
}
$memcpy = $byId['memcpy'].Median
$eagerBig = $byId['eager.big']
$statsBig = $byId['stats.big']

Write-Host ''
Write-Host "TorchLoad benchmark: medians of $Rounds rounds (+$WarmupRounds discarded), warm page cache, each figure the call alone in its own process"
Write-Host ("torch {0} via {1}; PowerShell {2}; {3} CPUs; load average {4} before, {5} after; {6:N0} s" -f $torchVersion, $python, $PSVersionTable.PSVersion, [Environment]::ProcessorCount, $loadBefore, $loadAfter, $elapsed)
$fmt = '{0,-8} {1,-32} {2,10:N2} {3,10:N2} {4,10:N2} {5,9} {6,9:N1} {7,9:N1} {8,9}'
Write-Host ''
Write-Host ($fmt -f 'file', 'method', 'median ms', 'min ms', 'max ms', 'x torch', 'peak MiB', 'peak max', 'x torch')
Write-Host ($fmt -f '----', '------', '---------', '------', '------', '-------', '--------', '--------', '-------')
foreach ($c in $cases) {
    $file = if (-not $c.File) { '(RAM)' } elseif ($files.Contains($c.File)) { $files[$c.File].name } else { $dcpFiles[$c.File].name }
    Write-Host ($fmt -f $file, $c.Label, ($c.Median * 1000), ($c.Min * 1000), ($c.Max * 1000),
        ($null -ne $c.RatioToTorch ? ('{0:N3}x' -f $c.RatioToTorch) : '-'),
        ($null -ne $c.PeakMedian ? ($c.PeakMedian / 1MB) : '-'), ($null -ne $c.PeakMax ? ($c.PeakMax / 1MB) : '-'),
        ($null -ne $c.PeakRatioToTorch ? ('{0:N3}x' -f $c.PeakRatioToTorch) : '-'))
}
$memcpyFresh = $byId['memcpy.fresh'].Median
if ($eagerBig) {
    Write-Host ('eager 1 GiB / memcpy 1 GiB: {0:N2}x   (memcpy median {1:N1} ms; the target uses this one)' -f ($eagerBig.Median / $memcpy), ($memcpy * 1000))
    Write-Host ('eager 1 GiB / memcpy 1 GiB into new memory: {0:N2}x   (median {1:N1} ms; for information: the same page faults a load pays)' -f ($eagerBig.Median / $memcpyFresh), ($memcpyFresh * 1000))
}
if ($statsBig) {
    $gb = $files.big.bytes / 1e9
    Write-Host ('statistics of 1 GiB: Measure-TorchTensor {0:N2} GB/s with the load, {1:N2} GB/s on a loaded object; memcpy 1 GiB {2:N2} GB/s; torch statistics {3:N2} GB/s' -f ($gb / $statsBig.Median), ($gb / $byId['statsloaded.big'].Median), ($gb / $memcpy), ($gb / $byId['torchstats.big'].Median))
}
if ($dcp) {
    $dcpRatio = $byId['eager.bigdcp'].Median / $byId['eager.big26'].Median
    Write-Host ('DCP (torch {0}): eager 1 GiB folder / the same state dict as a torch.save file: {1:N3}x; Get-TorchTensor on a 10,000-key folder: {2:N1} ms' -f $dcp.torch, $dcpRatio, ($byId['list.manydcp'].Median * 1000))
}
Write-Host ('file sizes: big.pt {0:N0} bytes ({1:N1} MiB), many.pt {2:N0} bytes ({3:N1} MiB)' -f $files.big.bytes, ($files.big.bytes / 1MB), $files.many.bytes, ($files.many.bytes / 1MB))
Write-Host ''

$targets = @(
  if ($eagerBig) {
    @{ name = 'eager 1 GiB time <= 0.5x torch.load'; value = $byId['eager.big'].RatioToTorch; limit = 0.5; unit = 'x' }
    @{ name = 'eager 1 GiB time <= 2x memcpy'; value = $eagerBig.Median / $memcpy; limit = 2.0; unit = 'x' }
    @{ name = '-Mmap 1 GiB time <= 0.05x torch.load'; value = $byId['mmap.big'].RatioToTorch; limit = 0.05; unit = 'x' }
    @{ name = 'eager 20,000 tensors time <= 0.25x torch.load'; value = $byId['eager.many'].RatioToTorch; limit = 0.25; unit = 'x' }
    @{ name = '-Mmap 20,000 tensors time <= 0.25x torch.load'; value = $byId['mmap.many'].RatioToTorch; limit = 0.25; unit = 'x' }
    @{ name = 'eager 1 GiB peak memory <= file size + 100 MiB'; value = $eagerBig.PeakMedian / 1MB; limit = ($files.big.bytes + 100MB) / 1MB; unit = ' MiB' }
    @{ name = '-Mmap 1 GiB peak memory <= 100 MiB'; value = $byId['mmap.big'].PeakMedian / 1MB; limit = 100.0; unit = ' MiB' }
  }
  if ($dcp) {
    @{ name = 'DCP: eager 1 GiB folder <= 1.2x its torch.save file'; value = $dcpRatio; limit = 1.2; unit = 'x' }
    @{ name = 'DCP: Get-TorchTensor 10,000 keys <= 0.1 s'; value = $byId['list.manydcp'].Median; limit = 0.1; unit = ' s' }
  }
  if ($statsBig) {
    @{ name = 'Measure-TorchTensor 1 GiB <= 0.1x torch statistics'; value = $statsBig.RatioToTorch; limit = 0.1; unit = 'x' }
    @{ name = 'Measure-TorchTensor 1 GiB, load included, >= 4 GB/s'; value = $files.big.bytes / 1e9 / $statsBig.Median; limit = 4.0; unit = 'GB/s' }
  }
) | ForEach-Object { $_.pass = if ($_.unit -eq "GB/s") { $_.value -ge $_.limit } else { $_.value -le $_.limit }; [pscustomobject]$_ }
Write-Host 'Targets (ratios of medians from this run; peak = median of VmHWM - VmRSS before the call):'
foreach ($t in $targets) {
    $fmtV = switch ($t.unit) { 'x' { '{0:N3}x (limit {1:N3}x)' } ' s' { '{0:N3} s (limit {1:N3} s)' } 'GB/s' { '{0:N2} GB/s (aim {1:N2} GB/s)' } default { '{0:N1} MiB (limit {1:N1} MiB)' } }
    Write-Host ('  {0,-4}  {1,-52} {2}' -f ($t.pass ? 'PASS' : 'MISS'), $t.name, ($fmtV -f $t.value, $t.limit))
}
$missed = @($targets | Where-Object { -not $_.pass }).Count
Write-Host ("{0} of {1} targets met." -f ($targets.Count - $missed), $targets.Count)

$moduleVersion = try { (Import-PowerShellDataFile -LiteralPath $ModulePath).ModuleVersion } catch { $null }
$results = [ordered]@{
    date = [DateTime]::UtcNow.ToString('o'); elapsed_seconds = $elapsed
    machine = [ordered]@{
        cpus = [Environment]::ProcessorCount
        cpu_model = (Get-Content /proc/cpuinfo | Where-Object { $_ -like 'model name*' } | Select-Object -First 1) -replace '^model name\s*:\s*', ''
        kernel = [Environment]::OSVersion.VersionString; load_average_before = $loadBefore; load_average_after = $loadAfter
        mem_available_mib = $memAvailMiB; big_reread_gb_per_s = $rereadGBps
    }
    versions = [ordered]@{ torch = $torchVersion; python = $python; powershell = "$($PSVersionTable.PSVersion)"; dotnet = [Environment]::Version.ToString(); torchload = "$moduleVersion"; module_path = $ModulePath }
    settings = [ordered]@{ rounds = $Rounds; warmup_rounds = $WarmupRounds; torch_load_kwargs = 'map_location="cpu", weights_only=False'
        timing = 'one process per measurement; untimed warm-up call on small.pt first; Stopwatch/perf_counter around the call only'
        peak = 'VmHWM after the call minus VmRSS before it, VmHWM reset via /proc/self/clear_refs' }
    files = [ordered]@{ big = [ordered]@{ path = $files.big.path; bytes = $files.big.bytes }; many = [ordered]@{ path = $files.many.path; bytes = $files.many.bytes } }
    cases = @($cases | ForEach-Object { [ordered]@{
        id = $_.Id; method = $_.Label; file = $_.File; items = $_.Items
        median_seconds = $_.Median; min_seconds = $_.Min; max_seconds = $_.Max; ratio_to_torch_load = $_.RatioToTorch
        peak_bytes_median = $_.PeakMedian; peak_bytes_max = $_.PeakMax; peak_ratio_to_torch_load = $_.PeakRatioToTorch
        seconds = @($_.Seconds); peak_bytes = @($_.Peak) } })
    dcp = if ($dcp) { [ordered]@{ torch = $dcp.torch; dir = $dcp.dir; eager_folder_to_file = $dcpRatio; list_10000_keys_seconds = $byId['list.manydcp'].Median } } else { $null }
    eager_big_to_memcpy = if ($eagerBig) { $eagerBig.Median / $memcpy }
    eager_big_to_memcpy_fresh = if ($eagerBig) { $eagerBig.Median / $memcpyFresh }
    stats_big_gb_per_s = if ($statsBig) { $files.big.bytes / 1e9 / $statsBig.Median }
    memcpy_gb_per_s = $files.big.bytes / 1e9 / $memcpy
    targets = @($targets | ForEach-Object { [ordered]@{ name = $_.name; value = $_.value; limit = $_.limit; pass = $_.pass } })
}
$jsonPath = Join-Path $WorkDir 'bench-results.json'
$results | ConvertTo-Json -Depth 6 | Set-Content -LiteralPath $jsonPath -Encoding utf8NoBOM
Write-Host "results: $jsonPath"
if ($FailOnMiss -and $missed) { exit 1 }
