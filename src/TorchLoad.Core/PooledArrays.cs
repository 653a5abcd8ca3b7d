using System.Buffers;

namespace TorchLoad.Core;

/// <summary>
/// Scratch arrays of one load rented from the shared pool (the pickle machine's stack, marks and memo, the tensor
/// walk's pending values, the read window of a small file and the records a load reads whole): given back when the
/// load is done with them, except large ones, which a hostile pickle grows (a million-slot stack) and which are left
/// to the GC, so that the process-wide pool never keeps them.
/// </summary>
internal static class PooledArrays
{
    /// <summary>The longest array given back (64 Ki elements: 512 KiB of references).</summary>
    public const int MaxKept = 1 << 16;

    public static T[] Rent<T>(int length) => ArrayPool<T>.Shared.Rent(length);

    /// <summary>Gives <paramref name="array"/> back (cleared first when asked and it holds references), or drops it when it is large.</summary>
    public static void Return<T>(T[] array, bool clear)
    {
        if (array.Length is 0 or > MaxKept) return;
        ArrayPool<T>.Shared.Return(array, clear && RuntimeHelpers.IsReferenceOrContainsReferences<T>());
    }

    /// <summary>A rented array of at least <paramref name="length"/> holding what <paramref name="old"/> held; the old one goes back.</summary>
    public static T[] Regrow<T>(T[] old, int length)
    {
        var grown = Rent<T>(length);
        old.CopyTo(grown, 0);
        Return(old, clear: true);
        return grown;
    }
}
