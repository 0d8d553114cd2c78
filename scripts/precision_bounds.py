"""How far reduced precision moves the default model's answers, simulated in PyTorch:
the GRU's recurrent product h . W_hh with its operands rounded as a kernel would take
them (bf16: both to bfloat16; int8: weights to int8 with one scale per output, states
to uint8 over [-1, 1], as `vpdpbusd` multiplies them; int16: weights to int16 with one
scale per output (steps as the kernel picks them for the part of W_hh a row belongs to),
states to steps of 1/8191, as `vpmaddwd` multiplies them), sums in
float32; everything else
float32. Prints, on the data set's names and on random ones, the share of names whose
top language stays and the largest probability moved: the bounds `precision="auto"`
would have to meet (>= 99.9%, <= 0.005).

    NAMELANG_DATA=../shared/data/names python scripts/precision_bounds.py [--random 200000]
"""

from __future__ import annotations

import argparse
import random
import string

import torch
from namelang.classifier import load_module, model_path
from namelang.data import load_names
from namelang.model import known_ngrams, ngram_input
from namelang.text import encode


def int8_weights(w: torch.Tensor) -> torch.Tensor:
    scale = w.abs().max(1, keepdim=True).values / 127
    return torch.round(w / scale).clamp(-127, 127) * scale


def uint8_states(h: torch.Tensor) -> torch.Tensor:
    return torch.round((h + 1) * 127.5).clamp(0, 255) / 127.5 - 1


def int16_steps(depth: int) -> int:
    """The kernel's weight steps for products `depth` deep (`int16::weight_steps`)."""
    pairs_depth = -(-depth // 2) * 2
    return min((2**31 - 1) // (max(pairs_depth, 1) * 8191), 2**15 - 1)


def int16_weights(w: torch.Tensor) -> torch.Tensor:
    # Each output's depth is its part's: a merged ensemble's members run apart, so a row
    # of a block-diagonal W_hh is as deep as the span of its non-zero weights (64 units
    # for the default's pair: 4,096 steps; a dense GRU of 128: 2,048).
    nonzero = w != 0
    first = nonzero.float().argmax(1)
    last = w.shape[1] - 1 - nonzero.flip(1).float().argmax(1)
    steps = torch.tensor([int16_steps(int(n)) for n in (last - first + 1)]).unsqueeze(1)
    scale = w.abs().max(1, keepdim=True).values / steps
    return torch.round(w / scale).clamp(-steps, steps) * scale


def int16_states(h: torch.Tensor) -> torch.Tensor:
    return torch.round(h * 8191).clamp(-8191, 8191) / 8191


ROUNDING = {
    "f32": (lambda w: w, lambda h: h),
    "bf16": (lambda w: w.bfloat16().float(), lambda h: h.bfloat16().float()),
    "int8": (int8_weights, uint8_states),
    "int16": (int16_weights, int16_states),
}


@torch.no_grad()
def log_probs(module, names: list[str], precision: str) -> torch.Tensor:
    """The default model's log-probabilities, its GRU step written out (one layer)."""
    cfg, rnn, h_size = module.config, module.rnn, module.config.hidden_size
    round_w, round_h = ROUNDING[precision]
    idx, lens = (torch.from_numpy(a) for a in encode(names, cfg.text_rule))
    keep = lens > 0
    idx, lens = idx[keep], lens[keep]
    gi = module.embedding(idx) @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
    w_hh = round_w(rnn.weight_hh_l0)
    h = torch.zeros(len(idx), h_size)
    for t in range(idx.shape[1]):
        gh = round_h(h) @ w_hh.T + rnn.bias_hh_l0
        g = gi[:, t]
        r = torch.sigmoid(g[:, :h_size] + gh[:, :h_size])
        z = torch.sigmoid(g[:, h_size : 2 * h_size] + gh[:, h_size : 2 * h_size])
        n = torch.tanh(g[:, 2 * h_size :] + r * gh[:, 2 * h_size :])
        h = torch.where((t < lens)[:, None], (1 - z) * n + z * h, h)
    logits = module.out(h) + module.logit_adjustment
    kept = [name for name, k in zip(names, keep.tolist(), strict=True) if k]
    logits = logits + module.ngram(*ngram_input(kept, cfg, known=known_ngrams(module)))
    return torch.log_softmax(logits, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random", type=int, default=200_000, help="random names")
    args = parser.parse_args()
    _, module = load_module(model_path("default"))
    rng = random.Random(1)
    sets = {
        "data set": [n for names in load_names().values() for n in names],
        "random": [
            "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 12)))
            for _ in range(args.random)
        ],
    }
    print("| names | precision | same top language | largest probability moved |")
    print("|---|---|---|---|")
    for label, names in sets.items():
        exact = log_probs(module, names, "f32").exp()
        for precision in ("bf16", "int8", "int16"):
            reduced = log_probs(module, names, precision).exp()
            same = (exact.argmax(1) == reduced.argmax(1)).float().mean().item()
            moved = (exact - reduced).abs().max().item()
            print(f"| {label} ({len(exact):,}) | {precision} | {same:.5f} | {moved:.5f} |")


if __name__ == "__main__":
    main()
