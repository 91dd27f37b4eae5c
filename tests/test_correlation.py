"""The correlation layer: the fused C++ kernel (and the CUDA one where a GPU exists) against the PyTorch reference,
forward and both inputs' gradients, over the layer's parameters; gradcheck through the public function; the
loader's fallback, its environment switches and its once-per-process build."""
from __future__ import annotations

import threading
import warnings

import pytest
import torch

from brushstream.core.errors import BrushstreamError
from brushstream.core.flow import correlation as corr_module
from brushstream.core.flow import kernels
from brushstream.core.flow.correlation import (
    Correlation,
    correlation,
    correlation_backend,
    correlation_reference,
    displacements,
    output_size,
)

# (batch, channels, height, width), dict(max_displacement, stride2, kernel_size, stride1, dilation)
CASES = [
    ((2, 8, 7, 9), dict(max_displacement=4, stride2=2)),                                   # FlowNetC's shape of grid
    ((3, 5, 7, 9), dict(max_displacement=3, stride2=1, kernel_size=3, stride1=2, dilation=2)),
    ((2, 6, 9, 7), dict(max_displacement=4, stride2=2, kernel_size=3, stride1=1, dilation=1)),
    ((2, 4, 6, 5), dict(max_displacement=0, stride2=1, kernel_size=3, stride1=2, dilation=2)),
    ((3, 7, 8, 10), dict(max_displacement=3, stride2=2, kernel_size=1, stride1=2)),       # D not a multiple of s2
    ((1, 37, 5, 11), dict(max_displacement=4, stride2=1, kernel_size=5, stride1=3, dilation=1)),  # C over a vector
    ((2, 70, 4, 6), dict(max_displacement=3, stride2=1)),                                 # C over a register block
    ((2, 3, 3, 4), dict(max_displacement=6, stride2=1, kernel_size=3, dilation=3)),      # reach beyond the map
]
IDS = [f"{'x'.join(map(str, s))}-" + "-".join(f"{k[:4]}{v}" for k, v in p.items()) for s, p in CASES]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.fixture
def fresh_loader(monkeypatch):
    """The loader with nothing built yet in this process (restored afterwards)."""
    monkeypatch.setattr(kernels, "_built", {})
    monkeypatch.delenv(kernels.ENV_CHOICE, raising=False)
    return kernels


def _non_contiguous(shape, dtype, gen):
    """A (B, C, H, W) view that is neither contiguous nor channels-last: a transposed, sliced buffer."""
    b, c, h, w = shape
    base = torch.randn(b, w + 1, c, h, dtype=dtype, generator=gen)
    return base.permute(0, 2, 3, 1)[..., 1:]


def _grads(fn, a, b, params, grad):
    a, b = a.detach().requires_grad_(), b.detach().requires_grad_()
    out = fn(a, b, **params)
    return (out, *torch.autograd.grad(out, (a, b), grad))


def test_the_cpp_kernel_is_built_and_used():
    assert correlation_backend() == "cpp"
    a = torch.randn(1, 4, 5, 6, requires_grad=True)
    out = correlation(a, a.detach(), 2, 1)
    assert type(out.grad_fn).__name__ == "_FusedCorrelationBackward"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape,params", CASES, ids=IDS)
def test_kernel_matches_reference(shape, params, dtype):
    gen = torch.Generator().manual_seed(sum(shape) + len(params))
    a, b = torch.randn(shape, dtype=dtype, generator=gen), torch.randn(shape, dtype=dtype, generator=gen)
    ref = correlation_reference(a, b, **params)
    grad = torch.randn(ref.shape, dtype=dtype, generator=gen)
    expected = _grads(correlation_reference, a, b, params, grad)
    got = _grads(correlation, a, b, params, grad)
    assert got[0].shape == (shape[0], len(displacements(params["max_displacement"], params["stride2"])) ** 2,
                            *output_size(shape[2], shape[3], params.get("stride1", 1)))
    for name, e, g in zip(("output", "grad_a", "grad_b"), expected, got):
        torch.testing.assert_close(g, e, **TOL[dtype], msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_non_contiguous_inputs(dtype):
    gen = torch.Generator().manual_seed(7)
    shape, params = (2, 6, 7, 9), dict(max_displacement=3, stride2=1, kernel_size=3, stride1=2, dilation=2)
    a, b = _non_contiguous(shape, dtype, gen), _non_contiguous(shape, dtype, gen)
    channels_last = torch.randn(shape, dtype=dtype, generator=gen).contiguous(memory_format=torch.channels_last)
    broadcast = torch.randn(1, *shape[1:], dtype=dtype, generator=gen).expand(shape)   # batch stride 0
    for x, y in ((a, b), (channels_last, a), (broadcast, b)):
        assert not x.is_contiguous() and x.shape == shape
        grad = torch.randn(correlation_reference(x, y, **params).shape, dtype=dtype, generator=gen)
        for e, g in zip(_grads(correlation_reference, x, y, params, grad), _grads(correlation, x, y, params, grad)):
            torch.testing.assert_close(g, e, **TOL[dtype])


def test_threads_give_identical_results():
    """Rows are shared out dynamically and batch groups follow the thread count: the bits must not change."""
    gen = torch.Generator().manual_seed(9)
    a, b = torch.randn(3, 20, 7, 9, generator=gen), torch.randn(3, 20, 7, 9, generator=gen)
    grad = torch.randn(3, 25, 7, 9, generator=gen)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 3):
            torch.set_num_threads(n)
            results.append(_grads(correlation, a, b, dict(max_displacement=2, stride2=1, kernel_size=3), grad))
    finally:
        torch.set_num_threads(threads)
    for one, many in zip(*results):
        assert torch.equal(one, many)
    expected = _grads(correlation_reference, a, b, dict(max_displacement=2, stride2=1, kernel_size=3), grad)
    for e, g in zip(expected, results[1]):
        torch.testing.assert_close(g, e, **TOL[torch.float32])


def test_one_input_needing_a_gradient():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 5, 6, 7, generator=gen), torch.randn(2, 5, 6, 7, generator=gen, requires_grad=True)
    (expected,) = torch.autograd.grad(correlation_reference(a, b, 2, 1).square().sum(), b)
    (got,) = torch.autograd.grad(correlation(a, b, 2, 1).square().sum(), b)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_one_map_as_both_inputs():
    a = torch.randn(2, 5, 6, 7, generator=torch.Generator().manual_seed(4), requires_grad=True)
    (expected,) = torch.autograd.grad(correlation_reference(a, a, 3, 1, kernel_size=3).square().sum(), a)
    (got,) = torch.autograd.grad(correlation(a, a, 3, 1, kernel_size=3).square().sum(), a)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_gradcheck_through_the_public_function():
    assert correlation_backend() == "cpp"
    gen = torch.Generator().manual_seed(11)
    for shape, params in (((2, 3, 5, 6), dict(max_displacement=2, stride2=1, kernel_size=3, stride1=2, dilation=1)),
                          ((1, 4, 4, 5), dict(max_displacement=2, stride2=2, kernel_size=1, stride1=1, dilation=1))):
        a = torch.randn(shape, dtype=torch.float64, generator=gen, requires_grad=True)
        b = torch.randn(shape, dtype=torch.float64, generator=gen, requires_grad=True)
        assert type(correlation(a, b, **params).grad_fn).__name__ == "_FusedCorrelationBackward"
        assert torch.autograd.gradcheck(lambda x, y, p=params: correlation(x, y, **p), (a, b))


@pytest.mark.parametrize("params", [dict(), dict(max_displacement=4, stride2=1, stride1=2),
                                    dict(max_displacement=3, stride2=2, kernel_size=3, dilation=2)])
def test_module_out_channels(params):
    layer = Correlation(**params)
    out = layer(torch.randn(1, 4, 6, 7), torch.randn(1, 4, 6, 7))
    assert out.shape[1] == layer.out_channels
    assert "max_displacement" in repr(layer)


def test_other_dtypes_use_the_reference():
    a, b = torch.randn(1, 4, 5, 6), torch.randn(1, 4, 5, 6)
    assert kernels.kernel_for(a.half(), b.half()) is None and kernels.kernel_for(a, b.double()) is None
    out = correlation(a.bfloat16(), b.bfloat16(), 2, 1)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, correlation_reference(a.bfloat16(), b.bfloat16(), 2, 1))


def test_a_failed_build_falls_back_with_one_warning(fresh_loader, monkeypatch):
    def no_compiler(kind):
        raise RuntimeError("Error building extension: c++: error: no such compiler (test)")
    monkeypatch.setattr(kernels, "_build", no_compiler)
    a, b = torch.randn(2, 4, 5, 6), torch.randn(2, 4, 5, 6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = correlation(a, b, 2, 1)
        second = correlation(a, b, 2, 1, kernel_size=3)
        assert correlation_backend() == "reference"
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert "no such compiler (test)" in message and "reference" in message and "\n" not in message
    torch.testing.assert_close(first, correlation_reference(a, b, 2, 1), rtol=0, atol=0)
    torch.testing.assert_close(second, correlation_reference(a, b, 2, 1, kernel_size=3), rtol=0, atol=0)


def test_cpp_choice_makes_a_failed_build_an_error(fresh_loader, monkeypatch):
    def no_ninja(kind):
        raise OSError("ninja not found (test)")
    monkeypatch.setattr(kernels, "_build", no_ninja)
    monkeypatch.setenv(kernels.ENV_CHOICE, "cpp")
    with pytest.raises(BrushstreamError, match="ninja not found"):
        correlation(torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4), 1, 1)


def test_reference_choice_never_builds(fresh_loader, monkeypatch):
    monkeypatch.setattr(kernels, "_build", lambda kind: pytest.fail("the reference choice built a kernel"))
    monkeypatch.setenv(kernels.ENV_CHOICE, "reference")
    a = torch.randn(1, 3, 4, 5, requires_grad=True)
    assert correlation_backend() == "reference"
    assert type(correlation(a, a, 1, 1).grad_fn).__name__ != "_FusedCorrelationBackward"
    monkeypatch.setenv(kernels.ENV_CHOICE, "fast")
    with pytest.raises(BrushstreamError, match="BRUSHSTREAM_CORRELATION"):
        correlation(a, a, 1, 1)


def test_the_build_runs_once_across_threads(fresh_loader, monkeypatch):
    calls = []

    def slow_build(kind):
        calls.append(kind)
        threading.Event().wait(0.05)
        return corr_module   # any object stands for the module here
    monkeypatch.setattr(kernels, "_build", slow_build)
    threads = [threading.Thread(target=kernels.load, args=("cpu",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["cpu"]


def test_build_name_follows_the_sources_and_the_directory_the_environment(monkeypatch, tmp_path):
    name = kernels.extension_name("cpu")
    assert name.startswith("brushstream_correlation_cpu_") and name == kernels.extension_name("cpu")
    monkeypatch.delenv(kernels.ENV_DIR, raising=False)
    assert kernels.build_directory(name).parent.parts[-3:] == (".cache", "brushstream", "torch_extensions")
    monkeypatch.setenv(kernels.ENV_DIR, str(tmp_path))
    assert kernels.build_directory(name) == tmp_path / name
    edited = tmp_path / "csrc"
    edited.mkdir()
    for source in kernels.CSRC.iterdir():
        if source.is_file():
            (edited / source.name).write_bytes(source.read_bytes())
    (edited / "correlation.cpp").write_text((edited / "correlation.cpp").read_text() + "\n// edited\n")
    monkeypatch.setattr(kernels, "CSRC", edited)
    assert kernels.extension_name("cpu") != name


def _cuda_or_skip():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False, the CUDA kernel is not built or compared")
    from torch.utils.cpp_extension import CUDA_HOME
    if CUDA_HOME is None:
        pytest.skip("no CUDA toolkit (CUDA_HOME) to build the CUDA kernel with")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape,params", CASES[:6], ids=IDS[:6])
def test_cuda_kernel_matches_reference(shape, params, dtype):
    _cuda_or_skip()
    assert correlation_backend("cuda") == "cuda"
    gen = torch.Generator().manual_seed(sum(shape))
    a, b = torch.randn(shape, dtype=dtype, generator=gen), torch.randn(shape, dtype=dtype, generator=gen)
    grad = torch.randn(correlation_reference(a, b, **params).shape, dtype=dtype, generator=gen)
    expected = _grads(correlation_reference, a, b, params, grad)
    got = _grads(correlation, a.cuda(), b.cuda(), params, grad.cuda())
    for name, e, g in zip(("output", "grad_a", "grad_b"), expected, got):
        torch.testing.assert_close(g.cpu(), e, **TOL[dtype], msg=lambda m, name=name: f"{name}: {m}")


def test_cuda_kernel_at_flownetc_settings():
    _cuda_or_skip()
    gen = torch.Generator().manual_seed(5)
    a, b = torch.randn(2, 64, 24, 32, generator=gen), torch.randn(2, 64, 24, 32, generator=gen)
    ref = correlation_reference(a, b)   # max_displacement 20, stride2 2
    grad = torch.randn(ref.shape, generator=gen)
    for e, g in zip(_grads(correlation_reference, a, b, {}, grad),
                    _grads(correlation, a.cuda(), b.cuda(), {}, grad.cuda())):
        torch.testing.assert_close(g.cpu(), e, rtol=1e-4, atol=1e-5)
