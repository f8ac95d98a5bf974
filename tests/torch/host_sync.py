"""Test helper: find host synchronizations in device code by reading its source (AST).

A call that reads a tensor back to the host (``.item()``, ``.tolist()``, ``.cpu()``,
``.numpy()``, ``bool/int/float`` of a tensor, a Python branch on a tensor's value) makes the
host wait for the device, and so do the operations whose output size depends on the data
(``nonzero``, ``unique``, ``masked_select``, ``bincount``, ``repeat_interleave`` without
``output_size``) and the comparisons that return a Python bool (``torch.equal``,
``torch.allclose``). :func:`host_syncs` lists such calls in whole modules, except inside
allow-listed functions (the host boundaries, such as pricing bits for the ledger).

Types are not known to an AST, so ``bool``/``int``/``float`` and branch conditions are flagged
when their expression contains a ``torch.*`` call or a tensor-reducing method call
(``x.sum()``, ``x.any()``, ``x.max()``, …): the common forms. A bare ``int(t)`` of a tensor
name is not caught here; the CUDA test under ``torch.cuda.set_sync_debug_mode("error")``
catches whatever runs.

Usage, for the lead's modules too::

    from tests.torch.host_sync import host_syncs
    assert host_syncs([convcheck.torch.compressors], allow={"TorchCompressor.bits"}) == []
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable
from types import ModuleType

#: Methods that copy a tensor to the host.
READ_BACK = frozenset({"item", "tolist", "cpu", "numpy"})
#: Operations whose output size depends on the values (the host waits for the count), and
#: comparisons returning a Python bool.
DATA_SIZED = frozenset({
    "nonzero", "argwhere", "unique", "unique_consecutive", "masked_select", "bincount",
    "histc", "equal", "allclose", "is_nonzero",
})
#: Tensor methods whose result, converted or branched on, is a device value.
TENSOR_METHODS = frozenset({
    "sum", "mean", "max", "min", "amax", "amin", "any", "all", "norm", "prod", "count_nonzero",
    "abs", "square", "sqrt", "double", "float", "isfinite", "isnan", "numel_nonzero", "dot",
    "std", "var", "median", "argmax", "argmin",
})


def _is_torch_call(node: ast.AST) -> bool:
    """``torch.f(...)`` or ``torch.a.f(...)``."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id == "torch" and isinstance(
        node.func, ast.Attribute)


def _device_valued(expr: ast.AST) -> bool:
    """The expression contains a ``torch.*`` call or a tensor-reducing method call."""
    for node in ast.walk(expr):
        if _is_torch_call(node):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in TENSOR_METHODS):
            return True
    return False


def _findings(call_or_test: ast.AST, kind: str) -> str | None:
    """What is wrong with one node, or ``None``."""
    if kind == "test":
        return "branch on a device value" if _device_valued(call_or_test) else None
    node = call_or_test
    assert isinstance(node, ast.Call)
    func = node.func
    keywords = {k.arg for k in node.keywords}
    if isinstance(func, ast.Attribute):
        name = func.attr
        if name in READ_BACK:
            return f".{name}()"
        if name == "to" and any(
            isinstance(a, ast.Constant) and a.value == "cpu"
            for a in [*node.args, *(k.value for k in node.keywords)]
        ):
            return ".to('cpu')"
        if name in DATA_SIZED:
            return f"{name}() (waits for the values)"
        if name == "repeat_interleave" and "output_size" not in keywords:
            return "repeat_interleave() without output_size"
    if isinstance(func, ast.Name) and func.id in ("bool", "int", "float", "complex") and (
            any(_device_valued(a) for a in node.args)):
        return f"{func.id}() of a device value"
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, module: str, allow: frozenset[str]) -> None:
        self.module, self.allow = module, allow
        self.scope: list[str] = []
        self.found: list[str] = []

    def _scoped(self, node: ast.AST) -> None:
        self.scope.append(node.name)  # type: ignore[attr-defined]
        if ".".join(self.scope) not in self.allow:
            self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def _report(self, node: ast.AST, what: str | None) -> None:
        if what is not None:
            where = ".".join(self.scope) or "<module>"
            self.found.append(f"{self.module}:{node.lineno}: {where}: {what}")

    def visit_Call(self, node: ast.Call) -> None:
        self._report(node, _findings(node, "call"))
        self.generic_visit(node)

    def _test(self, node: ast.If | ast.While | ast.IfExp | ast.Assert) -> None:
        self._report(node, _findings(node.test, "test"))
        self.generic_visit(node)

    visit_If = visit_While = visit_IfExp = visit_Assert = _test


def host_syncs(modules: Iterable[ModuleType], allow: Iterable[str] = ()) -> list[str]:
    """``"module:line: function: what"`` for every host synchronization found in the source of
    ``modules``, outside the functions named in ``allow`` (qualified within their module:
    ``"TorchCompressor.bits"``, ``"_to_host"``)."""
    allowed = frozenset(allow)
    found: list[str] = []
    for module in modules:
        scanner = _Scanner(module.__name__, allowed)
        scanner.visit(ast.parse(inspect.getsource(module)))
        found += scanner.found
    return found


def source_syncs(source: str, allow: Iterable[str] = ()) -> list[str]:
    """:func:`host_syncs` of a source text (for testing the guard itself)."""
    scanner = _Scanner("<source>", frozenset(allow))
    scanner.visit(ast.parse(source))
    return scanner.found
