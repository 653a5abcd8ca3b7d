#requires -Version 7.4
# Safety as users see it: nothing written, files unchanged (also with -Mmap), concurrent loads
# identical while safe globals change, limits reported with the parameter that raises them.

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    $module = "$repo/module/TorchLoad.psd1"
    Import-Module $module -Force
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    function Get-ErrorId($ErrorRecord) { ($ErrorRecord.FullyQualifiedErrorId -split ',')[0] }
    function Get-FileSha([string]$Path) { (Get-FileHash -LiteralPath $Path -Algorithm SHA256).Hash }
    function Get-TreeDigest($Root) {
        # every tensor's values, in walk order, as one digest
        $sha = [System.Security.Cryptography.IncrementalHash]::CreateHash('SHA256')
        foreach ($e in $Root.GetEnumerator()) {
            $sha.AppendData([Text.Encoding]::UTF8.GetBytes("$($e.Key)"))
            if ($e.Value.PSObject.Properties['DType']) { $sha.AppendData($e.Value.ToByteArray()) }
        }
        [Convert]::ToHexString($sha.GetHashAndReset())
    }
}

Describe 'loading never changes the file' {
    It 'leaves <Name> byte-identical, eager and -Mmap (a big-endian file is read and byte-swapped in memory)' -ForEach @(
        @{ Name = 'torch-1.13/sd_conv_linear.pt' }
        @{ Name = 'crafted/big_endian.pt' }
    ) {
        # big_endian.pt: its bytes must be swapped, so -Mmap reads them into memory (IsMapped is $false) and swaps them there
        $path = Join-Path $fixtures $Name
        $before = Get-FileSha $path
        $null = Import-TorchCheckpoint -LiteralPath $path
        $sd = Import-TorchCheckpoint -LiteralPath $path -Mmap
        $storage = @(Get-TorchStorage -InputObject $sd)[0]
        $storage.IsMapped | Should -Be ($Name -ne 'crafted/big_endian.pt')
        Get-FileSha $path | Should -Be $before
    }

    It 'refuses -Mmap on a legacy file with UnsupportedFormat' {
        { Import-TorchCheckpoint (Join-Path $fixtures 'torch-1.13/legacy_state_dict_linear.pt') -Mmap -ErrorAction Stop } |
            Should -Throw -ErrorId 'UnsupportedFormat*'
    }

    It 'refuses -Mmap on a deflated record with UnsupportedCompression' {
        { Import-TorchCheckpoint (Join-Path $fixtures 'crafted/rezipped_deflate.pt') -Mmap -ErrorAction Stop } |
            Should -Throw -ErrorId 'UnsupportedCompression*'
    }

    It '-Mmap gives the same values as an eager load' {
        $path = Join-Path $fixtures 'torch-1.13/large_1m_f32.pt'
        $a = Import-TorchCheckpoint $path
        $b = Import-TorchCheckpoint $path -Mmap
        @(Get-TorchStorage -InputObject $b).IsMapped | Should -Not -Contain $false
        Get-TreeDigest $b | Should -Be (Get-TreeDigest $a)
    }
}

Describe 'hostile input through the cmdlet' {
    It 'a payload global is refused as UnsafeGlobal and the marker is never written' {
        $marker = '/tmp/pwned_marker'
        Remove-Item $marker -ErrorAction Ignore
        $err = $null
        try { Import-TorchCheckpoint (Join-Path $fixtures 'bad/posix_system_in_zip.pt') -ErrorAction Stop } catch { $err = $_ }
        Get-ErrorId $err | Should -Be 'UnsafeGlobal'
        $err.Exception.Message | Should -Match 'posix\.system'
        Test-Path $marker | Should -BeFalse
    }

    It 'permissive mode turns the payload into an inert object and still writes nothing' {
        $marker = '/tmp/pwned_marker'
        Remove-Item $marker -ErrorAction Ignore
        $r = Import-TorchCheckpoint (Join-Path $fixtures 'bad/posix_system_in_zip.pt') -WeightsOnly:$false -ErrorAction SilentlyContinue
        Test-Path $marker | Should -BeFalse
    }

    It 'a nesting limit names the parameter that raises it' {
        $err = $null
        try { Import-TorchCheckpoint (Join-Path $fixtures 'torch-1.13/nested_containers.pt') -MaxNestingDepth 1 -ErrorAction Stop } catch { $err = $_ }
        Get-ErrorId $err | Should -Be 'LimitExceeded'
        $err.Exception.Message | Should -Match '-MaxNestingDepth'
        { Import-TorchCheckpoint (Join-Path $fixtures 'torch-1.13/nested_containers.pt') -ErrorAction Stop } | Should -Not -Throw
    }

    It 'a per-file failure does not stop a pipeline of files' {
        $files = @((Join-Path $fixtures 'bad/empty_file.pt'), (Join-Path $fixtures 'torch-1.13/single_tensor_f32.pt'))
        $out = @($files | Import-TorchCheckpoint -ErrorVariable errs -ErrorAction SilentlyContinue)
        $out.Count | Should -Be 1
        Get-ErrorId $errs[0] | Should -Be 'NotACheckpoint'
    }
}

Describe 'concurrent loads' {
    It 'give identical results in parallel runspaces while safe globals are added and cleared' {
        $path = Join-Path $fixtures 'torch-1.13/training_checkpoint.pt'
        $expected = Get-TreeDigest (Import-TorchCheckpoint $path -WeightsOnly:$false)
        $results = 1..16 | ForEach-Object -ThrottleLimit 4 -Parallel {
            Import-Module $using:module
            if ($_ % 2) { Add-TorchSafeGlobal "test.Class$_" } else { Clear-TorchSafeGlobal -Confirm:$false }
            $sd = Import-TorchCheckpoint $using:path -WeightsOnly:$false
            $sha = [System.Security.Cryptography.IncrementalHash]::CreateHash('SHA256')
            foreach ($e in $sd.GetEnumerator()) {
                $sha.AppendData([Text.Encoding]::UTF8.GetBytes("$($e.Key)"))
                if ($e.Value.PSObject.Properties['DType']) { $sha.AppendData($e.Value.ToByteArray()) }
            }
            [Convert]::ToHexString($sha.GetHashAndReset())
        }
        Clear-TorchSafeGlobal -Confirm:$false
        @($results).Count | Should -Be 16
        @($results | Sort-Object -Unique) | Should -Be @($expected)
    }
}
