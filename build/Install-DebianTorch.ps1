#requires -Version 7.4
<#
.SYNOPSIS
    Makes sure /usr/bin/python3 can import torch (Debian's python3-torch), installing it with apt-get if not.
    Used by the Bench and Differential tasks; the build and tests never need it.
#>
param([string]$Python = '/usr/bin/python3')
$ErrorActionPreference = 'Stop'

function Test-Torch {
    if (-not (Test-Path -LiteralPath $Python)) { return $false }
    & $Python -c 'import torch' 2>$null
    $LASTEXITCODE -eq 0
}

if (Test-Torch) { return }
Write-Host "==> $Python cannot import torch: apt-get install -y python3-torch python3-numpy (about a minute)"
$env:DEBIAN_FRONTEND = 'noninteractive'
$isRoot = (& id -u) -eq '0'
$prefix = if ($isRoot) { @() } elseif (Get-Command sudo -ErrorAction Ignore) { @('sudo', '-n') }
          else { throw "Installing python3-torch needs root (or sudo): run 'apt-get install -y python3-torch python3-numpy' as root." }
foreach ($cmd in @(@('apt-get', 'update'), @('apt-get', 'install', '-y', 'python3-torch', 'python3-numpy'))) {
    $full = @($prefix) + $cmd
    & $full[0] $full[1..($full.Count - 1)]
    if ($LASTEXITCODE) { throw "$($full -join ' ') failed with exit code $LASTEXITCODE" }
}
if (-not (Test-Torch)) { throw "$Python still cannot import torch after installing python3-torch" }
