#requires -Version 7.4
# The audit cmdlets (Get-TorchTensor, Test-TorchCheckpoint, Compare-TorchCheckpoint, Export-TorchSafetensors)
# and sharded Hugging Face checkpoints (*.bin.index.json). Expected dtypes, shapes, storage keys, locations,
# record offsets and SHA-256 digests come from the fixture manifests (tests/fixtures/*/manifest.json).
# Fixtures are read in place and never modified; copies that are changed live in $TestDrive.

BeforeDiscovery {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    $torch113 = Get-Content -LiteralPath "$fixtures/torch-1.13/manifest.json" -Raw | ConvertFrom-Json -AsHashtable -Depth 200
    # Every torch-1.13 file whose safe-mode load (weights_only=True, no map_location) has a verdict on its globals.
    $verdictCases = @(foreach ($f in $torch113.files) {
        foreach ($c in $f.load_calls) {
            if ($c.args.weights_only -ne $true -or $c.args.Contains('map_location')) { continue }
            if ($c.expect.ok -eq $true) { @{ File = $f.file; Verdict = 'Safe'; Globals = @() } }
            elseif ($c.expect.error_kind -eq 'unsafe_global') { @{ File = $f.file; Verdict = 'Unsafe'; Globals = @($c.expect.globals_any_of) } }
        }
    })
    $bad = Get-Content -LiteralPath "$fixtures/bad/manifest.json" -Raw | ConvertFrom-Json -AsHashtable -Depth 200
    $codeExecutionCases = @($bad.files | Where-Object { $_.threat -eq 'code_execution' -and $_.file -notlike 'external/*' -and $_.must.first_unsafe_global } |
        ForEach-Object { @{ File = $_.file; Global = $_.must.first_unsafe_global } })
}

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    $script:manifests = @{}

    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
    function Get-Sha256([byte[]]$Bytes) {
        [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($Bytes)).ToLowerInvariant()
    }
    function Get-FileSha([string]$Path) { (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash.ToLowerInvariant() }
    function Get-Fixture([string]$Name) { Join-Path $fixtures $Name }

    # The manifest entry of a fixture, e.g. 'torch-1.13/sd_conv_linear.pt' (manifests are read once).
    function Get-ManifestEntry([string]$Name) {
        $set, $file = $Name -split '/', 2
        if (-not $script:manifests.ContainsKey($set)) {
            $script:manifests[$set] = Get-Content -LiteralPath (Join-Path $fixtures "$set/manifest.json") -Raw |
                ConvertFrom-Json -AsHashtable -Depth 200
        }
        $entry = $script:manifests[$set].files | Where-Object file -eq $file
        if (-not $entry) { throw "$Name is not in $set/manifest.json" }
        $entry
    }

    # A manifest tensor path (JSON array of dict keys and list indices) as TorchLoad names it: joined with dots.
    function Get-TensorName($Tensor) { (@($Tensor.path) | ForEach-Object { "$_" }) -join '.' }

    # Reads a .safetensors file the way the format defines it: u64 LE header length, JSON header, data buffer.
    function Read-Safetensors([string]$Path) {
        $bytes = [System.IO.File]::ReadAllBytes($Path)
        $n = [uint64]0
        for ($i = 7; $i -ge 0; $i--) { $n = $n * 256 + $bytes[$i] }          # u64, little-endian
        $json = [System.Text.Encoding]::UTF8.GetString($bytes, 8, [int]$n)
        $header = $json | ConvertFrom-Json -AsHashtable
        $base = 8 + [long]$n
        $tensors = [ordered]@{}
        foreach ($k in $header.Keys | Where-Object { $_ -ne '__metadata__' }) {
            $e = $header[$k]
            $begin = [long]$e.data_offsets[0]; $end = [long]$e.data_offsets[1]
            $data = [byte[]]::new($end - $begin)
            [Array]::Copy($bytes, $base + $begin, $data, 0, $end - $begin)
            $tensors[$k] = @{ DType = $e.dtype; Shape = @($e.shape | ForEach-Object { [long]$_ }); Begin = $begin; End = $end; Data = $data }
        }
        @{ HeaderLength = $n; Json = $json; Metadata = $header['__metadata__']; Tensors = $tensors; DataLength = $bytes.Length - $base }
    }

    # bytes per element of each torch dtype
    $script:ElementSize = @{
        bool = 1; uint8 = 1; int8 = 1; qint8 = 1; quint8 = 1; int16 = 2; uint16 = 2; float16 = 2; bfloat16 = 2
        int32 = 4; uint32 = 4; qint32 = 4; float32 = 4; int64 = 8; uint64 = 8; float64 = 8; complex64 = 8; complex128 = 16
    }

    # The names safetensors keeps of a manifest's tensors: alone on their storage, or else the first (ordinal)
    # of those that start at offset 0 and cover the whole storage (safetensors' _remove_duplicate_names).
    function Get-KeptNames($Entry) {
        foreach ($g in $Entry.tensors | Group-Object { $_.storage.key }) {
            if ($g.Count -eq 1) { Get-TensorName $g.Group[0]; continue }
            $complete = @($g.Group | Where-Object { $_.storage_offset -eq 0 -and $_.numel * $script:ElementSize[$_.dtype] -eq $_.storage.nbytes } |
                ForEach-Object { Get-TensorName $_ })
            [Array]::Sort($complete, [StringComparer]::Ordinal)
            $complete[0]
        }
    }

    # torch dtype -> safetensors dtype code
    $script:SafetensorsCode = @{
        bool = 'BOOL'; uint8 = 'U8'; int8 = 'I8'; int16 = 'I16'; uint16 = 'U16'; float16 = 'F16'; bfloat16 = 'BF16'
        int32 = 'I32'; uint32 = 'U32'; float32 = 'F32'; float64 = 'F64'; int64 = 'I64'; uint64 = 'U64'; complex64 = 'C64'
    }

    # Flips one bit in a copy of the byte at $Offset.
    function Set-FlippedByte([string]$Path, [long]$Offset) {
        $b = [System.IO.File]::ReadAllBytes($Path)
        $b[$Offset] = $b[$Offset] -bxor 0x01
        [System.IO.File]::WriteAllBytes($Path, $b)
    }

    # The zip record of a fixture holding a given storage key, from the manifest.
    function Get-StorageRecord($Entry, [string]$Key) {
        $storage = $Entry.storages.entries | Where-Object key -eq $Key
        $Entry.zip.records | Where-Object name -eq $storage.record
    }
}

Describe 'Get-TorchTensor -Path' {
    It 'names tensors by their dotted path, in the order of the file (training_checkpoint.pt)' {
        $entry = Get-ManifestEntry 'torch-1.13/training_checkpoint.pt'
        $rows = @(Get-TorchTensor -Path (Get-Fixture 'torch-1.13/training_checkpoint.pt') -WeightsOnly:$false)
        $rows.Name | Should -Be @($entry.tensors | ForEach-Object { Get-TensorName $_ })
        $rows.Name | Should -Contain 'model.0.weight'
        $rows.Name | Should -Contain 'optimizer.state.0.exp_avg'
        ($rows | Where-Object Name -eq 'model.0.weight').Shape | Should -Be @(3, 4)
    }

    It '<Name>: DType, Shape, ElementCount, ByteLength, StorageKey and Device agree with the manifest' -ForEach @(
        @{ Name = 'torch-1.13/training_checkpoint.pt' }
        @{ Name = 'torch-1.13/all_dtypes_zip.pt' }
        @{ Name = 'torch-1.13/all_dtypes_legacy.pt' }
        @{ Name = 'torch-1.13/views_shared_storage.pt' }
        @{ Name = 'torch-1.13/sd_transformer_layer.pt' }
        @{ Name = 'torch-1.13/cuda_location_tag.pt' }
        @{ Name = 'crafted/big_endian.pt' }
        @{ Name = 'crafted/v3_unsigned_ints.pt' }
    ) {
        $entry = Get-ManifestEntry $Name
        $rows = @(Get-TorchTensor -LiteralPath (Get-Fixture $Name))
        $rows.Count | Should -Be $entry.tensors.Count
        foreach ($t in $entry.tensors) {
            $tensorName = Get-TensorName $t
            $row = @($rows | Where-Object Name -ceq $tensorName)
            $row.Count | Should -Be 1 -Because "$tensorName is in the manifest"
            $row = $row[0]
            $row.DType | Should -BeExactly $t.dtype -Because $tensorName
            ($row.Shape -join ',') | Should -Be (@($t.shape) -join ',') -Because $tensorName
            $row.ElementCount | Should -Be $t.numel -Because $tensorName
            $row.ByteLength | Should -Be ($t.numel * $script:ElementSize[$t.dtype]) -Because $tensorName
            $row.StorageKey | Should -BeExactly $t.storage.key -Because $tensorName
            $row.Device | Should -BeExactly $t.storage.location -Because "$tensorName was saved on $($t.storage.location)"
            $row.Layout | Should -Be 'strided'
            $row.Path | Should -Be (Get-Fixture $Name)
            $row.Sha256 | Should -BeNullOrEmpty
        }
    }

    It '-Hash gives the manifest SHA-256 of every tensor of <Name>' -ForEach @(
        @{ Name = 'torch-1.13/all_dtypes_zip.pt' }
        @{ Name = 'torch-1.13/views_shared_storage.pt' }
        @{ Name = 'crafted/big_endian.pt' }
        @{ Name = 'torch-1.13/all_dtypes_legacy.pt' }
        @{ Name = 'torch-1.13/quantized_per_tensor.pt' }
    ) {
        $entry = Get-ManifestEntry $Name
        $rows = @(Get-TorchTensor -Path (Get-Fixture $Name) -Hash)
        $rows.Count | Should -Be $entry.tensors.Count
        foreach ($t in $entry.tensors) {
            $row = $rows | Where-Object Name -ceq (Get-TensorName $t)
            $row.Sha256 | Should -BeExactly $t.sha256 -Because (Get-TensorName $t)
            $row.Sha256 | Should -BeExactly (Get-Sha256 $row.Tensor.ToByteArray())
        }
    }

    It 'reads no tensor bytes without -Hash: a cuda-saved file lists with Device cuda:0, no -MapLocation needed' {
        $entry = Get-ManifestEntry 'torch-1.13/cuda_location_tag.pt'
        $rows = @(Get-TorchTensor -Path (Get-Fixture 'torch-1.13/cuda_location_tag.pt') -ErrorVariable ev)
        $ev.Count | Should -Be 0
        $rows.Count | Should -Be $entry.tensors.Count
        foreach ($row in $rows) {
            $row.Device | Should -Be 'cuda:0'
            $row.Sha256 | Should -BeNullOrEmpty
            $row.Tensor.Storage.Buffer | Should -BeNullOrEmpty -Because 'a metadata-only listing loads no storage'
        }
    }

    It 'with -Hash reads the values of a cuda-saved file on the CPU and matches the manifest' {
        $entry = Get-ManifestEntry 'torch-1.13/cuda_location_tag.pt'
        $rows = @(Get-TorchTensor -Path (Get-Fixture 'torch-1.13/cuda_location_tag.pt') -Hash)
        foreach ($t in $entry.tensors) {
            $row = $rows | Where-Object Name -ceq (Get-TensorName $t)
            $row.Device | Should -Be 'cpu'
            $row.Sha256 | Should -BeExactly $t.sha256
        }
    }

    It 'filters by -Name with wildcards, case-insensitively, several patterns at once' {
        $file = Get-Fixture 'torch-1.13/sd_conv_linear.pt'
        @(Get-TorchTensor $file -Name '*.bias').Name | Should -Be @('0.bias', '3.bias')
        @(Get-TorchTensor $file -Name '*.BIAS').Name | Should -Be @('0.bias', '3.bias')
        @(Get-TorchTensor $file -Name '0.*', '*.bias').Name | Should -Be @('0.weight', '0.bias', '3.bias')
        @(Get-TorchTensor $file -Name '3.weight').Name | Should -Be @('3.weight')
        Get-TorchTensor $file -Name 'no.such.*' | Should -BeNullOrEmpty
    }

    It 'filters optimizer state by dotted path' {
        $rows = @(Get-TorchTensor (Get-Fixture 'torch-1.13/training_checkpoint.pt') -WeightsOnly:$false -Name 'optimizer.state.*.exp_avg')
        $rows.Name | Should -Be @('optimizer.state.0.exp_avg', 'optimizer.state.1.exp_avg', 'optimizer.state.2.exp_avg', 'optimizer.state.3.exp_avg')
    }

    It 'takes files from Get-ChildItem, one row per tensor of each file' {
        $files = @(Get-ChildItem -LiteralPath (Join-Path $fixtures 'torch-1.13') -Filter 'sd_*.pt')
        $files.Count | Should -BeGreaterOrEqual 4
        $rows = @($files | Get-TorchTensor)
        foreach ($f in $files) {
            $entry = Get-ManifestEntry "torch-1.13/$($f.Name)"
            @($rows | Where-Object Path -eq $f.FullName).Name | Should -Be @($entry.tensors | ForEach-Object { Get-TensorName $_ })
        }
    }

    It 'takes a path string from the pipeline' {
        @((Get-Fixture 'torch-1.13/sd_conv_linear.pt') | Get-TorchTensor).Name | Should -Be @('0.weight', '0.bias', '3.weight', '3.bias')
    }

    It 'writes a non-terminating error for a missing file and continues' {
        $out = @(Get-TorchTensor -LiteralPath (Join-Path $TestDrive 'missing.pt'), (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -ErrorVariable ev -ErrorAction SilentlyContinue)
        $out.Count | Should -Be 4
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -Be 'PathNotFound,TorchLoad.Commands.GetTorchTensorCommand'
    }

    It 'refuses a non-allowlisted global in safe mode with UnsafeGlobal and lists it with -WeightsOnly:$false' {
        $file = Get-Fixture 'torch-1.13/whole_module_sequential.pt'
        $null = Get-TorchTensor $file -ErrorVariable ev -ErrorAction SilentlyContinue
        Get-ErrorId $ev[0] | Should -Be 'UnsafeGlobal'
        @(Get-TorchTensor $file -WeightsOnly:$false).Count | Should -Be (Get-ManifestEntry 'torch-1.13/whole_module_sequential.pt').tensors.Count
    }

    It 'lists a tensor under every name it has in the file (same_object_twice.pt: one tensor at four paths)' {
        # The manifest flattens every reachable tensor path; a name-based tool (-Name, Compare by name) must see all of them.
        $entry = Get-ManifestEntry 'torch-1.13/same_object_twice.pt'
        $names = @(Get-TorchTensor (Get-Fixture 'torch-1.13/same_object_twice.pt')).Name
        $names | Should -Be @($entry.tensors | ForEach-Object { Get-TensorName $_ })
    }
}

Describe 'Get-TorchTensor -InputObject' {
    BeforeAll {
        $sdFile = Get-Fixture 'torch-1.13/sd_conv_linear.pt'
        $sd = Import-TorchCheckpoint $sdFile
        $sdEntry = Get-ManifestEntry 'torch-1.13/sd_conv_linear.pt'
    }

    It 'flattens a loaded checkpoint from the pipeline, with the tensors'' own objects and manifest hashes' {
        $rows = @($sd | Get-TorchTensor -Hash)
        $rows.Name | Should -Be @($sdEntry.tensors | ForEach-Object { Get-TensorName $_ })
        foreach ($t in $sdEntry.tensors) {
            $row = $rows | Where-Object Name -ceq (Get-TensorName $t)
            $row.Sha256 | Should -BeExactly $t.sha256
            [object]::ReferenceEquals($row.Tensor, $sd[$row.Name]) | Should -BeTrue
            $row.Path | Should -BeNullOrEmpty
            $row.Device | Should -Be 'cpu'
        }
    }

    It 'filters a loaded object with -Name' {
        @($sd | Get-TorchTensor -Name '3.*').Name | Should -Be @('3.weight', '3.bias')
    }

    It 'names the tensors of a list by index' {
        @(Get-TorchTensor -InputObject @($sd['0.bias'], $sd['3.bias'])).Name | Should -Be @('0', '1')
    }

    It 'walks a PowerShell hashtable of tensors' {
        $rows = @(Get-TorchTensor -InputObject @{ w = $sd['3.weight'] } -Hash)
        $rows.Count | Should -Be 1
        $rows[0].Name | Should -Be 'w'
        $rows[0].Sha256 | Should -BeExactly ($sdEntry.tensors | Where-Object path_str -eq '3.weight').sha256
    }
}

Describe 'Test-TorchCheckpoint' {
    It '<File> is <Verdict>, as its safe-mode load in the manifest' -ForEach $verdictCases {
        $path = Get-Fixture "torch-1.13/$File"
        $entry = Get-ManifestEntry "torch-1.13/$File"
        $r = Test-TorchCheckpoint -LiteralPath $path
        "$($r.Verdict)" | Should -Be $Verdict
        $r.IsSafe | Should -Be ($Verdict -eq 'Safe')
        $r.Path | Should -Be $path
        $r.Format | Should -Be $entry.format
        $r.ErrorId | Should -BeNullOrEmpty
        $r.TensorCount | Should -Be @(Get-TorchTensor -LiteralPath $path -WeightsOnly:$false).Count
        $r.StorageCount | Should -Be $entry.storages.count
        $notAllowed = @($r.Globals | Where-Object Verdict -ne 'Allowed' | ForEach-Object Name)
        if ($Verdict -eq 'Safe') { $notAllowed | Should -BeNullOrEmpty }
        else { foreach ($g in $Globals) { $notAllowed | Should -Contain $g } }
    }

    It 'reports every global of a state dict as Allowed, with its count (sd_conv_linear.pt)' {
        $entry = Get-ManifestEntry 'torch-1.13/sd_conv_linear.pt'
        $r = Test-TorchCheckpoint (Get-Fixture 'torch-1.13/sd_conv_linear.pt')
        "$($r.Verdict)" | Should -Be 'Safe'
        @($r.Globals.Name | Sort-Object) | Should -Be @($entry.pickle.globals | Sort-Object)
        $r.Globals | ForEach-Object { $_.Verdict | Should -Be 'Allowed'; $_.Count | Should -BeGreaterOrEqual 1 }
        $r.Findings | Should -BeNullOrEmpty
        $r.Version | Should -Be 3
        $r.ByteOrder | Should -Be 'little'
        $r.PickleProtocol | Should -Be $entry.saved_with.pickle_protocol
        $r.RecordCount | Should -Be $entry.zip.records.Count
        $r.StorageBytes | Should -Be (($entry.storages.entries | Measure-Object nbytes -Sum).Sum)
    }

    It 'finds posix.system Dangerous in bad/posix_system_in_zip.pt: Unsafe' {
        $r = Test-TorchCheckpoint (Get-Fixture 'bad/posix_system_in_zip.pt')
        "$($r.Verdict)" | Should -Be 'Unsafe'
        $r.IsSafe | Should -BeFalse
        $g = @($r.Globals | Where-Object Name -eq 'posix.system')
        $g.Count | Should -Be 1
        $g[0].Verdict | Should -Be 'Dangerous'
        ($r.Findings -join "`n") | Should -Match 'Dangerous global posix\.system'
    }

    It 'names the first unsafe global of <File> as not allowed, and is never Safe' -ForEach $codeExecutionCases {
        $r = Test-TorchCheckpoint -LiteralPath (Get-Fixture "bad/$File")
        "$($r.Verdict)" | Should -Be 'Unsafe'
        $g = @($r.Globals | Where-Object Name -eq $Global)
        $g.Count | Should -Be 1
        $g[0].Verdict | Should -Be 'Dangerous'
    }

    It 'finds the three torch.nn.modules classes of whole_module_sequential.pt Unknown: Unsafe' {
        $entry = Get-ManifestEntry 'torch-1.13/whole_module_sequential.pt'
        $expected = @(@($entry.load_calls | Where-Object { $_.args.weights_only -eq $true })[0].expect.globals_any_of)
        $r = Test-TorchCheckpoint (Get-Fixture 'torch-1.13/whole_module_sequential.pt')
        "$($r.Verdict)" | Should -Be 'Unsafe'
        $unknown = @($r.Globals | Where-Object Verdict -eq 'Unknown')
        @($unknown.Name | Sort-Object) | Should -Be @($expected | Sort-Object)
        $unknown.Name | ForEach-Object { $_ | Should -BeLike 'torch.nn.modules.*' }
        @($r.Globals | Where-Object Verdict -eq 'Dangerous') | Should -BeNullOrEmpty
        foreach ($n in $expected) { ($r.Findings -join "`n") | Should -Match ([regex]::Escape("-SafeGlobal '$n'")) }
    }

    It '-SafeGlobal turns the Unknown classes into Allowed: Safe' {
        $entry = Get-ManifestEntry 'torch-1.13/whole_module_sequential.pt'
        $classes = @(@($entry.load_calls | Where-Object { $_.args.weights_only -eq $true })[0].expect.globals_any_of)
        $r = Test-TorchCheckpoint (Get-Fixture 'torch-1.13/whole_module_sequential.pt') -SafeGlobal $classes
        "$($r.Verdict)" | Should -Be 'Safe'
        $r.Globals | ForEach-Object { $_.Verdict | Should -Be 'Allowed' }
        $r.Findings | Should -BeNullOrEmpty
        # two of three still leaves it Unsafe
        "$((Test-TorchCheckpoint (Get-Fixture 'torch-1.13/whole_module_sequential.pt') -SafeGlobal $classes[0..1]).Verdict)" | Should -Be 'Unsafe'
    }

    It '-SafeGlobal cannot allow a global of a blocked module (posix.system), as Import-TorchCheckpoint refuses it' {
        $file = Get-Fixture 'bad/posix_system_in_zip.pt'
        { Import-TorchCheckpoint $file -SafeGlobal 'posix.system' -ErrorAction Stop } | Should -Throw
        $r = @(Test-TorchCheckpoint $file -SafeGlobal 'posix.system' -ErrorAction SilentlyContinue)
        @($r | Where-Object { $_.IsSafe }) | Should -BeNullOrEmpty
        @(Test-TorchCheckpoint $file -SafeGlobal 'posix.system' -Quiet -ErrorAction SilentlyContinue) | Should -Not -Contain $true
    }

    It 'finds bad/truncated_zip_half.pt Corrupt with the error id a load gives' {
        $r = Test-TorchCheckpoint (Get-Fixture 'bad/truncated_zip_half.pt')
        "$($r.Verdict)" | Should -Be 'Corrupt'
        $r.ErrorId | Should -BeIn @('TruncatedCheckpoint', 'InvalidArchive', 'NotACheckpoint')
        $r.Findings | Should -Not -BeNullOrEmpty
        $null = Import-TorchCheckpoint (Get-Fixture 'bad/truncated_zip_half.pt') -ErrorVariable ev -ErrorAction SilentlyContinue
        Get-ErrorId $ev[0] | Should -Be $r.ErrorId
    }

    It 'finds a TorchScript archive Unsupported: <Name>' -ForEach @(
        @{ Name = 'external/tch-rs/tests/foo.pt' }
        @{ Name = 'crafted/torchscript_like.pt' }
    ) {
        $r = Test-TorchCheckpoint -LiteralPath (Get-Fixture $Name)
        "$($r.Verdict)" | Should -Be 'Unsupported'
        $r.ErrorId | Should -Be 'UnsupportedFormat'
        ($r.Findings -join "`n") | Should -Match 'TorchScript'
    }

    It '-Quiet writes one [bool] per file: $true only for Safe' {
        $out = @(Test-TorchCheckpoint -Quiet -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt'), (Get-Fixture 'bad/posix_system_in_zip.pt'),
            (Get-Fixture 'bad/truncated_zip_half.pt'), (Get-Fixture 'external/tch-rs/tests/foo.pt'))
        $out.Count | Should -Be 4
        $out | ForEach-Object { $_ | Should -BeOfType [bool] }
        $out | Should -Be @($true, $false, $false, $false)
    }

    It 'takes files from Get-ChildItem and path strings from the pipeline' {
        $files = @(Get-ChildItem -LiteralPath (Join-Path $fixtures 'torch-1.13') -Filter 'sd_*.pt')
        $results = @($files | Test-TorchCheckpoint)
        $results.Count | Should -Be $files.Count
        $results | ForEach-Object { "$($_.Verdict)" | Should -Be 'Safe' }
        @($files.FullName | Test-TorchCheckpoint -Quiet) | Should -Be @($files | ForEach-Object { $true })
    }

    It 'audits files on workers and writes every row and error in input order (paths, pipeline, Get-ChildItem)' {
        # every file of two fixture sets, three times over, with missing paths in between: the rows and the
        # PathNotFound errors come out exactly as a one-file-at-a-time run gives them
        $all = @(Get-ChildItem -LiteralPath (Join-Path $fixtures 'torch-2.6'), (Join-Path $fixtures 'bad') -File -Filter '*.pt' | Sort-Object FullName)
        $list = [System.Collections.Generic.List[string]]::new()
        foreach ($round in 1..3) { foreach ($f in $all) { $list.Add($f.FullName) }; $list.Add((Join-Path $TestDrive "missing-$round.pt")) }
        $one = foreach ($p in $list) { Test-TorchCheckpoint -LiteralPath $p -ErrorAction Continue 2>&1 }
        $expected = @($one | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { "error $($_.TargetObject)" } else { "$($_.Path) $($_.Verdict) $($_.ErrorId) $($_.TensorCount)" } })
        $text = { param($r) @($r | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { "error $($_.TargetObject)" } else { "$($_.Path) $($_.Verdict) $($_.ErrorId) $($_.TensorCount)" } }) }
        $expected.Count | Should -Be $list.Count
        & $text (Test-TorchCheckpoint -LiteralPath $list -ErrorAction Continue 2>&1) | Should -Be $expected
        & $text ($list | Test-TorchCheckpoint -ErrorAction Continue 2>&1) | Should -Be $expected
        & $text ($all | Test-TorchCheckpoint -ErrorAction Continue 2>&1) | Should -Be @($expected | Where-Object { $_ -notlike 'error *' } | Select-Object -First $all.Count)
    }

    It 'stops cleanly when the pipeline has what it needs (Select-Object -First) with audits in flight' {
        $dir = Join-Path $fixtures 'torch-2.6'
        $r = @(Get-ChildItem -LiteralPath $dir -Filter '*.pt' | Test-TorchCheckpoint | Select-Object -First 2)
        $r.Count | Should -Be 2
        $r[0].Path | Should -Be (Get-ChildItem -LiteralPath $dir -Filter '*.pt' | Select-Object -First 1).FullName
        @(Import-TorchCheckpoint -LiteralPath (Get-ChildItem -LiteralPath $dir -Filter '*.pt').FullName -ErrorAction SilentlyContinue | Select-Object -First 1).Count | Should -Be 1
    }

    It 'a flipped byte in a data record is a CRC mismatch: Corrupt; the file is not changed; -SkipCrc does not see it' {
        $entry = Get-ManifestEntry 'torch-1.13/sd_conv_linear.pt'
        $record = Get-StorageRecord $entry '2'
        $copy = Join-Path $TestDrive 'crc_flip.pt'
        Copy-Item -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -Destination $copy
        Set-FlippedByte $copy ($record.data_offset + 5)
        $before = Get-FileSha $copy

        $r = Test-TorchCheckpoint -LiteralPath $copy
        "$($r.Verdict)" | Should -Be 'Corrupt'
        $r.ErrorId | Should -BeNullOrEmpty
        @($r.Findings | Where-Object { $_ -like 'CRC mismatch*' }).Count | Should -Be 1
        ($r.Findings -join "`n") | Should -Match ("CRC mismatch for " + [regex]::Escape($record.name))
        Test-TorchCheckpoint -LiteralPath $copy -Quiet | Should -BeFalse
        "$((Test-TorchCheckpoint -LiteralPath $copy -SkipCrc).Verdict)" | Should -Be 'Safe'
        Get-FileSha $copy | Should -Be $before
    }

    It 'leaves the fixtures byte-identical (their manifest SHA-256)' {
        foreach ($name in 'torch-1.13/sd_conv_linear.pt', 'torch-1.13/whole_module_sequential.pt', 'crafted/big_endian.pt') {
            $null = Test-TorchCheckpoint -LiteralPath (Get-Fixture $name)
            Get-FileSha (Get-Fixture $name) | Should -Be (Get-ManifestEntry $name).sha256
        }
    }

    It 'reports records saved without a CRC (crafted/crc_zero.pt) and stays Safe' {
        $r = Test-TorchCheckpoint (Get-Fixture 'crafted/crc_zero.pt')
        "$($r.Verdict)" | Should -Be 'Safe'
        ($r.Findings -join "`n") | Should -Match 'CRC not recorded'
    }

    It 'never runs a payload: auditing every hostile input creates no /tmp/pwned_marker' {
        $marker = '/tmp/pwned_marker'
        Remove-Item $marker -ErrorAction Ignore
        $files = @(Get-ChildItem -LiteralPath (Join-Path $fixtures 'bad') -File -Recurse | Where-Object Extension -notin '.json', '.md', '.txt', '')
        $results = @($files | ForEach-Object { Test-TorchCheckpoint -LiteralPath $_.FullName -ErrorAction SilentlyContinue })
        $results.Count | Should -Be $files.Count
        @($results | Where-Object { $_.Globals.Verdict -contains 'Dangerous' -and $_.IsSafe }) | Should -BeNullOrEmpty
        Test-Path $marker | Should -BeFalse
    }

    It 'writes a non-terminating error for a missing file' {
        $out = @(Test-TorchCheckpoint -LiteralPath (Join-Path $TestDrive 'missing.pt'), (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -Quiet -ErrorVariable ev -ErrorAction SilentlyContinue)
        $out | Should -Be @($true)
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -Be 'PathNotFound,TorchLoad.Commands.TestTorchCheckpointCommand'
        $ev[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $ev[0].TargetObject | Should -Be (Join-Path $TestDrive 'missing.pt')
    }
}

Describe 'Compare-TorchCheckpoint' {
    BeforeAll {
        $a = Get-Fixture 'torch-1.13/sd_conv_linear.pt'
        $b = Get-Fixture 'torch-1.13/sd_batchnorm.pt'
        $aEntry = Get-ManifestEntry 'torch-1.13/sd_conv_linear.pt'
        $bEntry = Get-ManifestEntry 'torch-1.13/sd_batchnorm.pt'
    }

    It 'writes nothing for a file compared with itself' {
        Compare-TorchCheckpoint $a $a | Should -BeNullOrEmpty
    }

    It '-IncludeEqual writes every tensor as Equal, with the manifest hashes on both sides' {
        $rows = @(Compare-TorchCheckpoint $a $a -IncludeEqual)
        $rows.Name | Should -Be @($aEntry.tensors | ForEach-Object { Get-TensorName $_ })
        foreach ($t in $aEntry.tensors) {
            $row = $rows | Where-Object Name -ceq (Get-TensorName $t)
            $row.Change | Should -Be 'Equal'
            $row.Changes | Should -BeNullOrEmpty
            $row.ReferenceSha256 | Should -BeExactly $t.sha256
            $row.DifferenceSha256 | Should -BeExactly $t.sha256
        }
    }

    It 'gives Added, Removed and Changed rows for two different state dicts, as their manifests say' {
        $rows = @(Compare-TorchCheckpoint $a $b)
        $left = @{}; foreach ($t in $aEntry.tensors) { $left[(Get-TensorName $t)] = $t }
        $right = @{}; foreach ($t in $bEntry.tensors) { $right[(Get-TensorName $t)] = $t }
        $expected = @{}
        foreach ($n in $left.Keys) {
            if (-not $right.ContainsKey($n)) { $expected[$n] = 'Removed'; continue }
            $changes = @()
            if ($left[$n].dtype -ne $right[$n].dtype) { $changes += 'DType' }
            if ((@($left[$n].shape) -join ',') -ne (@($right[$n].shape) -join ',')) { $changes += 'Shape' }
            if ($left[$n].sha256 -ne $right[$n].sha256) { $changes += 'Values' }
            if ($changes) { $expected[$n] = 'Changed:' + ($changes -join ',') }
        }
        foreach ($n in $right.Keys) { if (-not $left.ContainsKey($n)) { $expected[$n] = 'Added' } }

        @($rows.Change | Select-Object -Unique | Sort-Object) | Should -Be @('Added', 'Changed', 'Removed')
        $rows.Count | Should -Be $expected.Count
        foreach ($row in $rows) {
            $got = if ($row.Change -eq 'Changed') { 'Changed:' + ($row.Changes -join ',') } else { $row.Change }
            $got | Should -Be $expected[$row.Name] -Because $row.Name
        }
        $added = $rows | Where-Object Change -eq 'Added' | Select-Object -First 1
        $added.DifferenceSha256 | Should -BeExactly $right[$added.Name].sha256
        $added.ReferenceSha256 | Should -BeNullOrEmpty
    }

    It 'finds exactly the tensor whose storage payload was changed in a copy, with Changes = Values' {
        $record = Get-StorageRecord $aEntry '2'
        $changedNames = @(($aEntry.storages.entries | Where-Object key -eq '2').tensors)
        $copy = Join-Path $TestDrive 'payload_flip.pt'
        Copy-Item -LiteralPath $a -Destination $copy
        Set-FlippedByte $copy ($record.data_offset + 7)

        $rows = @(Compare-TorchCheckpoint $a $copy)
        $rows.Name | Should -Be $changedNames
        $rows[0].Change | Should -Be 'Changed'
        $rows[0].Changes | Should -Be @('Values')
        $rows[0].ReferenceSha256 | Should -BeExactly ($aEntry.tensors | Where-Object path_str -eq $changedNames[0]).sha256
        $rows[0].DifferenceSha256 | Should -Not -Be $rows[0].ReferenceSha256
        $rows[0].ReferenceDType | Should -Be $rows[0].DifferenceDType
    }

    It 'compares a loaded object with a file, and takes the difference from the pipeline' {
        $sd = Import-TorchCheckpoint $a
        Compare-TorchCheckpoint $sd $a | Should -BeNullOrEmpty
        $rows = @(Get-Item -LiteralPath $a, $b | Compare-TorchCheckpoint -ReferenceObject $sd)
        $rows.Count | Should -Be @(Compare-TorchCheckpoint $a $b).Count
    }
}

Describe 'Export-TorchSafetensors' {
    It 'writes every tensor of <Name> with the bytes of ToByteArray() and the manifest values' -ForEach @(
        @{ Name = 'torch-1.13/sd_conv_linear.pt' }
        @{ Name = 'torch-1.13/sd_transformer_layer.pt' }
        @{ Name = 'torch-1.13/weights_only_ok.pt' }
        @{ Name = 'torch-1.13/training_checkpoint.pt' }
        @{ Name = 'crafted/v3_unsigned_ints.pt' }
        @{ Name = 'crafted/big_endian.pt' }
        @{ Name = 'torch-1.13/views_shared_storage.pt' }
    ) {
        $entry = Get-ManifestEntry $Name
        $source = Import-TorchCheckpoint -LiteralPath (Get-Fixture $Name)
        $dest = Join-Path $TestDrive ((Split-Path $Name -Leaf) + '.safetensors')
        $file = Export-TorchSafetensors -LiteralPath (Get-Fixture $Name) -Destination $dest -WarningVariable wv -WarningAction SilentlyContinue
        $file | Should -BeOfType [System.IO.FileInfo]
        $kept = @(Get-KeptNames $entry)
        $dropped = @($entry.tensors | ForEach-Object { Get-TensorName $_ } | Where-Object { $_ -notin $kept })
        if ($dropped) { foreach ($d in $dropped) { "$wv" | Should -Match ([regex]::Escape($d)) } } else { $wv | Should -BeNullOrEmpty }
        $file.FullName | Should -Be $dest

        $st = Read-Safetensors $dest
        $st.HeaderLength % 8 | Should -Be 0
        $st.Metadata.format | Should -Be 'pt'
        @($st.Tensors.Keys | Sort-Object) | Should -Be @($kept | Sort-Object)
        # data_offsets tile the data buffer exactly
        $expectBegin = 0
        foreach ($t in $st.Tensors.Values | Sort-Object { $_.Begin }) { $t.Begin | Should -Be $expectBegin; $expectBegin = $t.End }
        $expectBegin | Should -Be $st.DataLength
        $rows = @(Get-TorchTensor -InputObject $source)
        foreach ($t in $entry.tensors | Where-Object { (Get-TensorName $_) -in $kept }) {
            $n = Get-TensorName $t
            $row = $rows | Where-Object Name -ceq $n
            $st.Tensors[$n].DType | Should -Be $script:SafetensorsCode[$t.dtype] -Because $n
            ($st.Tensors[$n].Shape -join ',') | Should -Be (@($t.shape) -join ',') -Because $n
            Get-Sha256 $st.Tensors[$n].Data | Should -BeExactly (Get-Sha256 $row.Tensor.ToByteArray()) -Because $n
            Get-Sha256 $st.Tensors[$n].Data | Should -BeExactly $t.sha256 -Because $n
        }
    }

    It 'stores -Metadata as strings next to format=pt' {
        $dest = Join-Path $TestDrive 'meta.safetensors'
        $null = Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -Destination $dest -Metadata @{ source = 'sd_conv_linear'; epoch = 3 }
        $st = Read-Safetensors $dest
        $st.Metadata.format | Should -BeExactly 'pt'
        $st.Metadata.source | Should -BeExactly 'sd_conv_linear'
        $st.Metadata.epoch | Should -BeExactly '3'
    }

    It 'exports a loaded checkpoint from the pipeline (Destination is position 0)' {
        $dest = Join-Path $TestDrive 'piped.safetensors'
        Import-TorchCheckpoint (Get-Fixture 'torch-1.13/sd_conv_linear.pt') | Export-TorchSafetensors $dest | Should -Not -BeNullOrEmpty
        @((Read-Safetensors $dest).Tensors.Keys | Sort-Object) | Should -Be @('0.bias', '0.weight', '3.bias', '3.weight')
    }

    It 'refuses to replace a file without -Force (DestinationExists) and replaces it with -Force' {
        $dest = Join-Path $TestDrive 'exists.safetensors'
        $null = Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -Destination $dest
        $before = Get-FileSha $dest
        $out = Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_batchnorm.pt') -Destination $dest -ErrorVariable ev -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $ev.Count | Should -Be 1
        Get-ErrorId $ev[0] | Should -Be 'DestinationExists'
        Get-FileSha $dest | Should -Be $before

        $null = Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_batchnorm.pt') -Destination $dest -Force
        Get-FileSha $dest | Should -Not -Be $before
        @((Read-Safetensors $dest).Tensors.Keys | Sort-Object) |
            Should -Be @((Get-ManifestEntry 'torch-1.13/sd_batchnorm.pt').tensors | ForEach-Object { Get-TensorName $_ } | Sort-Object)
    }

    It 'writes tensors sharing a storage once (views_shared_storage.pt), keeping the one that covers it, with a warning' {
        $entry = Get-ManifestEntry 'torch-1.13/views_shared_storage.pt'
        $shared = @($entry.storages.shared[0].tensors)            # base, transposed, stepped, narrowed, row2, flat_tail
        $dest = Join-Path $TestDrive 'views.safetensors'
        $null = Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/views_shared_storage.pt') -Destination $dest -WarningVariable wv -WarningAction SilentlyContinue
        $st = Read-Safetensors $dest
        @($st.Tensors.Keys | Sort-Object) | Should -Be @('base', 'independent')
        $wv.Count | Should -Be 1
        foreach ($n in $shared | Where-Object { $_ -ne 'base' }) { "$wv" | Should -Match "\b$n\b" }
        foreach ($n in 'base', 'independent') {
            Get-Sha256 $st.Tensors[$n].Data | Should -BeExactly ($entry.tensors | Where-Object path_str -eq $n).sha256
        }
    }

    It 'refuses tensors that share a storage none of them covers, and writes no file' {
        $v = Import-TorchCheckpoint (Get-Fixture 'torch-1.13/views_shared_storage.pt')
        $dest = Join-Path $TestDrive 'partial_views.safetensors'
        $out = Export-TorchSafetensors -InputObject @($v['stepped'], $v['narrowed']) -Destination $dest -ErrorVariable ev -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        $ev.Count | Should -Be 1
        Get-ErrorId $ev[0] | Should -Be 'InvalidArgument'
        $ev[0].Exception.Message | Should -Match 'none covers it'
        Test-Path -LiteralPath $dest | Should -BeFalse
    }

    It 'refuses a dtype safetensors cannot hold (complex128 in all_dtypes_zip.pt) and writes no file' {
        $dest = Join-Path $TestDrive 'all_dtypes.safetensors'
        $null = Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/all_dtypes_zip.pt') -Destination $dest -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -Be 1
        $ev[0].Exception.Message | Should -Match 'complex128'
        Test-Path -LiteralPath $dest | Should -BeFalse
    }

    It '-WhatIf writes nothing and outputs nothing' {
        $dest = Join-Path $TestDrive 'whatif.safetensors'
        Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -Destination $dest -WhatIf | Should -BeNullOrEmpty
        Test-Path -LiteralPath $dest | Should -BeFalse
        $existing = Join-Path $TestDrive 'whatif_existing.safetensors'
        $null = Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -Destination $existing
        $before = Get-FileSha $existing
        Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_batchnorm.pt') -Destination $existing -Force -WhatIf | Should -BeNullOrEmpty
        Get-FileSha $existing | Should -Be $before
    }

    It 'never writes an empty file for a checkpoint file piped in (Get-Item | Export-TorchSafetensors)' {
        # A FileInfo or path string from the pipeline binds to -InputObject. It must be exported as the file
        # (as Get-TorchTensor does) or refused with an error, not written as a file of zero tensors.
        $dest = Join-Path $TestDrive 'from_fileinfo.safetensors'
        $null = Get-Item -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt') | Export-TorchSafetensors $dest -ErrorVariable ev -ErrorAction SilentlyContinue
        if (Test-Path -LiteralPath $dest) {
            @((Read-Safetensors $dest).Tensors.Keys | Sort-Object) | Should -Be @('0.bias', '0.weight', '3.bias', '3.weight')
        }
        else { $ev.Count | Should -BeGreaterThan 0 }
    }

    It 'a destination in a folder that does not exist is a non-terminating error, and the pipeline goes on' {
        $dest = Join-Path $TestDrive 'no-such-folder/x.safetensors'
        { Export-TorchSafetensors -LiteralPath (Get-Fixture 'torch-1.13/sd_conv_linear.pt') -Destination $dest -ErrorAction SilentlyContinue } |
            Should -Not -Throw
        Test-Path -LiteralPath $dest | Should -BeFalse
    }

    It 'exports the tensors of a PowerShell hashtable' {
        $sd = Import-TorchCheckpoint (Get-Fixture 'torch-1.13/sd_conv_linear.pt')
        $dest = Join-Path $TestDrive 'hashtable.safetensors'
        $null = Export-TorchSafetensors -InputObject ([ordered]@{ w = $sd['3.weight']; b = $sd['3.bias'] }) -Destination $dest
        $st = Read-Safetensors $dest
        @($st.Tensors.Keys | Sort-Object) | Should -Be @('b', 'w')
        Get-Sha256 $st.Tensors['w'].Data | Should -BeExactly (Get-Sha256 $sd['3.weight'].ToByteArray())
    }
}

Describe 'Sharded checkpoints (*.bin.index.json)' {
    BeforeAll {
        $shardSources = [ordered]@{
            'pytorch_model-00001-of-00002.bin' = 'torch-1.13/sd_conv_linear.pt'
            'pytorch_model-00002-of-00002.bin' = 'torch-1.13/sd_embedding_lstm.pt'
        }
        $folder = Join-Path $TestDrive 'sharded'
        $null = New-Item -ItemType Directory -Path $folder
        $weightMap = [ordered]@{}
        $expected = [ordered]@{}                                  # tensor name -> manifest tensor
        foreach ($shard in $shardSources.Keys) {
            Copy-Item -LiteralPath (Get-Fixture $shardSources[$shard]) -Destination (Join-Path $folder $shard)
            foreach ($t in (Get-ManifestEntry $shardSources[$shard]).tensors) {
                $n = Get-TensorName $t
                if ($expected.Contains($n)) { throw "fixture keys overlap: $n" }
                $weightMap[$n] = $shard; $expected[$n] = $t
            }
        }
        function New-Index([string]$Name, $Map) {
            $path = Join-Path $folder $Name
            @{ metadata = @{ total_size = 0 }; weight_map = $Map } | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $path
            $path
        }
        $index = New-Index 'pytorch_model.bin.index.json' $weightMap
    }

    It 'Import-TorchCheckpoint returns one state dict with the keys of all shards, values as the manifests say' {
        $sd = Import-TorchCheckpoint -LiteralPath $index
        @($sd.Keys) | Should -Be @($expected.Keys)
        foreach ($n in $expected.Keys) { Get-Sha256 $sd[$n].ToByteArray() | Should -BeExactly $expected[$n].sha256 -Because $n }
    }

    It 'Get-TorchTensor lists the tensors of all shards, with -Hash from the manifests' {
        $rows = @(Get-TorchTensor -LiteralPath $index -Hash)
        $rows.Name | Should -Be @($expected.Keys)
        foreach ($row in $rows) {
            $row.DType | Should -Be $expected[$row.Name].dtype
            $row.Sha256 | Should -BeExactly $expected[$row.Name].sha256
        }
        @(Get-TorchTensor -LiteralPath $index -Name 'lstm.*').Count | Should -Be 4
    }

    It 'Test-TorchCheckpoint gives one Safe result for the whole set' {
        $r = @(Test-TorchCheckpoint -LiteralPath $index)
        $r.Count | Should -Be 1
        "$($r[0].Verdict)" | Should -Be 'Safe'
        $r[0].Format | Should -Be 'sharded'
        $r[0].TensorCount | Should -Be $expected.Count
        $r[0].RecordCount | Should -Be $shardSources.Count
        Test-TorchCheckpoint -LiteralPath $index -Quiet | Should -BeTrue
    }

    It 'Compare-TorchCheckpoint sees the second shard''s tensors as Added to the first' {
        $rows = @(Compare-TorchCheckpoint (Join-Path $folder 'pytorch_model-00001-of-00002.bin') $index)
        $rows.Change | Select-Object -Unique | Should -Be 'Added'
        @($rows.Name) | Should -Be @((Get-ManifestEntry 'torch-1.13/sd_embedding_lstm.pt').tensors | ForEach-Object { Get-TensorName $_ })
    }

    It 'a weight_map naming a tensor its shard does not have is MissingRecord (Import, Get-TorchTensor, Test)' {
        $map = [ordered]@{}; foreach ($k in $weightMap.Keys) { $map[$k] = $weightMap[$k] }
        $map['extra.weight'] = 'pytorch_model-00001-of-00002.bin'
        $bad = New-Index 'missing.bin.index.json' $map
        $null = Import-TorchCheckpoint -LiteralPath $bad -ErrorVariable ev1 -ErrorAction SilentlyContinue
        Get-ErrorId $ev1[0] | Should -Be 'MissingRecord'
        $ev1[0].Exception.Message | Should -Match 'extra\.weight'
        $null = Get-TorchTensor -LiteralPath $bad -ErrorVariable ev2 -ErrorAction SilentlyContinue
        Get-ErrorId $ev2[0] | Should -Be 'MissingRecord'
        $r = Test-TorchCheckpoint -LiteralPath $bad
        "$($r.Verdict)" | Should -Be 'Corrupt'
        $r.ErrorId | Should -Be 'MissingRecord'
    }

    It 'a shard name with ../ is InvalidRecordName (Import, Get-TorchTensor, Test)' {
        $bad = New-Index 'traversal.bin.index.json' ([ordered]@{ '0.weight' = '../pytorch_model-00001-of-00002.bin' })
        $null = Import-TorchCheckpoint -LiteralPath $bad -ErrorVariable ev1 -ErrorAction SilentlyContinue
        Get-ErrorId $ev1[0] | Should -Be 'InvalidRecordName'
        $null = Get-TorchTensor -LiteralPath $bad -ErrorVariable ev2 -ErrorAction SilentlyContinue
        Get-ErrorId $ev2[0] | Should -Be 'InvalidRecordName'
        $r = Test-TorchCheckpoint -LiteralPath $bad
        "$($r.Verdict)" | Should -Be 'Corrupt'
        $r.ErrorId | Should -Be 'InvalidRecordName'
    }

    It 'the same tensor name in two shards is DuplicateRecord (Import and Test)' {
        # sd_conv_linear.pt and sd_batchnorm.pt both hold 0.weight and 0.bias
        Copy-Item -LiteralPath (Get-Fixture 'torch-1.13/sd_batchnorm.pt') -Destination (Join-Path $folder 'batchnorm.bin')
        $bad = New-Index 'overlap.bin.index.json' ([ordered]@{ '3.weight' = 'pytorch_model-00001-of-00002.bin'; '1.weight' = 'batchnorm.bin' })
        $null = Import-TorchCheckpoint -LiteralPath $bad -ErrorVariable ev -ErrorAction SilentlyContinue
        Get-ErrorId $ev[0] | Should -Be 'DuplicateRecord'
        $r = Test-TorchCheckpoint -LiteralPath $bad
        $r.IsSafe | Should -BeFalse
        $r.ErrorId | Should -Be 'DuplicateRecord'
    }

    It 'one shard with an unsafe global makes the set Unsafe' {
        Copy-Item -LiteralPath (Get-Fixture 'torch-1.13/whole_module_sequential.pt') -Destination (Join-Path $folder 'module.bin')
        $bad = New-Index 'unsafe.bin.index.json' ([ordered]@{ '0.weight' = 'pytorch_model-00001-of-00002.bin'; 'x' = 'module.bin' })
        $r = Test-TorchCheckpoint -LiteralPath $bad
        "$($r.Verdict)" | Should -Be 'Unsafe'
        @($r.Globals | Where-Object Verdict -eq 'Unknown').Name | Should -Contain 'torch.nn.modules.container.Sequential'
        ($r.Findings -join "`n") | Should -Match 'module\.bin: '
        $null = Import-TorchCheckpoint -LiteralPath $bad -ErrorVariable ev -ErrorAction SilentlyContinue
        Get-ErrorId $ev[0] | Should -Be 'UnsafeGlobal'
    }
}
