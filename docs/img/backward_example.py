"""Draws docs/img/backward.gif (the animated backward of the sigmoid chain of
docs/backprop-by-hand.md, J = A3 - y) and docs/img/backward_frame.png (its frame 5, shown
in the tutorial and the README). Run: python docs/img/backward_example.py"""
from pathlib import Path

import tinygrad_vg as tg

X, W1, W2, W3, y = 0.5, 0.8, -1.5, 2.0, 1.0
w1 = tg.Tensor(W1, requires_grad=True, name="W1")
w2 = tg.Tensor(W2, requires_grad=True, name="W2")
w3 = tg.Tensor(W3, requires_grad=True, name="W3")
a1 = (w1 * X).sigmoid(); a1.name = "A1"
a2 = (w2 * a1).sigmoid(); a2.name = "A2"
a3 = (w3 * a2).sigmoid(); a3.name = "A3"
J = a3 - y

if __name__ == "__main__":
    here = Path(__file__).parent
    print("wrote", tg.animate_backward(J, here / "backward.gif", seconds_per_frame=1.2))
    steps = tg.step_backward(J)
    print("wrote", steps[5].save(here / "backward_frame.png"))
    for k in range(len(steps)):   # every frame, to look at before shipping
        steps[k].save(f"/tmp/backward_frame_{k}.png")
