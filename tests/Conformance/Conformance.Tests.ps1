#requires -Version 7.4
# Conformance: every fixture set under tests/fixtures (each folder with a manifest.json, so a new set is picked
# up without a change here) is loaded with the built module and compared with its manifest. One test per load
# call (the whole object tree: types, values, tensor geometry, storage keys and bytes, SHA-256 of each tensor's
# ToByteArray(), shared objects; or the error id), per DCP listing (Get-TorchTensor rows from .metadata) and per
# hostile file (refused with an allowed id, in time, no payload marker), plus one per set that its files are intact.
# build.ps1 -Task Test runs this file in its own pwsh and passes -PendingSets: sets whose format the engine does
# not read yet, skipped with the reason given. The comparisons live in FixtureManifest.psm1.
param(
    [string]$FixturesDir = (Join-Path $PSScriptRoot '../fixtures'),
    [string]$ModulePath = (Join-Path $PSScriptRoot '../../module/TorchLoad.psd1'),
    [string[]]$PendingSets = @(),
    [string]$PendingReason = 'the engine does not read this format yet'
)

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'FixtureManifest.psm1') -Force
    $sets = foreach ($set in Find-FixtureSet $FixturesDir) {
        $manifest = Read-FixtureManifest $set.Manifest
        $cases = @(Get-ConformanceCase -Dir $set.Dir -Manifest $manifest)
        @{
            Name = $set.Name; Dir = $set.Dir; Schema = $manifest.schema; Manifest = $manifest; Pending = $set.Name -in $PendingSets
            CaseCount = $cases.Count
            LoadCases = @($cases | Where-Object Kind -EQ 'Load')
            ListingCases = @($cases | Where-Object Kind -EQ 'Listing')
            HostileCases = @($cases | Where-Object Kind -EQ 'Hostile')
            UnknownCases = @($cases | Where-Object Kind -EQ 'Unknown')
        }
    }
    if (-not $sets) { throw "No fixture set (a folder with a manifest.json) under '$FixturesDir'." }
}

BeforeAll {
    Import-Module $ModulePath -Force
    Import-Module (Join-Path $PSScriptRoot 'FixtureManifest.psm1') -Force
    $marker = '/tmp/pwned_marker'   # what the payloads in the hostile sets write when they run

    function Clear-PayloadMarker {
        Remove-Item -LiteralPath $marker -Force -ErrorAction Ignore
        Get-ChildItem -LiteralPath $PWD -Filter 'pwned_marker*' -Force | Remove-Item -Force -Recurse
    }
    function Get-PayloadMarker {
        if (Test-Path -LiteralPath $marker) { $marker }
        (Get-ChildItem -LiteralPath $PWD -Filter 'pwned_marker*' -Force).FullName
    }
    function Get-LoadParameter([string]$Path, $LoadArgs) {
        $p = @{ LiteralPath = $Path; ErrorAction = 'Stop' }
        if ($LoadArgs -and $LoadArgs.ContainsKey('weights_only')) { $p.WeightsOnly = [bool]$LoadArgs.weights_only }
        if ($LoadArgs -and $LoadArgs.ContainsKey('map_location')) { $p.MapLocation = $LoadArgs.map_location }
        $p
    }
    function Get-DirectoryNames {
        # what exists in the working folder and the two above it (where '../../x' record names would land)
        foreach ($dir in $PWD.Path, (Split-Path $PWD.Path), (Split-Path (Split-Path $PWD.Path))) {
            if ($dir) { Get-ChildItem -LiteralPath $dir -Force -Name | ForEach-Object { Join-Path $dir $_ } }
        }
    }
    function Assert-ErrorId($ErrorRecord, [string[]]$Kinds, [string[]]$GlobalsAnyOf, [string]$Opcode) {
        # the error id is one the manifest allows; an UnsafeGlobal names the global, an UnsupportedOpcode the opcode
        $id = Get-TorchErrorId $ErrorRecord
        $id | Should -BeIn (Resolve-ExpectedErrorId $Kinds) -Because "the load failed with: $($ErrorRecord.Exception.Message)"
        $message = $ErrorRecord.Exception.Message
        if ($id -eq 'UnsafeGlobal' -and $GlobalsAnyOf) {
            @($GlobalsAnyOf | Where-Object { $message.Contains($_) }) | Should -Not -BeNullOrEmpty -Because "the message should name one of $($GlobalsAnyOf -join ', '): $message"
        }
        if ($id -eq 'UnsupportedOpcode' -and $Opcode) { $message | Should -Match "\b$Opcode\b" }
    }
    $hasAccelerator = @(Get-TorchDevice | Where-Object { "$($_.Name)" -match '^(cuda|mps|xpu)' }).Count -gt 0
}

Describe 'fixture set <Name> (<Schema>)' -ForEach $sets {
    It 'names files that are present with their recorded size and SHA-256' {
        $CaseCount | Should -BeGreaterThan 0 -Because 'a set without a single check would pass vacuously'
        Get-FixtureFileDifference -Dir $Dir -Manifest $Manifest | Should -BeNullOrEmpty
    }

    It '<Label>' -ForEach $LoadCases {
        if ($Pending) { Set-ItResult -Skipped -Because "set '$Name' is pending: $PendingReason" }
        Clear-PayloadMarker
        $result = $null; $err = $null
        $load = Get-LoadParameter $Path $Call.args
        try { $result = Import-TorchCheckpoint @load } catch { $err = $_ }
        Get-PayloadMarker | Should -BeNullOrEmpty -Because 'a payload ran'
        $expect = $Call.expect
        if ($expect.ok -eq $true) {
            $err | Should -BeNullOrEmpty -Because "the manifest expects a successful load ($(if ($err) { "$(Get-TorchErrorId $err): $($err.Exception.Message)" }))"
            $storages = if ($Entry.ContainsKey('storages')) { $Entry.storages }
            (Compare-CheckpointTree -Tree $Entry.root -Actual $result -Storages $storages) -join "`n" | Should -BeNullOrEmpty
        } elseif ($null -eq $err) {
            # a device the file names that this machine lacks: loading is right only where the device exists
            ($expect.error_kind -eq 'device_unavailable' -and $hasAccelerator) | Should -BeTrue -Because "the manifest expects error $($expect.error_kind), but it loaded"
        } else {
            $kinds = if ($expect.ContainsKey('error_kind_any_of')) { $expect.error_kind_any_of } else { $expect.error_kind }
            $globals = if ($expect.ContainsKey('globals_any_of')) { $expect.globals_any_of }
            Assert-ErrorId $err $kinds $globals $null
        }
    }

    It '<Label>' -ForEach $ListingCases {
        if ($Pending) { Set-ItResult -Skipped -Because "set '$Name' is pending: $PendingReason" }
        $rows = $null; $err = $null
        try { $rows = @(Get-TorchTensor -LiteralPath $Path -ErrorAction Stop) } catch { $err = $_ }
        $expect = $Call.expect
        if ($expect.ok -eq $true) {
            $err | Should -BeNullOrEmpty -Because "the manifest expects a listing ($(if ($err) { "$(Get-TorchErrorId $err): $($err.Exception.Message)" }))"
            (Compare-TensorListing -Entry $Entry -Rows $rows) -join "`n" | Should -BeNullOrEmpty
        } else {
            $err | Should -Not -BeNullOrEmpty -Because "the manifest expects error $($expect.error_kind), but the folder was listed"
            $kinds = if ($expect.ContainsKey('error_kind_any_of')) { $expect.error_kind_any_of } else { $expect.error_kind }
            Assert-ErrorId $err $kinds $null $null
        }
    }

    It '<Label>' -ForEach $HostileCases {
        if ($Pending) { Set-ItResult -Skipped -Because "set '$Name' is pending: $PendingReason" }
        $must = $Entry.must
        $loadArgs = if ($Entry.ContainsKey('load_args')) { $Entry.load_args }
        $watchFiles = $must.ContainsKey('must_not_write_files') -and $must.must_not_write_files
        $before = if ($watchFiles) { @(Get-DirectoryNames) }
        $load = Get-LoadParameter $Path $loadArgs
        Clear-PayloadMarker
        $result = $null; $err = $null
        $watch = [System.Diagnostics.Stopwatch]::StartNew()
        try { $result = Import-TorchCheckpoint @load } catch { $err = $_ }
        $watch.Stop()

        Get-PayloadMarker | Should -BeNullOrEmpty -Because 'a payload ran'
        if ($watchFiles) { @(Get-DirectoryNames | Where-Object { $_ -notin $before }) | Should -BeNullOrEmpty -Because 'loading must not write files' }
        if ($must.ContainsKey('max_seconds')) { $watch.Elapsed.TotalSeconds | Should -BeLessOrEqual $must.max_seconds }
        if ($null -eq $err) {
            $must.reject | Should -Be 'either' -Because 'the file loaded, but it must be refused'
            if ($must.ContainsKey('expected_if_loaded')) { (Compare-CheckpointTree -Tree $must.expected_if_loaded -Actual $result) -join "`n" | Should -BeNullOrEmpty }
        } else {
            $global = if ($must.ContainsKey('first_unsafe_global')) { $must.first_unsafe_global }
            $opcode = if ($must.ContainsKey('opcode')) { $must.opcode }
            Assert-ErrorId $err $must.error_kinds $global $opcode
        }
    }

    It '<Label>' -ForEach $UnknownCases {
        throw "manifest entry '$Label' has neither load_calls nor must: this runner does not know how to check it"
    }
}
