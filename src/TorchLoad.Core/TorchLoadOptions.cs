using TorchLoad.Core.Devices;

namespace TorchLoad.Core;

/// <summary>Immutable settings of one load (torch.load's keyword arguments and TorchLoad's limits).</summary>
public sealed record TorchLoadOptions
{
    /// <summary>torch's <c>weights_only</c>: only allowlisted globals resolve. Default true.</summary>
    public bool WeightsOnly { get; init; } = true;

    /// <summary>Extra <c>module.Name</c> globals allowed for this load only (besides the process-wide ones).</summary>
    public IReadOnlyCollection<string> SafeGlobals { get; init; } = [];

    public PickleStringEncoding Encoding { get; init; } = PickleStringEncoding.Utf8;

    public LoadLimits Limits { get; init; } = LoadLimits.Default;

    /// <summary>torch's <c>map_location</c>; null restores every storage to its saved device.</summary>
    public MapLocation? MapLocation { get; init; }

    /// <summary>torch's <c>mmap=True</c>: storages are views of a copy-on-write mapping of the file.</summary>
    public bool Mmap { get; init; }

    /// <summary>Read the pickle only: storages carry metadata and file offsets, no bytes.</summary>
    public bool MetadataOnly { get; init; }

    /// <summary>Called with (bytes done, bytes total) while storage bytes are read.</summary>
    public Action<long, long>? Progress { get; init; }

    public CancellationToken Cancellation { get; init; }

    /// <summary>
    /// Told about everything a pickle names, as it is met (kind <c>global</c> with <c>module.name</c>, or
    /// <c>module-persistent-id</c>), even when the load fails later: audits use it to report what a file asks for.
    /// </summary>
    public Action<string, string>? Observer { get; init; }
}
