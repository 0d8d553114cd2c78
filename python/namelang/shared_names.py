"""Names the training data lists under several languages (Wang: Chinese and Korean;
García: Spanish and Portuguese; Kelly: English, Irish and Scottish), and how their
training rows share the name's weight.

Trained as plain rows, each (name, language) row carries its class weight, so a shared
name learns to favour the smallest of its languages (Portuguese over Spanish, Scottish
over Irish) whatever the name looks like. Two other ways, chosen by `--shared-names`:

- "even": the name's languages split its weight evenly (the target is uniform over them);
- "vote": the split starts even and, after each epoch, follows the model's own
  probabilities among the name's languages (partial-label learning, as PRODEN does), so
  the rest of the data decides which of its languages a name looks like.

A name's total weight is what its rows carried as plain rows in every way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from namelang.text import apply_text_rule

if TYPE_CHECKING:  # torch and numpy load where they are used: the CLI reads WAYS alone
    import numpy as np
    import torch

WAYS = ("rows", "even", "vote")


def shared_groups(names: list[str], labels: list[int], text_rule: str) -> list[np.ndarray]:
    """Row indices of each name (as the model reads it) found under several languages."""
    import numpy as np

    rows_of: dict[str, list[int]] = {}
    for i, read in enumerate(apply_text_rule(names, text_rule)):
        rows_of.setdefault(read, []).append(i)
    return [
        np.array(rows, dtype=np.int64)
        for rows in rows_of.values()
        if len({labels[i] for i in rows}) > 1
    ]


def split_weight(
    row_weight: torch.Tensor,
    class_weight: torch.Tensor,
    labels: torch.Tensor,
    groups: list[np.ndarray],
    shares: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Row weights under which each group's rows carry `shares` of the group's loss
    weight (even when None): a row's loss weight is class_weight[label] * row_weight."""
    import torch

    out = row_weight.clone()
    for k, rows in enumerate(groups):
        idx = torch.from_numpy(rows).to(row_weight.device)
        cw = class_weight[labels[idx]]
        total = (cw * row_weight[idx]).sum()
        share = torch.full_like(cw, 1.0 / len(rows)) if shares is None else shares[k]
        out[idx] = total * share / cw
    return out


def vote_shares(log_probs: torch.Tensor, labels: torch.Tensor, groups: list[np.ndarray]):
    """Each group's shares from the model's log-probabilities of its rows' languages:
    p(language) among the name's languages, renormalised."""
    import torch

    shares = []
    for rows in groups:
        idx = torch.from_numpy(rows).to(log_probs.device)
        own = log_probs[idx, labels[idx]]
        shares.append(torch.softmax(own, 0))
    return shares
