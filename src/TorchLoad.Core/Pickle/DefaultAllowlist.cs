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
    public static readonly IReadOnlyDictionary<string, Entry> Entries = Build();

    /// <summary>What an allowlisted global rebuilds.</summary>
    public sealed record Entry(GlobalKind Kind, object? Payload)
    {
        public static implicit operator Entry((GlobalKind Kind, object? Payload) e) => new(e.Kind, e.Payload);
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
        var t = new Dictionary<string, Entry>(StringComparer.Ordinal)
        {
            ["collections.OrderedDict"] = (GlobalKind.OrderedDict, null),
            ["collections.Counter"] = (GlobalKind.Counter, null),
            ["torch.nn.parameter.Parameter"] = (GlobalKind.ParameterClass, null),
            ["torch.Tensor"] = (GlobalKind.TensorClass, null),
            ["torch.Size"] = (GlobalKind.TorchSize, null),
            ["torch.device"] = (GlobalKind.TorchDevice, null),
            ["torch.serialization._get_layout"] = (GlobalKind.GetLayout, null),
            ["_codecs.encode"] = (GlobalKind.CodecsEncode, null),
            ["builtins.bytearray"] = (GlobalKind.ByteArray, null),
            ["builtins.set"] = (GlobalKind.Set, null),
            ["builtins.complex"] = (GlobalKind.Complex, null),
            ["torch.storage.UntypedStorage"] = (GlobalKind.StorageClass, null),
            ["torch.storage.TypedStorage"] = (GlobalKind.StorageClass, null),
            ["torch._utils._rebuild_tensor"] = (GlobalKind.RebuildTensor, null),
            ["torch._utils._rebuild_tensor_v2"] = (GlobalKind.RebuildTensorV2, null),
            ["torch._utils._rebuild_tensor_v3"] = (GlobalKind.RebuildTensorV3, null),
            ["torch._utils._rebuild_parameter"] = (GlobalKind.RebuildParameter, null),
            ["torch._utils._rebuild_parameter_with_state"] = (GlobalKind.RebuildParameterWithState, null),
            ["torch._utils._rebuild_qtensor"] = (GlobalKind.RebuildQTensor, null),
            ["torch._utils._rebuild_sparse_tensor"] = (GlobalKind.RebuildSparse, null),
            ["torch._utils._rebuild_sparse_csr_tensor"] = (GlobalKind.RebuildSparseCsr, null),
            ["torch._utils._rebuild_meta_tensor_no_storage"] = (GlobalKind.RebuildMeta, null),
            ["torch._utils._rebuild_nested_tensor"] = (GlobalKind.RebuildNested, null),
            ["torch._utils._rebuild_wrapper_subclass"] = (GlobalKind.RebuildWrapperSubclass, null),
            ["torch._utils._rebuild_device_tensor_from_numpy"] = (GlobalKind.RebuildDeviceFromNumpy, null),
            ["torch._utils._rebuild_xla_tensor"] = (GlobalKind.RebuildDeviceFromNumpy, null),
            ["torch._utils._rebuild_device_tensor_from_cpu_tensor"] = (GlobalKind.RebuildDeviceFromCpu, null),
            ["torch._tensor._rebuild_from_type_v2"] = (GlobalKind.RebuildFromTypeV2, null),
        };
        foreach (var dtype in TorchDType.Values)
        {
            if (dtype.StorageClass is { } storage)
            {
                t[$"torch.{storage}"] = (GlobalKind.StorageClass, dtype);
                t[$"torch.cuda.{storage}"] = (GlobalKind.StorageClass, dtype);
            }
        }
        // torch._tensor_classes: the legacy tensor types (no quantized or complex ones)
        foreach (var dtype in TorchDType.Values)
        {
            if (dtype.StorageClass is not { } storageClass || dtype.IsQuantized || dtype.IsComplex) continue;
            var tensorClass = storageClass.Replace("Storage", "Tensor", StringComparison.Ordinal);
            t[$"torch.{tensorClass}"] = (GlobalKind.LegacyTensorClass, dtype);
            t[$"torch.cuda.{tensorClass}"] = (GlobalKind.LegacyTensorClass, dtype);
            t[$"torch.sparse.{tensorClass}"] = (GlobalKind.LegacyTensorClass, dtype);
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
