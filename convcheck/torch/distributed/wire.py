"""Sparse messages on the wire, and the transport of one process group.

A sparse message travels as its nonzeros: one tensor of the value dtype holding the indices
then the values, ``[i_1 … i_n | v_1 … v_n]`` (indices are int32 for float32 values and int64
for float64, reinterpreted bit for bit with ``Tensor.view``, so one send carries both). A
point-to-point message is preceded by a two-word int64 header ``[payload length, flags]``; a
receiver that does not know the sender (the asynchronous server) receives the header from any
rank first. Collectives with messages of different sizes exchange the headers first and pad the
payloads: the index part with the sentinel ``d`` and the value part with 0, so that every
rank's payload has the same split and the ``N`` rows are decoded by one scatter.

What is *priced* is not the payload but the message: the bit ledger prices the decoded vector
with the algorithm's codec (:mod:`convcheck.torch.ledger`), exactly as the single-process
simulation does. The :class:`Channel` also counts the logical payload bytes each rank asked the
backend to deliver (``bytes_sent``, ``bytes_received``; a broadcast or an all-gather counts
once per receiving peer), which is what the wire carries with this encoding: ``8·nnz`` bytes
per float32 message against the ledger's ``min(nnz·⌈log₂ d⌉, d) + 32·nnz`` bits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from convcheck.errors import InputError
from convcheck.torch.distributed.group import DistributedFailure, Group

Tensor = torch.Tensor

#: Index dtype that travels with each value dtype (same width, reinterpreted).
INDEX_DTYPES = {torch.float32: torch.int32, torch.float64: torch.int64}

#: Header flags of point-to-point messages.
FLAG_DIVERGED, FLAG_RESYNC, FLAG_FINAL = 1, 2, 4


def index_dtype(dtype: torch.dtype) -> torch.dtype:
    """The index dtype packed with values of ``dtype``."""
    if dtype not in INDEX_DTYPES:
        raise InputError("dtype", str(dtype), "float32 or float64 on the wire")
    return INDEX_DTYPES[dtype]


def pack_at(x: Tensor, indices: Tensor) -> Tensor:
    """The entries of flat ``x`` at ``indices`` as ``[indices | values]`` (``2n`` entries)."""
    flat = x.reshape(-1)
    as_values = indices.to(index_dtype(flat.dtype)).view(flat.dtype)
    return torch.cat([as_values, flat[indices]])


def pack(c: Tensor) -> Tensor:
    """The nonzeros of flat ``c`` (ascending indices) as ``[indices | values]``."""
    return pack_at(c, c.reshape(-1).nonzero().view(-1))


def split_payload(payload: Tensor) -> tuple[Tensor, Tensor]:
    """``(indices int64, values)`` of a packed payload (or of each row of ``(N, 2n)``)."""
    n = payload.shape[-1] // 2
    indices = payload[..., :n].contiguous().view(index_dtype(payload.dtype)).long()
    return indices, payload[..., n:]


def unpack(payload: Tensor, d: int) -> Tensor:
    """The dense vector ``(d,)`` of a packed payload."""
    return unpack_rows(payload[None], d)[0]


def unpack_rows(payloads: Tensor, d: int) -> Tensor:
    """Dense rows ``(N, d)`` of packed payloads ``(N, 2n)`` (index ``d`` marks padding)."""
    indices, values = split_payload(payloads)
    rows = values.new_zeros((payloads.shape[0], d + 1))
    return rows.scatter_(1, indices, values)[:, :d]


def pad_payload(payload: Tensor, n: int, d: int) -> Tensor:
    """A payload of ``n' ≤ n`` entries padded to ``n``: indices with ``d``, values with 0."""
    indices, values = payload.chunk(2) if payload.numel() else (payload, payload)
    have = indices.shape[0]
    sentinel = torch.full((n - have,), d, dtype=index_dtype(payload.dtype), device=payload.device)
    zeros = payload.new_zeros(n - have)
    return torch.cat([indices, sentinel.view(payload.dtype), values, zeros])


@dataclass
class Pending:
    """An asynchronous all-gather of equal-size payloads (:meth:`Channel.all_gather_async`)."""

    work: dist.Work
    outputs: list[Tensor]
    what: str

    def payloads(self) -> Tensor:
        """The ``(N, n)`` payloads, once the work is complete (e.g. in its future's callback,
        where waiting on the work again would deadlock)."""
        return torch.stack(self.outputs)


class Channel:
    """Messages between the ranks of a :class:`Group`, with failures reported clearly.

    Attributes
    ----------
    group : Group
    context : str
        What the run is doing (``"bidir-topk, step 12"``); part of every failure message.
    bytes_sent, bytes_received : int
        Logical payload bytes (headers included) this rank sent and received.
    """

    def __init__(self, group: Group) -> None:
        self.group = group
        self.context = "start"
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def rank(self) -> int:
        return self.group.rank

    @property
    def size(self) -> int:
        return self.group.world_size

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn a backend error inside the block into a :class:`DistributedFailure`."""
        try:
            yield
        except DistributedFailure:
            raise
        except RuntimeError as exc:  # gloo and NCCL raise RuntimeError and its subclasses
            raise DistributedFailure(
                f"rank {self.rank} of {self.size}: {what} failed during {self.context}: another "
                f"rank died, hung for more than the {self.group.timeout_s:g} s timeout, or the "
                f"network failed ({self._first_line(exc)})"
            ) from exc

    @staticmethod
    def _first_line(exc: BaseException) -> str:
        text = str(exc).strip().splitlines()
        return text[0] if text else type(exc).__name__

    def _header(self, length: int = 0, flags: int = 0) -> Tensor:
        return torch.tensor([length, flags], dtype=torch.int64, device=self.group.device)

    def _count(self, tensor: Tensor, peers: int, sent: bool) -> None:
        nbytes = tensor.numel() * tensor.element_size() * peers
        if sent:
            self.bytes_sent += nbytes
        else:
            self.bytes_received += nbytes

    # ------------------------------------------------------------ point to point
    # Point-to-point messages go through ``group.p2p``: the default group with gloo, a gloo
    # side group (CPU tensors) with NCCL, which has no any-source receive and runs its
    # point-to-point operations on one stream, where a receive posted for a silent peer would
    # block every later one.
    def _p2p_send(self, tensor: Tensor, dst: int, tag: int) -> None:
        staged = tensor.contiguous() if self.group.p2p is None else tensor.cpu()
        dist.send(staged, dst, group=self.group.p2p, tag=tag)

    def _p2p_recv(self, tensor: Tensor, src: int | None, tag: int) -> int:
        staged = tensor if self.group.p2p is None else tensor.new_empty(tensor.shape,
                                                                        device="cpu")
        sender = dist.recv(staged, src, group=self.group.p2p, tag=tag)
        if staged is not tensor:
            tensor.copy_(staged)
        return int(sender)

    def send(self, payload: Tensor, dst: int, tag: int, flags: int = 0,
             extra: Tensor | None = None) -> None:
        """Send a header ``[len, flags]`` (``tag``), then ``extra`` if given (``tag + 2``),
        then the payload if not empty (``tag + 1``) to ``dst``.

        gloo's ``send`` waits for the matching receive, so the receiver must take them in
        this order (:meth:`recv_header`, :meth:`recv_payload` with ``extra=True``, then
        :meth:`recv_payload`).
        """
        parts = [(self._header(payload.numel(), flags), tag)]
        if extra is not None:
            parts.append((extra, tag + 2))
        if payload.numel():
            parts.append((payload, tag + 1))
        with self.guard(f"send to rank {dst}"):
            for tensor, part_tag in parts:
                self._p2p_send(tensor, dst, part_tag)
        for tensor, _ in parts:
            self._count(tensor, 1, True)

    def recv_header(self, src: int | None, tag: int) -> tuple[int, int, int]:
        """``(sender, length, flags)`` of the next header with ``tag`` from ``src`` or, with
        ``src=None``, from whichever rank sends first (arrival order)."""
        header = self._header()
        with self.guard("receive from any rank" if src is None else f"receive from rank {src}"):
            sender = self._p2p_recv(header, src, tag)
        self._count(header, 1, False)
        length, flags = header.tolist()
        return sender, int(length), int(flags)

    def recv_payload(
        self, length: int, src: int, tag: int, dtype: torch.dtype, extra: bool = False
    ) -> Tensor:
        """The payload (``length`` entries) following a header with ``tag`` from ``src``, or,
        with ``extra``, the extra tensor sent before it."""
        payload = torch.empty(length, dtype=dtype, device=self.group.device)
        if length:
            with self.guard(f"receive from rank {src}"):
                self._p2p_recv(payload, src, tag + (2 if extra else 1))
            self._count(payload, 1, False)
        return payload

    # ------------------------------------------------------------ collectives
    def broadcast(self, x: Tensor, src: int = 0) -> Tensor:
        """Broadcast ``x`` (shape and dtype known to all ranks) in place from ``src``."""
        with self.guard(f"broadcast from rank {src}"):
            dist.broadcast(x, src)
        self._count(x, self.size - 1 if self.rank == src else 1, self.rank == src)
        return x

    def broadcast_sparse(
        self, c: Tensor | None, d: int, dtype: torch.dtype, flags: int = 0, src: int = 0
    ) -> tuple[Tensor, int]:
        """Broadcast the nonzeros of ``c`` (given on ``src`` only) and a flag word;
        ``(dense (d,), flags)`` on every rank."""
        header = self._header()
        payload = None
        if self.rank == src:
            payload = pack(c)
            header = self._header(payload.numel(), flags)
        self.broadcast(header, src)
        length, flags = (int(v) for v in header.tolist())
        if payload is None:
            payload = torch.empty(length, dtype=dtype, device=self.group.device)
        if length:
            self.broadcast(payload, src)
        return unpack(payload, d), flags

    def all_gather_sparse(self, c: Tensor, flags: int = 0) -> tuple[Tensor, list[int]]:
        """Every rank's nonzeros of ``c`` ``(d,)``: ``(rows (N, d), flags per rank)``.

        Headers first (lengths differ), then payloads padded to the longest.
        """
        payload = pack(c)
        headers = self.all_gather(self._header(payload.numel(), flags))
        lengths = [int(h[0]) for h in headers.tolist()]
        gathered = self.all_gather(pad_payload(payload, max(lengths) // 2, c.numel()))
        return unpack_rows(gathered, c.numel()), [int(h[1]) for h in headers.tolist()]

    def all_gather_sparse_async(self, c: Tensor, what: str) -> Pending:
        """Start an all-gather of the nonzeros of ``c`` ``(d,)``: the lengths are exchanged
        first (blocking, 16 bytes), the padded payloads asynchronously; decode with
        :func:`unpack_rows`."""
        payload = pack(c)
        lengths = self.all_gather(self._header(payload.numel()))[:, 0].tolist()
        return self.all_gather_async(pad_payload(payload, max(lengths) // 2, c.numel()), what)

    def all_gather(self, x: Tensor) -> Tensor:
        """``(N, *x.shape)``: every rank's ``x`` (same shape everywhere)."""
        outputs = [torch.empty_like(x) for _ in range(self.size)]
        with self.guard("all-gather"):
            dist.all_gather(outputs, x.contiguous())
        self._count(x, self.size - 1, True)
        self._count(x, self.size - 1, False)
        return torch.stack(outputs)

    def all_gather_async(self, payload: Tensor, what: str) -> Pending:
        """Start an all-gather of equal-size payloads; :meth:`wait` returns ``(N, n)``."""
        outputs = [torch.empty_like(payload) for _ in range(self.size)]
        with self.guard(f"all-gather of {what}"):
            work = dist.all_gather(outputs, payload.contiguous(), async_op=True)
        self._count(payload, self.size - 1, True)
        self._count(payload, self.size - 1, False)
        return Pending(work, outputs, what)

    def wait(self, pending: Pending) -> Tensor:
        """Wait for an asynchronous all-gather; its ``(N, n)`` payloads."""
        with self.guard(f"all-gather of {pending.what}"):
            pending.work.wait()
        return pending.payloads()

    def all_reduce_sum(self, values: Sequence[float]) -> list[float]:
        """Sums over the ranks of a few float64 numbers (statistics at the end of an epoch)."""
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.group.device)
        with self.guard("all-reduce"):
            dist.all_reduce(tensor)
        return tensor.tolist()

    def all_reduce_max(self, values: Sequence[float]) -> list[float]:
        """Maxima over the ranks of a few float64 numbers."""
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.group.device)
        with self.guard("all-reduce"):
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor.tolist()

    def barrier(self, what: str) -> None:
        """Wait for every rank: a monitored barrier (on the gloo group) that names the ranks
        that did not arrive."""
        with self.guard(f"barrier ({what})"):
            dist.monitored_barrier(
                self.group.p2p, timeout=timedelta(seconds=self.group.timeout_s),
                wait_all_ranks=True,
            )
