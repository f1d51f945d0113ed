"""The ``lerobot-classifier`` model: LeRobot's reward classifier, loaded from a local checkpoint
built here offline (a tiny transformers ResNet as its encoder), scored on the shipped sample."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lerobot")

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.sac.reward_model.configuration_classifier import RewardClassifierConfig
from lerobot.policies.sac.reward_model.modeling_classifier import Classifier
from lerobot.policies.sac.reward_model.processor_classifier import make_classifier_processor
from lerobot.processor import ImageCropResizeProcessorStep

from robo_reward.data.episodes import load_manifest
from robo_reward.errors import ConfigError, InputError
from robo_reward.models import load_model
from robo_reward.models.options import load_model_from_text
from robo_reward.types import FrameBatch, Sampling, Task

SAMPLE = Path(__file__).resolve().parents[1] / "robo_reward" / "assets" / "metaworld_sample"
TASK = Task("open the drawer")
KEYS = ("observation.images.corner", "observation.images.topview")
SIZE = (64, 64)  # the sample's frames are 128×128: the wrapper must resize them
STATS = {key: {"mean": torch.full((3, 1, 1), 0.45), "std": torch.full((3, 1, 1), 0.22)} for key in KEYS}


@pytest.fixture(scope="module", autouse=True)
def offline():
    """No Hub access for the whole module (both libraries read HF_HUB_OFFLINE at import)."""
    import huggingface_hub.constants
    import transformers.utils.hub

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        mp.setattr(transformers.utils.hub, "_is_offline_mode", True)
        yield


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    """A tiny ResNet (3 stages, stride 16: 64×64 → the 4×4 map the classifier's pooling needs)."""
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("encoder")
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16], depths=[1, 1, 1], layer_type="basic")
                ).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trained(encoder_dir, tmp_path_factory) -> tuple[Path, Classifier]:
    """A checkpoint laid out as lerobot-train saves one: weights, config and the pre-processor."""
    config = RewardClassifierConfig(
        model_name=str(encoder_dir), num_cameras=2, hidden_dim=16, latent_dim=16, image_embedding_pooling_dim=2,
        input_features={key: PolicyFeature(FeatureType.VISUAL, (3, *SIZE)) for key in KEYS},
        output_features={"next.reward": PolicyFeature(FeatureType.REWARD, (1,))},
    )
    torch.manual_seed(1)
    classifier = Classifier(config).eval()
    folder = tmp_path_factory.mktemp("classifier")
    classifier.save_pretrained(folder)
    preprocessor, _ = make_classifier_processor(config, dataset_stats=STATS)
    preprocessor.save_pretrained(folder)
    return folder, classifier


@pytest.fixture(scope="module")
def batch() -> FrameBatch:
    """Real frames of the sample: a success and a failure, every 10th frame."""
    episodes = {e.name: e for e in load_manifest(SAMPLE, split="eval")}
    return FrameBatch.concat([next(episodes[name].iter_batches(64, Sampling(stride=10)))
                              for name in ("eval_success_00", "eval_failure_00")])


def training_input(batch: FrameBatch, normalise: bool = True) -> list[torch.Tensor]:
    """The classifier's input as lerobot makes it: frames as float CHW in [0, 1] (as a LeRobotDataset
    decodes them), resized by lerobot's ImageCropResizeProcessorStep (which records them), then the
    training pre-processor (make_classifier_processor with the dataset statistics)."""
    frames = {key: torch.from_numpy(batch.views[key.rsplit(".", 1)[-1]]).permute(0, 3, 1, 2).float() / 255
              for key in KEYS}
    frames = ImageCropResizeProcessorStep(resize_size=SIZE).observation(frames)
    if normalise:
        frames = make_classifier_processor(RewardClassifierConfig(
            input_features={key: PolicyFeature(FeatureType.VISUAL, (3, *SIZE)) for key in KEYS}),
            dataset_stats=STATS)[0](frames)
    return [frames[key] for key in KEYS]


def expected(classifier: Classifier, inputs: list[torch.Tensor]) -> np.ndarray:
    with torch.inference_mode():
        return classifier.predict(inputs).probabilities.numpy()


def test_scores_are_the_classifiers_own_predict_on_lerobots_training_input(trained, batch):
    folder, classifier = trained
    model = load_model_from_text("lerobot-classifier", [f"path={folder}", "device=cpu"])
    scores = model.score(batch, TASK)
    want = expected(classifier, training_input(batch))
    assert len(batch) >= 10 and np.ptp(want) > 0
    np.testing.assert_allclose(scores.success, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(scores.progress, scores.success)
    assert set(scores.per_view) == {"corner", "topview"}
    np.testing.assert_array_equal(scores.per_view["corner"], scores.success)
    np.testing.assert_array_equal(scores.uncertainty, 0.0)
    assert model.expected_views == ("corner", "topview")
    assert "progress = success" in model.describe() and "saved normaliser" in model.describe()


def test_without_a_saved_preprocessor_images_go_unnormalised_with_a_warning(trained, batch, tmp_path):
    folder, classifier = trained
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(folder / name, bare / name)
    with pytest.warns(UserWarning, match="classifier_preprocessor.json"):
        model = load_model("lerobot-classifier", path=str(bare), device="cpu")
    np.testing.assert_allclose(model.score(batch, TASK).success, expected(classifier, training_input(batch, False)),
                               rtol=1e-5, atol=1e-7)
    assert "unnormalised" in model.describe()


def test_predict_reward_is_broken_in_lerobot_0_4_4(trained, batch):
    """Classifier.predict_reward calls self.normalize_inputs, gone since normalisation moved to
    processor pipelines; the wrapper therefore calls predict. If this test fails, the installed
    lerobot has fixed predict_reward."""
    _, classifier = trained
    with pytest.raises(AttributeError, match="normalize_inputs"), torch.inference_mode():
        classifier.predict_reward(dict(zip(KEYS, training_input(batch))))


def test_views_named_otherwise_map_in_order_with_a_warning(trained, batch):
    folder, classifier = trained
    renamed = FrameBatch(views={"front": batch.views["corner"], "top": batch.views["topview"]},
                         timestamps_ns=batch.timestamps_ns)
    model = load_model("lerobot-classifier", path=str(folder), device="cpu")
    with pytest.warns(UserWarning, match="in order"):
        scores = model.score(renamed, TASK)
    np.testing.assert_allclose(scores.success, expected(classifier, training_input(batch)), rtol=1e-5, atol=1e-7)
    swapped = load_model("lerobot-classifier", path=str(folder), device="cpu", views=("top", "front"))
    assert not np.allclose(swapped.score(renamed, TASK).success, scores.success)


def test_a_missing_checkpoint_directory_is_named(tmp_path):
    gone = tmp_path / "no-such-classifier"
    with pytest.raises(ConfigError, match=f"{gone / 'config.json'} does not exist"):
        load_model("lerobot-classifier", path=str(gone))
    with pytest.raises(ConfigError, match="--option path=DIR"):
        load_model("lerobot-classifier")


def test_an_unreachable_encoder_is_named_and_the_encoder_option_replaces_it(trained, encoder_dir, batch, tmp_path):
    folder, classifier = trained
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    config = json.loads((moved / "config.json").read_text())
    config["model_name"] = str(tmp_path / "gone-encoder")
    (moved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"encoder '.*gone-encoder' \(model_name in .*config.json\).*encoder=DIR"):
        load_model("lerobot-classifier", path=str(moved), device="cpu")
    model = load_model("lerobot-classifier", path=str(moved), device="cpu", encoder=str(encoder_dir))
    np.testing.assert_allclose(model.score(batch, TASK).success, expected(classifier, training_input(batch)),
                               rtol=1e-5, atol=1e-7)


def test_a_missing_view_is_named(trained, batch):
    folder, _ = trained
    model = load_model("lerobot-classifier", path=str(folder), device="cpu")
    corner_only = FrameBatch(views={"corner": batch.views["corner"]}, timestamps_ns=batch.timestamps_ns,
                             source="sample")
    with pytest.raises(InputError, match=r"needs view\(s\) \['topview'\].*views=A,B"):
        model.score(corner_only, TASK)


def test_a_set_with_an_invalid_view_is_refused_naming_its_frames(trained, batch):
    folder, _ = trained
    model = load_model("lerobot-classifier", path=str(folder), device="cpu")
    valid = np.ones(len(batch), dtype=bool)
    valid[2] = False
    stale = FrameBatch(views=batch.views, timestamps_ns=batch.timestamps_ns, frame_index=batch.frame_index,
                       view_valid={"topview": valid})
    with pytest.raises(InputError, match=rf"view 'topview' is missing for frame\(s\) \[{batch.frame_index[2]}\]"):
        model.score(stale, TASK)
