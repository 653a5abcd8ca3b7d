using TorchLoad.Core.Archive;
using TorchLoad.Core.Audit;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// Test-TorchCheckpoint for a DCP folder: the verdict comes from <c>.metadata</c> (DCP's class list) and the
/// globals of every item, read in permissive, metadata-only mode (nothing executed, no payload read); the
/// folder checks of <see cref="DcpFolder"/>; each chunk's archive against its declared dtype and shape; and,
/// unless skipped, every record's CRC-32 (the only payload bytes read).
/// </summary>
internal static class DcpAudit
{
    public static AuditResult Audit(string folder, IReadOnlySet<string> allowed, bool verifyCrc, LoadLimits limits, CancellationToken cancel)
    {
        var result = new AuditResult { Path = folder, Format = "dcp" };
        var metadataGlobals = new List<string>();
        var named = new List<string>();
        var modulePids = new List<string>();
        TorchLoadException? failure = null;
        try
        {
            var index = DcpFolder.Open(folder, new TorchLoadOptions
            {
                Limits = limits, Cancellation = cancel, Observer = (kind, name) => { if (kind == "global") metadataGlobals.Add(name); },
            });
            result.PickleProtocol = index.PickleProtocol;
            result.TensorCount = index.Entries.Count(e => e.IsTensor);
            result.StorageCount = index.Entries.Sum(e => e.Chunks.Count);
            result.StorageBytes = index.Entries.Where(e => e.IsTensor).Sum(e => DcpGeometry.Volume(e.Shape) * e.DType!.ElementSize);
            result.RecordCount = index.Entries.Sum(e => e.IsTensor ? e.Chunks.Count : 1);
            var options = new TorchLoadOptions
            {
                WeightsOnly = false, MetadataOnly = true, Limits = limits, Cancellation = cancel,
                Observer = (kind, name) => (kind == "global" ? named : modulePids).Add(name),
            };
            using var files = new DcpFiles(index.Folder);
            foreach (var e in index.Entries)
            {
                cancel.ThrowIfCancellationRequested();
                if (!e.IsTensor)
                {
                    files.LoadItem(e.Item!, $"bytes entry '{e.Fqn}'", options);
                    if (verifyCrc) Crc(files, e.Item!, e.Fqn, result, limits, cancel);
                    continue;
                }
                foreach (var (_, sizes, _, item) in e.Chunks)
                {
                    DcpAssembler.RequireChunkTensor(files.LoadItem(item, $"chunk of '{e.Fqn}'", options).Root, e, sizes, item);
                    if (verifyCrc) Crc(files, item, e.Fqn, result, limits, cancel);
                }
            }
            files.ThrowIfChanged(); // an error row, as for a file: not a verdict about bytes that were never one checkpoint
        }
        catch (Exception e) when (TorchLoader.AsLoadError(e, folder) is { Reason: not (TorchLoadErrorReason.Cancelled or TorchLoadErrorReason.CheckpointChanged) } mapped)
        {
            failure = CheckpointAudit.Failed(result, mapped); // a data file that cannot be read is a row with an id too
        }
        catch (Exception e) when (e is not TorchLoadException && TorchLoader.AsLoadError(e, folder) is { } mapped)
        {
            throw mapped; // cancelled
        }
        CheckpointAudit.Conclude(result, named, modulePids, allowed, failure, metadataGlobals);
        return result;
    }

    private static void Crc(DcpFiles files, DcpItem item, string fqn, AuditResult result, LoadLimits limits, CancellationToken cancel) =>
        CheckpointAudit.VerifyCrcs(new FileSource(files.Get(item.File), item.Offset, item.Length), result, limits, cancel, $"'{fqn}' {item.File}@{item.Offset}: ");
}
