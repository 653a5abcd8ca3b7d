#requires -Version 7.4
# The staged module (./module, made by build.ps1 -Task Build): manifest, exported commands, layout, help.
# Run by build.ps1 -Task Test in a fresh pwsh; a binary module cannot be reloaded in one session.

BeforeDiscovery {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    $expectedCmdlets = 'Import-TorchCheckpoint', 'Get-TorchStorage', 'Move-TorchStorage', 'Add-TorchSafeGlobal',
        'Get-TorchSafeGlobal', 'Clear-TorchSafeGlobal', 'Get-TorchDevice', 'Register-TorchLocationHandler',
        'Get-TorchLocationHandler', 'Reset-TorchLocationHandler', 'Get-TorchTensor', 'Test-TorchCheckpoint',
        'Compare-TorchCheckpoint', 'Export-TorchSafetensors', 'Measure-TorchTensor'
    $common = @([System.Management.Automation.Cmdlet]::CommonParameters) + 'UseTransaction'
    $commands = @(Get-Command -Module TorchLoad -CommandType Cmdlet)
    $cmdletCases = @($commands | ForEach-Object { @{ Name = $_.Name } })
    $parameterCases = @(foreach ($c in $commands) {
        foreach ($p in $c.Parameters.Values | Where-Object Name -notin $common) { @{ Command = $c.Name; Parameter = $p.Name } }
    })
    $docCases = @(Get-ChildItem "$repo/docs" -Filter '*-*.md' | Where-Object BaseName -notlike 'about_*' |
        ForEach-Object { @{ Doc = $_.Name; Command = $_.BaseName; Path = $_.FullName } })
    $aboutCases = @(Get-ChildItem "$repo/docs" -Filter 'about_*.md' | ForEach-Object { @{ Topic = $_.BaseName } })
}

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    $moduleDir = Join-Path $repo 'module'
    $manifestPath = Join-Path $moduleDir 'TorchLoad.psd1'
    Import-Module $manifestPath -Force
    $expectedCmdlets = 'Import-TorchCheckpoint', 'Get-TorchStorage', 'Move-TorchStorage', 'Add-TorchSafeGlobal',
        'Get-TorchSafeGlobal', 'Clear-TorchSafeGlobal', 'Get-TorchDevice', 'Register-TorchLocationHandler',
        'Get-TorchLocationHandler', 'Reset-TorchLocationHandler', 'Get-TorchTensor', 'Test-TorchCheckpoint',
        'Compare-TorchCheckpoint', 'Export-TorchSafetensors', 'Measure-TorchTensor'
}

Describe 'TorchLoad manifest' {
    It 'passes Test-ModuleManifest' {
        { Test-ModuleManifest -Path $manifestPath -ErrorAction Stop } | Should -Not -Throw
    }

    It 'declares version, edition, PowerShell version and GUID' {
        $m = Test-ModuleManifest -Path $manifestPath
        $m.Version | Should -Be ([version]'0.1.0')
        $m.Guid | Should -Be ([guid]'688e78c0-247c-4148-afdb-b4c340e5f9cf')
        $m.PowerShellVersion | Should -Be ([version]'7.4')
        $m.CompatiblePSEditions | Should -Be @('Core')
        $m.RootModule | Should -Be 'TorchLoad.dll'
        $m.PrivateData.PSData.Tags | Should -Contain 'PyTorch'
    }

    It 'exports exactly the TorchLoad cmdlets and nothing else' {
        $m = Test-ModuleManifest -Path $manifestPath
        @($m.ExportedCmdlets.Keys | Sort-Object) | Should -Be @($expectedCmdlets | Sort-Object)
        $m.ExportedFunctions.Count | Should -Be 0
        $m.ExportedAliases.Count | Should -Be 0
        $m.ExportedVariables.Count | Should -Be 0
    }

    It 'has the same ModuleVersion as Directory.Build.props' {
        $props = [xml](Get-Content -LiteralPath "$repo/Directory.Build.props" -Raw)
        $version = @($props.Project.PropertyGroup.ModuleVersion | Where-Object { $_ })[0]
        (Import-PowerShellDataFile "$repo/TorchLoad.psd1").ModuleVersion | Should -Be $version
    }

    It 'loads the staged format file' {
        Test-Path -LiteralPath (Join-Path $moduleDir 'TorchLoad.format.ps1xml') | Should -BeTrue
        (Test-ModuleManifest -Path $manifestPath).ExportedFormatFiles |
            ForEach-Object { Split-Path $_ -Leaf } | Should -Contain 'TorchLoad.format.ps1xml'
    }
}

Describe 'Staged module layout' {
    It 'keeps only TorchLoad.dll at the top and everything else in deps/' {
        @(Get-ChildItem -LiteralPath $moduleDir -Filter '*.dll' -File).Name | Should -Be @('TorchLoad.dll')
        foreach ($dll in 'TorchLoad.Core.dll', 'ILGPU.dll', 'ICSharpCode.SharpZipLib.dll') {
            Join-Path $moduleDir "deps/$dll" | Should -Exist
        }
    }

    It 'does not ship System.Management.Automation.dll' {
        Get-ChildItem -LiteralPath $moduleDir -Recurse -Filter 'System.Management.Automation.dll' | Should -BeNullOrEmpty
    }

    It 'has compiled help and about topics in en-US' {
        Join-Path $moduleDir 'en-US/TorchLoad.dll-Help.xml' | Should -Exist
        Join-Path $moduleDir 'en-US/about_TorchLoad.help.txt' | Should -Exist
        Join-Path $moduleDir 'en-US/about_TorchLoad_Security.help.txt' | Should -Exist
    }
}

Describe 'Exported commands' {
    It 'Get-Command -Module TorchLoad lists exactly the TorchLoad cmdlets' {
        @(Get-Command -Module TorchLoad | ForEach-Object Name | Sort-Object) | Should -Be @($expectedCmdlets | Sort-Object)
        @(Get-Command -Module TorchLoad | Where-Object CommandType -ne 'Cmdlet') | Should -BeNullOrEmpty
    }

    It '<Command> -WhatIf/-Confirm support matches its verb' -ForEach @(
        @{ Command = 'Move-TorchStorage'; Expected = $true }
        @{ Command = 'Clear-TorchSafeGlobal'; Expected = $true }
        @{ Command = 'Import-TorchCheckpoint'; Expected = $false }
    ) {
        (Get-Command $Command).Parameters.ContainsKey('WhatIf') | Should -Be $Expected
    }
}

Describe 'Help for <Name>' -ForEach $cmdletCases {
    BeforeAll {
        $help = Get-Help $Name -Full
    }

    It 'comes from the module''s MAML file' {
        (Get-Command $Name).HelpFile | Should -BeLike '*TorchLoad.dll-Help.xml'
        $help.ModuleName | Should -Be 'TorchLoad'
    }

    It 'has a synopsis of its own (not the generated syntax)' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis.Trim() | Should -Not -BeLike "$Name *"
        $help.Synopsis.Trim() | Should -Not -Be $Name
    }

    It 'has a description' {
        ($help.description.Text -join ' ').Trim() | Should -Not -BeNullOrEmpty
    }

    It 'has at least three examples, each with code' {
        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 3
        foreach ($e in $examples) { $e.code.Trim() | Should -Not -BeNullOrEmpty }
    }

    It 'shows its examples in Get-Help -Full' {
        ($help | Out-String -Width 200) | Should -Match '-+ Example 1'
    }
}

Describe 'Parameter help' {
    It '<Command> -<Parameter> has a description' -ForEach $parameterCases {
        $p = Get-Help $Command -Parameter $Parameter -ErrorAction SilentlyContinue
        $p | Should -Not -BeNullOrEmpty -Because "docs/$Command.md needs a '### -$Parameter' section"
        (@($p)[0].description.Text -join ' ').Trim() | Should -Not -BeNullOrEmpty -Because "docs/$Command.md needs text under '### -$Parameter'"
    }
}

Describe 'docs/<Doc> matches the code' -ForEach $docCases {
    It 'names an exported cmdlet' {
        $Command | Should -BeIn $expectedCmdlets
    }

    It 'documents only parameters the cmdlet has' {
        $documented = [regex]::Matches((Get-Content -LiteralPath $Path -Raw), '(?m)^### -(\w+)\s*$') | ForEach-Object { $_.Groups[1].Value }
        $actual = @((Get-Command $Command -ErrorAction SilentlyContinue).Parameters.Keys)
        @($documented | Where-Object { $_ -notin $actual }) | Should -BeNullOrEmpty
    }
}

Describe 'About topic <Topic>' -ForEach $aboutCases {
    It 'is found by Get-Help and has a short description' {
        $text = Get-Help $Topic | Out-String
        $text | Should -Match 'SHORT DESCRIPTION'
        $text | Should -Match 'TorchLoad'
    }
}
