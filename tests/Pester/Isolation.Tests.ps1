#requires -Version 7.4
# Dependency isolation: another module that already loaded an older SharpZipLib (1.2.0) into the
# default load context must not break TorchLoad, whose engine and dependencies load from module/deps
# into the private 'TorchLoad' AssemblyLoadContext. Runs in a fresh child pwsh: this Pester process
# has already loaded TorchLoad.
# SharpZipLib 1.2.0 comes from the NuGet cache (build/tools/tools.csproj, restored by build.ps1 -Task Test,
# which also sets TORCHLOAD_NUGET_PACKAGES).

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    $cache = if ($env:TORCHLOAD_NUGET_PACKAGES) { $env:TORCHLOAD_NUGET_PACKAGES }
        elseif ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES }
        else { ((dotnet nuget locals global-packages --list | Select-Object -First 1) -replace '^global-packages:\s*', '').Trim() }
    $oldZip = Join-Path $cache 'sharpziplib/1.2.0/lib/netstandard2.0/ICSharpCode.SharpZipLib.dll'

    $child = @'
param($OldZip, $ModulePath, $Sample)
$ErrorActionPreference = 'Stop'
Add-Type -Path $OldZip
$preloaded = [ICSharpCode.SharpZipLib.Zip.ZipFile].Assembly.GetName().Version.ToString()
Import-Module $ModulePath
$sd = Import-TorchCheckpoint -LiteralPath $Sample
$alc = { param($a) [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($a).Name }
$loaded = [AppDomain]::CurrentDomain.GetAssemblies()
$core = $loaded | Where-Object { $_.GetName().Name -eq 'TorchLoad.Core' }
[pscustomobject]@{
    Preloaded  = $preloaded
    Count      = $sd.Count
    DType      = "$($sd['0.weight'].DType)"
    Bytes      = $sd['0.weight'].ToByteArray().Length
    CoreAlc    = @($core | ForEach-Object { & $alc $_ })
    Cmdlets    = & $alc ($loaded | Where-Object { $_.GetName().Name -eq 'TorchLoad' } | Select-Object -First 1)
    Zips       = @($loaded | Where-Object { $_.GetName().Name -eq 'ICSharpCode.SharpZipLib' } |
                    ForEach-Object { '{0}@{1}' -f $_.GetName().Version, (& $alc $_) })
    Ilgpu      = @($loaded | Where-Object { $_.GetName().Name -eq 'ILGPU' } | ForEach-Object { & $alc $_ })
    CorePath   = @($core | ForEach-Object { $_.Location })
} | ConvertTo-Json -Compress
'@
    $script = Join-Path $TestDrive 'isolation-child.ps1'
    Set-Content -LiteralPath $script -Value $child
}

Describe 'Assembly isolation' {
    BeforeAll {
        $out = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -File $script -OldZip $oldZip `
            -ModulePath "$repo/module/TorchLoad.psd1" -Sample "$repo/samples/sd_conv_linear.pt" 2>&1
        $exit = $LASTEXITCODE
        $json = $out | Where-Object { $_ -is [string] -and $_.StartsWith('{') } | Select-Object -Last 1
        $r = if ($json) { $json | ConvertFrom-Json } else { $null }
    }

    It 'has SharpZipLib 1.2.0 to preload' {
        $oldZip | Should -Exist -Because 'build/tools/tools.csproj downloads it (dotnet restore build/tools/tools.csproj)'
    }

    It 'loads a checkpoint after another SharpZipLib was loaded first' {
        $exit | Should -Be 0 -Because ($out -join "`n")
        $r.Preloaded | Should -BeLike '1.2.0*'
        $r.Count | Should -Be 4
        $r.DType | Should -Be 'float32'
        $r.Bytes | Should -Be 432
    }

    It 'loads TorchLoad.Core into the private ''TorchLoad'' load context' {
        $r.CoreAlc | Should -Be @('TorchLoad')
    }

    It 'keeps the cmdlet assembly in the default context' {
        $r.Cmdlets | Should -Be 'Default'
    }

    It 'leaves the preloaded SharpZipLib in the default context, and any other copy in ''TorchLoad''' {
        @($r.Zips | Where-Object { $_ -like '1.2.0*@Default' }).Count | Should -Be 1
        @($r.Zips | Where-Object { $_ -notlike '1.2.0*' -and $_ -notlike '*@TorchLoad' }) | Should -BeNullOrEmpty
    }

    It 'never loads ILGPU into the default context' {
        @($r.Ilgpu | Where-Object { $_ -ne 'TorchLoad' }) | Should -BeNullOrEmpty
    }
}

# A runtime only runs ReadyToRun code whose format major version equals its own (CoreLib's); any other
# image is JIT-compiled method by method. The build stages the engine twice (deps/ for .NET 8,
# deps/net10.0/ for .NET 10) and ModuleInit must pick the copy this runtime can use.
Describe 'Precompiled engine' {
    BeforeAll {
        function Get-R2RMajor([string]$Path) {
            $stream = [IO.File]::OpenRead($Path)
            try {
                $pe = [Reflection.PortableExecutable.PEReader]::new($stream)
                $dir = $pe.PEHeaders.CorHeader.ManagedNativeHeaderDirectory
                if ($dir.Size -eq 0) { return $null }
                $offset = 0
                if (-not $pe.PEHeaders.TryGetDirectoryOffset($dir, [ref]$offset)) { return $null }
                $reader = [IO.BinaryReader]::new($stream)
                $stream.Position = $offset
                if ($reader.ReadUInt32() -ne 0x00525452) { return $null }   # 'RTR'
                return [int]$reader.ReadUInt16()
            } finally { $stream.Dispose() }
        }
        $runtimeMajor = Get-R2RMajor ([object].Assembly.Location)
        $out = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -File $script -OldZip $oldZip `
            -ModulePath "$repo/module/TorchLoad.psd1" -Sample "$repo/samples/sd_conv_linear.pt" 2>&1
        $json = $out | Where-Object { $_ -is [string] -and $_.StartsWith('{') } | Select-Object -Last 1
        $r = if ($json) { $json | ConvertFrom-Json } else { $null }
    }

    It 'stages an engine compiled for this runtime''s ReadyToRun format' {
        $runtimeMajor | Should -Not -BeNullOrEmpty -Because 'CoreLib is always precompiled'
        $staged = Get-ChildItem -LiteralPath "$repo/module/deps" -Recurse -Filter 'TorchLoad.Core.dll' | ForEach-Object { Get-R2RMajor $_.FullName }
        $staged | Should -Contain $runtimeMajor -Because "module/deps holds the engine precompiled for ReadyToRun formats $($staged -join ', ')"
    }

    It 'loads the engine whose precompiled code this runtime uses' {
        $r.CorePath | Should -HaveCount 1
        Get-R2RMajor $r.CorePath[0] | Should -Be $runtimeMajor -Because "$($r.CorePath[0]) was loaded on .NET $([Environment]::Version)"
    }
}
