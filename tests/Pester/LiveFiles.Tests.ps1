#requires -Version 7.4
# Checkpoints used where they are being written: an -Mmap load whose file is truncated or rewritten gives
# CheckpointChanged from every cmdlet and method that reads storage bytes (never SIGBUS), and
# Export-TorchSafetensors never destroys the file it replaces (full disk, Ctrl+C, errors, a stopped pipeline).

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    $module = "$repo/module/TorchLoad.psd1"
    Import-Module $module -Force
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    $sample = Join-Path $fixtures 'torch-1.13/sd_conv_linear.pt'
    $large = Join-Path $fixtures 'torch-1.13/large_1m_f32.pt'
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
    # torch.save opens the same file with 'wb': truncated in place, our handle stays open
    function Set-FileLength($Path, $Length) {
        $fs = [IO.FileStream]::new($Path, 'Open', 'Write', 'ReadWrite')
        try { $fs.SetLength($Length) } finally { $fs.Dispose() }
    }
    # the tensors of $Count separate loads of the 4 MB fixture (separate storages, none de-duplicated)
    function New-BigExport($Count) {
        $big = [ordered]@{}
        for ($i = 0; $i -lt $Count; $i++) { $big["t$i"] = (Get-TorchTensor -InputObject (Import-TorchCheckpoint $large))[0].Tensor }
        $big
    }
    function Get-Names($Folder) { @(Get-ChildItem -LiteralPath $Folder -Force | ForEach-Object Name | Sort-Object) }
}

Describe '-Mmap over a file that another process truncates or rewrites' {
    BeforeEach {
        $path = Join-Path $TestDrive "$([guid]::NewGuid().ToString('N')).ckpt"   # the last test's storages still hold theirs
        Copy-Item -LiteralPath $sample -Destination $path -Force
        $sd = Import-TorchCheckpoint -LiteralPath $path -Mmap
        $sd['0.weight'].Storage.IsMapped | Should -BeTrue
    }

    It 'a fresh pwsh that maps a file and sees it truncated prints an error and goes on (no SIGBUS)' {
        $script = Join-Path $TestDrive 'truncate.ps1'
        Set-Content -LiteralPath $script -Value @'
param($Module, $Path)
Import-Module $Module
$x = Import-TorchCheckpoint -LiteralPath $Path -Mmap
[IO.File]::WriteAllBytes($Path, [byte[]]@())
$x['0.weight'].ToByteArray()
'alive after the error'
exit 0
'@
        $out = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -File $script -Module $module -Path $path 2>&1 | Out-String
        $LASTEXITCODE | Should -Be 0 -Because $out
        $out | Should -Match 'changed after it was opened'
        $out | Should -Match 'alive after the error'
    }

    It '<Name> gives CheckpointChanged after the file is truncated' -ForEach @(
        @{ Name = 'ToByteArray()'; Read = { param($sd) $sd['0.weight'].ToByteArray() } }
        @{ Name = 'ToArray()'; Read = { param($sd) $sd['3.weight'].ToArray() } }
        @{ Name = 'Storage.ToByteArray()'; Read = { param($sd) $sd['0.bias'].Storage.ToByteArray() } }
    ) {
        Set-FileLength $path 0
        $e = { & $Read $sd } | Should -Throw -PassThru
        $e.Exception.InnerException.Reason | Should -Be 'CheckpointChanged'
        $e.Exception.InnerException.Message | Should -BeLike "*$path*"
    }

    It 'Get-TorchTensor -Hash, Move-TorchStorage, Export-TorchSafetensors and Compare-TorchCheckpoint give CheckpointChanged errors' {
        Set-FileLength $path 100
        $null = Get-TorchTensor -InputObject $sd -Hash -ErrorVariable e1 -ErrorAction SilentlyContinue
        Get-ErrorId $e1[0] | Should -Be 'CheckpointChanged'
        $sd | Move-TorchStorage -Device 'ilgpu-cpu' -ErrorVariable e2 -ErrorAction SilentlyContinue
        Get-ErrorId $e2[0] | Should -Be 'CheckpointChanged'
        $dst = Join-Path $TestDrive 'out.safetensors'
        $null = Export-TorchSafetensors -InputObject $sd -Destination $dst -ErrorVariable e3 -ErrorAction SilentlyContinue
        Get-ErrorId $e3[0] | Should -Be 'CheckpointChanged'
        $dst | Should -Not -Exist
        $null = Compare-TorchCheckpoint -ReferenceObject $sd -DifferenceObject (Import-TorchCheckpoint $sample) -ErrorVariable e4 -ErrorAction SilentlyContinue
        Get-ErrorId $e4[0] | Should -Be 'CheckpointChanged'
    }

    It 'a rewrite with the same size gives CheckpointChanged, not the new bytes' {
        $bytes = [IO.File]::ReadAllBytes($path)
        $fs = [IO.FileStream]::new($path, 'Truncate', 'Write', 'ReadWrite')
        try { $fs.Write([byte[]]::new($bytes.Length), 0, $bytes.Length) } finally { $fs.Dispose() }
        [IO.File]::SetLastWriteTimeUtc($path, [datetime]::UtcNow.AddSeconds(5))   # the rewrite's clock tick, made certain
        $e = { $sd['0.weight'].ToArray() } | Should -Throw -PassThru
        $e.Exception.InnerException.Reason | Should -Be 'CheckpointChanged'
    }
}

Describe 'Export-TorchSafetensors never destroys the destination before it succeeds' {
    BeforeEach {
        $folder = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $folder
        $dst = Join-Path $folder 'model.safetensors'
        $null = Export-TorchSafetensors -InputObject (Import-TorchCheckpoint $sample) -Destination $dst
        $old = [IO.File]::ReadAllBytes($dst)
    }

    It 'a full disk (a real 8 MiB tmpfs, 16 MiB of tensors) leaves the old file byte-identical and no temporary file' {
        if (-not $IsLinux -or (& id -u) -ne '0') { Set-ItResult -Skipped -Because 'mounting a tmpfs needs root on Linux'; return }
        $mnt = Join-Path $folder 'small'
        $null = New-Item -ItemType Directory $mnt
        & mount -t tmpfs -o size=8m tmpfs $mnt 2>&1 | Out-Null
        if ($LASTEXITCODE -ne 0) { Set-ItResult -Skipped -Because 'mount -t tmpfs is not permitted here (a container without CAP_SYS_ADMIN)'; return }
        try {
            $target = Join-Path $mnt 'model.safetensors'
            Copy-Item -LiteralPath $dst -Destination $target
            $big = New-BigExport 4
            { Export-TorchSafetensors -InputObject $big -Destination $target -Force -ErrorAction Stop } | Should -Throw '*No space left*'
            [IO.File]::ReadAllBytes($target) | Should -Be $old
            Get-Names $mnt | Should -Be @('model.safetensors')
        }
        finally { & umount $mnt }
    }

    It 'Ctrl+C in the middle of the write leaves the old file byte-identical and no temporary file' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                param($Module, $Large, $Destination)
                Import-Module $Module
                $big = [ordered]@{}
                for ($i = 0; $i -lt 64; $i++) { $big["t$i"] = (Get-TorchTensor -InputObject (Import-TorchCheckpoint $Large))[0].Tensor }
                Export-TorchSafetensors -InputObject $big -Destination $Destination -Force
            }).AddArgument($module).AddArgument($large).AddArgument($dst)
            $async = $ps.BeginInvoke()
            $deadline = [datetime]::UtcNow.AddSeconds(60)
            while (-not (Get-ChildItem -LiteralPath $folder -Force -Filter '*.tmp') -and -not $async.IsCompleted -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 2 }
            $ps.Stop()   # what Ctrl+C does to the running pipeline
            $ps.InvocationStateInfo.State | Should -Be 'Stopped' -Because 'the stop must land while the 256 MiB export is being written'
        }
        finally { $ps.Dispose() }
        [IO.File]::ReadAllBytes($dst) | Should -Be $old
        Get-Names $folder | Should -Be @('model.safetensors')
    }

    It 'an error from a tensor''s bytes (its -Mmap file truncated) leaves the old file byte-identical' {
        $src = Join-Path $folder 'src.pt'
        Copy-Item -LiteralPath $sample -Destination $src
        $sd = Import-TorchCheckpoint -LiteralPath $src -Mmap
        Set-FileLength $src 10
        $null = Export-TorchSafetensors -InputObject $sd -Destination $dst -Force -ErrorVariable e -ErrorAction SilentlyContinue
        Get-ErrorId $e[0] | Should -Be 'CheckpointChanged'
        [IO.File]::ReadAllBytes($dst) | Should -Be $old
        Get-Names $folder | Should -Be @('model.safetensors', 'src.pt')
    }

    It 'a pipeline stopped by Select-Object -First leaves a whole file and no temporary file' {
        $sd = Import-TorchCheckpoint $large
        $out = 1..3 | ForEach-Object { $sd } | Export-TorchSafetensors -Destination $dst -Force | Select-Object -First 1
        $out.Name | Should -Be 'model.safetensors'
        Get-Names $folder | Should -Be @('model.safetensors')
        (Get-TorchTensor -LiteralPath $dst -Hash).Sha256 | Should -Be (Get-TorchTensor -LiteralPath $large -Hash).Sha256
    }
}
