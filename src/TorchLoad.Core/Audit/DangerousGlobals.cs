namespace TorchLoad.Core.Audit;

/// <summary>
/// Globals known to give code execution, file or network access when a pickle calls them (the
/// picklescan/modelscan/fickling lists, peers.md section 6), as data. Whole modules, and single
/// names in otherwise harmless modules.
/// </summary>
public static class DangerousGlobals
{
    private static readonly HashSet<string> Modules = new(StringComparer.Ordinal)
    {
        "os", "posix", "nt", "sys", "subprocess", "socket", "shutil", "runpy", "webbrowser", "pty", "commands",
        "importlib", "pickle", "_pickle", "cPickle", "dill", "marshal", "types", "code", "codeop", "ctypes",
        "multiprocessing", "asyncio", "http", "urllib", "urllib2", "requests", "httplib", "aiohttp", "ftplib",
        "smtplib", "imaplib", "poplib", "nntplib", "telnetlib", "xmlrpc", "tempfile", "io", "_io", "pathlib",
        "bdb", "pdb", "cProfile", "profile", "timeit", "trace", "venv", "ensurepip", "pip", "setuptools",
        "distutils", "pydoc", "idlelib", "lib2to3", "zipimport", "doctest", "test", "_osx_support", "_aix_support",
        "_pyrepl", "platform", "site", "sysconfig", "signal", "threading", "_thread", "gc", "inspect", "operator",
        "functools", "torch.hub", "torch.jit", "torch._inductor", "torch.package", "torch.utils.cpp_extension",
        "numpy.testing", "numpy.f2py", "numpy.distutils", "jinja2", "yaml", "cloudpickle", "joblib",
    };

    private static readonly HashSet<string> Names = new(StringComparer.Ordinal)
    {
        "builtins.eval", "builtins.exec", "builtins.compile", "builtins.open", "builtins.getattr", "builtins.setattr",
        "builtins.delattr", "builtins.__import__", "builtins.globals", "builtins.locals", "builtins.vars",
        "builtins.breakpoint", "builtins.input", "builtins.apply", "builtins.execfile", "builtins.file",
        "builtins.reload", "builtins.memoryview", "builtins.type", "builtins.object", "builtins.super",
        "torch.load", "torch.save", "torch.from_file", "torch.classes.load_library", "torch.ops.load_library",
        "numpy.load", "numpy.save", "numpy.fromfile", "numpy.loadtxt", "numpy.genfromtxt", "numpy.memmap",
        "torch.serialization.load", "torch.storage._load_from_bytes", "logging.FileHandler", "logging.config.listen",
    };

    /// <summary>True when <paramref name="fullName"/> (<c>module.name</c>) is known to be dangerous.</summary>
    public static bool IsDangerous(string fullName)
    {
        if (Names.Contains(fullName)) return true;
        var dot = fullName.LastIndexOf('.');
        for (var module = dot < 0 ? fullName : fullName[..dot]; module.Length > 0;)
        {
            if (Modules.Contains(module)) return true;
            var d = module.LastIndexOf('.');
            if (d < 0) break;
            module = module[..d];
        }
        return false;
    }
}
