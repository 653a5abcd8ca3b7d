#requires -Version 7.4
<#
.SYNOPSIS
    docs/<Cmdlet>.md (PlatyPS 2.0.0 markdown schema) -> MAML (<RootModule>-Help.xml).

.DESCRIPTION
    The structure (parameter sets, types, positions, pipeline input, aliases, wildcards, mandatory) comes
    from Get-Command on the BUILT module, so it cannot drift from the code; the prose (synopsis,
    description, parameter descriptions, default values, inputs, outputs, notes, examples, links) comes
    from the markdown. The markdown's own SYNTAX block is not used.
    Run it in a child pwsh: it imports the module, and a binary module cannot be unloaded.
    Mismatches between docs and code are reported as warnings here; tests/Pester/Module.Tests.ps1 fails on them.
#>
param(
    [Parameter(Mandatory)][string]$DocsDir,
    [Parameter(Mandatory)][string]$ModulePath,
    [Parameter(Mandatory)][string]$OutFile
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3
$module = Import-Module $ModulePath -Force -PassThru

function Esc([string]$s) { [System.Security.SecurityElement]::Escape($s) }

function Paras([string]$t) {
    # Markdown paragraphs (blank-line separated) -> <maml:para>; a list item or table row keeps its own line.
    if (-not $t) { return '' }
    (($t.Trim() -split '\r?\n\s*\r?\n') | Where-Object { $_.Trim() } | ForEach-Object {
        "<maml:para>$(Esc (($_.Trim() -split '\r?\n' | ForEach-Object { $_.Trim() }) -join "`n"))</maml:para>"
    }) -join ''
}

function Sections([string]$text, [string]$hdr) {
    # Split on '## X' / '### X' headers -> ordered dictionary of header -> body text (code fences respected).
    $d = [ordered]@{}; $cur = $null; $inCode = $false
    foreach ($line in $text -split '\r?\n') {
        if ($line -match '^\s*```') { $inCode = -not $inCode }
        if (-not $inCode -and $line -match "^$hdr (.+)$") { $cur = $Matches[1].Trim(); $d[$cur] = [System.Text.StringBuilder]::new() }
        elseif ($cur) { [void]$d[$cur].AppendLine($line) }
    }
    $o = [ordered]@{}; foreach ($k in $d.Keys) { $o[$k] = $d[$k].ToString() }; $o
}

function Get-Section($dict, [string]$key) { if ($dict.Contains($key)) { $dict[$key] } else { '' } }

# -WhatIf/-Confirm are documented like ordinary parameters (as PlatyPS does); the rest are common parameters.
$common = @([System.Management.Automation.Cmdlet]::CommonParameters) + 'UseTransaction'
$exported = @($module.ExportedCmdlets.Keys)
$docs = @(Get-ChildItem -LiteralPath $DocsDir -Filter '*-*.md' | Where-Object { $_.BaseName -notlike 'about_*' })
$docNames = @($docs | ForEach-Object BaseName)
foreach ($name in $exported | Where-Object { $_ -notin $docNames }) { Write-Warning "No help: docs/$name.md is missing." }

$sb = [System.Text.StringBuilder]::new('<?xml version="1.0" encoding="utf-8"?>' + "`n<helpItems schema=`"maml`" xmlns=`"http://msh`">`n")
foreach ($md in $docs) {
    $name = $md.BaseName
    if ($name -notin $exported) { Write-Warning "docs/$($md.Name) documents '$name', which the module does not export; skipped."; continue }
    $cmd = Get-Command -Name $name -Module $module.Name
    $s = Sections (Get-Content -LiteralPath $md.FullName -Raw) '##'
    $pdoc = Sections (Get-Section $s 'PARAMETERS') '###'
    foreach ($k in $pdoc.Keys | Where-Object { $_ -like '-*' -and $_.Substring(1) -notin $cmd.Parameters.Keys }) {
        Write-Warning "docs/$($md.Name) documents parameter $k, which $name does not have."
    }

    function ParamXml($p, $pos, [bool]$mandatory, [bool]$byValue, [bool]$byName) {
        $pipe = @(); if ($byName) { $pipe += 'ByPropertyName' }; if ($byValue) { $pipe += 'ByValue' }
        $pipeS = if ($pipe) { "True ($($pipe -join ', '))" } else { 'False' }
        $doc = $pdoc["-$($p.Name)"]
        if (-not $doc) { Write-Warning "docs/$name.md has no '### -$($p.Name)' section." }
        $desc = if ($doc) { ($doc -split '```')[0] } else { '' }
        $dv = if ($doc -and $doc -match '(?m)^Default value:\s*(.*)$') { $Matches[1].Trim() } else { 'None' }
        $glob = [bool]($p.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
        $typeName = if ($p.ParameterType -eq [System.Management.Automation.SwitchParameter]) { 'SwitchParameter' } else { $p.ParameterType.Name }
        $pv = if ($p.SwitchParameter) { '' } else { "<command:parameterValue required=`"true`">$(Esc $typeName)</command:parameterValue>" }
        $al = if ($p.Aliases.Count) { $p.Aliases -join ', ' } else { 'none' }
        "<command:parameter required=`"$($mandatory.ToString().ToLower())`" globbing=`"$($glob.ToString().ToLower())`" pipelineInput=`"$pipeS`" position=`"$pos`" aliases=`"$(Esc $al)`"><maml:name>$($p.Name)</maml:name><maml:description>$(Paras $desc)</maml:description>$pv<dev:type><maml:name>$(Esc $p.ParameterType.FullName)</maml:name></dev:type><dev:defaultValue>$(Esc $dv)</dev:defaultValue></command:parameter>"
    }

    [void]$sb.Append('<command:command xmlns:maml="http://schemas.microsoft.com/maml/2004/10" xmlns:command="http://schemas.microsoft.com/maml/dev/command/2004/10" xmlns:dev="http://schemas.microsoft.com/maml/dev/2004/10">')
    [void]$sb.Append("<command:details><command:name>$name</command:name><command:verb>$($cmd.Verb)</command:verb><command:noun>$($cmd.Noun)</command:noun><maml:description>$(Paras (Get-Section $s 'SYNOPSIS'))</maml:description></command:details>")
    [void]$sb.Append("<maml:description>$(Paras (Get-Section $s 'DESCRIPTION'))</maml:description><command:syntax>")
    # One syntax item per parameter set, with that set's own position/mandatory/pipeline values.
    foreach ($set in $cmd.ParameterSets) {
        [void]$sb.Append("<command:syntaxItem><maml:name>$name</maml:name>")
        foreach ($sp in $set.Parameters | Where-Object { $_.Name -notin $common }) {
            $pos = if ($sp.Position -ge 0) { $sp.Position } else { 'named' }
            [void]$sb.Append((ParamXml $cmd.Parameters[$sp.Name] $pos $sp.IsMandatory $sp.ValueFromPipeline $sp.ValueFromPipelineByPropertyName))
        }
        [void]$sb.Append('</command:syntaxItem>')
    }
    [void]$sb.Append('</command:syntax><command:parameters>')
    foreach ($p in $cmd.Parameters.Values | Where-Object { $_.Name -notin $common }) {
        $inSets = @($cmd.ParameterSets | ForEach-Object { $_.Parameters | Where-Object Name -eq $p.Name })
        $positional = @($inSets | Where-Object { $_.Position -ge 0 })
        $pos = if ($positional) { $positional[0].Position } else { 'named' }
        $mandatory = @($inSets | Where-Object { -not $_.IsMandatory }).Count -eq 0        # mandatory wherever it appears
        $byValue = [bool]($inSets | Where-Object ValueFromPipeline)
        $byName = [bool]($inSets | Where-Object ValueFromPipelineByPropertyName)
        [void]$sb.Append((ParamXml $p $pos $mandatory $byValue $byName))
    }
    [void]$sb.Append('</command:parameters>')
    foreach ($kind in 'INPUTS', 'OUTPUTS') {
        $tag = if ($kind -eq 'INPUTS') { 'inputType' } else { 'returnValue' }
        [void]$sb.Append("<command:$($tag)s>")
        foreach ($kv in (Sections (Get-Section $s $kind) '###').GetEnumerator()) {
            [void]$sb.Append("<command:$tag><dev:type><maml:name>$(Esc $kv.Key)</maml:name></dev:type><maml:description>$(Paras $kv.Value)</maml:description></command:$tag>")
        }
        [void]$sb.Append("</command:$($tag)s>")
    }
    $notes = Get-Section $s 'NOTES'
    if ($notes.Trim()) { [void]$sb.Append("<maml:alertSet><maml:alert>$(Paras $notes)</maml:alert></maml:alertSet>") }
    [void]$sb.Append('<command:examples>')
    foreach ($kv in (Sections (Get-Section $s 'EXAMPLES') '###').GetEnumerator()) {
        $parts = $kv.Value -split '```[a-z]*'
        $code = if ($parts.Count -ge 2) { $parts[1].Trim() } else { '' }
        $rem = ($parts | Select-Object -Skip 2) -join "`n"
        [void]$sb.Append("<command:example><maml:title>-------------------------- $(Esc $kv.Key) --------------------------</maml:title><dev:code>$(Esc $code)</dev:code><dev:remarks>$(Paras $rem)</dev:remarks></command:example>")
    }
    [void]$sb.Append('</command:examples><command:relatedLinks>')
    foreach ($m in [regex]::Matches((Get-Section $s 'RELATED LINKS'), '\[([^\]]+)\]\(([^)]*)\)')) {
        # Only absolute URIs are useful to Get-Help -Online; a link to a sibling .md keeps just its text.
        $uri = if ($m.Groups[2].Value -match '^https?://') { $m.Groups[2].Value } else { '' }
        [void]$sb.Append("<maml:navigationLink><maml:linkText>$(Esc $m.Groups[1].Value)</maml:linkText><maml:uri>$(Esc $uri)</maml:uri></maml:navigationLink>")
    }
    [void]$sb.Append("</command:relatedLinks></command:command>`n")
}
[void]$sb.Append('</helpItems>')
$null = New-Item -ItemType Directory -Force -Path (Split-Path $OutFile)
$xml = $sb.ToString()
$null = [xml]$xml                                    # throws if the result is not well-formed
[System.IO.File]::WriteAllText($OutFile, $xml)
"wrote $OutFile ($(@($docs).Count) commands)"
