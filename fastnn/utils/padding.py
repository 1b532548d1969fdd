"""``pad_sequences``: ragged token sequences to one 2-D array (Keras' ``keras.utils.pad_sequences``).

Same arguments, defaults and results as Keras 3 (``keras/src/utils/sequence_utils.py``): int32 output,
padding and truncating at the front by default, the sample shape taken from the first non-empty sequence.
Two differences, where Keras fails or errs: an empty list gives an empty ``(0, maxlen or 0)`` array
(Keras' ``np.max`` of no lengths raises), and ``maxlen=0`` gives empty rows (Keras' ``s[-0:]`` keeps the
whole sequence and then fails to fit it). Arguments are checked before any work, in Keras' wording.
"""
import numbers

import numpy as np

from fastnn.utils.validation import describe


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (and truncate) sequences to the same length.

    Args:
        sequences: a list (or other sized iterable) of sequences, each a list or array of values
            (token ids, or vectors: every element then has the same shape).
        maxlen: the length of the output rows; None (default) uses the longest sequence.
        dtype: the output dtype (default ``"int32"``; ``object`` for variable-length strings).
        padding: ``"pre"`` (default) or ``"post"``: where the padding goes.
        truncating: ``"pre"`` (default) or ``"post"``: which end of a longer sequence is dropped.
        value: the padding value (default 0).

    Returns:
        An array of shape ``(len(sequences), maxlen) + sample_shape``.
    """
    for name, given in (("padding", padding), ("truncating", truncating)):
        if given not in ("pre", "post"):
            raise ValueError(f'{name.capitalize()} type "{given}" not understood; use "pre" or "post".')
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, numbers.Integral)
                               or maxlen < 0):
        raise ValueError(f"pad_sequences: argument `maxlen` must be None or a non-negative integer; received "
                         f"{describe(maxlen)}")
    if not hasattr(sequences, "__len__"):
        raise ValueError(f"`sequences` must be iterable; received {describe(sequences)}")
    lengths, sample_shape = [], None
    for s in sequences:
        try:
            lengths.append(len(s))
        except TypeError as exc:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {s!r}") from exc
        if sample_shape is None and len(s):
            sample_shape = np.asarray(s).shape[1:]  # from the first non-empty sequence, as Keras
    sample_shape = sample_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    maxlen = int(maxlen)
    is_text = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_text:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
                         "You should set `dtype=object` for variable length strings.")
    out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    if maxlen == 0:
        return out
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {kept.shape[1:]} of sequence at position {i} is different "
                             f"from expected shape {sample_shape}")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, -len(kept):] = kept
    return out
