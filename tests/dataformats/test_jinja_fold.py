"""Name folding of the chat-template analysis: linear in the template, still sees built names.

Real llama.cpp templates append to one namespace attribute in dozens of places
(`{% set ns.out = ns.out ~ ... %}`); folding each use by recursing into every assignment
was exponential in the number of assignments.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.scanners.text import jinja_template
from modelaudit.scanners.text.jinja_template import _Walker, analyse_template

TEMPLATES = Path(__file__).resolve().parents[1] / "zoo" / "templates"


def _appends(count: int, name: str = "ns.out") -> str:
    return "".join(
        f"{{% if messages[{i}] %}}{{% set {name} = {name} ~ 'piece{i}' %}}{{% endif %}}"
        for i in range(count)
    )


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.jinja")), ids=lambda p: p.stem)
def test_llama_cpp_templates_are_clean(path: Path) -> None:
    analysis = analyse_template(path.read_text(encoding="utf-8"))
    assert analysis.parse_error is None
    assert analysis.findings == []


def test_fold_work_is_linear_in_self_appends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sixty appends to one name: recursion would fold 60**12 values; rounds fold ~60*12."""
    calls = 0
    original = _Walker._fold

    def counting(self: _Walker, node: object, depth: int) -> list[str] | None:
        nonlocal calls
        calls += 1
        return original(self, node, depth)

    monkeypatch.setattr(_Walker, "_fold", counting)
    source = "{% set ns = namespace(out='') %}" + _appends(60) + "{{ ns.out }}"
    analysis = analyse_template(source)
    assert analysis.findings == []
    assert 0 < calls < 20_000


def test_name_built_over_chained_sets_is_still_found() -> None:
    source = (
        "{% set ns = namespace(s='') %}"
        + _appends(40)
        + "{% set ns.s = ns.s ~ '__glo' %}{% set ns.s = ns.s ~ 'bals__' %}"
        + "{{ cycler[ns.s] }}"
    )
    analysis = analyse_template(source)
    assert analysis.max_severity is IssueSeverity.CRITICAL, analysis.findings
    # 2**40 values: the name is judged as one that cannot be listed, on `cycler`.
    assert any("'cycler' object" in f.message for f in analysis.findings), analysis.findings


def test_name_built_through_several_variables_is_still_found() -> None:
    source = (
        "{% set a = '__cl' %}{% set b = a ~ 'as' %}{% set c = b ~ 's__' %}"
        "{% for m in messages %}{% set a = a ~ m %}{% endfor %}"
        "{{ ''[c] }}"
    )
    analysis = analyse_template(source)
    assert any("__class__" in f.message for f in analysis.findings), analysis.findings


def test_fold_budget_ends_inconclusive_not_in_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jinja_template, "FOLD_BUDGET", 2000)
    # Thirty long candidates (within the cap), folded again at every use.
    branches = "".join(
        f"{{% if messages[{i}] %}}{{% set a = 'p{i}' * 100 %}}{{% endif %}}" for i in range(30)
    )
    source = branches + "{{ a ~ 'x' }}" * 10
    analysis = analyse_template(source)
    assert analysis.parse_error and "fold" in analysis.parse_error


def test_sequence_folding_is_linear_in_list_appends(monkeypatch: pytest.MonkeyPatch) -> None:
    """`{% set s = s + [...] %}` two thousand times: each use of `s` folding every assignment
    of `s` again would be quadratic; a name's items are folded once per depth."""
    calls = 0
    original = _Walker._fold_seq

    def counting(self: _Walker, node: object, depth: int) -> list[tuple[str, ...]] | None:
        nonlocal calls
        calls += 1
        return original(self, node, depth)

    monkeypatch.setattr(_Walker, "_fold_seq", counting)
    appends = "".join(f"{{% set s = s + ['p{i}'] %}}" for i in range(2000))
    analysis = analyse_template("{% set s = [] %}" + appends + "{{ lipsum[s|join] }}")
    assert analysis.parse_error is None
    assert 0 < calls < 2000 * 3 * 14
