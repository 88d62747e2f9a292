"""Models for tests/test_advise.py, named to ``copybench advise`` as
``advise_models:FACTORY`` (the tests run it with this folder as the current one).

``tied`` is a model of our own with what the routes disagree about: an embedding tied to
the output layer, a non-persistent buffer, a persistent one, a forward hook, a
weight-normed layer (a parametrization) and a plain attribute.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _scale_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output * module.scale


class Tied(nn.Module):
    def __init__(self, vocab: int = 32, width: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mix = weight_norm(nn.Linear(width, width))
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied, as a language model's head
        self.register_buffer("positions", torch.arange(vocab), persistent=False)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.scale = 0.5
        self.register_forward_hook(_scale_output)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.embed(ids)))


def tied(vocab: int = 32, width: int = 8) -> nn.Module:
    return Tied(vocab, width)


def many_small(tensors: int = 256) -> nn.Module:
    """Many tiny tensors: deepcopy's per-tensor Python cost dwarfs the bytes."""
    return nn.Sequential(*(nn.Linear(2, 2) for _ in range(tensors // 2)))


def raises() -> nn.Module:
    raise ValueError("this factory fails on purpose")


def not_a_module() -> dict:
    return {"weight": torch.ones(2)}


class Pickled:
    """An object that torch.load(weights_only=True) must refuse to unpickle."""

    def __init__(self) -> None:
        self.weight = torch.ones(2)


EVIL = "<img src=x onerror=alert(1)>"


class Evil(Tied):
    """A model whose class name and an attribute's name are markup (the page must escape)."""


Evil.__qualname__ = EVIL


def evil() -> nn.Module:
    model = Evil()
    setattr(model, EVIL, EVIL)
    return model


def gpt2(**config: int) -> nn.Module:
    """A GPT-2 from a config (a small one by default; ``--kwarg n_layer=12`` and so on):
    random weights, nothing downloaded; its output layer is tied to its input embedding."""
    from transformers import GPT2Config, GPT2LMHeadModel

    small = dict(n_layer=2, n_embd=32, n_head=2, vocab_size=128, n_positions=64)
    return GPT2LMHeadModel(GPT2Config(**{**small, **config}, bos_token_id=0, eos_token_id=0))
