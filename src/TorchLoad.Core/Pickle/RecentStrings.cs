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
/// A pickle whose strings are all new (a 20,000-tensor state dict's keys) stops asking after a run of misses
/// (PickleMachine): there the table cost ~6 ms of a 55 ms load and found nothing.
/// </remarks>
internal static class RecentStrings
{
    private const int Slots = 512, MaxLength = 32;

    [ThreadStatic] private static string?[]? t_slots;

    /// <summary>This thread's table, taken once per pickle (a thread-static read per string cost ~5 ms of a 20,000-tensor load).</summary>
    public static string?[] ForThisThread() => t_slots ??= new string?[Slots];

    /// <summary>
    /// The string of <paramref name="ascii"/>, which must be ASCII (the caller checked), from <paramref name="slots"/>
    /// (<see cref="ForThisThread"/>); <paramref name="found"/> says whether it was there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static string Get(string?[] slots, ReadOnlySpan<byte> ascii, out bool found)
    {
        found = false;
        if (ascii.Length is 0 or > MaxLength || slots.Length != Slots) return Encoding.ASCII.GetString(ascii);
        uint hash = 2166136261; // FNV-1a: a few bytes, no setup
        foreach (var b in ascii) hash = (hash ^ b) * 16777619;
        ref var slot = ref slots[(int)(hash & (Slots - 1))];
        if (slot is { } known && known.Length == ascii.Length && System.Text.Ascii.Equals(ascii, known))
        {
            found = true;
            return known;
        }
        return slot = Encoding.ASCII.GetString(ascii);
    }
}
