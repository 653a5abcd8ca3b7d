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

    /// <summary>Copies host (or another device's) bytes to a new buffer on this device, through a bounded page-locked staging buffer.</summary>
    public unsafe DeviceBuffer Upload(StorageBuffer source)
    {
        var acc = Accelerator;
        var target = new DeviceBuffer(this, acc.Allocate1D<byte>(Math.Max(source.Length, 1)), source.Length);
        try
        {
            const int Chunk = 64 << 20;
            var staging = GC.AllocateUninitializedArray<byte>((int)Math.Min(Chunk, Math.Max(source.Length, 1)), pinned: true);
            for (long done = 0; done < source.Length;)
            {
                var n = (int)Math.Min(staging.Length, source.Length - done);
                if (source.IsHostAccessible)
                    target.Memory.View.SubView(done, n).CopyFromCPU(ref *(source.Pointer + done), n);
                else
                {
                    source.CopyTo(done, staging.AsSpan(0, n));
                    target.Memory.View.SubView(done, n).CopyFromCPU(ref staging[0], n);
                }
                done += n;
            }
            acc.Synchronize();
            return target;
        }
        catch
        {
            target.Dispose();
            throw;
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
        fixed (byte* p = destination)
            Memory.View.SubView(offset, destination.Length).CopyToCPU(ref *p, destination.Length);
        _device.Accelerator.Synchronize();
    }

    protected override void Release() => Memory.Dispose();
}
