#requires -Version 7.4
<#
.SYNOPSIS
    TorchLoad vs torch.load benchmark (issues 5, 12, 14, 15). Called by build.ps1 -Task Bench as
    bench/Invoke-Benchmark.ps1 -ModulePath <repo>/module/TorchLoad.psd1 -WorkDir <repo>/bench-out

.DESCRIPTION
    1. Makes sure Debian's PyTorch is there: when /usr/bin/python3 cannot import torch, runs
       apt-get update and apt-get install -y python3-torch python3-numpy (as root, or through sudo -n).
       Only /usr/bin/python3 is used for torch 1.13, never a python3 found on PATH. torch 2.6 is the python3
       of a Debian 13 root (-TrixieRoot, default /srv/trixie) run through chroot; without one, every torch 2.6
       case is skipped with a warning.
    2. Makes the inputs in DataDir if absent: bench/make_inputs.py (torch 1.13): big.pt (64 float32 tensors
       of 2048x2048, 1 GiB), many.pt (20,000 float32 tensors of shape (8,)), small.pt (warm-up file);
       bench/make_small_files.py (torch 2.6, or 1.13 without the root): small1000/ (1000 checkpoints of
       6.4 KB) and small1000-warmup/ (copies of the first 20). DataDir must be inside the Debian 13 root for
       the torch 2.6 cases; the chroot's python gets the path as seen from inside.
    3. Warms the page cache by reading the inputs once, and reports the speed of a second read of big.pt.
    4. Runs WarmupRounds discarded rounds, then Rounds measured rounds. Each round runs every warm case of the
       chosen groups (-Only) once, each in its own fresh process, in a new seeded random order every round,
       with a short pause between processes. Then the cold-cache cases in their own rounds (the page cache
       dropped before each), then the cache is warmed again. Every in-process measurement makes the same call
       once on a small input first, untimed, and times the one call only (Stopwatch / time.perf_counter);
       PowerShell children run the warm-up and the timed call through the same statements. Whole-process
       figures (cat, sha256sum, one-shot commands) are timed from outside by bench/time_command.sh.
    5. Prints every figure with its ratios to torch 1.13 and torch 2.6, PASS/MISS for each target of the
       chosen groups, and writes everything, raw samples included, to WorkDir/bench-results.json.

    The targets are ratios of medians taken from this one run, so machine load (other builds) affects
    both sides; the load average before and after the run is printed and saved. bench/README.md lists every
    case and target.

.EXAMPLE
    dotnet pwsh -NoProfile -File ./bench/Invoke-Benchmark.ps1 -ModulePath ./module/TorchLoad.psd1

.EXAMPLE
    dotnet pwsh -NoProfile -File ./bench/Invoke-Benchmark.ps1 -ModulePath ./module/TorchLoad.psd1 -Only Files,Hash -Rounds 1 -WarmupRounds 0
#>
[CmdletBinding()]
param(
    # The built module's manifest (./module/TorchLoad.psd1 after build.ps1 -Task Build).
    [Parameter(Mandatory)][string]$ModulePath,

    # Where bench-results.json and the compiled C program go. Default: <TrixieRoot>/tmp/torchload-bench when
    # the Debian 13 root exists (so the inputs there are visible to its torch 2.6), else ./bench-out.
    [string]$WorkDir,

    # Where the inputs lie. Default: WorkDir when the Debian 13 root can see it (or there is no root), else
    # <TrixieRoot>/tmp/torchload-bench (build.ps1 -Task Bench passes -WorkDir <repo>/bench-out).
    [string]$DataDir,

    # Measured rounds; the issue asks for medians of at least 5.
    [ValidateRange(1, 1000)][int]$Rounds = 5,

    # Rounds run first and thrown away (cold disk caches for pwsh/torch binaries, CPU frequency).
    [ValidateRange(0, 100)][int]$WarmupRounds = 1,

    # Also time torch 1.13's torch.load(weights_only=True) (informational).
    [switch]$TorchWeightsOnly,

    # Exit code 1 when a target is missed (by default the benchmark only reports).
    [switch]$FailOnMiss,

    # Per-child deadline.
    [int]$ChildTimeoutSec = 300,

    # A Debian 13 root with python3-torch 2.6 (and python3-safetensors for the Export case), used by chroot:
    # the torch 2.6 cases, the 1000 small files and the DCP inputs (bench/make_dcp_inputs.py).
    [string]$TrixieRoot = '/srv/trixie',

    # Which case groups (one or more): Load (torch.load 1.13 and 2.6 against Import-TorchCheckpoint / -Mmap /
    # Get-TorchStorage / Get-TorchTensor, the C limit, memcpy, DCP), Stats (issue 14), Files (1000 small
    # checkpoints in one process), Hash (CRC and SHA-256 against cat and sha256sum), Oneshot (whole
    # one-shot commands, Import-Module), Cold (cold page cache; root), Export (Export-TorchSafetensors,
    # information only), or All. Several: -Only Files,Hash (also as one comma-separated word under pwsh -File).
    [string[]]$Only = 'All',

    # A command line that runs a Python with another torch for the statistics comparison (e.g. 'chroot
    # /srv/trixie python3'); big.pt and bench/ must be visible to it at the same paths. Default: the bench's python.
    [string]$StatsPython
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$PSStyle.OutputRendering = 'PlainText'

$python = '/usr/bin/python3'           # Debian's python with python3-torch; never a python3 on PATH
$pwsh = Join-Path $PSHOME 'pwsh'        # [Environment]::ProcessPath is the dotnet host under `dotnet pwsh`
$bash = (Get-Command bash -CommandType Application -ErrorAction Stop | Select-Object -First 1).Source
$benchDir = $PSScriptRoot
$ModulePath = (Resolve-Path -LiteralPath $ModulePath).ProviderPath
foreach ($v in 'DOTNET_CLI_TELEMETRY_OPTOUT', 'POWERSHELL_TELEMETRY_OPTOUT', 'NO_COLOR', 'DOTNET_NOLOGO') { Set-Item "env:$v" '1' }
$env:POWERSHELL_UPDATECHECK = 'Off'

$allGroups = 'Load', 'Stats', 'Files', 'Hash', 'Oneshot', 'Cold', 'Export'
$Only = @($Only | ForEach-Object { $_ -split ',' } | ForEach-Object Trim | Where-Object { $_ })
foreach ($o in $Only) { if ($o -notin @('All') + $allGroups) { throw "-Only: '$o' is not one of All, $($allGroups -join ', ')." } }
$groups = if ('All' -in $Only) { $allGroups } else { @($allGroups | Where-Object { $_ -in $Only }) }
function Test-Group([string]$Name) { $Name -in $groups }

function Write-Step([string]$Text) { Write-Host "==> $Text" }

# --- Places: the Debian 13 root, WorkDir, DataDir ------------------------------------------------------------
$hasRoot = Test-Path -LiteralPath (Join-Path $TrixieRoot 'usr/bin/python3')
if ($hasRoot) { $TrixieRoot = (Resolve-Path -LiteralPath $TrixieRoot).ProviderPath.TrimEnd('/') }
function Get-InsidePath([string]$Outside) {
    # The path the chroot's processes see for a path under the root; $null when it is not under the root.
    if (-not $hasRoot) { return $null }
    $rel = [IO.Path]::GetRelativePath($TrixieRoot, [IO.Path]::GetFullPath($Outside))
    if ($rel -eq '.' ) { return '/' }
    if ($rel.StartsWith('..') -or [IO.Path]::IsPathRooted($rel)) { return $null }
    '/' + $rel
}
$defaultInRoot = if ($hasRoot) { Join-Path $TrixieRoot 'tmp/torchload-bench' }
if (-not $WorkDir) { $WorkDir = if ($hasRoot) { $defaultInRoot } else { Join-Path $PSScriptRoot '../bench-out' } }
$null = New-Item -ItemType Directory -Force -Path $WorkDir
$WorkDir = (Resolve-Path -LiteralPath $WorkDir).ProviderPath
if (-not $DataDir) { $DataDir = if (-not $hasRoot -or (Get-InsidePath $WorkDir)) { $WorkDir } else { $defaultInRoot } }
$null = New-Item -ItemType Directory -Force -Path $DataDir
$DataDir = (Resolve-Path -LiteralPath $DataDir).ProviderPath
$has26 = $false
if (-not $hasRoot) {
    Write-Warning "No Debian 13 root with python3 at '$TrixieRoot': every torch 2.6 case (and DCP) is skipped; the targets against torch 2.6 are not checked."
} elseif (-not (Get-InsidePath $DataDir)) {
    Write-Warning "DataDir '$DataDir' is outside the Debian 13 root '$TrixieRoot': torch 2.6 cannot read the inputs, every torch 2.6 case is skipped."
} else { $has26 = $true }

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

function Get-Quoted([string]$Text) { "'" + $Text.Replace("'", "''") + "'" }   # a PowerShell string literal

# --- 1. PyTorch: Debian 12's 1.13 here, Debian 13's 2.6 in the root --------------------------------------------
& (Join-Path $PSScriptRoot '../build/Install-DebianTorch.ps1') -Python $python
$torch26Version = $null
$py26Scripts = $null          # bench/*.py as seen from inside the root
if ($has26) {
    $scriptsOut = Join-Path $DataDir 'scripts'
    $null = New-Item -ItemType Directory -Force -Path $scriptsOut
    Copy-Item -Path (Join-Path $benchDir '*.py') -Destination $scriptsOut -Force
    $py26Scripts = Get-InsidePath $scriptsOut
    $v = Invoke-Process 'chroot' @($TrixieRoot, 'python3', '-c', 'import json, torch; print(json.dumps({"torch": torch.__version__}))') -TimeoutSec 120
    if ($v.ExitCode) {
        Write-Warning "chroot $TrixieRoot python3 cannot import torch (exit $($v.ExitCode)): every torch 2.6 case is skipped.`n$($v.Stderr)"
        $has26 = $false
    } else { $torch26Version = (Get-JsonLine $v 'torch 2.6 version').torch }
}
function Get-Py26Args([string]$Script, [string[]]$ArgList) {
    # chroot <root> python3 <inside script> <args>: the arguments are inside paths already
    @($TrixieRoot, 'python3', "$py26Scripts/$Script") + $ArgList
}

# --- 2. Inputs -------------------------------------------------------------------------------------------------
Write-Step "inputs in $DataDir (bench/make_inputs.py with $python; written only if absent)"
$made = Get-JsonLine (Invoke-Process $python @((Join-Path $benchDir 'make_inputs.py'), $DataDir) -TimeoutSec 900) 'make_inputs.py'
$torchVersion = $made.torch
$files = [ordered]@{
    big  = [ordered]@{ name = 'big.pt'; path = Join-Path $DataDir 'big.pt'; label = '1 GiB (64 x 16 MiB)' }
    many = [ordered]@{ name = 'many.pt'; path = Join-Path $DataDir 'many.pt'; label = '20,000 tensors' }
}
$small = Join-Path $DataDir 'small.pt'
foreach ($f in $files.Values) { $f.bytes = (Get-Item -LiteralPath $f.path).Length; $f.inside = Get-InsidePath $f.path }
$smallInside = Get-InsidePath $small

$smallDir = Join-Path $DataDir 'small1000'
$smallWarmDir = Join-Path $DataDir 'small1000-warmup'
$smallFilesBytes = $null
if (Test-Group 'Files') {
    $gen = if ($has26) {
        Write-Step "1000 small checkpoints in $smallDir (bench/make_small_files.py with torch $torch26Version in $TrixieRoot; written only if absent)"
        Invoke-Process 'chroot' (Get-Py26Args 'make_small_files.py' @(Get-InsidePath $smallDir)) -TimeoutSec 900
    } else {
        Write-Step "1000 small checkpoints in $smallDir (bench/make_small_files.py with $python; written only if absent)"
        Invoke-Process $python @((Join-Path $benchDir 'make_small_files.py'), $smallDir) -TimeoutSec 900
    }
    $smallFilesBytes = (Get-JsonLine $gen 'make_small_files.py').bytes
    # the Get-ChildItem pipeline's warm-up folder: copies of the first 20 files
    $first20 = @(Get-ChildItem -LiteralPath $smallDir -Filter *.pt -File | Sort-Object Name | Select-Object -First 20)
    $null = New-Item -ItemType Directory -Force -Path $smallWarmDir
    foreach ($f in $first20) { if (-not (Test-Path -LiteralPath (Join-Path $smallWarmDir $f.Name))) { Copy-Item -LiteralPath $f.FullName -Destination $smallWarmDir } }
}

# DCP inputs (issue 12): made with torch 2.6 inside the chroot, used where they lie
$dcp = $null
if ((Test-Group 'Load') -and $has26) {
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
} elseif (Test-Group 'Load') {
    Write-Warning 'No torch 2.6: the DCP cases are skipped.'
}

# The C limit program (Load): compiled once per run
$readLimit = $null
if (Test-Group 'Load') {
    $cc = Get-Command cc, gcc -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if (-not $cc) {
        Write-Warning 'No C compiler (cc, gcc): the C limit case is skipped.'
    } else {
        $readLimit = Join-Path $WorkDir 'read_limit'
        $r = Invoke-Process $cc.Source @('-O2', '-pthread', '-o', $readLimit, (Join-Path $benchDir 'read_limit.c')) -TimeoutSec 120
        if ($r.ExitCode) { Write-Warning "$($cc.Source) -O2 -pthread read_limit.c failed (exit $($r.ExitCode)): the C limit case is skipped.`n$($r.Stderr)"; $readLimit = $null }
        else { Write-Step "bench/read_limit.c compiled with $($cc.Source) -O2 -pthread into $readLimit" }
    }
}

# Cold cache (Cold): root, to drop the page cache
$canDrop = $false
if (Test-Group 'Cold') {
    $canDrop = ((& id -u) -eq '0') -and (Test-Path -LiteralPath /proc/sys/vm/drop_caches)
    if (-not $canDrop) { Write-Warning 'Not root (or no /proc/sys/vm/drop_caches): the cold-cache cases are skipped.' }
}

# --- 3. Page cache ---------------------------------------------------------------------------------------------
$readBuffer = [byte[]]::new(16MB)
function Read-Whole([string]$Path) {
    $buf = $script:readBuffer
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $fs = [IO.File]::OpenRead($Path)
    try { while ($fs.Read($buf, 0, $buf.Length) -gt 0) { } } finally { $fs.Dispose() }
    $sw.Elapsed.TotalSeconds
}
function Read-Inputs {
    foreach ($f in $files.Values) { $null = Read-Whole $f.path }
    $null = Read-Whole $small
    foreach ($d in $smallDir, $smallWarmDir) { if (Test-Path -LiteralPath $d) { Get-ChildItem -LiteralPath $d -File | ForEach-Object { $null = Read-Whole $_.FullName } } }
    if ($dcp) { foreach ($f in $dcpFiles.Values) { Get-ChildItem -LiteralPath $f.path -File -Recurse -Force | ForEach-Object { $null = Read-Whole $_.FullName } } }
}
Read-Inputs
$reread = Read-Whole $files.big.path
$rereadGBps = $files.big.bytes / $reread / 1e9
$memAvailMiB = [long](((Get-Content /proc/meminfo | Where-Object { $_ -like 'MemAvailable:*' }) -split '\s+')[1]) / 1024
$thp = try { (Get-Content -Raw /sys/kernel/mm/transparent_hugepage/enabled).Trim() } catch { 'unknown' }
Write-Step ('page cache warmed: the inputs read once; second read of big.pt {0:N2} GB/s; MemAvailable {1:N0} MiB; transparent huge pages: {2}' -f $rereadGBps, $memAvailMiB, $thp)
if ($rereadGBps -lt 1) { Write-Warning 'big.pt re-read slower than 1 GB/s: it may not fit in the page cache; warm figures then include disk reads.' }

# --- 4. Cases --------------------------------------------------------------------------------------------------
$childScript = Join-Path $benchDir 'Measure-Child.ps1'
$timeScript = Join-Path $benchDir 'torch_load_time.py'
$statsScript = Join-Path $benchDir 'torch_stats_time.py'
$filesScript = Join-Path $benchDir 'torch_files_time.py'
$timeCommand = Join-Path $benchDir 'time_command.sh'
$cases = [System.Collections.Generic.List[object]]::new()
function Add-Case {
    # Group: the section it is printed in; File: the file column; Expected: the item count the result must
    # have (null: not checked); Ref13/Ref26: ids of the cases its "x 1.13" / "x 2.6" ratios are taken to;
    # Cold: run in the cold rounds; Cleanup: files deleted after each run.
    param([string]$Id, [string]$Group, [string]$File, [string]$Label, [string]$Exe, [string[]]$ArgList,
        [object]$Expected, [string]$Ref13, [string]$Ref26, [switch]$Cold, [string[]]$Cleanup)
    $cases.Add([pscustomobject]@{ Id = $Id; Group = $Group; File = $File; Label = $Label; Exe = $Exe; Args = $ArgList
        Expected = $Expected; Ref13 = $Ref13; Ref26 = $Ref26; Cold = [bool]$Cold; Cleanup = $Cleanup
        Seconds = [System.Collections.Generic.List[double]]::new(); Peak = [System.Collections.Generic.List[double]]::new(); Items = $null; Extra = $null })
}
function Get-ChildArgs([string]$Method, [string]$Path, [string]$WarmupPath, [string[]]$More) {
    @('-NoProfile', '-NonInteractive', '-File', $childScript, '-Method', $Method, '-ModulePath', $ModulePath) +
        $(if ($Path) { @('-Path', $Path) } else { @() }) + $(if ($WarmupPath) { @('-WarmupPath', $WarmupPath) } else { @() }) + @($More | Where-Object { $_ })
}
$expectedItems = @{ big = 64; many = 20000 }

if (Test-Group 'Load') {
    foreach ($k in $files.Keys) {
        $f = $files[$k]; $p = $f.path; $n = $expectedItems[$k]
        $refs = @{ Ref13 = "torch.$k"; Ref26 = $(if ($has26) { "t26.$k" }) }
        Add-Case "torch.$k" 'Load' $f.name 'torch 1.13 torch.load(weights_only=False)' $python @($timeScript, $p, $small) $n @refs
        if ($TorchWeightsOnly) { Add-Case "torchwo.$k" 'Load' $f.name 'torch 1.13 torch.load(weights_only=True)' $python @($timeScript, $p, $small, '--weights-only') $n @refs }
        if ($has26) {
            Add-Case "t26.$k" 'Load' $f.name 'torch 2.6 torch.load (default: weights_only)' 'chroot' (Get-Py26Args 'torch_load_time.py' @($f.inside, $smallInside, '--default')) $n @refs
            Add-Case "t26full.$k" 'Load' $f.name 'torch 2.6 torch.load(weights_only=False)' 'chroot' (Get-Py26Args 'torch_load_time.py' @($f.inside, $smallInside)) $n @refs
            if ($k -eq 'big') { Add-Case "t26mmap.$k" 'Load' $f.name 'torch 2.6 torch.load(mmap=True)' 'chroot' (Get-Py26Args 'torch_load_time.py' @($f.inside, $smallInside, '--default', '--mmap')) $n @refs }
        }
        Add-Case "eager.$k" 'Load' $f.name 'Import-TorchCheckpoint' $pwsh (Get-ChildArgs 'Eager' $p $small) $n @refs
        Add-Case "mmap.$k" 'Load' $f.name 'Import-TorchCheckpoint -Mmap' $pwsh (Get-ChildArgs 'Mmap' $p $small) $n @refs
        Add-Case "storage.$k" 'Load' $f.name 'Get-TorchStorage -Path' $pwsh (Get-ChildArgs 'Storage' $p $small) $n @refs
        if ($k -eq 'big') {
            Add-Case "list.$k" 'Load' $f.name 'Get-TorchTensor (no -Hash)' $pwsh (Get-ChildArgs 'List' $p $small) $n @refs
            if ($readLimit) {
                Add-Case 'climit.big' 'Load' $f.name 'C limit: 2 threads pread + POPULATE_WRITE' $readLimit @($p) $null @refs
                Add-Case 'cplain.big' 'Load' $f.name 'C: 2 threads pread, no madvise (info)' $readLimit @($p, '--no-populate') $null @refs
            }
        }
    }
}
if ($dcp) {
    $smallDcp = Join-Path $dcp.dir 'small_dcp'
    Add-Case 'eager.big26' 'DCP' $dcpFiles.big26.name 'Import-TorchCheckpoint' $pwsh (Get-ChildArgs 'Eager' $dcpFiles.big26.path $small) 64
    Add-Case 'eager.bigdcp' 'DCP' $dcpFiles.bigdcp.name 'Import-TorchCheckpoint' $pwsh (Get-ChildArgs 'Eager' $dcpFiles.bigdcp.path $smallDcp) 64
    Add-Case 'list.manydcp' 'DCP' $dcpFiles.manydcp.name 'Get-TorchTensor (no -Hash)' $pwsh (Get-ChildArgs 'List' $dcpFiles.manydcp.path $smallDcp) 10000
}
if (Test-Group 'Stats') {
    $p = $files.big.path
    $statsExe, $statsPre = if ($StatsPython) { $w = -split $StatsPython; $w[0], @($w | Select-Object -Skip 1) } else { $python, @() }
    # with -StatsPython (documented for torch 2.6 in the root) its row is the "x 2.6" reference, the bench's python the "x 1.13" one
    $statsRefs = if ($StatsPython) { @{ Ref13 = 'torchstats.default.big'; Ref26 = 'torchstats.big' } } else { @{ Ref13 = 'torchstats.big' } }
    Add-Case 'torchstats.big' 'Stats' 'big.pt' $(if ($StatsPython) { 'torch statistics, -StatsPython' } else { 'torch statistics' }) $statsExe (@($statsPre) + @($statsScript, $p, $small)) 64 @statsRefs
    if ($StatsPython) { Add-Case 'torchstats.default.big' 'Stats' 'big.pt' 'torch statistics, bench python' $python @($statsScript, $p, $small) 64 @statsRefs }
    Add-Case 'stats.big' 'Stats' 'big.pt' 'Measure-TorchTensor -LiteralPath' $pwsh (Get-ChildArgs 'Stats' $p $small) 64 @statsRefs
    Add-Case 'statsloaded.big' 'Stats' 'big.pt' 'Measure-TorchTensor, loaded object' $pwsh (Get-ChildArgs 'StatsLoaded' $p $small) 64 @statsRefs
}
if ((Test-Group 'Load') -or (Test-Group 'Stats')) {
    Add-Case 'memcpy' 'Memcpy' '(RAM)' 'memcpy 1 GiB (Buffer.MemoryCopy)' $pwsh (Get-ChildArgs 'Memcpy')
    Add-Case 'memcpy.fresh' 'Memcpy' '(RAM)' 'memcpy 1 GiB into new memory' $pwsh (Get-ChildArgs 'MemcpyFresh')
}
if (Test-Group 'Files') {
    $refs = @{ Ref13 = 'f13.load'; Ref26 = $(if ($has26) { 'f26.load' }) }
    $dirIn = Get-InsidePath $smallDir
    if ($has26) {
        Add-Case 'f26.unsafe' 'Files' 'small1000/' 'torch 2.6 get_unsafe_globals_in_checkpoint loop' 'chroot' (Get-Py26Args 'torch_files_time.py' @($dirIn, 'unsafe')) 1000 @refs
        Add-Case 'f26.load' 'Files' 'small1000/' 'torch 2.6 torch.load(weights_only=False) loop' 'chroot' (Get-Py26Args 'torch_files_time.py' @($dirIn, 'load')) 1000 @refs
        Add-Case 'f26.default' 'Files' 'small1000/' 'torch 2.6 torch.load (default) loop' 'chroot' (Get-Py26Args 'torch_files_time.py' @($dirIn, 'default')) 1000 @refs
    }
    Add-Case 'f13.load' 'Files' 'small1000/' 'torch 1.13 torch.load(weights_only=False) loop' $python @($filesScript, $smallDir, 'load') 1000 @refs
    Add-Case 'files.test' 'Files' 'small1000/' 'Test-TorchCheckpoint -LiteralPath $files' $pwsh (Get-ChildArgs 'TestFiles' $smallDir) 1000 @refs
    Add-Case 'files.skipcrc' 'Files' 'small1000/' 'Test-TorchCheckpoint -LiteralPath $files -SkipCrc' $pwsh (Get-ChildArgs 'TestFilesSkipCrc' $smallDir) 1000 @refs
    Add-Case 'files.import' 'Files' 'small1000/' 'Import-TorchCheckpoint -LiteralPath $files' $pwsh (Get-ChildArgs 'ImportFiles' $smallDir) 1000 @refs
    Add-Case 'files.gci' 'Files' 'small1000/' 'Get-ChildItem | Test-TorchCheckpoint' $pwsh (Get-ChildArgs 'TestDir' $smallDir $smallWarmDir) 1000 @refs
    # the same listing passed as an array: what piping adds, both sides listing the folder inside the timer
    Add-Case 'files.gciarray' 'Files' 'small1000/' 'Test-TorchCheckpoint -LiteralPath (Get-ChildItem).FullName' $pwsh (Get-ChildArgs 'TestDirArray' $smallDir $smallWarmDir) 1000 @refs
}
if (Test-Group 'Hash') {
    $p = $files.big.path
    Add-Case 'cat.big' 'Hash' 'big.pt' 'cat big.pt > /dev/null (process)' $bash @($timeCommand, 'cat', $p)
    Add-Case 'sha256sum.big' 'Hash' 'big.pt' 'sha256sum big.pt (process)' $bash @($timeCommand, 'sha256sum', $p)
    Add-Case 'test.big' 'Hash' 'big.pt' 'Test-TorchCheckpoint (CRC)' $pwsh (Get-ChildArgs 'Test' $p $small) 1
    Add-Case 'hash.big' 'Hash' 'big.pt' 'Get-TorchTensor -Hash' $pwsh (Get-ChildArgs 'Hash' $p $small) 64
}
if (Test-Group 'Oneshot') {
    $refs = @{ Ref13 = 'os.py13'; Ref26 = $(if ($has26) { 'os.py26' }) }
    Add-Case 'os.pwsh' 'Oneshot' 'small.pt' 'pwsh -c "Import-Module; Import-TorchCheckpoint"' $bash @($timeCommand, $pwsh, '-NoProfile', '-c', "Import-Module $(Get-Quoted $ModulePath); Import-TorchCheckpoint $(Get-Quoted $small)") $null @refs
    Add-Case 'os.pwshexit' 'Oneshot' '-' 'pwsh -NoProfile -c exit (info)' $bash @($timeCommand, $pwsh, '-NoProfile', '-c', 'exit') $null @refs
    if ($has26) {
        Add-Case 'os.py26' 'Oneshot' 'small.pt' 'chroot: python3 -c "import torch; torch.load"' $bash @($timeCommand, 'chroot', $TrixieRoot, 'python3', '-c', "import torch; torch.load('$smallInside')") $null @refs
        Add-Case 'os.py26pass' 'Oneshot' '-' 'chroot: python3 -c pass (info)' $bash @($timeCommand, 'chroot', $TrixieRoot, 'python3', '-c', 'pass') $null @refs
    }
    Add-Case 'os.py13' 'Oneshot' 'small.pt' 'torch 1.13: python3 -c "...torch.load" (info)' $bash @($timeCommand, $python, '-c', "import torch; torch.load('$small')") $null @refs
    Add-Case 'importmodule' 'Oneshot' '-' 'Import-Module (Stopwatch in a fresh pwsh)' $pwsh (Get-ChildArgs 'ImportModule') $null
}
if (Test-Group 'Export') {
    $p = $files.big.path
    $out = Join-Path $DataDir 'export-out.safetensors'
    $refs = @{ Ref13 = $null; Ref26 = $(if ($has26) { 'export26.big' }) }
    Add-Case 'export.big' 'Export' 'big.pt' 'Export-TorchSafetensors -LiteralPath' $pwsh (Get-ChildArgs 'Export' $p $small @('-OutPath', $out)) $null @refs -Cleanup @($out, "$out.warmup")
    if ($has26) {
        $outIn = Get-InsidePath $out
        Add-Case 'export26.big' 'Export' 'big.pt' 'torch 2.6 save_file(torch.load(...))' 'chroot' (Get-Py26Args 'torch_export_time.py' @($files.big.inside, $outIn, $smallInside, "$outIn.warmup")) 64 @refs -Cleanup @($out, "$out.warmup")
    }
}
if ((Test-Group 'Cold') -and $canDrop) {
    $p = $files.big.path
    $refs = @{ Ref13 = $null; Ref26 = $(if ($has26) { 'cold.t26' }) }
    Add-Case 'cold.cat' 'Cold' 'big.pt' 'cold: cat big.pt > /dev/null (process)' $bash @($timeCommand, '--drop-caches', 'cat', $p) $null @refs -Cold
    if ($has26) { Add-Case 'cold.t26' 'Cold' 'big.pt' 'cold: torch 2.6 torch.load (default)' 'chroot' (Get-Py26Args 'torch_load_time.py' @($files.big.inside, $smallInside, '--default', '--drop-caches')) 64 @refs -Cold }
    Add-Case 'cold.eager' 'Cold' 'big.pt' 'cold: Import-TorchCheckpoint' $pwsh (Get-ChildArgs 'Eager' $p $small @('-DropCaches')) 64 @refs -Cold
}
if (-not $cases.Count) { throw "No case to run for -Only $($Only -join ',')." }

# --- 5. Rounds -------------------------------------------------------------------------------------------------
function Invoke-Rounds([object[]]$Set, [string]$Kind) {
    for ($round = 1 - $WarmupRounds; $round -le $Rounds; $round++) {
        # A new order every round (seeded, so runs repeat): no case always follows the same one. A case
        # right after a process that freed 1-2 GiB pays for the kernel reclaiming that memory; with a fixed
        # rotation that cost always landed on the same method.
        $order = @($Set | Get-Random -Shuffle -SetSeed (7919 * ($round + 100)))
        $parts = foreach ($c in $order) {
            Start-Sleep -Milliseconds 500   # let the previous process's memory settle
            $m = try { Get-JsonLine (Invoke-Process $c.Exe $c.Args) "$($c.Id) (round $round)" }
                 finally { foreach ($x in @($c.Cleanup | Where-Object { $_ })) { Remove-Item -LiteralPath $x -Force -ErrorAction Ignore } }
            if ($round -ge 1) {
                $c.Seconds.Add([double]$m.seconds)
                if ($m.PSObject.Properties['peak_bytes_above_baseline'] -and $null -ne $m.peak_bytes_above_baseline) { $c.Peak.Add([double]$m.peak_bytes_above_baseline) }
                $c.Items = if ($m.PSObject.Properties['items']) { $m.items }
                $c.Extra = $m
                if ($null -ne $c.Expected -and $c.Items -ne $c.Expected) { Write-Warning "$($c.Id): $($c.Items) items, expected $($c.Expected)" }
            }
            '{0} {1:N1}' -f $c.Id, ([double]$m.seconds * 1000)
        }
        $tag = if ($round -ge 1) { "$Kind round $round/$Rounds" } else { "$Kind warm-up round" }
        Write-Host ("  {0} (ms): {1}" -f $tag, ($parts -join ' | '))
    }
}

$warmCases = @($cases | Where-Object { -not $_.Cold })
$coldCases = @($cases | Where-Object { $_.Cold })
$loadBefore = Get-LoadAverage
Write-Step "groups $($groups -join ', '): $WarmupRounds warm-up round(s) (discarded), then $Rounds measured rounds of $($warmCases.Count) warm cases$(if ($coldCases) { " and of $($coldCases.Count) cold cases" }), one process each, shuffled; load average $loadBefore"
if ($Rounds -lt 5) { Write-Warning "Fewer than 5 rounds: the issue's targets call for medians of at least 5." }
$started = [DateTime]::UtcNow
if ($warmCases) { Invoke-Rounds $warmCases 'warm' }
if ($coldCases) {
    Write-Step 'cold-cache rounds: each case drops the page cache (sync; echo 3 > /proc/sys/vm/drop_caches) right before its timed part'
    try { Invoke-Rounds $coldCases 'cold' }
    finally {
        Read-Inputs
        Write-Step 'page cache warmed again (the inputs read once)'
    }
}
$loadAfter = Get-LoadAverage
$elapsed = ([DateTime]::UtcNow - $started).TotalSeconds

# --- 6. Report -------------------------------------------------------------------------------------------------
foreach ($c in $cases) {
    $c | Add-Member -NotePropertyMembers @{
        Median = Get-Median $c.Seconds; Min = ($c.Seconds | Measure-Object -Minimum).Minimum; Max = ($c.Seconds | Measure-Object -Maximum).Maximum
        PeakMedian = if ($c.Peak.Count) { Get-Median $c.Peak } else { $null }
        PeakMax = if ($c.Peak.Count) { ($c.Peak | Measure-Object -Maximum).Maximum } else { $null }
    }
}
$byId = @{}; foreach ($c in $cases) { $byId[$c.Id] = $c }
function Get-Ratio([string]$Id, [string]$RefId) {
    # median(Id) / median(RefId); $null when either case did not run
    if (-not $Id -or -not $RefId -or -not $byId.ContainsKey($Id) -or -not $byId.ContainsKey($RefId)) { return $null }
    $byId[$Id].Median / $byId[$RefId].Median
}
function Get-PeakRatio($Case, [string]$RefId) {
    if (-not $RefId -or -not $byId.ContainsKey($RefId) -or $null -eq $Case.PeakMedian -or -not $byId[$RefId].PeakMedian) { return $null }
    $Case.PeakMedian / $byId[$RefId].PeakMedian
}
foreach ($c in $cases) {
    $c | Add-Member -NotePropertyMembers @{
        RatioTo13 = Get-Ratio $c.Id $c.Ref13; RatioTo26 = Get-Ratio $c.Id $c.Ref26
        PeakRatioTo13 = Get-PeakRatio $c $c.Ref13; PeakRatioTo26 = Get-PeakRatio $c $c.Ref26
    }
}
function Get-Median-Of([string]$Id) { if ($byId.ContainsKey($Id)) { $byId[$Id].Median } }
$gbBig = $files.big.bytes / 1e9
$memcpy = Get-Median-Of 'memcpy'
$eagerBig = $byId['eager.big']
$statsBig = $byId['stats.big']

Write-Host ''
Write-Host "TorchLoad benchmark: medians of $Rounds rounds (+$WarmupRounds discarded), each figure the call alone in its own process unless marked (process)"
Write-Host ("torch {0} via {1}; {2}; PowerShell {3}; {4} CPUs; load average {5} before, {6} after; {7:N0} s" -f $torchVersion, $python,
    $(if ($torch26Version) { "torch $torch26Version via chroot $TrixieRoot python3" } else { 'no torch 2.6' }), $PSVersionTable.PSVersion, [Environment]::ProcessorCount, $loadBefore, $loadAfter, $elapsed)
Write-Host "inputs: $DataDir; results: $WorkDir"
$fmt = '{0,-11} {1,-50} {2,10:N2} {3,10:N2} {4,10:N2} {5,8} {6,8} {7,9:N1} {8,9:N1} {9,8} {10,8}'
$groupTitles = [ordered]@{
    Load = 'Load (warm page cache; x 1.13 / x 2.6: median / torch.load of that torch on the same file)'
    DCP = 'DCP (issue 12)'
    Stats = 'Statistics (issue 14)'
    Memcpy = 'memcpy'
    Files = '1000 small checkpoints in one process (x 1.13 / x 2.6: against that torch''s torch.load(weights_only=False) loop)'
    Hash = 'CRC and hashes (warm page cache)'
    Oneshot = 'One-shot commands, whole process timed from outside (x 1.13 / x 2.6: against python3 -c "import torch; torch.load")'
    Export = 'Export to safetensors (information; x 2.6: against torch 2.6 + safetensors)'
    Cold = 'Cold page cache (dropped before each timed part; x 2.6: against torch 2.6 torch.load cold)'
}
function Format-Ratio($v) { if ($null -ne $v) { '{0:N3}x' -f $v } else { '-' } }
Write-Host ''
Write-Host ($fmt -f 'file', 'method', 'median ms', 'min ms', 'max ms', 'x 1.13', 'x 2.6', 'peak MiB', 'peak max', 'peak/1.13', 'peak/2.6')
Write-Host ($fmt -f '----', '------', '---------', '------', '------', '------', '-----', '--------', '--------', '---------', '--------')
foreach ($g in $groupTitles.Keys) {
    $inGroup = @($cases | Where-Object Group -EQ $g)
    if (-not $inGroup) { continue }
    Write-Host "-- $($groupTitles[$g])"
    foreach ($c in $inGroup) {
        Write-Host ($fmt -f $c.File, $c.Label, ($c.Median * 1000), ($c.Min * 1000), ($c.Max * 1000),
            (Format-Ratio $c.RatioTo13), (Format-Ratio $c.RatioTo26),
            ($null -ne $c.PeakMedian ? ($c.PeakMedian / 1MB) : '-'), ($null -ne $c.PeakMax ? ($c.PeakMax / 1MB) : '-'),
            (Format-Ratio $c.PeakRatioTo13), (Format-Ratio $c.PeakRatioTo26))
    }
}
Write-Host ''
$memcpyFresh = Get-Median-Of 'memcpy.fresh'
if ($eagerBig -and $memcpy) {
    Write-Host ('eager 1 GiB / memcpy 1 GiB: {0:N2}x   (memcpy median {1:N1} ms; the target uses this one)' -f ($eagerBig.Median / $memcpy), ($memcpy * 1000))
    Write-Host ('eager 1 GiB / memcpy 1 GiB into new memory: {0:N2}x   (median {1:N1} ms; for information: the same page faults a load pays)' -f ($eagerBig.Median / $memcpyFresh), ($memcpyFresh * 1000))
}
if ($eagerBig -and $byId['climit.big']) {
    Write-Host ('eager 1 GiB / C limit: {0:N2}x   (C limit median {1:N1} ms = {2:N2} GB/s: 2 threads pread 4 MiB chunks, MADV_POPULATE_WRITE per chunk; without madvise {3:N1} ms; THP {4})' -f
        ($eagerBig.Median / $byId['climit.big'].Median), ($byId['climit.big'].Median * 1000), ($gbBig / $byId['climit.big'].Median), ($byId['cplain.big'].Median * 1000), $thp)
}
if ($statsBig) {
    $gbm = if ($memcpy) { '{0:N2}' -f ($gbBig / $memcpy) } else { '-' }
    Write-Host ('statistics of 1 GiB: Measure-TorchTensor {0:N2} GB/s with the load, {1:N2} GB/s on a loaded object; memcpy 1 GiB {2} GB/s; torch statistics {3:N2} GB/s' -f ($gbBig / $statsBig.Median), ($gbBig / $byId['statsloaded.big'].Median), $gbm, ($gbBig / $byId['torchstats.big'].Median))
}
if ($dcp) {
    $dcpRatio = $byId['eager.bigdcp'].Median / $byId['eager.big26'].Median
    Write-Host ('DCP (torch {0}): eager 1 GiB folder / the same state dict as a torch.save file: {1:N3}x; Get-TorchTensor on a 10,000-key folder: {2:N1} ms' -f $dcp.torch, $dcpRatio, ($byId['list.manydcp'].Median * 1000))
}
if ($byId['cat.big']) {
    Write-Host ('warm reads of 1 GiB: cat {0:N2} GB/s, sha256sum {1:N2} GB/s, Test-TorchCheckpoint (CRC) {2:N2} GB/s, Get-TorchTensor -Hash {3:N2} GB/s' -f
        ($gbBig / $byId['cat.big'].Median), ($gbBig / $byId['sha256sum.big'].Median), ($gbBig / $byId['test.big'].Median), ($gbBig / $byId['hash.big'].Median))
}
if ($byId['cold.cat']) {
    Write-Host ('cold reads of 1 GiB: cat {0:N2} GB/s (the disk), Import-TorchCheckpoint {1:N2} GB/s{2}' -f ($gbBig / $byId['cold.cat'].Median), ($gbBig / $byId['cold.eager'].Median),
        $(if ($byId['cold.t26']) { ', torch 2.6 torch.load {0:N2} GB/s' -f ($gbBig / $byId['cold.t26'].Median) } else { '' }))
}
if ($byId['os.pwsh']) {
    Write-Host ('one-shot process start-up alone: pwsh -NoProfile -c exit {0:N1} ms{1}; Import-Module in a fresh pwsh {2:N1} ms' -f ($byId['os.pwshexit'].Median * 1000),
        $(if ($byId['os.py26pass']) { '; chroot {0} python3 -c pass {1:N1} ms (the chroot adds one fork/exec)' -f $TrixieRoot, ($byId['os.py26pass'].Median * 1000) } else { '' }), ($byId['importmodule'].Median * 1000))
}
Write-Host ('file sizes: big.pt {0:N0} bytes ({1:N1} MiB), many.pt {2:N0} bytes ({3:N1} MiB){4}' -f $files.big.bytes, ($files.big.bytes / 1MB), $files.many.bytes, ($files.many.bytes / 1MB),
    $(if ($smallFilesBytes) { ', small1000/ {0:N0} bytes in 1000 files' -f $smallFilesBytes } else { '' }))
Write-Host ''

# Targets. value/limit: 'le' passes when value <= limit, 'ge' when value >= limit. A target whose cases did not
# run (no torch 2.6, no compiler, not root) is listed as SKIP and not counted.
$targets = [System.Collections.Generic.List[object]]::new()
function Add-Target([string]$Name, $Value, [double]$Limit, [string]$Unit = 'x', [string]$Dir = 'le', [string]$Skip) {
    $targets.Add([pscustomobject]@{ name = $Name; value = $Value; limit = $Limit; unit = $Unit; dir = $Dir
        pass = if ($null -eq $Value) { $null } elseif ($Dir -eq 'ge') { $Value -ge $Limit } else { $Value -le $Limit }
        skipped = $(if ($null -eq $Value) { $Skip ?? 'its cases did not run' }) })
}
$no26 = 'no torch 2.6 (Debian 13 root)'
if (Test-Group 'Load') {
    Add-Target 'eager 1 GiB time <= 0.5x torch 1.13 torch.load' (Get-Ratio 'eager.big' 'torch.big') 0.5
    Add-Target 'eager 1 GiB time <= 2x memcpy' (Get-Ratio 'eager.big' 'memcpy') 2.0
    Add-Target '-Mmap 1 GiB time <= 0.05x torch 1.13 torch.load' (Get-Ratio 'mmap.big' 'torch.big') 0.05
    Add-Target 'eager 20,000 tensors time <= 0.25x torch 1.13 torch.load' (Get-Ratio 'eager.many' 'torch.many') 0.25
    Add-Target '-Mmap 20,000 tensors time <= 0.25x torch 1.13 torch.load' (Get-Ratio 'mmap.many' 'torch.many') 0.25
    Add-Target 'eager 1 GiB peak memory <= file size + 100 MiB' ($eagerBig.PeakMedian / 1MB) (($files.big.bytes + 100MB) / 1MB) ' MiB'
    Add-Target '-Mmap 1 GiB peak memory <= 100 MiB' ($byId['mmap.big'].PeakMedian / 1MB) 100.0 ' MiB'
    Add-Target '-Mmap 1 GiB <= 0.5x torch 2.6 torch.load(mmap=True)' (Get-Ratio 'mmap.big' 't26mmap.big') 0.5 -Skip $no26
    Add-Target 'Get-TorchStorage 1 GiB <= 0.5x torch 2.6 mmap=True' (Get-Ratio 'storage.big' 't26mmap.big') 0.5 -Skip $no26
    Add-Target 'Get-TorchTensor 1 GiB (no -Hash) <= 0.5x torch 2.6 mmap=True' (Get-Ratio 'list.big' 't26mmap.big') 0.5 -Skip $no26
    Add-Target 'eager 20,000 tensors <= 0.1x torch 2.6 weights_only=False' (Get-Ratio 'eager.many' 't26full.many') 0.1 -Skip $no26
    Add-Target 'eager 20,000 tensors <= 0.05x torch 2.6 default' (Get-Ratio 'eager.many' 't26.many') 0.05 -Skip $no26
    Add-Target 'eager 1 GiB <= 1.0x torch 2.6 torch.load (default)' (Get-Ratio 'eager.big' 't26.big') 1.0 -Skip $no26
    Add-Target 'eager 1 GiB <= 1.15x the C limit program' (Get-Ratio 'eager.big' 'climit.big') 1.15 -Skip 'no C compiler'
}
if ($dcp) {
    Add-Target 'DCP: eager 1 GiB folder <= 1.2x its torch.save file' $dcpRatio 1.2
    Add-Target 'DCP: Get-TorchTensor 10,000 keys <= 0.1 s' $byId['list.manydcp'].Median 0.1 ' s'
}
if ($statsBig) {
    Add-Target 'Measure-TorchTensor 1 GiB <= 0.1x torch statistics' (Get-Ratio 'stats.big' 'torchstats.big') 0.1
    Add-Target 'Measure-TorchTensor 1 GiB, load included, >= 4 GB/s' ($gbBig / $statsBig.Median) 4.0 'GB/s' 'ge'
}
if (Test-Group 'Files') {
    Add-Target '1000 files: Test-TorchCheckpoint <= 0.5x torch 2.6 get_unsafe_globals' (Get-Ratio 'files.test' 'f26.unsafe') 0.5 -Skip $no26
    Add-Target '1000 files: Test-TorchCheckpoint -SkipCrc <= 0.25x get_unsafe_globals' (Get-Ratio 'files.skipcrc' 'f26.unsafe') 0.25 -Skip $no26
    Add-Target '1000 files: Import-TorchCheckpoint <= 0.3x torch 2.6 torch.load(wo=False)' (Get-Ratio 'files.import' 'f26.load') 0.3 -Skip $no26
    Add-Target '1000 files: Get-ChildItem | Test-TorchCheckpoint <= 1.3x -LiteralPath (Get-ChildItem).FullName' (Get-Ratio 'files.gci' 'files.gciarray') 1.3
}
if ($coldCases) {
    Add-Target 'cold: eager 1 GiB <= 1.0x torch 2.6 torch.load cold' (Get-Ratio 'cold.eager' 'cold.t26') 1.0 -Skip $no26
    Add-Target 'cold: eager 1 GiB throughput >= 0.9x cold cat' (Get-Ratio 'cold.cat' 'cold.eager') 0.9 'x' 'ge'
} elseif (Test-Group 'Cold') {
    Add-Target 'cold: eager 1 GiB <= 1.0x torch 2.6 torch.load cold' $null 1.0 -Skip 'not root'
    Add-Target 'cold: eager 1 GiB throughput >= 0.9x cold cat' $null 0.9 'x' 'ge' -Skip 'not root'
}
if (Test-Group 'Hash') {
    Add-Target 'Test-TorchCheckpoint 1 GiB (CRC) <= 1.2x warm cat' (Get-Ratio 'test.big' 'cat.big') 1.2
    Add-Target 'Get-TorchTensor -Hash 1 GiB <= 0.5x sha256sum' (Get-Ratio 'hash.big' 'sha256sum.big') 0.5
}
if (Test-Group 'Oneshot') {
    Add-Target 'one-shot Import-TorchCheckpoint small.pt <= 0.5x torch 2.6 python' (Get-Ratio 'os.pwsh' 'os.py26') 0.5 -Skip $no26
    Add-Target 'Import-Module <= 100 ms' (Get-Median-Of 'importmodule') 0.1 ' s'
}
Write-Host 'Targets (ratios of medians from this run; peak = median of VmHWM - VmRSS before the call):'
foreach ($t in $targets) {
    $fmtV = switch ($t.unit) { 'x' { '{0:N3}x (limit {1:N3}x)' } ' s' { '{0:N3} s (limit {1:N3} s)' } 'GB/s' { '{0:N2} GB/s (aim {1:N2} GB/s)' } default { '{0:N1} MiB (limit {1:N1} MiB)' } }
    if ($t.dir -eq 'ge' -and $t.unit -eq 'x') { $fmtV = '{0:N3}x (at least {1:N3}x)' }
    $state = if ($null -eq $t.pass) { 'SKIP' } elseif ($t.pass) { 'PASS' } else { 'MISS' }
    $text = if ($null -eq $t.pass) { "($($t.skipped))" } else { $fmtV -f $t.value, $t.limit }
    Write-Host ('  {0,-4}  {1,-78} {2}' -f $state, $t.name, $text)
}
$checked = @($targets | Where-Object { $null -ne $_.pass })
$missed = @($checked | Where-Object { -not $_.pass }).Count
if (-not $targets.Count) { Write-Host '  (none in the chosen groups: information only)' }
Write-Host ("{0} of {1} targets met{2}." -f ($checked.Count - $missed), $checked.Count, $(if ($targets.Count -gt $checked.Count) { ", $($targets.Count - $checked.Count) skipped" } else { '' }))

$moduleVersion = try { (Import-PowerShellDataFile -LiteralPath $ModulePath).ModuleVersion } catch { $null }
$results = [ordered]@{
    date = [DateTime]::UtcNow.ToString('o'); elapsed_seconds = $elapsed; groups = @($groups)
    machine = [ordered]@{
        cpus = [Environment]::ProcessorCount
        cpu_model = (Get-Content /proc/cpuinfo | Where-Object { $_ -like 'model name*' } | Select-Object -First 1) -replace '^model name\s*:\s*', ''
        kernel = [Environment]::OSVersion.VersionString; load_average_before = $loadBefore; load_average_after = $loadAfter
        mem_available_mib = $memAvailMiB; big_reread_gb_per_s = $rereadGBps; transparent_hugepage = $thp
    }
    versions = [ordered]@{ torch = $torchVersion; python = $python; torch26 = $torch26Version; trixie_root = $(if ($hasRoot) { $TrixieRoot })
        powershell = "$($PSVersionTable.PSVersion)"; dotnet = [Environment]::Version.ToString(); torchload = "$moduleVersion"; module_path = $ModulePath }
    settings = [ordered]@{ rounds = $Rounds; warmup_rounds = $WarmupRounds; torch_load_kwargs = 'map_location="cpu", weights_only=False (1.13); 2.6 rows as labelled'
        timing = 'one process per measurement; untimed warm-up call on a small input first, through the same statements; Stopwatch/perf_counter around the call only; (process) rows: the whole process timed from outside by bench/time_command.sh'
        peak = 'VmHWM after the call minus VmRSS before it, VmHWM reset via /proc/self/clear_refs'
        cold = 'sync; echo 3 > /proc/sys/vm/drop_caches in the child after its warm-up call (before the cat process for cat)'
        data_dir = $DataDir; work_dir = $WorkDir }
    files = [ordered]@{ big = [ordered]@{ path = $files.big.path; bytes = $files.big.bytes }; many = [ordered]@{ path = $files.many.path; bytes = $files.many.bytes }
        small1000 = $(if ($smallFilesBytes) { [ordered]@{ path = $smallDir; files = 1000; bytes = $smallFilesBytes } }) }
    cases = @($cases | ForEach-Object { [ordered]@{
        id = $_.Id; group = $_.Group; method = $_.Label; file = $_.File; items = $_.Items; cold = $_.Cold
        median_seconds = $_.Median; min_seconds = $_.Min; max_seconds = $_.Max
        ratio_to_torch113 = $_.RatioTo13; ratio_to_torch26 = $_.RatioTo26; ref_torch113 = $_.Ref13; ref_torch26 = $_.Ref26
        peak_bytes_median = $_.PeakMedian; peak_bytes_max = $_.PeakMax; peak_ratio_to_torch113 = $_.PeakRatioTo13; peak_ratio_to_torch26 = $_.PeakRatioTo26
        seconds = @($_.Seconds); peak_bytes = @($_.Peak) } })
    dcp = if ($dcp) { [ordered]@{ torch = $dcp.torch; dir = $dcp.dir; eager_folder_to_file = $dcpRatio; list_10000_keys_seconds = $byId['list.manydcp'].Median } } else { $null }
    eager_big_to_memcpy = if ($eagerBig -and $memcpy) { $eagerBig.Median / $memcpy }
    eager_big_to_memcpy_fresh = if ($eagerBig -and $memcpyFresh) { $eagerBig.Median / $memcpyFresh }
    eager_big_to_c_limit = Get-Ratio 'eager.big' 'climit.big'
    stats_big_gb_per_s = if ($statsBig) { $gbBig / $statsBig.Median }
    memcpy_gb_per_s = if ($memcpy) { $gbBig / $memcpy }
    targets = @($targets | ForEach-Object { [ordered]@{ name = $_.name; value = $_.value; limit = $_.limit; direction = $_.dir; pass = $_.pass; skipped = $_.skipped } })
}
$jsonPath = Join-Path $WorkDir 'bench-results.json'
$results | ConvertTo-Json -Depth 6 | Set-Content -LiteralPath $jsonPath -Encoding utf8NoBOM
Write-Host "results: $jsonPath"
if ($FailOnMiss -and $missed) { exit 1 }
