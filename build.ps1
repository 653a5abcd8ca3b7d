#requires -Version 7.4
<#
.SYNOPSIS
    Builds, stages, tests and demonstrates the TorchLoad module.

.DESCRIPTION
    Build  dotnet build TorchLoad.sln, publish src/TorchLoad into ./module, move every dependency into
           ./module/deps (TorchLoad.dll loads them into a private AssemblyLoadContext), copy the manifest
           and format file, and generate en-US help (MAML from docs/<Cmdlet>.md, about_*.help.txt).
    Test   Build, then xunit (dotnet test), Pester 5.7.1 in a fresh pwsh, the repository's conformance
           runner (tests/Conformance) over every fixture set in tests/fixtures, and, when ../shared is there,
           the team's checker over every set in ../shared/fixtures. Sets in $PendingSets are skipped with a
           reason. Ends with "Total: N passed, N failed, N skipped" and exits 1 on any failure or when
           nothing ran. Needs nothing beside the clone.
    Demo   Build, then load samples/sd_conv_linear.pt in a fresh pwsh and show its tensors and storages.
    Bench  Build, then bench/Invoke-Benchmark.ps1: torch.load (Debian's python3-torch, installed if
           missing) vs Import-TorchCheckpoint eager and -Mmap vs Get-TorchStorage -Path on a 1 GiB and a
           20,000-tensor checkpoint, medians and ratios from one alternating run (not part of Test).
    Differential  Build, then for each -Torch version (1.13: Debian 12's python3-torch on the host, installed
           if missing; 2.6: Debian 13's, in a chroot at -ChrootDir, made if missing) and each of -Seeds,
           generate -Cases random checkpoints with that real PyTorch (tests/differential/make_cases.py) and
           compare every value and the whole tree TorchLoad reads with torch.load's
           (tests/differential/Invoke-Differential.ps1). -Torch All (default) runs what is available here.
    Fuzz   Build the SharpFuzz harness and run afl++ for -Seconds (fuzz/Invoke-Fuzz.ps1); -Smoke runs the
           in-process mutation smoke instead (no afl).

    Every step that loads the freshly built TorchLoad.dll runs in a child pwsh: a binary module cannot be
    unloaded, so this session never imports it.

.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 -Task Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Demo', 'Bench', 'Fuzz', 'Differential')]
    [string]$Task = 'Build',

    [ValidateSet('Release', 'Debug')]
    [string]$Configuration = 'Release',

    # The team's shared folder (conformance/, fixtures/); Test also runs its checker when it is there.
    [string]$SharedDir = (Join-Path $PSScriptRoot '../shared'),

    # Safety nets so a hanging child cannot stall CI (the whole Test task is meant to take < 5 minutes).
    [int]$PesterTimeoutSec = 420,
    [int]$ConformanceTimeoutSec = 180,

    # Fuzz: how long to fuzz; -Smoke: in-process mutation smoke instead of afl++.
    [int]$Seconds = 60,
    [switch]$Smoke,

    # Differential: which real torch, seeds, checkpoints per seed, and the Debian 13 chroot holding torch 2.6.
    [ValidateSet('1.13', '2.6', 'All')]
    [string]$Torch = 'All',
    [string[]]$Seeds = @('1234'),
    [int]$Cases = 150,
    [string]$ChrootDir = $(if ($env:TORCHLOAD_TORCH26_CHROOT) { $env:TORCHLOAD_TORCH26_CHROOT } else { '/srv/trixie' })
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$PSStyle.OutputRendering = 'PlainText'

$root = $PSScriptRoot
$moduleDir = Join-Path $root 'module'
$resultsDir = Join-Path $root 'TestResults'
$pwsh = Join-Path $PSHOME 'pwsh'               # child sessions; [Environment]::ProcessPath is the dotnet host
$pesterVersion = '5.7.1'
$sample = Join-Path $root 'samples/sd_conv_linear.pt'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'; $env:DOTNET_NOLOGO = '1'
$env:POWERSHELL_TELEMETRY_OPTOUT = '1'; $env:POWERSHELL_UPDATECHECK = 'Off'
$env:NO_COLOR = '1'                             # plain output from child pwsh sessions, Pester included

function Exec([scriptblock]$Command) {
    # Native commands do not honour $ErrorActionPreference; check the exit code.
    & $Command
    if ($LASTEXITCODE) { throw "Command failed with exit code ${LASTEXITCODE}: $Command" }
}

function Write-Step([string]$Text) { Write-Host "==> $Text" }

function Invoke-Child {
    # Runs a child pwsh with a deadline. Returns its stdout lines, stderr text, exit code (124 on timeout).
    param([string[]]$ArgumentList, [int]$TimeoutSec, [switch]$Echo)
    $psi = [System.Diagnostics.ProcessStartInfo]::new($pwsh)
    foreach ($a in @('-NoProfile', '-NonInteractive') + $ArgumentList) { $psi.ArgumentList.Add($a) }
    $psi.WorkingDirectory = $root
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.Environment['NO_COLOR'] = '1'
    $proc = [System.Diagnostics.Process]::Start($psi)
    $lines = [System.Collections.Generic.List[string]]::new()
    $timedOut = $false
    try {
        $stderr = $proc.StandardError.ReadToEndAsync()
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSec)
        while ($true) {
            $next = $proc.StandardOutput.ReadLineAsync()
            $left = [Math]::Max(0, [int]($deadline - [DateTime]::UtcNow).TotalMilliseconds)
            if (-not $next.Wait($left)) { $timedOut = $true; break }
            if ($null -eq $next.Result) { break }
            $lines.Add($next.Result)
            if ($Echo) { Write-Host $next.Result }
        }
    } finally {
        if (-not $proc.HasExited) { $proc.Kill($true) }   # only the child we started, and its children
        $proc.WaitForExit()
    }
    [pscustomobject]@{
        ExitCode = if ($timedOut) { 124 } else { $proc.ExitCode }
        TimedOut = $timedOut
        Output   = $lines
        StdErr   = if ($stderr.Wait(5000)) { $stderr.Result } else { '' }
    }
}

function Get-NuGetCache {
    if ($env:NUGET_PACKAGES) { return $env:NUGET_PACKAGES }
    $line = dotnet nuget locals global-packages --list
    if ($LASTEXITCODE) { throw 'dotnet nuget locals global-packages --list failed' }
    return (($line | Select-Object -First 1) -replace '^global-packages:\s*', '').Trim()
}

function ConvertTo-AboutText([string]$Markdown) {
    # about_*.md (PlatyPS about schema) -> the plain-text layout Get-Help about_* shows:
    # "# about_X" -> TOPIC, "## HEADING" -> HEADING at column 0, text indented 4, code indented 8.
    $out = [System.Collections.Generic.List[string]]::new()
    $inCode = $false
    foreach ($line in $Markdown -split '\r?\n') {
        if ($line -match '^\s*```') { $inCode = -not $inCode; continue }
        if ($inCode) { $out.Add(('        ' + $line).TrimEnd()); continue }
        if ($line -match '^# (.+)$') { $out.Add('TOPIC'); $out.Add("    $($Matches[1].Trim())"); continue }
        if ($line -match '^## (.+)$') { $out.Add($Matches[1].Trim().ToUpperInvariant()); continue }
        if ($line -match '^#{3,} (.+)$') { $out.Add("  $($Matches[1].Trim())"); continue }
        $out.Add(('    ' + $line).TrimEnd())
    }
    return ($out -join "`n").TrimEnd() + "`n"
}

function Invoke-Build {
    Write-Step "dotnet build TorchLoad.sln -c $Configuration"
    Exec { dotnet build "$root/TorchLoad.sln" -c $Configuration --nologo -v q }

    Write-Step "dotnet publish src/TorchLoad -> module/"
    Remove-Item -LiteralPath $moduleDir -Recurse -Force -ErrorAction Ignore
    # ReadyToRun: precompiled native code for this platform (IL stays for others), so a one-shot
    # Import-TorchCheckpoint does not spend its time in the JIT (20,000-tensor file: ~100 ms -> ~70 ms).
    $rid = [System.Runtime.InteropServices.RuntimeInformation]::RuntimeIdentifier
    if ($rid -match '^(linux|win|osx)-(x64|arm64)$') {
        Exec { dotnet publish "$root/src/TorchLoad/TorchLoad.csproj" -c $Configuration -r $rid --self-contained false -p:PublishReadyToRun=true -o $moduleDir --nologo -v q }
    } else {
        Exec { dotnet publish "$root/src/TorchLoad/TorchLoad.csproj" -c $Configuration --no-build -o $moduleDir --nologo -v q }
    }

    # Manifest; its version must match Directory.Build.props (the single version source).
    $manifest = Import-PowerShellDataFile -LiteralPath "$root/TorchLoad.psd1"
    $propsVersion = ([xml](Get-Content -LiteralPath "$root/Directory.Build.props" -Raw)).Project.PropertyGroup.ModuleVersion |
        Where-Object { $_ } | Select-Object -First 1
    if ($manifest.ModuleVersion -ne $propsVersion) {
        throw "TorchLoad.psd1 ModuleVersion '$($manifest.ModuleVersion)' differs from Directory.Build.props ModuleVersion '$propsVersion'."
    }
    $format = "$root/src/TorchLoad/TorchLoad.format.ps1xml"
    if (Test-Path -LiteralPath $format) {
        Copy-Item -LiteralPath "$root/TorchLoad.psd1" -Destination $moduleDir
        Copy-Item -LiteralPath $format -Destination $moduleDir
    } else {
        # FormatsToProcess may only name a staged file, or Import-Module fails.
        Write-Warning "src/TorchLoad/TorchLoad.format.ps1xml not found: staging the manifest without FormatsToProcess."
        (Get-Content -LiteralPath "$root/TorchLoad.psd1" -Raw) -replace '(?m)^\s*FormatsToProcess\s*=.*$', '' |
            Set-Content -LiteralPath "$moduleDir/TorchLoad.psd1" -NoNewline
    }

    # Isolation layout: only TorchLoad.dll (cmdlets, default load context) stays at the top; TorchLoad.Core
    # and every third-party assembly go to deps/, which ModuleInit loads into the private 'TorchLoad' context.
    $deps = New-Item -ItemType Directory -Force -Path "$moduleDir/deps"
    Get-ChildItem -LiteralPath $moduleDir -File -Filter '*.deps.json' | Remove-Item
    $keep = 'TorchLoad.dll', 'TorchLoad.pdb', 'TorchLoad.psd1', 'TorchLoad.format.ps1xml'
    Get-ChildItem -LiteralPath $moduleDir | Where-Object { $_.Name -notin $keep -and $_.Name -ne 'deps' } |
        Move-Item -Destination $deps
    # The engine again, precompiled for .NET 10 (PowerShell 7.6): ReadyToRun code is only used by the runtime
    # major version that compiled it, so the net8.0 images above are JIT-compiled method by method there.
    # ModuleInit loads deps/net10.0/ on .NET 10 and later, deps/ otherwise.
    if ($rid -match '^(linux|win|osx)-(x64|arm64)$') {
        Write-Step "dotnet publish src/TorchLoad.Core -f net10.0 (ReadyToRun) -> module/deps/net10.0/"
        $net10 = Join-Path $deps.FullName 'net10.0'
        Exec { dotnet publish "$root/src/TorchLoad.Core/TorchLoad.Core.csproj" -c $Configuration -f net10.0 -r $rid --self-contained false -p:PublishReadyToRun=true -o $net10 --nologo -v q }
        Get-ChildItem -LiteralPath $net10 -File -Filter '*.deps.json' | Remove-Item
    }
    foreach ($required in 'TorchLoad.dll', 'deps/TorchLoad.Core.dll') {
        if (-not (Test-Path -LiteralPath "$moduleDir/$required")) { throw "Staging failed: module/$required is missing." }
    }
    if (Get-ChildItem -LiteralPath $moduleDir -Recurse -Filter 'System.Management.Automation.dll') {
        throw 'Staging failed: System.Management.Automation.dll was published (PowerShellStandard.Library needs ExcludeAssets="runtime").'
    }

    # Help. MAML comes from docs/<Cmdlet>.md plus Get-Command on the built module, in a child pwsh.
    Write-Step 'help: docs/*.md -> module/en-US'
    $enUS = New-Item -ItemType Directory -Force -Path "$moduleDir/en-US"
    Exec { & $pwsh -NoProfile -NonInteractive -File "$root/build/ConvertTo-Maml.ps1" -DocsDir "$root/docs" -ModulePath "$moduleDir/TorchLoad.psd1" -OutFile "$enUS/TorchLoad.dll-Help.xml" }
    foreach ($about in Get-ChildItem -LiteralPath "$root/docs" -Filter 'about_*.md') {
        $text = ConvertTo-AboutText (Get-Content -LiteralPath $about.FullName -Raw)
        [System.IO.File]::WriteAllText((Join-Path $enUS "$($about.BaseName).help.txt"), $text)
    }
    Write-Host "Staged $moduleDir"
}

# Fixture sets live in tests/fixtures: every folder there with a manifest.json is a set, found by
# tests/Conformance/Conformance.Tests.ps1 (a new set needs no change here).
$fixturesDir = Join-Path $root 'tests/fixtures'
# Sets whose format the engine does not read yet: skipped, with this reason, by both conformance runs.
# Remove a set's entry when the engine reads it (none now: dcp landed with issue #12).
$PendingSets = @()
$pendingReason = 'the engine does not read this format yet'
# The team's shared checker, run as well when ../shared (or -SharedDir) is there.
$checker = [System.IO.Path]::GetFullPath((Join-Path $SharedDir 'conformance/Test-TorchConformance.ps1'))

function Get-SuiteRow([string]$Name) { [pscustomobject]@{ Name = $Name; Passed = 0; Failed = 0; Skipped = 0 } }

function Invoke-Test {
    Import-Module (Join-Path $root 'tests/Conformance/FixtureManifest.psm1') -Force   # finds sets, counts cases
    if (-not @(Find-FixtureSet $fixturesDir)) { throw "No fixture set (a folder with a manifest.json) under '$fixturesDir'." }
    Remove-Item -LiteralPath $resultsDir -Recurse -Force -ErrorAction Ignore
    $null = New-Item -ItemType Directory -Force -Path $resultsDir
    $rows = [System.Collections.Generic.List[object]]::new()
    $problems = [System.Collections.Generic.List[string]]::new()

    # --- xunit ---------------------------------------------------------------------------------------
    Write-Step 'xunit: dotnet test'
    dotnet test "$root/TorchLoad.sln" -c $Configuration --no-build --nologo --logger 'trx;LogFileName=xunit.trx' --results-directory $resultsDir
    $xunitExit = $LASTEXITCODE
    $x = Get-SuiteRow 'xunit'
    $trx = @(Get-ChildItem -LiteralPath $resultsDir -Filter '*.trx' -Recurse)
    foreach ($file in $trx) {
        $c = ([xml](Get-Content -LiteralPath $file.FullName -Raw)).TestRun.ResultSummary.Counters
        $x.Passed += [int]$c.passed
        $x.Failed += [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted
        $x.Skipped += [int]$c.notExecuted
    }
    if ($xunitExit -and $x.Failed -eq 0) { $x.Failed = 1; $problems.Add("dotnet test exited $xunitExit without a failed test in its report") }
    $rows.Add($x)

    # --- Pester (fetched from NuGet by build/tools/tools.csproj, never from PSGallery) ----------------
    Write-Step "pester $pesterVersion"
    Exec { dotnet restore "$root/build/tools/tools.csproj" --nologo -v q }
    $env:TORCHLOAD_NUGET_PACKAGES = Get-NuGetCache          # Isolation.Tests.ps1 finds SharpZipLib 1.2.0 here
    $pester = Join-Path $env:TORCHLOAD_NUGET_PACKAGES "pester/$pesterVersion/tools/Pester.psd1"
    if (-not (Test-Path -LiteralPath $pester)) { throw "Pester $pesterVersion not found at '$pester' after restore." }
    $q = { param([string]$s) "'" + $s.Replace("'", "''") + "'" }
    $script = @"
`$ErrorActionPreference = 'Stop'; `$PSStyle.OutputRendering = 'PlainText'
Import-Module $(& $q $pester)
`$c = New-PesterConfiguration
`$c.Run.Path = $(& $q "$root/tests/Pester"); `$c.Run.PassThru = `$true
`$c.Output.Verbosity = 'Detailed'; `$c.Output.RenderMode = 'Plaintext'
`$c.TestResult.Enabled = `$true; `$c.TestResult.OutputFormat = 'JUnitXml'
`$c.TestResult.OutputPath = $(& $q "$resultsDir/pester.junit.xml")
`$r = Invoke-Pester -Configuration `$c
'PESTER-COUNTS {0} {1} {2}' -f `$r.PassedCount, (`$r.FailedCount + `$r.FailedBlocksCount + `$r.FailedContainersCount), (`$r.SkippedCount + `$r.NotRunCount)
"@
    $run = Invoke-Child -ArgumentList '-Command', $script -TimeoutSec $PesterTimeoutSec -Echo
    $p = Get-SuiteRow 'pester'
    $counts = $run.Output | Where-Object { $_ -match '^PESTER-COUNTS (\d+) (\d+) (\d+)$' } | Select-Object -Last 1
    if ($counts) {
        $n = $counts -split ' '; $p.Passed = [int]$n[1]; $p.Failed = [int]$n[2]; $p.Skipped = [int]$n[3]
    } else {
        $p.Failed = 1
        $problems.Add("Pester did not finish$(if ($run.TimedOut) { " within $PesterTimeoutSec s" }) (exit $($run.ExitCode)): $($run.StdErr.Trim())")
    }
    if ($run.StdErr.Trim()) { Write-Host $run.StdErr.TrimEnd() }
    $rows.Add($p)

    # --- conformance: tests/Conformance over every set in tests/fixtures, in a fresh pwsh -------------
    Write-Step 'conformance: tests/Conformance over tests/fixtures'
    foreach ($set in $PendingSets) { Write-Host "  pending: $set is skipped ($pendingReason)" }
    $data = "@{ FixturesDir = $(& $q $fixturesDir); ModulePath = $(& $q "$moduleDir/TorchLoad.psd1"); PendingSets = @($(($PendingSets | ForEach-Object { & $q $_ }) -join ', ')); PendingReason = $(& $q $pendingReason) }"
    $script = @"
`$ErrorActionPreference = 'Stop'; `$PSStyle.OutputRendering = 'PlainText'
Import-Module $(& $q $pester)
`$c = New-PesterConfiguration
`$c.Run.Container = New-PesterContainer -Path $(& $q "$root/tests/Conformance/Conformance.Tests.ps1") -Data $data
`$c.Run.PassThru = `$true
`$c.Output.Verbosity = 'Normal'; `$c.Output.RenderMode = 'Plaintext'
`$c.TestResult.Enabled = `$true; `$c.TestResult.OutputFormat = 'JUnitXml'
`$c.TestResult.OutputPath = $(& $q "$resultsDir/conformance.junit.xml")
`$r = Invoke-Pester -Configuration `$c
foreach (`$b in `$r.Containers.Blocks) {
    `$t = @(`$b.Tests)
    'CONFORMANCE-SET {0} {1} {2} {3}' -f `$b.Data.Name, @(`$t | ? Result -eq 'Passed').Count, (@(`$t | ? Result -eq 'Failed').Count + [int](`$b.Result -eq 'Failed')), @(`$t | ? Result -in 'Skipped', 'NotRun').Count
}
'CONFORMANCE-FAILED-CONTAINERS {0}' -f `$r.FailedContainersCount
"@
    $run = Invoke-Child -ArgumentList '-Command', $script -TimeoutSec $ConformanceTimeoutSec -Echo
    $setLines = @($run.Output | Where-Object { $_ -match '^CONFORMANCE-SET \S+ \d+ \d+ \d+$' })
    foreach ($line in $setLines) {
        $n = $line -split ' '
        $row = Get-SuiteRow "conformance $($n[1])"
        $row.Passed = [int]$n[2]; $row.Failed = [int]$n[3]; $row.Skipped = [int]$n[4]
        $rows.Add($row)
    }
    $lost = $run.Output | Where-Object { $_ -match '^CONFORMANCE-FAILED-CONTAINERS [1-9]' }
    if (-not $setLines -or $lost) {
        $row = Get-SuiteRow 'conformance'; $row.Failed = 1; $rows.Add($row)
        $problems.Add("tests/Conformance did not finish$(if ($run.TimedOut) { " within $ConformanceTimeoutSec s" }) (exit $($run.ExitCode)): $($run.StdErr.Trim())")
    }
    if ($run.StdErr.Trim()) { Write-Host $run.StdErr.TrimEnd() }

    # --- the shared checker over every set in ../shared/fixtures, each in a fresh pwsh -----------------
    if (-not (Test-Path -LiteralPath $checker)) {
        Write-Step "shared checker: not run ($checker is not there; the sets above are the repository's copies)"
    } else {
        foreach ($set in Find-FixtureSet (Join-Path $SharedDir 'fixtures')) {
            $row = Get-SuiteRow "shared checker $($set.Name)"
            $rows.Add($row)
            if ($set.Name -in $PendingSets) {
                $row.Skipped = @(Get-ConformanceCase -Dir $set.Dir -Manifest (Read-FixtureManifest $set.Manifest)).Count
                Write-Step "shared checker $($set.Name): pending, $($row.Skipped) checks skipped ($pendingReason)"
                continue
            }
            Write-Step "shared checker $($set.Name)"
            $run = Invoke-Child -ArgumentList '-File', $checker, '-FixtureDir', $set.Dir, '-ModulePath', "$moduleDir/TorchLoad.psd1" -TimeoutSec $ConformanceTimeoutSec
            $log = Join-Path $resultsDir "shared-checker-$($set.Name).log"
            @($run.Output) + $run.StdErr | Set-Content -LiteralPath $log
            $last = $run.Output | Where-Object { $_.Trim() } | Select-Object -Last 1
            if ($last -match '^(\d+) passed, (\d+) failed$') {
                $row.Passed = [int]$Matches[1]; $row.Failed = [int]$Matches[2]
            } else {
                $row.Failed = 1
                $problems.Add("shared checker $($set.Name): did not finish$(if ($run.TimedOut) { " within $ConformanceTimeoutSec s" }) (exit $($run.ExitCode)); see $log")
            }
            $shown = @($run.Output | Where-Object { $_ -match '^FAIL ' })
            $shown | Select-Object -First 15 | ForEach-Object { Write-Host "  $_" }
            if ($shown.Count -gt 15) { Write-Host "  ... $($shown.Count - 15) more failures in $log" }
            if ($run.StdErr.Trim()) { $run.StdErr.Trim() -split '\r?\n' | Select-Object -First 10 | ForEach-Object { Write-Host "  stderr: $_" } }
        }
    }

    # --- summary -------------------------------------------------------------------------------------
    Write-Host ''
    $problems | ForEach-Object { Write-Host "problem: $_" }
    foreach ($r in $rows) { Write-Host ('{0}: {1} passed, {2} failed, {3} skipped' -f $r.Name, $r.Passed, $r.Failed, $r.Skipped) }
    $passed = ($rows | Measure-Object Passed -Sum).Sum
    $failed = ($rows | Measure-Object Failed -Sum).Sum
    $skipped = ($rows | Measure-Object Skipped -Sum).Sum
    Write-Host ('Total: {0} passed, {1} failed, {2} skipped' -f $passed, $failed, $skipped)
    if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
}

function Invoke-Demo {
    if (-not (Test-Path -LiteralPath $sample)) { throw "Sample checkpoint missing: $sample" }
    $script = @'
param($ModulePath, $Sample)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
Write-Host "PS> `$sd = Import-TorchCheckpoint $Sample"
$sd = Import-TorchCheckpoint $Sample
Write-Host "Returned a $($sd.GetType().Name) with $($sd.Count) entries:"
$sd.GetEnumerator() | ForEach-Object {
    [pscustomobject]@{
        Name    = $_.Key
        DType   = $_.Value.DType
        Shape   = '(' + (@($_.Value.Shape) -join ', ') + ')'
        Stride  = '(' + (@($_.Value.Stride) -join ', ') + ')'
        Storage = $_.Value.Storage.Key
        First3  = (@($_.Value.ToArray()) | Select-Object -First 3 | ForEach-Object { '{0:0.0000}' -f $_ }) -join ', '
    }
} | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
Write-Host "PS> Get-TorchStorage -Path $Sample"
Get-TorchStorage -Path $Sample |
    Format-Table Key, DType, ElementCount, ByteLength, Location, RecordName, FileOffset, TensorPaths -AutoSize |
    Out-String -Width 200 | Write-Host
Write-Host 'PS> Get-TorchDevice'
Get-TorchDevice | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
Write-Host "PS> Get-TorchTensor $Sample -Hash"
Get-TorchTensor $Sample -Hash | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
Write-Host "PS> Test-TorchCheckpoint $Sample"
Test-TorchCheckpoint $Sample | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
'@
    $file = Join-Path ([System.IO.Path]::GetTempPath()) "torchload-demo-$PID.ps1"
    Set-Content -LiteralPath $file -Value $script
    try {
        # Relative paths on purpose: the child runs in the repo root, and this is what a user types.
        Exec { & $pwsh -NoProfile -NonInteractive -File $file -ModulePath './module/TorchLoad.psd1' -Sample 'samples/sd_conv_linear.pt' }
    } finally { Remove-Item -LiteralPath $file -ErrorAction Ignore }
}

Push-Location $root
try {
    switch ($Task) {
        'Build' { Invoke-Build }
        'Test' { Invoke-Build; Invoke-Test }
        'Demo' { Invoke-Build; Invoke-Demo }
        'Bench' {
            Invoke-Build
            Exec { & $pwsh -NoProfile -NonInteractive -File "$root/bench/Invoke-Benchmark.ps1" -ModulePath "$moduleDir/TorchLoad.psd1" -WorkDir "$root/bench-out" }
        }
        'Differential' {
            Invoke-Build
            Exec { & "$root/tests/differential/Invoke-Differential.ps1" -Torch $Torch -Seeds $Seeds -Cases $Cases -ChrootDir $ChrootDir -ModulePath "$moduleDir/TorchLoad.psd1" -OutDir "$root/bench-out/differential" }
        }
        'Fuzz' {
            if (-not (Test-Path "$root/fuzz/Invoke-Fuzz.ps1")) { throw 'build.ps1 -Task Fuzz: fuzz/Invoke-Fuzz.ps1 is missing.' }
            Exec { & $pwsh -NoProfile -NonInteractive -File "$root/fuzz/Invoke-Fuzz.ps1" -Seconds $Seconds -Smoke:$Smoke }
        }
    }
} finally { Pop-Location }
