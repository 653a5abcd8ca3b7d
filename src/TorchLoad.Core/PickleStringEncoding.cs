namespace TorchLoad.Core;

/// <summary>How Python 2 <c>str</c> values (STRING, BINSTRING, SHORT_BINSTRING) decode, like torch.load's <c>encoding</c>.</summary>
public enum PickleStringEncoding
{
    Utf8,
    Latin1,
    Ascii,
    /// <summary>Keep them as <c>byte[]</c>.</summary>
    Bytes,
}
