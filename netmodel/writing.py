"""Writing plain data as YAML text, the text PyYAML's block style gives, fast.

PyYAML's representer makes a node per value, in Python, before libyaml writes them: 20 s
for a 70,000-Service inventory (2.4 million values). `yaml_text` writes that text
directly for what an imported scenario holds: mappings with string keys, lists, and
values PyYAML writes bare on one line (names, addresses, integers, booleans, null). Any
other value (a float, quoted or long text, a key that is not a name) is written by PyYAML
itself in its place, so the text always reads back as the same data.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from netmodel.reading import PLAIN_FIRST

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_BARE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]*\Z")
"""Text PyYAML writes bare whatever it holds, unless it reads as another type ('true', '80')."""
_STR = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
_LINE_START = re.compile(r"^(?=.)", re.MULTILINE)
"""Where a line that is not empty starts (after "\\n" only: not at other Unicode breaks)."""
_LONGEST_KEY = 128
"""A longer key is written as a complex key ('? ...'): left to PyYAML."""


def yaml_text(data: Any, width: int = 100) -> str:
    """`data` as yaml.dump(data, sort_keys=False, allow_unicode=True, width=width) writes it
    (block style, lists under a key not indented)."""
    if not (type(data) is dict and data):
        return _pyyaml(data, width)
    out: list[str] = []
    _mapping(data, 0, out, width)
    return "".join(out)


def _mapping(data: dict, indent: int, out: list[str], width: int) -> None:
    pad = " " * indent
    for key, value in data.items():
        name = _bare(key) if type(key) is str and len(key) <= _LONGEST_KEY else None
        if name is not None and type(value) is dict and value:
            out.append(f"{pad}{name}:\n")
            _mapping(value, indent + 2, out, width)
        elif name is not None and type(value) is list and value:
            out.append(f"{pad}{name}:\n")
            _sequence(value, indent, out, width)
        elif name is not None and (text := _scalar(value)) is not None:
            out.append(f"{pad}{name}: {text}\n")
        else:
            out.append(_indented(_pyyaml({key: value}, width - indent), pad))


def _sequence(items: list, indent: int, out: list[str], width: int) -> None:
    pad = " " * indent
    for value in items:
        if type(value) in (dict, list) and value:
            inner: list[str] = []
            (_mapping if type(value) is dict else _sequence)(value, indent + 2, inner, width)
            inner[0] = f"{pad}- {inner[0][indent + 2:]}"
            out.extend(inner)
        elif (text := _scalar(value)) is not None:
            out.append(f"{pad}- {text}\n")
        else:
            out.append(_indented(_pyyaml([value], width - indent), pad))


def _scalar(value: Any) -> str | None:
    """How PyYAML writes `value` bare, or None if it would not (or it is a float, or of a
    subclass, which PyYAML's safe dumper refuses)."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is str:
        return _bare(value)
    if kind in (dict, list):  # empty
        return "{}" if kind is dict else "[]"
    return None


def _bare(text: str) -> str | None:
    if not _BARE.match(text):
        return None
    if text[0] not in PLAIN_FIRST or _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR:
        return text
    return None


def _pyyaml(data: Any, width: int) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=max(width, 20))


def _indented(text: str, pad: str) -> str:
    """`text` moved right by `pad`; an empty line (inside quoted text) stays empty."""
    return _LINE_START.sub(pad, text)
