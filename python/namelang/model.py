"""The models, in PyTorch: the tutorial's Elman-style cell, and GRU/LSTM classifiers.

Every model maps (indices (B, T), lengths (B,)) to log-probabilities (B, C). A name with
no letters (length 0) gets a row of NaN. Parameter names and shapes, which the model
file stores and the Rust backend reads (H hidden size, C categories, L = 57 letters,
E embedding size, I = E or L the input width, G = 3H for GRU and 4H for LSTM):

ElmanRNN (cell "elman", the tutorial's RNN):
    i2h.weight (H, L + H)   i2h.bias (H)   i2o.weight (C, L + H)   i2o.bias (C)
RecurrentClassifier (cell "gru" or "lstm"), for each layer k = 0 .. num_layers - 1:
    embedding.weight (L, E)                      only with input "embedding"
    rnn.weight_ih_l{k} (G, I if k == 0 else H)   rnn.weight_hh_l{k} (G, H)
    rnn.bias_ih_l{k} (G)                         rnn.bias_hh_l{k} (G)
    out.weight (C, D * H)   out.bias (C)
    With bidirectional (one layer only; D = 2, else D = 1), the reverse direction adds
    rnn.weight_ih_l0_reverse, rnn.weight_hh_l0_reverse, rnn.bias_ih_l0_reverse and
    rnn.bias_hh_l0_reverse, shaped as their forward twins, and out.weight's columns are
    [forward final state, reverse final state (after reading the first letter)].
    ngram.weight (N, C)   with an n-gram branch (N = ngram_buckets): a hashed character
    n-gram table, `nn.EmbeddingBag(mode="sum")`, whose rows for a name's n-grams
    (`namelang.reference.ngram_rows`) are summed into its logits
    ngram.known (K, 8) uint32   with ngram_known_blocks = K: the n-grams the table was
    trained on (a buffer; `namelang.reference.known_ngrams`), the only ones it reads
    marks.weight (M, C)   with marks (M letters outside ASCII, metadata `marks`): a row
    of log-ratios per mark, added for each mark a name holds (`namelang.marks`; a buffer
    counted after training, not learnt)
Both, optionally:
    logit_adjustment (C)   added to the logits before the softmax (tuned on validation)

Calibration is folded into the weights: training divides the output layer, the n-gram
table and the logit adjustment by the fitted temperature, so every backend applies it
by running the file as it is.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from namelang import _native
from namelang.spec import N_LETTERS, ModelConfig

# What an n-gram branch reads: the arguments of `nn.EmbeddingBag.forward`, either
# (flat rows, offsets, flat weights) or (padded rows (B, G), None, weights (B, G)),
# each row weighted 1/sqrt(G) (0 for padding).
NGramInput = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]


def mark_input(
    names: list[str], config: ModelConfig, device: str | torch.device = "cpu"
) -> torch.Tensor | None:
    """Which of the model's marks each name holds, (B, M) of 0 and 1 (None: no marks)."""
    if not config.marks:
        return None
    return torch.from_numpy(_native.marks_held(names, list(config.marks))).to(device)


def known_ngrams(model: nn.Module) -> np.ndarray | None:
    """The n-grams a model's table knows (`ngram.known`, uint32 words), or None."""
    known = getattr(getattr(model, "ngram", None), "known", None)
    return None if known is None else known.cpu().numpy().view(np.uint32)


def ngram_input(
    names: list[str],
    config: ModelConfig,
    padded: bool = False,
    device: str = "cpu",
    known: np.ndarray | None = None,
) -> NGramInput | None:
    """The n-gram rows of `names` for `config`'s branch (None without one): flat with
    offsets for inference, or padded (B, G_max) for selecting training batches. With
    `known` (`known_ngrams(model)`), only the n-grams it holds; each row's weight still
    counts every n-gram of the name, as the native backend's does."""
    if not config.ngram_buckets:
        return None

    rows, offsets = _native.ngram_rows(
        names, config.ngram_max, config.ngram_buckets, config.text_rule, known
    )
    counts = np.diff(np.append(offsets, len(rows)))
    wrapped = _native.lengths(names, config.text_rule).astype(np.int64) + 2  # ^letters$
    grams = sum(np.clip(wrapped - n + 1, 0, None) for n in range(1, config.ngram_max + 1))
    weight = np.zeros(len(names), np.float32)
    np.divide(1.0, np.sqrt(grams, dtype=np.float32), out=weight, where=grams > 0)
    if not padded:
        per_row = np.repeat(weight, counts)
        tensors = (torch.from_numpy(rows), torch.from_numpy(offsets), torch.from_numpy(per_row))
        return tuple(t.to(device) for t in tensors)  # type: ignore[return-value]
    width = int(counts.max(initial=0))
    ids = np.zeros((len(names), width), np.int64)
    weights = np.zeros((len(names), width), np.float32)
    mask = np.arange(width)[None, :] < counts[:, None]
    ids[mask] = rows
    weights[mask] = np.repeat(weight, counts)
    return torch.from_numpy(ids).to(device), None, torch.from_numpy(weights).to(device)


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when torch sees a GPU, else "cpu"; "cuda" without one is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU")
    return device


def _nan_rows(out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    if bool((lengths == 0).any()):
        out = out.masked_fill((lengths == 0).unsqueeze(1), math.nan)
    return out


class ElmanRNN(nn.Module):
    """The tutorial's cell: hidden = i2h(cat(x, h)), output = LogSoftmax(i2o(cat(x, h)))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.hidden_size = config.hidden_size
        self.i2h = nn.Linear(N_LETTERS + config.hidden_size, config.hidden_size)
        self.i2o = nn.Linear(N_LETTERS + config.hidden_size, config.n_categories)
        self.softmax = nn.LogSoftmax(dim=1)
        self.register_buffer("logit_adjustment", torch.zeros(config.n_categories))

    def forward(self, input: torch.Tensor, hidden: torch.Tensor):
        """One step, exactly as the tutorial writes it (no logit adjustment)."""
        combined = torch.cat((input, hidden), 1)
        hidden = self.i2h(combined)
        output = self.i2o(combined)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self) -> torch.Tensor:
        return torch.zeros(1, self.hidden_size)

    def logits(
        self, indices: torch.Tensor, lengths: torch.Tensor, ngrams: NGramInput | None = None
    ) -> torch.Tensor:
        """Batched: names sorted by length, each step computes only the rows still
        reading; a name's output is taken at its last letter, as the loop does."""
        batch = indices.shape[0]
        lengths = lengths.to(indices.device)
        order = torch.argsort(lengths, descending=True, stable=True)
        sorted_idx = indices[order]
        sorted_len = lengths[order].tolist()
        # longer[t]: how many names have more than t letters (a prefix of the sorted rows).
        longer = [0] * ((sorted_len[0] if sorted_len else 0) + 2)
        for n in sorted_len:
            longer[n] += 1
        for t in range(len(longer) - 2, -1, -1):
            longer[t] += longer[t + 1]
        longer = [*longer[1:], 0]
        H = self.hidden_size
        wx_h, wh_h = self.i2h.weight[:, :N_LETTERS], self.i2h.weight[:, N_LETTERS:]
        wx_o, wh_o = self.i2o.weight[:, :N_LETTERS], self.i2o.weight[:, N_LETTERS:]
        # Input terms are columns of the weights, picked by letter: no one-hot product.
        in_h = wx_h.t()  # (L, H)
        in_o = wx_o.t()  # (L, C)
        out = torch.full(
            (batch, self.config.n_categories),
            math.nan,
            device=indices.device,
            dtype=self.i2o.weight.dtype,
        )
        h = torch.zeros(batch, H, device=indices.device, dtype=self.i2h.weight.dtype)
        active = longer[0]
        pieces: list[torch.Tensor] = []
        t = 0
        while active > 0:
            x = sorted_idx[:active, t]
            going = longer[t + 1]
            ending = active - going
            if ending:
                hs = h[going:active]
                pieces.append(in_o[x[going:]] + F.linear(hs, wh_o) + self.i2o.bias)
            if going:
                h = in_h[x[:going]] + F.linear(h[:going], wh_h) + self.i2h.bias
            active = going
            t += 1
        # Shortest names end first: reversed, the pieces are the sorted rows in order.
        if pieces:
            stacked = torch.cat(pieces[::-1], 0)
            out = out.index_put((order[: stacked.shape[0]],), stacked)
        return out + self.logit_adjustment

    def log_probs(
        self,
        indices: torch.Tensor,
        lengths: torch.Tensor,
        ngrams: NGramInput | None = None,
        marks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # The tutorial's cell has neither an n-gram branch nor marks (the reader refuses
        # them): the arguments are taken so every module is called alike.
        logits = self.logits(indices, lengths, ngrams)
        return _nan_rows(F.log_softmax(logits, dim=1), lengths)


class RecurrentClassifier(nn.Module):
    """nn.GRU or nn.LSTM over one-hot or embedded letters; the last layer's final hidden
    state goes through one linear layer to the categories."""

    def __init__(self, config: ModelConfig, dropout: float = 0.0):
        super().__init__()
        self.config = config
        width = N_LETTERS
        if config.input == "embedding":
            self.embedding = nn.Embedding(N_LETTERS, config.embedding_dim)
            width = config.embedding_dim
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        self.rnn = rnn(
            width,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=dropout if config.num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
        )
        # Dropout on the final state regularises training; it is the identity at inference.
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(config.directions * config.hidden_size, config.n_categories)
        if config.ngram_buckets:
            self.ngram = nn.EmbeddingBag(config.ngram_buckets, config.n_categories, mode="sum")
            nn.init.zeros_(self.ngram.weight)
            if config.ngram_known_blocks:  # uint32 words, held as int32 (same bits)
                self.ngram.register_buffer(
                    "known", torch.zeros((config.ngram_known_blocks, 8), dtype=torch.int32)
                )
        if config.marks:
            self.marks = nn.Module()
            rows = torch.zeros(len(config.marks), config.n_categories)
            self.marks.register_buffer("weight", rows)
        self.register_buffer("logit_adjustment", torch.zeros(config.n_categories))

    # One name longer than this is run this many steps at a time, its state carried
    # over: memory then follows the window, not the name (a 900,000-letter name took
    # gigabytes at once).
    WINDOW = 1 << 15

    def _final_states(self, indices: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The RNN's final hidden states (layers x directions, B, H) for rows of length >= 1."""
        if (
            indices.shape[0] == 1
            and indices.shape[1] > self.WINDOW
            and not self.config.bidirectional
        ):
            state = None
            steps = int(lengths[0])
            for start in range(0, steps, self.WINDOW):
                x = self._inputs(indices[:, start : min(start + self.WINDOW, steps)])
                _, state = self.rnn(x, state)
            return state[0] if self.config.cell == "lstm" else state
        x = self._inputs(indices)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, state = self.rnn(packed)
        return state[0] if self.config.cell == "lstm" else state

    def _inputs(self, indices: torch.Tensor) -> torch.Tensor:
        if self.config.input == "embedding":
            return self.embedding(indices)
        return F.one_hot(indices, N_LETTERS).to(self.out.weight.dtype)

    def logits(
        self,
        indices: torch.Tensor,
        lengths: torch.Tensor,
        ngrams: NGramInput | None = None,
        marks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch = indices.shape[0]
        nonempty = (lengths > 0).nonzero().squeeze(1)
        out = torch.full(
            (batch, self.config.n_categories),
            math.nan,
            device=indices.device,
            dtype=self.out.weight.dtype,
        )
        if nonempty.numel() == 0:
            return out
        h = self._final_states(indices[nonempty], lengths[nonempty])
        # The top layer's final states; both directions' (forward, reverse) when bidirectional.
        final = torch.cat(list(h[-self.config.directions :]), dim=1)
        logits = self.out(self.drop(final)) + self.logit_adjustment
        if self.config.ngram_buckets:
            if ngrams is None:
                raise ValueError("this model has an n-gram branch: pass its n-gram rows")
            logits = logits + self.ngram(*ngrams)[nonempty]
        if self.config.marks:
            if marks is None:
                raise ValueError("this model has marks: pass the marks its names hold")
            logits = logits + (marks.to(logits.dtype) @ self.marks.weight)[nonempty]
        out[nonempty] = logits
        return out

    def log_probs(
        self,
        indices: torch.Tensor,
        lengths: torch.Tensor,
        ngrams: NGramInput | None = None,
        marks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits = self.logits(indices, lengths, ngrams, marks)
        return _nan_rows(F.log_softmax(logits, dim=1), lengths)


def build(config: ModelConfig, dropout: float = 0.0) -> ElmanRNN | RecurrentClassifier:
    if config.cell == "elman":
        return ElmanRNN(config)
    return RecurrentClassifier(config, dropout=dropout)


def from_tensors(config: ModelConfig, tensors: dict, device: str = "cpu") -> nn.Module:
    """The module of this configuration holding these weights (numpy arrays), in eval mode."""
    module = build(config)
    as_torch = {k: v.view(np.int32) if v.dtype == np.uint32 else v for k, v in tensors.items()}
    module.load_state_dict({k: torch.from_numpy(v) for k, v in as_torch.items()})
    return module.to(device).eval()
