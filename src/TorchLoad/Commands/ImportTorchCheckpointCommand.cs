using System.Management.Automation;
using TorchLoad.Core;
using TorchLoad.Core.Errors;

namespace TorchLoad.Commands;

/// <summary>torch.load for PowerShell: returns the unpickled root object of each checkpoint file.</summary>
[Cmdlet(VerbsData.Import, "TorchCheckpoint", DefaultParameterSetName = PathSet)]
[OutputType(typeof(object))]
public sealed class ImportTorchCheckpointCommand : CheckpointFileCmdletBase
{
    /// <summary>torch's weights_only (default true): only allowlisted globals resolve.</summary>
    [Parameter]
    public bool WeightsOnly { get; set; } = true;

    /// <summary>Extra globals allowed for this call.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(SafeGlobalCompleter))]
    public string[]? SafeGlobal { get; set; }

    /// <summary>torch's map_location: device string, hashtable of tags or scriptblock.</summary>
    [Parameter]
    [ArgumentCompleter(typeof(DeviceCompleter))]
    public object? MapLocation { get; set; }

    /// <summary>How Python 2 strings decode.</summary>
    [Parameter]
    [ValidateSet("utf-8", "latin1", "ascii", "bytes")]
    public string Encoding { get; set; } = "utf-8";

    /// <summary>Leave storage bytes in the file, read when used (zip and safetensors, stored records); not with -InputStream.</summary>
    [Parameter]
    public SwitchParameter Mmap { get; set; }

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxNestingDepth { get; set; } = LoadLimits.Default.MaxNestingDepth;

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxMemoEntries { get; set; } = LoadLimits.Default.MaxMemoEntries;

    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxStringBytes { get; set; } = LoadLimits.Default.MaxStringBytes;

    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxContainerItems { get; set; } = LoadLimits.Default.MaxContainerItems;

    [Parameter]
    [ValidateRange(1L, long.MaxValue)]
    public long MaxInflateRatio { get; set; } = LoadLimits.Default.MaxInflateRatio;

    private TorchLoadOptions? _options;

    protected override void BeginProcessing() =>
        _options = new TorchLoadOptions
        {
            WeightsOnly = WeightsOnly,
            SafeGlobals = SafeGlobal ?? [],
            Encoding = EncodingOption.Parse(Encoding),
            MapLocation = ConvertMapLocation(MapLocation),
            Mmap = Mmap,
            Limits = LoadLimits.Default with
            {
                MaxNestingDepth = MaxNestingDepth, MaxMemoEntries = MaxMemoEntries, MaxStringBytes = MaxStringBytes,
                MaxContainerItems = MaxContainerItems, MaxInflateRatio = MaxInflateRatio, MaxStreamBytes = MaxStreamBytes,
            },
            Cancellation = Cancellation,
        };

    protected override void ProcessRecord()
    {
        if (ParameterSetName == InputStreamSet)
        {
            ProcessInputStream(InputStream!, LoadStream);
            return;
        }
        foreach (var file in ResolvedPaths())
        {
            if (LoadsOnAWorker(file))
            {
                Work.Add(() => TorchLoader.Load(file, _options), checkpoint => TryFile(file, () => WriteObject(checkpoint().Root, enumerateCollection: false)));
                continue;
            }
            Work.WriteReady();
            TryFile(file, () => WriteObject(TorchLoader.Load(file, WithProgress(file)).Root, enumerateCollection: false));
        }
    }

    protected override void EndProcessing() => EndInputStreams(LoadStream);

    // Small files load on workers, in input order: a folder of small checkpoints is a fixed cost per file. Large
    // ones load here (their storages are read in parallel already, progress is written from this thread, and
    // loading several at once would hold several in memory); scriptblocks (-MapLocation, Register-TorchLocationHandler)
    // must run on this thread, which owns their runspace.
    private const long WorkerFileBytes = 16 << 20;

    private bool LoadsOnAWorker(string file)
    {
        if (MapLocation is not (null or string) || Core.Devices.LocationRegistry.HasUserHandlers) return false;
        try
        {
            var info = new FileInfo(file);
            return info.Exists && info.Length <= WorkerFileBytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return false;
        }
    }

    private void LoadStream(Stream stream, string name)
    {
        RefuseMmapWithStream(Mmap);
        Try(name, () => WriteObject(TorchLoader.Load(stream, WithProgress(name), name).Root, enumerateCollection: false));
    }

    private TorchLoadOptions WithProgress(string name)
    {
        var activity = $"Loading {System.IO.Path.GetFileName(name)}";
        return _options! with
        {
            Progress = (done, total) =>
            {
                if (total < 64 << 20) return;
                WriteProgress(new ProgressRecord(1, activity, $"{done >> 20} of {total >> 20} MiB") { PercentComplete = (int)(done * 100 / Math.Max(total, 1)) });
            },
        };
    }
}

internal static class EncodingOption
{
    public static PickleStringEncoding Parse(string name) => name.ToLowerInvariant() switch
    {
        "latin1" or "latin-1" => PickleStringEncoding.Latin1,
        "ascii" => PickleStringEncoding.Ascii,
        "bytes" => PickleStringEncoding.Bytes,
        _ => PickleStringEncoding.Utf8,
    };
}
