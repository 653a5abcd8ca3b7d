#requires -Version 7.4
# Get-TorchStorage -Path reads only the pickle; what it lists must equal the storages of the loaded object,
# for every fixture that loads (torch 1.13 files and the crafted 2.x-format ones).

BeforeDiscovery {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    $fixtures = (Resolve-Path "$repo/tests/fixtures").Path
    $cases = foreach ($set in 'torch-1.13', 'crafted') {
        $manifest = Get-Content -Raw (Join-Path $fixtures "$set/manifest.json") | ConvertFrom-Json -AsHashtable -Depth 200
        foreach ($f in $manifest.files) {
            $call = $f.load_calls | Where-Object { $_.args.weights_only -eq $false -and $_.expect.ok } | Select-Object -First 1
            if ($call) { @{ Name = "$set/$($f.file)"; Path = Join-Path $fixtures "$set/$($f.file)"; Map = $call.args.map_location } }
        }
    }
}

BeforeAll {
    $repo = (Resolve-Path "$PSScriptRoot/../..").Path
    Import-Module "$repo/module/TorchLoad.psd1" -Force
    function Get-Listing($Storages) {
        @($Storages | Sort-Object Key | ForEach-Object { '{0}|{1}|{2}|{3}|{4}' -f $_.Key, $_.DType, $_.ElementCount, $_.Location, ((@($_.TensorPaths) | Sort-Object) -join ',') })
    }
}

Describe 'Get-TorchStorage -Path equals the storages of the loaded object' {
    It '<Name>' -ForEach $cases {
        $p = @{ LiteralPath = $Path; WeightsOnly = $false }
        if ($Map) { $p.MapLocation = $Map }
        $loaded = Import-TorchCheckpoint @p
        $fromObject = Get-Listing (Get-TorchStorage -InputObject $loaded)
        $fromFile = Get-Listing (Get-TorchStorage -LiteralPath $Path -WeightsOnly $false)
        # storages viewed by tensors: exactly the same, paths included
        @($fromObject | Where-Object { $_ -notmatch '\|$' }) | Should -Be @($fromFile | Where-Object { $_ -notmatch '\|$' })
        # the file may also list storages no tensor views (roots of legacy views); every object storage is in it
        foreach ($entry in $fromObject) { $fromFile | Should -Contain $entry }
    }
}
