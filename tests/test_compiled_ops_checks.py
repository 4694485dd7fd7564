"""The compiled engine's ops check every argument (issue 28): no caller reads out of bounds.

The ops ``torch.ops.lstmkit_compiled.*`` are called directly, as a careless or hostile caller
would. For every op, one valid call per configuration (every optional argument given), then
every tensor argument of the op's schema perturbed one at a time:

* rank ±1; every dimension ±1; another float dtype, an integer dtype (the mask: uint8, float);
  the ``meta`` device  ->  a RuntimeError (TORCH_CHECK) that names the op and the argument;
* a non-contiguous copy  ->  accepted, and the very same result as the valid call;
* absent (``None``)  ->  accepted (and, for the forward ops, the differentiable twin's numbers),
  except where the argument cannot be left out (one layer-norm gain of four; ``w_hr`` with
  ``P != H``)  ->  the RuntimeError;
* the ``saved`` list one shorter or longer; every bool flag flipped (no crash: a result or the
  RuntimeError).

The valid calls equal :mod:`lstmkit.engines.twin` (forward, and the backward as the twin's
vector-Jacobian product) in float64. A hypothesis fuzz over random shapes, dtypes and zero sizes
then asserts: never a crash, a RuntimeError or a result, and a result whenever the shapes agree.

Everything runs in child processes (this file is also the child, ``python <this file> matrix
|fuzz``), so that a segfault is a failed test naming the case, not a dead pytest worker; the
matrix child resumes after a crash so that one crash does not hide the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch

OPS = (
    "lstm_forward",
    "lstm_backward",
    "gru_forward",
    "gru_backward",
    "rnn_forward",
    "rnn_backward",
)
CHILD_TIMEOUT_S = 120
FUZZ_EXAMPLES = 400

# -- building calls ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One valid configuration of a family's ops (sizes, switches); every option on by default."""

    family: str  # lstm, gru, rnn
    T: int = 3
    B: int = 9  # two uneven chunks of rows on two threads
    H: int = 4
    P: int = 3  # the LSTM's projection size (== H: no projection)
    coupled: bool = False
    peephole: bool = True
    layer_norm: bool = True
    rec_mask: str = "gate"  # none, shared (1, B, P) or gate (G, B, P)
    mask: bool = True
    reverse: bool = False
    zero_output: bool = False
    reset_after: bool = True
    relu: bool = False
    dtype: torch.dtype = torch.float64


CONFIGS = {
    "lstm": [
        Config("lstm"),
        Config(
            "lstm",
            P=4,
            coupled=True,
            layer_norm=False,
            rec_mask="shared",
            reverse=True,
            zero_output=True,
        ),
    ],
    "gru": [
        Config("gru"),
        Config("gru", reset_after=False, rec_mask="shared", reverse=True, zero_output=True),
    ],
    "rnn": [
        Config("rnn", rec_mask="shared"),
        Config("rnn", rec_mask="shared", relu=True, reverse=True, zero_output=True),
    ],
}


def ops() -> Any:
    from lstmkit.engines import compiled

    loaded = compiled.load_extension()
    assert loaded is not None, compiled.unavailable_reason()
    return loaded


def schema(op: str) -> list[tuple[str, str]]:
    """``(name, type)`` of the op's arguments, in order: Tensor, Optional[Tensor], bool, ..."""
    return [(a.name, str(a.type)) for a in getattr(ops(), op).default._schema.arguments]


def gate_blocks(cfg: Config) -> int:
    return {"lstm": 3 if cfg.coupled else 4, "gru": 3, "rnn": 1}[cfg.family]


def forward_values(cfg: Config, seed: int = 0) -> dict[str, Any]:
    """The forward op's arguments by name."""
    g = torch.Generator().manual_seed(seed)
    T, B, H = cfg.T, cfg.B, cfg.H
    P = cfg.P if cfg.family == "lstm" else H
    G = gate_blocks(cfg)

    def rnd(*shape: int, scale: float = 0.5) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=cfg.dtype) * scale

    v: dict[str, Any] = {"xw": rnd(T, B, G * H, scale=1.0), "h0": rnd(B, P, scale=1.0)}
    v["w_hh"] = rnd(G * H, P)
    v["b_ih"], v["b_hh"] = rnd(G * H), rnd(G * H)
    rows = {"none": 0, "shared": 1, "gate": G}[cfg.rec_mask]
    keep = torch.rand(rows, B, P, generator=g) > 0.3
    v["rec_mask"] = (keep.to(cfg.dtype) / 0.7) if rows else None
    v["mask"] = torch.rand(B, T, generator=g) > 0.3 if cfg.mask else None
    if cfg.family == "lstm":
        v["c0"] = rnd(B, H, scale=1.0)
        v["peephole"] = rnd(3, H) if cfg.peephole else None
        ln = cfg.layer_norm
        v["ln_hh_w"], v["ln_hh_b"] = (1 + rnd(G * H), rnd(G * H)) if ln else (None, None)
        v["ln_c_w"], v["ln_c_b"] = (1 + rnd(H), rnd(H)) if ln else (None, None)
        v["w_hr"] = rnd(P, H) if P != H else None
        v["coupled"] = cfg.coupled
    v["reset_after"], v["relu"] = cfg.reset_after, cfg.relu
    v["reverse"], v["zero_output"], v["keep"] = cfg.reverse, cfg.zero_output, True
    return v


def backward_values(cfg: Config, fwd: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    """The backward op's arguments by name: ``saved`` from the valid forward, random grads."""
    result = call(f"{cfg.family}_forward", fwd)
    g = torch.Generator().manual_seed(seed)

    def like(t: torch.Tensor) -> torch.Tensor:
        return torch.randn(t.shape, generator=g, dtype=t.dtype)

    v = dict(fwd)
    if cfg.family == "lstm":
        v["saved"] = list(result)
        hbuf, cbuf, gates, out = result[0], result[1], result[2], result[4]
        v["d_hbuf"], v["d_cbuf"], v["d_gates"] = like(hbuf), like(cbuf), like(gates)
    elif cfg.family == "gru":
        hbuf, gates, hn, out = result
        v["saved"] = [hbuf, gates, hn]
        v["d_hbuf"], v["d_gates"] = like(hbuf), like(gates)
    else:
        hbuf, hcomp, out = result
        v["saved"] = [hbuf, hcomp]
        v["d_hbuf"] = like(hbuf)
    v["d_out"] = like(out) if out.numel() else None
    for name in ("d_hbuf", "d_cbuf"):  # the initial state's slot is an input, not an output
        if name in v:
            v[name][-1 if cfg.reverse else 0] = 0
    return v


def values_for(op: str, cfg: Config) -> dict[str, Any]:
    fwd = forward_values(cfg)
    return fwd if op.endswith("forward") else backward_values(cfg, fwd)


def call(op: str, values: dict[str, Any]) -> list[torch.Tensor]:
    return list(getattr(ops(), op)(*(values[name] for name, _ in schema(op))))


# -- the differentiable twin: what a valid call must return -----------------------------------

TWIN_INPUTS = {
    "lstm": (
        "xw",
        "h0",
        "c0",
        "w_hh",
        "b_ih",
        "b_hh",
        "peephole",
        "ln_hh_w",
        "ln_hh_b",
        "ln_c_w",
        "ln_c_b",
        "w_hr",
        "rec_mask",
        "mask",
    ),
    "gru": ("xw", "h0", "w_hh", "b_ih", "b_hh", "rec_mask", "mask"),
    "rnn": ("xw", "h0", "w_hh", "b_ih", "b_hh", "rec_mask", "mask"),
}
TWIN_FLAGS = {"lstm": "coupled", "gru": "reset_after", "rnn": "relu"}
KERNEL_FORWARD = {"lstm": (0, 1, 2, 4), "gru": (0, 1, 3), "rnn": (0, 2)}  # the twin's outputs
GRADIENTS = {
    "lstm": ("d_hbuf", "d_cbuf", "d_gates", "d_out"),
    "gru": ("d_hbuf", "d_gates", "d_out"),
    "rnn": ("d_hbuf", "d_out"),
}


def close(got: torch.Tensor | None, want: torch.Tensor | None) -> str | None:
    """``None`` if equal to the float64 tolerance (1e-10 relative), else what differs."""
    got = None if got is None or got.numel() == 0 else got
    want = None if want is None or want.numel() == 0 else want
    if got is None or want is None:
        other = got if want is None else want
        return None if other is None or float(other.abs().max()) == 0 else "one is absent"
    if got.shape != want.shape:
        return f"shape {tuple(got.shape)} != {tuple(want.shape)}"
    err = float((got - want).detach().abs().max())
    return (
        None
        if err <= 1e-10 * max(1.0, float(want.detach().abs().max()))
        else f"differs by {err:.3g}"
    )


def twin_mismatch(op: str, family: str, values: dict[str, Any], got: list[torch.Tensor]) -> str:
    """How the kernel's result differs from the twin's ('' if it does not)."""
    from lstmkit.engines import twin

    fn = getattr(twin, f"{family}_sequence")
    flags = (values[TWIN_FLAGS[family]], values["reverse"], values["zero_output"])
    inputs = [values[k] for k in TWIN_INPUTS[family]]
    if op.endswith("forward"):
        want = fn(*inputs, *flags)
        pairs = [(f"output {k}", got[k], w) for k, w in zip(KERNEL_FORWARD[family], want)]
    else:
        leaves = [
            t.detach().clone().requires_grad_(True)
            if t is not None and n not in ("mask", "rec_mask")
            else t
            for n, t in zip(TWIN_INPUTS[family], inputs)
        ]
        grads = tuple(values[k] for k in GRADIENTS[family])
        needs = tuple(t is not None and t.requires_grad for t in leaves) + (False,) * 3
        want = twin.differentiate(fn, tuple(leaves), flags, grads, needs)
        pairs = [(f"d_{n}", g, w) for n, g, w in zip(TWIN_INPUTS[family], got, want)]
    problems = [f"{what}: {p}" for what, g, w in pairs if (p := close(g, w)) is not None]
    return "; ".join(problems)


# -- the perturbation matrix --------------------------------------------------------------------


@dataclass
class Case:
    op: str
    name: str  # e.g. "lstm[0] w_hh size0-1"
    values: dict[str, Any]
    expect: str  # "error:<arg>", "same" (as the valid call), "twin" (forward), "ok", "no-crash"
    base: list[torch.Tensor] | None = None


def tensor_variants(t: torch.Tensor) -> Iterator[tuple[str, torch.Tensor, str]]:
    """``(label, tensor, kind)``: kind ``bad`` (must be refused) or ``same`` (must equal)."""
    yield "rank+1", t.unsqueeze(0), "bad"
    if t.dim() > 0:
        yield "rank-1", t[0], "bad"
    for d in range(t.dim()):
        for delta in (1, -1):
            n = t.shape[d] + delta
            if n < 1:
                continue  # an empty optional tensor means "absent": covered below
            grown = torch.cat([t, t.narrow(d, 0, 1)], d) if delta > 0 else t.narrow(d, 0, n)
            yield f"size{d}{delta:+d}", grown.contiguous(), "bad"
    if t.dtype == torch.bool:
        yield "dtype=uint8", t.to(torch.uint8), "bad"
        yield "dtype=float64", t.to(torch.float64), "bad"
    else:
        other = torch.float32 if t.dtype == torch.float64 else torch.float64
        yield f"dtype={other}", t.to(other), "bad"
        yield "dtype=int64", t.to(torch.int64), "bad"
    yield "device=meta", t.to("meta"), "bad"
    if t.dim() > 0 and t.numel() > 1:
        strided = torch.stack([t, torch.zeros_like(t)], -1)[..., 0]
        if strided.is_contiguous():  # a trailing size-1 dimension: transpose instead
            strided = t.transpose(0, -1).contiguous().transpose(0, -1)
        if not strided.is_contiguous():
            yield "non-contiguous", strided, "same"


def unused(op: str, cfg: Config) -> set[str]:
    """Arguments the op does not read in this configuration (any value is fine)."""
    if op != "lstm_backward":
        return set()
    return {"saved[4]"} | ({f"saved[{k}]" for k in range(5, 9)} if not cfg.layer_norm else set())


def absent_expectation(op: str, cfg: Config, name: str) -> str:
    if name.startswith("ln_"):
        return f"error:{name}" if cfg.layer_norm else "ok"
    if name == "w_hr" and cfg.P != cfg.H:
        return "error:w_hr"
    return "twin" if op.endswith("forward") else "ok"


def matrix_cases() -> Iterator[Case]:
    """Every op × configuration × tensor argument × perturbation, in a fixed order."""
    for op in OPS:
        family = op.split("_")[0]
        for k, cfg in enumerate(CONFIGS[family]):
            values = values_for(op, cfg)
            base = call(op, values)
            tag = f"{family}[{k}]"
            yield Case(op, f"{tag} valid", values, "twin", base)
            skip = unused(op, cfg)
            for name, kind in schema(op):
                if kind == "bool":
                    flipped = dict(values, **{name: not values[name]})
                    yield Case(op, f"{tag} {name}=not", flipped, "no-crash")
                    continue
                if kind == "List[Tensor]":
                    saved = values[name]
                    for label, lst in (("len-1", saved[:-1]), ("len+1", [*saved, saved[0]])):
                        yield Case(
                            op,
                            f"{tag} {name} {label}",
                            dict(values, **{name: lst}),
                            f"error:{name}",
                        )
                    entries = [(f"{name}[{i}]", i) for i in range(len(saved))]
                else:
                    entries = [(name, None)]
                for arg, index in entries:
                    t = values[name] if index is None else values[name][index]
                    if t is None or t.numel() == 0:  # absent (an empty saved buffer: unused)
                        continue
                    for label, bad, how in tensor_variants(t):
                        if index is None:
                            new = dict(values, **{name: bad})
                        else:
                            lst = list(values[name])
                            lst[index] = bad
                            new = dict(values, **{name: lst})
                        if arg in skip:
                            expect = "ok"
                        else:
                            expect = f"error:{arg}" if how == "bad" else "same"
                        yield Case(op, f"{tag} {arg} {label}", new, expect, base)
                    if kind == "Optional[Tensor]":
                        new = dict(values, **{name: None})
                        yield Case(
                            op, f"{tag} {arg} absent", new, absent_expectation(op, cfg, name), base
                        )
    yield from issue_cases()


def issue_cases() -> Iterator[Case]:
    """The two calls of issue 28: a 1-element mask with B = 65536, a too-small w_hh."""
    big = forward_values(
        Config(
            "lstm",
            T=2,
            B=65536,
            H=1,
            P=1,
            peephole=False,
            layer_norm=False,
            rec_mask="none",
            dtype=torch.float32,
        )
    )
    big["mask"] = torch.ones(1, 1, dtype=torch.bool)
    yield Case("lstm_forward", "issue-28 1-element mask B=65536", big, "error:mask")
    small = forward_values(Config("lstm", P=4, peephole=False, layer_norm=False, rec_mask="none"))
    small["w_hh"] = small["w_hh"][:2].contiguous()
    yield Case("lstm_forward", "issue-28 w_hh of 2 rows", small, "error:w_hh")


def run_case(case: Case) -> dict[str, Any]:
    """Call the op; return what happened and whether it is what the case expects."""
    family = case.op.split("_")[0]
    try:
        got = call(case.op, case.values)
    except RuntimeError as exc:
        msg = str(exc).split("\n")[0]
        want = case.expect.removeprefix("error:")
        named = f"lstmkit_compiled.{case.op}:" in msg and f"'{want}'" in msg
        ok = case.expect == "no-crash" or (case.expect.startswith("error:") and named)
        return {"status": "RuntimeError", "message": msg, "pass": ok}
    except Exception as exc:  # any other class is a failure: the contract is RuntimeError
        return {"status": type(exc).__name__, "message": str(exc)[:300], "pass": False}
    problem = ""
    if case.expect.startswith("error:"):
        problem = "accepted"
    elif case.expect == "same":
        assert case.base is not None
        if len(got) != len(case.base) or not all(
            (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))
            for a, b in zip(got, case.base)
        ):
            problem = "result differs from the valid call's"
    elif case.expect == "twin":
        problem = twin_mismatch(case.op, family, case.values, got)
    return {"status": "ok", "message": problem, "pass": not problem}


def child_matrix(start: int) -> None:
    """Child: run the cases from index ``start``, one JSON line before and after each."""
    for index, case in enumerate(matrix_cases()):
        if index < start:
            continue
        print(json.dumps({"start": index, "op": case.op, "case": case.name}), flush=True)
        result = run_case(case)
        print(
            json.dumps(
                {"index": index, "op": case.op, "case": case.name, "expect": case.expect, **result}
            ),
            flush=True,
        )
    print(json.dumps({"done": True}), flush=True)


# -- the hypothesis fuzz --------------------------------------------------------------------


def child_fuzz(examples: int) -> None:
    """Child: random sizes (zero included) and random replacements of arguments by tensors of
    random rank, sizes and dtype. Never a crash; a RuntimeError or a result; a result whenever
    nothing was replaced and every size is positive."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def fuzz(data: Any) -> None:
        op = data.draw(st.sampled_from(OPS))
        family = op.split("_")[0]
        T, B, H = (data.draw(st.integers(0, 4)) for _ in range(3))
        proj = family == "lstm" and H > 1 and data.draw(st.booleans())
        cfg = Config(
            family,
            T=T,
            B=B,
            H=H,
            P=H - 1 if proj else H,
            coupled=data.draw(st.booleans()),
            peephole=data.draw(st.booleans()),
            layer_norm=data.draw(st.booleans()),
            rec_mask=data.draw(st.sampled_from(["none", "shared", "gate"]))
            if family != "rnn"
            else data.draw(st.sampled_from(["none", "shared"])),
            mask=data.draw(st.booleans()),
            reverse=data.draw(st.booleans()),
            reset_after=data.draw(st.booleans()),
            relu=data.draw(st.booleans()),
            dtype=data.draw(st.sampled_from([torch.float32, torch.float64])),
        )
        values = values_for(op, cfg)
        replaced = []
        for name, kind in schema(op):
            if kind in ("bool", "List[Tensor]"):
                continue
            if data.draw(st.integers(0, 5)) == 0:  # most arguments stay as they are
                shape = data.draw(st.lists(st.integers(0, 5), max_size=4))
                dtype = data.draw(st.sampled_from([cfg.dtype, torch.float32, torch.bool]))
                values[name] = (torch.rand(shape) > 0.5).to(dtype)
                replaced.append(f"{name}{tuple(shape)}:{dtype}")
        if "saved" in values and data.draw(st.booleans()):
            saved = list(values["saved"])
            k = data.draw(st.integers(0, len(saved) - 1))
            shape = data.draw(st.lists(st.integers(0, 5), max_size=4))
            saved[k] = torch.rand(shape, dtype=cfg.dtype)
            values["saved"] = saved
            replaced.append(f"saved[{k}]{tuple(shape)}")
        print(json.dumps({"op": op, "config": repr(cfg), "replaced": replaced}), flush=True)
        try:
            call(op, values)
        except RuntimeError as exc:
            assert replaced or min(T, B, H) == 0, f"{op} refused a consistent call: {exc}"
            assert f"lstmkit_compiled.{op}:" in str(exc) or min(T, B, H) == 0, str(exc)

    fuzz()
    print(json.dumps({"done": True}), flush=True)


# -- the parent: pytest -------------------------------------------------------------------------


def run_child(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT_S,
    )


def parse(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def matrix() -> dict[str, list[dict[str, Any]]]:
    """Every case's outcome by op; a crashed case is reported as such and the child resumes
    after it (at most 50 crashes, 3 minutes)."""
    results: dict[str, list[dict[str, Any]]] = {op: [] for op in OPS}
    start, deadline = 0, time.monotonic() + 180
    for _ in range(50):
        proc = run_child("matrix", str(start))
        lines = parse(proc.stdout)
        for line in lines:
            if "index" in line:
                results[line["op"]].append(line)
        if lines and lines[-1].get("done"):
            return results
        begun = [line for line in lines if "start" in line]
        if not begun:
            pytest.fail(f"the matrix child failed before any case: {proc.stderr[-2000:]}")
        last = begun[-1]
        results[last["op"]].append(
            {
                **last,
                "status": f"crash (exit {proc.returncode})",
                "expect": "?",
                "message": proc.stderr[-300:],
                "pass": False,
            }
        )
        start = last["start"] + 1
        if time.monotonic() > deadline:
            break
    results["lstm_forward"].append({"case": "(the matrix did not finish)", "pass": False})
    return results


@pytest.fixture(scope="module", autouse=True)
def _extension_built() -> None:
    from lstmkit.engines import compiled

    if compiled.load_extension() is None:  # builds it once, so the children only load it
        pytest.skip(f"the compiled engine cannot be built here: {compiled.unavailable_reason()}")


def report(bad: list[dict[str, Any]]) -> str:
    rows = [
        f"  {r['case']}: expected {r.get('expect')}, got {r.get('status')}: "
        f"{r.get('message', '')[:240]}"
        for r in bad[:25]
    ]
    return f"{len(bad)} case(s) failed:\n" + "\n".join(rows)


@pytest.mark.parametrize("op", OPS)
def test_every_argument_is_checked(op: str, matrix: dict[str, list[dict[str, Any]]]) -> None:
    """Every bad argument is a RuntimeError naming it; strided and absent ones still work."""
    rows = matrix[op]
    bad = [r for r in rows if not r["pass"]]
    assert not bad, report(bad)
    # The matrix is generated from the schema: every tensor argument got its perturbations.
    tensors = [n for n, kind in schema(op) if "Tensor" in kind and kind != "List[Tensor]"]
    for name in tensors:
        refused = [r for r in rows if r["case"].split()[1] == name and r.get("expect") != "ok"]
        assert len(refused) >= 5, f"{op}: only {len(refused)} cases for {name!r}"
    assert sum(r.get("expect", "").startswith("error:") for r in rows) >= 10 * len(tensors)


@pytest.mark.parametrize("op", OPS)
def test_valid_calls_equal_the_twin(op: str, matrix: dict[str, list[dict[str, Any]]]) -> None:
    """The unperturbed calls give the differentiable twin's numbers (float64, 1e-10)."""
    valid = [r for r in matrix[op] if r["case"].endswith(" valid")]
    assert len(valid) == 2 and all(r["status"] == "ok" and r["pass"] for r in valid), valid


def test_issue_28_calls_are_refused(matrix: dict[str, list[dict[str, Any]]]) -> None:
    rows = [r for r in matrix["lstm_forward"] if r["case"].startswith("issue-28")]
    assert len(rows) == 2 and all(r["pass"] for r in rows), report(rows)


def test_fuzz_random_shapes_never_crash() -> None:
    proc = run_child("fuzz", str(FUZZ_EXAMPLES))
    lines = parse(proc.stdout)
    finished = bool(lines) and lines[-1].get("done")
    assert proc.returncode == 0 and finished, (
        f"fuzz child exit {proc.returncode} after {len(lines)} examples; last: "
        f"{lines[-1] if lines else None}\n{proc.stderr[-3000:]}"
    )


def test_build_cache_keys_on_every_source(tmp_path: Any, monkeypatch: Any) -> None:
    """A changed header gets a new build folder (so main's users rebuild), as a changed .cpp."""
    import re
    import shutil

    from lstmkit.engines import compiled

    names = {p.name for p in compiled.SOURCES}
    included = set(re.findall(r'#include "([^"]+)"', compiled.SOURCE.read_text()))
    assert {"compiled.cpp", "checks.h"} <= names and included <= names, (names, included)
    copies = []
    for p in compiled.SOURCES:
        copies.append(tmp_path / p.name)
        shutil.copy(p, copies[-1])
    monkeypatch.setattr(compiled, "SOURCES", copies)
    before = compiled.build_directory()
    header = tmp_path / "checks.h"
    header.write_text(header.read_text() + "\n// changed\n")
    assert compiled.build_directory() != before


if __name__ == "__main__":
    torch.set_num_threads(2)
    mode = sys.argv[1]
    runners: dict[str, Callable[[int], None]] = {"matrix": child_matrix, "fuzz": child_fuzz}
    runners[mode](int(sys.argv[2]))
