using System.Collections.Frozen;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// torch 2.10's default weights_only allowlist (spec 9.1), as data: <c>module.name</c> to what it
/// rebuilds. Plus the 1.13-era <c>_rebuild_sparse_csr_tensor</c> (TorchLoad policy). Nothing here
/// is looked up by reflection; a name not in this table (or the user's) is refused in safe mode.
/// </summary>
internal static class DefaultAllowlist
{
    public static readonly FrozenDictionary<string, (GlobalKind Kind, object? Payload)> Entries = Build().ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>Pure-data builtins that permissive mode rebuilds as values instead of inert objects.</summary>
    public static readonly FrozenDictionary<string, GlobalKind> PermissiveValues = new Dictionary<string, GlobalKind>
    {
        ["builtins.frozenset"] = GlobalKind.FrozenSet,
        ["builtins.bytes"] = GlobalKind.Bytes,
        ["copyreg._reconstructor"] = GlobalKind.Reconstructor,
        ["copyreg.__newobj__"] = GlobalKind.NewObjHelper,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static Dictionary<string, (GlobalKind, object?)> Build()
    {
        var t = new Dictionary<string, (GlobalKind, object?)>(StringComparer.Ordinal)
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
        foreach (var (storageClass, dtype) in LegacyTensorTypes)
        {
            var tensorClass = storageClass.Replace("Storage", "Tensor", StringComparison.Ordinal);
            t[$"torch.{tensorClass}"] = (GlobalKind.LegacyTensorClass, dtype);
            t[$"torch.cuda.{tensorClass}"] = (GlobalKind.LegacyTensorClass, dtype);
            t[$"torch.sparse.{tensorClass}"] = (GlobalKind.LegacyTensorClass, dtype);
        }
        return t;
    }

    // torch._tensor_classes: the legacy tensor types (no quantized or complex ones).
    private static IEnumerable<(string, TorchDType)> LegacyTensorTypes =>
        TorchDType.Values.Where(d => d.StorageClass is not null && !d.IsQuantized && !d.IsComplex).Select(d => (d.StorageClass!, d));

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
