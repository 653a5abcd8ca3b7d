namespace TorchLoad.Core.Pickle;

/// <summary>What a resolved global is to TorchLoad. Only these ever do anything; <see cref="Inert"/> records.</summary>
internal enum GlobalKind
{
    /// <summary>A class or function TorchLoad does not rebuild: calling it makes a <see cref="PyObject"/>.</summary>
    Inert,
    OrderedDict, Counter, Set, FrozenSet, ByteArray, Bytes, Complex, CodecsEncode,
    TorchSize, TorchDevice, GetLayout,
    /// <summary>A storage class; payload = its TorchDType, or null for UntypedStorage/TypedStorage.</summary>
    StorageClass,
    TensorClass, ParameterClass,
    /// <summary>torch.FloatTensor and friends; payload = TorchDType.</summary>
    LegacyTensorClass,
    RebuildTensor, RebuildTensorV2, RebuildTensorV3, RebuildParameter, RebuildParameterWithState, RebuildQTensor,
    RebuildSparse, RebuildSparseCsr, RebuildNested, RebuildMeta, RebuildDeviceFromCpu, RebuildDeviceFromNumpy,
    RebuildWrapperSubclass, RebuildFromTypeV2,
    /// <summary>copyreg._reconstructor / __newobj__: how protocols 0-1 (and some reduce methods) create instances.</summary>
    Reconstructor, NewObjHelper,
}
