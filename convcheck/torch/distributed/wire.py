"""Messages on the wire, and the transport of one process group.

A message is a vector ``(d,)`` (or nothing, ``None``). It travels the shorter of two ways:
densely, or as its nonzeros — one tensor of the value dtype holding the indices then the values,
``[i_1 … i_n | v_1 … v_n]`` (indices are int32 for float32 values and int64 for float64,
reinterpreted bit for bit with ``Tensor.view``, so one send carries both) — whenever
``2·nnz < d`` (:func:`encode`; the flag :data:`FLAG_SPARSE` says which). Both are exact, so the
receiver decodes the very vector that was sent. A point-to-point message is preceded by a
two-word int64 header ``[payload length, flags]``; a receiver that does not know the sender
(the asynchronous server) receives the header from any rank first. All-gathers exchange the
headers first; when every rank's message is sparse enough the payloads are padded (the index
part with the sentinel ``d``, the value part with 0) so that the ``N`` rows decode with one
scatter, else every rank sends its vector densely (:func:`gather_payload`,
:func:`gathered_rows`).

What is *priced* is not the payload but the message: the bit ledger prices the decoded vector
with the algorithm's codec (:func:`convcheck.engine.rounds.price`), exactly as the
single-process simulation does. The :class:`Channel` also counts the logical payload bytes each
rank asked the backend to deliver (``bytes_sent``, ``bytes_received``; a broadcast or an
all-gather counts once per receiving peer), which is what the wire carries with this encoding:
``8·nnz`` bytes per sparse float32 message against the ledger's ``min(nnz·⌈log₂ d⌉, d) + 32·nnz``
bits. Statistics exchanged at the end of an epoch are not counted.
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

#: Header flags: a worker's loss or the server's model is not finite; the payload is packed
#: nonzeros; there is no vector (``None``); a broadcast in front of a reply, and the end of
#: the run (asynchronous server).
FLAG_DIVERGED, FLAG_SPARSE, FLAG_NONE, FLAG_BROADCAST, FLAG_FINAL = 1, 2, 4, 8, 16


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


def encode(x: Tensor | None) -> tuple[Tensor, int]:
    """``(payload, flags)`` of a message: its packed nonzeros (:data:`FLAG_SPARSE`) when
    ``2·nnz < d``, else the vector itself; ``None`` is an empty payload with :data:`FLAG_NONE`."""
    if x is None:
        return torch.empty(0), FLAG_NONE
    flat = x.reshape(-1)
    if 2 * int(torch.count_nonzero(flat)) < flat.numel():
        return pack(flat), FLAG_SPARSE
    return flat.contiguous(), 0


def decode(payload: Tensor, flags: int, d: int) -> Tensor | None:
    """The message ``(d,)`` of an :func:`encode` payload (``None`` for :data:`FLAG_NONE`)."""
    if flags & FLAG_NONE:
        return None
    return unpack(payload, d) if flags & FLAG_SPARSE else payload


def gather_payload(x: Tensor, lengths: Sequence[int]) -> Tensor:
    """This rank's part of an all-gather of messages whose packed lengths (``2·nnz``, from the
    headers) are ``lengths``: its nonzeros padded to the longest when every rank's are shorter
    than ``d``, else the vector densely."""
    d = x.numel()
    longest = max(lengths)
    if longest < d:
        return pad_payload(pack(x), longest // 2, d)
    return x.reshape(-1).contiguous()


def gathered_rows(payloads: Tensor, lengths: Sequence[int], d: int) -> Tensor:
    """The ``(N, d)`` messages of the all-gathered ``payloads`` of :func:`gather_payload`."""
    return unpack_rows(payloads, d) if max(lengths) < d else payloads


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

    def send(self, payload: Tensor, dst: int, tag: int, flags: int = 0) -> None:
        """Send a header ``[len, flags]`` (``tag``), then the payload if not empty
        (``tag + 1``) to ``dst``.

        gloo's ``send`` waits for the matching receive, so the receiver must take them in
        this order (:meth:`recv_header`, then :meth:`recv_payload`).
        """
        parts = [(self._header(payload.numel(), flags), tag)]
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

    def recv_payload(self, length: int, src: int, tag: int, dtype: torch.dtype) -> Tensor:
        """The payload (``length`` entries) following a header with ``tag`` from ``src``."""
        payload = torch.empty(length, dtype=dtype, device=self.group.device)
        if length:
            with self.guard(f"receive from rank {src}"):
                self._p2p_recv(payload, src, tag + 1)
            self._count(payload, 1, False)
        return payload

    def send_message(self, x: Tensor | None, dst: int, tag: int, flags: int = 0) -> None:
        """Send the message ``x`` (:func:`encode`: dense or its nonzeros) with ``flags``."""
        payload, how = encode(x)
        self.send(payload, dst, tag, flags | how)

    def recv_message(
        self, src: int | None, tag: int, d: int, dtype: torch.dtype
    ) -> tuple[int, Tensor | None, int]:
        """``(sender, message (d,) or None, flags)`` of the next :meth:`send_message` with
        ``tag`` from ``src`` (``None``: from any rank)."""
        sender, length, flags = self.recv_header(src, tag)
        payload = self.recv_payload(length, sender, tag, dtype)
        return sender, decode(payload, flags, d), flags

    # ------------------------------------------------------------ collectives
    def broadcast(self, x: Tensor, src: int = 0, *, count: bool = True) -> Tensor:
        """Broadcast ``x`` (shape and dtype known to all ranks) in place from ``src``;
        ``count=False`` for statistics (not the algorithm's traffic)."""
        with self.guard(f"broadcast from rank {src}"):
            dist.broadcast(x, src)
        if count:
            self._count(x, self.size - 1 if self.rank == src else 1, self.rank == src)
        return x

    def broadcast_message(
        self, x: Tensor | None, d: int, dtype: torch.dtype, flags: int = 0, src: int = 0
    ) -> tuple[Tensor | None, int]:
        """Broadcast the message ``x`` (given on ``src`` only; :func:`encode`) and a flag word;
        ``(message (d,) or None, flags)`` on every rank."""
        header = self._header()
        payload = None
        if self.rank == src:
            payload, how = encode(x)
            header = self._header(payload.numel(), flags | how)
        self.broadcast(header, src)
        length, flags = (int(v) for v in header.tolist())
        if payload is None:
            payload = torch.empty(length, dtype=dtype, device=self.group.device)
        if length:
            self.broadcast(payload, src)
        return decode(payload, flags, d), flags

    def all_gather_message(self, x: Tensor, flags: int = 0) -> tuple[Tensor, list[int]]:
        """Every rank's message ``x`` ``(d,)``: ``(rows (N, d), flags per rank)``.

        Headers first (the packed lengths ``2·nnz`` and the flags), then the payloads
        (:func:`gather_payload`).
        """
        lengths_flags = self.all_gather(self._header(2 * int(torch.count_nonzero(x)), flags))
        lengths = [int(h[0]) for h in lengths_flags.tolist()]
        gathered = self.all_gather(gather_payload(x, lengths))
        return gathered_rows(gathered, lengths, x.numel()), [int(h[1]) for h in
                                                             lengths_flags.tolist()]

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
