using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Devices;

/// <summary>One location handler: torch's register_package triple.</summary>
/// <param name="Priority">Lower runs first (torch's built-ins: cpu 10, cuda 20, mps 21, meta 22, ...).</param>
/// <param name="Tagger">Names the location of a storage (null: not this handler's).</param>
/// <param name="Deserializer">Restores a host storage saved with a tag; returns the storage to use, or null when the tag is not its.</param>
public sealed record LocationHandler(int Priority, string Name, Func<TorchStorage, string?>? Tagger, Func<TorchStorage, string, TorchStorage?> Deserializer);

/// <summary>
/// torch.serialization.register_package: the handlers default placement walks in priority order,
/// first non-null result wins. Process-wide; owned by this class, every access under its lock;
/// loads read a snapshot.
/// </summary>
public static class LocationRegistry
{
    private static readonly object Gate = new();
    private static readonly IReadOnlyList<LocationHandler> BuiltIns =
    [
        new(10, "cpu", s => s.Device == "cpu" ? "cpu" : null, (s, tag) => tag == "cpu" ? s : null),
        new(20, "ilgpu", s => s.Device == "cpu" ? null : s.Device, (s, tag) =>
        {
            if (!TorchDevice.TryParse(tag, out var d) || !(d.Type is "cuda" or "ilgpu-cpu")) return null;
            var name = d.Type == "cuda" && d.Index is null ? "cuda:0" : d.ToString();
            if (!DeviceRegistry.IsAvailable(name)) return null;
            DeviceRegistry.MoveTo(s, name);
            return s;
        }),
        new(22, "meta", null, (s, tag) => tag == "meta" ? s : null),
    ];

    private static IReadOnlyList<LocationHandler> _handlers = BuiltIns; // replaced, never changed

    public static IReadOnlyList<LocationHandler> Handlers
    {
        get { lock (Gate) return _handlers; }
    }

    /// <summary>True once a handler was registered (until <see cref="Reset"/>): user handlers may be PowerShell scriptblocks, which run only on the thread that owns their runspace.</summary>
    public static bool HasUserHandlers => Handlers.Count > BuiltIns.Count;

    /// <summary>Adds a handler and keeps the list sorted by priority (stable: equal priorities keep registration order).</summary>
    public static void Register(LocationHandler handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (Gate) _handlers = _handlers.Append(handler).OrderBy(h => h.Priority).ToList();
    }

    /// <summary>Removes user handlers (built-ins stay).</summary>
    public static void Reset()
    {
        lock (Gate) _handlers = BuiltIns;
    }

    /// <summary>torch's location_tag: the first tagger that names the storage.</summary>
    public static string? Tag(TorchStorage storage) => Handlers.Select(h => h.Tagger?.Invoke(storage)).FirstOrDefault(t => t is not null);
}
