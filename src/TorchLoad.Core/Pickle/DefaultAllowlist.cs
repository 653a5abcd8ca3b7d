using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// torch 2.10's default weights_only allowlist (spec 9.1), as data: <c>module.name</c> to what it
/// rebuilds. Plus the 1.13-era <c>_rebuild_sparse_csr_tensor</c> (TorchLoad policy). Nothing here
/// is looked up by reflection; a name not in this table (or the user's) is refused in safe mode.
/// </summary>
internal static class DefaultAllowlist
{
    // A plain dictionary of reference types, never written after this: its code is precompiled in the framework,
    // where a FrozenDictionary over a value tuple was built and JIT-compiled on each process's first load (~35 ms
    // of a one-shot command). Concurrent reads of a dictionary nobody writes are safe.
    private static readonly Dictionary<string, Entry> ByName = Build();
    public static IReadOnlyDictionary<string, Entry> Entries => ByName;
#if NET9_0_OR_GREATER
    private static readonly Dictionary<string, Entry>.AlternateLookup<ReadOnlySpan<char>> ByNameSpan = ByName.GetAlternateLookup<ReadOnlySpan<char>>();
#endif

    /// <summary>What an allowlisted global rebuilds, and the one <see cref="PyGlobal"/> (immutable) that stands for it in every load.</summary>
    public sealed class Entry
    {
        internal Entry(string fullName, GlobalKind kind, object? payload)
        {
            var dot = fullName.LastIndexOf('.'); // no allowlisted name has a dot of its own
            (FullName, Kind, Payload) = (fullName, kind, payload);
            Global = new PyGlobal(fullName[..dot], fullName[(dot + 1)..], kind, payload);
        }

        /// <summary><c>module.name</c>, the key.</summary>
        public string FullName { get; }
        public GlobalKind Kind { get; }
        public object? Payload { get; }
        public PyGlobal Global { get; }
    }

    /// <summary>The entry of <c>module.name</c>, found without making that string (every GLOBAL of every load asks).</summary>
    public static Entry? Find(string module, string name)
    {
#if NET9_0_OR_GREATER
        var length = module.Length + 1 + name.Length;
        if (length <= 256)
        {
            Span<char> full = stackalloc char[length];
            module.CopyTo(full);
            full[module.Length] = '.';
            name.CopyTo(full[(module.Length + 1)..]);
            return ByNameSpan.TryGetValue(full, out var found) ? found : null;
        }
#endif
        return ByName.TryGetValue($"{module}.{name}", out var entry) ? entry : null;
    }

    /// <summary>Pure-data builtins that permissive mode rebuilds as values instead of inert objects.</summary>
    public static bool TryPermissiveValue(string fullName, out GlobalKind kind)
    {
        GlobalKind? found = fullName switch
        {
            "builtins.frozenset" => GlobalKind.FrozenSet,
            "builtins.bytes" => GlobalKind.Bytes,
            "copyreg._reconstructor" => GlobalKind.Reconstructor,
            "copyreg.__newobj__" => GlobalKind.NewObjHelper,
            _ => null,
        };
        kind = found.GetValueOrDefault();
        return found is not null;
    }

    private static Dictionary<string, Entry> Build()
    {
        var t = new Dictionary<string, Entry>(StringComparer.Ordinal);
        void Add(string name, GlobalKind kind, object? payload = null) => t[name] = new Entry(name, kind, payload);

        Add("collections.OrderedDict", GlobalKind.OrderedDict);
        Add("collections.Counter", GlobalKind.Counter);
        Add("torch.nn.parameter.Parameter", GlobalKind.ParameterClass);
        Add("torch.Tensor", GlobalKind.TensorClass);
        Add("torch.Size", GlobalKind.TorchSize);
        Add("torch.device", GlobalKind.TorchDevice);
        Add("torch.serialization._get_layout", GlobalKind.GetLayout);
        Add("_codecs.encode", GlobalKind.CodecsEncode);
        Add("builtins.bytearray", GlobalKind.ByteArray);
        Add("builtins.set", GlobalKind.Set);
        Add("builtins.complex", GlobalKind.Complex);
        Add("torch.storage.UntypedStorage", GlobalKind.StorageClass);
        Add("torch.storage.TypedStorage", GlobalKind.StorageClass);
        Add("torch._utils._rebuild_tensor", GlobalKind.RebuildTensor);
        Add("torch._utils._rebuild_tensor_v2", GlobalKind.RebuildTensorV2);
        Add("torch._utils._rebuild_tensor_v3", GlobalKind.RebuildTensorV3);
        Add("torch._utils._rebuild_parameter", GlobalKind.RebuildParameter);
        Add("torch._utils._rebuild_parameter_with_state", GlobalKind.RebuildParameterWithState);
        Add("torch._utils._rebuild_qtensor", GlobalKind.RebuildQTensor);
        Add("torch._utils._rebuild_sparse_tensor", GlobalKind.RebuildSparse);
        Add("torch._utils._rebuild_sparse_csr_tensor", GlobalKind.RebuildSparseCsr);
        Add("torch._utils._rebuild_meta_tensor_no_storage", GlobalKind.RebuildMeta);
        Add("torch._utils._rebuild_nested_tensor", GlobalKind.RebuildNested);
        Add("torch._utils._rebuild_wrapper_subclass", GlobalKind.RebuildWrapperSubclass);
        Add("torch._utils._rebuild_device_tensor_from_numpy", GlobalKind.RebuildDeviceFromNumpy);
        Add("torch._utils._rebuild_xla_tensor", GlobalKind.RebuildDeviceFromNumpy);
        Add("torch._utils._rebuild_device_tensor_from_cpu_tensor", GlobalKind.RebuildDeviceFromCpu);
        Add("torch._tensor._rebuild_from_type_v2", GlobalKind.RebuildFromTypeV2);
        foreach (var dtype in TorchDType.Values)
        {
            if (dtype.StorageClass is { } storage)
            {
                Add($"torch.{storage}", GlobalKind.StorageClass, dtype);
                Add($"torch.cuda.{storage}", GlobalKind.StorageClass, dtype);
            }
        }
        // torch._tensor_classes: the legacy tensor types (no quantized or complex ones)
        foreach (var dtype in TorchDType.Values)
        {
            if (dtype.StorageClass is not { } storageClass || dtype.IsQuantized || dtype.IsComplex) continue;
            var tensorClass = storageClass.Replace("Storage", "Tensor", StringComparison.Ordinal);
            Add($"torch.{tensorClass}", GlobalKind.LegacyTensorClass, dtype);
            Add($"torch.cuda.{tensorClass}", GlobalKind.LegacyTensorClass, dtype);
            Add($"torch.sparse.{tensorClass}", GlobalKind.LegacyTensorClass, dtype);
        }
        return t;
    }

    /// <summary>dtype and qscheme globals (<c>torch.float32</c>, <c>torch.per_tensor_affine</c>) resolve to values.</summary>
    public static bool TryTorchValue(string module, string name, out object value)
    {
        value = null!;
        if (module != "torch") return false;
        if (TorchDType.TryFromName(name, out var dtype)) { value = dtype; return true; }
        if (TorchDType.IsShellDTypeName(name)) { value = new ShellDType(name); return true; }
        if (TorchQScheme.TryFromName(name, out var scheme)) { value = scheme; return true; }
        return false;
    }
}

/// <summary>uint1..7 / int1..7: valid dtype globals that no plain tensor can have (spec 6.5).</summary>
public sealed class ShellDType(string name)
{
    public string Name { get; } = name;
    public override string ToString() => Name;
}
