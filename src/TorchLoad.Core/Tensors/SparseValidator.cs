using System.Runtime.InteropServices;
using TorchLoad.Core.Errors;

namespace TorchLoad.Core.Tensors;

/// <summary>torch's sparse invariants (_validate_loaded_sparse_tensors), always checked: indices in range, compressed indices monotone.</summary>
internal static class SparseValidator
{
    public static void Validate(TorchTensor t)
    {
        if (t.Layout == TorchLayout.SparseCoo) ValidateCoo(t);
        else ValidateCompressed(t);
    }

    private static void ValidateCoo(TorchTensor t)
    {
        var indices = t.Indices!;
        var values = t.Values!;
        if (indices.Rank != 2) throw Bad($"COO indices must be 2-dimensional, got {indices.Rank}");
        var sparseDim = indices.Shape[0];
        var nnz = indices.Shape[1];
        if (sparseDim > t.Rank) throw Bad($"COO indices have {sparseDim} rows for a {t.Rank}-dimensional tensor");
        if (values.Rank < 1 || values.Shape[0] != nnz) throw Bad($"COO values hold {(values.Rank < 1 ? 0 : values.Shape[0])} entries for {nnz} indices");
        if (values.Rank - 1 + sparseDim != t.Rank) throw Bad("COO values do not match the dense dimensions");
        for (var d = 1; d < values.Rank; d++)
            if (values.Shape[d] != t.Shape[sparseDim + d - 1]) throw Bad("COO values do not match the dense dimensions");
        var idx = Longs(indices, "indices");
        for (long d = 0; d < sparseDim; d++)
            for (long k = 0; k < nnz; k++)
            {
                var v = idx[d * nnz + k];
                if (v < 0 || v >= t.Shape[d]) throw Bad($"COO index {v} in dimension {d} is outside size {t.Shape[d]}");
            }
    }

    private static void ValidateCompressed(TorchTensor t)
    {
        var rowMajor = t.Layout == TorchLayout.SparseCsr || t.Layout == TorchLayout.SparseBsr;
        var compressed = rowMajor ? t.CrowIndices! : t.CcolIndices!;
        var plain = rowMajor ? t.ColIndices! : t.RowIndices!;
        if (t.Rank < 2) throw Bad($"a {t.Layout} tensor needs at least 2 dimensions");
        if (compressed.Rank != 1 || plain.Rank != 1) return; // batched compressed layouts: only 1-D indices are checked
        var comp = Longs(compressed, "compressed indices");
        var pl = Longs(plain, "plain indices");
        var values = t.Values!;
        var blocks = t.Layout == TorchLayout.SparseBsr || t.Layout == TorchLayout.SparseBsc;
        var blockRows = blocks && values.Rank >= 3 ? values.Shape[1] : 1;
        var blockCols = blocks && values.Rank >= 3 ? values.Shape[2] : 1;
        var compressedDim = rowMajor ? t.Shape[^2] / Math.Max(blockRows, 1) : t.Shape[^1] / Math.Max(blockCols, 1);
        var plainDim = rowMajor ? t.Shape[^1] / Math.Max(blockCols, 1) : t.Shape[^2] / Math.Max(blockRows, 1);
        if (comp.Length != compressedDim + 1) throw Bad($"{t.Layout} compressed indices have {comp.Length} entries, expected {compressedDim + 1}");
        if (comp[0] != 0) throw Bad("compressed indices must start at 0");
        for (var i = 1; i < comp.Length; i++)
            if (comp[i] < comp[i - 1]) throw Bad("compressed indices must not decrease");
        if (comp[^1] != pl.Length) throw Bad($"compressed indices end at {comp[^1]} but there are {pl.Length} plain indices");
        if (values.Shape[0] != pl.Length) throw Bad($"{t.Layout} has {pl.Length} indices but {values.Shape[0]} values");
        foreach (var p in pl)
            if (p < 0 || p >= plainDim) throw Bad($"plain index {p} is outside size {plainDim}");
    }

    private static long[] Longs(TorchTensor t, string what)
    {
        var bytes = t.ToByteArray();
        return t.DType.Name switch
        {
            "int64" => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            "int32" => MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(i => (long)i).ToArray(),
            _ => throw Bad($"sparse {what} must be int64 or int32, got {t.DType}"),
        };
    }

    private static TorchLoadException Bad(string message) => new(TorchLoadErrorReason.InvalidTensorGeometry, $"Invalid sparse tensor: {message}");
}
