"""YAML for importers: PyYAML's safe loader with bounds on expansion and nesting.

A workflow is small, but YAML anchors and aliases let a small file stand for
a huge tree (the "billion laughs": ten aliases of ten aliases of ...), and
every consumer that walks the loaded value (fingerprinting a field, turning
it into JSON) would pay for the expanded tree. Deep nesting makes PyYAML's
recursive composer exhaust the stack. So while the node graph is composed,
:class:`BoundedLoader` counts for every node the size of its subtree **as if
every alias were expanded** (an alias adds the size of the node it names,
known in O(1) since that node is complete), and the nesting depth; past
either limit it stops at once. Loading is then linear in the file's size, in
time and memory, and so is every walk of the result.

Duplicate keys in one mapping (``a`` and ``"a"``, ``1`` and ``0x1`` too) are
refused, as the YAML spec says and as GitHub Actions and Argo do: PyYAML
alone would keep the last one silently, so a reviewer reading the first
``run:`` would approve another command than the one imported.

Merge keys (``<<``, or a ``!!merge`` tag) are refused as the mapping holding
them is composed, before PyYAML's constructor would copy their keys (a chain
of them is quadratic); neither GitHub Actions nor Argo supports them. No
second pass over the text is made: a token pre-scan of a deeply nested flow
collection costs PyYAML's scanner up to ~1,000 steps per character.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import LimitExceeded, SourceError

__all__ = ["MAX_DEPTH", "BoundedLoader", "expansion_budget", "load_yaml"]

#: Deepest nesting accepted (mappings and sequences). Real workflows nest
#: fewer than 15 levels; PyYAML's composer recurses once per level.
MAX_DEPTH = 100
#: Nodes always allowed, whatever the file's size (small files with a few aliases).
BASE_NODES = 10_000
#: Expanded nodes allowed per byte of input beyond ``BASE_NODES``. Without
#: aliases a node takes at least two bytes (``1,``), so this allows aliases
#: to multiply a file's content a few times over, and no more.
NODES_PER_BYTE = 2

_MERGE_TAG = "tag:yaml.org,2002:merge"


def expansion_budget(size: int) -> int:
    """The most nodes (aliases expanded) a YAML text of ``size`` bytes may stand for."""
    return BASE_NODES + NODES_PER_BYTE * size


class _Stop(Exception):
    def __init__(self, message: str, mark: Any, limit: bool) -> None:
        super().__init__(message)
        self.message, self.mark, self.limit = message, mark, limit


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that stops past ``max_nodes`` expanded nodes or ``max_depth`` nesting levels.

    Attributes (after loading): ``expanded`` (nodes counted, aliases
    expanded) and ``deepest`` (the deepest nesting seen), for tests and benches.
    """

    def __init__(self, stream: str, *, max_nodes: int, max_depth: int = MAX_DEPTH) -> None:
        super().__init__(stream)
        self.max_nodes, self.max_depth = max_nodes, max_depth
        self.expanded = 0
        self.depth = 0
        self.deepest = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:  # the alias names a node that contains it
                raise _Stop("an alias refers to a node that contains it (a recursive structure)", mark, False)
            self._count(size, mark)
            return node
        mark = self.peek_event().start_mark
        self.depth += 1
        if self.depth > self.max_depth:
            raise _Stop(f"is nested too deeply (more than {self.max_depth} levels)", mark, True)
        self.deepest = max(self.deepest, self.depth)
        start = self.expanded
        self._count(1, mark)
        node = super().compose_node(parent, index)
        self.depth -= 1
        self._sizes[id(node)] = self.expanded - start
        return node

    def compose_mapping_node(self, anchor: Any) -> Any:
        node = super().compose_mapping_node(anchor)
        seen: set[Any] = set()
        for key, _value in node.value:
            if key.tag == _MERGE_TAG:  # a plain ``<<`` key, or an explicit ``!!merge`` tag
                raise _Stop("uses merge keys ('<<'), which neither GitHub Actions nor Argo supports", key.start_mark,
                            False)
            if isinstance(key, yaml.ScalarNode):
                # PyYAML keeps the last of duplicate keys silently; GitHub Actions and Argo (Go's yaml.v3)
                # refuse the file: what lodec pins must be what they would run, so refuse it too.
                value = self.construct_object(key)
                try:
                    duplicate = (key.tag, value) in seen
                    seen.add((key.tag, value))
                except TypeError:  # an unhashable value: PyYAML's constructor reports it
                    continue
                if duplicate:
                    raise _Stop(f"has the key {key.value!r} twice in one mapping (YAML forbids duplicate keys; "
                                "GitHub Actions and Argo refuse them, PyYAML would keep the last)", key.start_mark,
                                False)
        return node

    def _count(self, n: int, mark: Any) -> None:
        self.expanded += n
        if self.expanded > self.max_nodes:
            raise _Stop(f"stands for more than {self.max_nodes} values once its aliases are expanded "
                        f"(the limit grows with the file's size)", mark, True)


def load_yaml(text: str, *, file: str, what: str = "YAML") -> Any:
    """Load one YAML document with :class:`BoundedLoader` (budget :func:`expansion_budget` of its size).

    Raises:
        LimitExceeded: too many nodes once aliases are expanded, or nested
            too deeply (one line, with line and column).
        SourceError: malformed YAML (line and column), a merge key, a
            recursive alias, an invalid value (a timestamp such as 2024-13-45).
    """

    size = len(text.encode("utf-8", "surrogatepass"))
    try:
        loader = BoundedLoader(text, max_nodes=expansion_budget(size))
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _Stop as stop:
        where = f" at line {stop.mark.line + 1}, column {stop.mark.column + 1}" if stop.mark else ""
        cls = LimitExceeded if stop.limit else SourceError
        raise cls(f"{what} {stop.message}{where}", file=file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SourceError(f"invalid YAML{where}: " + " ".join(problem.split()), file=file) from None
    except yaml.YAMLError as exc:
        # ReaderError and friends carry no mark; keep their text on one line.
        raise SourceError("invalid YAML: " + " ".join(str(exc).split()), file=file) from None
    except RecursionError:
        raise LimitExceeded(f"{what} is nested too deeply", file=file) from None
    except (ValueError, OverflowError) as exc:
        # e.g. an implicit timestamp such as 2024-13-45.
        raise SourceError("invalid YAML value: " + " ".join(str(exc).split()), file=file) from None
