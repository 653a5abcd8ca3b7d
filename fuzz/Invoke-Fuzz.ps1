#requires -Version 7.4
<#
.SYNOPSIS
    Fuzzes TorchLoad.Core's loader (issue 6): afl++ through SharpFuzz, or a bounded in-process smoke.

.DESCRIPTION
    afl (default)  Installs afl++ with apt-get when afl-fuzz is missing, restores the sharpfuzz tool, builds
                   fuzz/TorchLoad.Fuzz (Release), copies it to <OutDir>/harness and instruments the copy of
                   TorchLoad.Core.dll there with `sharpfuzz`, makes a seed corpus of the fixtures under 64 KiB
                   (torch-1.13, crafted, external, bad), runs one afl-fuzz instance for -Seconds, prints
                   "fuzz afl: N executions in S s, C crashes, H hangs" from fuzzer_stats and copies every crash and
                   hang into tests/TorchLoad.Tests/FuzzRegressions/ (FuzzRegressionTests replays them).
                   Exits 1 when afl saved a crash or a hang.
    -Smoke         No afl, no instrumentation: the harness mutates the same seeds deterministically in process for
                   -Seconds, with a per-input timeout, and prints "fuzz smoke: N executions, M findings". Findings go
                   to <OutDir>/smoke (not to the test folder). Exits 1 on any finding. This is what CI runs.

.EXAMPLE
    dotnet pwsh ./fuzz/Invoke-Fuzz.ps1 -Seconds 60 -Smoke
.EXAMPLE
    dotnet pwsh ./fuzz/Invoke-Fuzz.ps1 -Seconds 900
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 86400)]
    [int]$Seconds = 60,

    [switch]$Smoke,

    # Folder holding the fixture sets (the repository's own copy by default).
    [string]$FixturesDir,

    # Where afl's state, the instrumented harness, the seed corpus and smoke findings go (git-ignored).
    [string]$OutDir,

    # Smoke: the mutation seed (same seed, same inputs in the same order).
    [int]$Seed = 1,

    # Smoke: per-input timeout in milliseconds; an input that runs longer is a hang.
    [int]$TimeoutMs = 5000,

    # Also treat TorchLoadExceptions that Load made out of a raw .NET exception (a reader bug it masks) as findings.
    [switch]$Strict,

    # afl: do not copy crashes/hangs into tests/TorchLoad.Tests/FuzzRegressions.
    [switch]$NoCollect
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$root = Split-Path -Parent $PSScriptRoot
if (-not $FixturesDir) { $FixturesDir = Join-Path $root 'tests/fixtures' }
if (-not $OutDir) { $OutDir = Join-Path $root 'fuzz-out' }
$OutDir = [System.IO.Path]::GetFullPath($OutDir)
$project = Join-Path $PSScriptRoot 'TorchLoad.Fuzz/TorchLoad.Fuzz.csproj'
$buildOut = Join-Path $PSScriptRoot 'TorchLoad.Fuzz/bin/Release/net10.0'
$regressions = Join-Path $root 'tests/TorchLoad.Tests/FuzzRegressions'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'; $env:DOTNET_NOLOGO = '1'

function Exec([scriptblock]$Command) {
    & $Command
    if ($LASTEXITCODE) { throw "Command failed with exit code ${LASTEXITCODE}: $Command" }
}

function Write-Step([string]$Text) { Write-Host "==> $Text" }

function Get-ShortHash([string]$Path) { (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.Substring(0, 16).ToLowerInvariant() }

function New-SeedCorpus([string]$Dir) {
    # Every fixture under 64 KiB, once per content, named by its hash (afl wants a flat folder).
    $fixtures = $FixturesDir
    if (-not (Test-Path -LiteralPath $fixtures)) { throw "No fixtures at $fixtures (pass -FixturesDir)." }
    if (Test-Path -LiteralPath $Dir) { Remove-Item -LiteralPath $Dir -Recurse -Force }
    $null = New-Item -ItemType Directory -Path $Dir
    foreach ($set in 'torch-1.13', 'crafted', 'external', 'bad') {
        $setDir = Join-Path $fixtures $set
        if (-not (Test-Path -LiteralPath $setDir)) { Write-Warning "fixture set $set missing under $fixtures"; continue }
        Get-ChildItem -LiteralPath $setDir -File -Recurse |
            Where-Object { $_.Length -gt 0 -and $_.Length -lt 64KB -and $_.Name -ne 'README.md' } |
            ForEach-Object { Copy-Item -LiteralPath $_.FullName -Destination (Join-Path $Dir "$(Get-ShortHash $_.FullName).bin") -Force }
    }
    # formats no fixture set has (safetensors), kept in the repository
    Get-ChildItem -LiteralPath (Join-Path $PSScriptRoot 'seeds') -File -ErrorAction Ignore |
        ForEach-Object { Copy-Item -LiteralPath $_.FullName -Destination (Join-Path $Dir "$(Get-ShortHash $_.FullName).bin") -Force }
    $count = @(Get-ChildItem -LiteralPath $Dir -File).Count
    if ($count -eq 0) { throw "No seed under 64 KiB in $fixtures." }
    Write-Host "seed corpus: $count files in $Dir"
}

function Build-Harness {
    Write-Step 'Build fuzz/TorchLoad.Fuzz (Release)'
    Exec { dotnet build $project -c Release --nologo -v quiet -clp:NoSummary }
}

function Invoke-Smoke {
    Build-Harness
    $smokeOut = Join-Path $OutDir 'smoke'
    $null = New-Item -ItemType Directory -Force -Path $smokeOut
    $seeds = Join-Path $smokeOut 'seeds'      # not afl's seeds folder: a smoke may run beside an afl run
    New-SeedCorpus $seeds
    # The input under test lives in RAM when it can (the loader opens it for every execution); after a process
    # crash it is the input that killed the harness.
    $work = if (Test-Path -LiteralPath '/dev/shm') { "/dev/shm/torchload-fuzz-smoke-$PID.bin" } else { Join-Path $smokeOut 'current-input.bin' }
    $harnessArgs = @((Join-Path $buildOut 'TorchLoad.Fuzz.dll'), 'smoke', '--seconds', $Seconds, '--seeds', $seeds,
        '--seed', $Seed, '--out', $smokeOut, '--timeout-ms', $TimeoutMs, '--work', $work)
    if ($Strict) { $harnessArgs += '--strict' }
    Write-Step "Fuzz smoke for $Seconds s"
    # A hard deadline on top of the harness's own: the whole smoke must stop by itself.
    $proc = Start-Process -FilePath 'dotnet' -ArgumentList $harnessArgs -NoNewWindow -PassThru
    if (-not $proc.WaitForExit(($Seconds + 120) * 1000)) {
        $proc.Kill($true)
        throw "fuzz smoke: the harness did not stop within $($Seconds + 120) s."
    }
    $code = $proc.ExitCode
    if ($code -notin 0, 1) {
        # The process itself died (stack overflow, access violation, ...): the work file holds the input.
        if (Test-Path -LiteralPath $work) {
            $saved = Join-Path $smokeOut "crash-$(Get-ShortHash $work).bin"
            Copy-Item -LiteralPath $work -Destination $saved -Force
            Write-Host "fuzz smoke: the harness process died with exit code $code; input saved as $saved"
        }
        Write-Host 'fuzz smoke: 1 finding (process crash)'
        exit 1
    }
    Remove-Item -LiteralPath $work -ErrorAction Ignore
    exit $code
}

function Get-SharpFuzz {
    # The pinned local tool (dotnet-tools.json) when the manifest has it; otherwise a private install under OutDir.
    Push-Location $root
    try { Exec { dotnet tool restore | Out-Host } } finally { Pop-Location }
    $manifest = Get-Content -Raw -LiteralPath (Join-Path $root 'dotnet-tools.json') | ConvertFrom-Json
    if ($manifest.tools.PSObject.Properties.Name -contains 'sharpfuzz.commandline') { return @('dotnet', 'tool', 'run', 'sharpfuzz') }
    $toolDir = Join-Path $OutDir 'tools'
    $exe = Join-Path $toolDir 'sharpfuzz'
    if (-not (Test-Path -LiteralPath $exe)) {
        Write-Step 'Install SharpFuzz.CommandLine 2.3.0 (not in dotnet-tools.json yet)'
        Exec { dotnet tool install --tool-path $toolDir SharpFuzz.CommandLine --version 2.3.0 | Out-Host }
    }
    return @($exe)
}

function Install-Afl {
    if (Get-Command afl-fuzz -ErrorAction Ignore) { return }
    Write-Step 'Install afl++ (apt-get)'
    $sudo = if ((& id -u) -ne '0') { @('sudo') } else { @() }
    $env:DEBIAN_FRONTEND = 'noninteractive'
    & @sudo apt-get install -y -qq afl++
    if ($LASTEXITCODE) {
        Exec { & @sudo apt-get update -qq }
        Exec { & @sudo apt-get install -y -qq afl++ }
    }
}

function Read-AflStats([string]$StatsFile) {
    $stats = @{}
    foreach ($line in Get-Content -LiteralPath $StatsFile) {
        $k, $v = $line -split '\s*:\s*', 2
        if ($k) { $stats[$k.Trim()] = "$v".Trim() }
    }
    $stats
}

function Invoke-Afl {
    Install-Afl
    $sharpfuzz = Get-SharpFuzz
    Build-Harness

    Write-Step 'Instrument TorchLoad.Core.dll'
    $harness = Join-Path $OutDir 'harness'
    if (Test-Path -LiteralPath $harness) { Remove-Item -LiteralPath $harness -Recurse -Force }
    $null = New-Item -ItemType Directory -Force -Path $harness
    Copy-Item -Path (Join-Path $buildOut '*') -Destination $harness -Recurse
    $coreDll = Join-Path $harness 'TorchLoad.Core.dll'
    $cmd, $rest = $sharpfuzz
    Exec { & $cmd @rest $coreDll }

    $seeds = Join-Path $OutDir 'seeds'
    New-SeedCorpus $seeds
    $aflOut = Join-Path $OutDir 'afl'
    if (Test-Path -LiteralPath $aflOut) { Remove-Item -LiteralPath $aflOut -Recurse -Force }

    $env:AFL_SKIP_BIN_CHECK = '1'                      # the target is a .NET apphost, not an afl-compiled binary
    $env:AFL_NO_UI = '1'
    $env:AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES = '1'   # core_pattern belongs to the host, not to us
    $env:AFL_SKIP_CPUFREQ = '1'
    $env:AFL_NO_AFFINITY = '1'                         # a shared 2-core machine: do not pin a core
    $env:AFL_FORKSRV_INIT_TMOUT = '60000'              # the .NET runtime takes a while to start the fork server
    if ($Strict) { $env:TORCHLOAD_FUZZ_STRICT = '1' }
    $aflArgs = @('-i', $seeds, '-o', $aflOut, '-t', '10000', '-m', 'none', '-V', $Seconds,
        '-x', (Join-Path $PSScriptRoot 'torchload.dict'), '--', (Join-Path $harness 'TorchLoad.Fuzz'), 'afl')
    Write-Step "afl-fuzz for $Seconds s: afl-fuzz $($aflArgs -join ' ')"
    $log = Join-Path $OutDir 'afl.log'
    $proc = Start-Process -FilePath 'afl-fuzz' -ArgumentList $aflArgs -NoNewWindow -PassThru -RedirectStandardOutput $log
    if (-not $proc.WaitForExit(($Seconds + 300) * 1000)) { $proc.Kill($true); Write-Warning 'afl-fuzz overran its -V time; stopped.' }
    $statsFile = Join-Path $aflOut 'default/fuzzer_stats'
    if (-not (Test-Path -LiteralPath $statsFile)) {
        Get-Content -LiteralPath $log -Tail 40 | Write-Host
        throw "afl-fuzz exited with code $($proc.ExitCode) and left no fuzzer_stats."
    }
    $s = Read-AflStats $statsFile
    $duration = [long]$s['last_update'] - [long]$s['start_time']
    $crashes = [int]($s['saved_crashes'] ?? $s['unique_crashes'])
    $hangs = [int]($s['saved_hangs'] ?? $s['unique_hangs'])
    Write-Host ("fuzz afl: {0} executions in {1} s ({2}/s), corpus {3}, edges {4}, {5} crashes, {6} hangs" -f
        $s['execs_done'], $duration, $s['execs_per_sec'], $s['corpus_count'], $s['edges_found'], $crashes, $hangs)

    $found = @{ crashes = 'crash'; hangs = 'hang' }.GetEnumerator() | ForEach-Object {
        $kind = $_.Value
        Get-ChildItem -LiteralPath (Join-Path $aflOut "default/$($_.Key)") -File -ErrorAction Ignore |
            Where-Object Name -ne 'README.txt' | ForEach-Object { [pscustomobject]@{ Kind = $kind; File = $_.FullName } }
    }
    if ($found -and -not $NoCollect) {
        $null = New-Item -ItemType Directory -Force -Path $regressions
        foreach ($f in $found) {
            $dest = Join-Path $regressions "afl-$($f.Kind)-$(Get-ShortHash $f.File).bin"
            Copy-Item -LiteralPath $f.File -Destination $dest -Force
            Write-Host "regression input: $dest"
        }
    }
    if ($crashes + $hangs -gt 0) { exit 1 }
}

if ($Smoke) { Invoke-Smoke } else { Invoke-Afl }
