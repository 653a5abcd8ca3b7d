using System.Numerics;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// Python's equality for hashable keys: numbers compare by value across bool/int/float, strings
/// ordinally, tuples and bytes element-wise; anything else by reference.
/// </summary>
public sealed class PyKeyComparer : IEqualityComparer<object?>
{
    public static readonly PyKeyComparer Instance = new();

    public new bool Equals(object? x, object? y)
    {
        if (ReferenceEquals(x, y)) return true;
        if (x is null || y is null) return false;
        if (x is string sx) return y is string sy && string.Equals(sx, sy, StringComparison.Ordinal);
        if (TryNumber(x, out var nx)) return TryNumber(y, out var ny) && nx.Equals(ny);
        if (x is object?[] tx) return y is object?[] ty && tx.Length == ty.Length && tx.Zip(ty).All(p => Equals(p.First, p.Second));
        if (x is byte[] bx) return y is byte[] by && bx.AsSpan().SequenceEqual(by);
        return x.Equals(y);
    }

    public int GetHashCode(object? obj)
    {
        switch (obj)
        {
            case null: return 0;
            case string s: return s.GetHashCode(StringComparison.Ordinal);
            case object?[] t:
                var h = new HashCode();
                foreach (var item in t) h.Add(GetHashCode(item));
                return h.ToHashCode();
            case byte[] b:
                var hb = new HashCode();
                hb.AddBytes(b);
                return hb.ToHashCode();
        }
        return TryNumber(obj, out var n) ? n.GetHashCode() : obj.GetHashCode();
    }

    // Python: hash(1) == hash(1.0) == hash(True); compare integral values as BigInteger, others as double.
    private static bool TryNumber(object o, out Number n)
    {
        switch (o)
        {
            case long l: n = new Number(l, null); return true;
            case int i: n = new Number(i, null); return true;
            case bool b: n = new Number(b ? 1 : 0, null); return true;
            case BigInteger bi: n = new Number(0, bi); return true;
            case double d when double.IsInteger(d) && Math.Abs(d) < 9.2e18: n = new Number((long)d, null); return true;
            case double d: n = new Number(0, null, d); return true;
            default: n = default; return false;
        }
    }

    private readonly record struct Number(long Small, BigInteger? Big, double? Fraction = null)
    {
        public bool Equals(Number other) =>
            Fraction is double f ? other.Fraction is double g && f.Equals(g)
            : other.Fraction is null && (Big ?? Small) == (other.Big ?? other.Small);

        public override int GetHashCode() => Fraction is double f ? f.GetHashCode() : (Big ?? Small).GetHashCode();
    }
}
