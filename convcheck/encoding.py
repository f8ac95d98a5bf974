"""Bit-exact wire encodings of compressed vectors.

Every compressor's bit count is the length of a real message built here, so
``encode → bytes → decode`` round-trips and ``bits(c) == encode(c).nbits``.

Conventions
-----------
* The transport is framed: the receiver knows ``nbits`` (and ``d``), so no
  count header is sent.
* ``v = value_bits`` is 32 (IEEE float32 on the wire) or 64 (float64); values
  are written big-endian, most significant bit first.
* The index width is ``b = max(1, ⌈log₂ d⌉)``.
* A sparse message with ``nnz`` nonzeros is the cheaper of

  - an index list: ``nnz`` indices of ``b`` bits, then ``nnz`` values,
    ``nnz·(b + v)`` bits, used when ``nnz·b < d``;
  - a bitmap: ``d`` presence bits, then ``nnz`` values, ``d + nnz·v`` bits,
    used when ``nnz·b ≥ d``.

  so the index cost is ``min(nnz·b, d)`` (docs/algorithms.md §4). Zeros are never sent:
  the zero vector costs 0 bits.
* A dense message is ``d`` values, ``d·v`` bits.
* Bit strings are packed with :func:`numpy.packbits` (zero padded to whole
  bytes): ``len(payload) == ⌈nbits/8⌉``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from convcheck.errors import InputError

VALUE_BITS = (32, 64)

_WIRE_DTYPE = {32: np.dtype(">f4"), 64: np.dtype(">f8")}


@dataclass(frozen=True)
class Encoded:
    """One message on the wire.

    Attributes
    ----------
    payload : bytes
        The bit string, packed most significant bit first and zero padded;
        ``len(payload) == ⌈nbits/8⌉``.
    nbits : int
        Exact length of the message in bits (what the transport frames).
    d : int
        Dimension of the vector the message encodes.
    parts : tuple of int, optional
        For a message that concatenates several sub-messages (layer-wise
        top-k: one per layer), the bit length of each part, in order;
        ``sum(parts) == nbits``. The receiver knows them (each part is framed).
        ``None`` for a single message.
    """

    payload: bytes
    nbits: int
    d: int
    parts: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.nbits < 0 or len(self.payload) != -(-self.nbits // 8):
            raise InputError(
                "payload",
                f"{len(self.payload)} bytes for nbits={self.nbits}",
                "ceil(nbits/8) bytes",
            )
        if self.parts is not None and sum(self.parts) != self.nbits:
            raise InputError("parts", self.parts, f"bit lengths summing to nbits={self.nbits}")


def check_value_bits(value_bits: object) -> int:
    """Return ``value_bits`` if it is 32 or 64, else raise :class:`InputError`."""
    if isinstance(value_bits, bool) or value_bits not in VALUE_BITS:
        raise InputError("value_bits", value_bits, "32 (float32 on the wire) or 64 (float64)")
    return int(value_bits)


def index_bits(d: int) -> int:
    """Index width ``b = max(1, ⌈log₂ d⌉)`` for a vector of dimension ``d ≥ 1``."""
    return max(1, (int(d) - 1).bit_length())


def sparse_bits(nnz: int | np.ndarray, d: int, value_bits: int) -> int | np.ndarray:
    """Length of the sparse message with ``nnz`` nonzeros out of ``d``.

    ``nnz·(b + v)`` if ``nnz·b < d`` (index list), else ``d + nnz·v`` (bitmap).
    Vectorized: ``nnz`` may be an integer array; the result then is int64.
    """
    b = index_bits(d)
    if isinstance(nnz, (int, np.integer)):
        n = int(nnz)
        return n * (b + value_bits) if n * b < d else d + n * value_bits
    try:
        if d > _TABLE_LIMIT:
            raise IndexError
        out = _sparse_table(int(d), value_bits)[np.asarray(nnz)]
    except IndexError:  # large d, or counts outside 0..d, or not integers: the formula
        n = np.asarray(nnz, dtype=np.int64)
        out = np.where(n * b < d, n * (b + value_bits), d + n * value_bits)
    return int(out) if out.ndim == 0 else out


#: Dimensions up to which :func:`sparse_bits` of an array looks its counts up in a table.
_TABLE_LIMIT = 1 << 16


@functools.lru_cache(maxsize=64)
def _sparse_table(d: int, value_bits: int) -> np.ndarray:
    """``sparse_bits(n, d, value_bits)`` for ``n = 0..d`` (int64, read-only)."""
    n = np.arange(d + 1, dtype=np.int64)
    table = np.where(n * index_bits(d) < d, n * (index_bits(d) + value_bits), d + n * value_bits)
    table.flags.writeable = False
    return table


def dense_bits(d: int, value_bits: int) -> int:
    """Length ``d·v`` of a dense message."""
    return int(d) * int(value_bits)


# ---------------------------------------------------------------- bit strings


def uint_to_bits(values: np.ndarray, width: int) -> np.ndarray:
    """Bits of unsigned integers, ``width`` bits each, most significant first (uint8 0/1)."""
    v = np.asarray(values, dtype=np.uint64).reshape(-1, 1)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    return ((v >> shifts) & np.uint64(1)).astype(np.uint8).ravel()


def bits_to_uint(bits: np.ndarray, width: int) -> np.ndarray:
    """Inverse of :func:`uint_to_bits`: uint64 array of ``len(bits)/width`` integers."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    words = np.asarray(bits, dtype=np.uint64).reshape(-1, width)
    return (words << shifts).sum(axis=1, dtype=np.uint64)


def float_to_bits(values: np.ndarray, value_bits: int) -> np.ndarray:
    """Bits of ``values`` written as big-endian float32 (``v=32``) or float64 (``v=64``)."""
    wire = np.asarray(values, dtype=np.float64).astype(_WIRE_DTYPE[value_bits])
    return np.unpackbits(wire.view(np.uint8))


def bits_to_float(bits: np.ndarray, value_bits: int) -> np.ndarray:
    """Inverse of :func:`float_to_bits`, returned as float64."""
    raw = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return np.frombuffer(raw, dtype=_WIRE_DTYPE[value_bits]).astype(np.float64)


def pack(bits: np.ndarray, d: int, parts: tuple[int, ...] | None = None) -> Encoded:
    """Pack a 0/1 bit string into an :class:`Encoded` message."""
    bits = np.asarray(bits, dtype=np.uint8)
    return Encoded(np.packbits(bits).tobytes(), int(bits.size), int(d), parts)


def unpack(message: Encoded) -> np.ndarray:
    """The bit string of ``message`` (uint8 0/1, exactly ``nbits`` long; padding must be 0)."""
    bits = np.unpackbits(np.frombuffer(message.payload, dtype=np.uint8))
    if bits[message.nbits :].any():
        raise _malformed(message, "zero padding after nbits")
    return bits[: message.nbits]


def join(messages: Sequence[Encoded]) -> Encoded:
    """Concatenate framed messages into one, recording each part's length in ``parts``."""
    bits = [unpack(m) for m in messages]
    return pack(
        np.concatenate(bits) if bits else np.zeros(0, np.uint8),
        sum(m.d for m in messages),
        tuple(m.nbits for m in messages),
    )


def split(message: Encoded, dims: Sequence[int]) -> list[Encoded]:
    """Inverse of :func:`join`: the parts of ``message``, part ``l`` of dimension ``dims[l]``."""
    if message.parts is None or len(message.parts) != len(dims) or message.d != sum(dims):
        raise _malformed(message, f"{len(dims)} parts of dimensions {tuple(dims)}")
    bits = unpack(message)
    ends = np.cumsum(message.parts)
    return [
        pack(chunk, d) for chunk, d in zip(np.split(bits, ends[:-1]), dims, strict=True)
    ]


def _malformed(message: Encoded, expected: str) -> InputError:
    return InputError(
        "message", f"Encoded(nbits={message.nbits}, d={message.d})", f"a message with {expected}"
    )


# ---------------------------------------------------------------- sparse and dense codes


def encode_sparse(c: np.ndarray, value_bits: int) -> Encoded:
    """Encode the nonzeros of the row ``c`` (index list or bitmap, whichever is shorter)."""
    c = np.asarray(c)
    d = c.shape[0]
    support = np.flatnonzero(c)
    nnz = support.size
    b = index_bits(d)
    if nnz * b < d:
        head = uint_to_bits(support, b)
    else:
        head = np.zeros(d, dtype=np.uint8)
        head[support] = 1
    return pack(np.concatenate([head, float_to_bits(c[support], value_bits)]), d)


def sparse_layout(nbits: int, d: int, value_bits: int) -> tuple[str, int]:
    """Recover ``("list" | "bitmap", nnz)`` from a sparse message's length.

    Proof that the two layouts cannot be confused. Let ``b ≥ 1``, ``v ≥ 1``.
    Suppose ``N = n₁(b + v)`` with ``n₁b < d`` (list) and also ``N = d + n₂v``
    with ``n₂b ≥ d`` (bitmap). Then ``n₁b < d ≤ n₂b`` gives ``n₁ < n₂``, while
    ``n₁v = d − n₁b + n₂v > n₂v`` gives ``n₁ > n₂``: a contradiction. Within
    one layout ``N`` is strictly increasing in ``nnz``, so ``nnz`` is unique.
    Hence ``N`` is a list length iff ``(b + v) | N`` and ``(N/(b + v))·b < d``.
    """
    b = index_bits(d)
    n_list, rest = divmod(nbits, b + value_bits)
    if rest == 0 and n_list * b < d:
        return "list", n_list
    n_map, rest = divmod(nbits - d, value_bits)
    if nbits >= d and rest == 0 and n_map * b >= d and n_map <= d:
        return "bitmap", n_map
    raise InputError(
        "nbits", nbits, f"the length of a sparse message for d={d}, value_bits={value_bits}"
    )


def decode_sparse(message: Encoded, value_bits: int) -> np.ndarray:
    """Decode a message of :func:`encode_sparse` into a float64 vector of length ``d``."""
    d = message.d
    layout, nnz = sparse_layout(message.nbits, d, value_bits)
    bits = unpack(message)
    if layout == "list":
        head = nnz * index_bits(d)
        support = bits_to_uint(bits[:head], index_bits(d)).astype(np.int64)
        if np.any(support >= d) or np.any(np.diff(support) <= 0):
            raise _malformed(message, "increasing indices below d")
    else:
        head = d
        support = np.flatnonzero(bits[:d])
        if support.size != nnz:
            raise _malformed(message, f"{nnz} bits set in the bitmap")
    out = np.zeros(d, dtype=np.float64)
    out[support] = bits_to_float(bits[head:], value_bits)
    return out


def encode_dense(c: np.ndarray, value_bits: int) -> Encoded:
    """Encode all ``d`` entries of the row ``c`` (``d·v`` bits)."""
    c = np.asarray(c)
    return pack(float_to_bits(c, value_bits), c.shape[0])


def decode_dense(message: Encoded, value_bits: int) -> np.ndarray:
    """Decode a message of :func:`encode_dense`."""
    if message.nbits != dense_bits(message.d, value_bits):
        raise _malformed(message, f"nbits = d·{value_bits}")
    return bits_to_float(unpack(message), value_bits)
