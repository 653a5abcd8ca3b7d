#requires -Version 7.4
# Import-TorchCheckpoint on the real sample (samples/sd_conv_linear.pt, torch 1.13), its parameters,
# and safe mode with the safe-global cmdlets. Expected values come from the fixture manifest the sample
# was copied from (see samples/README.md).

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $sample = Join-Path $repo 'samples/sd_conv_linear.pt'

    function Get-Sha256([byte[]]$Bytes) {
        [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($Bytes)).ToLowerInvariant()
    }

    function New-NamespaceCheckpoint([string]$Path) {
        # A zip checkpoint (torch layout: <stem>/data.pkl + <stem>/version) whose pickle is what
        # torch.save(argparse.Namespace(epochs=5, name='run1')) writes with protocol 2: a global that is
        # not in torch's weights_only allowlist, built by NEWOBJ and BUILD.
        $pkl = [System.IO.MemoryStream]::new()
        $w = { param([byte[]]$b) $pkl.Write($b, 0, $b.Length) }
        $ascii = { param([string]$s) [System.Text.Encoding]::ASCII.GetBytes($s) }
        & $w ([byte[]](0x80, 0x02))                                   # PROTO 2
        & $w (& $ascii "cargparse`nNamespace`n")                      # GLOBAL argparse.Namespace
        & $w ([byte[]](0x71, 0x00, 0x29, 0x81, 0x71, 0x01, 0x7d, 0x71, 0x02))   # BINPUT 0, EMPTY_TUPLE, NEWOBJ, BINPUT 1, EMPTY_DICT, BINPUT 2
        & $w ([byte[]](0x28))                                         # MARK
        & $w ([byte[]](0x58, 6, 0, 0, 0)); & $w (& $ascii 'epochs')   # BINUNICODE 'epochs'
        & $w ([byte[]](0x4b, 0x05))                                   # BININT1 5
        & $w ([byte[]](0x58, 4, 0, 0, 0)); & $w (& $ascii 'name')     # BINUNICODE 'name'
        & $w ([byte[]](0x58, 4, 0, 0, 0)); & $w (& $ascii 'run1')     # BINUNICODE 'run1'
        & $w ([byte[]](0x75, 0x62, 0x2e))                             # SETITEMS, BUILD, STOP
        $stem = [System.IO.Path]::GetFileNameWithoutExtension($Path)
        $fs = [System.IO.File]::Create($Path)
        try {
            $zip = [System.IO.Compression.ZipArchive]::new($fs, [System.IO.Compression.ZipArchiveMode]::Create)
            foreach ($entry in @(@("$stem/data.pkl", $pkl.ToArray()), @("$stem/version", (& $ascii "3`n")))) {
                $e = $zip.CreateEntry($entry[0], [System.IO.Compression.CompressionLevel]::NoCompression)
                $s = $e.Open(); $s.Write($entry[1], 0, $entry[1].Length); $s.Dispose()
            }
            $zip.Dispose()
        } finally { $fs.Dispose() }
        return $Path
    }

    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }

    $nsFile = New-NamespaceCheckpoint (Join-Path $TestDrive 'ns_ckpt.pt')
}

Describe 'Import-TorchCheckpoint on a real state_dict' {
    BeforeAll {
        $result = @(Import-TorchCheckpoint $sample)
        $sd = $result[0]
    }

    It 'writes one object, an ordered dictionary with the keys in file order' {
        $result.Count | Should -Be 1
        $sd | Should -BeOfType [System.Collections.IDictionary]
        @($sd.Keys) | Should -Be @('0.weight', '0.bias', '3.weight', '3.bias')
    }

    It 'tensor <Key> has the saved dtype, shape, stride, storage and values' -ForEach @(
        @{ Key = '0.weight'; Shape = 4, 3, 3, 3; Stride = 27, 9, 3, 1; StorageKey = '0'; Elements = 108; Sha = '3fd17841f778ac396b5665c4eb4c2aa4d8c70abedd490caabea95dd771525979' }
        @{ Key = '0.bias'; Shape = @(4); Stride = @(1); StorageKey = '1'; Elements = 4; Sha = 'ea3ae1250b005038b52263a6909d00ed69eb251b3aaddd85c071c5c26ed3c571' }
        @{ Key = '3.weight'; Shape = 5, 16; Stride = 16, 1; StorageKey = '2'; Elements = 80; Sha = 'e37e0548c5f7eb3713bc1ffa3e93ef22c2482d3403abdda8c92886d271859c59' }
        @{ Key = '3.bias'; Shape = @(5); Stride = @(1); StorageKey = '3'; Elements = 5; Sha = '0512f408dfbb47d57f64375672afb6901c935dbe4f1ac5e85dd6595f26b509cc' }
    ) {
        $t = $sd[$Key]
        "$($t.DType)" | Should -Be 'float32'
        $t.Shape | Should -Be $Shape
        $t.Stride | Should -Be $Stride
        $t.StorageOffset | Should -Be 0
        "$($t.Layout)" | Should -Be 'strided'
        $t.RequiresGrad | Should -BeFalse
        $t.IsParameter | Should -BeFalse
        $t.Storage.Key | Should -Be $StorageKey
        $t.Storage.Location | Should -Be 'cpu'
        $t.Storage.ElementCount | Should -Be $Elements
        $t.Storage.ByteLength | Should -Be (4 * $Elements)
        Get-Sha256 $t.ToByteArray() | Should -Be $Sha
    }

    It 'ToArray() gives the values as a [float[]]' {
        $values = $sd['0.bias'].ToArray()
        , $values | Should -BeOfType [float[]]
        $values.Length | Should -Be 4
        $values[0] | Should -Be ([float]0.13222678005695343)
        $values[1] | Should -Be ([float]-0.015746038407087326)
    }

    It 'gives every tensor its own storage object' {
        @($sd.Values | ForEach-Object { $_.Storage.Key } | Sort-Object -Unique).Count | Should -Be 4
    }
}

Describe 'Import-TorchCheckpoint paths and pipeline' {
    It 'expands wildcards in -Path' {
        @(Import-TorchCheckpoint -Path (Join-Path $repo 'samples/*.pt')).Count | Should -Be @(Get-ChildItem (Join-Path $repo 'samples') -Filter '*.pt').Count
    }

    It 'takes -LiteralPath' {
        @(Import-TorchCheckpoint -LiteralPath $sample)[0].Count | Should -Be 4
    }

    It 'takes files from Get-ChildItem through the pipeline' {
        $out = @(Get-Item -LiteralPath $sample | Import-TorchCheckpoint)
        $out.Count | Should -Be 1
        $out[0].Keys | Should -Contain '3.bias'
    }

    It 'binds a piped file or folder by value to -InputFile (Import- and Test-TorchCheckpoint), in input order' {
        # by value: PowerShell does not look the PSPath property up for each file (about half the binding cost)
        foreach ($command in 'Import-TorchCheckpoint', 'Test-TorchCheckpoint') {
            $log = Join-Path $TestDrive "binding-$command.txt"
            $item = Get-Item -LiteralPath $sample
            Trace-Command -Name ParameterBinding -FilePath $log -Expression { $item | & $command | Out-Null }
            $trace = Get-Content -LiteralPath $log -Raw
            $trace | Should -Match 'to param \[InputFile\] SUCCESSFUL' -Because $command
            $trace | Should -Not -Match 'to param \[LiteralPath\] SUCCESSFUL' -Because $command
        }
        $files = @(Get-ChildItem -LiteralPath (Join-Path $repo 'samples') -Filter '*.pt' | Sort-Object Name)
        $audits = @($files | Test-TorchCheckpoint)
        $audits.Path | Should -Be $files.FullName
        (Test-TorchCheckpoint -InputFile $files[0]).Path | Should -Be $files[0].FullName
        @($files | Import-TorchCheckpoint).Count | Should -Be $files.Count
    }

    It 'says PathNotFound for a piped file that is gone, and goes on' {
        $gone = Join-Path $TestDrive 'gone.pt'
        Copy-Item -LiteralPath $sample -Destination $gone
        $items = @((Get-Item -LiteralPath $gone), (Get-Item -LiteralPath $sample))
        Remove-Item -LiteralPath $gone
        foreach ($command in 'Import-TorchCheckpoint', 'Test-TorchCheckpoint') {
            $out = @($items | & $command -ErrorVariable ev -ErrorAction SilentlyContinue)
            $out.Count | Should -Be 1 -Because $command
            $ev.Count | Should -Be 1 -Because $command
            $ev[0].FullyQualifiedErrorId | Should -BeLike 'PathNotFound,*' -Because $command
            $ev[0].TargetObject | Should -Be $gone -Because $command
        }
    }

    It 'takes a file named like a pattern from Get-ChildItem as that file (every cmdlet)' {
        # a piped FileInfo binds -LiteralPath: 'model[1].pt' is a name; as -Path it matched nothing, silently
        $dir = New-Item -ItemType Directory -Path (Join-Path $TestDrive 'brackets') -Force
        Copy-Item -LiteralPath $sample -Destination (Join-Path $dir 'model[1].pt')
        @(Get-ChildItem -LiteralPath $dir | Import-TorchCheckpoint).Count | Should -Be 1
        $audit = @(Get-ChildItem -LiteralPath $dir | Test-TorchCheckpoint)
        $audit.Count | Should -Be 1
        [IO.Path]::GetFileName($audit[0].Path) | Should -Be 'model[1].pt'
        @(Get-ChildItem -LiteralPath $dir | Get-TorchTensor).Count | Should -Be 4
        @(Get-ChildItem -LiteralPath $dir | Get-TorchStorage).Count | Should -Be 4
        @(Get-ChildItem -LiteralPath $dir | Measure-TorchTensor).Count | Should -Be 4
        @([pscustomobject]@{ FullName = (Join-Path $dir 'model[1].pt') } | Test-TorchCheckpoint).Count | Should -Be 1
        # -Path takes the name with its brackets escaped, as PowerShell's own cmdlets do
        @(Import-TorchCheckpoint -Path (Join-Path $dir 'model`[1`].pt')).Count | Should -Be 1
        @(Test-TorchCheckpoint -Path (Join-Path $dir 'model`[1`].pt')).Count | Should -Be 1
    }

    It 'resolves a -Path without wildcards through a PowerShell drive, .. segments and another provider''s location' {
        $null = New-PSDrive -Name TLSamples -PSProvider FileSystem -Root (Join-Path $repo 'samples')
        try { @(Import-TorchCheckpoint 'TLSamples:/sd_conv_linear.pt').Count | Should -Be 1 } finally { Remove-PSDrive TLSamples }
        @(Import-TorchCheckpoint (Join-Path $repo 'samples/../samples/sd_conv_linear.pt')).Count | Should -Be 1
        Push-Location Env:
        try {
            @(Import-TorchCheckpoint -LiteralPath $sample).Count | Should -Be 1
            (Test-TorchCheckpoint $sample).Verdict | Should -Be 'Safe'
        } finally { Pop-Location }
    }

    It 'loads many small files on workers and writes them in input order, errors in their place' {
        $dir = Join-Path $repo 'tests/fixtures/torch-2.6'
        $list = @((Get-ChildItem -LiteralPath $dir -Filter '*.pt' | Sort-Object Name).FullName) * 2
        $list += Join-Path $TestDrive 'missing.pt'
        $list += (Get-ChildItem -LiteralPath $dir -Filter '*.pt' | Sort-Object Name -Descending).FullName
        # a row per result: the type and what it holds, or the error's id and target
        $show = { param($items) @($items | ForEach-Object {
            if ($_ -is [System.Management.Automation.ErrorRecord]) { "error $($_.FullyQualifiedErrorId) $($_.TargetObject)" }
            elseif ($_ -is [System.Collections.IDictionary]) { "$($_.GetType().Name) $($_.Count) $(@($_.Keys | ForEach-Object { "$_" }) -join ',')" }
            else { "$($_.GetType().Name)" } }) }
        $expected = & $show (& { foreach ($p in $list) { Import-TorchCheckpoint -LiteralPath $p -WeightsOnly:$false -ErrorAction Continue 2>&1 } })
        & $show (Import-TorchCheckpoint -LiteralPath $list -WeightsOnly:$false -ErrorAction Continue 2>&1) | Should -Be $expected
        & $show ($list | Import-TorchCheckpoint -WeightsOnly:$false -ErrorAction Continue 2>&1) | Should -Be $expected
        $expected.Count | Should -BeGreaterThan 60
    }

    It 'accepts a path relative to the current location' {
        Push-Location $repo
        try { @(Import-TorchCheckpoint 'samples/sd_conv_linear.pt').Count | Should -Be 1 } finally { Pop-Location }
    }

    It 'writes a non-terminating error for a missing file and goes on with the next one' {
        $missing = Join-Path $TestDrive 'no-such-file.pt'
        $out = @(Import-TorchCheckpoint -LiteralPath $missing, $sample -ErrorVariable ev -ErrorAction SilentlyContinue)
        $out.Count | Should -Be 1
        $ev.Count | Should -Be 1
        $ev[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $ev[0].FullyQualifiedErrorId | Should -Be 'PathNotFound,TorchLoad.Commands.ImportTorchCheckpointCommand'
    }

    It 'says PathNotFound for a named path with nothing there, from every cmdlet that reads files, in input order' {
        # paths are not looked up before they are opened: the error comes from the failed open, in its place
        Push-Location $TestDrive
        try {
            foreach ($command in 'Import-TorchCheckpoint', 'Test-TorchCheckpoint', 'Get-TorchStorage', 'Get-TorchTensor', 'Measure-TorchTensor') {
                foreach ($missing in 'relative-missing.pt', (Join-Path $TestDrive 'absolute-missing.pt'), (Join-Path $TestDrive 'no-folder/x.pt')) {
                    $out = @(& $command -LiteralPath $missing, $sample -ErrorVariable ev -ErrorAction SilentlyContinue)
                    $out.Count | Should -BeGreaterThan 0 -Because "$command goes on after $missing"
                    $ev.Count | Should -Be 1 -Because "$command $missing"
                    $ev[0].FullyQualifiedErrorId | Should -BeLike 'PathNotFound,*' -Because "$command $missing"
                    $ev[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
                    $ev[0].Exception.Message | Should -BeLike "Cannot find path '*$(Split-Path $missing -Leaf)' because it does not exist."
                    $null = & $command -Path $missing -ErrorVariable ev2 -ErrorAction SilentlyContinue
                    $ev2[0].FullyQualifiedErrorId | Should -BeLike 'PathNotFound,*' -Because "$command -Path $missing"
                }
            }
            $rows = @(Test-TorchCheckpoint -LiteralPath $sample, 'relative-missing.pt', $sample -ErrorAction Continue 2>&1)
            $rows[1] | Should -BeOfType [System.Management.Automation.ErrorRecord]
            $rows[0].Verdict, $rows[2].Verdict | Should -Be 'Safe', 'Safe'
        } finally { Pop-Location }
    }

    It 'writes a non-terminating error for a -Path that matches nothing' {
        $null = Import-TorchCheckpoint -Path (Join-Path $TestDrive 'nothing-here.pt') -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -Be 1
        { Import-TorchCheckpoint -Path (Join-Path $TestDrive 'nothing-here.pt') -ErrorAction Stop } | Should -Throw
    }

    It 'refuses a text file as NotACheckpoint' {
        $text = Join-Path $TestDrive 'notes.pt'
        Set-Content -LiteralPath $text -Value 'this is not a checkpoint'
        $null = Import-TorchCheckpoint -LiteralPath $text -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev[0].FullyQualifiedErrorId | Should -Be 'NotACheckpoint,TorchLoad.Commands.ImportTorchCheckpointCommand'
        $ev[0].CategoryInfo.Category | Should -Be 'InvalidData'
        $ev[0].TargetObject | Should -Be $text
    }
}

Describe 'Import-TorchCheckpoint options' {
    It '-Mmap gives the same values' {
        $mapped = Import-TorchCheckpoint $sample -Mmap
        Get-Sha256 $mapped['3.weight'].ToByteArray() | Should -Be 'e37e0548c5f7eb3713bc1ffa3e93ef22c2482d3403abdda8c92886d271859c59'
        $mapped['3.weight'].Storage.IsMapped | Should -BeTrue
    }

    It '-MapLocation ''cpu'' keeps the tensors on the CPU' {
        $sd = Import-TorchCheckpoint $sample -MapLocation 'cpu'
        $sd['0.bias'].ToArray().Length | Should -Be 4
        $sd['0.bias'].Device | Should -Be 'cpu'
    }

    It '-MapLocation accepts a hashtable of saved locations' {
        $sd = Import-TorchCheckpoint $sample -MapLocation @{ 'cuda:1' = 'cpu' }
        Get-Sha256 $sd['0.bias'].ToByteArray() | Should -Be 'ea3ae1250b005038b52263a6909d00ed69eb251b3aaddd85c071c5c26ed3c571'
    }

    It '-MapLocation calls a scriptblock with each storage and its saved location' {
        $seen = [System.Collections.Generic.List[string]]::new()
        $sd = Import-TorchCheckpoint $sample -MapLocation { param($storage, $location) $seen.Add("$($storage.Key)=$location"); $null }.GetNewClosure()
        Get-Sha256 $sd['3.bias'].ToByteArray() | Should -Be '0512f408dfbb47d57f64375672afb6901c935dbe4f1ac5e85dd6595f26b509cc'
        @($seen | Sort-Object -Unique) | Should -Be @('0=cpu', '1=cpu', '2=cpu', '3=cpu')
    }

    It '<Parameter> <Value> stops the load with LimitExceeded' -ForEach @(
        @{ Parameter = 'MaxStringBytes'; Value = 4 }
        @{ Parameter = 'MaxMemoEntries'; Value = 1 }
        @{ Parameter = 'MaxNestingDepth'; Value = 1 }
    ) {
        $splat = @{ LiteralPath = $sample; $Parameter = $Value }
        $null = Import-TorchCheckpoint @splat -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -Be 1
        Get-ErrorId $ev[0] | Should -Be 'LimitExceeded'
        $ev[0].Exception.Message | Should -Match $Parameter
    }
}

Describe 'Safe mode (-WeightsOnly, -SafeGlobal)' {
    BeforeAll { Clear-TorchSafeGlobal -Confirm:$false }
    AfterAll { Clear-TorchSafeGlobal -Confirm:$false }

    It '-WeightsOnly is a [bool] parameter' {
        (Get-Command Import-TorchCheckpoint).Parameters['WeightsOnly'].ParameterType | Should -Be ([bool])
    }

    It 'is on by default: a global outside the allowlist gives UnsafeGlobal naming it' {
        $out = Import-TorchCheckpoint -LiteralPath $nsFile -ErrorVariable ev -ErrorAction SilentlyContinue
        $out | Should -BeNullOrEmpty
        Get-ErrorId $ev[0] | Should -Be 'UnsafeGlobal'
        $ev[0].Exception.Message | Should -Match 'argparse\.Namespace'
    }

    It 'the default equals -WeightsOnly $true' {
        $null = Import-TorchCheckpoint -LiteralPath $nsFile -WeightsOnly $true -ErrorVariable ev -ErrorAction SilentlyContinue
        Get-ErrorId $ev[0] | Should -Be 'UnsafeGlobal'
    }

    It 'loads the real state_dict in the default mode' {
        { Import-TorchCheckpoint $sample -ErrorAction Stop } | Should -Not -Throw
    }

    It '-WeightsOnly $false returns an inert object with ClassName and State' {
        $ns = Import-TorchCheckpoint -LiteralPath $nsFile -WeightsOnly $false -ErrorAction Stop
        $ns.ClassName | Should -Be 'argparse.Namespace'
        $ns.State | Should -BeOfType [System.Collections.IDictionary]
        $ns.State['epochs'] | Should -Be 5
        $ns.State['name'] | Should -Be 'run1'
    }

    It '-SafeGlobal allows the global for that call only' {
        $ns = Import-TorchCheckpoint -LiteralPath $nsFile -SafeGlobal 'argparse.Namespace' -ErrorAction Stop
        $ns.ClassName | Should -Be 'argparse.Namespace'
        $null = Import-TorchCheckpoint -LiteralPath $nsFile -ErrorVariable ev -ErrorAction SilentlyContinue
        Get-ErrorId $ev[0] | Should -Be 'UnsafeGlobal'
    }

    It '-SafeGlobal refuses a blocked module' {
        { Import-TorchCheckpoint -LiteralPath $sample -SafeGlobal 'os.system' -ErrorAction Stop } | Should -Throw
    }
}

Describe 'Add-, Get- and Clear-TorchSafeGlobal' {
    BeforeEach { Clear-TorchSafeGlobal -Confirm:$false }
    AfterAll { Clear-TorchSafeGlobal -Confirm:$false }

    It 'starts empty after Clear-TorchSafeGlobal' {
        Get-TorchSafeGlobal | Should -BeNullOrEmpty
    }

    It 'Add-TorchSafeGlobal allows a global for every later load' {
        Add-TorchSafeGlobal -Name 'argparse.Namespace'
        @(Get-TorchSafeGlobal) | Should -Be @('argparse.Namespace')
        (Import-TorchCheckpoint -LiteralPath $nsFile -ErrorAction Stop).ClassName | Should -Be 'argparse.Namespace'
    }

    It 'takes names from the pipeline and lists them sorted' {
        'numpy.dtype', 'argparse.Namespace' | Add-TorchSafeGlobal
        @(Get-TorchSafeGlobal) | Should -Be @('argparse.Namespace', 'numpy.dtype')
    }

    It 'Clear-TorchSafeGlobal -WhatIf keeps the list' {
        Add-TorchSafeGlobal 'argparse.Namespace'
        Clear-TorchSafeGlobal -WhatIf
        @(Get-TorchSafeGlobal) | Should -Be @('argparse.Namespace')
    }

    It 'Clear-TorchSafeGlobal empties the list, and the global is refused again' {
        Add-TorchSafeGlobal 'argparse.Namespace'
        Clear-TorchSafeGlobal -Confirm:$false
        Get-TorchSafeGlobal | Should -BeNullOrEmpty
        $null = Import-TorchCheckpoint -LiteralPath $nsFile -ErrorVariable ev -ErrorAction SilentlyContinue
        Get-ErrorId $ev[0] | Should -Be 'UnsafeGlobal'
    }

    It 'never allows <Name>' -ForEach @(
        @{ Name = 'os.system' }, @{ Name = 'sys.exit' }, @{ Name = 'posix.system' }, @{ Name = 'nt.system' }
    ) {
        { Add-TorchSafeGlobal -Name $Name -ErrorAction Stop } | Should -Throw
        Get-TorchSafeGlobal | Should -Not -Contain $Name
    }

    It 'refuses a name without a module part' {
        { Add-TorchSafeGlobal -Name 'Namespace' -ErrorAction Stop } | Should -Throw
        Get-TorchSafeGlobal | Should -BeNullOrEmpty
    }
}
