"""The component's export (WIT ``entry``): what the host calls.

``wray build`` generates the component's top module, which imports
``Entry`` from here and hands over the job's script (``set_script``). The
interpreter and this package are imported once, at build time
(componentize-py pre-initializes the component), so a fresh instance for a
task starts with them loaded; the script itself runs only in the driver.
"""

import ast
import builtins
import linecache
import sys
import traceback
import types as _pytypes

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import tasks
from wit_world.imports import types

from . import _codec
from . import _finalize
from . import _value

# (file name, source) of the job's script.
_script = None

# The instance's actor, once constructed.
_actor = None

# Functions this instance has unpickled, by their shipped bytes: an instance
# runs one task after another (the host reuses a Python job's task
# instances), and as in a Ray worker, a function is loaded once — its
# globals persist between its calls, and no task pays the unpickling again.
_functions = {}

# Functions kept at most; past it the table starts over.
_MAX_FUNCTIONS = 256


def set_script(filename, source):
    """Records the script the driver runs and imports what it needs (called
    by the generated module, at build time). A syntax error fails the
    build."""
    global _script
    compile(source, filename, "exec", ast.PyCF_ONLY_AST)
    _script = (filename, source)
    # Tracebacks show the script's lines in every instance (the component
    # has no files to read them from).
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    from . import _preload

    _preload.preload(source, filename)
    # Last, so that only componentize-py's own initialization, which runs
    # next, sees it (see _finalize).
    _finalize.install()


def _flush():
    # After every call: spelled out, as a loop costs twice as much here.
    try:
        sys.stdout.flush()
    except Exception:
        pass
    try:
        sys.stderr.flush()
    except Exception:
        pass


# The streams _unbuffered last set up.
_streams = (None, None)


def _unbuffered():
    # Output reaches the host line by line, as a task prints it, not when
    # the instance ends (a trap or a limit would lose what was buffered).
    # Once per instance and stream: an instance runs many calls (an actor's,
    # a job's reused task instance), and a user may replace the streams.
    global _streams
    if sys.stdout is _streams[0] and sys.stderr is _streams[1]:
        return
    if _streams[0] is None:
        # The instance's first call (every export begins here): the
        # standard weakref.finalize back before any user code runs.
        _finalize.uninstall()
    _streams = (sys.stdout, sys.stderr)
    for stream in _streams:
        if getattr(stream, "line_buffering", True):
            continue
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass


def _own_frame(filename):
    """Whether a frame is wray's: its private modules, and the serving
    module's handling of a request around the replica's own code."""
    filename = filename.replace("\\", "/")
    return "/wray/_" in filename or filename.endswith("/wray/serve.py")


def _failure(e):
    """The exception's traceback without wray's own frames."""
    te = traceback.TracebackException(type(e), e, e.__traceback__)
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if not _own_frame(f.filename)])
    return "".join(te.format()).rstrip()


def _refile(code, filename):
    """``code`` (and the code nested in it) named as coming from
    ``filename``: cloudpickle ships functions with ``<dynamic-code>`` as
    their file, and the functions it ships by value are the script's."""
    if code.co_filename != "<dynamic-code>":
        return code
    consts = tuple(_refile(c, filename) if isinstance(c, _pytypes.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _renamed(obj):
    """A function or class received from another instance, its code named
    after the script again (and the script's functions it uses)."""
    if _script is None:
        return obj
    filename = _script[0]
    seen = set()

    def fix(o, depth):
        if id(o) in seen or depth > 2:
            return
        seen.add(id(o))
        if isinstance(o, _pytypes.FunctionType):
            o.__code__ = _refile(o.__code__, filename)
            for g in list(o.__globals__.values()):
                if isinstance(g, (_pytypes.FunctionType, type)):
                    fix(g, depth + 1)
            for cell in o.__closure__ or ():
                try:
                    fix(cell.cell_contents, depth + 1)
                except ValueError:
                    pass
        elif isinstance(o, type) and o.__module__ == "__main__":
            for v in list(vars(o).values()):
                fix(getattr(v, "__func__", getattr(v, "fget", v)), depth + 1)

    fix(obj, 0)
    return obj


def _invoke(target, args):
    """Calls ``target`` on a call's encoded arguments: the keyword names,
    then each argument (see ``wray._args``)."""
    values = [_codec.loads(a) for a in args[1:]]
    if args[0] == _codec.NO_KEYWORDS:
        return target(*values)
    names = _codec.loads(args[0])
    split = len(values) - len(names)
    return target(*values[:split], **dict(zip(names, values[split:])))


def _settle(result):
    """A call's value: an ``async def``'s coroutine runs to completion first,
    on the instance's event loop (``_asyncio``)."""
    if isinstance(result, _pytypes.CoroutineType):
        try:
            from . import _asyncio
        except ImportError:
            result.close()
            raise RuntimeError(
                "a coroutine needs an event loop, which `wray build` includes when the job's script "
                "has `async def` or `await`, or imports asyncio"
            ) from None
        return _asyncio.run(result)
    return result


def _finish(result, encode=None):
    """A task's or method's value, as ``_settle`` gives it — but a
    generator's (sync or async) items are handed to the caller one by one
    as they are made (``tasks.yield-item``, each encoded by ``encode``:
    pickled unless the caller is in another language), and the value is
    ``None``."""
    encode = encode or _codec.to_value
    if isinstance(result, _pytypes.GeneratorType):
        for item in result:
            _yield_item(item, encode)
        return None
    if isinstance(result, _pytypes.AsyncGeneratorType):

        async def drain():
            async for item in result:
                _yield_item(item, encode)

        return _settle(drain())
    return _settle(result)


def _yield_item(item, encode):
    try:
        tasks.yield_item(encode(item))
    except Err as err:
        from . import _raise

        _raise(err)


def _has_main_guard(tree):
    """Whether the module has an ``if __name__ == "__main__":`` block."""
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
            if "__name__" in names:
                return True
    return False


def _exit(code):
    _flush()
    if code is None or code == 0:
        return
    if not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    tasks.exit(code)


class Entry(exports.Entry):
    def main(self, args):
        _unbuffered()
        if _script is None:
            raise Err("this component has no script to run (it was not built by `wray build job.py`)")
        filename, source = _script
        sys.argv = [filename] + list(args)
        module = _pytypes.ModuleType("__main__")
        module.__file__ = filename
        module.__builtins__ = builtins
        sys.modules["__main__"] = module
        try:
            tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST)
            exec(compile(tree, filename, "exec"), module.__dict__)
            entry = module.__dict__.get("main")
            if callable(entry) and not _has_main_guard(tree):
                _exit(_settle(entry()))
        except SystemExit as e:
            _exit(e.code)
        except BaseException as e:
            _flush()
            raise Err(_failure(e))
        _flush()

    def run_task(self, function, args):
        _unbuffered()
        try:
            shipped = bytes(args[0])
            fn = _functions.get(shipped)
            if fn is None:
                if len(_functions) >= _MAX_FUNCTIONS:
                    _functions.clear()
                fn = _functions[shipped] = _renamed(_codec.loads(shipped))
            return _codec.to_value(_finish(_invoke(fn, args[1:])))
        except BaseException as e:
            raise Err(_failure(e))
        finally:
            _flush()

    def actor_new(self, class_, args):
        global _actor
        _unbuffered()
        try:
            cls = _renamed(_codec.loads(args[0]))
            _actor = _invoke(cls, args[1:])
        except BaseException as e:
            raise Err(_failure(e))
        finally:
            _flush()

    def actor_call(self, method, args):
        _unbuffered()
        if method == "__wray_ready":
            # The unit value, once the constructor has run — for a served
            # deployment's replica, once the methods the host will call
            # (named in the arguments) are known to be there.
            if args:
                from . import serve

                try:
                    serve._check_methods(_actor, args)
                except BaseException as e:
                    raise Err(_failure(e))
            return types.Value(data=b"", refs=[])
        if method == "reconfigure" and len(args) == 1 and bytes(args[0][:1]) == b"\x00":
            # A served deployment's `user_config` (`wray.serve`; no other
            # caller's first argument starts with a zero byte).
            from . import serve

            try:
                serve._reconfigure(_actor, args[0])
                return types.Value(data=b"", refs=[])
            except BaseException as e:
                raise Err(_failure(e))
            finally:
                _flush()
        if method in ("__wray_http__", "__wray_http_batch__"):
            # A request (or a batch of them) the proxy routes to a served
            # deployment's replica (`wray.serve`).
            from . import serve

            try:
                if method == "__wray_http_batch__":
                    return serve._http_batch_call(_actor, args)
                return serve._http_call(_actor, args)
            except BaseException as e:
                raise Err(_failure(e))
            finally:
                _flush()
        if method == "__ray_terminate__":
            # Ray's graceful end: queued behind the calls before it, then
            # the actor exits for good (this call and any after it fail
            # with RayActorError).
            from .actor import exit_actor

            exit_actor()
        bound = getattr(_actor, method, None)
        if (method.startswith("__") and method != "__call__") or not callable(bound):
            raise Err(f"{type(_actor).__name__} has no method {method!r}")
        # A caller in another language (a Rust job's `DynActor`) sends plain
        # values, positional only; a Python caller always sends the keyword
        # names first, pickled (most often the pre-encoded empty list, so
        # that is checked first). The answer goes back in the caller's kind.
        try:
            if args and (args[0] == _codec.NO_KEYWORDS or not _value.is_value(args[0])):
                return _codec.to_value(_finish(_invoke(bound, args)))
            # A generator's items go to the caller in its encoding too
            # (`DynActor::call_generator`).
            result = _finish(bound(*[_codec.loads(a) for a in args]), _codec.to_plain_value)
            try:
                return _codec.to_plain_value(result)
            except TypeError as e:
                raise TypeError(f"{type(_actor).__name__}.{method} answers a caller in another language: {e}") from None
        except BaseException as e:
            raise Err(_failure(e))
        finally:
            _flush()

    def snapshot(self):
        raise Err("Python actors do not take snapshots (checkpoint_every)")

    def restore(self):
        raise Err("Python actors do not take snapshots (checkpoint_every)")
