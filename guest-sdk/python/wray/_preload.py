"""Imports done at build time, so that they exist at run time.

A component made by componentize-py carries the interpreter's memory as it
was after the build imported the app: a module that was not imported then
cannot be imported later (the component has no files to read it from). So
``wray build`` imports, at build time, every module the job's script names in
an ``import`` statement (anywhere in it, functions included) — which brings
the modules those import, and the job's own modules next to it — and a set
of the standard library that functions shipped to tasks commonly need.

An import that fails at build time is skipped silently: the script meets the
same ``ImportError`` at the same line when it runs, as it would with Python.
"""

import ast
import importlib
import sys

# The standard library preloaded whatever the script names: what task code
# and the values it pickles reach for most often.
STDLIB = [
    "abc",
    "array",
    "base64",
    "bisect",
    "collections",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "io",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "os",
    "random",
    "re",
    "statistics",
    "string",
    "struct",
    "textwrap",
    "time",
    "traceback",
    "typing",
    "uuid",
]


def imports_of(source, filename="<script>"):
    """The absolute module names ``source``'s import statements name, with
    their parent packages."""
    names = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            # `from pkg import sub` may name a submodule.
            names.extend(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def uses_async(source, filename="<script>"):
    """Whether ``source`` has ``async def``, ``await`` or ``async for/with``."""
    kinds = (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)
    return any(isinstance(node, kinds) for node in ast.walk(ast.parse(source, filename)))


def preload(source, filename):
    """Imports what ``source`` needs (see the module's documentation)."""
    for name in STDLIB + imports_of(source, filename):
        try:
            importlib.import_module(name)
        except Exception:
            pass
    # A job with coroutines gets the event loop a component can run
    # (``_asyncio``); one without does not carry asyncio.
    if "asyncio" in sys.modules or uses_async(source, filename):
        from . import _asyncio

        _asyncio.install()
