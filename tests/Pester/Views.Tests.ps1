#requires -Version 7.4
# The format views as a user sees them: rendered text at 80 and 120 columns. A tensor prints like torch
# (values, summarised), audit rows name their file, globals and findings read as text, unloaded storages say so.

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $data = "$repo/tests/TorchLoad.Tests/Data"
    $sample = "$repo/samples/sd_conv_linear.pt"
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    function Get-Lines([object[]]$InputObject, [int]$Width, [switch]$List) {
        $text = if ($List) { $InputObject | Format-List | Out-String -Width $Width } else { $InputObject | Out-String -Width $Width }
        @($text -split "`r?`n" | Where-Object { $_.Trim() })
    }
}

Describe 'A tensor prints like torch' {
    It 'shows a header and the values, in a few lines' {
        $sd = Import-TorchCheckpoint $sample
        $lines = Get-Lines $sd['3.bias'] 80
        $lines[0] | Should -Be 'Tensor float32 (5) on cpu'
        $lines[1] | Should -Match '^tensor\(\[-0\.\d{4}, '
        $lines.Count | Should -Be 2
    }

    It 'summarises a large tensor with ... in a handful of lines that fit <Width> columns' -ForEach @(@{ Width = 80 }, @{ Width = 120 }) {
        $cases = Import-TorchCheckpoint "$data/repr-cases.pt"
        $lines = Get-Lines $cases['f32_summarized_2d'] $Width
        $lines[0] | Should -Be 'Tensor float32 (40, 50) on cpu'
        ($lines -join "`n") | Should -Match '\.\.\.'
        $lines.Count | Should -BeLessOrEqual 9
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 }
    }

    It 'shows dtype, qscheme and dequantized values of a quantized tensor' {
        $cases = Import-TorchCheckpoint "$data/repr-cases.pt"
        $text = $cases['q_per_tensor'] | Out-String -Width 80
        $text | Should -Match 'Tensor quint8 \(4\) on cpu, per_tensor_affine scale=0\.1 zero_point=10'
        $text | Should -Match 'tensor\(\[-1\.,  0\.,  1\.,  2\.\], size=\(4,\), dtype=torch\.quint8'
    }

    It 'Format-List shows only the properties that apply to a plain tensor' {
        $sd = Import-TorchCheckpoint $sample
        $lines = Get-Lines $sd['0.weight'] 80 -List
        $names = $lines | ForEach-Object { ($_ -split ':')[0].Trim() }
        $names | Should -Contain 'DType'
        $names | Should -Contain 'Shape'
        foreach ($absent in 'QScales', 'Indices', 'CrowIndices', 'NestedSizes', 'QScheme', 'IsNested', 'PythonState') { $names | Should -Not -Contain $absent }
        $lines.Count | Should -BeLessOrEqual 8
    }

    It 'Format-List shows the quantization of a per-channel quantized tensor' {
        $sd = Import-TorchCheckpoint "$fixtures/torch-2.6/quantized_per_channel.pt"
        $t = Get-TorchTensor -InputObject $sd | Where-Object { $_.DType -like 'q*' } | Select-Object -First 1
        $text = $t.Tensor | Format-List | Out-String -Width 120
        $text | Should -Match 'QScheme\s+: per_channel'
        $text | Should -Match 'QAxis'
        $text | Should -Not -Match 'CrowIndices'
    }

    It 'a sparse tensor lists its parts and its layout' {
        $sd = Import-TorchCheckpoint "$fixtures/torch-2.6/sparse_coo_csr.pt"
        $coo = (Get-TorchTensor -InputObject $sd | Where-Object Layout -eq 'sparse_coo' | Select-Object -First 1).Tensor
        $text = $coo | Out-String -Width 80
        $text | Should -Match 'sparse_coo'
        $text | Should -Match 'indices=tensor\('
        $text | Should -Match 'values=tensor\('
    }
}

Describe 'Audit and listing views' {
    It 'Test-TorchCheckpoint table starts with the verdict and names each file at <Width> columns' -ForEach @(@{ Width = 80 }, @{ Width = 120 }) {
        $lines = Get-Lines (Get-ChildItem "$data/*.pt" | Test-TorchCheckpoint) $Width
        $lines[0] | Should -Match '^Verdict\s+File\s'
        $lines | Where-Object { $_ -match 'allclose-reference\.pt' } | Should -Match '^Safe\s+allclose-reference\.pt'
        $lines.Count | Should -Be 5
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual $Width }
    }

    It 'prints globals and findings as readable lines in Format-List, also after other output' {
        $text = & { 'first'; Test-TorchCheckpoint "$fixtures/bad/builtins_eval_in_legacy.pt" | Format-List } | Out-String -Width 120
        $text | Should -Not -Match 'GlobalFinding \{'
        $text | Should -Match 'builtins\.eval \(Dangerous\)'
        $text | Should -Match 'Findings\s+: Dangerous global builtins\.eval'
        ((Test-TorchCheckpoint $sample).Globals | Out-String) | Should -Match 'Allowed\s+1 collections\.OrderedDict'
    }

    It 'Get-TorchStorage -Path says its storages are not loaded, not meta' {
        $text = Get-TorchStorage -Path $sample | Out-String -Width 80
        $text | Should -Match 'not loaded'
        $text | Should -Not -Match '\bmeta\b'
        (Get-TorchStorage -Path $sample)[0].IsLoaded | Should -BeFalse
        (Get-TorchStorage -InputObject (Import-TorchCheckpoint $sample))[0].Device | Should -Be 'cpu'
    }

    It '<Name> fits <Width> columns' -ForEach @(
        foreach ($w in 80, 120) {
            @{ Name = 'Get-TorchTensor'; Width = $w; Make = { Get-TorchTensor $sample -Hash } }
            @{ Name = 'Get-TorchStorage'; Width = $w; Make = { Get-TorchStorage -Path $sample } }
            @{ Name = 'Measure-TorchTensor'; Width = $w; Make = { Measure-TorchTensor "$data/allclose-reference.pt" } }
            @{ Name = 'Compare-TorchCheckpoint'; Width = $w; Make = { Compare-TorchCheckpoint "$data/allclose-reference.pt" "$data/allclose-difference.pt" } }
            @{ Name = 'Get-TorchDevice'; Width = $w; Make = { Get-TorchDevice } }
        }) {
        $lines = Get-Lines (& $Make) $Width
        $lines.Count | Should -BeGreaterThan 2
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual $Width }
        $lines[0] | Should -Not -Match 'TorchLoad\.Core'
    }

    It 'Measure-TorchTensor rows show counts and values, not type names' {
        $text = Measure-TorchTensor $sample | Out-String -Width 80
        $text | Should -Match '0\.weight\s+float32\s+0/0\s+-0\.1913\s+0\.1902'
    }

    It 'a changed row says how far apart the values are' {
        $text = Compare-TorchCheckpoint "$data/allclose-reference.pt" "$data/allclose-difference.pt" | Out-String -Width 120
        $text | Should -Match 'f32_one_element\s+Values\s+0\.25 at \[227\]'
        $text | Should -Match 'shape_differs\s+Shape\s+float32\(64, 32\) -> float32\(32, 64\)'
    }
}
