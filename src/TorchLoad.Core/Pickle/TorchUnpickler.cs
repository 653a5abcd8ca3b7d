using System.Numerics;
using System.Text;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Tensors;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// torch.load's unpickler policy: which globals resolve (safe mode: the default allowlist plus the
/// user's; permissive: everything, as inert objects), what BUILD / SETITEM / APPEND may touch, and
/// how torch's rebuild functions become <see cref="TorchTensor"/>s. Nothing is ever imported or run.
/// </summary>
internal sealed class TorchUnpickler : IPickleHost
{
    private readonly bool _weightsOnly;
    private readonly IReadOnlySet<string> _userAllowed;
    private readonly Func<object?, object?> _persistentLoad;
    private readonly LoadLimits _limits;
    private readonly Func<string, string>? _mapDevice;
    private readonly Action<string, string>? _observer;

    public TorchUnpickler(bool weightsOnly, IReadOnlySet<string> userAllowed, LoadLimits limits,
        Func<object?, object?> persistentLoad, Func<string, string>? mapDevice, Action<string, string>? observer = null)
    {
        _observer = observer;
        _weightsOnly = weightsOnly;
        _userAllowed = userAllowed;
        _limits = limits;
        _persistentLoad = persistentLoad;
        _mapDevice = mapDevice;
    }

    /// <summary>Every dense tensor view built, when <see cref="KeepTensors"/> (byte order correction needs the dtype that views each storage).</summary>
    public List<TorchTensor> Tensors { get; } = [];

    /// <summary>Set by a reader of a big-endian file before the pickle runs; otherwise views are not listed.</summary>
    public bool KeepTensors { get; set; }

    /// <summary>Sparse tensors built so far; their indices are validated once storage bytes are in.</summary>
    public List<TorchTensor> SparseTensors { get; } = [];

    /// <summary>Tensors rebuilt directly on a device (meta excluded), to check that the device exists.</summary>
    public List<TorchTensor> DeviceTensors { get; } = [];

    /// <summary>Every global the pickle named, as <c>module.name</c> after renames, each once, in order of first use.</summary>
    public IReadOnlyList<string> GlobalsSeen => _globals;

    private readonly List<string> _globals = [];
    private HashSet<string>? _globalSet; // past a dozen names (a pickle names a few: torch memoizes each global)

    private void Saw(string full)
    {
        if (_globals.Count < 12 ? _globals.Contains(full) : !(_globalSet ??= new(_globals, StringComparer.Ordinal)).Add(full)) return;
        _globals.Add(full);
    }

    // ------------------------------------------------------------------ globals

    // Hot loop: JIT-compiled fully optimized on first use rather than run from the precompiled image (measured:
    // ~3 ms faster on a 20,000-tensor load, for ~20 ms of JIT once per process; audits load many files).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public object ResolveGlobal(string rawModule, string rawName)
    {
        var (module, name) = GlobalName.Map(rawModule, rawName);
        var entry = DefaultAllowlist.Find(module, name);
        var full = entry?.FullName ?? $"{module}.{name}"; // an allowlisted name is the allowlist's string, not a new one
        Saw(full);
        _observer?.Invoke("global", full);
        if (DefaultAllowlist.TryTorchValue(module, name, out var value)) return value;
        if (entry is not null) return entry.Global;
        if (_weightsOnly)
        {
            if (GlobalName.IsBlockedModule(module))
                throw new TorchLoadException(TorchLoadErrorReason.UnsafeGlobal,
                    $"Weights only load failed: the pickle asks for GLOBAL {full}, whose module '{module}' is blocked; it can never be allowed.") { GlobalName = full };
            if (!_userAllowed.Contains(full))
                throw new TorchLoadException(TorchLoadErrorReason.UnsafeGlobal,
                    $"Weights only load failed: GLOBAL {full} is not an allowed global by default. If you trust this file, allow it with " +
                    $"-SafeGlobal '{full}' (or Add-TorchSafeGlobal '{full}'), or load with -WeightsOnly:$false, which turns unknown classes into inert objects and still executes nothing.")
                { GlobalName = full };
            return new PyGlobal(module, name);
        }
        if (DefaultAllowlist.TryPermissiveValue(full, out var kind)) return new PyGlobal(module, name, kind, null);
        return new PyGlobal(module, name);
    }

    public object? PersistentLoad(object? pid) => _persistentLoad(pid);

    // One array per tuple length, reused: the readers' persistent loads take a tuple's items and never keep the tuple
    private readonly object?[]?[] _pidScratch = new object?[]?[8];

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public object? PersistentLoadTuple(ReadOnlySpan<object?> pid)
    {
        var tuple = pid.Length < _pidScratch.Length ? _pidScratch[pid.Length] ??= new object?[pid.Length] : new object?[pid.Length];
        pid.CopyTo(tuple);
        try { return _persistentLoad(tuple); }
        finally { Array.Clear(tuple); }
    }

    // ------------------------------------------------------------------ calls

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public object? Reduce(object? callable, ReadOnlySpan<object?> args)
    {
        if (callable is PyObject called && !_weightsOnly)
            return new PyObject(called.ClassName, args.ToArray(), "call") { Callee = called }; // calling what a call returned: still only recorded
        if (callable is not PyGlobal g)
            throw Malformed($"REDUCE can only call a class or function named by GLOBAL, not {Describe(callable)}");
        switch (g.Kind)
        {
            case GlobalKind.Inert: return new PyObject(g.ClassName, args.ToArray(), "call");
            case GlobalKind.OrderedDict: return NewDict("collections.OrderedDict", args);
            case GlobalKind.Counter: return NewDict("collections.Counter", args);
            case GlobalKind.Set: return NewSet(args, frozen: false);
            case GlobalKind.FrozenSet: return NewSet(args, frozen: true);
            case GlobalKind.ByteArray:
            case GlobalKind.Bytes: return NewBytes(args);
            case GlobalKind.Complex:
                return new Complex(args.Length > 0 ? ToDouble(args[0], "complex") : 0, args.Length > 1 ? ToDouble(args[1], "complex") : 0);
            case GlobalKind.CodecsEncode: return Encode(args);
            case GlobalKind.TorchSize:
                Arity(g, args, 1, 1);
                return args[0] is null ? Array.Empty<long>() : ToLongs(args[0], "torch.Size");
            case GlobalKind.TorchDevice: return NewDevice(args);
            case GlobalKind.GetLayout:
                Arity(g, args, 1, 1);
                return args[0] is string ls && TorchLayout.TryParse(ls, out var layout) ? layout : throw Malformed($"unknown layout {Describe(args[0])}");
            case GlobalKind.RebuildTensor: Arity(g, args, 4, 4); return RebuildDense(args, TensorDType(args[0]), null);
            case GlobalKind.RebuildTensorV2: Arity(g, args, 6, 7); return RebuildDense(args, TensorDType(args[0]), args.Length > 6 ? args[6] : null);
            case GlobalKind.RebuildTensorV3:
                Arity(g, args, 7, 8);
                return RebuildDense(args, args[6] as TorchDType ?? throw Malformed($"_rebuild_tensor_v3 needs a dtype, got {Describe(args[6])}"), args.Length > 7 ? args[7] : null);
            case GlobalKind.RebuildParameter: Arity(g, args, 3, 3); return AsParameter(args[0], args[1], null);
            case GlobalKind.RebuildParameterWithState: Arity(g, args, 4, 4); return AsParameter(args[0], args[1], args[3]);
            case GlobalKind.RebuildQTensor: Arity(g, args, 7, 7); return RebuildQuantized(args);
            case GlobalKind.RebuildSparse:
            case GlobalKind.RebuildSparseCsr: Arity(g, args, 2, 2); return RebuildSparse(args);
            case GlobalKind.RebuildMeta: Arity(g, args, 4, 4); return RebuildMeta(args);
            case GlobalKind.RebuildNested: Arity(g, args, 4, 4); return RebuildNested(args);
            case GlobalKind.RebuildDeviceFromCpu: Arity(g, args, 4, 4); return RebuildDeviceFromCpu(args);
            case GlobalKind.RebuildWrapperSubclass: Arity(g, args, 8, 8); return RebuildWrapperSubclass(args);
            case GlobalKind.RebuildFromTypeV2: Arity(g, args, 4, 4); return RebuildFromType(args);
            case GlobalKind.Reconstructor:
                // copyreg._reconstructor(cls, base, state): object.__new__(cls), or base.__new__(cls, state)
                Arity(g, args, 3, 3);
                return NewObject(args[0], args[1] is PyGlobal { ClassName: "builtins.object" } || args[2] is null ? [] : [args[2]], null, "REDUCE");
            case GlobalKind.NewObjHelper:
                // copyreg.__newobj__(cls, *args) is cls.__new__(cls, *args)
                if (args.Length == 0) throw Malformed("copyreg.__newobj__ needs a class");
                return NewObject(args[0], args[1..].ToArray(), null, "REDUCE");
            case GlobalKind.RebuildDeviceFromNumpy:
                // needs a numpy array, which is never rebuilt: keep the call as an inert record
                return new PyObject(g.ClassName, args.ToArray(), "call");
            case GlobalKind.TensorClass:
            case GlobalKind.ParameterClass:
            case GlobalKind.LegacyTensorClass:
            case GlobalKind.StorageClass:
                return NewObject(g, args.ToArray(), null, "REDUCE");
            default:
                throw Malformed($"{g.ClassName} cannot be called");
        }
    }

    public object? NewObject(object? cls, object?[] args, PyDict? kwargs, string opcode)
    {
        if (cls is not PyGlobal g) throw Malformed($"{opcode} needs a class named by GLOBAL, not {Describe(cls)}");
        switch (g.Kind)
        {
            case GlobalKind.Inert:
                return new PyObject(g.ClassName, args, "new") { KwArgs = kwargs };
            case GlobalKind.ParameterClass:
                // Parameter.__new__(cls, data=None, requires_grad=True)
                return AsParameter(args.Length > 0 ? args[0] : null, args.Length > 1 ? args[1] : true, null);
            case GlobalKind.TensorClass:
            case GlobalKind.LegacyTensorClass:
                return new PendingTensor(g);
            case GlobalKind.OrderedDict: return new PyDict("collections.OrderedDict");
            case GlobalKind.Counter: return new PyDict("collections.Counter");
            case GlobalKind.Set: return new PySet();
            default:
                if (_weightsOnly)
                    throw new TorchLoadException(TorchLoadErrorReason.UnsafeGlobal,
                        $"Weights only load failed: {opcode} can only create nn.Parameter or allowed classes, but got {g.ClassName}") { GlobalName = g.ClassName };
                return new PyObject(g.ClassName, args, "new") { KwArgs = kwargs };
        }
    }

    public object? Build(object? target, object? state)
    {
        switch (target)
        {
            case PyDict { PythonType: not "dict" } od:
                // OrderedDict.__setstate__ is attribute update: this is how a state_dict's _metadata arrives
                var attrs = state switch
                {
                    PyDict d => d,
                    object?[] { Length: 2 } t when t[0] is PyDict d0 => d0,
                    null => null,
                    _ => throw Malformed($"BUILD on an OrderedDict needs a dict of attributes, got {Describe(state)}"),
                };
                if (attrs is not null)
                {
                    od.Attributes ??= new PyDict();
                    foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)attrs) od.Attributes.Set(kv.Key, kv.Value);
                }
                return od;
            case TorchTensor tensor:
                tensor.PythonState = MergeState(tensor.PythonState, state);
                return tensor;
            case PendingTensor pending:
                return pending.Build(state, this);
            case PyObject obj:
                obj.State = MergeState(obj.State, state);
                return obj;
            default:
                throw Malformed($"BUILD can only set the state of a tensor, a Parameter, an OrderedDict or an allowed class, not {Describe(target)}");
        }
    }

    public void SetItems(object? target, ReadOnlySpan<object?> keysAndValues)
    {
        if (target is PyObject obj && !_weightsOnly)
        {
            obj.DictItems ??= new PyDict();
            for (var i = 0; i < keysAndValues.Length; i += 2) obj.DictItems.Set(keysAndValues[i], keysAndValues[i + 1]);
            return;
        }
        throw Malformed($"SETITEM can only set items of a dict, OrderedDict or Counter, not {Describe(target)}");
    }

    public void Append(object? target, ReadOnlySpan<object?> items)
    {
        if (target is PyObject obj)
        {
            obj.ListItems ??= [];
            obj.ListItems.AddRange(items.ToArray());
            return;
        }
        throw Malformed($"APPEND can only append to a list, not {Describe(target)}");
    }

    // ------------------------------------------------------------------ tensors

    private static TorchDType TensorDType(object? storage) =>
        storage is TorchStorage s ? s.DType : throw Malformed($"a tensor rebuild needs a storage, got {Describe(storage)}");

    /// <summary>_rebuild_tensor / _v2 / _v3: (storage, offset, size, stride, [requires_grad, hooks, [dtype]], [metadata]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private TorchTensor RebuildDense(ReadOnlySpan<object?> args, TorchDType dtype, object? metadata)
    {
        var storage = args[0] as TorchStorage ?? throw Malformed($"a tensor rebuild needs a storage, got {Describe(args[0])}");
        var offset = ToLong(args[1], "storage_offset");
        var shape = ToLongs(args[2], "size");
        var stride = ToLongs(args[3], "stride");
        var tensor = MakeView(dtype, shape, stride, offset, storage);
        if (args.Length > 4) tensor.RequiresGrad = ToBool(args[4], "requires_grad");
        ApplyMetadata(tensor, metadata);
        return tensor;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private TorchTensor MakeView(TorchDType dtype, long[] shape, long[] stride, long offset, TorchStorage storage)
    {
        if (shape.Length > _limits.MaxTensorRank)
            throw new TorchLoadException(TorchLoadErrorReason.LimitExceeded, $"a tensor has {shape.Length} dimensions, more than {_limits.MaxTensorRank}") { LimitName = nameof(LoadLimits.MaxTensorRank) };
        var available = storage.ByteLength / dtype.ElementSize * dtype.ValuesPerByte;
        ShapeMath.ValidateView(shape, stride, offset, available, dtype, storage.Key);
        var tensor = new TorchTensor(dtype, shape, stride, offset, storage);
        if (KeepTensors) Tensors.Add(tensor);
        return tensor;
    }

    private static void ApplyMetadata(TorchTensor tensor, object? metadata)
    {
        if (metadata is null) return;
        if (metadata is not PyDict md) throw Malformed($"tensor metadata must be a dict, got {Describe(metadata)}");
        if (md.TryGetValue("conj", out var conj) && conj is true) tensor.IsConj = true;
        if (md.TryGetValue("neg", out var neg) && neg is true) tensor.IsNeg = true;
    }

    private TorchTensor AsParameter(object? data, object? requiresGrad, object? state)
    {
        var source = data as TorchTensor ?? throw Malformed($"a Parameter needs a tensor, got {Describe(data)}");
        var p = source.ShallowCopy();
        p.IsParameter = true;
        p.ClassName = "torch.nn.parameter.Parameter";
        p.RequiresGrad = ToBool(requiresGrad, "requires_grad");
        if (state is not null) p.PythonState = NonEmptyState(state);
        return p;
    }

    private TorchTensor RebuildQuantized(ReadOnlySpan<object?> args)
    {
        var storage = args[0] as TorchStorage ?? throw Malformed($"_rebuild_qtensor needs a storage, got {Describe(args[0])}");
        var tensor = MakeView(storage.DType, ToLongs(args[2], "size"), ToLongs(args[3], "stride"), ToLong(args[1], "storage_offset"), storage);
        if (!storage.DType.IsQuantized) throw Malformed($"_rebuild_qtensor over a {storage.DType} storage");
        if (AsSequence(args[4]) is not { Length: > 0 } q || q[0] is not TorchQScheme scheme)
            throw Malformed($"_rebuild_qtensor needs quantizer parameters (scheme, ...), got {Describe(args[4])}");
        tensor.QScheme = scheme;
        if (!scheme.IsPerChannel)
        {
            if (q.Length != 3) throw Malformed("per-tensor quantizer parameters are (scheme, scale, zero_point)");
            tensor.QScale = ToDouble(q[1], "scale");
            tensor.QZeroPoint = ToLong(q[2], "zero_point");
        }
        else
        {
            if (q.Length != 4) throw Malformed("per-channel quantizer parameters are (scheme, scales, zero_points, axis)");
            // torch converts lists by the saved scheme, then its quantizer is chosen by the zero points' dtype:
            // float zero points make per_channel_affine_float_qparams, although 2.x saves that scheme as per_channel_affine.
            var floatQParams = scheme == TorchQScheme.PerChannelAffineFloatQParams;
            tensor.QScales = q[1] as TorchTensor ?? ListAsTensor(q[1], floatQParams ? TorchDType.Float32 : TorchDType.Float64, "scales");
            tensor.QZeroPoints = q[2] as TorchTensor ?? ListAsTensor(q[2], floatQParams ? TorchDType.Float32 : TorchDType.Int64, "zero_points");
            tensor.QScheme = tensor.QZeroPoints.DType.IsFloatingPoint ? TorchQScheme.PerChannelAffineFloatQParams
                : scheme == TorchQScheme.PerChannelAffineFloatQParams ? TorchQScheme.PerChannelAffine : scheme;
            tensor.QAxis = ToLong(q[3], "axis");
            if (tensor.QAxis < 0 || tensor.QAxis >= Math.Max(tensor.Rank, 1))
                throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, $"quantization axis {tensor.QAxis} is outside a {tensor.Rank}-dimensional tensor");
        }
        tensor.RequiresGrad = ToBool(args[5], "requires_grad");
        return tensor;
    }

    /// <summary>Older files give per-channel scales as Python lists: torch converts them to tensors.</summary>
    private static TorchTensor ListAsTensor(object? list, TorchDType dtype, string what)
    {
        if (list is not List<object?> and not object?[]) throw Malformed($"per-channel {what} must be a tensor or a list, got {Describe(list)}");
        var items = ((IEnumerable<object?>)list).ToArray();
        var storage = new TorchStorage($"<{what}>", dtype, items.Length, "cpu");
        var buffer = new HostBuffer(storage.ByteLength);
        var size = dtype.ElementSize;
        for (var i = 0; i < items.Length; i++)
        {
            var span = buffer.AsSpan(i * (long)size, size);
            if (dtype == TorchDType.Float64) BitConverter.TryWriteBytes(span, ToDouble(items[i], what));
            else if (dtype == TorchDType.Float32) BitConverter.TryWriteBytes(span, (float)ToDouble(items[i], what));
            else BitConverter.TryWriteBytes(span, ToLong(items[i], what));
        }
        storage.Buffer = buffer;
        return new TorchTensor(dtype, [items.Length], [1], 0, storage);
    }

    private TorchTensor RebuildSparse(ReadOnlySpan<object?> args)
    {
        var layout = args[0] as TorchLayout ?? throw Malformed($"a sparse rebuild needs a layout, got {Describe(args[0])}");
        if (AsSequence(args[1]) is not { } data) throw Malformed($"sparse data must be a tuple, got {Describe(args[1])}");
        TorchTensor result;
        if (layout == TorchLayout.SparseCoo)
        {
            if (data.Length is < 3 or > 4) throw Malformed("COO data is (indices, values, size[, is_coalesced])");
            var indices = AsTensor(data[0], "indices");
            var values = AsTensor(data[1], "values");
            result = new TorchTensor(values.DType, ToLongs(data[2], "size"), [], 0, null) { Indices = indices, Values = values };
            // 2.x files record the flag; otherwise torch marks a COO tensor coalesced when it has fewer than 2 entries
            result.IsCoalesced = data.Length == 4 && data[3] is not null ? ToBool(data[3], "is_coalesced") : values.Rank == 0 || values.Shape[0] < 2;
        }
        else if (layout == TorchLayout.SparseCsr || layout == TorchLayout.SparseBsr || layout == TorchLayout.SparseCsc || layout == TorchLayout.SparseBsc)
        {
            if (data.Length != 4) throw Malformed($"{layout} data is (compressed_indices, plain_indices, values, size)");
            var compressed = AsTensor(data[0], "compressed_indices");
            var plain = AsTensor(data[1], "plain_indices");
            var values = AsTensor(data[2], "values");
            result = new TorchTensor(values.DType, ToLongs(data[3], "size"), [], 0, null) { Values = values };
            if (layout == TorchLayout.SparseCsr || layout == TorchLayout.SparseBsr) { result.CrowIndices = compressed; result.ColIndices = plain; }
            else { result.CcolIndices = compressed; result.RowIndices = plain; }
        }
        else throw Malformed($"cannot rebuild a sparse tensor with layout {layout}");
        if (result.Shape.Any(d => d < 0) || result.Shape.Length > _limits.MaxTensorRank)
            throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, $"a sparse tensor has size ({string.Join(", ", result.Shape)})");
        result.Layout = layout;
        SparseTensors.Add(result);
        return result;
    }

    private TorchTensor RebuildMeta(ReadOnlySpan<object?> args)
    {
        var dtype = args[0] as TorchDType ?? throw Malformed($"a meta tensor needs a dtype, got {Describe(args[0])}");
        var shape = ToLongs(args[1], "size");
        var stride = ToLongs(args[2], "stride");
        if (shape.Length != stride.Length || shape.Any(d => d < 0) || stride.Any(d => d < 0))
            throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, "a meta tensor has negative or mismatched sizes and strides");
        return new TorchTensor(dtype, shape, stride, 0, null) { RequiresGrad = ToBool(args[3], "requires_grad"), DeviceOverride = "meta" };
    }

    private TorchTensor RebuildNested(ReadOnlySpan<object?> args)
    {
        var buffer = AsTensor(args[0], "buffer");
        var sizes = AsTensor(args[1], "sizes");
        var result = new TorchTensor(buffer.DType, [sizes.Shape.Length > 0 ? sizes.Shape[0] : 0], [], 0, null)
        {
            IsNested = true, Values = buffer, NestedSizes = sizes, NestedStrides = AsTensor(args[2], "strides"), NestedOffsets = AsTensor(args[3], "storage_offsets"),
        };
        return result;
    }

    private TorchTensor RebuildDeviceFromCpu(ReadOnlySpan<object?> args)
    {
        var data = AsTensor(args[0], "data");
        var dtype = args[1] as TorchDType ?? throw Malformed($"a device tensor needs a dtype, got {Describe(args[1])}");
        var device = args[2]?.ToString() ?? throw Malformed("a device tensor needs a device");
        var t = data.ShallowCopy();
        t.DType = dtype;
        t.RequiresGrad = ToBool(args[3], "requires_grad");
        SetRebuiltDevice(t, device);
        return t;
    }

    private TorchTensor RebuildWrapperSubclass(ReadOnlySpan<object?> args)
    {
        var cls = args[0] as PyGlobal ?? throw Malformed($"a wrapper subclass needs a class, got {Describe(args[0])}");
        var dtype = args[1] as TorchDType ?? throw Malformed($"a wrapper subclass needs a dtype, got {Describe(args[1])}");
        var t = new TorchTensor(dtype, ToLongs(args[2], "size"), ToLongs(args[3], "stride"), ToLong(args[4], "storage_offset"), null)
        {
            ClassName = cls.ClassName,
            Layout = args[5] as TorchLayout ?? TorchLayout.Strided,
            RequiresGrad = ToBool(args[7], "requires_grad"),
        };
        SetRebuiltDevice(t, args[6]?.ToString() ?? "meta");
        return t;
    }

    private void SetRebuiltDevice(TorchTensor t, string device)
    {
        var mapped = _mapDevice is null ? device : _mapDevice(device);
        t.DeviceOverride = mapped == "cpu" ? null : mapped;
        if (t.DeviceOverride is not null and not "meta") DeviceTensors.Add(t);
    }

    private object? RebuildFromType(ReadOnlySpan<object?> args)
    {
        // (func, new_type, args, state): func must itself be an allowed rebuild function
        if (AsSequence(args[2]) is not { } inner) throw Malformed($"_rebuild_from_type_v2 needs an argument tuple, got {Describe(args[2])}");
        var built = Reduce(args[0], inner);
        var newType = args[1] as PyGlobal ?? throw Malformed($"_rebuild_from_type_v2 needs a class, got {Describe(args[1])}");
        if (built is not TorchTensor t) return built;
        switch (newType.Kind)
        {
            case GlobalKind.ParameterClass:
                t.IsParameter = true;
                t.ClassName = "torch.nn.parameter.Parameter";
                break;
            case GlobalKind.TensorClass:
                break;
            default:
                t.ClassName = newType.ClassName; // a subclass: allowed by the user, or permissive mode
                break;
        }
        var state = NonEmptyState(args[3]);
        if (state is not null) t.PythonState = MergeState(t.PythonState, state);
        return t;
    }

    private static TorchTensor AsTensor(object? v, string what) => v as TorchTensor ?? throw Malformed($"{what} must be a tensor, got {Describe(v)}");

    private static object? NonEmptyState(object? state) => state switch
    {
        null => null,
        PyDict { Count: 0, Attributes: null } => null,
        object?[] { Length: 2 } t when t[0] is PyDict { Count: 0 } && t[1] is null or PyDict { Count: 0 } => null,
        _ => state,
    };

    private static object? MergeState(object? existing, object? state)
    {
        if (existing is PyDict a && state is PyDict b)
        {
            foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)b) a.Set(kv.Key, kv.Value);
            return a;
        }
        return state;
    }

    // ------------------------------------------------------------------ plain values

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static PyDict NewDict(string type, ReadOnlySpan<object?> args)
    {
        var d = new PyDict(type);
        if (args.Length == 0 || args[0] is null) return d;
        var counter = type == "collections.Counter";
        switch (args[0])
        {
            case PyDict src:
                foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)src) d.Set(kv.Key, kv.Value);
                break;
            case IEnumerable<object?> items when counter:
                // Counter(iterable) counts the elements
                foreach (var item in items) d.Set(item, d.TryGetValue(item, out var n) ? ToLong(n, "count") + 1 : 1L);
                break;
            case IEnumerable<object?> pairs:
                // any 2-item sequence is a pair: Python 2's OrderedDict.__reduce__ wrote [key, value] lists
                foreach (var p in pairs)
                {
                    if (AsSequence(p) is not { Length: 2 } kv) throw Malformed($"{type} items must be (key, value) pairs, got {Describe(p)}");
                    d.Set(kv[0], kv[1]);
                }
                break;
            default:
                throw Malformed($"{type} cannot be made from {Describe(args[0])}");
        }
        return d;
    }

    /// <summary>
    /// A tuple or a list as its items, else null: where torch's Python code unpacks or indexes an argument,
    /// Python accepts either, so the reader must too.
    /// </summary>
    private static object?[]? AsSequence(object? v) => v switch
    {
        object?[] t => t,
        List<object?> l => l.ToArray(),
        _ => null,
    };

    private static PySet NewSet(ReadOnlySpan<object?> args, bool frozen)
    {
        var s = new PySet(frozen);
        if (args.Length == 0 || args[0] is null) return s;
        if (args[0] is PyDict d)
        {
            foreach (var kv in (IEnumerable<KeyValuePair<object?, object?>>)d) s.Add(kv.Key); // set(dict) is its keys
            return s;
        }
        if (args[0] is not IEnumerable<object?> items) throw Malformed($"a set cannot be made from {Describe(args[0])}");
        foreach (var item in items) s.Add(item);
        return s;
    }

    private static byte[] NewBytes(ReadOnlySpan<object?> args) => args switch
    {
        [] => [],
        [byte[] b] => (byte[])b.Clone(),
        [string s, string enc] => EncodeText(s, enc),
        [List<object?> ints] => ints.Select(i => ToByte(i)).ToArray(),
        [object?[] ints] => ints.Select(i => ToByte(i)).ToArray(),
        _ => throw Malformed($"bytes cannot be made from ({string.Join(", ", args.ToArray().Select(Describe))})"),
    };

    private static byte ToByte(object? v) => ToLong(v, "bytes") is >= 0 and <= 255 and var b ? (byte)b : throw Malformed($"bytes must be in range(0, 256), got {Describe(v)}");

    private static byte[] Encode(ReadOnlySpan<object?> args) => args switch
    {
        [string s] => EncodeText(s, "utf-8"),
        [string s, string enc] => EncodeText(s, enc),
        [string s, string enc, string] => EncodeText(s, enc),
        [byte[] b, ..] => (byte[])b.Clone(),
        _ => throw Malformed($"_codecs.encode cannot take ({string.Join(", ", args.ToArray().Select(Describe))})"),
    };

    private static byte[] EncodeText(string s, string encoding) => encoding.ToLowerInvariant().Replace('_', '-') switch
    {
        "latin1" or "latin-1" or "iso-8859-1" or "l1" => s.Any(c => c > 0xFF) ? throw Malformed("_codecs.encode: text is not Latin-1") : Encoding.Latin1.GetBytes(s),
        "utf-8" or "utf8" => Encoding.UTF8.GetBytes(s),
        "ascii" => s.Any(c => c > 0x7F) ? throw Malformed("_codecs.encode: text is not ASCII") : Encoding.ASCII.GetBytes(s),
        _ => throw Malformed($"_codecs.encode with codec '{encoding}' is not supported (only latin1, utf-8, ascii)"),
    };

    private static TorchDevice NewDevice(ReadOnlySpan<object?> args)
    {
        switch (args)
        {
            case [string s] when TorchDevice.TryParse(s, out var d): return d;
            case [string type, null] when TorchDevice.TryParse(type, out var d2): return d2;
            case [string type, var idx] when idx is long or int: return new TorchDevice(type, checked((int)ToLong(idx, "device index")));
            case [TorchDevice d3]: return d3;
            default: throw Malformed($"torch.device cannot be made from ({string.Join(", ", args.ToArray().Select(Describe))})");
        }
    }

    // ------------------------------------------------------------------ argument helpers

    private static void Arity(PyGlobal g, ReadOnlySpan<object?> args, int min, int max)
    {
        if (args.Length < min || args.Length > max)
            throw Malformed($"{g.ClassName} takes {(min == max ? $"{min}" : $"{min} to {max}")} arguments, got {args.Length}");
    }

    internal static long ToLong(object? v, string what) => v switch
    {
        long l => l,
        int i => i,
        bool b => b ? 1 : 0,
        BigInteger => throw new TorchLoadException(TorchLoadErrorReason.InvalidTensorGeometry, $"{what} {v} does not fit in 64 bits"),
        _ => throw Malformed($"{what} must be an integer, got {Describe(v)}"),
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static long[] ToLongs(object? v, string what)
    {
        switch (v)
        {
            case long[] a: return (long[])a.Clone();
            case object?[] t:
                var r = new long[t.Length];
                for (var i = 0; i < t.Length; i++) r[i] = ToLong(t[i], what);
                return r;
            case List<object?> l: return ToLongs(l.ToArray(), what);
            default: throw Malformed($"{what} must be a tuple of integers, got {Describe(v)}");
        }
    }

    private static double ToDouble(object? v, string what) => v switch
    {
        double d => d,
        long l => l,
        bool b => b ? 1 : 0,
        BigInteger bi => (double)bi,
        _ => throw Malformed($"{what} must be a number, got {Describe(v)}"),
    };

    private static bool ToBool(object? v, string what) => v switch
    {
        bool b => b,
        long l => l != 0,
        null => false,
        _ => throw Malformed($"{what} must be a bool, got {Describe(v)}"),
    };

    internal static string Describe(object? v) => v switch
    {
        null => "None",
        string s => $"str '{(s.Length > 40 ? s[..40] + "..." : s)}'",
        long or BigInteger => $"int {v}",
        bool b => b ? "True" : "False",
        double d => $"float {d}",
        object?[] t => $"a tuple of {t.Length}",
        List<object?> l => $"a list of {l.Count}",
        PyDict d => $"a {d.PythonType}",
        PyObject o => $"an instance of {o.ClassName}",
        PyGlobal g => $"{g.ClassName}",
        TorchTensor => "a tensor",
        TorchStorage => "a storage",
        byte[] => "bytes",
        _ => v.GetType().Name,
    };

    private static TorchLoadException Malformed(string message) => new(TorchLoadErrorReason.MalformedPickle, $"Malformed pickle: {message}");

    /// <summary>
    /// <c>torch.Tensor.__new__</c> (or a legacy tensor type) waiting for the BUILD that gives it
    /// (storage, offset, size, stride): the pre-0.4 way of pickling tensors.
    /// </summary>
    private sealed class PendingTensor(PyGlobal cls)
    {
        public object Build(object? state, TorchUnpickler owner)
        {
            if (AsSequence(state) is { Length: 4 } t && t[0] is TorchStorage storage)
                return owner.MakeView(storage.DType, ToLongs(t[2], "size"), ToLongs(t[3], "stride"), ToLong(t[1], "storage_offset"), storage);
            throw Malformed($"BUILD of a bare {cls.ClassName} needs (storage, offset, size, stride), got {Describe(state)}");
        }
    }
}
