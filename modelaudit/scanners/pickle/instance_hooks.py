"""Callables a BUILD stores in an instance under a name Python fetches from the instance.

Special methods are looked up on the type, with exceptions that matter here: the unpickler's
BUILD fetches `inst.__setstate__` with an ordinary attribute lookup (`_pickle.c` load_build,
`pickle.py` load_build), and an instance's `__dict__` beats a method of its class. A first
BUILD whose dict (or slot) state stores `__setstate__` makes the next BUILD of the same object
call it with that BUILD's state, during the load: `{"__setstate__": SentenceTransformer}`, then
`"attacker/repo"`. Pickling the loaded object (`torch.save`, `joblib.dump`) or deep-copying it
fetches `__reduce_ex__` (the pickler, `copy.deepcopy`), `__getstate__` (object's
`__reduce_ex__`) and `__deepcopy__` (`copy.deepcopy`) from the instance the same way.

Not here, because storing them in an instance does nothing: `__getattr__`, `__call__` and the
other operators (looked up on the type), `__copy__` (`copy.copy` asks the class), `__reduce__`
(object's `__reduce_ex__` calls the instance's only when the class overrides `__reduce__`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from .deferred import Later

#: Called by the next BUILD of the object, with that BUILD's state.
SETSTATE: Final = "__setstate__"
#: Called when the loaded object is pickled or deep-copied, with what they are called with.
ON_SAVE: Final[dict[str, tuple[str, ...]]] = {
    "__reduce_ex__": ("protocol",),
    "__getstate__": (),
    "__deepcopy__": ("memo",),
}
_NAMES: Final = (SETSTATE, *ON_SAVE)
#: The same, for a set test.
NAMES: Final = frozenset(_NAMES)


def _parts(state: Any) -> tuple[Any, ...]:
    # BUILD's state is a dict for the instance's __dict__, or (dict or None, slot dict) whose
    # second part is set with setattr, which stores into __dict__ as well
    if type(state) is tuple and len(state) == 2:
        return state
    return (state,)


def stores_hook(state: Any) -> bool:
    """Whether a BUILD's state stores any hook: a few lookups, paid by every BUILD."""
    for part in _parts(state):
        if type(part) is dict:
            for name in _NAMES:
                if name in part:
                    return True
    return False


def stored(state: Any) -> Iterator[tuple[str, Any]]:
    """(hook name, value) of each hook a BUILD's state stores in the instance."""
    for part in _parts(state):
        if type(part) is dict:
            for name in _NAMES:
                value = part.get(name)
                if value is not None:
                    yield name, value


def save_arguments(name: str) -> tuple[Later, ...]:
    """What pickling or copying calls hook `name` with (values made then, never the file's)."""
    return tuple(Later(label) for label in ON_SAVE[name])


__all__ = ["NAMES", "ON_SAVE", "SETSTATE", "save_arguments", "stored", "stores_hook"]
