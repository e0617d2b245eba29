"""Reads what Sieve needs from a Label Studio label config: the choices, and the task field of the text."""
from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from ..core.errors import InvalidInput
from ..limits import MAX_CLASSES, MAX_LABEL_LENGTH

MAX_CONFIG_CHARS = 1_000_000
"""Longest label config read; Label Studio's own are a few kilobytes."""


@dataclass(frozen=True)
class LabelConfig:
    """A text classification interface: `<Choices name=from_name toName=to_name>` over `<Text name=to_name
    value="$field">`."""

    from_name: str
    to_name: str
    field: str
    classes: list[str]


def parse_label_config(xml: object, field: str = "schema") -> LabelConfig:
    """The first Choices tag of a config and the Text tag it labels; InvalidInput when there is none.

    The XML comes from the network: defusedxml refuses entity expansion and external references.
    """
    if not isinstance(xml, str) or not xml.strip():
        raise InvalidInput("the label config must be a non-empty XML string", field=field)
    if len(xml) > MAX_CONFIG_CHARS:
        raise InvalidInput(f"the label config is longer than {MAX_CONFIG_CHARS} characters", field=field)
    try:
        root = fromstring(xml)
    except (ParseError, DefusedXmlException) as error:
        raise InvalidInput(f"the label config is not acceptable XML: {error}", field=field) from None
    texts = {tag.get("name"): tag.get("value", "") for tag in root.iter() if tag.tag in ("Text", "HyperText")}
    for choices in root.iter("Choices"):
        to_name = choices.get("toName", "").split(",")[0]
        value = texts.get(to_name, "")
        if not value.startswith("$") or len(value) < 2:
            continue
        classes = list(dict.fromkeys(c.get("value") or c.get("alias") or "" for c in choices.iter("Choice")))
        classes = [c for c in classes if 0 < len(c) <= MAX_LABEL_LENGTH]
        if not classes:
            raise InvalidInput("the Choices tag has no Choice values", field=field)
        if len(classes) > MAX_CLASSES:
            raise InvalidInput(f"a pool has at most {MAX_CLASSES} classes", field=field)
        return LabelConfig(from_name=choices.get("name", ""), to_name=to_name, field=value[1:], classes=classes)
    raise InvalidInput('Sieve needs a <Choices> tag whose toName is a <Text value="$field"> tag', field=field)
