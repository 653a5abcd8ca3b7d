#requires -Version 7.4
<#
.SYNOPSIS
    Makes sure a Debian 13 (trixie) chroot with torch 2.6 (python3-torch) exists at -ChrootDir, creating it
    when missing, and that its /proc is mounted. Used by build.ps1 -Task Differential -Torch 2.6|All.

.DESCRIPTION
    A chroot that already imports torch is reused as it is. Otherwise, as root (or with sudo -n):
        debootstrap --variant=minbase trixie DIR; cp /etc/resolv.conf DIR/etc/; mount -t proc proc DIR/proc
        chroot DIR apt-get update
        chroot DIR apt-get install -y --no-install-recommends python3-torch python3-numpy python3-safetensors
    (about 5-10 minutes and 2.5 GB). Prints what it does; returns $true when the chroot is usable, $false
    (with the reason as a warning) when it cannot be made here; -Require turns that into an error.
#>
param(
    [string]$ChrootDir = $(if ($env:TORCHLOAD_TORCH26_CHROOT) { $env:TORCHLOAD_TORCH26_CHROOT } else { '/srv/trixie' }),
    [switch]$Require
)
$ErrorActionPreference = 'Stop'

function Give-Up([string]$Why) {
    if ($Require) { throw $Why }
    Write-Warning $Why
    return $false
}

$isRoot = (& id -u) -eq '0'
# (an if/else yielding @() would give $null: an empty array does not survive the pipeline)
$sudo = @()
if (-not $isRoot) {
    if (-not (Get-Command sudo -ErrorAction Ignore)) { return Give-Up "torch 2.6 needs a Debian 13 chroot at $ChrootDir; making or entering one needs root (or sudo)." }
    $sudo = @('sudo', '-n')
}

function Invoke-Root([string[]]$Command, [string]$Log) {
    $full = @($sudo) + $Command
    if ($Log) { & $full[0] $full[1..($full.Count - 1)] *>> $Log } else { & $full[0] $full[1..($full.Count - 1)] | Out-Host }
    if ($LASTEXITCODE) { throw "$($full -join ' ') failed with exit code $LASTEXITCODE$(if ($Log) { " (see $Log)" })" }
}

function Test-Mounted([string]$Dir) {
    $target = (Resolve-Path -LiteralPath $Dir).Path.TrimEnd('/')
    return [bool](Get-Content /proc/mounts | Where-Object { ($_ -split ' ')[1] -eq $target })
}

function Mount-Proc {
    $proc = Join-Path $ChrootDir 'proc'
    if (-not (Test-Mounted $proc)) { Invoke-Root @('mount', '-t', 'proc', 'proc', $proc) }
}

function Test-ChrootTorch {
    if (-not (Test-Path -LiteralPath (Join-Path $ChrootDir 'usr/bin/python3'))) { return $false }
    Mount-Proc
    $full = @($sudo) + @('chroot', $ChrootDir, '/usr/bin/python3', '-c', 'import torch, numpy')
    & $full[0] $full[1..($full.Count - 1)] 2>$null
    return $LASTEXITCODE -eq 0
}

if (Test-ChrootTorch) { return $true }

$log = Join-Path ([IO.Path]::GetTempPath()) 'torchload-trixie-chroot.log'
if (-not (Test-Path -LiteralPath (Join-Path $ChrootDir 'usr/bin/apt-get'))) {
    if (-not (Get-Command debootstrap -ErrorAction Ignore)) {
        Write-Host "==> installing debootstrap on the host (apt-get install -y debootstrap)"
        $env:DEBIAN_FRONTEND = 'noninteractive'
        Invoke-Root @('apt-get', 'install', '-y', 'debootstrap') $log
    }
    Write-Host "==> no Debian 13 chroot at ${ChrootDir}: debootstrap --variant=minbase trixie $ChrootDir (several minutes; log: $log)"
    Invoke-Root @('debootstrap', '--variant=minbase', 'trixie', $ChrootDir) $log
}
Invoke-Root @('cp', '/etc/resolv.conf', (Join-Path $ChrootDir 'etc/resolv.conf'))
Mount-Proc
Write-Host "==> installing python3-torch (2.6) in the chroot $ChrootDir (apt-get; log: $log)"
Invoke-Root @('chroot', $ChrootDir, 'apt-get', 'update') $log
Invoke-Root @('chroot', $ChrootDir, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '--no-install-recommends',
    'python3-torch', 'python3-numpy', 'python3-safetensors') $log
if (-not (Test-ChrootTorch)) { return Give-Up "the chroot at $ChrootDir still cannot import torch (see $log)." }
Write-Host "==> chroot ready: $ChrootDir"
return $true
