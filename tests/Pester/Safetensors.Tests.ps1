#requires -Version 7.4
# .safetensors files load like checkpoints (newest torch.load does the same): exported files come back
# with identical tensors, compare equal to their source, audit as Safe, and malformed headers are refused.

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
    function Get-Hex($Tensor) { [Convert]::ToHexString($Tensor.ToByteArray()) }
}

Describe 'Import-TorchCheckpoint reads .safetensors' {
    It 'round-trips <Name> through Export-TorchSafetensors with identical dtypes, shapes and values' -ForEach @(
        @{ Name = 'torch-1.13/sd_transformer_layer.pt' }
        @{ Name = 'torch-1.13/all_dtypes_zip.pt' }
        @{ Name = 'crafted/v3_unsigned_ints.pt' }
    ) {
        $source = Join-Path $fixtures $Name
        $target = Join-Path $TestDrive ((Split-Path $Name -Leaf) + '.safetensors')
        $original = Import-TorchCheckpoint $source -WeightsOnly:$false
        $exportable = [ordered]@{}
        foreach ($row in Get-TorchTensor -InputObject $original) {
            if ($row.DType -notin 'complex128', 'qint8', 'quint8', 'qint32', 'complex32' -and $row.Layout -eq 'strided') { $exportable[$row.Name] = $row.Tensor }
        }
        $null = Export-TorchSafetensors -InputObject $exportable -Destination $target -WarningAction SilentlyContinue
        $loaded = Import-TorchCheckpoint $target
        foreach ($name in $exportable.Keys) {
            $back = $loaded[$name]
            if ($null -eq $back) { continue }   # shared tensors are written once, under one name
            "$($back.DType)" | Should -Be "$($exportable[$name].DType)"
            @($back.Shape) | Should -Be @($exportable[$name].Shape)
            Get-Hex $back | Should -Be (Get-Hex $exportable[$name])
        }
        @($loaded.Keys).Count | Should -BeGreaterThan 0
    }

    It 'Compare-TorchCheckpoint finds a checkpoint and its safetensors export equal' {
        $source = Join-Path $fixtures 'torch-1.13/sd_conv_linear.pt'
        $target = Join-Path $TestDrive 'conv.safetensors'
        $null = Export-TorchSafetensors -LiteralPath $source -Destination $target
        @(Compare-TorchCheckpoint $source $target).Count | Should -Be 0
        @(Compare-TorchCheckpoint $source $target -IncludeEqual | Where-Object Change -eq 'Equal').Count | Should -Be 4
    }

    It 'lists, maps and audits a safetensors file' {
        $target = Join-Path $TestDrive 'conv2.safetensors'
        $null = Export-TorchSafetensors -LiteralPath (Join-Path $fixtures 'torch-1.13/sd_conv_linear.pt') -Destination $target -Metadata @{ source = 'test' }
        @(Get-TorchStorage -Path $target).Count | Should -Be 4
        $mapped = Import-TorchCheckpoint $target -Mmap
        @(Get-TorchStorage -InputObject $mapped).IsMapped | Should -Not -Contain $false
        (Test-TorchCheckpoint $target).Verdict | Should -Be 'Safe'
        (Test-TorchCheckpoint $target).Format | Should -Be 'safetensors'
    }

    It 'refuses a header whose offsets leave a gap' {
        $target = Join-Path $TestDrive 'gap.safetensors'
        $header = [Text.Encoding]::UTF8.GetBytes('{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')
        $bytes = [byte[]]::new(8 + $header.Length + 8)
        [BitConverter]::GetBytes([uint64]$header.Length).CopyTo($bytes, 0)
        $header.CopyTo($bytes, 8)
        [IO.File]::WriteAllBytes($target, $bytes)
        $err = $null
        try { Import-TorchCheckpoint $target -ErrorAction Stop } catch { $err = $_ }
        Get-ErrorId $err | Should -Be 'InvalidArchive'
        $err.Exception.Message | Should -Match 'gaps'
    }
}
