#requires -Version 7.4
# Measure-TorchTensor, Test-TorchCheckpoint -CheckValues and Compare-TorchCheckpoint's tolerances through the
# module. The numbers themselves are checked against torch in the xunit tests (TensorStatisticsTests,
# ToleranceComparisonTests); here: inputs, filtering, devices, errors and the audit's findings.

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $data = "$repo/tests/TorchLoad.Tests/Data"
    $sample = "$repo/samples/sd_conv_linear.pt"
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
}

Describe 'Measure-TorchTensor' {
    It 'writes one row per tensor with the statistics torch gives' {
        $rows = @(Measure-TorchTensor $sample)
        $rows.Name | Should -Be @('0.weight', '0.bias', '3.weight', '3.bias')
        $w = $rows[0]
        $w.ElementCount | Should -Be 108
        $w.NaNCount + $w.InfCount | Should -Be 0
        $w.Min | Should -BeLessThan $w.Mean
        # torch 1.13: x.double().std() = 0.10605963382189523, x.norm() = 1.098146147545612
        [Math]::Abs($w.Std - 0.10605963382189523) | Should -BeLessThan 1e-12
        [Math]::Abs($w.L2Norm - 1.098146147545612) | Should -BeLessThan 1e-12
        $w.Path | Should -Be $sample
    }

    It 'takes wildcards in -Name, files from the pipeline and loaded objects' {
        (Measure-TorchTensor $sample -Name '*.bias').Name | Should -Be @('0.bias', '3.bias')
        @(Get-Item $sample | Measure-TorchTensor).Count | Should -Be 4
        (Import-TorchCheckpoint $sample | Measure-TorchTensor -Name '3.*').Name | Should -Be @('3.weight', '3.bias')
        $t = (Import-TorchCheckpoint $sample)['0.bias']
        ($t | Measure-TorchTensor).ElementCount | Should -Be 4
    }

    It 'counts NaN and Inf and leaves them out of the other statistics' {
        $row = Measure-TorchTensor "$data/allclose-reference.pt" -Name 'f32_nan_both'
        $row.NaNCount | Should -Be 1
        $row.InfCount | Should -Be 1
        $row.FiniteCount | Should -Be 2046
        [double]::IsFinite($row.Mean) | Should -BeTrue
        $row.HasNonFinite | Should -BeTrue
    }

    It 'gives the same numbers on ilgpu-cpu' {
        $cpu = Measure-TorchTensor "$data/allclose-reference.pt"
        $gpu = Measure-TorchTensor "$data/allclose-reference.pt" -Device ilgpu-cpu
        $gpu[0].Device | Should -Be 'ilgpu-cpu'
        for ($i = 0; $i -lt $cpu.Count; $i++) {
            $gpu[$i].NaNCount | Should -Be $cpu[$i].NaNCount
            $gpu[$i].ZeroCount | Should -Be $cpu[$i].ZeroCount
            [Math]::Abs($gpu[$i].Std - $cpu[$i].Std) | Should -BeLessOrEqual (1e-9 * [Math]::Abs($cpu[$i].Std))
            [Math]::Abs($gpu[$i].L2Norm - $cpu[$i].L2Norm) | Should -BeLessOrEqual (1e-9 * $cpu[$i].L2Norm)
        }
    }

    It 'measures storages already on ilgpu-cpu in place, and on the host through a copy' {
        $sd = Import-TorchCheckpoint $sample
        $cpu = Measure-TorchTensor -InputObject $sd
        $sd | Move-TorchStorage -Device ilgpu-cpu
        $sd['0.weight'].Device | Should -Be 'ilgpu-cpu'
        foreach ($device in 'ilgpu-cpu', 'cpu') {
            $rows = Measure-TorchTensor -InputObject $sd -Device $device
            for ($i = 0; $i -lt $cpu.Count; $i++) {
                $rows[$i].Min | Should -Be $cpu[$i].Min
                [Math]::Abs($rows[$i].Mean - $cpu[$i].Mean) | Should -BeLessOrEqual (1e-12 * [Math]::Abs($cpu[$i].L2Norm))
            }
        }
        $text = $sd['3.bias'] | Out-String -Width 80
        $text | Should -Match 'Tensor float32 \(5\) on ilgpu-cpu'
        $text | Should -Match "device='ilgpu-cpu'"
    }

    It 'ends with DeviceUnavailable for a device that is not there' {
        { Measure-TorchTensor $sample -Device 'cuda:7' -ErrorAction Stop } | Should -Throw -ErrorId 'DeviceUnavailable,TorchLoad.Commands.MeasureTorchTensorCommand'
    }

    It 'skips meta tensors with a warning' {
        $rows = Measure-TorchTensor "$fixtures/torch-2.6/meta_tensors.pt" -WarningVariable w -WarningAction SilentlyContinue
        $w.Count | Should -BeGreaterThan 0
        "$($w[0])" | Should -Match 'meta tensor'
        @($rows | Where-Object Device -eq 'meta').Count | Should -Be 0
    }

    It 'writes an error for a file that cannot be read and goes on' {
        $rows = Measure-TorchTensor "$fixtures/bad/builtins_eval_in_legacy.pt", $sample -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -BeLike 'UnsafeGlobal,*'
        @($rows).Count | Should -Be 4
    }
}

Describe 'Measure-TorchTensor and -CheckValues from streams, folders and changed files' {
    It 'measures a checkpoint from a byte array and a non-seekable stream as from its path' {
        $expected = @(Measure-TorchTensor $sample | ForEach-Object { '{0} {1} {2:R} {3:R}' -f $_.Name, $_.ElementCount, $_.Mean, $_.Std })
        $bytes = [IO.File]::ReadAllBytes($sample)
        @(Measure-TorchTensor -InputStream $bytes | ForEach-Object { '{0} {1} {2:R} {3:R}' -f $_.Name, $_.ElementCount, $_.Mean, $_.Std }) | Should -Be $expected
        $packed = [IO.MemoryStream]::new()
        $gz = [IO.Compression.GZipStream]::new($packed, [IO.Compression.CompressionLevel]::Fastest, $true); $gz.Write($bytes, 0, $bytes.Length); $gz.Dispose()
        $packed.Position = 0
        $unpacked = [IO.Compression.GZipStream]::new($packed, [IO.Compression.CompressionMode]::Decompress)
        try { @(Measure-TorchTensor -InputStream $unpacked | ForEach-Object { '{0} {1} {2:R} {3:R}' -f $_.Name, $_.ElementCount, $_.Mean, $_.Std }) | Should -Be $expected }
        finally { $unpacked.Dispose() }
    }

    It '-CheckValues reads a stream and a DCP folder too' {
        (Test-TorchCheckpoint -InputStream ([IO.File]::ReadAllBytes("$data/allclose-reference.pt")) -CheckValues).NonFiniteTensorCount | Should -Be 3
        $dcp = Test-TorchCheckpoint "$fixtures/dcp/model_plain" -CheckValues
        $dcp.Verdict | Should -Be 'Safe'
        $dcp.NonFiniteTensorCount | Should -Be 0
        @(Measure-TorchTensor "$fixtures/dcp/model_plain").Count | Should -Be @(Get-TorchTensor "$fixtures/dcp/model_plain").Count
    }

    It 'gives CheckpointChanged, not a crash, for an -Mmap checkpoint whose file was truncated' {
        $copy = Join-Path ([IO.Path]::GetTempPath()) "tl-stats-$PID.pt"
        Copy-Item $sample $copy
        try {
            $sd = Import-TorchCheckpoint $copy -Mmap
            $fs = [IO.FileStream]::new($copy, 'Open', 'Write', 'ReadWrite'); try { $fs.SetLength(100) } finally { $fs.Dispose() }
            $null = $sd | Measure-TorchTensor -ErrorVariable err -ErrorAction SilentlyContinue
            @($err).Count | Should -BeGreaterThan 0
            Get-ErrorId $err[0] | Should -Be 'CheckpointChanged'
        } finally { Remove-Item $copy -ErrorAction Ignore }
    }
}

Describe 'Test-TorchCheckpoint -CheckValues' {
    It 'adds a finding per tensor with NaN or Inf and counts them; the verdict stays Safe' {
        $r = Test-TorchCheckpoint "$data/allclose-reference.pt" -CheckValues
        $r.Verdict | Should -Be 'Safe'
        $r.NonFiniteTensorCount | Should -Be 3
        @($r.Findings -like 'Non-finite values in *').Count | Should -Be 3
        $r.Findings | Should -Contain 'Non-finite values in f32_nan_both: 1 NaN and 1 Inf of 2048 (float32, shape (64, 32))'
    }

    It 'leaves the count empty without -CheckValues, and 0 for a clean file' {
        (Test-TorchCheckpoint "$data/allclose-reference.pt").NonFiniteTensorCount | Should -BeNullOrEmpty
        (Test-TorchCheckpoint $sample -CheckValues).NonFiniteTensorCount | Should -Be 0
    }

    It 'finds the diverged checkpoints of a folder (help example)' {
        $found = Get-ChildItem "$data/*.pt" | Test-TorchCheckpoint -CheckValues -SkipCrc | Where-Object NonFiniteTensorCount
        @($found).Name | Should -Be @('allclose-difference.pt', 'allclose-reference.pt', 'repr-cases.pt')   # repr-cases holds f32_nonfinite
    }
}

Describe 'Compare-TorchCheckpoint tolerances' {
    It 'a difference within the tolerance is not a change; dtype and shape differences stay changes' {
        $rows = Compare-TorchCheckpoint "$data/allclose-reference.pt" "$data/allclose-difference.pt" -AbsoluteTolerance 1e-3
        $rows.Name | Should -Not -Contain 'f32_tiny'
        $rows.Name | Should -Contain 'f32_small'
        ($rows | Where-Object Name -eq 'shape_differs').Changes | Should -Be 'Shape'
        ($rows | Where-Object Name -eq 'dtype_differs').Changes | Should -Be 'DType'
    }

    It 'NaN equals NaN only with -EqualNaN' {
        $a = "$data/allclose-reference.pt"; $b = "$data/allclose-difference.pt"
        (Compare-TorchCheckpoint $a $b -AbsoluteTolerance 1e-3).Name | Should -Contain 'f32_nan_both'
        (Compare-TorchCheckpoint $a $b -AbsoluteTolerance 1e-3 -EqualNaN).Name | Should -Not -Contain 'f32_nan_both'
    }

    It 'says by how much and where a tensor changed' {
        $row = Compare-TorchCheckpoint "$data/allclose-reference.pt" "$data/allclose-difference.pt" | Where-Object Name -eq 'f32_one_element'
        $row.MaxAbsDiff | Should -Be 0.25
        $row.MaxDiffIndex | Should -Be 227
        $row.MismatchCount | Should -Be 1
    }
}
