"""Registries: names mapped to the functions that a decorator registered under them, in the order they
were registered, so that the list of what is supported is the registry itself and cannot drift from it."""
from __future__ import annotations

from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(dict):
    """A dict of name -> function filled by `registers(name)`; registering a name twice is a ValueError
    made from `twice`, a format string of ``name``, ``first`` and ``second`` (the two functions' names)."""

    def __init__(self, twice: str) -> None:
        super().__init__()
        self.twice = twice

    def registers(self, name: str) -> Callable[[F], F]:
        """A decorator that registers its function under `name`."""
        def register(function: F) -> F:
            if name in self:
                raise ValueError(self.twice.format(name=name, first=self[name].__name__, second=function.__name__))
            self[name] = function
            return function
        return register
