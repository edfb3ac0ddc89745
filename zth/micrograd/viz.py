"""Draw a ``Value`` graph with Graphviz: one record per value, one small node per operation."""

from __future__ import annotations

import graphviz


def draw_dot(root, rankdir: str = "LR", fmt: str = "svg") -> graphviz.Digraph:
    """The computation graph behind ``root`` (a Value of either engine), with label, data and grad."""
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    dot = graphviz.Digraph(format=fmt, graph_attr={"rankdir": rankdir})
    seen, stack = {root}, [root]
    while stack:  # every value reachable from root, once
        v = stack.pop()
        uid = str(id(v))
        label = f"{v.label} | " if v.label else ""
        dot.node(uid, label=f"{{ {label}data {v.data:.4f} | grad {v.grad:.4f} }}", shape="record")
        if v._op:
            op = f"**{v._b}" if v._op == "**" else v._op  # the fast engine keeps the exponent apart
            dot.node(uid + v._op, label=op)
            dot.edge(uid + v._op, uid)
            for child in v._prev:
                dot.edge(str(id(child)), uid + v._op)
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
    return dot
