"""Wire encodings: hand-computed messages, the list/bitmap switch, round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcheck import encoding
from convcheck.encoding import Encoded
from convcheck.errors import InputError


@pytest.mark.parametrize(
    ("d", "b"), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (9, 4), (1000, 10), (1024, 10),
                 (1025, 11), (100_000, 17)]
)
def test_index_width_is_ceil_log2_at_least_one(d: int, b: int) -> None:
    assert encoding.index_bits(d) == b


def test_sparse_bits_hand_computed() -> None:
    # d = 1000, 10 nonzeros: index list, 10·(10 + 32)
    assert encoding.sparse_bits(10, 1000, 32) == 420
    # d = 16, 8 nonzeros: 8·4 = 32 >= 16, bitmap 16 + 8·32
    assert encoding.sparse_bits(8, 16, 32) == 16 + 8 * 32
    # d = 16, 3 nonzeros: 12 < 16, list 3·(4 + 32); 4 nonzeros: 16 >= 16, bitmap
    assert encoding.sparse_bits(3, 16, 32) == 108
    assert encoding.sparse_bits(4, 16, 64) == 16 + 4 * 64
    assert encoding.sparse_bits(0, 16, 32) == 0
    got = encoding.sparse_bits(np.array([0, 3, 4, 16]), 16, 32)
    assert got.dtype == np.int64 and got.tolist() == [0, 108, 144, 16 + 16 * 32]
    assert encoding.dense_bits(7, 64) == 448


def test_hand_computed_message() -> None:
    """d = 8, one nonzero 1.0 at index 5, float32: bits 101 | 0x3F800000 (35 bits)."""
    c = np.zeros(8)
    c[5] = 1.0
    message = encoding.encode_sparse(c, 32)
    assert message.nbits == 35 and message.d == 8
    assert message.payload == bytes([0xA7, 0xF0, 0x00, 0x00, 0x00])
    assert np.array_equal(encoding.decode_sparse(message, 32), c)


def test_bit_primitives_hand_computed() -> None:
    assert encoding.uint_to_bits(np.array([5, 2]), 4).tolist() == [0, 1, 0, 1, 0, 0, 1, 0]
    assert encoding.bits_to_uint(np.array([0, 1, 0, 1, 0, 0, 1, 0]), 4).tolist() == [5, 2]
    one = encoding.float_to_bits(np.array([1.0]), 32)
    assert np.packbits(one).tobytes() == bytes.fromhex("3f800000")
    minus_two = encoding.float_to_bits(np.array([-2.0]), 64)
    assert np.packbits(minus_two).tobytes() == bytes.fromhex("c000000000000000")


@pytest.mark.parametrize("d", [1, 2, 3, 7, 16, 17, 64, 100, 1000])
@pytest.mark.parametrize("v", [32, 64])
def test_layout_switch_is_unambiguous(d: int, v: int) -> None:
    """Every nnz in [0, d] maps to a distinct length that decodes back to its layout and nnz."""
    b = encoding.index_bits(d)
    lengths = [encoding.sparse_bits(n, d, v) for n in range(d + 1)]
    assert all(a < c for a, c in zip(lengths, lengths[1:], strict=False))  # injective
    for n, nbits in enumerate(lengths):
        expected = ("list", n * (b + v)) if n * b < d else ("bitmap", d + n * v)
        assert nbits == expected[1]
        assert encoding.sparse_layout(nbits, d, v) == (expected[0], n)
    # lengths that no nnz produces are rejected
    valid = set(lengths)
    for nbits in range(lengths[-1] + 2):
        if nbits not in valid:
            with pytest.raises(InputError, match="nbits"):
                encoding.sparse_layout(nbits, d, v)


@pytest.mark.parametrize("v", [32, 64])
@pytest.mark.parametrize("d", [16, 100, 1000])
def test_round_trip_around_the_switching_point(d: int, v: int) -> None:
    rng = np.random.default_rng(d + v)
    b = encoding.index_bits(d)
    switch = math.ceil(d / b)  # first nnz using the bitmap
    for nnz in sorted({0, 1, switch - 1, switch, switch + 1, d}):
        c = np.zeros(d)
        support = rng.choice(d, size=nnz, replace=False)
        c[support] = rng.standard_normal(nnz) * 1e3
        message = encoding.encode_sparse(c, v)
        assert message.nbits == encoding.sparse_bits(nnz, d, v)
        assert len(message.payload) == math.ceil(message.nbits / 8)
        layout = "list" if nnz * b < d else "bitmap"
        assert encoding.sparse_layout(message.nbits, d, v)[0] == layout
        back = encoding.decode_sparse(message, v)
        expected = c if v == 64 else c.astype(np.float32).astype(np.float64)
        assert back.dtype == np.float64 and np.array_equal(back, expected)


def test_round_trip_large_dimension() -> None:
    d = 100_000
    rng = np.random.default_rng(1)
    for nnz in (1000, 6000, 50_000):
        c = np.zeros(d)
        c[rng.choice(d, size=nnz, replace=False)] = rng.standard_normal(nnz)
        message = encoding.encode_sparse(c, 64)
        assert message.nbits == encoding.sparse_bits(nnz, d, 64)
        assert np.array_equal(encoding.decode_sparse(message, 64), c)
    dense = rng.standard_normal(d)
    message = encoding.encode_dense(dense, 32)
    assert message.nbits == 32 * d and len(message.payload) == 4 * d
    assert np.array_equal(encoding.decode_dense(message, 32), dense.astype(np.float32))


values = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.one_of(st.just(0.0), values), min_size=1, max_size=80),
       st.sampled_from([32, 64]))
def test_round_trip_property(entries: list[float], v: int) -> None:
    c = np.array(entries)
    if v == 32:  # the float32 image must be finite for an exact comparison
        c = np.clip(c, -3e38, 3e38)
    message = encoding.encode_sparse(c, v)
    assert message.nbits == encoding.sparse_bits(np.count_nonzero(c), c.size, v)
    assert len(message.payload) == -(-message.nbits // 8)
    expected = c if v == 64 else c.astype(np.float32).astype(np.float64)
    assert np.array_equal(encoding.decode_sparse(message, v), expected)
    dense = encoding.encode_dense(c, v)
    assert dense.nbits == c.size * v
    assert np.array_equal(encoding.decode_dense(dense, v), expected)


def test_join_and_split() -> None:
    parts = [np.array([0.0, 3.0, 0.0]), np.zeros(5), np.array([1.0, -2.0, 0.5, 0.0])]
    messages = [encoding.encode_sparse(p, 64) for p in parts]
    joined = encoding.join(messages)
    assert joined.parts == tuple(m.nbits for m in messages)
    assert joined.nbits == sum(m.nbits for m in messages) and joined.d == 12
    assert messages[1].nbits == 0  # a zero layer costs nothing
    back = encoding.split(joined, [3, 5, 4])
    assert [m.payload for m in back] == [m.payload for m in messages]
    with pytest.raises(InputError, match="message"):
        encoding.split(joined, [3, 9])


def test_malformed_messages_are_rejected() -> None:
    with pytest.raises(InputError, match="payload"):
        Encoded(b"\x00\x00", nbits=3, d=4)
    with pytest.raises(InputError, match="parts"):
        Encoded(b"\x00", nbits=3, d=4, parts=(1, 1))
    with pytest.raises(InputError, match="nbits"):
        encoding.decode_sparse(Encoded(b"\x00" * 5, nbits=33, d=8), 32)
    with pytest.raises(InputError, match="nbits"):
        encoding.decode_dense(Encoded(b"\x00" * 4, nbits=32, d=2), 32)
    # an index list with decreasing indices: 2 then 1 (d = 8, b = 3)
    bits = np.concatenate([encoding.uint_to_bits(np.array([2, 1]), 3),
                           encoding.float_to_bits(np.array([1.0, 1.0]), 32)])
    with pytest.raises(InputError, match="increasing indices"):
        encoding.decode_sparse(encoding.pack(bits, 8), 32)
    # nonzero padding after nbits
    with pytest.raises(InputError, match="padding"):
        encoding.unpack(Encoded(b"\x01", nbits=3, d=8))


@pytest.mark.parametrize("bad", [16, 0, "32", True, 32.5])
def test_value_bits_must_be_32_or_64(bad: object) -> None:
    with pytest.raises(InputError, match="'value_bits'.*32 .*or 64"):
        encoding.check_value_bits(bad)


@pytest.mark.parametrize("d", [1, 2, 3, 16, 17, 1000, (1 << 16) + 3])
def test_sparse_bits_of_arrays_follow_the_formula(d: int) -> None:
    """The table looked up for arrays (small d) and the formula (large d, or counts outside
    0..d) agree with the scalar rule, entry by entry."""
    b = encoding.index_bits(d)
    counts = np.unique(np.linspace(0, d, 40).astype(np.int64))
    for v in (32, 64):
        expected = [n * (b + v) if n * b < d else d + n * v for n in counts.tolist()]
        got = encoding.sparse_bits(counts, d, v)
        assert got.dtype == np.int64 and got.tolist() == expected
        assert [encoding.sparse_bits(int(n), d, v) for n in counts] == expected
    over = encoding.sparse_bits(np.array([d + 5]), d, 32)
    assert over.tolist() == [(d + 5) * (b + 32) if (d + 5) * b < d else d + (d + 5) * 32]
