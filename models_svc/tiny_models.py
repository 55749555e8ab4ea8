"""Tiny random checkpoints built from configs, saved like real ones (tests, CPU benchmarks, the
demo's tiny policy and ``make_tiny_checkpoint``): development models, never trained ones.

Nothing is downloaded: the tokenizer is a byte-level BPE trained here on a few strings. Each
builder writes a directory that loads through exactly the path a real checkpoint uses
(``AutoModelFor*.from_pretrained`` / ``AutoProcessor.from_pretrained`` / open_clip). Worker code
only: imports torch and transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

IDEFICS2_CHAT_TEMPLATE = (
    "{% for message in messages %}{{message['role'].capitalize()}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Words speakers use for tangram shapes: the tiny tokenizer is trained on them, and the benchmarks
# build synthetic utterances from them.
SHAPE_WORDS = (
    "bird",
    "man",
    "woman",
    "hat",
    "house",
    "boat",
    "fish",
    "swan",
    "dog",
    "cat",
    "rabbit",
    "kneeling",
    "sitting",
    "running",
    "tall",
    "thin",
    "left",
    "right",
    "facing",
    "triangle",
    "square",
    "head",
    "legs",
    "arms",
    "wings",
    "tail",
    "pointing",
    "up",
    "down",
    "with",
    "on",
    "top",
    "of",
    "like",
    "looks",
    "dancing",
    "flying",
    "jumping",
    "person",
    "animal",
    "chair",
    "lamp",
    "rocket",
    "arrow",
    "mountain",
    "tree",
)

CORPUS = [
    "Please carefully read the following conversation and answer: Is the very last utterance",
    "from the speaker positive, neutral, or negative feedback? Often negative feedback include",
    "corrections and keywords like no, not, undo, don't, with generally negative sentiment,",
    "while positive feedback often includes good, yes, correct, okay, or simply move on to the",
    "next stage. Lean towards negative if it sounds neutral. (start of the conversation)",
    "Listener: Select A Speaker: Deselect B select C D E F G H I J (end of the conversation)",
    "Answer a single word, Positive, Neutral or Negative. User: Assistant: System: none is",
    "selected currently the bird house man with a hat the other one try again",
]


def build_tokenizer(vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on ``CORPUS`` (so label words split into pieces)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<pad>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )


def tiny_causal_lm(path: str | Path, *, seed: int = 0) -> Path:
    """A 2-layer Llama-architecture causal LM with its tokenizer, saved to ``path``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    _spread_weights(model)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def idefics2_config(text: dict, vision: dict, perceiver: dict, *, vocab_size: int, **special):
    from transformers import Idefics2Config

    return Idefics2Config(
        text_config={"model_type": "mistral", "vocab_size": vocab_size, **text},
        vision_config=vision,
        perceiver_config=perceiver,
        **special,
    )


def full_size_idefics2_config(vocab_size: int = 32003, image_token_id: int = 32001):
    """The shape of IDEFICS2-8B (Mistral-7B text model, SigLIP-so400m vision, 64 latents)."""
    return idefics2_config(
        text={
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "sliding_window": 4096,
        },
        vision={
            "hidden_size": 1152,
            "intermediate_size": 4304,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "image_size": 980,
            "patch_size": 14,
        },
        perceiver={
            "hidden_size": 4096,
            "rms_norm_eps": 1e-5,
            "resampler_n_latents": 64,
            "resampler_depth": 3,
            "resampler_n_heads": 16,
            "resampler_head_dim": 96,
            "num_key_value_heads": 4,
        },
        vocab_size=vocab_size,
        image_token_id=image_token_id,
    )


def tiny_idefics2(
    path: str | Path,
    *,
    seed: int = 0,
    image_size: int = 28,
    hidden_size: int = 32,
    attention_scale: float = 1.0,
) -> Path:
    """A tiny IDEFICS2-architecture image-text-to-text model with its processor.

    ``attention_scale`` multiplies the text model's query and key projections after the weights
    are spread: at 1 the random attention is sharp (outputs differ clearly between inputs, what
    the policy tests want) but LoRA cannot learn to copy a letter from the utterance into the
    answer; ``learnable_tiny_idefics2`` uses a wider, gentler model that can.
    """
    import torch
    from transformers import (
        Idefics2ForConditionalGeneration,
        Idefics2ImageProcessor,
        Idefics2Processor,
    )

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    image_processor = Idefics2ImageProcessor(
        do_image_splitting=False,
        size={"longest_edge": image_size, "shortest_edge": image_size // 2},
    )
    processor = Idefics2Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=4,
        chat_template=IDEFICS2_CHAT_TEMPLATE,
    )
    tokenizer = processor.tokenizer
    config = idefics2_config(
        text={
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
        },
        vision={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 14,
        },
        perceiver={
            "hidden_act": "silu",
            "hidden_size": hidden_size,
            "rms_norm_eps": 1e-6,
            "resampler_n_latents": 4,
            "resampler_depth": 1,
            "resampler_n_heads": 2,
            "resampler_head_dim": 8,
            "num_key_value_heads": 1,
        },
        vocab_size=len(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = Idefics2ForConditionalGeneration(config)
    _spread_weights(model)
    if attention_scale != 1.0:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "text_model" in name and ("q_proj" in name or "k_proj" in name):
                    parameter.mul_(attention_scale)
    path = Path(path)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def learnable_tiny_idefics2(path: str | Path, *, seed: int = 0) -> Path:
    """The tiny IDEFICS2 that LoRA can teach the letters round (64 wide, query/key projections
    at a quarter): what ``make_tiny_checkpoint`` writes, so the laptop loop can show learning."""
    return tiny_idefics2(path, seed=seed, hidden_size=64, attention_scale=0.25)


def tiny_hf_clip(path: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny Hugging Face CLIPModel with its processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(vocab_size=300)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    model = CLIPModel(config)
    _spread_weights(model)
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
        ),
        tokenizer=tokenizer,
    )
    path = Path(path)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def tiny_open_clip(path: str | Path, *, seed: int = 0) -> Path:
    """A tiny open_clip model (config + state dict) in an ``open_clip_config.json`` directory."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {
            "image_size": 32,
            "layers": 1,
            "width": 32,
            "patch_size": 8,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    }
    model = open_clip.CLIP(**model_cfg)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "open_clip_config.json").write_text(
        json.dumps(
            {
                "model_cfg": model_cfg,
                "preprocess_cfg": {
                    "mean": [0.48145466, 0.4578275, 0.40821073],
                    "std": [0.26862954, 0.26130258, 0.27577711],
                },
            }
        )
    )
    torch.save(model.state_dict(), path / "open_clip_pytorch_model.bin")
    return path


def _spread_weights(model) -> None:
    """Widen a tiny random model's weights so its outputs differ clearly between inputs."""
    import torch

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() >= 2 and "embed" in name:
                parameter.normal_(0.0, 1.0)
            elif parameter.dim() == 2:
                parameter.normal_(0.0, 2.0 / parameter.shape[1] ** 0.5)


def write_tangram_pngs(directory: str | Path, names: list[str], size: int = 40) -> list[Path]:
    """Distinct little black-on-white shapes, one PNG per name."""
    from PIL import Image, ImageDraw

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, name in enumerate(names):
        image = Image.new("RGB", (size, size), "white")
        draw = ImageDraw.Draw(image)
        k = index + 3
        points = [
            (
                size / 2 + (size / 2.5) * ((i * 7 + k) % 11 - 5) / 5,
                size / 2 + (size / 2.5) * ((i * 5 + 2 * k) % 9 - 4) / 4,
            )
            for i in range(3 + index % 4)
        ]
        draw.polygon(points, fill="black")
        file = directory / f"{name}.png"
        image.save(file)
        paths.append(file)
    return paths


def benchmark_processor(vocab_size: int = 32000):
    """An IDEFICS2 processor whose byte-level BPE tokenizer is trained here on English-like text,
    standing in for Mistral's (nothing can be downloaded); default 980-pixel image processing."""
    import random

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Idefics2ImageProcessor, Idefics2Processor, PreTrainedTokenizerFast

    rng = random.Random(0)
    words = " ".join(CORPUS).replace(",", " ").replace(".", " ").split()
    words += SHAPE_WORDS
    corpus = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(3000)] + CORPUS
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    return Idefics2Processor(
        image_processor=Idefics2ImageProcessor(do_image_splitting=False),
        tokenizer=fast,
        image_seq_len=64,
        chat_template=IDEFICS2_CHAT_TEMPLATE,
    )
