"""fg.nn: Module registration and traversal, state dicts, layers, losses, the Tensor-level
functional ops, and the functional_call bridge to fg.grad/fg.jit."""

import copy
import doctest
import importlib
import math
import warnings

import numpy as np
import pytest

import fgrad as fg
import fgrad.numpy as fnp
from fgrad import nn
from fgrad.nn import functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Tanh()])
        self.heads = nn.ModuleDict({"a": nn.Linear(8, 2)})
        self.scale = nn.Parameter(fg.ones(1))
        self.register_buffer("offset", fg.zeros(2))
        self.register_buffer("scratch", fg.zeros(3), persistent=False)
        self.note = "plain attribute"

    def forward(self, x):
        h = self.features(x)
        for block in self.blocks:
            h = block(h)
        return self.heads["a"](h) * self.scale + self.offset


NET_PARAMS = ["features.0.weight", "features.0.bias", "blocks.0.weight", "blocks.0.bias",
              "heads.a.weight", "heads.a.bias", "scale"]


# --------------------------------------------------------------------------- registration


def test_nested_registration_and_traversal():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["scale"] + NET_PARAMS[:-1]
    assert len(list(net.parameters())) == 7
    assert [n for n, _ in net.named_children()] == ["features", "blocks", "heads"]
    assert [type(m).__name__ for m in net.children()] == ["Sequential", "ModuleList",
                                                          "ModuleDict"]
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "features", "features.0", "features.1", "blocks", "blocks.0",
                     "blocks.1", "heads", "heads.a"]
    assert [n for n, _ in net.named_buffers()] == ["offset", "scratch"]
    assert all(p.requires_grad and isinstance(p, nn.Parameter) for p in net.parameters())
    assert net.note == "plain attribute" and "note" not in net._parameters
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert net.get_submodule("blocks.0") is net.blocks[0]
    assert net.get_parameter("heads.a.bias") is net.heads["a"].bias


def test_parameters_feed_an_optimizer_and_backward_reaches_all():
    net = Net()
    net(fg.ones(3, 4)).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())


def test_replacing_a_layer_registers_the_new_one():
    net = Net()
    old = net.heads["a"]
    net.features = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid())
    net.heads["a"] = nn.Linear(8, 2, bias=False)
    params = dict(net.named_parameters())
    assert "heads.a.bias" not in params and params["heads.a.weight"] is net.heads["a"].weight
    assert all(p is not old.weight for p in net.parameters())
    assert isinstance(net.features[1], nn.Sigmoid)


def test_seed_001_freeze_then_replace_fc():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(6, 512)
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            return self.fc(self.body(x).relu())

    model = Model()
    for param in model.parameters():
        param.requires_grad = False
    model.fc = nn.Linear(512, 10)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    out = model(fg.ones(2, 6))
    assert out.shape == (2, 10) and out.requires_grad
    out.sum().backward()
    assert model.body.weight.grad is None and model.fc.weight.grad is not None


def test_shared_parameter_appears_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, nn.ReLU(), a)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 4
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]


def test_registration_errors():
    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(fg.ones(1))
            super().__init__()

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Early()
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"cannot assign 'fgrad.FloatTensor' as parameter "
                                        r"'weight' \(fgrad.nn.Parameter or None expected\)"):
        layer.weight = fg.ones(2, 2)
    with pytest.raises(TypeError, match="child module 'x'"):
        m = nn.Module()
        m.x = nn.ReLU()
        m.x = 3
    with pytest.raises(KeyError, match=r'contain "\."'):
        nn.Module().register_parameter("a.b", None)
    with pytest.raises(KeyError, match="already exists"):
        m = nn.Module()
        m.plain = 1
        m.register_buffer("plain", fg.zeros(1))
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        _ = layer.nope
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


def test_none_and_delete():
    layer = nn.Linear(2, 2)
    layer.bias = None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert "bias" not in layer.state_dict()
    del layer.weight
    assert list(layer.parameters()) == []
    m = nn.Module()
    m.register_buffer("b", fg.ones(1))
    m.b = fg.zeros(1)
    assert m.b.item() == 0.0 and list(m.state_dict()) == ["b"]
    with pytest.raises(TypeError, match="buffer 'b'"):
        m.b = 3


def test_parameter_basics():
    t = fg.ones(3)
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf and isinstance(p, fg.Tensor)
    t.add_(1.0)  # shares memory with the tensor it was made from, as in PyTorch
    assert p.detach().numpy().tolist() == [2.0, 2.0, 2.0]
    assert repr(nn.Parameter(fg.tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    assert not nn.Parameter(fg.ones(1), requires_grad=False).requires_grad
    assert type(p * 2) is fg.Tensor and type(p.detach()) is fg.Tensor
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(fg.tensor([1, 2]))
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.requires_grad
    q.data = fg.zeros(3)
    assert p.detach().numpy().tolist() == [2.0, 2.0, 2.0]


def test_deepcopy_module_is_independent():
    net = Net()
    twin = copy.deepcopy(net)
    assert isinstance(twin.scale, nn.Parameter)
    with fg.no_grad():
        twin.features[0].weight.fill_(0.0)
    assert not bool((net.features[0].weight == 0).all())
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in net.named_parameters()]


# --------------------------------------------------------------------------- modes, grads


def test_train_eval_return_self_and_propagate():
    net = Net()
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    net.blocks.eval()
    assert net.training and not net.blocks[0].training and net.features.training
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")


def test_zero_grad():
    net = Net()
    net(fg.ones(2, 4)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_():
    net = Net()
    assert net.features.requires_grad_(False) is net.features
    assert [n for n, p in net.named_parameters() if not p.requires_grad] == [
        "features.0.weight", "features.0.bias"]


def test_to_dtype_keeps_parameter_objects():
    net = Net()
    weight = net.features[0].weight
    net(fg.ones(1, 4)).sum().backward()
    assert net.to(fg.float64) is net
    assert net.features[0].weight is weight and weight.dtype == fg.float64
    assert weight.grad.dtype == fg.float64 and net.offset.dtype == fg.float64
    out = net(fg.ones(2, 4, dtype=fg.float64))
    assert out.dtype == fg.float64
    net.float()
    assert weight.dtype == fg.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(fg.int64)
    with pytest.raises(RuntimeError, match="CPU only"):
        net.to("cuda")


def test_forward_hooks():
    layer = nn.Linear(2, 2)
    calls = []
    h1 = layer.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    h2 = layer.register_forward_hook(lambda m, args, out: out * 0)
    out = layer(fg.ones(1, 2))
    assert calls == ["pre"] and not out.detach().numpy().any()
    h1.remove()
    h2.remove()
    assert layer(fg.ones(1, 2)).detach().numpy().any() and calls == ["pre"]


# --------------------------------------------------------------------------- repr


def test_repr_like_pytorch():
    assert repr(Net()) == (
        "Net(\n"
        "  (features): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "    (1): ReLU()\n"
        "  )\n"
        "  (blocks): ModuleList(\n"
        "    (0): Linear(in_features=8, out_features=8, bias=True)\n"
        "    (1): Tanh()\n"
        "  )\n"
        "  (heads): ModuleDict(\n"
        "    (a): Linear(in_features=8, out_features=2, bias=True)\n"
        "  )\n"
        ")")
    assert repr(nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])) == (
        "ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
        "  (3): ReLU()\n)")
    assert [repr(m) for m in (nn.Dropout(), nn.Flatten(), nn.Softmax(dim=-1),
                              nn.Embedding(10, 3, padding_idx=0), nn.CrossEntropyLoss(),
                              nn.ReLU(inplace=True), nn.Linear(3, 1, bias=False))] == [
        "Dropout(p=0.5, inplace=False)", "Flatten(start_dim=1, end_dim=-1)", "Softmax(dim=-1)",
        "Embedding(10, 3, padding_idx=0)", "CrossEntropyLoss()", "ReLU(inplace=True)",
        "Linear(in_features=3, out_features=1, bias=False)"]


# --------------------------------------------------------------------------- state dict


def test_state_dict_keys_values_and_sharing():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["scale", "offset", *NET_PARAMS[:-1]]
    assert "scratch" not in sd  # non-persistent buffer
    assert all(not v.requires_grad and type(v) is fg.Tensor for v in sd.values())
    # Values share memory with the module (as PyTorch's do) but never carry grad.
    with fg.no_grad():
        net.scale.fill_(3.0)
    assert sd["scale"].item() == 3.0
    kept = net.state_dict(keep_vars=True)
    assert kept["scale"] is net.scale


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    result = b.load_state_dict(a.state_dict())
    assert repr(result) == "<All keys matched successfully>"
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va.numpy(), vb.numpy())
    # The copy is a copy: changing a afterwards does not change b.
    with fg.no_grad():
        a.scale.fill_(5.0)
    assert b.scale.item() == 1.0
    # NumPy arrays are accepted as values.
    b.load_state_dict({k: v.numpy() * 0 for k, v in a.state_dict().items()})
    assert b.scale.item() == 0.0 and b.scale.requires_grad


def test_load_state_dict_strict_errors():
    layer = nn.Linear(3, 2)
    original = layer.weight.detach().numpy().copy()
    sd = {"weight": fg.zeros(2, 3), "bias2": fg.zeros(2)}
    with pytest.raises(RuntimeError) as info:
        layer.load_state_dict(sd)
    text = str(info.value)
    assert text.startswith("Error(s) in loading state_dict for Linear:\n\t"
                           'Missing key(s) in state_dict: "bias". \n\t'
                           'Unexpected key(s) in state_dict: "bias2". ')
    # Nothing was copied: a failed load leaves the module unchanged.
    assert np.array_equal(layer.weight.detach().numpy(), original)
    result = layer.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["bias2"]
    assert not layer.weight.detach().numpy().any()


def test_load_state_dict_shape_mismatch_is_always_an_error():
    layer = nn.Linear(3, 2)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for weight: copying a param with "
                                               r"shape fgrad.Size\(\[2, 2\]\) from checkpoint, "
                                               r"the shape in current model is "
                                               r"fgrad.Size\(\[2, 3\]\)"):
            layer.load_state_dict({"weight": fg.zeros(2, 2), "bias": fg.zeros(2)},
                                  strict=strict)
    with pytest.raises(TypeError, match="dict-like"):
        layer.load_state_dict([1, 2])


def test_load_state_dict_nested_missing_keys():
    net = Net()
    sd = net.state_dict()
    del sd["blocks.0.bias"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "blocks.0.bias"'):
        Net().load_state_dict(sd)


# --------------------------------------------------------------------------- layers


def test_linear_default_init_and_forward():
    fg.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert w.dtype == np.float32 and w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # kaiming_uniform(a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)): variance bound^2 / 3.
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.02 and abs(w.mean()) < 0.01 * bound
    assert np.abs(w).max() > 0.99 * bound
    x = np.random.default_rng(0).standard_normal((5, 400)).astype(np.float32)
    out = layer(fg.from_numpy(x))
    assert out.grad_fn.name() == "AddmmBackward0"
    np.testing.assert_allclose(out.detach().numpy(), x @ w.T + b, rtol=1e-5, atol=1e-5)
    no_bias = nn.Linear(4, 2, bias=False, dtype=fg.float64)
    assert no_bias.bias is None and no_bias.weight.dtype == fg.float64
    assert nn.Linear(4, 2)(fg.ones(4)).shape == (2,)  # unbatched input


def test_linear_gradients_for_batched_unbatched_and_large_inputs():
    rng = np.random.default_rng(1)
    # (5, 7) stays with np.dot; (128, 256) @ (512, 256).T goes to SciPy's gemm.
    for batch, n_in, n_out in [((5,), 7, 3), ((), 7, 3), ((2, 3), 7, 3), ((128,), 256, 512)]:
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(batch + (n_in,)).astype(dtype)
            w = rng.standard_normal((n_out, n_in)).astype(dtype)
            b = rng.standard_normal(n_out).astype(dtype)
            xt, wt, bt = (fg.tensor(v, requires_grad=True) for v in (x, w, b))
            out = F.linear(xt, wt, bt)
            assert out.is_contiguous() and out.dtype == xt.dtype
            tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else {}
            np.testing.assert_allclose(out.detach().numpy(), x @ w.T + b, **tol)
            ct = rng.standard_normal(out.shape).astype(dtype)
            out.backward(fg.tensor(ct))
            flat_x, flat_ct = x.reshape(-1, n_in), ct.reshape(-1, n_out)
            np.testing.assert_allclose(wt.grad.numpy(), flat_ct.T @ flat_x, **tol)
            np.testing.assert_allclose(xt.grad.numpy(), ct @ w, **tol)
            np.testing.assert_allclose(bt.grad.numpy(), flat_ct.sum(0), **tol)
    big = rng.standard_normal((128, 512)).astype(np.float32)
    weight = fg.from_numpy(rng.standard_normal((256, 512)).astype(np.float32))
    strided = F.linear(fg.from_numpy(big).t().contiguous().t(), weight)  # not C-ordered
    np.testing.assert_allclose(strided.numpy(), big @ weight.numpy().T, rtol=1e-4, atol=1e-3)


def test_linear_under_jit_has_no_transposes_or_activation_sized_constants():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = np.ones((5, 3), np.float32)

    def loss(params):
        return fnp.sum(nn.functional_call(model, params, x))

    closed = fg.make_jaxpr(fg.grad(loss))(nn.get_params(model))
    assert "transpose" not in str(closed)
    assert all(np.size(c) < 5 * 4 for c in closed.consts)


def test_linear_is_reproducible_under_manual_seed():
    fg.manual_seed(123)
    a = nn.Linear(3, 3).weight.detach().numpy().copy()
    fg.manual_seed(123)
    b = nn.Linear(3, 3).weight.detach().numpy()
    assert np.array_equal(a, b)


def test_activations_values_and_gradients():
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]], np.float32)
    cases = [
        (nn.ReLU(), np.maximum(x, 0), (x > 0).astype(np.float32)),
        (nn.Tanh(), np.tanh(x), 1 - np.tanh(x) ** 2),
        (nn.Sigmoid(), 1 / (1 + np.exp(-x)), np.exp(-x) / (1 + np.exp(-x)) ** 2),
        (nn.LeakyReLU(0.1), np.where(x > 0, x, 0.1 * x), np.where(x > 0, 1, 0.1)),
        (nn.Identity(), x, np.ones_like(x)),
    ]
    for module, value, grad in cases:
        t = fg.tensor(x, requires_grad=True)
        out = module(t)
        np.testing.assert_allclose(out.detach().numpy(), value, rtol=1e-6, err_msg=repr(module))
        out.sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-5, atol=1e-7,
                                   err_msg=repr(module))


def test_softmax_and_log_softmax_modules():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]], np.float32)
    s = nn.Softmax(dim=1)(fg.from_numpy(x)).numpy()
    e = np.exp(x[0] - x[0].max())
    np.testing.assert_allclose(s[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(s[1], [1.0, 0.0, 0.0])
    ls = nn.LogSoftmax(dim=1)(fg.from_numpy(x)).numpy()
    assert np.isfinite(ls).all()
    np.testing.assert_allclose(ls[1], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(nn.Softmax(dim=0)(fg.from_numpy(x)).numpy().sum(0), 1.0,
                               rtol=1e-6)


def test_flatten():
    x = fg.arange(24.0).reshape(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Flatten(start_dim=0)(x).shape == (24,)


def test_dropout():
    fg.manual_seed(0)
    drop = nn.Dropout(p=0.25)
    x = fg.ones(200, 100, requires_grad=True)
    out = drop(x)
    values = out.detach().numpy()
    kept = values != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(values[kept], 1 / 0.75, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), values)  # d out / d x is the scaled mask
    drop.eval()
    assert drop(x) is x or np.array_equal(drop(x).detach().numpy(), x.detach().numpy())
    assert not nn.Dropout(1.0)(fg.ones(5)).numpy().any()
    assert np.array_equal(nn.Dropout(0.0)(fg.ones(5)).numpy(), np.ones(5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_embedding():
    fg.manual_seed(0)
    emb = nn.Embedding(5, 3, padding_idx=1)
    w = emb.weight.detach().numpy().copy()
    assert not w[1].any()  # the padding row starts at zero
    idx = fg.tensor([[0, 2, 2], [1, 4, 0]])
    out = emb(idx)
    assert out.shape == (2, 3, 3) and out.grad_fn.name() == "EmbeddingBackward0"
    np.testing.assert_array_equal(out.detach().numpy(), w[idx.numpy()])
    out.sum().backward()
    counts = np.array([2, 0, 2, 0, 1], np.float32)  # padding row 1 gets no gradient
    np.testing.assert_array_equal(emb.weight.grad.numpy(), np.repeat(counts[:, None], 3, 1))
    with pytest.raises(IndexError, match="index out of range"):
        emb(fg.tensor([5]))
    with pytest.raises(RuntimeError, match="Long, Int"):
        emb(fg.tensor([0.0]))
    pre = nn.Embedding.from_pretrained(fg.eye(3))
    assert not pre.weight.requires_grad
    np.testing.assert_array_equal(pre(fg.tensor([2])).numpy(), [[0.0, 0.0, 1.0]])


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    seq.append(nn.Sigmoid())
    assert seq(fg.ones(4, 2)).shape == (4, 1) and len(list(seq.parameters())) == 4
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]

    layers = nn.ModuleList()
    layers.append(nn.Linear(2, 2))
    layers.extend([nn.Linear(2, 2), nn.ReLU()])
    layers += [nn.Tanh()]
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "Linear", "ReLU",
                                                  "Tanh"]
    assert [n for n, _ in layers.named_parameters()] == ["1.weight", "1.bias", "2.weight",
                                                         "2.bias"]
    layers[0] = nn.Linear(2, 2)
    assert len(list(layers.parameters())) == 6
    with pytest.raises(IndexError):
        layers[9]

    heads = nn.ModuleDict()
    heads["x"] = nn.Linear(2, 1)
    heads.update({"y": nn.Linear(2, 2)})
    assert list(heads.keys()) == ["x", "y"] and "x" in heads and len(heads) == 2
    assert heads.pop("x") is not None and list(heads) == ["y"]


# --------------------------------------------------------------------------- losses


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_cross_entropy_loss_values_and_gradient():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 3, 1, 1, 2, 0])
    p = _softmax(z.astype(np.float64))
    per_sample = -np.log(p[np.arange(6), y])
    for reduction, want in (("mean", per_sample.mean()), ("sum", per_sample.sum()),
                            ("none", per_sample)):
        logits = fg.tensor(z, requires_grad=True)
        loss = nn.CrossEntropyLoss(reduction=reduction)(logits, fg.tensor(y))
        np.testing.assert_allclose(loss.detach().numpy(), want, rtol=1e-5)
        loss.sum().backward()
        onehot = np.eye(4)[y]
        scale = 1 / 6 if reduction == "mean" else 1.0
        np.testing.assert_allclose(logits.grad.numpy(), (p - onehot) * scale, atol=1e-6)


def test_cross_entropy_weight_ignore_index_and_stability():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0], [5.0, 1.0, 0.0]], np.float32)
    y = np.array([2, 1, -100])
    logits = fg.tensor(z, requires_grad=True)
    loss = nn.CrossEntropyLoss()(logits, fg.tensor(y))  # row 3 ignored
    np.testing.assert_allclose(loss.item(), (2000.0 + math.log(3)) / 2, rtol=1e-6)
    loss.backward()
    assert np.isfinite(logits.grad.numpy()).all() and not logits.grad.numpy()[2].any()
    w = fg.tensor([1.0, 2.0, 3.0])
    weighted = nn.CrossEntropyLoss(weight=w)(fg.tensor(z[:2]), fg.tensor(y[:2]))
    np.testing.assert_allclose(weighted.item(), (3 * 2000.0 + 2 * math.log(3)) / 5, rtol=1e-6)
    assert "weight" in nn.CrossEntropyLoss(weight=w).state_dict()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, 1, 7])
def test_cross_entropy_ignore_index_any_value(reduction, ignore_index):
    # As PyTorch: a target equal to ignore_index is skipped even when it is no class
    # (7 of 4); with no target ignored the loss takes a shorter program, same numbers.
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 4))
    for y in (np.array([0, 3, 1, 1, 2, 0]), np.array([0, 3, ignore_index, 1, 2, 0])):
        keep = y != ignore_index
        p = _softmax(z)
        per_sample = np.where(keep, -np.log(p[np.arange(6), np.where(keep, y, 0)]), 0.0)
        want = {"mean": per_sample.sum() / keep.sum(), "sum": per_sample.sum(),
                "none": per_sample}[reduction]
        for loss_fn in (nn.functional.cross_entropy,
                        lambda z, y, **kw: nn.functional.nll_loss(
                            nn.functional.log_softmax(z, dim=1), y, **kw)):
            logits = fg.tensor(z, requires_grad=True)
            loss = loss_fn(logits, fg.tensor(y), ignore_index=ignore_index,
                           reduction=reduction)
            np.testing.assert_allclose(loss.detach().numpy(), want, rtol=1e-12)
            loss.sum().backward()
            scale = 1 / keep.sum() if reduction == "mean" else 1.0
            onehot = np.eye(4)[np.where(keep, y, 0)]
            want_grad = (p - onehot) * scale * keep[:, None]
            np.testing.assert_allclose(logits.grad.numpy(), want_grad, atol=1e-12)
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        nn.functional.cross_entropy(fg.tensor(z), fg.tensor([0, 4, 0, 0, 0, 0]),
                                    ignore_index=ignore_index)


def test_bce_at_zero_and_one_is_finite_as_in_pytorch():
    # PyTorch clamps each log at -100 and divides the gradient by max(p (1 - p), 1e-12)
    for dtype in (fg.float32, fg.float64):
        p = fg.tensor([0.0, 1.0, 0.5, 0.3], dtype=dtype, requires_grad=True)
        y = fg.tensor([1.0, 0.0, 0.5, 1.0], dtype=dtype)
        loss = nn.functional.binary_cross_entropy(p, y)
        want = (100.0 + 100.0 + math.log(2) - math.log(0.3)) / 4
        assert loss.item() == pytest.approx(want, rel=1e-6)
        loss.backward()
        want_grad = np.array([-1e12, 1e12, 0.0, (0.3 - 1.0) / (0.3 * 0.7)]) / 4
        np.testing.assert_allclose(p.grad.numpy(), want_grad, rtol=1e-5)
    # a saturated sigmoid before it gets a zero gradient, not nan
    z = fg.tensor([40.0, -40.0], requires_grad=True)
    nn.BCELoss()(fg.sigmoid(z), fg.tensor([0.0, 1.0])).backward()
    assert np.isfinite(z.grad.numpy()).all()


def test_bce_gradients_of_both_arguments_and_second_order():
    p = fg.tensor([0.2, 0.7, 0.5], dtype=fg.float64, requires_grad=True)
    y = fg.tensor([1.0, 0.0, 0.3], dtype=fg.float64, requires_grad=True)
    loss = nn.functional.binary_cross_entropy(p, y, reduction="sum")
    gp, gy = fg.autograd.grad(loss, [p, y], create_graph=True)
    pv, yv = np.array([0.2, 0.7, 0.5]), np.array([1.0, 0.0, 0.3])
    np.testing.assert_allclose(gp.detach().numpy(), (pv - yv) / (pv * (1 - pv)))
    np.testing.assert_allclose(gy.detach().numpy(), np.log(1 - pv) - np.log(pv))
    (h,) = fg.autograd.grad(gp.sum(), [p])
    np.testing.assert_allclose(h.numpy(), ((pv * (1 - pv)) - (pv - yv) * (1 - 2 * pv))
                               / (pv * (1 - pv)) ** 2)


def test_ignored_rows_never_leak_inf_or_nan():
    inf = float("inf")
    for reduction, want in (("mean", 1.3133), ("sum", 1.3133), ("none", [1.3133, 0.0])):
        x = fg.tensor([[1.0, 2.0], [-inf, -inf]], requires_grad=True)
        loss = nn.functional.cross_entropy(x, fg.tensor([0, -100]), reduction=reduction)
        np.testing.assert_allclose(loss.detach().numpy(), want, atol=1e-4)
        loss.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [[-0.7311, 0.7311], [0.0, 0.0]], atol=1e-4)
    x = fg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    loss = nn.functional.cross_entropy(x, fg.tensor([-100, -100]))
    loss.backward()
    assert np.isnan(loss.item()) and not x.grad.numpy().any()  # 0 / 0, as PyTorch


def test_nll_loss():
    logp = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32))
    y = np.array([0, 2])
    loss = nn.NLLLoss()(fg.tensor(logp), fg.tensor(y))
    np.testing.assert_allclose(loss.item(), -(logp[0, 0] + logp[1, 2]) / 2, rtol=1e-6)
    none = nn.NLLLoss(reduction="none")(fg.tensor(logp), fg.tensor(y))
    np.testing.assert_allclose(none.numpy(), -logp[[0, 1], [0, 2]], rtol=1e-6)
    # CrossEntropyLoss == NLLLoss(LogSoftmax)
    z = fg.randn(5, 3)
    t = fg.tensor([0, 1, 2, 1, 0])
    np.testing.assert_allclose(nn.CrossEntropyLoss()(z, t).item(),
                               nn.NLLLoss()(nn.LogSoftmax(dim=1)(z), t).item(), rtol=1e-6)


def test_mse_loss():
    a = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    b = np.array([[0.0, 2.0], [1.0, 1.0]], np.float32)
    x = fg.tensor(a, requires_grad=True)
    loss = nn.MSELoss()(x, fg.tensor(b))
    assert loss.item() == pytest.approx(((a - b) ** 2).mean())
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (a - b) / 4)
    assert nn.MSELoss(reduction="sum")(x, fg.tensor(b)).item() == pytest.approx(9.0)
    assert nn.MSELoss(reduction="none")(x, fg.tensor(b)).shape == (2, 2)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")


def test_bce_with_logits_and_bce():
    z = np.array([-3.0, 0.0, 2.0, 1000.0, -1000.0], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.0], np.float32)
    expected = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    logits = fg.tensor(z, requires_grad=True)
    loss = nn.BCEWithLogitsLoss(reduction="none")(logits, fg.tensor(y))
    np.testing.assert_allclose(loss.detach().numpy(), expected, rtol=1e-6)
    loss.sum().backward()
    sig = np.exp(-np.logaddexp(0, -z.astype(np.float64)))
    np.testing.assert_allclose(logits.grad.numpy(), sig - y, atol=1e-7)
    mean = nn.BCEWithLogitsLoss()(fg.tensor(z), fg.tensor(y))
    assert mean.item() == pytest.approx(expected.mean(), rel=1e-6)
    pw = nn.BCEWithLogitsLoss(pos_weight=fg.tensor([2.0]))(fg.tensor([0.0]), fg.tensor([1.0]))
    assert pw.item() == pytest.approx(2 * math.log(2), rel=1e-6)

    p = np.array([0.1, 0.5, 0.9], np.float32)
    t = np.array([0.0, 1.0, 1.0], np.float32)
    bce = nn.BCELoss(reduction="sum")(fg.tensor(p), fg.tensor(t))
    assert bce.item() == pytest.approx(-(np.log(0.9) + np.log(0.5) + np.log(0.9)), rel=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        clamped = nn.BCELoss()(fg.tensor([0.0], dtype=fg.float64),
                               fg.tensor([1.0], dtype=fg.float64))
    assert clamped.item() == pytest.approx(100.0)  # log clamped at -100, as PyTorch


# --------------------------------------------------------------------------- functional


def test_functional_ops_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    t = fg.from_numpy(x)
    np.testing.assert_allclose(F.relu(t).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(F.sigmoid(t).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_allclose(F.tanh(t).numpy(), np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(F.softmax(t, dim=1).numpy(), _softmax(x), rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(t, dim=1).numpy(), np.log(_softmax(x)),
                               rtol=1e-5, atol=1e-6)
    lse = np.log(np.exp(x).sum(axis=1))
    np.testing.assert_allclose(F.logsumexp(t, dim=1).numpy(), lse, rtol=1e-6)
    w = rng.standard_normal((2, 4)).astype(np.float32)
    b = rng.standard_normal(2).astype(np.float32)
    np.testing.assert_allclose(F.linear(t, fg.from_numpy(w), fg.from_numpy(b)).numpy(),
                               x @ w.T + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.mse_loss(t, fg.zeros(3, 4)).item(), (x ** 2).mean(),
                               rtol=1e-6)
    y = fg.tensor([0, 3, 1])
    ce = F.cross_entropy(t, y, reduction="sum").item()
    nll = F.nll_loss(F.log_softmax(t, dim=1), y, reduction="sum").item()
    assert ce == pytest.approx(nll, rel=1e-6)
    probs = fg.from_numpy(1 / (1 + np.exp(-x)))
    target = fg.from_numpy((x > 0).astype(np.float32))
    assert F.binary_cross_entropy(probs, target).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(t, target).item(), rel=1e-5)
    np.testing.assert_array_equal(F.dropout(t, 0.5, training=False).numpy(), x)
    emb = F.embedding(fg.tensor([1]), fg.from_numpy(w))
    np.testing.assert_array_equal(emb.numpy(), w[[1]])


def test_functional_is_stable_at_large_magnitudes():
    z = fg.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    out = F.log_softmax(z, dim=1)
    assert np.isfinite(out.detach().numpy()).all()
    loss = F.cross_entropy(z, fg.tensor([1])) + F.logsumexp(z, dim=1).sum() + (
        F.binary_cross_entropy_with_logits(z, fg.ones(1, 3)))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(z.grad.numpy()).all()


# --------------------------------------------------------------------------- functional_call


def _mlp():
    fg.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _ce(logits, labels):
    log_probs = fg.nn.log_softmax(logits, axis=-1)
    return -fnp.mean(log_probs[fnp.arange(labels.shape[0]), labels])


def test_get_params_is_a_copy_and_a_pytree():
    model = _mlp()
    params = nn.get_params(model)
    assert list(params) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert all(type(v) is np.ndarray and v.dtype == np.float32 for v in params.values())
    params["1.bias"][:] = 7.0
    assert not (model[1].bias.detach().numpy() == 7.0).any()
    leaves = fg.tree_util.tree_leaves(params)
    assert len(leaves) == 4
    m = nn.Module()
    m.register_buffer("b", fg.ones(2))
    assert list(nn.get_params(m, buffers=True)) == ["b"]


def test_functional_call_matches_eager_forward_and_restores_module():
    model = _mlp()
    x = np.random.default_rng(0).random((5, 2, 3)).astype(np.float32)
    params = nn.get_params(model)
    out = nn.functional_call(model, params, x)
    assert type(out) is np.ndarray
    with fg.no_grad():
        want = model(fg.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-6)
    zero = {k: np.zeros_like(v) for k, v in params.items()}
    np.testing.assert_array_equal(nn.functional_call(model, zero, x), np.zeros((5, 3)))
    assert isinstance(model[1].weight, nn.Parameter)  # restored
    with fg.no_grad():
        np.testing.assert_allclose(model(fg.from_numpy(x)).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_functional_call_under_grad_matches_backward(jit):
    model = _mlp()
    rng = np.random.default_rng(0)
    x = rng.random((5, 2, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])

    def loss(params, x, y):
        return _ce(nn.functional_call(model, params, x), y)

    fn = fg.value_and_grad(loss)
    if jit:
        fn = fg.jit(fn)
    value, grads = fn(nn.get_params(model), x, y)
    eager = nn.CrossEntropyLoss()(model(fg.from_numpy(x)), fg.from_numpy(y))
    eager.backward()
    assert float(value) == pytest.approx(eager.item(), rel=1e-6)
    for name, p in model.named_parameters():
        assert grads[name].dtype == np.float32
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-5, atol=1e-7)
    # Eager Tensor ops record again afterwards (the traced mode is off).
    assert model(fg.ones(1, 2, 3)).grad_fn is not None


def test_functional_call_with_a_loss_module_and_embedding_under_jit():
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(6, 4, padding_idx=0)
            self.fc = nn.Linear(4, 3)
            self.loss = nn.CrossEntropyLoss()

        def forward(self, idx, target):
            return self.loss(self.fc(self.emb(idx)), target)

    fg.manual_seed(0)
    model = Wrapped()
    idx, target = np.array([0, 3, 5, 3]), np.array([2, 0, 1, 1])
    value, grads = fg.jit(fg.value_and_grad(
        lambda p, i, t: nn.functional_call(model, p, i, t)))(nn.get_params(model), idx, target)
    eager = model(fg.from_numpy(idx), fg.from_numpy(target))
    eager.backward()
    assert float(value) == pytest.approx(eager.item(), rel=1e-6)
    np.testing.assert_allclose(grads["emb.weight"], model.emb.weight.grad.numpy(), atol=1e-7)
    assert not grads["emb.weight"][0].any()  # padding row


def test_functional_call_tied_weights_and_partial_dicts():
    enc = nn.Linear(3, 3, bias=False)
    dec = nn.Linear(3, 3, bias=False)
    dec.weight = enc.weight
    model = nn.Sequential(enc, dec)
    assert list(nn.get_params(model)) == ["0.weight"]
    eye = np.eye(3, dtype=np.float32)
    x = np.arange(3, dtype=np.float32)[None]
    np.testing.assert_allclose(nn.functional_call(model, {"0.weight": 2 * eye}, x), 4 * x)
    layer = nn.Linear(2, 1)
    out = nn.functional_call(layer, {"bias": np.array([10.0], np.float32)}, np.zeros((1, 2),
                                                                                   np.float32))
    np.testing.assert_allclose(out, [[10.0]])


def test_functional_call_errors_restore_the_module():
    layer = nn.Linear(2, 1)
    weight = layer.weight
    with pytest.raises(KeyError, match="no parameter or buffer named 'wieght'"):
        nn.functional_call(layer, {"wieght": np.zeros((1, 2))}, np.zeros((1, 2)), strict=True)
    with pytest.raises(ValueError, match=r"has shape \(2, 2\)"):
        nn.functional_call(layer, {"weight": np.zeros((2, 2))}, np.zeros((1, 2)))
    with pytest.raises(KeyError, match="missing values"):
        nn.functional_call(layer, {"weight": np.zeros((1, 2))}, np.zeros((1, 2)), strict=True)

    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def forward(self, x):
            self.fc(x)
            raise RuntimeError("boom")

    boom = Boom()
    fc_weight = boom.fc.weight
    with pytest.raises(RuntimeError, match="boom"):
        fg.grad(lambda p: fnp.sum(nn.functional_call(boom, p, np.ones((1, 2), np.float32))))(
            nn.get_params(boom))
    assert boom.fc.weight is fc_weight and layer.weight is weight
    assert boom.fc(fg.ones(1, 2)).grad_fn is not None  # eager recording is back on


def test_functional_call_with_tensors_records_a_graph():
    layer = nn.Linear(2, 1)
    w = fg.ones(1, 2, requires_grad=True)
    out = nn.functional_call(layer, {"weight": w}, fg.tensor([[1.0, 2.0]]))
    assert isinstance(out, fg.Tensor) and out.grad_fn is not None
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[1.0, 2.0]])
    assert layer.weight.grad is None


def test_set_params_round_trip_and_errors():
    model = _mlp()
    params = nn.get_params(model)
    doubled = {k: 2 * v for k, v in params.items()}
    assert nn.set_params(model, doubled) is model
    np.testing.assert_allclose(model[1].weight.detach().numpy(), doubled["1.weight"])
    assert isinstance(model[1].weight, nn.Parameter) and model[1].weight.requires_grad
    with pytest.raises(KeyError, match="no parameter or buffer named"):
        nn.set_params(model, {"9.weight": np.zeros(1)})


def test_jax_style_training_loop_learns():
    model = _mlp()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 2, 3)).astype(np.float32)
    y = (x.reshape(32, 6).sum(1) > 0).astype(np.int64)

    @fg.jit
    def step(params, x, y):
        loss, grads = fg.value_and_grad(lambda p: _ce(nn.functional_call(model, p, x), y))(
            params)
        return loss, fg.tree_util.tree_map(lambda p, g: p - 0.5 * g, params, grads)

    params = nn.get_params(model)
    first, params = step(params, x, y)
    for _ in range(30):
        loss, params = step(params, x, y)
    assert float(loss) < 0.5 * float(first)


# --------------------------------------------------------------------------- init, doctests


def test_init_functions():
    fg.manual_seed(0)
    from fgrad.nn import init

    w = fg.empty(200, 300)
    init.xavier_uniform_(w)
    a = math.sqrt(6 / 500)
    assert np.abs(w.numpy()).max() <= a and np.abs(w.numpy()).max() > 0.99 * a
    init.kaiming_normal_(w, nonlinearity="relu")
    assert w.numpy().std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    init.zeros_(w)
    assert not w.numpy().any()
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(fg.empty(3))
    p = nn.Linear(2, 2).weight
    init.constant_(p, 0.5)  # works on parameters that require grad (no graph recorded)
    assert p.requires_grad and p.grad_fn is None and (p.detach().numpy() == 0.5).all()


@pytest.mark.parametrize("module", [
    "fgrad._src.nn.module", "fgrad._src.nn.layers", "fgrad._src.nn.containers",
    "fgrad._src.nn.losses", "fgrad._src.nn.init", "fgrad._src.nn.ops",
    "fgrad._src.nn.functional_call", "fgrad.nn", "fgrad.nn.functional",
])
def test_docstring_examples(module):
    mod = importlib.import_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_registering_a_name_already_in_use_raises():
    # a buffer named like a parameter would shadow it in state_dict and lose the weight
    m = nn.Linear(2, 2)
    with pytest.raises(KeyError, match="attribute 'weight' already exists"):
        m.register_buffer("weight", fg.zeros(2, 2))
    seq = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(KeyError, match="attribute '0' already exists"):
        seq.register_parameter("0", nn.Parameter(fg.zeros(1)))
    with pytest.raises(KeyError, match="attribute 'forward' already exists"):
        m.register_buffer("forward", fg.zeros(1))
    m.register_buffer("running", fg.zeros(1))
    m.register_buffer("running", fg.ones(1))  # re-registering the same kind is fine
    assert m.state_dict()["running"].tolist() == [1.0]


def test_train_and_eval_call_each_childs_own_train():
    calls = []

    class Frozen(nn.Module):
        def train(self, mode=True):
            calls.append(mode)
            return super().train(False)  # stays in eval mode, a common override

    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(Frozen()))
    model.train()
    assert calls == [True] and model.training and not model[1][0].training
    model.eval()
    assert calls == [True, False] and not model.training


def test_sequential_insert_with_a_negative_index_as_list_insert():
    seq = nn.Sequential(nn.ReLU(), nn.Tanh(), nn.Sigmoid())
    seq.insert(-1, nn.Identity())
    assert [type(m).__name__ for m in seq] == ["ReLU", "Tanh", "Identity", "Sigmoid"]
    seq.insert(-4, nn.Softmax(dim=0))
    assert type(seq[0]).__name__ == "Softmax" and len(seq) == 5


def test_flatten_checks_its_dims():
    x = fg.zeros(2, 3, 4, 5)
    assert nn.Flatten(1, -2)(x).shape == (2, 12, 5)
    with pytest.raises(RuntimeError, match="start_dim cannot come after end_dim"):
        nn.Flatten(2, 1)(x)
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.Flatten(-5)(x)
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.Flatten(1)(fg.zeros(2))


def test_embedding_rejects_negative_indices():
    emb = nn.Embedding(4, 2)
    with pytest.raises(IndexError, match="index out of range"):
        emb(fg.tensor([-1]))
    with pytest.raises(ValueError, match="padding_idx must be within"):
        nn.functional.embedding(fg.tensor([0]), emb.weight, padding_idx=7)


@pytest.mark.parametrize("target, match", [
    ([[0], [1], [2], [0]], "0D or 1D target tensor expected"),
    (2, "unbatched target"),
    ([0, 1], r"input batch_size \(4\) to match target batch_size \(2\)"),
], ids=["column", "0-d", "short"])
def test_class_losses_check_the_target_shape(target, match):
    x = fg.randn(4, 3)
    for loss in (nn.functional.cross_entropy, nn.functional.nll_loss):
        with pytest.raises((RuntimeError, ValueError), match=match):
            loss(x, fg.tensor(target))


def test_class_losses_check_spatial_targets_and_weights():
    with pytest.raises(RuntimeError, match=r"Expected target size \[2, 4\], got \[4, 2\]"):
        nn.functional.cross_entropy(fg.randn(2, 3, 4), fg.zeros(4, 2, dtype=fg.int64))
    assert nn.functional.cross_entropy(fg.randn(2, 3, 4), fg.zeros(2, 4, dtype=fg.int64)).ndim == 0
    with pytest.raises(RuntimeError, match="all 3 classes or no classes"):
        nn.functional.cross_entropy(fg.randn(4, 3), fg.tensor([0, 1, 2, 0]), weight=fg.ones(5))


def test_bce_rejects_probabilities_outside_zero_one():
    for bad in ([1.5, -0.5], [float("nan"), 0.5]):
        with pytest.raises(RuntimeError, match="between 0 and 1.*with_logits"):
            nn.BCELoss()(fg.tensor(bad), fg.tensor([1.0, 0.0]))


def test_functional_softplus_follows_beta_and_threshold():
    x = fg.tensor([1.5, 0.5, 30.0, -3.0], requires_grad=True)
    y = fg.nn.functional.softplus(x, beta=2.0, threshold=1.0)
    y.sum().backward()
    want = [1.5, np.log1p(np.exp(1.0)) / 2, 30.0, np.log1p(np.exp(-6.0)) / 2]
    np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-6)
    sigmoid = 1 / (1 + np.exp(-np.array([1.0, -6.0])))
    np.testing.assert_allclose(x.grad.numpy(), [1.0, sigmoid[0], 1.0, sigmoid[1]], rtol=1e-6)
    assert type(y.grad_fn).__name__ == "SoftplusBackward0"
    big = fg.nn.functional.softplus(fg.tensor([25.0], dtype=fg.float64))
    assert big.tolist() == [25.0]  # linear above the threshold, as in PyTorch


def test_tensor_ops_on_a_traced_value_are_differentiated_not_frozen():
    # F.* and fg.tensor() of a value fg.grad / fg.jit / fg.vmap traces run on the tracer
    # (as torch.func does); they used to turn it into a constant: a zero gradient.
    x = np.array([1.0, -2.0, 3.0])
    want = 2 * x / 3
    np.testing.assert_allclose(fg.grad(lambda a: F.mse_loss(a, np.zeros(3)))(x), want)
    np.testing.assert_allclose(fg.grad(lambda a: (fg.tensor(a) ** 2).mean())(x), want)
    np.testing.assert_allclose(fg.jit(fg.grad(lambda a: (fg.tensor(a) ** 2).mean()))(x), want)
    value, grad = fg.value_and_grad(lambda a: F.cross_entropy(a.reshape(1, 3), fg.tensor([1])))(x)
    log_probs = x - np.log(np.exp(x).sum())
    np.testing.assert_allclose(value, -log_probs[1])
    np.testing.assert_allclose(grad, np.exp(log_probs) - np.eye(3)[1])
    batch = np.array([[-1.0, 2.0], [3.0, -4.0]])
    np.testing.assert_allclose(fg.vmap(lambda a: F.relu(fg.tensor(a)).sum())(batch), [2.0, 3.0])
    with pytest.raises(TypeError, match="cannot require grad"):
        fg.grad(lambda a: fg.tensor(a, requires_grad=True).sum())(x)


def test_elu_and_hardtanh_gradients_at_their_kinks_match_pytorch():
    # elu'(0) is alpha (PyTorch takes the x <= 0 branch); hardtanh passes no gradient at
    # min_val and max_val (clamp does).
    for alpha in (0.5, 1.0, 2.0):
        x = fg.tensor([0.0, -1.0, 1.0], requires_grad=True)
        F.elu(x, alpha).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [alpha, alpha * np.exp(-1.0), 1.0],
                                   rtol=1e-6)
    x = fg.tensor([-1.0, 1.0, -2.0, 0.5, 2.0], requires_grad=True)
    F.hardtanh(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(F.hardtanh(x).detach().numpy(), [-1.0, 1.0, -1.0, 0.5, 1.0])


@pytest.mark.parametrize("make", [
    lambda: nn.Linear(1, 1).to(device="cuda"),
    lambda: nn.Linear(1, 1).to("cuda:0"),
    lambda: fg.ones(2).to(device="cuda"),
    lambda: fg.zeros(2, device="cuda"),
    lambda: fg.tensor([1.0], device="cuda"),
    lambda: fg.as_tensor(np.ones(2), device="cuda"),
    lambda: nn.Linear(1, 1, device="cuda"),
])
def test_devices_other_than_the_cpu_are_refused_everywhere(make):
    with pytest.raises(RuntimeError, match="CPU only"):
        make()
    nn.Linear(1, 1).to(device="cpu:0")
    fg.zeros(2, device="cpu").to(device="cpu")


def _log_softmax_np(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _smoothed_ce_np(x, target, weight, ignore_index, smoothing, reduction):
    """PyTorch's label-smoothed cross-entropy over (N, C) logits, written out."""
    logp = _log_softmax_np(x, 1)
    n_classes = x.shape[1]
    w = np.ones(n_classes) if weight is None else weight
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked_w = np.where(valid, w[safe], 0.0)
    nll = -logp[np.arange(len(target)), safe] * picked_w
    smooth = np.where(valid, -(logp * w).sum(axis=1), 0.0)
    if reduction == "mean":
        nll, smooth = nll.sum() / picked_w.sum(), smooth.sum() / picked_w.sum()
    elif reduction == "sum":
        nll, smooth = nll.sum(), smooth.sum()
    return (1 - smoothing) * nll + smoothing / n_classes * smooth


def _soft_ce_np(x, probs, weight, smoothing, reduction):
    n_classes = x.shape[1]
    probs = probs * (1 - smoothing) + smoothing / n_classes
    w = np.ones(n_classes) if weight is None else weight
    losses = -(_log_softmax_np(x, 1) * probs * w).sum(axis=1)
    if reduction == "mean":
        return losses.sum() / len(losses)
    return losses.sum() if reduction == "sum" else losses


def _numeric_grad(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (np.sum(f(x + step)) - np.sum(f(x - step))) / (2 * eps)
    return grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_label_smoothing_and_probability_targets(reduction, weighted):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)) * 3
    target = np.array([0, 3, 1, 3, 2])
    weight = rng.random(4) + 0.5 if weighted else None
    probs = rng.random((5, 4))
    probs /= probs.sum(axis=1, keepdims=True)
    w = None if weight is None else fg.tensor(weight)
    cases = [
        (lambda t: F.cross_entropy(t, fg.tensor(target), weight=w, ignore_index=3,
                                   reduction=reduction, label_smoothing=0.2),
         lambda a: _smoothed_ce_np(a, target, weight, 3, 0.2, reduction)),
        (lambda t: F.cross_entropy(t, fg.tensor(probs), weight=w, reduction=reduction,
                                   label_smoothing=0.1),
         lambda a: _soft_ce_np(a, probs, weight, 0.1, reduction)),
    ]
    for loss, reference in cases:
        t = fg.tensor(x, requires_grad=True)
        out = loss(t)
        np.testing.assert_allclose(out.detach().numpy(), reference(x), rtol=1e-12)
        out.sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), _numeric_grad(reference, x), atol=1e-7)
    with pytest.raises(ValueError, match="between 0.0 and 1.0"):
        F.cross_entropy(fg.tensor(x), fg.tensor(target), label_smoothing=1.5)
    with pytest.raises(ValueError, match="the input's shape"):
        F.cross_entropy(fg.tensor(x), fg.tensor(probs[:, :3]))


def test_sequential_pop_add_and_multiply_as_in_pytorch():
    relu, tanh, lin = nn.ReLU(), nn.Tanh(), nn.Linear(2, 2)
    seq = nn.Sequential(relu, tanh, lin)
    assert seq.pop(0) is relu and list(seq) == [tanh, lin]
    assert list(seq._modules) == ["0", "1"]
    joined = seq + nn.Sequential(relu)
    assert list(joined) == [tanh, lin, relu] and len(seq) == 2
    seq += nn.Sequential(relu)
    assert list(seq) == [tanh, lin, relu]
    assert list(seq * 2) == [tanh, lin, relu] * 2 and list(2 * seq) == list(seq * 2)
    assert len(list((seq * 2).parameters())) == 2  # repeats share the Linear
    seq *= 2
    assert list(seq._modules) == [str(i) for i in range(6)]
    with pytest.raises(ValueError, match="only Sequential"):
        seq + [relu]
    with pytest.raises(ValueError, match="Non-positive"):
        seq * 0
    with pytest.raises(TypeError):
        seq * 1.5


def test_load_state_dict_assign_takes_the_loaded_values_themselves():
    model = nn.Linear(1, 1)
    weight, bias = model.weight, model.bias
    loaded = {"weight": fg.ones(1, 1, dtype=fg.float64), "bias": fg.zeros(1, dtype=fg.float64)}
    model.load_state_dict(loaded, assign=True)
    assert model.weight is weight and model.bias is bias  # optimizers keep working
    assert model.weight.dtype == fg.float64 and model.weight.requires_grad
    loaded["weight"].data[0, 0] = 5.0  # PyTorch's assign shares the loaded memory
    assert model.weight.item() == 5.0
    with pytest.raises(RuntimeError, match="only floating point"):
        model.load_state_dict({"weight": fg.ones(1, 1, dtype=fg.int64), "bias": fg.ones(1)},
                              assign=True)
    assert model.weight.item() == 5.0  # a failed load changes nothing


def test_tensors_built_from_lists_of_traced_values_and_jacobians_of_tensor_outputs():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_array_equal(fg.grad(lambda a: fg.tensor([a[0], a[1]]).sum())(x),
                                  [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(fg.jit(fg.grad(lambda a: fg.FloatTensor([a[0], a[1]]).sum()))(
        x), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(fg.hessian(lambda a: fg.tensor(a).pow(3).sum())(np.ones(2)),
                               6 * np.eye(2))
    np.testing.assert_allclose(fg.jacrev(lambda a: fg.tensor(a).tanh())(np.zeros(2)), np.eye(2))
    np.testing.assert_allclose(fg.jacfwd(lambda a: fg.tensor(a) * 2)(np.zeros(2)), 2 * np.eye(2))


def test_fgrad_numpy_takes_tensors_that_hold_traced_values():
    # fnp used to turn such a Tensor into a NumPy array of its tracer and fail.
    x = np.ones(2)
    np.testing.assert_array_equal(fg.grad(lambda a: fnp.sum(fg.tensor([2.0]) * a))(x),
                                  [2.0, 2.0])
    np.testing.assert_array_equal(fg.grad(lambda a: fnp.sum(fnp.array(fg.tensor(a)) ** 2))(x),
                                  [2.0, 2.0])
    assert float(fg.jit(lambda a: fnp.sum(fg.tensor(a) * 3.0))(x)) == 6.0
    with pytest.raises(RuntimeError, match="requires grad"):  # eager Tensors: as before
        fnp.sum(fg.ones(2, requires_grad=True))


def test_cross_entropy_refuses_a_float_ignore_index_and_ignore_index_with_soft_targets():
    logits = fg.tensor([[1.0, 2.0, 3.0], [1.0, 5.0, 2.0]])
    with pytest.raises(TypeError, match="ignore_index must be an int"):
        F.cross_entropy(logits, fg.tensor([0, 1]), ignore_index=1.5)  # was truncated to 1
    with pytest.raises(RuntimeError, match="not supported for floating point target"):
        F.cross_entropy(logits, fg.ones(2, 3) / 3, ignore_index=1)
    with pytest.raises(ValueError, match="no class dimension"):
        F.cross_entropy(fg.tensor(1.0), fg.tensor(0))  # an IndexError from inside before
    assert float(F.cross_entropy(logits, fg.tensor([0, 1]), ignore_index=np.int64(1))) == (
        pytest.approx(float(F.cross_entropy(logits[:1], fg.tensor([0])))))


def test_float_only_functions_of_integer_tensors_compute_in_float32_not_float64():
    ints = fg.tensor([-1, 2])
    for out in (F.leaky_relu(ints), F.elu(ints), F.dropout(ints, 0.5), F.mse_loss(ints, ints),
                F.l1_loss(ints, ints)):
        assert out.dtype == fg.float32
    np.testing.assert_allclose(F.leaky_relu(ints).numpy(), [-0.01, 2.0], rtol=1e-6)
    logits, target = fg.tensor([[1.0, 2.0, 3.0], [1.0, 5.0, 2.0]]), fg.tensor([0, 1])
    int_weight = F.cross_entropy(logits, target, weight=fg.tensor([1, 2, 3]))
    assert int_weight.dtype == fg.float32  # was float64
    assert float(int_weight) == float(F.cross_entropy(logits, target,
                                                      weight=fg.tensor([1.0, 2.0, 3.0])))
    assert F.nll_loss(logits, target, weight=fg.tensor([1, 2, 3]),
                      ignore_index=1).dtype == fg.float32


# --------------------------------------------------------------------------- fuzzing the bridge
# against torch.func (PyTorch 2.13) and JAX


def _clip_gradient():
    @fg.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda res, g: (fnp.clip(g, -0.1, 0.1),))
    return clip_gradient


class _Clipped(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.clip = _clip_gradient()

    def forward(self, x):
        return self.clip(self.layer(x))


def test_a_custom_vjp_called_with_tensors_uses_its_rule():
    # The rule was ignored: Tensors hid their values, so autodiff went through the body.
    clip = _clip_gradient()
    x = np.ones(3)
    for transform in (fg.grad, lambda f: fg.jit(fg.grad(f))):
        g = transform(lambda x: (clip(fg.tensor(x)) * 10).sum())(x)
        np.testing.assert_allclose(g, [0.1] * 3)
    model = _Clipped()
    params = nn.get_params(model)
    inputs = np.ones((3, 2), np.float32)
    g = fg.grad(lambda p: fnp.sum(nn.functional_call(model, p, inputs) * 10))(params)
    np.testing.assert_allclose(g["layer.bias"], [0.3], rtol=1e-6)
    # eager Tensors: one node named after the function, the rule in its backward
    t = fg.tensor([1.0, 1.0], requires_grad=True)
    y = clip(t)
    assert type(y.grad_fn).__name__ == "clip_gradientBackward"
    (y * 10).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [0.1, 0.1])
    model(fg.tensor(inputs)).sum().mul(10).backward()
    np.testing.assert_allclose(model.layer.bias.grad.numpy(), [0.3], rtol=1e-6)


def test_a_custom_vjp_of_tensors_takes_pytrees_and_arrays():
    @fg.custom_vjp
    def both(a, b):
        return {"sum": a + b, "product": a * b}

    both.defvjp(lambda a, b: (both.fun(a, b), (a, b)),
                lambda res, g: (g["sum"] + g["product"] * res[1],
                                g["sum"] + g["product"] * res[0]))
    a, b = fg.tensor([2.0], requires_grad=True), fg.tensor([3.0], requires_grad=True)
    out = both(a, b)
    (out["sum"] + out["product"]).sum().backward()
    assert (a.grad.item(), b.grad.item()) == (4.0, 3.0)

    @fg.custom_vjp
    def scaled(x, w):
        return x * w

    scaled.defvjp(lambda x, w: (x * w, w), lambda w, g: (g * w * 100, None))
    t = fg.tensor([1.0, 2.0], requires_grad=True)
    for w in ([3.0, 4.0], [5.0, 6.0]):  # a new array each call, never a stale constant
        t.grad = None
        scaled(t, np.array(w)).sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), np.array(w) * 100)


@pytest.mark.parametrize("update, want", [
    (lambda h: h.mul_(2), [2.0, 2.0, 2.0]),
    (lambda h: h.add_(h), [2.0, 2.0, 2.0]),
    (lambda h: h.clamp_(1.5, 2.5), [0.0, 1.0, 0.0]),
    (lambda h: h.zero_(), [0.0, 0.0, 0.0]),
    (lambda h: h.__setitem__(0, 0.0), [0.0, 1.0, 1.0]),
    (lambda h: h.__setitem__(h > 1, 0.0), [1.0, 0.0, 0.0]),
    (lambda h: h.__setitem__(slice(1, None), h[:2] * 5), [6.0, 5.0, 0.0]),
    (lambda h: h.copy_(fg.ones(3) * 7), [0.0, 0.0, 0.0]),
], ids=["mul_", "add_", "clamp_", "zero_", "setitem", "mask", "slice", "copy_"])
def test_in_place_tensor_ops_on_traced_values_run_as_in_eager_mode(update, want):
    # They raised AttributeError ('RecordTracer' object has no attribute 'strides').
    def f(x):
        h = fg.tensor(x) * 1
        update(h)
        return h.sum()

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(fg.grad(f)(x), want)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(x), want)
    eager = fg.tensor(x, requires_grad=True)
    h = eager * 1
    update(h)
    h.sum().backward()
    np.testing.assert_allclose(eager.grad.numpy(), want)


def test_functional_call_refuses_two_values_for_tied_weights():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3, bias=False)
            self.b = nn.Linear(3, 3, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.a(x)

    eye, x = np.eye(3, dtype=np.float32), np.ones((1, 3), np.float32)
    with pytest.raises(ValueError, match="which are tied"):  # the last value won silently
        nn.functional_call(Tied(), {"a.weight": eye, "b.weight": np.zeros_like(eye)}, x)
    np.testing.assert_array_equal(
        nn.functional_call(Tied(), {"a.weight": eye, "b.weight": eye}, x), x)


def test_functional_call_strictness_follows_pytorch():
    layer = nn.Linear(2, 2)
    x = np.ones((1, 2), np.float32)
    extra = {**nn.get_params(layer), "unknown": np.ones(1)}
    with pytest.warns(UserWarning, match="named 'unknown'; .* not used"):
        assert nn.functional_call(layer, extra, x).shape == (1, 2)  # skipped, no KeyError
    with pytest.raises(KeyError, match="no parameter or buffer named 'unknown'"):
        nn.functional_call(layer, extra, x, strict=True)

    class WithBuffer(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 2)
            self.register_buffer("offset", fg.ones(2), persistent=False)

        def forward(self, x):
            return self.layer(x) + self.offset

    module = WithBuffer()
    with pytest.raises(KeyError, match="missing values for \\['offset'\\]"):
        nn.functional_call(module, nn.get_params(module), x, strict=True)


def test_dropout_under_vmap_refuses_to_share_one_mask():
    dropout = nn.Dropout(0.5)
    batch = np.ones((4, 6), np.float32)
    with pytest.raises(RuntimeError, match="one mask shared by every example"):
        fg.vmap(lambda x: nn.functional_call(dropout, {}, x))(batch)
    dropout.eval()
    np.testing.assert_array_equal(fg.vmap(lambda x: nn.functional_call(dropout, {}, x))(batch),
                                  batch)


def test_a_custom_vjp_of_tensors_sees_tensors_and_is_traced_afresh_each_call():
    scale = {"value": 2.0}

    @fg.custom_vjp
    def scaled(x):
        return x * scale["value"]

    scaled.defvjp(lambda x: (x * scale["value"], None), lambda res, g: (g * scale["value"],))
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    scaled(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    scale["value"] = 3.0  # a program cached by shape kept 2.0
    x.grad = None
    scaled(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])
    scaled.defvjp(lambda x: (x * 2, None), lambda res, g: (g * 0,))  # was ignored
    x.grad = None
    scaled(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])

    @fg.custom_vjp
    def straight_through(x):  # Tensor methods in the function, fwd and bwd
        return x.clamp(min=0)

    straight_through.defvjp(lambda x: (x.clamp(min=0), x.sign()),
                            lambda sign, g: (g * sign.abs(),))
    t = fg.tensor([-1.0, 2.0], requires_grad=True)
    out = straight_through(t)
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), [0.0, 2.0])
    np.testing.assert_array_equal(t.grad.numpy(), [1.0, 1.0])
    g = fg.grad(lambda a: straight_through(fg.tensor(a)).sum()._value)(np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(g, [1.0, 1.0])

    @fg.custom_vjp
    def product(a, b):
        return a * b

    product.defvjp(lambda a, b: (a * b, (a, b)), lambda res, g: (g * res[1], g * res[0]))
    constant = fg.tensor([3.0, 4.0])  # an eager Tensor next to a traced array
    for transform in (fg.grad, lambda f: fg.jit(fg.grad(f))):
        g = transform(lambda a: fnp.sum(product(a, constant)._value))(np.array([1.0, 2.0]))
        np.testing.assert_array_equal(g, [3.0, 4.0])


def _add_column(t):
    t[:, 1] += t[:, 0]  # Python's temporary t[:, 1] is a view, written, then assigned back
    return t * t


def _eager_grad(body, x):
    leaf = fg.tensor(x, requires_grad=True)
    body(leaf * 1).sum().backward()
    return leaf.grad.numpy()


@pytest.mark.parametrize("body", [
    lambda t: t[0].mul_(3) * 0 + t * t,                   # a write through a view
    _add_column,                                          # t[:, 1] += t[:, 0]
    lambda t: (t.view(-1), t.mul_(2))[0] ** 2,           # a view taken before the write
    lambda t: t * t.t().add_(1).t(),                      # a transposed view written
    lambda t: t * 1 + t[[0, 1]].mul_(5) * 0,             # advanced indexing copies
    lambda t: t.add_(0.5).detach() * t,                  # detach() stops the gradient
], ids=["view", "slice-assign", "earlier-view", "transposed", "advanced", "detach"])
def test_in_place_ops_on_traced_views_share_writes_as_in_eager_mode(body):
    # A write through a view of a traced tensor was lost on its base.
    x = np.arange(6.0).reshape(2, 3) / 3 + 0.5

    def f(a):
        return body(fg.tensor(a) * 1).sum()._value

    want = _eager_grad(body, x)
    np.testing.assert_allclose(fg.grad(f)(x), want, rtol=1e-12)
    np.testing.assert_allclose(fg.jit(fg.grad(f))(x), want, rtol=1e-12)


def test_in_place_ops_on_traced_values_write_buffers_and_detach():

    def reshaped(a):  # nothing else sees the view: allowed
        x = (fg.tensor(a) * 1).view(-1)
        x.clamp_(min=0)
        return x.sum()._value

    np.testing.assert_array_equal(fg.grad(reshaped)(np.array([[1.0, -2.0], [3.0, 4.0]])),
                                  [[1.0, 0.0], [1.0, 1.0]])

    def filled_buffer(a):  # a buffer made inside the function takes traced values
        t = fg.tensor(a)
        out = fg.zeros(3, dtype=fg.float64)
        for i in range(3):
            out[i] = t[i] * t[i]
        return out.sum()._value

    np.testing.assert_array_equal(fg.grad(filled_buffer)(np.array([1.0, 2.0, 3.0])),
                                  [2.0, 4.0, 6.0])

    def detached(a):  # detach() stops the gradient under a transform too (it did not)
        t = fg.tensor(a) * 2
        return (t.detach() * fg.tensor(a)).sum()._value

    np.testing.assert_array_equal(fg.grad(detached)(np.array([1.0, 2.0])), [2.0, 4.0])
    np.testing.assert_array_equal(
        fg.grad(lambda a: fg.tensor(a).t().contiguous().sum()._value)(np.ones((2, 3))),
        np.ones((2, 3)))  # contiguous() raised AttributeError on a traced value

    mask, values = fg.tensor([[True, False], [True, False]]), fg.tensor([10.0, 20.0])

    def fill(a):  # values fill the selected elements in order (they were broadcast)
        t = fg.tensor(a) * 1
        t[mask] = values
        return t._value

    np.testing.assert_array_equal(fg.jit(fill)(np.ones((2, 2))), [[10.0, 1.0], [20.0, 1.0]])


def test_a_custom_vjp_of_tensors_keeps_ints_shapes_and_index_arrays_as_they_are():
    @fg.custom_vjp
    def rows(x, n):
        return x.reshape(n, -1)

    rows.defvjp(lambda x, n: (x.reshape(n, -1), x.shape),  # a Size residual
                lambda shape, g: (g.reshape(shape), None))
    t = fg.tensor(np.arange(6.0), requires_grad=True)
    (rows(t, 2) * fg.tensor([[1.0], [2.0]])).sum().backward()  # n was a tracer
    np.testing.assert_array_equal(t.grad.numpy(), [1, 1, 1, 2, 2, 2])
    g = fg.grad(lambda a: (rows(fg.tensor(a), 3) * 2).sum()._value)(np.arange(6.0))
    np.testing.assert_array_equal(g, [2.0] * 6)

    doubled = fg.custom_vjp(lambda x: x * 2)  # "<lambda>Backward" broke the generated code
    doubled.defvjp(lambda x: (x * 2, None), lambda res, g: (g * 2,))
    t = fg.tensor([1.0, 2.0], requires_grad=True)
    doubled(t).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [2.0, 2.0])


class _EditedLinear(nn.Module):
    """A Linear layer whose input or output is edited in place by ``edit_input(x)`` or
    ``edit_output(y)`` in the forward."""

    def __init__(self, n_in, n_out, edit_input=None, edit_output=None):
        super().__init__()
        self.layer = nn.Linear(n_in, n_out)
        self.edit_input, self.edit_output = edit_input, edit_output

    def forward(self, x):
        if self.edit_input is not None:
            self.edit_input(x)
        y = self.layer(x)
        if self.edit_output is not None:
            self.edit_output(y)
        return y


def test_functional_call_never_writes_into_the_callers_arrays():
    model = _EditedLinear(2, 1, edit_input=lambda x: x.mul_(2))
    inputs = np.ones((1, 2), np.float32)
    params = nn.get_params(model)
    grads = [fg.grad(lambda p: fnp.sum(nn.functional_call(model, p, inputs)))(params)
             for _ in range(2)]  # the second call saw the doubled input
    np.testing.assert_array_equal(inputs, [[1.0, 1.0]])
    np.testing.assert_array_equal(grads[0]["layer.weight"], grads[1]["layer.weight"])


@pytest.mark.parametrize("body", [
    lambda t: t.t().contiguous().mul_(10).sum() * 0 + t,  # a copy in PyTorch
    lambda t: t.t().reshape(-1).mul_(10).sum() * 0 + t,
    lambda t: t[0].reshape(-1).mul_(10).sum() * 0 + t,  # a view: t changes
    lambda t: (t.detach()[0].mul_(2), t)[1] * 1,     # an untracked write: gradient kept
    lambda t: (t.detach().mul_(2), t)[1] * 1,
], ids=["contiguous", "reshape-copy", "reshape-view", "detached-view", "detached"])
def test_traced_reshapes_copy_or_view_as_in_eager_mode_and_detached_writes_keep_gradients(
        body):
    # A reshape of a transposed traced tensor was a view (writes changed the base), and
    # a write through a detach() alias zeroed the base's gradient or was refused.
    x = np.arange(6.0).reshape(2, 3) / 3 + 0.5

    def f(a):
        return body(fg.tensor(a) * 1).sum()._value

    want = _eager_grad(body, x)
    leaf = fg.tensor(x, requires_grad=True)
    want_value = float(body(leaf * 1).sum())
    np.testing.assert_allclose(fg.grad(f)(x), want, rtol=1e-12)
    np.testing.assert_allclose(fg.jit(f)(x), want_value, rtol=1e-12)


def _halve_first_two(y):
    y[:, :2] *= 0.5  # its write positions were computed as tracers under jit


def test_in_place_on_a_view_in_a_module_forward_works_under_jit_and_vmap():
    model, x = _EditedLinear(3, 4, edit_output=_halve_first_two), np.ones((5, 3), np.float32)
    params = nn.get_params(model)

    def loss(p, x):
        return fnp.sum(nn.functional_call(model, p, x))

    want = fg.grad(loss)(params, x)["layer.bias"]
    np.testing.assert_allclose(want, [2.5, 2.5, 5.0, 5.0])
    np.testing.assert_allclose(fg.jit(fg.grad(loss))(params, x)["layer.bias"], want)
    assert fg.vmap(lambda row: nn.functional_call(model, params, row))(x[:, None]).shape == (
        5, 1, 4)
