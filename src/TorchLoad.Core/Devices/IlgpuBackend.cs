using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Devices;

/// <summary>
/// ILGPU accelerators: CUDA devices as <c>cuda:N</c>, and ILGPU's CPU accelerator as
/// <c>ilgpu-cpu</c> so the accelerator path is tested on machines without a GPU. One ILGPU context
/// per process, created on first use under a lock; accelerators are created lazily and kept.
/// </summary>
internal static class IlgpuBackend
{
    private static readonly object Gate = new();
    private static Context? _context;
    private static List<AcceleratorDevice>? _devices;

    public static IEnumerable<DeviceInfo> Devices() => All().Select(d => d.Info);

    public static AcceleratorDevice? Find(string name) => All().FirstOrDefault(d => d.Name == name);

    private static List<AcceleratorDevice> All()
    {
        lock (Gate)
        {
            if (_devices is not null) return _devices;
            var list = new List<AcceleratorDevice>();
            try
            {
                RegisterLibcudaFallback();
                _context = Context.Create(b => b.CPU().Cuda());
                foreach (var d in _context.Devices)
                {
                    if (d is CPUDevice && !list.Any(x => x.Name == "ilgpu-cpu"))
                        list.Add(new AcceleratorDevice(_context, d, "ilgpu-cpu", "cpu", null));
                }
                var cuda = _context.GetCudaDevices();
                for (var i = 0; i < cuda.Count; i++) list.Add(new AcceleratorDevice(_context, cuda[i], $"cuda:{i}", "cuda", i));
            }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or NotSupportedException or InvalidOperationException or BadImageFormatException)
            {
                // no usable ILGPU runtime: only the host remains
            }
            return _devices = list;
        }
    }

    /// <summary>
    /// ILGPU probes <c>libcuda.so</c>, which only the driver's development package provides; GPU hosts
    /// often have just <c>libcuda.so.1</c>. Resolve those names to it when the default probing fails.
    /// </summary>
    private static void RegisterLibcudaFallback()
    {
        if (!OperatingSystem.IsLinux()) return;
        var context = AssemblyLoadContext.GetLoadContext(typeof(Context).Assembly) ?? AssemblyLoadContext.Default;
        context.ResolvingUnmanagedDll += (_, name) =>
            name is "libcuda.so" or "libcuda" or "cuda" or "cuda.so" && NativeLibrary.TryLoad("libcuda.so.1", out var h) ? h : IntPtr.Zero;
    }
}

/// <summary>One ILGPU device, its accelerator made on first use.</summary>
internal sealed class AcceleratorDevice
{
    private readonly Context _context;
    private readonly Device _device;
    private Accelerator? _accelerator;
    private readonly object _gate = new();

    public AcceleratorDevice(Context context, Device device, string name, string type, int? index)
    {
        _context = context;
        _device = device;
        Name = name;
        Info = new DeviceInfo(name, type, index, device.Name, device.MemorySize);
    }

    public string Name { get; }
    public DeviceInfo Info { get; }

    public Accelerator Accelerator
    {
        get
        {
            lock (_gate) return _accelerator ??= _device.CreateAccelerator(_context);
        }
    }

    /// <summary>
    /// Copies a storage's bytes to a new buffer on this device. Host bytes are page-locked in place,
    /// chunk by chunk, and copied by DMA: never a second full host copy. Bytes on another device go
    /// through host memory first.
    /// </summary>
    public unsafe DeviceBuffer Upload(StorageBuffer source)
    {
        if (!source.IsHostAccessible)
        {
            using var host = new HostBuffer(source.Length);
            if (source is DeviceBuffer other) other.DownloadTo(host);
            else source.CopyTo(0, host.Pointer, source.Length); // in chunks: an -Mmap storage may hold more than 2 GiB
            return Upload(host);
        }
        var target = new DeviceBuffer(this, Accelerator.Allocate1D<byte>(Math.Max(source.Length, 1)), source.Length);
        try
        {
            for (long done = 0; done < source.Length;)
            {
                var n = Math.Min(TransferChunk, source.Length - done);
                CopyChunk(source.Pointer + done, target.Memory.View.SubView(done, n), toDevice: true);
                done += n;
            }
            return target;
        }
        catch
        {
            target.Dispose();
            throw;
        }
    }

    internal const long TransferChunk = 64L << 20;

    /// <summary>One DMA transfer between pinned host memory and a device view, page-locked for its duration.</summary>
    internal unsafe void CopyChunk(byte* host, ArrayView1D<byte, Stride1D.Dense> view, bool toDevice)
    {
        // one transfer at a time per device: its default stream is shared by every runspace of the process
        lock (TransferGate)
            CopyChunkLocked(Accelerator, host, view, toDevice);
    }

    internal object TransferGate { get; } = new();

    private static unsafe void CopyChunkLocked(Accelerator acc, byte* host, ArrayView1D<byte, Stride1D.Dense> view, bool toDevice)
    {
        try
        {
            using var scope = acc.CreatePageLockFromPinned<byte>((IntPtr)host, view.Length);
            if (toDevice) view.CopyFromPageLockedAsync(acc.DefaultStream, scope);
            else view.CopyToPageLockedAsync(acc.DefaultStream, scope);
            acc.Synchronize();
        }
        catch (NotSupportedException)
        {
            // accelerators without page locking (ILGPU's CPU accelerator): a plain synchronous copy
            if (toDevice) view.CopyFromCPU(ref *host, view.Length);
            else view.CopyToCPU(ref *host, view.Length);
            acc.Synchronize();
        }
    }
}

/// <summary>Bytes in accelerator memory; freed on Dispose (or by the finalizer).</summary>
internal sealed class DeviceBuffer : StorageBuffer
{
    private readonly AcceleratorDevice _device;

    public DeviceBuffer(AcceleratorDevice device, MemoryBuffer1D<byte, Stride1D.Dense> memory, long length) : base(length)
    {
        _device = device;
        Memory = memory;
    }

    public MemoryBuffer1D<byte, Stride1D.Dense> Memory { get; }
    public override string Device => _device.Name;
    public override bool IsHostAccessible => false;
    public override unsafe byte* Pointer => throw new InvalidOperationException($"Storage bytes on {Device} are not in host memory.");

    public override unsafe void CopyTo(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length - destination.Length) throw new ArgumentOutOfRangeException(nameof(offset));
        if (destination.Length == 0) return;
        var acc = _device.Accelerator;
        lock (_device.TransferGate)
        {
            fixed (byte* p = destination)
                Memory.View.SubView(offset, destination.Length).CopyToCPU(ref *p, destination.Length);
            acc.Synchronize();
        }
    }

    /// <summary>All bytes back to host memory by DMA into the (page-locked, chunk by chunk) target.</summary>
    public unsafe void DownloadTo(HostBuffer target)
    {
        if (target.Length != Length) throw new ArgumentException("The target buffer has another length.", nameof(target));
        for (long done = 0; done < Length;)
        {
            var n = Math.Min(AcceleratorDevice.TransferChunk, Length - done);
            _device.CopyChunk(target.Pointer + done, Memory.View.SubView(done, n), toDevice: false);
            done += n;
        }
    }

    ~DeviceBuffer() => ReleaseIfNotDisposed();

    protected override void Release() => Memory.Dispose();
}
