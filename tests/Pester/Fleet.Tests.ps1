#requires -Version 7.4
# The fleet recipe from the README: a folder of 1000 checkpoints audited with ForEach-Object -Parallel,
# a result for every file, and results that survive a job (plain values).

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    $module = "$repo/module/TorchLoad.psd1"
    Import-Module $module -Force
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    $folder = Join-Path $TestDrive 'zoo'
    $null = New-Item -ItemType Directory $folder
    # 1000 files: real state dicts, a payload, a truncated file, a TorchScript archive, in rotation
    $sources = @(
        (Join-Path $fixtures 'torch-1.13/sd_conv_linear.pt'), (Join-Path $fixtures 'torch-1.13/legacy_state_dict_linear.pt'),
        (Join-Path $fixtures 'bad/posix_system_in_zip.pt'), (Join-Path $fixtures 'bad/truncated_zip_half.pt'),
        (Join-Path $fixtures 'external/tch-rs/tests/foo.pt')
    )
    $expected = @{}
    for ($i = 0; $i -lt 1000; $i++) {
        $name = 'model{0:d4}.pt' -f $i
        Copy-Item -LiteralPath $sources[$i % 5] -Destination (Join-Path $folder $name)
        $expected[$name] = @('Safe', 'Safe', 'Unsafe', 'Corrupt', 'Unsupported')[$i % 5]
    }
}

Describe 'auditing a folder of 1000 checkpoints' {
    It 'ForEach-Object -Parallel gives a verdict for every file, the right one' {
        $results = Get-ChildItem $folder -Filter *.pt | ForEach-Object -ThrottleLimit 4 -Parallel {
            Import-Module $using:module
            Test-TorchCheckpoint -LiteralPath $_.FullName -SkipCrc
        }
        $results.Count | Should -Be 1000
        foreach ($r in $results) { "$($r.Verdict)" | Should -Be $expected[(Split-Path $r.Path -Leaf)] -Because $r.Path }
    }

    It 'survives a writer that truncates and rewrites a tenth of the files while they are audited: a result or an error for every file' {
        # the training job: torch.save rewrites files in place ('wb' truncates, then writes), here 100 of the 1000, over and over
        $targets = @(0..99 | ForEach-Object { Join-Path $folder ('model{0:d4}.pt' -f ($_ * 10 + 3)) })
        $contents = @{}
        foreach ($t in $targets) { $contents[$t] = [IO.File]::ReadAllBytes($t) }
        $state = [hashtable]::Synchronized(@{ Stop = $false; Rounds = 0 })
        $writer = Start-ThreadJob -ArgumentList $targets, $contents, $state -ScriptBlock {
            param($targets, $contents, $state)
            while (-not $state.Stop) {
                foreach ($t in $targets) {
                    $bytes = $contents[$t]
                    $fs = [IO.FileStream]::new($t, 'Truncate', 'Write', 'ReadWrite')
                    try {
                        $half = [int]($bytes.Length / 2)
                        $fs.Write($bytes, 0, $half); $fs.Flush()
                        [Threading.Thread]::Sleep(1)
                        $fs.Write($bytes, $half, $bytes.Length - $half)
                    }
                    finally { $fs.Dispose() }
                }
                $state.Rounds++
            }
        }
        try {
            $rows = Get-ChildItem $folder -Filter *.pt | ForEach-Object -ThrottleLimit 4 -Parallel {
                Import-Module $using:module
                $file = $_.FullName
                Test-TorchCheckpoint -LiteralPath $file -ErrorVariable failed -ErrorAction SilentlyContinue
                foreach ($e in $failed) { [pscustomobject]@{ Path = $file; ErrorId = ($e.FullyQualifiedErrorId -split ',')[0] } }
                if ($file -match '3\.pt$') {
                    # the -Mmap reader of a file being rewritten: values or CheckpointChanged, never a signal
                    $sd = Import-TorchCheckpoint -LiteralPath $file -Mmap -ErrorAction SilentlyContinue
                    if ($sd) { $null = Get-TorchTensor -InputObject $sd -Hash -ErrorAction SilentlyContinue }
                }
            }
        }
        finally {
            $state.Stop = $true
            $null = $writer | Wait-Job -Timeout 60
            $writer | Remove-Job -Force
            foreach ($t in $targets) { [IO.File]::WriteAllBytes($t, $contents[$t]) }   # the other tests see the original files
        }
        $state.Rounds | Should -BeGreaterThan 0 -Because 'the writer must have rewritten files during the audit'
        $byPath = $rows | Group-Object Path
        $byPath.Count | Should -Be 1000
        foreach ($g in $byPath) {
            $g.Count | Should -Be 1 -Because "$($g.Name) gets exactly one row"
            $leaf = Split-Path $g.Name -Leaf
            if ($g.Name -notin $targets) { "$($g.Group[0].Verdict)" | Should -Be $expected[$leaf] -Because "$leaf was not rewritten" }
        }
    }

    It 'a sequential pipeline of Import-TorchCheckpoint goes on past the files it cannot load' {
        $loaded = @(Get-ChildItem $folder -Filter 'model000*.pt' | Import-TorchCheckpoint -ErrorVariable errs -ErrorAction SilentlyContinue)
        $loaded.Count | Should -Be 4      # model0000, 0001, 0005, 0006 load; the payload, truncated and TorchScript ones fail
        @($errs).Count | Should -Be 6
    }
}

Describe 'results survive jobs' {
    It 'Test-TorchCheckpoint and Get-TorchTensor rows come back from a thread job with their values' {
        $file = Join-Path $fixtures 'torch-1.13/sd_conv_linear.pt'
        $job = Start-ThreadJob { Import-Module $using:module; Test-TorchCheckpoint $using:file; Get-TorchTensor $using:file -Hash }
        $out = $job | Receive-Job -Wait -AutoRemoveJob
        "$($out[0].Verdict)" | Should -Be 'Safe'
        $out[1].Name | Should -Be '0.weight'
        $out[1].DType | Should -Be 'float32'
        @($out[1].Shape) | Should -Be @(4, 3, 3, 3)
        $out[1].Sha256 | Should -Match '^[0-9a-f]{64}$'
    }

    It 'rows serialize for remoting with plain values' {
        $row = Get-TorchTensor (Join-Path $fixtures 'torch-1.13/sd_conv_linear.pt') | Select-Object -First 1
        $copy = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($row, 2))
        $copy.Name | Should -Be '0.weight'
        $copy.DType | Should -Be 'float32'
        @($copy.Shape) | Should -Be @(4, 3, 3, 3)
        $copy.ByteLength | Should -Be 432
    }
}
