"""Chat templates as published with real Hugging Face models, and template-injection payloads."""

from __future__ import annotations

LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
MISTRAL = (
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]"
    "['content'] %}\n    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    "
    "{%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != "
    "(loop.index0 % 2 == 0) %}\n        {{- raise_exception('After the optional system "
    "message, conversation roles must alternate user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first "
    "and system_message is defined %}\n            {{- ' [INST] ' + system_message + "
    "'\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            "
    "{{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    "
    "{%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + "
    "eos_token}}\n    {%- else %}\n        {{- raise_exception('Only user and assistant "
    "roles are supported, with the exception of an initial optional system message!') }}\n"
    "    {%- endif %}\n{%- endfor %}\n"
)
QWEN_TOOLS = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == "
    "'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are "
    'a helpful assistant.\' }}\n    {%- endif %}\n    {{- "\\n\\n# Tools\\n\\n<tools>" }}\n'
    '    {%- for tool in tools %}\n        {{- "\\n" }}\n        {{- tool | tojson }}\n'
    '    {%- endfor %}\n    {{- "\\n</tools><|im_end|>\\n" }}\n{%- endif %}\n'
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n"
    "{%- for message in messages[::-1] %}\n    {%- set index = (messages|length - 1) - "
    'loop.index0 %}\n    {%- if ns.multi_step_tool and message.role == "user" and not'
    "(message.content.startswith('<tool_response>') and message.content.endswith("
    "'</tool_response>')) %}\n        {%- set ns.multi_step_tool = false %}\n        "
    "{%- set ns.last_query_index = index %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- for message in messages %}\n    {%- if message.content is string %}\n        "
    "{%- set content = message.content %}\n    {%- else %}\n        {%- set content = '' %}\n"
    '    {%- endif %}\n    {%- if message.role == "assistant" and message.tool_calls %}\n'
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function"
    " %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    '            {{- \'<tool_call>\\n{"name": "\' }}\n            {{- tool_call.name }}\n'
    '            {{- \'", "arguments": \' }}\n            {%- if tool_call.arguments is '
    "string %}\n                {{- tool_call.arguments }}\n            {%- else %}\n"
    "                {{- tool_call.arguments | tojson }}\n            {%- endif %}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n    {%- else %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}\n"
    "    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    "
    "{{- '<|im_start|>assistant\\n' }}\n    {%- if enable_thinking is defined and "
    "enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}"
    "\n{%- endif %}"
)
GENERATION_BLOCK = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + eos_token }}{% endgeneration %}{% else %}{{ '<|user|>\\n' + "
    "message['content'] }}{% endif %}{% if loop.last %}{% break %}{% endif %}{% endfor %}"
    "{{ strftime_now('%d %b %Y') }}"
)
FILTERS = (
    "{%- set tools_in_user = messages|selectattr('role', 'equalto', 'tool')|list %}"
    "{%- for m in messages|rejectattr('content', 'none')|sort(attribute='role') %}"
    "{{ m.content.split('</think>')[-1].lstrip('\\n') }}{%- endfor %}"
    "{{ messages|map(attribute='content')|join('\\n') }}"
    "{{ tools|map(attribute='function.name')|list|tojson(indent=4) }}"
    "{%- set ns = namespace(last='') %}{%- set ns.last = messages[-1].role %}{{ ns.last }}"
)
LEGITIMATE = {
    "filters": FILTERS,
    "llama3": LLAMA3,
    "mistral": MISTRAL,
    "qwen_tools": QWEN_TOOLS,
    "generation_block": GENERATION_BLOCK,
}

MALICIOUS = {
    "cve_2024_34359": (
        '{% for x in ().__class__.__base__.__subclasses__() %}{% if "warning" in x.__name__ %}'
        "{{ x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/retr0reg\") }}"
        "{% endif %}{% endfor %}"
    ),
    "lipsum_globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "cycler_init": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner_attr": "{{ joiner|attr('__init__')|attr('__globals__') }}",
    "namespace_concat": "{{ namespace|attr('__in' ~ 'it__') }}",
    "self_context": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os }}",
    "set_then_item": "{% set a = '__glo' %}{% set b = a + 'bals__' %}{{ lipsum[b] }}",
    "reversed_name": "{{ lipsum|attr('__slabolg__'|reverse) }}",
    "joined_name": "{{ lipsum|attr(['__', 'globals', '__']|join) }}",
    "format_name": "{{ lipsum|attr('%sglobals%s'|format('__', '__')) }}",
    # formats the folder cannot evaluate must stay unknown, not fold to an empty name
    "format_char_codes": "{{ lipsum|attr('%c%cglobals%c%c'|format(95, 95, 95, 95)) }}",
    "format_precision": "{{ lipsum|attr('%.2sglobals%.2s'|format('__x', '__y')) }}",
    "str_format_spec": "{{ lipsum|attr('{0:.2}globals{0:.2}'.format('__x')) }}",
    "percent_char_codes": "{{ lipsum|attr('%c%cglobals%c%c' % (95, 95, 95, 95)) }}",
    "sliced_name": "{{ lipsum['__slabolg__'[::-1]] }}",
    "escaped_literal": "{{ lipsum['\\x5f\\x5fglobals\\x5f\\x5f'] }}",
    "dynamic_attr": "{{ messages|attr(messages[0]['content']) }}",
    "mro_walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "builtins_eval": "{{ x.__builtins__.eval('1') }}",
    "subprocess_call": "{{ x.subprocess.check_output(['id']) }}",
    "map_attribute": "{{ [lipsum]|map(attribute='__globals__')|list }}",
    "map_dotted": "{{ [lipsum]|map(attribute='__globals__.os')|list }}",
    "selectattr_name": "{{ [cycler]|selectattr('__init__')|list }}",
    "namespace_ref": (
        "{% set ns = namespace(a='') %}{% set ns.a = '__glo' %}{{ lipsum|attr(ns.a ~ 'bals__') }}"
    ),
}

#: Escapes the analysis missed (no finding, or only a warning) until it folded sequences,
#: dict keys, macro and `{% call %}` output, `{% filter %}` blocks and partly known keys. An
#: item lookup falls back to getattr in jinja2 (`lipsum['__globals__']` is the attribute).
SEQUENCE_AND_MACRO_ESCAPES = {
    # `self`'s mangled context reaches every global and the environment, in any spelling.
    "self_context_attribute": "{{ self._TemplateReference__context.vars }}",
    "self_context_item": "{{ self['_TemplateReference__context'] }}",
    "self_context_attr_filter": "{{ self|attr('_TemplateReference__context') }}",
    # dict(...) keyword names are strings: `dict(__globals__=1)|first` is '__globals__'.
    "dict_keyword_first": "{{ lipsum[dict(__globals__=1)|first] }}",
    "dict_keywords_joined": "{{ lipsum[dict(__glo=1, bals__=1)|join] }}",
    "dict_keys_looped": (
        "{% set ns = namespace(k='') %}{% for c in dict(__glo=1, bals__=1) %}"
        "{% set ns.k = ns.k ~ c %}{% endfor %}{{ lipsum[ns.k] }}"
    ),
    "dict_items_looped": (
        "{% set ns = namespace(k='') %}{% for k, v in dict(__glo=1, bals__=2).items() %}"
        "{% set ns.k = ns.k ~ k %}{% endfor %}{{ lipsum[ns.k] }}"
    ),
    "dict_literal_fields": (
        "{% set d = {'a': '__glo', 'b': 'bals__'} %}{{ lipsum[d['a'] ~ d['b']] }}"
    ),
    "list_items_indexed": (
        "{% set p = ['_', 'glo', 'bals'] %}{{ lipsum[p[0] ~ p[0] ~ p[1] ~ p[2] ~ p[0] ~ p[0]] }}"
    ),
    "list_reversed_joined": "{{ lipsum[['bals__', '__glo']|reverse|join] }}",
    "list_sorted_reversed": "{{ lipsum[['bals__', '__glo']|sort(reverse=true)|reverse|join] }}",
    "tuple_assignment": (
        "{% set a, b = dict(__glo=1)|first, dict(bals__=1)|first %}{{ lipsum[a ~ b] }}"
    ),
    # What a macro or a {% call %} body writes is a string like a {% set %} block's.
    "macro_output": "{% macro n() %}__globals__{% endmacro %}{{ lipsum[n()] }}",
    "macro_output_built": "{% macro n() %}__glo{{ 'bals__' }}{% endmacro %}{{ lipsum[n()] }}",
    "caller_body": (
        "{% macro m() %}{{ lipsum[caller()] }}{% endmacro %}{% call m() %}__globals__{% endcall %}"
    ),
    "macro_keyword_arguments": (
        "{% macro m(o, n) %}{{ o[n] }}{% endmacro %}"
        "{{ m(n=dict(__glo=1, bals__=1)|join, o=lipsum) }}"
    ),
    "filter_block_in_set": (
        "{% set a %}{% filter lower %}__GLOBALS__{% endfilter %}{% endset %}{{ lipsum[a] }}"
    ),
    # map('attr', name) is |attr(name) on every item.
    "map_attr_chosen_at_render": "{{ [lipsum]|map('attr', messages[0].content)|list }}",
    "map_attr_popen": "{{ [x]|map('attr', 'popen')|list }}",
    "item_call_popen": "{{ x['popen']('id') }}",
    # Keys only partly known: a character cut from an object's text, repetition, padding.
    "partly_known_key": (
        "{% set u = (lipsum|string)[18] %}{{ lipsum[u ~ u ~ dict(globals=1)|first ~ u ~ u] }}"
    ),
    "repeated_underscores": "{{ lipsum['_' * 2 ~ 'globals' ~ '_' * 2] }}",
    "format_keywords": "{{ lipsum['{a}globals{a}'.format(a='__')] }}",
    "padded_name": "{{ lipsum['globals'.center(11, '_')] }}",
    "literal_text_sliced": "{{ lipsum[(['x__globals__x']|string)[3:14]] }}",
    "char_codes_item": "{{ lipsum['%c%cglobals%c%c'|format(95, 95, 95, 95)] }}",
    "known_pieces_around_unknown": (
        "{% set u = (lipsum|string)[18] %}{% set b = '%c'|format(98) %}"
        "{{ lipsum[u ~ u ~ 'glo' ~ b ~ 'als' ~ u ~ u] }}"
    ),
    # Characters cut from the text of jinja2's own globals (`lipsum|string` is
    # "<function generate_lorem_ipsum at 0x...>", `cycler|string` "<class 'jinja2...").
    "name_cut_from_lipsum_text": (
        "{% set s = lipsum|string %}"
        "{{ lipsum[s[18] ~ s[18] ~ s[4] ~ s[19] ~ s[15] ~ s[27] ~ s[27] ~ s[18] ~ s[18]] }}"
    ),
    "name_cut_from_cycler_text": (
        "{% set u = (lipsum|string)[18] %}{{ lipsum[u ~ u ~ (cycler|string)[1:6] ~ u ~ u] }}"
    ),
    "name_joined_from_namespace_text": (
        "{% set s = namespace ~ '' %}{% set u = (lipsum ~ '')[18] %}"
        "{{ lipsum[[u, u, s[1], s[2], s[3], s[4], s[4], u, u]|join] }}"
    ),
    # |attr(n) where n is 'x' in one place and a message in another is not just 'x'.
    "attr_name_sometimes_from_a_message": (
        "{% set n = 'x' %}{% if messages %}{% set n = messages[0].content %}{% endif %}"
        "{{ lipsum|attr(n) }}"
    ),
    "attr_name_from_a_loop": "{% set n = 'x' %}{% for n in messages %}{% endfor %}{{ lipsum|attr(n) }}",
    "map_attr_name_sometimes_from_a_message": (
        "{% set n = 'x' %}{% if messages %}{% set n = messages[0].content %}{% endif %}"
        "{{ [lipsum]|map('attr', n)|list }}"
    ),
    "macro_attr_name_from_some_call": (
        "{% macro m(n) %}{{ lipsum|attr(n) }}{% endmacro %}{{ m('x') }}{{ m(messages[0].content) }}"
    ),
    "cycler_items": (
        "{% set c = cycler(dict(_=1)|first, 'x') %}"
        "{{ lipsum[c.next() ~ c.next() ~ 'glob' ~ 'als' ~ c.next() ~ c.next()] }}"
    ),
}
MALICIOUS.update(SEQUENCE_AND_MACRO_ESCAPES)
