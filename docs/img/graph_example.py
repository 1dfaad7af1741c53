"""Draws docs/img/graph_example.png: the sigmoid chain of docs/backprop-by-hand.md with a
squared error, edges labelled with gradient norms. Run: python docs/img/graph_example.py
(engine="matplotlib" so the picture is the same with or without Graphviz installed)."""
from pathlib import Path

import tinygrad_vg as tg

X, W1, W2, W3, y = 0.5, 0.8, -1.5, 2.0, 1.0
w1 = tg.Tensor(W1, requires_grad=True, name="W1")
w2 = tg.Tensor(W2, requires_grad=True, name="W2")
w3 = tg.Tensor(W3, requires_grad=True, name="W3")
a1 = (w1 * X).sigmoid(); a1.name = "A1"
a2 = (w2 * a1).sigmoid(); a2.name = "A2"
a3 = (w3 * a2).sigmoid(); a3.name = "A3"
loss = (a3 - y) ** 2
loss.name = "loss"

if __name__ == "__main__":
    path = tg.render(loss, Path(__file__).with_suffix(".png"), grad_labels=True, engine="matplotlib")
    print("wrote", path)
