#requires -Version 7.4
# Get-TorchStorage, Move-TorchStorage and Get-TorchDevice on the real sample (samples/sd_conv_linear.pt).
# Record offsets and sizes come from the fixture manifest the sample was copied from.

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $sample = Join-Path $repo 'samples/sd_conv_linear.pt'
    function Get-Sha256([byte[]]$Bytes) {
        [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($Bytes)).ToLowerInvariant()
    }
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
}

Describe 'Get-TorchStorage -Path' {
    BeforeAll {
        $storages = @(Get-TorchStorage -Path $sample | Sort-Object { [int]$_.Key })
    }

    It 'lists one storage per data record' {
        $storages.Count | Should -Be 4
        $storages.Key | Should -Be @('0', '1', '2', '3')
    }

    It 'storage <Key> has dtype, size, location, record and file offset' -ForEach @(
        @{ Key = '0'; Elements = 108; Offset = 640; Tensor = '0.weight' }
        @{ Key = '1'; Elements = 4; Offset = 1152; Tensor = '0.bias' }
        @{ Key = '2'; Elements = 80; Offset = 1280; Tensor = '3.weight' }
        @{ Key = '3'; Elements = 5; Offset = 1728; Tensor = '3.bias' }
    ) {
        $s = $storages | Where-Object Key -eq $Key
        "$($s.DType)" | Should -Be 'float32'
        $s.ElementCount | Should -Be $Elements
        $s.ByteLength | Should -Be (4 * $Elements)
        $s.Location | Should -Be 'cpu'
        $s.RecordName | Should -Be "sd_conv_linear/data/$Key"
        $s.FileOffset | Should -Be $Offset
        @($s.TensorPaths) | Should -Be @($Tensor)
    }

    It 'takes files from the pipeline' {
        @(Get-Item -LiteralPath $sample | Get-TorchStorage).Count | Should -Be 4
    }

    It 'writes a non-terminating error for a missing file' {
        $out = @(Get-TorchStorage -LiteralPath (Join-Path $TestDrive 'missing.pt'), $sample -ErrorVariable ev -ErrorAction SilentlyContinue)
        $out.Count | Should -Be 4
        $ev.Count | Should -Be 1
        $ev[0].FullyQualifiedErrorId | Should -Be 'PathNotFound,TorchLoad.Commands.GetTorchStorageCommand'
    }
}

Describe 'Get-TorchStorage -InputObject' {
    BeforeAll { $sd = Import-TorchCheckpoint $sample }

    It 'lists the storages of a loaded checkpoint from the pipeline, as the tensors'' own objects' {
        $storages = @($sd | Get-TorchStorage)
        $storages.Count | Should -Be 4
        $s0 = $storages | Where-Object Key -eq '0'
        [object]::ReferenceEquals($s0, $sd['0.weight'].Storage) | Should -BeTrue
    }

    It 'writes a storage reached twice only once' {
        @(Get-TorchStorage -InputObject @($sd['0.weight'], $sd['0.weight'], $sd['0.bias'])).Count | Should -Be 2
    }
}

Describe 'Move-TorchStorage' {
    BeforeEach { $sd = Import-TorchCheckpoint $sample }

    It '-WhatIf moves nothing and writes nothing' {
        $before = $sd['0.weight'].Device
        $out = $sd | Move-TorchStorage -Device 'ilgpu-cpu' -WhatIf
        $out | Should -BeNullOrEmpty
        $sd['0.weight'].Device | Should -Be $before
    }

    It 'moves every storage of a checkpoint to ilgpu-cpu and back, values unchanged' {
        $sd | Move-TorchStorage -Device 'ilgpu-cpu'
        foreach ($t in $sd.Values) { $t.Device | Should -Be 'ilgpu-cpu' }
        Get-Sha256 $sd['3.weight'].ToByteArray() | Should -Be 'e37e0548c5f7eb3713bc1ffa3e93ef22c2482d3403abdda8c92886d271859c59'
        Move-TorchStorage -InputObject $sd -Device 'cpu'
        foreach ($t in $sd.Values) { $t.Device | Should -Be 'cpu' }
        Get-Sha256 $sd['0.weight'].ToByteArray() | Should -Be '3fd17841f778ac396b5665c4eb4c2aa4d8c70abedd490caabea95dd771525979'
    }

    It 'writes nothing by default and each moved storage with -PassThru' {
        Move-TorchStorage -InputObject $sd['0.bias'] -Device 'ilgpu-cpu' | Should -BeNullOrEmpty
        $moved = @($sd | Move-TorchStorage -Device 'ilgpu-cpu' -PassThru)
        $moved.Count | Should -Be 4
        $moved | ForEach-Object { $_.Device | Should -Be 'ilgpu-cpu' }
    }

    It 'refuses a device that is not present with DeviceUnavailable' {
        $null = Move-TorchStorage -InputObject $sd -Device 'cuda:99' -ErrorVariable ev -ErrorAction SilentlyContinue
        $ev.Count | Should -BeGreaterOrEqual 1
        Get-ErrorId $ev[0] | Should -Be 'DeviceUnavailable'
    }
}

Describe 'Get-TorchDevice' {
    It 'lists cpu and ilgpu-cpu' {
        $names = @(Get-TorchDevice | ForEach-Object Name)
        $names | Should -Contain 'cpu'
        $names | Should -Contain 'ilgpu-cpu'
        @($names | Where-Object { $_ -notin 'cpu', 'ilgpu-cpu' -and $_ -notmatch '^cuda:\d+$' }) | Should -BeNullOrEmpty
    }

    It 'filters by -Name with wildcards' {
        @(Get-TorchDevice -Name 'ilgpu*' | ForEach-Object Name) | Should -Be @('ilgpu-cpu')
        @(Get-TorchDevice 'cpu' | ForEach-Object Name) | Should -Be @('cpu')
        Get-TorchDevice -Name 'no-such-device*' | Should -BeNullOrEmpty
    }
}
