"""tinygrad_vg/nn/module.py: Module (registration, names, modes, state dicts, hooks,
dtype conversion), Sequential and ModuleList."""
import numpy as np
import pytest

from tinygrad_vg import nn


class Net(nn.Module):
    """Two sub-modules, a bare Parameter and a buffer-carrying norm, nested one level."""

    def __init__(self, seed=0, dtype=np.float32):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=dtype))
        self.first = nn.Linear(4, 3, dtype=dtype, rng=seed)
        self.norm = nn.BatchNorm1d(3, dtype=dtype)
        self.inner = nn.Sequential(nn.Tanh(), nn.Linear(3, 2, dtype=dtype, rng=seed + 1))

    def forward(self, x):
        return self.inner(self.norm(self.first(x)) * self.scale)


PARAMETER_NAMES = ["scale", "first.weight", "first.bias", "norm.weight", "norm.bias",
                   "inner.1.weight", "inner.1.bias"]
BUFFER_NAMES = ["norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]


def params_of(module):
    return {name: p.data.copy() for name, p in module.named_parameters()}


def assert_same_state(a, b):
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ----- registration and names ---------------------------------------------------------------
def test_attributes_register_parameters_and_modules_with_dotted_names():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == PARAMETER_NAMES
    assert [p for p in net.parameters()] == [p for _, p in net.named_parameters()]
    assert [name for name, _ in net.named_modules()] == ["", "first", "norm", "inner", "inner.0", "inner.1"]
    assert [name for name, _ in net.named_buffers()] == BUFFER_NAMES
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())


def test_reassigning_an_attribute_updates_the_registration():
    net = Net()
    net.first = nn.Linear(4, 3, bias=False)           # a module replaced by another
    net.scale = np.ones(3)                            # a parameter replaced by a plain array
    names = [name for name, _ in net.named_parameters()]
    assert names == ["first.weight", "norm.weight", "norm.bias", "inner.1.weight", "inner.1.bias"]
    del net.inner
    assert [name for name, _ in net.named_parameters()] == ["first.weight", "norm.weight", "norm.bias"]


def test_assigning_an_array_to_a_buffer_keeps_it_registered_in_place():
    bn = nn.BatchNorm1d(3)
    order = list(bn.state_dict())
    bn.running_mean = np.full(3, 2.0, np.float32)
    assert list(bn.state_dict()) == order
    np.testing.assert_array_equal(bn.state_dict()["running_mean"], np.full(3, 2.0))
    bn(np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32))   # updates every buffer
    bn.to(np.float64)
    assert list(bn.state_dict()) == order


def test_a_shared_parameter_is_listed_once():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net[1].weight = net[0].weight
    assert [name for name, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_forgetting_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.linear = nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Broken()


# ----- gradients and modes ---------------------------------------------------------------------
def test_zero_grad_clears_every_parameter_gradient():
    net = Net(dtype=np.float64)
    net(np.random.default_rng(0).normal(size=(5, 4))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_and_eval_propagate_to_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.inner.eval()
    assert net.training and not net.inner.training and not net.inner[1].training


def test_eval_mode_changes_batchnorm_behaviour_and_keeps_running_stats_fixed():
    net = Net(dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(6, 4))
    net(x)
    stats = dict(net.state_dict())
    net.eval()
    a, b = net(x).data, net(x[:1]).data   # eval: samples are independent of the batch
    np.testing.assert_allclose(a[:1], b, rtol=1e-12)
    assert_same_state(stats, net.state_dict())


# ----- state dicts ----------------------------------------------------------------------------------
def test_state_dict_round_trip_restores_outputs_and_buffers():
    source = Net(seed=0, dtype=np.float64)
    x = np.random.default_rng(2).normal(size=(5, 4))
    source(x)   # moves the running statistics away from their initial values
    state = source.state_dict()
    assert list(state) == PARAMETER_NAMES[:5] + BUFFER_NAMES + PARAMETER_NAMES[5:]   # torch's order
    target = Net(seed=10, dtype=np.float64)
    target.load_state_dict(state)
    assert_same_state(state, target.state_dict())
    source.eval(), target.eval()
    np.testing.assert_array_equal(source(x).data, target(x).data)


def test_state_dict_is_a_copy_and_loading_copies():
    net = Net()
    state = net.state_dict()
    state["first.weight"][:] = 7.0
    assert not np.any(net.first.weight.data == 7.0)
    net.load_state_dict(state)
    state["first.weight"][:] = 9.0
    assert np.all(net.first.weight.data == 7.0)


def test_loading_converts_dtype_to_the_models():
    net = Net(dtype=np.float32)
    state = {k: np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v
             for k, v in Net(seed=3).state_dict().items()}
    net.load_state_dict(state)
    assert all(p.dtype == np.float32 for p in net.parameters())


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_strict_loading_names_missing_and_unexpected_keys_and_changes_nothing(change):
    net = Net()
    before = net.state_dict()
    state = Net(seed=5).state_dict()
    if change == "missing":
        del state["inner.1.bias"]
        key = "inner.1.bias"
    else:
        state["inner.2.weight"] = np.zeros((2, 2))
        key = "inner.2.weight"
    with pytest.raises(KeyError, match=key.replace(".", r"\.")):
        net.load_state_dict(state)
    assert_same_state(before, net.state_dict())
    net.load_state_dict(state, strict=False)   # non-strict: the matching keys load
    assert not np.array_equal(before["first.weight"], net.first.weight.data)


def test_shape_mismatch_names_key_and_both_shapes_and_changes_nothing():
    net = Net()
    before = net.state_dict()
    state = Net(seed=5).state_dict()   # every other key is valid and different
    state["inner.1.weight"] = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"inner\.1\.weight.*\(3, 2\).*\(2, 3\)"):
        net.load_state_dict(state)
    assert_same_state(before, net.state_dict())
    with pytest.raises(ValueError):
        net.load_state_dict(state, strict=False)
    assert_same_state(before, net.state_dict())


# ----- containers -------------------------------------------------------------------------------
def test_sequential_applies_modules_in_order_and_indexes():
    seq = nn.Sequential(nn.Linear(3, 4, dtype=np.float64, rng=0), nn.Tanh(), nn.Linear(4, 2, dtype=np.float64, rng=1))
    x = np.random.default_rng(0).normal(size=(5, 3))
    w0, b0, w2, b2 = (seq.state_dict()[k] for k in ("0.weight", "0.bias", "2.weight", "2.bias"))
    np.testing.assert_allclose(seq(x).data, np.tanh(x @ w0.T + b0) @ w2.T + b2, rtol=1e-12)
    assert len(seq) == 3 and isinstance(seq[1], nn.Tanh) and seq[-1] is seq[2]
    assert [type(m) for m in seq] == [nn.Linear, nn.Tanh, nn.Linear]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_module_list_only_holds_modules():
    with pytest.raises(TypeError, match="Modules"):
        nn.ModuleList([nn.Linear(2, 2), np.zeros(2)])


# ----- hooks ----------------------------------------------------------------------------------------
def test_forward_hook_sees_inputs_and_can_replace_the_output():
    lin = nn.Linear(3, 2, dtype=np.float64, rng=0)
    seen = []
    handle = lin.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs, out.data.copy())))
    x = np.ones((1, 3))
    y = lin(x)
    assert seen[0][0] is lin and seen[0][1][0] is x
    np.testing.assert_array_equal(seen[0][2], y.data)
    lin.register_forward_hook(lambda m, inputs, out: out * 0.0 + 5.0)
    assert np.all(lin(x).data == 5.0)
    handle.remove()
    lin(x)
    assert len(seen) == 2


def test_backward_hook_receives_the_output_gradient():
    rng = np.random.default_rng(0)
    lin = nn.Linear(3, 2, dtype=np.float64, rng=0)
    received = []
    lin.register_backward_hook(lambda m, grad: received.append(grad.copy()))
    y = lin(rng.normal(size=(4, 3)))
    y.retain_grad()
    upstream = rng.normal(size=(4, 2))
    (y * upstream).sum().backward()
    assert len(received) == 1
    np.testing.assert_allclose(received[0], upstream, rtol=1e-12)
    np.testing.assert_array_equal(received[0], y.grad)


def test_backward_hook_can_replace_the_gradient():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    plain, hooked = (nn.Linear(3, 2, dtype=np.float64, rng=0) for _ in range(2))
    hooked.register_backward_hook(lambda m, grad: 3.0 * grad)
    for lin in (plain, hooked):
        lin(x).sum().backward()
    np.testing.assert_allclose(hooked.weight.grad, 3.0 * plain.weight.grad, rtol=1e-12)


# ----- dtype ------------------------------------------------------------------------------------------
def test_to_float64_converts_parameters_and_float_buffers():
    net = Net(dtype=np.float32)
    x32 = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    net(x32).sum().backward()
    reference = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in net.state_dict().items()}
    assert net.to(np.float64) is net
    state = net.state_dict()
    assert_same_state(reference, state)
    assert all(p.dtype == np.float64 and p.grad is None for p in net.parameters())
    assert state["norm.running_mean"].dtype == np.float64
    assert state["norm.num_batches_tracked"].dtype == np.int64
    assert net(x32.astype(np.float64)).dtype == np.float64
    assert net.float() is net and all(p.dtype == np.float32 for p in net.parameters())
    with pytest.raises(TypeError, match="float32 or float64"):
        net.to(np.int32)


def test_repr_shows_the_tree():
    text = repr(Net())
    assert "(first): Linear(in_features=4, out_features=3, bias=True)" in text
    assert "(inner): Sequential" in text and "(1): Linear" in text
