"""Reading untrusted text within the limits (`netmodel.limits`): YAML as plain data with the
line of every key and list item, and JSON.

YAML is composed here from the parser's events (libyaml's when PyYAML has it), not by
PyYAML's recursive composer: nesting, the number of values (aliases expanded) and
recursive aliases are refused at the event that crosses the limit, before the tree is
built. Scalars are resolved and constructed as PyYAML's SafeLoader does (plain data
only: tags that would build anything else are refused); duplicate keys are refused.

JSON is scanned for its nesting depth before `json.loads` builds anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from netmodel.errors import NetmodelError
from netmodel.limits import INPUT_BYTES, NESTING, VALUES

Location = tuple[Any, ...]
"""A location in a document: mapping keys and list indices, outermost first."""

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_SCALARS = {tag: make for tag, make in yaml.SafeLoader.yaml_constructors.items()
            if tag not in (None, _SEQ, _MAP, "tag:yaml.org,2002:omap", "tag:yaml.org,2002:pairs",
                           "tag:yaml.org,2002:set")}
"""Scalar tag -> SafeLoader's constructor (str, int, float, bool, null, timestamp, binary)."""
PLAIN_FIRST = frozenset(k for k in yaml.SafeLoader.yaml_implicit_resolvers if k)
"""First characters of a plain scalar that may resolve to something other than a string."""


def read_yaml(text: str, file: str | None, what: str = "document") -> tuple[Any, dict[Location, int]]:
    """The plain data of one YAML document and the 1-based line of each location (() is
    the document); a NetmodelError with the line of the first problem otherwise."""
    if len(text) > INPUT_BYTES():
        raise NetmodelError(INPUT_BYTES.refuse(len(text), f"the {what}'s size in characters"),
                            file=file)
    loader = _Loader(text)
    try:
        return _Composer(loader, file, what).document()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, file) from None
    except (ValueError, TypeError) as exc:  # an explicit tag on text it cannot read: !!int abc
        raise NetmodelError(f"not valid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.YAMLError, text: str, file: str | None) -> NetmodelError:
    if isinstance(exc, yaml.reader.ReaderError):
        return NetmodelError(f"not valid YAML: {exc.reason} (character #x{exc.character:04x})",
                             file=file, line=text.count("\n", 0, exc.position) + 1)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if problem.startswith("but ") and getattr(exc, "context", None):
        problem = f"{exc.context}, {problem}"
    return NetmodelError(f"not valid YAML: {problem}", file=file,
                         line=mark.line + 1 if mark else None)


@dataclass
class _Open:
    """A list or mapping being composed."""

    data: list | dict
    at: Location
    anchor: str | None
    size: int = 1
    record: bool = True
    """Whether the lines of its items are recorded (not inside the value of a merge key `<<`:
    they are where its anchor is)."""
    key: Any = None
    has_key: bool = False
    merging: bool = False
    first_line: dict = field(default_factory=dict)
    merges: list = field(default_factory=list)


class _Composer:
    """Builds plain data from parser events, one event at a time, within the limits."""

    def __init__(self, loader: Any, file: str | None, what: str):
        self.loader, self.file, self.what = loader, file, what
        self.lines: dict[Location, int] = {}
        self.anchors: dict[str, tuple[Any, int, _Open | None]] = {}
        self.stack: list[_Open] = []
        self.values, self.max_values, self.max_depth = 0, VALUES(), NESTING()

    def document(self) -> tuple[Any, dict[Location, int]]:
        get = self.loader.get_event
        get()  # StreamStart
        if isinstance(self.loader.peek_event(), yaml.StreamEndEvent):
            return None, {(): 1}
        start = get()
        self.lines[()] = start.start_mark.line + 1
        result = self._compose(get)
        get()  # DocumentEnd
        extra = get()
        if not isinstance(extra, yaml.StreamEndEvent):
            raise self.error("expected a single YAML document, found a second one", extra)
        return result, self.lines

    def _compose(self, get) -> Any:
        """Compose events until the document's root is complete; return it."""
        while True:
            event = get()
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                done = self.stack.pop()
                value, size = self._close(done), done.size
                self.anchors[done.anchor] = (value, size, None) if done.anchor else None
                self.anchors.pop(None, None)
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                self._open(event)
                continue
            elif isinstance(event, yaml.AliasEvent):
                value, size = self._alias(event)
            else:
                value, size = self._scalar(event), 1
            if not self.stack:
                return value
            self._place(value, size, event)

    def _count(self, n: int, event: Any) -> None:
        self.values += n
        if self.values > self.max_values:
            raise self.error(f"the {self.what} has more than {self.max_values:,} values, aliases "
                             f"expanded (the limit; raise it with the environment variable "
                             f"{VALUES.env})", event)

    def _open(self, event: Any) -> None:
        tag = event.tag if event.tag is not None and not event.implicit else \
            (_SEQ if isinstance(event, yaml.SequenceStartEvent) else _MAP)
        if tag not in (_SEQ, _MAP):
            raise self._tag_error(tag, event)
        if self.stack and self._wants_key():
            raise self.error("a mapping key must be a plain value, not a list or mapping", event)
        at = self._child_at(event)
        if len(self.stack) >= self.max_depth:
            raise self.error(f"nested deeper than {self.max_depth} levels (the limit; raise it "
                             f"with the environment variable {NESTING.env})", event)
        self._count(1, event)
        record = not self.stack or (self.stack[-1].record and not self.stack[-1].merging)
        frame = _Open([] if tag == _SEQ else {}, at, event.anchor, record=record)
        if event.anchor:
            self.anchors[event.anchor] = (frame.data, 0, frame)
        self.stack.append(frame)

    def _alias(self, event: Any) -> tuple[Any, int]:
        if event.anchor not in self.anchors:
            raise self.error(f"found undefined alias *{event.anchor}", event)
        value, size, still_open = self.anchors[event.anchor]
        if still_open is not None:
            raise self.error(f"alias *{event.anchor} refers to a list or mapping that contains "
                             "it: a recursive structure is not plain data", event)
        self._count(size, event)
        return value, size

    def _scalar(self, event: Any) -> Any:
        plain, _ = event.implicit
        value = event.value
        if event.tag is None or event.tag == "!" or (plain and event.tag is None):
            tag = _STR if not plain or (value and value[0] not in PLAIN_FIRST) else \
                self.loader.resolve(yaml.ScalarNode, value, event.implicit)
        else:
            tag = event.tag
        if tag == _MERGE and self.stack and self._wants_key():
            return _MergeKey
        if tag == _STR:
            result = value
        elif tag in _SCALARS:
            result = _SCALARS[tag](self.loader, yaml.ScalarNode(tag, value, event.start_mark,
                                                                event.end_mark, event.style))
        else:
            raise self._tag_error(tag, event)
        if event.anchor:
            self.anchors[event.anchor] = (result, 1, None)
        if not (self.stack and self._wants_key()):
            self._count(1, event)
        return result

    def _wants_key(self) -> bool:
        top = self.stack[-1]
        return isinstance(top.data, dict) and not top.has_key

    def _child_at(self, event: Any) -> Location:
        """The location of the value that `event` starts, recording its line."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.data, list):
            at = top.at + (len(top.data),)
            if top.record:
                self.lines[at] = event.start_mark.line + 1
            return at
        return top.at + (top.key,)

    def _place(self, value: Any, size: int, event: Any) -> None:
        """Put a finished value into the list or mapping being composed."""
        top = self.stack[-1]
        if isinstance(top.data, list):
            if top.record and not isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                self.lines[top.at + (len(top.data),)] = event.start_mark.line + 1
            top.data.append(value)
            top.size += size
            return
        if not top.has_key:
            self._key(top, value, event)
            return
        top.has_key = False
        top.size += size
        if top.merging:
            top.merging = False
            self._merge(top, value, event)
        else:
            top.data[top.key] = value

    def _key(self, top: _Open, key: Any, event: Any) -> None:
        if isinstance(key, (list, dict)):
            raise self.error("a mapping key must be a plain value, not a list or mapping", event)
        top.has_key = True
        if key is _MergeKey:
            top.merging = True
            return
        line = event.start_mark.line + 1
        try:
            first = top.first_line.get(key)
        except TypeError:
            raise self.error(f"a mapping key must be a plain value, got {key!r}", event) from None
        if first is not None:
            raise self.error(f"duplicate key {key!r} (first at line {first})", event,
                             at=top.at + (key,))
        top.first_line[key] = line
        if top.record:
            self.lines[top.at + (key,)] = line
        top.key = key

    def _merge(self, top: _Open, value: Any, event: Any) -> None:
        """`<<: *anchor` or `<<: [*a, *b]`: keys not written in the mapping come from these,
        the first one that has a key winning (as PyYAML merges)."""
        merged = value if isinstance(value, list) else [value]
        if not all(isinstance(m, dict) for m in merged):
            raise self.error("a merge key '<<' takes a mapping or a list of mappings", event)
        top.merges.extend(merged)

    def _close(self, frame: _Open) -> Any:
        if not frame.merges:
            return frame.data
        data: dict = {}
        for merged in reversed(frame.merges):
            data.update(merged)
        data.update(frame.data)
        return data

    def _tag_error(self, tag: str, event: Any) -> NetmodelError:
        shown = tag.replace("tag:yaml.org,2002:", "!!")
        return self.error(f"YAML tag {shown!r} is not allowed: a {self.what} is plain data", event,
                          at=self._here())

    def _here(self) -> Location:
        """The location of the value being composed."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.data, list):
            return top.at + (len(top.data),)
        return top.at + (top.key,) if top.has_key and not top.merging else top.at

    def error(self, message: str, event: Any, at: Location | None = None) -> NetmodelError:
        if at is None:
            at = self.stack[-1].at if self.stack else ()
        shown = dotted(at[:8]) + ("..." if len(at) > 8 else "")
        return NetmodelError(message, file=self.file, line=event.start_mark.line + 1,
                             field=shown or None)


class _MergeKeyType:
    """The `<<` key of a mapping, told apart from a string key '<<'."""


_MergeKey = _MergeKeyType()


def dotted(at: Location) -> str:
    """Return a location written as a field name: 'cluster.mtu', 'sweep.zip[1]'."""
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) and not isinstance(part, bool) else \
            f"{'.' if text else ''}{part}"
    return text


# --- JSON ----------------------------------------------------------------------------

_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1
_CHUNK = 1 << 24


def json_depth(data: bytes, chunk_size: int = _CHUNK) -> tuple[int, int]:
    """(deepest nesting of JSON `data`, byte offset where it is first reached), brackets in
    strings not counted; a scan in chunks that builds nothing."""
    deepest, where, depth, in_string, carry = 0, 0, 0, False, 0
    for start in range(0, len(data), chunk_size):
        chunk = np.frombuffer(data, dtype=np.uint8, count=min(chunk_size, len(data) - start),
                              offset=start)
        quotes = _real_quotes(chunk, carry)
        brackets = np.flatnonzero(_DEPTH_STEP[chunk])
        outside = (np.searchsorted(quotes, brackets) % 2 == 1) == in_string
        steps = _DEPTH_STEP[chunk[brackets[outside]]].astype(np.int64)
        if steps.size:
            levels = depth + np.cumsum(steps)
            if levels.max() > deepest:
                deepest = int(levels.max())
                where = start + int(brackets[outside][np.argmax(levels)])
            depth = int(levels[-1])
        in_string ^= bool(quotes.size % 2)
        carry = _trailing_backslashes(chunk, carry)
    return deepest, where


def _real_quotes(chunk: np.ndarray, carry: int) -> np.ndarray:
    """Positions of the quotes of `chunk` that are not escaped (an odd run of backslashes
    before them; `carry` backslashes end the previous chunk)."""
    quotes = np.flatnonzero(chunk == ord('"'))
    slashes = np.flatnonzero(chunk == ord("\\"))
    if not slashes.size and not carry:
        return quotes
    run_start = np.maximum.accumulate(np.where(np.diff(slashes, prepend=-2) != 1, slashes, 0))
    after = np.searchsorted(slashes, quotes - 1)  # the slash just before a quote, if any
    found = after < slashes.size
    before = np.zeros(quotes.size, dtype=np.int64)
    hit = found.copy()
    hit[found] = slashes[after[found]] == quotes[found] - 1
    before[hit] = quotes[hit] - run_start[after[hit]]
    before += np.where(quotes - before == 0, carry, 0)  # the run reaches back into the last chunk
    return quotes[before % 2 == 0]


def _trailing_backslashes(chunk: np.ndarray, carry: int) -> int:
    """How many backslashes end `chunk` (and run on from the previous chunk's `carry`)."""
    others = np.flatnonzero(chunk[-64:] != ord("\\"))
    if others.size:
        return min(len(chunk), 64) - 1 - int(others[-1])
    others = np.flatnonzero(chunk != ord("\\"))
    return len(chunk) - 1 - int(others[-1]) if others.size else carry + len(chunk)


def read_json(data: bytes, file: str | None, object_pairs_hook=None) -> Any:
    """The JSON document `data` (UTF-8, with or without a byte-order mark), its nesting
    checked first; a NetmodelError with the line of the problem otherwise."""
    deepest, where = json_depth(data)
    if deepest > NESTING():
        raise NetmodelError(f"nested {deepest:,} levels deep, more than the limit of {NESTING()} "
                            f"(raise it with the environment variable {NESTING.env})",
                            file=file, line=data.count(b"\n", 0, where) + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NetmodelError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=file) from None
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except json.JSONDecodeError as exc:
        raise NetmodelError(f"not valid JSON: {exc.msg} (column {exc.colno})", file=file,
                            line=exc.lineno) from None
