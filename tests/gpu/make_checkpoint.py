"""Writes a torch.save-style zip checkpoint with the standard library only (no torch needed).

Usage: make_checkpoint.py OUT.pt N_TENSORS MIB_PER_TENSOR
An OrderedDict of float32 tensors 'layer{i}' (1-D), each its own storage, values i + j/1e6.
"""
import array, collections, io, pickle, struct, sys, zipfile


class FloatStorage:  # pickled by reference as GLOBAL 'torch FloatStorage'
    pass


class _Rebuild:  # stands for torch._utils._rebuild_tensor_v2
    pass


FloatStorage.__module__, FloatStorage.__qualname__ = 'torch', 'FloatStorage'
_Rebuild.__module__, _Rebuild.__qualname__ = 'torch._utils', '_rebuild_tensor_v2'


class Tensor:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel

    def __reduce__(self):
        return (_Rebuild, (Storage(self.key, self.numel), 0, (self.numel,), (1,), False, collections.OrderedDict()))


class Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ('storage', FloatStorage, obj.key, 'cpu', obj.numel)
        return None


def main(out, n, mib):
    import types
    fake_torch = types.ModuleType('torch'); fake_torch.FloatStorage = FloatStorage
    fake_utils = types.ModuleType('torch._utils'); fake_utils._rebuild_tensor_v2 = _Rebuild
    sys.modules['torch'] = fake_torch; sys.modules['torch._utils'] = fake_utils
    numel = mib * (1 << 20) // 4
    sd = collections.OrderedDict((f'layer{i}', Tensor(str(i), numel)) for i in range(n))
    buf = io.BytesIO(); Pickler(buf, protocol=2).dump(sd)
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr('archive/data.pkl', buf.getvalue())
        for i in range(n):
            a = array.array('f', (i + j / 1e6 for j in range(0, numel, max(1, numel // 1024))))
            chunk = a.tobytes()
            data = (chunk * (numel * 4 // len(chunk) + 1))[: numel * 4]
            z.writestr(f'archive/data/{i}', data)
        z.writestr('archive/version', '3\n')


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
