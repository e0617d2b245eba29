"""Reads what Sieve needs from a Label Studio label config: the choices, and the task field Sieve reads (a
text, or a vector the tasks carry)."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sieve.core.errors import InvalidInput
from sieve.limits import MAX_CLASSES, MAX_LABEL_LENGTH

MAX_CONFIG_CHARS = 1_000_000
"""Longest label config read; Label Studio's own are a few kilobytes."""
MAX_FIELD_NAME = 100
"""Longest task data field name a setup may name for vectors."""

TEXT_TAGS = ("Text", "HyperText")
"""Object tags whose `$field` Sieve featurizes itself; any other object (Image, Audio...) is read as a vector."""

SUPPORTED = (
    'Sieve needs a <Choices> tag whose toName is a <Text value="$field"> tag (a text project), or '
    "another object tag such as <Image> whose tasks carry a vector (a vector project)"
)


@dataclass(frozen=True)
class LabelConfig:
    """A classification interface: `<Choices name=from_name toName=to_name>` over an object tag. A text
    project reads each task's `data[field]` as text; a vector project (`vectors`) reads it as a vector."""

    from_name: str
    to_name: str
    field: str
    classes: list[str]
    vectors: bool = False


def parse_label_config(
    xml: object, field: str = "schema", vector_field: str = "embedding", vectors: bool = False
) -> LabelConfig:
    """The first Choices tag of a config that labels an object; InvalidInput when there is none.

    Choices over a Text tag make a text project on its `$field`; over any other object tag, or with
    `vectors`, a vector project on `vector_field`. The XML comes from the network: defusedxml refuses entity
    expansion and external references.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise InvalidInput("the label config must be a non-empty XML string", field=field)
    if len(xml) > MAX_CONFIG_CHARS:
        raise InvalidInput(f"the label config is longer than {MAX_CONFIG_CHARS} characters", field=field)
    try:
        root = fromstring(xml)
    except (ParseError, DefusedXmlException) as error:
        raise InvalidInput(f"the label config is not acceptable XML: {error}", field=field) from None
    # Object tags show task data: their value names a task field (`$image`); control tags point at them.
    objects = {
        tag.get("name"): tag
        for tag in root.iter()
        if tag.get("name") and tag.get("value", "").startswith("$") and tag.get("toName") is None
    }
    for choices in root.iter("Choices"):
        to_name = choices.get("toName", "").split(",")[0]
        target = objects.get(to_name)
        if target is None:
            continue
        text_field = target.get("value", "")[1:] if target.tag in TEXT_TAGS and not vectors else ""
        if not text_field and target.tag in TEXT_TAGS and not vectors:
            continue
        classes = list(dict.fromkeys(c.get("value") or c.get("alias") or "" for c in choices.iter("Choice")))
        classes = [c for c in classes if 0 < len(c) <= MAX_LABEL_LENGTH]
        if not classes:
            raise InvalidInput("the Choices tag has no Choice values", field=field)
        if len(classes) > MAX_CLASSES:
            raise InvalidInput(f"a pool has at most {MAX_CLASSES} classes", field=field)
        return LabelConfig(
            from_name=choices.get("name", ""),
            to_name=to_name,
            field=text_field or vector_field,
            classes=classes,
            vectors=not text_field,
        )
    raise InvalidInput(
        f"{SUPPORTED}; this config has none (Sieve classifies whole tasks: no labels on regions, spans or time)",
        field=field,
    )
