using System.Text;

namespace TorchLoad.Core.Pickle;

/// <summary>
/// Short ASCII strings a pickle decodes, remembered per thread: the keys, devices, storage keys and global names of
/// one checkpoint are mostly those of the next ('weight', 'cpu', '0', 'torch._utils'), so an audit of a thousand
/// files of one model makes each once instead of a thousand times. Strings are immutable and compared by value
/// everywhere, so handing out the same one is invisible.
/// </summary>
/// <remarks>
/// A direct-mapped table of <see cref="Slots"/> strings of at most <see cref="MaxLength"/> characters, per thread:
/// each thread owns its table, so no lock; a collision replaces the slot. Bounded: 512 strings of 32 characters.
/// </remarks>
internal static class RecentStrings
{
    private const int Slots = 512, MaxLength = 32;

    [ThreadStatic] private static string?[]? t_slots;

    /// <summary>The string of <paramref name="ascii"/>, which must be ASCII (the caller checked).</summary>
    public static string Get(ReadOnlySpan<byte> ascii)
    {
        if (ascii.Length is 0 or > MaxLength) return Encoding.ASCII.GetString(ascii);
        var slots = t_slots ??= new string?[Slots];
        uint hash = 2166136261; // FNV-1a: a few bytes, no setup
        foreach (var b in ascii) hash = (hash ^ b) * 16777619;
        ref var slot = ref slots[(int)(hash & (Slots - 1))];
        if (slot is { } known && known.Length == ascii.Length && System.Text.Ascii.Equals(ascii, known)) return known;
        return slot = Encoding.ASCII.GetString(ascii);
    }
}
