"""How a BERT classifier turns token vectors into one sentence vector: [CLS] through BERT's pooler
(``AutoModelForSequenceClassification``'s choice), or the mean over the real tokens.

p = softmax(W h + b), with h either tanh(W_p h_[CLS] + b_p) (the pooler) or the masked mean of the last
layer's token vectors. A checkpoint fine-tuned for sentence embeddings with mean pooling, such as the
course's packaged MiniLM, was never trained to put the sentence into [CLS] or its pooler.

A mean-pooling classifier saves under a model type of its own (``MEAN_POOLING_MODEL_TYPE``), registered with
``AutoConfig`` and ``AutoModelForSequenceClassification`` when this module is imported (``import
textclf_utils`` does it). So ``AutoModelForSequenceClassification.from_pretrained(folder)`` and
``pipeline("text-classification", model=folder)`` rebuild it exactly; in a Python that has not imported
``textclf_utils`` they fail loudly ("does not recognize this architecture"), instead of building a plain BERT
classifier with a new, random pooler.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

POOLINGS = ("cls", "mean")
MEAN_POOLING_MODEL_TYPE = "textclf_mean_pooling_bert"


def mean_pool(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``hidden_states`` (batch, length, hidden) over the positions where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
    return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class MeanPoolingBertConfig(BertConfig):
    """BERT's configuration under the model type of the mean-pooling classifier (same fields, plus
    ``classifier_pooling="mean"``)."""

    model_type = MEAN_POOLING_MODEL_TYPE


class MeanPoolingBertForSequenceClassification(BertForSequenceClassification):
    """``BertForSequenceClassification`` with the pooler replaced by the mean over real tokens.

    It loads any BERT checkpoint (the pooler's weights, if present, are left out), saves with
    ``save_pretrained`` under its own model type (see the module's docstring), and trains with the plain
    loop or ``Trainer`` like the original class.
    """

    config_class = MeanPoolingBertConfig

    def __init__(self, config):
        if not isinstance(config, MeanPoolingBertConfig):  # e.g. a BertConfig: saved as "bert", it would reload wrong
            config = MeanPoolingBertConfig.from_dict(config.to_dict())
        vars(config).pop("model_type", None)  # from_pretrained of a BERT checkpoint copies its "bert" here
        super().__init__(config)
        self.bert.pooler = None
        self.config.classifier_pooling = "mean"

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, **kwargs) -> SequenceClassifierOutput:
        outputs = self.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                            position_ids=position_ids, inputs_embeds=inputs_embeds, return_dict=True, **kwargs)
        if attention_mask is None:
            shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
            attention_mask = torch.ones(shape, device=outputs.last_hidden_state.device)
        pooled = mean_pool(outputs.last_hidden_state, attention_mask)
        logits = self.classifier(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)


AutoConfig.register(MEAN_POOLING_MODEL_TYPE, MeanPoolingBertConfig, exist_ok=True)
AutoModelForSequenceClassification.register(MeanPoolingBertConfig, MeanPoolingBertForSequenceClassification,
                                            exist_ok=True)


def classifier_class(pooling: str):
    """The model class for ``pooling`` ("cls": BERT's pooler over [CLS]; "mean": the mean over tokens)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    return MeanPoolingBertForSequenceClassification if pooling == "mean" else AutoModelForSequenceClassification
