namespace TorchLoad.Core.Tensors;

/// <summary>torch.layout: <c>ToString()</c> is torch's name without <c>torch.</c> (<c>strided</c>, <c>sparse_coo</c>).</summary>
public sealed class TorchLayout : IEquatable<TorchLayout>
{
    private TorchLayout(string name) => Name = name;
    public string Name { get; }
    public override string ToString() => Name;
    public bool Equals(TorchLayout? other) => other is not null && other.Name == Name;
    public override bool Equals(object? obj) => Equals(obj as TorchLayout);
    public override int GetHashCode() => Name.GetHashCode(StringComparison.Ordinal);

    public static readonly TorchLayout Strided = new("strided");
    public static readonly TorchLayout SparseCoo = new("sparse_coo");
    public static readonly TorchLayout SparseCsr = new("sparse_csr");
    public static readonly TorchLayout SparseCsc = new("sparse_csc");
    public static readonly TorchLayout SparseBsr = new("sparse_bsr");
    public static readonly TorchLayout SparseBsc = new("sparse_bsc");
    public static readonly TorchLayout Mkldnn = new("_mkldnn");
    public static readonly TorchLayout Jagged = new("jagged");

    private static readonly TorchLayout[] All = [Strided, SparseCoo, SparseCsr, SparseCsc, SparseBsr, SparseBsc, Mkldnn, Jagged];

    /// <summary>Parses <c>torch.sparse_coo</c> or <c>sparse_coo</c>.</summary>
    public static bool TryParse(string text, out TorchLayout layout)
    {
        var name = text.StartsWith("torch.", StringComparison.Ordinal) ? text["torch.".Length..] : text;
        layout = All.FirstOrDefault(l => l.Name == name)!;
        return layout is not null;
    }
}

/// <summary>A quantization scheme (<c>per_tensor_affine</c>, ...).</summary>
public sealed class TorchQScheme
{
    private TorchQScheme(string name) => Name = name;
    public string Name { get; }
    public override string ToString() => Name;

    public static readonly TorchQScheme PerTensorAffine = new("per_tensor_affine");
    public static readonly TorchQScheme PerTensorSymmetric = new("per_tensor_symmetric");
    public static readonly TorchQScheme PerChannelAffine = new("per_channel_affine");
    public static readonly TorchQScheme PerChannelSymmetric = new("per_channel_symmetric");
    public static readonly TorchQScheme PerChannelAffineFloatQParams = new("per_channel_affine_float_qparams");

    private static readonly TorchQScheme[] All = [PerTensorAffine, PerTensorSymmetric, PerChannelAffine, PerChannelSymmetric, PerChannelAffineFloatQParams];

    public bool IsPerChannel => this != PerTensorAffine && this != PerTensorSymmetric;

    public static bool TryFromName(string name, out TorchQScheme scheme)
    {
        scheme = All.FirstOrDefault(s => s.Name == name)!;
        return scheme is not null;
    }
}

/// <summary>torch.device: a type (<c>cpu</c>, <c>cuda</c>, <c>mps</c>, ...) and an optional index.</summary>
public sealed class TorchDevice : IEquatable<TorchDevice>
{
    public TorchDevice(string type, int? index = null)
    {
        Type = type;
        Index = index;
    }

    public string Type { get; }
    public int? Index { get; }

    public override string ToString() => Index is int i ? $"{Type}:{i}" : Type;
    public bool Equals(TorchDevice? other) => other is not null && other.Type == Type && other.Index == Index;
    public override bool Equals(object? obj) => Equals(obj as TorchDevice);
    public override int GetHashCode() => HashCode.Combine(Type, Index);

    /// <summary>Parses torch's device strings: <c>cpu</c>, <c>cuda</c>, <c>cuda:1</c>, <c>npu:0</c>.</summary>
    public static bool TryParse(string? text, out TorchDevice device)
    {
        device = null!;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var colon = text.IndexOf(':');
        var type = colon < 0 ? text : text[..colon];
        if (type.Length == 0 || !type.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-')) return false;
        if (colon < 0) { device = new TorchDevice(type); return true; }
        if (!int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var idx)) return false;
        device = new TorchDevice(type, idx);
        return true;
    }

    public static TorchDevice Parse(string text) =>
        TryParse(text, out var d) ? d : throw new FormatException($"'{text}' is not a device (expected 'cpu', 'cuda' or 'cuda:N').");

    public static readonly TorchDevice Cpu = new("cpu");
}
