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

    public static IEnumerable<Found> Walk(object? root)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(string Path, object? Value)>();
        stack.Push(("", root));
        while (stack.Count > 0)
        {
            var (path, value) = stack.Pop();
            if (value is null or string or byte[] or long or double or bool || value.GetType().IsPrimitive) continue;
            // Tensors and storages are reported under every name that holds them (tied weights have
            // two names); containers are entered once, so shared sub-objects and cycles stay linear.
            if (value is TorchTensor t)
            {
                yield return new Found(path, t, t.Storage);
                if (seen.Add(t)) PushChildren(stack, path, t.Parts());
                continue;
            }
            if (value is TorchStorage storage)
            {
                yield return new Found(path, null, storage);
                continue;
            }
            if (!seen.Add(value)) continue;
            switch (value)
            {
                case PyDict d:
                    var items = ((IEnumerable<KeyValuePair<object?, object?>>)d).ToList();
                    for (var i = items.Count - 1; i >= 0; i--) stack.Push((Join(path, KeyText(items[i].Key)), items[i].Value));
                    break;
                case PyObject o:
                    var children = new List<(string, object?)>();
                    if (o.State is not null) children.Add((path, o.State));
                    if (o.DictItems is not null) children.Add((path, o.DictItems));
                    if (o.ListItems is not null) children.Add((path, o.ListItems));
                    if (o.Args.Length > 0) children.Add((path, o.Args));
                    for (var i = children.Count - 1; i >= 0; i--) stack.Push(children[i]);
                    break;
                case IDictionary map: // hashtables and [ordered] dictionaries users build
                    var entries = new List<(string, object?)>();
                    foreach (DictionaryEntry e in map) entries.Add((Join(path, KeyText(e.Key)), e.Value));
                    for (var i = entries.Count - 1; i >= 0; i--) stack.Push(entries[i]);
                    break;
                case IList list:
                    for (var i = list.Count - 1; i >= 0; i--) stack.Push((Join(path, i.ToString(System.Globalization.CultureInfo.InvariantCulture)), list[i]));
                    break;
                case IEnumerable e:
                    var idx = 0;
                    var members = new List<(string, object?)>();
                    foreach (var m in e) members.Add((Join(path, (idx++).ToString(System.Globalization.CultureInfo.InvariantCulture)), m));
                    for (var i = members.Count - 1; i >= 0; i--) stack.Push(members[i]);
                    break;
            }
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

    private static void PushChildren(Stack<(string, object?)> stack, string path, IEnumerable<(string Name, TorchTensor Part)> parts)
    {
        foreach (var (name, part) in parts.Reverse()) stack.Push((Join(path, name), part));
    }

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    private static string KeyText(object? key) => key switch
    {
        null => "None",
        object?[] t => "(" + string.Join(", ", t.Select(KeyText)) + ")",
        byte[] b => System.Text.Encoding.Latin1.GetString(b),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => key.ToString() ?? "",
    };
}
