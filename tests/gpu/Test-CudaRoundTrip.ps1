#requires -Version 7.4
<#
.SYNOPSIS
    On a machine with CUDA: loads a 1 GiB checkpoint onto cuda:0, moves it back, checks every byte
    and prints GB/s each way. Not part of the Test task (CI has no GPU).
.DESCRIPTION
    Makes the input itself (no PyTorch needed): a zip-format checkpoint written by
    make_checkpoint.py with Python's standard library (64 float32 tensors of 16 MiB, torch.save's
    layout). Then, in this process: Import-TorchCheckpoint -MapLocation cpu (reference bytes),
    Move-TorchStorage -Device cuda:0 (timed), Move-TorchStorage -Device cpu (timed), and a byte-by-byte
    comparison with the reference. Exits 1 on any mismatch or when no CUDA device is found.
.EXAMPLE
    dotnet pwsh -NoProfile -File tests/gpu/Test-CudaRoundTrip.ps1 -ModulePath ./module/TorchLoad.psd1
#>
param(
    [string]$ModulePath = "$PSScriptRoot/../../module/TorchLoad.psd1",
    [string]$WorkDir = ([System.IO.Path]::GetTempPath()),
    [int]$Tensors = 64,
    [int]$TensorMiB = 16
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force
$file = Join-Path $WorkDir 'gpu-roundtrip.pt'
if (-not (Test-Path $file)) {
    $python = if (Test-Path /usr/bin/python3) { '/usr/bin/python3' } else { 'python3' }
    & $python "$PSScriptRoot/make_checkpoint.py" $file $Tensors $TensorMiB
    if ($LASTEXITCODE) { throw "make_checkpoint.py failed ($LASTEXITCODE)" }
}
Get-TorchDevice | Format-Table | Out-String | Write-Host
if (-not (Get-TorchDevice -Name 'cuda:0')) { Write-Host 'FAIL: no cuda:0 device (is libcuda.so.1 present?)'; exit 1 }

$sd = Import-TorchCheckpoint -LiteralPath $file -MapLocation cpu
$storages = @(Get-TorchStorage -InputObject $sd)
$bytes = ($storages | Measure-Object ByteLength -Sum).Sum
$reference = @{}
foreach ($s in $storages) { $reference[$s.Key] = [System.Security.Cryptography.SHA256]::HashData($s.ToByteArray()) }

$watch = [System.Diagnostics.Stopwatch]::StartNew()
$storages | Move-TorchStorage -Device cuda:0
$up = $watch.Elapsed.TotalSeconds
$onDevice = @($storages | Where-Object Device -eq 'cuda:0').Count
$watch.Restart()
$storages | Move-TorchStorage -Device cpu
$down = $watch.Elapsed.TotalSeconds

$bad = @($storages | Where-Object { -not [System.Linq.Enumerable]::SequenceEqual([byte[]]$reference[$_.Key], [byte[]][System.Security.Cryptography.SHA256]::HashData($_.ToByteArray())) })
'{0:N0} bytes in {1} storages; on cuda:0: {2}' -f $bytes, $storages.Count, $onDevice
'host -> cuda:0: {0:N3} s, {1:N2} GB/s' -f $up, ($bytes / $up / 1e9)
'cuda:0 -> host: {0:N3} s, {1:N2} GB/s' -f $down, ($bytes / $down / 1e9)
if ($bad.Count -or $onDevice -ne $storages.Count) { "FAIL: $($bad.Count) storages differ after the round trip"; exit 1 }
'PASS: every byte survived the round trip'
