from __future__ import annotations

import pytest

from modelaudit.findings import IssueSeverity
from modelaudit.rules.text import TEMPLATE_INJECTION
from modelaudit.scanners.text.jinja_template import analyse_template
from tests.dataformats._chat_templates import LEGITIMATE, MALICIOUS


@pytest.mark.parametrize("name", sorted(LEGITIMATE))
def test_real_templates_raise_nothing(name: str) -> None:
    analysis = analyse_template(LEGITIMATE[name])
    assert analysis.parse_error is None
    assert analysis.findings == []


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_escapes_are_critical(name: str) -> None:
    analysis = analyse_template(MALICIOUS[name])
    assert analysis.parse_error is None
    assert analysis.max_severity is IssueSeverity.CRITICAL, analysis.findings
    assert any(f.rule == TEMPLATE_INJECTION for f in analysis.findings)


def test_namespace_and_system_role_alone_are_fine() -> None:
    source = (
        "{% set ns = namespace(sys='') %}{% set roles = {'system': 'S', 'user': 'U'} %}"
        "{% for m in messages %}{% set ns.sys = roles['system'] ~ m['role'] %}"
        "{{ ns.sys }}{% endfor %}"
    )
    assert analyse_template(source).findings == []


@pytest.mark.parametrize(
    "source",
    [
        "{% include 'other.j2' %}",
        "{% import 'macros.j2' as m %}{{ m.x() }}",
        "{% from 'macros.j2' import x %}{{ x() }}",
        "{% extends 'base.j2' %}{% block b %}{{ messages }}{% endblock %}",
        "{% include messages[0]['content'] %}",
    ],
)
def test_loading_another_template_is_information_only(source: str) -> None:
    """transformers and llama-cpp-python render without a loader, llama.cpp and huggingface.js
    do not parse these tags: rendering fails, no file is read and nothing runs. Reported as
    INFO (before: WARNING), and the message says renderers do not resolve it."""
    analysis = analyse_template(source)
    assert analysis.max_severity is IssueSeverity.INFO, analysis.findings
    assert all("do not resolve" in f.message for f in analysis.findings)
    assert all(f.why and "loader" in f.why for f in analysis.findings)


def test_syntax_error_is_reported_not_raised() -> None:
    analysis = analyse_template("{% if %}")
    assert analysis.parse_error and "syntax" in analysis.parse_error


def test_deep_nesting_does_not_crash() -> None:
    analysis = analyse_template("{{ " + "(" * 20000 + "1" + ")" * 20000 + " }}")
    assert analysis.parse_error is not None


def test_template_is_never_rendered(tmp_path: object) -> None:
    marker = "/tmp/modelaudit-jinja-must-not-exist"
    source = "{{ lipsum.__globals__['os'].popen('touch " + marker + "').read() }}"
    analyse_template(source)
    import os

    assert not os.path.exists(marker)


_ESCAPE = "cycler.__init__.__globals__.os.popen('id').read()"


@pytest.mark.parametrize(
    "source",
    [
        "{{ '{{' }} " + _ESCAPE + " {{ '}}' }}",
        "{% raw %}{{ " + _ESCAPE + " }}{% endraw %}",
        "{{ '{' ~ '{ ' ~ 'cycler.__init__' }}.__globals__.os.popen('id') {{ '}}' }}",
        "{{ '{{ \\x63ycler.\\x5f\\x5finit\\x5f\\x5f.__globals__.os.popen(1) }}' }}",
        # Only one of the values an output may take is a template.
        "{{ 'x' if messages else '{{ cycler.__init__.__globals__.os.popen(1) }}' }}",
    ],
)
def test_template_written_by_the_template_is_analysed(source: str) -> None:
    """A template can write another template as its output; rendering that output again
    (as a prompt pipeline that templates its prompts does) runs it, so it is judged too."""
    analysis = analyse_template(source)
    assert analysis.parse_error is None
    assert analysis.max_severity is IssueSeverity.CRITICAL, analysis.findings
    assert any("writes a template" in f.message for f in analysis.findings)


def test_written_braces_without_an_escape_are_fine() -> None:
    source = "{{ '{{' }} user {{ '}}' }}{% raw %}{% if x %}{{ y }}{% endif %}{% endraw %}"
    assert analyse_template(source).findings == []


def test_a_list_changed_in_place_is_not_folded_from_its_assignment() -> None:
    """`{% do s.append(...) %}` changes what `s|join` is; folding `s` from its assignment
    alone would see the harmless '__glo' and miss the escape."""
    source = "{% set s = ['__glo'] %}{% do s.append('bals__') %}{{ lipsum|attr(s|join) }}"
    assert analyse_template(source).max_severity is IssueSeverity.CRITICAL


@pytest.mark.parametrize(
    "source",
    [
        "{% macro render(m) %}{{ m['role'] }}: {{ m['content'] }}{% endmacro %}"
        "{% for m in messages %}{{ render(m) }}{% endfor %}",
        "{% for name, spec in tool.parameters.properties|dictsort %}{{ name }}={{ spec['type'] }}"
        "{% endfor %}",
        "{% set d = dict(role='system', content='Be brief.') %}{{ d['role'] ~ d.content }}",
        "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}<tools>{% endcall %}",
        "{{ messages|map(attribute='content')|map('trim')|join('\\n') }}",
        "{{ (messages|map(attribute='role')|unique|list|sort)[0] }}",
        # Text that mentions internals is not a name built from pieces.
        "{% macro system() %}Python tools may use subprocess and builtins; guard scripts with "
        "if __name__ == '__main__'.{% endmacro %}{% set s %}{{ system() }}{% endset %}{{ s }}",
        "{% set default_system = 'You are a coding assistant. When the user asks you to run "
        "commands, explain how Python runs them with the subprocess module, which builtins are "
        "involved and how __main__ guards work; never run anything yourself. Answer in the "
        "language of the question and keep examples short and self-contained.' %}"
        "{{ (messages[0]['content'] if messages[0]['role'] == 'system' else default_system)"
        "|trim }}",
    ],
)
def test_macros_dicts_and_sequences_alone_are_fine(source: str) -> None:
    assert analyse_template(source).findings == []
