"""Build a tiny, random-weight Llama and a tiny BPE tokenizer in a folder.

Runs only inside the smoke child process (it imports transformers and torch). Nothing is
downloaded: the tokenizer is trained here on a few sentences and the weights are random,
so the smoke test works offline and on any machine.
"""
from __future__ import annotations

from pathlib import Path

# A ChatML-style template: simple, and every special token it uses exists in the vocabulary.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>"]

# Small corpus the tokenizer is trained on and the smoke dataset is drawn from.
CORPUS = [
    "The sloth climbs the tree slowly and eats green leaves.",
    "A small model learns to repeat short sentences about sloths.",
    "Fine tuning with LoRA changes only a few adapter weights.",
    "The loss should fall when the model sees the same text again.",
    "Gradients must stay finite during every training step.",
    "Merged weights load with plain transformers and no remote code.",
    "Tokens are built from bytes, so every character can be encoded.",
    "Unsloth patches the model and trains it on the available device.",
]


def conversations() -> list[list[dict[str, str]]]:
    """Short user/assistant exchanges for the in-memory training set."""
    out = []
    for i, line in enumerate(CORPUS):
        question = f"Repeat sentence number {i}."
        out.append([{"role": "user", "content": question}, {"role": "assistant", "content": line}])
    return out


def build_tokenizer(folder: Path, vocab_size: int = 384):
    """Train a byte-level BPE tokenizer and save it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = CORPUS + [m["content"] for conv in conversations() for m in conv]
    tok.train_from_iterator(texts * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>", eos_token="<|im_end|>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=256,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "right"
    fast.save_pretrained(str(folder))
    return fast


def build_tiny_llama(folder: Path, tokenizer, hidden: int = 64, layers: int = 2, seed: int = 0):
    """A random-weight LlamaForCausalLM saved as safetensors next to the tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder), safe_serialization=True)
    return config


def build(folder: Path, hidden: int = 64, layers: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(folder)
    build_tiny_llama(folder, tokenizer, hidden=hidden, layers=layers)
    return folder
