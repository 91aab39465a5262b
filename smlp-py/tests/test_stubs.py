"""The type stubs describe the extension as it is: every public class, method and function of
``smlp._native`` has a stub, and every stub names something real."""

import ast
import inspect
import os

import smlp
from smlp import _native


def stub_names():
    path = os.path.join(os.path.dirname(smlp.__file__), "_native.pyi")
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} - {"__eq__", "__len__", "__init__"}
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = None
    return names


def test_stubs_match_the_extension():
    stubs = stub_names()
    real = {n for n in dir(_native) if not n.startswith("_") and (inspect.isclass(getattr(_native, n)) or callable(getattr(_native, n)))}
    assert set(stubs) == real
    for name, members in stubs.items():
        if members is None or name == "SMLPError":
            continue
        cls = getattr(_native, name)
        actual = {m for m in dir(cls) if not m.startswith("_")}
        assert members == actual, name
