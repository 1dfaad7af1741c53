"""Optimizer.state_dict / load_state_dict (torch's layout), and the test of the issue:
training that stops, saves model + optimizer + data generator with tg.save, and resumes
in fresh objects, ends bit for bit where training without a stop ends."""
import copy

import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import functional as F
from tinygrad_vg import nn, optim


def _model(seed, dtype=np.float64):
    return nn.deep_mlp("residual", 6, 4, "tanh", dtype=dtype, rng=seed)


def _train(model, opt, rng, steps):
    """`steps` steps on fresh batches drawn from the data generator `rng`."""
    dtype = next(model.parameters()).dtype
    for _ in range(steps):
        x, y = rng.normal(size=(8, 6)).astype(dtype), rng.normal(size=(8, 6)).astype(dtype)
        opt.zero_grad()
        F.mse_loss(model(tg.Tensor(x)), tg.Tensor(y)).backward()
        opt.step()


OPTIMIZERS = {
    "sgd-momentum": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
                     lambda ps: optim.SGD(ps, lr=1.0)),
    "sgd-nesterov": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True),
                     lambda ps: optim.SGD(ps, lr=1.0)),
    "adam": (lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3),
             lambda ps: optim.Adam(ps)),
}


def _resumed(name, dtype, path, load_optimizer=True):
    make, make_other = OPTIMIZERS[name]
    model, data = _model(0, dtype), np.random.default_rng(7)
    opt = make(list(model.parameters()))
    _train(model, opt, data, 50)
    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "data": data.bit_generator.state,
             "step": 50}, path)
    del model, opt, data
    # fresh objects, built differently: another init, other hyperparameters, another seed
    model, data = _model(99, dtype), np.random.default_rng(12345)
    opt = make_other(list(model.parameters()))
    ckpt = tg.load(path)
    model.load_state_dict(ckpt["model"])
    if load_optimizer:
        opt.load_state_dict(ckpt["optimizer"])
    data.bit_generator.state = ckpt["data"]
    _train(model, opt, data, 100 - ckpt["step"])
    return model


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_after_50_steps_equals_100_steps_bit_for_bit(tmp_path, name, dtype):
    straight = _model(0, dtype)
    opt = OPTIMIZERS[name][0](list(straight.parameters()))
    _train(straight, opt, np.random.default_rng(7), 100)
    resumed = _resumed(name, dtype, tmp_path / "ckpt.npz")
    for (key, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key


def test_resuming_without_the_optimizer_state_does_not_match(tmp_path):
    """The control: the test above can fail, since Adam's moments and step count matter."""
    straight = _model(0)
    opt = OPTIMIZERS["adam"][0](list(straight.parameters()))
    _train(straight, opt, np.random.default_rng(7), 100)
    resumed = _resumed("adam", np.float64, tmp_path / "ckpt.npz", load_optimizer=False)
    assert not np.array_equal(straight.state_dict()["blocks.0.linear.weight"],
                              resumed.state_dict()["blocks.0.linear.weight"])


def _stepped(make):
    model = _model(0)
    opt = make(list(model.parameters()))
    _train(model, opt, np.random.default_rng(1), 3)
    return model, opt


def test_the_layout_is_torchs():
    _, sgd = _stepped(OPTIMIZERS["sgd-momentum"][0])
    sd = sgd.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert sd["param_groups"] == [{"lr": 0.05, "momentum": 0.9, "dampening": 0.0, "weight_decay": 1e-3,
                                   "nesterov": False, "params": list(range(len(sgd.params)))}]
    assert sorted(sd["state"]) == list(range(len(sgd.params)))
    assert all(list(entry) == ["momentum_buffer"] for entry in sd["state"].values())
    _, adam = _stepped(OPTIMIZERS["adam"][0])
    entry = adam.state_dict()["state"][0]
    assert sorted(entry) == ["exp_avg", "exp_avg_sq", "step"] and entry["step"] == 3
    assert entry["exp_avg"].shape == adam.params[0].shape


def test_state_dict_holds_copies():
    model, adam = _stepped(OPTIMIZERS["adam"][0])
    sd = adam.state_dict()
    saved = sd["state"][0]["exp_avg"].copy()
    _train(model, adam, np.random.default_rng(2), 1)
    assert np.array_equal(sd["state"][0]["exp_avg"], saved) and sd["state"][0]["step"] == 3


def test_torch_flags_at_their_default_are_accepted_and_hyperparameters_taken():
    _, adam = _stepped(OPTIMIZERS["adam"][0])
    sd = adam.state_dict()
    sd["param_groups"][0].update(amsgrad=False, maximize=False, foreach=None, capturable=False,
                                 differentiable=False, fused=None)
    sd["param_groups"][0]["betas"] = [0.5, 0.6]         # a list, as after a JSON round trip
    sd["state"][0]["step"] = np.array(3.0)               # torch keeps step as a float tensor
    other = optim.Adam(list(_model(0).parameters()))
    other.load_state_dict(sd)
    assert other.betas == (0.5, 0.6) and other.lr == 0.01
    assert other.state[other.params[0]]["step"] == 3


def _broken(sd, change):
    sd = copy.deepcopy(sd)
    change(sd)
    return sd


BAD = [
    ("not a dict", lambda sd: None, "expected a dict with keys 'param_groups' and 'state'"),
    ("two groups", lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0])),
     "has 2 parameter groups; this optimizer has one"),
    ("fewer params", lambda sd: sd["param_groups"][0]["params"].pop(), "has 7 parameters; this optimizer has 8"),
    ("list ids", lambda sd: sd["param_groups"][0]["params"].__setitem__(0, [0]),
     "the parameter group's 'params' must be distinct integers"),
    ("repeated ids", lambda sd: sd["param_groups"][0]["params"].__setitem__(1, 0),
     "the parameter group's 'params' must be distinct integers"),
    ("negative lr", lambda sd: sd["param_groups"][0].update(lr=-1.0), "lr must be >= 0, got -1.0"),
    ("bad betas", lambda sd: sd["param_groups"][0].update(betas=(0.9, 1.5)), "betas must be two numbers in [0, 1)"),
    ("no eps", lambda sd: sd["param_groups"][0].pop("eps"), "the parameter group has no eps"),
    ("amsgrad", lambda sd: sd["param_groups"][0].update(amsgrad=True), "amsgrad=True, which this optimizer"),
    ("wrong shape", lambda sd: sd["state"][2].update(exp_avg=np.zeros((3, 3))),
     "state[2]['exp_avg'] has shape (3, 3); parameter 2 has shape"),
    ("int array", lambda sd: sd["state"][1].update(exp_avg_sq=np.zeros(6, dtype=int)),
     "must be a float array, got an array of dtype int"),
    ("negative step", lambda sd: sd["state"][0].update(step=-1), "'step'] must be a whole number >= 0"),
    ("missing moment", lambda sd: sd["state"][0].pop("exp_avg"), "Adam keeps ['step', 'exp_avg', 'exp_avg_sq']"),
    ("unknown index", lambda sd: sd["state"].update({40: sd["state"][0]}), "state entry 40 names no parameter"),
]


@pytest.mark.parametrize("what, change, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_state_dict_is_refused_and_nothing_changes(what, change, message):
    _, adam = _stepped(OPTIMIZERS["adam"][0])
    before = adam.state_dict()
    bad = None if what == "not a dict" else _broken(before, change)
    with pytest.raises(ValueError) as info:
        adam.load_state_dict(bad)
    assert message in str(info.value)
    after = adam.state_dict()
    assert after["param_groups"] == before["param_groups"]
    assert all(np.array_equal(after["state"][i][k], before["state"][i][k]) for i in before["state"]
               for k in before["state"][i])


def test_an_sgd_state_dict_is_not_an_adam_one():
    _, sgd = _stepped(OPTIMIZERS["sgd-momentum"][0])
    adam = optim.Adam(list(_model(0).parameters()))
    with pytest.raises(ValueError, match="the parameter group has no betas, eps"):
        adam.load_state_dict(sgd.state_dict())
    assert adam.state == {}
