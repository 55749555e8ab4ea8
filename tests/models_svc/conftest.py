"""Tiny random checkpoints for the model-service tests, built once per test session.

Nothing is downloaded: Hugging Face and open_clip are kept offline.
"""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

NAMES = [f"page9-{i}" for i in range(10)]


@pytest.fixture(scope="session")
def ml_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_idefics2(ml_dir):
    from models_svc.tiny_models import tiny_idefics2

    return str(tiny_idefics2(ml_dir / "idefics2"))


@pytest.fixture(scope="session")
def tiny_causal_lm(ml_dir):
    from models_svc.tiny_models import tiny_causal_lm

    return str(tiny_causal_lm(ml_dir / "causal-lm"))


@pytest.fixture(scope="session")
def tiny_hf_clip(ml_dir):
    from models_svc.tiny_models import tiny_hf_clip

    return str(tiny_hf_clip(ml_dir / "hf-clip"))


@pytest.fixture(scope="session")
def tiny_open_clip(ml_dir):
    from models_svc.tiny_models import tiny_open_clip

    return str(tiny_open_clip(ml_dir / "open-clip"))


@pytest.fixture(scope="session")
def tiny_lora(ml_dir, tiny_idefics2):
    """A LoRA adapter (q/v projections of the text model) with non-zero weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(1)
    base = AutoModelForImageTextToText.from_pretrained(tiny_idefics2)
    model = get_peft_model(
        base,
        LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj"]),
    )
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    path = ml_dir / "lora"
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tangram_images(ml_dir):
    from models_svc.tiny_models import write_tangram_pngs

    return [str(p) for p in write_tangram_pngs(ml_dir / "tangrams", NAMES)]


@pytest.fixture(scope="session")
def second_lora(ml_dir, tiny_idefics2):
    """Another adapter, on the released target modules (text model, connector, resampler)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from models_svc.training.config import LORA_TARGETS

    path = ml_dir / "lora-b"
    if not path.exists():
        torch.manual_seed(7)
        model = get_peft_model(
            AutoModelForImageTextToText.from_pretrained(tiny_idefics2),
            LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS),
        )
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0, 0.5)
        model.save_pretrained(path)
    return str(path)
