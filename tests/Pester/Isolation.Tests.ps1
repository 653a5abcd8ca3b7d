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
