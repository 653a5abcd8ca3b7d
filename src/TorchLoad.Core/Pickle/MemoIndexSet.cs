namespace TorchLoad.Core.Pickle;

/// <summary>
/// A set of memo indices: open addressing over one array, nothing allocated per index (a HashSet of uint would be
/// JIT-compiled on each process's first load, where this is precompiled with TorchLoad).
/// </summary>
internal sealed class MemoIndexSet
{
    private uint[] _slots = new uint[16]; // index + 1; 0 is an empty slot
    private int _count;
    private bool _hasMax; // uint.MaxValue has no index + 1

    public bool Contains(uint index) => index == uint.MaxValue ? _hasMax : _slots[Find(_slots, index + 1)] != 0;

    /// <summary>True when <paramref name="index"/> was not in the set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Add(uint index)
    {
        if (index == uint.MaxValue) return !_hasMax && (_hasMax = true);
        var at = Find(_slots, index + 1);
        if (_slots[at] != 0) return false;
        _slots[at] = index + 1;
        if (++_count * 2 > _slots.Length) Grow();
        return true;
    }

    private void Grow()
    {
        var old = _slots;
        _slots = new uint[old.Length * 2];
        foreach (var key in old)
            if (key != 0) _slots[Find(_slots, key)] = key;
    }

    /// <summary>The slot holding <paramref name="key"/>, or the empty slot where it would go (the table is never full).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Find(uint[] slots, uint key)
    {
        var mask = slots.Length - 1;
        var at = (int)((key * 2654435769u) >> 7) & mask; // Fibonacci hashing: sequential indices spread out
        while (slots[at] != 0 && slots[at] != key) at = (at + 1) & mask;
        return at;
    }
}
