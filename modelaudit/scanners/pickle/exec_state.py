"""State that a class's own `__setstate__` hands to `exec`.

scipy's distributions (`rv_generic.__setstate__`, so every pickled `scipy.stats` distribution,
frozen or not, as in a search's `param_distributions`) rebuild their argument parsers with
`exec(self._parse_arg_template, ns)`: the source comes straight from the pickled state, so a
BUILD of an allowed class runs any code. scipy writes three one-line functions there; the
text is parsed (never compiled) and anything else is reported.
"""

from __future__ import annotations

import ast
from typing import Any, Final

#: The attribute scipy execs; no other library's state uses this name.
TEMPLATE_KEY: Final = "_parse_arg_template"
_FUNCTIONS: Final = frozenset({"_parse_args", "_parse_args_rvs", "_parse_args_stats"})
#: scipy's own template is about 400 bytes plus the shape names.
_MAX_TEMPLATE: Final = 8192


def template_of(state: Any) -> Any:
    """The exec'd template a BUILD state carries, or None (a dict, or (dict, slots))."""
    if type(state) is tuple and len(state) == 2:
        state = state[0]
    if type(state) is dict and TEMPLATE_KEY in state:
        return state[TEMPLATE_KEY]
    return None


def foreign_template(template: Any) -> bool:
    """Whether `template` is something other than scipy's argument-parser functions."""
    if not isinstance(template, str) or len(template) > _MAX_TEMPLATE:
        return True
    try:
        tree = ast.parse(template)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True
    return not all(_parser_function(node) for node in tree.body) or not tree.body


def _parser_function(node: ast.stmt) -> bool:
    if not isinstance(node, ast.FunctionDef) or node.name not in _FUNCTIONS:
        return False
    a = node.args
    if node.decorator_list or node.returns or a.vararg or a.kwarg or a.kwonlyargs:
        return False
    if a.posonlyargs or any(arg.annotation for arg in a.args):
        return False
    if not all(isinstance(d, ast.Constant) for d in a.defaults):
        return False
    return (
        len(node.body) == 1 and isinstance(node.body[0], ast.Return) and _plain(node.body[0].value)
    )


def _plain(value: ast.expr | None) -> bool:
    """Names, constants, tuples of them, and `self._argcheck_rvs(...)` of them."""
    if value is None or isinstance(value, (ast.Name, ast.Constant)):
        return True
    if isinstance(value, ast.Tuple):
        return all(_plain(e) for e in value.elts)
    if isinstance(value, ast.Call):
        f = value.func
        return (
            isinstance(f, ast.Attribute)
            and isinstance(f.value, ast.Name)
            and f.value.id == "self"
            and f.attr == "_argcheck_rvs"
            and all(isinstance(x, (ast.Name, ast.Constant)) for x in value.args)
            and all(isinstance(k.value, (ast.Name, ast.Constant)) for k in value.keywords)
        )
    return False
