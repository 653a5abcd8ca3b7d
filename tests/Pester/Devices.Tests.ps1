#requires -Version 7.4
# -MapLocation in torch's three forms, location handlers and the accelerator path on ILGPU's CPU
# accelerator ('ilgpu-cpu'), on real cuda-tagged checkpoints from the fixtures.

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    $cudaFile = Join-Path $fixtures 'torch-1.13/cuda_location_tag.pt'
    $mpsFile = Join-Path $fixtures 'external/burn/examples/import-model-weights/weights/mnist.pt'
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
    function Get-Hex($Tensor) { [Convert]::ToHexString($Tensor.ToByteArray()) }
    $reference = Import-TorchCheckpoint $cudaFile -MapLocation cpu
}

Describe 'default placement' {
    It 'refuses a cuda:0 storage on a machine without that device, naming -MapLocation' {
        $err = $null
        try { Import-TorchCheckpoint $cudaFile -ErrorAction Stop } catch { $err = $_ }
        Get-ErrorId $err | Should -Be 'DeviceUnavailable'
        $err.Exception.Message | Should -Match 'MapLocation cpu'
    }

    It 'refuses an mps storage the same way' {
        { Import-TorchCheckpoint $mpsFile -ErrorAction Stop } | Should -Throw -ErrorId 'DeviceUnavailable*'
    }

    It 'keeps the saved tag as Location and reports the current Device' {
        $reference['w'].Storage.Location | Should -Be 'cuda:0'
        $reference['w'].Device | Should -Be 'cpu'
    }
}

Describe '-MapLocation forms' {
    It 'a device string moves every storage there (ilgpu-cpu) with identical bytes' {
        $r = Import-TorchCheckpoint $cudaFile -MapLocation 'ilgpu-cpu'
        foreach ($k in 'w', 'b') {
            $r[$k].Device | Should -Be 'ilgpu-cpu'
            Get-Hex $r[$k] | Should -Be (Get-Hex $reference[$k])
        }
    }

    It 'a hashtable remaps saved tags; unmapped tags keep their device' {
        $r = Import-TorchCheckpoint $cudaFile -MapLocation @{ 'cuda:0' = 'ilgpu-cpu' }
        $r['w'].Device | Should -Be 'ilgpu-cpu'
        { Import-TorchCheckpoint $cudaFile -MapLocation @{ 'cuda:7' = 'cpu' } -ErrorAction Stop } | Should -Throw -ErrorId 'DeviceUnavailable*'
    }

    It 'a scriptblock is called once per storage with the storage and its saved tag' {
        $script:calls = [System.Collections.Generic.List[string]]::new()
        $r = Import-TorchCheckpoint $cudaFile -MapLocation { param($storage, $location) $script:calls.Add("$($storage.Key)=$location"); $storage }
        @($script:calls) | Should -Be @('0=cuda:0', '1=cuda:0')
        $r['w'].Device | Should -Be 'cpu'
    }

    It 'a scriptblock may place the storage itself with Move-TorchStorage' {
        $r = Import-TorchCheckpoint $cudaFile -MapLocation { param($s, $l) $s | Move-TorchStorage -Device ilgpu-cpu -PassThru }
        $r['b'].Device | Should -Be 'ilgpu-cpu'
        Get-Hex $r['b'] | Should -Be (Get-Hex $reference['b'])
    }

    It 'a scriptblock returning $null means default placement (which fails here)' {
        { Import-TorchCheckpoint $cudaFile -MapLocation { param($s, $l) $null } -ErrorAction Stop } | Should -Throw -ErrorId 'DeviceUnavailable*'
    }

    It 'a bad value is a parameter error' {
        { Import-TorchCheckpoint $cudaFile -MapLocation 'not a device!' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidMapLocation*'
        { Import-TorchCheckpoint $cudaFile -MapLocation 42 -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidMapLocation*'
    }
}

Describe 'Move-TorchStorage' {
    It 'moves storages to ilgpu-cpu and back; every viewing tensor follows and bytes survive' {
        $r = Import-TorchCheckpoint $cudaFile -MapLocation cpu
        $moved = @(Get-TorchStorage -InputObject $r | Move-TorchStorage -Device ilgpu-cpu -PassThru)
        $moved.Count | Should -Be 2
        $r['w'].Device | Should -Be 'ilgpu-cpu'
        Get-Hex $r['w'] | Should -Be (Get-Hex $reference['w'])
        $null = Get-TorchStorage -InputObject $r | Move-TorchStorage -Device cpu
        $r['w'].Device | Should -Be 'cpu'
        Get-Hex $r['w'] | Should -Be (Get-Hex $reference['w'])
    }

    It '-WhatIf moves nothing' {
        $r = Import-TorchCheckpoint $cudaFile -MapLocation cpu
        Get-TorchStorage -InputObject $r | Move-TorchStorage -Device ilgpu-cpu -WhatIf
        $r['w'].Device | Should -Be 'cpu'
    }
}

Describe 'location handlers (register_package)' {
    AfterEach { Reset-TorchLocationHandler -Confirm:$false }

    It 'a registered handler restores a custom tag, in priority order' {
        Register-TorchLocationHandler -Priority 5 -Name npu -Deserializer { param($s, $tag) if ($tag -like 'cuda*') { $s } }
        $r = Import-TorchCheckpoint $cudaFile
        $r['w'].Device | Should -Be 'cpu'
        (Get-TorchLocationHandler)[0].Name | Should -Be 'npu'
    }

    It 'a handler that declines leaves the default behaviour' {
        Register-TorchLocationHandler -Priority 5 -Deserializer { param($s, $tag) $null }
        { Import-TorchCheckpoint $cudaFile -ErrorAction Stop } | Should -Throw -ErrorId 'DeviceUnavailable*'
    }
}

Describe 'Get-TorchDevice' {
    It 'lists cpu and the ILGPU CPU accelerator' {
        $names = (Get-TorchDevice).Name
        $names | Should -Contain 'cpu'
        $names | Should -Contain 'ilgpu-cpu'
    }
}
