"""Without network access, a Hub id fails at once with a line that points to local files, instead of
after the Hub client's retries (28 s measured here for the default model)."""

from __future__ import annotations

import datasets
import pytest
from huggingface_hub import constants
from transformers import AutoTokenizer

import distill.offline
from distill.data import load_splits
from distill.errors import UserError
from distill.models import load_base_model, load_teacher_config, load_tokenizer
from distill.offline import hub_unreachable_reason


class NoNetwork:
    """A Hub session whose every request fails as it does on a machine without network."""

    calls = 0

    def head(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        NoNetwork.calls += 1
        raise ConnectionError("[Errno -2] Name or service not known")


@pytest.fixture
def offline(monkeypatch):  # type: ignore[no-untyped-def]
    """No network, and HF_HUB_OFFLINE not set: the case that used to retry for half a minute."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(distill.offline, "get_session", NoNetwork)
    hub_unreachable_reason.cache_clear()
    NoNetwork.calls = 0

    def no_download(*args, **kwargs):  # type: ignore[no-untyped-def]
        pytest.fail("the Hub client was called: it would retry for half a minute")

    monkeypatch.setattr(datasets, "load_dataset", no_download)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", no_download)
    yield
    hub_unreachable_reason.cache_clear()


def test_the_hub_is_asked_once_per_process(offline):
    assert hub_unreachable_reason() == "ConnectionError: [Errno -2] Name or service not known"
    assert hub_unreachable_reason() is not None and NoNetwork.calls == 1


def test_offline_mode_leaves_the_answer_to_the_libraries(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_unreachable_reason.cache_clear()
    assert hub_unreachable_reason() is None
    hub_unreachable_reason.cache_clear()


def test_a_hub_dataset_fails_at_once_pointing_to_a_local_file(offline):
    with pytest.raises(
        UserError, match=r"'tdavidson/hate_speech_offensive'.*cannot be reached.*--dataset FILE"
    ):
        load_splits("tdavidson/hate_speech_offensive")


@pytest.mark.parametrize("load", [load_tokenizer, load_base_model, load_teacher_config])
def test_a_hub_model_fails_at_once_pointing_to_a_local_folder(load, offline):
    args = (["a", "neither"],) if load is load_base_model else ()
    with pytest.raises(UserError, match=r"'bert-base-uncased'.*cannot be reached.*--model_name_or_path DIR"):
        load("bert-base-uncased", *args)


def test_local_folders_never_ask_the_hub(offline, teacher_dir, monkeypatch):
    monkeypatch.undo()  # the real tokenizer loader; only the network is still missing
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(distill.offline, "get_session", NoNetwork)
    assert load_tokenizer(str(teacher_dir)) is not None and NoNetwork.calls == 0
