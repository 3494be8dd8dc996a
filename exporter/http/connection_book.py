"""The listener's open connections by client address: who may come in, and who makes room.

One book per listener. A connection is anything with an `address` and an `idle` flag; the book keeps
them by address, oldest first, so that one address cannot take the listener and a flood from many
addresses closes the flooders' idle connections, not the others'.
"""

from __future__ import annotations

from typing import Protocol


class Held(Protocol):
    address: str

    @property
    def idle(self) -> bool: ...

    def make_way(self) -> None: ...


class ConnectionBook:
    def __init__(self, max_connections: int, max_per_client: int, exempt: frozenset[str]) -> None:
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.exempt = exempt  # trusted proxies carry many clients
        self._by_address: dict[str, dict[Held, None]] = {}
        self._open = 0

    def add(self, conn: Held) -> str | None:
        """Book a new connection; why it must be refused (503), or None."""
        mine = self._by_address.setdefault(conn.address, {})
        mine[conn] = None
        self._open += 1
        if conn.address not in self.exempt and len(mine) > self.max_per_client:
            return "too many connections from this address"
        if self._open > self.max_connections and not self._make_room(conn):
            return "too many connections"
        return None

    def remove(self, conn: Held) -> None:
        held = self._by_address.get(conn.address)
        if held is not None and conn in held:
            del held[conn]
            self._open -= 1
            if not held:
                del self._by_address[conn.address]

    def _make_room(self, newcomer: Held) -> bool:
        """Close the oldest idle connection of the address that holds the most, unless the newcomer's
        address is itself among those that hold the most (then the newcomer is refused: no eviction
        cascades while a flood goes on); False if no room can be made."""
        mine = len(self._by_address.get(newcomer.address, ()))
        others = [(a, held) for a, held in self._by_address.items() if a != newcomer.address]
        if not others or max(len(held) for _, held in others) <= mine:
            return False
        for _, held in sorted(others, key=lambda kv: -len(kv[1])):
            victim = next((c for c in held if c.idle), None)
            if victim is not None:
                victim.make_way()
                return True
        return False
