"""Draw a ``Value`` graph with Graphviz: one record per value, one small node per operation."""

from __future__ import annotations

import graphviz

from zth.micrograd.engine import Value, topological_order


def draw_dot(root: Value, rankdir: str = "LR", fmt: str = "svg") -> graphviz.Digraph:
    """The computation graph behind ``root``, with each node's label, data and grad."""
    if rankdir not in ("LR", "TB"):
        raise ValueError(f"rankdir must be 'LR' or 'TB', got {rankdir!r}")
    dot = graphviz.Digraph(format=fmt, graph_attr={"rankdir": rankdir})
    for v in topological_order(root):
        uid = str(id(v))
        label = f"{v.label} | " if v.label else ""
        dot.node(uid, label=f"{{ {label}data {v.data:.4f} | grad {v.grad:.4f} }}", shape="record")
        if v._op:
            op = f"{v._op}{v._b}" if v._op == "**" else v._op
            dot.node(uid + v._op, label=op)
            dot.edge(uid + v._op, uid)
            for child in v._prev:
                dot.edge(str(id(child)), uid + v._op)
    return dot
