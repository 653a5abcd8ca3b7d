using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Devices;

/// <summary>torch.load's <c>map_location</c> in its three forms.</summary>
public abstract class MapLocation
{
    /// <summary>The device a saved tag restores to before default placement (string/dict forms).</summary>
    internal abstract string MapTag(string savedTag);

    /// <summary>Every storage to one device (<c>'cpu'</c>, <c>'cuda:1'</c>, a torch.device).</summary>
    public static MapLocation ToDevice(string device) => new DeviceMap(device);

    /// <summary>Saved tags remapped (<c>{'cuda:1': 'cuda:0'}</c>); unmapped tags keep their device.</summary>
    public static MapLocation Remap(IReadOnlyDictionary<string, string> tags) => new TagMap(tags);

    /// <summary>
    /// Called once per storage with the storage (in host memory) and its saved tag; a non-null
    /// result is used as is, null means default placement.
    /// </summary>
    public static MapLocation Callback(Func<TorchStorage, string, TorchStorage?> callback) => new CallbackMap(callback);

    internal sealed class DeviceMap(string device) : MapLocation
    {
        public string Device { get; } = device;
        internal override string MapTag(string savedTag) => Device;
        public override string ToString() => Device;
    }

    internal sealed class TagMap(IReadOnlyDictionary<string, string> tags) : MapLocation
    {
        public IReadOnlyDictionary<string, string> Tags { get; } = tags;
        internal override string MapTag(string savedTag) => Tags.TryGetValue(savedTag, out var t) ? t : savedTag;
    }

    internal sealed class CallbackMap(Func<TorchStorage, string, TorchStorage?> callback) : MapLocation
    {
        public Func<TorchStorage, string, TorchStorage?> Invoke { get; } = callback;
        internal override string MapTag(string savedTag) =>
            throw new Errors.TorchLoadException(Errors.TorchLoadErrorReason.InvalidArgument,
                "A scriptblock -MapLocation cannot place tensors that are rebuilt directly on a device (XLA-style or wrapper subclasses); use a device string or a hashtable.");
    }
}
