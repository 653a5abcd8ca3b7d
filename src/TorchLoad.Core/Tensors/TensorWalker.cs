using System.Collections;
using TorchLoad.Core.Pickle;

namespace TorchLoad.Core.Tensors;

/// <summary>
/// Finds every tensor (and bare storage) in a loaded object graph with its dotted path
/// (<c>model.layer1.0.weight</c>). Iterative with a visited set, so deep nesting, shared
/// sub-objects and cycles cost linear time and no stack.
/// </summary>
public static class TensorWalker
{
    public readonly record struct Found(string Path, TorchTensor? Tensor, TorchStorage? Storage);

    // Paths are parent-linked and made into text only for what is reported: building every container's
    // dotted path made 100,000 nested lists cost O(depth^2) characters (about 20 s).
    public static IEnumerable<Found> Walk(object? root) => Walk(root, withPaths: true);

    /// <summary>As <see cref="Walk(object?)"/>; without paths every Path is "" and no key is made into text.</summary>
    internal static IEnumerable<Found> Walk(object? root, bool withPaths)
    {
        var cursor = new Cursor(root, withPaths);
        try
        {
            while (cursor.Next(out var found)) yield return found;
        }
        finally
        {
            cursor.Dispose();
        }
    }

    /// <summary>
    /// The walk, one <see cref="Found"/> at a time, without an iterator: an audit counts a checkpoint's tensors with it
    /// and makes no enumerator, no paths and no growing lists (a thousand 5 KB checkpoints: ~0.6 KB each).
    /// </summary>
    /// <remarks>
    /// The pending (path, value) pairs are a pooled array of values and, with paths, a list of paths beside it, used as
    /// one stack. Dispose gives the array back.
    /// </remarks>
    internal struct Cursor(object? root, bool withPaths) : IDisposable
    {
        private readonly HashSet<object> _seen = new(ReferenceEqualityComparer.Instance);
        private readonly List<PathNode?>? _paths = withPaths ? [null] : null;
        private object?[] _values = Rent(root);
        private int _count = 1;

        private static object?[] Rent(object? root)
        {
            var values = PooledArrays.Rent<object?>(16);
            values[0] = root;
            return values;
        }

        public bool Next(out Found found)
        {
            while (_count > 0)
            {
                var last = --_count;
                var value = _values[last];
                _values[last] = null;
                var path = _paths?[last];
                _paths?.RemoveAt(last);
                if (value is null or string or byte[] or long or double or bool || value.GetType().IsPrimitive) continue;
                // Tensors and storages are reported under every name that holds them (tied weights have
                // two names); containers are entered once, so shared sub-objects and cycles stay linear.
                if (value is TorchTensor t)
                {
                    found = new Found(_paths is null ? "" : PathNode.Text(path), t, t.Storage);
                    if (t.HasParts && _seen.Add(t))
                    {
                        var parts = t.Parts().ToList();
                        for (var i = parts.Count - 1; i >= 0; i--) PushName(path, parts[i].Name, parts[i].Part);
                    }
                    return true;
                }
                if (value is TorchStorage storage)
                {
                    found = new Found(_paths is null ? "" : PathNode.Text(path), null, storage);
                    return true;
                }
                if (!_seen.Add(value)) continue;
                switch (value)
                {
                    case PyDict d:
                        for (var i = d.Count - 1; i >= 0; i--) PushKey(path, d.KeyAt(i), d.ValueAt(i));
                        break;
                    case PyObject o:
                        // pushed in reverse: visited as State, DictItems, ListItems, Args
                        if (o.Args.Length > 0) Push(path, o.Args);
                        if (o.ListItems is not null) Push(path, o.ListItems);
                        if (o.DictItems is not null) Push(path, o.DictItems);
                        if (o.State is not null) Push(path, o.State);
                        break;
                    case IDictionary map: // hashtables and [ordered] dictionaries users build
                        var entries = new List<DictionaryEntry>();
                        foreach (DictionaryEntry e in map) entries.Add(e);
                        for (var i = entries.Count - 1; i >= 0; i--) PushKey(path, entries[i].Key, entries[i].Value);
                        break;
                    case IList list:
                        for (var i = list.Count - 1; i >= 0; i--) PushIndex(path, i, list[i]);
                        break;
                    case IEnumerable e:
                        var members = new List<object?>();
                        foreach (var m in e) members.Add(m);
                        for (var i = members.Count - 1; i >= 0; i--) PushIndex(path, i, members[i]);
                        break;
                }
            }
            found = default;
            return false;
        }

        // A value under a dictionary key, a list index or a part's name below a path: made into text only with paths.
        private void PushKey(PathNode? path, object? key, object? value) => Push(_paths is null ? null : Join(path, KeyText(key)), value);
        private void PushIndex(PathNode? path, int index, object? value) => Push(_paths is null ? null : Join(path, Index(index)), value);
        private void PushName(PathNode? path, string name, object? value) => Push(_paths is null ? null : Join(path, name), value);

        private void Push(PathNode? path, object? value)
        {
            if (_count == _values.Length)
            {
                _values = PooledArrays.Regrow(_values, _count * 2);
            }
            _values[_count++] = value;
            _paths?.Add(path);
        }

        public void Dispose()
        {
            _values.AsSpan(0, _count).Clear(); // stopped early: what was pending
            PooledArrays.Return(_values, clear: false);
            _values = [];
            _count = 0;
        }
    }

    /// <summary>Each storage reachable from <paramref name="root"/> once, with the paths (every name) of the tensors viewing it.</summary>
    public static IReadOnlyList<(TorchStorage Storage, List<string> TensorPaths)> Storages(object? root)
    {
        var order = new List<(TorchStorage, List<string>)>();
        var index = new Dictionary<TorchStorage, List<string>>(ReferenceEqualityComparer.Instance);
        foreach (var f in Walk(root))
        {
            if (f.Storage is not { } s) continue;
            if (!index.TryGetValue(s, out var paths)) { paths = []; index[s] = paths; order.Add((s, paths)); }
            if (f.Tensor is not null) paths.Add(f.Path);
        }
        return order;
    }

    private static PathNode Join(PathNode? path, string key) => new(path, key);

    private static string Index(int i) => i.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A dotted path as a key and the path of its container; text only on demand.</summary>
    private sealed class PathNode(PathNode? parent, string key)
    {
        public static string Text(PathNode? node)
        {
            if (node is null) return "";
            if (node.Parent is null) return node.Key;
            var length = -1;
            for (var n = node; n is not null; n = n.Parent) length += n.Key.Length + 1;
            return string.Create(length, node, static (span, last) =>
            {
                var end = span.Length;
                for (var n = last; n is not null; n = n.Parent)
                {
                    end -= n.Key.Length;
                    n.Key.AsSpan().CopyTo(span[end..]);
                    if (end > 0) span[--end] = '.';
                }
            });
        }

        private PathNode? Parent { get; } = parent;
        private string Key { get; } = key;
    }

    private static string KeyText(object? key) => key switch
    {
        null => "None",
        object?[] t => "(" + string.Join(", ", t.Select(KeyText)) + ")",
        byte[] b => System.Text.Encoding.Latin1.GetString(b),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => key.ToString() ?? "",
    };
}
