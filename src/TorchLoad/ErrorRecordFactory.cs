using System.Management.Automation;
using TorchLoad.Core.Errors;

namespace TorchLoad.Commands;

/// <summary>TorchLoadException reasons to ErrorRecords: the id is the reason name (object-model.md), one table for categories.</summary>
internal static class ErrorRecordFactory
{
    public static ErrorRecord From(TorchLoadException e, object? target) =>
        new(e, e.Reason.ToString(), Category(e.Reason), target);

    public static ErrorCategory Category(TorchLoadErrorReason reason) => reason switch
    {
        TorchLoadErrorReason.UnsafeGlobal => ErrorCategory.SecurityError,
        TorchLoadErrorReason.MissingRecord => ErrorCategory.ObjectNotFound,
        TorchLoadErrorReason.DeviceUnavailable => ErrorCategory.ResourceUnavailable,
        TorchLoadErrorReason.LimitExceeded => ErrorCategory.LimitsExceeded,
        TorchLoadErrorReason.InvalidArgument => ErrorCategory.InvalidArgument,
        TorchLoadErrorReason.Cancelled => ErrorCategory.OperationStopped,
        TorchLoadErrorReason.CheckpointChanged => ErrorCategory.ReadError,
        TorchLoadErrorReason.UnsupportedFormat or TorchLoadErrorReason.UnsupportedCompression
            or TorchLoadErrorReason.UnsupportedOpcode or TorchLoadErrorReason.UnsupportedVersion => ErrorCategory.NotImplemented,
        _ => ErrorCategory.InvalidData,
    };
}
