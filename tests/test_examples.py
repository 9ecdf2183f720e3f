"""Every example runs as ``python examples/NAME.py --quick`` and prints what it promises;
train_mlp.py's full run reaches >= 95% test accuracy in well under a minute."""

import importlib.util
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
# The examples need the "examples" extra (scikit-learn); CI installs ".[test,examples]".


def run_example(name, *args):
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
        cwd=ROOT, timeout=300)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def load_example(name):
    spec = importlib.util.spec_from_file_location(name[:-3], os.path.join(EXAMPLES, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_autograd_tutorial():
    out = run_example("autograd_tutorial.py", "--quick")
    assert "tensor(27., grad_fn=<MeanBackward0>)" in out
    assert "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])" in out
    assert out.count("tensor([True, True])") == 2  # 9*a**2 == a.grad, -2*b == b.grad
    assert "x.grad:tensor([1024.])" in out and "y.grad:None" in out
    assert "changed by one optimizer step: ['fc.weight', 'fc.bias']" in out
    assert "Gradient function for loss = <BinaryCrossEntropyWithLogitsBackward0 object at" in out


def test_train_mlp_quick():
    out = run_example("train_mlp.py", "--quick")
    lines = re.findall(r"epoch +(\d+)/2 +loss (\d+\.\d+) +train acc +(\d+\.\d+)% +test acc "
                       r"+(\d+\.\d+)%", out)
    assert [int(e) for e, *_ in lines] == [1, 2]
    assert float(lines[1][1]) < float(lines[0][1])  # the loss goes down
    reloaded = re.search(r"reloaded from mlp.pt: test accuracy (\d+\.\d+)%", out)
    final = re.search(r"test accuracy (\d+\.\d+)% after 2 epochs", out)
    assert reloaded and final and reloaded.group(1) == final.group(1)


def test_train_mlp_full_reaches_95_percent_in_under_a_minute():
    train_mlp = load_example("train_mlp.py")
    start = time.perf_counter()
    _, test_acc, _ = train_mlp.train(epochs=20, verbose=False)
    assert test_acc >= 0.95
    assert time.perf_counter() - start < 60


def test_finetune_freeze():
    out = run_example("finetune_freeze.py", "--quick")
    assert "trainable: ['fc.weight', 'fc.bias']" in out
    assert "frozen parameters have no gradient: True" in out
    assert "frozen weights unchanged: True" in out
    acc = float(re.search(r"fine-tuned on digits 5-9: .*test accuracy (\d+\.\d+)%", out).group(1))
    assert acc > 50.0  # five classes: chance is 20%


def test_logistic_regression():
    out = run_example("logistic_regression.py", "--quick")
    assert "Gradient function for z = <AddBackward0 object at" in out
    assert "matches (sigmoid(z) - y) / 3: True" in out
    assert "True\nFalse\nFalse" in out  # requires_grad, under no_grad, detached
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", out)]
    assert losses[0] == pytest.approx(0.6931, abs=1e-4) and losses[-1] < 0.5


def test_functional_training():
    out = run_example("functional_training.py", "--quick")
    epochs = re.findall(r"jit\(value_and_grad\) loss (\d+\.\d+) +backward \+ SGD loss "
                        r"(\d+\.\d+)", out)
    assert len(epochs) == 2
    for functional, eager in epochs:
        assert float(functional) == pytest.approx(float(eager), rel=1e-4)
    diff = float(re.search(r"difference between the two styles: (\S+)", out).group(1))
    assert diff < 1e-4
    acc = re.search(r"test accuracy: functional (\d+\.\d+)%, PyTorch-style (\d+\.\d+)%", out)
    assert float(acc.group(1)) > 80.0
