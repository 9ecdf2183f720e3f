"""fg.optim: SGD/Adam/AdamW update arithmetic against hand-derived values, parameter
groups, frozen parameters, zero_grad, state_dict and errors.

The parameter is float64 ``w0 = [1, -2]`` and the gradients are set by hand,
``g1 = [0.5, 1]``, ``g2 = [-1, 0.5]``, ``g3 = [0.25, -0.5]``, so every expected
value below is a short hand computation (shown in the comments) of PyTorch's
documented update rule.
"""

import math

import numpy as np
import pytest

import fgrad as fg
from fgrad import nn, optim

W0 = [1.0, -2.0]
GRADS = [[0.5, 1.0], [-1.0, 0.5], [0.25, -0.5]]


def run(make, grads=GRADS, w0=W0):
    w = fg.tensor(np.array(w0, np.float64), requires_grad=True)
    opt = make([w])
    history = []
    for g in grads:
        w.grad = fg.tensor(np.array(g, np.float64))
        opt.step()
        history.append(w.detach().numpy().copy())
    return history, w, opt


def check(history, expected):
    for step, (got, want) in enumerate(zip(history, expected), 1):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"step {step}")


def test_sgd_plain():
    # w <- w - 0.1 g
    history, _, _ = run(lambda p: optim.SGD(p, lr=0.1))
    check(history, [[0.95, -2.1], [1.05, -2.15], [1.025, -2.1]])


def test_sgd_momentum():
    # buf1 = g1 = [.5, 1]                         w1 = w0 - .1 buf1 = [.95, -2.1]
    # buf2 = .9 buf1 + g2 = [-.55, 1.4]           w2 = [1.005, -2.24]
    # buf3 = .9 buf2 + g3 = [-.245, .76]          w3 = [1.0295, -2.316]
    history, w, opt = run(lambda p: optim.SGD(p, lr=0.1, momentum=0.9))
    check(history, [[0.95, -2.1], [1.005, -2.24], [1.0295, -2.316]])
    np.testing.assert_allclose(opt.state[w]["momentum_buffer"].numpy(), [-0.245, 0.76],
                               atol=1e-12)


def test_sgd_dampening():
    # buf1 = g1 (no dampening on the first step)  w1 = [.95, -2.1]
    # buf2 = .5 buf1 + .5 g2 = [-.25, .75]        w2 = [.975, -2.175]
    # buf3 = .5 buf2 + .5 g3 = [0, .125]          w3 = [.975, -2.1875]
    history, _, _ = run(lambda p: optim.SGD(p, lr=0.1, momentum=0.5, dampening=0.5))
    check(history, [[0.95, -2.1], [0.975, -2.175], [0.975, -2.1875]])


def test_sgd_weight_decay():
    # d1 = g1 + .1 w0 = [.6, .8]                  w1 = [.94, -2.08]
    # d2 = g2 + .1 w1 = [-.906, .292]             w2 = [1.0306, -2.1092]
    # d3 = g3 + .1 w2 = [.35306, -.71092]         w3 = [.995294, -2.038108]
    history, _, _ = run(lambda p: optim.SGD(p, lr=0.1, weight_decay=0.1))
    check(history, [[0.94, -2.08], [1.0306, -2.1092], [0.995294, -2.038108]])


def test_sgd_nesterov_with_weight_decay():
    # d1 = g1 + .1 w0 = [.6, .8];  buf1 = d1;  step = d1 + .9 buf1 = [1.14, 1.52]
    #   w1 = [.886, -2.152]
    # d2 = g2 + .1 w1 = [-.9114, .2848];  buf2 = .9 buf1 + d2 = [-.3714, 1.0048]
    #   step = d2 + .9 buf2 = [-1.24566, 1.18912];  w2 = [1.010566, -2.270912]
    # d3 = g3 + .1 w2 = [.3510566, -.7270912];  buf3 = .9 buf2 + d3 = [.0167966, .1772288]
    #   step = d3 + .9 buf3 = [.36617354, -.56758528];  w3 = [.973948646, -2.214153472]
    history, _, _ = run(lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                            weight_decay=0.1))
    check(history, [[0.886, -2.152], [1.010566, -2.270912], [0.973948646, -2.214153472]])


def test_sgd_maximize():
    history, _, _ = run(lambda p: optim.SGD(p, lr=0.1, maximize=True))
    check(history, [[1.05, -1.9], [0.95, -1.85], [0.975, -1.9]])


@pytest.mark.parametrize("path", ["numpy cblas axpy", "scipy axpy", "numpy two passes"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_on_large_parameters_updates_in_place(dtype, path, monkeypatch):
    # From 2**14 elements the update is one BLAS axpy into the parameter's own array:
    # NumPy's own BLAS when it has axpy, else SciPy's when BLAS is single-threaded, else
    # NumPy's two passes.
    from fgrad._src.backend import blas as numpy_blas
    from fgrad._src.tensor import blas

    if path == "numpy cblas axpy":
        # NumPy's PyPI wheels bundle scipy-openblas (ILP64): its axpy must be found.
        assert numpy_blas.axpy(dtype) is not None or numpy_blas._numpy_openblas() is None
    else:
        monkeypatch.setattr(numpy_blas, "_axpys", {np.dtype(dtype): None})
    monkeypatch.setattr(blas, "_enabled", path == "scipy axpy")
    monkeypatch.setattr(blas, "_routines", {})
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((130, 140)).astype(dtype)
    w = fg.tensor(w0, requires_grad=True)
    array = w.detach().numpy()
    opt = optim.SGD([w], lr=0.1, momentum=0.5)
    want, buf = w0.copy(), None
    for _ in range(2):
        g = rng.standard_normal(w0.shape).astype(dtype)
        w.grad = fg.tensor(g)
        opt.step()
        buf = g if buf is None else 0.5 * buf + g
        want = want - dtype(0.1) * buf
    assert w.detach().numpy() is array or np.shares_memory(w.detach().numpy(), array)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(w.detach().numpy(), want, rtol=rtol, atol=rtol)
    # A zero learning rate leaves NaN where the gradient is infinite, as p - 0 * g does.
    w.grad = fg.tensor(np.full(w0.shape, np.inf, dtype))
    with np.errstate(invalid="ignore"):
        optim.SGD([w], lr=0.0).step()
    assert np.isnan(w.detach().numpy()).all()


def test_in_place_update_of_read_only_or_overlapping_arrays_follows_numpy():
    from fgrad.optim.optimizer import _AXPY_MIN, sub_scaled_

    rng = np.random.default_rng(1)
    frozen = rng.standard_normal(_AXPY_MIN)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        sub_scaled_(frozen, 0.5, np.ones(_AXPY_MIN))
    a = rng.standard_normal(_AXPY_MIN + 1)
    want = a.copy()
    want[1:] -= 2.0 * want[:-1].copy()
    sub_scaled_(a[1:], 2.0, a[:-1])  # the update overlaps the parameter
    np.testing.assert_array_equal(a, want)
    b = rng.standard_normal(_AXPY_MIN)
    want = b - 0.25 * b
    sub_scaled_(b, 0.25, b)
    np.testing.assert_array_equal(b, want)


def adam_reference(w0, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   decoupled=False, amsgrad=False):
    """PyTorch's Adam/AdamW algorithm (docs pseudo-code), one Python float at a time."""
    b1, b2 = betas
    out = []
    w = list(w0)
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    vmax = [0.0] * len(w)
    for t, g in enumerate(grads, 1):
        new = []
        for i, (wi, gi) in enumerate(zip(w, g)):
            if weight_decay and decoupled:
                wi = wi * (1 - lr * weight_decay)
            elif weight_decay:
                gi = gi + weight_decay * wi
            m[i] = m[i] + (1 - b1) * (gi - m[i])
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            vmax[i] = max(vmax[i], v[i])
            second = vmax[i] if amsgrad else v[i]
            denom = math.sqrt(second) / math.sqrt(1 - b2 ** t) + eps
            new.append(wi - lr / (1 - b1 ** t) * m[i] / denom)
        w = new
        out.append(list(w))
    return out


def test_adam_three_steps():
    # Step 1, element 0: m = .1 * .5 = .05, v = .001 * .25 = .00025,
    #   lr / (1 - .9) = 1, sqrt(v) / sqrt(1 - .999) = .5  ->  w = 1 - .05 / (.5 + 1e-8)
    # Step 2, element 0: m = .05 + .1 (-1 - .05) = -.055, v = .999 * .00025 + .001 = .00124975,
    #   w = w1 + (.1 / .19) * .055 / (sqrt(.00124975) / sqrt(.001999) + 1e-8)
    history, w, opt = run(lambda p: optim.Adam(p, lr=0.1))
    expected = [[1 - 0.05 / (0.5 + 1e-8), -2 - 0.1 / (1 + 1e-8)],
                [0.9366103542405654, -2.193217961701839],
                [0.9502794203389762, -2.2328884850675794]]
    check(history, expected)
    check(history, adam_reference(W0, GRADS, lr=0.1))
    state = opt.state[w]
    assert float(state["step"]) == 3.0
    assert not state["exp_avg"].requires_grad


def test_adam_l2_weight_decay_and_betas():
    history, _, _ = run(lambda p: optim.Adam(p, lr=0.1, betas=(0.8, 0.9), weight_decay=0.1))
    check(history, adam_reference(W0, GRADS, lr=0.1, betas=(0.8, 0.9), weight_decay=0.1))
    check(history[2:], [[0.9307365763988659, -2.1892715679918697]])


def test_adamw_decoupled_weight_decay():
    # Step 1: w <- w * (1 - .1 * .1) = [.99, -1.98], then the Adam step of +-.1.
    history, _, _ = run(lambda p: optim.AdamW(p, lr=0.1, weight_decay=0.1))
    check(history[:1], [[0.99 - 0.05 / (0.5 + 1e-8), -1.98 - 0.1 / (1 + 1e-8)]])
    check(history, adam_reference(W0, GRADS, lr=0.1, weight_decay=0.1, decoupled=True))
    check(history[2:], [[0.9222023167767704, -2.170564305460461]])


def test_adamw_default_weight_decay_is_0_01():
    w = fg.tensor([1.0], requires_grad=True)
    assert optim.AdamW([w]).param_groups[0]["weight_decay"] == 0.01
    assert optim.Adam([w]).param_groups[0]["weight_decay"] == 0


def test_adam_amsgrad():
    grads = [[1.0, 1.0], [0.1, 0.1], [0.1, -3.0]]
    history, _, _ = run(lambda p: optim.Adam(p, lr=0.1, betas=(0.9, 0.5), amsgrad=True), grads)
    check(history, adam_reference(W0, grads, lr=0.1, betas=(0.9, 0.5), amsgrad=True))
    plain, _, _ = run(lambda p: optim.Adam(p, lr=0.1, betas=(0.9, 0.5)), grads)
    assert not np.allclose(history[2], plain[2])  # the max of v matters here


def test_float32_parameters_stay_float32():
    w = fg.tensor([1.0, 2.0], requires_grad=True)
    for opt in (optim.SGD([w], lr=0.1, momentum=0.9), optim.Adam([w])):
        w.grad = fg.tensor([1.0, 1.0])
        opt.step()
        assert w.dtype == fg.float32
        assert all(t.dtype == fg.float32 for k, t in opt.state[w].items() if k != "step")


# --------------------------------------------------------------------------- semantics


def test_updates_with_backward_do_not_record_and_keep_identity():
    model = nn.Linear(3, 2)
    weight = model.weight
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = weight.detach().numpy().copy()
    loss = model(fg.ones(4, 3)).pow(2).mean()
    loss.backward()
    expected = before - 0.1 * weight.grad.numpy()
    opt.step()
    assert model.weight is weight and weight.is_leaf and weight.grad_fn is None
    assert weight.requires_grad
    np.testing.assert_allclose(weight.detach().numpy(), expected, rtol=1e-6)
    assert not opt.state[weight]["momentum_buffer"].requires_grad


def test_step_under_enabled_grad_mode_does_not_raise_inplace_error():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    (w * 3).sum().backward()
    assert fg.is_grad_enabled()
    opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [-2.0])


def test_frozen_parameters_are_skipped():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    for p in model[0].parameters():
        p.requires_grad = False
    frozen = {k: v.clone() for k, v in model[0].state_dict().items()}
    head = model[1].weight.detach().numpy().copy()
    opt = optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(fg.ones(2, 3)).sum().backward()
        opt.step()
    assert model[0].weight.grad is None
    for k, v in model[0].state_dict().items():
        assert np.array_equal(v.numpy(), frozen[k].numpy())
    assert not np.array_equal(model[1].weight.detach().numpy(), head)
    assert model[0].weight not in opt.state  # no state created for frozen params


def test_requires_grad_false_with_stale_grad_is_skipped():
    w = fg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.5)
    w.grad = fg.tensor([1.0, 1.0])
    w.requires_grad = False
    opt.step()
    np.testing.assert_array_equal(w.numpy(), [1.0, 2.0])


def test_param_groups_have_their_own_hyperparameters():
    a = fg.tensor([1.0], requires_grad=True)
    b = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0, 0.9]
    a.grad, b.grad = fg.tensor([1.0]), fg.tensor([1.0])
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [0.9, 0.5], rtol=1e-6)
    opt.param_groups[0]["lr"] = 1.0  # changing lr takes effect on the next step
    opt.step()
    np.testing.assert_allclose(a.item(), -0.1, rtol=1e-5)
    c = fg.tensor([1.0], requires_grad=True)
    opt.add_param_group({"params": c})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["params"] == [c]


def test_zero_grad():
    w = fg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert w.grad is None


def test_step_with_closure_returns_loss():
    w = fg.tensor([2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0
    np.testing.assert_allclose(w.item(), 1.0)  # 2 - .25 * 4


def test_state_dict_format_and_resume():
    def make():
        w = fg.tensor(np.array(W0), requires_grad=True)
        v = fg.tensor(np.array([0.5]), requires_grad=True)
        return [w, v], optim.Adam([{"params": [w]}, {"params": [v], "lr": 0.2}], lr=0.1)

    params, opt = make()
    for g in GRADS[:2]:
        params[0].grad = fg.tensor(np.array(g))
        params[1].grad = fg.tensor(np.array([1.0]))
        opt.step()
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.2 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    assert float(sd["state"][0]["step"]) == 2.0

    params2, opt2 = make()
    for p, q in zip(params2, params):
        p.data = q.detach().clone()
    opt2.load_state_dict(sd)
    for ps, o in ((params, opt), (params2, opt2)):
        ps[0].grad = fg.tensor(np.array(GRADS[2]))
        ps[1].grad = fg.tensor(np.array([1.0]))
        o.step()
    np.testing.assert_array_equal(params[0].detach().numpy(), params2[0].detach().numpy())
    check([params[0].detach().numpy()], adam_reference(W0, GRADS, lr=0.1)[2:])


def test_load_state_dict_mismatch_errors():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    other = optim.SGD([fg.tensor([1.0], requires_grad=True), fg.tensor([1.0],
                                                                       requires_grad=True)],
                      lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})


def test_constructor_errors():
    w = fg.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.SGD([w], lr=-1.0)
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        optim.SGD([w], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(TypeError, match="floating point"):
        optim.SGD([fg.tensor([1, 2])], lr=0.1)
    # Values that used to fail later, inside step(), or with an unrelated message:
    with pytest.raises(ValueError, match="needs a 'params' entry.*'foo'"):
        optim.SGD([{"foo": 1}], lr=0.1)
    with pytest.raises(TypeError, match="lr must be a number, got str '0.1'"):
        optim.SGD([w], lr="0.1")
    with pytest.raises(TypeError, match="momentum must be a number"):
        optim.SGD([{"params": [w], "momentum": None}], lr=0.1)
    with pytest.raises(TypeError, match="betas must be a pair of numbers, got 0.9"):
        optim.Adam([w], betas=0.9)
    with pytest.raises(TypeError, match="weight_decay must be a number"):
        optim.AdamW([w], weight_decay="0.01")
    assert optim.Adam([w], betas=[0.8, 0.9]).param_groups[0]["betas"] == (0.8, 0.9)
    assert float(optim.SGD([w], lr=fg.tensor(0.5)).param_groups[0]["lr"]) == 0.5


def test_repr():
    w = fg.tensor([1.0], requires_grad=True)
    text = repr(optim.SGD([w], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n") and "    momentum: 0.9" in text


def test_training_converges():
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    for make in (lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                 lambda p: optim.Adam(p, lr=0.05), lambda p: optim.AdamW(p, lr=0.05)):
        model = nn.Linear(3, 1)
        opt = make(model.parameters())
        loss_fn = nn.MSELoss()
        for _ in range(200):
            loss = loss_fn(model(fg.from_numpy(x)), fg.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 1e-2, (make, loss.item())


@pytest.mark.parametrize("module", ["fgrad.optim", "fgrad.optim.optimizer", "fgrad.optim.sgd",
                                    "fgrad.optim.adam", "fgrad.optim.lr_scheduler"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("make", [
    lambda p: optim.Adam(p, lr=float("nan")), lambda p: optim.Adam(p, eps=float("nan")),
    lambda p: optim.AdamW(p, weight_decay=float("nan")), lambda p: optim.SGD(p, lr=float("nan")),
    lambda p: optim.SGD(p, lr=0.1, momentum=float("nan")),
], ids=["adam lr", "adam eps", "adamw weight_decay", "sgd lr", "sgd momentum"])
def test_nan_hyperparameters_are_rejected(make):
    with pytest.raises(ValueError, match="Invalid .*: nan"):
        make([nn.Parameter(fg.ones(1))])


def _scheduled_lrs(make, epochs, lr=0.1):
    from fgrad.optim import lr_scheduler

    opt = optim.SGD(nn.Linear(2, 1).parameters(), lr=lr)
    sched = make(lr_scheduler, opt)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(epochs):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs, opt, sched


def test_lr_schedulers_follow_pytorchs_rules():
    def close(got, want):
        np.testing.assert_allclose(got, want, rtol=1e-12)

    close(_scheduled_lrs(lambda s, o: s.StepLR(o, 2, gamma=0.5), 5)[0],
          [0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    close(_scheduled_lrs(lambda s, o: s.MultiStepLR(o, [1, 3, 3], gamma=0.1), 4)[0],
          [0.1, 0.01, 0.01, 0.0001, 0.0001])
    close(_scheduled_lrs(lambda s, o: s.ExponentialLR(o, 0.5), 3)[0], [0.1, 0.05, 0.025, 0.0125])
    close(_scheduled_lrs(lambda s, o: s.LambdaLR(o, lambda e: 1 / (e + 1)), 3)[0],
          [0.1, 0.05, 0.1 / 3, 0.025])
    # cosine from 0.1 to 0.01 over 4 epochs: eta_min + (0.1 - eta_min)(1 + cos(pi t / 4)) / 2,
    # then back up (period 8)
    want = [0.01 + 0.09 * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(9)]
    close(_scheduled_lrs(lambda s, o: s.CosineAnnealingLR(o, 4, eta_min=0.01), 8)[0], want)


def test_lr_scheduler_chains_on_a_rate_set_by_hand_and_resumes_from_its_state():
    from fgrad.optim import lr_scheduler

    opt = optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    sched = lr_scheduler.ExponentialLR(opt, 0.5)
    sched.step()
    opt.param_groups[0]["lr"] = 1.0  # the next step scales the current rate
    sched.step()
    assert opt.param_groups[0]["lr"] == 0.5
    state = sched.state_dict()
    assert state["last_epoch"] == 2 and "optimizer" not in state
    other = lr_scheduler.ExponentialLR(optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1), 0.9)
    other.load_state_dict(state)
    assert other.gamma == 0.5 and other.last_epoch == 2
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1), 2, last_epoch=3)
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 1.0])


@pytest.mark.parametrize("make", [lambda p: optim.SGD([p], lr=0.5),
                                  lambda p: optim.Adam([p], lr=0.5)], ids=["SGD", "Adam"])
def test_step_between_forward_and_backward_is_pytorchs_in_place_error(make):
    # The update wrote into the values p * p saved, unnoticed: the gradient came out [0, 0].
    p = fg.nn.Parameter(fg.tensor([1.0, 2.0]))
    opt = make(p)
    loss = (p * p).sum()
    loss.backward(retain_graph=True)
    opt.step()
    p.grad = None
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    # A new forward after the step is the normal loop: nothing to refuse.
    (p * p).sum().backward()
    assert p.grad is not None


def test_load_state_dict_and_init_count_as_in_place_writes():
    layer = fg.nn.Linear(2, 2)
    loss = (layer(fg.ones(1, 2, requires_grad=True)) ** 2).sum()  # saves the weight
    layer.load_state_dict({k: v + 1.0 for k, v in layer.state_dict().items()})
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    x = fg.nn.Parameter(fg.ones(3))
    loss = (x * x).sum()
    fg.nn.init.constant_(x, 2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()



def test_schedulers_resumed_with_last_epoch_keep_the_current_rate_at_construction():
    # PyTorch 2.13's initial step: ExponentialLR(last_epoch=0) started at 0.05, not 0.1.
    from fgrad.optim import lr_scheduler

    def resumed(make):
        opt = optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
        opt.param_groups[0]["initial_lr"] = 0.1
        sched = make(opt)
        lrs = [sched.get_last_lr()[0]]
        for _ in range(2):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr()[0])
        return lrs

    np.testing.assert_allclose(
        resumed(lambda o: lr_scheduler.ExponentialLR(o, 0.5, last_epoch=0)), [0.1, 0.05, 0.025])
    # cosine (T_max 4, eta_min 0) resumed after epoch 1: construction takes epoch 2 and
    # keeps 0.1; then the recursive rule, epoch 3 scaling by (1 + cos(3pi/4)) / (1 + cos(pi/2))
    # and epoch 4 by (1 + cos(pi)) / ... = 0 (PyTorch 2.13's numbers)
    np.testing.assert_allclose(
        resumed(lambda o: lr_scheduler.CosineAnnealingLR(o, 4, last_epoch=1)),
        [0.1, 0.1 * (1 + np.cos(3 * np.pi / 4)), 0.0], rtol=1e-12, atol=1e-18)
    with pytest.raises(TypeError, match="step\\(epoch\\) is deprecated"):
        lr_scheduler.StepLR(optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1), 2).step(3)


def test_optimizers_take_named_parameters_as_pytorch_does():
    model = nn.Linear(2, 1)
    opt = optim.SGD(model.named_parameters(), lr=0.1)
    group = opt.param_groups[0]
    assert group["param_names"] == ["weight", "bias"]
    assert [p is q for p, q in zip(group["params"], model.parameters())] == [True, True]
    model(fg.ones(1, 2)).sum().backward()
    before = model.bias.detach().numpy().copy()
    opt.step()
    np.testing.assert_allclose(model.bias.detach().numpy(), before - 0.1)
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    with pytest.raises(ValueError, match="with or without names"):
        optim.SGD([("weight", model.weight), model.bias], lr=0.1)
    with pytest.raises(ValueError, match="groups should be with or without names"):
        opt.add_param_group({"params": nn.Linear(2, 1).parameters()})
