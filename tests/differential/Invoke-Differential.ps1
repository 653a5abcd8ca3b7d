#requires -Version 7.4
<#
.SYNOPSIS
    Differential test against real PyTorch: for each torch version and seed, make_cases.py writes -Cases
    random checkpoints with that torch (and what its torch.load returned), then Compare-Differential.ps1
    loads each with TorchLoad and compares every value and the whole tree.

.DESCRIPTION
    torch 1.13 is Debian 12's python3-torch on the host (/usr/bin/python3; build/Install-DebianTorch.ps1
    installs it). torch 2.6 is Debian 13's, in a chroot (Initialize-TorchChroot.ps1 makes it when
    missing). Files cross into the chroot by copying: the generator is copied to
    <chroot>/var/tmp/torchload-differential-<pid>/, run there, its output copied back under -OutDir, and
    that folder removed.
    -Torch All runs every version that is available here (a missing one is skipped with a warning);
    naming one version makes it required. Exits 1 when any file disagrees or no version could run.
    -RegressionsDir DIR instead rewrites the regression fixtures (tests/differential/regressions.py, saved by
    torch 2.6, manifest.json in the shared fixture schema), e.g. -RegressionsDir tests/fixtures/differential-regressions.

.EXAMPLE
    dotnet pwsh -NoProfile -File tests/differential/Invoke-Differential.ps1 -Torch 2.6 -Seeds 1,2,3 -ModulePath ./module/TorchLoad.psd1
#>
param(
    [ValidateSet('1.13', '2.6', 'All')]
    [string]$Torch = 'All',
    [string[]]$Seeds = @('1234'),   # also "1,2,3": pwsh -File passes a list as one string
    [int]$Cases = 150,
    [string]$ModulePath = './module/TorchLoad.psd1',
    [string]$OutDir = './bench-out/differential',
    [string]$ChrootDir = $(if ($env:TORCHLOAD_TORCH26_CHROOT) { $env:TORCHLOAD_TORCH26_CHROOT } else { '/srv/trixie' }),
    [string]$HostPython = '/usr/bin/python3',

    # Instead of the random run: rewrite the regression fixtures (make_cases.py --regressions, torch 2.6) into this folder.
    [string]$RegressionsDir
)
$ErrorActionPreference = 'Stop'
$here = $PSScriptRoot
$pwsh = Join-Path $PSHOME 'pwsh'
$generator = Join-Path $here 'make_cases.py'
$required = $Torch -ne 'All' -or $RegressionsDir
$ran = [System.Collections.Generic.List[string]]::new()
$failedSets = [System.Collections.Generic.List[string]]::new()

function Invoke-Native([string[]]$Command) {
    & $Command[0] $Command[1..($Command.Count - 1)]
    if ($LASTEXITCODE) { throw "$($Command -join ' ') failed with exit code $LASTEXITCODE" }
}

function Compare-Set([string]$Label, [string]$CasesPath) {
    Write-Host "==> compare: $Label ($CasesPath)"
    & $pwsh -NoProfile -NonInteractive -File (Join-Path $here 'Compare-Differential.ps1') -ModulePath $ModulePath -CasesPath $CasesPath
    if ($LASTEXITCODE) { $failedSets.Add($Label) }
    $ran.Add($Label)
}

$OutDir = [IO.Path]::GetFullPath($OutDir)
$Seeds = @($Seeds -split '[,\s]+' | Where-Object { $_ } | ForEach-Object { [int]$_ })

if (($Torch -in '1.13', 'All') -and -not $RegressionsDir) {
    $ok = $true
    try { & $pwsh -NoProfile -NonInteractive -File (Join-Path $here '../../build/Install-DebianTorch.ps1') -Python $HostPython; if ($LASTEXITCODE) { throw "Install-DebianTorch.ps1 failed" } }
    catch { if ($required) { throw }; Write-Warning "torch 1.13 (host $HostPython) is not available: $_"; $ok = $false }
    if ($ok) {
        foreach ($seed in $Seeds) {
            $dir = Join-Path $OutDir "torch-1.13/seed-$seed"
            if (Test-Path -LiteralPath $dir) { Remove-Item -LiteralPath $dir -Recurse -Force }
            Write-Host "==> torch 1.13 (host): $Cases cases, seed $seed"
            Invoke-Native @($HostPython, $generator, '--out', $dir, '--n', "$Cases", '--seed', "$seed")
            Compare-Set "torch 1.13 seed $seed" $dir
        }
    }
}

if ($Torch -in '2.6', 'All') {
    $ok = & (Join-Path $here 'Initialize-TorchChroot.ps1') -ChrootDir $ChrootDir -Require:$required
    if ($ok) {
        $sudo = @(); if ((& id -u) -ne '0') { $sudo = @('sudo', '-n') }
        # the exchange folder: inside the chroot, one per run (runs may overlap), removed afterwards
        $inside = "/var/tmp/torchload-differential-$PID"
        $exchange = Join-Path $ChrootDir $inside.TrimStart('/')
        function Invoke-Chroot([string[]]$PyArgs) {
            Invoke-Native (@($sudo) + @('chroot', $ChrootDir, '/usr/bin/python3', '-W', 'ignore', "$inside/make_cases.py") + $PyArgs)
        }
        function Copy-Out([string]$From, [string]$To) {
            $null = New-Item -ItemType Directory -Force -Path $To
            Invoke-Native (@($sudo) + @('cp', '-r', "$From/.", $To))
            if ($sudo) { Invoke-Native (@($sudo) + @('chown', '-R', "$(& id -u):$(& id -g)", $To)) }
        }
        try {
            Invoke-Native (@($sudo) + @('mkdir', '-p', $exchange))
            Invoke-Native (@($sudo) + @('cp', $generator, (Join-Path $here 'regressions.py'), $exchange))
            if ($RegressionsDir) {
                $RegressionsDir = [IO.Path]::GetFullPath($RegressionsDir)
                Invoke-Chroot @('--regressions', "$inside/regressions")
                if (Test-Path -LiteralPath $RegressionsDir) { Get-ChildItem -LiteralPath $RegressionsDir -File | Remove-Item }
                Copy-Out "$exchange/regressions" $RegressionsDir
                Write-Host "==> regression fixtures written to $RegressionsDir"
                exit 0
            }
            foreach ($seed in $Seeds) {
                $dir = Join-Path $OutDir "torch-2.6/seed-$seed"
                if (Test-Path -LiteralPath $dir) { Remove-Item -LiteralPath $dir -Recurse -Force }
                Write-Host "==> torch 2.6 (chroot $ChrootDir): $Cases cases, seed $seed"
                Invoke-Chroot @('--out', "$inside/seed-$seed", '--n', "$Cases", '--seed', "$seed")
                Copy-Out "$exchange/seed-$seed" $dir
                Invoke-Native (@($sudo) + @('rm', '-rf', "$exchange/seed-$seed"))
                Compare-Set "torch 2.6 seed $seed" $dir
            }
        } finally {
            $rm = @($sudo) + @('rm', '-rf', $exchange)
            if (Test-Path -LiteralPath $exchange) { & $rm[0] $rm[1..($rm.Count - 1)] }
        }
    }
}

if ($ran.Count -eq 0) { Write-Host 'No torch version could run here.'; exit 1 }
Write-Host "==> differential: $($ran.Count) set(s) ($Cases cases each requested): $($ran -join '; ')"
if ($failedSets.Count) { Write-Host "==> disagreements in: $($failedSets -join '; ')"; exit 1 }
Write-Host '==> no disagreements'
exit 0
