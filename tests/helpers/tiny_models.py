"""Tiny real models for the model-folder tests: a Llama of hidden 32, 2 layers, built with
transformers on the CPU, and a BPE tokenizer trained with `tokenizers`, saved the way
save_pretrained saves them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]


def tokenizer(folder: Path, vocab: int = 100, added: list[str] | None = None, **special: Any) -> int:
    """A trained BPE tokenizer saved with PreTrainedTokenizerFast; returns its length."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20,
                            trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIALS))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                                eos_token="</s>", pad_token="<pad>", **special)
    if added:
        fast.add_tokens(added)
    fast.save_pretrained(folder)
    return len(fast)


def llama(folder: Path, vocab: int | None = None, hidden: int = 32, layers: int = 2, tie: bool = False,
          with_tokenizer: bool = True, **save: Any) -> Path:
    """A saved LlamaForCausalLM (random weights) with its tokenizer; the vocabulary is the
    tokenizer's length unless `vocab` says otherwise."""
    import torch
    import transformers

    length = tokenizer(folder) if with_tokenizer else 0
    vocab = vocab or length or 64
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
                                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                                      tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    transformers.LlamaForCausalLM(config).save_pretrained(folder, **save)
    return folder


def edit_json(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2))


def rewrite_safetensors(path: Path, drop: tuple[str, ...] = (), **replace: Any) -> None:
    """The file again without the tensors `drop` names (and with `replace`'s tensors)."""
    from safetensors.torch import load_file, save_file

    tensors = {k: v for k, v in load_file(str(path)).items() if k not in drop}
    tensors.update(replace)
    save_file(tensors, str(path), metadata={"format": "pt"})


LOAD = """
import json, sys, warnings
import transformers
transformers.logging.set_verbosity_error()
model, info = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], output_loading_info=True)
tok = transformers.AutoTokenizer.from_pretrained(sys.argv[1])
print(json.dumps({k: sorted(map(str, v)) for k, v in info.items()} | {"tokens": len(tok)}))
"""


def load_in_child(folder: Path, timeout: float = 300) -> dict[str, Any]:
    """What transformers reports loading `folder` in a fresh process (missing/unexpected keys,
    the tokenizer's length); raises CalledProcessError with its stderr when it cannot."""
    done = subprocess.run([sys.executable, "-c", LOAD, str(folder)], capture_output=True, text=True,
                          timeout=timeout, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])
