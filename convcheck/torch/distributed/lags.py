"""LAGS-SGD with real overlap of communication and backprop, and its measured cost model.

Every rank is a worker (``M = N``). A ``register_post_accumulate_grad_hook`` on each parameter
(a *layer*, as in :class:`~convcheck.torch.layout.Layout`) fires as soon as that parameter's
gradient is ready during ``backward()``; the hook runs the layer's worker half — that of a
one-layer :class:`~convcheck.algorithms.lags.LAGS`, i.e. error feedback's worker half with the
layer-wise top-k on the layer's slice of the error memory: ``a_l = ε_l + α g_l``,
``s_l = TopK(a_l, k_l)``, ``ε_l ← a_l − s_l``, and ``δ_l`` — and starts an asynchronous
all-gather of the ``k_l`` (index, value) pairs (``async_op=True``), so the message travels while
the lower layers are still being differentiated. After ``backward()`` returns, the run waits for
every layer's handle, and every layer runs the (replicated) server half on the mean of the ``M``
messages (``rows.mean(dim=0)``, as in one process) and the worker's ``receive`` before the next
forward. Because ``k_l`` is fixed, every payload has ``2·k_l`` entries and no length exchange is
needed (a layer with fewer than ``k_l`` nonzeros sends some zeros, which the ledger, pricing the
nonzeros, does not count).

``overlap`` chooses when the messages start: ``"on"`` (from the hooks), ``"off"`` (all after
``backward()`` returns: the non-overlapped baseline, same arithmetic, so the same iterates) or
``"alternate"`` (on and off on alternate steps, so one run measures both under the same
conditions). Every step records its wall time and a timeline: backward start and end, and per
layer the time its gradient was ready and its all-gather was launched, and whether it had
completed when ``backward()`` returned.

The adaptive counts come from :func:`convcheck.algorithms.lags.select_layer_counts` fed with a
**measured** model (:meth:`OverlappedLAGS.calibrate`): per-layer backward times ``t_l`` from the
hooks' timestamps on a few calibration batches (the training stream is restored afterwards),
and ``α_c + β_c·bits`` fitted (non-negative least squares) to timed all-gathers of
``k ∈ {1, d_l/100, d_l/10, d_l}`` pairs of every layer's size, where ``bits`` is the ledger's
price ``sparse_bits(k, d_l)`` of such a message. The timings are averaged over the ranks (an
all-reduce), so every rank chooses the same counts; rank 0's counts are broadcast to make sure.

Bits: uplink of rank ``m`` = ``Σ_l sparse_bits(nnz_l, d_l)`` (the simulation's LAGS pricing);
downlink = the ``M − 1`` messages it receives per layer (the simulation prices a broadcast of
each layer's aggregate instead): :func:`~convcheck.torch.distributed.allgather.gathered_bits`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from convcheck import encoding
from convcheck.algorithms.lags import LAGS, LAGSWorkers, pipeline_times, select_layer_counts
from convcheck.errors import InputError, check_choice, check_int, check_real
from convcheck.torch.distributed.allgather import gathered_bits
from convcheck.torch.distributed.base import DistributedRun
from convcheck.torch.distributed.hooks import load_flat, minibatch_loss, replica
from convcheck.torch.distributed.wire import Channel, Pending, pack_at, unpack_rows
from convcheck.torch.layout import Layout
from convcheck.torch.ledger import BitLedger
from convcheck.torch.simulation import Simulation

Tensor = torch.Tensor

OVERLAP = ("on", "off", "alternate")


def fit_cost(bits: np.ndarray, seconds: np.ndarray) -> tuple[float, float]:
    """``(α_c, β_c) ≥ 0`` minimizing ``Σ (α_c + β_c·bits_i − s_i)²`` (non-negative least
    squares)."""
    from scipy.optimize import nnls

    design = np.stack([np.ones_like(bits, dtype=np.float64), np.asarray(bits, np.float64)], 1)
    (alpha_c, beta_c), _ = nnls(design, np.asarray(seconds, dtype=np.float64))
    return float(alpha_c), float(beta_c)


def backward_times(ready: np.ndarray, start: float) -> np.ndarray:
    """Per-layer backward times ``t_l`` (forward order) from the times ``ready_l`` at which
    the layers' gradients were ready and the backward start.

    ``t_{L−1} = ready_{L−1} − start`` and ``t_l = ready_l − ready_{l+1}`` (clamped at 0 when
    hooks fire out of layer order), so that ``Σ_{j≥l} t_j`` is the time layer ``l``'s
    gradient became ready and ``Σ_{j<l} t_j`` the backward time left after it, the quantities
    :func:`select_layer_counts` and :func:`pipeline_times` use. Which tensor of a module
    carries the module's cost is an artefact of the hooks' order (a ``Linear``'s bias is
    ready just before its weight, so the matrix product shows up on the bias); the sums are
    what is measured.
    """
    later = np.append(ready[1:], start)
    return np.maximum(ready - later, 0.0)


class OverlappedLAGS(DistributedRun):
    """LAGS-SGD on ``N`` ranks with per-layer asynchronous all-gathers from gradient hooks.

    Parameters
    ----------
    algorithm : LAGS
        With ``layers`` equal to the model's parameter sizes. After :meth:`set_counts` the run's
        algorithm is the LAGS with those counts (``k``).
    template : torch.nn.Module
        The network (copied).
    overlap : {"on", "off", "alternate"}
    weight_decay : float
        Added to the loss as ``(λ/2)‖θ‖²``.
    timeline_steps : int
        How many step timelines to keep (the last ones).
    """

    mode = "lags"

    def __init__(
        self,
        label: str,
        algorithm: LAGS,
        channel: Channel,
        oracle: Simulation,
        theta0: Tensor,
        *,
        template: torch.nn.Module,
        overlap: str = "on",
        weight_decay: float = 0.0,
        timeline_steps: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__(label, algorithm, channel, oracle, theta0, seed=seed)
        if type(algorithm) is not LAGS:  # set_counts rebuilds it with the measured counts
            raise InputError(
                "algorithm.distributed.mode", f"'lags' for {algorithm.name}", "'lags' for lags"
            )
        self.overlap = check_choice("algorithm.distributed.overlap", overlap, OVERLAP)
        self.weight_decay = weight_decay
        self.layout = Layout.of(template)
        if algorithm.layers is None or tuple(algorithm.layers) != self.layout.sizes:
            raise InputError("layers", algorithm.layers, f"the model's {self.layout.sizes}")
        algorithm.prepare(self.dim)
        self.module = replica(template, theta0)
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        self.parts = self.layout.slices()
        workers, _ = algorithm.start_workers(theta0, 1, None)
        self.errors, self.delta = workers.errors, workers.delta
        self.set_counts(algorithm.compressor.k)
        self.ledger = BitLedger(self.workers)
        self.ledger.record_empty()
        self.timeline_steps = check_int("timeline_steps", timeline_steps, 0)
        self.timelines: list[dict[str, Any]] = []
        self.step_seconds: dict[str, list[float]] = {"on": [], "off": []}
        self.calibration: dict[str, Any] | None = None
        self._timing_only = False
        self._launch_now = False
        self._ready = np.zeros(len(self.params))
        self._launched = np.zeros(len(self.params))
        self._order: list[int] = []
        self._pending: dict[int, Pending] = {}
        for index, param in enumerate(self.params):
            param.register_post_accumulate_grad_hook(
                lambda p, index=index: self._gradient_ready(index, p)
            )

    def set_counts(self, counts: Any) -> None:
        """Per-layer counts ``k_l``: the run's algorithm becomes the LAGS with these counts, and
        one one-layer LAGS per layer does the arithmetic of its layer."""
        sizes = self.layout.sizes
        counts = tuple(int(k) for k in counts)
        self.algorithm = LAGS(alpha=self.algorithm.alpha, layers=sizes, k=counts)
        self.algorithm.prepare(self.dim)
        self.counts = counts
        self.layers = []
        for size, k in zip(sizes, counts, strict=True):
            layer = LAGS(alpha=self.algorithm.alpha, layers=(size,), k=(k,))
            layer.prepare(size)
            self.layers.append(layer)

    def model(self) -> Tensor:
        return self.layout.flatten_module(self.module)

    def tensors(self) -> dict[str, Any]:
        return {"theta": self.model(), "errors": self.errors, "delta": self.delta,
                "counts": torch.tensor(self.counts, dtype=torch.int64)}

    def load_tensors(self, values: dict[str, Any]) -> None:
        load_flat(self.module, values["theta"])
        self.errors, self.delta = values["errors"], values["delta"]

    def _layer_workers(self, index: int) -> LAGSWorkers:
        """The worker state of layer ``index`` alone (its columns of the memories)."""
        return LAGSWorkers(errors=self.errors[:, self.parts[index]],
                           delta=self.delta[:, index : index + 1])

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """The checkpoint's counts replace freshly measured ones (then the usual checks)."""
        self.set_counts(saved["tensors"]["counts"].tolist())
        super().load_state_dict(saved)

    # ------------------------------------------------------------ hooks
    def _gradient_ready(self, index: int, param: Tensor) -> None:
        self._ready[index] = time.perf_counter()
        self._order.append(index)
        if self._launch_now and not self._timing_only:
            self._launch(index, param)

    def _launch(self, index: int, param: Tensor) -> None:
        layer, mine = self.layers[index], self._layer_workers(index)
        sent = layer.worker(mine, param.grad.reshape(1, -1), None, self.generator)
        self.errors[:, self.parts[index]] = mine.errors
        self.delta[:, index] = mine.delta[:, 0]
        chosen = torch.topk(sent[0].abs(), self.counts[index], sorted=False).indices
        name = self.layout.names[index]
        self._pending[index] = self.channel.all_gather_async(
            pack_at(sent[0], chosen), f"layer {name}"
        )
        self._launched[index] = time.perf_counter()

    # ------------------------------------------------------------ steps
    def _backward(self, x: Tensor, y: Tensor) -> tuple[Tensor, float, float]:
        for param in self.params:
            param.grad = None
        self._order = []
        objective, loss = minibatch_loss(self.module, x, y, self.weight_decay)
        started = time.perf_counter()
        with self.channel.guard("backward with layer all-gathers"):
            objective.backward()
        return loss, started, time.perf_counter()

    def step(self) -> None:
        overlap = self.overlap == "on" or (self.overlap == "alternate" and self.steps % 2 == 0)
        x, y = self.oracle.worker_batch(self.worker)
        began = time.perf_counter()
        self._launch_now = overlap
        self._pending = {}
        loss, backward_start, backward_end = self._backward(x, y)
        self.note_loss(loss)
        done_by_backward_end = [
            index for index, pending in self._pending.items() if pending.work.is_completed()
        ]
        if not overlap:
            for index in self._order:
                self._launch(index, self.params[index])
        rows = {}
        for index in self._order:
            rows[index] = unpack_rows(
                self.channel.wait(self._pending[index]), self.layout.sizes[index]
            )
        with torch.no_grad():
            for index in self._order:
                self._apply(index, rows[index])
        finished = time.perf_counter()
        self.step_seconds["on" if overlap else "off"].append(finished - began)
        up = np.zeros(self.workers, dtype=np.int64)
        down = np.zeros(self.workers, dtype=np.int64)
        for index in self._order:
            layer_up, layer_down = gathered_bits(rows[index], self.layers[index].up_codec)
            up += layer_up
            down += layer_down
        self.ledger.record_bits(up, down)
        self._timeline(overlap, began, backward_start, backward_end, finished,
                       done_by_backward_end)
        if not all(bool(torch.isfinite(p).all()) for p in self.params):
            self.status = "diverged"

    def _apply(self, index: int, rows: Tensor) -> None:
        """Layer ``index``'s server half (replicated) on the mean of its ``M`` messages, and the
        worker's ``receive`` of the downlink."""
        layer, param = self.layers[index], self.params[index]
        flat = param.detach().reshape(-1)
        down = layer.server(layer.start_server(flat, self.workers, None), rows.mean(dim=0))
        param.copy_(layer.receive(self._layer_workers(index), flat, down).view_as(param))

    def _timeline(self, overlap: bool, began: float, backward_start: float,
                  backward_end: float, finished: float, done: list[int]) -> None:
        if not self.timeline_steps:
            return
        self.timelines.append({
            "step": self.steps + 1,
            "overlap": overlap,
            "backward_start": backward_start - began,
            "backward_end": backward_end - began,
            "finished": finished - began,
            "layers": [
                {"name": self.layout.names[i], "ready": float(self._ready[i] - began),
                 "launched": float(self._launched[i] - began), "k": self.counts[i],
                 "completed_by_backward_end": i in done}
                for i in self._order
            ],
        })
        del self.timelines[: -self.timeline_steps]

    # ------------------------------------------------------------ measured model
    def calibrate(self, floor_ratio: float, repeats: int = 5) -> dict[str, Any]:
        """Measure the backward times and the communication cost, choose the counts with
        :func:`select_layer_counts`, and set them (the training stream is not consumed)."""
        floor_ratio = check_real("floor_ratio", floor_ratio, 0.0, 1.0, low_open=True)
        repeats = check_int("calibration_repeats", repeats, 1)
        self.channel.context = f"{self.label}, calibration"
        saved = self.oracle.state_dict()
        self._timing_only = True
        times = []
        for _ in range(repeats + 1):  # the first backward warms up
            _, start, _ = self._backward(*self.oracle.worker_batch(self.worker))
            times.append(backward_times(self._ready.copy(), start))
        self._timing_only = False
        self.oracle.load_state_dict(saved)
        for param in self.params:
            param.grad = None
        local = np.median(np.stack(times[1:]), axis=0)
        mean_times = np.asarray(self.channel.all_reduce_sum(local.tolist())) / self.channel.size
        bits, seconds = self._time_messages(repeats)
        alpha_c, beta_c = fit_cost(bits, seconds)
        counts = select_layer_counts(
            self.layout.sizes, mean_times.tolist(), alpha_c, beta_c, floor_ratio=floor_ratio
        )
        agreed = self.channel.broadcast(
            torch.tensor(counts, dtype=torch.int64, device=self.channel.group.device)
        )
        self.set_counts(agreed.tolist())
        model = pipeline_times(self.layout.sizes, self.counts, mean_times.tolist(),
                               alpha_c, beta_c)
        self.calibration = {
            "backward_times_s": mean_times.tolist(),
            "alpha_c_s": alpha_c,
            "beta_c_s_per_bit": beta_c,
            "samples": {"bits": bits.tolist(), "seconds": seconds.tolist()},
            "floor_ratio": floor_ratio,
            "counts": list(self.counts),
            "modelled_times_s": model,
        }
        return self.calibration

    def _time_messages(self, repeats: int) -> tuple[np.ndarray, np.ndarray]:
        """Median time of all-gathers of ``k`` pairs for a few ``k`` per layer size (mean over
        ranks), and the ledger price of such a message."""
        bits, seconds = [], []
        device, dtype = self.channel.group.device, self.dtype
        for d in sorted(set(self.layout.sizes)):
            for k in sorted({1, max(1, d // 100), max(1, d // 10), d}):
                payload = torch.zeros(2 * k, dtype=dtype, device=device)
                samples = []
                for _ in range(repeats + 1):
                    self.channel.barrier("timing a message")
                    began = time.perf_counter()
                    self.channel.wait(self.channel.all_gather_async(payload, "a timed message"))
                    samples.append(time.perf_counter() - began)
                bits.append(encoding.sparse_bits(k, d, 32))
                seconds.append(float(np.median(samples[1:])))
        mean = np.asarray(self.channel.all_reduce_sum(seconds)) / self.channel.size
        return np.asarray(bits, dtype=np.float64), mean

    def report(self) -> dict[str, Any]:
        medians = {
            mode: (float(np.median(values)) if values else None)
            for mode, values in self.step_seconds.items()
        }
        out: dict[str, Any] = {
            "overlap": self.overlap,
            "step_seconds_median": medians,
            "steps_timed": {mode: len(values) for mode, values in self.step_seconds.items()},
            "counts": list(self.counts),
            "delta_max_last_step": float(self.delta.max()),
            "timelines": self.timelines,
        }
        if medians["on"] and medians["off"]:
            out["overlap_speedup"] = medians["off"] / medians["on"]
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out

    def statistics(self) -> dict[str, tuple[float, float]]:
        out = super().statistics()
        out["error_norm_sq"] = (float(self.errors.double().square().sum()), 1.0)
        return out
