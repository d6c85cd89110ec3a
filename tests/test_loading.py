"""Loading a checkpoint (its errors are tested with the checks of a model folder, in test_cli_download.py)."""

from __future__ import annotations


def test_loading_a_model_draws_no_transformers_bar_and_keeps_the_callers_setting(tiny_model, capfd):
    import huggingface_hub.utils
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    from qrr.loading import load_transformer

    was_on, hub_was_off = hf_logging.is_progress_bar_enabled(), huggingface_hub.utils.are_progress_bars_disabled()
    hf_logging.enable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()  # a caller's own: loading must leave it as it is
    try:
        AutoModelForCausalLM.from_pretrained(tiny_model)
        assert "Loading weights" in capfd.readouterr().err  # transformers' own load draws it
        load_transformer(tiny_model, None)
        assert "Loading weights" not in capfd.readouterr().err
        assert hf_logging.is_progress_bar_enabled() and huggingface_hub.utils.are_progress_bars_disabled()
        hf_logging.disable_progress_bar()
        load_transformer(tiny_model, None)
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        (huggingface_hub.utils.disable_progress_bars if hub_was_off else huggingface_hub.utils.enable_progress_bars)()
