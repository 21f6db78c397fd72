"""Argument aliases: each function's argument names shortened to single-token names.

Long argument names (``party_size_description``, ``plate_number``) cost several tokens each
time the model writes them. In the prompt and the output they become ``a``, ``b``, ``c`` ...
(one token each in common BPE vocabularies), assigned per function in the order of the
schema's ``properties``; parsing maps them back.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping, Sequence
from itertools import product
from typing import Any

from schemas import ToolSpec


class UnknownArgumentError(ValueError):
    """A call uses an argument its function does not declare."""


def alias_names() -> Iterator[str]:
    """``a`` ... ``z``, then ``aa`` ... ``zz``, then ``a26``, ``a27`` ... (never ends)."""
    letters = string.ascii_lowercase
    yield from letters
    for first, second in product(letters, repeat=2):
        yield first + second
    n = len(letters)
    while True:
        yield f"a{n}"
        n += 1


def declared_arguments(tool: ToolSpec) -> tuple[str, ...]:
    """The argument names a tool declares, in schema order."""
    return tool.function.argument_names()


class ArgumentAliases:
    """Per-function mapping real argument name <-> alias (a bijection within each function)."""

    def __init__(self, mapping: Mapping[str, Mapping[str, str]]) -> None:
        self._to_alias: dict[str, dict[str, str]] = {}
        self._to_real: dict[str, dict[str, str]] = {}
        for function, names in mapping.items():
            reverse: dict[str, str] = {}
            for real, alias in names.items():
                if alias in reverse:
                    raise ValueError(
                        f"function {function!r}: alias {alias!r} used for {reverse[alias]!r} and {real!r}"
                    )
                reverse[alias] = real
            self._to_alias[function] = dict(names)
            self._to_real[function] = reverse

    @classmethod
    def for_tools(cls, tools: Sequence[ToolSpec]) -> ArgumentAliases:
        """Short aliases for every declared argument (first spec wins for a repeated function name)."""
        mapping: dict[str, dict[str, str]] = {}
        for tool in tools:
            if tool.name not in mapping:
                mapping[tool.name] = dict(zip(declared_arguments(tool), alias_names(), strict=False))
        return cls(mapping)

    @classmethod
    def identity(cls, tools: Sequence[ToolSpec]) -> ArgumentAliases:
        """Every declared argument keeps its name (aliasing switched off)."""
        mapping: dict[str, dict[str, str]] = {}
        for tool in tools:
            mapping.setdefault(tool.name, {n: n for n in declared_arguments(tool)})
        return cls(mapping)

    @property
    def functions(self) -> tuple[str, ...]:
        """Functions with a mapping."""
        return tuple(self._to_alias)

    def mapping(self, function: str) -> dict[str, str]:
        """Real name -> alias for ``function`` (empty for an unknown function)."""
        return dict(self._to_alias.get(function, {}))

    def alias(self, function: str, argument: str) -> str:
        """The alias of ``argument``; raises :class:`UnknownArgumentError` for an undeclared one."""
        try:
            return self._to_alias[function][argument]
        except KeyError:
            raise UnknownArgumentError(
                f"argument {argument!r} is not declared by function {function!r}"
            ) from None

    def real(self, function: str, alias: str) -> str | None:
        """The real name behind ``alias`` (``None`` when it is no alias of ``function``)."""
        return self._to_real.get(function, {}).get(alias)

    def aliased_arguments(
        self, function: str, arguments: Mapping[str, Any], *, strict: bool = True
    ) -> dict[str, Any]:
        """``arguments`` with aliased names, in the schema's declaration order (structured-output
        decoders such as xgrammar emit properties in that order, so targets must follow it).
        Undeclared names raise when ``strict``, else follow as they are."""
        declared = self._to_alias.get(function, {})
        if strict:
            for name in arguments:
                self.alias(function, name)
        out = {alias: arguments[name] for name, alias in declared.items() if name in arguments}
        out.update((name, value) for name, value in arguments.items() if name not in declared)
        return out

    def real_arguments(self, function: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """``arguments`` with aliases mapped back; names that are no alias stay as they are."""
        reverse = self._to_real.get(function, {})
        out: dict[str, Any] = {}
        for name, value in arguments.items():
            real = reverse.get(name, name)
            if real in out:
                raise ValueError(
                    f"function {function!r}: argument {real!r} given twice (as {name!r} and by name)"
                )
            out[real] = value
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArgumentAliases) and self._to_alias == other._to_alias

    def __repr__(self) -> str:
        return f"ArgumentAliases({self._to_alias!r})"
