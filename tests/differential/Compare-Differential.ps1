<#
.SYNOPSIS
Differential check: loads every checkpoint that make_cases.py wrote and compares TorchLoad's result
with what torch.load returned (expected.json).

.EXAMPLE
/usr/bin/python3 tests/differential/make_cases.py --out /tmp/diff-cases
dotnet pwsh -NoProfile -File tests/differential/Compare-Differential.ps1 -ModulePath ./module/TorchLoad.psd1 -CasesPath /tmp/diff-cases

Prints one line per mismatch ("FAIL <file> [<mode>] <path>: <what>") and ends with "N passed, N failed"
(a file passes when both safe mode and -WeightsOnly:$false give torch's tree); exits 1 when a file failed.
#>
[CmdletBinding()]
param(
    [string] $ModulePath = './module/TorchLoad.psd1',
    [string] $CasesPath = '/tmp/diff-cases',
    [string[]] $Only,               # wildcard(s) on file names
    [int] $MaxPerFile = 20          # mismatch lines printed per file and mode
)

Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath -Force

$expected = Get-Content -LiteralPath (Join-Path $CasesPath 'expected.json') -Raw -Encoding utf8 | ConvertFrom-Json -Depth 1000
$sha = [System.Security.Cryptography.SHA256]::Create()
$torchMajor = [int] ("$($expected.torch)" -replace '\..*', '')

# Note: never return a collection from a function here (PowerShell would enumerate it); unwrap in place.
function Has($x, [string] $name) { return $null -ne $x -and $null -ne $x.psobject.Properties[$name] }
function JoinL($a) { if ($null -eq $a) { return '<null>' }; return '[' + ((@($a) | ForEach-Object { "$_" }) -join ',') + ']' }
function HexSha([byte[]] $b) { return ([Convert]::ToHexString($sha.ComputeHash($b))).ToLowerInvariant() }
function Desc($x) {
    if ($null -eq $x) { return '$null' }
    $s = "$x"; if ($s.Length -gt 60) { $s = $s.Substring(0, 60) + '...' }
    return "$($x.GetType().Name) '$s'"
}

# A neg/conj view holding NaN: torch materializes it through float conversions whose NaN bits depend on the
# kernel (a bfloat16 NaN came back 0x7FC0, sign dropped); TorchLoad flips the sign bit. Both are NaN, so such
# tensors are also compared with every NaN made canonical (make_cases.py nan_canonical, the node's sha_nan).
$NanParts = @{
    float16 = @(2, 0x7C00, 0x03FF, 0x7E00); bfloat16 = @(2, 0x7F80, 0x007F, 0x7FC0)
    float32 = @(4, 0x7F800000, 0x007FFFFF, 0x7FC00000); float64 = @(8, 0x7FF0000000000000, 0x000FFFFFFFFFFFFF, 0x7FF8000000000000)
}
$NanParts.complex32 = $NanParts.float16; $NanParts.complex64 = $NanParts.float32; $NanParts.complex128 = $NanParts.float64
function ConvertTo-CanonicalNaN([byte[]] $b, [string] $dtype) {
    $p = $NanParts[$dtype]
    if ($null -eq $p) { return , $b }
    $size = $p[0]; $exp = [uint64] $p[1]; $mant = [uint64] $p[2]; $canon = [uint64] $p[3]
    $out = [byte[]] $b.Clone()
    for ($i = 0; $i + $size -le $out.Length; $i += $size) {
        $v = switch ($size) { 2 { [uint64] [BitConverter]::ToUInt16($out, $i) } 4 { [uint64] [BitConverter]::ToUInt32($out, $i) } 8 { [BitConverter]::ToUInt64($out, $i) } }
        if (($v -band $exp) -eq $exp -and ($v -band $mant) -ne 0) {
            for ($k = 0; $k -lt $size; $k++) { $out[$i + $k] = [byte] (($canon -shr (8 * $k)) -band 0xFF) }
        }
    }
    return , $out
}

$script:fails = $null
function Fail([string] $path, [string] $what) { $script:fails.Add("$path : $what") }

function New-Ctx {
    return @{
        ids = @{}
        sg  = @{}
        sgOf = [System.Collections.Generic.Dictionary[object, int]]::new([System.Collections.Generic.ReferenceEqualityComparer]::Instance)
    }
}

function Check-Storage($ctx, [string] $path, $storage, $sg) {
    if ($null -eq $sg) { return }
    $s = $storage
    if ($null -ne $s) { $s = $s.psobject.BaseObject }
    if ($null -eq $s) { Fail $path "Storage is null"; return }
    $k = [int] $sg
    if ($ctx.sg.ContainsKey($k)) {
        if (-not [object]::ReferenceEquals($ctx.sg[$k], $s)) { Fail $path "storage should be the same object as an earlier tensor's (torch shares it); got a different one (Key $($s.Key) vs $($ctx.sg[$k].Key))" }
    } else {
        $ctx.sg[$k] = $s
        if ($ctx.sgOf.ContainsKey($s)) { Fail $path "storage object is shared with an unrelated tensor (storage group $($ctx.sgOf[$s]) vs $k), torch has distinct storages" }
        else { $ctx.sgOf[$s] = $k }
    }
}

function Compare-StorageInfo([string] $path, $e, $s) {
    if ($null -eq $e) { return }
    if ($null -eq $s) { Fail $path 'Storage is null'; return }
    if ("$($s.DType)" -ne $e.dtype) { Fail $path "Storage.DType $($s.DType), expected $($e.dtype)" }
    if ([long] $s.ElementCount -ne [long] $e.size) { Fail $path "Storage.ElementCount $($s.ElementCount), expected $($e.size)" }
    if ([long] $s.ByteLength -ne [long] $e.nbytes) { Fail $path "Storage.ByteLength $($s.ByteLength), expected $($e.nbytes)" }
    if ("$($s.Location)" -ne $e.location) { Fail $path "Storage.Location '$($s.Location)', expected '$($e.location)'" }
    try { if ((HexSha $s.ToByteArray()) -ne $e.sha) { Fail $path 'Storage.ToByteArray() differs from the storage bytes torch loaded' } }
    catch { Fail $path "Storage.ToByteArray threw: $($_.Exception.Message)" }
}

function Compare-Component([string] $path, $e, $a) {
    if ($null -eq $a) { Fail $path 'component tensor missing'; return }
    if ("$($a.DType)" -ne $e.dtype) { Fail $path "dtype $($a.DType), expected $($e.dtype)" }
    if ((JoinL $a.Shape) -ne (JoinL $e.shape)) { Fail $path "shape $(JoinL $a.Shape), expected $(JoinL $e.shape)" }
    try { $h = HexSha $a.ToByteArray() } catch { Fail $path "ToByteArray threw: $($_.Exception.Message)"; return }
    if ($h -ne $e.sha) { Fail $path "values differ (sha256 of ToByteArray)" }
}

function Compare-Float([string] $path, $e, $a) {
    if ($a -isnot [double]) { Fail $path "expected [double] $($e.v), got $(Desc $a)"; return }
    $bits = [BitConverter]::DoubleToInt64Bits([double] $a)
    $want = [Convert]::ToInt64($e.bits, 16)
    if ($bits -ne $want) { Fail $path ("float {0} (bits {1:x16}), expected {2} (bits {3})" -f $a, $bits, $e.v, $e.bits) }
}

function Compare-Node($ctx, [string] $path, $e, $a) {
    if ($null -ne $a) { $a = $a.psobject.BaseObject }
    switch ($e.t) {
        'none' { if ($null -ne $a) { Fail $path "expected `$null, got $(Desc $a)" } }
        'bool' { if ($a -isnot [bool] -or $a -ne [bool] $e.v) { Fail $path "expected [bool] $($e.v), got $(Desc $a)" } }
        'int' {
            $v = [System.Numerics.BigInteger]::Parse($e.v, [Globalization.CultureInfo]::InvariantCulture)
            $fits = $v -ge [long]::MinValue -and $v -le [long]::MaxValue
            if ($fits) {
                if ($a -isnot [long] -or [System.Numerics.BigInteger] $a -ne $v) { Fail $path "expected [long] $($e.v), got $(Desc $a)" }
            } else {
                if ($a -isnot [System.Numerics.BigInteger] -or $a -ne $v) { Fail $path "expected [BigInteger] $($e.v), got $(Desc $a)" }
            }
        }
        'float' { Compare-Float $path $e $a }
        'complex' {
            if ($a -isnot [System.Numerics.Complex]) { Fail $path "expected [Complex], got $(Desc $a)"; return }
            Compare-Float "$path.re" $e.re $a.Real
            Compare-Float "$path.im" $e.im $a.Imaginary
        }
        'str' {
            if ((Has $e 'u16') -and $a -is [string]) {
                $h = -join @($a.ToCharArray() | ForEach-Object { $u = [int] $_; '{0:x2}{1:x2}' -f ($u -band 0xFF), ($u -shr 8) })  # UTF-16LE code units (Encoding.Unicode would replace lone surrogates)
                if ($h -ne $e.u16) { Fail $path "string UTF-16 code units $h, expected $($e.u16)" }
            } elseif ($a -isnot [string] -or -not [string]::Equals($a, [string] $e.v, [StringComparison]::Ordinal)) {
                $cu = { param($s) if ($s -is [string] -and $s.Length -le 12) { ' U+' + ((@($s.ToCharArray()) | ForEach-Object { '{0:X4}' -f [int] $_ }) -join ' U+') } else { '' } }
                Fail $path "expected string '$($e.v)' (len $($e.v.Length)$(& $cu ([string] $e.v))), got $(Desc $a)$(if ($a -is [string]) { " (len $($a.Length)$(& $cu $a))" })"
            }
        }
        'bytes' {
            if ($a -isnot [byte[]]) { Fail $path "expected [byte[]], got $(Desc $a)"; return }
            $h = [Convert]::ToHexString($a).ToLowerInvariant()
            if ($h -ne $e.hex) { Fail $path "bytes $h, expected $($e.hex)" }
        }
        'set' {
            if ($null -eq $a -or $a -is [string] -or $a -isnot [System.Collections.IEnumerable]) { Fail $path "expected a set (IEnumerable), got $(Desc $a)"; return }
            $got = @(@(foreach ($x in $a) { [string] $x }) | Sort-Object { [long] $_ })
            $want = @($e.items | ForEach-Object { $_.v })
            if ((JoinL $got) -ne (JoinL $want)) { Fail $path "set $(JoinL $got), expected $(JoinL $want)" }
        }
        'memory_format' {
            # TorchLoad never calls getattr (object-model; shared torch-2.6 memory_format_leaves.pt): an inert
            # builtins.getattr(torch._utils.torch, name) call (protocol < 4) or the global torch._utils.torch.<name> (>= 4)
            $ok = (Has $a 'ClassName') -and (("$($a.ClassName)" -eq "torch._utils.torch.$($e.v)") -or
                ("$($a.ClassName)" -eq 'builtins.getattr' -and (Has $a 'Args') -and @($a.Args).Count -eq 2 -and "$(@($a.Args)[1])" -eq $e.v))
            if (-not $ok) { Fail $path "expected memory_format '$($e.v)' as an inert getattr call or torch._utils.torch global, got $(Desc $a)" }
        }
        { $_ -in 'dtype', 'device', 'layout' } { if ($null -eq $a -or "$a" -ne $e.v) { Fail $path "expected $($e.t) '$($e.v)', got $(Desc $a)" } }
        'size' {
            if ($a -isnot [System.Collections.IList]) { Fail $path "expected torch.Size as IList, got $(Desc $a)"; return }
            if ((JoinL $a) -ne (JoinL $e.v)) { Fail $path "Size $(JoinL $a), expected $(JoinL $e.v)" }
        }
        'ref' {
            $first = $ctx.ids[[int] $e.id]
            if (-not [object]::ReferenceEquals($first, $a)) { Fail $path "should be the same object as an earlier occurrence (pickle memo), got a different object $(Desc $a)" }
        }
        { $_ -in 'list', 'tuple' } {
            $ctx.ids[[int] $e.id] = $a
            if ($a -isnot [System.Collections.IList]) { Fail $path "expected $($e.t) as IList, got $(Desc $a)"; return }
            $items = @($e.items)
            if ($a.Count -ne $items.Count) { Fail $path "$($e.t) has $($a.Count) items, expected $($items.Count)"; return }
            for ($i = 0; $i -lt $items.Count; $i++) { Compare-Node $ctx "$path[$i]" $items[$i] $a[$i] }
        }
        'dict' {
            $ctx.ids[[int] $e.id] = $a
            if ($a -isnot [System.Collections.IDictionary]) { Fail $path "expected $($e.kind) as IDictionary, got $(Desc $a)"; return }
            $entries = [System.Collections.Generic.List[object]]::new()
            $en = $a.GetEnumerator()
            while ($en.MoveNext()) { $entries.Add($en.Entry) }
            $keys = @($e.keys); $vals = @($e.values)
            if ($entries.Count -ne $keys.Count) { Fail $path "dict has $($entries.Count) entries, expected $($keys.Count)" }
            $n = [Math]::Min($entries.Count, $keys.Count)
            for ($i = 0; $i -lt $n; $i++) {
                $kd = if ($keys[$i].t -eq 'str') { "'" + $keys[$i].v + "'" } else { "$($keys[$i].t):$($keys[$i].psobject.Properties['v']?.Value)" }
                if ($kd.Length -gt 40) { $kd = $kd.Substring(0, 40) + '...' }
                Compare-Node $ctx "$path{key#$i}" $keys[$i] $entries[$i].Key
                Compare-Node $ctx "$path[$kd]" $vals[$i] $entries[$i].Value
            }
        }
        'storage' {
            $ctx.ids[[int] $e.id] = $a
            if (-not (Has $a 'ElementCount') -or -not (Has $a 'Key')) { Fail $path "expected a storage object, got $(Desc $a)"; return }
            if ("$($a.DType)" -ne $e.dtype) { Fail $path "storage dtype $($a.DType), expected $($e.dtype)" }
            if ([long] $a.ElementCount -ne [long] $e.size) { Fail $path "storage ElementCount $($a.ElementCount), expected $($e.size)" }
            try { if ((HexSha $a.ToByteArray()) -ne $e.sha) { Fail $path 'storage bytes differ' } } catch { Fail $path "storage ToByteArray threw: $($_.Exception.Message)" }
            Check-Storage $ctx $path $a $e.sg
            if (Has $e 'storage') { Compare-StorageInfo $path $e.storage $a }
        }
        'tensor' {
            $ctx.ids[[int] $e.id] = $a
            if (-not (Has $a 'DType') -or -not (Has $a 'Shape')) { Fail $path "expected a tensor, got $(Desc $a)"; return }
            if ("$($a.DType)" -ne $e.dtype) { Fail $path "dtype $($a.DType), expected $($e.dtype)" }
            if ((JoinL $a.Shape) -ne (JoinL $e.shape)) { Fail $path "shape $(JoinL $a.Shape), expected $(JoinL $e.shape)" }
            if ("$($a.Layout)" -ne $e.layout) { Fail $path "layout $($a.Layout), expected $($e.layout)" }
            if ([bool] $a.RequiresGrad -ne [bool] $e.rg) { Fail $path "RequiresGrad $($a.RequiresGrad), expected $($e.rg)" }
            if ([bool] $a.IsParameter -ne [bool] $e.param) { Fail $path "IsParameter $($a.IsParameter), expected $($e.param)" }
            foreach ($flag in @(@('conj', 'IsConj'), @('neg', 'IsNeg'), @('nested', 'IsNested'))) {
                $want = (Has $e $flag[0]) -and [bool] $e.($flag[0])
                if ([bool] $a.($flag[1]) -ne $want) { Fail $path "$($flag[1]) $($a.($flag[1])), expected $want" }
            }
            if (Has $e 'pystate') {
                if (-not (Has $a 'PythonState') -or $null -eq $a.PythonState) { Fail $path 'PythonState is missing (torch restored Python attributes)' }
                else { Compare-Node $ctx "$path.PythonState" $e.pystate $a.PythonState }
            }
            if ((Has $e 'coalesced') -and -not ($null -eq $a.IsCoalesced -and $torchMajor -lt 2)) {
                # torch 1.x files do not record it (torch 1.13 computes it on load); 2.x files do
                if ($null -eq $a.IsCoalesced -or [bool] $a.IsCoalesced -ne [bool] $e.coalesced) { Fail $path "IsCoalesced '$($a.IsCoalesced)', expected $($e.coalesced)" }
            }
            if (Has $e 'parts') {
                # sparse and nested component tensors, named as torch names them (crow_indices -> CrowIndices)
                foreach ($part in $e.parts.psobject.Properties) {
                    $prop = -join @($part.Name -split '_' | ForEach-Object { $_.Substring(0, 1).ToUpperInvariant() + $_.Substring(1) })
                    if (-not (Has $a $prop)) { Fail $path "tensor has no property $prop"; continue }
                    Compare-Component "$path.$prop" $part.Value $a.$prop
                }
            } elseif ($e.layout -eq 'strided') {
                if ((JoinL $a.Stride) -ne (JoinL $e.stride)) { Fail $path "stride $(JoinL $a.Stride), expected $(JoinL $e.stride)" }
                if ([long] $a.StorageOffset -ne [long] $e.offset) { Fail $path "StorageOffset $($a.StorageOffset), expected $($e.offset)" }
                try {
                    $bytes = $a.ToByteArray()
                    if ((HexSha $bytes) -ne $e.sha -and -not ((Has $e 'sha_nan') -and (HexSha (ConvertTo-CanonicalNaN $bytes $e.dtype)) -eq $e.sha_nan)) {
                        Fail $path "values differ (sha256 of ToByteArray, $($bytes.Length) bytes)"
                    }
                } catch { Fail $path "ToByteArray threw: $($_.Exception.Message)" }
                Check-Storage $ctx $path $a.Storage $e.sg
                if (Has $e 'storage') { Compare-StorageInfo "$path.Storage" $e.storage $a.Storage }
                if (Has $e 'qscheme') {
                    if ("$($a.QScheme)" -ne $e.qscheme) { Fail $path "QScheme '$($a.QScheme)', expected $($e.qscheme)" }
                    if (Has $e 'qscale') {
                        Compare-Float "$path.QScale" $e.qscale $(if ($null -ne $a.QScale) { [double] $a.QScale } else { $null })
                        if ($null -eq $a.QZeroPoint -or [long] $a.QZeroPoint -ne [long] $e.qzp) { Fail $path "QZeroPoint $($a.QZeroPoint), expected $($e.qzp)" }
                    } else {
                        Compare-Component "$path.QScales" $e.qscales $a.QScales
                        Compare-Component "$path.QZeroPoints" $e.qzps $a.QZeroPoints
                        if ($null -eq $a.QAxis -or [long] $a.QAxis -ne [long] $e.qaxis) { Fail $path "QAxis $($a.QAxis), expected $($e.qaxis)" }
                    }
                }
            }
        }
        'object' {
            if (-not (Has $a 'ClassName')) { Fail $path "expected an inert object of class $($e.class), got $(Desc $a)"; return }
            if ("$($a.ClassName)" -ne $e.class) { Fail $path "ClassName '$($a.ClassName)', expected '$($e.class)'" }
            if (Has $e 'state') {
                if (-not (Has $a 'State')) { Fail $path 'inert object has no State' }
                else { Compare-Node $ctx "$path.State" $e.state $a.State }
            }
        }
        default { Fail $path "unknown expected node type '$($e.t)'" }
    }
}

function Test-HasObject($e) {
    if ($null -eq $e) { return $false }
    if ($e.t -in 'object', 'memory_format') { return $true }
    foreach ($p in 'items', 'keys', 'values') {
        if ((Has $e $p) -and $e.t -ne 'tensor') { foreach ($c in @($e.$p)) { if (Test-HasObject $c) { return $true } } }
    }
    return $false
}

$passed = 0; $failed = 0
$modeFail = @{ safe = 0; permissive = 0 }
foreach ($case in $expected.cases) {
    if ($Only -and -not ($Only | Where-Object { $case.file -like $_ })) { continue }
    $file = Join-Path $CasesPath $case.file
    $unsafe = Test-HasObject $case.tree
    $fileOk = $true
    foreach ($mode in 'safe', 'permissive') {
        $script:fails = [System.Collections.Generic.List[string]]::new()
        $wo = $mode -eq 'safe'
        $result = $null; $err = $null
        try {
            $result = Import-TorchCheckpoint -LiteralPath $file -WeightsOnly:$wo -ErrorAction Stop
        } catch { $err = $_ }
        if ($err) {
            if ($wo -and $unsafe) {
                if (-not "$($err.FullyQualifiedErrorId)".StartsWith('UnsafeGlobal')) { Fail '<root>' "safe mode should refuse with UnsafeGlobal, got $($err.FullyQualifiedErrorId): $($err.Exception.Message)" }
            } elseif ($wo -and "$($err.FullyQualifiedErrorId)".StartsWith('UnsafeGlobal') -and -not $case.wo_ok) {
                # torch's own weights_only refuses the file too (this global, or torch 1.13 already at an opcode
                # such as BINFLOAT before it; torch 2.6 refuses e.g. builtins.bytes as well): parity, not a failure
                "NOTE $($case.file) [$mode] ($($case.kind)) safe mode refused like torch's weights_only ($($case.wo_err -replace '.*WeightsUnpickler error: ', '')): $($err.Exception.Message -replace '\. If you trust.*', '')"
            } else {
                $tw = if ($case.wo_ok) { ' (torch weights_only=True loads it)' } else { '' }
                Fail '<root>' "load failed$tw : $($err.FullyQualifiedErrorId): $($err.Exception.Message)"
            }
        } elseif ($wo -and $unsafe) {
            Fail '<root>' "safe mode loaded a file with non-allowlisted classes (expected UnsafeGlobal)"
        } else {
            try { Compare-Node (New-Ctx) '$' $case.tree $result }
            catch { Fail '<compare>' "comparison threw: $($_.Exception.Message) at $($_.InvocationInfo.ScriptLineNumber)" }
        }
        if ($script:fails.Count) {
            $fileOk = $false; $modeFail[$mode]++
            $script:fails | Select-Object -First $MaxPerFile | ForEach-Object { "FAIL $($case.file) [$mode] ($($case.kind)) $_" }
            if ($script:fails.Count -gt $MaxPerFile) { "FAIL $($case.file) [$mode] ... $($script:fails.Count - $MaxPerFile) more" }
        }
    }
    if ($fileOk) { $passed++ } else { $failed++ }
}
"files failing in safe mode: $($modeFail.safe); with -WeightsOnly:`$false: $($modeFail.permissive)"
"$passed passed, $failed failed"
if ($failed) { exit 1 }
