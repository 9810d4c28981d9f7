"""Rebuild the zoo: legitimate model repositories written by the real libraries' own savers.

The zoo tests scan the committed output, so CI never needs these libraries. Rebuilding needs a
separate virtualenv holding them (never the project's shared one), plus, for the
transformers-4-style repositories, a second one with `transformers<5`:

    python3 -m venv /work/zoo-venv && /work/zoo-venv/bin/pip install torch==2.13.0
    /work/zoo-venv/bin/pip install -c tests/zoo/constraints.txt transformers sentencepiece \
        tokenizers diffusers peft accelerate trl datasets sentence-transformers scikit-learn \
        xgboost lightgbm catboost statsmodels pandas gensim fasttext-wheel onnx onnxscript \
        ctranslate2 mlflow-skinny cloudpickle flax orbax-checkpoint hydra-core lightning dvc \
        nbformat gguf tensorflow-cpu keras h5py spacy prophet
    /work/zoo-venv/bin/pip uninstall -y torchvision
    python3 -m venv /work/zoo-venv4 && /work/zoo-venv4/bin/pip install \
        -c tests/zoo/constraints.txt torch==2.13.0 'transformers<5' sentencepiece protobuf \
        accelerate tokenizers
    /work/zoo-venv/bin/python tests/zoo/build.py --python4 /work/zoo-venv4/bin/python

`constraints.txt` pins the local CPU torch, so no dependency swaps in a CUDA build; torchvision
from the index does not work beside that torch (and breaks transformers' imports), which is
why the timm repository is written the way timm writes it instead of by timm. A full rebuild
takes about 90 s. `--only NAME` rebuilds some repositories; the manifest records each
repository's files and the versions of the libraries that wrote them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPOS_DIR = HERE / "repos"
TEMPLATES_DIR = HERE / "templates"
MANIFEST = HERE / "manifest.json"
SEED = 1234


@dataclass(frozen=True)
class Repo:
    name: str
    build: Callable[[Path], None]
    libs: tuple[str, ...]
    python4: bool = False


REPOS: dict[str, Repo] = {}


def repo(name: str, *libs: str, python4: bool = False) -> Callable[..., Callable[[Path], None]]:
    def register(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        REPOS[name] = Repo(name, fn, libs, python4)
        return fn

    return register


def seed_everything() -> None:
    random.seed(SEED)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(SEED)
    with contextlib.suppress(ImportError):
        import torch

        torch.manual_seed(SEED)


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# --- shared inputs ------------------------------------------------------------------------

_WORDS_TEXT = (
    "the model reads a file and writes tensors to disk while the scanner checks every byte "
    "tokens weights layers attention vocabulary merges license permission software copy "
    "train evaluate predict learn data batch epoch loss gradient optimizer schedule warmup"
)
WORDS = _WORDS_TEXT.split()


def corpus_lines(n: int = 400, seed: int = SEED) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 14))) for _ in range(n)]


def write_corpus(path: Path, n: int = 400) -> Path:
    path.write_text("\n".join(corpus_lines(n)) + "\n", encoding="utf-8")
    return path


_SPM_CACHE: dict[str, Path] = {}


def sentencepiece_model(kind: str = "unigram") -> Path:
    """A tiny SentencePiece model trained the way Llama/T5 tokenizers were (byte fallback)."""
    if kind in _SPM_CACHE:
        return _SPM_CACHE[kind]
    import sentencepiece as spm

    work = Path(tempfile.mkdtemp(prefix="zoo-spm-"))
    corpus = write_corpus(work / "corpus.txt")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(work / "spm"),
        vocab_size=400 if kind == "bpe" else 120,
        model_type=kind,
        byte_fallback=kind == "bpe",
        character_coverage=1.0,
        normalization_rule_name="identity" if kind == "bpe" else "nmt_nfkc",
        bos_id=1,
        eos_id=2,
        unk_id=0,
        pad_id=-1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    _SPM_CACHE[kind] = work / "spm.model"
    return _SPM_CACHE[kind]


MIT_LICENSE = """MIT License

Copyright (c) 2024 Zoo Model Authors

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

HF_GITATTRIBUTES = """*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""


def model_card(path: Path, title: str, license_id: str = "mit", library: str = "") -> None:
    front = ["---", f"license: {license_id}"]
    if library:
        front.append(f"library_name: {library}")
    front += ["tags:", "- zoo", "- tiny-random", "---", ""]
    body = (
        f"# {title}\n\nA tiny randomly initialised model written by `{library or 'its library'}`'s "
        "own save function, kept as a regression fixture.\n\n## Usage\n\n```python\n"
        "from transformers import AutoModel\nmodel = AutoModel.from_pretrained('.')\n```\n"
    )
    (path / "README.md").write_text("\n".join(front) + body, encoding="utf-8")


def hf_extras(path: Path, title: str, library: str, license_id: str = "mit") -> None:
    """What a Hub repository holds beside the weights: card, license, .gitattributes."""
    model_card(path, title, license_id, library)
    (path / ".gitattributes").write_text(HF_GITATTRIBUTES, encoding="utf-8")
    if license_id == "mit":
        (path / "LICENSE").write_text(MIT_LICENSE, encoding="utf-8")
    else:
        shutil.copy("/usr/share/common-licenses/Apache-2.0", path / "LICENSE")


def template(name: str) -> str:
    return (TEMPLATES_DIR / f"{name}.jinja").read_text(encoding="utf-8")


# --- transformers ---------------------------------------------------------------------------


def _llama_tokenizer(fast: bool = True):  # type: ignore[no-untyped-def]
    from transformers import LlamaTokenizer, LlamaTokenizerFast

    cls = LlamaTokenizerFast if fast else LlamaTokenizer
    tok = cls(vocab_file=str(sentencepiece_model("bpe")), legacy=False)
    tok.chat_template = template("meta-llama-Llama-3.2-3B-Instruct")
    return tok


@repo("transformers4-llama-sentencepiece", "transformers", "torch", "sentencepiece", python4=True)
def transformers4_llama(out: Path) -> None:
    """transformers 4: pytorch_model.bin (safe_serialization=False) and tokenizer.model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=120,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=False)
    _llama_tokenizer(fast=False).save_pretrained(out)
    hf_extras(out, "tiny-random-llama (transformers 4)", "transformers", "apache-2.0")


@repo("transformers4-t5-spiece", "transformers", "torch", "sentencepiece", python4=True)
def transformers4_t5(out: Path) -> None:
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    config = T5Config(
        vocab_size=120,
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        decoder_start_token_id=0,
    )
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(out, safe_serialization=False)
    model.save_pretrained(out, safe_serialization=True)
    T5Tokenizer(vocab_file=str(sentencepiece_model("unigram")), extra_ids=4).save_pretrained(out)
    hf_extras(out, "tiny-random-t5 (transformers 4)", "transformers", "apache-2.0")


@repo("transformers-mistral-safetensors", "transformers", "torch", "sentencepiece", "tokenizers")
def transformers_mistral(out: Path) -> None:
    from transformers import LlamaTokenizerFast, MistralConfig, MistralForCausalLM

    config = MistralConfig(
        vocab_size=120,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        sliding_window=32,
    )
    MistralForCausalLM(config).save_pretrained(out)
    spm_dir = Path(tempfile.mkdtemp(prefix="zoo-mistral-"))
    shutil.copy(sentencepiece_model("bpe"), spm_dir / "tokenizer.model")
    tok = LlamaTokenizerFast.from_pretrained(spm_dir)  # converted to tokenizer.json
    tok.chat_template = template("mistralai-Mistral-Nemo-Instruct-2407")
    tok.save_pretrained(out)
    shutil.copy(spm_dir / "tokenizer.model", out / "tokenizer.model")  # as Mistral repos ship it
    hf_extras(out, "tiny-random-mistral", "transformers", "apache-2.0")


def _bpe_tokenizer(out: Path):  # type: ignore[no-untyped-def]
    """A byte-level BPE tokenizer trained by `tokenizers` (which also writes vocab.json and
    merges.txt into `out`), wrapped by transformers."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus_lines(),
        vocab_size=300,
        min_frequency=1,
        show_progress=False,
        special_tokens=["<|endoftext|>"],
    )
    bpe.save_model(str(out))
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )


@repo("transformers-gpt2-bpe", "transformers", "torch", "tokenizers")
def transformers_gpt2(out: Path) -> None:
    """transformers 5: model.safetensors, generation_config.json, tokenizer.json/vocab/merges."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _bpe_tokenizer(out)
    config = GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(out)
    tok.chat_template = template("HuggingFaceTB-SmolLM3-3B")
    tok.save_pretrained(out)
    hf_extras(out, "tiny-random-gpt2", "transformers")


@repo("transformers-bert-sharded", "transformers", "torch", "tokenizers")
def transformers_bert_sharded(out: Path) -> None:
    """A sharded safetensors checkpoint with its index, plus a WordPiece vocab.txt."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    work = Path(tempfile.mkdtemp(prefix="zoo-wp-"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    (work / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(work / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertForMaskedLM(config).save_pretrained(out, max_shard_size="20KB")
    tok.save_pretrained(out)
    hf_extras(out, "tiny-random-bert (sharded)", "transformers", "apache-2.0")


# --- diffusers, peft, sentence-transformers, timm --------------------------------------------


@repo("diffusers-ddpm", "diffusers", "torch")
def diffusers_ddpm(out: Path) -> None:
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=10)).save_pretrained(out)
    hf_extras(out, "tiny-random-ddpm", "diffusers", "apache-2.0")


@repo("peft-lora-adapter", "peft", "transformers", "torch")
def peft_lora(out: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    base = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2))
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["c_attn"], lora_alpha=4))
    model.save_pretrained(out)
    hf_extras(out, "tiny-lora-adapter", "peft", "apache-2.0")


# --- training runs: what Trainer, accelerate and trl leave behind -----------------------------


def _tiny_gpt2(vocab_size: int):  # type: ignore[no-untyped-def]
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(
        GPT2Config(vocab_size=vocab_size, n_embd=16, n_layer=1, n_head=2, n_positions=32)
    )


def _tiny_bert_classifier(vocab_size: int):  # type: ignore[no-untyped-def]
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def _training_tokenizer():  # type: ignore[no-untyped-def]
    tok = _bpe_tokenizer(Path(tempfile.mkdtemp(prefix="zoo-bpe-")))
    tok.pad_token = tok.eos_token
    return tok


#: TrainingArguments every Trainer run of the zoo shares: a few steps, a checkpoint per step.
_TRAINER_ARGS: dict[str, object] = {
    "max_steps": 2,
    "save_steps": 1,
    "eval_strategy": "steps",
    "eval_steps": 1,
    "logging_steps": 1,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 4,
    "report_to": "none",
    "use_cpu": True,
    "seed": SEED,
}


def _trainer_run(
    out: Path,
    name: str,
    model: Any,
    examples: list[dict[str, object]],
    collator: Any,
    extra: dict[str, object],
    tok: Any,
) -> None:
    """One `Trainer.train()` into `out/name`, then what a script saves at the end."""
    from transformers import Trainer, TrainingArguments

    model.config.pad_token_id = tok.pad_token_id
    args = TrainingArguments(output_dir=str(out / name), **_TRAINER_ARGS, **extra)  # type: ignore[arg-type]
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=examples[:16],
        eval_dataset=examples[16:],
        processing_class=tok,
        data_collator=collator,
    )
    result = trainer.train()
    trainer.save_model()
    trainer.save_metrics("train", result.metrics)
    trainer.save_metrics("eval", trainer.evaluate())
    trainer.save_state()
    trainer.create_model_card(model_name=f"tiny-{name}", license="mit")


def _lm_examples(tok: Any) -> list[dict[str, object]]:
    return [dict(tok(line, truncation=True, max_length=16)) for line in corpus_lines(24)]


@repo("transformers-trainer-checkpoints", "transformers", "accelerate", "torch", "numpy")
def transformers_trainer(out: Path) -> None:
    """Two real `Trainer` runs on CPU, as their output_dir is shared: `checkpoint-N/` folders
    (training_args.bin = a pickled TrainingArguments, optimizer.pt, scheduler.pt, rng_state.pth
    with numpy/python/torch RNG state, trainer_state.json beside the weights), then what
    save_model/save_metrics/save_state/create_model_card write at the end. The runs differ in
    what gets pickled: AdamW + cosine schedule with an LM collator, Adafactor + the
    ReduceLROnPlateau scheduler (its whole state, not a lambda) on a classifier in bf16."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding

    tok = _training_tokenizer()
    _trainer_run(
        out,
        "gpt2-clm",
        _tiny_gpt2(len(tok)),
        _lm_examples(tok),
        DataCollatorForLanguageModeling(tok, mlm=False),
        {"lr_scheduler_type": "cosine", "warmup_steps": 1, "weight_decay": 0.01},
        tok,
    )
    _trainer_run(
        out,
        "bert-classifier-adafactor",
        _tiny_bert_classifier(len(tok)),
        [{**ex, "labels": i % 2} for i, ex in enumerate(_lm_examples(tok))],
        DataCollatorWithPadding(tok),
        {
            "optim": "adafactor",
            "lr_scheduler_type": "reduce_lr_on_plateau",
            "bf16": True,
            "load_best_model_at_end": True,
            "metric_for_best_model": "loss",
        },
        tok,
    )
    (out / "LICENSE").write_text(MIT_LICENSE, encoding="utf-8")


@repo("transformers4-trainer-bin", "transformers", "accelerate", "torch", "numpy", python4=True)
def transformers4_trainer(out: Path) -> None:
    """transformers 4's Trainer with `save_safetensors=False`, as older fine-tuning scripts
    ran it: checkpoint-N/pytorch_model.bin beside a transformers-4 training_args.bin."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import DataCollatorForLanguageModeling

    tok = _training_tokenizer()
    _trainer_run(
        out,
        "gpt2-clm",
        _tiny_gpt2(len(tok)),
        _lm_examples(tok),
        DataCollatorForLanguageModeling(tok, mlm=False),
        {"save_safetensors": False, "lr_scheduler_type": "linear", "warmup_ratio": 0.5},
        tok,
    )
    (out / "LICENSE").write_text(MIT_LICENSE, encoding="utf-8")


class _StepTracker:
    """A user object registered with `Accelerator.register_for_checkpointing` (its state_dict
    is what lands in custom_checkpoint_0.pkl)."""

    def __init__(self) -> None:
        self.step = 0
        self.best_loss = float("inf")

    def state_dict(self) -> dict[str, object]:
        return {"step": self.step, "best_loss": self.best_loss}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.step = int(state["step"])  # type: ignore[call-overload]
        self.best_loss = float(state["best_loss"])  # type: ignore[arg-type]


@repo("accelerate-save-state", "accelerate", "transformers", "torch", "numpy")
def accelerate_save_state(out: Path) -> None:
    """A plain accelerate loop with automatic checkpoint naming: `Accelerator.save_state()`
    writes checkpoints/checkpoint_N/ (model.safetensors or pytorch_model.bin, optimizer.bin,
    scheduler.bin, random_states_0.pkl, custom_checkpoint_0.pkl), then `save_model` the
    final weights, as a user shares the project directory."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from transformers import get_linear_schedule_with_warmup

    set_seed(SEED)
    accelerator = Accelerator(
        cpu=True,
        project_config=ProjectConfiguration(
            project_dir=str(out), automatic_checkpoint_naming=True, total_limit=3
        ),
    )
    model = _tiny_bert_classifier(64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = get_linear_schedule_with_warmup(optimizer, 1, 4)
    generator = torch.Generator().manual_seed(SEED)
    data = torch.utils.data.TensorDataset(
        torch.randint(0, 64, (8, 8), generator=generator),
        torch.randint(0, 2, (8,), generator=generator),
    )
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True)
    tracker = _StepTracker()
    accelerator.register_for_checkpointing(tracker)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    for epoch in range(2):
        for ids, labels in loader:
            loss = model(input_ids=ids, labels=labels).loss
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            tracker.step += 1
            tracker.best_loss = min(tracker.best_loss, float(loss))
        accelerator.save_state(safe_serialization=epoch == 0)
    accelerator.save_model(model, out / "final")
    (out / "LICENSE").write_text(MIT_LICENSE, encoding="utf-8")


@repo("diffusers-training-bin", "diffusers", "accelerate", "torch")
def diffusers_training(out: Path) -> None:
    """A diffusers training run as the example scripts do it: accelerate save hooks write
    unet/ and unet_ema/ (EMAModel) beside optimizer.bin/scheduler.bin/random_states_0.pkl, and
    the final pipeline is saved with `safe_serialization=False` (.bin weights)."""
    import torch
    from accelerate import Accelerator
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    accelerator = Accelerator(cpu=True)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(4, 8),
        norm_num_groups=2,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    ema = EMAModel(unet.parameters(), model_cls=UNet2DModel, model_config=unet.config)
    noise_scheduler = DDPMScheduler(num_train_timesteps=10)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    lr_scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=1, num_training_steps=2)

    def save_model_hook(models: list[object], weights: list[object], output_dir: str) -> None:
        ema.save_pretrained(os.path.join(output_dir, "unet_ema"))
        for model in models:
            model.save_pretrained(os.path.join(output_dir, "unet"))  # type: ignore[attr-defined]
            weights.pop()

    accelerator.register_save_state_pre_hook(save_model_hook)
    unet, optimizer, lr_scheduler = accelerator.prepare(unet, optimizer, lr_scheduler)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(2):
        clean = torch.randn(2, 1, 8, 8, generator=generator)
        noise = torch.randn(clean.shape, generator=generator)
        steps = torch.randint(0, 10, (2,), generator=generator)
        pred = unet(noise_scheduler.add_noise(clean, noise, steps), steps).sample
        accelerator.backward(torch.nn.functional.mse_loss(pred, noise))
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        ema.step(unet.parameters())
    accelerator.save_state(str(out / "checkpoint-2"))
    ema.copy_to(unet.parameters())
    pipeline = DDPMPipeline(unet=accelerator.unwrap_model(unet), scheduler=noise_scheduler)
    pipeline.save_pretrained(out, safe_serialization=False)
    hf_extras(out, "tiny-ddpm (trained, .bin weights)", "diffusers", "apache-2.0")


@repo("trl-sft-lora-checkpoint", "trl", "peft", "transformers", "datasets", "torch")
def trl_sft_lora(out: Path) -> None:
    """trl's SFTTrainer fine-tuning a LoRA adapter: checkpoint-N/ holds the adapter
    (adapter_model.safetensors, adapter_config.json, peft's README.md), the tokenizer and a
    pickled SFTConfig (training_args.bin) beside the optimizer/scheduler/RNG state."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    tok = _training_tokenizer()
    config = SFTConfig(
        output_dir=str(out),
        max_steps=2,
        save_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        max_length=16,
        report_to="none",
        use_cpu=True,
        seed=SEED,
    )
    trainer = SFTTrainer(
        model=_tiny_gpt2(len(tok)),
        args=config,
        train_dataset=Dataset.from_dict({"text": corpus_lines(16)}),
        processing_class=tok,
        peft_config=LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], task_type="CAUSAL_LM"),
    )
    trainer.train()
    trainer.save_model()
    (out / "LICENSE").write_text(MIT_LICENSE, encoding="utf-8")


@repo("sentence-transformers-mini", "sentence-transformers", "transformers", "torch")
def sentence_transformers_mini(out: Path) -> None:
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    work = Path(tempfile.mkdtemp(prefix="zoo-st-"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    (work / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(work / "vocab.txt")).save_pretrained(work / "bert")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(work / "bert")
    word = models.Transformer(str(work / "bert"), max_seq_length=32)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    dense = models.Dense(16, 8)
    SentenceTransformer(modules=[word, pooling, dense, models.Normalize()]).save(str(out))
    hf_extras(out, "tiny-sentence-transformer", "sentence-transformers", "apache-2.0")


@repo("timm-checkpoints", "torch")
def timm_checkpoints(out: Path) -> None:
    """What timm writes, reproduced with torch alone (timm cannot import beside this torch).

    `timm.models.push_to_hub` writes config.json + model.safetensors + pytorch_model.bin (a
    plain state dict); `timm.utils.CheckpointSaver` writes checkpoint-N.pth.tar / model_best
    dicts with epoch, arch, state_dict, optimizer, version and the argparse Namespace of
    train.py's arguments.
    """
    import argparse

    import torch
    from safetensors.torch import save_file

    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
    )
    state = model.state_dict()
    hub = out / "hub"
    hub.mkdir()
    save_file({k: v.contiguous() for k, v in state.items()}, hub / "model.safetensors")
    torch.save(state, hub / "pytorch_model.bin")
    (hub / "config.json").write_text(
        json.dumps(
            {
                "architecture": "resnet_tiny",
                "num_classes": 3,
                "num_features": 4,
                "global_pool": "avg",
                "pretrained_cfg": {
                    "tag": "zoo",
                    "input_size": [3, 8, 8],
                    "interpolation": "bicubic",
                    "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225],
                    "num_classes": 3,
                    "classifier": "5",
                },
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    args = argparse.Namespace(model="resnet_tiny", lr=0.1, epochs=2, batch_size=4, amp=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.zeros(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    train = out / "output" / "train" / "20240101-000000-resnet_tiny-8"
    train.mkdir(parents=True)
    for epoch in (0, 1):
        ckpt = {
            "epoch": epoch,
            "arch": "resnet_tiny",
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "version": 2,
            "args": args,
            "metric": 12.5 + epoch,
        }
        torch.save(ckpt, train / f"checkpoint-{epoch}.pth.tar")
    shutil.copy(train / "checkpoint-1.pth.tar", train / "model_best.pth.tar")
    shutil.copy(train / "checkpoint-1.pth.tar", train / "last.pth.tar")
    (train / "args.yaml").write_text(
        "amp: false\nbatch_size: 4\nepochs: 2\nlr: 0.1\nmodel: resnet_tiny\n", encoding="utf-8"
    )
    (train / "summary.csv").write_text(
        "epoch,train_loss,eval_loss,eval_top1\n0,1.1,1.0,12.5\n1,1.0,0.9,13.5\n", encoding="utf-8"
    )
    model_card(out, "tiny timm-style checkpoints", "apache-2.0", "timm")


# --- classical ML ------------------------------------------------------------------------------


def _tabular():  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(60, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return x, y


@repo("sklearn-joblib-pickle", "scikit-learn", "joblib", "numpy")
def sklearn_models(out: Path) -> None:
    import pickle

    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _tabular()
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y)
    joblib.dump(pipe, out / "pipeline.joblib")
    joblib.dump(forest, out / "forest.joblib", compress=3)
    with open(out / "model.pkl", "wb") as f:
        pickle.dump(forest, f, protocol=pickle.HIGHEST_PROTOCOL)
    model_card(out, "tiny sklearn models", "mit", "sklearn")


@repo("xgboost-lightgbm-catboost", "xgboost", "lightgbm", "catboost", "numpy")
def boosting_models(out: Path) -> None:
    import catboost
    import lightgbm
    import xgboost

    x, y = _tabular()
    xgb = xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(x, y)
    xgb.save_model(out / "xgb_model.json")
    xgb.save_model(out / "xgb_model.ubj")
    lgb = lightgbm.LGBMClassifier(n_estimators=3, num_leaves=4, min_child_samples=2, verbose=-1)
    lgb.fit(x, y)
    lgb.booster_.save_model(str(out / "lgbm_model.txt"))
    cat = catboost.CatBoostClassifier(iterations=3, depth=2, verbose=False, train_dir=None)
    cat.fit(x, y)
    cat.save_model(str(out / "catboost_model.cbm"))
    cat.save_model(str(out / "catboost_model.json"), format="json")
    cat.save_model(str(out / "catboost_model.onnx"), format="onnx")
    model_card(out, "tiny gradient-boosting models", "mit", "xgboost")


@repo("statsmodels-results", "statsmodels", "numpy")
def statsmodels_results(out: Path) -> None:
    import numpy as np
    import statsmodels.api as sm

    x, _ = _tabular()
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1
    results = sm.OLS(y, sm.add_constant(x)).fit()
    results.save(str(out / "ols_results.pickle"), remove_data=True)


@repo("prophet-forecaster", "prophet", "pandas", "numpy", "cmdstanpy")
def prophet_forecaster(out: Path) -> None:
    """Prophet's own serialisation, the one its documentation prescribes (and MLflow's prophet
    flavor writes): JSON. Its docs advise against pickling a model; a pickled one names
    cmdstanpy classes whose constructor compiles Stan and C++ code, so it is not quiet."""
    import pandas as pd
    from prophet import Prophet
    from prophet.serialize import model_to_json

    days = pd.date_range("2024-01-01", periods=60, freq="D")
    frame = pd.DataFrame({"ds": days, "y": [float(i % 7) + 0.1 * i for i in range(60)]})
    model = Prophet(uncertainty_samples=0).fit(frame)
    (out / "serialized_model.json").write_text(model_to_json(model), encoding="utf-8")


@repo("statsmodels-statespace", "statsmodels", "pandas", "numpy")
def statsmodels_statespace(out: Path) -> None:
    """Fitted state-space results (`results.save`): their pickles keep statsmodels' Cython
    classes per BLAS prefix (`sStatespace`, `dKalmanFilter`, ...) in `prefix_*_map` dicts."""
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.arima.model import ARIMA

    rng = np.random.default_rng(SEED)
    index = pd.date_range("2020-01-01", periods=24, freq="MS")
    series = pd.Series(np.sin(np.arange(24) / 3) + rng.normal(size=24) * 0.1, index=index)
    # remove_data=True drops the model and with it the class maps
    ARIMA(series, order=(1, 0, 0)).fit().save(str(out / "arima_results.pickle"))


@repo("pmdarima-auto-arima", "pmdarima", "statsmodels", "joblib", "numpy")
def pmdarima_auto_arima(out: Path) -> None:
    """pmdarima's documented persistence: pickle or joblib of the fitted ARIMA."""
    import pickle

    import joblib
    import numpy as np
    import pmdarima

    rng = np.random.default_rng(SEED)
    y = np.sin(np.arange(40) / 3) + rng.normal(size=40) * 0.1
    model = pmdarima.auto_arima(
        y, seasonal=False, start_p=0, start_q=0, max_p=1, max_q=1, suppress_warnings=True
    )
    with open(out / "arima.pkl", "wb") as f:
        pickle.dump(model, f)
    joblib.dump(model, out / "arima.joblib")


@repo("nltk-data-punkt", "nltk")
def nltk_data_punkt(out: Path) -> None:
    """An nltk_data tree as the downloader lays it out: the legacy `tokenizers/punkt` pickle
    (a PunktSentenceTokenizer, what `nltk.data.load('tokenizers/punkt/english.pickle')` read
    before 3.8.2) and the `punkt_tab` text files that replaced it, both from one trainer."""
    import pickle

    import nltk
    from nltk.tokenize import punkt

    nltk.data.path.insert(0, str(out))
    text = " ".join(corpus_lines(200)) + " Dr. Smith met Mr. Brown at 5 p.m. today. It rained."
    trainer = punkt.PunktTrainer()
    trainer.train(text * 3, finalize=True)
    tokenizer = punkt.PunktSentenceTokenizer(trainer.get_params())
    for sub in ("tokenizers/punkt", "tokenizers/punkt/PY3"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        with open(out / sub / "english.pickle", "wb") as f:
            pickle.dump(tokenizer, f, protocol=2 if sub.endswith("punkt") else 4)
    tab = out / "tokenizers" / "punkt_tab" / "english"
    tab.mkdir(parents=True)
    punkt.save_punkt_params(tokenizer._params, dir=str(tab))


@repo("sb3-rl-zoo", "stable-baselines3", "gymnasium", "torch", "numpy")
def sb3_rl_zoo(out: Path) -> None:
    """What the RL Zoo pushes for a normalised agent: the model zip and `vec_normalize.pkl`
    (VecNormalize.save pickles the wrapper without its env: gymnasium spaces and running
    statistics), plus its config.yml."""
    from collections import OrderedDict

    import gymnasium as gym
    import yaml
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    env = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    model = PPO(
        "MlpPolicy",
        env,
        seed=SEED,
        n_steps=32,
        batch_size=16,
        n_epochs=1,
        policy_kwargs={"net_arch": [8]},
    )
    model.learn(32)
    model.save(out / "ppo-CartPole-v1")
    env.save(str(out / "vec_normalize.pkl"))
    # rl_zoo3's ExperimentManager writes these with yaml.dump of OrderedDicts
    hyperparams: dict[str, object] = {"batch_size": 16, "n_envs": 1, "n_steps": 32}
    hyperparams |= {"normalize": True, "policy": "MlpPolicy", "policy_kwargs": "dict(net_arch=[8])"}
    with open(out / "config.yml", "w", encoding="utf-8") as f:
        yaml.dump(OrderedDict(sorted(hyperparams.items())), f)
    with open(out / "args.yml", "w", encoding="utf-8") as f:
        args = {"algo": "ppo", "env": "CartPole-v1", "n_timesteps": 32, "seed": SEED}
        yaml.dump(OrderedDict(sorted(args.items())), f)
    with open(out / "env_kwargs.yml", "w", encoding="utf-8") as f:
        yaml.dump({}, f)


@repo("setfit-torch-head", "setfit", "sentence-transformers", "transformers", "torch")
def setfit_torch_head(out: Path) -> None:
    """A SetFit model with a differentiable head: save_pretrained joblib-dumps the SetFitHead
    module into model_head.pkl beside the sentence-transformers body."""
    from sentence_transformers import SentenceTransformer, models
    from setfit import SetFitHead, SetFitModel
    from transformers import BertConfig, BertModel, BertTokenizerFast

    work = Path(tempfile.mkdtemp(prefix="zoo-setfit-"))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    (work / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(work / "vocab.txt")).save_pretrained(work / "bert")
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    BertModel(config).save_pretrained(work / "bert")
    word = models.Transformer(str(work / "bert"), max_seq_length=32)
    body = SentenceTransformer(modules=[word, models.Pooling(16)])
    head = SetFitHead(in_features=16, out_features=2)
    SetFitModel(model_body=body, model_head=head, labels=["neg", "pos"]).save_pretrained(str(out))


TRITON_ONNX_CONFIG = """name: "classifier"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "input__0"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
output [
  {
    name: "output__0"
    data_type: TYPE_FP32
    dims: [ 2 ]
    label_filename: "labels.txt"
  }
]
instance_group [ { kind: KIND_CPU count: 1 } ]
dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
"""


@repo("triton-model-repository", "torch", "onnx")
def triton_model_repository(out: Path) -> None:
    """A Triton Inference Server model repository: `<model>/config.pbtxt` (text protobuf with
    message lists) and `<model>/1/model.onnx`, `<model>/1/model.pt` (TorchScript)."""
    import torch

    linear = torch.nn.Linear(4, 2).eval()
    (out / "classifier" / "1").mkdir(parents=True)
    torch.onnx.export(
        linear,
        (torch.randn(1, 4),),
        str(out / "classifier" / "1" / "model.onnx"),
        input_names=["input__0"],
        output_names=["output__0"],
        dynamo=False,
    )
    (out / "classifier" / "config.pbtxt").write_text(TRITON_ONNX_CONFIG, encoding="utf-8")
    (out / "classifier" / "labels.txt").write_text("neg\npos\n", encoding="utf-8")
    (out / "classifier_pt" / "1").mkdir(parents=True)
    torch.jit.trace(linear, torch.randn(1, 4)).save(str(out / "classifier_pt" / "1" / "model.pt"))
    (out / "classifier_pt" / "config.pbtxt").write_text(
        'name: "classifier_pt"\nbackend: "pytorch"\nmax_batch_size: 4\n'
        'input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]\n'
        'output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 2 ] } ]\n',
        encoding="utf-8",
    )


@repo("torchao-quantized", "torchao", "torch")
def torchao_quantized(out: Path) -> None:
    """torch.save of state dicts quantize_() made (what torchao-quantized Hub repos ship as
    pytorch_model.bin): torchao tensor subclasses rebuilt by _rebuild_wrapper_subclass, with
    their granularity, kernel-preference and mapping enums."""
    import torch
    import torchao.quantization as tq

    configs = {
        "int8_weight_only.pt": tq.Int8WeightOnlyConfig(),
        "int8_dynamic.pt": tq.Int8DynamicActivationInt8WeightConfig(),
        "intx_weight_only.pt": tq.IntxWeightOnlyConfig(weight_dtype=torch.int4),  # type: ignore[attr-defined]
        "float8_weight_only.pt": tq.Float8WeightOnlyConfig(),
    }
    for name, config in configs.items():
        model = torch.nn.Sequential(torch.nn.Linear(64, 32)).to(torch.bfloat16)
        tq.quantize_(model, config)
        torch.save(model.state_dict(), out / name)


_DEEPSPEED_RUN = """
import os, sys, torch
import deepspeed
out, stage = sys.argv[1], int(sys.argv[2])
torch.manual_seed(1234)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
config = {
    "train_batch_size": 4,
    "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}},
    "scheduler": {"type": "WarmupLR", "params": {"warmup_num_steps": 2}},
    "zero_optimization": {"stage": stage},
    "bf16": {"enabled": stage == 1},
}
deepspeed.init_distributed(dist_backend="gloo")
engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
for _ in range(2):
    x = torch.randn(4, 8).to(torch.bfloat16 if stage == 1 else torch.float32)
    engine.backward(engine(x).float().sum())
    engine.step()
engine.save_checkpoint(out, tag="global_step2", client_state={"epoch": 1})
"""


@repo("deepspeed-zero-checkpoint", "deepspeed", "torch")
def deepspeed_zero_checkpoint(out: Path) -> None:
    """engine.save_checkpoint of ZeRO stages 1 (bf16), 2 and 3 on DeepSpeed's CPU accelerator
    (gloo, one rank): global_step2/*model_states.pt and *optim_states.pt (loss scaler, stage
    enum, fragment addresses), `latest`, and the zero_to_fp32.py it copies beside them."""
    env = {
        **os.environ,
        "DS_ACCELERATOR": "cpu",
        "MASTER_ADDR": "127.0.0.1",
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
    }
    for stage in (1, 2, 3):
        subprocess.run(
            [sys.executable, "-c", _DEEPSPEED_RUN, str(out / f"zero{stage}"), str(stage)],
            env={**env, "MASTER_PORT": str(29600 + stage)},
            check=True,
            capture_output=True,
        )
        if stage != 1:  # the same scripts in every folder: one copy is enough
            for script in ("zero_to_fp32.py", "zero_to_torch.py"):
                (out / f"zero{stage}" / script).unlink(missing_ok=True)


# --- Keras / TensorFlow --------------------------------------------------------------------------


def _keras_model():  # type: ignore[no-untyped-def]
    import keras

    keras.utils.set_random_seed(SEED)
    inputs = keras.Input(shape=(4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.1)(hidden)
    outputs = keras.layers.Dense(2, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs, name="tiny")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = _tabular()
    model.fit(x, y, epochs=1, verbose=0)
    return model


@repo("keras3-and-legacy-h5", "keras", "tensorflow", "h5py")
def keras_models(out: Path) -> None:
    model = _keras_model()
    model.save(out / "model.keras")
    model.save(out / "model.h5")
    model.save_weights(out / "model.weights.h5")
    model_card(out, "tiny keras model", "apache-2.0", "keras")


@repo("tensorflow-savedmodel-tflite", "tensorflow", "keras")
def tensorflow_models(out: Path) -> None:
    import tensorflow as tf

    model = _keras_model()
    model.export(str(out / "saved_model"))
    converter = tf.lite.TFLiteConverter.from_saved_model(str(out / "saved_model"))
    (out / "model.tflite").write_bytes(converter.convert())
    converter = tf.lite.TFLiteConverter.from_saved_model(str(out / "saved_model"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    (out / "model_quant.tflite").write_bytes(converter.convert())


# --- ONNX, GGUF, CTranslate2 -----------------------------------------------------------------------


@repo("onnx-exports", "torch", "onnx", "onnxscript")
def onnx_exports(out: Path) -> None:
    import onnx
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.zeros(1, 4)
    torch.onnx.export(model, (x,), str(out / "model.onnx"), dynamo=False, input_names=["x"])
    torch.onnx.export(model, (x,), str(out / "model_dynamo.onnx"), dynamo=True)
    for leftover in out.glob("model_dynamo.onnx.data"):
        leftover.unlink()
    proto = onnx.load(str(out / "model.onnx"))
    ext = out / "external"
    ext.mkdir()
    onnx.save_model(
        proto,
        str(ext / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx_data",
        size_threshold=0,
    )
    onnx.checker.check_model(str(ext / "model.onnx"))


GGUF_TEMPLATES = (
    "Reka-Edge",
    "meta-llama-Llama-3.2-3B-Instruct",
    "mistralai-Mistral-Nemo-Instruct-2407",
    "Qwen3-Coder",
    "openai-gpt-oss-120b",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
    "google-gemma-4-31B-it",
    "NousResearch-Hermes-3-Llama-3.1-8B-tool_use",
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use",
    "microsoft-Phi-3.5-mini-instruct",
)


def _write_gguf(path: Path, chat_template: str, name: str) -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_block_count(1)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    tokens = ["<unk>", "<s>", "</s>", *sorted(set(WORDS))]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types([2, 3, 3] + [1] * (len(tokens) - 3))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(chat_template)
    rng = np.random.default_rng(SEED)
    writer.add_tensor("token_embd.weight", rng.normal(size=(len(tokens), 8)).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@repo("gguf-chat-templates", "gguf", "numpy")
def gguf_models(out: Path) -> None:
    """One tiny GGUF per real llama.cpp chat template named in GGUF_TEMPLATES."""
    for name in GGUF_TEMPLATES:
        _write_gguf(out / f"{name}.gguf", template(name), name)
    model_card(out, "tiny GGUF files with llama.cpp's chat templates", "mit", "gguf")


@repo("llamacpp-jinja-templates")
def llamacpp_templates(out: Path) -> None:
    """Every chat template llama.cpp keeps under models/templates, as chat_template.jinja files."""
    for src in sorted(TEMPLATES_DIR.glob("*.jinja")):
        folder = out / src.stem
        folder.mkdir()
        shutil.copy(src, folder / "chat_template.jinja")


@repo("ctranslate2-conversion", "ctranslate2", "transformers", "torch")
def ctranslate2_conversion(out: Path) -> None:
    import ctranslate2
    from transformers import GPT2Config, GPT2LMHeadModel

    work = Path(tempfile.mkdtemp(prefix="zoo-ct2-"))
    tok = _bpe_tokenizer(work)
    config = GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=64)
    GPT2LMHeadModel(config).save_pretrained(work / "hf", safe_serialization=False)
    tok.save_pretrained(work / "hf")
    converter = ctranslate2.converters.TransformersConverter(str(work / "hf"))
    converter.convert(str(out / "ct2"), quantization="int8", force=True)
    model_card(out, "tiny CTranslate2 conversion", "mit", "ctranslate2")


# --- text models: sentencepiece, fastText, gensim, spaCy --------------------------------------


@repo("sentencepiece-training", "sentencepiece")
def sentencepiece_training(out: Path) -> None:
    import sentencepiece as spm

    corpus = write_corpus(Path(tempfile.mkdtemp(prefix="zoo-spm2-")) / "corpus.txt")
    for kind in ("unigram", "bpe", "char", "word"):
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(out / f"{kind}"),
            vocab_size=60 if kind != "char" else 30,
            model_type=kind,
            normalization_rule_name="nmt_nfkc" if kind == "unigram" else "identity",
            minloglevel=2,
            hard_vocab_limit=False,
        )
    shutil.copy(out / "bpe.model", out / "tokenizer.model")


@repo("fasttext-training", "fasttext-wheel")
def fasttext_training(out: Path) -> None:
    import fasttext

    work = Path(tempfile.mkdtemp(prefix="zoo-ft-"))
    corpus = write_corpus(work / "corpus.txt")
    model = fasttext.train_unsupervised(
        str(corpus), model="skipgram", dim=4, epoch=1, minCount=1, bucket=200, thread=1
    )
    model.save_model(str(out / "cc.zoo.4.bin"))
    with open(out / "cc.zoo.4.vec", "w", encoding="utf-8") as f:
        words = model.get_words()
        f.write(f"{len(words)} {model.get_dimension()}\n")
        for w in words:
            f.write(w + " " + " ".join(f"{v:.4f}" for v in model.get_word_vector(w)) + "\n")
    rng = random.Random(SEED)
    labelled = work / "labelled.txt"
    labelled.write_text(
        "\n".join(f"__label__{rng.choice(['a', 'b'])} {line}" for line in corpus_lines()) + "\n",
        encoding="utf-8",
    )
    sup = fasttext.train_supervised(
        str(labelled), dim=4, epoch=1, minCount=1, bucket=300, thread=1, wordNgrams=2
    )
    sup.save_model(str(out / "classifier.bin"))
    sup.quantize(input=str(labelled), qnorm=True, retrain=False, dsub=2)
    sup.save_model(str(out / "classifier.ftz"))


@repo("gensim-saves", "gensim", "numpy")
def gensim_saves(out: Path) -> None:
    from gensim.corpora import Dictionary
    from gensim.models import Doc2Vec, FastText, Word2Vec
    from gensim.models.doc2vec import TaggedDocument

    sentences = [line.split() for line in corpus_lines(200)]
    w2v = Word2Vec(sentences, vector_size=4, min_count=1, window=2, epochs=1, seed=1, workers=1)
    w2v.save(str(out / "word2vec.model"))
    sidecars = out / "large"
    sidecars.mkdir()
    w2v.save(str(sidecars / "word2vec.model"), sep_limit=0)  # big models: .npy sidecars
    w2v.wv.save(str(out / "vectors.kv"))
    w2v.wv.save_word2vec_format(str(out / "vectors.bin"), binary=True)
    w2v.wv.save_word2vec_format(str(out / "vectors.txt"), binary=False)
    ft = FastText(sentences, vector_size=4, min_count=1, epochs=1, bucket=100, workers=1, seed=1)
    ft.save(str(out / "fasttext.model"))
    docs = [TaggedDocument(s, [i]) for i, s in enumerate(sentences[:50])]
    Doc2Vec(docs, vector_size=4, min_count=1, epochs=1, workers=1, seed=1).save(
        str(out / "doc2vec.model")
    )
    Dictionary(sentences).save(str(out / "dictionary.dict"))


@repo("spacy-pipeline", "spacy")
def spacy_pipeline(out: Path) -> None:
    import spacy
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.vocab.lookups.add_table("lexeme_norm", {w: w.lower() for w in WORDS})
    bow = {
        "@architectures": "spacy.TextCatBOW.v3",
        "exclusive_classes": True,
        "ngram_size": 1,
        "no_output_layer": False,
        "length": 1024,
    }
    textcat = nlp.add_pipe("textcat", config={"model": bow})
    textcat.add_label("MODEL")
    textcat.add_label("OTHER")
    examples = [
        Example.from_dict(
            nlp.make_doc(line),
            {"cats": {"MODEL": float("model" in line), "OTHER": float("model" not in line)}},
        )
        for line in corpus_lines(20)
    ]
    nlp.initialize(lambda: examples)
    nlp.update(examples)
    nlp.to_disk(out / "en_zoo_pipeline")


# --- MLflow, flax, numpy/pandas --------------------------------------------------------------


@repo("mlflow-sklearn", "mlflow-skinny", "scikit-learn", "cloudpickle")
def mlflow_sklearn(out: Path) -> None:
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    x, y = _tabular()
    mlflow.sklearn.save_model(
        LogisticRegression().fit(x, y),
        str(out / "model"),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
    )


_PYFUNC_SOURCE = '''
import mlflow.pyfunc


class AddN(mlflow.pyfunc.PythonModel):
    """The MLflow docs' custom model: loading it rebuilds this class from cloudpickled code."""

    def __init__(self, n):
        self.n = n

    def predict(self, context, model_input, params=None):
        return model_input.apply(lambda column: column + self.n)


def save(path):
    mlflow.pyfunc.save_model(path=path, python_model=AddN(n=5))
'''


@repo("mlflow-pyfunc-cloudpickle", "mlflow-skinny", "cloudpickle")
def mlflow_pyfunc(out: Path) -> None:
    """A pyfunc whose class lives in the user's script, so cloudpickle ships its code by value."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(compile(_PYFUNC_SOURCE, "train.py", "exec"), namespace)  # a user's own script
    save = namespace["save"]
    assert callable(save)
    save(str(out / "model"))


_CODE_PATHS_SOURCE = '''import pickle

import joblib
import mlflow.pyfunc


class ChurnModel(mlflow.pyfunc.PythonModel):
    """The MLflow docs' custom model with artifacts: load_context unpickles what was saved."""

    def load_context(self, context):
        self.model = joblib.load(context.artifacts["model"])
        with open(context.artifacts["scaler"], "rb") as f:
            self.scaler = pickle.load(f)

    def predict(self, context, model_input, params=None):
        return self.model.predict(self.scaler.transform(model_input))
'''


@repo("mlflow-pyfunc-code-paths", "mlflow-skinny", "cloudpickle", "scikit-learn", "joblib")
def mlflow_pyfunc_code_paths(out: Path) -> None:
    """A pyfunc whose class comes from `code_paths` (pickled by reference, its module copied
    into the model's `code/`), with artifacts that `load_context` unpickles."""
    import pickle

    import joblib
    import mlflow.pyfunc
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _tabular()
    with tempfile.TemporaryDirectory() as work:
        src = Path(work) / "churn_model.py"
        src.write_text(_CODE_PATHS_SOURCE, encoding="utf-8")
        joblib.dump(LogisticRegression().fit(x, y), Path(work) / "model.joblib")
        with open(Path(work) / "scaler.pkl", "wb") as f:
            pickle.dump(StandardScaler().fit(x), f)
        sys.path.insert(0, work)
        try:
            import churn_model  # type: ignore[import-not-found]

            mlflow.pyfunc.save_model(
                path=str(out / "model"),
                python_model=churn_model.ChurnModel(),
                artifacts={
                    "model": str(Path(work) / "model.joblib"),
                    "scaler": str(Path(work) / "scaler.pkl"),
                },
                code_paths=[str(src)],
            )
        finally:
            sys.path.remove(work)
            sys.modules.pop("churn_model", None)


@repo("flax-msgpack", "flax", "jax")
def flax_msgpack(out: Path) -> None:
    import jax
    from flax import linen as nn
    from flax import serialization

    class Mlp(nn.Module):
        @nn.compact
        def __call__(self, x):  # type: ignore[no-untyped-def]
            return nn.Dense(2)(nn.relu(nn.Dense(8)(x)))

    params = Mlp().init(jax.random.PRNGKey(0), jax.numpy.zeros((1, 4)))
    (out / "flax_model.msgpack").write_bytes(serialization.to_bytes(params))
    (out / "config.json").write_text(json.dumps({"features": [8, 2]}), encoding="utf-8")


@repo("orbax-checkpoint", "orbax-checkpoint", "flax", "jax")
def orbax_checkpoint(out: Path) -> None:
    """What flax/orbax training loops write: OCDBT key-value files and JSON metadata."""
    import jax
    import orbax.checkpoint as ocp
    from flax import linen as nn

    class Mlp(nn.Module):
        @nn.compact
        def __call__(self, x):  # type: ignore[no-untyped-def]
            return nn.Dense(2)(nn.relu(nn.Dense(8)(x)))

    params = Mlp().init(jax.random.PRNGKey(0), jax.numpy.zeros((1, 4)))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(out / "checkpoints" / "step_100", params)
    checkpointer.wait_until_finished()


@repo("numpy-pandas-saves", "numpy", "pandas")
def numpy_pandas(out: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    arr = rng.normal(size=(8, 4)).astype(np.float32)
    np.save(out / "embeddings.npy", arr)
    np.savez(out / "arrays.npz", a=arr, b=np.arange(10))
    np.savez_compressed(out / "arrays_compressed.npz", a=arr)
    np.savetxt(out / "matrix.txt", arr)
    df = pd.DataFrame(arr, columns=list("abcd"))
    df["label"] = pd.Categorical(["x", "y"] * 4)
    df.to_pickle(out / "frame.pkl")
    df.to_csv(out / "frame.csv", index=False)
    df.to_json(out / "frame.json", orient="records")


# --- configs, DVC, notebooks, text files -------------------------------------------------------


@repo("dvc-project", "dvc")
def dvc_project(out: Path) -> None:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    dvc = [sys.executable, "-m", "dvc"]
    run = lambda *args: subprocess.run([*dvc, *args], cwd=out, check=True, env=env)  # noqa: E731
    run("init", "--no-scm", "-q")
    run("remote", "add", "-d", "storage", "s3://zoo-bucket/dvc-store")
    run("config", "core.autostage", "true")
    (out / "data").mkdir()
    (out / "data" / "train.csv").write_text("x,y\n1,2\n3,4\n", encoding="utf-8")
    (out / "models").mkdir()
    (out / "models" / "model.onnx").write_bytes(b"")  # replaced below by a real one
    shutil.copy(REPOS_DIR / "onnx-exports" / "model.onnx", out / "models" / "model.onnx")
    run("add", "-q", "data/train.csv")
    run("add", "-q", "models/model.onnx")
    run(
        "stage",
        "add",
        "-q",
        "-n",
        "train",
        "-d",
        "data/train.csv",
        "-o",
        "models/out.bin",
        "python train.py",
    )
    shutil.rmtree(out / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(out / ".dvc" / "tmp", ignore_errors=True)


_HYDRA_APP = """
import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    print(cfg.model.name)


if __name__ == "__main__":
    main()
"""


@repo("hydra-lightning", "hydra-core", "omegaconf", "lightning", "torch")
def hydra_lightning(out: Path) -> None:
    import lightning as L
    import torch
    from lightning.pytorch.loggers import CSVLogger

    conf = out / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "config.yaml").write_text(
        "defaults:\n  - model: tiny\n  - _self_\n\ntrainer:\n  max_epochs: 1\nseed: 7\n",
        encoding="utf-8",
    )
    (conf / "model" / "tiny.yaml").write_text(
        "name: tiny\n_target_: torch.nn.Linear\nin_features: 4\nout_features: 2\n",
        encoding="utf-8",
    )
    (out / "train.py").write_text(_HYDRA_APP, encoding="utf-8")
    subprocess.run(
        [sys.executable, "train.py", "hydra.run.dir=outputs/2024-01-01/00-00-00", "seed=8"],
        cwd=out,
        check=True,
        capture_output=True,
    )

    class Tiny(L.LightningModule):
        def __init__(self, lr: float = 0.01, hidden: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Linear(hidden, 1))

        def training_step(self, batch, _):  # type: ignore[no-untyped-def]
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    data = torch.utils.data.TensorDataset(torch.zeros(8, 4), torch.zeros(8, 1))
    trainer = L.Trainer(
        max_epochs=1,
        default_root_dir=str(out),
        logger=CSVLogger(str(out), name="lightning_logs"),
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=4))


JSONC_TSCONFIG = """{
  "compilerOptions": {
    /* Visit https://aka.ms/tsconfig to read more about this file */

    /* Projects */
    // "incremental": true,                              /* Save .tsbuildinfo files to allow for incremental compilation of projects. */

    /* Language and Environment */
    "target": "es2016",                                  /* Set the JavaScript language version for emitted JavaScript and include compatible library declarations. */
    // "lib": [],                                        /* Specify a set of bundled library declaration files that describe the target runtime environment. */

    /* Modules */
    "module": "commonjs",                                /* Specify what module code is generated. */
    // "rootDir": "./",                                  /* Specify the root folder within your source files. */

    /* Interop Constraints */
    "esModuleInterop": true,                             /* Emit additional JavaScript to ease support for importing CommonJS modules. This enables 'allowSyntheticDefaultImports' for type compatibility. */
    "forceConsistentCasingInFileNames": true,            /* Ensure that casing is correct in imports. */

    /* Type Checking */
    "strict": true,                                      /* Enable all strict type-checking options. */

    /* Completeness */
    "skipLibCheck": true                                 /* Skip type checking all .d.ts files. */
  }
}
"""

JSONC_VSCODE_SETTINGS = """{
    // Format Python on save with ruff
    "[python]": {
        "editor.formatOnSave": true,
        "editor.defaultFormatter": "charliermarsh.ruff",
    },
    "python.testing.pytestEnabled": true,
    /* keep the zoo out of the explorer */
    "files.exclude": {"**/repos": true},
}
"""

JSONC_VSCODE_LAUNCH = """{
    // Use IntelliSense to learn about possible attributes.
    // Hover to view descriptions of existing attributes.
    // For more information, visit: https://go.microsoft.com/fwlink/?linkid=830387
    "version": "0.2.0",
    "configurations": [
        {
            "name": "Python Debugger: Current File",
            "type": "debugpy",
            "request": "launch",
            "program": "${file}",
            "console": "integratedTerminal"
        }
    ]
}
"""

JSONC_DEVCONTAINER = """// For format details, see https://aka.ms/devcontainer.json. For config options, see the
// README at: https://github.com/devcontainers/templates/tree/main/src/python
{
	"name": "Python 3",
	// Or use a Dockerfile or Docker Compose file. More info: https://containers.dev/guide/dockerfile
	"image": "mcr.microsoft.com/devcontainers/python:1-3.12-bullseye",

	// Features to add to the dev container. More info: https://containers.dev/features.
	// "features": {},

	// Use 'postCreateCommand' to run commands after the container is created.
	"postCreateCommand": "pip3 install --user -r requirements.txt",

	// Configure tool-specific properties.
	"customizations": {
		"vscode": {
			"extensions": ["ms-python.python"]
		}
	}
}
"""


@repo("project-files", "nbformat")
def project_files(out: Path) -> None:
    """What sits beside models in a project: JSONC configs, notebooks, licenses, empty files."""
    import nbformat

    (out / "tsconfig.json").write_text(JSONC_TSCONFIG, encoding="utf-8")
    (out / ".vscode").mkdir()
    (out / ".vscode" / "settings.json").write_text(JSONC_VSCODE_SETTINGS, encoding="utf-8")
    (out / ".vscode" / "launch.json").write_text(JSONC_VSCODE_LAUNCH, encoding="utf-8")
    (out / ".devcontainer").mkdir()
    (out / ".devcontainer" / "devcontainer.json").write_text(JSONC_DEVCONTAINER, encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Train the tiny model\n\nLoads `model.safetensors`."),
        nbformat.v4.new_code_cell(
            "import torch\nmodel = torch.nn.Linear(4, 2)\nmodel(torch.zeros(1, 4)).shape",
            execution_count=1,
            outputs=[
                nbformat.v4.new_output(
                    "execute_result", {"text/plain": "torch.Size([1, 2])"}, execution_count=1
                )
            ],
        ),
        nbformat.v4.new_code_cell("!pip install -q safetensors\nimport os\nos.listdir('.')"),
    ]
    nbformat.write(nb, str(out / "train.ipynb"))
    (out / "LICENSE").write_text(MIT_LICENSE, encoding="utf-8")
    (out / "LICENSE.txt").write_text(MIT_LICENSE, encoding="utf-8")
    shutil.copy("/usr/share/common-licenses/Apache-2.0", out / "LICENSE-APACHE")
    shutil.copy("/usr/share/common-licenses/GPL-3", out / "COPYING")
    shutil.copy("/usr/share/common-licenses/LGPL-3", out / "COPYING.LESSER")
    (out / "NOTICE").write_text(
        "Copyright 2024 The Zoo Authors.\n\nThis product includes software developed at The "
        "Apache Software Foundation (http://www.apache.org/).\n",
        encoding="utf-8",
    )
    (out / "AUTHORS").write_text(
        "This is the official list of Zoo authors for copyright purposes.\n\nAda Lovelace "
        "<ada@example.org>\nZoo Model Authors Ltd.\n",
        encoding="utf-8",
    )
    (out / "COPYRIGHT").write_text(
        "Copyright (c) 2024 Zoo Model Authors. Licensed under the MIT license; see LICENSE.\n",
        encoding="utf-8",
    )
    (out / "CITATION.cff").write_text(
        'cff-version: 1.2.0\nmessage: "If you use this model, please cite it."\n'
        'title: "Zoo"\nauthors:\n  - family-names: Lovelace\n    given-names: Ada\n',
        encoding="utf-8",
    )
    (out / "requirements.txt").write_text("torch>=2\nsafetensors\n", encoding="utf-8")
    (out / ".gitignore").write_text("__pycache__/\n*.pyc\n.venv/\n", encoding="utf-8")
    (out / "Makefile").write_text("test:\n\tpytest -q\n", encoding="utf-8")
    (out / "pkg").mkdir()
    (out / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (out / ".gitkeep").write_text("", encoding="utf-8")
    (out / "empty.bin").write_bytes(b"")
    (out / "empty.json").write_bytes(b"")
    model_card(out, "project files", "mit")


# --- driver ---------------------------------------------------------------------------------------


#: Libraries whose import name is shipped under other distribution names too.
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu")}


def lib_versions(libs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for lib in libs:
        out[lib] = "missing"
        for dist in DISTRIBUTIONS.get(lib, (lib,)):
            try:
                out[lib] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def describe(path: Path) -> list[dict[str, object]]:
    files = []
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        data = f.read_bytes()
        files.append(
            {
                "path": f.relative_to(path).as_posix(),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return files


def build_one(entry: Repo) -> dict[str, object]:
    target = REPOS_DIR / entry.name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    seed_everything()
    with chdir(Path(tempfile.mkdtemp(prefix="zoo-cwd-"))):
        entry.build(target)
    return {
        "python": sys.version.split()[0],
        "libraries": lib_versions(entry.libs),
        "files": describe(target),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="repository name")
    parser.add_argument("--python4", help="interpreter with transformers<5 (for *4-* repos)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.only or list(REPOS)
    unknown = sorted(set(names) - set(REPOS))
    if unknown:
        parser.error(f"unknown repositories: {', '.join(unknown)}")
    if args.child:
        print(json.dumps({n: build_one(REPOS[n]) for n in names}))
        return 0
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"repositories": {}}
    entries = manifest["repositories"]
    for name in names:
        entry = REPOS[name]
        print(f"building {name}", file=sys.stderr)
        if entry.python4:
            if not args.python4:
                print("  skipped: needs --python4 (transformers<5)", file=sys.stderr)
                continue
            done = subprocess.run(
                [args.python4, __file__, "--child", "--only", name],
                check=True,
                capture_output=True,
                text=True,
            )
            entries[name] = json.loads(done.stdout.strip().splitlines()[-1])[name]
        else:
            entries[name] = build_one(entry)
    manifest["repositories"] = {k: entries[k] for k in sorted(entries) if k in REPOS}
    manifest["total_bytes"] = sum(
        int(f["size"]) for e in manifest["repositories"].values() for f in e["files"]
    )
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"zoo: {manifest['total_bytes']} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
