using TorchLoad.Core.Archive;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Dcp;

/// <summary>
/// A DCP checkpoint folder: recognised by its <c>.metadata</c>, whose index is read and checked against the
/// folder before any payload is read: every item's file is a plain file inside the folder and present, every
/// byte range lies inside its file, no unknown transforms, and every tensor's chunks tile it exactly.
/// torch 2.6 checks none of this (it reads through <c>..</c> and returns uninitialised memory for gaps).
/// </summary>
internal static class DcpFolder
{
    public const string MetadataName = ".metadata";

    /// <summary>A folder, or a folder's <c>.metadata</c>: the checkpoint folder. Anything else is not DCP.</summary>
    public static bool TryResolve(string path, out string folder)
    {
        folder = "";
        if (Directory.Exists(path)) { folder = Path.GetFullPath(path); return true; }
        if (Path.GetFileName(path) == MetadataName && File.Exists(path)) { folder = Path.GetDirectoryName(Path.GetFullPath(path))!; return true; }
        return false;
    }

    /// <summary>Reads and validates the index of <paramref name="folder"/>; reads no payload.</summary>
    public static DcpIndex Open(string folder, TorchLoadOptions options)
    {
        var metadata = Path.Combine(folder, MetadataName);
        if (!File.Exists(metadata))
        {
            string[] rankLocal;
            try { rankLocal = Directory.GetFiles(folder, "__*.metadata"); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { rankLocal = []; }
            if (rankLocal.Length > 0)
                throw new TorchLoadException(TorchLoadErrorReason.UnsupportedFormat,
                    $"'{folder}' has rank-local metadata ({Path.GetFileName(rankLocal[0])}, written by torch 2.9+) and no .metadata; merging rank-local metadata is not implemented");
            var unfinished = File.Exists(metadata + ".tmp") ? " (it has .metadata.tmp: a save that did not finish)" : "";
            throw new TorchLoadException(TorchLoadErrorReason.NotACheckpoint,
                $"'{folder}' is a folder without .metadata{unfinished}, so it is not a DCP checkpoint; give a checkpoint file or a DCP checkpoint folder");
        }
        var index = DcpMetadataReader.Read(folder, metadata, options);
        foreach (var e in index.Entries)
        {
            options.Cancellation.ThrowIfCancellationRequested();
            if (e.IsTensor)
            {
                DcpGeometry.Validate(e);
                foreach (var c in e.Chunks) CheckItem(index, c.Item, e.Fqn);
            }
            else CheckItem(index, e.Item!, e.Fqn);
        }
        return index;
    }

    private static void CheckItem(DcpIndex index, DcpItem item, string fqn)
    {
        if (item.Transforms.Count > 0)
            throw new TorchLoadException(TorchLoadErrorReason.UnsupportedCompression,
                $"DCP item '{fqn}' in {item.File} is stored with transform(s) {string.Join(", ", item.Transforms)} (torch 2.8+, e.g. zstd); TorchLoad does not implement DCP transforms", item.File, item.Offset);
        if (!index.FileSizes.TryGetValue(item.File, out var size))
        {
            CheckRelativePath(item.File, fqn);
            var info = new FileInfo(Path.Combine(index.Folder, item.File));
            if (Directory.Exists(info.FullName))
                throw new TorchLoadException(TorchLoadErrorReason.InvalidRecordName, $"DCP item '{fqn}' names '{item.File}', which is a folder, not a data file", item.File);
            if (!info.Exists)
                throw new TorchLoadException(TorchLoadErrorReason.MissingRecord, $"DCP item '{fqn}' is in '{item.File}', which is not in the checkpoint folder", item.File);
            if (info.LinkTarget is not null)
                throw new TorchLoadException(TorchLoadErrorReason.InvalidRecordName, $"DCP item '{fqn}' names '{item.File}', a link: data files must be plain files inside the folder", item.File);
            size = info.Length;
            index.FileSizes[item.File] = size;
        }
        if (item.Offset < 0 || item.Length <= 0 || item.Offset > size - item.Length)
            throw new TorchLoadException(TorchLoadErrorReason.TruncatedCheckpoint,
                $"DCP item '{fqn}' needs {item.Length} bytes at byte {item.Offset} of '{item.File}', which has {size} bytes", item.File, item.Offset);
    }

    /// <summary>A relative_path must be a plain file name: no separators, no '.', '..', drive letters or control characters.</summary>
    private static void CheckRelativePath(string name, string fqn)
    {
        string? bad = name.Length == 0 ? "it is empty"
            : name is "." or ".." ? $"it is '{name}'"
            : name.IndexOfAny(['/', '\\']) >= 0 ? "it has a path separator (it must name a file inside the checkpoint folder)"
            : name.Contains(':') ? "it has a drive letter or stream name"
            : name.Any(char.IsControl) ? "it has control characters"
            : null;
        if (bad is not null)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidRecordName, $"DCP item '{fqn}' names data file '{name.Replace("\0", "\\0")}': {bad}", ".metadata");
    }
}
