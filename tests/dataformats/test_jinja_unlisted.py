"""Values with more candidates than chat-template folding lists are unknown, never a prefix.

Folding keeps at most `_MAX_CANDIDATES` values per expression. Cutting the list there judged
a name by the values that came first: forty branches setting a name and a forty-first setting
it to '__glo' hid `lipsum['__glo' ~ 'bals__']`. Such a value is now unenumerable, and a name
looked up with it is graded by the object it is looked up on and the pieces it is built from.
Templates are only parsed here, never rendered.
"""

from __future__ import annotations

from modelaudit.findings import IssueSeverity
from modelaudit.scanners.text.jinja_template import analyse_template


def _branches(count: int, name: str = "a", last: str | None = None) -> str:
    """`count` branches each setting `name` to a distinct value, then one setting `last`."""
    out = "".join(
        f"{{% if messages[{i}] %}}{{% set {name} = 'p{i}' %}}{{% endif %}}" for i in range(count)
    )
    if last is not None:
        out += f"{{% if messages[{count}] %}}{{% set {name} = {last!r} %}}{{% endif %}}"
    return out


def _messages(source: str) -> list[str]:
    analysis = analyse_template(source)
    assert analysis.parse_error is None
    return [f"{f.severity.value}: {f.message}" for f in analysis.findings]


def test_name_past_the_candidate_cap_on_lipsum_is_critical() -> None:
    source = _branches(40, last="__glo") + "{% set n = a ~ 'bals__' %}{{ lipsum[n] }}"
    analysis = analyse_template(source)
    assert analysis.max_severity is IssueSeverity.CRITICAL, analysis.findings
    assert any("'lipsum' object" in f.message for f in analysis.findings)


def test_name_past_the_cap_through_attr_and_map_is_critical() -> None:
    for use in ("{{ cycler|attr(n) }}", "{{ [cycler]|map(attribute=n)|list }}"):
        source = _branches(40, last="__init") + "{% set n = a ~ '__' %}" + use
        assert analyse_template(source).max_severity is IssueSeverity.CRITICAL, use


def test_name_past_the_cap_on_data_built_from_internal_pieces_is_critical() -> None:
    """On a message the name is an escape only if its pieces could spell an internal."""
    source = _branches(40, last="__cla") + "{% set n = a ~ 'ss__' %}{{ messages[0][n] }}"
    assert analyse_template(source).max_severity is IssueSeverity.CRITICAL


def test_name_past_the_cap_on_data_from_plain_pieces_is_a_warning() -> None:
    source = _branches(40, last="role") + "{{ messages[0][a] }}"
    analysis = analyse_template(source)
    assert analysis.max_severity is IssueSeverity.WARNING, analysis.findings
    assert any("more values than the analysis can list" in m for m in _messages(source))


def test_chain_longer_than_the_fold_rounds_is_not_data() -> None:
    """Thirteen chained `{% set %}`s: the last is unknown after twelve rounds of
    substitution, and was read as if it held render-time data."""
    chain = "{% set x0 = '__glo' %}" + "".join(
        f"{{% set x{i} = x{i - 1} ~ '' %}}" for i in range(1, 14)
    )
    source = chain + "{% set n = x13 ~ 'bals__' %}{{ lipsum[n] }}"
    assert analyse_template(source).max_severity is IssueSeverity.CRITICAL


def test_values_only_written_out_stay_quiet() -> None:
    """Real templates build far more than 32 strings for output (roles, tool JSON)."""
    source = (
        _branches(40)
        + "{% set ns = namespace(out='') %}"
        + "".join(f"{{% set ns.out = ns.out ~ a ~ 'x{i}' %}}" for i in range(40))
        + "{{ ns.out }}{{ messages[0]['content'] ~ a }}{{ a|upper }}"
    )
    assert _messages(source) == []


def test_written_template_from_unlisted_values_is_not_dropped() -> None:
    """A template writing `{{ lipsum.<a>bals__ }}` with `a` past the cap: its readings cannot
    be listed, so they cannot all be analysed."""
    source = _branches(40, last="__glo") + "{{ '{{ lipsum.' ~ a ~ 'bals__ }}' }}"
    assert any("writes template code" in m for m in _messages(source))


def test_written_template_in_more_readings_than_analysed_is_not_dropped() -> None:
    """Only the first few readings of a written template are analysed; the fifth escaped."""
    expr = repr("{{ lipsum.__globals__ }}")
    for i in reversed(range(4)):
        expr = f"('{{{{ x{i} }}}}' if messages[{i}] else {expr})"
    source = "{{ " + expr + " }}"
    assert analyse_template(source).findings, source


def test_templates_written_deeper_than_analysed_are_not_dropped() -> None:
    """Each level writes the next as a string; the fourth level down was never read."""
    source = "{{ lipsum.__globals__ }}"
    for _ in range(4):
        source = "{{ " + repr(source) + " }}"
    assert analyse_template(source).findings, source
