using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Devices;

/// <summary>A device storages can live on.</summary>
public sealed record DeviceInfo(string Name, string Type, int? Index, string Description, long MemoryBytes);

/// <summary>
/// The devices of this process: <c>cpu</c> always; <c>ilgpu-cpu</c> (ILGPU's CPU accelerator, for
/// testing the accelerator path) and <c>cuda:N</c> through <see cref="IlgpuBackend"/>.
/// </summary>
public static class DeviceRegistry
{
    public static IReadOnlyList<DeviceInfo> List()
    {
        var list = new List<DeviceInfo> { new("cpu", "cpu", null, "Host memory", GC.GetGCMemoryInfo().TotalAvailableMemoryBytes) };
        list.AddRange(IlgpuBackend.Devices());
        return list;
    }

    public static bool IsAvailable(string device)
    {
        if (device == "cpu") return true;
        if (!TorchDevice.TryParse(device, out var d)) return false;
        return IlgpuBackend.Find(Normalize(d)) is not null;
    }

    private static string Normalize(TorchDevice d) => d.Type == "cuda" && d.Index is null ? "cuda:0" : d.ToString();

    /// <summary>Moves a storage's bytes to <paramref name="device"/> (host, or an accelerator); tensors follow because they hold the storage.</summary>
    public static void MoveTo(TorchStorage storage, string device)
    {
        if (storage.ViewOf is { } root) { MoveTo(root, device); return; } // views follow their root
        var buffer = storage.RequireBuffer();
        if (device == "cpu")
        {
            if (buffer.Device == "cpu") return; // host memory, or an -Mmap storage read from its file (torch: .to('cpu') of an mmap tensor is itself)
            var host = new HostBuffer(storage.ByteLength);
            if (buffer is DeviceBuffer onDevice) onDevice.DownloadTo(host);
            else if (storage.ByteLength > 0) unsafe { buffer.CopyTo(0, host.Pointer, storage.ByteLength); }
            storage.ReplaceBuffer(host)?.Dispose();
            return;
        }
        if (!TorchDevice.TryParse(device, out var d) || IlgpuBackend.Find(Normalize(d)) is not { } accelerator)
            throw DevicePlacement.Unavailable(device, $"storage {storage.Key}");
        if (buffer.Device == accelerator.Name) return;
        var moved = accelerator.Upload(buffer);
        storage.ReplaceBuffer(moved)?.Dispose();
    }
}
