"""Disjoint sets: which identities (and existing contacts) turn out to name one person."""

from __future__ import annotations


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, x: object) -> object:
        parent = self.parent
        root = parent.setdefault(x, x)
        if root == x:
            return x
        while (up := parent[root]) != root:
            root = up
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb
