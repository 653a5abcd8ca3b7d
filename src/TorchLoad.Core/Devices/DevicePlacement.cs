using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Devices;

/// <summary>torch's <c>restore_location</c>: where each storage goes after its bytes are read into host memory.</summary>
internal static class DevicePlacement
{
    /// <param name="handlers">LocationRegistry.Handlers, taken once per load (it is read under a lock).</param>
    public static void Restore(TorchStorage storage, MapLocation? map, IReadOnlyList<LocationHandler> handlers)
    {
        switch (map)
        {
            case MapLocation.CallbackMap cb:
                var result = cb.Invoke(storage, storage.Location);
                if (result is null) { Default(storage, storage.Location, handlers); return; }
                if (!ReferenceEquals(result, storage))
                {
                    if (result.Buffer is null) throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, "The -MapLocation scriptblock returned a storage without data.");
                    if (result.ByteLength != storage.ByteLength)
                        throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"The -MapLocation scriptblock returned a storage of {result.ByteLength} bytes for storage {storage.Key} of {storage.ByteLength}.");
                    storage.ReplaceBuffer(result.Buffer);
                }
                return;
            case null:
                Default(storage, storage.Location, handlers);
                return;
            default:
                Default(storage, map.MapTag(storage.Location), handlers);
                return;
        }
    }

    /// <summary>
    /// torch's default_restore_location: the registered handlers in priority order, first non-null
    /// result wins; none means the device is not here (DeviceUnavailable).
    /// </summary>
    public static void Default(TorchStorage storage, string tag, IReadOnlyList<LocationHandler> handlers)
    {
        if (storage.Buffer is null) return; // metadata only
        for (var i = 0; i < handlers.Count; i++)
        {
            var handler = handlers[i];
            var result = handler.Deserializer(storage, tag);
            if (result is null) continue;
            if (!ReferenceEquals(result, storage))
            {
                if (result.Buffer is null || result.ByteLength != storage.ByteLength)
                    throw new TorchLoadException(TorchLoadErrorReason.InvalidArgument, $"Location handler '{handler.Name}' returned a storage that does not match storage {storage.Key}.");
                storage.ReplaceBuffer(result.Buffer);
            }
            if (tag == "meta" && storage.ByteLength > 0 && storage.Buffer is not EmptyBuffer) storage.ReplaceBuffer(new EmptyBuffer(storage.ByteLength, "meta"))?.Dispose();
            return;
        }
        throw Unavailable(tag, $"storage {storage.Key}");
    }

    public static TorchLoadException Unavailable(string tag, string what)
    {
        var type = tag.Split(':')[0];
        var known = DeviceRegistry.List().Select(d => d.Name);
        return new TorchLoadException(TorchLoadErrorReason.DeviceUnavailable,
            $"Attempting to deserialize {what} on device '{tag}', but no such device is available here (available: {string.Join(", ", known)}). " +
            $"If you are running on a machine without {type.ToUpperInvariant()}, use -MapLocation cpu to map your storages to the CPU, or a hashtable such as @{{ '{tag}' = 'cpu' }}.");
    }
}
