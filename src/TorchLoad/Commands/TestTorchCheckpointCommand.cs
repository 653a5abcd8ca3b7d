using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Errors;

namespace TorchLoad.Commands;

/// <summary>Audits checkpoints without loading tensor data or executing anything: format, globals with verdicts, integrity.</summary>
[Cmdlet(VerbsDiagnostic.Test, "TorchCheckpoint", DefaultParameterSetName = PathSet)]
[OutputType(typeof(AuditResult), typeof(bool))]
public sealed class TestTorchCheckpointCommand : CheckpointFileCmdletBase
{
    /// <summary>Globals to treat as allowed (besides the defaults and Add-TorchSafeGlobal's).</summary>
    [Parameter]
    [ArgumentCompleter(typeof(SafeGlobalCompleter))]
    public string[]? SafeGlobal { get; set; }

    /// <summary>Skips the CRC-32 check of every zip record (which reads all bytes of the file).</summary>
    [Parameter]
    public SwitchParameter SkipCrc { get; set; }

    /// <summary>Also reads every tensor's values: a finding per tensor holding NaN or Inf, and NonFiniteTensorCount.</summary>
    [Parameter]
    public SwitchParameter CheckValues { get; set; }

    /// <summary>Returns only $true (Safe) or $false per file.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == InputStreamSet)
        {
            ProcessInputStream(InputStream!, AuditStream);
            return;
        }
        // audits run on workers (a folder of small files is a fixed cost per file), rows come out in input order
        foreach (var file in ResolvedPaths())
            Work.Add(() => CheckpointAudit.Audit(file, SafeGlobal ?? [], verifyCrc: !SkipCrc, cancel: Cancellation, checkValues: CheckValues),
                audit => TryFile(file, () => WriteRow(file, audit())));
    }

    protected override void EndProcessing() => EndInputStreams(AuditStream);

    private void AuditStream(Stream stream, string name) =>
        Try(name, () => Write(CheckpointAudit.Audit(stream, name, SafeGlobal ?? [], verifyCrc: !SkipCrc, LoadLimits.Default with { MaxStreamBytes = MaxStreamBytes }, Cancellation, CheckValues)));

    /// <summary>A file's row; a path that could not be opened because nothing is there is PathNotFound, as for the other cmdlets.</summary>
    private void WriteRow(string file, AuditResult result)
    {
        if (result.ErrorId == nameof(TorchLoadErrorReason.InvalidArgument) && IsMissing(file)) WriteError(PathNotFound(file));
        else Write(result);
    }

    private void Write(AuditResult result)
    {
        if (Quiet) WriteObject(result.IsSafe);
        else WriteObject(result);
    }
}
