"""A BERT-style Transformer encoder built from ``textclf_utils.attention``, and BERT's weights loaded into it.

The pieces follow BERT (Devlin et al., 2019) so that a real checkpoint loads into them through an
explicit name mapping (``bert_name_mapping``) and gives the same numbers as ``transformers``' ``BertModel``:

- ``Embeddings``: token + learned position + segment (token type) embeddings, LayerNorm, dropout;
- ``EncoderBlock``: multi-head self-attention and a GELU feed-forward network, each wrapped in a residual
  connection followed by LayerNorm ("post-LN", as in BERT);
- ``Encoder``: the embeddings, a stack of blocks and BERT's [CLS] pooler (dense + tanh);
- ``EncoderForSequenceClassification``: the encoder, [CLS]-pooler or mean pooling, dropout and a linear head.

``sinusoidal_position_encoding`` gives the fixed encodings of "Attention is all you need", for contrast
with the learned ones. Models save to and load from a folder holding ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .attention import MultiHeadAttention, padding_mask

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
POOLINGS = ("cls", "mean")
# Buffers (not parameters) that BERT checkpoints may carry; they hold no learned values.
BERT_BUFFERS = frozenset({"embeddings.position_ids", "embeddings.token_type_ids"})


@dataclass(frozen=True)
class EncoderConfig:
    """The sizes of an encoder. The defaults are those of the course's packaged all-MiniLM-L6-v2."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        sizes = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                 "max_position_embeddings", "type_vocab_size")
        for name in sizes:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"EncoderConfig.{name} must be a positive integer, got {value!r}.")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"EncoderConfig.hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads}) "
                f"so that every head gets hidden_size / num_heads dimensions; e.g. hidden_size="
                f"{self.num_heads * max(1, self.hidden_size // self.num_heads)}.")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"EncoderConfig.{name} is a probability in [0, 1), got {value!r}.")
        for name in ("layer_norm_eps", "initializer_range"):
            if not getattr(self, name) > 0:
                raise ValueError(f"EncoderConfig.{name} must be positive, got {getattr(self, name)!r}.")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"EncoderConfig.pad_token_id must be a token id in [0, {self.vocab_size}), "
                             f"got {self.pad_token_id!r}.")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_bert_config(cls, bert_config: dict[str, Any]) -> "EncoderConfig":
        """The config of a BERT ``config.json`` (a dict); fails on BERT variants this encoder does not build."""
        unsupported = {
            "hidden_act": ("gelu", bert_config.get("hidden_act", "gelu")),
            "position_embedding_type": ("absolute", bert_config.get("position_embedding_type", "absolute")),
            "is_decoder": (False, bert_config.get("is_decoder", False)),
        }
        for key, (expected, found) in unsupported.items():
            if found != expected:
                raise ValueError(f"This encoder builds BERT with {key}={expected!r}; the checkpoint has {found!r}.")
        try:
            return cls(
                vocab_size=bert_config["vocab_size"],
                hidden_size=bert_config["hidden_size"],
                num_layers=bert_config["num_hidden_layers"],
                num_heads=bert_config["num_attention_heads"],
                intermediate_size=bert_config["intermediate_size"],
                max_position_embeddings=bert_config["max_position_embeddings"],
                type_vocab_size=bert_config["type_vocab_size"],
                dropout=bert_config.get("hidden_dropout_prob", 0.1),
                attention_dropout=bert_config.get("attention_probs_dropout_prob", 0.1),
                layer_norm_eps=bert_config.get("layer_norm_eps", 1e-12),
                initializer_range=bert_config.get("initializer_range", 0.02),
                pad_token_id=bert_config.get("pad_token_id", 0),
            )
        except KeyError as err:
            raise ValueError(f"The BERT config lacks the key {err.args[0]!r}.") from None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EncoderConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown EncoderConfig field(s) {unknown}; known fields: {sorted(known)}.")
        return cls(**values)


def sinusoidal_position_encoding(num_positions: int, hidden_size: int) -> Tensor:
    """The fixed encodings of Vaswani et al. (2017), ``(num_positions, hidden_size)``.

    ``PE[p, 2i] = sin(p / 10000^(2i / d))`` and ``PE[p, 2i + 1] = cos(p / 10000^(2i / d))``.
    """
    if num_positions <= 0 or hidden_size <= 0 or hidden_size % 2:
        raise ValueError(f"num_positions must be positive and hidden_size positive and even, "
                         f"got {num_positions} and {hidden_size}.")
    positions = torch.arange(num_positions, dtype=torch.float64)[:, None]
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(0, hidden_size, 2, dtype=torch.float64) / hidden_size)
    encoding = torch.empty(num_positions, hidden_size, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(positions * frequencies)
    encoding[:, 1::2] = torch.cos(positions * frequencies)
    return encoding.float()


class Embeddings(nn.Module):
    """Token + learned position + segment embeddings, then LayerNorm and dropout (BERT's input layer)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.segment = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """``input_ids`` ``(B, L)`` → ``(B, L, hidden_size)``; ``token_type_ids`` default to segment 0."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}.")
        if input_ids.numel() and not 0 <= int(input_ids.min()) <= int(input_ids.max()) < self.config.vocab_size:
            raise ValueError(f"input_ids hold ids from {int(input_ids.min())} to {int(input_ids.max())}, but this "
                             f"encoder has {self.config.vocab_size} tokens: use the tokenizer it was built for.")
        length = input_ids.shape[1]
        if length > self.config.max_position_embeddings:
            raise ValueError(f"The sequence has {length} tokens; this encoder has position embeddings for at most "
                             f"{self.config.max_position_embeddings}. Truncate it (max_length=...).")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        elif token_type_ids.shape != input_ids.shape:
            raise ValueError(f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, "
                             f"got {tuple(token_type_ids.shape)}.")
        positions = torch.arange(length, device=input_ids.device)[None, :]
        summed = self.token(input_ids) + self.segment(token_type_ids) + self.position(positions)
        return self.dropout(self.norm(summed))


class FeedForward(nn.Module):
    """The position-wise feed-forward network: expand to ``intermediate_size``, GELU, contract back."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.expand = nn.Linear(config.hidden_size, config.intermediate_size)
        self.contract = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.contract(F.gelu(self.expand(x)))


class EncoderBlock(nn.Module):
    """One post-LN encoder layer, as in BERT: ``x = LN(x + attention(x))``, then ``x = LN(x + FFN(x))``."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(config.hidden_size, config.num_heads, dropout=config.attention_dropout)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` ``(B, L, H)``, boolean ``mask`` (True = may attend) → ``(x (B, L, H), attention weights)``."""
        attended, weights = self.attention(x, mask)
        x = self.attention_norm(x + self.dropout(attended))
        x = self.output_norm(x + self.dropout(self.feed_forward(x)))
        return x, weights


@dataclass
class EncoderOutput:
    """What ``Encoder.forward`` returns; ``hidden_states`` holds the embeddings' output, then each layer's."""

    last_hidden_state: Tensor
    pooler_output: Tensor
    hidden_states: tuple[Tensor, ...]
    attentions: tuple[Tensor, ...]


def _init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std) weights, zero biases, LayerNorm at identity, zero padding embedding."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _check_batch(input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}.")
    if attention_mask is None:
        return torch.ones_like(input_ids)
    if attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                         f"got {tuple(attention_mask.shape)}.")
    return attention_mask


class Encoder(nn.Module):
    """BERT's encoder: embeddings, ``num_layers`` post-LN blocks, and the [CLS] pooler (dense + tanh)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderBlock(config) for _ in range(config.num_layers))
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.apply(lambda module: _init_weights(module, config.initializer_range))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> EncoderOutput:
        """Encode a tokenizer's batch; ``attention_mask`` is 1 for real tokens and 0 for padding."""
        mask = padding_mask(_check_batch(input_ids, attention_mask))
        x = self.embeddings(input_ids, token_type_ids)
        hidden_states, attentions = [x], []
        for layer in self.layers:
            x, weights = layer(x, mask)
            hidden_states.append(x)
            attentions.append(weights)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return EncoderOutput(x, pooled, tuple(hidden_states), tuple(attentions))

    @classmethod
    def from_pretrained_bert(cls, path: str | Path | None = None) -> "Encoder":
        """An encoder holding a BERT checkpoint's weights (default: the course's packaged all-MiniLM-L6-v2).

        ``path`` is a folder with BERT's ``config.json`` and ``model.safetensors``. Every tensor goes
        through ``bert_name_mapping``; a missing, unexpected or mis-shaped tensor raises a ``ValueError``.
        """
        config, bert_state = read_bert_checkpoint(path)
        encoder = cls(config)
        encoder.load_state_dict(bert_state_dict_to_encoder(bert_state, encoder))
        return encoder


def bert_name_mapping(num_layers: int) -> dict[str, str]:
    """BERT's tensor names (as in ``BertModel``'s state dict) → this ``Encoder``'s parameter names."""
    mapping = {
        "embeddings.word_embeddings.weight": "embeddings.token.weight",
        "embeddings.position_embeddings.weight": "embeddings.position.weight",
        "embeddings.token_type_embeddings.weight": "embeddings.segment.weight",
        "embeddings.LayerNorm.weight": "embeddings.norm.weight",
        "embeddings.LayerNorm.bias": "embeddings.norm.bias",
        "pooler.dense.weight": "pooler.weight",
        "pooler.dense.bias": "pooler.bias",
    }
    per_layer = {
        "attention.self.query": "attention.query",
        "attention.self.key": "attention.key",
        "attention.self.value": "attention.value",
        "attention.output.dense": "attention.output",
        "attention.output.LayerNorm": "attention_norm",
        "intermediate.dense": "feed_forward.expand",
        "output.dense": "feed_forward.contract",
        "output.LayerNorm": "output_norm",
    }
    for i in range(num_layers):
        for bert_name, ours in per_layer.items():
            for kind in ("weight", "bias"):
                mapping[f"encoder.layer.{i}.{bert_name}.{kind}"] = f"layers.{i}.{ours}.{kind}"
    return mapping


def bert_state_dict_to_encoder(bert_state: dict[str, Tensor], encoder: Encoder) -> dict[str, Tensor]:
    """Rename a ``BertModel`` state dict for ``encoder``, refusing missing, unexpected or mis-shaped tensors."""
    mapping = bert_name_mapping(encoder.config.num_layers)
    expected = encoder.state_dict()
    unexpected = sorted(set(bert_state) - set(mapping) - BERT_BUFFERS)
    missing = sorted(set(mapping) - set(bert_state))
    if missing or unexpected:
        raise ValueError(
            "The checkpoint does not match a BERT encoder of this config "
            f"({encoder.config.num_layers} layers): "
            + (f"missing tensors {missing[:8]}{' ...' if len(missing) > 8 else ''} ({len(missing)} in all); " if missing else "")
            + (f"unexpected tensors {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''} ({len(unexpected)} in all); "
               if unexpected else "")
            + "expected exactly the tensors of transformers' BertModel (with its pooler).")
    renamed = {}
    for bert_name, ours in mapping.items():
        tensor = bert_state[bert_name]
        if tensor.shape != expected[ours].shape:
            raise ValueError(f"{bert_name} has shape {tuple(tensor.shape)}, but {ours} needs "
                             f"{tuple(expected[ours].shape)}: the checkpoint's config.json does not match its weights.")
        renamed[ours] = tensor
    return renamed


def read_bert_checkpoint(path: str | Path | None = None) -> tuple[EncoderConfig, dict[str, Tensor]]:
    """The config and the tensors (read with safetensors) of a BERT folder; ``None``: the packaged BERT."""
    if path is None:
        from .models import packaged_model_path

        path = packaged_model_path()
    folder = Path(path)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} holds no {name}: expected a BERT folder with {CONFIG_FILE} "
                                    f"and {WEIGHTS_FILE} (e.g. models.packaged_model_path()).")
    config = EncoderConfig.from_bert_config(_read_config(folder))
    return config, load_file(folder / WEIGHTS_FILE)


def _read_config(folder: Path) -> dict:
    """``folder``'s ``config.json`` as a dict, or an error that names the file."""
    try:
        return json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{folder / CONFIG_FILE} is not valid JSON ({err}): the folder is damaged; save or copy "
                         "the model again.") from None


class EncoderForSequenceClassification(nn.Module):
    """The encoder with a classification head: pool (``"cls"``: BERT's pooler; ``"mean"``), dropout, linear.

    ``forward(input_ids, attention_mask=None, token_type_ids=None)`` returns the logits ``(B, num_labels)``.
    With ``pooling="mean"`` the encoder's [CLS] pooler is not used (and gets no gradient).
    """

    def __init__(self, config: EncoderConfig, num_labels: int, pooling: Literal["cls", "mean"] = "cls") -> None:
        super().__init__()
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an integer ≥ 2, got {num_labels!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
        self.config, self.num_labels, self.pooling = config, num_labels, pooling
        self.encoder = Encoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        _init_weights(self.classifier, config.initializer_range)

    def pool(self, output: EncoderOutput, attention_mask: Tensor) -> Tensor:
        """One vector per sequence: the pooler's output, or the mean of the real (unpadded) tokens' states."""
        if self.pooling == "cls":
            return output.pooler_output
        weights = attention_mask.to(output.last_hidden_state.dtype)[:, :, None]
        return (output.last_hidden_state * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        attention_mask = _check_batch(input_ids, attention_mask)
        output = self.encoder(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(self.pool(output, attention_mask)))

    @classmethod
    def from_pretrained_bert(cls, path: str | Path | None = None, num_labels: int = 2,
                             pooling: Literal["cls", "mean"] = "cls") -> "EncoderForSequenceClassification":
        """A classifier whose encoder holds a BERT checkpoint's weights; the head is new (random)."""
        config, bert_state = read_bert_checkpoint(path)
        model = cls(config, num_labels, pooling)
        model.encoder.load_state_dict(bert_state_dict_to_encoder(bert_state, model.encoder))
        return model

    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` (sizes, labels, pooling) and ``model.safetensors`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"encoder": asdict(self.config), "num_labels": self.num_labels, "pooling": self.pooling}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        save_file({name: tensor.detach().contiguous().cpu() for name, tensor in self.state_dict().items()},
                  str(folder / WEIGHTS_FILE))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "EncoderForSequenceClassification":
        """A classifier written by ``save`` (the weights are read with safetensors: no pickle, no code)."""
        folder = Path(folder)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder} holds no {name}: expected a folder written by "
                                        f"EncoderForSequenceClassification.save().")
        saved = _read_config(folder)
        try:
            model = cls(EncoderConfig.from_dict(saved["encoder"]), saved["num_labels"], saved["pooling"])
        except KeyError as err:
            raise ValueError(f"{folder / CONFIG_FILE} lacks {err.args[0]!r}: it was not written by "
                             "EncoderForSequenceClassification.save().") from None
        from .models import readable_weights

        with readable_weights(folder):
            model.load_state_dict(load_file(folder / WEIGHTS_FILE))
        return model
