#requires -Version 7.4
# DCP checkpoint folders through the cmdlets (issue 12): folders in pipelines, listing from .metadata alone,
# hashes comparable with torch.save files, chunk rows, the audit, the safetensors export policy.
# Expected values come from the manifests of tests/fixtures/dcp and tests/fixtures/dcp-generated.
# Fixtures are read in place and never modified; changed copies live in $TestDrive.

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $dcp = (Resolve-Path "$repo/tests/fixtures/dcp").Path
    $generated = "$repo/tests/fixtures/dcp-generated"
    $script:manifest = Get-Content -LiteralPath "$dcp/manifest.json" -Raw | ConvertFrom-Json -AsHashtable -Depth 500
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
    function Get-Entry([string]$Dir) { $script:manifest.checkpoints | Where-Object { $_.dir -eq $Dir } }
}

Describe 'DCP folders' {
    It 'Get-ChildItem -Directory | Test-TorchCheckpoint audits every folder; one without .metadata is NotACheckpoint' {
        $root = Join-Path $TestDrive 'zoo'
        Copy-Item -Recurse -LiteralPath "$dcp/model_plain" -Destination (Join-Path $root 'good')
        $null = New-Item -ItemType Directory -Path (Join-Path $root 'empty')
        $results = @(Get-ChildItem -LiteralPath $root -Directory | Test-TorchCheckpoint | Sort-Object Path)
        $results.Count | Should -Be 2
        $results[0].ErrorId | Should -Be 'NotACheckpoint'
        $results[1].Verdict | Should -Be 'Safe'
        $results[1].Format | Should -Be 'dcp'
        { Import-TorchCheckpoint -LiteralPath (Join-Path $root 'empty') -ErrorAction Stop } | Should -Throw -ErrorId 'NotACheckpoint,TorchLoad.Commands.ImportTorchCheckpointCommand'
    }

    It 'Test-TorchCheckpoint names the code-execution global of a hostile .metadata (Unsafe)' {
        $r = Test-TorchCheckpoint -LiteralPath "$generated/hostile_metadata_exec"
        $r.Verdict | Should -Be 'Unsafe'
        ($r.Globals | Where-Object Name -eq 'posix.system').Verdict | Should -Be 'Dangerous'
        (Test-TorchCheckpoint -LiteralPath "$generated/hostile_bytes_exec").Verdict | Should -Be 'Unsafe'
        (Test-TorchCheckpoint -LiteralPath "$generated/hostile_traversal").ErrorId | Should -Be 'InvalidRecordName'
    }

    It 'Get-TorchTensor lists a folder from .metadata with chunk counts and files' {
        $rows = @(Get-TorchTensor -LiteralPath "$dcp/fsdp2_2rank_adam")
        $tensors = @((Get-Entry 'fsdp2_2rank_adam').entries | Where-Object kind -eq 'tensor')
        $rows.Count | Should -Be $tensors.Count
        $w = $rows | Where-Object Name -eq $tensors[0].path_str
        $w.ChunkCount | Should -Be $tensors[0].chunks.Count
        @($w.Files).Count | Should -BeGreaterThan 0
    }

    It 'Get-TorchTensor -Hash equals the manifest hashes, and Compare-TorchCheckpoint finds a folder equal to its torch.save export' {
        $entry = Get-Entry 'model_plain'
        $rows = @(Get-TorchTensor -LiteralPath "$dcp/model_plain" -Hash)
        foreach ($t in $entry.entries) { ($rows | Where-Object Name -eq $t.path_str).Sha256 | Should -Be $t.sha256 }
        # the same tensors in another format (a safetensors export): no differences
        $st = Join-Path $TestDrive 'plain.safetensors'
        $null = Export-TorchSafetensors -LiteralPath "$dcp/model_plain" -Destination $st
        @(Compare-TorchCheckpoint (Get-Item "$dcp/model_plain") (Get-Item $st)).Count | Should -Be 0
    }

    It 'Get-TorchStorage -Path lists the chunks with file, offset, length and box' {
        $chunks = @(Get-TorchStorage -LiteralPath "$dcp/fsdp2_2rank_adam")
        $expected = ((Get-Entry 'fsdp2_2rank_adam').entries | Where-Object kind -eq 'tensor' | ForEach-Object { $_.chunks.Count } | Measure-Object -Sum).Sum
        $chunks.Count | Should -Be $expected
        $chunks[0].File | Should -Match '^__\d+_\d+\.distcp$'
        $chunks[0].Length | Should -BeGreaterThan 0
        @($chunks | Where-Object { $_.File -eq '__1_0.distcp' }).Count | Should -BeGreaterThan 0
    }

    It 'Export-TorchSafetensors keeps JSON-able non-tensor entries as metadata and warns about the rest' {
        $st = Join-Path $TestDrive 'values.safetensors'
        $null = Export-TorchSafetensors -LiteralPath "$dcp/nontensor_values" -Destination $st -WarningVariable warn -WarningAction SilentlyContinue
        "$warn" | Should -Match 'tokens'
        "$warn" | Should -Match 'dtype'
        $bytes = [IO.File]::ReadAllBytes($st)
        $header = [Text.Encoding]::UTF8.GetString($bytes, 8, [BitConverter]::ToInt64($bytes, 0)) | ConvertFrom-Json -AsHashtable
        $header.__metadata__['config.name'] | Should -Be 'run-α'
        $header.__metadata__['config.layers'] | Should -Be '[4,8,16]'
        $header.__metadata__.Contains('tokens') | Should -BeFalse
    }

    It 'Import-TorchCheckpoint -Mmap maps a single-chunk tensor and loads the .metadata path as its folder' {
        $sd = Import-TorchCheckpoint -LiteralPath "$dcp/model_plain/.metadata" -Mmap
        $sd['proj.weight'].Storage.IsMapped | Should -BeTrue
        $sd['proj.weight'].Shape | Should -Be @(3, 4)
    }
}
