# Fixture sets and what their manifests promise: finding the sets, one case per check, and comparing what the
# module returned with a manifest's object tree. No TorchLoad dependency: Conformance.Tests.ps1 does the loading.
# Manifest schemas: tests/fixtures/README.md (torch-load-fixtures/1, torch-load-bad-inputs/1, torch-dcp-fixtures/1).

Set-StrictMode -Version Latest

# A manifest's error kind -> the ErrorId TorchLoad reports (the part of FullyQualifiedErrorId before the comma).
$script:ErrorIdOfKind = @{
    unsafe_global = 'UnsafeGlobal'; unsupported_opcode = 'UnsupportedOpcode'; malformed_pickle = 'MalformedPickle'
    truncated = 'TruncatedCheckpoint'; invalid_archive = 'InvalidArchive'; not_a_checkpoint = 'NotACheckpoint'
    missing_record = 'MissingRecord'; duplicate_record = 'DuplicateRecord'; invalid_record_name = 'InvalidRecordName'
    unsupported_version = 'UnsupportedVersion'; unsupported_compression = 'UnsupportedCompression'
    storage_size_mismatch = 'StorageSizeMismatch'; invalid_tensor_geometry = 'InvalidTensorGeometry'
    invalid_persistent_id = 'InvalidPersistentId'; resource_limit = 'LimitExceeded'; nesting_too_deep = 'LimitExceeded'
    device_unavailable = 'DeviceUnavailable'; unsupported_format = 'UnsupportedFormat'
}

# ---- sets and cases ------------------------------------------------------------------------------------------

function Find-FixtureSet {
    # Every folder directly under $Root that holds a manifest.json, by name.
    param([Parameter(Mandatory)][string]$Root)
    foreach ($dir in Get-ChildItem -LiteralPath $Root -Directory | Sort-Object Name) {
        $manifest = Join-Path $dir.FullName 'manifest.json'
        if (Test-Path -LiteralPath $manifest -PathType Leaf) {
            [pscustomobject]@{ Name = $dir.Name; Dir = $dir.FullName; Manifest = $manifest }
        }
    }
}

function Read-FixtureManifest {
    param([Parameter(Mandatory)][string]$Path)
    Get-Content -LiteralPath $Path -Raw | ConvertFrom-Json -AsHashtable -Depth 1000
}

function Get-ManifestEntry {
    # The manifest's entries with the path each is loaded from: a file, or a DCP checkpoint's folder.
    param([Parameter(Mandatory)][hashtable]$Manifest)
    if ($Manifest.ContainsKey('checkpoints')) {
        foreach ($c in $Manifest.checkpoints) { [pscustomobject]@{ Name = $c.dir; Entry = $c } }
    } elseif ($Manifest.ContainsKey('files')) {
        foreach ($f in $Manifest.files) { [pscustomobject]@{ Name = $f.file; Entry = $f } }
    }
}

function Get-ConformanceCase {
    # One case per load call (Kind Load or Listing) and one per hostile file (Kind Hostile). An entry with
    # neither becomes a case of Kind Unknown, which fails: a schema this runner does not know never passes silently.
    param([Parameter(Mandatory)][string]$Dir, [Parameter(Mandatory)][hashtable]$Manifest)
    foreach ($item in Get-ManifestEntry $Manifest) {
        $entry = $item.Entry
        $path = Join-Path $Dir $item.Name
        if ($entry.ContainsKey('load_calls')) {
            foreach ($call in $entry.load_calls) {
                $argText = ($call.args.GetEnumerator() | Sort-Object Key | ForEach-Object { "$($_.Key)=$($_.Value)" }) -join ', '
                @{
                    Kind = if ($call.args.ContainsKey('metadata_only') -and $call.args.metadata_only) { 'Listing' } else { 'Load' }
                    Label = "$($item.Name) [$argText]"; Path = $path; Entry = $entry; Call = $call
                }
            }
        } elseif ($entry.ContainsKey('must')) {
            @{ Kind = 'Hostile'; Label = "$($item.Name) (hostile: $($entry.threat))"; Path = $path; Entry = $entry; Call = $null }
        } else {
            @{ Kind = 'Unknown'; Label = "$($item.Name) (no load_calls, no must)"; Path = $path; Entry = $entry; Call = $null }
        }
    }
}

function Get-FixtureFileDifference {
    # The files a manifest names exist with its size and SHA-256 (a checkout that rewrote line endings, a
    # truncated copy). DCP checkpoints list their files and .metadata; plain sets give size/sha256 per file.
    param([Parameter(Mandatory)][string]$Dir, [Parameter(Mandatory)][hashtable]$Manifest)
    $expected = foreach ($item in Get-ManifestEntry $Manifest) {
        $e = $item.Entry
        if ($e.ContainsKey('files')) {
            foreach ($f in $e.files) { @{ Path = Join-Path $item.Name $f.name; Size = $f.size; Sha = $f.sha256 } }
            if ($e.ContainsKey('metadata')) { @{ Path = Join-Path $item.Name '.metadata'; Size = $e.metadata.size; Sha = $e.metadata.sha256 } }
        } else {
            @{ Path = $item.Name; Size = if ($e.ContainsKey('size')) { $e.size }; Sha = if ($e.ContainsKey('sha256')) { $e.sha256 } }
        }
    }
    foreach ($f in $expected) {
        $file = [System.IO.FileInfo]::new((Join-Path $Dir $f.Path))     # .metadata is hidden from Get-Item
        if (-not $file.Exists) { "$($f.Path): missing"; continue }
        if ($null -ne $f.Size -and $file.Length -ne $f.Size) { "$($f.Path): $($file.Length) bytes, the manifest says $($f.Size)" }
        if ($f.Sha -and (Get-Sha256 ([System.IO.File]::ReadAllBytes($file.FullName))) -ne $f.Sha) { "$($f.Path): SHA-256 differs from the manifest" }
    }
}

# ---- errors --------------------------------------------------------------------------------------------------

function Get-TorchErrorId {
    # "UnsafeGlobal,TorchLoad.Commands.ImportTorchCheckpointCommand" -> "UnsafeGlobal"
    param([Parameter(Mandatory)][System.Management.Automation.ErrorRecord]$ErrorRecord)
    ($ErrorRecord.FullyQualifiedErrorId -split ',')[0]
}

function Resolve-ExpectedErrorId {
    # The ErrorIds a list of error kinds allows; 'other' allows any id TorchLoad defines for a bad checkpoint.
    param([string[]]$Kind)
    if ($Kind -contains 'other') { return @($script:ErrorIdOfKind.Values | Sort-Object -Unique) }
    @(foreach ($k in $Kind) {
            if (-not $script:ErrorIdOfKind.ContainsKey($k)) { throw "The manifest names an error kind this runner does not know: '$k'." }
            $script:ErrorIdOfKind[$k]
        }) | Sort-Object -Unique
}

# ---- the object tree ------------------------------------------------------------------------------------------

function Compare-CheckpointTree {
    # Differences between a manifest tree (and, given, the entry's storages) and what Import-TorchCheckpoint
    # returned, as "where: what" lines; none when they agree. Checks values, types, tensor geometry and bytes,
    # shared objects (memo refs, a tensor seen twice, one storage object per key) and every storage's bytes.
    param([Parameter(Mandatory)][hashtable]$Tree, [AllowNull()]$Actual, [hashtable]$Storages)
    $ctx = @{
        ActualRoot  = $Actual
        Differences = [System.Collections.Generic.List[string]]::new()
        Storages    = [System.Collections.Generic.Dictionary[string, object]]::new()
    }
    Compare-Node $ctx $Tree $Actual 'root'
    if ($Storages) { Compare-Storages $ctx $Storages }
    , $ctx.Differences
}

function Add-Difference($ctx, [string]$At, [string]$What) { $ctx.Differences.Add("${At}: $What") }

function Get-TypeName($Value) { if ($null -eq $Value) { 'null' } else { $Value.GetType().FullName } }

function ConvertTo-Double($Json) {
    # a manifest float: a JSON number or "nan" / "inf" / "-inf"
    switch ("$Json") {
        'nan' { return [double]::NaN }
        'inf' { return [double]::PositiveInfinity }
        '-inf' { return [double]::NegativeInfinity }
    }
    [double]$Json
}

function Test-SameDouble([double]$Want, [double]$Got) {
    # bit-exact, -0.0 included; any NaN equals any NaN
    if ([double]::IsNaN($Want)) { return [double]::IsNaN($Got) }
    [BitConverter]::DoubleToInt64Bits($Want) -eq [BitConverter]::DoubleToInt64Bits($Got)
}

function Test-Integer($Value) { $Value -is [long] -or $Value -is [int] -or $Value -is [System.Numerics.BigInteger] }

function Get-DictionaryEntries($Dictionary) {
    # key/value pairs in the dictionary's own order (never looked up by key: a key may be a tuple or null)
    $list = [System.Collections.Generic.List[System.Collections.DictionaryEntry]]::new()
    $e = ([System.Collections.IDictionary]$Dictionary).GetEnumerator()
    while ($e.MoveNext()) { $list.Add([System.Collections.DictionaryEntry]::new($e.Key, $e.Value)) }
    , $list
}

function Resolve-TreePath($Root, $Path) {
    # A manifest path in the loaded tree: a str step is a str key, an int step a list index or int key,
    # {item: n[, is_key]} the n-th entry of a dictionary (its value, or its key) or the n-th member of a set.
    # Returns @($found, $value).
    $cur = $Root
    foreach ($step in $Path) {
        if ($step -is [System.Collections.IDictionary]) {
            $n = [int]$step.item
            if ($cur -is [System.Collections.IDictionary]) {
                $entries = Get-DictionaryEntries $cur
                if ($n -ge $entries.Count) { return $false, $null }
                if ($step.ContainsKey('is_key') -and $step.is_key) { $cur = $entries[$n].Key } else { $cur = $entries[$n].Value }
            } elseif ($cur -is [System.Collections.IEnumerable] -and $cur -isnot [string]) {
                $members = @(foreach ($m in $cur) { , $m })
                if ($n -ge $members.Count) { return $false, $null }
                $cur = $members[$n]
            } else { return $false, $null }
        } elseif ($cur -is [System.Collections.IDictionary]) {
            $hit = $null; $found = $false
            $entries = Get-DictionaryEntries $cur
            foreach ($kv in $entries) {
                $match = if ($step -is [string]) { $kv.Key -is [string] -and $kv.Key -ceq $step } else { (Test-Integer $kv.Key) -and "$($kv.Key)" -eq "$step" }
                if ($match) { $hit = $kv.Value; $found = $true; break }
            }
            if (-not $found) { return $false, $null }
            $cur = $hit
        } elseif ($cur -is [System.Collections.IList] -and (Test-Integer $step) -and [long]$step -lt $cur.Count) {
            $cur = $cur[[int]$step]
        } else { return $false, $null }
    }
    return $true, $cur
}

function Compare-SameObject($ctx, $Path, $Actual, [string]$At) {
    $found, $target = Resolve-TreePath $ctx.ActualRoot $Path
    if (-not $found) { Add-Difference $ctx $At "the object it shares, at [$($Path -join '/')], is not in the result"; return }
    if (-not [object]::ReferenceEquals($target, $Actual)) { Add-Difference $ctx $At "expected the same object as [$($Path -join '/')], got a different one" }
}

function Compare-Node($ctx, [hashtable]$Want, $Got, [string]$At) {
    $type = $Want.type
    switch -CaseSensitive ($type) {
        'tensor' { Compare-Tensor $ctx $Want $Got $At; return }
        'storage' { Compare-BareStorage $ctx $Want $Got $At; return }
        'ref' { Compare-SameObject $ctx $Want.same_object_as $Got $At; return }
        'None' { if ($null -ne $Got) { Add-Difference $ctx $At "expected null, got $(Get-TypeName $Got)" }; return }
        'bool' {
            if ($Got -isnot [bool]) { Add-Difference $ctx $At "expected a bool, got $(Get-TypeName $Got)" }
            elseif ($Got -ne [bool]$Want.value) { Add-Difference $ctx $At "expected $($Want.value), got $Got" }
            return
        }
        'int' {
            # [long] when the value fits, else BigInteger (a JSON integer of any size is parsed exactly)
            $number = [System.Numerics.BigInteger]::Parse("$($Want.value)", [cultureinfo]::InvariantCulture)
            $fitsLong = $number -ge [long]::MinValue -and $number -le [long]::MaxValue
            if ($fitsLong -and $Got -isnot [long]) { Add-Difference $ctx $At "expected a long, got $(Get-TypeName $Got)"; return }
            if (-not $fitsLong -and $Got -isnot [System.Numerics.BigInteger]) { Add-Difference $ctx $At "expected a BigInteger, got $(Get-TypeName $Got)"; return }
            if ([System.Numerics.BigInteger]$Got -ne $number) { Add-Difference $ctx $At "expected $number, got $Got" }
            return
        }
        'float' {
            if ($Got -isnot [double]) { Add-Difference $ctx $At "expected a double, got $(Get-TypeName $Got)"; return }
            if (-not (Test-SameDouble (ConvertTo-Double $Want.value) $Got)) { Add-Difference $ctx $At "expected $($Want.value) ($($Want.hex)), got $Got" }
            return
        }
        'complex' {
            if ($Got -isnot [System.Numerics.Complex]) { Add-Difference $ctx $At "expected a Complex, got $(Get-TypeName $Got)"; return }
            if (-not ((Test-SameDouble (ConvertTo-Double $Want.real) $Got.Real) -and (Test-SameDouble (ConvertTo-Double $Want.imag) $Got.Imaginary))) {
                Add-Difference $ctx $At "expected ($($Want.real), $($Want.imag)), got $Got"
            }
            return
        }
        'str' {
            if ($Got -isnot [string]) { Add-Difference $ctx $At "expected a string, got $(Get-TypeName $Got)" }
            elseif ($Got -cne $Want.value) { Add-Difference $ctx $At "expected '$($Want.value)', got '$Got'" }
            return
        }
        { $_ -in 'bytes', 'bytearray' } {
            if ($Got -isnot [byte[]]) { Add-Difference $ctx $At "expected byte[] ($type), got $(Get-TypeName $Got)" }
            elseif ([Convert]::ToHexString($Got) -ne $Want.hex) { Add-Difference $ctx $At "$type differ: $($Got.Length) bytes, expected $($Want.hex.Length / 2)" }
            return
        }
        { $_ -in 'list', 'tuple', 'torch.Size' } {
            $items = @(if ($type -eq 'torch.Size') { foreach ($v in $Want.value) { @{ type = 'int'; value = $v } } } else { $Want.items })
            if ($Got -isnot [System.Collections.IList]) { Add-Difference $ctx $At "expected a list ($type), got $(Get-TypeName $Got)"; return }
            if ($Got.Count -ne $items.Count) { Add-Difference $ctx $At "expected $($items.Count) items ($type), got $($Got.Count)"; return }
            for ($i = 0; $i -lt $items.Count; $i++) { Compare-Node $ctx $items[$i] $Got[$i] "$At[$i]" }
            return
        }
        { $_ -in 'set', 'frozenset' } { Compare-Set $ctx $Want $Got $At; return }
        { $_ -in 'dict', 'OrderedDict', 'Counter' } {
            if ($Got -isnot [System.Collections.IDictionary]) { Add-Difference $ctx $At "expected a dictionary ($type), got $(Get-TypeName $Got)"; return }
            $entries = Get-DictionaryEntries $Got
            $items = @($Want.items)
            if ($entries.Count -ne $items.Count) { Add-Difference $ctx $At "expected $($items.Count) entries ($type), got $($entries.Count)"; return }
            for ($i = 0; $i -lt $items.Count; $i++) {
                Compare-Node $ctx $items[$i].key $entries[$i].Key "$At{key $i}"
                Compare-Node $ctx $items[$i].value $entries[$i].Value "$At[$($entries[$i].Key)]"
            }
            return
        }
        { $_ -in 'torch.dtype', 'torch.device', 'torch.layout', 'torch.qscheme' } {
            if ($null -eq $Got -or $Got -is [string]) { Add-Difference $ctx $At "expected a $type object, got $(Get-TypeName $Got)" }
            elseif ("$Got" -cne $Want.value) { Add-Difference $ctx $At "expected $type '$($Want.value)', got '$Got'" }
            return
        }
        { $_ -in 'object', 'global' } {
            $class = if ($type -eq 'global') { $Want.name } else { $Want.class }
            if ($null -eq $Got -or -not $Got.PSObject.Properties['ClassName']) { Add-Difference $ctx $At "expected an inert object of class '$class', got $(Get-TypeName $Got)"; return }
            if ($Got.ClassName -cne $class) { Add-Difference $ctx $At "class '$($Got.ClassName)', expected '$class'" }
            if ($type -eq 'object' -and $Want.ContainsKey('state') -and $null -ne $Want.state) { Compare-Node $ctx $Want.state $Got.State "$At.State" }
            return
        }
        default { Add-Difference $ctx $At "node type '$type' is unknown to this runner" }
    }
}

function Compare-Set($ctx, [hashtable]$Want, $Got, [string]$At) {
    # unordered: each expected member takes the first unmatched member it equals (tried on a scratch context)
    if ($Got -isnot [System.Collections.IEnumerable] -or $Got -is [string] -or $Got -is [System.Collections.IDictionary]) {
        Add-Difference $ctx $At "expected a $($Want.type), got $(Get-TypeName $Got)"; return
    }
    $left = [System.Collections.Generic.List[object]]::new()
    foreach ($m in $Got) { $left.Add($m) }
    $items = @($Want.items)
    if ($left.Count -ne $items.Count) { Add-Difference $ctx $At "expected $($items.Count) members, got $($left.Count)"; return }
    foreach ($item in $items) {
        $match = -1
        for ($j = 0; $j -lt $left.Count -and $match -lt 0; $j++) {
            $scratch = @{ ActualRoot = $ctx.ActualRoot; Differences = [System.Collections.Generic.List[string]]::new(); Storages = [System.Collections.Generic.Dictionary[string, object]]::new($ctx.Storages) }
            Compare-Node $scratch $item $left[$j] $At
            if ($scratch.Differences.Count -eq 0) { $match = $j }
        }
        if ($match -lt 0) { Add-Difference $ctx $At "no member equals the expected $($item.type) $(if ($item.ContainsKey('value')) { "'$($item.value)'" })"; continue }
        Compare-Node $ctx $item $left[$match] $At     # again on the real context: records storages seen
        $left.RemoveAt($match)
    }
}

function Test-Property($ctx, $Got, [string[]]$Names, [string]$At, [string]$What) {
    foreach ($n in $Names) { if (-not $Got.PSObject.Properties[$n]) { Add-Difference $ctx $At "$What has no property $n"; return $false } }
    $true
}

function Format-Dims($Dims) { '(' + (@($Dims) -join ', ') + ')' }

function Compare-Tensor($ctx, [hashtable]$Want, $Got, [string]$At) {
    if ($null -eq $Got) { Add-Difference $ctx $At 'expected a tensor, got null'; return }
    if (-not (Test-Property $ctx $Got 'DType', 'Shape', 'Stride', 'StorageOffset', 'Layout', 'RequiresGrad', 'IsParameter', 'Storage' $At 'the tensor')) { return }
    if ($Want.ContainsKey('same_object_as') -and $Want.same_object_as) { Compare-SameObject $ctx $Want.same_object_as $Got $At }

    $layout = if ($Want.ContainsKey('layout') -and $Want.layout) { $Want.layout } else { 'strided' }
    if ("$($Got.DType)" -cne $Want.dtype) { Add-Difference $ctx $At "dtype $($Got.DType), expected $($Want.dtype)" }
    if ((Format-Dims $Got.Shape) -ne (Format-Dims $Want.shape)) { Add-Difference $ctx $At "shape $(Format-Dims $Got.Shape), expected $(Format-Dims $Want.shape)" }
    if ("$($Got.Layout)" -cne $layout) { Add-Difference $ctx $At "layout $($Got.Layout), expected $layout" }
    if ($Got.RequiresGrad -ne [bool]$Want.requires_grad) { Add-Difference $ctx $At "requires_grad $($Got.RequiresGrad), expected $($Want.requires_grad)" }
    if ($Got.IsParameter -ne [bool]$Want.is_parameter) { Add-Difference $ctx $At "is_parameter $($Got.IsParameter), expected $($Want.is_parameter)" }
    Compare-TensorExtras $ctx $Want $Got $At

    # the parts of sparse and nested tensors (indices/values, crow/col indices, nested sizes...) are tensors
    if ($Want.ContainsKey('components') -and $Want.components) {
        foreach ($c in $Want.components.GetEnumerator()) {
            $prop = ((Get-Culture).TextInfo.ToTitleCase($c.Key.Replace('_', ' '))).Replace(' ', '')
            if (-not $Got.PSObject.Properties[$prop]) { Add-Difference $ctx $At "the $layout tensor has no property $prop ($($c.Key))"; continue }
            Compare-Tensor $ctx $c.Value $Got.$prop "$At.$prop"
        }
    }
    if ($layout -ne 'strided' -or ($Want.ContainsKey('is_nested') -and $Want.is_nested)) { return }   # no stride, offset or single byte array

    if ((Format-Dims $Got.Stride) -ne (Format-Dims $Want.stride)) { Add-Difference $ctx $At "stride $(Format-Dims $Got.Stride), expected $(Format-Dims $Want.stride)" }
    if ($Got.StorageOffset -ne [long]$Want.storage_offset) { Add-Difference $ctx $At "storage offset $($Got.StorageOffset), expected $($Want.storage_offset)" }
    if ($Want.ContainsKey('storage') -and $Want.storage) { Compare-TensorStorage $ctx $Want.storage $Got.Storage $At }
    if ($Want.ContainsKey('quantization') -and $Want.quantization) { Compare-Quantization $ctx $Want.quantization $Got $At }
    if ($Want.ContainsKey('sha256') -and $Want.sha256) {
        # null for a meta tensor: it has no data
        $sha = Get-Sha256 $Got.ToByteArray()
        if ($sha -ne $Want.sha256) { Add-Difference $ctx $At "values differ: SHA-256 of ToByteArray() $sha, expected $($Want.sha256)" }
    }
}

function Compare-TensorExtras($ctx, [hashtable]$Want, $Got, [string]$At) {
    # What TorchLoad's tensors add to the contract's minimum: the rebuilt class, element count, device,
    # contiguity, lazy conj/neg flags, sparse coalescing, nesting and the Python attributes a file set.
    if (-not (Test-Property $ctx $Got 'ClassName', 'ElementCount', 'Device', 'IsContiguous', 'IsConj', 'IsNeg', 'IsCoalesced', 'IsNested', 'PythonState' $At 'the tensor')) { return }
    if ($Want.ContainsKey('class') -and $Got.ClassName -cne $Want.class) { Add-Difference $ctx $At "class $($Got.ClassName), expected $($Want.class)" }
    $nested = $Want.ContainsKey('is_nested') -and [bool]$Want.is_nested
    if ($Want.ContainsKey('numel') -and $Got.ElementCount -ne [long]$Want.numel) { Add-Difference $ctx $At "$($Got.ElementCount) elements, expected $($Want.numel)" }
    if ($Want.ContainsKey('device') -and $Got.Device -cne $Want.device) { Add-Difference $ctx $At "device $($Got.Device), expected $($Want.device)" }
    if ($Want.ContainsKey('is_contiguous') -and $null -ne $Want.is_contiguous -and $Got.IsContiguous -ne [bool]$Want.is_contiguous) { Add-Difference $ctx $At "is_contiguous $($Got.IsContiguous), expected $($Want.is_contiguous)" }
    $meta = if ($Want.ContainsKey('metadata') -and $Want.metadata) { $Want.metadata } else { @{} }
    if ($Got.IsConj -ne [bool]$meta['conj']) { Add-Difference $ctx $At "IsConj $($Got.IsConj), expected $([bool]$meta['conj'])" }
    if ($Got.IsNeg -ne [bool]$meta['neg']) { Add-Difference $ctx $At "IsNeg $($Got.IsNeg), expected $([bool]$meta['neg'])" }
    if ($Want.ContainsKey('is_coalesced') -and $null -ne $Want.is_coalesced -and $Got.IsCoalesced -ne [bool]$Want.is_coalesced) { Add-Difference $ctx $At "is_coalesced $($Got.IsCoalesced), expected $($Want.is_coalesced)" }
    if ($Got.IsNested -ne $nested) { Add-Difference $ctx $At "IsNested $($Got.IsNested), expected $nested" }
    if ($Want.ContainsKey('python_state') -and $null -ne $Want.python_state) { Compare-Node $ctx $Want.python_state $Got.PythonState "$At.PythonState" }
    elseif ($null -ne $Got.PythonState) { Add-Difference $ctx $At 'has PythonState, the manifest has none' }
}

function Get-Sha256([byte[]]$Bytes) {
    if ($null -eq $Bytes) { $Bytes = [byte[]]::new(0) }
    [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($Bytes)).ToLowerInvariant()
}

function Register-Storage($ctx, [string]$Key, $Storage, [string]$At) {
    # tensors that share a storage in the file share ONE storage object
    if ($ctx.Storages.ContainsKey($Key)) {
        if (-not [object]::ReferenceEquals($ctx.Storages[$Key], $Storage)) { Add-Difference $ctx $At "storage '$Key' is a different object from the one an earlier tensor had" }
    } else { $ctx.Storages[$Key] = $Storage }
}

function Compare-TensorStorage($ctx, [hashtable]$Want, $Got, [string]$At) {
    if ($null -eq $Got) { Add-Difference $ctx $At "expected storage '$($Want.key)', the tensor has none"; return }
    if (-not (Test-Property $ctx $Got 'Key', 'Location', 'DType', 'ElementCount', 'ByteLength' $At 'the storage')) { return }
    if ("$($Got.Key)" -cne "$($Want.key)") { Add-Difference $ctx $At "storage key '$($Got.Key)', expected '$($Want.key)'"; return }
    if ("$($Got.Location)" -cne "$($Want.location)") { Add-Difference $ctx $At "storage location '$($Got.Location)', expected '$($Want.location)'" }
    if ($Want.ContainsKey('dtype') -and "$($Got.DType)" -cne $Want.dtype) { Add-Difference $ctx $At "storage dtype $($Got.DType), expected $($Want.dtype)" }
    if ($Want.ContainsKey('size') -and $Got.ElementCount -ne [long]$Want.size) { Add-Difference $ctx $At "storage of $($Got.ElementCount) elements, expected $($Want.size)" }
    if ($Want.ContainsKey('nbytes') -and $Got.ByteLength -ne [long]$Want.nbytes) { Add-Difference $ctx $At "storage of $($Got.ByteLength) bytes, expected $($Want.nbytes)" }
    Register-Storage $ctx "$($Want.key)" $Got $At
}

function Compare-BareStorage($ctx, [hashtable]$Want, $Got, [string]$At) {
    # a storage in the pickle that no tensor wraps
    if ($null -eq $Got -or -not (Test-Property $ctx $Got 'Key', 'DType' $At 'the storage')) { if ($null -eq $Got) { Add-Difference $ctx $At 'expected a storage, got null' }; return }
    if ("$($Got.Key)" -cne "$($Want.storage_key)") { Add-Difference $ctx $At "storage key '$($Got.Key)', expected '$($Want.storage_key)'" }
    if ("$($Got.DType)" -cne $Want.dtype) { Add-Difference $ctx $At "storage dtype $($Got.DType), expected $($Want.dtype)" }
    if ((Get-Sha256 $Got.ToByteArray()) -ne $Want.sha256) { Add-Difference $ctx $At 'storage bytes differ (SHA-256)' }
    Register-Storage $ctx "$($Want.storage_key)" $Got $At
}

function Compare-Storages($ctx, [hashtable]$Want) {
    # every storage the manifest lists was reached once, holds the recorded bytes, and no other storage appeared
    foreach ($s in @($Want.entries)) {
        $key = "$($s.key)"
        if (-not $ctx.Storages.ContainsKey($key)) { Add-Difference $ctx "storage '$key'" 'listed in the manifest, but no tensor in the result uses it'; continue }
        if ($s.ContainsKey('sha256') -and $s.sha256 -and (Get-Sha256 $ctx.Storages[$key].ToByteArray()) -ne $s.sha256) {
            Add-Difference $ctx "storage '$key'" 'its bytes differ from the manifest (SHA-256 of Storage.ToByteArray())'
        }
    }
    if ($Want.ContainsKey('count') -and $ctx.Storages.Count -ne [int]$Want.count) {
        Add-Difference $ctx 'storages' "the result uses $($ctx.Storages.Count) storages, the manifest lists $($Want.count)"
    }
}

function Get-NumberList($Value) {
    # a tensor's values (per-channel scales / zero points) or a plain list, as doubles
    if ($null -eq $Value) { return , @() }
    if ($Value.PSObject.Methods['ToArray'] -and $Value.PSObject.Properties['DType']) { return , @(foreach ($v in $Value.ToArray()) { [double]$v }) }
    , @(foreach ($v in $Value) { [double]$v })
}

function Compare-Quantization($ctx, [hashtable]$Want, $Got, [string]$At) {
    if (-not (Test-Property $ctx $Got 'QScheme', 'QScale', 'QZeroPoint', 'QAxis', 'QScales', 'QZeroPoints' $At 'the quantized tensor')) { return }
    if ("$($Got.QScheme)" -cne $Want.qscheme) { Add-Difference $ctx $At "qscheme '$($Got.QScheme)', expected '$($Want.qscheme)'" }
    # exact: scale and zero point are the pickled float64/int64 values torch reports
    if ($Want.ContainsKey('scale') -and $null -ne $Want.scale -and ($null -eq $Got.QScale -or -not (Test-SameDouble (ConvertTo-Double $Want.scale) $Got.QScale))) { Add-Difference $ctx $At "q scale $($Got.QScale), expected $($Want.scale)" }
    if ($Want.ContainsKey('zero_point') -and $null -ne $Want.zero_point -and "$($Got.QZeroPoint)" -ne "$($Want.zero_point)") { Add-Difference $ctx $At "q zero point $($Got.QZeroPoint), expected $($Want.zero_point)" }
    if ($Want.ContainsKey('axis') -and $null -ne $Want.axis -and "$($Got.QAxis)" -ne "$($Want.axis)") { Add-Difference $ctx $At "q axis $($Got.QAxis), expected $($Want.axis)" }
    # per-channel parameters are tensors in the file (own storages): compared as tensors where the manifest has them
    if ($Want.ContainsKey('pickled_scales') -and $Want.pickled_scales) { Compare-Tensor $ctx $Want.pickled_scales $Got.QScales "$At.QScales" }
    if ($Want.ContainsKey('pickled_zero_points') -and $Want.pickled_zero_points) { Compare-Tensor $ctx $Want.pickled_zero_points $Got.QZeroPoints "$At.QZeroPoints" }
    foreach ($pair in @(@('scales', 'QScales'), @('zero_points', 'QZeroPoints'))) {
        $name, $prop = $pair
        if (-not $Want.ContainsKey($name) -or $null -eq $Want[$name]) { continue }
        $expected = @(foreach ($v in $Want[$name]) { ConvertTo-Double $v })
        $values = Get-NumberList $Got.$prop
        if ($values.Count -ne $expected.Count) { Add-Difference $ctx $At "q $name has $($values.Count) values, expected $($expected.Count)"; continue }
        for ($i = 0; $i -lt $expected.Count; $i++) {
            if (-not (Test-SameDouble $expected[$i] $values[$i])) { Add-Difference $ctx $At "q $name[$i] $($values[$i]), expected $($expected[$i])"; break }
        }
    }
}

# ---- DCP listing ----------------------------------------------------------------------------------------------

function Compare-TensorListing {
    # Get-TorchTensor rows of a DCP folder (read from .metadata): one per tensor entry, same name, dtype and shape.
    param([Parameter(Mandatory)][hashtable]$Entry, [object[]]$Rows)
    $byName = @{}
    foreach ($r in $Rows) { $byName["$($r.Name)"] = $r }
    $tensors = @($Entry.entries | Where-Object { $_.kind -eq 'tensor' })
    if ($byName.Count -ne $tensors.Count -or @($Rows).Count -ne $tensors.Count) { "Get-TorchTensor wrote $(@($Rows).Count) rows ($($byName.Count) names), expected $($tensors.Count) tensors" }
    foreach ($t in $tensors) {
        if (-not $byName.ContainsKey($t.path_str)) { "no row named '$($t.path_str)'"; continue }
        $r = $byName[$t.path_str]
        if ("$($r.DType)" -cne $t.dtype) { "$($t.path_str): dtype $($r.DType), expected $($t.dtype)" }
        if ((Format-Dims $r.Shape) -ne (Format-Dims $t.shape)) { "$($t.path_str): shape $(Format-Dims $r.Shape), expected $(Format-Dims $t.shape)" }
    }
}

Export-ModuleMember -Function Find-FixtureSet, Read-FixtureManifest, Get-ConformanceCase, Get-FixtureFileDifference,
    Get-TorchErrorId, Resolve-ExpectedErrorId, Compare-CheckpointTree, Compare-TensorListing
