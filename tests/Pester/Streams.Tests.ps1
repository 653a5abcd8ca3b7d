#requires -Version 7.4
# -InputStream (torch.load's file objects): every file of every shared fixture set loads from a stream the way
# it loads from its path: the same tensors with the same SHA-256 for a good file, the same error id for a bad
# one, the same audit verdict; through a seekable FileStream and through a non-seekable GZipStream.

BeforeDiscovery {
    # every file set in tests/fixtures (a folder with a manifest.json that lists files; DCP sets are folders, not streams)
    $fixtureRoot = (Resolve-Path "$PSScriptRoot/../fixtures").Path
    $sets = foreach ($dir in Get-ChildItem -LiteralPath $fixtureRoot -Directory | Sort-Object Name) {
        $manifestPath = Join-Path $dir.FullName 'manifest.json'
        if (-not (Test-Path -LiteralPath $manifestPath)) { continue }
        $manifest = Get-Content -Raw $manifestPath | ConvertFrom-Json
        if (-not $manifest.PSObject.Properties['files']) { continue }
        $files = foreach ($f in $manifest.files) {
            $wo = if ($f.PSObject.Properties['load_args'] -and $f.load_args) { $f.load_args.weights_only } elseif ($f.PSObject.Properties['load_calls'] -and $f.load_calls) { $f.load_calls[0].args.weights_only } else { $true }
            @{ File = (Join-Path $dir.FullName $f.file); WeightsOnly = [bool]$wo }
        }
        @{ Set = $dir.Name; Files = @($files) }
    }
}

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }

    # What a load shows: one line per tensor (name, dtype, shape, SHA-256 of the values), or the error id.
    function Get-Outcome([scriptblock]$Load) {
        $ErrorActionPreference = 'Continue'   # build.ps1 runs Pester with 'Stop': an error here is an outcome to compare
        $all = @(& $Load 2>&1)
        $err = @($all | Where-Object { $_ -is [System.Management.Automation.ErrorRecord] })
        if ($err) { return "error $(Get-ErrorId $err[0])" }
        $rows = $all
        ($rows | ForEach-Object { '{0} {1} [{2}] {3}' -f $_.Name, $_.DType, ($_.Shape -join ','), $_.Sha256 }) -join "`n"
    }

    function New-GZipStream([byte[]]$Bytes) {
        $packed = [IO.MemoryStream]::new()
        $gz = [IO.Compression.GZipStream]::new($packed, [IO.Compression.CompressionLevel]::Fastest, $true)
        $gz.Write($Bytes, 0, $Bytes.Length)
        $gz.Dispose()
        $packed.Position = 0
        [IO.Compression.GZipStream]::new($packed, [IO.Compression.CompressionMode]::Decompress)
    }
}

Describe 'the <Set> fixture set through -InputStream' -ForEach $sets {
    It 'Get-TorchTensor -Hash gives the same tensors and SHA-256 (or the same error id) as -LiteralPath, for every file' {
        $checked = 0
        foreach ($case in $Files) {
            $file = $case.File
            $wo = $case.WeightsOnly
            $expected = Get-Outcome { Get-TorchTensor -LiteralPath $file -Hash -WeightsOnly $wo }
            $fs = [IO.File]::OpenRead($file)
            try { $seekable = Get-Outcome { Get-TorchTensor -InputStream $fs -Hash -WeightsOnly $wo } }
            finally { $fs.Dispose() }
            $seekable | Should -Be $expected -Because "$file through a FileStream"
            $checked++
            if ($checked % 4 -ne 1) { continue }   # every fourth file also through a non-seekable stream (buffered)
            $gz = New-GZipStream ([IO.File]::ReadAllBytes($file))
            try { $buffered = Get-Outcome { Get-TorchTensor -InputStream $gz -Hash -WeightsOnly $wo } }
            finally { $gz.Dispose() }
            $buffered | Should -Be $expected -Because "$file through a non-seekable GZipStream"
        }
        $checked | Should -Be $Files.Count
    }

    It 'Test-TorchCheckpoint gives the same verdict and error id from a byte array as from the path, for every file' {
        foreach ($case in $Files) {
            $fromPath = Test-TorchCheckpoint -LiteralPath $case.File
            $fromBytes = Test-TorchCheckpoint -InputStream ([IO.File]::ReadAllBytes($case.File))
            "$($fromBytes.Verdict) $($fromBytes.ErrorId) $($fromBytes.TensorCount)" | Should -Be "$($fromPath.Verdict) $($fromPath.ErrorId) $($fromPath.TensorCount)" -Because $case.File
        }
    }
}

Describe '-InputStream binding' {
    BeforeAll {
        $file = Join-Path $fixtures 'torch-1.13/sd_conv_linear.pt'
        $bytes = [IO.File]::ReadAllBytes($file)
        $keys = '0.weight', '0.bias', '3.weight', '3.bias'
    }

    It 'a byte array is never bound as paths: <Name>' -ForEach @(
        @{ Name = 'piped whole'; Load = { param($b) , $b | Import-TorchCheckpoint -ErrorAction Stop } }
        @{ Name = 'piped enumerated'; Load = { param($b) $b | Import-TorchCheckpoint -ErrorAction Stop } }
        @{ Name = 'bound by name'; Load = { param($b) Import-TorchCheckpoint -InputStream $b -ErrorAction Stop } }
    ) {
        $sd = & $Load $bytes
        @($sd.Keys) | Should -Be $keys
    }

    It 'a seekable stream is read from its current position' {
        $ms = [IO.MemoryStream]::new()
        $ms.Write([byte[]]::new(123), 0, 123)
        $ms.Write($bytes, 0, $bytes.Length)
        $ms.Position = 123
        @((Import-TorchCheckpoint -InputStream $ms).Keys) | Should -Be $keys
        @(Get-TorchStorage -InputStream $bytes).Count | Should -Be 4
    }

    It 'a non-seekable stream over -MaxStreamBytes is LimitExceeded' {
        $gz = New-GZipStream $bytes
        $null = Import-TorchCheckpoint -InputStream $gz -MaxStreamBytes 1000 -ErrorVariable e -ErrorAction SilentlyContinue
        Get-ErrorId $e[0] | Should -Be 'LimitExceeded'
    }

    It '-Mmap with a stream is a parameter error' {
        { Import-TorchCheckpoint -InputStream $bytes -Mmap -ErrorAction Stop } | Should -Throw -ErrorId 'MmapWithInputStream,TorchLoad.Commands.ImportTorchCheckpointCommand'
        { , $bytes | Import-TorchCheckpoint -Mmap -ErrorAction Stop } | Should -Throw -ExceptionType ([System.Management.Automation.ParameterBindingException])
    }

    It 'files piped from Get-ChildItem still bind as paths, with -Mmap too' {
        @((Get-Item $file | Import-TorchCheckpoint -Mmap).Keys) | Should -Be $keys
        (Get-Item $file | Test-TorchCheckpoint).Path | Should -Be $file
    }
}
